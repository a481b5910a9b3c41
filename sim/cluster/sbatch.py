"""Submitting to SLURM: sbatch scripts without unrequested limits, and sbatch's refusals in one line.

- submitit writes `--time=5` when no time is given, so a job died after five minutes; with
  `timeout_min` unset no `--time` is written and the partition's default applies.
- sbatch's refusal (a wrong partition, memory no node has, ...) and a job that will never start (a
  request above the partition's limits) become one line naming the launcher setting to change.
"""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

from ..errors import EXIT_CONFIG, SkillsimError
from .queue import scontrol_config

#: launcher settings of ours, not submitit's
OWN_KEYS = ("max_array_size", "poll_s")


class SubmissionError(SkillsimError):
    """sbatch refused the sweep's jobs: one line naming the launcher setting to change."""

    exit_code = EXIT_CONFIG


class SbatchRefused(RuntimeError):
    """sbatch's error output (turned into a SubmissionError by `launch`)."""


def executor_class():
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
        executor = executor_class()(folder=params["submitit_folder"],
                                     max_num_timeout=params.get("max_num_timeout", 0) or 0)
    except RuntimeError as exc:  # submitit: no srun on PATH
        raise SubmissionError(f"hydra/launcher=slurm needs a SLURM cluster, and none was found ({exc}); run on "
                              "the cluster's login node, or use the default launcher on one machine") from None
    executor.no_time = params.get("timeout_min") is None
    delay = params.get("signal_delay_s") or 0
    if not executor.no_time and (params["timeout_min"] < 1 or params["timeout_min"] * 60 <= delay):
        raise SubmissionError(f"config error: hydra.launcher.timeout_min = {params['timeout_min']!r} is invalid; allowed: "
                              f"null, or minutes above hydra.launcher.signal_delay_s ({delay} s), when a job is "
                              "warned of its time limit")
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
    if any(w in low for w in ("unable to contact slurm controller", "fetch_config", "dns srv lookup failed",
                              "could not establish a configuration source", "zero bytes were transmitted")):
        # SLURM's client is installed, but no controller answered: not a setting of the launcher's
        return (f"hydra/launcher=slurm needs a SLURM cluster, and none answered ({said}); run on the cluster's "
                "login node, or use the default launcher on one machine")
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


def _minutes(limit: str) -> float | None:
    """SLURM's time limit ([D-]HH:MM:SS, MM:SS, MM, UNLIMITED) in minutes; None if unlimited."""
    if not limit or limit.upper() in ("UNLIMITED", "INFINITE", "NONE"):
        return None
    days, _, rest = limit.rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    h, m, sec = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return (int(days or 0) * 24 + h) * 60 + m + sec / 60


def too_big_request(params: dict[str, Any], fallback: tuple[str, str]) -> tuple[str, str]:
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


def max_array_size(configured: int | None) -> int:
    """Jobs per array: the configured cap, or the cluster's MaxArraySize (array indices run below it)."""
    if configured is not None:
        if int(configured) < 1:
            raise SubmissionError(f"config error: hydra.launcher.max_array_size = {configured!r} is invalid; "
                                  "allowed: a positive number of jobs per array, or null for the cluster's MaxArraySize")
        return int(configured)
    try:
        return max(1, int(scontrol_config().get("MaxArraySize", "1001")))
    except ValueError:
        return 1001
