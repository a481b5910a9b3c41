"""User-facing errors and the exit codes the command-line tools return for them.

A user mistake is reported as one line naming what is wrong; it never shows a traceback.
The exit codes are documented in the README ("Errors and what they mean").
"""

from __future__ import annotations

import errno
import functools
import os
import select
import signal
import sys
from typing import Callable

#: Exit codes of every skillsim command.
EXIT_OK = 0
EXIT_INTERNAL = 1  #: an unexpected error inside skillsim (a bug): one line naming it; SKILLSIM_DEBUG=1 shows more
EXIT_CONFIG = 2  #: a configuration value, override or name is wrong
EXIT_DATA = 3  #: an input file (targets, run folder) is missing, unreadable or malformed
EXIT_OUTPUT = 4  #: the result folder cannot be written (exists already, disk, permissions)
EXIT_PARTIAL = 5  #: a sweep finished, but some of its jobs failed (listed in runs.csv)
EXIT_INTEGRITY = 6  #: skillsim-verify found a file changed, truncated, missing or unexpected
EXIT_BUSY = 7  #: another skillsim process is writing the same run folder (named with its pid and host)
EXIT_INTERRUPTED = 130  #: stopped by SIGINT/SIGTERM; nothing half-written is left behind
EXIT_OUTPUT_CLOSED = 128 + signal.SIGPIPE  #: 141: the reader of the output went away (`| head`); silent


_SIGNALLED = False  #: set by `stop_on_signal`: a SIGTERM reached this process


def stop_on_signal(signum, frame) -> None:  # noqa: ARG001
    """The SIGTERM handler of every command: stop as Ctrl-C does (KeyboardInterrupt), and remember it,
    because a compiled kernel can swallow the interrupt into a SystemError without it in the chain."""
    global _SIGNALLED
    _SIGNALLED = True
    raise KeyboardInterrupt


class interrupts_kept:  # noqa: N801 - used as a function: `with interrupts_kept():`
    """Ctrl-C or SIGTERM (raised as KeyboardInterrupt) that lands while a compiled kernel is called
    reaches Python as SystemError ("returned a result with an exception set") with the interrupt as its
    cause: raise the interrupt itself, so that it is handled as one (exit 130, nothing left behind).
    A class rather than a generator: it wraps every month, and contextlib's costs a microsecond more."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None or not issubclass(kind, SystemError):
            return False
        interrupt = _interrupt_in_chain(exc)
        if interrupt is not None:
            raise interrupt from None
        if _SIGNALLED and "returned a result with an exception set" in str(exc):
            raise KeyboardInterrupt from None
        return False


def _interrupt_in_chain(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt (or other exception raised by a signal handler, marked `from_signal`)
    anywhere in an exception's cause/context chain: a nested compiled call can wrap it in more than
    one SystemError."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt) or getattr(exc, "from_signal", False):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class SkillsimError(Exception):
    """An error caused by the user's input, reported as one line."""

    exit_code = EXIT_CONFIG


class SkillsimWarning(UserWarning):
    """A warning of skillsim's own (a run on the priors): in a console command one line, `PROG: warning:
    ...` (sim.entry); in Python, an ordinary warning that filters can select."""


def as_typed(value: object) -> str:
    """A value as the user writes it in an override or a YAML file: null, true and false for Python's
    None, True and False (a user who typed seed=null should not read 'None'); anything else as repr."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()  # a numpy scalar (EMA Workbench's, SALib's) as the number it is, not np.float64(...)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class ConfigError(SkillsimError):
    """A configuration value is invalid: names the field, the value and what is allowed."""

    exit_code = EXIT_CONFIG

    def __init__(self, field: str, value: object, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"config error: {field} = {as_typed(value)} is invalid; allowed: {allowed}")

    def __reduce__(self):  # rebuilt from its three fields when it crosses from a batch's worker
        return type(self), (self.field, self.value, self.allowed)


class MissingSetting(ConfigError):
    """A value no config file gave: a region preset that leaves out one of the region's own values."""

    def __init__(self, field: str, value: object = "???", allowed: str = "a value set by the region preset"):
        SkillsimError.__init__(self, f"config error: {field} is not set; {allowed}")
        self.field, self.value, self.allowed = field, value, allowed


class IntegrityError(SkillsimError):
    """A folder does not match its manifest (skillsim-verify's problems): what it holds is not what was run."""

    exit_code = EXIT_INTEGRITY

    def __init__(self, problems: list[str], consequence: str):
        self.problems = problems
        super().__init__(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the folder "
                         f"(skillsim-verify): {consequence}")


class DataError(SkillsimError):
    """An input file is missing, unreadable or malformed."""

    exit_code = EXIT_DATA


class OutputError(SkillsimError):
    """The result folder cannot be written."""

    exit_code = EXIT_OUTPUT


class BusyError(SkillsimError):
    """Another live process holds the claim on a run folder."""

    exit_code = EXIT_BUSY


def os_reason(exc: OSError) -> str:
    """'No space left on device [ENOSPC]': the OS error in words, with its symbolic name. The words are the
    system's for the error's number: pyarrow's own ("Error writing bytes to file. Detail: [errno 28] No
    space left on device", a user trial with a full disk) name nothing a user can act on beyond them; the
    raiser's words stay where they do not hold the system's (an SSL error's number is not an errno)."""
    code = exc.errno
    name = errno.errorcode.get(code) if code else None
    system = os.strerror(code) if name else None
    # the system's words where the raiser's hold them or say nothing: an SSL error's number is no errno
    words = (system if system and (not exc.strerror or system in str(exc.strerror)) else None) \
        or exc.strerror or str(exc) or type(exc).__name__
    return f"{words} [{name}]" if name else words


def output_closed() -> bool:
    """Whether the reader of this process's standard output has gone (`skillsim --help | head -3`):
    the write end of a pipe whose reader closed it reports an error to poll."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no stdout, not a file, or no poll on this system
        return False


def end_quietly_if_output_closed(exc: BaseException) -> None:
    """A write to a closed pipe on standard output is not a fault of the disk or of the user: the
    process ends silently, as a C tool would (`yes | head`: status 141, 128 + SIGPIPE), following
    Python's recipe (the `signal` module's "Note on SIGPIPE": stdout pointed at /dev/null, so that the
    interpreter's final flush does not fail again). Any other error is left to the caller."""
    if not isinstance(exc, BrokenPipeError) or not output_closed():
        return
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass
    raise SystemExit(EXIT_OUTPUT_CLOSED)


def quiet_when_output_closed(main: Callable[..., None]) -> Callable[..., None]:
    """A console command's `main`, ending silently when its reader closes the output (see
    `end_quietly_if_output_closed`) instead of with a traceback."""
    @functools.wraps(main)
    def command(*args, **kwargs) -> None:
        try:
            try:
                return main(*args, **kwargs)
            finally:  # output to a pipe is buffered: its write fails here, not at the interpreter's exit
                if sys.stdout is not None:
                    sys.stdout.flush()
        except BrokenPipeError as exc:
            end_quietly_if_output_closed(exc)
            raise
    return command


def environment_fault(exc: OSError, path: object, action: str = "write") -> SkillsimError:
    """An OSError of the machine (disk full, permission denied, read-only, vanished) as a one-line error.

    `action` is "write" (-> OutputError, exit 4) or "read" (-> DataError, exit 3). The line names the
    user-facing path (a run or sweep folder, a file) and the OS error. A closed standard output (a
    pipe into `head`) ends the process quietly instead (`end_quietly_if_output_closed`).
    """
    end_quietly_if_output_closed(exc)
    cls = OutputError if action == "write" else DataError
    where = ""
    if action == "write" and exc.errno in (errno.EEXIST, errno.ENOTDIR):  # `hydra.run.dir=afile` (a user trial)
        where = " (a file is where a folder is needed: that path or one above it)"
    err = cls(f"cannot {action} {path}: {os_reason(exc)}{where}")
    err.environment = True  # type: ignore[attr-defined]
    err.errno = exc.errno  # type: ignore[attr-defined]
    return err


_WARNED_SETTINGS: set[tuple[str, str]] = set()


def warn_setting(var: str, value: str, what: str) -> None:
    """One warning per process for an environment setting that cannot be used as given: the run goes
    on with `what` (the default), and the user learns that the setting did nothing."""
    if (var, value) in _WARNED_SETTINGS:
        return
    _WARNED_SETTINGS.add((var, value))
    import logging

    logging.getLogger("skillsim").warning("%s=%s %s", var, value, what)


def _settings_in(argv: list[str], takes_value=frozenset()) -> list[int]:
    """The places of argv's KEY=VALUE words: not a flag (`-m`, `--config-dir=D`), nor the value of a flag
    in `takes_value` (`--config-dir D`)."""
    places, after_flag = [], False
    for i, a in enumerate(argv):
        if after_flag:
            after_flag = False
        elif a.startswith("-"):
            after_flag = a in takes_value
        elif "=" in a:
            places.append(i)
    return places


def last_of_each(argv: list[str], takes_value=frozenset()) -> list[str]:
    """argv with each key given twice (`seed=1 seed=2`) kept once, at its last value, where it was last
    given: what Hydra would take, without checking the values it would drop (`n_agents=abc n_agents=1000`
    was refused for `abc` after the warning that 1000 is used). A `+` (or `++`) of an earlier one stays
    with the key (`+k=1 k=2` is `+k=2`). Flags and the values of those in `takes_value` are left as they are."""
    places = _settings_in(argv, takes_value)
    last: dict[str, int] = {}
    prefix: dict[str, str] = {}
    for i in places:
        key = argv[i].partition("=")[0]
        bare = key.lstrip("+")
        last[bare] = i
        prefix[bare] = max(prefix.get(bare, ""), key[:len(key) - len(bare)], key=len)
    kept, settings = set(last.values()), set(places)
    out = []
    for i, a in enumerate(argv):
        if i not in settings:
            out.append(a)
        elif i in kept:  # not given again later
            key, _, value = a.partition("=")
            out.append(f"{prefix[key.lstrip('+')]}{key.lstrip('+')}={value}")
    return out


def say_keys_given_twice(overrides: list[str] | None, takes_value=frozenset()) -> None:
    """A key given twice (`seed=1 seed=2`), whose last value Hydra takes without a word: said in a warning
    (`given_once` also drops the earlier ones)."""
    seen: dict[str, str] = {}
    prefix: dict[str, str] = {}  # a `+` kept with the key (last_of_each): `+k=1 k=2` runs `+k=2`
    overrides = overrides or []
    for i in _settings_in(overrides, takes_value):
        given, _, value = overrides[i].partition("=")
        key = given.lstrip("+")  # +seed=1 seed=2: one key
        prefix[key] = max(prefix.get(key, ""), given[:len(given) - len(key)], key=len)
        if key in seen:
            warn_given_twice(key, seen[key], value, used=prefix[key] + key)
        seen[key] = value


def given_once(argv: list[str], takes_value=frozenset()) -> list[str]:
    """argv with each key given twice said in a warning and kept once, at its last value (`last_of_each`):
    `skillsim-forecast params=2 params=x` warned that x is used and `n_agents=abc n_agents=1000` that 1000
    is, then refused the value it had said was dropped. `takes_value`: the flags whose next word is theirs."""
    say_keys_given_twice(argv, takes_value)
    return last_of_each(argv, takes_value)


def warn_given_twice(key: str, first: str, last: str, used: str | None = None) -> None:
    """A key given twice on the command line: the last value is used, as Hydra takes it (a script's
    defaults followed by the user's own), and the user hears of it (it went without a word). `used`: the
    key as it then runs (`+key`), if not as named."""
    import logging

    logging.getLogger("skillsim").warning("%s was given twice (%s, then %s): %s=%s is used, the last", key, first,
                                          last, used or key, last)


def one_line_errors(parser, prog: str | None = None, hint: Callable[[str, str], str | None] | None = None):
    """`parser` (argparse's) with its errors in one line: argparse printed its usage block before the error.
    An unknown option is named with `hint(flag, value)` if that gives one (`--region=x`: a setting, not a
    misspelt `--version`), else with the nearest option (`--basline`). Returns the parser."""
    import difflib

    prog = prog or parser.prog

    def error(message: str):
        unknown = message.startswith("unrecognized arguments:")
        flags = [a for a in message.partition(":")[2].split() if a.startswith("-")] if unknown else []
        if flags:
            flag, _, value = flags[0].partition("=")
            said = hint(flag, value) if hint is not None else None
            near = difflib.get_close_matches(flag, list(parser._option_string_actions), n=1)
            message = f"unknown option {flag}" + (f" ({said})" if said else f" (did you mean {near[0]}?)" if near else "")
        print(f"{prog}: {message}; see {prog} --help", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG)

    parser.error = error
    return parser


def debug_enabled() -> bool:
    """SKILLSIM_DEBUG=1: let unexpected errors show their traceback (for bug reports)."""
    return os.environ.get("SKILLSIM_DEBUG", "") not in ("", "0")


def caused_by_interrupt(exc: BaseException) -> bool:
    """Whether Ctrl-C (KeyboardInterrupt) is in `exc`'s chain of causes: numba, compiling when it came,
    raised "RuntimeError: no compiled object yet" over it, a 55-line traceback for a Ctrl-C."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


_ENDS_WITH_PARENT: list[bool] = []
#: seconds between a worker's looks at its parent (end_with_parent)
PARENT_POLL_S = 1.0


def _parent_of(pid: int) -> int | None:
    """The parent process id of `pid` from /proc (None where there is none to read; 1 once it is gone,
    as for an orphan)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read()
    except FileNotFoundError:
        return 1
    except OSError:
        return None
    return int(text[text.rindex(b")") + 2:].split()[1])


def end_with_parent() -> None:
    """In a pool's worker process (joblib/loky, multiprocessing), end when the process that started it
    dies: after `kill -9` of a sweep's main process its loky workers lived on, reparented to init, one
    holding 280 MB for minutes (a user trial). A daemon thread looks at the worker's parent id once a
    second and ends the worker (SIGTERM to itself) once it has changed. Linux's PR_SET_PDEATHSIG would
    also fire when the *thread* that started the worker ends (the explorer runs batches on its server's
    threads), so the parent's id is watched instead. Once per process; nothing in the main process.

    A job of `hydra/launcher=submitit_local` runs under a controller process that submitit starts to
    outlive the session: it went on for half a minute after the sweep's command was killed and wrote its
    folder (a user trial). There the controller's parent (the sweep's command) is watched."""
    import multiprocessing
    import threading
    import time

    local_job = os.environ.get("SUBMITIT_EXECUTOR") == "local"
    if _ENDS_WITH_PARENT or (multiprocessing.parent_process() is None and not local_job):  # the main process
        return
    _ENDS_WITH_PARENT.append(True)
    which = (lambda: _parent_of(os.getppid())) if local_job else os.getppid
    parent = which()
    if parent is None:  # no /proc to read (not Linux): nothing to watch
        return

    def watch() -> None:
        while which() == parent:
            time.sleep(PARENT_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)  # a job running ends as an interrupted one (no half-written folder)
        time.sleep(10 * PARENT_POLL_S)
        os._exit(128 + signal.SIGTERM)  # a handler that turned it into an exception the worker survived

    threading.Thread(target=watch, name="skillsim-parent-watch", daemon=True).start()


def worker_killed(exc: BaseException) -> bool:
    """Whether a pool's worker process was killed under the work (joblib/loky's TerminatedWorkerError,
    concurrent.futures' BrokenProcessPool), anywhere in `exc`'s chain: the system's out-of-memory killer
    or a signal, not a bug of the command."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        name = type(exc).__name__  # a pool broken otherwise (a task that failed to unpickle) is a bug
        if name == "TerminatedWorkerError" or (name == "BrokenProcessPool" and "terminated" in str(exc)):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


#: what a killed worker means, for the one line that says so
WORKER_KILLED = ("a worker process was killed while it ran (a signal, or the system's out-of-memory killer: "
                 "fewer processes or agents need less memory)")


def internal_error(exc: BaseException, what: str | None = None) -> str:
    """The one line for an unexpected exception: what failed (None: the command, which the line's
    prefix names already) and the exception, without a traceback."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return (f"{what + ' ' if what else ''}failed unexpectedly: {type(exc).__name__}{': ' + text if text else ''} "
            f"(a bug in skillsim; re-run with SKILLSIM_DEBUG=1 for the traceback and report it)")
