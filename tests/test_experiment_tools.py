"""Experiment tools users already have, driven for real: Hydra's Optuna sweeper (through the sweep
job's objective, sim.objective), EMA Workbench (sim.simulate as its model function), and the
objective's arithmetic on known series."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from sim import simulate
from sim.errors import ConfigError
from sim.objective import ObjectiveParams, failed, values
from sim.sweep import count_jobs, is_grid

ROOT = Path(__file__).resolve().parents[1]


def series_of(shares, spend_per_month):
    dates = ["2022-12"] + [f"{2023 + i // 12}-{i % 12 + 1:02d}" for i in range(len(shares) - 1)]
    n = len(shares)
    return pd.DataFrame({"date": dates, "high_skill_share": shares, "spend_total": [spend_per_month] * n,
                         "spend_training_government": [spend_per_month / 2] * n,
                         "spend_training_employer": [spend_per_month / 2] * n})


@pytest.mark.parametrize("metric", ["high_skill_share", "spend_total"])
def test_the_objectives_terms_give_its_value_again(metric):
    """runs.csv's objective_metric - cost_weight x objective_spend_bn - penalty x objective_shortfall is the
    objective: a spend_* metric is summed over the months there too (it took December's alone)."""
    from sim.objective import terms

    s = series_of([0.30] + [0.31] * 11 + [0.33], 2e8)  # the start state, then the 12 months of 2023
    p = ObjectiveParams(metric=metric, cost_weight=0.5, target=3e9 if metric == "spend_total" else 0.35, penalty=3)
    v, cost, short = terms(s, p, 2023)
    assert cost == pytest.approx(2.4)  # twelve months of 2e8 yuan, in billions
    assert v == pytest.approx(2.4e9 if metric == "spend_total" else 0.33)
    assert short == pytest.approx(6e8 if metric == "spend_total" else 0.02)
    assert v - 0.5 * cost - 3 * short == pytest.approx(values(s, p, 2023)[0], rel=1e-12)


def test_objective_is_the_metric_less_cost_and_shortfall_penalty():
    s = series_of(np.linspace(0.30, 0.36, 25), 1e8)  # Dec 2022 .. Dec 2024, 0.1bn yuan a month
    dec_2024 = 0.36
    assert values(s, ObjectiveParams(), 2024) == [pytest.approx(dec_2024)]
    assert values(s, ObjectiveParams(), 2023) == [pytest.approx(0.30 + 0.06 * 12 / 24)]
    # 24 months of 0.1bn: 2.4bn; the start state's month is not spent
    v = values(s, ObjectiveParams(cost_weight=0.01), 2024)[0]
    assert v == pytest.approx(dec_2024 - 0.01 * 2.4)
    v = values(s, ObjectiveParams(cost_weight=0.01, cost_funder="employer"), 2024)[0]
    assert v == pytest.approx(dec_2024 - 0.01 * 1.2)
    v = values(s, ObjectiveParams(target=0.40, penalty=10), 2024)[0]
    assert v == pytest.approx(dec_2024 - 10 * 0.04)
    assert values(s, ObjectiveParams(target=0.30, penalty=10), 2024)[0] == pytest.approx(dec_2024)  # met: no penalty
    assert values(s, ObjectiveParams(metrics=["high_skill_share", "spend_total"]), 2024) == \
        [pytest.approx(dec_2024), pytest.approx(2.4e9)]
    with pytest.raises(ConfigError, match="objective.metric"):
        values(s, ObjectiveParams(metric="no_such_column"), 2024)
    with pytest.raises(ConfigError, match="objective.year"):
        values(s, ObjectiveParams(), 2030)
    assert failed({}) is None and failed({"metrics": ["a", "b"]}) is None


def test_progress_total_follows_the_sweeper():
    """The basic sweeper's grid counts its distinct jobs (replicate=0,0 is one folder) and is a grid
    (aggregation counts the jobs a stopped sweep never started); an optimiser's trials are not."""
    def cfg(sweeper, task=("replicate=0,1,2",)):
        return OmegaConf.create({"hydra": {"sweeper": sweeper, "overrides": {"task": list(task)}}})

    basic = {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}
    assert count_jobs(cfg(basic)) == 3 and is_grid(cfg(basic))
    assert count_jobs(cfg(basic, ["replicate=0,0,1", "levers.training.intensity=1,2,3"])) == 6
    optuna = cfg({"_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper", "n_trials": 8})
    assert count_jobs(optuna) == 8 and not is_grid(optuna)
    assert count_jobs(cfg({"_target_": "hydra_plugins.hydra_nevergrad_sweeper.NevergradSweeper",
                           "optim": {"budget": 12}})) == 12
    assert count_jobs(cfg({"_target_": "some.OtherSweeper"})) == -1
    # Optuna's grid sampler stops at its grid's size (2 x 3 here; range(a,b) without b, as the sweeper
    # builds it) whatever n_trials asks: the progress lines had counted 8
    grid = {**optuna["hydra"]["sweeper"], "sampler": {"_target_": "optuna.samplers.GridSampler"},
            "params": {"levers.training.intensity": "range(1,4)"}}
    assert count_jobs(cfg(grid, ["replicate=choice(0,1)"])) == 6
    assert count_jobs(cfg({**grid, "n_trials": 4}, ["replicate=choice(0,1)"])) == 4
    assert count_jobs(cfg(grid, ["replicate=0,1", "levers.training.intensity=choice(1)"])) == 2  # the line wins
    assert count_jobs(cfg({**grid, "n_trials": 100}, ["replicate=shuffle(range(0,10,3))"])) == 4 * 3  # Python's range


@pytest.mark.parametrize("line,optuna,grid,expected", [
    ("y=range(2090,2101,5)", True, False, (None, (2090, 2100))),  # Optuna lowers the top to the last step
    ("y=range(2090,2101,5)", True, True, ([2090, 2095], None)),  # the sweeper's grid stops before it
    ("y=range(2025,2030)", True, False, (None, (2025, 2030))),  # Optuna's samplers reach b
    ("y=shuffle(range(0,10,3))", True, False, ([0, 3, 6, 9], None)),
    ("y=range(0,1.05,0.1)", True, False, (None, (0, 1.0))),
    ("y=interval(0,3)", True, False, (None, (0, 3))),
    ("y=choice(a,2)", True, True, (["a", 2], None)),
    ("y=range(2030,2025,-1)", False, False, (None, (2026, 2030))),  # any other sweeper: Hydra's reading
    ("y=range(2025,2030,-1)", False, False, ([], None)),
])
def test_an_optimisers_swept_values_are_read_as_its_sweeper_reads_them(line, optuna, grid, expected):
    """The start-up checks of an optimising sweep (allowed values, the objective year, the grid's size)
    share one reading of a sweep, Hydra's Optuna sweeper's own: three readings of range(a,b,s) had
    differed, refusing range(2090,2101,5) for 2101, which no trial draws."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sim.sweep import optimiser_values

    values, bounds = optimiser_values(OverridesParser.create().parse_override(line), optuna=optuna, grid=grid)
    if "shuffle" in line:
        values = sorted(values)
    assert (values, bounds) == expected
    if bounds is not None:
        assert all(type(b) in (int, float) for b in bounds)


def test_a_range_whose_top_optuna_lowers_is_said_once_in_one_line_and_optunas_warning_silenced(caplog):
    """Optuna replaces a range's high end that is not on a step and says so in a raw two-line
    UserWarning at every study; skillsim says it once, naming the key, and silences Optuna's."""
    import warnings

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    from sim import sweep

    line = "levers.training.intensity=range(0.5,1.2,step=0.3)"
    with caplog.at_level("WARNING", logger="skillsim"):
        for _ in range(3):
            sweep.optimiser_values(OverridesParser.create().parse_override(line), optuna=True, grid=False)
        sweep.optimiser_values(OverridesParser.create().parse_override("y=range(0,1.2,0.3)"), optuna=True,
                               grid=False)  # on a step: no note
    notes = [r.getMessage() for r in caplog.records if r.name == "skillsim"]
    assert notes == ["note: levers.training.intensity: range(0.5,1.2,step=0.3) reaches 1.1 at most in "
                     "Optuna's samplers (its last step from 0.5 by 0.3)"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        create_optuna_distribution_from_override(OverridesParser.create().parse_override(line))
        assert len(seen) == 1  # Optuna's own warning, as the sweeper meets it
        sweep.quiet_optuna_notes()
        create_optuna_distribution_from_override(OverridesParser.create().parse_override(line))
        assert len(seen) == 1


def test_a_seeded_sampler_continuing_a_saved_study_is_noted(tmp_path, monkeypatch, caplog):
    """Continuing a saved study (sqlite storage) with `sampler.seed` proposed the earlier command's settings
    again, each answered from its folder: 8 trials, 4 points, exit 0 without a word. Now noted once,
    before the study starts; a study not saved yet, one without trials, or no seed: nothing said."""
    import optuna

    from sim import sweep

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep, "_SAID", set())

    def master(seed, name="cq"):
        return OmegaConf.create({"hydra": {"sweeper": {"storage": "sqlite:///study.db", "study_name": name,
                                                       "sampler": {"seed": seed}}}})

    def notes():
        return [r.getMessage() for r in caplog.records if r.name == "skillsim"]

    with caplog.at_level("WARNING", logger="skillsim"):
        sweep.note_seeded_saved_study(master(1))
        assert notes() == [] and not (tmp_path / "study.db").exists()  # nothing saved yet, and no file made here
        study = optuna.create_study(storage="sqlite:///study.db", study_name="cq")
        optuna.create_study(storage="sqlite:///study.db", study_name="empty")
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        for m in (master(None), master(1, "empty"), master(1, "other")):
            sweep.note_seeded_saved_study(m)
        assert notes() == []
        sweep.note_seeded_saved_study(master(1))
        sweep.note_seeded_saved_study(master(1))
    assert notes() == ["note: the saved study 'cq' in sqlite:///study.db has 3 trials, and hydra.sweeper.sampler.seed=1 "
                       "starts its sampler again: it proposes their settings first, each answered from its finished "
                       "folder without a new point; to search further, change the seed or drop it"]


@pytest.mark.slow
def test_optuna_sweeper_finishes_writes_tables_and_its_best_value_reruns(tmp_path):
    out = tmp_path / "opt"
    cmd = [sys.executable, "-m", "sim", "-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=maximize",
           "hydra.sweeper.n_trials=8", "hydra.sweeper.n_jobs=2", "hydra.sweeper.sampler.seed=3",
           "levers.training.intensity=interval(0,3)", "levers.studio.intensity=interval(0,3)",
           "n_agents=2000", "horizon.end_year=2025", "objective.cost_weight=0.002", "objective.target=0.36",
           "objective.penalty=5", "objective.replicates=2", f"hydra.sweep.dir={out}"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "8/8 jobs done" in proc.stderr
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8 and (runs["status"] == "ok").all()
    best = yaml.safe_load((out / "optimization_results.yaml").read_text())
    p = best["best_params"]
    # re-run the best settings in memory, both replicates, and score them the same way
    obj = ObjectiveParams(cost_weight=0.002, target=0.36, penalty=5)
    scores = [values(simulate(training_intensity=p["levers.training.intensity"],
                              studio_intensity=p["levers.studio.intensity"], n_agents=2000, end_year=2025,
                              replicate=r, series=True)["series"], obj, 2025)[0] for r in (0, 1)]
    assert best["best_value"] == pytest.approx(np.mean(scores), rel=0, abs=1e-12)
    # each trial's value is in runs.csv, the best of them the study's best
    assert runs["objective"].notna().all() and runs["objective"].max() == pytest.approx(best["best_value"], abs=1e-12)
    # and what it is made of, over both replicates (the second is written nowhere else): the value worked out
    # again from the means of its terms
    assert (runs["objective_replicates"] == 2).all()
    again = runs["objective_metric"] - 0.002 * runs["objective_spend_bn"] - 5 * runs["objective_shortfall"]
    assert np.allclose(again, runs["objective"], rtol=0, atol=1e-12)
    top = runs.loc[runs["objective"].idxmax()]
    shares = [simulate(training_intensity=p["levers.training.intensity"], studio_intensity=p["levers.studio.intensity"],
                       n_agents=2000, end_year=2025, replicate=r)["high_skill_share"] for r in (0, 1)]
    assert top["objective_metric"] == pytest.approx(np.mean(shares), abs=1e-12)


@pytest.mark.slow  # two 4-trial studies, about 20 s
def test_the_same_optuna_study_twice_gives_the_same_folders_and_bytes(tmp_path):
    """Reproducible with an optimising sweeper too: a seeded study run twice (two trials at a time)
    suggests the same settings, so the job folders, each job's series, the tables and the study's
    best are the same bytes (the manifests differ only in their times and the sweep folder named)."""
    def study(name):
        proc = subprocess.run([sys.executable, "-m", "sim", "-m", "hydra/sweeper=optuna",
                               "hydra.sweeper.direction=maximize", "hydra.sweeper.n_trials=4",
                               "hydra.sweeper.n_jobs=2", "hydra.sweeper.sampler.seed=3",
                               "levers.training.intensity=interval(0,3)", "n_agents=1000", "horizon.end_year=2024",
                               f"hydra.sweep.dir={name}"], cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return tmp_path / name

    a, b = study("a"), study("b")
    jobs = sorted(p.name for p in a.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(jobs) == 4 and jobs == sorted(p.name for p in b.iterdir() if p.is_dir() and not p.name.startswith("."))
    for job in jobs:
        assert (a / job / "series.csv").read_bytes() == (b / job / "series.csv").read_bytes(), job
    for table in ("runs.csv", "ensemble.csv", "optimization_results.yaml"):
        assert (a / table).read_bytes() == (b / table).read_bytes(), table


def test_runs_csv_holds_the_objective_each_job_returned(tmp_path):
    """An optimising sweeper's trials: the value each job returned, beside its settings in runs.csv;
    the hidden record beside the job folder leaves the folder's own files (and their check) alone."""
    import dataclasses

    from sim.aggregate import aggregate
    from sim.cli import run_forecast
    from sim.config import HorizonParams, RunConfig
    from sim.objective import record, recorded
    from sim.verify import verify

    cfg = dataclasses.replace(RunConfig(), n_agents=300, horizon=HorizonParams(end_year=2023))
    sweep = tmp_path / "sweep"
    for rep, value in ((0, 0.31), (1, 0.29), (2, None)):
        job = sweep / f"replicate={rep}"
        run_forecast(dataclasses.replace(cfg, replicate=rep), job, overrides=[f"replicate={rep}"],
                     extra={"job_num": rep})
        if value is not None:  # job 2: a sweep whose sweeper did not ask
            record(job, {"metric": "high_skill_share"}, value)
    aggregate(sweep)
    runs = pd.read_csv(sweep / "runs.csv").set_index("replicate")
    assert runs.loc[0, "objective"] == 0.31 and runs.loc[1, "objective"] == 0.29 and np.isnan(runs.loc[2, "objective"])
    assert verify(sweep).problems == []
    record(sweep / "replicate=0", {"metrics": ["high_skill_share", "spend_total"]}, [0.3, 1.5e9])
    assert recorded(sweep / "replicate=0") == {"objective_high_skill_share": 0.3, "objective_spend_total": 1.5e9}
    assert recorded(sweep / "replicate=9") == {}


def _optuna_years(tmp_path, name, *args):
    proc = subprocess.run([sys.executable, "-m", "sim", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                           "horizon.end_year=choice(2023,2024)", "n_agents=300", f"hydra.sweep.dir={name}", *args],
                          cwd=tmp_path, capture_output=True, text=True)
    return proc, pd.read_csv(tmp_path / name / "runs.csv").set_index("horizon.end_year")


@pytest.mark.slow  # an Optuna sweep in a subprocess, 7 s: the default run stays under 3 minutes
def test_a_trial_whose_objective_fails_says_so_in_runs_csv(tmp_path):
    """A job whose run finished but whose objective cannot be had (an objective year its run does not
    reach, with the horizon swept) was listed as ok with no value and no reason: runs.csv now gives the
    reason in `objective_error`, the value empty, and the summary line counts it."""
    # the random sampler's seed 8 draws both years in one batch of two (found by trying seeds 1-12)
    proc, runs = _optuna_years(tmp_path, "sw", "hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=8",
                               "hydra.sweeper.n_jobs=2", "objective.year=2024")
    assert proc.returncode == 0 and set(runs.index) == {2023, 2024}, proc.stderr[-3000:]
    assert (runs["status"] == "ok").all()
    assert np.isnan(runs.loc[2023, "objective"]) and "objective.year = 2024" in runs.loc[2023, "objective_error"]
    assert runs.loc[2024, "objective"] == pytest.approx(runs.loc[2024, "high_skill_share"], abs=1e-12)
    assert pd.isna(runs.loc[2024, "objective_error"])
    assert "2 jobs ok (1 of them without an objective" in proc.stderr
    assert "objective failed: horizon.end_year=2023" in proc.stderr


@pytest.mark.slow  # an Optuna sweep in a subprocess: the default run stays under 3 minutes
def test_an_optuna_trial_with_the_settings_of_one_running_waits_for_its_value(tmp_path):
    """Two trials of one batch with the same settings share one job folder: the second found it held,
    was skipped and returned nothing, a failed trial with no record. It now waits for the run and
    reports its objective. TPE's seed 1 draws 2024 for both trials of the first batch of two."""
    proc, runs = _optuna_years(tmp_path, "dup", "hydra.sweeper.sampler.seed=1", "hydra.sweeper.n_jobs=2",
                               "hydra.sweeper.n_trials=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "waiting for its result" in proc.stderr and "float-castable" not in proc.stderr
    assert f"{len(runs)} jobs ok, 0 failed, 0 missing (from 4 trials asked for: trials with the same settings " \
           "share one job folder)" in proc.stderr
    assert runs["objective"].notna().all()
    best = (tmp_path / "dup" / "optimization_results.yaml").read_text()
    assert f"best_value: {runs['objective'].min()}" in best  # the sweeper minimises by default


@pytest.mark.slow  # an Optuna sweep in a subprocess: the default run stays under 3 minutes
def test_optunas_grid_sampler_stopping_after_a_failed_trial_is_one_line_with_the_tables(tmp_path):
    """Optuna's GridSampler stops the study after a trial once every grid point has been tried; after a
    failed trial that raised out of Hydra's Optuna sweeper ("a bug in skillsim"). Every trial failing
    makes it certain: one line, exit 5, and runs.csv with each trial's reason. Each of the swept ends is
    allowed against the other key's configured value (men's retirement ages from 60 to 63), so the
    start-up checks pass, and every combination of them is refused in its job."""
    proc = subprocess.run([sys.executable, "-m", "sim", "-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid",
                           "hydra.sweeper.n_trials=4", "retirement.male_from=choice(62,63)",
                           "retirement.male_to=choice(60,61)", "n_agents=300", "horizon.end_year=2023",
                           "hydra.sweep.dir=grid"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 5, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("skillsim: Optuna's grid sampler stopped the study after a failed trial")
    assert "a bug in skillsim" not in proc.stderr and "Traceback" not in proc.stderr
    runs = pd.read_csv(tmp_path / "grid" / "runs.csv")
    assert len(runs) == 4 and (runs["status"] == "failed").all()
    assert runs["error"].str.contains("an age no lower than retirement.male_from").all()
    assert "0 jobs ok, 4 failed, 0 missing" in proc.stderr


@pytest.mark.slow
def test_ema_workbench_runs_simulate_and_prim():
    sys.path.insert(0, str(ROOT / "examples"))
    from ema_study import build_model
    from ema_workbench import SequentialEvaluator, perform_experiments
    from ema_workbench.analysis import prim

    model = build_model(n_agents=1000, end_year=2026)
    with SequentialEvaluator(model) as ev:
        # 8 uncertainty scenarios x 2 lever policies, both Latin hypercube samples (EMA's default)
        experiments, outcomes = perform_experiments(model, scenarios=8, policies=2, evaluator=ev)
    assert len(experiments) == 16
    for i in (0, 7, 15):
        row = experiments.iloc[i]
        direct = simulate("chongqing", n_agents=1000, end_year=2026, seed=1,
                          training_intensity=row["training_intensity"], studio_intensity=row["studio_intensity"],
                          growth_per_year=row["growth_per_year"],
                          **{"behaviour.aptitude_sd": row["behaviour.aptitude_sd"]})
        for name in ("high_skill_share", "income_median", "spend_total"):
            assert outcomes[name][i] == direct[name], name
    y = outcomes["high_skill_share"] < np.median(outcomes["high_skill_share"])
    box = prim.Prim(experiments[["behaviour.aptitude_sd", "growth_per_year"]], y, threshold=0.5).find_box()
    assert 0 < box.coverage <= 1 and 0 < box.density <= 1


@pytest.mark.slow
def test_the_batch_run_example_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "batch_run.py")], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("2030-12") == 6
    assert "spend_total_that_month" in proc.stdout  # one month's spend, not the horizon's (sim.simulate's)


@pytest.mark.slow
def test_the_optuna_goal_seek_example_runs(tmp_path):
    env = dict(__import__("os").environ, TRIALS="4", AGENTS="1000", OUT=str(tmp_path / "goal"))
    env["PATH"] = str(Path(sys.executable).parent) + ":" + env["PATH"]
    proc = subprocess.run(["bash", str(ROOT / "examples" / "optuna_goal_seek.sh")], capture_output=True, text=True,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = yaml.safe_load((tmp_path / "goal" / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"levers.training.intensity", "levers.studio.intensity"}
    assert len(pd.read_csv(tmp_path / "goal" / "runs.csv")) == 4


@pytest.mark.slow
def test_a_failing_trial_does_not_stop_the_optuna_study(tmp_path):
    """A trial whose job fails as it runs (its folder holds a stranger's file, which a run never
    overwrites; a value out of range is refused before the study starts) records its error; the study
    goes on, the other trials' tables are written, and the exit code says some jobs failed (5)."""
    out = tmp_path / "opt"
    stray = out / "horizon.end_year=2024,levers.training.intensity=0.5,n_agents=1000" / "notes.txt"
    stray.parent.mkdir(parents=True)
    stray.write_text("mine", encoding="utf-8")
    cmd = [sys.executable, "-m", "sim", "-m", "hydra/sweeper=optuna", "hydra.sweeper.sampler.seed=1",
           "hydra.sweeper.direction=maximize", "hydra.sweeper.n_trials=4", "levers.training.intensity=choice(0.5,1.5)",
           "n_agents=1000", "horizon.end_year=2024", "hydra/launcher=basic", f"hydra.sweep.dir={out}"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert (out / "runs.csv").exists(), proc.stderr[-2000:]
    runs = pd.read_csv(out / "runs.csv").set_index("levers.training.intensity")  # a folder per value tried
    assert list(runs.loc[[0.5, 1.5], "status"]) == ["failed", "ok"], runs
    assert "already exists and is not empty" in runs.loc[0.5, "error"]
    assert proc.returncode == 5, proc.stderr[-2000:]
    best = yaml.safe_load((out / "optimization_results.yaml").read_text())
    assert best["best_params"]["levers.training.intensity"] == 1.5


def test_a_wrong_objective_is_refused_before_anything_is_written(tmp_path):
    for args in (["-m", "hydra/sweeper=optuna", "levers.training.intensity=interval(0,2)", "objective.metric=share"],
                 ["objective.replicates=0"]):
        proc = subprocess.run([sys.executable, "-m", "sim", *args, "n_agents=500", "horizon.end_year=2023",
                               f"hydra.sweep.dir={tmp_path / 's'}", f"hydra.run.dir={tmp_path / 'r'}"],
                              cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and "objective." in proc.stderr
        assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_study_whose_every_trial_fails_says_so_in_one_line(tmp_path):
    """Every trial's job fails as it runs (each folder holds a stranger's file; values out of range are
    refused before the study starts)."""
    out = tmp_path / "s"
    for value in (0.5, 1.5):
        stray = out / f"horizon.end_year=2023,levers.training.intensity={value},n_agents=500" / "notes.txt"
        stray.parent.mkdir(parents=True)
        stray.write_text("mine", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "sim", "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                           "hydra.sweeper.sampler.seed=1", "hydra/launcher=basic",
                           "levers.training.intensity=choice(0.5,1.5)", "n_agents=500", "horizon.end_year=2023",
                           f"hydra.sweep.dir={out}"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 5
    assert proc.stderr.strip().splitlines()[-1].startswith("skillsim: no trial of the study finished")
    status = pd.read_csv(out / "runs.csv")["status"]
    assert (status == "failed").any() and not (status == "ok").any(), status  # a folder not tried: missing


def test_an_optuna_study_over_config_groups_and_allowed_ranges_passes_the_start_up_checks(tmp_path):
    """The checks that refuse a study's bad ranges before any trial let good ones through: a choice of
    regions (config groups, which Hydra composes) and an interval inside the allowed values."""
    from sim.cli import preflight_sweep, register_schema

    register_schema()
    target = preflight_sweep(["hydra/sweeper=optuna", "region=choice(chongqing,national)",
                              "levers.training.intensity=interval(0,3)", "objective.year=2024",
                              "horizon.end_year=2024", f"hydra.sweep.dir={tmp_path / 's'}"])
    assert target.endswith("OptunaSweeper") and not (tmp_path / "s").exists()


def test_the_summary_counts_trials_only_of_a_finished_study(tmp_path, capsys):
    """Trials with the same settings share a job folder, so a finished study's summary says how many
    trials ran into its folders; a study stopped or still running has simply not run them all, and the
    line first said the same of it."""
    import dataclasses
    import json

    from sim.aggregate import aggregate, report
    from sim.cli import run_forecast
    from sim.config import HorizonParams, RunConfig
    from sim.results import PROGRESS_FILE

    cfg = dataclasses.replace(RunConfig(), n_agents=300, horizon=HorizonParams(end_year=2023))
    sweep = tmp_path / "sweep"
    for rep in (0, 1):
        run_forecast(dataclasses.replace(cfg, replicate=rep), sweep / f"replicate={rep}",
                     overrides=[f"replicate={rep}"], extra={"job_num": rep})
    (sweep / PROGRESS_FILE).write_text(json.dumps({"total": 20, "started": 0.0, "grid": False}))
    for finished in (False, True):
        if finished:
            (sweep / "optimization_results.yaml").write_text("best_value: 0.3\n")
        report(sweep, aggregate(sweep))
        line = capsys.readouterr().err.splitlines()[0]
        assert line.startswith(f"{sweep}: 2 jobs ok, 0 failed, 0 missing")
        assert ("(from 20 trials asked for: trials with the same settings share one job folder)" in line) is finished


def test_a_swept_key_given_words_and_numbers_is_tabled_as_text(tmp_path):
    """A parameter column that held a word and a number (`region.label_en=abc,2`) failed the Parquet
    table after every job had run ("a bug in skillsim"); it is now text throughout."""
    import dataclasses

    from sim.aggregate import aggregate
    from sim.cli import run_forecast
    from sim.config import HorizonParams, RunConfig

    cfg = dataclasses.replace(RunConfig(), n_agents=300, horizon=HorizonParams(end_year=2023))
    sweep = tmp_path / "sweep"
    for i, label in enumerate(("abc", "2")):
        run_forecast(cfg, sweep / f"region.label_en={label}", overrides=[f"region.label_en={label}"],
                     extra={"job_num": i})
    aggregate(sweep)
    long = pd.read_parquet(sweep / "series_long.parquet")
    assert sorted(long["region.label_en"].unique()) == ["2", "abc"]


def test_an_optuna_choice_of_mappings_passes_the_start_up_checks(tmp_path):
    """Hydra's Optuna sweeper hands Optuna a mapping choice as its text (`{enabled:False}`), which the
    trials read back as a mapping; the start-up checks first refused it as "a mapping of TrainingParams
    fields"."""
    from hydra.core.global_hydra import GlobalHydra

    from sim.cli import preflight_sweep, register_schema

    GlobalHydra.instance().clear()
    register_schema()
    try:
        target = preflight_sweep(["hydra/sweeper=optuna", "levers.training=choice({enabled:false},{enabled:true})",
                                  f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    finally:
        GlobalHydra.instance().clear()
    assert target.endswith("OptunaSweeper")


def test_another_optuna_study_is_not_run_into_a_studys_folder(tmp_path, capsys):
    """Hydra records an optimising sweeper's command nowhere: a second, different study run into the same
    folder had its trials tabled with the first's and replaced its optimization_results.yaml. skillsim
    records the settings when a study starts; the same study (more trials too) may run there again."""
    import json

    from hydra.core.global_hydra import GlobalHydra

    from sim.cli import preflight_sweep, register_schema
    from sim.results import PROGRESS_FILE

    sweep = tmp_path / "study"
    sweep.mkdir()
    (sweep / PROGRESS_FILE).write_text(json.dumps({"total": 2, "started": 0.0, "grid": False, "command": [
        "n_agents=300", "horizon.end_year=choice(2023,2024)"]}))

    def preflight(*args):
        GlobalHydra.instance().clear()
        register_schema()
        try:
            return preflight_sweep(["hydra/sweeper=optuna", *args, f"hydra.sweep.dir={sweep}"])
        finally:
            GlobalHydra.instance().clear()

    assert preflight("n_agents=300", "horizon.end_year=choice(2023,2024)", "hydra.sweeper.n_trials=5")
    with pytest.raises(SystemExit) as exc:
        preflight("n_agents=400", "horizon.end_year=choice(2023,2024)")
    assert exc.value.code == 2
    assert "it holds another sweep (it differs in n_agents; its command is in .sweep_progress.json)" in \
        capsys.readouterr().err


def test_one_metric_given_as_a_list_is_one_number_for_optuna():
    """`objective.metrics=[x]` returned [v], which Optuna's single direction cannot read as a float: every
    trial failed. One metric, listed or not, is one number; two are a list."""
    import dataclasses

    from sim.config import HorizonParams, RunConfig
    from sim.model import WorkforceModel
    from sim.objective import job_objective

    cfg = dataclasses.replace(RunConfig(), n_agents=300, horizon=HorizonParams(end_year=2023))
    series = WorkforceModel(cfg).run().series()
    one = job_objective({"metrics": ["high_skill_share"]}, cfg, series)
    assert isinstance(one, float) and one == job_objective({"metric": "high_skill_share"}, cfg, series)
    two = job_objective({"metrics": ["high_skill_share", "income_mean"]}, cfg, series)
    assert isinstance(two, list) and two[0] == one


def test_sweeper_params_set_on_the_command_line_over_an_experiments_are_kept(tmp_path):
    """Refusing hydra.sweeper.params.KEY on the command line is only for params that are null (no
    experiment set them: OmegaConf failed inside Hydra); over an experiment's params it works."""
    from hydra.core.global_hydra import GlobalHydra

    from sim.cli import preflight_sweep, register_schema

    GlobalHydra.instance().clear()
    register_schema()
    try:  # the refusal exited here (SystemExit 2) before it was limited to null params
        target = preflight_sweep(["+sweep=competition_intensity", "hydra.sweeper.params.replicate='range(0,2)'",
                                  f"hydra.sweep.dir={tmp_path / 's'}"])
    finally:
        GlobalHydra.instance().clear()
    assert target.endswith("BasicSweeper")


def test_an_empty_sweep_list_replaced_by_a_later_override_of_its_key_is_not_refused(tmp_path):
    """The last override of a key is the one Hydra's sweeper runs: an empty range that a later one
    replaces runs the later one's jobs (the emptiness is judged on the lists as Hydra will run them)."""
    from hydra.core.global_hydra import GlobalHydra

    from sim.cli import preflight_sweep, register_schema

    GlobalHydra.instance().clear()
    register_schema()
    try:
        target = preflight_sweep(["n_agents=300", "replicate=range(0,0)", "replicate=range(0,2)",
                                  f"hydra.sweep.dir={tmp_path / 's'}"])
        assert target.endswith("BasicSweeper")
        with pytest.raises(SystemExit):
            preflight_sweep(["n_agents=300", "replicate=range(0,2)", "replicate=range(0,0)",
                             f"hydra.sweep.dir={tmp_path / 's'}"])
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize("direction,best,says", [("maximize", 0.32, True), ("maximize", 0.34, False),
                                                 ("minimize", 0.31, True), ("minimize", 0.30, False),
                                                 (["maximize", "minimize"], 0.0, False)])
def test_a_better_trial_of_an_earlier_study_in_the_folder_is_said(tmp_path, capsys, direction, best, says):
    """An Optuna study run again into its folder without a saved study is a new study: its
    optimization_results.yaml gave a best worse than a trial runs.csv held from the earlier one, and
    nothing said so."""
    from sim.aggregate import note_a_better_earlier_trial

    pd.DataFrame({"job": ["a", "b", "c", "d"], "status": ["ok", "ok", "ok", "failed"],
                  "objective": [0.33, 0.305, None, 0.99]}).to_csv(tmp_path / "runs.csv", index=False)
    (tmp_path / "optimization_results.yaml").write_text(yaml.safe_dump({"name": "optuna", "best_value": best}))
    note_a_better_earlier_trial(tmp_path, direction)
    err = capsys.readouterr().err
    assert ("earlier study" in err) is says, err
    if says:
        job = "a" if direction == "maximize" else "b"
        assert f"job {job}." in err and "hydra.sweeper.storage=sqlite:///FILE" in err and len(err.splitlines()) == 1


@pytest.mark.slow  # two 2-trial studies, about 10 s
def test_an_optuna_study_saved_in_sqlite_continues_across_commands(tmp_path):
    """hydra.sweeper.storage=sqlite:///... (Optuna's way to continue a study): optuna 2.10 with
    SQLAlchemy 2 failed on the first trial with an AssertionError ("a bug in skillsim"); pinned to 1.4.
    The second command's study holds both commands' trials, and its best is the best of all of them."""
    def study(seed):
        proc = subprocess.run([sys.executable, "-m", "sim", "-m", "hydra/sweeper=optuna",
                               "hydra.sweeper.direction=maximize", "hydra.sweeper.n_trials=2",
                               f"hydra.sweeper.sampler.seed={seed}", f"hydra.sweeper.storage=sqlite:///{tmp_path}/s.db",
                               "hydra.sweeper.study_name=cq", "levers.training.intensity=interval(0,3)",
                               "n_agents=1000", "horizon.end_year=2024", f"hydra.sweep.dir={tmp_path / 'o'}"],
                              cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc

    study(1)
    proc = study(2)
    import optuna

    trials = optuna.load_study(study_name="cq", storage=f"sqlite:///{tmp_path}/s.db").trials
    assert len(trials) == 4 and all(t.value is not None for t in trials)
    best = yaml.safe_load((tmp_path / "o" / "optimization_results.yaml").read_text())["best_value"]
    assert best == max(t.value for t in trials)
    runs = pd.read_csv(tmp_path / "o" / "runs.csv")
    assert runs["objective"].max() == pytest.approx(best, abs=1e-12) and "earlier study" not in proc.stderr


def test_minimising_the_high_skill_share_with_no_weights_is_warned_of(caplog):
    """The Optuna sweeper's default direction is minimize: a sweep without direction=maximize reported the
    training intensity giving the lowest share as "best" (a user trial). It may be meant, so it is a warning,
    not a refusal; a metric one wants low, or weights that make the objective a cost, say nothing."""
    import logging

    from sim.cli import check_direction
    from sim.objective import ObjectiveParams

    with caplog.at_level(logging.WARNING, logger="skillsim"):
        check_direction("minimize", ObjectiveParams())
        check_direction("maximize", ObjectiveParams())
        check_direction("minimize", ObjectiveParams(metric="spend_total"))
        check_direction("minimize", ObjectiveParams(cost_weight=-0.01))
    assert [r.getMessage() for r in caplog.records] == [
        "hydra.sweeper.direction=minimize (the Optuna sweeper's default) looks for the lowest high_skill_share; "
        "give hydra.sweeper.direction=maximize for the highest"]
