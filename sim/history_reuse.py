"""Reuse of a simulated history between runs that share it.

A run first simulates its region's history with the status-quo levers (sim.history), then the
forecast with its own. Runs that differ only in the forecast levers' settings (whether each is on,
its intensity, the training allocation, the competition selection), as in a plan's lever mixes, an
explorer's moves or a lever sweep at common random numbers, simulate the same history bit for bit:
about 40% of each run at default settings. This module keeps the state at the end of the history (the workers, firms,
ledger, rate tables and the history's rows) for recent histories in this process, so that such a
run restores it instead (`WorkforceModel.__init__`). The output is byte-identical either way
(tests/test_history_reuse.py): the key is the whole run config with the levers set to the status
quo, the passes' implementation, and this module's format.

Two layers, both least recently used first out, neither ever holding a history larger than an
eighth of its budget (so a full-scale run, 5.7 million workers, is never copied):

- in this process, at most `SKILLSIM_HISTORY_CACHE_MB` megabytes (default 128; 0 turns it off);
- on disk, `$SKILLSIM_CACHE_DIR/history` (as sim.compose_cache: else `~/.cache/skillsim/history`;
  an empty SKILLSIM_CACHE_DIR turns it off), at most `SKILLSIM_HISTORY_DISK_MB` megabytes (default
  1024; 0 turns it off). It lets the processes of a pool, and later commands, restore a history any
  of them simulated: a plan's workers, an explorer's moves, `skillsim` run again with other lever
  settings. Its key adds a fingerprint of what a history depends on besides the config: the
  package's code (by size and time) and data (by content), Python's and numpy's versions. Files
  are pickles written atomically by this package into the user's own cache folder, as numba's and
  sim.compose_cache's are; one that cannot be read is ignored, and deleting the folder is safe.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import os
import pickle
import re
import sys
from collections import OrderedDict
from pathlib import Path

ENV = "SKILLSIM_HISTORY_CACHE_MB"
DISK_ENV = "SKILLSIM_HISTORY_DISK_MB"
#: "0": this process's runs keep no history (their batch or sweep shares none; set by sim.cli and
#: sim.studies.batch), though they still restore one kept earlier
KEEP_ENV = "SKILLSIM_HISTORY_KEEP"
DEFAULT_MB = 128.0
DEFAULT_DISK_MB = 1024.0
FORMAT = 1  # of the key and the snapshot
#: the model attributes the history leaves behind, besides the workforce (copied by Workforce.copy)
STATE = ("t", "firms", "rates", "ledger", "wage_index", "level_counts", "bonus_slots", "history_rows",
         "history_dates", "aligned", "flows", "certification_spend", "income_quantiles", "row")


def _megabytes(env: str, default: float) -> float:
    value = os.environ.get(env, "").strip()
    if not value:
        return default * 1e6
    try:
        mb = float(value)
    except ValueError:
        mb = -1.0
    if 0.0 <= mb < float("inf"):
        return mb * 1e6
    from .errors import warn_setting

    warn_setting(env, value, f"is not a number of megabytes >= 0 (0 turns the layer off); using {default:g}")
    return default * 1e6


def budget_bytes() -> float:
    return _megabytes(ENV, DEFAULT_MB)


def disk_budget_bytes() -> float:
    return _megabytes(DISK_ENV, DEFAULT_DISK_MB)


def disk_dir() -> Path | None:
    """Where histories are kept on disk (the package's cache folder, sim.compose_cache); None if off."""
    from .compose_cache import cache_root

    root = cache_root()
    return None if root is None else root / "history"


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """What a history depends on besides its key: the package's code and data
    (sim.compose_cache.package_digest), and the versions of Python and numpy."""
    import numpy as np

    from .compose_cache import PACKAGE, package_digest

    return hashlib.sha256(json.dumps([sys.version, np.__version__, str(PACKAGE), FORMAT,
                                      package_digest()]).encode()).hexdigest()


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
        self.disk_hits = 0
        self.keeping = True

    def __len__(self) -> int:
        return len(self._snaps)

    def clear(self) -> None:
        self._snaps.clear()

    def restore(self, key: str, model, kernels) -> bool:
        """Put the history's end state into `model` (independent copies, the workforce with the
        passes `kernels`); False if neither layer keeps it."""
        snap = self._snaps.get(key) if budget_bytes() > 0 else None
        if snap is None:
            snap = self._load(key)
            if snap is None:
                self.misses += 1
                return False
            self._remember(key, snap)
        else:
            self._snaps.move_to_end(key)
        self.hits += 1
        wf = snap.workforce.copy()
        wf.kernels = kernels
        model.workforce = wf
        for name, value in copy.deepcopy(snap.state).items():
            setattr(model, name, value)
        return True

    def keep(self, key: str, model) -> None:
        """Keep a copy of `model`'s state at the end of its history, within the memory budget, and
        on disk within its own (about 10 ms at 50,000 workers: skipped where no other run can share
        it, see KEEP_ENV and `keeping`)."""
        if not self.keeping or os.environ.get(KEEP_ENV, "").strip() == "0":
            return
        nbytes = model.workforce.nbytes()
        memory, disk = budget_bytes(), disk_budget_bytes() if disk_dir() is not None else 0.0
        if nbytes > max(memory, disk) / 8:
            return
        state = copy.deepcopy({name: getattr(model, name) for name in STATE})
        snap = Snapshot(model.workforce.copy(), state, nbytes)
        self._remember(key, snap)
        if nbytes <= disk / 8:
            self._store(key, snap, disk)

    def _remember(self, key: str, snap: Snapshot) -> None:
        budget = budget_bytes()
        if snap.nbytes > budget / 8:
            return
        self._snaps[key] = snap
        self._snaps.move_to_end(key)
        while sum(s.nbytes for s in self._snaps.values()) > budget and len(self._snaps) > 1:
            self._snaps.popitem(last=False)

    @staticmethod
    def _path(key: str) -> Path | None:
        folder = disk_dir()
        if folder is None or disk_budget_bytes() <= 0:
            return None
        return folder / f"{hashlib.sha256((key + fingerprint()).encode()).hexdigest()[:32]}.pickle"

    def _load(self, key: str) -> Snapshot | None:
        try:
            path = self._path(key)
            if path is None or not path.is_file():
                return None
            with path.open("rb") as fh:
                snap = pickle.load(fh)
            if not isinstance(snap, Snapshot):
                return None
            os.utime(path)  # recently used: the last to go
            self.disk_hits += 1
            return snap
        except Exception:  # noqa: BLE001 - a damaged or foreign file: simulate the history again
            return None

    def _store(self, key: str, snap: Snapshot, budget: float) -> None:
        """Write atomically (a concurrent run reads a whole file or none), then trim to the budget."""
        try:
            path = self._path(key)
            if path is None:
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_bytes(pickle.dumps(snap, protocol=5))
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)  # a full disk kept each run's partial file, and they piled up
                raise
            entries = sorted(_entries(path.parent), reverse=True)
            total = 0
            for _, size, p in entries:
                total += size
                if total > budget and p != path:
                    p.unlink(missing_ok=True)
        except OSError as exc:  # a read-only or full disk only costs later runs their reuse
            from .compose_cache import unwritable

            unwritable(exc)
        except Exception:  # noqa: BLE001 - the same: a cache never fails a run
            return


def _entries(folder: Path) -> list[tuple[float, int, Path]]:
    """(mtime, size, path) of the cache's files. Another process (a pool's other worker) may delete one
    between the listing and its stat: that file is simply gone, not a cache that cannot be written (which
    a sensitivity study's first run reported)."""
    out = []
    for p in folder.glob("*.pickle"):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        out.append((st.st_mtime, st.st_size, p))
    return out


#: this process's cache (each worker process of a batch has its own)
CACHE = HistoryCache()


#: swept keys whose values give runs the same history (the forecast levers' settings, sim.history.status_quo)
SHARING_KEY = re.compile(r"^(levers\.(training|competition|studio)\.(enabled|intensity|allocation|selection)|scenario)$")
SEARCH_SPACE = "hydra.sweeper.params."
SWEPT_VALUE = re.compile(r"^(range|choice|glob|interval|tag|sort|shuffle)\(")


def sweep_may_share(overrides: list[str]) -> bool:
    """Whether a sweep's jobs can share histories: some key swept on the command line (or given to the
    sweeper's search space, `hydra.sweeper.params.<key>=...`) is a forecast lever's setting or the
    scenario. If not (replicates, seeds, behavioural values), every job's history is its own,
    and keeping it would only cost time. A list value (`[1,4]`) counts as swept: keeping is the safe
    side."""
    for o in overrides:
        key, sep, value = o.lstrip("+~").partition("=")
        key = key.strip()
        if key.startswith(SEARCH_SPACE):  # a sweeper's own search space (Optuna): every value is swept
            if SHARING_KEY.match(key[len(SEARCH_SPACE):]):
                return True
        elif sep and ("," in value or SWEPT_VALUE.match(value.strip())) and SHARING_KEY.match(key):
            return True
    return False


def group_by_history(configs, n_groups: int) -> tuple[list[list[int]], bool]:
    """Indices of `configs` in at least `n_groups` lists (where there are enough configs), those
    sharing a history together and in input order, so that a pool's worker runs a history once and
    reuses it (sim.studies.batch); a group larger than its share is split. Also: whether any two
    configs share a history at all."""
    from . import passes

    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(configs):
        groups.setdefault(history_key(cfg, passes.select(cfg.n_agents).__name__), []).append(i)
    size = max(1, -(-len(configs) // max(1, n_groups)))
    out = []
    for idx in groups.values():
        out += [idx[j:j + size] for j in range(0, len(idx), size)]
    return out, len(groups) < len(configs)
