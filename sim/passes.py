"""Which implementation of the per-worker passes a run uses: compiled (sim.kernels, numba) or numpy
(sim.kernels_numpy). Both give the same bytes (tests/test_compiled.py), so the choice is about speed
only.

Loading numba and its compiled code costs about 0.25 s per process, once. The compiled passes save
more than that only for large workforces, or over many runs in one process. So:

- `SKILLSIM_KERNELS=compiled` or `numpy` forces a choice;
- otherwise (`auto`) a run of at least `COMPILED_FROM` agents uses the compiled passes, and so does
  every run in a process that runs many (the batch runner and sweeps set `compiled` for their
  workers, see `use_compiled_in_workers`).

A run of at least `COMPILED_FROM` agents in a process that has not loaded the compiled passes loads
them all on a second thread while it builds its workforce (`sim.kernels.warm_in_background`), so
that most of the loading overlaps the construction; the construction waits for that thread at its
end (`built`).
"""

from __future__ import annotations

import os
from types import ModuleType

ENV = "SKILLSIM_KERNELS"
CHOICES = ("auto", "compiled", "numpy")
#: agents from which a single run is faster with the compiled passes, load time included
#: (benchmarks/README.md, section (d))
COMPILED_FROM = 250_000


def choice() -> str:
    """The implementation asked for; an unknown value is `auto`, with one warning naming it (the
    passes give the same bytes, so a typo costs speed, never results)."""
    value = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if value in CHOICES:
        return value
    from .errors import warn_setting

    warn_setting(ENV, value, f"is not one of {', '.join(CHOICES)}; using auto")
    return "auto"


def select(n_agents: int) -> ModuleType:
    """The passes module for a run of `n_agents` agents."""
    how = choice()
    if how == "compiled" or (how == "auto" and n_agents >= COMPILED_FROM):
        from . import kernels

        if n_agents >= COMPILED_FROM:  # the kernels load on the second core while the workforce is built;
            kernels.warm_in_background()  # a small workforce is built at once, and would wait for all of them
        return kernels
    from . import kernels_numpy

    return kernels_numpy


def built(module: ModuleType, n_agents: int) -> None:
    """A model of `n_agents` chose `module` and has built its workforce: wait for the kernels `select`
    started loading on a second thread for it, if it did (a small model built meanwhile on another
    thread does not wait: it loads what it calls, as it calls it)."""
    if n_agents >= COMPILED_FROM and hasattr(module, "warmed"):
        module.warmed()


def use_compiled_in_workers(wait_for_compiling: bool = True) -> None:
    """Before starting worker processes that run many models: compile the kernels once here if the
    cache is cold (not in every worker at once) and let the workers use them (each on one thread, as
    any pool's worker: sim.kernels.threads). With `wait_for_compiling` False (the explorer, where a
    person waits for the first chart), a cold cache is filled by a separate process started here,
    and this process's workers use the numpy passes meanwhile (the same numbers, more slowly)."""
    if choice() == "numpy":
        return
    from . import kernels

    if not wait_for_compiling and not kernels.cached():
        compile_in_background()
        os.environ[ENV] = "numpy"
        return
    kernels.warm()
    os.environ[ENV] = "compiled"


_COMPILING: list = []  # the process compile_in_background started, once per process


def compile_in_background() -> None:
    """Start `python -m sim.kernels` (kernels.warm) as a process of its own, once: it fills numba's
    cache for the next session while this one goes on; its output is dropped, and it outlives nothing
    it must (a cache file is written whole or not at all by numba)."""
    import subprocess
    import sys

    if not _COMPILING:
        _COMPILING.append(subprocess.Popen([sys.executable, "-m", "sim.kernels"], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True))
