"""Faults of the machine: a full disk (a small tmpfs) and permission denied, for a run, a sweep, a
report, an aggregation and a verification. Each ends with one line naming the path and the OS error,
the documented exit code (sim.errors), no traceback, and nothing half-written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sim.errors import EXIT_DATA, EXIT_OUTPUT

from .faults import (assert_one_line_error, fill, foreign_uid, leftovers, read_only_dir, run, tmpfs,
                     unprivileged_prefix)

SMALL = ["n_agents=2000", "horizon.end_year=2025"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    proc = run("sim", *SMALL, f"hydra.run.dir={tmp / 'run'}", cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return tmp / "run"


def test_full_disk_run(tmp_path):
    with tmpfs(1024) as mnt:
        fill(mnt)
        proc = run("sim", *SMALL, f"hydra.run.dir={mnt / 'run'}", cwd=tmp_path)
        assert_one_line_error(proc, "skillsim", EXIT_OUTPUT, str(mnt / "run"), "No space left on device",
                              "[ENOSPC]")
        assert sorted(p.name for p in mnt.iterdir()) == ["filler"], "nothing may be left behind"


def test_full_disk_sweep(tmp_path):
    with tmpfs(1024) as mnt:
        fill(mnt, leave_kb=24)
        out = mnt / "sweep"
        proc = run("sim", "-m", "replicate=0,1", *SMALL, "hydra/launcher=basic", f"hydra.sweep.dir={out}",
                   cwd=tmp_path)
        line = assert_one_line_error(proc, "skillsim", EXIT_OUTPUT, "No space left on device")
        assert str(out) in line
        assert not leftovers(mnt), leftovers(mnt)
        for job in (p for p in out.iterdir() if p.is_dir()) if out.exists() else []:
            assert not (job / "COMPLETE").exists()
            assert sorted(q.name for q in job.iterdir()) in (["FAILED"], []), list(job.iterdir())


@pytest.mark.slow
def test_full_disk_report(tmp_path, finished_run):
    with tmpfs(1024) as mnt:
        fill(mnt)
        proc = run("sim.report", str(finished_run), f"out={mnt / 'report'}", "formats=png", cwd=tmp_path)
        assert_one_line_error(proc, "skillsim-report", EXIT_OUTPUT, str(mnt / "report"), "No space left on device")
        assert sorted(p.name for p in mnt.iterdir()) == ["filler"]


@pytest.mark.slow
def test_full_disk_aggregation_keeps_the_old_tables(tmp_path):
    with tmpfs(4096) as mnt:
        out = mnt / "sweep"
        proc = run("sim", "-m", "replicate=0,1", "levers.training.intensity=1,2", "n_agents=500",
                   "horizon.end_year=2024", "hydra/launcher=basic", f"hydra.sweep.dir={out}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        before = {t: (out / t).read_bytes() for t in ("runs.csv", "ensemble.csv", "effects.csv")}
        fill(mnt, leave_kb=8)
        proc = run("sim.aggregate", str(out), cwd=tmp_path)
        assert_one_line_error(proc, "skillsim-aggregate", EXIT_OUTPUT, str(out), "No space left on device")
        assert {t: (out / t).read_bytes() for t in before} == before, "finished tables must not be touched"
        assert not leftovers(mnt), leftovers(mnt)
        verify = run("sim.verify", str(out), cwd=tmp_path)
        assert verify.returncode == 0, verify.stdout


@pytest.mark.slow
def test_vanished_folder_in_verify(tmp_path, finished_run):
    gone = tmp_path / "gone"
    shutil.copytree(finished_run, gone)
    shutil.rmtree(gone)
    proc = run("sim.verify", str(gone), cwd=tmp_path)
    assert_one_line_error(proc, "skillsim-verify", EXIT_DATA, str(gone))


@pytest.fixture
def locked(tmp_path_factory):
    """A world-traversable scratch folder holding a read-only folder for an unprivileged process."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="skillsim-perm-"))
    base.chmod(0o755)
    ro = read_only_dir(base)
    prefix = unprivileged_prefix(ro)
    yield base, ro, prefix
    ro.chmod(0o755)
    shutil.rmtree(base, ignore_errors=True)


def test_permission_denied_run(locked):
    base, ro, prefix = locked
    proc = run("sim", *SMALL, f"hydra.run.dir={ro / 'run'}", cwd=base, prefix=prefix)
    assert_one_line_error(proc, "skillsim", EXIT_OUTPUT, str(ro / "run"), "Permission denied", "[EACCES]")
    assert list(ro.iterdir()) == []


@pytest.mark.slow
def test_permission_denied_sweep(locked):
    base, ro, prefix = locked
    proc = run("sim", "-m", "replicate=0,1", *SMALL, "hydra/launcher=basic", f"hydra.sweep.dir={ro / 'sweep'}",
               cwd=base, prefix=prefix)
    assert_one_line_error(proc, "skillsim", EXIT_OUTPUT, str(ro / "sweep"), "Permission denied")
    assert list(ro.iterdir()) == []


@pytest.mark.slow
def test_permission_denied_report_and_aggregation(locked, finished_run):
    base, ro, prefix = locked
    proc = run("sim.report", str(finished_run), f"out={ro / 'report'}", "formats=png", cwd=base, prefix=prefix)
    assert_one_line_error(proc, "skillsim-report", EXIT_OUTPUT, str(ro / "report"), "Permission denied")
    # a finished sweep folder that this user may read but not write: its tables cannot be rebuilt
    sweep = base / "sweep"
    proc = run("sim", "-m", "replicate=0,1", "n_agents=300", "horizon.end_year=2023", "hydra/launcher=basic",
               f"hydra.sweep.dir={sweep}", cwd=base)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = (sweep / "runs.csv").read_bytes()
    os.chown(sweep, 65534, 65534)
    sweep.chmod(0o555)
    try:
        proc = run("sim.aggregate", str(sweep), cwd=base, prefix=prefix)
        assert_one_line_error(proc, "skillsim-aggregate", EXIT_OUTPUT, str(sweep), "Permission denied")
        assert (sweep / "runs.csv").read_bytes() == runs
        ok = run("sim.verify", str(sweep), cwd=base, prefix=prefix)  # reading is allowed: verify still works
        assert ok.returncode == 0, ok.stdout + ok.stderr
    finally:
        sweep.chmod(0o755)
    assert list(ro.iterdir()) == []


@pytest.mark.slow
def test_permission_denied_verify(locked, finished_run):
    base, ro, prefix = locked
    secret = base / "secret"
    shutil.copytree(finished_run, secret)
    os.chown(secret, foreign_uid(prefix), foreign_uid(prefix))
    secret.chmod(0o700)  # owned by someone else: not even listable by the unprivileged user
    proc = run("sim.verify", str(secret), cwd=base, prefix=prefix)
    assert_one_line_error(proc, "skillsim-verify", EXIT_DATA, str(secret), "Permission denied")


def test_every_exit_code_is_in_the_readme_error_table():
    import re

    import sim.errors as errors
    REPO_ROOT = Path(__file__).resolve().parent.parent

    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8").split("## Errors and what they mean", 1)[1]
    table = set(int(c) for c in re.findall(r"^\| (\d+) \|", text.split("\n## ", 1)[0], flags=re.M))
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_") and k != "EXIT_OK"}
    assert codes <= table, f"exit codes missing from the README table: {sorted(codes - table)}"
    assert table <= codes, f"README lists codes that sim.errors does not define: {sorted(table - codes)}"


@pytest.mark.parametrize("where", ["the-folder", "a-folder-above"])
def test_a_file_where_the_run_folder_must_be_is_named_as_such(tmp_path, where):
    """A user trial: `hydra.run.dir=afile` said only "File exists [EEXIST]" (a file above the folder:
    "Not a directory"). The line now says a file is where a folder is needed; nothing is written."""
    (tmp_path / "afile").write_text("mine")
    target = tmp_path / "afile" if where == "the-folder" else tmp_path / "afile" / "run"
    proc = run("sim", *SMALL, f"hydra.run.dir={target}", cwd=tmp_path)
    assert_one_line_error(proc, "skillsim", EXIT_OUTPUT, str(target), "a file is where a folder is needed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"] and (tmp_path / "afile").read_text() == "mine"


def test_an_os_error_is_said_in_the_systems_words_whoever_raised_it():
    """pyarrow raises a full disk as OSError(28, "Error writing bytes to file. Detail: [errno 28] No space
    left on device"): the line showed pyarrow's wording (a user trial). The system's words are used for
    any error number it knows; an unknown number keeps the raiser's words."""
    from sim.errors import os_reason

    pyarrows = OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert os_reason(pyarrows) == "No space left on device [ENOSPC]"
    assert os_reason(PermissionError(13, "Permission denied")) == "Permission denied [EACCES]"
    assert os_reason(OSError(99999, "something odd")) == "something odd"
    assert os_reason(OSError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] failed")) == "[SSL: CERTIFICATE_VERIFY_FAILED] failed [EPERM]"
    assert os_reason(OSError("no number")) == "no number"


def test_a_studys_folder_that_cannot_be_written_is_named(tmp_path, monkeypatch, capsys):
    """A forecast on a full disk said "cannot write the forecast folder: No space left on device" without
    the folder (a user trial; a table's write fails as it is flushed, and names no file). The line names
    the folder; nothing is left behind."""
    from sim.studies import forecast, options

    def full(folder, tables):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(forecast, "_write_tables", full)
    out = tmp_path / "fc"

    def study(argv):
        forecast.write_folder(out, {}, {"kind": "forecast"})

    with pytest.raises(SystemExit) as info:
        options.run_command(study, "skillsim-forecast", [], what="forecast folder")
    assert info.value.code == EXIT_OUTPUT
    assert capsys.readouterr().err.strip() == f"skillsim-forecast: cannot write {out}: No space left on device [ENOSPC]"
    assert list(tmp_path.iterdir()) == []
