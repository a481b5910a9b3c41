"""One way to run a batch of configurations in memory, in parallel, in order.

Every study (calibration, forecast ensembles, backtests) hands a list of `RunConfig`s and a reader
to `run_batch`; each config runs as one `WorkforceModel` and the reader turns the finished model
into whatever the study keeps (moments, a series, figures), so nothing large crosses a process
boundary. Processes come from joblib's loky backend (a well-kept pool that reuses its workers and
is already a dependency through Hydra's joblib launcher): the model is single-threaded numpy, so
one process per core is the right grain. `SKILLSIM_JOBS` sets the number of processes (default: one
per core this process may use; 1 runs in this process). Results come back in input order, so a study's
tables do not depend on how many processes ran it.

Runs that share a simulated history (the same config but for the forecast levers' settings, as a
plan's lever mixes at common random numbers) go to a worker together, so that it simulates the
history once and restores it for the others (sim.history_reuse): the same bytes, about 40% less
work for each such run.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from ..config import RunConfig

T = TypeVar("T")


LOKY_COUNT = "LOKY_MAX_CPU_COUNT"


def drop_unusable_loky_count() -> None:
    """A LOKY_MAX_CPU_COUNT that is not a whole number made joblib fail wherever it counts the cores (a
    study's pool, a sweep's launcher) with a ValueError, reported as a bug of skillsim: it is warned
    about once and taken out of this process's environment, so the run goes on without it."""
    value = os.environ.get(LOKY_COUNT)
    if value is None:
        return
    try:
        int(value)  # as joblib reads it
        return
    except ValueError:
        pass
    from ..errors import warn_setting

    warn_setting(LOKY_COUNT, value, "is not a whole number of processes; the cores are counted without it")
    os.environ.pop(LOKY_COUNT, None)


WORKER_RESTART = "A worker stopped while some jobs were given to the executor"


def quiet_worker_restarts() -> None:
    """Hide loky's warning that a worker stopped while jobs were waiting. A worker that sat idle past
    loky's timeout (300 s: a long backtest's parent fitting between batches) stops, loky starts another
    and the jobs run on it, so nothing is lost or changed; the warning's guess of "a memory leak"
    alarmed a user trial's backtest and said nothing they could act on. Process-wide: loky warns from
    its own thread."""
    import warnings

    warnings.filterwarnings("ignore", message=WORKER_RESTART, category=UserWarning)


def usable_cores() -> int:
    """The cores this process may use: joblib's count (loky's), which honours the CPU affinity a
    cluster's scheduler sets (a SLURM job of 4 CPUs on a 64-core node), a container's CPU quota and
    LOKY_MAX_CPU_COUNT, as the sweeps' joblib launcher (n_jobs=-1) counts them. os.cpu_count() counts
    the machine's: a study in a 4-CPU allocation started 64 processes on those 4."""
    from joblib import cpu_count

    drop_unusable_loky_count()
    return max(1, cpu_count())


def n_jobs() -> int:
    """Worker processes: SKILLSIM_JOBS, else one per usable core (`usable_cores`); a value that is not
    a whole number >= 1 is warned about once and the default used."""
    value = os.environ.get("SKILLSIM_JOBS", "").strip()
    if not value:
        return usable_cores()
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs >= 1:
        return jobs
    from ..errors import warn_setting

    cores = usable_cores()
    warn_setting("SKILLSIM_JOBS", value, f"is not a whole number of processes >= 1; using {cores} "
                 "(one per core this process may use)")
    return cores


class Execution:
    """How one study's runs ran: kept in its manifest (`forecast.seal`), so that a reader of the folder
    knows how many processes and which per-worker passes ran it (on a cluster node, a pinned CPU); the
    results depend on neither (tests/test_forecast.py compares folders made both ways). Each run names
    the passes its model actually took, in whichever process it ran."""

    def __init__(self) -> None:
        self.runs = 0
        self.from_journal = 0  # results a resumed study took from its journal instead of running them
        self.processes: set[int] = set()
        self.passes: set[str] = set()

    def as_dict(self) -> dict:
        try:
            cores: int | None = usable_cores()
        except Exception:  # noqa: BLE001 - a fact for the manifest: never a reason to lose a finished study
            cores = None
        return {"runs": self.runs, "from_journal": self.from_journal, "processes": sorted(self.processes),
                "passes": sorted(self.passes), "usable_cores": cores, "SKILLSIM_JOBS": os.environ.get("SKILLSIM_JOBS")}


_STUDY = threading.local()  # the Execution of the study running in this thread (`recording`), if any


@contextlib.contextmanager
def recording():
    """Note how the runs of the study run in this thread within the block ran (`options.run_command`
    opens one per study command): a study that fails leaves nothing for the next, and batches on other
    threads (the explorer's views) are not noted in it."""
    before = getattr(_STUDY, "execution", None)
    _STUDY.execution = Execution()
    try:
        yield _STUDY.execution
    finally:
        _STUDY.execution = before


def execution() -> dict | None:
    """How the runs of the study running in this thread ran so far (None outside a `recording`)."""
    current = getattr(_STUDY, "execution", None)
    return None if current is None else current.as_dict()


def passes_name(model) -> str:
    """'compiled' or 'numpy': the per-worker passes `model` ran with."""
    return "compiled" if model.workforce.kernels.__name__.endswith(".kernels") else "numpy"


def note_runs(passes: Sequence[str], processes: int) -> None:
    """Note runs that took `passes` (one name per run) on `processes` processes, in this thread's study."""
    current = getattr(_STUDY, "execution", None)
    if current is not None and passes:
        current.runs += len(passes)
        current.processes.add(processes)
        current.passes.update(passes)


def note_model(model) -> None:
    """Note one model run in this process, outside `run_batch` (the calibration's checks)."""
    note_runs([passes_name(model)], 1)


def note_from_journal(count: int) -> None:
    current = getattr(_STUDY, "execution", None)
    if current is not None:
        current.from_journal += count


def _one(cfg: RunConfig, read: Callable) -> tuple[object, str]:
    """read(the finished model) and the passes it ran with (`passes_name`)."""
    from ..model import WorkforceModel

    model = WorkforceModel(cfg).run()
    return read(model), passes_name(model)


def _several(configs: list[RunConfig], read: Callable, keep: bool = True,
             passes: str | None = None) -> list[tuple[object, str]]:
    """Runs one after another (`_one` each); `keep`: whether their histories are kept for others
    (sim.history_reuse); `passes`: the passes they take ('compiled', 'numpy'; None: as chosen here)."""
    from ..errors import end_with_parent
    from ..history_reuse import CACHE
    from ..passes import chosen

    end_with_parent()  # in a pool's worker: not left running if the study's process is killed
    before, CACHE.keeping = CACHE.keeping, keep
    try:
        with chosen(passes):
            return [_one(c, read) for c in configs]
    finally:
        CACHE.keeping = before


def _noted(done: list[tuple[object, str]], processes: int) -> list:
    """The results of `_one`s, their passes noted in this thread's study (`note_runs`)."""
    note_runs([name for _, name in done], processes)
    return [result for result, _ in done]


_POOL_PASSES: list[str] = []  # the passes this process's last pool handed its workers (`run_batch`)

#: pieces per process: small enough to balance the load, large enough that a worker mostly reuses
#: the histories it simulated (its cache outlives a piece)
PIECES_PER_JOB = 4


def run_batch(configs: Sequence[RunConfig], read: Callable[["object"], T], jobs: int | None = None,
              wait_for_compiling: bool = True) -> list[T]:
    """read(WorkforceModel(cfg).run()) for each config, in input order. `wait_for_compiling`: see
    sim.passes.use_compiled_in_workers (False for the explorer, whose first chart must not wait)."""
    from ..history_reuse import group_by_history

    jobs = n_jobs() if jobs is None else jobs
    if len(configs) <= 1:  # with the passes of this process's last pool: its runs' histories, kept on disk,
        from ..passes import chosen  # are found under those passes' name (sim.history_reuse)

        with chosen(_POOL_PASSES[-1] if _POOL_PASSES else None):
            return _noted([_one(c, read) for c in configs], 1)
    # runs that share no history (a calibration's, an ensemble's) keep none: it would only cost time
    pieces, keep = group_by_history(configs, jobs * PIECES_PER_JOB)
    if jobs <= 1:
        from ..passes import compiled_for_batch

        with compiled_for_batch(len(configs), sum(c.n_agents for c in configs), wait_for_compiling):
            return _noted(_several(list(configs), read, keep), 1)
    from joblib import Parallel, delayed

    from ..passes import use_compiled_in_workers

    drop_unusable_loky_count()  # SKILLSIM_JOBS given: joblib still reads it
    quiet_worker_restarts()

    # many runs per worker: the compiled passes pay for their load time; the choice goes with each piece
    passes = use_compiled_in_workers(wait_for_compiling, set_env=False)
    _POOL_PASSES[:] = [passes]
    processes = min(jobs, len(pieces))
    results = Parallel(n_jobs=processes, backend="loky")(
        delayed(_several)([configs[i] for i in piece], read, keep, passes) for piece in pieces)
    out: list = [None] * len(configs)
    for piece, res in zip(pieces, results):
        for i, r in zip(piece, res):
            out[i] = r
    return _noted(out, processes)


class JournalledBatch:
    """`run_batch` with a memory: every finished run's result is appended to a JSON-lines journal
    (fsynced per batch), keyed by a digest of its config and of `tag` (what the reader reads), so a
    study interrupted and re-run with the same journal reuses its finished runs and, being
    deterministic given its evaluations, takes the same path to the same answer. Results must be
    JSON values (numbers, lists, dicts). The journal sits beside the study's folder and is removed
    when the folder is written (`close`)."""

    def __init__(self, journal: Path | None, tag: object = None, log=print):
        import json

        self.journal, self.tag, self.runs, self.done, self.log = journal, tag, 0, {}, log
        self.used: set[str] = set()  # every run the study asked for: run now or taken from the journal
        if journal is not None and journal.exists():
            for line in journal.read_text(encoding="utf-8").splitlines():
                try:
                    rec = json.loads(line)
                    self.done[rec["key"]] = rec["value"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by the interruption
            if self.done:
                log(f"resuming: {len(self.done)} finished runs in {journal}; those this study asks for again "
                    "are not run again")
        self.journalled, self.taken = set(self.done), set()  # the journal's results, and those used (`note_from_journal`)

    def key(self, cfg: RunConfig) -> str:
        import hashlib
        import json

        from ..config import to_dict

        text = json.dumps([to_dict(cfg), self.tag], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def run(self, configs: Sequence[RunConfig], read: Callable[["object"], T], chunk: int | None = None) -> list[T]:
        """read(model) for each config, in input order; finished runs are not run again. With `chunk`,
        the runs go `chunk` at a time, each piece journalled (an interrupt loses at most one piece)
        and, on a long call, a progress line per piece with the time left (through the batch's `log`)."""
        import time

        if chunk is not None and len(configs) > chunk:
            out: list[T] = []
            t0, ran0 = time.perf_counter(), self.runs
            for start in range(0, len(configs), chunk):
                out += self.run(configs[start:start + chunk], read)
                done = min(start + chunk, len(configs))
                if done < len(configs) and self.runs > ran0:
                    left = (time.perf_counter() - t0) / (self.runs - ran0) * (len(configs) - done)
                    self.log(f"{done}/{len(configs)} runs of this step, {self.runs} run in all; "
                             f"about {left:.0f} s to the end of the step")
            return out
        import json

        keys = [self.key(c) for c in configs]
        self.used.update(keys)
        todo = [k for k in dict.fromkeys(keys) if k not in self.done]
        reused = self.journalled.intersection(keys) - self.taken  # each journal result counted once
        self.taken |= reused
        note_from_journal(len(reused))
        if todo:
            by_key = dict(zip(keys, configs))
            results = run_batch([by_key[k] for k in todo], read)
            self.runs += len(todo)
            self.done.update(zip(todo, results))
            if self.journal is not None:
                with open(self.journal, "a", encoding="utf-8") as fh:
                    fh.writelines(json.dumps({"key": k, "value": v}) + "\n" for k, v in zip(todo, results))
                    fh.flush()
                    os.fsync(fh.fileno())
        return [self.done[k] for k in keys]

    def close(self) -> None:
        if self.journal is not None:
            self.journal.unlink(missing_ok=True)


CHUNK = 32  # design points per chunk of a study over inputs: progress and the journal advance this often


def evaluate_in_chunks(evaluate: Callable, X, reps: list[int], *, chunk: int = CHUNK, log=print,
                       prog: str = "study") -> dict:
    """evaluate(X, reps) -> {name: (n, R) array}, called on `chunk` points at a time so that a long
    study shows progress (one line per chunk: runs done of all, elapsed, ETA) and, with a journalled
    evaluator, an interrupt keeps every finished chunk. The ETA counts only runs that actually ran
    (`evaluate.runs`, if it has one: a resumed journal's runs cost nothing)."""
    import time

    import numpy as np

    total, t0 = len(X) * len(reps), time.perf_counter()
    ran0 = getattr(evaluate, "runs", None)
    parts: list[dict] = []
    for start in range(0, len(X), chunk):
        parts.append(evaluate(X[start:start + chunk], reps))
        done, elapsed = min(start + chunk, len(X)) * len(reps), time.perf_counter() - t0
        ran = done if ran0 is None else evaluate.runs - ran0
        eta = f"ETA {elapsed / ran * (total - done):.0f} s" if ran > 0 else "ETA -"
        log(f"{prog}: runs {done}/{total}, elapsed {elapsed:.0f} s, {eta}")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
