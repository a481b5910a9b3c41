"""Month arithmetic. Months are counted as absolute indices year * 12 + (month - 1)."""

from __future__ import annotations

import functools


def month_index(ym: str) -> int:
    """'2025-01' -> 2025 * 12 + 0."""
    y, m = ym.split("-")
    return int(y) * 12 + int(m) - 1


@functools.lru_cache(maxsize=4096)
def label(index: int) -> str:
    """Absolute month index -> 'YYYY-MM' (every month of every run asks: kept)."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def monthly_rate(annual: float) -> float:
    """Monthly probability equivalent to an annual probability."""
    return 1.0 - (1.0 - annual) ** (1.0 / 12.0)
