"""The console commands' entry points: each imports its command's module, then runs its `main`.

A command's module imports numpy, Hydra, pandas or scipy before its `main` can install its own handling
of Ctrl-C, and an interrupt landing there (the first half second of every command) printed a
traceback. Here the import and `main` run inside one handler: an interrupt that no command caught is
one line and exit 130, as every other interrupt is. What a command writes is atomic, so an interrupt
caught here leaves nothing half-written. This module, and the package's `__init__`, import nothing
heavy, so the handler is in place before the first heavy import.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

EXIT_INTERRUPTED = 130  # sim.errors.EXIT_INTERRUPTED, without importing it
_CONSOLE: list[bool] = []  # [True] while `run` runs a console command in a console script's process


def _console_script() -> bool:
    """Whether this process is a console script's (`skillsim-*`, `python -m sim`), which ends when its
    command returns: not a notebook, nor a test calling an entry function in its own process."""
    path = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = os.path.basename(path)
    return name.startswith("skillsim") or (name == "__main__.py" and os.path.basename(os.path.dirname(path)) == "sim")


def run(target: str) -> int | None:
    """Import `module:function` and call it; a KeyboardInterrupt it lets through is one line, exit 130.
    In a console script's process, once the command returns (or exits) interrupts are ignored
    (`result_in_place`)."""
    module, _, function = target.partition(":")
    console = _console_script()
    if console:
        _CONSOLE.append(True)
        _quiet_pool_tracker()
    shown = None
    try:
        try:
            if console:  # inside the handler: an interrupt as sim.errors imports is one line too
                _stop_on_sigterm()
                shown = _warnings_in_one_line()
            command = _imported(module, function, console)
        except KeyboardInterrupt:
            _say(STOPPED_STARTING)
            return EXIT_INTERRUPTED
        except Exception as exc:  # noqa: BLE001 - one of skillsim's errors at import: a broken installation
            code = _said_in_one_line(exc)
            if code is None:
                raise
            return code
        return command()
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    finally:
        if console:  # the command has ended, its exit code is set: the teardown is not interrupted
            _CONSOLE.pop()
            _ignore_interrupts()
        if shown is not None:  # Python's own display of warnings again (a test or a caller goes on)
            import warnings

            warnings.showwarning = shown


#: what an interrupt while the command's module still imports says: nothing has been opened for writing yet
STOPPED_STARTING = "interrupted as it started; nothing was written"


def _say(what: str) -> None:
    try:
        print(f"{_prog()}: {what}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _stop_on_sigterm() -> None:
    """SIGTERM stops a console command as Ctrl-C does from its first line (`sim.errors.stop_on_signal`,
    which every command installs once its module has imported): before, a SIGTERM in the first half
    second ended the process silently with 143 (a user trial). A handler the process was started with
    (SIGTERM ignored) is left as it is."""
    from .errors import stop_on_signal  # the standard library only

    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, stop_on_signal)
    except (ValueError, OSError):  # not the main thread
        pass


def _warnings_in_one_line():
    """skillsim's own warnings (sim.errors.SkillsimWarning) as one line, `PROG: warning: ...`: Python's
    format named a source file and line and showed the call that warned (a user trial). Other warnings
    are shown as Python shows them. Returns the display it replaced (None if already in place)."""
    import warnings

    from .errors import SkillsimWarning

    shown = warnings.showwarning
    if getattr(shown, "skillsim", False):
        return None

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, SkillsimWarning):
            return shown(message, category, filename, lineno, file, line)
        try:
            print(f"{_prog()}: warning: {message}", file=file or sys.stderr, flush=True)
        except (OSError, ValueError):
            pass

    showwarning.skillsim = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning
    return shown


def _prog() -> str:
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return prog if prog.startswith("skillsim") else "skillsim"  # python -m sim: argv[0] is __main__.py


def _said_in_one_line(exc: Exception) -> int | None:
    """An error of skillsim's own raised while a command's module imports (the calibration file missing
    from the installation: sim.config reads it at import) is one line and its exit code, as the command
    would have said it, not a traceback; None for anything else (a bug, raised as it is)."""
    from .errors import SkillsimError, debug_enabled

    if not isinstance(exc, SkillsimError) or debug_enabled():
        return None
    try:
        print(f"{_prog()}: {exc}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
    return getattr(exc, "exit_code", 2)


def _imported(module: str, function: str, console: bool):
    """The command's function, its module imported. In a console script's process the garbage collector
    waits until the imports are done, and then leaves what they made alone (`gc.freeze`): the modules'
    objects live as long as the process, and the collector's passes over them, during the imports and
    again at exit, were 20-30 ms of every command (`skillsim` 0.65 against 0.62 s warm, 0.74 against
    0.71 s cold; benchmarks/README.md, thirty-first step). Objects the command makes are collected as
    usual, but for cycles through the imports' objects. The imports' own garbage (under 1,200
    objects, about 0.2 MB, for each command's module) is frozen with them and never freed, and frozen
    objects are not listed by gc.get_objects(). Elsewhere (a notebook, a test) the collector is not
    touched."""
    if not console:
        return getattr(importlib.import_module(module), function)
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        command = getattr(importlib.import_module(module), function)
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()
    return command


#: the message start of the warnings a process pool's resource tracker prints as it cleans up
TRACKER_WARNINGS = "ignore:resource_tracker:UserWarning"


def _quiet_pool_tracker() -> None:
    """A console command ends its pool's idle workers by killing them (sim.cli's `_end_idle_workers`;
    a study's batch, a sweep's joblib launcher). The pool's resource tracker, a process of its own that
    outlives the command, then removes what they had registered (semaphores, temporary folders) and
    warns about each one, and with a `FileNotFoundError` about each one another process had removed
    first (once in six clean-clone CI runs, after a sweep's last line). Those lines came after the
    command's last line and named nothing a user can act on. The tracker takes its warning filters from
    this process's `-W` options (`sys.warnoptions`, read when the pool starts it), so this one hides them
    there; it still removes everything. This process's own filters were read at its start and do not
    change."""
    if TRACKER_WARNINGS not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_WARNINGS)


def result_in_place() -> None:
    """A console command is about to publish its result (the rename of its finished folder): from here on
    an interrupt has nothing left to stop. One that landed later (the command's last lines, its pool's
    shutdown, the interpreter's teardown) printed a traceback behind exit 0, or ended the command with
    130 and no word after it had said "wrote" (Python gives SIGINT its default action back as it
    finalises): Ctrl-C and SIGTERM are ignored for the rest of the process. Outside a console command
    (a notebook, a test calling `main`) nothing changes."""
    if _CONSOLE and threading.current_thread() is threading.main_thread():
        _ignore_interrupts()


def _ignore_interrupts() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):  # not the main thread, or no such signal here
            pass


def skillsim(): return run("sim.single_run:console")  # noqa: E704
def aggregate(): return run("sim.aggregate:main")  # noqa: E704
def calibrate(): return run("sim.studies.calibrate:main")  # noqa: E704
def forecast(): return run("sim.studies.forecast:main")  # noqa: E704
def backtest(): return run("sim.studies.backtest:main")  # noqa: E704
def plan(): return run("sim.studies.plan:main")  # noqa: E704
def sensitivity(): return run("sim.studies.sensitivity:main")  # noqa: E704
def discover(): return run("sim.studies.discover:main")  # noqa: E704
def explore(): return run("sim.explorer.cli:main")  # noqa: E704
def report(): return run("sim.report.cli:main")  # noqa: E704
def verify(): return run("sim.verify:main")  # noqa: E704
def rerun(): return run("sim.rerun:main")  # noqa: E704
