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

Seeds do not depend on the launcher: each job composes the same config and derives its seed from it,
so a sweep's tables are byte-identical under the basic, joblib and SLURM launchers (tests/test_slurm.py).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from ..errors import EXIT_CONFIG, EXIT_PARTIAL, SkillsimError

log = logging.getLogger("skillsim")

#: seconds to wait for a job's result file after the queue says the job ended (submitit waits 15)
RESULT_GRACE_S = 15.0
#: launcher settings of ours, not submitit's
OWN_KEYS = ("max_array_size", "poll_s")
#: squeue states after which a job will not run again (others: pending, running, requeued, ...)
FINAL_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT", "GONE"}
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
}


class SubmissionError(SkillsimError):
    """sbatch refused the sweep's jobs: one line naming the launcher setting to change."""

    exit_code = EXIT_CONFIG


class SbatchRefused(RuntimeError):
    """sbatch's error output (turned into a SubmissionError by `launch`)."""


class SchedulerKill(SkillsimError):
    """A job the scheduler ended before it finished (the FAILED record's error): not the user's input."""

    exit_code = EXIT_PARTIAL
    user_error = False


#: Set when an interrupt cancelled jobs: how many (for the command's one-line message).
LAST_CANCELLED: int | None = None


# -- the queue ---------------------------------------------------------------------------------------

def _watcher_class():
    from submitit.slurm.slurm import SlurmInfoWatcher, read_job_id

    class QueueWatcher(SlurmInfoWatcher):
        """Job states from one `squeue --states=all` call for all the sweep's arrays (see module doc)."""

        def __init__(self, delay_s: float) -> None:
            super().__init__(delay_s=int(max(1, delay_s)))
            self.failures = 0

        def _make_command(self) -> list[str] | None:
            to_check = {x.split("_")[0] for x in self._registered - self._finished}
            if not to_check:
                return None
            return ["squeue", "--noheader", "--states=all", "--format=%i|%T|%r", f"--jobs={','.join(sorted(to_check))}"]

        def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
            text = string.decode() if isinstance(string, bytes) else string
            info: dict[str, dict[str, str]] = {}
            for line in text.splitlines():
                parts = line.strip().split("|")
                if len(parts) < 3 or not parts[0]:
                    continue
                stats = {"JobID": parts[0], "State": parts[1].split()[0], "Reason": parts[2]}
                for split in read_job_id(parts[0]):
                    info["_".join(split[:2])] = stats
                    if len(split) >= 3:
                        for index in range(int(split[1]), int(split[2]) + 1):
                            info[f"{split[0]}_{index}"] = stats
            return info

        def update(self) -> None:
            command = self._make_command()
            if command is None:
                return
            self._num_calls += 1
            try:
                out = subprocess.run(command, capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.TimeoutExpired) as exc:
                out = subprocess.CompletedProcess(command, 1, "", str(exc))
            self._last_status_check = time.time()
            if out.returncode != 0:
                self.failures += 1
                if self.failures in (1, 10, 100) or self.failures % 1000 == 0:  # not a line per poll
                    log.warning("slurm: squeue failed (%d times so far): %s", self.failures,
                                (out.stderr or "").strip().splitlines()[-1:] or "")
                return
            seen = self.read_info(out.stdout)
            # sbatch has returned, so every job of ours is in the queue's memory until MinJobAge after
            # it ends: one that squeue does not list has ended and been forgotten
            for job_id in self._registered - self._finished - set(seen):
                seen[job_id] = {"JobID": job_id, "State": "GONE", "Reason": ""}
            self._info_dict.update(seen)
            self._finished |= {j for j, s in self._info_dict.items() if s.get("State") in FINAL_STATES}

        def is_done(self, job_id: str, mode: str = "standard") -> bool:
            return self.get_state(job_id, mode=mode) in FINAL_STATES

    return QueueWatcher


def _scontrol_config() -> dict[str, str]:
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    conf = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            conf[key.strip()] = value.strip()
    return conf


def max_array_size(configured: int | None) -> int:
    """Jobs per array: the configured cap, or the cluster's MaxArraySize (array indices run below it)."""
    if configured is not None:
        if int(configured) < 1:
            raise SubmissionError(f"config error: hydra.launcher.max_array_size = {configured!r} is invalid; "
                                  "allowed: a positive number of jobs per array, or null for the cluster's MaxArraySize")
        return int(configured)
    try:
        return max(1, int(_scontrol_config().get("MaxArraySize", "1001")))
    except ValueError:
        return 1001


# -- submission --------------------------------------------------------------------------------------

def _executor_class():
    from submitit.core import utils
    from submitit.slurm.slurm import SlurmExecutor, SlurmJob

    class Executor(SlurmExecutor):
        """submitit's SLURM executor, writing no `--time` when no time limit was asked for."""

        no_time = False

        def _submit_command(self, command: str):
            """submitit's own submission, with sbatch's refusal raised (for one line), not printed."""
            uid = uuid.uuid4().hex
            path = utils.JobPaths.get_first_id_independent_folder(self.folder) / f".submission_file_{uid}.sh"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self._make_submission_file_text(command, uid))
            try:
                out = subprocess.run(self._make_submission_command(path), capture_output=True, text=True, timeout=300)
            except (OSError, subprocess.TimeoutExpired) as exc:
                path.unlink(missing_ok=True)
                raise SbatchRefused(f"sbatch: error: {exc}") from None
            if out.returncode != 0:
                path.unlink(missing_ok=True)
                raise SbatchRefused(out.stderr or out.stdout)
            job = self.job_class(folder=self.folder, job_id=self._get_job_id_from_submission_command(out.stdout),
                                 tasks=list(range(self._num_tasks())))
            job.paths.move_temporary_file(path, "submission_file", keep_as_symlink=True)
            self._write_job_id(job.job_id, uid)
            self._set_job_permissions(job.paths.folder)
            return job

        def _make_submission_file_text(self, command: str, uid: str) -> str:
            text = super()._make_submission_file_text(command, uid)
            if self.no_time:
                text = "\n".join(ln for ln in text.split("\n") if not ln.startswith("#SBATCH --time="))
            return text

        def _internal_process_submissions(self, delayed_submissions):
            """submitit's own array submission, with this class (not SlurmExecutor) for the array."""
            if len(delayed_submissions) == 1:
                return super()._internal_process_submissions(delayed_submissions)
            folder = utils.JobPaths.get_first_id_independent_folder(self.folder)
            folder.mkdir(parents=True, exist_ok=True)
            timeout_min = self.parameters.get("time", 5)
            pickle_paths = []
            for d in delayed_submissions:
                pickle_path = folder / f"{uuid.uuid4().hex}.pkl"
                d.set_timeout(timeout_min, self.max_num_timeout)
                d.dump(pickle_path)
                pickle_paths.append(pickle_path)
            n = len(delayed_submissions)
            array_ex = type(self)(self.folder, self.max_num_timeout)
            array_ex.no_time = self.no_time
            array_ex.update_parameters(**self.parameters)
            array_ex.parameters["map_count"] = n
            self._throttle()
            first_job = array_ex._submit_command(self._submitit_command_str)
            tasks_ids = list(range(first_job.num_tasks))
            jobs = [SlurmJob(folder=self.folder, job_id=f"{first_job.job_id}_{a}", tasks=tasks_ids) for a in range(n)]
            for job, pickle_path in zip(jobs, pickle_paths):
                job.paths.move_temporary_file(pickle_path, "submitted_pickle")
            return jobs

    return Executor


def make_executor(params: dict[str, Any]):
    """The executor for the launcher's settings, as the upstream launcher builds it."""
    try:
        executor = _executor_class()(folder=params["submitit_folder"],
                                     max_num_timeout=params.get("max_num_timeout", 0) or 0)
    except RuntimeError as exc:  # submitit: no srun on PATH
        raise SubmissionError(f"hydra/launcher=slurm needs a SLURM cluster, and none was found ({exc}); run on "
                              "the cluster's login node, or use the default launcher on one machine") from None
    executor.no_time = params.get("timeout_min") is None
    # as submitit's AutoExecutor does: generic names (timeout_min, mem_gb, ...) to sbatch's, None = unset
    rest = {k: v for k, v in params.items()
            if k not in {"submitit_folder", "max_num_timeout", *OWN_KEYS} and v is not None}
    executor.update_parameters(**executor._convert_parameters(rest))
    return executor


def _sbatch_message(exc: BaseException) -> str:
    text = str(exc)
    errors = [ln.split("error:", 1)[1].strip() for ln in text.splitlines() if "sbatch: error:" in ln]
    if errors:  # "invalid partition specified: cpu" before "Batch job submission failed: ..."
        return "; ".join(dict.fromkeys(errors))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _partitions() -> str:
    try:
        out = subprocess.run(["sinfo", "--noheader", "--format=%R"], capture_output=True, text=True, timeout=30)
        return ", ".join(sorted(set(out.stdout.split()))) or "see sinfo"
    except (OSError, subprocess.TimeoutExpired):
        return "see sinfo"


#: reasons for which a pending job will never start, as squeue gives them: the setting to change
_NODE = ("cpus_per_task", "at most what one node has (sinfo -o '%c %m %G'), memory and gres included")
NEVER_STARTS = {
    "PartitionTimeLimit": ("timeout_min", "null (the partition's default) or at most the partition's MaxTime "
                                          "(scontrol show partition)"),
    "QOSMaxWallDurationPerJobLimit": ("timeout_min", "null or at most your QOS's MaxWall"),
    "PartitionConfig": _NODE, "PartitionNodeLimit": ("nodes", "at most the partition's MaxNodes"),
    "BadConstraints": _NODE, "AccountNotAllowed": ("account", "an account allowed on the partition"),
    "InvalidAccount": ("account", "an account you belong to"), "InvalidQOS": ("qos", "a QOS of your account"),
    "QOSNotAllowed": ("qos", "a QOS allowed on the partition")}


def explain_refusal(exc: BaseException, params: dict[str, Any]) -> str:
    """One line for sbatch's refusal: what SLURM said and the launcher setting to change."""
    said = _sbatch_message(exc)
    low = said.lower()
    if "time limit" in low:
        key, value, allowed = "timeout_min", params.get("timeout_min"), "null (the partition's default) or at most the partition's MaxTime (scontrol show partition)"
    elif "account" in low:
        key, value, allowed = "account", params.get("account"), "an account you belong to (sacctmgr show assoc user=$USER)"
    elif "qos" in low:
        key, value, allowed = "qos", params.get("qos"), "a QOS of your account"
    elif "partition" in low:
        key, value, allowed = "partition", params.get("partition"), f"a partition of this cluster: {_partitions()}"
    elif "memory" in low:
        key, value, allowed = "mem_gb", params.get("mem_gb"), "null (the partition's default) or what a node has (sinfo -o %m)"
    elif "array" in low:
        key, value, allowed = "max_array_size", params.get("max_array_size"), "at most the cluster's MaxArraySize"
    elif "gres" in low or "generic resource" in low:
        key, value, allowed = "gres", params.get("gres"), "resources the nodes have (sinfo -o %G)"
    elif "node configuration" in low or "cpu" in low:
        key, value, allowed = _NODE[0], params.get(_NODE[0]), _NODE[1]
    else:
        return f"SLURM refused the sweep's jobs: {said}; check the hydra.launcher settings (docs/cluster.md)"
    return f"SLURM refused the sweep's jobs ({said}): hydra.launcher.{key} = {value!r}; allowed: {allowed}"


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
    from ..sweep import is_finished, record_failure

    job_dir, cfg = _job_folder(launcher, overrides)
    value = failed_objective(cfg)
    if not is_finished(job_dir):
        why = KILL_HINTS.get(state, f"the scheduler ended it ({state})")
        detail = f", reason {reason}" if reason and reason not in ("None", "(null)") else ""
        err = SchedulerKill(f"SLURM job {job.job_id} ended {state}{detail} before the job finished: {why}")
        held = claims.claim(job_dir)
        if held is None:
            log.warning("job %s: SLURM says %s, but a live process holds it; not marked", job_dir.name, state)
        else:
            with held:
                if not is_finished(job_dir) and record_failure(job_dir, err, list(overrides), job_num):
                    log.error("job %s failed: %s", job_dir.name, err)
    return JobReturn(overrides=list(overrides), working_dir=str(job_dir), task_name=str(cfg.hydra.job.name),
                     status=JobStatus.COMPLETED, _return_value=value)


def _cancel(jobs: list, done: set[int]) -> int:
    """Cancel the jobs not yet done, with one scancel per 200 jobs; how many were cancelled."""
    left = [j.job_id for i, j in enumerate(jobs) if i not in done]
    for k in range(0, len(left), 200):
        try:
            subprocess.run(["scancel", *left[k:k + 200]], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("slurm: could not cancel jobs %s: %s", " ".join(left[k:k + 200]), exc)
    return len(left)


def _forget_new_sweep(sweep_dir: Path, before: set[str] | None) -> None:
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


def _minutes(limit: str) -> float | None:
    """SLURM's time limit ([D-]HH:MM:SS, MM:SS, MM, UNLIMITED) in minutes; None if unlimited."""
    if not limit or limit.upper() in ("UNLIMITED", "INFINITE", "NONE"):
        return None
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    h, m, sec = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return (int(days or 0) * 24 + h) * 60 + m + sec / 60


def _too_big(params: dict[str, Any], fallback: tuple[str, str]) -> tuple[str, str]:
    """The launcher request that the partition or its nodes cannot meet: (setting, what is allowed)."""
    try:
        which = [params["partition"]] if params.get("partition") else []
        part = subprocess.run(["scontrol", "show", "partition", "--oneliner", *which], capture_output=True,
                              text=True, timeout=30).stdout.splitlines()
        nodes = subprocess.run(["sinfo", "--noheader", "--format=%c %m"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return fallback
    if not which:  # the default partition
        part = [ln for ln in part if "Default=YES" in ln] or part
    fields = dict(f.split("=", 1) for f in (part[0] if part else "").split() if "=" in f)
    max_time = _minutes(fields.get("MaxTime", ""))
    if params.get("timeout_min") is not None and max_time is not None and params["timeout_min"] > max_time:
        return "timeout_min", f"null (the partition's default) or at most the partition's MaxTime, {max_time:g} minutes"
    sizes = [ln.split() for ln in nodes.splitlines() if len(ln.split()) == 2]
    cpus = max((int(c.rstrip("+")) for c, _ in sizes), default=None)
    mem_mb = max((int(m.rstrip("+")) for _, m in sizes), default=None)
    if params.get("cpus_per_task") and cpus and params["cpus_per_task"] * (params.get("tasks_per_node") or 1) > cpus:
        return "cpus_per_task", f"at most {cpus} CPUs per node (sinfo -o %c)"
    if params.get("mem_gb") and mem_mb and params["mem_gb"] * 1024 > mem_mb:
        return "mem_gb", f"null or at most {mem_mb // 1024} GB per node (sinfo -o %m)"
    return fallback


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
                _forget_new_sweep(sweep_dir, before)
            key, allowed = NEVER_STARTS[reason]
            if reason in ("PartitionConfig", "BadConstraints"):  # which request: compare with the cluster
                key, allowed = _too_big(params, (key, allowed))
            raise SubmissionError(f"SLURM will never start the sweep's jobs (pending with reason {reason}); "
                                  f"cancelled them: hydra.launcher.{key} = {params.get(key)!r}; allowed: {allowed}")


def _finished(launcher, job_overrides: Sequence[Sequence[str]]) -> dict[int, Any]:
    """The JobReturns of the jobs whose folders already hold a finished run: not submitted again, so
    resuming a large sweep queues only what is left (as the job itself would skip it, see sim.cli)."""
    from hydra.core.utils import JobReturn, JobStatus

    from ..cli import job_objective
    from ..sweep import is_finished

    basic = str(launcher.config.hydra.sweeper.get("_target_", "")).endswith(".BasicSweeper")
    found = {}
    for i, overrides in enumerate(job_overrides):
        job_dir, cfg = _job_folder(launcher, overrides)
        if is_finished(job_dir):
            log.info("job %s: already finished, skipped", job_dir.name)
            found[i] = JobReturn(overrides=list(overrides), working_dir=str(job_dir), task_name=str(cfg.hydra.job.name),
                                 status=JobStatus.COMPLETED, _return_value=None if basic else job_objective(cfg, job_dir))
    return found


def launch(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    """Submit a batch of sweep jobs as SLURM arrays and wait for all of them (see module doc)."""
    global LAST_CANCELLED
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
            _forget_new_sweep(sweep_dir, before)
        if isinstance(exc, ValueError):  # submitit refused a parameter
            raise SubmissionError(f"config error: hydra.launcher: {str(exc).splitlines()[0]}") from None
        raise
    sweep_dir.mkdir(parents=True, exist_ok=True)
    results: list = [None] * len(job_overrides)
    for i, ret in _finished(launcher, job_overrides).items():
        results[i] = ret
    state = Singleton.get_state()
    todo = [i for i, r in enumerate(results) if r is None]  # position in the batch of each job to submit
    arguments = [(list(job_overrides[i]), "hydra.sweep.dir", initial_job_idx + i, f"job_id_for_{initial_job_idx + i}",
                  state) for i in todo]
    watcher = _watcher_class()(poll_s)
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
                    _forget_new_sweep(sweep_dir, before)
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
        LAST_CANCELLED = _cancel(jobs, done)
        raise
