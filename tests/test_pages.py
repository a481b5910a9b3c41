"""sim.pages: a large model builds and steps with numpy's huge-page request off, restores numpy's
setting afterwards, leaves a user's NUMPY_MADVISE_HUGEPAGE alone, and gives the same bytes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from numpy._core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage

import sim.model as model_module
from sim import WorkforceModel, pages
from sim.workforce import Workforce

from .conftest import small_config


@pytest.fixture
def numpy_default():
    """numpy's switch on, as numpy starts on Linux, and put back as found."""
    before = _set_madvise_hugepage(True)
    yield
    _set_madvise_hugepage(before)


def seen_while_stepping(monkeypatch, n_agents: int) -> tuple[list[bool], str]:
    """numpy's switch as each month and the construction saw it, and the run's series as CSV."""
    seen: list[bool] = []
    phases = model_module.WorkforceModel._phases
    build = model_module.WorkforceModel._build

    def recording_phases(self):
        seen.append(_get_madvise_hugepage())
        phases(self)

    def recording_build(self, *args):
        seen.append(_get_madvise_hugepage())
        build(self, *args)

    monkeypatch.setattr(model_module.WorkforceModel, "_phases", recording_phases)
    monkeypatch.setattr(model_module.WorkforceModel, "_build", recording_build)
    series = WorkforceModel(small_config(n_agents)).run().series().to_csv(index=False)
    return seen, series


def test_a_large_model_runs_without_the_request_and_restores_it_and_gives_the_same_bytes(monkeypatch, numpy_default):
    monkeypatch.delenv(pages.NUMPY_ENV, raising=False)
    monkeypatch.setattr(pages, "FROM_AGENTS", 3000)  # "large" for the test: a 5,000-agent run
    seen, series = seen_while_stepping(monkeypatch, 5000)
    assert seen and not any(seen)  # the construction and every month (history included) without it
    assert _get_madvise_hugepage() is True  # numpy's setting is back for the rest of the process
    monkeypatch.setattr(pages, "FROM_AGENTS", 10**9)  # the same run with numpy's request on
    seen_small, series_small = seen_while_stepping(monkeypatch, 5000)
    assert seen_small and all(seen_small)
    assert series == series_small  # where the memory comes from never changes a number


def test_a_small_model_and_a_users_own_choice_are_left_alone(monkeypatch, numpy_default):
    monkeypatch.delenv(pages.NUMPY_ENV, raising=False)
    assert not pages.wanted(pages.FROM_AGENTS - 1) and pages.wanted(pages.FROM_AGENTS)
    monkeypatch.setenv(pages.NUMPY_ENV, "1")  # numpy's own variable: the user has chosen
    assert not pages.wanted(5_700_000)
    monkeypatch.setattr(pages, "FROM_AGENTS", 3000)
    seen, _ = seen_while_stepping(monkeypatch, 5000)
    assert seen and all(seen)


def test_nested_and_concurrent_models_share_one_switch_off(numpy_default):
    inside, release = threading.Event(), threading.Event()
    seen_in_thread: list[bool] = []

    def other_model():
        with pages.ordinary_pages():
            inside.set()
            release.wait(10)
            seen_in_thread.append(_get_madvise_hugepage())

    with pages.ordinary_pages():
        worker = threading.Thread(target=other_model)
        worker.start()
        assert inside.wait(10)
        with pages.ordinary_pages():  # nested
            assert _get_madvise_hugepage() is False
        assert _get_madvise_hugepage() is False
    assert _get_madvise_hugepage() is False  # the other thread's model is still inside
    release.set()
    worker.join(10)
    assert seen_in_thread == [False]
    assert _get_madvise_hugepage() is True  # restored when the last one left
    _set_madvise_hugepage(False)  # a process that had turned it off itself gets that back too
    with pages.ordinary_pages():
        pass
    assert _get_madvise_hugepage() is False


def test_extend_reserves_a_block_without_an_index_array():
    wf = Workforce(4)
    assert wf.extend(3) == 0 and wf.n == 3
    assert wf.extend(5) == 3 and wf.n == 8 and wf.capacity >= 8  # grown, the first three kept
    np.testing.assert_array_equal(wf.append(2), [8, 9])
    assert wf.n == 10
