"""Paired speed comparison with an earlier commit, for a shared machine whose speed drifts.

`python benchmarks/paired.py REF` starts two warm processes, one running this checkout's `sim` and one
a `git worktree` of REF, and has them run the same models in turn (the same seed on both sides,
alternating which side goes first). Each pair's ratio (REF's steps time / this checkout's) is taken
within seconds, so a machine that slows down for minutes slows both sides of most pairs alike; the
median of the ratios and their quartiles are printed, by size. `--startup N` adds `skillsim` with no
arguments from each side in turn, N times cold and N times warm (benchmarks/run.py's start-up case),
and prints each side's median wall / model ratio.

    python benchmarks/paired.py a048a18                      # 10k (40 pairs) and 50k (16 pairs)
    python benchmarks/paired.py a048a18 --agents 1000000 --pairs 4 --startup 6
    python benchmarks/paired.py a048a18 --agents 20000 --kernels numpy     # as `skillsim` runs its 20k agents
    python benchmarks/paired.py e9a17b6 --agents 5700000 --pairs 3 --fresh   # (d), paired: fresh processes, construction included

Measured this way on 2026-12-03 (benchmarks/README.md, issue 12's fifth step), when one 10k-agent model
took anywhere between 0.12 and 0.21 s from one half hour to the next.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def worker(n: int) -> None:
    """One side: warm up, then run a model of n agents for each seed read from stdin, printing its
    steps time (the `sim` imported is the one on PYTHONPATH)."""
    import sim
    from cases import make_config
    from sim.model import WorkforceModel

    WorkforceModel(make_config({"n": 2000, "seed": 1})).run()
    print("ready", Path(sim.__file__).resolve().parent.parent, flush=True)
    for line in sys.stdin:
        model = WorkforceModel(make_config({"n": n, "seed": int(line)}))
        t0 = time.perf_counter()
        model.run()
        print(time.perf_counter() - t0, flush=True)


def paired_models(base: Path, n: int, pairs: int, kernels: str = "compiled") -> dict:
    env = dict(os.environ, SKILLSIM_KERNELS=kernels, SKILLSIM_HISTORY_DISK_MB="0", SKILLSIM_HISTORY_CACHE_MB="0")
    sides = {}
    for name, root in (("ref", base), ("this", HERE.parent)):
        sides[name] = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", str(n)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root,
                                       env=dict(env, PYTHONPATH=str(root)))
    try:
        for name, root in (("ref", base), ("this", HERE.parent)):
            if sides[name].stdout.readline().split() != ["ready", str(root.resolve())]:
                raise SystemExit(f"the {name} side failed to start at {n:,} agents, or ran another checkout's sim")
        times = {"ref": [], "this": []}
        ratios = []
        for i in range(pairs):
            t = {}
            for name in (("ref", "this") if i % 2 == 0 else ("this", "ref")):
                sides[name].stdin.write(f"{100 + i}\n")
                sides[name].stdin.flush()
                t[name] = float(sides[name].stdout.readline())
                times[name].append(t[name])
            ratios.append(t["ref"] / t["this"])
    finally:
        for p in sides.values():
            p.stdin.close()
            p.wait()
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {"n": n, "pairs": pairs, "ref_median_s": statistics.median(times["ref"]),
            "this_median_s": statistics.median(times["this"]), "ratio_median": statistics.median(ratios),
            "ratio_quartiles": (q[0], q[2]),
            "this_ns_per_agent_step": statistics.median(times["this"]) / (n * 132) * 1e9}


def paired_fresh(base: Path, n: int, pairs: int) -> dict:
    """Fresh processes, as benchmarks/run.py runs (a) and (d): each side builds and steps one model in
    a new interpreter (benchmarks/cases.py), in turn, so that both sides of a pair meet the same machine.
    The ratio is of the wall time, construction included (what (d) judges), and of the steps alone."""
    import run

    walls, steps = [], []
    per = {"ref": [], "this": []}
    for i in range(pairs):
        r = {}
        for name in (("ref", "this") if i % 2 == 0 else ("this", "ref")):
            res = run.run_case(run.model_spec(n, phases=False), f"{name} {run.fmt_n(n)} (pair {i + 1})",
                               root=base if name == "ref" else None)
            r[name] = res
            per[name].append(res["build_s"] + res["steps_s"])
        walls.append((r["ref"]["build_s"] + r["ref"]["steps_s"]) / (r["this"]["build_s"] + r["this"]["steps_s"]))
        steps.append(r["ref"]["steps_s"] / r["this"]["steps_s"])
    return {"n": n, "pairs": pairs, "wall_ratio_median": statistics.median(walls), "wall_ratios": walls,
            "steps_ratio_median": statistics.median(steps), "steps_ratios": steps,
            "ref_wall_median_s": statistics.median(per["ref"]), "this_wall_median_s": statistics.median(per["this"])}


def paired_startup(base: Path, times: int) -> dict:
    import run

    out = {}
    for cold in (True, False):
        res = {"ref": [], "this": []}
        for i in range(times):
            for name in (("ref", "this") if i % 2 == 0 else ("this", "ref")):
                res[name].append(run.startup_case(name, root=base if name == "ref" else None, cold=cold))
        # the ratio, and what it is made of: a faster model alone raises it (the same overhead over less)
        out["cold" if cold else "warm"] = {k: {"ratio": statistics.median(r["wall_over_model"] for r in v),
                                               "wall": statistics.median(r["wall_s"] for r in v),
                                               "outside": statistics.median(r["wall_s"] - r["model_s"] for r in v)}
                                           for k, v in res.items()}
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker(int(sys.argv[2]))
    from run import baseline_checkout, drop_checkout

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ref", help="the commit to compare with (e.g. the previous step's)")
    ap.add_argument("--agents", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--pairs", type=int, nargs="+", default=None,
                    help="pairs per size (default 40 below 50k agents, 16 below 1M, else 4)")
    ap.add_argument("--kernels", choices=("compiled", "numpy"), default="compiled",
                    help="the per-worker passes both sides run the models with (numpy: as a single run below "
                         "250,000 agents, such as `skillsim` with no arguments, runs them)")
    ap.add_argument("--startup", type=int, default=0, help="skillsim start-up runs per side, cold and warm")
    ap.add_argument("--fresh", action="store_true",
                    help="each model in a fresh process, construction timed too (as run.py's (a) and (d))")
    args = ap.parse_args()
    pairs = args.pairs or [40 if n < 50_000 else 16 if n < 1_000_000 else 4 for n in args.agents]
    base = baseline_checkout(args.ref)
    try:
        for n, k in zip(args.agents, pairs):
            if args.fresh:
                r = paired_fresh(base, n, k)
                print(f"{n:>9,} agents, {k} pairs of fresh processes: {args.ref} / this = "
                      f"{r['wall_ratio_median']:.3f}x wall (construction + steps; pairs "
                      f"{', '.join(f'{x:.2f}' for x in r['wall_ratios'])}), {r['steps_ratio_median']:.3f}x steps "
                      f"(pairs {', '.join(f'{x:.2f}' for x in r['steps_ratios'])}); wall {r['ref_wall_median_s']:.2f} s / "
                      f"{r['this_wall_median_s']:.2f} s (medians)", flush=True)
                continue
            r = paired_models(base, n, k, args.kernels)
            lo, hi = r["ratio_quartiles"]
            print(f"{n:>9,} agents, {k} pairs: {args.ref} / this = {r['ratio_median']:.3f}x (quartiles {lo:.3f}-{hi:.3f}); "
                  f"steps {r['ref_median_s']:.3f} s / {r['this_median_s']:.3f} s (medians); "
                  f"this: {r['this_ns_per_agent_step']:.1f} ns per agent-step", flush=True)
        if args.startup:
            for kind, r in paired_startup(base, args.startup).items():
                print(f"skillsim start-up, {kind} (medians of {args.startup}): wall / model {args.ref} "
                      f"{r['ref']['ratio']:.2f}x, this {r['this']['ratio']:.2f}x; wall {r['ref']['wall']:.3f} / "
                      f"{r['this']['wall']:.3f} s; outside the model {r['ref']['outside']:.3f} / "
                      f"{r['this']['outside']:.3f} s", flush=True)
    finally:
        drop_checkout(base)


if __name__ == "__main__":
    main()
