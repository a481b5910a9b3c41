"""Sweep throughput: runs per minute of a whole multirun, end to end, against a baseline commit.

`python benchmarks/sweep_throughput.py` runs `skillsim -m replicate=range(0,200)` with 50,000 agents
over ten years (2026-01 .. 2035-12, each run continuing its simulated history from 2012-10) using the
default launcher (joblib, one worker per core), and times the whole command: Hydra start-up, every
job (build with its history, 120 monthly steps, writing its folder) and the final aggregation.

`--baseline REF` (default: run.BASELINE, the commit before the compiled kernels; `none` to skip)
runs the same sweep from a checkout of REF in the same benchmark run, and prints the ratio of the
two throughputs (issue 12: at least 2.5x). The order alternates (`--order`) so that neither side
always runs on a warmer machine. Goals: at least 100 runs per minute on 2 cores (issue 4).
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import BASELINE, baseline_checkout, drop_checkout  # noqa: E402


def one_sweep(args, root: Path | None) -> dict:
    """Time one multirun; `root` is a checkout whose `sim` is used (None: this one)."""
    tmp = Path(tempfile.mkdtemp(prefix="skillsim-sweep-"))
    sweep_dir = tmp / "sweep"
    # every job simulates its own history: none restores one that an earlier command kept on disk
    # (sim.history_reuse; a replicate sweep keeps none itself), so that both sides do the same work
    env = dict(os.environ, SKILLSIM_HISTORY_DISK_MB="0")
    if root is not None:
        env["PYTHONPATH"] = str(root)
    cmd = [sys.executable, "-m", "sim", "-m", f"replicate=range(0,{args.runs})", f"n_agents={args.agents}",
           "horizon.start_year=2026", "horizon.end_year=2035", f"hydra/launcher={args.launcher}",
           f"hydra.sweep.dir={sweep_dir}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(proc.returncode)
    runs = pd.read_csv(sweep_dir / "runs.csv")
    ok = int((runs["status"] == "ok").sum())
    shutil.rmtree(tmp, ignore_errors=True)
    res = {"wall_s": round(wall, 2), "ok": ok, "runs_per_minute": round(ok / wall * 60, 1)}
    print(f"  {'baseline' if root else 'this checkout'}: {ok} runs in {wall:.1f} s -> {res['runs_per_minute']} runs/min",
          file=sys.stderr, flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--agents", type=int, default=50_000)
    ap.add_argument("--launcher", default="joblib", help="joblib (default) or basic")
    ap.add_argument("--baseline", default=BASELINE, help=f"commit to compare with (default {BASELINE}; 'none')")
    ap.add_argument("--order", choices=("baseline-first", "current-first"), default="baseline-first")
    ap.add_argument("--out", default=str(HERE / "out" / "sweep_throughput.json"))
    args = ap.parse_args()
    base = None if args.baseline.lower() == "none" else baseline_checkout(args.baseline)
    try:
        sides = [("current", None)] if base is None else (
            [("baseline", base), ("current", None)] if args.order == "baseline-first"
            else [("current", None), ("baseline", base)])
        res = {name: one_sweep(args, root) for name, root in sides}
    finally:
        if base is not None:
            drop_checkout(base)
    cur = res["current"]
    result = {
        "runs": args.runs, "agents": args.agents, "months": 120, "launcher": args.launcher,
        "cpus": os.cpu_count(), **cur, "goal_runs_per_minute": 100,
        "baseline": None if base is None else {"ref": args.baseline, **res["baseline"]},
        "ratio_vs_baseline": None if base is None else round(cur["runs_per_minute"] / res["baseline"]["runs_per_minute"], 2),
        "load_average_end": os.getloadavg()[0], "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"sweep throughput: {cur['ok']} runs of {args.agents:,} agents x 120 months (history from 2012-10), "
          f"launcher {args.launcher}, {os.cpu_count()} cpus: {cur['wall_s']:.1f} s wall -> {cur['runs_per_minute']} runs/min "
          f"(goal >= 100: {'met' if cur['runs_per_minute'] >= 100 else 'MISSED'})")
    if base is not None:
        r = result["ratio_vs_baseline"]
        print(f"  baseline {args.baseline}: {res['baseline']['runs_per_minute']} runs/min; ratio {r:.2f}x "
              f"(goal >= 2.5x: {'met' if r >= 2.5 else 'MISSED'})")


if __name__ == "__main__":
    main()
