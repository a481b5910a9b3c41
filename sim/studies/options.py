"""key=value options of the study commands (skillsim-plan, -sensitivity, -discover): each value checked
with a one-line error naming the key, the value and what is allowed."""

from __future__ import annotations

import math

from ..errors import ConfigError


def number(key: str, value: str, lo: float | None = None, hi: float | None = None, kind=float):
    try:
        v = kind(value)
    except ValueError:
        raise ConfigError(key, value, "an integer" if kind is int else "a number") from None
    if (lo is not None and v < lo) or (hi is not None and v > hi) or (kind is float and not math.isfinite(v)):
        raise ConfigError(key, v, f"a number in [{lo}, {hi}]" if hi is not None else f"a number >= {lo}")
    return v


def boolean(key: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ConfigError(key, value, "true or false")
    return value.lower() == "true"


def one_of(key: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(key, value, "one of " + ", ".join(allowed))
    return value


def groups(key: str, value: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(n for n in value.split(",") if n)
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ConfigError(key, value, "a comma list of " + ", ".join(allowed))
    return names
