"""Calibration: the pipeline end to end on a tiny budget, the hindcast's hold-out, the presets."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pandas as pd
import pytest

from sim.studies import calibrate as cal
from sim.cli import compose_config
from sim.config import CALIBRATION_FILE, RunConfig
from sim.errors import ConfigError
from sim.sources import target


@pytest.mark.slow  # a real (tiny) calibration, about 20 s
def test_calibration_improves_the_objective_on_a_tiny_budget(tmp_path):
    out = cal.run({"region": "national", "n_agents": 1000, "replicates": 2, "max_evals": 12, "cutoff": None,
                   "out": str(tmp_path), "write": "false", "seed": 5, "draws": 12, "stages": 2, "ensemble": 6})
    info = json.loads((out / "calibration.json").read_text())
    assert info["evaluations"] >= 10
    assert info["objective"] < info["objective_start"]
    ens = pd.read_csv(out / "ensemble.csv")
    assert len(ens) == 6
    for p in cal.ENSEMBLE_DIMS:  # every member inside the bounds of each parameter and assumption it draws
        assert ((ens[p.name] >= p.lo - 1e-9) & (ens[p.name] <= p.hi + 1e-9)).all(), p.name
    ident = pd.read_csv(out / "identification.csv")
    assert set(ident["parameter"]) == {p.name for p in cal.ENSEMBLE_DIMS}
    assert (ident["width_ratio"] >= 0).all()
    # 2 waves of 12 simulated points; the chains' effective sample size is at least 1 and at most
    # their kept samples (8 chains x half of 4000 steps)
    assert info["ensemble"]["draws"] == 24 and info["ensemble"]["stages"] == 2
    assert 1.0 <= info["ensemble"]["effective_sample_size"] <= 8 * 2000
    predictive = pd.read_csv(out / "predictive.csv")  # every target against the members' simulations
    assert set(predictive["target"]) == {m.id for m in cal.national_moments()}
    assert (predictive["q05"] <= predictive["median"]).all() and (predictive["median"] <= predictive["q95"]).all()
    fit = (out / "fit.csv").read_text()
    for rid in ("nat_hs_2011", "nat_hs_2016", "nat_hs_2021", "nat_mix_2021_L3", "nat_cert_flow"):
        assert rid in fit
    table = pd.read_csv(out / "fit.csv")  # z's scale is in the folder (it was in neither it nor its manifest)
    np.testing.assert_allclose(table["z"], table["gap"] / table["sigma"], rtol=1e-12)
    assert table.set_index("target").loc["nat_hs_2021", "sigma"] == {m.id: m for m in cal.national_moments()}[
        "nat_hs_2021"].sigma
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
        res = cal.calibrate(compose_config(["region=national"]), n_agents=500, replicates=1, max_evals=3,
                            cutoff=2016, log=lambda *_: None)
    finally:
        cal.simulate = original
    assert all(s == {"nat_hs_2011", "nat_hs_2016"} for s in seen), "held-out targets must not enter the fit"
    assert res.cutoff == 2016


def test_national_history_starts_at_the_2009_state_and_passes_the_observed_stocks():
    from sim import WorkforceModel
    from sim.calendar import month_index
    from sim.demography import SizePath

    cfg = cal.national_history(compose_config(["region=national"]), 2000)
    assert not cfg.region.history.align  # the calibration fits free dynamics
    m = WorkforceModel(cfg)
    first = m.history_rows[0]
    assert m.history_dates[0] == "2009-12"
    assert first["high_skill_share"] == pytest.approx(target("nat_hs_2009").number, abs=1e-3)
    path = SizePath(cfg)
    u = cfg.region.uncertified_share
    assert path.persons(month_index("2011-12")) * (1 - u) == pytest.approx(target("nat_skilled_2011").number, rel=1e-9)
    assert path.persons(month_index("2021-12")) == pytest.approx(cfg.region.population, rel=1e-9)


def test_backtest_config_knows_nothing_after_the_cutoff():
    base = compose_config(["region=national"])
    for cutoff in (2011, 2016):
        c = cal.backtest_config(base, cutoff)
        assert c.region.observed == f"{cutoff}-12"
        h = c.region.history
        assert all(d <= f"{cutoff}-12" for d in [*h.high_skill_share, *h.level_share, *h.skilled_workers])
        lo, hi = c.region.structural["region.growth_per_year"]
        assert lo == 0.0 and lo <= c.region.growth_per_year <= hi
    # 2016: the last observed growth, 119M (2011) -> 165M (2016)
    assert cal.backtest_config(base, 2016).region.structural["region.growth_per_year"][1] == pytest.approx(
        (165 / 119) ** 0.2 - 1, abs=1e-4)


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


@pytest.mark.parametrize("args,code,says", [
    (["out=full"], 4, "calibration folder full already exists and is not empty"),  # it wrote among its files
    (["max_evals=0"], 2, "max_evals = 0 is invalid; allowed: an integer >= 1"),  # a "fit" of the start values
    (["out="], 2, "out = '' is invalid; allowed: a path"),  # fell back to the default folder
    (["n_agents=x"], 2, "n_agents = 'x' is invalid; allowed: an integer"),  # "a int"
    (["fit=missing.json", "out=c1"], 2, "fit = 'missing.json' is invalid"),  # and left an empty c1/
])
def test_calibrate_refuses_a_bad_option_or_a_used_folder_in_one_line_and_writes_nothing(
        tmp_path, monkeypatch, refused, args, code, says):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("mine\n")
    got, err = refused(cal.main, args)
    lines = err.strip().splitlines()
    assert got == code and len(lines) == 1 and says in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["mine.txt"]


def test_an_interrupted_calibration_leaves_no_folder_and_says_so(tmp_path, monkeypatch, refused):
    """Ctrl-C printed a traceback through scipy's optimiser and left an empty folder: exit 130, one
    line, nothing written (the files go into a hidden folder, removed)."""
    monkeypatch.chdir(tmp_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cal, "calibrate", interrupted)
    code, err = refused(cal.main, ["out=cut", "n_agents=500"])
    assert code == 130 and err.strip() == "skillsim-calibrate: interrupted; no calibration folder was written", err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_calibration_replaces_the_packages_only_when_asked(monkeypatch, tmp_path):
    """A trial with a tiny budget (max_evals=3) replaced sim/data/calibration.yaml, its ensemble and the
    parameter table of docs/model.md, and every later run forecast from it (29.1% for 2030 against 36.1%)
    without a word. Now write=true is needed, and refused with cutoff=."""
    args = cal.parse_args(["n_agents=400"])
    assert args["write"] == "false"
    with pytest.raises(ConfigError, match="write = 'auto' .*true or false"):
        cal.parse_args(["write=auto"])
    with pytest.raises(ConfigError, match="write = 'true' .*cutoff"):
        cal.parse_args(["write=true", "cutoff=2016"])
    written = []
    monkeypatch.setattr(cal, "write_calibration", lambda *a, **k: written.append("calibration"))
    monkeypatch.setattr(cal, "_write_text", lambda *a, **k: written.append("ensemble"))
    argv = ["n_agents=300", "replicates=1", "max_evals=2", "draws=8", "stages=1", "ensemble=4"]
    out = cal.run({**cal.parse_args(argv), "out": str(tmp_path / "fit"), "argv": argv})
    assert written == []
    # the folder says what ran and verifies (it had no manifest: skillsim-verify said "not a run folder")
    from sim.verify import verify

    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "calibration" and manifest["command"] == ["skillsim-calibrate", *argv]
    assert manifest["options"]["max_evals"] == 2 and len(manifest["package_calibration_before"]["calibration_sha256"]) == 64
    assert verify(out).problems == [] and "fit.csv" in manifest["files"]


def test_too_few_members_leave_identification_undetermined():
    """ensemble=4 labelled four parameters "well" identified that 100 members of the same chains put at
    "partly" or "weakly" (a user trial): from MIN_MEMBERS on the width is labelled, below it is not."""
    from sim.studies.posterior import MIN_MEMBERS, identification

    rng = np.random.default_rng(0)
    prior = rng.uniform(0, 1, (4000, 1))
    narrow = lambda n: rng.uniform(0.45, 0.55, (n, 1))  # noqa: E731 - a posterior a tenth of the prior's width
    few = identification(["a"], narrow(4), prior, ess=200.0)
    assert few["identified"].iloc[0] == f"undetermined (only 4 members; {MIN_MEMBERS} or more give a 90% width)"
    assert identification(["a"], narrow(MIN_MEMBERS), prior, ess=200.0)["identified"].iloc[0] == "well"
    assert identification(["a"], narrow(100), prior, ess=5.0)["identified"].iloc[0].startswith("undetermined (effective")


def test_a_fit_files_cutoff_is_the_runs_and_a_different_one_is_refused(tmp_path):
    """`fit=F cutoff=2011` ran on all the targets (F had none) and recorded cutoff 2011 in its manifest; a
    fit made with a cutoff, given without one, made a hindcast the options did not show (a user trial).
    A broken fit file is named with what is wrong with it (it said "(KeyError)")."""
    values = {p.name: (p.lo + p.hi) / 2 for p in cal.FREE}
    fit = {"values": values, "objective_start": 2.0, "objective": 1.0, "evaluations": 3, "seconds": 1.0,
           "seeds": [1], "n_agents": 500, "cutoff": None}
    whole, hind = tmp_path / "whole.json", tmp_path / "hind.json"
    whole.write_text(json.dumps(fit))
    hind.write_text(json.dumps({**fit, "cutoff": 2016}))
    with pytest.raises(ConfigError, match=r"cutoff = 2011 is invalid; allowed: no cutoff with fit=.*whole\.json "
                                          r"\(that fit was made with no cutoff, which sets"):
        cal.parse_args([f"fit={whole}", "cutoff=2011"])
    assert cal.parse_args([f"fit={hind}"])["cutoff"] == 2016  # what runs, as the manifest records it
    assert cal.parse_args([f"fit={hind}", "cutoff=2016"])["cutoff"] == 2016
    assert cal.parse_args([f"fit={whole}"])["cutoff"] is None
    with pytest.raises(ConfigError, match=r"write = 'true' is invalid; allowed: false with cutoff=2016 \(the "
                                          r"cutoff of fit=.*hind\.json\)"):  # a hindcast by its fit is no calibration
        cal.parse_args([f"fit={hind}", "write=true"])
    # a fit file's values are checked before the run: a cutoff written "2016" crashed it after the fit table,
    # seeds [] failed in the ensemble; chongqing's check reads no fit file
    for bad, says in (({"cutoff": "2016"}, "cutoff is '2016', not null, 2011 or 2016"),
                      ({"cutoff": True}, "cutoff is True"), ({"cutoff": 2021}, "cutoff is 2021"),
                      ({"seeds": []}, "seeds is [], not a list of integers"),
                      ({"n_agents": None}, "n_agents is None, not an integer >= 1")):
        odd = tmp_path / "odd.json"
        odd.write_text(json.dumps({**fit, **bad}))
        with pytest.raises(ConfigError, match=re.escape(f"with fitted values ({says}")):
            cal.parse_args([f"fit={odd}"])
    assert cal.parse_args(["region=chongqing", f"fit={odd}"])["cutoff"] is None
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({k: v for k, v in fit.items() if k != "seeds"}))
    with pytest.raises(ConfigError, match=r"allowed: an earlier calibration\.json with fitted values \(no 'seeds' in it\)"):
        cal.parse_args([f"fit={broken}"])
    with pytest.raises(ConfigError, match=r"\(No such file or directory\)"):
        cal.parse_args([f"fit={tmp_path / 'none.json'}"])


def test_the_log_warns_of_an_emulator_with_too_few_points_or_large_misses():
    """16 points for 27 coefficients printed R2 1.00 for every target, and errors of 4.5 likelihood sds in
    the new points passed without a word (a user trial)."""
    from sim.studies.posterior import emulator_warnings

    (few,) = emulator_warnings(16, 27, [], last=False)
    assert few.startswith("16 simulated points for the emulator's 27 coefficients")
    assert emulator_warnings(28, 27, [4.5, 1.2], last=False) == []  # the misses are judged after the last wave
    (miss,) = emulator_warnings(64, 27, [4.5, 1.2], last=True)
    assert "errors in the last wave's new points reach 4.5 likelihood sds (root mean square" in miss
    assert emulator_warnings(64, 27, [1.5, 1.2], last=True) == []


def test_the_ensemble_draws_every_assumption_without_a_source_and_runs_with_it():
    """The forecast's bands held the 24 numeric assumptions without a source at their values, and some move
    Chongqing's 2035 share by several points (docs/model.md section 11). The ensemble now draws them with the
    fitted parameters: a member's values reach its config (whole-number settings rounded, as the ensemble
    file says them), an ensemble written before they were drawn leaves them at their values, and the
    shipped ensemble draws each one over its documented range."""
    from sim.config import ASSUMPTION_RANGES, value_at

    assert [u.name for u in cal.UNSOURCED] == list(ASSUMPTION_RANGES)
    base = compose_config(["region=chongqing"])
    values = {u.name: u.lo + 0.3 * (u.hi - u.lo) for u in cal.UNSOURCED}  # 7.2 months of credited waiting, ...
    fitted = {p.name: p.get(base) for p in cal.FREE}
    member = pd.DataFrame([{**fitted, **values}])
    (drawn,) = cal.ensemble_configs(base, member)
    for u in cal.UNSOURCED:
        got, want = value_at(drawn, u.name), values[u.name]
        assert (got == round(want)) if isinstance(value_at(base, u.name), int) else got == pytest.approx(want), u.name
    assert value_at(drawn, "levers.training.wait_credit_months") == 7
    rounded = cal.as_applied(member[[p.name for p in cal.ENSEMBLE_DIMS]].to_numpy(), cal.ENSEMBLE_DIMS)
    j = [p.name for p in cal.ENSEMBLE_DIMS].index("levers.studio.term_months")
    assert rounded[0, j] == round(values["levers.studio.term_months"]) == value_at(drawn, "levers.studio.term_months")
    (older,) = cal.ensemble_configs(base, pd.DataFrame([fitted]))  # the fitted parameters only
    assert all(value_at(older, u.name) == value_at(base, u.name) for u in cal.UNSOURCED)
    assert older.behaviour == dataclasses.replace(drawn.behaviour, **{
        u.name.split(".")[1]: value_at(base, u.name) for u in cal.UNSOURCED if u.name.startswith("behaviour.")})
    # a value the config sets away from the assumed one (a user's preset with a sourced value, or key=value)
    # is held, not drawn: the draws replaced it without a word (a review)
    own = dataclasses.replace(base, region=dataclasses.replace(base.region, female_share=0.45))
    assert cal.held_assumptions(own) == {"region.female_share": 0.45}
    (kept,) = cal.ensemble_configs(own, member)
    assert kept.region.female_share == 0.45 and kept.region.age_sd == pytest.approx(values["region.age_sd"])
    from sim.errors import ConfigError as Refused
    from sim.studies.uncertainty import draw_given

    given = compose_config(["region=chongqing", "levers.competition.events_per_year=4"])
    with pytest.raises(Refused, match=r"levers\.competition\.events_per_year = 4 is invalid; allowed: a value other "
                                      r"than its assumed 4: the calibration ensemble draws it"):
        draw_given(given, ["levers.competition.events_per_year=4"], 3)  # its assumed value: drawn, so not "held"
    held = compose_config(["region=chongqing", "levers.competition.events_per_year=6"])
    assert draw_given(held, ["levers.competition.events_per_year=6"], 3).levers.competition.events_per_year == 6
    shipped = pd.read_csv(cal.ENSEMBLE_FILE)
    for u in cal.UNSOURCED:  # inside the range, and spread over a good part of it
        col = shipped[u.name]
        assert col.between(u.lo, u.hi).all() and col.quantile(0.95) - col.quantile(0.05) > 0.2 * (u.hi - u.lo), u.name


def test_the_emulator_reads_a_whole_number_assumption_as_its_runs_take_it():
    """Every logit below -3.85 runs 0 credited months, and a quadratic in the logit made that one value look
    as varied as the rest (29 of 100 members sat at 0 against about 6 under the prior, a review). The
    emulator now reads the value the runs take, on its range scaled to [0, 1]; other coordinates as they are."""
    dims = cal.ENSEMBLE_DIMS
    j = [p.name for p in dims].index("levers.training.wait_credit_months")
    k = [p.name for p in dims].index("behaviour.leave_share")
    theta = np.zeros((4, len(dims)))
    theta[:, j] = [-8.0, -5.0, -3.9, 0.0]  # 0, 0, 0 and 12 months as run
    theta[:, k] = [-1.0, 0.0, 1.0, 2.0]
    seen = cal.as_emulated(theta, dims)
    assert list(seen[:, j]) == [0.0, 0.0, 0.0, 0.5] and list(seen[:, k]) == [-1.0, 0.0, 1.0, 2.0]
    ran = cal.as_applied(cal.bounded_rows(theta, dims), dims)[:, j]
    assert list(ran) == [0.0, 0.0, 0.0, 12.0]  # the same values the ensemble file and the runs take
    assert np.array_equal(seen[:, : len(cal.FREE)], theta[:, : len(cal.FREE)])
