"""What reusing a simulated history saves (sim.history_reuse): the same batch with and without it.

    python benchmarks/history_reuse.py [--agents 20000] [--mixes 6] [--seeds 4] [--repeats 2]

A batch as a plan evaluates it: `mixes` lever settings (training, competition and studio intensities)
at each of `seeds` seeds, Chongqing with its default history (2012-10 .. 2025-12) and horizon
(2026-2035), through the studies' batch runner (sim.studies.batch.run_batch, one process per core).
Each side runs in a fresh Python process with an empty cache folder (SKILLSIM_CACHE_DIR), so it
starts with no kept history and a fresh pool; without reuse, both layers are off. The two sides
alternate, `repeats` times each. Printed: the wall time of each side, runs per minute, the
ratio, and whether both sides returned the same numbers (they must: reuse changes no byte).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import hashlib, json, sys, time
from sim.config import RunConfig
from sim.studies.batch import run_batch
from sim import api

agents, mixes, seeds = (int(x) for x in sys.argv[1:4])
levels = [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.0, 2.0, 1.0), (1.0, 1.0, 2.0), (1.5, 1.5, 1.5), (0.0, 1.0, 1.0),
          (2.0, 2.0, 2.0), (0.5, 0.5, 0.5)][:mixes]
configs = [api.apply(RunConfig(n_agents=agents, seed=s), training_intensity=t, competition_intensity=c,
                     studio_intensity=st) for s in range(seeds) for t, c, st in levels]

def read(model):
    return [float(v) for v in model.series()["high_skill_share"]]

t0 = time.perf_counter()
out = run_batch(configs, read)
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "runs": len(configs),
                  "digest": hashlib.sha256(json.dumps(out).encode()).hexdigest()[:16]}))
"""


def side(args, reuse: bool) -> dict:
    """One side in a fresh process; with reuse, both layers at their defaults but an empty disk cache
    (so every history is simulated once in the batch, as on a first run); without, both layers off."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="skillsim-history-bench-") as tmp:
        env["SKILLSIM_CACHE_DIR"] = tmp
        env["SKILLSIM_HISTORY_CACHE_MB"] = "" if reuse else "0"
        env["SKILLSIM_HISTORY_DISK_MB"] = "" if reuse else "0"
        proc = subprocess.run([sys.executable, "-c", CHILD, str(args.agents), str(args.mixes), str(args.seeds)],
                              capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit("history reuse benchmark: a side failed")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"  {'with reuse' if reuse else 'without':<11} {res['runs']} runs in {res['wall_s']:.1f} s "
          f"({res['runs'] / res['wall_s'] * 60:.0f} runs/min)", file=sys.stderr, flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=20_000)
    ap.add_argument("--mixes", type=int, default=6)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    t0 = time.perf_counter()
    runs = {"without": [], "with": []}
    for r in range(args.repeats):
        order = (False, True) if r % 2 == 0 else (True, False)
        for reuse in order:
            runs["with" if reuse else "without"].append(side(args, reuse))
    digests = {res["digest"] for side_runs in runs.values() for res in side_runs}
    without = statistics.median(res["wall_s"] for res in runs["without"])
    with_ = statistics.median(res["wall_s"] for res in runs["with"])
    n = runs["with"][0]["runs"]
    print(f"batch of {n} runs ({args.mixes} lever mixes x {args.seeds} seeds, {args.agents:,} agents, "
          f"history 2012-10..2025-12, forecast 2026-2035), SKILLSIM_JOBS={os.environ.get('SKILLSIM_JOBS') or 'one per core'}, median of {args.repeats}:")
    print(f"  without reuse {without:.1f} s ({n / without * 60:.0f} runs/min)")
    print(f"  with reuse    {with_:.1f} s ({n / with_ * 60:.0f} runs/min)")
    print(f"  ratio {without / with_:.2f}x; same numbers on both sides: {'yes' if len(digests) == 1 else 'NO'}")
    print(f"  (benchmark took {time.perf_counter() - t0:.0f} s)")
    if len(digests) != 1:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
