"""Run folders: written whole or not at all.

A run is computed first, then its files are written into a hidden temporary folder beside the
target and renamed into place in one step. A crash or an interrupt leaves no half-written result
folder under the target's name. `manifest.json` holds what is needed to reproduce the run and a
checksum and size of every other file; `COMPLETE` is written last, marks a finished run and holds
the checksum of `manifest.json`. `skillsim-verify` (sim.verify) re-checks them.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import functools
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

from .config import RunConfig, to_dict
from .errors import OutputError, environment_fault
from .ladder import N_LEVELS
from .metrics import SPEND_ACCOUNTS
from .streams import replicate_seed

COMPLETE_MARKER = "COMPLETE"
FAILED_MARKER = "FAILED"  # a sweep job that failed: its error, beside where its folder would be
#: a sweep folder's plan: its job count, whether that count is exact, and its start (sim.sweep)
PROGRESS_FILE = ".sweep_progress.json"
PACKAGES = ("numpy", "scipy", "pandas", "mesa", "hydra-core", "omegaconf", "pyarrow", "skillsim")


@functools.lru_cache(maxsize=1)
def _package_versions() -> tuple[tuple[str, str], ...]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tuple(out.items())


def package_versions(*extra: str) -> dict[str, str]:
    """Versions of Python and the packages a run depends on: looked up once per process (a sweep's
    worker writes many folders; the packages it has loaded do not change under it). `extra`: packages
    a study also depends on (SALib's estimators, EMA Workbench's PRIM), whose versions a reader of its
    folder needs."""
    out = dict(_package_versions())
    for name in extra:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def defaults_record() -> dict:
    """Where the run's defaults for the calibrated settings came from: the calibration file (by checksum)
    or, under SKILLSIM_UNCALIBRATED=1 when sim.config was imported, the priors. config.yaml holds the values used, so a rerun needs
    neither; the record tells a reader of the manifest why they differ from the shipped file's."""
    from . import config

    if config.ON_PRIORS:  # as fixed when sim.config was imported, which is when the defaults were
        return {"from": f"the priors ({config.UNCALIBRATED_ENV}=1)", "calibration_sha256": None}
    return {"from": "the calibration file", "calibration_sha256": sha256_or_none(config.CALIBRATION_FILE)}


def sha256_or_none(path: Path) -> str | None:
    return sha256(path) if path.is_file() else None


def calibration_checksums() -> dict[str, str]:
    """The calibration files a study's parameter values or ranges come from, by name and checksum."""
    from .studies.calibrate import CALIBRATION_FILE, ENSEMBLE_FILE

    # None for a file that is not there (SKILLSIM_UNCALIBRATED=1, calibrating from scratch): a study
    # without parameters ran every run, then failed writing its manifest
    return {"calibration": str(CALIBRATION_FILE.name),
            "calibration_sha256": sha256_or_none(CALIBRATION_FILE),
            "calibration_ensemble_sha256": sha256_or_none(ENSEMBLE_FILE)}


def searchpath_folders(overrides) -> list[str]:
    """The user's config folders an override list reads (`hydra.searchpath=['file:///...']`, which
    --config-dir becomes), parsed as Hydra parses them (a folder name may hold a comma)."""
    found = []
    for o in overrides or []:
        if not (isinstance(o, str) and o.lstrip("+").startswith("hydra.searchpath=")):
            continue
        from hydra.core.override_parser.overrides_parser import OverridesParser

        try:
            value = OverridesParser.create().parse_override(o).value()
        except Exception:  # noqa: BLE001 - not a list Hydra reads: no folder of the user's
            continue
        for v in map(str, value if isinstance(value, list) else [value]):
            if v.startswith("file://"):
                found.append(v[len("file://"):])
            elif "://" not in v:  # no scheme: a file path, as Hydra reads it
                found.append(v)
    return found


def config_file_checksums(overrides) -> dict:
    """The checksum of each config file in the user's config folders a study read (its --config-dir),
    by path: a study's rerun reads them as they are then, and one edited since made the rerun differ
    with no word of why (a user trial). Only what Hydra can read from such a folder for skillsim: its
    top-level YAML files and those under the folders of skillsim's own config groups (region/,
    scenario/, ...), not results kept beside them. Nothing for a study of the shipped presets only."""
    from .cli import CONFIG_DIR

    groups = sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    files = {}
    for folder in searchpath_folders(overrides):
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        paths = sorted(root.glob("*.yaml")) + [p for g in groups for p in sorted((root / g).rglob("*.yaml"))
                                                if not any(part.startswith(".") for part in p.relative_to(root).parts)]
        for path in paths:
            if path.is_file():
                files[str(path.resolve())] = sha256(path)
    return {"config_files_sha256": files} if files else {}


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """Commit of the skillsim source tree, with '-dirty' if it has uncommitted changes.

    Asked once per process (three git calls; a sweep's worker writes many folders): the code a
    process runs is what it imported, so a later edit does not change what its runs ran.

    Only a source checkout has one: an installed package (a wheel, even inside someone's repository)
    says "unknown" and is identified by its version in `versions`.
    """
    return commit_of(Path(__file__).resolve().parent)


def commit_of(src: Path) -> str:
    """git_commit for the package folder `src`: its checkout's commit if `src` sits at the top of a git
    work tree, else "unknown", without starting git when there is no `.git` beside it (an installed
    package: a git process is a few milliseconds of every run's start)."""
    if not (src.parent / ".git").exists():
        return "unknown"
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=src, capture_output=True, text=True,
                             timeout=10)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != src.parent:
            return "unknown"
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


#: Set by the command-line tools (and inherited by a sweep's worker processes): the command as typed.
COMMAND_ENV = "SKILLSIM_COMMAND"
#: set by skillsim-rerun for the study it runs again: what is rerun (JSON), recorded as the new folder's
#: manifest's `rerun_of` (sim.studies.forecast.seal), as a run's rerun records it
RERUN_OF_ENV = "SKILLSIM_RERUN_OF"


@contextlib.contextmanager
def recorded_command(words: list[str]):
    """While it lasts, `words` (the program and its arguments as typed) are the command the manifests
    written meanwhile record (user_command); processes started meanwhile (sweep workers) inherit it.
    Afterwards the environment is as it was."""
    previous = os.environ.get(COMMAND_ENV)
    os.environ[COMMAND_ENV] = json.dumps(words, ensure_ascii=False)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(COMMAND_ENV, None)
        else:
            os.environ[COMMAND_ENV] = previous


def user_command() -> list[str]:
    """The command the user typed: program name and arguments, nothing the tool added, no paths of ours."""
    raw = os.environ.get(COMMAND_ENV)
    if raw:
        try:
            cmd = json.loads(raw)
            if isinstance(cmd, list) and all(isinstance(a, str) for a in cmd):
                return cmd
        except ValueError:
            pass
    return [Path(sys.argv[0]).name] + sys.argv[1:]


def partial_folder(folder: Path) -> Path:
    """The hidden folder this process writes `folder` into before renaming it (`.NAME.partial-PID`)."""
    return folder.parent / f".{folder.name}.partial-{os.getpid()}"


def remove_dead_partials(folder: Path) -> None:
    """Remove the half-written `.NAME.partial-PID` folders of `folder`. Call it only under the folder's
    claim (sim.claims), taken over from a process that died: only a holder of the claim writes one, so
    any found then was left by a dead writer (SIGKILL, a lost node)."""
    import glob

    for stale in folder.parent.glob(f".{glob.escape(folder.name)}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)


def remove_killed_partials(parent: Path) -> list[Path]:
    """Remove the half-written `.NAME.partial-PID` folders in `parent` whose writer was killed on this host
    (SIGKILL, out of memory) and tell the user; returns them. A killed writer's claim (`.NAME.lock`, sim.claims)
    stays behind naming it, and a default name (a timestamp) is never claimed again, so nothing else
    would remove its partial folder, which can be as large as the result. A partial folder is removed only
    if its claim names that pid on this host and no process holds the claim (`claims.unclaimed`, the lock
    itself: a live writer holds it for the whole write); a writer on another host, or one without a claim,
    is left alone."""
    try:
        found = sorted(parent.glob(".*.partial-*"))
    except OSError:  # an unreadable folder: the command's own write will say so
        return []
    removed = []
    for partial, owner in remove_unheld_partials(found):
        removed.append(partial)
        import logging

        logging.getLogger("skillsim").warning("removed %s, which %s left half-written when it was killed",
                                              partial, owner)
    remove_dead_claims(parent)
    return removed


def remove_unheld_partials(found: list[Path]) -> list[tuple[Path, object]]:
    """Remove those of the `.NAME.partial-PID` folders `found` whose claim on NAME names PID on this host
    and is held by no process (`claims.unclaimed`: the lock itself, which the kernel drops however the
    writer ended); returns each removed folder with the claim's owner. Also a stopped sweep's cleanup
    (sim.sweep.remove_partials)."""
    from . import claims

    removed = []
    for partial in found:
        name, _, pid = partial.name[1:].rpartition(".partial-")
        if not (pid.isdigit() and name):
            continue
        with claims.unclaimed(partial.parent / name) as owner:
            if owner is None or owner.pid != int(pid) or owner.host != claims.HOST:
                continue
            shutil.rmtree(partial, ignore_errors=True)
        if not partial.exists():
            removed.append((partial, owner))
    return removed


def remove_dead_claims(parent: Path) -> list[Path]:
    """Remove the claim files (`.NAME.lock`, sim.claims) in `parent` of runs or studies killed on this
    host before they wrote anything: no folder NAME, no partial folder, and no process holding the
    claim. A killed run's claim stayed behind for good (a user trial's `kill -9` left one in
    results/runs that no later run removed). Where NAME exists, or the claim is another host's, it
    stays (a sweep's job folders keep theirs: they tell an interrupted job from one never run)."""
    import glob

    from . import claims

    try:
        found = sorted(parent.glob(".*.lock"))
    except OSError:
        return []
    removed = []
    for lock in found:
        name = lock.name[1:-len(".lock")]
        if not name or (parent / name).exists() or any(parent.glob(f".{glob.escape(name)}.partial-*")):
            continue
        with claims.unclaimed(parent / name) as owner:
            if owner is None or owner.host != claims.HOST:
                continue
            lock.unlink(missing_ok=True)  # under its shared lock (a claimer at that instant is told "busy")
        removed.append(lock)
    return removed


def replace_text(path: Path, text: str) -> None:
    """Write `path` whole or not at all: a temporary beside it, renamed over it; the temporary is removed
    if anything fails (a full disk left `.NAME.tmp-PID` files behind)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # the error (or Ctrl-C) that stopped the write is the one to raise
            tmp.unlink(missing_ok=True)
        raise


def machine_facts() -> dict:
    """Where the run happened: not needed to reproduce it, kept apart from what is."""
    return {"platform": platform.platform(), "python": sys.executable, "cwd": os.getcwd(),
            "package": str(Path(__file__).resolve().parent)}


def kind_of(path: Path) -> str | None:
    """The `kind` in a study folder's manifest.json ('forecast', 'plan', 'calibration'), or None (a run,
    or no readable manifest)."""
    m = Path(path) / "manifest.json"
    try:
        kind = json.loads(m.read_text(encoding="utf-8")).get("kind") if m.exists() else None
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) and kind else None


def single_runs(folder: Path) -> list[str]:
    """The finished single runs among a folder's subfolders (sorted names): finished folders whose
    manifest records no job number. Every sweep job records one (any launcher; a rerun keeps it), so
    these were run alone, and gathered or aimed here: they are not one sweep's jobs."""
    found = []
    for sub in sorted(folder.iterdir()):
        if sub.name.startswith(".") or not (sub / COMPLETE_MARKER).is_file():
            continue
        try:
            manifest = json.loads((sub / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a damaged job: the commands that read it say so
        if isinstance(manifest, dict) and "job_num" not in manifest:
            found.append(sub.name)
    return found


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def complete_text(manifest: Path) -> str:
    """Content of COMPLETE: 'ok' and the manifest's own checksum (the manifest lists every other file)."""
    return f"ok\nmanifest.json sha256 {sha256(manifest)}\n"


def series_columns(series) -> dict[str, np.ndarray]:
    """The series as columns: numpy arrays, typed as pandas would type them (float64 for the
    figures, strings for `date`). Takes the model's columns (`WorkforceModel.series_columns`) or a
    DataFrame, so the run path needs no pandas."""
    if isinstance(series, dict):
        return {name: np.asarray(values) for name, values in series.items()}
    return {name: series[name].to_numpy() for name in series.columns}


def _sum(values: np.ndarray) -> float:
    """pandas' Series.sum: missing values as zero, numpy's (pairwise) sum of the rest."""
    v = np.asarray(values, dtype=np.float64)
    return float(np.where(np.isnan(v), 0.0, v).sum())


def _mean(values: np.ndarray) -> float:
    """pandas' Series.mean: the sum without missing values over their count (NaN if none)."""
    v = np.asarray(values, dtype=np.float64)
    n = int((~np.isnan(v)).sum())
    return _sum(v) / n if n else float("nan")


def summarise(series, cfg: RunConfig) -> dict:
    """Target-year figures: December stocks, the year's mean income and flows, and cumulative spend."""
    cols = series_columns(series)
    year = str(cfg.horizon.end_year)
    in_year = np.array([str(d).startswith(year) for d in cols["date"]], dtype=bool)
    stocks = ["workers", "skilled_workers", "high_skill_workers", "high_skill_share", "high_skill_share_workforce"]
    stocks += [f"level_{k}" for k in range(N_LEVELS)]
    incomes = ["income_mean", "income_median", "income_p10", "income_p90", "middle_income_share"]
    flows = ["promotions_certification", "promotions_competition", "promotions_studio", "promotions_appointment",
             "entries", "exits"]
    spend_cols = [f"spend_{lv}_{fu}" for lv, fu in SPEND_ACCOUNTS]
    if cfg.draw is None:
        from .config import off_calibration

        off = off_calibration(cfg)
        at = ("the central parameter set (sim/data/calibration.yaml)" if not off else
              f"parameter values other than the calibrated central set (sim/data/calibration.yaml) for "
              f"{', '.join(off)} (config.yaml holds the values run)")
        what = (f"one run at {at} and the central structural inputs: no parameter or structural uncertainty; run "
                "skillsim-forecast for bands that carry them")
    else:
        what = (f"one run at joint draw {cfg.draw} of the calibration ensemble and the structural ranges; "
                f"aggregate a sweep over draw for bands")
    return {
        "target_year": cfg.horizon.end_year,
        "uncertainty": what,
        "start": {"date": str(cols["date"][0]), "high_skill_share": float(cols["high_skill_share"][0]),
                  "workers": float(cols["workers"][0]), "income_mean": float(cols["income_mean"][0])},
        "at_end": {"date": str(cols["date"][-1]), **{c: float(cols[c][-1]) for c in stocks}},
        "target_year_mean": {c: _mean(cols[c][in_year]) for c in incomes},
        "target_year_flows": {c: _sum(cols[c][in_year]) for c in flows},
        "spend_cumulative": {c.removeprefix("spend_"): _sum(cols[c]) for c in spend_cols + ["spend_total"]},
        "spend_target_year": {c.removeprefix("spend_"): _sum(cols[c][in_year]) for c in spend_cols + ["spend_total"]},
    }


def csv_text(cols: dict[str, np.ndarray]) -> str:
    """The series as CSV, byte for byte what pandas' `to_csv(index=False)` writes: numbers as numpy
    prints them (`astype(str)`, the shortest repr that reads back exactly), missing values empty, the
    csv module's minimal quoting, one line per month."""
    cells = []
    for values in cols.values():
        if values.dtype.kind == "f":
            text = values.astype(str).astype(object)
            text[np.isnan(values)] = ""
        else:
            text = values.astype(str)
        cells.append(text)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(list(cols))
    writer.writerows(zip(*cells))
    return out.getvalue()


def write_parquet(cols: dict[str, np.ndarray], path: Path) -> bool:
    """The series as Parquet where pyarrow is installed (snappy, as pandas writes it); False if not.

    The columns are handed to pyarrow as buffers (`Array.from_buffers`): `pa.array` would first
    import pandas to check whether it was given a pandas object, a quarter of a second the run does
    not need. Text columns are built as `string` arrays (32-bit offsets) directly: casting from
    `large_string` would import pyarrow.compute, another 0.06 s."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    arrays = []
    for values in cols.values():
        if values.dtype.kind in "OUS":
            encoded = [str(v).encode("utf-8") for v in values]
            offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
            np.cumsum([len(b) for b in encoded], out=offsets[1:])
            if offsets[-1] >= 1 << 31:  # beyond 32-bit offsets: pyarrow's cast says so
                arrays.append(pa.Array.from_buffers(pa.large_string(), len(encoded),
                                                    [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])
                              .cast(pa.string()))
                continue
            arrays.append(pa.Array.from_buffers(pa.string(), len(encoded), [
                None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))]))
        else:
            data = np.ascontiguousarray(values, dtype=np.float64)
            arrays.append(pa.Array.from_buffers(pa.float64(), data.size, [None, pa.py_buffer(data)]))
    pq.write_table(pa.Table.from_arrays(arrays, names=list(cols)), path)
    return True


def _json(obj) -> str:
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"not JSON serialisable: {type(o)}")

    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False, default=default) + "\n"


#: [True] while a single run writes the folder that ends its command (`publishing_the_result`); not a sweep
#: job's, after which the sweep goes on
_ENDS_COMMAND: list[bool] = []


@contextlib.contextmanager
def publishing_the_result():
    """The folder written inside ends the command: an interrupt once it is being put in place is ignored
    (sim.entry.result_in_place), as a study's is."""
    _ENDS_COMMAND.append(True)
    try:
        yield
    finally:
        _ENDS_COMMAND.pop()


def _rename_into_place(tmp: Path, run_dir: Path, unique: bool) -> Path:
    """Rename the finished folder to `run_dir` (or, if `unique`, the first free `run_dir-N`)."""
    if _ENDS_COMMAND:
        from .entry import result_in_place

        result_in_place()  # an interrupt from here on would find the folder written
    target = run_dir
    for n in range(2, 1000):
        try:
            os.rename(tmp, target)  # replaces only an empty folder; fails if the name holds a run
            return target
        except OSError as exc:
            if not unique or exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                    raise OutputError(f"run folder {run_dir} already exists and is not empty; "
                                      "choose another hydra.run.dir") from None
                raise
            target = run_dir.with_name(f"{run_dir.name}-{n}")
    raise OutputError(f"no free folder name next to {run_dir}")


def enclosing_results(path: Path) -> tuple[Path, str] | None:
    """The finished run or study folder (manifest.json and COMPLETE), or the sweep folder
    (multirun.yaml), that `path` would be written inside, with what it is; None if none. A run written
    into a finished folder made it fail skillsim-verify (so skillsim-rerun refused it), and a single run
    inside a sweep's folder made skillsim-aggregate call the sweep a folder of single runs."""
    for parent in Path(os.path.abspath(path)).parents:
        try:
            if (parent / COMPLETE_MARKER).is_file() and (parent / "manifest.json").is_file():
                return parent, "a finished run's or study's folder"
            if (parent / "multirun.yaml").is_file():
                return parent, "a sweep's folder"
        except OSError:  # an unreadable parent: nothing to say about it
            return None
    return None


def refuse_inside_results(path: Path, field: str) -> None:
    """A one-line error if `path` lies inside finished results (enclosing_results), before anything is
    made there."""
    found = enclosing_results(path)
    if found is not None:
        from .errors import ConfigError

        raise ConfigError(field, str(path), f"a folder outside finished results: it is inside {found[0]}, "
                          f"{found[1]}, which would no longer verify or aggregate")


def prepare_target(run_dir: Path) -> None:
    """Refuse to write over a folder that holds anything; remove an empty one (made by Hydra).

    Removing it means an interrupted run leaves nothing under the target name.
    """
    if run_dir.exists():
        if not run_dir.is_dir() or any(run_dir.iterdir()):
            raise OutputError(f"run folder {run_dir} already exists and is not empty; choose another hydra.run.dir")
        try:
            run_dir.rmdir()
        except FileNotFoundError:  # removed meanwhile by a run that chose the same default name
            pass


def write_run(run_dir: Path, cfg: RunConfig, series, *, composed: dict | None = None,
              overrides: list[str] | None = None, started: datetime | None = None,
              extra: dict | None = None, unique: bool = False, machine: dict | None = None) -> Path:
    """Write a finished run to `run_dir` atomically; returns the final path. `series`: the model's
    columns (`WorkforceModel.series_columns()`) or the same as a DataFrame.

    `unique`: if `run_dir` is taken meanwhile (another run chose the same default name), write to the
    first free `run_dir-2`, `run_dir-3`, ... instead of failing; the rename itself decides, so two
    processes never pick the same folder.

    An OSError of the machine (no space left, permission denied, read-only, a folder that vanished)
    becomes an OutputError naming `run_dir` and the OS error; the temporary folder is removed first,
    so nothing half-written is left and a finished folder already at `run_dir` is not touched.
    """
    run_dir = Path(run_dir)
    tmp = partial_folder(run_dir)
    try:
        return _write_run(run_dir, tmp, cfg, series, composed=composed, overrides=overrides, started=started,
                          extra=extra, unique=unique, machine=machine)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise environment_fault(exc, run_dir) from None


def yaml_text(data) -> str:
    """`yaml.safe_dump(data, sort_keys=False, allow_unicode=True)`, written by libyaml's emitter where
    PyYAML has it: the same text (tests/test_cli.py compares them on every preset's config) in a
    fifth of the time, which a sweep pays once a job."""
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False, allow_unicode=True)


def _write_run(run_dir: Path, tmp: Path, cfg: RunConfig, series, *, composed, overrides,
               started, extra, unique, machine) -> Path:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        cols = series_columns(series)
        (tmp / "series.csv").write_text(csv_text(cols), encoding="utf-8")
        write_parquet(cols, tmp / "series.parquet")
        config_dict = composed if composed is not None else to_dict(cfg)
        # a joint draw's values replace the central ones this file lists: said where a reader of it looks
        head = (f"# draw: {cfg.draw} sets the behavioural parameters and structural inputs to joint draw {cfg.draw} of "
                "the calibration ensemble and the structural ranges;\n# the values this run used are summary.json's "
                "`config` (skillsim-rerun takes them from there)\n") if cfg.draw is not None else ""
        (tmp / "config.yaml").write_text(head + yaml_text(config_dict), encoding="utf-8")
        reproduce = {
            "seed": cfg.seed,
            "replicate": cfg.replicate,
            "run_seed": replicate_seed(cfg.seed, cfg.replicate),
            "versions": package_versions(),
            "git_commit": git_commit(),
        }
        summary = {**summarise(cols, cfg), "config": to_dict(cfg), "manifest": reproduce}
        (tmp / "summary.json").write_text(_json(summary), encoding="utf-8")
        files = sorted(p for p in tmp.iterdir() if p.is_file())
        manifest = {
            **reproduce,
            "region": cfg.region.name,
            "scenario": cfg.scenario,
            "n_agents": cfg.n_agents,
            "weight": cfg.weight,
            "command": user_command(),
            "overrides": list(overrides or []),
            "defaults": defaults_record(),
            **(extra or {}),
            "started": (started or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": {**machine_facts(), **(machine or {})},
            "files": {p.name: sha256(p) for p in files},
            "sizes": {p.name: p.stat().st_size for p in files},  # tells a truncated file from a changed one
        }
        (tmp / "manifest.json").write_text(_json(manifest), encoding="utf-8")
        # COMPLETE protects the manifest itself: skillsim-verify (sim.verify) checks both.
        (tmp / COMPLETE_MARKER).write_text(complete_text(tmp / "manifest.json"), encoding="utf-8")
        for p in tmp.iterdir():  # flush to disk before the rename makes the folder visible
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
        run_dir = _rename_into_place(tmp, run_dir, unique)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir


def progress_record(sweep_dir: Path) -> dict:
    """The progress record of the last sweep started in `sweep_dir` (sim.sweep.write_progress); {} for
    a folder without one (an older skillsim) or a record that cannot be read."""
    try:
        info = json.loads((Path(sweep_dir) / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def recorded_trials(sweep_dir: Path) -> int | None:
    """The trials an optimising sweeper (Optuna, Nevergrad) was asked for, from the progress record of
    the last sweep started in `sweep_dir`; None for a grid or a folder without the record."""
    info = progress_record(sweep_dir)
    total = info.get("total")
    return None if info.get("grid") or not isinstance(total, int) or total < 0 else total


def recorded_plan(sweep_dir: Path) -> tuple[int | None, list[str] | None]:
    """What the last sweep started in `sweep_dir` planned, from its progress record: the number of its
    distinct jobs, if its sweeper's plan is a known grid (Hydra's basic sweeper; None otherwise, as an
    optimiser's trials may repeat a folder), and their folder names where it recorded them
    (sim.sweep.planned_folders). (None, None) for a folder without the record (an older skillsim)."""
    info = progress_record(sweep_dir)
    if not info.get("grid"):
        return None, None
    total, names = info.get("total"), info.get("jobs")
    return (int(total) if isinstance(total, int) and total >= 0 else None,
            [str(n) for n in names] if isinstance(names, list) else None)

