"""sim.pages: a large model builds and steps with numpy's huge-page request off, restores numpy's
setting afterwards, leaves a user's NUMPY_MADVISE_HUGEPAGE alone, and gives the same bytes."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import sim.model as model_module
from sim import WorkforceModel, pages
from sim.workforce import Workforce

from .conftest import small_config

if pages._set is None:  # numpy moved its switch: sim.pages leaves numpy's default alone, nothing to test
    pytest.skip("numpy has no _set_madvise_hugepage", allow_module_level=True)
from numpy._core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage  # noqa: E402


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
    build = model_module.WorkforceModel._build_start_state

    def recording_phases(self):
        seen.append(_get_madvise_hugepage())
        phases(self)

    def recording_build(self, *args):
        seen.append(_get_madvise_hugepage())
        build(self, *args)

    monkeypatch.setattr(model_module.WorkforceModel, "_phases", recording_phases)
    monkeypatch.setattr(model_module.WorkforceModel, "_build_start_state", recording_build)
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


def test_an_entry_interrupted_after_the_switch_still_restores_numpys_own_setting(monkeypatch, numpy_default):
    """Ctrl-C between switching numpy's request off and counting the model in: the next model to leave
    restores numpy's setting as it was before any of them, not the switched-off one."""
    real = pages._set

    def interrupted(flag):
        real(flag)
        raise KeyboardInterrupt  # lands right after the switch, before the count

    monkeypatch.setattr(pages, "_set", interrupted)
    with pytest.raises(KeyboardInterrupt):
        with pages.ordinary_pages():
            pass
    monkeypatch.setattr(pages, "_set", real)
    assert _get_madvise_hugepage() is False and pages._depth == 0
    with pages.ordinary_pages():
        assert _get_madvise_hugepage() is False
    assert _get_madvise_hugepage() is True


def test_a_child_forked_inside_a_model_gets_numpys_setting_back(numpy_default):
    read, write = os.pipe()
    with pages.ordinary_pages():
        pid = os.fork()
        if pid == 0:  # the child: no model runs here
            try:
                os.write(write, b"1" if (_get_madvise_hugepage() and pages._depth == 0) else b"0")
            finally:
                os._exit(0)
        os.close(write)
        assert _get_madvise_hugepage() is False  # the parent's model is still inside
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)
