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
import sys

EXIT_INTERRUPTED = 130  # sim.errors.EXIT_INTERRUPTED, without importing it


def run(target: str) -> int | None:
    """Import `module:function` and call it; a KeyboardInterrupt it lets through is one line, exit 130."""
    module, _, function = target.partition(":")
    try:
        return getattr(importlib.import_module(module), function)()
    except KeyboardInterrupt:
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        prog = prog if prog.startswith("skillsim") else "skillsim"  # python -m sim: argv[0] is __main__.py
        try:
            print(f"{prog}: interrupted", file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass
        return EXIT_INTERRUPTED


def skillsim(): return run("sim.cli:console")  # noqa: E704
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
