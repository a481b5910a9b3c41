"""Sweeps that opt into parameter and structural uncertainty with `draw`."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from sim.cli import compose_config
from sim.studies.uncertainty import draw_config, load_ensemble


def test_a_draw_sets_a_member_and_a_structural_point_the_same_way_every_time():
    base = compose_config(["n_agents=2000"])
    a, b, c = draw_config(base, 3), draw_config(base, 3), draw_config(base, 4)
    assert a == b
    assert a != c
    lo, hi = base.region.structural["region.growth_per_year"]
    assert lo <= a.region.growth_per_year <= hi and a.region.growth_per_year != c.region.growth_per_year
    assert compose_config(["n_agents=2000", "draw=3"]) == dataclasses_replace_draw(a, 3)
    assert len(load_ensemble()) >= 10


def dataclasses_replace_draw(cfg, k):
    import dataclasses

    return dataclasses.replace(cfg, draw=k)


@pytest.mark.slow
def test_a_sweep_over_draws_pairs_effects_on_draw_and_replicate(tmp_path):
    d = tmp_path / "sweep"
    r = subprocess.run([sys.executable, "-m", "sim", "-m", "scenario=baseline,training_boost", "draw=0,1,2",
                        "n_agents=1500", "horizon.end_year=2024", "hydra/launcher=basic", f"hydra.sweep.dir={d}"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    eff = pd.read_csv(d / "effects.csv")
    boost = eff[eff["scenario"] == "training_boost"].iloc[0]
    assert boost["n_pairs"] == 3  # paired on the draw
    runs = pd.read_csv(d / "runs.csv")
    assert set(runs["draw"]) == {0, 1, 2}
    growth = {}
    for job in runs["job"]:
        s = json.loads((d / job / "summary.json").read_text())
        growth.setdefault(s["config"]["draw"], set()).add(s["config"]["region"]["growth_per_year"])
    assert all(len(v) == 1 for v in growth.values())  # both scenarios of a draw share its inputs
    assert len({next(iter(v)) for v in growth.values()}) == 3
    ens = pd.read_csv(d / "ensemble.csv")
    assert (ens[ens["metric"] == "high_skill_share"]["n"] == 3).all()  # bands pool the draws
