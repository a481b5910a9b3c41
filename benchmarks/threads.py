"""Each threaded compiled pass on one thread against two, in one run: `python benchmarks/threads.py [AGENTS] [MONTHS]`.

The passes that split the workers over threads (`sim.kernels.threads`, from PARTS_FROM workers) give the
same bytes on any number of threads, so one run can switch between one and two every two months and
both counts see the same workforce, a few months apart. Prints each pass's median time a call on one
and on two threads, and a month's. Default: 5.7 million agents, 48 months (about a minute on 2 cores).

Run it on an otherwise idle machine: with other processes on the cores, two threads lose to one (the
thirtieth step of benchmarks/README.md read eligibility at 8.7 against 5.3 ms while two compilations
ran, and 5.37 against 5.72 ms on the idle machine).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import sys
import time

os.environ.setdefault("SKILLSIM_KERNELS", "compiled")
os.environ.setdefault("SKILLSIM_HISTORY_DISK_MB", "0")

import numpy as np  # noqa: E402

#: the compiled passes that take a thread count (directly or through the workforce's `threads`)
THREADED = ("learn", "eligible_odds", "depart", "income_quantiles", "promote", "studio_roster", "enter")


def main(argv: list[str]) -> int:
    from sim import kernels
    from sim.config import HorizonParams, RunConfig
    from sim.model import WorkforceModel

    n = int(argv[0]) if argv else 5_700_000
    months = int(argv[1]) if len(argv) > 1 else 48
    cfg = RunConfig(n_agents=n, horizon=HorizonParams(start_year=2025, end_year=2025 + max(1, months // 12) - 1))
    cfg = dataclasses.replace(cfg, region=dataclasses.replace(  # the monthly rules only, as run.py's cases
        cfg.region, history=dataclasses.replace(cfg.region.history, origin="2100-12")))
    model = WorkforceModel(cfg)
    kernels.warm()  # every pass loaded first: the first months would pay it on one thread
    current = [2]
    kernels.threads = lambda: current[0]  # the workforce asks for it at every call
    times: dict[tuple[str, int], list[float]] = collections.defaultdict(list)
    for name in THREADED:
        original = getattr(kernels, name)

        def timed(*args, _f=original, _name=name, **kw):
            t0 = time.perf_counter()
            try:
                return _f(*args, **kw)
            finally:
                times[(_name, current[0])].append(time.perf_counter() - t0)
        setattr(kernels, name, timed)
    month: dict[int, list[float]] = collections.defaultdict(list)
    for i in range(months):
        current[0] = 1 + (i // 2) % 2  # two months on one thread, two on two, ...
        t0 = time.perf_counter()
        model.step()
        month[current[0]].append(time.perf_counter() - t0)
    print(f"{n:,} agents, {months} months, threads switched every two months (median ms a call)")
    print(f"{'pass':18s} {'1 thread':>9s} {'2 threads':>10s}  calls")
    for name in THREADED:
        one, two = times.get((name, 1)), times.get((name, 2))
        if one and two:
            print(f"{name:18s} {1000 * np.median(one):9.2f} {1000 * np.median(two):10.2f}  {len(one)}/{len(two)}")
    print(f"{'a month':18s} {1000 * np.median(month[1]):9.1f} {1000 * np.median(month[2]):10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
