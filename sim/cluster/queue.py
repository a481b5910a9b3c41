"""The SLURM queue as the launcher sees it: job states from squeue, and the cluster's configuration.

submitit asks `sacct` for job states, which fails on a cluster without accounting (every poll logged
three warnings, and a job killed by the scheduler was never seen as finished). `squeue --states=all`
lists every job of the sweep, the finished ones for MinJobAge seconds (300 by default) after they end,
and the launcher polls it every `poll_s` seconds, well within that.
"""

from __future__ import annotations

import logging
import subprocess
import time

log = logging.getLogger("skillsim")

#: squeue states after which a job will not run again (others: pending, running, requeued, ...)
FINAL_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT", "GONE"}


def watcher_class():
    """The watcher class (built on first use, so submitit is imported only when a SLURM sweep runs)."""
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
            out = _squeue(command)
            self._last_status_check = time.time()
            if out.returncode != 0 and "invalid job id" in out.stderr.lower():
                # one of the arrays was forgotten (ended more than MinJobAge ago): ask for each alone
                ids = command[-1].split("=", 1)[1].split(",")
                alone = [_squeue(command[:-1] + [f"--jobs={i}"]) for i in ids]
                out = subprocess.CompletedProcess(command, 0, "".join(a.stdout for a in alone if a.returncode == 0), "")
            if out.returncode != 0:
                self.failures += 1
                if self.failures in (1, 10, 100) or self.failures % 1000 == 0:  # not a line per poll
                    last = (out.stderr or "").strip().splitlines()
                    log.warning("slurm: squeue failed (%d times so far): %s", self.failures, last[-1] if last else "")
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


def _squeue(command: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(command, 1, "", str(exc))


def scontrol_config() -> dict[str, str]:
    """`scontrol show config` as a dict (empty if SLURM cannot be asked)."""
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
