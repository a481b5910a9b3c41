"""Which implementation of the per-worker passes a run uses: compiled (sim.kernels, numba) or numpy
(sim.kernels_numpy). Both give the same bytes (tests/test_compiled.py), so the choice is about speed
only.

Loading numba and its compiled code costs about 0.25 s per process, once. The compiled passes save
more than that only for large workforces, or over many runs in one process. So:

- `SKILLSIM_KERNELS=compiled` or `numpy` forces a choice;
- otherwise (`auto`) a run of at least `COMPILED_FROM` agents uses the compiled passes, and so does
  every run in a process that runs many (the batch runner and sweeps set `compiled` for their
  workers, see `use_compiled_in_workers`; a batch of several runs in this process, with
  SKILLSIM_JOBS=1, takes them when that pays back their loading, see `compiled_for_batch`).

A run of at least `COMPILED_FROM` agents in a process that has not imported the compiled passes
starts building its workforce at once while a second thread imports numba and loads every compiled
pass (`for_construction`): each pass the construction calls is the numpy one until that import is
done and the compiled one after (both give the same bytes), so the import (0.3-0.5 s) overlaps the
construction's first draws, which release the GIL; the run takes the compiled passes once its
workforce is built (`built`). In a process that has imported them, such a run loads the rest on a
second thread as it builds (`sim.kernels.warm_in_background`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from types import ModuleType

ENV = "SKILLSIM_KERNELS"
CHOICES = ("auto", "compiled", "numpy")
#: agents from which a single run is faster with the compiled passes, load time included
#: (benchmarks/README.md, section (d))
COMPILED_FROM = 250_000
#: runs, or agents over all its runs, from which a batch run in one process is faster with the compiled
#: passes, their loading included (`compiled_for_batch`). In a fresh process, batches of default runs
#: (2025-2035 with the history), numpy against compiled: 8 runs of 2,000 agents 1.46 / 0.96 s, 6 of 2,000
#: 1.08 / 0.96 s, 6 of 1,000 1.07 / 0.84 s, 4 of 5,000 0.81 / 0.73 s, 4 of 10,000 0.95 / 0.93 s, 2 of
#: 50,000 1.02 / 0.87 s: numpy's cost a run is mostly fixed, so the number of runs decides
BATCH_COMPILED_RUNS = 6
BATCH_COMPILED_FROM = 100_000


#: a batch's choice for the runs it makes in this thread (`compiled_for_batch`): per thread, since the
#: explorer's views run batches on threads of their own, and a process-wide setting would reach them
_THIS_THREAD = threading.local()


def choice() -> str:
    """The implementation asked for; an unknown value is `auto`, with one warning naming it (the
    passes give the same bytes, so a typo costs speed, never results)."""
    batch = getattr(_THIS_THREAD, "choice", None)
    if batch is not None:
        return batch
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


def for_construction(n_agents: int) -> tuple[str, ModuleType]:
    """The name of the passes a run of `n_agents` uses (`select`'s) and the passes that build its
    workforce: a `_WhileLoading` (numpy's until the compiled passes, imported and loaded on a second
    thread, are imported) if the run uses the compiled passes, is large enough that the construction
    hides their loading, and this process has not imported them; `select`'s module otherwise. `built`
    gives the run's passes."""
    how = choice()
    if (n_agents >= COMPILED_FROM and how in ("auto", "compiled") and "sim.kernels" not in sys.modules
            and _load_in_background()):
        return f"{__package__}.kernels", _WhileLoading()
    module = select(n_agents)
    return module.__name__, module


def built(module: ModuleType, n_agents: int) -> ModuleType:
    """A model of `n_agents` has built its workforce with `module` (`for_construction`'s): the passes
    it runs with from now on. Waits for the compiled passes if they were loading for it (so that no
    loading thread outlives a construction; a small model built meanwhile on another thread does not
    wait: it loads what it calls, as it calls it). A failed import is raised here, as `select` raises it."""
    if isinstance(module, _WhileLoading):
        _wait_for_loading()
        from . import kernels  # the thread's import, or its error raised again

        module = kernels
    if n_agents >= COMPILED_FROM and hasattr(module, "warmed"):
        module.warmed()
    return module


class _WhileLoading:
    """The passes of a construction while the compiled ones load: each pass is the compiled one once
    their module is imported, the numpy one before (the same bytes either way)."""

    __name__ = "sim.kernels_numpy"  # a workforce pickled meanwhile names passes that need no thread

    def __getattr__(self, name: str):
        if _IMPORTED:
            from . import kernels as module
        else:
            from . import kernels_numpy as module
        return getattr(module, name)


_LOADING: list[threading.Thread] = []  # the thread importing and loading the compiled passes, once per process
_LOADING_LOCK = threading.Lock()
_IMPORTED: list[bool] = []  # [True] once that thread has imported them


def _load_in_background() -> bool:
    """Start importing sim.kernels and loading every kernel (kernels.warm) on a second thread, once per
    process; False if they are imported already (the caller then uses them at once)."""
    with _LOADING_LOCK:  # started and listed as one step: a fork in between would not wait for it (below)
        if _LOADING:
            return True
        if sys.modules.get(f"{__package__}.kernels") is not None:
            return False
        thread = threading.Thread(target=_load_quietly, name="skillsim-kernel-import", daemon=True)
        thread.start()
        _LOADING.append(thread)
        return True


def _load_quietly() -> None:
    try:
        from . import kernels

        _IMPORTED.append(True)
        kernels.warm()
    except BaseException:  # noqa: BLE001 - `built` imports again in the model's thread, which raises
        pass


def _wait_for_loading() -> None:
    """Join the loading thread, if started (once it is listed, under the lock that lists it)."""
    with _LOADING_LOCK:
        loading = list(_LOADING)
    for thread in loading:
        if thread is not threading.current_thread():
            thread.join()


# Before a fork, Python calls the hooks in reverse order of registration: logging's, registered by the
# loading thread's first import of it (numba imports it), ran before this one, and the forking thread held
# logging's lock while it waited here for a thread that needed it (a hang, seen under load). Imported at
# the top of this module, logging's hook runs after this one.
logging.getLogger("skillsim")  # (the package's logger: logging is imported, and its hook registered)
os.register_at_fork(before=_wait_for_loading)  # no fork while the thread holds the import or numba's locks


def use_compiled_in_workers(wait_for_compiling: bool = True, set_env: bool = True) -> str:
    """Before starting worker processes that run many models: compile the kernels once here if the
    cache is cold (not in every worker at once) and let the workers use them (each on one thread, as
    any pool's worker: sim.kernels.threads). A warm cache is not loaded here: this process runs no
    model, and loading every kernel cost it 0.35 s before its workers started. With
    `wait_for_compiling` False (the explorer, where a person waits for the first chart) and the choice
    left to skillsim (`auto`), a cold cache is filled by a process of its own (`compiled_ready`) and the
    workers use the numpy passes (the same numbers, more slowly) until it has finished.

    Returns the workers' passes, 'compiled' or 'numpy'. With `set_env` (a sweep's launcher, whose workers
    only inherit the environment) they are also set in SKILLSIM_KERNELS; a study's batch hands them to
    its workers with each piece (sim.studies.batch, `chosen`) instead, so that the caller's environment is
    left as it was and a pool's reused workers follow each batch, not the environment they started with."""
    how = choice()
    if how == "numpy" and not _COMPILING:
        return "numpy"
    from . import kernels

    if not wait_for_compiling and (how == "auto" or _COMPILING):
        if not compiled_ready():
            return _for_workers("numpy", set_env)
    if not kernels.cached(unknown=False):
        kernels.warm()
    return _for_workers("compiled", set_env)


def _for_workers(name: str, set_env: bool) -> str:
    if set_env:
        os.environ[ENV] = name
    return name


@contextlib.contextmanager
def chosen(name: str | None):
    """Runs made in this thread within the block take `name`'s passes ('compiled' or 'numpy'; None: as
    SKILLSIM_KERNELS and the run's size choose): a batch's choice, for its runs only."""
    if name is None:
        yield
        return
    before = getattr(_THIS_THREAD, "choice", None)
    _THIS_THREAD.choice = name
    try:
        yield
    finally:
        _THIS_THREAD.choice = before


def _kernels_imported() -> bool:
    return sys.modules.get(f"{__package__}.kernels") is not None


@contextlib.contextmanager
def compiled_for_batch(runs: int, total_agents: int, wait_for_compiling: bool = True):
    """The runs a batch makes in this process and thread (SKILLSIM_JOBS=1, or one usable core) take the
    compiled passes when the choice is left to skillsim (`auto`) and loading them is paid back: this
    process has imported them already (an earlier batch of the same study: plans, sensitivity analyses
    and discoveries run theirs 32 design points at a time), or the batch has `BATCH_COMPILED_RUNS` runs
    or `BATCH_COMPILED_FROM` agents. A forecast of 64 runs of 50,000 agents took 42 s on the numpy
    passes against 14 s on the compiled ones. With a cold cache, a batch of fewer than `COMPILED_FROM`
    agents keeps the numpy passes rather than compile for 30-80 s; `wait_for_compiling` False (the
    explorer) keeps them while the cache is cold (`compiled_ready` fills it in a process of its own).
    The choice is this thread's, for the batch only."""
    if (choice() != "auto"  # forced, or this thread's batch chose already
            or not (_kernels_imported() or runs >= BATCH_COMPILED_RUNS or total_agents >= BATCH_COMPILED_FROM)
            or not _compiled_loads(total_agents, wait_for_compiling)):
        yield
        return
    with chosen("compiled"):
        yield


def _compiled_loads(total_agents: int, wait_for_compiling: bool) -> bool:
    """Whether a batch in this process may take the compiled passes now: they load from a warm cache,
    or the batch is large enough to wait for their compiling (`compiled_for_batch`)."""
    if not wait_for_compiling:
        return compiled_ready()
    if total_agents >= COMPILED_FROM:
        return True
    from . import kernels

    return kernels.cached(unknown=False)


_LOCK = threading.Lock()
_COMPILING: list = []  # the process compiled_ready started, once per process


def compiled_ready() -> bool:
    """Whether the compiled passes load without compiling: the cache is warm, or the process this one
    started to fill it has finished (and is reaped); if neither, that process is started (once)."""
    from . import kernels

    with _LOCK:
        if _COMPILING:
            if _COMPILING[0].poll() is None:
                return False
            del _COMPILING[:]  # finished: the cache is read afresh below
            return kernels.cached()
        if kernels.cached():
            return True
        _COMPILING.append(_compile_in_background())
        return False


#: the background compiler: it asks Linux to end it when its parent ends (PR_SET_PDEATHSIG; elsewhere it
#: runs to its end), then runs `python -m sim.kernels`. Set in the child itself: a preexec_fn is not safe
#: in a process with threads, as the explorer's server is.
_COMPILER = ("import ctypes, os, runpy, signal, sys\n"
             "try:\n"
             "    ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
             "except Exception:\n"
             "    pass\n"
             "if os.getppid() != int(sys.argv[1]):\n"
             "    sys.exit(0)\n"
             "runpy.run_module('sim.kernels', run_name='__main__')\n")


def _compile_in_background():
    """`python -m sim.kernels` (kernels.warm) as a process of its own, which fills numba's cache while
    this process goes on and ends with it (a server stopped by its tests or its user leaves no compiler
    running). Its output is dropped; numba writes each cache file whole."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", _COMPILER, str(os.getpid())], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
