"""Forecast ensembles: the variance decomposition, CRPS, the folder, reruns, the backtest pipeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from sim.errors import BusyError, ConfigError, OutputError
from sim.studies import backtest, variance
from sim.studies.calibrate import FREE

from .conftest import SHORT_HISTORY


def test_variance_decomposition_recovers_known_components():
    """y = a_p + b_s + c_ps + e with known variances; estimates within their sampling error."""
    rng = np.random.default_rng(0)
    truth = {"parameters": 4.0, "structural": 1.0, "interaction": 0.5, "stochastic": 2.0}
    est = {k: [] for k in truth}
    for _ in range(60):
        p, s, r = 30, 20, 3
        y = (rng.normal(0, 2.0, (p, 1, 1)) + rng.normal(0, 1.0, (1, s, 1))
             + rng.normal(0, np.sqrt(0.5), (p, s, 1)) + rng.normal(0, np.sqrt(2.0), (p, s, r)))
        for k, v in variance.decompose(y).items():
            est[k].append(v)
    for k, v in truth.items():
        m, se = np.mean(est[k]), np.std(est[k], ddof=1) / np.sqrt(len(est[k]))
        assert abs(m - v) <= 4 * se + 0.02 * v, (k, m, v, se)


def test_variance_decomposition_of_pure_noise_has_no_parameter_share():
    y = np.random.default_rng(1).normal(0, 1, (20, 10, 4))
    sh = variance.shares(variance.decompose(y))
    assert sh["stochastic"] > 0.8
    assert abs(sum(sh.values()) - 1) < 1e-12


def test_crps_matches_the_normal_closed_form():
    """For a large normal sample the ensemble CRPS approaches Gneiting & Raftery's closed form."""
    rng = np.random.default_rng(2)
    sample = rng.normal(0.3, 0.02, 40000)
    for y in (0.3, 0.33, 0.25):
        z = (y - 0.3) / 0.02
        exact = 0.02 * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
        assert backtest.crps(sample, y) == pytest.approx(exact, rel=0.02, abs=1e-5)
    assert backtest.crps(np.array([0.29]), 0.30) == pytest.approx(0.01)  # a point forecast: the absolute error


def test_naive_forecasts():
    obs = {"2009-12": 0.247, "2011-12": 0.262, "2016-12": 0.290}
    last, trend = backtest.naive(obs, 2016, "2021-12")
    assert last == 0.290
    assert trend == pytest.approx(0.290 + (0.290 - 0.262))  # five years on, at the 2011-2016 pace


def _tiny_ensemble(path):
    lo = np.array([p.lo for p in FREE])
    hi = np.array([p.hi for p in FREE])
    u = np.random.default_rng(3).uniform(0.3, 0.7, (4, len(FREE)))
    df = pd.DataFrame(lo + u * (hi - lo), columns=[p.name for p in FREE])
    df["behaviour.leave_share"] = [0.12, 0.35, 0.2, 0.3]  # two of the assumptions without a source, drawn
    df["levers.training.wait_credit_months"] = [0.0, 24.0, 6.0, 12.0]
    df.insert(0, "member", range(4))
    df.to_csv(path, index=False)


def _forecast(out, ens, jobs):
    code = ("import sys; from pathlib import Path; import sim.studies.calibrate as c; "
            f"c.ENSEMBLE_FILE = Path({str(ens)!r}); from sim.studies.forecast import main; main(sys.argv[1:])")
    env = {**os.environ, "SKILLSIM_JOBS": str(jobs)}
    return subprocess.run([sys.executable, "-c", code, "n_agents=1500", "params=2", "structural=2", "replicates=2",
                           "horizon.end_year=2025", f"out={out}"], env=env, capture_output=True, text=True)


@pytest.mark.slow  # two small ensembles and two reports: about half a minute
def test_forecast_folder_is_complete_and_rerun_identical_with_any_number_of_processes(tmp_path):
    ens = tmp_path / "ens.csv"
    _tiny_ensemble(ens)
    a, b = _forecast(tmp_path / "a", ens, 1), _forecast(tmp_path / "b", ens, 2)
    assert a.returncode == 0, a.stderr
    assert b.returncode == 0, b.stderr
    for name in ("ensemble.csv", "runs.csv", "variance.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "COMPLETE").exists()
    e = pd.read_csv(tmp_path / "a" / "ensemble.csv")
    assert {"date", "metric", "n", "mean", "q05", "q25", "median", "q75", "q95"} <= set(e.columns)
    assert {"high_skill_share", "income_mean", "income_median"} <= set(e["metric"])
    last = e[(e["date"] == "2025-12") & (e["metric"] == "high_skill_share")].iloc[0]
    assert last["n"] == 8 and last["q05"] <= last["median"] <= last["q95"] and last["q05"] < last["q95"]
    runs = pd.read_csv(tmp_path / "a" / "runs.csv")
    assert runs["seed"].nunique() == 1 and runs["replicate"].nunique() == 8  # own seed per run
    from sim.streams import replicate_seed

    assert list(runs["run_seed"]) == [replicate_seed(s, r) for s, r in zip(runs["seed"], runs["replicate"])]
    assert runs["run_seed"].nunique() == 8  # the seed each run ran with, as a sweep's runs.csv gives it
    assert runs["structural:region.growth_per_year"].nunique() == 2
    # the values each member ran with, in the folder (runs.csv names them by their row of the ensemble file)
    members = pd.read_csv(tmp_path / "a" / "members.csv").set_index("member")
    source = pd.read_csv(ens).drop(columns="member")
    assert sorted(members.index) == sorted(runs["member"].unique())
    for m in members.index:
        assert np.allclose(members.loc[m, source.columns].to_numpy(float), source.iloc[m].to_numpy(float), rtol=1e-12)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text(encoding="utf-8"))
    # how each folder's runs ran: in the study's process, or on a pool of two workers, each run naming
    # the passes its model took there (the results above are the same bytes either way)
    ran_b = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))["execution"]
    assert manifest["execution"]["runs"] == ran_b["runs"] == 8 and ran_b["from_journal"] == 0
    assert manifest["execution"]["processes"] == [1] and ran_b["processes"] == [2]
    assert manifest["execution"]["SKILLSIM_JOBS"] == "1" and ran_b["SKILLSIM_JOBS"] == "2"
    assert len(manifest["execution"]["passes"]) == 1 and set(manifest["execution"]["passes"]) <= {"compiled", "numpy"}
    assert ran_b["passes"] == ["numpy" if os.environ.get("SKILLSIM_KERNELS") == "numpy" else "compiled"]
    from sim.results import sha256

    assert manifest["calibration_ensemble_sha256"] == sha256(ens)
    # the assumptions the members drew, which the report then says the bands carry
    assert manifest["drawn_assumptions"] == ["behaviour.leave_share", "levers.training.wait_credit_months"]
    v = pd.read_csv(tmp_path / "a" / "variance.csv")
    sh = v[(v["date"] == "2025-12") & (v["metric"] == "high_skill_share")]
    assert sh["share"].sum() == pytest.approx(1.0)
    verify = subprocess.run([sys.executable, "-m", "sim.verify", str(tmp_path / "a")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr

    from sim.report.pack import Options, make_report

    for lang in ("en", "zh"):
        written = make_report(tmp_path / "a", Options(lang=lang))
        assert written.out.name == ("report" if lang == "en" else "report_zh")
        assert all(not problems for problems in written.layout.values()), written.layout
        fan = pd.read_csv(written.out / "figures" / "fig1_high_skill_share.csv")
        drawn = fan[fan["kind"] == "forecast"].set_index("date")["q95"]
        source = e[e["metric"] == "high_skill_share"].set_index("date")["q95"]
        assert np.allclose(drawn.sort_index(), source.sort_index())  # the chart draws exactly the table
        assert (fan["setting"] == "forecast").all() and fan["label"].nunique() == 1
        assert fan["label"].iloc[0] == ("Chongqing, Baseline (current policy)" if lang == "en" else "重庆，基准情景（现行政策）")
        assert (fan.loc[fan["kind"] == "forecast", "n"] == 8).all()  # counts, written as such
        assert "12.0" not in (written.out / "figures" / "fig1_high_skill_share.csv").read_text(encoding="utf-8")
        config = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text(encoding="utf-8"))["region"]
        target = fan[fan["kind"] == "region_target"]  # the dashed line
        assert len(target) == 1 and target["value"].iloc[0] == config["high_skill_target"]
        assert target["date"].iloc[0] == f"{config['high_skill_target_year']}-12"
        dec = pd.read_csv(written.out / "figures" / "fig7_variance_decomposition.csv")
        drawn_dates = sorted(v.loc[v["metric"] == "high_skill_share", "date"].unique())[1:]  # the start state is not drawn
        assert sorted(dec["date"].unique()) == drawn_dates and (dec["setting"] == "forecast").all()
        assert (written.out / "report.md").read_text(encoding="utf-8").count("%") > 4
        assert ("2 numeric assumptions without a source" if lang == "en" else "2项无来源的数值假设") in \
            (written.out / "report.md").read_text(encoding="utf-8")
    # the target's star at its December, inside the axis (a line alone across a shorter horizon's axis
    # read as a target for every year: a user trial)
    import matplotlib.dates as mdates

    from sim.report import forecast as fc_report

    fig, _ = fc_report.fan(fc_report._load(tmp_path / "a"), "en")
    ax = fig.get_axes()[0]
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert len(stars) == 1 and stars[0].get_ydata()[0] == config["high_skill_target"]
    star_x = mdates.date2num(pd.Timestamp(stars[0].get_xdata()[0]))
    assert ax.get_xlim()[0] <= star_x <= ax.get_xlim()[1]


def test_a_forecast_report_names_the_setting_forecast_and_what_its_bands_carry():
    """A training-boost forecast without studios was reported as "Forecast: Chongqing", its fan chart titled
    with "all sources of uncertainty": it read as the status quo's, and overclaimed what its bands hold."""
    from pathlib import Path

    from sim.report.forecast import markdown, setting_text

    manifest = {"scenario": "training_boost", "runs": 8, "n_agents": 3000, "seed": 7, "git_commit": "abc",
                "overrides": ["region=chongqing", "scenario=training_boost", "levers.studio.intensity=0",
                              "n_agents=3000", "horizon.end_year=2030"],
                "options": {"params": 2, "structural": 2, "replicates": 2}}
    ens = pd.DataFrame({"date": ["2022-12", "2030-12"], "metric": ["high_skill_share"] * 2, "median": [0.314, 0.4],
                        "q05": [0.314, 0.3], "q95": [0.314, 0.5]})  # the start state first, as a forecast's
    var = pd.DataFrame({"date": ["2030-12"] * 2, "metric": ["high_skill_share"] * 2,
                        "component": ["parameters", "stochastic"], "share": [0.9, 0.1]})
    f = {"manifest": manifest, "config": {"region": {"name": "chongqing", "label_en": "Chongqing"}},
         "ensemble": ens, "variance": var, "path": Path("fc")}
    assert setting_text(f, "en") == "Training boost, levers.studio.intensity=0"
    md = markdown(f, "en", ["fig1_high_skill_share"])
    assert md.startswith("# Forecast: Chongqing, Training boost, levers.studio.intensity=0\n")
    assert "8 runs of 3,000 agents (2 parameter sets × 2 structural points × 2 replicates), seed 7" in md
    assert "They do not carry the model's own form" in md and "all sources" not in md
    assert "the assumptions held at one value" in md  # a forecast whose ensemble drew none of them
    from sim.config import ASSUMPTION_RANGES
    from sim.report.forecast import fan

    f["manifest"] = {**manifest, "drawn_assumptions": list(ASSUMPTION_RANGES)}  # the ensemble drew them all
    drawn = markdown(f, "en", ["fig1_high_skill_share"])
    assert "the 24 numeric assumptions without a source" in drawn and "the assumptions held at one value" not in drawn
    assert "24项无来源的数值假设" in markdown(f, "zh", ["fig1_high_skill_share"])
    f["manifest"]["held_assumptions"] = {"region.female_share": 0.45}  # a preset's own value: held, not drawn
    assert "Held at this forecast's setting, not drawn: `region.female_share=0.45`." in markdown(f, "en", [])
    f["manifest"]["held_assumptions"] = {}
    f["config"]["region"]["history"] = {"high_skill_share": {"2022-12": 0.314}}
    f["ensemble"] = ens.assign(q25=[0.314, 0.35], q75=[0.314, 0.45], n=[8, 8], mean=[0.314, 0.4])
    from matplotlib.text import Text

    note = " ".join(" ".join(t.get_text() for t in fan(f, "en")[0].findobj(Text)).split())  # as wrapped, unwrapped
    assert "fitted parameters and 24 assumptions without a source, drawn together" in note and "not carried" not in note
    f["manifest"] = manifest
    assert "not carried: the assumptions without a source" in " ".join(
        " ".join(t.get_text() for t in fan(f, "en")[0].findobj(Text)).split())
    assert "| 2030 | 40.0% | 30.0–50.0% |" in md and "| 2022 |" not in md  # the start state: no forecast's row
    f["manifest"] = {**manifest, "scenario": "baseline", "overrides": ["region=chongqing"]}
    assert setting_text(f, "en") == "Baseline (current policy)"
    # a user's region read with --config-dir: where the configs were is no setting (it was in every title)
    f["manifest"] = {**manifest, "scenario": "baseline",
                     "overrides": ["region=liuzhou", "hydra.searchpath=['file:///tmp/my_conf']"]}
    assert setting_text(f, "en") == "Baseline (current policy)"


def test_a_forecast_folder_that_cannot_be_written_fails_before_the_runs(tmp_path, monkeypatch, capsys):
    """One line, exit 4, and no run made (it once ran everything, then ended in a traceback)."""
    from sim.errors import EXIT_OUTPUT
    from sim.studies import forecast as forecast_module

    def no_runs(*args, **kwargs):
        raise AssertionError("the forecast ran")

    monkeypatch.setattr(forecast_module, "forecast", no_runs)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as info:
        forecast_module.main(["n_agents=1000", "horizon.end_year=2025", f"out={blocker / 'f'}"])
    err = capsys.readouterr().err
    assert info.value.code == EXIT_OUTPUT, err
    assert err == (f"skillsim-forecast: forecast folder {blocker / 'f'}: {blocker} is a file, not a folder; "
                   "choose another out=\n"), err
    assert "Traceback" not in err and blocker.read_text() == "not a folder"


@pytest.mark.slow  # about 15 s alone; the fast suite keeps under 3 minutes
def test_forecast_refuses_bad_options_in_one_line(tmp_path):
    for arg in ("replicates=1", "params=0", "params=x"):
        r = subprocess.run([sys.executable, "-m", "sim.studies.forecast", arg, f"out={tmp_path / 'x'}"],
                           capture_output=True, text=True)
        assert r.returncode == 2, (arg, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
        assert not (tmp_path / "x").exists()


def test_backtest_refuses_a_folder_that_holds_anything_before_calibrating(tmp_path, monkeypatch):
    """A second backtest into the same out= used to overwrite the first one's tables, file by file."""
    (tmp_path / "bt").mkdir()
    (tmp_path / "bt" / "backtest.csv").write_text("earlier\n", encoding="utf-8")
    monkeypatch.setattr(backtest.cal, "calibrate", lambda *a, **k: pytest.fail("calibrated before refusing"))
    with pytest.raises(OutputError, match="backtest folder .*bt already exists and is not empty"):
        backtest.run(["origins=2016", f"out={tmp_path / 'bt'}"])
    assert (tmp_path / "bt" / "backtest.csv").read_text(encoding="utf-8") == "earlier\n"


def test_backtest_checks_the_forecast_size_against_each_origins_own_config(tmp_path, monkeypatch):
    """A review: 120M forecast agents passed the check on today's preset and failed after origin 2011's
    calibration, whose faster growth needs more memory per agent."""
    monkeypatch.setattr(backtest.cal, "calibrate", lambda *a, **k: pytest.fail("calibrated before refusing"))
    with pytest.raises(ConfigError, match=r"^config error: forecast_agents = 120000000 is invalid"):
        backtest.run(["origins=2011", "forecast_agents=120000000", f"out={tmp_path / 'bt'}"])


@pytest.mark.parametrize("option", ["forecast_agents", "n_agents"])
def test_backtest_refuses_a_size_too_big_for_memory_before_calibrating(tmp_path, monkeypatch, option):
    """forecast_agents=200000000 was refused after the whole calibration, and as `n_agents` (a user
    trial): each size is checked first, under its own name, and nothing is written."""
    monkeypatch.setattr(backtest.cal, "calibrate", lambda *a, **k: pytest.fail("calibrated before refusing"))
    with pytest.raises(ConfigError, match=rf"^config error: {option} = 200000000 is invalid; allowed: at most about"):
        backtest.run(["origins=2016", f"{option}=200000000", f"out={tmp_path / 'bt'}"])
    assert not (tmp_path / "bt").exists()


@pytest.mark.parametrize("content,says", [(None, "No such file"), ("no markers\n", "with the markers")])
def test_backtest_checks_its_docs_file_before_calibrating(tmp_path, monkeypatch, content, says):
    """docs= naming a missing file, or one without the markers, was found after the whole backtest
    (minutes to hours), with its folder written."""
    from sim.errors import ConfigError

    docs = tmp_path / "notes.md"
    if content is not None:
        docs.write_text(content, encoding="utf-8")
    monkeypatch.setattr(backtest.cal, "calibrate", lambda *a, **k: pytest.fail("calibrated before refusing"))
    with pytest.raises(ConfigError, match=f"docs = '{docs}' is invalid; allowed: a Markdown file .*{says}"):
        backtest.run(["origins=2016", f"out={tmp_path / 'bt'}", f"docs={docs}"])
    assert not (tmp_path / "bt").exists()


def test_backtest_rewrites_only_the_table_between_the_markers_of_its_docs_file(tmp_path):
    docs = tmp_path / "model.md"
    docs.write_text(f"before\n{backtest.DOC_BEGIN}\nold table\n{backtest.DOC_END}\nafter\n", encoding="utf-8")
    table = pd.DataFrame([{"origin": 2016, "target": "nat_hs_2021", "observed": 0.3, "median": 0.29, "q25": 0.27,
                           "q75": 0.31, "q05": 0.23, "q95": 0.35, "error": -0.01, "in_50": True, "in_90": True,
                           "crps": 0.008, "naive_last": 0.29, "naive_trend": 0.318}])
    backtest.write_docs(docs, table)
    text = docs.read_text(encoding="utf-8")
    assert text.startswith(f"before\n{backtest.DOC_BEGIN}\n| origin") and text.endswith(f"{backtest.DOC_END}\nafter\n")
    assert "old table" not in text and "nat_hs_2021" in text and [p.name for p in tmp_path.iterdir()] == ["model.md"]
    # which run made it, under the table: a quick run's rows replaced the published ones without a word
    opts = backtest.parse(["origins=2016", "params=4", "structural=2", "forecast_agents=2000"])
    caption = backtest.made_by(["origins=2016", "params=4", f"docs={docs}"], opts, "2026-12-06T22:30:00")
    assert caption == ("*Made by `skillsim-backtest origins=2016 params=4` (2026-12-06): origins 2016; each a "
                       "calibration of 6,000 agents, then 4 parameter sets x 2 structural points x 2 replicates of "
                       "2,000 agents.*")
    backtest.write_docs(docs, table, caption)
    assert docs.read_text(encoding="utf-8").endswith(f" |\n\n{caption}\n{backtest.DOC_END}\nafter\n")


def test_more_parameter_sets_than_the_ensemble_holds_is_refused_before_any_run(tmp_path, monkeypatch, caplog):
    """params=100000 ran the 100 sets the ensemble holds, and labelled the figures with 100000."""
    from sim.errors import ConfigError
    from sim.studies import forecast as fc

    monkeypatch.setattr(fc, "run_batch", lambda *a, **k: pytest.fail("ran before refusing"))
    n = len(fc.uncertainty.load_ensemble())
    with pytest.raises(ConfigError, match=f"params = {n + 1} is invalid; allowed: at most {n}"):
        fc.run([f"params={n + 1}", "structural=2", "n_agents=300", f"out={tmp_path / 'f'}"])
    assert not (tmp_path / "f").exists()
    with pytest.raises(ConfigError, match="params = 7 is invalid; allowed: at most ensemble=6"):
        backtest.parse(["params=7", "ensemble=6"])
    for arg, least in (("draws=0", 1), ("forecast_replicates=1", 2)):  # it said "a larger integer"
        with pytest.raises(ConfigError, match=f"allowed: an integer >= {least}"):
            backtest.parse([arg])
    # as skillsim-forecast: one parameter set or structural point has no spread (it was accepted, and its
    # variance share read 0%); an origin given twice ran twice and counted twice in backtest.csv
    for arg in ("params=1", "structural=1"):
        with pytest.raises(ConfigError, match=r"allowed: an integer >= 2 \(one draw has no spread to measure\)$"):
            backtest.parse([arg])
    with pytest.raises(ConfigError, match="origins = '2016,2016' is invalid; allowed: each origin once"):
        backtest.parse(["origins=2016,2016"])
    # out= ran into the default folder (skillsim-forecast and -calibrate refuse it), and a key given twice
    # was taken at its last value without a word (a user trial)
    with pytest.raises(ConfigError, match=r"out = '' is invalid; allowed: a path \(leave out= out"):
        backtest.parse(["out="])
    import logging

    with caplog.at_level(logging.WARNING, logger="skillsim"):
        assert backtest.parse(["origins=2011", "origins=2016"])["origins"] == [2016]
        assert backtest.parse(["draws=x", "draws=3"])["draws"] == 3  # the dropped value is not checked
    assert "origins was given twice (2011, then 2016): origins=2016 is used, the last" in caplog.text


def test_report_on_a_backtest_folder_says_what_it_is(tmp_path):
    from sim.errors import DataError
    from sim.report.pack import make_report
    from sim.studies.forecast import write_folder

    folder = write_folder(tmp_path / "bt", {"backtest": pd.DataFrame({"a": [1]})}, {"kind": "backtest"},
                          what="backtest")
    with pytest.raises(DataError, match="skillsim-backtest folder, which has no report: its scores are in backtest.csv"):
        make_report(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["COMPLETE", "backtest.csv", "manifest.json"]


@pytest.mark.slow
def test_backtest_pipeline_on_a_tiny_budget(tmp_path):
    out = backtest.run(["origins=2016", "n_agents=500", "max_evals=4", "draws=8", "ensemble=6", "params=2",
                        "structural=2", "forecast_agents=1500", f"out={tmp_path}"])
    table = pd.read_csv(out / "backtest.csv")
    assert set(table["target"]) == {"nat_hs_2021", "nat_mix_2021_L3", "nat_mix_2021_L4", "nat_mix_2021_L5"}
    # a finished folder, as the other studies': every file listed and intact, the kind named
    from sim.verify import verify

    report = verify(out)
    assert report.problems == [] and report.files == 9
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "backtest" and "origin_2016/calibration.json" in manifest["files"]
    # what the origin ran: its cut history and growth range (an academic could not tell from the folder)
    import yaml

    origin = yaml.safe_load((out / "origin_2016" / "config.yaml").read_text(encoding="utf-8"))
    assert origin["region"]["observed"] == "2016-12" and origin["region"]["structural"]["region.growth_per_year"][0] == 0
    assert len(manifest["calibration_ensemble_sha256"]) == 64
    assert json.loads((out / "origin_2016" / "calibration.json").read_text(encoding="utf-8"))["evaluations"] >= 4
    row = table[table["target"] == "nat_hs_2021"].iloc[0]
    assert row["naive_last"] == pytest.approx(0.290) and row["observed"] == pytest.approx(0.300)
    assert row["q05"] <= row["median"] <= row["q95"] and row["crps"] >= 0
    # every score recomputed from the runs' values the folder keeps (origin_YEAR/scored.csv)
    scored = pd.read_csv(out / "origin_2016" / "scored.csv")
    for _, r in table.iterrows():
        sample = scored[scored["target"] == r["target"]]["value"].to_numpy()
        assert sample.size == r["n"] and backtest.crps(sample, r["observed"]) == pytest.approx(r["crps"], rel=1e-12)
        assert np.quantile(sample, 0.05) == pytest.approx(r["q05"], rel=1e-12)


def test_a_killed_studys_half_written_folder_goes_when_its_out_is_claimed_again(tmp_path):
    """A study killed while writing its folder (SIGKILL, a lost node) left `.OUT.partial-PID` beside its
    out= for good. The next study into the same out= takes over the dead study's claim and removes it;
    another folder's, or one whose claim a live process holds, stays."""
    import signal

    from sim import claims
    from sim.studies.options import check_writable, release_claims

    out = tmp_path / "f[1]"  # a name that is a glob pattern: only its own half-written folders go
    code = (f"import os, sys, time, pathlib; sys.path.insert(0, {str(Path(claims.__file__).parents[1])!r}); "
            f"from sim import claims; out = pathlib.Path({str(out)!r}); c = claims.claim(out); "
            "p = out.parent / f'.{out.name}.partial-{os.getpid()}'; p.mkdir(); (p / 'ensemble.csv').write_text('x'); "
            "print('writing', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    others = [tmp_path / ".f1.partial-1", tmp_path / ".g.partial-2"]
    for other in others:
        other.mkdir()
    with pytest.raises(BusyError):  # while the study lives, its out= is its own
        check_writable(out, "forecast")
    assert (tmp_path / f".{out.name}.partial-{child.pid}").is_dir()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert check_writable(out, "forecast") == out
    release_claims()
    assert not list(tmp_path.glob(".f?1?.partial-*")) and all(other.is_dir() for other in others)


KILLED_WRITER = ("import os, sys, time, pathlib; from sim import claims; out = pathlib.Path(sys.argv[1]); "
                 "c = claims.claim(out); p = out.parent / f'.{out.name}.partial-{os.getpid()}'; p.mkdir(); "
                 "(p / 'ensemble.csv').write_text('x'); print('writing', flush=True); time.sleep(60)")


def killed_writer(out: Path) -> Path:
    """A study or run writing `out` under its claim, killed (SIGKILL) while writing: its partial folder."""
    import signal

    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(out)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    partial = out.parent / f".{out.name}.partial-{child.pid}"
    assert partial.is_dir()
    return partial


def test_a_study_killed_under_a_default_name_leaves_nothing_once_another_study_starts_beside_it(tmp_path):
    """A study killed under a default name (a timestamp, never claimed again) left its `.NAME.partial-PID`
    for good ("delete it by hand"). The next study into the same parent removes it and says so; a partial
    folder whose claim a live process holds (whatever pid it names), names another host or another pid, or
    which has no claim, stays."""
    import logging

    from sim import claims
    from sim.studies.options import check_writable, release_claims

    import fcntl

    killed = killed_writer(tmp_path / "2026-01-01_00-00-00_forecast")
    dead_pid = int(killed.name.rsplit("-", 1)[1])
    # a live writer whose claim names a pid that is not running here (a container sharing the folder and the
    # host name, in a pid namespace of its own): the lock it holds is what says it is alive
    live = tmp_path / f".live.partial-{dead_pid}"
    (tmp_path / ".live.lock").write_text(json.dumps({"pid": dead_pid, "host": claims.HOST, "since": "x"}))
    held = os.open(tmp_path / ".live.lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    elsewhere = tmp_path / ".far.partial-1"
    (tmp_path / ".far.lock").write_text(json.dumps({"pid": 1, "host": claims.HOST + "-other-node", "since": "x"}))
    other_pid = tmp_path / f".b.partial-{dead_pid}"
    (tmp_path / ".b.lock").write_text(json.dumps({"pid": 2 ** 22 + 7, "host": claims.HOST, "since": "x"}))
    unclaimed = tmp_path / ".c.partial-3"
    for kept in (live, elsewhere, other_pid, unclaimed):
        kept.mkdir()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("skillsim").addHandler(handler)
    try:
        assert check_writable(tmp_path / "2026-01-01_00-05-00_forecast", "forecast").parent == tmp_path
    finally:
        logging.getLogger("skillsim").removeHandler(handler)
        release_claims()
        os.close(held)
    assert not killed.exists() and all(kept.is_dir() for kept in (live, elsewhere, other_pid, unclaimed))
    said = [r.getMessage() for r in records]
    assert len(said) == 1 and str(killed) in said[0] and "killed" in said[0], said


def test_a_run_killed_under_a_default_name_leaves_nothing_once_another_run_starts_beside_it(tmp_path):
    """The same for single runs: `skillsim` into a folder beside a killed run's partial removes it."""
    partial = killed_writer(tmp_path / "2026-01-01_00-00-00_chongqing_baseline_ab12cd")
    proc = subprocess.run([sys.executable, "-m", "sim", "n_agents=300", "horizon.end_year=2025", SHORT_HISTORY,
                           f"hydra.run.dir={tmp_path / 'next'}"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not partial.exists() and f"removed {partial}" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["next"]


def test_an_out_that_is_a_file_is_named_as_a_file(tmp_path):
    """out= naming an existing file was told "already exists and is not empty", as a folder would be."""
    from sim.studies.options import check_writable, release_claims

    (tmp_path / "o.txt").write_text("mine\n", encoding="utf-8")
    with pytest.raises(OutputError, match=r"forecast folder .*o\.txt is a file, not a folder; choose another out="):
        check_writable(tmp_path / "o.txt", "forecast")
    release_claims()
    # a folder below a file: the file is named, not "File exists" as making the folder said
    for unique in (False, True):  # a default name too: not "a thousand studies hold its default names"
        with pytest.raises(OutputError, match=r"forecast folder .*o\.txt/a/b: .*o\.txt is a file, not a folder; "):
            check_writable(tmp_path / "o.txt" / "a" / "b", "forecast", unique=unique)
        release_claims()
    assert (tmp_path / "o.txt").read_text(encoding="utf-8") == "mine\n"


def test_the_variance_figure_says_how_the_components_sum_compares_with_the_runs_variance():
    """The note said the components' sum was "close to" the variance across runs; a reader's forecast had
    it 1.02-1.19 times. The note now gives the range over the Decembers drawn (the first, the start
    state, is not drawn)."""
    from sim.report.forecast import decomposition

    rows = []
    for date, total, runs in (("2025-12", 1.0, 1.0), ("2026-12", 1.1, 1.0), ("2027-12", 2.4, 2.0)):
        for comp, share in (("parameters", 0.5), ("structural", 0.3), ("interaction", 0.1), ("stochastic", 0.1)):
            rows.append({"date": date, "metric": "high_skill_share", "component": comp, "variance": share * total,
                         "share": share, "total_variance": runs})
    f = {"variance": pd.DataFrame(rows), "config": {"region": {"name": "chongqing", "history": {}}},
         "manifest": {"scenario": "baseline", "overrides": []}}
    for lang, said in (("en", "1.10-1.20 times"), ("zh", "1.10-1.20倍")):
        fig, _ = decomposition(f, lang)
        text = " ".join(t.get_text().replace("\n", " ") for sub in fig.subfigs for t in sub.texts)
        assert said in text.replace(" ", "") if lang == "zh" else said in text, text


def test_the_variance_figures_axis_names_each_december_and_runs_from_the_first_to_the_last():
    """Its axis named the span of each year, so December points left an empty year on the left (its label
    over the y axis's 0) and an unnamed one on the right (a user trial). Each December drawn is now a tick
    named by its year, and the axis ends at the first and last of them."""
    import matplotlib.dates as mdates

    from sim.report.forecast import decomposition

    rows = [{"date": f"{y}-12", "metric": "high_skill_share", "component": comp, "variance": 0.25, "share": 0.25,
             "total_variance": 1.0}
            for y in range(2024, 2036) for comp in ("parameters", "structural", "interaction", "stochastic")]
    f = {"variance": pd.DataFrame(rows), "config": {"region": {"name": "chongqing", "history": {}}},
         "manifest": {"scenario": "baseline", "overrides": []}}
    fig, _ = decomposition(f, "en")
    ax = fig.subfigs[-1].axes[0] if fig.subfigs and fig.subfigs[-1].axes else fig.axes[0]
    fig.draw_without_rendering()
    ticks = [mdates.num2date(t) for t in ax.get_xticks()]
    assert [(t.year, t.month) for t in ticks] == [(y, 12) for y in range(2025, 2036)]  # 2024, the start, not drawn
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(y) for y in range(2025, 2036)]
    lo, hi = (mdates.num2date(v) for v in ax.get_xlim())
    assert (lo.year, lo.month, hi.year, hi.month) == (2025, 12, 2035, 12)
    assert ax.get_xlabel() == "December of each year"


def test_a_backtests_origin_folder_is_named_as_such_by_the_report(tmp_path):
    """`skillsim-report BT/origin_2016` said "runs.csv: missing column(s) job, status" (a user trial): an origin
    is part of its backtest, whose scores are in backtest.csv."""
    from sim.errors import DataError
    from sim.report.load import load

    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "backtest"}), encoding="utf-8")
    origin = tmp_path / "origin_2016"
    origin.mkdir()
    (origin / "runs.csv").write_text("run,cell,member\n0,0,0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"origin_2016 is one origin of the backtest in .*; give the backtest "
                                        r"\(skillsim-report .*\): its scores are in backtest\.csv"):
        load(origin)
