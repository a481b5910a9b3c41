"""Integrity of run folders: every file has a checksum, and `skillsim-verify` finds what was altered.

`manifest.json` lists the SHA-256 and size of every other file; `COMPLETE` (written last) holds the
SHA-256 of `manifest.json`. `skillsim-verify PATH` (sim.verify) reports, one line each, a file that was
changed, truncated, is missing or was added; exit 0 when intact, 6 (EXIT_INTEGRITY) otherwise, 3
(EXIT_DATA) for a path that is not a run or sweep folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.cli import run_forecast
from sim.config import HorizonParams, RunConfig
from sim.errors import EXIT_DATA, EXIT_INTEGRITY, EXIT_OK
from sim.results import COMPLETE_MARKER, sha256
from sim.verify import main as verify_main

ENVELOPE = {"manifest.json", COMPLETE_MARKER}


def tiny(replicate: int = 0) -> RunConfig:
    return dataclasses.replace(RunConfig(), n_agents=300, horizon=HorizonParams(end_year=2023), replicate=replicate)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """One finished run folder, written by the same function the CLI uses; copied, never changed."""
    folder = tmp_path_factory.mktemp("pristine") / "run"
    run_forecast(tiny(), folder, overrides=["n_agents=300"])
    return folder


@pytest.fixture
def run(pristine, tmp_path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(pristine, folder)
    return folder


def verify(*paths: Path, capsys) -> tuple[int, list[str], list[str]]:
    with pytest.raises(SystemExit) as info:
        verify_main([str(p) for p in paths])
    out, err = capsys.readouterr()
    return info.value.code, out.splitlines(), [ln for ln in err.splitlines() if ln.strip()]


def test_manifest_holds_a_checksum_and_size_of_every_file_and_complete_protects_the_manifest(run):
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    files = {p.name for p in run.iterdir()} - ENVELOPE
    assert files >= {"series.csv", "summary.json", "config.yaml"}
    assert set(manifest["files"]) == files and set(manifest["sizes"]) == files
    for name in files:
        assert manifest["files"][name] == sha256(run / name)
        assert manifest["sizes"][name] == (run / name).stat().st_size
    complete = (run / COMPLETE_MARKER).read_text(encoding="utf-8").splitlines()
    assert complete == ["ok", f"manifest.json sha256 {sha256(run / 'manifest.json')}"]


def test_an_intact_run_folder_passes(run, capsys):
    code, out, err = verify(run, capsys=capsys)
    assert code == EXIT_OK and err == []
    assert out[-1].startswith(f"{run}: ok: ") and "1 run folder" in out[-1]


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    i = data.index(b"2")  # a digit in the data, so the file stays well-formed and the same size
    data[i] = ord("3")
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _append(path: Path) -> None:
    with path.open("ab") as fh:
        fh.write(b"extra\n")


def _edit_manifest_seed(run: Path) -> None:
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    m["seed"] += 1
    (run / "manifest.json").write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")


def _edit_manifest_checksum(run: Path) -> None:
    """Someone 'repairs' the manifest after changing a file: COMPLETE still catches it."""
    _flip_one_byte(run / "series.csv")
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    m["files"]["series.csv"] = sha256(run / "series.csv")
    (run / "manifest.json").write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")


TAMPERING = {
    # name: (what is done to the folder, [expected problem lines as (file, fragment)])
    "changed_csv": (lambda r: _flip_one_byte(r / "series.csv"), [("series.csv", "changed: its checksum differs")]),
    "truncated_summary": (lambda r: _truncate(r / "summary.json"), [("summary.json", "truncated: ")]),
    "grown_parquet": (lambda r: _append(r / "series.parquet"), [("series.parquet", "changed: ")]),
    "missing_config": (lambda r: (r / "config.yaml").unlink(), [("config.yaml", "missing")]),
    "extra_file": (lambda r: (r / "notes.txt").write_text("mine\n"), [("notes.txt", "unexpected file")]),
    "extra_folder": (lambda r: (r / "plots").mkdir(), [("plots", "unexpected folder")]),
    "file_replaced_by_folder": (lambda r: ((r / "config.yaml").unlink(), (r / "config.yaml").mkdir()),
                                [("config.yaml", "a folder where the manifest lists a file")]),
    "manifest_edited": (_edit_manifest_seed, [("manifest.json", "checksum differs from the one in COMPLETE")]),
    "manifest_repaired_after_edit": (_edit_manifest_checksum,
                                     [("manifest.json", "checksum differs from the one in COMPLETE")]),
    "manifest_truncated": (lambda r: _truncate(r / "manifest.json"),
                           [("manifest.json", "checksum differs"), ("manifest.json", "unreadable")]),
    "manifest_missing": (lambda r: (r / "manifest.json").unlink(), [("manifest.json", "missing")]),
    "complete_missing": (lambda r: (r / COMPLETE_MARKER).unlink(), [(COMPLETE_MARKER, "missing")]),
    "complete_edited": (lambda r: (r / COMPLETE_MARKER).write_text("ok\nmanifest.json sha256 0\n"),
                        [(COMPLETE_MARKER, "does not hold the checksum")]),
    # text added after the checksum's line passed (a user trial): COMPLETE is checked whole
    "complete_grown": (lambda r: _append(r / COMPLETE_MARKER), [(COMPLETE_MARKER, "does not hold the checksum")]),
    "two_problems": (lambda r: (_truncate(r / "series.csv"), (r / "summary.json").unlink()),
                     [("series.csv", "truncated"), ("summary.json", "missing")]),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_every_alteration_is_reported_one_line_each(run, capsys, name):
    tamper, expected = TAMPERING[name]
    tamper(run)
    code, out, err = verify(run, capsys=capsys)
    assert code == EXIT_INTEGRITY and err == []
    problems, summary = out[:-1], out[-1]
    assert len(problems) == len(expected), out
    for line, (file, fragment) in zip(problems, expected):
        assert line.startswith(f"{run / file}: ") and fragment in line, line
    assert summary == f"{run}: {len(expected)} problem{'s' if len(expected) > 1 else ''} in 1 run folder"


def test_a_run_folder_from_an_older_skillsim_is_checked_with_a_note(run, capsys):
    (run / COMPLETE_MARKER).write_text("ok\n", encoding="utf-8")
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    del m["sizes"]
    (run / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    code, out, _ = verify(run, capsys=capsys)
    assert code == EXIT_OK and out[0].startswith("note: ") and "older skillsim" in out[0]
    _truncate(run / "series.csv")  # without sizes a truncation is still caught, as a change
    code, out, _ = verify(run, capsys=capsys)
    assert code == EXIT_INTEGRITY and "series.csv: changed" in out[0]


def test_a_report_written_into_the_folder_is_noted_not_flagged(run, sweep_dir, capsys):
    """skillsim-report writes PATH/report/ by default: derived output, not a change to the run."""
    for folder in (run, sweep_dir):
        (folder / "report" / "figures").mkdir(parents=True)
        (folder / "report" / "report.md").write_text("# report\n", encoding="utf-8")
    code, out, _ = verify(run, capsys=capsys)
    assert code == EXIT_OK and out[0] == f"note: {run / 'report'}: a report made from the folder (skillsim-report): not checked"
    code, out, _ = verify(sweep_dir, capsys=capsys)
    assert code == EXIT_OK and "1 failed and 1 unfinished jobs" in out[0]  # the report is not a job
    (run / "report" / "report.md").unlink()  # without report.md it is just an unexpected folder
    code, out, _ = verify(run, capsys=capsys)
    assert code == EXIT_INTEGRITY and out[0] == f"{run / 'report'}: unexpected folder: not in the manifest"


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_killed_reports_working_folder_is_noted_and_the_next_report_removes_it(run, capsys):
    """`timeout -s KILL 2 skillsim-report RUN` left RUN/.report.report-tmp-PID, and skillsim-verify then
    failed the finished run (exit 6), so skillsim-rerun refused it; a later report did not clean it up."""
    from sim.report import pack

    dead = 2 ** 22 + 12345  # above Linux's default pid_max: no such process
    left = run / f".report.report-tmp-{dead}"
    (left / "figures").mkdir(parents=True)
    (left / "figures" / "fig1.png").write_bytes(b"half a figure")
    young = run / f".report.report-tmp-{dead + 1}"  # perhaps another machine's, on a shared disk: kept
    young.mkdir()
    hour_ago = time.time() - pack.LEFTOVER_AGE_S - 60
    os.utime(left, (hour_ago, hour_ago))
    code, out, _ = verify(run, capsys=capsys)
    assert code == EXIT_OK and out[0].startswith(f"note: {left}: left by an interrupted skillsim-report"), out
    pack.make_report(run, pack.Options(lang="en", formats=("png",)))
    assert not left.exists() and young.exists() and (run / "report" / "report.md").exists()
    young.rmdir()
    code, out, _ = verify(run, capsys=capsys)
    assert code == EXIT_OK and not any("interrupted" in line for line in out)


def test_a_manifest_cannot_point_outside_its_folder(run, capsys):
    m = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    m["files"]["../elsewhere.csv"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    code, out, _ = verify(run, capsys=capsys)
    assert code == EXIT_INTEGRITY
    assert any("'../elsewhere.csv', which is not a file of this folder" in line for line in out)


@pytest.mark.parametrize("outside", ["sub/../../elsewhere.csv", "/etc/passwd", "sub\\x.csv"])
def test_a_manifest_path_into_a_subfolder_cannot_leave_it(tmp_path, capsys, outside):
    import pandas as pd

    from sim.studies.forecast import write_folder

    folder = write_folder(tmp_path / "bt", {"backtest": pd.DataFrame({"a": [1]})}, {"kind": "backtest"},
                          subfolders={"sub": {"runs": pd.DataFrame({"b": [2]})}})
    m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    m["files"][outside] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    code, out, _ = verify(folder, capsys=capsys)
    assert code == EXIT_INTEGRITY and any(f"{outside!r}, which is not a file of this folder" in ln for ln in out)


def test_a_study_folder_with_subfolders_is_checked_file_by_file(tmp_path, capsys):
    """A backtest's folder (an origin_YEAR subfolder each): every file, in the subfolders too, is
    listed by its path and checked; a change, a missing file or an added one there is reported."""
    import pandas as pd

    from sim.studies.forecast import write_folder

    folder = write_folder(tmp_path / "bt", {"backtest": pd.DataFrame({"a": [1, 2]})}, {"kind": "backtest"},
                          what="backtest", subfolders={f"origin_{y}": {"runs": pd.DataFrame({"b": [y]}),
                                                                      "calibration": {"objective": y}}
                                                       for y in (2011, 2016)})
    listed = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
    assert set(listed) == {"backtest.csv", "origin_2011/runs.csv", "origin_2011/calibration.json",
                           "origin_2016/runs.csv", "origin_2016/calibration.json"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left
    code, out, _ = verify(folder, capsys=capsys)
    assert code == EXIT_OK and "5 files" in out[0]
    (folder / "origin_2011" / "runs.csv").write_text("b\n9999\n", encoding="utf-8")
    (folder / "origin_2016" / "calibration.json").unlink()
    (folder / "origin_2016" / "notes.txt").write_text("mine", encoding="utf-8")
    (folder / "origin_2020").mkdir()
    code, out, _ = verify(folder, capsys=capsys)
    assert code == EXIT_INTEGRITY
    assert out[-1] == f"{folder}: 4 problems in the backtest folder"
    assert sorted(out[:-1]) == [f"{folder / 'origin_2011' / 'runs.csv'}: changed: its checksum differs from the manifest",
                                f"{folder / 'origin_2016' / 'calibration.json'}: missing",
                                f"{folder / 'origin_2016' / 'notes.txt'}: unexpected file: not in the manifest",
                                f"{folder / 'origin_2020'}: unexpected folder: not in the manifest"]


@pytest.fixture(scope="module")
def pristine_job(tmp_path_factory) -> Path:
    """One finished job folder of a sweep (its manifest records its job number), written as a sweep's
    job writes it."""
    folder = tmp_path_factory.mktemp("pristine_job") / "job"
    run_forecast(tiny(), folder, overrides=["n_agents=300"], extra={"job_num": 0})
    return folder


@pytest.fixture
def sweep_dir(pristine_job, tmp_path) -> Path:
    """A sweep folder as Hydra leaves it: finished, failed and unfinished jobs, hidden leftovers."""
    root = tmp_path / "sweep"
    root.mkdir()
    for rep in (0, 1):
        shutil.copytree(pristine_job, root / f"replicate={rep}")
    (root / "replicate=2").mkdir()
    (root / "replicate=2" / "FAILED").write_text(json.dumps({"error": "config error: ..."}))
    (root / "replicate=3").mkdir()  # interrupted: nothing in it
    (root / ".replicate=3.partial-123").mkdir()  # a killed job's temporary folder: ignored
    (root / "multirun.yaml").write_text("hydra: {}\n")
    return root


def test_a_sweep_folder_checks_every_finished_job(sweep_dir, capsys):
    code, out, err = verify(sweep_dir, capsys=capsys)
    assert code == EXIT_OK and err == []
    assert out[0] == (f"note: {sweep_dir}: 1 failed and 1 unfinished jobs have no results to check "
                      "(re-run the sweep to complete them)")
    assert out[-1].startswith(f"{sweep_dir}: ok: ") and "in 2 run folders" in out[-1]
    _flip_one_byte(sweep_dir / "replicate=1" / "series.csv")
    code, out, _ = verify(sweep_dir, capsys=capsys)
    assert code == EXIT_INTEGRITY
    assert out[0].startswith(f"{sweep_dir / 'replicate=1' / 'series.csv'}: changed")
    assert out[-1] == f"{sweep_dir}: 1 problem in 2 run folders (no sweep tables to check)"  # none aggregated yet


def test_a_folder_of_results_checks_the_runs_in_its_folders(run, sweep_dir, tmp_path, capsys):
    """`skillsim-verify results` with results/runs/A beside results/study: runs/ was taken for an
    unfinished sweep job, so a damaged run in it went unchecked behind "ok", exit 0. Every run folder,
    sweep and folder of runs below is checked; a folder holding no results is noted, not a job."""
    from sim.studies.forecast import write_folder

    results = tmp_path / "results"
    shutil.copytree(run, results / "runs" / "a")
    shutil.copytree(run, results / "runs" / "b")
    shutil.copytree(run, results / "study")  # a study folder is a run folder with its manifest
    shutil.copytree(sweep_dir, results / "sweeps" / "sw")
    (results / "notes").mkdir()
    (results / "README.txt").write_text("what these runs are\n")  # the user's own file beside them: not a problem
    (results / "runs" / "list.txt").write_text("a, b\n")
    code, out, err = verify(results, capsys=capsys)
    assert code == EXIT_OK and err == [], out
    assert f"note: {results}: 1 folder holding no results not checked (notes)" in out
    assert f"note: {results / 'sweeps' / 'sw'}: 1 failed and 1 unfinished jobs have no results to check " \
           "(re-run the sweep to complete them)" in out
    assert out[-1].startswith(f"{results}: ok: ") and "in 5 " in out[-1]  # a, b, study and the sweep's two jobs
    # a folder of results is no sweep: "(no sweep tables to check)" was said of it (the nested sweep's are)
    assert out[-1].endswith(" 5 run folders match their manifests"), out[-1]
    write_folder(results / "plans" / "p", {"choice": {"feasible": True}}, {"kind": "plan"}, what="plan")
    code, out, _ = verify(results, capsys=capsys)  # plans beside runs: result folders, not "run folders"
    assert code == EXIT_OK and out[-1].endswith(" 6 result folders match their manifests"), out[-1]
    _flip_one_byte(results / "runs" / "b" / "series.csv")
    code, out, _ = verify(results, capsys=capsys)
    assert code == EXIT_INTEGRITY and out[0].startswith(f"{results / 'runs' / 'b' / 'series.csv'}: changed"), out


def test_a_killed_sweeps_jobs_that_never_started_are_said(sweep_dir, capsys):
    """A SIGKILLed sweep of six jobs with four folders was "ok" with no word of the two never started."""
    from sim.results import PROGRESS_FILE

    names = [f"replicate={r}" for r in range(6)]
    (sweep_dir / PROGRESS_FILE).write_text(json.dumps({"grid": True, "total": 6, "jobs": names}), encoding="utf-8")
    code, out, _ = verify(sweep_dir, capsys=capsys)
    assert code == EXIT_OK and out[0] == (f"note: {sweep_dir}: 1 failed, 1 unfinished and 2 never started jobs "
                                          "have no results to check (re-run the sweep to complete them)"), out


def test_a_sweep_folders_own_tables_are_checked(sweep_dir, capsys):
    """runs.csv, ensemble.csv, effects.csv and the long series are written with their checksums
    (tables.json); an edited table, or a stray file beside them, is a problem like one in a job."""
    from sim.aggregate import aggregate

    shutil.rmtree(sweep_dir / "replicate=3")  # the interrupted job: aggregate would list it as missing
    aggregate(sweep_dir)
    listed = json.loads((sweep_dir / "tables.json").read_text(encoding="utf-8"))["files"]
    assert {"runs.csv", "ensemble.csv"} <= set(listed)
    code, out, _ = verify(sweep_dir, capsys=capsys)
    assert code == EXIT_OK and out[-1].startswith(f"{sweep_dir}: ok: ")
    assert f"{2 * 4 + len(listed)} files in 2 run folders and the sweep's tables" in out[-1]
    text = (sweep_dir / "runs.csv").read_text(encoding="utf-8")
    (sweep_dir / "runs.csv").write_text(text.replace("ok", "ko", 1), encoding="utf-8")
    (sweep_dir / "notes.txt").write_text("mine", encoding="utf-8")
    code, out, _ = verify(sweep_dir, capsys=capsys)
    assert code == EXIT_INTEGRITY
    assert sorted(out[:2]) == [f"{sweep_dir / 'notes.txt'}: unexpected file: not a job, a table or a record of "
                               "this sweep", f"{sweep_dir / 'runs.csv'}: changed: its checksum differs from the manifest"]
    (sweep_dir / "tables.json").unlink()  # an older skillsim's sweep: noted, its tables not flagged
    (sweep_dir / "notes.txt").unlink()
    code, out, _ = verify(sweep_dir, capsys=capsys)
    assert code == EXIT_OK and any("its tables have no checksums" in line for line in out)


def test_several_paths_and_a_bad_one(run, sweep_dir, tmp_path, capsys):
    code, out, err = verify(run, tmp_path / "nowhere", sweep_dir, capsys=capsys)
    assert code == EXIT_DATA
    assert err == [f"skillsim-verify: {tmp_path / 'nowhere'} does not exist"]
    assert sum(line.endswith("match their manifests") for line in out) == 2


def test_verify_end_to_end_as_a_command(run):
    """`python -m sim.verify` (the console script `skillsim-verify`): exit codes seen by a shell."""
    cmd = [sys.executable, "-m", "sim.verify", str(run)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == EXIT_OK and ok.stderr == "", ok.stderr
    _truncate(run / "series.csv")
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert bad.returncode == EXIT_INTEGRITY and "Traceback" not in bad.stderr
    assert bad.stdout.splitlines()[0].startswith(f"{run / 'series.csv'}: truncated: ")


def test_a_run_or_study_aimed_inside_finished_results_is_refused_before_anything_is_made(run, tmp_path, capsys,
                                                                                         monkeypatch):
    """`skillsim hydra.run.dir=RUN/inner` and `skillsim-forecast out=RUN/inner` both succeeded, and RUN then
    failed skillsim-verify (so skillsim-rerun refused it); a single run inside a sweep's folder made
    skillsim-aggregate call the sweep a folder of single runs."""
    from sim import cli
    from sim.errors import ConfigError
    from sim.studies import forecast

    before = sorted(p.name for p in run.iterdir())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        cli.main(["n_agents=300", "horizon.end_year=2023", f"hydra.run.dir={run / 'inner'}"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"is inside {run}, a finished run's or study's folder" in err[0], err
    with pytest.raises(ConfigError, match=f"out = '{run / 'fc'}' is invalid; allowed: a folder outside finished"):
        forecast.run(["n_agents=300", "params=2", "structural=2", f"out={run / 'fc'}"])
    assert sorted(p.name for p in run.iterdir()) == before
    code, out, _ = verify(run, capsys=capsys)
    assert code == EXIT_OK
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("hydra: {}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        cli.main(["n_agents=300", "horizon.end_year=2023", f"hydra.run.dir={sweep / 'extra'}"])
    assert info.value.code == 2 and "a sweep's folder" in capsys.readouterr().err
    assert sorted(p.name for p in sweep.iterdir()) == ["multirun.yaml"]


def test_a_folder_of_study_folders_is_named_as_such_by_aggregate_and_verify(tmp_path, capsys):
    """`skillsim-aggregate results/plans` said "summary.json: unreadable or damaged" of a finished plan,
    and skillsim-verify called the plans run folders."""
    from sim.aggregate import aggregate
    from sim.errors import DataError
    from sim.studies.forecast import write_folder

    for name in ("a", "b"):
        write_folder(tmp_path / "plans" / name, {"choice": {"feasible": True}}, {"kind": "plan"}, what="plan")
    with pytest.raises(DataError, match=r"plans holds plan folders \(a and more\), not the jobs of one sweep"):
        aggregate(tmp_path / "plans")
    code, out, _ = verify(tmp_path / "plans", capsys=capsys)
    assert code == EXIT_OK and "2 plan folders" in out[-1], out


def test_reruns_sweeps_and_hydras_own_route_inside_finished_results_are_refused(run, tmp_path, capsys, monkeypatch):
    """The first refusal covered plain runs and studies only: `skillsim-rerun RUN hydra.run.dir=RUN/again`,
    `skillsim -m ... hydra.sweep.dir=RUN/sw` and a run with a Hydra flag (`--config-dir`) still wrote inside."""
    from sim import cli
    from sim.errors import ConfigError
    from sim.rerun import rerun

    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(ConfigError, match="hydra.run.dir = .* is invalid; allowed: a folder outside finished results"):
        rerun(run, run / "again")
    for argv in (["-m", "replicate=0,1", "n_agents=300", "horizon.end_year=2023", f"hydra.sweep.dir={run / 'sw'}"],
                 ["--config-dir", str(cli.CONFIG_DIR), "n_agents=300", "horizon.end_year=2023",
                  f"hydra.run.dir={run / 'x'}"]):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and "a folder outside finished results" in err[-1], err
    assert sorted(p.name for p in run.iterdir()) == before
    code, _, _ = verify(run, capsys=capsys)
    assert code == EXIT_OK


def test_a_resume_calls_a_job_damaged_only_for_what_changed_not_for_what_cannot_be_read(run, monkeypatch):
    """sim.sweep.damage decides whether a resume sets a finished job aside and runs it again: a changed or
    added file is damage; a file that cannot be read now (permission denied, an I/O error) or a folder moved
    away mid-check (by another resumer) is not known to be damaged, and a re-run would not mend it."""
    from sim import sweep, verify as verify_module

    assert sweep.damage(run) == [] and sweep.finished_intact(run)
    (run / "notes.txt").write_text("mine", encoding="utf-8")
    assert sweep.damage(run) == [f"{run / 'notes.txt'}: unexpected file: not in the manifest"]
    (run / "notes.txt").unlink()
    real = verify_module.sha256

    def unreadable(path):
        if Path(path).name == "series.csv":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(verify_module, "sha256", unreadable)
    assert sweep.damage(run) == [] and sweep.finished_intact(run)
    monkeypatch.setattr(verify_module, "sha256", real)

    def moved(folder, report):
        raise FileNotFoundError(2, "No such file or directory", str(folder))

    monkeypatch.setattr(verify_module, "verify_run", moved)
    assert sweep.damage(run) == []
    monkeypatch.undo()
    (run / "series.csv").write_bytes((run / "series.csv").read_bytes()[:-10])
    assert sweep.damage(run) and not sweep.finished_intact(run)
    assert not sweep.finished_intact(run.parent / "absent")
