"""Published figures from targets.csv, looked up by row id.

`sim/data/targets.csv` is a verbatim copy of the project's shared/data/targets.csv (a test checks they
agree when the shared copy is present), so the package runs without the shared folder.
Defaults in `sim.config` cite these row ids; `tests/test_config.py` and `tests/test_ladder_and_sources.py` check that the numbers match.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import DataError

DEFAULT_TARGETS = Path(__file__).with_name("data") / "targets.csv"
REQUIRED_COLUMNS = ("id", "scope", "date", "metric", "value", "unit", "kind", "source", "note")


@dataclass(frozen=True)
class Target:
    """One row of targets.csv."""

    id: str
    scope: str
    date: str
    metric: str
    value: str
    unit: str
    kind: str
    source: str
    note: str

    @property
    def number(self) -> float:
        """The value as a float; fails for ranges such as '0.054-0.094' (use `bounds`)."""
        try:
            return float(self.value)
        except ValueError:
            raise DataError(f"targets row {self.id}: value {self.value!r} is not a single number") from None

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a range value like '0.06-0.13', or (v, v) for a single number."""
        parts = self.value.split("-")
        try:
            if len(parts) == 2:
                return float(parts[0]), float(parts[1])
            v = float(self.value)
        except ValueError:
            raise DataError(f"targets row {self.id}: value {self.value!r} is not a number or range") from None
        return v, v

    @property
    def year_end(self) -> float:
        """Decimal year at the end of the row's date, e.g. '2021-12' -> 2022.0, '2022-10' -> 2022.833."""
        y, _, m = self.date.partition("-")
        if not m:
            return float(y) + 1.0
        return int(y) + int(m) / 12.0


@lru_cache(maxsize=8)
def load_targets(path: str | Path = DEFAULT_TARGETS) -> dict[str, Target]:
    """Read a targets file into {row id: Target}; a clear DataError if it is unusable."""
    p = Path(path)
    try:
        with p.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or any(c not in reader.fieldnames for c in REQUIRED_COLUMNS):
                raise DataError(
                    f"targets file {p}: malformed header {reader.fieldnames}; expected columns "
                    + ", ".join(REQUIRED_COLUMNS)
                )
            rows: dict[str, Target] = {}
            for i, row in enumerate(reader, start=2):
                if any(row.get(c) is None for c in REQUIRED_COLUMNS) or None in row:
                    raise DataError(f"targets file {p}: line {i} has the wrong number of fields")
                if not row["id"]:
                    raise DataError(f"targets file {p}: line {i} has an empty id")
                rows[row["id"]] = Target(**{c: row[c] for c in REQUIRED_COLUMNS})
    except OSError as exc:
        raise DataError(f"targets file {p}: cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"targets file {p}: not a readable CSV ({exc})") from None
    if not rows:
        raise DataError(f"targets file {p}: has no rows")
    return rows


def target(row_id: str, path: str | Path = DEFAULT_TARGETS) -> Target:
    """One row by id."""
    rows = load_targets(str(path))
    if row_id not in rows:
        raise DataError(f"targets file {path}: no row with id {row_id!r}")
    return rows[row_id]


def observed_shares(scope: str, path: str | Path = DEFAULT_TARGETS) -> list[Target]:
    """Observed high-skill shares for a scope ('national', 'chongqing', ...), oldest first."""
    rows = [
        t
        for t in load_targets(str(path)).values()
        if t.scope == scope and t.metric == "high_skill_share" and t.kind == "observed"
    ]
    return sorted(rows, key=lambda t: t.date)
