"""Multirun sweeps: launchers, aggregation, paired effects, resume after a kill, failing jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from sim.cli import CONFIG_DIR, register_schema
from sim.errors import EXIT_DATA, EXIT_PARTIAL
from sim.streams import replicate_seed
from .conftest import SHORT_HISTORY

SMALL = ["n_agents=3000", "horizon.end_year=2025", SHORT_HISTORY]
GRID = ["levers.training.intensity=1,3", "levers.studio.intensity=1,3", "replicate=range(0,5)"]
TABLES = ("runs.csv", "ensemble.csv", "effects.csv")


def skillsim(*args: str, cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, **kw)


def sweep(tmp: Path, name: str, *args: str) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp / name
    proc = skillsim("-m", *args, f"hydra.sweep.dir={out}", cwd=tmp)
    return out, proc


@pytest.fixture(scope="module")
def grid_sweeps(tmp_path_factory):
    """A 2 x 2 x 5 sweep with the joblib (default) launcher; (folder, None, process)."""
    tmp = tmp_path_factory.mktemp("grid")
    joblib_dir, p1 = sweep(tmp, "joblib", *GRID, *SMALL)
    assert p1.returncode == 0, p1.stderr[-2000:]
    return joblib_dir, None, p1


def test_grid_sweep_tables(grid_sweeps):
    joblib_dir, _, proc = grid_sweeps
    runs = pd.read_csv(joblib_dir / "runs.csv")
    assert len(runs) == 20 and (runs["status"] == "ok").all()
    for col in ("levers.training.intensity", "levers.studio.intensity", "replicate", "seed", "run_seed",
                "high_skill_share", "income_mean_target_year", "spend_cum_training_government",
                "spend_cum_studio_government", "spend_cum_total"):
        assert col in runs.columns, col
    assert sorted(runs["levers.training.intensity"].unique()) == [1, 3]
    assert runs.groupby(["levers.training.intensity", "levers.studio.intensity"]).size().eq(5).all()
    ens = pd.read_csv(joblib_dir / "ensemble.csv")
    assert set(ens["metric"]) >= {"high_skill_share", "income_mean"}
    assert (ens["n"] == 5).all()
    qs = ens[["q05", "q25", "median", "q75", "q95"]].to_numpy()
    assert (np.diff(qs, axis=1) >= -1e-12).all(), "quantiles must be ordered"
    long = pd.read_parquet(joblib_dir / "series_long.parquet")
    assert list(long.columns[:1]) == ["job"] and {"date", "metric", "value"} <= set(long.columns)
    assert "sweep progress: 20/20 jobs done" in proc.stderr


@pytest.mark.slow
def test_every_launcher_gives_the_same_numbers(grid_sweeps, tmp_path):
    joblib_dir = grid_sweeps[0]
    basic_dir, proc = sweep(tmp_path, "basic", *GRID, *SMALL, "hydra/launcher=basic")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for table in TABLES:
        assert (joblib_dir / table).read_bytes() == (basic_dir / table).read_bytes(), table


def test_joblib_with_one_job_at_a_time_runs_and_gives_the_same_numbers(grid_sweeps, tmp_path):
    """hydra.launcher.n_jobs=1: joblib runs each job in this process without pickling it, so the job got
    the launch's shared arguments unshipped and ended "a bug in skillsim" (TypeError: Value after * must
    be an iterable, not _Shipment). It runs, and gives the default launch's bytes."""
    grid = ["levers.training.intensity=1,3", "replicate=range(0,2)"]
    one, proc = sweep(tmp_path, "one", *grid, *SMALL, "hydra.launcher.n_jobs=1")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr and "bug" not in proc.stderr, proc.stderr[-2000:]
    runs = pd.read_csv(one / "runs.csv")
    assert len(runs) == 4 and (runs["status"] == "ok").all()
    grid_runs = pd.read_csv(grid_sweeps[0] / "runs.csv")
    for t in (1, 3):  # each setting's replicates 0-1 as the 2 x 2 x 5 grid ran them (its studio at 1, the default)
        mine = runs[runs["levers.training.intensity"] == t].sort_values("replicate")["high_skill_share"].to_numpy()
        theirs = grid_runs[(grid_runs["levers.training.intensity"] == t) & (grid_runs["levers.studio.intensity"] == 1)
                           & (grid_runs["replicate"] < 2)].sort_values("replicate")["high_skill_share"].to_numpy()
        assert np.array_equal(mine, theirs), (t, mine, theirs)


def test_replicates_share_streams_across_settings_and_differ_between_each_other(grid_sweeps):
    runs = pd.read_csv(grid_sweeps[0] / "runs.csv")
    by_rep = runs.groupby("replicate")["run_seed"].nunique()
    assert (by_rep == 1).all(), "replicate k must use the same seed in every setting"
    seeds = runs.groupby("replicate")["run_seed"].first()
    assert seeds.nunique() == 5
    assert seeds.loc[3] == replicate_seed(int(runs["seed"].iloc[0]), 3)
    base = runs[(runs["levers.training.intensity"] == 1) & (runs["levers.studio.intensity"] == 1)]
    # (the share alone can coincide: the history aligns every replicate to the same observed share)
    assert len(base[["high_skill_share", "income_mean_target_year"]].drop_duplicates()) == 5, \
        "replicates of one setting differ"


def test_paired_effects_against_the_baseline_setting(grid_sweeps):
    eff = pd.read_csv(grid_sweeps[0] / "effects.csv")
    runs = pd.read_csv(grid_sweeps[0] / "runs.csv")
    base = eff[eff["is_baseline"]]
    assert len(base) == 1 and base["levers.training.intensity"].iloc[0] == 1  # first value of each list
    assert base["effect_high_skill_share"].iloc[0] == 0
    row = eff[(eff["levers.training.intensity"] == 3) & (eff["levers.studio.intensity"] == 1)].iloc[0]
    a = runs[(runs["levers.training.intensity"] == 3) & (runs["levers.studio.intensity"] == 1)].set_index("replicate")
    b = runs[(runs["levers.training.intensity"] == 1) & (runs["levers.studio.intensity"] == 1)].set_index("replicate")
    d = a["high_skill_share"] - b["high_skill_share"]
    assert row["n_pairs"] == 5
    assert row["effect_high_skill_share"] == pytest.approx(d.mean(), rel=1e-12)
    assert row["effect_high_skill_share_ci_low"] < d.mean() < row["effect_high_skill_share_ci_high"]
    extra_spend = (a["spend_cum_total"] - b["spend_cum_total"]).mean()
    extra_high = (a["high_skill_workers"] - b["high_skill_workers"]).mean()
    assert row["cost_per_additional_high_skill_worker"] == pytest.approx(extra_spend / extra_high, rel=1e-9)
    assert row["effect_high_skill_share_ci_low"] > 0, "tripling training must raise the share"


def test_aggregate_command_rebuilds_the_tables(grid_sweeps, tmp_path):
    joblib_dir = grid_sweeps[0]
    before = {t: (joblib_dir / t).read_bytes() for t in TABLES}
    for t in TABLES:
        (joblib_dir / t).unlink()
    proc = subprocess.run([sys.executable, "-c", "from sim.aggregate import main; main()", str(joblib_dir)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for t in TABLES:
        assert (joblib_dir / t).read_bytes() == before[t], t


def test_a_setting_written_otherwise_has_the_same_key_and_its_jobs_repeat_the_first():
    """The rule behind the next test, in the default run: `3.00` and `3`, `True` and `true`, in any order,
    are one setting; a later job of the same setting repeats the first (by job number), failed or not."""
    from sim.aggregate import repeated_jobs, setting_key

    assert setting_key(["a.b=2", "replicate=0"]) == setting_key(["replicate=0", "a.b=2.00"])
    assert setting_key(["x=True"]) == setting_key(["x=true"]) != setting_key(["x=1"])
    assert setting_key(["a.b=2"]) != setting_key(["a.b=2.01"])
    assert setting_key(["seed=9007199254740992"]) != setting_key(["seed=9007199254740993"])  # equal as floats
    jobs = {"b": {"status": "ok", "overrides": ["k=2.00"], "job_num": 1},
            "a": {"status": "ok", "overrides": ["k=2"], "job_num": 0},
            "c": {"status": "failed", "overrides": ["k=2.0"], "job_num": None},
            "d": {"status": "ok", "overrides": ["k=3"], "job_num": 2}}
    assert repeated_jobs(jobs) == {"b": "a", "c": "a"}


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_job_repeating_anothers_settings_written_otherwise_is_counted_once(grid_sweeps, tmp_path):
    """A sweep extended with `intensity=3.00` where it ran `3` runs the same jobs into new folders; the
    tables used each run twice (n 10 for 5 runs, and t-intervals of effects.csv narrowed as if the copies
    were independent). A repeat is left out, said once, and the tables are the sweep's own."""
    import shutil

    joblib_dir = grid_sweeps[0]
    folder = tmp_path / "sw"
    shutil.copytree(joblib_dir, folder)
    originals = sorted(p.parent.name for p in folder.glob("*/COMPLETE"))
    for name in originals[:6]:  # the same settings in other folders (as `3.00` makes them)
        shutil.copytree(folder / name, folder / f"{name}_again")
    proc = subprocess.run([sys.executable, "-c", "from sim.aggregate import main; main()", str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "counted once: 6 job folders repeat another's settings" in proc.stderr
    for t in TABLES:
        assert (folder / t).read_bytes() == (joblib_dir / t).read_bytes(), t


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_sweep_extended_with_a_value_written_otherwise_ends_complete(tmp_path):
    """The repeat (`2.00` after `2`) is left out of the tables and is not a job "not started" (exit 5 on
    every run after it, which repeating the command could not fix: a review)."""
    out, first = sweep(tmp_path, "sw", "levers.training.intensity=1,2", "n_agents=300", "horizon.end_year=2023")
    assert first.returncode == 0, first.stderr[-2000:]
    out, again = sweep(tmp_path, "sw", "levers.training.intensity=3,2.00", "n_agents=300", "horizon.end_year=2023")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "counted once: 1 job folder repeats another's settings" in again.stderr
    assert "3 jobs ok, 0 failed, 0 missing;" in again.stderr and "not started" not in again.stderr
    assert sorted(pd.read_csv(out / "runs.csv")["levers.training.intensity"]) == [1, 2, 3]


def aggregate_partial(folder: Path) -> list[str]:
    """`skillsim-aggregate` on a sweep folder with jobs not done: it exits 5 (partial); its report's lines."""
    proc = subprocess.run([sys.executable, "-c", "from sim.aggregate import main; main()", str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_PARTIAL, proc.stderr
    return proc.stderr.strip().splitlines()


def test_jobs_a_stopped_sweep_never_started_are_counted_and_the_exit_is_partial(grid_sweeps, tmp_path):
    """A sweep stopped early leaves no folder for the jobs it never began: aggregation counts them from
    the sweep's recorded grid, says how to run them, and exits 5 (partial), not 0."""
    import shutil

    copy = tmp_path / "stopped"
    shutil.copytree(grid_sweeps[0], copy)
    assert json.loads((copy / ".sweep_progress.json").read_text())["total"] == 20
    gone = sorted(p for p in copy.iterdir() if p.is_dir() and not p.name.startswith("."))[:2]
    for job in gone:
        shutil.rmtree(job)
    lines = aggregate_partial(copy)
    assert lines[0] == f"{copy}: 18 jobs ok, 0 failed, 0 missing, 2 not started; tables in {copy}", lines
    assert lines[1] == (f"  not started: 2 of the sweep's 20 jobs have no folder (the sweep was stopped before "
                        f"them); to run them, repeat the sweep command with hydra.sweep.dir={copy}"), lines
    assert len(lines) == 2 and len(pd.read_csv(copy / "runs.csv")) == 18


def test_a_grid_sweep_records_the_folders_hydra_gives_its_jobs(grid_sweeps):
    """The sweep writes its jobs' folder names when it starts (sim.sweep.planned_folders): exactly the
    folders its jobs then got."""
    joblib_dir = grid_sweeps[0]
    info = json.loads((joblib_dir / ".sweep_progress.json").read_text())
    folders = sorted(p.name for p in joblib_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(folders) == 20 and info["jobs"] == folders


def test_planned_folder_names_are_hydras_for_every_kind_of_override():
    """The names planned for a grid's jobs equal the folder names Hydra composes for them: plain,
    added (+), quoted and list values, a setting excluded from the names, and settings too long for a
    file name (a prefix and a hash, sim.cli.job_dir_name); none where the user names the folders."""
    from sim import sweep as sweep_mod
    from sim.cli import job_dir_name

    long = [f"levers.{lever}.intensity=1.{'1' * 60}" for lever in ("training", "studio", "competition")]
    jobs = [("levers.training.intensity=1.5", "replicate=3"),
            ("+objective.extra=x", "levers.training.allocation=lowest_level", "region.name='two words'"),
            ("levers.training.intensity=2", "region.history.level_share={}", "seed=7"),
            tuple(long)]
    hydra_flags = ["hydra.job.config.override_dirname.exclude_keys=[seed]"]
    GlobalHydra.instance().clear()
    register_schema()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            master = compose("config", overrides=hydra_flags, return_hydra_config=True)
            for job in jobs:
                want = compose("config", overrides=[*hydra_flags, *job], return_hydra_config=True)
                name = job_dir_name(want.hydra.job.override_dirname)
                assert sweep_mod.planned_folders(master, {tuple(sorted(job))}) == [name], job
            assert "seed" not in sweep_mod.planned_folders(master, {tuple(sorted(jobs[2]))})[0]
            assert "..." in sweep_mod.planned_folders(master, {tuple(sorted(jobs[3]))})[0]  # hashed: too long
            own = compose("config", overrides=["hydra.sweep.subdir=${hydra.job.num}"], return_hydra_config=True)
            assert sweep_mod.planned_folders(own, {tuple(sorted(jobs[0]))}) is None
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.slow  # a second sweep, end to end (about 8 s)
def test_jobs_never_started_are_counted_among_this_sweeps_own_folders(grid_sweeps, tmp_path):
    """A second sweep into a folder that already holds another's jobs, with other values of the same
    keys (allowed: it extends the first), stopped before two of its three jobs: those two are counted as
    not started (the 20 folders of the first sweep do not hide them), of this sweep's 3 jobs."""
    import shutil

    copy = tmp_path / "shared"
    shutil.copytree(grid_sweeps[0], copy)
    out, proc = sweep(tmp_path, "shared", "levers.training.intensity=2", "levers.studio.intensity=1",
                      "replicate=range(0,3)", *SMALL, "hydra/launcher=basic")
    assert proc.returncode == 0 and out == copy, proc.stderr[-2000:]
    second = sorted(p for p in copy.iterdir() if "levers.training.intensity=2" in p.name)
    assert len(second) == 3
    for job in second[1:]:
        shutil.rmtree(job)
    lines = aggregate_partial(copy)
    assert lines[0] == f"{copy}: 21 jobs ok, 0 failed, 0 missing, 2 not started; tables in {copy}", lines
    assert lines[1].startswith("  not started: 2 of the sweep's 3 jobs have no folder"), lines


@pytest.mark.parametrize("fixed, resolved_per_value", [([], False), (["region.name=${scenario}"], True)])
def test_the_preflight_resolves_the_whole_config_per_value_only_where_settings_interpolate(
        tmp_path, monkeypatch, fixed, resolved_per_value):
    """Checking a sweep's values: plain values are set on a scratch copy and checked without composing
    or resolving the whole config again; only where the settings themselves interpolate (a value may
    then move another) is each value applied as Hydra applies it. Hydra's own node, which always
    interpolates, does not count. A wrong value is refused either way (tests/test_bad_inputs.py)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from sim.cli import preflight_sweep

    applied = []
    original = ConfigLoaderImpl._apply_overrides_to_config
    monkeypatch.setattr(ConfigLoaderImpl, "_apply_overrides_to_config",
                        staticmethod(lambda overrides, cfg: (applied.append(overrides), original(overrides, cfg))[1]))
    GlobalHydra.instance().clear()
    register_schema()
    try:
        preflight_sweep(["replicate=range(0,40)", *fixed, f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    finally:
        GlobalHydra.instance().clear()
    per_value = [o for o in applied if o and o[0].key_or_group == "replicate"]
    # composing the first job, then (resolved) each of the 39 values after the first, and the first put
    # back once at the end
    assert len(per_value) == (41 if resolved_per_value else 2), len(per_value)


def test_aggregate_refuses_a_folder_that_is_not_a_sweep(tmp_path):
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "nowhere"):
        proc = subprocess.run([sys.executable, "-c", "from sim.aggregate import main; main()", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == EXIT_DATA
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_finished_jobs_damaged_series_is_refused_and_the_tables_stay(grid_sweeps, tmp_path, damage):
    """A finished job's series.csv cut short was tabled as if the job had fewer months (exit 0, the
    ensemble's n one short), and one overwritten with text failed as a bug. Both are checked against
    the job's manifest: one line naming the file, exit 3, the earlier tables untouched."""
    import shutil

    folder = tmp_path / "sweep"
    shutil.copytree(grid_sweeps[0], folder)
    before = {t: (folder / t).read_bytes() for t in TABLES}
    job = next(p for p in sorted(folder.iterdir()) if (p / "COMPLETE").exists())
    series = job / "series.csv"
    series.write_bytes(series.read_bytes()[:5000] if damage == "truncated" else b"garbage\n" * 5000)
    proc = subprocess.run([sys.executable, "-c", "from sim.aggregate import main; main()", str(folder)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == EXIT_DATA, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(series) in lines[0], proc.stderr
    assert ("truncated: 5,000 of" if damage == "truncated" else "changed since the job wrote it") in lines[0]
    assert {t: (folder / t).read_bytes() for t in TABLES} == before


def test_a_sweep_into_a_run_folder_or_a_folder_of_other_files_is_refused(tmp_path):
    """A sweep aimed at a finished run's folder wrote its jobs and tables into it (the run then failed
    skillsim-verify), and one aimed at a folder of the user's files overwrote their runs.csv: both are
    refused before anything is written, in one line, and the folders are as they were."""
    import shutil

    run = tmp_path / "run"
    proc = skillsim(*SMALL, f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    own = tmp_path / "own"
    own.mkdir()
    (own / "runs.csv").write_text("mine\n")
    gathered = tmp_path / "gathered"  # results/ itself, or runs copied together
    shutil.copytree(run, gathered / "run")
    nested = tmp_path / "nested"  # folders that are not a sweep's jobs (results/ with its runs/)
    shutil.copytree(run, nested / "runs" / "run")
    for folder, says in ((run, "a finished run's or a study's folder"), (own, "a folder of other files (runs.csv)"),
                         (gathered, "a folder of single runs (run)"), (nested, "a folder of other files (runs)")):
        before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        out, proc = sweep(tmp_path, folder.name, *SMALL, "replicate=0,1")
        assert proc.returncode == 2, proc.stderr[-2000:]
        line = proc.stderr.strip().splitlines()
        assert len(line) == 1 and "hydra.sweep.dir" in line[0] and says in line[0], proc.stderr
        assert {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_single_runs_gathered_in_a_folder_are_not_tabled_as_a_sweep(grid_sweeps, tmp_path):
    """Runs of different regions, horizons and seeds copied into one folder: aggregating them paired a
    national run with a Chongqing one as an "effect". They are refused in one line, nothing is written,
    and the report says what the folder holds; a sweep job among them does not make them one sweep."""
    import shutil

    from sim.errors import DataError
    from sim.report.load import load

    runs = tmp_path / "runs"
    for args in (["region=national", "seed=7"], ["scenario=no_policy", "horizon.end_year=2026"]):
        proc = skillsim(*SMALL[:1], *args, f"hydra.run.dir={runs / args[0].split('=')[1]}", SHORT_HISTORY, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    gathered = tmp_path / "gathered"
    shutil.copytree(runs, gathered)
    job = next(p for p in sorted(grid_sweeps[0].iterdir()) if (p / "COMPLETE").exists())
    for folder in (gathered, None):
        if folder is None:  # a sweep's job beside them
            shutil.copytree(job, gathered / job.name)
            folder = gathered
        proc = subprocess.run([sys.executable, "-c", "from sim.aggregate import main; main()", str(folder)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == EXIT_DATA, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "single runs" in proc.stderr, proc.stderr
        assert not (folder / "runs.csv").exists() and not (folder / "effects.csv").exists()
    for folder in (runs, gathered):  # the report agrees with aggregate, a sweep's job among them or not
        with pytest.raises(DataError, match="holds run folders, not a sweep's jobs"):
            load(folder)
    shutil.rmtree(gathered / job.name)
    (grid_sweeps[0] / "runs.csv").rename(tmp_path / "runs.csv.kept")  # a sweep without its tables
    try:
        with pytest.raises(DataError, match="sweep folder without its tables"):
            load(grid_sweeps[0])
    finally:
        (tmp_path / "runs.csv.kept").rename(grid_sweeps[0] / "runs.csv")


@pytest.mark.slow  # end to end, about 30-50 s on 2 cores
def test_one_failing_job_does_not_stop_the_others(tmp_path):
    """Two jobs fail as they run (their folders hold a stranger's file, which a run never overwrites;
    a wrong value would be refused before the sweep starts): the others finish, the tables are built
    from them, and a re-run once the cause is gone runs only the failed jobs."""
    out = tmp_path / "fail"
    strays = [out / ",".join(sorted([*SMALL, "levers.training.intensity=2", f"replicate={rep}"])) / "notes.txt"
              for rep in (0, 1)]  # the job folders' names: their overrides, sorted (Hydra's override_dirname)
    for stray in strays:
        stray.parent.mkdir(parents=True)
        stray.write_text("mine", encoding="utf-8")
    out, proc = sweep(tmp_path, "fail", "levers.training.intensity=1,2", "replicate=0,1", *SMALL)
    assert proc.returncode == EXIT_PARTIAL, proc.stderr[-2000:]
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4
    ok, failed = runs[runs["status"] == "ok"], runs[runs["status"] == "failed"]
    assert len(ok) == 2 and (ok["levers.training.intensity"] == 1).all()
    assert len(failed) == 2 and failed["error"].str.contains("already exists and is not empty").all()
    assert "failed" in proc.stderr and (out / "ensemble.csv").exists()
    # a re-run retries only the failed jobs: the finished ones are kept as they are
    for stray in strays:
        stray.unlink()
    proc2 = skillsim("-m", "levers.training.intensity=1,2", "replicate=0,1", *SMALL, f"hydra.sweep.dir={out}",
                     cwd=tmp_path)
    assert proc2.returncode == 0, proc2.stderr[-2000:]
    assert proc2.stderr.count("already finished, skipped") == 2
    assert (pd.read_csv(out / "runs.csv")["status"] == "ok").all()


@pytest.mark.slow  # the default run checks the same through a missing summary (test_sweep_faults)
def test_a_resume_runs_a_damaged_finished_job_again_and_keeps_the_damaged_folder(tmp_path):
    """A finished job whose files changed afterwards is not kept as finished by a resume: it is set aside
    whole (nothing lost) and run again, which gives the bytes it first wrote; the intact job is skipped."""
    tiny = ["replicate=0,1", "n_agents=400", "horizon.end_year=2025", SHORT_HISTORY, "hydra/launcher=basic"]
    out, first = sweep(tmp_path, "damaged", *tiny)
    assert first.returncode == 0, first.stderr[-2000:]
    jobs = sorted(p.parent for p in out.glob("*/COMPLETE") if not p.parent.name.startswith("."))
    assert len(jobs) == 2
    hit, intact = jobs
    original = (hit / "series.csv").read_bytes()
    damaged = original.replace(b",", b";", 1)
    (hit / "series.csv").write_bytes(damaged)
    intact_started = json.loads((intact / "manifest.json").read_text())["started"]
    again = skillsim("-m", *tiny, f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("already finished, skipped") == 1
    assert f"job {hit.name}: its finished folder is damaged: {hit / 'series.csv'}: changed" in again.stderr
    assert (hit / "series.csv").read_bytes() == original, "the job ran again and wrote what it first wrote"
    aside = out / f".{hit.name}.damaged-1"
    assert (aside / "series.csv").read_bytes() == damaged, "the damaged folder is kept whole"
    assert json.loads((intact / "manifest.json").read_text())["started"] == intact_started
    check = subprocess.run([sys.executable, "-m", "sim.verify", str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow  # end to end, about 30-50 s on 2 cores
def test_killed_sweep_resumes_with_only_unfinished_jobs(tmp_path):
    args = ["scenario=baseline,training_boost", "replicate=range(0,8)", "n_agents=4000", "horizon.end_year=2026",
            "hydra/launcher=basic"]
    ref, p = sweep(tmp_path, "reference", *args)
    assert p.returncode == 0, p.stderr[-2000:]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "-m", *args, f"hydra.sweep.dir={out}"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    def finished_jobs():  # pathlib's glob also matches hidden folders: skip half-written ones
        return [p for p in out.glob("*/COMPLETE") if not p.parent.name.startswith(".")]

    while time.time() < deadline and len(finished_jobs()) < 5:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: json.loads((p.parent / "manifest.json").read_text())["started"]
                for p in finished_jobs()}
    assert 5 <= len(finished) < 16, "the kill must land mid-sweep"
    assert not (out / "runs.csv").exists()
    rerun = skillsim("-m", *args, f"hydra.sweep.dir={out}", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert rerun.stderr.count("already finished, skipped") == len(finished)
    for name, started in finished.items():
        assert json.loads((out / name / "manifest.json").read_text())["started"] == started
    assert not list(out.glob(".*.partial-*")), "stale partial folders are cleaned up"
    for table in TABLES:
        assert (out / table).read_bytes() == (ref / table).read_bytes(), table


def _compose_hydra(*overrides: str):
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides), return_hydra_config=True)
    GlobalHydra.instance().clear()
    return cfg


@pytest.mark.parametrize("name, keys", [
    ("scenarios_x_replicates", {"scenario", "replicate"}),
    ("training_vs_studios", {"levers.training.intensity", "levers.studio.intensity", "replicate"}),
    ("competition_intensity", {"levers.competition.intensity", "replicate"}),
])
def test_named_sweeps_compose(name, keys):
    cfg = _compose_hydra(f"+sweep={name}")
    assert set(cfg.hydra.sweeper.params) == keys


@pytest.mark.parametrize("name", ["cq_2035_lever_comparison", "cq_training_x_studio_grid"])
def test_experiments_compose_from_the_top_level_folder(name):
    cfg = _compose_hydra(f"+experiments={name}")
    assert cfg.region.name == "chongqing" and cfg.horizon.end_year == 2035
    assert cfg.hydra.sweep.dir == f"results/experiments/{name}"
    assert "replicate" in cfg.hydra.sweeper.params
    assert (CONFIG_DIR / "experiments" / f"{name}.yaml").read_text().count(f"skillsim -m +experiments={name}") == 1


@pytest.mark.slow
def test_submitit_local_launcher_gives_the_same_numbers(tmp_path):
    args = ["scenario=baseline,no_policy", "replicate=0,1", *SMALL]
    a, pa = sweep(tmp_path, "basic", *args, "hydra/launcher=basic")
    b, pb = sweep(tmp_path, "submitit", *args, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    assert pa.returncode == 0 and pb.returncode == 0, pb.stderr[-3000:]
    for table in TABLES:
        assert (a / table).read_bytes() == (b / table).read_bytes(), table


def test_a_job_folder_name_longer_than_a_file_name_is_shortened_the_same_way_each_time():
    from sim.cli import JOB_DIR_BYTES, job_dir_name

    short = "levers.training.intensity=2,replicate=0"
    assert job_dir_name(short) == short
    long = ",".join(f"levers.studio.members_per_studio_{k}=17.4" for k in range(12))
    name = job_dir_name(long)
    assert len(name.encode()) <= JOB_DIR_BYTES and name == job_dir_name(long) and name.startswith(long[:100])
    assert job_dir_name(long + "1") != name  # other settings, another name


@pytest.mark.parametrize("now, refused", [
    (["replicate=0,1", "n_agents=300"], None),  # the same sweep: resumed
    (["n_agents=300", "replicate=range(0,5)"], None),  # more replicates: extends it
    (["n_agents=300", "replicate=3"], None),  # one more replicate
    (["n_agents=1_000", "replicate=0,1"], "n_agents"),  # another fixed setting
    (["n_agents=3_00", "replicate=0,1"], None),  # the same value written another way
    (["n_agents=300,400", "replicate=0,1"], None),  # a fixed setting swept: its old jobs stay one setting
    (["replicate=0,1"], "n_agents"),  # left at its default
    (["replicate=0,1", "n_agents=300", "levers.training.intensity=1,2"], "levers.training.intensity"),
])
def test_a_sweep_folder_holding_another_sweep_is_refused(tmp_path, now, refused):
    """Jobs of two sweeps in one folder would be tabled together and their effects compare runs of
    different configurations (a re-run with n_agents=3000 into a 2,000-agent sweep's folder did)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from sim.cli import refuse_another_sweep
    from sim.errors import ConfigError

    OmegaConf.save(OmegaConf.create({"hydra": {"overrides": {"task": ["replicate=0,1", "n_agents=300"]}}}),
                   tmp_path / "multirun.yaml")
    parser = OverridesParser.create()
    given = parser.parse_overrides([*now, f"hydra.sweep.dir={tmp_path}"])
    if refused is None:
        refuse_another_sweep(tmp_path, given, parser)
    else:
        with pytest.raises(ConfigError, match=f"it holds another sweep \\(it differs in {refused};"):
            refuse_another_sweep(tmp_path, given, parser)
    refuse_another_sweep(tmp_path / "new", given, parser)  # a new folder: nothing to compare


def test_the_long_table_is_each_jobs_melted_series_with_its_parameters(tmp_path):
    """sim.aggregate._long, built from all jobs' arrays at once, against the per-job construction it
    replaced (melt each series.csv, insert the job and its parameters, concatenate): the same frame,
    dtypes included, with parameters that are ints, floats, text, booleans or absent (None) in some
    jobs, and metrics of int and float columns."""
    from sim.aggregate import _long

    rng = np.random.default_rng(3)
    params = ["levers.training.intensity", "region", "levers.studio.enabled", "replicate"]
    jobs = [("a", [1, "national", True, 0]), ("b", [2.5, None, False, 1]), ("c", [None, "chongqing", None, 2]),
            ("d", [3, "national", True, 3])]
    parts, want = [], []
    for k, (name, given) in enumerate(jobs):
        n = 5 + k  # series of different lengths
        frame = pd.DataFrame({"date": [f"2026-{m + 1:02d}" for m in range(n)],
                              "workers": rng.integers(100, 200, n),  # an int column: values cast as melt casts
                              "high_skill_share": rng.random(n), "income_median": rng.random(n) * 1e5})
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        old = pd.read_csv(path).melt(id_vars="date", var_name="metric", value_name="value")
        old.insert(0, "job", name)
        for i, p in enumerate(params):
            old.insert(1 + i, p, given[i])
        want.append(old)
        parts.append((name, given, pd.read_csv(path, index_col="date")))
    want = pd.concat(want, ignore_index=True)
    got = _long(parts, params)
    assert list(got.dtypes) == list(want.dtypes)
    assert [str(t) for t in got.dtypes] == ["str", "object", "object", "object", "int64", "str", "str", "float64"]
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    same = [(n, [g[0], "x", g[2], g[3]], s) for (n, g, s) in parts[:1] + parts[3:]]  # all given: int, str, bool
    assert [str(t) for t in _long(same, params).dtypes][1:5] == ["int64", "str", "bool", "int64"]


def test_the_workers_a_sweep_leaves_waiting_are_ended_before_the_command_exits():
    """sim.cli._end_idle_workers: joblib's loky workers, kept alive for a next Parallel call, are
    stopped with their threads, so that `skillsim -m` can end at once (sim.single_run.exit_now) instead of
    waiting for them at the interpreter's exit; a second call, and a process without workers, do
    nothing."""
    import threading

    from joblib import Parallel, delayed
    from joblib.externals.loky import reusable_executor

    from sim import cli

    assert Parallel(n_jobs=2, backend="loky")(delayed(abs)(-i) for i in range(4)) == [0, 1, 2, 3]
    executor = reusable_executor._executor
    workers = list(executor._processes.values())
    assert workers and all(p.is_alive() for p in workers)
    cli._end_idle_workers()
    for p in workers:
        p.join(timeout=10)
    assert not any(p.is_alive() for p in workers)
    loky_threads = [t for t in threading.enumerate() if t.name in {"ExecutorManagerThread", "QueueFeederThread"}]
    for t in loky_threads:  # the queue's feeder thread ends a moment after the queue is closed
        t.join(timeout=10)
    assert not any(t.is_alive() for t in loky_threads), [t.name for t in loky_threads]
    cli._end_idle_workers()  # nothing left to end
    assert Parallel(n_jobs=2, backend="loky")(delayed(abs)(-i) for i in range(3)) == [0, 1, 2]  # joblib starts anew
    cli._end_idle_workers()


def test_a_stopped_sweeps_workers_leave_no_half_written_folders(tmp_path):
    """A sweep stopped while a worker was writing a job left that job's hidden `.NAME.partial-PID`
    folder (removed only when the job ran again; a user trial: 5 of 9 interrupts, and joblib, which had
    ended the workers itself, listed none to look for). When the command ends, a partial folder goes if
    its job's claim names its writer on this host and no process holds the claim; one without a claim,
    one whose claim is another host's, and one whose claim a live process holds stay."""
    script = f"""
import json, os, socket, time
from pathlib import Path
from joblib.externals.loky import get_reusable_executor
from sim import claims, cli, sweep

d = Path({str(tmp_path)!r})

def write_job_1():  # a worker claims its job, starts writing it, and is stopped mid-write
    held = claims.claim(d / "job=1")
    part = d / f".job=1.partial-{{os.getpid()}}"
    part.mkdir()
    (part / "series.csv").write_text("half")
    time.sleep(600)

ex = get_reusable_executor(max_workers=2)
ex.submit(write_job_1)
while not list(d.glob(".job=1.partial-*/series.csv")):
    time.sleep(0.01)
(d / f".job=2.partial-{{os.getppid()}}").mkdir()  # no claim: whose, nobody can say
(d / f".job=3.partial-{{os.getpid()}}").mkdir()  # claimed on another host
(d / ".job=3.lock").write_text(json.dumps({{"pid": os.getpid(), "host": socket.gethostname() + "-other",
                                            "start": 0, "since": "2026-01-01T00:00:00+00:00"}}))
held = claims.claim(d / "job=4")  # held by a live process (this one)
(d / f".job=4.partial-{{os.getpid()}}").mkdir()
ex.shutdown(wait=True, kill_workers=True)  # as joblib ends them on an interrupt, before the command ends
sweep.SWEEP_DIR = d
cli._end_idle_workers()
print(sorted(p.name.split("-")[0] for p in d.iterdir()))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ("['.job=1.lock', '.job=2.partial', '.job=3.lock', '.job=3.partial', "
                                   "'.job=4.lock', '.job=4.partial']"), proc.stdout


@pytest.mark.slow  # two sweeps in subprocesses, 9 s: the default run stays under 3 minutes
def test_a_sweep_with_an_interpolation_on_its_command_line_plans_and_resumes_its_folders(tmp_path):
    """`seed=${n_agents}` on a sweep's command line: the overrides were read back resolved, so the planned
    folders (and a re-run's comparison with the sweep in its folder) differed from the folders Hydra
    names by the text: "2 not started", exit 5, and the re-run the message advised was refused."""
    args = ["seed=${n_agents}", "n_agents=300,350", "horizon.end_year=2023", SHORT_HISTORY]
    out, first = sweep(tmp_path, "interp", *args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"{out}: 2 jobs ok, 0 failed, 0 missing; tables in {out}" in first.stderr
    runs = pd.read_csv(out / "runs.csv").set_index("n_agents").sort_index()
    assert list(runs["run_seed"]) == [300, 350]  # each job's seed is its n_agents
    _, again = sweep(tmp_path, "interp", *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stderr.count("already finished, skipped") == 2 and "not started" not in again.stderr


def test_a_sweep_of_nothing_runs_its_one_job_in_a_folder_of_its_own(tmp_path, monkeypatch, capsys):
    """`skillsim -m` with no setting (or only objective.* keys) named its job's folder after nothing: the
    sweep's own folder, "already exists and is not empty", then "not a sweep folder", with FAILED left."""
    from sim import cli
    from sim.verify import verify

    monkeypatch.chdir(tmp_path)
    assert cli.job_dir_name("") == cli.DEFAULTS_JOB == "defaults"
    try:
        cli.main(["-m", "objective.year=2030", f"hydra.sweep.dir={tmp_path / 's'}"])
    except SystemExit as exc:
        pytest.fail(f"exit {exc.code}: {capsys.readouterr().err}")
    assert sorted(p.name for p in (tmp_path / "s").iterdir() if p.is_dir()) == ["defaults"]
    assert not (tmp_path / "s" / "FAILED").exists() and verify(tmp_path / "s").problems == []
    assert len(pd.read_csv(tmp_path / "s" / "runs.csv")) == 1


def test_a_launcher_that_cannot_reach_its_cluster_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    """Ray with hydra.launcher.ray.init.address=auto and no cluster running raised ConnectionError (an
    OSError): "cannot write the output folder", exit 4, and the sweep folder left with multirun.yaml and
    the progress record (a user trial). It is the cluster's address that is wrong: exit 2, no folder."""
    from hydra.core.plugins import Plugins

    from sim import cli

    def no_cluster(self, job_overrides, initial_job_idx):
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to.")

    # the class Hydra's plugin scan registered (its scan executes the module again: a class imported here is not it)
    launcher = Plugins.instance().class_name_to_class["hydra._internal.core_plugins.basic_launcher.BasicLauncher"]
    monkeypatch.setattr(launcher, "launch", no_cluster)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(["-m", "replicate=0,1", "n_agents=300", "horizon.end_year=2023", "hydra/launcher=basic",
                  f"hydra.sweep.dir={tmp_path / 's'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2, err
    assert err[-1] == ("skillsim: config error: the sweep's launcher could not connect to its cluster (Could not find "
                       "any running Ray instance. Please specify the one to connect to.); start the cluster, or give "
                       "its address (hydra.launcher.ray.init.address for Ray; leave it out to start Ray on this "
                       "machine); no job ran")
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_submitit_local_jobs_end_when_the_sweeps_command_is_killed(tmp_path):
    """hydra/launcher=submitit_local runs each job under a controller process that submitit starts to
    outlive the session: after `kill -9` of the sweep's command its jobs ran on and wrote their folders (a
    user trial, 22-27 s later). Each job now watches the controller's parent and ends within seconds,
    as an interrupted job (no folder of it finished)."""
    out = tmp_path / "sl"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "-m", "replicate=0,1", "n_agents=3000000",
                             "horizon.end_year=2100", "hydra/launcher=submitit_local",
                             "hydra.launcher.timeout_min=10", f"hydra.sweep.dir={out}"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def jobs() -> list[int]:
        found = subprocess.run(["pgrep", "-f", f"submitit.core._submit {out}"], capture_output=True, text=True)
        return [int(p) for p in found.stdout.split()]

    end = time.time() + 120
    while time.time() < end and len(jobs()) < 2:
        time.sleep(0.5)
    assert len(jobs()) == 2, "the two jobs never started"
    time.sleep(3)  # into their runs
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    end = time.time() + 12
    while time.time() < end and jobs():
        time.sleep(0.5)
    left = jobs()
    for pid in left:  # (not to leave them running if the test fails)
        os.kill(pid, signal.SIGKILL)
    assert not left, "submitit_local jobs outlived the sweep's command"
    assert not list(out.rglob("COMPLETE"))


def test_jobs_without_a_folder_beside_write_faults_are_not_said_to_be_stopped_only(tmp_path, capsys):
    """On a full disk, a job that found no room for its folder was reported as "not started ... (the sweep
    was stopped before them)" (a user trial). Beside jobs the machine could not write, the line says
    either may be why."""
    from sim.aggregate import report

    pd.DataFrame({"job": ["a", "b"], "status": ["ok", "failed"], "error": ["", "disk full"]}).to_csv(
        tmp_path / "runs.csv", index=False)
    base = {"ok": 1, "failed": 1, "missing": 0, "running": 0, "not_started": 1, "planned": 3}
    for faults, says in ((1, "or the machine could not make their folders"), (0, "(the sweep was stopped before them)")):
        report(tmp_path, {**base, "faults": faults})
        line = [x for x in capsys.readouterr().err.splitlines() if x.startswith("  not started:")][0]
        assert says in line and ("could not make" in line) == bool(faults), line
