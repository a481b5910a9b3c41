"""Ordinary memory pages for a large model's arrays: a speed choice, the numbers never change.

numpy asks Linux for transparent huge pages (madvise MADV_HUGEPAGE) for every array of 4 MiB or
more. A huge page needs 2 MiB of free memory in one block, and on the benchmark machine (a virtual
machine whose idle memory goes back to its host: benchmarks/README.md, twenty-ninth step) such
blocks are the memory the host has taken back, so the first write of a new array in huge pages
waited for the host: 46 ms for a 23 MB array (one float32 column of 5.7 million workers) against
7.7 ms in 4 KiB pages. Right after another process had freed its huge pages the same write took 1.9
ms in huge pages, faster than in small ones; but a full-scale run writes 300-450 MB of new columns
and buffers, more than such a machine keeps at hand, and in fresh processes its construction took
0.60-1.10 s with numpy's request against 0.53-0.60 s without, with the steps unchanged (they write
into memory already touched); (d) paired against the baseline commit, 2.07x with against 2.22x
without (benchmarks/README.md, thirty-first step). On a machine that keeps its memory, huge pages
may cost nothing on first write; the choice is then the user's, below.

So while a model of `FROM_AGENTS` or more builds its workforce and runs its months, numpy's request is
off, and numpy's setting is restored afterwards, so that other code in the process keeps numpy's
default. A user who has chosen, with numpy's own environment variable NUMPY_MADVISE_HUGEPAGE, keeps
that choice (NUMPY_MADVISE_HUGEPAGE=1: huge pages for the model too). The months are inside too: a
run's scratch buffers and numpy's temporaries are new memory in its first months. Smaller models are
left alone: their float32 columns are below numpy's 4 MiB threshold (a few int64 buffers of one that
grows past 514,000 workers are not). The switch is process-wide, so other threads allocating while a
large model runs (the explorer's, a notebook's) get ordinary pages too; it changes speed only.
"""

from __future__ import annotations

import contextlib
import os
import threading

#: models from this many agents switch numpy's huge-page request off (a float32 column of 1,048,576
#: workers is 4 MiB, numpy's threshold; int64 indices of half as many reach it too)
FROM_AGENTS = 500_000
NUMPY_ENV = "NUMPY_MADVISE_HUGEPAGE"

try:
    from numpy._core.multiarray import _get_madvise_hugepage as _get, _set_madvise_hugepage as _set
except ImportError:  # pragma: no cover - numpy moved its switch: numpy's default stays
    _get = _set = None

_LOCK = threading.Lock()
_depth = 0  # models (threads) inside ordinary_pages now: the first in turns the request off, the last out restores it
_ours = False  # whether the request is off because of this module (then `_before` is what to restore)
_before = True


def wanted(n_agents: int) -> bool:
    """Whether a model of `n_agents` runs in ordinary pages: large, numpy's switch found, and the
    user has not set numpy's environment variable."""
    return n_agents >= FROM_AGENTS and _set is not None and NUMPY_ENV not in os.environ


class _OrdinaryPages:
    """numpy's huge-page request off inside (for every thread: numpy's switch is process-wide, and
    nested or concurrent models share one switch-off), restored when the last one leaves. A class, not
    a generator: a month enters it once (as sim.errors.interrupts_kept). An interrupt between the switch
    and the count leaves `_ours` set, so the next model restores numpy's own setting, not the switched one."""

    def __enter__(self) -> None:
        global _depth, _ours, _before
        if _set is None:
            return
        with _LOCK:
            if not _ours:  # read, marked, then switched: an interrupt anywhere leaves `_before` right
                _before = bool(_get())
                _ours = True
                _set(False)
            _depth += 1

    def __exit__(self, *exc) -> None:
        global _depth, _ours
        if _set is None:
            return
        with _LOCK:
            _depth = max(0, _depth - 1)
            if _depth == 0 and _ours:
                _set(_before)
                _ours = False


def ordinary_pages() -> contextlib.AbstractContextManager:
    """The context that keeps numpy's huge-page request off (`_OrdinaryPages`); nothing if numpy has no switch."""
    return _ORDINARY


def for_model(n_agents: int) -> contextlib.AbstractContextManager:
    """The context a model of `n_agents` builds and steps in: `ordinary_pages` if `wanted`, else none."""
    return _ORDINARY if wanted(n_agents) else _NOTHING


_ORDINARY = _OrdinaryPages()
_NOTHING = contextlib.nullcontext()


def _after_fork_in_child() -> None:
    """A child forked while a thread of its parent was inside: no model runs in the child's copy of
    that thread, so numpy's setting is restored and the lock is new (it may have been held)."""
    global _LOCK, _depth, _ours
    _LOCK = threading.Lock()
    if _ours and _set is not None:
        _set(_before)
    _depth, _ours = 0, False


os.register_at_fork(after_in_child=_after_fork_in_child)
