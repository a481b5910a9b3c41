"""`skillsim-verify PATH...`: re-check the checksums of run folders and of every job of a sweep folder.

A run folder (sim.results) protects its files in two steps:
- `manifest.json` lists the SHA-256 checksum and the size of every other file in the folder;
- `COMPLETE`, written last, holds the SHA-256 checksum of `manifest.json` itself.

For each run folder this reports, one line per problem, every file that was changed, truncated
(shorter than written), is missing, or is in the folder without being in the manifest; a changed
manifest; a missing or altered `COMPLETE`. A report written into the folder by skillsim-report (a
folder with report.md) is noted, not checked. A sweep folder is checked job folder by job folder: failed
jobs (a `FAILED` record) and unfinished ones have nothing to check and are counted, not flagged. The
sweep's own tables (runs.csv, ...) are rebuilt from the job folders by `skillsim-aggregate`.

Hidden files beside the job folders (claims `.NAME.lock`, half-written `.NAME.partial-PID` folders
of a job that is running or was killed) are not part of any run and are not checked.

Exit codes (sim.errors): 0 all files intact; 6 (EXIT_INTEGRITY) at least one problem; 3 (EXIT_DATA) a
PATH that is not a run or sweep folder, or one that cannot be read (permission denied, vanished).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import EXIT_DATA, EXIT_INTEGRITY, EXIT_OK, environment_fault, one_line_errors, quiet_when_output_closed
from .results import COMPLETE_MARKER, sha256

MANIFEST = "manifest.json"
FAILED_MARKER = "FAILED"  # sim.results.FAILED_MARKER (not imported: keeps this tool light)
SWEEP_FILES = (".sweep_progress.json", "multirun.yaml", "runs.csv")
#: COMPLETE as sim.results writes it, whole: text added before or after the checksum's line is a change
_COMPLETE_SUM = re.compile(r"\Aok\nmanifest\.json sha256 ([0-9a-f]{64})\n\Z")


@dataclass
class Report:
    """Problems found (one line each), and how many run folders were checked."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0
    files: int = 0
    what: str = ""  #: what was checked, for the summary line ("1 run folder", "the forecast folder", ...)
    kinds: set = field(default_factory=set)  #: the kinds of folder checked ("run", "forecast", "plan", ...)


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and ((path / MANIFEST).exists() or (path / COMPLETE_MARKER).exists())


def is_report(path: Path) -> bool:
    """A folder written by skillsim-report (by default PATH/report): derived output, not part of the run."""
    return path.is_dir() and (path / "report.md").exists()


#: the hidden folders skillsim-report writes a report in before renaming it (sim.report.pack)
REPORT_WORK = re.compile(r"^\.(?P<out>.+)\.report-(?P<kind>tmp|old)-(?P<pid>\d+)$")


def report_leftover(path: Path) -> bool:
    """A report's working folder left behind by a killed or hung-up skillsim-report: not part of the
    results (a finished run failed verification, and could not be rerun, because of one)."""
    return path.is_dir() and REPORT_WORK.match(path.name) is not None


def job_folders(path: Path) -> list[Path]:
    """Sub-folders of a sweep folder that are jobs (finished, failed or started): not hidden, not a report."""
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and not is_report(p))


def is_sweep_folder(path: Path) -> bool:
    if not path.is_dir() or is_run_folder(path):
        return False
    if any((path / f).exists() for f in SWEEP_FILES):
        return True
    return any(is_run_folder(j) or (j / FAILED_MARKER).exists() for j in job_folders(path))


def holds_results(path: Path, depth: int = 2) -> bool:
    """A sweep folder or a folder of results, or a folder holding one within `depth` levels (results/
    holding sweeps/NAME): what verify checks folder by folder."""
    return is_sweep_folder(path) or (depth > 0 and any(is_run_folder(j) or holds_results(j, depth - 1)
                                                       for j in job_folders(path)))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


#: a listed file that could not be read (permission denied, an I/O error): not known to be changed
CANNOT_READ = "cannot be read"


def verify_run(folder: Path, report: Report) -> None:
    """Check one run folder against its manifest; append one line per problem to `report`."""
    report.checked += 1
    from .results import kind_of

    report.kinds.add(kind_of(folder) or "run")  # a sweep job's manifest has no kind: a run
    bad = report.problems.append
    manifest_path, complete_path = folder / MANIFEST, folder / COMPLETE_MARKER

    complete = _read(complete_path)
    if complete is None:
        bad(f"{complete_path}: missing: the run did not finish, or the marker was removed")
    raw = _read(manifest_path)
    if raw is None:
        bad(f"{manifest_path}: missing: nothing to check the files against")
        return
    if complete is not None:
        m = _COMPLETE_SUM.fullmatch(complete.decode("utf-8", "replace"))
        if m is None:
            if complete.strip() == b"ok":  # written before COMPLETE held the manifest's checksum
                report.notes.append(f"{complete_path}: written by an older skillsim: manifest.json itself "
                                    "is not protected")
            else:
                bad(f"{complete_path}: changed: it does not hold the checksum of manifest.json")
        elif sha256(manifest_path) != m.group(1):
            bad(f"{manifest_path}: changed: its checksum differs from the one in COMPLETE")
    listed = check_listed(folder, manifest_path, raw, report)
    if listed is None:
        return
    known = set(listed) | {MANIFEST, COMPLETE_MARKER}
    listed_dirs = {str(d) for name in listed for d in PurePosixPath(name).parents if str(d) != "."}
    unexpected(folder, folder, known, listed_dirs, report, bad)


def check_listed(folder: Path, manifest_path: Path, raw: bytes, report: "Report") -> dict | None:
    """Check every file a manifest lists (checksum and size, by its path in `folder`); the listed
    files, or None if the manifest cannot be read (said as a problem)."""
    bad = report.problems.append
    try:
        manifest = json.loads(raw.decode("utf-8"))
        listed = manifest["files"]
        sizes = manifest.get("sizes", {})
        if not isinstance(listed, dict) or not isinstance(sizes, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        bad(f"{manifest_path}: unreadable: not a JSON manifest with a 'files' table (changed or truncated)")
        return None

    for name, digest in listed.items():
        path = folder / name
        parts = PurePosixPath(name).parts
        if not parts or name.startswith("/") or "\\" in name or any(p in (".", "..") for p in parts):
            bad(f"{manifest_path}: changed: it lists {name!r}, which is not a file of this folder")
            continue
        if not path.exists():
            bad(f"{path}: missing")
            continue
        if not path.is_file():
            bad(f"{path}: changed: a folder where the manifest lists a file")
            continue
        try:
            actual = sha256(path)
            size = path.stat().st_size
        except OSError as exc:
            bad(f"{path}: {CANNOT_READ} ({exc.strerror or exc})")
            continue
        report.files += 1
        expected_size = sizes.get(name)
        if isinstance(expected_size, int) and size < expected_size:
            bad(f"{path}: truncated: {size:,} of {expected_size:,} bytes")
        elif actual != digest:
            how = (f"{size:,} bytes instead of {expected_size:,}" if isinstance(expected_size, int)
                   and size != expected_size else "its checksum differs from the manifest")
            bad(f"{path}: changed: {how}")
    return listed


def unexpected(folder: Path, here: Path, known: set, listed_dirs: set, report: "Report", bad) -> None:
    """Anything in the folder (and in its listed subfolders, as a backtest's) that the manifest does
    not list; a report made from the folder is noted, not checked."""
    for path in sorted(here.iterdir()):
        rel = path.relative_to(folder).as_posix()
        if rel in known:
            continue
        if rel in listed_dirs and path.is_dir():
            unexpected(folder, path, known, listed_dirs, report, bad)
        elif here == folder and is_report(path):
            report.notes.append(f"{path}: a report made from the folder (skillsim-report): not checked")
        elif here == folder and report_leftover(path):
            report.notes.append(f"{path}: left by an interrupted skillsim-report, not part of the results: "
                                "not checked (the next report of the folder removes it)")
        else:
            bad(f"{path}: unexpected {'folder' if path.is_dir() else 'file'}: not in the manifest")


#: what a sweep folder holds besides its jobs and its tables: Hydra's record of the command, and an
#: optimising sweeper's result (Optuna, Nevergrad)
SWEEP_RECORDS = ("multirun.yaml", "optimization_results.yaml")


def verify_sweep_tables(folder: Path, report: Report) -> None:
    """The sweep's own tables against `tables.json` (written with them by skillsim-aggregate), and
    anything at the sweep's top level that is neither a job, a table, a record nor a report."""
    from .aggregate import TABLES_MANIFEST

    manifest_path = folder / TABLES_MANIFEST
    raw = _read(manifest_path)
    if raw is None:
        listed = {}
        if (folder / "runs.csv").exists():
            report.notes.append(f"{folder}: its tables have no checksums ({TABLES_MANIFEST}: written by an older "
                                "skillsim, or removed); skillsim-aggregate rebuilds them with it")
    else:
        listed = check_listed(folder, manifest_path, raw, report) or {}
    known = set(listed) | {TABLES_MANIFEST, *SWEEP_RECORDS} | ({"runs.csv", "ensemble.csv", "effects.csv",
                                                                "series_long.parquet", "series_long.csv"}
                                                               if raw is None else set())
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name in known or is_report(path) or path.is_dir():
            continue  # hidden records (claims, progress, objectives), jobs and reports are not tables
        report.problems.append(f"{path}: unexpected file: not a job, a table or a record of this sweep")


def verify_sweep(folder: Path, report: Report) -> None:
    """Check every finished job folder of a sweep, and its tables; failed and unfinished jobs are noted."""
    from .results import recorded_plan

    sweep = any((folder / f).exists() for f in SWEEP_FILES)  # else a folder of results: runs, studies, sweeps
    if sweep:  # a sweep's top level holds nothing else; a folder of results may hold the user's own files
        verify_sweep_tables(folder, report)
    failed = unfinished = 0
    others = []
    jobs = job_folders(folder)
    for job in jobs:
        if is_run_folder(job):
            verify_run(job, report)
        elif (job / FAILED_MARKER).exists():
            failed += 1
        elif holds_results(job):  # results/ holding runs/ and sweeps/: each checked (it was an "unfinished job")
            verify_sweep(job, report)
        elif sweep:
            unfinished += 1
        else:
            others.append(job.name)
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        report.notes.append(f"{folder}: {len(others)} folder{'s' if len(others) != 1 else ''} holding no results "
                            f"not checked ({shown})")
    # the planned jobs without a folder at all: a killed sweep's were said nowhere ("ok: 4 files in 1 run
    # folder" for a sweep of four jobs, three never started)
    total, names = recorded_plan(folder)
    have = {job.name for job in jobs}
    never = (len([n for n in names if n not in have]) if names is not None
             else max(0, total - len(jobs)) if total is not None else 0)
    if failed or unfinished or never:
        parts = [f"{failed} failed", f"{unfinished} unfinished"] + ([f"{never} never started"] if never else [])
        report.notes.append(f"{folder}: {', '.join(parts[:-1])} and {parts[-1]} jobs have no results "
                            "to check (re-run the sweep to complete them)")


def verify(path: str | Path) -> Report:
    """Check a run or sweep folder. Raises NotARunFolder if it is neither."""
    path = Path(path)
    report = Report()
    if is_run_folder(path):
        verify_run(path, report)
        try:
            kind = json.loads((path / MANIFEST).read_text(encoding="utf-8")).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        report.what = f"the {kind} folder" if isinstance(kind, str) and kind else "1 run folder"
    elif holds_results(path):
        verify_sweep(path, report)
        from .aggregate import TABLES_MANIFEST

        sweep = any((path / f).exists() for f in SWEEP_FILES)  # not a folder of results (results/: runs, plans)
        tables = ("" if not sweep else " and the sweep's tables" if (path / TABLES_MANIFEST).exists() else
                  " (no sweep tables to check)" if not (path / "runs.csv").exists() else "")
        kinds = report.kinds  # of every folder checked, at any depth (results/ holding a sweep and plans)
        noun = next(iter(kinds)) if len(kinds) == 1 else "run" if not kinds else "result"  # a folder of plans
        report.what = f"{report.checked} {noun} folder{'s' if report.checked != 1 else ''}{tables}"
    else:
        raise NotARunFolder(path)
    return report


class NotARunFolder(Exception):
    def __init__(self, path: Path):
        if not path.exists():
            why = "does not exist"
        elif not path.is_dir():
            why = "is a file, not a run or sweep folder"
        else:
            why = f"is not a run or sweep folder (no {MANIFEST} or {COMPLETE_MARKER}, no job folders)"
        super().__init__(f"{path} {why}")


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    """`skillsim-verify PATH [PATH ...]`: one line per problem; exit 0 if every file is intact."""
    ap = one_line_errors(argparse.ArgumentParser(prog="skillsim-verify", description=__doc__.splitlines()[0]))
    ap.add_argument("paths", nargs="+", metavar="PATH", help="a run folder or a sweep folder")
    args = ap.parse_args(argv)
    code = EXIT_OK
    for p in args.paths:
        try:
            report = verify(p)
        except NotARunFolder as err:
            print(f"skillsim-verify: {err}", file=sys.stderr)
            code = EXIT_DATA
            continue
        except OSError as exc:  # a folder that cannot be listed or vanished while being checked
            print(f"skillsim-verify: {environment_fault(exc, exc.filename or p, 'read')}", file=sys.stderr)
            code = EXIT_DATA
            continue
        for line in report.problems:
            print(line)
        for line in report.notes:
            print(f"note: {line}")
        n = len(report.problems)
        runs = report.what
        if n:
            print(f"{p}: {n} problem{'s' if n != 1 else ''} in {runs}")
            if code == EXIT_OK:
                code = EXIT_INTEGRITY
        else:
            print(f"{p}: ok: {report.files} files in {runs} match their manifests")
    raise SystemExit(code)


if __name__ == "__main__":
    main()
