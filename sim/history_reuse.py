"""Reuse of a simulated history between runs that share it.

A run first simulates its region's history with the status-quo levers (sim.history), then the
forecast with its own. Runs that differ only in the forecast levers' settings (whether each is on,
its intensity, the training allocation, the competition selection), as in a plan's lever mixes, an
explorer's moves or a lever sweep at common random numbers, simulate the same history bit for bit:
about half of each run. This module keeps the state at the end of the history (the workers, firms,
ledger, rate tables and the history's rows) for recent histories in this process, so that such a
run restores it instead (`WorkforceModel.__init__`). The output is byte-identical either way
(tests/test_history_reuse.py): the key is the whole run config with the levers set to the status
quo, the passes' implementation, and this module's format.

Memory: the cache holds at most `SKILLSIM_HISTORY_CACHE_MB` megabytes (default 128; 0 turns it off),
least recently used first out, and never a history larger than an eighth of that (so a full-scale
run, 5.7 million workers, is never copied).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
from collections import OrderedDict

ENV = "SKILLSIM_HISTORY_CACHE_MB"
DEFAULT_MB = 128.0
FORMAT = 1  # of the key and the snapshot
#: the model attributes the history leaves behind, besides the workforce (copied by Workforce.copy)
STATE = ("t", "firms", "rates", "ledger", "wage_index", "level_counts", "bonus_slots", "history_rows",
         "history_dates", "aligned", "flows", "certification_spend", "income_quantiles", "row")


def budget_bytes() -> float:
    value = os.environ.get(ENV, "").strip()
    try:
        return max(0.0, float(value)) * 1e6 if value else DEFAULT_MB * 1e6
    except ValueError:
        return DEFAULT_MB * 1e6


def history_key(cfg, passes_name: str, model_class: str = "sim.model.WorkforceModel") -> str:
    """What the history depends on: the run config with the status-quo levers (sim.history.status_quo
    keeps every behavioural lever setting and normalises the rest), the passes' implementation and
    the model's class (a subclass may change the rules)."""
    from .history import status_quo

    quo = dataclasses.replace(cfg, levers=status_quo(cfg.levers))
    return hashlib.sha256(repr((quo, passes_name, model_class, FORMAT)).encode()).hexdigest()


@dataclasses.dataclass
class Snapshot:
    workforce: object
    state: dict
    nbytes: int


class HistoryCache:
    """Least-recently-used snapshots of the state at the end of a history, by `history_key`."""

    def __init__(self):
        self._snaps: OrderedDict[str, Snapshot] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._snaps)

    def clear(self) -> None:
        self._snaps.clear()

    def restore(self, key: str, model, kernels) -> bool:
        """Put the history's end state into `model` (independent copies, the workforce with the
        passes `kernels`); False if not kept."""
        snap = self._snaps.get(key) if budget_bytes() > 0 else None
        if snap is None:
            self.misses += 1
            return False
        self._snaps.move_to_end(key)
        self.hits += 1
        wf = snap.workforce.copy()
        wf.kernels = kernels
        model.workforce = wf
        for name, value in copy.deepcopy(snap.state).items():
            setattr(model, name, value)
        return True

    def keep(self, key: str, model) -> None:
        """Keep a copy of `model`'s state at the end of its history, within the memory budget."""
        budget = budget_bytes()
        nbytes = model.workforce.nbytes()
        if budget <= 0 or nbytes > budget / 8:
            return
        state = copy.deepcopy({name: getattr(model, name) for name in STATE})
        self._snaps[key] = Snapshot(model.workforce.copy(), state, nbytes)
        self._snaps.move_to_end(key)
        while sum(s.nbytes for s in self._snaps.values()) > budget and len(self._snaps) > 1:
            self._snaps.popitem(last=False)


#: this process's cache (each worker process of a batch has its own)
CACHE = HistoryCache()


def group_by_history(configs, n_groups: int) -> list[list[int]]:
    """Indices of `configs` in at least `n_groups` lists (where there are enough configs), those
    sharing a history together and in input order, so that a pool's worker runs a history once and
    reuses it (sim.studies.batch). A group larger than its share is split."""
    from . import passes

    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        groups.setdefault(history_key(cfg, passes.select(cfg.n_agents).__name__), []).append(i)
    size = max(1, -(-len(configs) // max(1, n_groups)))
    out = []
    for idx in groups.values():
        out += [idx[j:j + size] for j in range(0, len(idx), size)]
    return out
