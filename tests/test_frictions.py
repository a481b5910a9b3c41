"""Small frictions a newcomer hits: job counts, --baseline spelling, calibration file, progress lines."""

from __future__ import annotations

import json
import os
import logging
import time

import pandas as pd
import pytest
from omegaconf import OmegaConf

from sim import sweep
from sim.aggregate import choose_baseline, matches, same_value
from sim.config import CalibrationMissing, load_calibration
from sim.errors import DataError
from sim.results import COMPLETE_MARKER


def _multirun(params: dict, task: list[str]):
    return OmegaConf.create({"hydra": {"sweeper": {"params": params}, "overrides": {"task": task}}})


@pytest.mark.parametrize("params, task, n", [
    # +sweep=training_vs_studios with a shorter replicate list on the command line: 4 x 4 x 2, not 80
    ({"levers.training.intensity": "1,0,2,4", "levers.studio.intensity": "1,0,2,4", "replicate": "range(0,5)"},
     ["+sweep=training_vs_studios", "replicate=range(0,2)"], 32),
    ({"levers.training.intensity": "1,0,2,4", "levers.studio.intensity": "1,0,2,4", "replicate": "range(0,5)"},
     ["+sweep=training_vs_studios"], 80),
    ({}, ["scenario=baseline,no_policy", "replicate=range(0,3)", "n_agents=1000"], 6),
    ({"replicate": "range(0,20)"}, ["scenario=baseline,combined,no_policy", "replicate=0,1"], 6),
])
def test_job_count_follows_the_command_line_as_hydra_does(params, task, n):
    assert sweep.count_jobs(_multirun(params, task)) == n


def _runs(values):
    return pd.DataFrame({"status": "ok", "levers.training.intensity": values, "replicate": 0,
                         "job_num": range(len(values))})


@pytest.mark.parametrize("written", ["0", "0.0", "0.00", "0e0", " 0"])
def test_baseline_matches_a_number_however_it_is_written(written):
    for column in ([1, 0, 2, 4], [1.0, 0.0, 2.5, 4.0]):  # job folders named ...=0 or ...=0.0
        base = choose_baseline(_runs(column), ["levers.training.intensity"], f"levers.training.intensity={written}")
        assert float(base["levers.training.intensity"]) == 0


def test_baseline_that_matches_nothing_names_what_there_is():
    """A value no job of the sweep has (a misspelt one) is the user's mistake: a config error (exit 2); it
    exited 3, as a damaged folder (a user trial). A value only failed jobs have is the sweep's state (exit 3)."""
    from sim.errors import ConfigError

    with pytest.raises(ConfigError, match=r"baseline = 'levers.training.intensity=3' is invalid; allowed: a setting "
                                          r"the sweep ran \(levers.training.intensity: 1, 0, 2\)"):
        choose_baseline(_runs([1, 0, 2]), ["levers.training.intensity"], "levers.training.intensity=3")
    # a combination no job ran, though each value is in some job (an Optuna sweep, not a grid): the same
    pair = pd.DataFrame({"status": "ok", "a": [0, 1], "b": [0, 1], "replicate": 0, "job_num": [0, 1]})
    with pytest.raises(ConfigError, match=r"baseline = 'a=0,b=1' is invalid; allowed: a setting the sweep ran "
                                          r"\(a=0,b=0; a=1,b=1\)"):  # the combinations, not each key's values
        choose_baseline(pair, ["a", "b"], "a=0,b=1")
    runs = _runs([1, 0, 2, 3]).assign(status=["ok", "ok", "ok", "failed"])
    with pytest.raises(DataError, match=r"no finished job has that setting \(finished: levers.training.intensity: 1, 0, 2"):
        choose_baseline(runs, ["levers.training.intensity"], "levers.training.intensity=3")


@pytest.mark.parametrize("given", ["nonsense", "levers.training.intensity=0,nonsense", ","])
def test_a_baseline_that_is_not_key_value_is_refused(given):
    """It once fell back to the default baseline silently (exit 0, the wrong effects). A wrong option is a
    config error (exit 2), as every other bad option of the command; it exited 3, as a damaged folder."""
    from sim.errors import EXIT_CONFIG, ConfigError

    with pytest.raises(ConfigError, match=r"baseline = .* is invalid; allowed: key=value\[,key=value...\] of the "
                                          r"swept settings, e.g. levers.training.intensity=1") as err:
        choose_baseline(_runs([1, 0, 2]), ["levers.training.intensity"], given)
    assert err.value.exit_code == EXIT_CONFIG
    with pytest.raises(ConfigError, match=r"baseline = 'scenario=no_policy' is invalid; allowed: key=value of the "
                                          r"swept settings \(levers.training.intensity\); 'scenario' is not one"):
        choose_baseline(_runs([1, 0, 2]), ["levers.training.intensity"], "scenario=no_policy")


def test_value_matching_keeps_different_values_apart():
    assert same_value("true", True) and same_value("False", "false") and same_value(2, "2.0")
    assert not same_value(0, "0.001") and not same_value("baseline", "baseline2") and not same_value("1", "true")
    assert matches(pd.Series(["a", "0.50", 0.5, 1]), 0.5).tolist() == [False, True, True, False]


def test_a_missing_or_empty_calibration_file_is_a_loud_error(tmp_path, monkeypatch):
    monkeypatch.delenv("SKILLSIM_UNCALIBRATED", raising=False)
    with pytest.raises(CalibrationMissing, match="calibration.yaml is missing"):
        load_calibration(tmp_path / "calibration.yaml")
    (tmp_path / "empty.yaml").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(CalibrationMissing, match="holds no calibrated values"):
        load_calibration(tmp_path / "empty.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1,\n", encoding="utf-8")
    with pytest.raises(CalibrationMissing, match="cannot be read"):
        load_calibration(tmp_path / "bad.yaml")
    monkeypatch.setenv("SKILLSIM_UNCALIBRATED", "1")
    with pytest.warns(UserWarning, match="priors"):
        assert load_calibration(tmp_path / "calibration.yaml") == {}


def test_a_console_command_on_the_priors_says_so_in_one_line(tmp_path):
    """The warning printed as Python's UserWarning, with a source file, a line number and the call (a
    user trial): a console command says it as one line of its own."""
    import subprocess
    import sys

    env = dict(os.environ, SKILLSIM_UNCALIBRATED="1")
    proc = subprocess.run([sys.executable, "-m", "sim", "--help"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("skillsim: warning: SKILLSIM_UNCALIBRATED=1: running on the assumed priors, not the "
                           "calibrated values\n")


def test_the_shipped_calibration_is_found_through_the_package():
    import sim.config

    assert sim.config.CALIBRATION_FILE.parent.parent == __import__("pathlib").Path(sim.config.__file__).parent
    assert load_calibration()["provenance"]["written_by"].startswith("skillsim-calibrate")


def test_two_workers_finishing_together_log_the_count_once(tmp_path, caplog, monkeypatch):
    """Two processes of one sweep (joblib's workers) that count the same jobs done log the line once;
    a later count is logged again, and a new sweep into the folder starts afresh."""
    import subprocess
    import sys

    monkeypatch.setattr(sweep, "PROGRESS_EVERY_S", 0)
    (tmp_path / sweep.PROGRESS_FILE).write_text(json.dumps({"total": 4, "started": time.time() - 1}))
    for i in range(2):
        (tmp_path / f"job{i}").mkdir()
        (tmp_path / f"job{i}" / COMPLETE_MARKER).write_text("ok\n")
    other = subprocess.run([sys.executable, "-c", "import logging, sys, pathlib; from sim import sweep; "
                            "logging.basicConfig(level=logging.INFO); sweep.log_progress(pathlib.Path(sys.argv[1]))",
                            str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert "sweep progress: 2/4 jobs done" in other.stderr, other.stderr  # the other worker said it first
    with caplog.at_level(logging.INFO, logger="skillsim"):
        sweep.log_progress(tmp_path)
        assert not caplog.records, "the same count again"
        (tmp_path / "job2").mkdir()
        (tmp_path / "job2" / COMPLETE_MARKER).write_text("ok\n")
        sweep.log_progress(tmp_path)
        sweep.log_progress(tmp_path)
        (tmp_path / sweep.PROGRESS_FILE).write_text(json.dumps({"total": 4, "started": time.time() - 0.5}))
        (tmp_path / "job3").mkdir()
        (tmp_path / "job3" / COMPLETE_MARKER).write_text("ok\n")
        sweep.log_progress(tmp_path)  # a new sweep (its own start) into the same folder
    assert [r.getMessage().split(", elapsed")[0] for r in caplog.records] == \
        ["sweep progress: 3/4 jobs done", "sweep progress: 4/4 jobs done"]


def test_a_resumed_finished_sweep_does_not_repeat_progress_lines(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(sweep, "PROGRESS_EVERY_S", 0)  # every call counts (the throttle is tested apart)
    started = time.time()
    for i in range(3):
        (tmp_path / f"job{i}").mkdir()
        (tmp_path / f"job{i}" / COMPLETE_MARKER).write_text("ok\n")
    time.sleep(0.05)
    (tmp_path / sweep.PROGRESS_FILE).write_text(json.dumps({"total": 4, "started": time.time()}))
    with caplog.at_level(logging.INFO, logger="skillsim"):
        for _ in range(3):  # three skipped jobs end: nothing new, no "ETA unknown"
            sweep.log_progress(tmp_path)
        assert not caplog.records
        (tmp_path / "job3").mkdir()
        (tmp_path / "job3" / COMPLETE_MARKER).write_text("ok\n")  # the one job that ran
        sweep.log_progress(tmp_path)
    assert [r.getMessage().split(", elapsed")[0] for r in caplog.records] == ["sweep progress: 4/4 jobs done"]
    assert "ETA" not in caplog.records[0].getMessage() and started <= time.time()


def test_an_optimisers_progress_counts_trials_which_may_share_a_job_folder(tmp_path, caplog, monkeypatch):
    """Optuna's trials with the same settings share one job folder: counted by folders, a study of 6
    trials over 3 settings ended at "3/6 jobs done". Each trial is counted (sweep.trial_done); a study
    run again into the folder counts its own trials only (they are numbered from 0 again)."""
    monkeypatch.setattr(sweep, "PROGRESS_EVERY_S", 0)
    (tmp_path / sweep.TRIALS_DIR).mkdir()
    for old in ("0", "7"):  # trials of an earlier study in the folder
        (tmp_path / sweep.TRIALS_DIR / old).touch()
        os.utime(tmp_path / sweep.TRIALS_DIR / old, (time.time() - 60, time.time() - 60))
    # the record's clock: a file system whose clock is behind this machine's (a cluster's) counts its own
    (tmp_path / sweep.PROGRESS_FILE).write_text(json.dumps({"total": 6, "started": time.time() + 30}))
    for i in range(3):
        (tmp_path / f"job{i}").mkdir()
        (tmp_path / f"job{i}" / COMPLETE_MARKER).write_text("ok\n")
    with caplog.at_level(logging.INFO, logger="skillsim"):
        for num in range(6):
            sweep.trial_done(tmp_path, num)
            sweep.log_progress(tmp_path)
    lines = [r.getMessage().split(", elapsed")[0] for r in caplog.records]
    assert lines == [f"sweep progress: {k}/6 jobs done" for k in range(1, 7)]
    assert sorted(p.name for p in (tmp_path / sweep.TRIALS_DIR).iterdir()) == [str(k) for k in range(6)] + ["7"]


def test_a_resumed_studys_eta_leaves_out_trials_answered_from_finished_folders(tmp_path, caplog, monkeypatch):
    """A study run again into its folder answers its first trials at once from finished job folders;
    counted as fresh, they made the rate high and the ETA too low (10 s spent on 1 run and 3 answers,
    2 trials left: 5 s said, 20 s true). They count as done, and the rate is the trials that ran."""
    monkeypatch.setattr(sweep, "PROGRESS_EVERY_S", 0)
    (tmp_path / sweep.PROGRESS_FILE).write_text(json.dumps({"total": 6, "started": time.time() - 10}))
    with caplog.at_level(logging.INFO, logger="skillsim"):
        for num in range(3):
            sweep.trial_done(tmp_path, num, ran=False)
            sweep.log_progress(tmp_path)
        assert not caplog.records, "no trial ran yet: no rate for an ETA"
        sweep.trial_done(tmp_path, 3)
        sweep.log_progress(tmp_path)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("sweep progress: 4/6 jobs done"), line
    eta = float(line.rsplit("ETA ", 1)[1].split()[0])
    elapsed = float(line.split("elapsed ")[1].split()[0])
    assert abs(eta - 2 * elapsed) <= 2, line  # 2 left at the rate of 1 run in `elapsed` (rounded to 1 s)


def test_a_study_answered_wholly_from_finished_folders_says_it_is_complete(tmp_path, caplog, monkeypatch):
    """Run again into its folder, a study whose every trial has a finished folder runs nothing: no
    rate, so no line on the way, and the last count said once, without an ETA."""
    monkeypatch.setattr(sweep, "PROGRESS_EVERY_S", 0)
    (tmp_path / sweep.PROGRESS_FILE).write_text(json.dumps({"total": 3, "started": time.time()}))
    with caplog.at_level(logging.INFO, logger="skillsim"):
        for num in range(3):
            sweep.trial_done(tmp_path, num, ran=False)
            sweep.log_progress(tmp_path)
        sweep.log_progress(tmp_path, force=True)  # the sweep's end
    assert [r.getMessage().split(", elapsed")[0] for r in caplog.records] == ["sweep progress: 3/3 jobs done"]
    assert "ETA" not in caplog.records[0].getMessage()
