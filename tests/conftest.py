"""Shared fixtures: small, fast configurations built without Hydra."""

from __future__ import annotations

import dataclasses
import logging

import pytest

import sim.model as model_module
from sim import WorkforceModel
from sim.certification import WAITS
from sim.config import HorizonParams, RunConfig

#: The test files that take longest in the default run (their tests' summed seconds on 2026-12-08: 42, 33,
#: 30, 20, 17, 17, 15, 13, 10, 10, 9), longest first. They go to the workers first (pyproject.toml's
#: --no-loadscope-reorder keeps this order; pytest-xdist would order the files by their number of
#: tests), so that the run does not end with one worker on a long file while the other waits. Files not
#: listed follow, in their usual order.
LONGEST_FIRST = ("test_sensitivity", "test_report", "test_sweep", "test_bad_inputs", "test_compiled",
                 "test_compose_cache", "test_cli", "test_posterior", "test_sweep_faults", "test_api", "test_explorer")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a file's tests keep their order


def pytest_collection_finish(session):
    """What the collection imported (Hydra, pandas, matplotlib, the package) lives as long as the
    worker: kept out of the garbage collector's full passes, which otherwise walk it again each time
    (3.8-6.1 s a worker over the default run)."""
    import gc

    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _root_logging_left_as_found():
    """A command run in-process (Hydra's configure_log, a CLI's basicConfig) points the root logger
    at that test's captured stderr, which pytest closes afterwards: a later test that logs then gets
    "--- Logging error ---" and a traceback in its own stderr. Handlers a test added are removed
    (pytest's own capture handlers are left alone) and the root level is put back."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before and type(handler).__module__ == "logging":
            root.removeHandler(handler)
    root.setLevel(level)


#: For command-line tests whose subject is not the history: a spin-up of one year instead of ten
#: (Chongqing's history starts cold in 2012-10 by default), so each run builds in a fraction of the time.
SHORT_HISTORY = "region.history.origin=2021-12"


def small_config(n_agents: int = 5000, end_year: int = 2026, **changes) -> RunConfig:
    """Chongqing status quo with few agents and a short horizon."""
    return dataclasses.replace(RunConfig(), n_agents=n_agents,
                               horizon=HorizonParams(end_year=end_year), **changes)


def own_preset(name: str, *changes: tuple[str, str]) -> str:
    """Chongqing's region preset as a user copies it for a region of their own (README, "Your own
    region"): its name and display names changed, then each (old, new) text replacement made."""
    from sim.cli import CONFIG_DIR

    text = (CONFIG_DIR / "region" / "chongqing.yaml").read_text(encoding="utf-8")
    for old, new in (("name: chongqing", f"name: {name}"), ("label_en: Chongqing", f"label_en: {name.title()}"),
                     ("label_zh: 重庆", f"label_zh: {name}"), *changes):
        assert old in text, old
        text = text.replace(old, new)
    return text


def with_lever(cfg: RunConfig, lever: str, **changes) -> RunConfig:
    """Copy of cfg with some fields of one lever changed."""
    levers = dataclasses.replace(cfg.levers, **{lever: dataclasses.replace(getattr(cfg.levers, lever), **changes)})
    return dataclasses.replace(cfg, levers=levers)


@pytest.fixture(autouse=True, scope="session")
def _no_history_on_disk():
    """The disk layer of sim.history_reuse off for the whole session, module fixtures and the
    commands they start included: tests never write into the user's cache folder nor read from it."""
    from sim import history_reuse

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(history_reuse.DISK_ENV, "0")
        yield


@pytest.fixture(autouse=True)
def _fresh_history_cache(monkeypatch):
    """Each test starts with no kept histories (sim.history_reuse) and without the disk layer (shared
    by the test processes and the commands they start), so that what one test ran, with its own
    patches, never stands in for another's history. tests/test_history_reuse.py turns it on."""
    from sim import history_reuse

    history_reuse.CACHE.clear()
    monkeypatch.setenv(history_reuse.DISK_ENV, "0")
    monkeypatch.delenv(history_reuse.KEEP_ENV, raising=False)
    yield


@pytest.fixture
def small() -> RunConfig:
    return small_config()


class CheckedModel(WorkforceModel):
    """Counts, at each certification, passers who had not served the wait less credit or met the standard."""

    violations = certified = 0

    def _certify(self):
        wf = self.workforce
        original = model_module.certify

        def checked(wf_, *args, **kwargs):
            passed = original(wf_, *args, **kwargs)
            lvl = wf.level[passed]
            served = wf.months_at_level[passed] >= WAITS[lvl] - wf.credit[passed]
            self.violations += int((~served).sum()) + int((wf.progress[passed] < 1).sum())
            self.certified += passed.size
            return passed

        model_module.certify = checked
        try:
            super()._certify()
        finally:
            model_module.certify = original


@pytest.fixture
def refused(capsys):
    """refused(main, argv) -> (exit code, stderr) of a command's `main` run in this process: a bad
    option's one-line error without the cost of a new interpreter (each command keeps one test in its
    own process, where the exit code is the process's). The SIGTERM handler the command installs is
    put back."""
    import signal

    def call(main, argv: list[str]) -> tuple[int, str]:
        old = signal.getsignal(signal.SIGTERM)
        capsys.readouterr()
        try:
            with pytest.raises(SystemExit) as exc:
                main(argv)
        finally:
            signal.signal(signal.SIGTERM, old)
        return exc.value.code, capsys.readouterr().err

    return call
