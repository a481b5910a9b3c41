"""User-facing errors and the exit codes the command-line tools return for them.

A user mistake is reported as one line naming what is wrong; it never shows a traceback.
The exit codes are documented in the README ("Errors and what they mean").
"""

from __future__ import annotations

#: Exit codes of every skillsim command.
EXIT_OK = 0
EXIT_CONFIG = 2  #: a configuration value, override or name is wrong
EXIT_DATA = 3  #: an input file (targets, run folder) is missing, unreadable or malformed
EXIT_OUTPUT = 4  #: the result folder cannot be written (exists already, disk, permissions)
EXIT_PARTIAL = 5  #: a sweep finished, but some of its jobs failed (listed in runs.csv)
EXIT_INTEGRITY = 6  #: skillsim-verify found a file changed, truncated, missing or unexpected
EXIT_INTERRUPTED = 130  #: stopped by SIGINT/SIGTERM; nothing half-written is left behind


class SkillsimError(Exception):
    """An error caused by the user's input, reported as one line."""

    exit_code = EXIT_CONFIG


class ConfigError(SkillsimError):
    """A configuration value is invalid: names the field, the value and what is allowed."""

    exit_code = EXIT_CONFIG

    def __init__(self, field: str, value: object, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"config error: {field} = {value!r} is invalid; allowed: {allowed}")


class DataError(SkillsimError):
    """An input file is missing, unreadable or malformed."""

    exit_code = EXIT_DATA


class OutputError(SkillsimError):
    """The result folder cannot be written."""

    exit_code = EXIT_OUTPUT
