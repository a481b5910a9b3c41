"""Sweeps on a SLURM cluster: submit, watch, record and cancel (used by `hydra/launcher=slurm`).

Hydra's submitit launcher was written for clusters with accounting and for sweeps where every job
returns. On a real cluster a sweep also meets the scheduler itself, so the launcher here
(hydra_plugins.skillsim_launchers.slurm) keeps submitit for the submission and for running each job,
and does the rest:

- **States from squeue.** submitit asks `sacct`, which fails on a cluster without accounting (every
  poll logged three warnings, and a killed job was never seen as finished). `squeue --states=all`
  lists every job of the sweep, the finished ones for MinJobAge seconds (300 by default) after they
  end, and the queue is polled every `poll_s` seconds, well within that.
- **A killed job is a FAILED record.** A job that ends without a result (scancel, time limit, out of
  memory, preemption, node failure) gets a FAILED record in its folder naming the scheduler's state,
  written under the job's claim (sim.claims), so a job that is somehow still running is never marked.
  The other jobs go on, the tables are built, the command exits 5 and a re-run into the same folder
  runs only the failed jobs, as for any failed job.
- **Interrupts cancel.** Ctrl-C or SIGTERM cancels, with one scancel, every job this command queued
  that has not finished, and the command says how many. Finished jobs are untouched.
- **Arrays below the limit.** A batch larger than the cluster's MaxArraySize is submitted as several
  arrays (the limit is read once from `scontrol show config`, or set by `max_array_size`).
- **Submission errors are one line.** sbatch's refusal names the launcher setting to change; the
  jobs already queued by this command are cancelled and a sweep folder this command created is
  removed (nothing is left behind).
- **No time request by default.** submitit writes `--time=5` when no time is given; a job then dies
  after five minutes. With `timeout_min` unset no `--time` is written, and the partition's default
  applies.

The queue is read in sim/cluster/queue.py, and sbatch scripts and refusals are in sim/cluster/sbatch.py.
Seeds do not depend on the launcher: each job composes the same config and derives its seed from it,
so a sweep's tables are byte-identical under the basic, joblib and SLURM launchers (tests/test_slurm.py).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

from ..errors import EXIT_PARTIAL, SkillsimError
from .queue import watcher_class
from .sbatch import NEVER_STARTS, SubmissionError, explain_refusal, make_executor, max_array_size, too_big_request

log = logging.getLogger("skillsim")

#: seconds to wait for a job's result file after the queue says the job ended (submitit waits 15)
RESULT_GRACE_S = 15.0
#: what a kill means for the user, and which setting to change
KILL_HINTS = {
    "TIMEOUT": "it reached its time limit; raise hydra.launcher.timeout_min",
    "OUT_OF_MEMORY": "it ran out of memory; set hydra.launcher.mem_gb higher",
    "PREEMPTED": "it was preempted by a job of higher priority",
    "NODE_FAIL": "its node failed",
    "BOOT_FAIL": "its node failed to boot",
    "CANCELLED": "it was cancelled (scancel, or by an administrator)",
    "DEADLINE": "it reached its deadline",
    "GONE": "the scheduler no longer lists it, and it left no result",
    "FAILED": "its process died before writing a result",
}


class SchedulerKill(SkillsimError):
    """A job the scheduler ended before it finished (the FAILED record's error): not the user's input."""

    exit_code = EXIT_PARTIAL
    user_error = False


class TimeLimitReached(SchedulerKill):
    """Raised in a job by SLURM's warning signal before its time limit (submitit's `signal_delay_s`)."""

    from_signal = True  # sim.errors.interrupts_kept passes it through a compiled call unchanged


def on_node(params: dict[str, Any]) -> None:
    """Signals of the scheduler, in a job on its node, before it runs.

    - SIGTERM (scancel, preemption, the time limit itself): stop at once, as skillsim does on
      SIGTERM, with nothing half-written and the claim released. submitit ignores SIGTERM, so such a
      job ran on until SIGKILL and sometimes even finished.
    - submitit's warning signal (USR2, `signal_delay_s` seconds before the time limit): submitit
      would try to checkpoint and requeue, which a run cannot do; the job instead records FAILED
      with the time limit and the setting to raise, and the sweep goes on.
    """
    import os
    import signal

    from submitit.core.job_environment import JobEnvironment

    from ..errors import stop_on_signal

    limit = params.get("timeout_min")
    asked = f"hydra.launcher.timeout_min = {limit}" if limit is not None else "the partition's default"

    def time_limit(signum, frame):  # noqa: ARG001
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        job = f"{os.environ.get('SLURM_ARRAY_JOB_ID')}_{task}" if task else os.environ.get("SLURM_JOB_ID", "?")
        raise TimeLimitReached(f"SLURM job {job} reached its time limit ({asked}) before the job finished: "
                               "raise hydra.launcher.timeout_min (within the partition's MaxTime)")

    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(JobEnvironment._usr_sig(), time_limit)


# -- the launch --------------------------------------------------------------------------------------

def _job_folder(launcher, overrides: Sequence[str]) -> tuple[Path, Any]:
    """A job's folder and its composed config (as the job will compose it)."""
    cfg = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    return Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir), cfg


def _killed(launcher, job, overrides: Sequence[str], job_num: int, state: str, reason: str):
    """Record a job the scheduler ended without a result as FAILED; its JobReturn for the sweeper."""
    from hydra.core.utils import JobReturn, JobStatus

    from .. import claims
    from ..cli import failed_objective
    from ..sweep import is_finished, record_failure, trial_done

    job_dir, cfg = _job_folder(launcher, overrides)
    value = failed_objective(cfg)
    if not is_finished(job_dir):
        why = KILL_HINTS.get(state, f"the scheduler ended it ({state})")
        if state == "FAILED":  # not the scheduler's doing: the job's own log says why
            why += f"; see {job.paths.stderr}"
        detail = f", reason {reason}" if reason and reason not in ("None", "(null)") else ""
        err = SchedulerKill(f"SLURM job {job.job_id} ended {state}{detail} before the job finished: {why}")
        held = claims.claim(job_dir)
        if held is None:
            log.warning("job %s: SLURM says %s, but a live process holds it; not marked", job_dir.name, state)
        else:
            with held:
                if not is_finished(job_dir) and record_failure(job_dir, err, list(overrides), job_num):
                    log.error("job %s failed: %s", job_dir.name, err)
    if not _basic(launcher):  # an optimiser's trial that ended: its progress counts trials (sim.sweep.trial_done)
        trial_done(job_dir.parent, job_num)
    return JobReturn(overrides=list(overrides), working_dir=str(job_dir), task_name=str(cfg.hydra.job.name),
                     status=JobStatus.COMPLETED, _return_value=value)


def _basic(launcher) -> bool:
    """Whether the sweep's sweeper is Hydra's basic one (not an optimiser, which reads the jobs' values)."""
    return str(launcher.config.hydra.sweeper.get("_target_", "")).endswith(".BasicSweeper")


def _cancel(jobs: list, done: set[int]) -> int:
    """Cancel the jobs not yet done, with one scancel per 200 jobs; how many were cancelled."""
    left = [j.job_id for i, j in enumerate(jobs) if i not in done]
    for k in range(0, len(left), 200):
        try:
            subprocess.run(["scancel", *left[k:k + 200]], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("slurm: could not cancel jobs %s: %s", " ".join(left[k:k + 200]), exc)
    return len(left)


def forget_new_sweep(sweep_dir: Path, before: set[str] | None) -> None:
    """After a refused submission: remove what this command wrote (a new sweep folder; else the
    submission's own files), never a finished job."""
    from ..aggregate import FAILED_MARKER
    from ..results import COMPLETE_MARKER

    if before is None:
        if not any((p / COMPLETE_MARKER).exists() or (p / FAILED_MARKER).exists()
                   for p in sweep_dir.iterdir() if p.is_dir()):
            shutil.rmtree(sweep_dir, ignore_errors=True)
        return
    for entry in sweep_dir.iterdir():
        if entry.name not in before and entry.name in (".submitit", "multirun.yaml", ".sweep_progress.json"):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _never_starts(watcher, jobs: list, done: set[int], params: dict[str, Any], sweep_dir: Path,
                  before: set[str] | None) -> None:
    """A job pending for a reason that will not pass (a time limit above the partition's, a request
    no node can meet) would leave the sweep waiting forever: cancel the sweep's jobs and say which
    setting to change."""
    watcher.update_if_long_enough("standard")
    for job in jobs:
        info = watcher.get_info(job.job_id, mode="cache")
        reason = info.get("Reason", "")
        if info.get("State") == "PENDING" and reason in NEVER_STARTS:
            _cancel(jobs, done)
            if sweep_dir.exists():
                forget_new_sweep(sweep_dir, before)
            key, allowed = NEVER_STARTS[reason]
            if reason in ("PartitionConfig", "BadConstraints"):  # which request: compare with the cluster
                key, allowed = too_big_request(params, (key, allowed))
            raise SubmissionError(f"SLURM will never start the sweep's jobs (pending with reason {reason}); "
                                  f"cancelled them: hydra.launcher.{key} = {params.get(key)!r}; allowed: {allowed}")


def _finished(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int = 0) -> dict[int, Any]:
    """The JobReturns of the jobs whose folders already hold a finished run: not submitted again, so
    resuming a large sweep queues only what is left (as the job itself would skip it, see sim.cli);
    an optimiser's such trial is counted done (sim.sweep.trial_done), as the job would count it."""
    from hydra.core.utils import JobReturn, JobStatus

    from ..cli import job_objective
    from ..sweep import finished_intact, trial_done

    basic = _basic(launcher)
    found = {}
    for i, overrides in enumerate(job_overrides):
        job_dir, cfg = _job_folder(launcher, overrides)
        if finished_intact(job_dir):  # a damaged one is submitted: the job sets it aside and runs again
            log.info("job %s: already finished, skipped", job_dir.name)
            if not basic:
                trial_done(job_dir.parent, initial_job_idx + i, ran=False)
            found[i] = JobReturn(overrides=list(overrides), working_dir=str(job_dir), task_name=str(cfg.hydra.job.name),
                                 status=JobStatus.COMPLETED, _return_value=None if basic else job_objective(cfg, job_dir))
    return found


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    """Submit a batch of sweep jobs as SLURM arrays and wait for all of them (see module doc)."""
    from hydra.core.singleton import Singleton
    from submitit.core.utils import UncompletedJobError

    from .. import sweep

    params = dict(launcher.params)
    poll_s = float(params.get("poll_s") or 10.0)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    existed = sweep.SWEEP_DIR_EXISTED if sweep.SWEEP_DIR == sweep_dir else sweep_dir.exists()
    before = {p.name for p in sweep_dir.iterdir()} if existed and sweep_dir.exists() else None
    try:
        executor = make_executor(params)
        per_array = max_array_size(params.get("max_array_size"))
    except (SubmissionError, ValueError) as exc:
        if sweep_dir.exists():
            forget_new_sweep(sweep_dir, before)
        if isinstance(exc, ValueError):  # submitit refused a parameter
            raise SubmissionError(f"config error: hydra.launcher: {str(exc).splitlines()[0]}") from None
        raise
    sweep_dir.mkdir(parents=True, exist_ok=True)
    results: list = [None] * len(job_overrides)
    for i, ret in _finished(launcher, job_overrides, initial_job_idx).items():
        results[i] = ret
    state = Singleton.get_state()
    todo = [i for i, r in enumerate(results) if r is None]  # position in the batch of each job to submit
    arguments = [(list(job_overrides[i]), "hydra.sweep.dir", initial_job_idx + i, f"job_id_for_{initial_job_idx + i}",
                  state) for i in todo]
    watcher = watcher_class()(poll_s)
    jobs: list = []  # aligned with todo
    done: set[int] = set()  # indices into jobs
    try:
        for start in range(0, len(arguments), per_array):
            chunk = arguments[start:start + per_array]
            try:
                submitted = executor.map_array(launcher, *zip(*chunk))
            except Exception as exc:  # noqa: BLE001 - sbatch's refusal, whatever submitit wraps it in
                _cancel(jobs, done)
                if sweep_dir.exists():
                    forget_new_sweep(sweep_dir, before)
                raise SubmissionError(explain_refusal(exc, params)) from None
            for job in submitted:
                job.watcher = watcher  # squeue, not sacct
                watcher.register_job(job.job_id)
            jobs += submitted
            log.info("slurm: %d jobs submitted as %s %s", len(chunk), "array" if len(chunk) > 1 else "job",
                     submitted[0].job_id.split("_")[0])
        ended: dict[int, float] = {}  # job -> when the queue first said it ended without a result
        while len(done) < len(jobs):
            watcher.update()
            _never_starts(watcher, jobs, done, params, sweep_dir, before)
            now = time.monotonic()
            for k, job in enumerate(jobs):
                if k in done:
                    continue
                if not job.paths.result_pickle.exists():
                    if not watcher.is_done(job.job_id, mode="cache"):
                        continue
                    # a shared file system may show the result a little after the queue shows the end
                    if now - ended.setdefault(k, now) < RESULT_GRACE_S:
                        continue
                    job._results_timeout_s = 0  # waited above, without holding up the other jobs
                overrides, job_num = arguments[k][0], arguments[k][2]
                try:
                    results[todo[k]] = job.results()[0]
                except UncompletedJobError:
                    info = watcher.get_info(job.job_id, mode="cache")
                    results[todo[k]] = _killed(launcher, job, overrides, job_num, info.get("State", "UNKNOWN"),
                                               info.get("Reason", ""))
                except Exception as exc:  # noqa: BLE001 - the job's harness failed (e.g. no Python on the node)
                    results[todo[k]] = _killed(launcher, job, overrides, job_num, "FAILED",
                                               str(exc).splitlines()[0][:200])
                done.add(k)
            if len(done) < len(jobs):
                sweep.log_progress(sweep_dir)
                time.sleep(poll_s)
        return results
    except KeyboardInterrupt:
        sweep.LAST_CANCELLED = _cancel(jobs, done)
        raise
