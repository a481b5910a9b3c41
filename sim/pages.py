"""Ordinary memory pages for a large model's arrays: a speed choice, the numbers never change.

numpy asks Linux for transparent huge pages (madvise MADV_HUGEPAGE) for every array of 4 MiB or
more. Where the kernel honours that by compacting memory on the array's first write (THP `defrag` set
to `madvise`, the default of most distributions), and above all on a virtual machine whose host backs
the guest's memory as it is first touched, writing a new array costs several times what it costs in
4 KiB pages. Measured on the benchmark machine (benchmarks/README.md, thirty-first step): the first
write of a new 23 MB array, one float32 column of 5.7 million workers, took 46 ms with numpy's request
and 7.7 ms without; a full-scale run's construction, which writes about 300 MB of new columns and
buffers, took 0.60-0.97 s against 0.53-0.58 s in fresh processes; its steps were the same either
way (they write into memory already touched).

So while a model of `FROM_AGENTS` or more builds its workforce and runs its months, numpy's request is
off, and numpy's setting is restored afterwards, so that other code in the process keeps numpy's
default. A user who has chosen, with numpy's own environment variable NUMPY_MADVISE_HUGEPAGE, keeps
that choice. Smaller models are left alone: their arrays are below numpy's 4 MiB threshold.
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
