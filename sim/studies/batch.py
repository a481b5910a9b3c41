"""One way to run a batch of configurations in memory, in parallel, in order.

Every study (calibration, forecast ensembles, backtests) hands a list of `RunConfig`s and a reader
to `run_batch`; each config runs as one `WorkforceModel` and the reader turns the finished model
into whatever the study keeps (moments, a series, figures), so nothing large crosses a process
boundary. Processes come from joblib's loky backend (a well-kept pool that reuses its workers and
is already a dependency through Hydra's joblib launcher): the model is single-threaded numpy, so
one process per core is the right grain. `SKILLSIM_JOBS` sets the number of processes (default: one
per core; 1 runs in this process). Results come back in input order, so a study's tables do not
depend on how many processes ran it.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence, TypeVar

from ..config import RunConfig

T = TypeVar("T")


def n_jobs() -> int:
    value = os.environ.get("SKILLSIM_JOBS", "")
    try:
        return max(1, int(value)) if value else max(1, os.cpu_count() or 1)
    except ValueError:
        return max(1, os.cpu_count() or 1)


def _one(cfg: RunConfig, read: Callable) -> object:
    from ..model import WorkforceModel

    return read(WorkforceModel(cfg).run())


def run_batch(configs: Sequence[RunConfig], read: Callable[["object"], T], jobs: int | None = None) -> list[T]:
    """read(WorkforceModel(cfg).run()) for each config, in input order."""
    jobs = n_jobs() if jobs is None else jobs
    if jobs <= 1 or len(configs) <= 1:
        return [_one(c, read) for c in configs]
    from joblib import Parallel, delayed

    from ..passes import use_compiled_in_workers

    use_compiled_in_workers()  # many runs per worker: the compiled passes pay for their load time
    return list(Parallel(n_jobs=min(jobs, len(configs)), backend="loky")(delayed(_one)(c, read) for c in configs))
