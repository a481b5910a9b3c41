"""Multirun support at the Hydra edge: per-job resume and failure records, progress, aggregation.

- A job whose folder already holds a finished run (COMPLETE) is skipped, so re-running a sweep into
  the same folder only runs what is missing or failed.
- A job that fails writes a FAILED record (error, overrides) into its folder and returns normally,
  so the other jobs go on and the aggregate lists the failure.
- `AggregateCallback` counts the jobs when the sweep starts, and writes the sweep tables
  (sim.aggregate) when it ends.
- Each job logs the sweep's progress when it ends: done out of total, elapsed time and ETA.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .aggregate import FAILED_MARKER, aggregate, report
from .errors import SkillsimError
from .results import COMPLETE_MARKER

log = logging.getLogger("skillsim")
PROGRESS_FILE = ".sweep_progress.json"
#: Set by the callback in the main process: (ok, failed, missing) of the last multirun.
LAST_COUNTS: dict | None = None
#: Set by the callback in the main process: the folder of the running multirun (for an interrupt).
SWEEP_DIR: Path | None = None


def is_finished(job_dir: Path) -> bool:
    return (job_dir / COMPLETE_MARKER).exists()


def clear_failure(job_dir: Path) -> None:
    """Before a retry: drop an old FAILED record and any half-written folder of this job."""
    (job_dir / FAILED_MARKER).unlink(missing_ok=True)
    for stale in job_dir.parent.glob(f".{job_dir.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)


def record_failure(job_dir: Path, err: BaseException, overrides: list[str], job_num: int | None) -> None:
    """Write FAILED atomically into the job folder."""
    job_dir.mkdir(parents=True, exist_ok=True)
    user = isinstance(err, SkillsimError)
    info = {"error": str(err) if user else f"{type(err).__name__}: {err}", "overrides": overrides,
            "job_num": job_num, "user_error": user}
    if not user:
        info["traceback"] = traceback.format_exc()
    tmp = job_dir / f".{FAILED_MARKER}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, job_dir / FAILED_MARKER)


def log_progress(sweep_dir: Path) -> None:
    """Jobs done out of total, elapsed time and ETA, from the markers in the sweep folder."""
    try:
        info = json.loads((sweep_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    total, started = info["total"], info["started"]
    done = fresh = 0
    for d in sweep_dir.iterdir():
        if d.name.startswith(".") or not d.is_dir():
            continue
        for marker in (COMPLETE_MARKER, FAILED_MARKER):
            m = d / marker
            if m.exists():
                done += 1
                fresh += m.stat().st_mtime >= started
                break
    if not fresh:  # only skipped (already finished) jobs so far: nothing new to report, no rate for an ETA
        return
    elapsed = time.time() - started
    remaining = max(0, total - done) if total >= 0 else None
    if remaining == 0:
        log.info("sweep progress: %d/%d jobs done, elapsed %.0f s", done, total, elapsed)
    elif remaining is None:
        log.info("sweep progress: %d jobs done, elapsed %.0f s", done, elapsed)
    else:
        log.info("sweep progress: %d/%d jobs done, elapsed %.0f s, ETA %.0f s", done, total, elapsed,
                 elapsed / fresh * remaining)


def count_jobs(config: DictConfig) -> int:
    """Number of jobs Hydra's basic sweeper will launch for this multirun."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # As BasicSweeper.sweep: the sweeper's params first, then the command line, whose value wins for a
    # key given in both (`+sweep=NAME replicate=range(0,2)` runs 2 replicates, not NAME's).
    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    args = params + list(config.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides(args)
    return sum(len(batch) for batch in BasicSweeper.split_arguments(parsed, None))


class AggregateCallback(Callback):
    """Counts a multirun's jobs at the start and writes its tables at the end."""

    def __init__(self, baseline: str | None = None) -> None:
        self.baseline = baseline

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global SWEEP_DIR
        sweep_dir = SWEEP_DIR = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        try:
            total = count_jobs(config)
        except Exception:  # counting is only for the progress log
            total = -1
        info = {"total": total, "started": time.time()}
        (sweep_dir / PROGRESS_FILE).write_text(json.dumps(info) + "\n", encoding="utf-8")
        log.info("sweep: %s jobs into %s", total if total >= 0 else "unknown number of", sweep_dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_COUNTS
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            LAST_COUNTS = aggregate(sweep_dir, self.baseline)
        except SkillsimError as err:
            log.error("aggregation failed: %s", err)
            LAST_COUNTS = {"ok": 0, "failed": 0, "missing": 1}
            return
        report(sweep_dir, LAST_COUNTS)

