"""Worker state as a struct of arrays.

Workers live in slots [0, n) of preallocated arrays, dense, so every rule is a vectorised operation
on a view of the first n entries. Exits free slots; entrants fill them; if fewer enter than leave, the
tail is moved into the holes so the prefix stays dense. Slot indices are therefore only valid within
one step: levers must not keep them across steps.

Small dtypes keep memory traffic down (see benchmarks/). Two fields are caches, refreshed by
`sim.rates.refresh` whenever level, firm or studio membership changes, so that the monthly rules are
one fused pass each (`sim.rates` keeps them consistent):
- `gain`: progress per month (aptitude x level rate x studio multiplier);
- `pay`: monthly pay relative to the wage index (level ratio x firm premium x individual factor).
"""

from __future__ import annotations

import numpy as np

from . import kernels_numpy


#: field -> dtype. `age`/`retire_age`/`months_at_level` in months; `comp_month` is the month index
#: of the last competition promotion and `studio_since` the month a worker joined a studio (NO_MONTH:
#: never / not a member); `bonus` holds this month's one-off pay (prizes) and is cleared each month.
FIELDS: dict[str, type] = {
    "level": np.int8,
    "months_at_level": np.int16,
    "age": np.int16,
    "retire_age": np.int16,
    "female": np.bool_,
    "firm": np.int32,
    "aptitude": np.float32,
    "progress": np.float32,
    "credit": np.int16,
    "studio_since": np.int16,
    "comp_month": np.int16,
    "wage_factor": np.float32,
    "weight": np.float32,
    "gain": np.float32,
    "pay": np.float32,
    "bonus": np.float32,
}
NO_MONTH = np.int16(-32000)
_VIEW_OF = tuple((name, "_" + name) for name in FIELDS)  # (view, backing array) attribute names


class Workforce:
    """The arrays of all workers; `n` slots are in use."""

    def __init__(self, capacity: int, passes=None):
        self.capacity = int(capacity)
        #: the per-worker passes (sim.passes: compiled sim.kernels, or the numpy sim.kernels_numpy)
        self.kernels = passes if passes is not None else kernels_numpy
        for name, dt in FIELDS.items():
            setattr(self, "_" + name, np.zeros(self.capacity, dtype=dt))
        self.n = 0

    @property
    def threads(self) -> int:
        """Threads for the passes of this process (sim.kernels.threads; 1 for the numpy passes), asked
        at each call, so that a workforce carried into a forked child or a pool's worker follows its
        new process."""
        return self.kernels.threads()

    @property
    def n(self) -> int:
        """Slots in use."""
        return self._n

    @n.setter
    def n(self, value: int) -> None:
        # Views of the live prefix as plain attributes (wf.level -> int8 array of length n), made again
        # whenever n or the arrays change: the rules read them about a hundred times a month.
        self._n = n = int(value)
        d = self.__dict__
        for name, backing in _VIEW_OF:
            d[name] = d[backing][:n]

    def column(self, name: str) -> np.ndarray:
        """Whole backing array of a field (capacity long)."""
        return self.__dict__["_" + name]

    def copy(self) -> "Workforce":
        """An independent copy of the live workers (same capacity and passes)."""
        other = Workforce(self.capacity, self.kernels)
        for name in FIELDS:
            other.column(name)[:] = self.column(name)
        other.n = self.n
        return other

    def __getstate__(self) -> dict:
        """The backing arrays and `n` (the views are made again on loading), and the passes by name:
        what a kept history (sim.history_reuse) writes to disk."""
        return {"capacity": self.capacity, "n": self._n, "kernels": self.kernels.__name__,
                "columns": {name: self.column(name) for name in FIELDS}}

    def __setstate__(self, state: dict) -> None:
        import importlib

        self.capacity = state["capacity"]
        self.kernels = importlib.import_module(state["kernels"])
        for name, arr in state["columns"].items():
            setattr(self, "_" + name, arr)
        self.n = state["n"]

    def scratch(self, name: str, dtype=np.int64) -> np.ndarray:
        """A preallocated buffer of `capacity` slots for a kernel's output (one per `name`), so that
        the kernels that list slots out of the whole workforce do not allocate (and page-fault on
        fresh memory) each month."""
        bufs = self.__dict__.setdefault("_scratch", {})
        buf = bufs.get(name)
        if buf is None or buf.size < self.capacity:
            buf = bufs[name] = np.empty(self.capacity, dtype=dtype)
        return buf

    def nbytes(self) -> int:
        return sum(self.column(f).nbytes for f in FIELDS)

    def _grow(self, needed: int) -> None:
        new_cap = max(needed, int(self.capacity * 1.25) + 1)
        for name in FIELDS:
            old = self.column(name)
            arr = np.zeros(new_cap, dtype=old.dtype)
            arr[: self.n] = old[: self.n]
            setattr(self, "_" + name, arr)
        self.capacity = new_cap
        self.n = self._n  # views of the new arrays

    def append(self, count: int) -> np.ndarray:
        """Reserve `count` new slots at the end; returns their indices."""
        start = self.extend(count)
        return np.arange(start, start + count)

    def extend(self, count: int) -> int:
        """Reserve `count` new slots at the end; returns the first (they are a contiguous block: a
        caller writing them as a slice needs no index array, 46 MB for a full-scale workforce)."""
        if self.n + count > self.capacity:
            self._grow(self.n + count)
        start = self.n
        self.n += count
        return start

    def replace(self, leavers: np.ndarray, n_new: int, in_order: bool = False) -> np.ndarray:
        """Remove `leavers` (distinct slot indices; `in_order`: already int64 and sorted) and make room
        for `n_new` entrants.

        Returns the slots the entrants must be written to. Their old contents are stale.
        """
        if not in_order:
            leavers = np.sort(np.asarray(leavers, dtype=np.int64))
        k = leavers.size
        if n_new >= k:
            extra = self.append(n_new - k)
            return np.concatenate([leavers, extra])
        # Entrants reuse the lowest leaver slots; the highest become holes, filled by the tail's live
        # workers (the passes' compact). All reused slots are then below the new end (the tail has as
        # many slots as there are holes).
        self.n = self.kernels.compact(leavers, n_new, self.n, self._columns())
        return leavers[:n_new]

    def _columns(self) -> tuple[np.ndarray, ...]:
        """The backing arrays of every field, in FIELDS order (the same objects until the next growth)."""
        cols = self.__dict__.get("_column_tuple")
        if cols is None or cols[0] is not self.__dict__["_level"]:
            cols = self.__dict__["_column_tuple"] = tuple(self.column(name) for name in FIELDS)
        return cols



class LevelLedger:
    """Weighted head count and pay sum by level, kept up to date where levels or pay change.

    Recounting 5.7 million levels each month costs more than all the monthly rules together, so the
    model updates these totals for the few workers whose level or pay changes (promotions, exits,
    entrants, firm moves). `recount` gives the same figures from scratch; the tests compare them.
    """

    def __init__(self, wf: Workforce):
        self.count = np.zeros(8)
        self.pay = np.zeros(8)
        if wf.n:  # every worker, in slot order: the sums of add(wf, np.arange(wf.n)), without that index
            wf.kernels.ledger_add_all(wf.level, wf.weight, wf.pay, self.count, self.pay, 1.0)

    def add(self, wf: Workforce, idx: np.ndarray, sign: float = 1.0) -> None:
        """Add (sign -1: remove) the weight and pay of slots `idx` (one compiled pass; the same sums,
        in the same order, as `count += sign * np.bincount(level[idx], weights=...)`)."""
        if len(idx) == 0:
            return
        wf.kernels.ledger_add(np.asarray(idx, dtype=np.int64), wf.level, wf.weight, wf.pay, self.count, self.pay, float(sign))

    def remove(self, wf: Workforce, idx: np.ndarray) -> None:
        self.add(wf, idx, -1.0)

    @staticmethod
    def recount(wf: Workforce) -> tuple[np.ndarray, np.ndarray]:
        w = wf.weight.astype(np.float64)
        return (np.bincount(wf.level, weights=w, minlength=8),
                np.bincount(wf.level, weights=w * wf.pay, minlength=8))
