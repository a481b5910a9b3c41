"""Concurrent use: two processes in one sweep folder, a killed sweep resumed by another, two runs aimed
at one run folder, and the claims (sim.claims) underneath."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim import claims
from sim.aggregate import aggregate, exit_code
from sim.errors import EXIT_BUSY

from .faults import ENV, assert_one_line_error, run
from .conftest import SHORT_HISTORY

GRID = ["levers.training.intensity=1,3", "replicate=range(0,3)", "n_agents=30000", "horizon.end_year=2025",
        SHORT_HISTORY]
TABLES = ("runs.csv", "ensemble.csv", "effects.csv")


def sweep_cmd(out: Path, launcher: str) -> list[str]:
    return [sys.executable, "-m", "sim", "-m", *GRID, f"hydra/launcher={launcher}", f"hydra.sweep.dir={out}"]


def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The same sweep, run once by one process."""
    tmp = tmp_path_factory.mktemp("ref")
    out = tmp / "single"
    proc = subprocess.run(sweep_cmd(out, "basic"), cwd=tmp, capture_output=True, text=True, env=ENV, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def written_jobs(stderr: str) -> list[str]:
    return re.findall(r"; wrote \S+/([^/\s]+)$", stderr, flags=re.M)


def assert_like_single_sweep(out: Path, reference: Path, cwd: Path) -> None:
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6 and (runs["status"] == "ok").all(), runs[["job", "status", "error"]]
    jobs = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(jobs) == 6
    for job in jobs:
        assert (job / "COMPLETE").exists() and not (job / "FAILED").exists(), job
    assert not list(out.glob(".*.lock")), "every claim is released"
    assert not list(out.glob(".*.partial-*"))
    verify = run("sim.verify", str(out), cwd=cwd)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for table in TABLES:
        assert (out / table).read_bytes() == (reference / table).read_bytes(), table


def pause_while_holding_a_claim(proc: subprocess.Popen, out: Path, timeout: float = 300) -> list[str]:
    """Stop `proc`'s process group (SIGSTOP) at a moment one of its processes holds a job's claim.

    A job's model now runs in a tenth of a second while a sweep starts up in several, so two sweeps
    started together met only by luck (a loaded CI machine once ran the first to its end before the
    second had started). Pausing the first while it holds a claim makes the meeting certain. Returns
    the jobs it holds; the caller resumes it with SIGCONT."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and list(out.glob(".*.lock")):
            os.killpg(proc.pid, signal.SIGSTOP)
            held = []
            for lock in out.glob(".*.lock"):
                try:
                    owner = json.loads(lock.read_text())
                except (OSError, ValueError):
                    continue
                if _group(owner["pid"]) == proc.pid:
                    held.append(lock.name[1:-len(".lock")])
            if held:
                return held
            os.killpg(proc.pid, signal.SIGCONT)  # the claim was released just before the pause: again
        time.sleep(0.005)
    raise AssertionError("the first sweep was not caught holding a claim")


def _group(pid: int) -> int | None:
    """The process group of `pid`, None if it has ended."""
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


@pytest.mark.slow  # two sweeps and their reference, about 15 s (the fast suite keeps under 3 minutes)
@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_two_identical_sweeps_share_one_folder(tmp_path, reference, launcher):
    out = tmp_path / "shared"
    first = start(sweep_cmd(out, launcher), tmp_path)
    try:
        held = pause_while_holding_a_claim(first, out)
        second = start(sweep_cmd(out, launcher), tmp_path)  # runs while the first holds its jobs
        second_log = second.communicate(timeout=600)[1]
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    first_log = first.communicate(timeout=600)[1]
    logs = [first_log, second_log]
    for p, log in zip((first, second), logs):
        assert p.returncode == 0, log[-3000:]
        assert "failed" not in log.lower().replace("0 failed", ""), log[-3000:]
    for job in held:
        assert f"job {job}: being run by pid" in second_log, second_log[-3000:]
    assert f"{len(held)} running in another process" in second_log, second_log[-3000:]
    done = written_jobs(logs[0]) + written_jobs(logs[1])
    assert sorted(done) == sorted(set(done)) and len(done) == 6, done  # every job run exactly once
    assert set(held) <= set(written_jobs(first_log)), "the paused sweep finished the jobs it held"
    assert_like_single_sweep(out, reference, tmp_path)


@pytest.mark.slow
def test_a_killed_sweep_is_resumed_and_its_stale_claims_taken_over(tmp_path, reference):
    out = tmp_path / "killed"
    victim = start(sweep_cmd(out, "basic"), tmp_path)
    deadline = time.time() + 300
    held = None
    while time.time() < deadline and victim.poll() is None and held is None:
        for lock in out.glob(".*.lock") if out.exists() else []:
            try:
                owner = json.loads(lock.read_text())
            except (OSError, ValueError):
                continue
            if owner["pid"] == victim.pid:
                held = lock
                os.killpg(victim.pid, signal.SIGKILL)
                break
        time.sleep(0.05)
    victim.wait(timeout=60)
    assert held is not None, "the sweep was not caught holding a claim"
    assert victim.returncode == -signal.SIGKILL
    assert held.exists() and json.loads(held.read_text())["pid"] == victim.pid, "a dead claim stays on disk"
    job = held.name[1:-len(".lock")]
    assert not (out / job / "COMPLETE").exists()

    resumed = subprocess.run(sweep_cmd(out, "basic"), cwd=tmp_path, capture_output=True, text=True, env=ENV,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"job {job}: took over the claim of pid {victim.pid} on host" in resumed.stderr, resumed.stderr[-3000:]
    assert job in written_jobs(resumed.stderr)
    assert_like_single_sweep(out, reference, tmp_path)


def test_a_second_run_into_a_claimed_run_folder_refuses_naming_the_first(tmp_path):
    target = tmp_path / "run"
    with claims.claim(target) as held:
        assert held is not None
        proc = run("sim", "n_agents=500", "horizon.end_year=2023", f"hydra.run.dir={target}", cwd=tmp_path)
    assert_one_line_error(proc, "skillsim", EXIT_BUSY, str(target), f"pid {os.getpid()} on host {claims.HOST}")
    assert not target.exists(), "the refused run leaves nothing"


def test_a_default_folder_name_claimed_by_a_run_of_the_same_second_moves_to_the_next_name(tmp_path):
    """The race behind two `skillsim` runs started together: the second claims NAME-2, not exit 7."""
    from sim.single_run import claim_run_folder
    from sim.errors import BusyError

    name = tmp_path / "2026-12-02_10-00-00_chongqing_baseline_abc123"
    first, where = claim_run_folder(name, unique=True)
    assert where == name
    second, where2 = claim_run_folder(name, unique=True)
    assert where2 == name.with_name(name.name + "-2")
    with pytest.raises(BusyError, match="is being written by pid"):
        claim_run_folder(name, unique=False)  # a folder the user named is never renamed
    first.release()
    second.release()
    assert not list(tmp_path.iterdir()), "released claims leave nothing"


def test_a_run_takes_over_the_claim_of_a_dead_process(tmp_path):
    target = tmp_path / "run"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claims.lock_path(target).write_text(json.dumps({"pid": dead.pid, "host": claims.HOST, "since": "earlier"}))
    (tmp_path / f".run.partial-{dead.pid}").mkdir()  # what the dead run was writing
    proc = run("sim", "n_agents=500", "horizon.end_year=2023", f"hydra.run.dir={target}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"took over the claim of pid {dead.pid} on host {claims.HOST}" in proc.stderr
    assert (target / "COMPLETE").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "claim and stale partial are gone"


def test_the_claims_of_runs_killed_before_writing_are_removed_by_the_next_run_beside_them(tmp_path):
    """`kill -9` of a run while it stepped left `.NAME.lock` in results/runs for good (a user trial). The
    next run in the same folder removes a dead claim with no folder and no partial one; a claim held by
    a live process, one beside a finished folder and one from another host stay."""
    from sim.results import remove_dead_claims

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name, host in (("killed", claims.HOST), ("elsewhere", "another-host")):
        claims.lock_path(tmp_path / name).write_text(json.dumps({"pid": dead.pid, "host": host, "since": "x"}))
    (tmp_path / "finished").mkdir()
    claims.lock_path(tmp_path / "finished").write_text(json.dumps({"pid": dead.pid, "host": claims.HOST, "since": "x"}))
    held = claims.claim(tmp_path / "busy")
    try:
        assert remove_dead_claims(tmp_path) == [claims.lock_path(tmp_path / "killed")]
        assert sorted(p.name for p in tmp_path.glob(".*.lock")) == [".busy.lock", ".elsewhere.lock", ".finished.lock"]
    finally:
        held.release()
    claims.lock_path(tmp_path / "killed").write_text(json.dumps({"pid": dead.pid, "host": claims.HOST, "since": "x"}))
    proc = run("sim", "n_agents=500", "horizon.end_year=2023", f"hydra.run.dir={tmp_path / 'next'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not claims.lock_path(tmp_path / "killed").exists()


# -- the claims themselves ------------------------------------------------------------------------

def test_a_claim_that_cannot_be_written_leaves_no_lock_file(tmp_path, monkeypatch):
    """A full disk can let the lock file be created and then refuse its content: the claim fails with
    the OS error and removes the file it could not write (a leftover .lock was seen in a full-disk sweep)."""
    import errno

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(claims.os, "pwrite", full)
    with pytest.raises(OSError, match="No space left"):
        claims.claim(tmp_path / "job")
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())


@pytest.mark.parametrize("fails", ["write", "rename"])
def test_a_progress_record_that_cannot_be_written_leaves_the_old_one_and_no_temporary(tmp_path, monkeypatch, fails):
    """A sweep's progress record (and its FAILED records, the backtest's docs table) are replaced whole:
    a full disk left the temporary `.progress.json.tmp-PID` behind (seen after ENOSPC)."""
    import errno
    from pathlib import Path as P

    from sim import results, sweep

    sweep.write_progress(tmp_path, 4)
    before = (tmp_path / results.PROGRESS_FILE).read_text(encoding="utf-8")

    def full(*args, **kwargs):
        if fails == "write":
            P(args[0]).write_bytes(b"{")  # a part written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    if fails == "rename":
        monkeypatch.setattr(results.os, "replace", full)
    else:
        monkeypatch.setattr(P, "write_text", lambda self, *a, **k: full(self))
    with pytest.raises(OSError, match="No space left"):
        sweep.write_progress(tmp_path, 9)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [results.PROGRESS_FILE]
    assert (tmp_path / results.PROGRESS_FILE).read_text(encoding="utf-8") == before
    # a job's FAILED record alike: nothing half-written, and its empty folder gone (listed as missing)
    if fails == "rename":
        monkeypatch.setattr(results.os, "replace", full)
    else:
        monkeypatch.setattr(P, "write_text", lambda self, *a, **k: full(self))
    assert sweep.record_failure(tmp_path / "job", RuntimeError("boom"), [], 3) is False
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == [results.PROGRESS_FILE]


def test_a_claim_is_exclusive_names_its_owner_and_is_removed_on_release(tmp_path):
    job = tmp_path / "job"
    first = claims.claim(job)
    assert first is not None and first.previous is None
    assert claims.claim(job) is None, "a second claim (another open file) must fail while the first is held"
    owner = claims.live_holder(job)
    assert (owner.pid, owner.host) == (os.getpid(), claims.HOST)
    first.release()
    assert not claims.lock_path(job).exists()
    assert claims.holder(job) is None
    again = claims.claim(job)
    assert again is not None and again.previous is None
    again.release()


def test_a_free_name_is_claimed_past_held_and_written_names_and_a_refusal_keeps_no_claim(tmp_path):
    """claim_free_name (default folders of single runs and studies): NAME held by a live claim and NAME-2
    written meanwhile (seen only once claimed) are passed over for NAME-3, and NAME-2's claim is let go;
    a given name (not unique) is tried alone; a refusal raised once the claim is held releases it."""
    base = tmp_path / "run"
    other = claims.claim(base)
    looks: list[str] = []

    def free(path: Path) -> bool:
        looks.append(path.name)
        return not (path.name == "run-2" and looks.count("run-2") == 2)  # written between the two looks

    held, path = claims.claim_free_name(base, True, free)
    assert path.name == "run-3" and looks == ["run", "run-2", "run-2", "run-3", "run-3"]
    assert claims.holder(base.with_name("run-2")) is None  # its claim released
    held.release()
    assert claims.claim_free_name(base, False) == (None, base)  # a given name: held, refused
    other.release()

    def refuse(path: Path) -> bool:
        if claims.live_holder(path) is not None:
            raise RuntimeError("refused")
        return True

    with pytest.raises(RuntimeError):
        claims.claim_free_name(base, True, refuse)
    assert claims.holder(base) is None


def test_the_claim_of_a_killed_process_is_free_and_reports_its_owner(tmp_path):
    job = tmp_path / "job"
    code = (f"import sys, time; sys.path.insert(0, {str(Path(claims.__file__).parents[1])!r}); from sim import claims; "
            f"c = claims.claim(__import__('pathlib').Path({str(job)!r})); print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    assert claims.claim(job) is None
    assert claims.live_holder(job).pid == child.pid
    child.kill()
    child.wait()
    child.stdout.close()
    assert claims.live_holder(job) is None, "a dead owner is not alive"
    assert claims.holder(job).pid == child.pid, "but is still recorded"
    taken = claims.claim(job)
    assert taken is not None and taken.previous.pid == child.pid
    taken.release()


def test_aggregation_lists_a_job_claimed_elsewhere_as_running_not_failed(tmp_path, reference):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference, out)
    job = sorted(p for p in out.iterdir() if p.is_dir())[-1]
    shutil.rmtree(job)
    job.mkdir()  # the folder Hydra makes before the job runs
    with claims.claim(job):
        counts = aggregate(out)
        assert (counts["ok"], counts["failed"], counts["running"], counts["missing"]) == (5, 0, 1, 0)
        assert exit_code(counts) == 0
        runs = pd.read_csv(out / "runs.csv")
        row = runs[runs["job"] == job.name].iloc[0]
        assert row["status"] == "running" and f"pid {os.getpid()}" in row["error"]
    counts = aggregate(out)  # released without a result: the job is missing
    assert (counts["running"], counts["missing"]) == (0, 1) and exit_code(counts) == 5
    # held, but stopped between its lock and its record's write (a CI run's sweep, paused by SIGSTOP there):
    # its lock says it is running (it was listed missing, and the second sweep exited 5)
    import fcntl

    fd = os.open(claims.lock_path(job), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert claims.holder(job) is None and claims.locked(job)
        counts = aggregate(out)
        assert (counts["running"], counts["missing"]) == (1, 0) and exit_code(counts) == 0
    finally:
        os.close(fd)
    assert not claims.locked(job) and aggregate(out)["missing"] == 1


def test_a_claim_whose_owner_is_still_writing_its_name_is_waited_for_briefly(tmp_path):
    """Two runs started together: the refused one read the winner's claim file between its lock and its
    write, and named "another process" (a review: 6 of 12 such races). holder() with patience reads
    again while the file is empty."""
    import threading

    folder = tmp_path / "run"
    claims.lock_path(folder).write_text("")  # locked, not yet written
    record = json.dumps({"pid": os.getpid(), "host": claims.HOST, "since": "now"})
    assert claims.holder(folder) is None  # no patience: the empty file, as before
    writer = threading.Timer(0.05, lambda: claims.lock_path(folder).write_text(record))
    writer.start()
    try:
        owner = claims.holder(folder, patience=2.0)
    finally:
        writer.join()
    assert owner is not None and owner.pid == os.getpid()
    claims.lock_path(folder).write_text("")
    t0 = time.monotonic()
    assert claims.holder(folder, patience=0.1) is None and time.monotonic() - t0 < 1.5  # gives up
