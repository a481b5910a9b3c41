"""Sweep throughput: runs per minute of a whole multirun, end to end.

`python benchmarks/sweep_throughput.py` runs `skillsim -m replicate=range(0,200)` with 50,000 agents
over ten years (2026-01 .. 2035-12) using the default launcher (joblib, one worker per core), and
times the whole command: Hydra start-up, every job (build, 120 monthly steps, writing its folder)
and the final aggregation. Goal (issue 4): at least 100 runs per minute on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--agents", type=int, default=50_000)
    ap.add_argument("--launcher", default="joblib", help="joblib (default) or basic")
    ap.add_argument("--out", default=str(Path(__file__).with_name("out") / "sweep_throughput.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="skillsim-sweep-"))
    sweep_dir = tmp / "sweep"
    cmd = [sys.executable, "-m", "sim", "-m", f"replicate=range(0,{args.runs})", f"n_agents={args.agents}",
           "horizon.start_year=2026", "horizon.end_year=2035", f"hydra/launcher={args.launcher}",
           f"hydra.sweep.dir={sweep_dir}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(proc.returncode)
    runs = pd.read_csv(sweep_dir / "runs.csv")
    ok = int((runs["status"] == "ok").sum())
    result = {
        "runs": args.runs, "ok": ok, "agents": args.agents, "months": 120, "launcher": args.launcher,
        "cpus": os.cpu_count(), "wall_s": round(wall, 2), "runs_per_minute": round(ok / wall * 60, 1),
        "goal_runs_per_minute": 100, "load_average_end": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"sweep throughput: {ok} runs of {args.agents:,} agents x 120 months, launcher {args.launcher}, "
          f"{os.cpu_count()} cpus: {wall:.1f} s wall -> {result['runs_per_minute']} runs/min "
          f"(goal >= 100: {'met' if result['runs_per_minute'] >= 100 else 'MISSED'})")


if __name__ == "__main__":
    main()
