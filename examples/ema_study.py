"""EMA Workbench study: Latin hypercube over behavioural uncertainties x lever policies, then PRIM on
"misses 35% by 2030". `python examples/ema_study.py [--scenarios 64] [--policies 4] [--agents 5000]`.

`sim.simulate` is the model function itself: EMA calls it with one keyword per uncertainty and lever
(dotted config keys or sim.api.PARAMETERS names) and reads the outcomes it returns by name. Needs the
`experiments` extra (`pip install -e ".[experiments]"`: ema_workbench 2.5, the newest for Python 3.11).
"""

from __future__ import annotations

import argparse


def build_model(n_agents: int = 5000, end_year: int = 2030):
    from ema_workbench import Constant, Model, RealParameter, ScalarOutcome

    from sim import simulate

    model = Model("skillsim", function=simulate)
    model.uncertainties = [
        RealParameter("behaviour.aptitude_sd", 0.2, 0.6),  # spread of learning speed
        RealParameter("growth_per_year", -0.012, 0.039),  # Chongqing's structural range (region preset)
    ]
    model.levers = [
        RealParameter("training_intensity", 0.0, 3.0),
        RealParameter("studio_intensity", 0.0, 3.0),
    ]
    model.constants = [Constant("region", "chongqing"), Constant("n_agents", n_agents),
                       Constant("end_year", end_year), Constant("seed", 1)]
    model.outcomes = [ScalarOutcome("high_skill_share"), ScalarOutcome("income_median"),
                      ScalarOutcome("spend_total")]
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", type=int, default=64)
    ap.add_argument("--policies", type=int, default=4)
    ap.add_argument("--agents", type=int, default=5000)
    args = ap.parse_args()
    from ema_workbench import SequentialEvaluator, perform_experiments
    from ema_workbench.analysis import prim

    model = build_model(args.agents)
    with SequentialEvaluator(model) as evaluator:
        experiments, outcomes = perform_experiments(model, scenarios=args.scenarios, policies=args.policies,
                                                    evaluator=evaluator)
    misses = outcomes["high_skill_share"] < 0.35
    print(f"{misses.sum()} of {misses.size} experiments miss 35% by 2030")
    x = experiments[["behaviour.aptitude_sd", "growth_per_year", "training_intensity", "studio_intensity"]]
    box = prim.Prim(x, misses, threshold=0.6).find_box()
    box.inspect()  # prints the box itself (it returns None)


if __name__ == "__main__":
    main()
