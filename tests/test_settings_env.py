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


@pytest.mark.parametrize("value, expected", [("3", 3), ("1", 1), (" 2 ", 2), ("", None)])
def test_a_usable_number_of_jobs_is_taken_silently(monkeypatch, warnings, value, expected):
    monkeypatch.setenv("SKILLSIM_JOBS", value)
    assert batch.n_jobs() == (expected or max(1, os.cpu_count() or 1))
    assert warnings() == []


@pytest.mark.parametrize("value", ["two", "0", "-3", "1.5"])
def test_an_unusable_number_of_jobs_is_one_per_core_with_one_warning(monkeypatch, warnings, value):
    monkeypatch.setenv("SKILLSIM_JOBS", value)
    cores = max(1, os.cpu_count() or 1)
    assert batch.n_jobs() == cores and batch.n_jobs() == cores
    assert warnings() == [f"SKILLSIM_JOBS={value} is not a whole number of processes >= 1; "
                          f"using {cores} (one per core)"]


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
