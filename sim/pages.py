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
that choice (NUMPY_MADVISE_HUGEPAGE=1: huge pages for the model too). Smaller models are left alone:
their arrays are below numpy's 4 MiB threshold.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

#: models from this many agents switch numpy's huge-page request off (a float32 column of 1,048,576
#: workers is 4 MiB, numpy's threshold; int64 indices of half as many reach it too)
FROM_AGENTS = 500_000
NUMPY_ENV = "NUMPY_MADVISE_HUGEPAGE"

try:
    from numpy._core.multiarray import _set_madvise_hugepage as _set
except ImportError:  # pragma: no cover - numpy moved its switch: numpy's default stays
    _set = None

_LOCK = threading.Lock()
_depth = 0  # models (threads) inside small_pages now: the first in turns the request off, the last out restores it
_before = True


def wanted(n_agents: int) -> bool:
    """Whether a model of `n_agents` runs in ordinary pages: large, numpy's switch found, and the
    user has not set numpy's environment variable."""
    return n_agents >= FROM_AGENTS and _set is not None and NUMPY_ENV not in os.environ


@contextlib.contextmanager
def ordinary_pages() -> Iterator[None]:
    """numpy's huge-page request off inside (for every thread: numpy's switch is process-wide, and
    nested or concurrent models share one switch-off), restored when the last one leaves."""
    global _depth, _before
    with _LOCK:
        if _depth == 0:
            _before = bool(_set(False))
        _depth += 1
    try:
        yield
    finally:
        with _LOCK:
            _depth -= 1
            if _depth == 0:
                _set(_before)


def for_model(n_agents: int) -> contextlib.AbstractContextManager:
    """The context a model of `n_agents` builds and steps in: `ordinary_pages` if `wanted`, else none."""
    return ordinary_pages() if wanted(n_agents) else contextlib.nullcontext()
