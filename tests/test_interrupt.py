"""Stopping a run or a sweep: Ctrl-C (SIGINT) or SIGTERM never leaves half-written results.

- A single run stopped while it steps, or while it writes its folder, exits with code 130
  (EXIT_INTERRUPTED) and one line; neither the run folder nor a hidden `.NAME.partial-*` folder is left.
- A sweep stopped mid-way exits with 130 and one line naming the folder to resume; its finished jobs
  are intact (skillsim-verify passes), no job folder is half-written, and a re-run of the same command
  runs only the rest. Stopped both ways a user does it: SIGTERM to the command (a scheduler, `kill`),
  and SIGINT to its whole process group (Ctrl-C in a terminal, which also reaches the parallel workers).

Real processes and real signals: each command costs about 2 s to start, so the single-run cases run
two at a time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from sim.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL
from sim.verify import verify
from .conftest import SHORT_HISTORY

SKILLSIM = [sys.executable, "-m", "sim"]
INTERRUPTED = "skillsim: interrupted; no result folder was written"
LOG_LINE = re.compile(r"^\[[\d\- :,]+\]\[(INFO|WARNING|ERROR)\] ")


def default_sigint() -> None:
    """In the child: Ctrl-C raises KeyboardInterrupt even if this test runs with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def message_lines(stderr: str) -> list[str]:
    """stderr without the log lines: what the user is told."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not LOG_LINE.match(ln)]


def leftovers(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.parent.iterdir() if p.name == run_dir.name
                  or p.name.startswith(f".{run_dir.name}.partial"))


# -- single runs -------------------------------------------------------------------------------------

def stop_while_stepping(tmp: Path, sig: signal.Signals) -> tuple[subprocess.CompletedProcess, Path, float]:
    """A 2-million-agent run to 2035, signalled once it has started stepping."""
    run_dir = tmp / "run"
    proc = subprocess.Popen([*SKILLSIM, "n_agents=2000000", "horizon.end_year=2035", SHORT_HISTORY,
                             f"hydra.run.dir={run_dir}"],
                            cwd=tmp, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    first = proc.stderr.readline()  # logged after the model is built, right before it steps
    assert "2000000 agents" in first, first
    time.sleep(0.3)
    proc.send_signal(sig)
    t0 = time.perf_counter()
    rest = proc.stderr.read()
    proc.wait(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", first + rest), run_dir, time.perf_counter() - t0


#: Runs `skillsim ARGS` with sim.results.sha256 wrapped: after series.csv is written and hashed inside
#: the hidden temporary folder, the process records what that folder holds, then signals itself.
WRITE_PHASE_SHIM = """
import os, signal, sys
from pathlib import Path
import sim.results as results

original, record, sig = results.sha256, Path(sys.argv[1]), getattr(signal, sys.argv[2])

def hash_then_signal(path):
    digest = original(path)
    if path.name == "series.csv" and not record.exists():
        record.write_text(json.dumps({"folder": str(path.parent), "files": sorted(os.listdir(path.parent))}))
        os.kill(os.getpid(), sig)
    return digest

import json
results.sha256 = hash_then_signal
from sim.cli import main
main(sys.argv[3:])
"""


def stop_while_writing(tmp: Path, sig: signal.Signals) -> tuple[subprocess.CompletedProcess, Path, dict]:
    run_dir, record = tmp / "run", tmp / "record.json"
    proc = subprocess.run([sys.executable, "-c", WRITE_PHASE_SHIM, str(record), sig.name, "n_agents=300",
                           "horizon.end_year=2023", f"hydra.run.dir={run_dir}"], cwd=tmp, capture_output=True,
                          text=True, timeout=120, preexec_fn=default_sigint)
    return proc, run_dir, json.loads(record.read_text()) if record.exists() else {}


SINGLE = [("stepping", signal.SIGINT), ("stepping", signal.SIGTERM), ("writing", signal.SIGINT),
          ("writing", signal.SIGTERM)]


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory):
    def one(case):
        phase, sig = case
        tmp = tmp_path_factory.mktemp(f"{phase}_{sig.name}")
        return stop_while_stepping(tmp, sig) if phase == "stepping" else stop_while_writing(tmp, sig)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(SINGLE, pool.map(one, SINGLE)))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_run_stopped_while_stepping_leaves_no_folder(single_runs, sig):
    proc, run_dir, seconds = single_runs[("stepping", sig)]
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr
    assert "Traceback" not in proc.stderr
    assert message_lines(proc.stderr) == [INTERRUPTED]
    assert leftovers(run_dir) == []
    assert seconds < 10, "the run stops promptly, not at the end of the horizon"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_run_stopped_while_writing_its_folder_leaves_nothing(single_runs, sig):
    proc, run_dir, record = single_runs[("writing", sig)]
    assert record["files"] == ["series.csv", "series.parquet"] or "series.csv" in record["files"], record
    assert Path(record["folder"]).name.startswith(".run.partial-"), "the signal came mid-write"
    assert proc.returncode == EXIT_INTERRUPTED, proc.stderr
    assert "Traceback" not in proc.stderr
    assert message_lines(proc.stderr) == [INTERRUPTED]
    assert not Path(record["folder"]).exists() and leftovers(run_dir) == []


# -- sweeps ------------------------------------------------------------------------------------------

def finished_jobs(sweep_dir: Path) -> list[str]:
    """Job folders with COMPLETE; pathlib's '*' also matches the hidden .NAME.partial-* folders."""
    return sorted(p.parent.name for p in sweep_dir.glob("*/COMPLETE") if not p.parent.name.startswith("."))


SWEEP = ["scenario=baseline,training_boost", "replicate=range(0,4)", "n_agents=1000", "horizon.end_year=2024"]
N_JOBS = 8


@pytest.mark.slow  # end to end, about 20-25 s each on 2 cores
@pytest.mark.parametrize("sig, target", [(signal.SIGTERM, "process"), (signal.SIGINT, "group")],
                         ids=["SIGTERM-to-the-sweep", "SIGINT-to-its-process-group (Ctrl-C)"])
def test_a_stopped_sweep_keeps_finished_jobs_and_resumes(tmp_path, sig, target):
    out = tmp_path / "sweep"
    cmd = [*SKILLSIM, "-m", *SWEEP, f"hydra.sweep.dir={out}"]  # the default (joblib, parallel) launcher
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and len(finished_jobs(out)) < 2:
        time.sleep(0.02)
    os.killpg(proc.pid, sig) if target == "group" else proc.send_signal(sig)
    stderr = proc.stderr.read()
    proc.wait(timeout=120)

    assert proc.returncode == EXIT_INTERRUPTED, stderr[-3000:]
    assert "Traceback" not in stderr
    finished = finished_jobs(out)
    assert 2 <= len(finished) < N_JOBS, "the signal must land mid-sweep"
    said = message_lines(stderr)
    assert len(said) == 1, stderr[-3000:]
    m = re.fullmatch(rf"skillsim: interrupted; finished jobs are kept in {re.escape(str(out))} \((\d+) when "
                     rf"stopped, and any a worker was writing then\); to run the rest, repeat the command with "
                     rf"hydra.sweep.dir={re.escape(str(out))}",
                     said[0])
    assert m, said[0]
    # counted when the main process stopped; a worker may still have completed the job it was writing
    assert 0 < int(m.group(1)) <= len(finished), (said[0], finished)
    for job in (p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        assert (job / "COMPLETE").exists() or not any(job.iterdir()), f"half-written job folder {job.name}"
    report = verify(out)  # the finished jobs are intact
    assert report.problems == [] and report.checked == len(finished)
    assert not list(out.glob(".*.partial-*")), "a job a worker was writing when stopped is left half-written"
    manifests = {name: (out / name / "manifest.json").read_bytes() for name in finished}

    rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == EXIT_OK, rerun.stderr[-3000:]
    assert rerun.stderr.count("already finished, skipped") == len(finished)
    for name, manifest in manifests.items():
        assert (out / name / "manifest.json").read_bytes() == manifest, f"{name} was run again"
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == N_JOBS and (runs["status"] == "ok").all()
    assert not list(out.glob(".*.partial-*")), "temporary folders of stopped jobs are cleaned up"
    report = verify(out)
    assert report.problems == [] and report.checked == N_JOBS


def _pool_workers(pid: int) -> list[int]:
    """The loky worker processes started by process `pid` (from /proc: no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and "popen_loky_posix" in cmdline:
            found.append(int(entry.name))
    return found


def _a_sweep_under_way(tmp_path: Path, stderr) -> tuple[Path, list[str], subprocess.Popen, list[int]]:
    """A joblib sweep of 8 jobs started and waited for until its first job is finished: its folder, its
    command, its process and its pool's worker processes."""
    out = tmp_path / "sweep"
    cmd = [*SKILLSIM, "-m", "scenario=baseline,training_boost", "replicate=range(0,4)", "n_agents=20000",
           "horizon.end_year=2026", f"hydra.sweep.dir={out}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr, text=True,
                            start_new_session=True)
    deadline = time.time() + 180
    while time.time() < deadline and not finished_jobs(out):
        time.sleep(0.02)
    workers = _pool_workers(proc.pid)
    assert workers, "the sweep's pool has no worker"
    return out, cmd, proc, workers


@pytest.mark.slow  # end to end, about 20 s on 2 cores
def test_a_sweep_whose_worker_is_killed_keeps_its_finished_jobs_and_resumes(tmp_path):
    """A joblib worker killed mid-sweep (what the out-of-memory killer does) ended the sweep with "a bug
    in skillsim" and exit 1. It is one line saying what happened, exit 5 (partial), the finished jobs
    intact and their tables written; the same command then runs the rest."""
    out, cmd, proc, workers = _a_sweep_under_way(tmp_path, subprocess.PIPE)
    os.kill(workers[0], signal.SIGKILL)
    stderr = proc.stderr.read()
    proc.wait(timeout=180)
    assert proc.returncode == EXIT_PARTIAL, stderr[-3000:]
    assert "Traceback" not in stderr and "a bug in skillsim" not in stderr, stderr[-3000:]
    said = message_lines(stderr)  # the tables' summary, then what happened as the last line
    assert said[-1].startswith("skillsim: a worker process was killed while it ran"), stderr[-3000:]
    assert f"finished jobs are kept in {out}" in said[-1] and f"{out}: " in said[0]
    finished = finished_jobs(out)
    assert 1 <= len(finished) < N_JOBS, "the kill must land mid-sweep"
    assert verify(out).problems == []
    assert len(pd.read_csv(out / "runs.csv").query("status == 'ok'")) == len(finished)
    rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == EXIT_OK, rerun.stderr[-3000:]
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == N_JOBS and (runs["status"] == "ok").all()


def _running(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (dead, not yet reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow  # end to end, about 15 s on 2 cores
def test_a_sweeps_workers_end_when_its_main_process_is_killed(tmp_path):
    """After `kill -9` of a sweep's main process its loky workers lived on, reparented to init, one
    holding 280 MB for minutes (a user trial). They end within seconds; the finished jobs stay intact."""
    out, _, proc, workers = _a_sweep_under_way(tmp_path, subprocess.DEVNULL)
    proc.kill()
    proc.wait(timeout=60)
    deadline = time.time() + 30
    alive = workers
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [w for w in workers if _running(w)]
    assert alive == [], f"workers {alive} outlived the sweep's main process"
    assert verify(out).problems == []


def test_ctrl_c_while_a_command_still_imports_is_one_line_and_exit_130(monkeypatch, capsys):
    """Ctrl-C in a command's first half second, while its module imported numpy, Hydra or scipy (before
    any handler of the command's own), printed a traceback: the entry points (sim.entry) catch it."""
    import importlib

    from sim import entry

    def interrupted_import(name):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib, "import_module", interrupted_import)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for argv0, prog in (("/usr/bin/skillsim-forecast", "skillsim-forecast"), ("/x/sim/__main__.py", "skillsim")):
            monkeypatch.setattr(sys, "argv", [argv0])
            assert entry.forecast() == EXIT_INTERRUPTED
            assert capsys.readouterr().err == f"{prog}: interrupted as it started; nothing was written\n"
            # as a console script's process, which ends now: interrupts are ignored for its teardown
            assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:  # this process goes on
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_sigterm_while_a_command_still_imports_is_one_line_and_exit_130():
    """SIGTERM in a command's first half second, before the command's own handler, ended the process
    silently with 143 (a user trial): it now stops as Ctrl-C does."""
    code = ("import importlib, os, signal, sys\n"
            "sys.argv[0] = '/usr/bin/skillsim'\n"
            "from sim import entry\n"
            "real = importlib.import_module\n"
            "def terminated(name):\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    return real(name)\n"
            "importlib.import_module = terminated\n"
            "sys.exit(entry.skillsim())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (EXIT_INTERRUPTED, "skillsim: interrupted as it started; nothing was written\n")


def test_the_package_and_its_entry_points_import_nothing_heavy():
    """What sim.entry can guard: importing `sim` and `sim.entry` loads no numpy, Hydra or pandas (the
    package's names are loaded on first use); `sim.simulate` still works."""
    code = ("import sys, sim, sim.entry; heavy = [m for m in ('numpy', 'hydra', 'pandas', 'omegaconf') "
            "if m in sys.modules]; print(heavy, callable(sim.simulate), sim.WorkforceModel.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True sim.model"
    import sim

    names = dir(sim)
    assert len(names) == len(set(names)) and {"simulate", "RunConfig", "WorkforceModel"} <= set(names)


def test_an_error_raised_over_a_ctrl_c_is_an_interrupt_and_any_other_a_line(capsys):
    """numba, compiling when Ctrl-C came, raised "RuntimeError: no compiled object yet" over it: a 55-line
    traceback and exit 1. A study command's unexpected error was a raw traceback too."""
    from sim.studies.options import run_command

    def compiling(argv):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("no compiled object yet for <Library '_fast_track'>")

    with pytest.raises(SystemExit) as info:
        run_command(compiling, "skillsim-plan", [], what="plan folder")
    assert info.value.code == 130 and capsys.readouterr().err.strip() == "skillsim-plan: interrupted; no plan folder was written; the runs finished so far are kept: re-run the same command (same out=) to resume"

    def broken(argv):
        raise ZeroDivisionError("division by zero")

    with pytest.raises(SystemExit) as info:
        run_command(broken, "skillsim-plan", [], what="plan folder")
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 1 and len(err) == 1  # the command named once ("skillsim-plan: skillsim-plan failed")
    assert err[0].startswith("skillsim-plan: failed unexpectedly: ZeroDivisionError"), err[0]

    class TerminatedWorkerError(Exception):  # joblib/loky's, when the system's OOM killer ends a worker
        pass

    class BrokenProcessPool(Exception):  # concurrent.futures' and loky's
        pass

    from sim.errors import worker_killed

    assert worker_killed(BrokenProcessPool("A process in the process pool was terminated abruptly"))
    assert not worker_killed(BrokenProcessPool("A task has failed to un-serialize."))  # a bug: exit 1

    def pool_worker_killed(argv):
        try:
            raise TerminatedWorkerError("A worker process managed by the executor was unexpectedly terminated.")
        except TerminatedWorkerError as exc:
            raise RuntimeError("the batch") from exc

    with pytest.raises(SystemExit) as info:
        run_command(pool_worker_killed, "skillsim-sensitivity", [], what="sensitivity folder")
    assert info.value.code == EXIT_PARTIAL  # not "a bug in skillsim", exit 1
    assert capsys.readouterr().err.strip() == (
        "skillsim-sensitivity: a worker process was killed while it ran (a signal, or the system's out-of-memory "
        "killer: fewer processes or agents need less memory); no sensitivity folder was written; the runs finished "
        "so far are kept: re-run the same command (same out=) to resume")


# -- a study interrupted as it publishes its folder, or after ---------------------------------------

#: Runs `skillsim-forecast ARGS` as its console script does (sim.entry.run), signalling itself at a
#: chosen point: `before` (the folder sealed, not yet renamed into place), `after` (renamed), or
#: `teardown` (the command returned; an exit function of the interpreter's teardown).
PUBLISH_SHIM = """
import atexit, os, signal, sys, time
sig, when = getattr(signal, sys.argv[1]), sys.argv[2]
import sim.studies.forecast as forecast

def hit():
    os.kill(os.getpid(), sig)
    time.sleep(0.3)  # time for the signal to land here, not in a later line

original_seal, original_rename = forecast.seal, os.rename
def seal(folder, manifest):
    original_seal(folder, manifest)
    if when == "before":
        hit()
def rename(src, dst):
    original_rename(src, dst)
    if when == "after" and os.path.basename(str(dst)) == "study":
        hit()
forecast.seal, os.rename = seal, rename
if when == "teardown":
    atexit.register(hit)
sys.argv = ["skillsim-forecast", *sys.argv[3:]]
from sim.entry import run
sys.exit(run("sim.studies.forecast:main"))
"""


@pytest.mark.parametrize("when,sig", [("before", signal.SIGINT), ("after", signal.SIGINT),
                                      # the same paths by another signal and in the teardown: 12-16 s each on
                                      # the slow machine, run with the slow tests (the fast suite keeps to 3 minutes)
                                      pytest.param("after", signal.SIGTERM, marks=pytest.mark.slow),
                                      pytest.param("teardown", signal.SIGINT, marks=pytest.mark.slow)])
@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_study_interrupted_as_it_publishes_says_what_it_left(tmp_path, when, sig):
    """Ctrl-C or SIGTERM in a study's last second: exit 130 with "wrote" said and the folder complete, or
    exit 0 with a traceback of loky's exit function (a user trial, 7 of 8 delays). Now an interrupt before
    the folder is renamed into place leaves none (130, one line); one after it, or in the teardown, is
    ignored: exit 0, the folder complete, no traceback."""
    proc = subprocess.run([sys.executable, "-c", PUBLISH_SHIM, sig.name, when, "params=2", "structural=2",
                           "replicates=2", "n_agents=300", "horizon.end_year=2024", "out=study"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, preexec_fn=default_sigint,
                          env={**os.environ, "SKILLSIM_JOBS": "2"})
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out and "Exception ignored" not in out, out[-3000:]
    study = tmp_path / "study"
    if when == "before":
        assert proc.returncode == EXIT_INTERRUPTED, out[-2000:]
        assert proc.stderr.strip().splitlines()[-1] == "skillsim-forecast: interrupted; no forecast folder was written"
        assert not study.exists() and not list(tmp_path.glob(".study.partial-*"))
    else:
        assert proc.returncode == EXIT_OK, out[-2000:]
        assert out.strip().splitlines()[-1].endswith("wrote study"), out[-2000:]
        assert verify(study).problems == []


SINGLE_RUN_SHIM = """
import os, signal, sys, time
sig = getattr(signal, sys.argv[1])
original_rename = os.rename
def rename(src, dst):
    original_rename(src, dst)
    if os.path.basename(str(dst)) == "run":
        os.kill(os.getpid(), sig)
        time.sleep(0.3)
os.rename = rename
sys.argv = ["skillsim", *sys.argv[2:]]
from sim.entry import skillsim
sys.exit(skillsim())
"""


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
@pytest.mark.parametrize("route", ["hydra", "cached"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_single_run_interrupted_once_its_folder_is_in_place_ends_as_written(tmp_path, sig, route):
    """Ctrl-C just after the run folder was renamed into place said "interrupted; no result folder was
    written" (exit 130) beside a complete folder. It is ignored from the rename on: exit 0, the folder.
    `cached`: the same command ran before, so this one comes from the cache (sim.single_run.run_from_entry)."""
    overrides = ["n_agents=300", "horizon.end_year=2025", SHORT_HISTORY, "hydra.run.dir=run"]
    env = dict(os.environ, SKILLSIM_CACHE_DIR=str(tmp_path / "cache"))
    if route == "cached":
        (tmp_path / "fill").mkdir()
        filled = subprocess.run([sys.executable, "-m", "sim", *overrides], cwd=tmp_path / "fill", env=env,
                                capture_output=True, text=True, timeout=120)
        (entry,) = (tmp_path / "cache" / "compose").glob("*.pickle")
        assert filled.returncode == EXIT_OK
        stored = entry.stat().st_mtime_ns
    (tmp_path / "here").mkdir()
    proc = subprocess.run([sys.executable, "-c", SINGLE_RUN_SHIM, sig.name, *overrides], cwd=tmp_path / "here",
                          env=env, capture_output=True, text=True, timeout=120, preexec_fn=default_sigint)
    assert proc.returncode == EXIT_OK and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "skillsim: interrupted" not in proc.stderr and verify(tmp_path / "here" / "run").problems == []
    if route == "cached":  # read, not composed and stored again
        assert entry.stat().st_mtime_ns == stored


def test_an_entry_function_called_in_a_process_of_its_own_leaves_its_signals_alone():
    """sim.entry.run ignores interrupts once its command ends only in a console script's process: a test
    or a notebook calling an entry function kept SIGINT and SIGTERM ignored for good (and so did every
    process it started afterwards)."""
    from sim import entry

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    assert entry.run("os:getpid") == os.getpid()
    entry.result_in_place()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    assert not entry._CONSOLE


#: A console script's process (argv[0] skillsim-*) running a command through sim.entry.run: the command
#: reports whether the collector runs and what the imports left to it.
GC_SHIM = """
import gc, json, sys
sys.argv = ["skillsim-probe"]
from sim.entry import run
print(json.dumps({"before": [gc.isenabled(), gc.get_freeze_count()]}))
sys.exit(run("gc_probe:main"))
"""
GC_PROBE = """
import gc, json
import sim.config  # a command module's imports (numpy, ...)

def main():
    print(json.dumps({"during": [gc.isenabled(), gc.get_freeze_count()]}))
    return 0
"""


def test_a_console_command_runs_with_the_collector_on_and_its_imports_frozen(tmp_path):
    """sim.entry: in a console script's process the collector waits out the command's imports and then
    leaves their objects alone, and is on while the command runs (its own objects are collected); a
    process calling an entry function in-process keeps its collector as it was."""
    import gc

    from sim import entry

    (tmp_path / "gc_probe.py").write_text(GC_PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", GC_SHIM], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = {k: v for line in out.stdout.splitlines() for k, v in json.loads(line).items()}
    assert seen["before"] == [True, 0]
    enabled, frozen = seen["during"]
    assert enabled and frozen > 10_000  # numpy's and the package's objects, at least
    frozen_here = gc.get_freeze_count()
    assert entry.run("gc:isenabled") is gc.isenabled()
    assert gc.get_freeze_count() == frozen_here  # in-process: nothing frozen


#: A console script's process whose command leaves a resource registered with joblib's resource tracker
#: that is gone by the time the tracker cleans up, as a killed pool worker's can be.
TRACKER_SHIM = """
import sys
sys.argv = [sys.argv[1]]
from sim.entry import run
sys.exit(run("tracker_probe:main"))
"""
TRACKER_PROBE = """
import os, sys
from joblib.externals.loky.backend import resource_tracker

def main():
    resource_tracker.register(os.path.join(os.getcwd(), "removed-already"), "folder")
    print("the command's last line", file=sys.stderr)
    return 0
"""


@pytest.mark.parametrize("argv0,quiet", [("skillsim-probe", True), ("notebook", False)])
def test_a_console_commands_last_line_is_its_own_not_the_pool_trackers(tmp_path, argv0, quiet):
    """A slow sweep test failed once in six CI runs: after skillsim's last line, the pool's resource tracker
    (a process that outlives the command) warned that it could not remove a folder a killed worker had
    registered and another process had removed. In a console command those warnings are hidden (the
    tracker still removes what is left); a process that only calls an entry function keeps them."""
    (tmp_path / "tracker_probe.py").write_text(TRACKER_PROBE)
    proc = subprocess.run([sys.executable, "-c", TRACKER_SHIM, argv0], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    if quiet:
        assert lines == ["the command's last line"], proc.stderr[-2000:]
    else:  # the probe's case does make the tracker warn: what the console command hides
        assert "FileNotFoundError" in proc.stderr and lines[-1].strip().startswith("warnings.warn("), proc.stderr


def test_skillsims_own_error_while_a_command_imports_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    """A missing calibration file (sim.config reads it at import) gave every command, `--help` and
    skillsim-verify included, a 23-44 line traceback (a user trial): one line and its exit code, as the
    README says. Any other error at import is a bug and is raised as it is."""
    from sim import entry
    from sim.config import CalibrationMissing

    (tmp_path / "broken_install.py").write_text(
        "from sim.config import CalibrationMissing\n"
        "raise CalibrationMissing('calibration file X is missing: reinstall skillsim')\n", encoding="utf-8")
    (tmp_path / "buggy_module.py").write_text("raise ValueError('a bug')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["pytest"])  # not a console script's process: its signals are left alone
    monkeypatch.delenv("SKILLSIM_DEBUG", raising=False)
    assert entry.run("broken_install:main") == CalibrationMissing.exit_code == 3
    assert capsys.readouterr().err == "skillsim: calibration file X is missing: reinstall skillsim\n"
    with pytest.raises(ValueError, match="a bug"):
        entry.run("buggy_module:main")
    monkeypatch.setenv("SKILLSIM_DEBUG", "1")  # for a bug report: the traceback
    sys.modules.pop("broken_install", None)
    with pytest.raises(CalibrationMissing):
        entry.run("broken_install:main")


def test_a_sweep_stopped_once_every_job_finished_says_so_not_run_the_rest(tmp_path, monkeypatch):
    """A sweep stopped after its last job, as its tables were being written, said "(40 when stopped ...);
    to run the rest, repeat the command" (a user trial): nothing was left to run. With every planned job
    finished it says so and names skillsim-aggregate; with one missing it says what it said."""
    from sim import cli, sweep
    from sim.results import COMPLETE_MARKER

    names = ["replicate=0", "replicate=1", "replicate=2"]
    sweep.write_progress(tmp_path, total=3, grid=True, folders=names)  # an earlier sweep's record: not this one's
    monkeypatch.setattr(sweep, "PLANNED", None)
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / COMPLETE_MARKER).write_text("x", encoding="utf-8")
    monkeypatch.setattr(sweep, "SWEEP_DIR", str(tmp_path))
    monkeypatch.setattr(sweep, "LAST_CANCELLED", None)
    assert "to run the rest" in cli._interrupted()  # this sweep stopped before it recorded its jobs
    monkeypatch.setattr(sweep, "PLANNED", names)  # as the callback records them
    (tmp_path / names[2] / COMPLETE_MARKER).unlink()
    (tmp_path / names[2]).rmdir()
    for name in names[:2]:
        assert (tmp_path / name / COMPLETE_MARKER).is_file()
    assert cli._interrupted() == (f"interrupted; finished jobs are kept in {tmp_path} (2 when stopped, and any a "
                                  f"worker was writing then); to run the rest, repeat the command with "
                                  f"hydra.sweep.dir={tmp_path}")
    (tmp_path / names[2]).mkdir()
    (tmp_path / names[2] / COMPLETE_MARKER).write_text("x", encoding="utf-8")
    assert cli._interrupted() == (f"interrupted; all 3 jobs are finished in {tmp_path}; if its tables (runs.csv) are "
                                  f"missing or older than the jobs, write them with skillsim-aggregate {tmp_path}")
