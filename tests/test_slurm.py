"""Sweeps on a real SLURM cluster (`hydra/launcher=slurm`, sim.cluster.slurm).

The slow tests bring up a one-node cluster with the project's own script
(tests/cluster/slurm-test-cluster: munged, slurmctld and slurmd, no accounting, one partition with
MaxTime 60 minutes, MaxArraySize 3) and use it as a user would:

- a 2 x 2 sweep gives byte-identical tables to the basic launcher's (and, with MaxArraySize 3, goes
  out as two arrays; no `--time` is requested; no sacct noise);
- a job cancelled with scancel while it runs becomes a FAILED record naming the cancellation, the
  others finish and aggregate, the command exits 5, and a re-run into the folder runs only that job;
- a job warned of its time limit records the limit and the setting to raise, and the others finish;
- Ctrl-C or SIGTERM to the command cancels every job it queued: none is left in the queue;
- sbatch's refusals (a wrong partition, too much memory) and a time limit above the partition's
  (jobs that would pend forever) are one line naming the setting, with no folder and no job left.

The daemons are stopped by PID at the end, and the test checks that they are gone. The fast tests at
the top check the pieces that need no cluster: squeue parsing, the refusal messages, the sbatch script.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.cluster import queue, sbatch
from sim.errors import EXIT_CONFIG, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL
from .conftest import SHORT_HISTORY
from .test_interrupt import message_lines

SCRIPT = Path(__file__).parent / "cluster" / "slurm-test-cluster"
SKILLSIM = [sys.executable, "-m", "sim"]
GRID = ["scenario=baseline,no_policy", "replicate=range(0,2)"]
SMALL = ["n_agents=2000", "horizon.end_year=2025", SHORT_HISTORY]
#: jobs long enough to be cancelled or interrupted while they run: about 12 s on 2 cores (2M agents to
#: 2032 took 6-8 s once the runs got faster, and a job could finish between being picked and cancelled)
LONG = ["n_agents=3000000", "horizon.end_year=2040", SHORT_HISTORY]
TABLES = ("runs.csv", "ensemble.csv", "effects.csv", "series_long.parquet")


# -- without a cluster -------------------------------------------------------------------------------

def test_squeue_lines_give_every_array_task_its_state():
    watcher = queue.watcher_class()(1)
    info = watcher.read_info("12_[2-4%2]|PENDING|Resources\n12_0|RUNNING|None\n12_1|CANCELLED|None\n"
                             "13|PENDING|PartitionTimeLimit\n")
    assert {k: v["State"] for k, v in info.items()} == {
        "12_2": "PENDING", "12_3": "PENDING", "12_4": "PENDING", "12_0": "RUNNING", "12_1": "CANCELLED",
        "13": "PENDING"}
    assert info["13"]["Reason"] == "PartitionTimeLimit"
    assert {s for s in ("RUNNING", "PENDING", "CANCELLED", "TIMEOUT") if s in queue.FINAL_STATES} == {"CANCELLED", "TIMEOUT"}


def test_a_forgotten_array_does_not_blind_the_queue_watcher(tmp_path, monkeypatch):
    """squeue refuses a whole query if one array in it has been forgotten (ended more than MinJobAge
    ago): the watcher then asks for each array alone, and the forgotten one's jobs count as gone."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "squeue").write_text("""#!/bin/sh
for a in "$@"; do case "$a" in --jobs=*) ids="${a#--jobs=}";; esac; done
case ",$ids," in *,7,*) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1;; esac
echo "8_0|RUNNING|None"
""")
    (fake / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    watcher = queue.watcher_class()(1)
    for job in ("7_0", "8_0"):
        watcher.register_job(job)
    watcher.update()
    assert watcher.get_state("7_0", mode="cache") == "GONE" and watcher.is_done("7_0", mode="cache")
    assert watcher.get_state("8_0", mode="cache") == "RUNNING" and not watcher.is_done("8_0", mode="cache")
    assert watcher.failures == 0


@pytest.mark.parametrize("said, key", [
    ("sbatch: error: invalid partition specified: cpu\nsbatch: error: Batch job submission failed: Invalid partition name specified", "partition"),
    ("sbatch: error: Memory specification can not be satisfied\nsbatch: error: Batch job submission failed: Requested node configuration is not available", "mem_gb"),
    ("sbatch: error: Batch job submission failed: Requested time limit is invalid (missing or exceeds some limit)", "timeout_min"),
    ("sbatch: error: Batch job submission failed: Invalid job array specification", "max_array_size"),
    ("sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified", "account"),
])
def test_an_sbatch_refusal_is_one_line_naming_the_setting(said, key):
    line = sbatch.explain_refusal(sbatch.SbatchRefused(said), {"partition": "cpu", "mem_gb": 64})
    assert "\n" not in line and f"hydra.launcher.{key} = " in line
    assert said.splitlines()[0].split("error: ", 1)[1] in line  # what SLURM said is kept


def test_sbatch_with_no_controller_to_answer_says_no_cluster_was_found():
    """SLURM's client installed and no cluster: the refusal pointed at the launcher's settings, which
    cannot help (sbatch's words on a machine with no controller, as a user met them)."""
    said = ("sbatch: error: resolve_ctls_from_dns_srv: res_nsearch error: Unknown host\n"
            "sbatch: error: fetch_config: DNS SRV lookup failed\n"
            "sbatch: error: _establish_config_source: failed to fetch config\n"
            "sbatch: fatal: Could not establish a configuration source")
    line = sbatch.explain_refusal(sbatch.SbatchRefused(said), {})
    assert "\n" not in line and line.startswith("hydra/launcher=slurm needs a SLURM cluster, and none answered")
    assert "hydra.launcher" not in line.replace("hydra/launcher=slurm", "")


@pytest.fixture
def fake_srun(tmp_path, monkeypatch):
    """An `srun` on PATH: submitit builds its SLURM executor only where one is found."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")


def test_no_time_request_unless_one_is_given(tmp_path, fake_srun):
    """submitit writes --time=5 (five minutes) when none is given; the launcher writes none."""
    base = {"submitit_folder": str(tmp_path / "%j"), "timeout_min": None, "cpus_per_task": 1, "mem_gb": None,
            "name": "cli", "poll_s": 1.0, "max_array_size": None, "partition": None}
    text = sbatch.make_executor(base)._make_submission_file_text("true", "x")
    assert "--time" not in text and "--mem" not in text and "--cpus-per-task=1" in text
    text = sbatch.make_executor(base | {"timeout_min": 90, "mem_gb": 2})._make_submission_file_text("true", "x")
    assert "#SBATCH --time=90" in text and "#SBATCH --mem=2GB" in text


def test_a_time_limit_inside_the_warning_delay_is_refused(tmp_path, fake_srun):
    """submitit warns a job `signal_delay_s` (120) seconds before its time limit: a limit shorter than
    that would stop every job at its start, so it is refused in one line."""
    with pytest.raises(sbatch.SubmissionError, match=r"hydra.launcher.timeout_min = 2 is invalid.*signal_delay_s \(120 s\)"):
        sbatch.make_executor({"submitit_folder": str(tmp_path / "%j"), "timeout_min": 2, "signal_delay_s": 120})
    sbatch.make_executor({"submitit_folder": str(tmp_path / "%j"), "timeout_min": 3, "signal_delay_s": 120})


# -- a real cluster ----------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a root daemon, seen from a user
        return True
    return True


@pytest.fixture(scope="module")
def cluster():
    """A one-node SLURM cluster (MaxArraySize 3); the environment to use it; stopped by PID after."""
    missing = [t for t in ("munged", "slurmctld", "slurmd", "sbatch") if shutil.which(t) is None]
    as_root = [] if os.geteuid() == 0 else ["sudo", "-n", "-E"]  # the daemons run as root
    if as_root and subprocess.run([*as_root, "true"], capture_output=True).returncode != 0:
        missing.append("root or sudo without a password")
    if missing:
        why = f"needs Debian's slurm-wlm and munge, and root (missing: {', '.join(missing)})"
        if os.environ.get("SKILLSIM_REQUIRE_CLUSTER"):
            pytest.fail(why)
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="skillsim-slurm-"))  # open to the munge user, unlike pytest's tmp
    env = dict(os.environ, SLURMCTLD_PORT=str(_free_port()), SLURMD_PORT=str(_free_port()))
    up = subprocess.run([*as_root, str(SCRIPT), "up", str(folder), "3"], env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr + up.stdout
    env["SLURM_CONF"] = str(folder / "slurm.conf")
    pids = {name: int((folder / f"{name}.pid").read_text()) for name in ("munged", "slurmctld", "slurmd")}
    try:
        yield env
    finally:
        subprocess.run(["scancel", "--user", pwd.getpwuid(os.getuid()).pw_name], env=env, capture_output=True)
        subprocess.run([*as_root, str(SCRIPT), "down", str(folder)], env=env, capture_output=True, timeout=120)
        still = [name for name, pid in pids.items() if _alive(pid)]
        subprocess.run([*as_root, "rm", "-rf", str(folder)], capture_output=True)
        assert not still, f"daemons still running after `down`: {still}"


def run(env, *args, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([*SKILLSIM, "-m", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def squeue(env, *args: str) -> list[str]:
    """squeue's lines, asked again for up to 10 s while it fails: a failed call (the controller busy, a
    socket timeout) printed nothing, which read as an empty queue (a clean-clone CI run, once)."""
    end = time.monotonic() + 10
    while True:
        out = subprocess.run(["squeue", "--noheader", *args], env=env, capture_output=True, text=True)
        if out.returncode == 0 or time.monotonic() > end:
            return out.stdout.split()
        time.sleep(0.5)


def queued(env) -> list[str]:
    return squeue(env, "--states=pending,running,completing,configuring", "--format=%i|%T")


def running_job(env, at_least_s: int = 2, timeout: float = 120) -> str:
    """The id of a job that has run for at least `at_least_s` seconds (the tests that ask start with an
    empty queue: `no_job_left`)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = squeue(env, "--states=running", "--format=%i|%M")
        for line in out:
            job, elapsed = line.split("|")
            if int(elapsed.split(":")[-1]) + 60 * int(elapsed.split(":")[-2]) >= at_least_s:
                return job
        time.sleep(0.5)
    raise AssertionError("no job started running")


def wait_until_queue_empty(env, timeout: float = 60) -> list[str]:
    end = time.monotonic() + timeout
    while (left := queued(env)) and time.monotonic() < end:
        time.sleep(0.5)
    return left


def no_job_left(env) -> None:
    """Before a test that watches the queue: an earlier test's job still ending (its sweep had already
    read its result) was taken for this test's running job, and the queue then read empty before this
    sweep had submitted (a clean-clone CI run, once)."""
    assert wait_until_queue_empty(env) == []


@pytest.mark.slow
def test_a_slurm_sweep_gives_the_basic_launchers_tables(cluster, tmp_path):
    on_slurm = run(cluster, *GRID, *SMALL, "hydra/launcher=slurm", "hydra.launcher.poll_s=1",
                   f"hydra.sweep.dir={tmp_path / 'slurm'}", cwd=tmp_path)
    assert on_slurm.returncode == EXIT_OK, on_slurm.stderr[-3000:]
    basic = run(cluster, *GRID, *SMALL, "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'basic'}", cwd=tmp_path)
    assert basic.returncode == EXIT_OK, basic.stderr[-3000:]
    for table in TABLES:
        assert (tmp_path / "slurm" / table).read_bytes() == (tmp_path / "basic" / table).read_bytes(), table
    assert on_slurm.stderr.count(" jobs submitted as ") == 2, "4 jobs with MaxArraySize 3: two submissions"
    assert "sacct" not in on_slurm.stderr
    scripts = list((tmp_path / "slurm" / ".submitit").rglob("*submission_file*.sh"))
    assert scripts and not any("--time" in p.read_text() for p in scripts)  # the partition's limit applies


@pytest.mark.slow
def test_a_job_cancelled_by_the_scheduler_is_recorded_and_resumed(cluster, tmp_path):
    no_job_left(cluster)
    out = tmp_path / "sweep"
    args = [*GRID, *LONG, "hydra/launcher=slurm", "hydra.launcher.poll_s=1", f"hydra.sweep.dir={out}"]
    proc = subprocess.Popen([*SKILLSIM, "-m", *args], env=cluster, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    victim = running_job(cluster)
    subprocess.run(["scancel", victim], env=cluster, check=True)
    stderr = proc.communicate(timeout=600)[1]
    assert proc.returncode == EXIT_PARTIAL, stderr[-3000:]
    failed = [p.parent for p in out.glob("*/FAILED")]
    assert len(failed) == 1 and len(list(out.glob("*/COMPLETE"))) == 3, stderr[-3000:]
    record = (failed[0] / "FAILED").read_text()
    assert f"SLURM job {victim} ended CANCELLED" in record and '"user_error": false' in record
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["status"]) == ["failed", "ok", "ok", "ok"]
    assert "CANCELLED" in runs.loc[runs["status"] == "failed", "error"].iloc[0]
    finished = {p: p.stat().st_mtime_ns for p in out.glob("*/COMPLETE")}

    again = run(cluster, *args, cwd=tmp_path)
    assert again.returncode == EXIT_OK, again.stderr[-3000:]
    assert again.stderr.count("already finished, skipped") == 3
    assert "slurm: 1 jobs submitted as job" in again.stderr  # only the cancelled job is queued again
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # the finished jobs were not touched
    assert (failed[0] / "COMPLETE").exists() and not (failed[0] / "FAILED").exists()
    assert (pd.read_csv(out / "runs.csv")["status"] == "ok").all()


@pytest.mark.slow
def test_a_job_warned_of_its_time_limit_records_it_and_the_others_finish(cluster, tmp_path):
    """SLURM warns a job `signal_delay_s` before its time limit with USR2 (give or take the 60 s of
    SLURM's timer, too coarse for a test), so the warning is sent as SLURM sends it, with
    `scancel --signal=USR2`, as submitit's own tests do. The job stops with a FAILED record naming
    the limit and the setting to raise; the other job finishes."""
    no_job_left(cluster)
    out = tmp_path / "sweep"
    proc = subprocess.Popen([*SKILLSIM, "-m", "n_agents=2000000,2001000", "horizon.end_year=2032", SHORT_HISTORY,
                             "hydra/launcher=slurm", "hydra.launcher.timeout_min=30", "hydra.launcher.poll_s=1",
                             f"hydra.sweep.dir={out}"], env=cluster, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    victim = running_job(cluster, at_least_s=1)
    end = time.monotonic() + 60  # SLURM warns near the end of a job, long after it started its run
    while not any("agents (weight" in p.read_text() for p in (out / ".submitit" / victim).glob("*_log.err")):
        assert time.monotonic() < end, "the job did not start its run"
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR2", victim], env=cluster, check=True)
    stderr = proc.communicate(timeout=600)[1]
    assert proc.returncode == EXIT_PARTIAL, stderr[-3000:]
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["status"]) == ["failed", "ok"]
    error = runs.loc[runs["status"] == "failed", "error"].iloc[0]
    assert f"SLURM job {victim} reached its time limit (hydra.launcher.timeout_min = 30)" in error, error
    scripts = list((out / ".submitit").rglob("*submission_file*.sh"))
    assert scripts and all("#SBATCH --time=30" in p.read_text() for p in scripts)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_slurm_sweep_leaves_no_job_in_the_queue(cluster, tmp_path, sig):
    no_job_left(cluster)
    out = tmp_path / "sweep"
    proc = subprocess.Popen([*SKILLSIM, "-m", "scenario=baseline,no_policy", "replicate=range(0,3)", *LONG,
                             "hydra/launcher=slurm", "hydra.launcher.poll_s=1", f"hydra.sweep.dir={out}"],
                            env=cluster, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    running_job(cluster, at_least_s=1)
    assert len(queued(cluster)) >= 2
    proc.send_signal(sig)
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == EXIT_INTERRUPTED, stderr[-3000:]
    lines = message_lines(stderr)
    assert len(lines) == 1 and "cancelled the 6 SLURM jobs not seen finished" in lines[0], lines
    assert wait_until_queue_empty(cluster) == []


@pytest.mark.slow
@pytest.mark.parametrize("setting, key, why", [
    ("hydra.launcher.partition=cpu", "partition", "invalid partition"),
    ("hydra.launcher.mem_gb=100000", "mem_gb", "Memory specification"),
    ("hydra.launcher.timeout_min=120", "timeout_min", "MaxTime, 60 minutes"),  # pending forever otherwise
])
def test_a_refused_submission_is_one_line_and_leaves_nothing(cluster, tmp_path, setting, key, why):
    out = tmp_path / "sweep"
    proc = run(cluster, *GRID, *SMALL, "hydra/launcher=slurm", setting, "hydra.launcher.poll_s=1",
               f"hydra.sweep.dir={out}", cwd=tmp_path, timeout=120)
    assert proc.returncode == EXIT_CONFIG, proc.stderr[-3000:]
    lines = message_lines(proc.stderr)
    assert len(lines) == 1 and f"hydra.launcher.{key} = " in lines[0] and why in lines[0], lines
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert wait_until_queue_empty(cluster, timeout=10) == []


@pytest.mark.slow
def test_an_optuna_study_on_slurm_counts_its_trials_also_those_answered_from_finished_folders(cluster, tmp_path):
    """Trials with the settings of a finished job folder are answered by the launcher without a job
    (sim.cluster.slurm._finished); they count as trials in the progress lines, which had ended below
    the total ("2/6 jobs done"). Run again into its folder, the study answers every trial that way."""
    out = tmp_path / "study"
    args = ["hydra/sweeper=optuna", "hydra.sweeper.n_trials=6", "hydra.sweeper.n_jobs=2",
            "hydra.sweeper.sampler.seed=1", "levers.training.intensity=choice(1,2)", *SMALL,
            "hydra/launcher=slurm", "hydra.launcher.poll_s=1", f"hydra.sweep.dir={out}"]
    for attempt in ("first", "again"):
        proc = run(cluster, *args, cwd=tmp_path)
        assert proc.returncode == EXIT_OK, proc.stderr[-3000:]
        lines = [ln for ln in proc.stderr.splitlines() if "sweep progress:" in ln]
        assert lines and "sweep progress: 6/6 jobs done" in lines[-1], (attempt, lines)
        assert len(list(out.glob("*/COMPLETE"))) == 2  # two settings: two job folders
    assert proc.stderr.count("already finished, skipped") == 6  # the second study queued nothing
    assert "jobs submitted" not in proc.stderr
