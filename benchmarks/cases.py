"""One benchmark case, run in a fresh process: `python benchmarks/cases.py '<json spec>'`.

`benchmarks/run.py` starts one process per case so that each case's peak resident memory is its own
(`ru_maxrss` of this process). The spec names the case:

    {"kind": "model" | "naive" | "profile", "n": agents, "start_year": 2025, "end_year": 2035,
     "seed": int or null, "replicate": int, "phases": bool, "firms_seed": int or null,
     "warm": bool, "top": int, "pstats": path or null}

`warm`: before the timed model, run a one-year model of 2,000 agents in the same process, so that the
timed steps do not include loading the compiled passes and numpy's first calls (a process that runs
many models pays those once: sweeps, calibration, the plan and the explorer). `runs`: k models of
replicates r, r+1, ... in the process (the spec's replicate is the last, with the phase timers); the
steps time reported is their median, each run's in `runs_steps_s` (one run of a small model varies
by a third from one process to the next on a shared machine).

- model: build `sim.model.WorkforceModel` (timed), step it to the end of the horizon (timed), with
  light timers around the step phases (a few microseconds per step in total).
- naive: the same for `benchmarks/naive_mesa.NaiveWorkforceModel`.
- profile: a model run under cProfile (slower than a plain run); returns the top functions.

The result is printed as one line `BENCH_RESULT <json>` on stdout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK = "BENCH_RESULT "


def rss_now_mb() -> float:
    """Current resident set size (VmRSS), MB (10^6 bytes)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def make_config(spec: dict):
    from sim.config import HorizonParams, RunConfig

    cfg = RunConfig(n_agents=int(spec["n"]),
                    horizon=HorizonParams(start_year=spec.get("start_year", 2025), end_year=spec.get("end_year", 2035)))
    if not spec.get("history", False):  # the monthly rules only, cold start (as the naive reference)
        cfg = dataclasses.replace(cfg, region=dataclasses.replace(
            cfg.region, history=dataclasses.replace(cfg.region.history, origin="2100-12")))
    if spec.get("seed") is not None:
        cfg = dataclasses.replace(cfg, seed=int(spec["seed"]))
    if spec.get("replicate"):
        cfg = dataclasses.replace(cfg, replicate=int(spec["replicate"]))
    return cfg


class PhaseTimer:
    """Accumulates wall time and call counts of wrapped callables.

    `phases` are the top-level parts of a step (their sum is close to the step time); `details` are
    calls nested inside phases (reported separately, never added to the phases).
    """

    def __init__(self):
        self.time = defaultdict(float)
        self.calls = defaultdict(int)

    def wrap(self, name: str, fn):
        clock = time.perf_counter
        acc_t, acc_n = self.time, self.calls

        def timed(*args, **kwargs):
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                acc_t[name] += clock() - t0
                acc_n[name] += 1

        timed.__wrapped__ = fn
        return timed

    def report(self, names) -> dict:
        return {k: {"s": round(self.time[k], 6), "calls": self.calls[k]} for k in names if k in self.time}


PHASES = ("_reset_month", "_demography", "_learn", "_certify", "_appoint", "_collect")
# Module-level kernels looked up at call time in sim.model's namespace (nested inside phases).
MODEL_KERNELS = ("retirements", "separations", "fill_entrants", "refresh", "measure")


def instrument(model, timer: PhaseTimer) -> tuple[list[str], list[str], callable]:
    """Wrap the model's step phases (instance attributes shadow the class methods) and nested kernels.

    Defensive: only what exists is wrapped, so a renamed phase simply shows up as unattributed time.
    Returns (phase names, detail names, undo).
    """
    import sim.model as sm

    phases, details, undo = [], [], []
    for name in PHASES:
        if callable(getattr(model, name, None)):
            setattr(model, name, timer.wrap(name, getattr(model, name)))
            phases.append(name)
            undo.append(lambda n=name: model.__dict__.pop(n, None))
    for lever in getattr(model, "levers", []):
        key = f"lever.{getattr(lever, 'name', type(lever).__name__)}"
        lever.apply = timer.wrap(key, lever.apply)
        phases.append(key)
        undo.append(lambda lv=lever: lv.__dict__.pop("apply", None))
    for name in MODEL_KERNELS:
        fn = getattr(sm, name, None)
        if callable(fn):
            setattr(sm, name, timer.wrap(name, fn))
            details.append(name)
            undo.append(lambda n=name, f=fn: setattr(sm, n, f))
    for owner, attr, key in ((model, "promote", "model.promote"), (model, "pay_bonus", "model.pay_bonus"),
                             (getattr(model, "workforce", None), "replace", "workforce.replace"),
                             (getattr(model, "streams", None), "get", "streams.get"),
                             (getattr(model, "datacollector", None), "collect", "datacollector.collect")):
        if owner is not None and callable(getattr(owner, attr, None)):
            setattr(owner, attr, timer.wrap(key, getattr(owner, attr)))
            details.append(key)
            undo.append(lambda o=owner, a=attr: o.__dict__.pop(a, None))

    def restore():
        for u in reversed(undo):
            u()

    return phases, details, restore


def share_firms(run_seed: int) -> None:
    """Draw the firms from another run's firm stream (agreement check: isolates agent sampling).

    The firm population (sizes, premia, levy rates) is drawn from the run seed and does not depend on
    the number of agents, so runs with the same firms differ only in agent-level randomness.
    """
    import sim.model as sm
    from sim.streams import RandomStreams

    original = sm.make_firms
    sm.make_firms = lambda cfg, rng: original(cfg, RandomStreams(run_seed).get("firms", 0))


def december_series(dates, hs, inc) -> dict:
    """High-skill share and mean income at each December after the start (the initial state excluded)."""
    out = {}
    for i, (d, h, y) in enumerate(zip(dates, hs, inc)):
        if i > 0 and str(d).endswith("-12"):
            out[str(d)] = {"high_skill_share": float(h), "income_mean": float(y)}
    return out


def run_model(spec: dict) -> dict:
    import numpy as np
    from sim.model import WorkforceModel

    rss_import = rss_now_mb()
    cfg = make_config(spec)
    if spec.get("firms_seed") is not None:
        share_firms(int(spec["firms_seed"]))
    warmup_s = None
    if spec.get("warm"):  # a process that has run a model before, as a sweep worker, calibration or the explorer
        w0 = time.perf_counter()
        WorkforceModel(make_config({**spec, "n": 2000, "end_year": spec.get("start_year", 2025)})).run()
        warmup_s = time.perf_counter() - w0
    earlier = []  # (wall, cpu) of the steps of each earlier run
    for r in range(1, int(spec.get("runs", 1))):  # warm runs of other replicates first; the last is timed in full
        m = WorkforceModel(dataclasses.replace(cfg, replicate=cfg.replicate + r))
        s, c = time.perf_counter(), time.process_time()
        while not m.done:
            m.step()
        earlier.append((time.perf_counter() - s, time.process_time() - c))
        del m  # one model resident at a time: the peak memory is that of one run
    t0 = time.perf_counter()
    model = WorkforceModel(cfg)
    t_build = time.perf_counter() - t0
    rss_built = rss_now_mb()
    timer = PhaseTimer()
    phases, details, restore = instrument(model, timer) if spec.get("phases", True) else ([], [], lambda: None)
    step_times = []
    clock = time.perf_counter
    c1 = time.process_time()
    t1 = clock()
    while not model.done:
        s = clock()
        model.step()
        step_times.append(clock() - s)
    t_steps = clock() - t1
    cpu_steps = time.process_time() - c1
    restore()
    df = model.series()
    months = len(step_times)
    st = np.asarray(step_times)
    res = {
        "kind": "model", "n": cfg.n_agents, "months": months, "weight": cfg.weight,
        "seed": model.run_seed, "final_workers_agents": int(model.workforce.n),
        "build_s": t_build, "steps_s": t_steps, "wall_s": t_build + t_steps, "steps_cpu_s": cpu_steps,
        "agent_steps": cfg.n_agents * months,
        "agent_steps_per_s": cfg.n_agents * months / t_steps,
        "step_ms": {"mean": 1e3 * st.mean(), "median": 1e3 * float(np.median(st)), "max": 1e3 * st.max(),
                    "min": 1e3 * st.min()},
        "rss_after_import_mb": rss_import, "rss_after_build_mb": rss_built, "peak_rss_mb": peak_rss_mb(),
        "workforce_bytes": int(model.workforce.nbytes()) if hasattr(model.workforce, "nbytes") else None,
        "phases": timer.report(phases), "details": timer.report(details),
        "series": december_series(df["date"], df["high_skill_share"], df["income_mean"]),
        "warm": bool(spec.get("warm")), "warmup_s": warmup_s,
    }
    res["phases_unattributed_s"] = t_steps - sum(v["s"] for v in res["phases"].values())
    if earlier:  # the steady cost of a process that runs many models: its median run (by wall time)
        runs = earlier + [(t_steps, cpu_steps)]
        res["runs_steps_s"] = [w for w, _ in runs]
        res["last_run_steps_s"] = t_steps  # the run with the phase timers, whose step times are reported
        res["steps_s"], res["steps_cpu_s"] = sorted(runs)[len(runs) // 2]
        res["agent_steps_per_s"] = cfg.n_agents * months / res["steps_s"]
    return res


def run_naive(spec: dict) -> dict:
    sys.path.insert(0, str(HERE))
    from naive_mesa import NaiveWorkforceModel

    rss_import = rss_now_mb()
    cfg = make_config(spec)
    t0 = time.perf_counter()
    model = NaiveWorkforceModel(cfg, seed=int(spec.get("seed") or 1))
    t_build = time.perf_counter() - t0
    c1 = time.process_time()
    t1 = time.perf_counter()
    model.run()
    t_steps = time.perf_counter() - t1
    cpu_steps = time.process_time() - c1
    df = model.datacollector.get_model_vars_dataframe().reset_index(drop=True)
    from sim.calendar import label
    dates = [label(model.start_month - 1 + i) for i in range(len(df))]
    months = model.steps
    return {
        "kind": "naive", "n": cfg.n_agents, "months": months, "weight": cfg.weight,
        "build_s": t_build, "steps_s": t_steps, "wall_s": t_build + t_steps, "steps_cpu_s": cpu_steps,
        "agent_steps": cfg.n_agents * months, "agent_steps_per_s": cfg.n_agents * months / t_steps,
        "rss_after_import_mb": rss_import, "peak_rss_mb": peak_rss_mb(),
        "promotions": dict(model.promotions), "final_agents": len(model.agents),
        "series": december_series(dates, df["high_skill_share"], df["income_mean"]),
    }


def run_profile(spec: dict) -> dict:
    import cProfile
    import pstats

    from sim.model import WorkforceModel

    cfg = make_config(spec)
    model = WorkforceModel(cfg)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    model.run()
    prof.disable()
    t_steps = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    if spec.get("pstats"):
        Path(spec["pstats"]).parent.mkdir(parents=True, exist_ok=True)
        stats.dump_stats(spec["pstats"])
    rows = []
    for (file, line, func), (cc, nc, tt, ct, _callers) in stats.stats.items():
        where = f"{Path(file).name}:{line}" if line else file
        rows.append({"function": f"{func} ({where})", "ncalls": nc, "tottime_s": tt, "cumtime_s": ct})
    top = int(spec.get("top", 30))
    by_tot = sorted(rows, key=lambda r: -r["tottime_s"])[:top]
    by_cum = sorted(rows, key=lambda r: -r["cumtime_s"])[:top]
    return {"kind": "profile", "n": cfg.n_agents, "months": model.steps, "steps_s_under_profiler": t_steps,
            "top_tottime": by_tot, "top_cumtime": by_cum, "pstats": spec.get("pstats")}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    kind = spec["kind"]
    fn = {"model": run_model, "naive": run_naive, "profile": run_profile}[kind]
    res = fn(spec)
    res["spec"] = spec
    res["pid"] = os.getpid()
    sys.stdout.write(MARK + json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
