"""Studies on few cores, paired with an earlier commit: `python benchmarks/studies_one_core.py REF`.

A study's runs go to a pool of worker processes, one per core this process may use; with one usable core
(a cluster job pinned to one CPU) or `SKILLSIM_JOBS=1` they run in the study's own process. This times
whole study commands, as a user types them, from this checkout and from a `git worktree` of REF in turn
(REF first in odd pairs, this checkout first in even ones), each in an empty folder with empty composition
and history caches (`SKILLSIM_CACHE_DIR`), and prints each pair's wall times and ratio (REF / this) and
their median, by case:

- `forecast, SKILLSIM_JOBS=1`: `skillsim-forecast params=8 structural=4 replicates=2` (64 runs of 50,000);
- `sensitivity, SKILLSIM_JOBS=1`: `skillsim-sensitivity quick=true`;
- `sensitivity, one CPU`: the same under `taskset -c 0`, the number of processes left to the study;
- `plan preview, one CPU`: `skillsim-plan target.share=0.35 target.year=2030 preview=true` under taskset.

    python benchmarks/studies_one_core.py 1b650ea              # every case, 2 pairs each (about 6 minutes)
    python benchmarks/studies_one_core.py 1b650ea --pairs 3 --cases forecast-jobs1

The numba cache of REF's worktree is filled before anything is timed (as benchmarks/run.py does).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: name: (module, arguments, extra environment, pinned to one CPU)
CASES = {
    "forecast-jobs1": ("sim.studies.forecast", ["params=8", "structural=4", "replicates=2"], {"SKILLSIM_JOBS": "1"},
                       False),
    "sensitivity-jobs1": ("sim.studies.sensitivity", ["quick=true"], {"SKILLSIM_JOBS": "1"}, False),
    "sensitivity-one-cpu": ("sim.studies.sensitivity", ["quick=true"], {}, True),
    "plan-one-cpu": ("sim.studies.plan", ["target.share=0.35", "target.year=2030", "preview=true"], {}, True),
}


def timed_study(root: Path, module: str, args: list[str], extra: dict, pinned: bool) -> float:
    """Wall seconds of one study from `root`'s sim, in an empty folder with empty caches."""
    folder = Path(tempfile.mkdtemp(prefix="skillsim-study-"))
    env = dict(os.environ, PYTHONPATH=str(root), SKILLSIM_CACHE_DIR=str(folder / "cache"), **extra)
    env.pop("SKILLSIM_KERNELS", None)  # as a user runs it: the study chooses
    cmd = [sys.executable, "-m", module, *args, f"out={folder / 'out'}"]
    if pinned:
        cmd = ["taskset", "-c", str(min(os.sched_getaffinity(0))), *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(folder, ignore_errors=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{module} failed from {root}")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ref", help="the earlier commit to pair with")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    args = parser.parse_args(argv)
    if shutil.which("taskset") is None and any(CASES[c][3] for c in args.cases):
        raise SystemExit("taskset (util-linux) is needed for the one-CPU cases")
    from run import baseline_checkout, drop_checkout

    base = baseline_checkout(args.ref)
    try:
        for name in args.cases:
            module, study_args, extra, pinned = CASES[name]
            ratios = []
            for i in range(args.pairs):
                sides = [("ref", base), ("this", HERE.parent)]
                walls = {side: timed_study(root, module, study_args, extra, pinned)
                         for side, root in (sides if i % 2 == 0 else sides[::-1])}
                ratios.append(walls["ref"] / walls["this"])
                print(f"{name:<22} pair {i + 1}: {args.ref} {walls['ref']:6.1f} s, this {walls['this']:6.1f} s, "
                      f"{ratios[-1]:.2f}x", flush=True)
            print(f"{name:<22} median {statistics.median(ratios):.2f}x over {len(ratios)} pairs", flush=True)
    finally:
        drop_checkout(base)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
