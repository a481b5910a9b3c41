"""Sweep start-up: time to the first job and peak memory of `skillsim -m` for 300, 1,000 and 5,000 tiny jobs.

    python benchmarks/sweep_startup.py                      # this checkout, 300 / 1000 / 5000 jobs
    python benchmarks/sweep_startup.py --repo /tmp/base     # another checkout (e.g. the base commit)
    python benchmarks/sweep_startup.py --jobs 1000 --until 100
    python benchmarks/sweep_startup.py --before /tmp/base   # before and after in one run, size by size

Each sweep is `skillsim -m 'replicate=range(0,N)' n_agents=100 horizon.end_year=2023
hydra/launcher=basic` (12 months of 100 agents: the job itself takes about 0.1 s, so what is
measured is composing, checking and launching). The script reads the command's log as it comes and
records the time from the start of the command to the first job's first log line ("time to first
job"), then lets the sweep run until `--until` jobs have been written (default 20; `all` for the
whole sweep) and stops it with SIGTERM (which keeps finished jobs; see the README).

Memory: the peak resident set of the sweep's process tree, sampled every 0.2 s from /proc (main
process high-water mark plus its workers), in MB. `--cap` stops a sweep whose first job has not
started after that many seconds and records the time as "> cap".

Results go to benchmarks/out/sweep_startup.json (and a table on stdout). The machine's load varies
from day to day, so compare the before/after figures of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                kids = Path(f"/proc/{p}/task/{task}/children").read_text().split()
                todo.extend(int(k) for k in kids)
        except OSError:
            continue
    return out


def _kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(repo: Path, python: str, jobs: int, until: int | None, cap: float, launcher: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="skillsim-startup-"))
    cmd = [python, "-m", "sim", "-m", f"replicate=range(0,{jobs})", "n_agents=100", "horizon.end_year=2023",
           f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp / 'sweep'}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=repo, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(repo)})
    peak = {"main_kb": 0, "tree_kb": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak["main_kb"] = max(peak["main_kb"], _kb(proc.pid, "VmHWM"))
            peak["tree_kb"] = max(peak["tree_kb"], sum(_kb(p, "VmRSS") for p in _tree(proc.pid)))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    first = None
    written = 0
    timer = threading.Timer(cap, lambda: proc.poll() is None and first is None and proc.send_signal(signal.SIGTERM))
    timer.start()
    for line in proc.stderr:
        if first is None and " agents (weight " in line:
            first = time.perf_counter() - t0
        if "; wrote " in line:
            written += 1
            if until is not None and written >= until:
                proc.send_signal(signal.SIGTERM)
                break
    timer.cancel()
    for _ in proc.stderr:
        pass
    proc.wait()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    shutil.rmtree(tmp, ignore_errors=True)
    return {"jobs": jobs, "launcher": launcher, "time_to_first_job_s": round(first, 2) if first else None,
            "capped_at_s": None if first else cap, "jobs_written": written, "wall_s": round(wall, 1),
            "peak_main_rss_mb": round(peak["main_kb"] / 1024, 1), "peak_tree_rss_mb": round(peak["tree_kb"] / 1024, 1),
            "per_job_startup_ms": round(1000 * first / jobs, 1) if first else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=str(HERE.parent), help="checkout to measure (default: this one)")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--jobs", type=int, nargs="+", default=[300, 1000, 5000])
    ap.add_argument("--until", default="20", help="stop after this many jobs were written, or 'all'")
    ap.add_argument("--cap", type=float, default=600.0, help="give up waiting for the first job after this many s")
    ap.add_argument("--launcher", default="basic")
    ap.add_argument("--before", default=None, help="also measure this checkout (labelled 'before') before each size")
    ap.add_argument("--label", default="")
    ap.add_argument("--out", default=str(HERE / "out" / "sweep_startup.json"))
    args = ap.parse_args()
    until = None if args.until == "all" else int(args.until)
    rows = []
    plan = [(n, repo, label) for n in args.jobs
            for repo, label in ([(args.before, "before")] if args.before else [])
            + [(args.repo, args.label or ("after" if args.before else Path(args.repo).name))]]
    for n, repo, label in plan:
        r = measure(Path(repo), args.python, n, until, args.cap, args.launcher)
        r.update(label=label, cpus=os.cpu_count(),
                 load_average=round(os.getloadavg()[0], 2), date=time.strftime("%Y-%m-%dT%H:%M:%S"))
        rows.append(r)
        first = f"{r['time_to_first_job_s']:.1f} s" if r["time_to_first_job_s"] else f"> {r['capped_at_s']:.0f} s"
        print(f"{r['label']:>12} {n:>6} jobs ({args.launcher}): first job after {first}"
              f" ({r['per_job_startup_ms']} ms/job), peak RSS main {r['peak_main_rss_mb']} MB,"
              f" tree {r['peak_tree_rss_mb']} MB, {r['jobs_written']} jobs written in {r['wall_s']} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(old + rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
