"""EMA Workbench study speed: `sim.simulate` as the model function against the wrapper users wrote
before the API (compose the config with Hydra on every call, run, summarise).

    python benchmarks/ema_speed.py [--experiments 64] [--agents 5000]

Both studies run the same Latin hypercube (same EMA seed) on the sequential evaluator; the script
checks that they give the same outcomes and prints both wall times and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def old_wrapper(**kw):
    """The 13-line wrapper of the issue: dotted overrides to sim.cli.compose_config on every call."""
    from sim.cli import compose_config
    from sim.model import WorkforceModel
    from sim.results import summarise

    names = {"training_intensity": "levers.training.intensity", "studio_intensity": "levers.studio.intensity",
             "growth_per_year": "region.growth_per_year", "n_agents": "n_agents", "end_year": "horizon.end_year",
             "seed": "seed", "region": "region"}
    cfg = compose_config([f"{names.get(k, k)}={v}" for k, v in kw.items()])
    m = WorkforceModel(cfg).run()
    s = summarise(m.series(), cfg)
    return {"high_skill_share": s["at_end"]["high_skill_share"], "income_median": s["target_year_mean"]["income_median"],
            "spend_total": s["spend_cumulative"]["total"]}


def study(function, n: int, agents: int):
    import ema_workbench
    from ema_study import build_model
    from ema_workbench import SequentialEvaluator, perform_experiments

    model = build_model(agents)
    model = ema_workbench.Model("skillsim", function=function) if function is not None else model
    if function is not None:
        ref = build_model(agents)
        model.uncertainties, model.levers = ref.uncertainties, ref.levers
        model.constants, model.outcomes = ref.constants, ref.outcomes
    np.random.seed(7)
    t0 = time.perf_counter()
    with SequentialEvaluator(model) as ev:
        exp, out = perform_experiments(model, scenarios=n // 4, policies=4, evaluator=ev)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiments", type=int, default=64)
    ap.add_argument("--agents", type=int, default=5000)
    args = ap.parse_args()
    t_new, out_new = study(None, args.experiments, args.agents)
    t_old, out_old = study(old_wrapper, args.experiments, args.agents)
    same = all(np.array_equal(out_new[k], out_old[k]) for k in out_new)
    print(f"EMA study, {args.experiments} experiments x {args.agents:,} agents (Chongqing to 2030), sequential: "
          f"sim.simulate {t_new:.1f} s, compose-every-call wrapper {t_old:.1f} s: {t_old / t_new:.2f}x; "
          f"same outcomes: {same}")


if __name__ == "__main__":
    main()
