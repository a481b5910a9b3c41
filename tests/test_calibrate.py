"""Calibration: the pipeline end to end on a tiny budget, the hindcast's hold-out, the presets."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from sim import calibrate as cal
from sim.cli import compose_config
from sim.config import CALIBRATION_FILE, RunConfig
from sim.sources import target


@pytest.mark.slow  # a real (tiny) calibration, about 20 s
def test_calibration_improves_the_objective_on_a_tiny_budget(tmp_path):
    out = cal.run({"region": "national", "n_agents": 1500, "replicates": 2, "max_evals": 14, "cutoff": None,
                   "out": str(tmp_path), "write": "false", "seed": 5})
    info = json.loads((out / "calibration.json").read_text())
    assert info["evaluations"] >= 10
    assert info["objective"] < info["objective_start"]
    fit = (out / "fit.csv").read_text()
    for rid in ("nat_hs_2011", "nat_hs_2016", "nat_hs_2021", "nat_mix_2021_L3", "nat_cert_flow"):
        assert rid in fit
    assert (out / "wage_ladder.csv").exists()


def test_hindcast_fits_only_targets_up_to_the_cutoff():
    used = [m.id for m in cal.national_moments() if m.year <= 2016]
    assert used == ["nat_hs_2011", "nat_hs_2016"]
    seen = []
    original = cal.simulate

    def spy(cfg, moments, seeds):
        seen.append({m.id for m in moments})
        return np.tile([m.value for m in moments], (len(seeds), 1))

    cal.simulate = spy
    try:
        res = cal.calibrate(RunConfig(), n_agents=500, replicates=1, max_evals=3, cutoff=2016, log=lambda *_: None)
    finally:
        cal.simulate = original
    assert all(s == {"nat_hs_2011", "nat_hs_2016"} for s in seen), "held-out targets must not enter the fit"
    assert res.cutoff == 2016


def test_national_start_reproduces_the_2009_state():
    cfg = cal.national_start(compose_config(["region=national"]), 2000)
    assert cfg.region.observed == "2009-12"
    assert sum(cfg.region.skilled_mix[2:]) == pytest.approx(target("nat_hs_2009").number, abs=1e-9)
    skilled_2011 = cfg.region.population * (1 - cfg.region.uncertified_share) * (1 + cfg.region.growth_per_year) ** 2
    assert skilled_2011 == pytest.approx(target("nat_skilled_2011").number, rel=1e-5)  # growth kept to 5 decimals


def test_presets_use_the_calibrated_parameters():
    if not CALIBRATION_FILE.exists():
        pytest.skip("no calibration file")
    import yaml

    data = yaml.safe_load(CALIBRATION_FILE.read_text(encoding="utf-8"))
    prov = data["provenance"]
    for key in ("date", "targets", "objective", "seeds", "method"):
        assert key in prov
    for region in ("national", "chongqing"):
        cfg = compose_config([f"region={region}"])
        for name, value in data["behaviour"].items():
            assert getattr(cfg.behaviour, name) == value, (region, name)
        assert cfg.levers.studio.learning_multiplier == data["levers"]["studio"]["learning_multiplier"]
    assert dataclasses.asdict(RunConfig().behaviour) == dataclasses.asdict(compose_config([]).behaviour)
