"""Environment settings that cannot be used as given: the run goes on with the default, and says so
once (a setting that silently did nothing looks like one that worked)."""

from __future__ import annotations

import os

import pytest

from sim import compose_cache, errors, history_reuse
from sim.studies import batch


@pytest.fixture
def warnings(monkeypatch, caplog):
    monkeypatch.setattr(errors, "_WARNED_SETTINGS", set())
    caplog.set_level("WARNING", logger="skillsim")

    def said() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "skillsim"]

    return said


@pytest.fixture
def five_cores(monkeypatch):
    """joblib counts five usable cores (its count, not this machine's: a CPU quota or LOKY_MAX_CPU_COUNT
    on a test machine changes it)."""
    import joblib

    monkeypatch.setattr(joblib, "cpu_count", lambda *a, **k: 5)
    return 5


@pytest.mark.parametrize("value, expected", [("3", 3), ("1", 1), (" 2 ", 2), ("", 5)])
def test_a_usable_number_of_jobs_is_taken_silently(monkeypatch, warnings, five_cores, value, expected):
    monkeypatch.setenv("SKILLSIM_JOBS", value)
    assert batch.n_jobs() == expected
    assert warnings() == []


@pytest.mark.parametrize("value", ["two", "0", "-3", "1.5"])
def test_an_unusable_number_of_jobs_is_one_per_core_with_one_warning(monkeypatch, warnings, five_cores, value):
    monkeypatch.setenv("SKILLSIM_JOBS", value)
    cores = five_cores
    assert batch.n_jobs() == cores and batch.n_jobs() == cores
    assert warnings() == [f"SKILLSIM_JOBS={value} is not a whole number of processes >= 1; "
                          f"using {cores} (one per core this process may use)"]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two cores")
def test_the_default_number_of_jobs_is_the_cores_this_process_may_use():
    """A study in a cluster allocation (the scheduler pins the job to some of the node's cores) starts
    one process per allowed core, not one per core of the node: os.cpu_count() counted the node's."""
    import subprocess
    import sys

    one = min(os.sched_getaffinity(0))
    code = (f"import os; os.sched_setaffinity(0, {{{one}}}); from sim.studies import batch; "
            "print(batch.n_jobs(), os.cpu_count())")
    env = {k: v for k, v in os.environ.items() if k not in ("SKILLSIM_JOBS", "LOKY_MAX_CPU_COUNT")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    jobs, machine = map(int, out.stdout.split())
    assert (jobs, machine) == (1, os.cpu_count())
    capped = subprocess.run([sys.executable, "-c", "from sim.studies import batch; print(batch.n_jobs())"],
                            capture_output=True, text=True, env={**env, "LOKY_MAX_CPU_COUNT": "1"}, check=True)
    assert capped.stdout.split() == ["1"]


@pytest.mark.parametrize("env, read, default", [(history_reuse.ENV, history_reuse.budget_bytes, 128),
                                                (history_reuse.DISK_ENV, history_reuse.disk_budget_bytes, 1024)])
def test_history_budgets(monkeypatch, warnings, env, read, default):
    for value, mb in (("64", 64), ("0", 0), ("", default), ("0.5", 0.5)):
        monkeypatch.setenv(env, value)
        assert read() == pytest.approx(mb * 1e6)
    assert warnings() == []
    for value in ("lots", "-1", "inf", "nan"):
        monkeypatch.setenv(env, value)
        assert read() == pytest.approx(default * 1e6)
    assert warnings() == [f"{env}={v} is not a number of megabytes >= 0 (0 turns the layer off); using {default}"
                          for v in ("lots", "-1", "inf", "nan")]


def test_a_cache_folder_that_cannot_be_written_is_said_once_and_the_run_goes_on(monkeypatch, warnings, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv(compose_cache.ENV, str(blocker))
    from omegaconf import OmegaConf

    for _ in range(2):
        compose_cache.store(["n_agents=300"], "cli", OmegaConf.create({"x": 1}))  # must not raise
    history_reuse.HistoryCache()._store("k" * 16, object(), 1e9)
    said = warnings()
    assert len(said) == 1 and said[0].startswith(f"SKILLSIM_CACHE_DIR={blocker} cannot be written (")
    assert "set it to a writable folder, or to an empty string to turn the caches off" in said[0]
    assert compose_cache.load(["n_agents=300"], "cli") is None


def test_a_loky_cpu_count_that_is_not_a_number_is_warned_about_not_a_crash(monkeypatch, warnings):
    """joblib reads LOKY_MAX_CPU_COUNT with int(): `abc` made every study fail as a bug of skillsim, even
    with SKILLSIM_JOBS set (which needs no count of the cores)."""
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "abc")
    monkeypatch.setenv("SKILLSIM_JOBS", "1")
    assert batch.n_jobs() == 1 and warnings() == []
    monkeypatch.delenv("SKILLSIM_JOBS")
    import joblib

    counted = batch.n_jobs()
    assert counted == joblib.cpu_count() and counted >= 1
    assert warnings() == ["LOKY_MAX_CPU_COUNT=abc is not a whole number of processes; the cores are counted "
                          "without it"]
    assert "LOKY_MAX_CPU_COUNT" not in os.environ  # joblib reads it again wherever it counts: taken out


def test_lokys_warning_of_a_restarted_worker_is_hidden_from_its_own_thread(tmp_path):
    """loky warns from its management thread when an idle worker stopped while jobs waited (it starts
    another; nothing is lost). The filter matches loky's own text, and holds for a warning from another
    thread; without it the warning reaches stderr."""
    import inspect
    import subprocess
    import sys

    from joblib.externals.loky import process_executor

    source = inspect.getsource(process_executor).replace('"\n', "").replace('                        "', "")
    assert batch.WORKER_RESTART in source, "loky's wording changed: the filter no longer matches"
    code = ("import threading, warnings, sys; from sim.studies import batch\n"
            "if sys.argv[1] == 'quiet': batch.quiet_worker_restarts()\n"
            "t = threading.Thread(target=lambda: warnings.warn(batch.WORKER_RESTART + '. This can be caused by "
            "a too short worker timeout or by a memory leak.', UserWarning)); t.start(); t.join()")
    for mode, shown in (("quiet", False), ("loud", True)):
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, cwd=tmp_path,
                             timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert (batch.WORKER_RESTART in out.stderr) is shown, out.stderr
