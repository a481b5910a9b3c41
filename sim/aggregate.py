"""Sweep tables, built from finished job folders only (never from live models).

`aggregate(sweep_dir)` reads every job folder of a sweep and writes, at the sweep folder's top level:
- `runs.csv`: one row per job: status, the swept parameters, seeds, target-year figures and cumulative
  spend by lever and funder, and (a sweep run by an optimising sweeper, Optuna or Nevergrad) the
  `objective` each job returned (`objective_<metric>` for several), or for a finished job whose
  objective could not be had, `objective_error` saying why; failed and unfinished jobs are listed with
  their error;
- `series_long.parquet` (or `.csv` without pyarrow): job, parameters, date, metric, value;
- `ensemble.csv`: per setting and date, median and 5/25/75/95% quantiles across replicates of the
  high-skill share and of income;
- `effects.csv`: each setting against the sweep's baseline setting, paired by replicate (same seeds):
  mean difference with a 95% interval in target-year high-skill share and mean income, and the cost
  per additional high-skill worker.
`skillsim-aggregate DIR` rebuilds them. A setting is the swept parameters except `replicate`/`seed`.
A sweep of one setting (replicates only) has nothing to compare: it gets no `effects.csv`, and the
log says so.

The tables are written together: each to a temporary file first, then all renamed into place, so a
full disk leaves the previous tables as they were. Aggregations of one folder take turns (a flock
on the folder), and each reads the job folders afresh, so two processes sharing a sweep cannot overwrite
newer tables with older ones. A job claimed by a live process (sim.claims) is listed as running.
An error is one line and a non-zero exit (sim.errors), never a traceback.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import io
import json
import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
from .lazy import pd

from . import claims
from .errors import (EXIT_INTERNAL, EXIT_OUTPUT, EXIT_PARTIAL, ConfigError, DataError, SkillsimError, debug_enabled,
                     environment_fault, internal_error, one_line_errors, quiet_when_output_closed)
from .metrics import SPEND_ACCOUNTS
from .results import COMPLETE_MARKER, FAILED_MARKER, kind_of, recorded_plan, recorded_trials, single_runs

REPLICATE_KEYS = ("replicate", "seed", "draw")  # not settings: what a setting is repeated over
ENSEMBLE_METRICS = ("high_skill_share", "income_mean", "income_median")
QUANTILES = {"q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75, "q95": 0.95}
TABLES = ("runs.csv", "ensemble.csv", "effects.csv", "series_long.parquet", "series_long.csv")
STATUSES = ("ok", "failed", "running", "missing")
NO_EFFECTS = ("effects.csv not written: the sweep has a single setting (only replicate, seed or draw vary), "
              "so there is no other setting to compare with a baseline")


def parse_override(text: str) -> tuple[str, str] | None:
    """'levers.training.intensity=2' -> ('levers.training.intensity', '2'); group adds lose the '+'."""
    if "=" not in text:
        return None
    key, value = text.split("=", 1)
    return key.lstrip("+~"), value


def _value(v: str):
    """Swept values as numbers where they are numbers, so tables sort and plot naturally."""
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def _number(v) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def same_value(a, b) -> bool:
    """Whether two setting values are the same however they are written: 0, 0.0 and 0.00 are one number;
    true/True and false/False one boolean; anything else compares as text."""
    fa, fb = _number(a), _number(b)
    if fa is not None and fb is not None:
        return math.isclose(fa, fb, rel_tol=1e-12, abs_tol=0.0)
    norm = lambda x: str(x).strip().lower() if str(x).strip().lower() in ("true", "false") else str(x).strip()  # noqa: E731
    return norm(a) == norm(b)


def setting_key(overrides: list[str]) -> tuple:
    """A job's settings however their values are written: `intensity=2` and `intensity=2.00` give one key
    (numbers compared exactly, as decimals; true/True one boolean; anything else as text)."""
    def canon(v: str):
        from decimal import Decimal, InvalidOperation

        try:  # exactly: 2 and 2.00 are one number, two seeds above 2**53 are not (as floats they were)
            d = Decimal(v.strip())
            if d.is_finite():
                return ("number", d)
        except InvalidOperation:
            pass
        low = v.strip().lower()
        return ("text", low if low in ("true", "false") else v.strip())
    return tuple(sorted((k, canon(v)) for k, v in filter(None, (parse_override(o) for o in overrides))))


def repeated_jobs(jobs: dict[str, dict]) -> dict[str, str]:
    """{job: the job it repeats} for jobs whose settings equal another's written otherwise (a sweep
    extended with `2.00` where it had run `2` runs the same jobs into new folders). Each setting keeps
    one job: a finished one before a failed one, then the first by job number and name. Counted twice,
    the same runs narrowed the intervals of effects.csv as if they were independent (a user trial: a
    non-significant effect became significant)."""
    kept: dict[tuple, str] = {}
    out: dict[str, str] = {}
    order = sorted((n for n, j in jobs.items() if j["status"] in ("ok", "failed") and j["overrides"]),
                   key=lambda n: (jobs[n]["status"] != "ok", jobs[n]["job_num"] is None, jobs[n]["job_num"] or 0, n))
    for name in order:
        key = setting_key(jobs[name]["overrides"])
        if key in kept:
            out[name] = kept[key]
        else:
            kept[key] = name
    return out


def matches(column: pd.Series, value) -> pd.Series:
    """Rows of `column` holding `value` (see same_value)."""
    return column.map(lambda x: same_value(x, value)).astype(bool)


def job_folders(sweep_dir: Path) -> list[Path]:
    """Job folders of a sweep: not hidden, and not a report written into the sweep (report.md)."""
    return sorted(p for p in sweep_dir.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and not (p / "report.md").exists())


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (PermissionError, IsADirectoryError) as exc:
        raise environment_fault(exc, path, "read") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable or damaged ({type(exc).__name__}); "
                        f"check it with skillsim-verify or re-run that job") from None


def listed_bytes(folder: Path, name: str, manifest: dict) -> bytes:
    """A finished job's file, as its manifest lists it: a file truncated or changed since the job wrote
    it (a copy cut short, an edit) is refused in one line rather than tabled, or read as garbage."""
    path = folder / name
    try:
        raw = path.read_bytes()
    except PermissionError as exc:
        raise environment_fault(exc, path, "read") from None
    except OSError as exc:
        raise DataError(f"{path}: unreadable or damaged ({type(exc).__name__}); {RUN_AGAIN.format(folder=folder, name=folder.name)}") from None
    digest = (manifest.get("files") or {}).get(name)
    if digest is not None and hashlib.sha256(raw).hexdigest() != digest:
        size = (manifest.get("sizes") or {}).get(name)
        how = (f"truncated: {len(raw):,} of {size:,} bytes" if isinstance(size, int) and len(raw) < size
               else "changed since the job wrote it")
        raise DataError(f"{path}: damaged ({how}); {RUN_AGAIN.format(folder=folder, name=folder.name)}")
    return raw


#: how a damaged job is run again: the sweep's command, repeated, checks each finished job's files and runs a
#: damaged one again, its folder kept aside (sim.sweep.set_aside); "re-run that job" named nothing that would
#: (a user trial: the resume skipped it, skillsim-rerun refused a damaged folder)
RUN_AGAIN = ("to run that job again, repeat the sweep's command: it keeps the damaged folder ({folder}) as a "
             "hidden .{name}.damaged-N and runs the job again (an optimiser's sweep may propose other settings "
             "and not come back to it: then move the folder out and run skillsim-aggregate on the sweep); "
             "skillsim-verify checks every file")


def read_job(folder: Path) -> dict:
    """Status, overrides and (if finished) summary of one job folder."""
    if (folder / COMPLETE_MARKER).exists():
        manifest = _read_json(folder / "manifest.json")
        try:
            summary = json.loads(listed_bytes(folder, "summary.json", manifest).decode("utf-8"))
        except ValueError as exc:
            raise DataError(f"{folder / 'summary.json'}: unreadable or damaged ({type(exc).__name__}); "
                            f"check it with skillsim-verify or re-run that job") from None
        return {"status": "ok", "overrides": manifest.get("overrides", []), "manifest": manifest,
                "summary": summary, "job_num": manifest.get("job_num")}
    if (folder / FAILED_MARKER).exists():
        info = _read_json(folder / FAILED_MARKER)
        return {"status": "failed", "overrides": info.get("overrides", []), "error": info.get("error", ""),
                "job_num": info.get("job_num"), "environment": bool(info.get("environment"))}
    owner = claims.holder(folder)
    if owner is not None and owner.alive():
        return {"status": "running", "overrides": [], "error": f"being run by {owner}", "job_num": None}
    if owner is None and claims.locked(folder):  # claimed, its owner's record not written yet
        return {"status": "running", "overrides": [], "error": "being run by another process", "job_num": None}
    if owner is None and _holds_files(folder):
        if any((folder / m).exists() for m in (COMPLETE_MARKER, FAILED_MARKER)):
            return read_job(folder)  # finished (and its claim released) since the markers were looked for
        # files, but neither a result, a failure record nor a job's claim: a job writes its folder only
        # while it holds the claim, so this is a folder of the user's own named like a job (`_aggregate`
        # keeps a folder the sweep made for one of its jobs as that job's, missing)
        return {"status": "not_a_job", "overrides": [], "error": "", "job_num": None}
    why = (f"no result: {owner} stopped before finishing it" if owner is not None
           else "no result (not run, or interrupted)")
    return {"status": "missing", "overrides": [], "error": why, "job_num": None}


def _holds_files(folder: Path) -> bool:
    """Whether `folder` holds anything but hidden files (a file manager's .DS_Store, NFS's .nfsXXXX, a
    FAILED record's temporary left by an interrupt)."""
    try:
        return any(not p.name.startswith(".") for p in folder.iterdir())
    except OSError:
        return False


def _runs_row(name: str, job: dict, params: list[str]) -> dict:
    given = dict(filter(None, (parse_override(o) for o in job["overrides"])))
    row = {"job": name, "status": job["status"]}
    for p in params:
        row[p] = _value(given[p]) if p in given else None
    if job["status"] != "ok":
        row["error"] = job.get("error", "")
        return row
    s, m = job["summary"], job["manifest"]
    cfg = s["config"]
    row.update(seed=cfg["seed"], replicate=cfg["replicate"], run_seed=m["run_seed"], region=cfg["region"]["name"],
               scenario=cfg["scenario"], n_agents=cfg["n_agents"], target_year=s["target_year"])
    for k, v in s["at_end"].items():
        if k != "date":
            row[k] = v
    for k, v in s["target_year_mean"].items():
        row[f"{k}_target_year"] = v
    for k, v in s["spend_cumulative"].items():
        row[f"spend_cum_{k}"] = v
    row["error"] = ""
    return row


def refuse_single_runs(sweep_dir: Path) -> None:
    """Single runs gathered into one folder are not a sweep: they may differ in region, horizon, seed
    or size as well as in what was meant to vary, and their "effects" would pair runs nobody set up to
    compare (results.single_runs: the report and a sweep's start ask the same)."""
    singles = single_runs(sweep_dir)
    kinds = {kind_of(sweep_dir / name) or "run" for name in singles}
    if singles and kinds != {"run"}:  # results/plans: "summary.json: unreadable or damaged" it said
        what = "skillsim" if len(kinds) > 1 else next(iter(kinds))
        raise DataError(f"{sweep_dir} holds {what} folders ({singles[0]}{' and more' if len(singles) > 1 else ''}), "
                        f"not the jobs of one sweep; skillsim-aggregate tables a sweep's jobs")
    if singles:
        more = f" and {len(singles) - 1} more" if len(singles) > 1 else ""
        raise DataError(f"{sweep_dir} holds single runs ({singles[0]}{more}), not the jobs of one sweep; to compare "
                        "settings run them as one sweep (skillsim -m KEY=A,B), or report one run with "
                        "skillsim-report RUN_FOLDER")


def swept_parameters(jobs: dict[str, dict]) -> list[str]:
    """Override keys that take more than one value across the jobs (plus replicate/seed if given)."""
    values: dict[str, set] = {}
    order: list[str] = []
    for job in jobs.values():
        for o in job["overrides"]:
            kv = parse_override(o)
            if kv is None:
                continue
            if kv[0] not in values:
                values[kv[0]] = set()
                order.append(kv[0])
            values[kv[0]].add(kv[1])
    return [k for k in order if len(values[k]) > 1 or k in REPLICATE_KEYS]


def write_atomic(df: pd.DataFrame, path: Path) -> None:
    write_tables({path: df})


TABLES_MANIFEST = "tables.json"  #: checksums of a sweep's tables (skillsim-verify checks them)


def write_tables(tables: dict[Path, pd.DataFrame], manifest: Path | None = None) -> None:
    """Write every table to a temporary file, then rename them all into place.

    If any write fails (a full disk), the temporary files are removed and the old tables stay as
    they were: the set of tables is never a mix of two aggregations. `manifest`: also write there
    the SHA-256 and size of each table (by file name), renamed into place last.
    """
    from .results import sha256

    tmps: dict[Path, Path] = {}
    try:
        for path, df in tables.items():
            tmp = tmps[path] = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            if path.suffix == ".parquet":
                df.to_parquet(tmp, index=False)
            else:
                df.to_csv(tmp, index=False)
        if manifest is not None:
            listed = {"files": {p.name: sha256(t) for p, t in tmps.items()},
                      "sizes": {p.name: t.stat().st_size for p, t in tmps.items()}}
            tmp = tmps[manifest] = manifest.with_name(f".{manifest.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps(listed, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        for path, tmp in tmps.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in tmps.values():
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
        raise


@contextmanager
def _aggregation_turn(sweep_dir: Path):
    """One aggregation of a folder at a time: an exclusive flock on the sweep folder itself, waited for.

    Locking the folder (not a file in it) leaves nothing behind and does not change the folder; the
    kernel drops the lock if the process dies.
    """
    fd = os.open(sweep_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def choose_baseline(runs: pd.DataFrame, settings: list[str], baseline: str | None) -> dict | None:
    """The reference setting: `key=value,...` if given; else scenario=baseline if swept; else the
    setting of the first job in sweep order (every swept list at its first value)."""
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        return None
    if baseline and not settings:
        raise ConfigError("baseline", baseline, "no baseline: this sweep has a single setting (only "
                          "replicate, seed or draw vary), so there is nothing to compare")
    if not settings:
        return None
    if baseline:
        parts = [x.strip() for x in baseline.split(",") if x.strip()]
        bad = [x for x in parts if parse_override(x) is None]
        if bad or not parts:  # 'nonsense' once fell back to the default baseline, silently
            raise ConfigError("baseline", baseline, f"key=value[,key=value...] of the swept settings, e.g. "
                                                      f"{settings[0]}={ok[settings[0]].iloc[0]}")
        want = dict(parse_override(x) for x in parts)
        for k in want:
            if k not in settings:
                raise ConfigError("baseline", baseline, f"key=value of the swept settings ({', '.join(settings)}); "
                                                          f"{k!r} is not one")
        match = ok
        for k, v in want.items():
            match = match[matches(match[k], v)]
        if match.empty:
            have = "; ".join(f"{k}: " + ", ".join(dict.fromkeys(str(x) for x in ok[k])) for k in want)
            ran = runs
            for k, v in want.items():  # the combination, in any job (a sweep that is no grid ran some only)
                ran = ran[matches(ran[k], v)]
            if ran.empty:  # no job of the sweep has it (a misspelt value): the user's mistake, not the sweep's state
                if all(matches(runs[k], v).any() for k, v in want.items()):  # each value ran, not together
                    combos = list(dict.fromkeys(",".join(f"{k}={r[k]}" for k in want) for _, r in runs.iterrows()))
                    have = "; ".join(combos[:8]) + (f"; and {len(combos) - 8} more" if len(combos) > 8 else "")
                raise ConfigError("baseline", baseline, f"a setting the sweep ran ({have})")
            raise DataError(f"baseline {baseline!r}: no finished job has that setting (finished: {have})")
        return {k: match.iloc[0][k] for k in settings}
    if "scenario" in settings and (ok["scenario"] == "baseline").any():
        first = ok[ok["scenario"] == "baseline"].sort_values("job_num").iloc[0]
    else:
        first = ok.sort_values("job_num").iloc[0]
    return {k: first[k] for k in settings}


def paired_effects(runs: pd.DataFrame, settings: list[str], base: dict) -> pd.DataFrame:
    """Each setting minus the baseline setting, paired on the replicate (same random streams) and, in a
    sweep over `draw`, on the draw (same parameters and structural inputs), so the interval of an
    effect carries the parameter and structural spread as well as the replicates'."""
    ok = runs[runs["status"] == "ok"].copy()
    key = [k for k in ("draw", "replicate") if k in ok.columns and ok[k].notna().all()] or ["replicate"]
    spend_cols = [f"spend_cum_{lv}_{fu}" for lv, fu in SPEND_ACCOUNTS]
    ok["_spend"] = ok[spend_cols].sum(axis=1)
    is_base = np.logical_and.reduce([matches(ok[k], v) for k, v in base.items()]) if base else None
    base_runs = ok[is_base].set_index(key)
    rows = []
    groups = ok.groupby(settings, dropna=False, sort=False) if settings else [((), ok)]
    for setting, grp in groups:
        setting = setting if isinstance(setting, tuple) else (setting,)
        g = grp.set_index(key)
        common = g.index.intersection(base_runs.index)
        row = dict(zip(settings, setting))
        row["n_pairs"] = int(len(common))
        d_share = (g.loc[common, "high_skill_share"] - base_runs.loc[common, "high_skill_share"]).to_numpy()
        d_income = (g.loc[common, "income_mean_target_year"]
                    - base_runs.loc[common, "income_mean_target_year"]).to_numpy()
        d_spend = (g.loc[common, "_spend"] - base_runs.loc[common, "_spend"]).to_numpy()
        d_high = (g.loc[common, "high_skill_workers"] - base_runs.loc[common, "high_skill_workers"]).to_numpy()
        for name, d in (("high_skill_share", d_share), ("income_mean", d_income)):
            mean, lo, hi = mean_interval(d)
            row[f"effect_{name}"], row[f"effect_{name}_ci_low"], row[f"effect_{name}_ci_high"] = mean, lo, hi
        row["extra_spend"] = float(d_spend.mean()) if d_spend.size else math.nan
        row["extra_high_skill_workers"] = float(d_high.mean()) if d_high.size else math.nan
        row["cost_per_additional_high_skill_worker"] = (
            row["extra_spend"] / row["extra_high_skill_workers"]
            if d_high.size and row["extra_high_skill_workers"] > 0 else math.nan)
        row["is_baseline"] = all(same_value(row[k], v) for k, v in base.items())
        rows.append(row)
    return pd.DataFrame(rows)


def mean_interval(d: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% t-interval of paired differences."""
    if d.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if d.size < 2:
        return mean, math.nan, math.nan
    from scipy import stats  # here, not at import: scipy.stats costs every run's start-up 0.3 s

    half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return mean, mean - half, mean + half


def _long(parts: list[tuple[str, list, pd.DataFrame]], params: list[str]) -> pd.DataFrame:
    """The sweep's series in long form, one block per job (`parts`: its name, its value of each
    swept parameter, its series): columns job, the parameters, date, metric, value. The frame that
    concatenating each job's series.melt(id_vars="date", var_name="metric", value_name="value"), with
    the job and its parameters inserted as columns, gives: the same values and dtypes in the same order
    (a parameter's column has the dtype pandas' concatenation gives its per-job scalars). Each series
    is read with its dates as the index, so that its metrics are one float block. Built from the
    arrays at once (tests/test_sweep.py compares the two)."""
    sizes, dates, metrics, values = [], [], [], []
    for _, _, series in parts:
        names = series.columns  # the metrics; the dates are the index (read_csv(index_col="date"))
        n = len(series)
        sizes.append(n * len(names))
        dates.append(pd.Series(series.index.take(np.tile(np.arange(n), len(names)))))
        metrics.append(pd.Series(names.repeat(n)))
        values.append(series.to_numpy().ravel("F"))
    block = np.repeat(np.arange(len(parts)), sizes)
    jobs = pd.Series([name for name, _, _ in parts])
    cols: dict[str, object] = {"job": jobs.take(block).reset_index(drop=True)}
    for i, p in enumerate(params):
        per_job = pd.concat([pd.Series([given[i]]) for _, given, _ in parts], ignore_index=True)
        kinds = {type(v) for v in per_job if v is not None} if per_job.dtype == object else set()
        if str in kinds and len(kinds) > 1:
            # words and numbers in one column (`x=${y},2`): Parquet takes one type a column, so all as text
            per_job = per_job.map(lambda v: v if v is None else str(v))
        cols[p] = per_job.take(block).reset_index(drop=True)
    cols["date"] = pd.concat(dates, ignore_index=True)
    cols["metric"] = pd.concat(metrics, ignore_index=True)
    cols["value"] = np.concatenate(values)
    return pd.DataFrame(cols)


def ensemble(long: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Median and quantiles across replicates per setting, date and metric."""
    sub = long[long["metric"].isin(ENSEMBLE_METRICS)]
    keys = settings + ["date", "metric"]
    grouped = sub.groupby(keys, sort=True, dropna=False)["value"]
    out = grouped.agg(n="count", mean="mean")
    for name, q in QUANTILES.items():
        out[name] = grouped.quantile(q)
    return out.reset_index()


def aggregate(sweep_dir: str | Path, baseline: str | None = None,
              log: Callable[[str], None] | None = None) -> dict:
    """Write the sweep tables; returns counts of jobs by status (ok, failed, running, missing) and
    `faults`, the failed jobs that the machine stopped (disk full, permission denied, ...).

    Raises DataError (a job folder unreadable or damaged, not a sweep folder) or OutputError (the
    tables cannot be written), each with a one-line message.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"{sweep_dir} is not a folder")
    try:
        if not job_folders(sweep_dir):
            raise DataError(f"{sweep_dir} is not a sweep folder: no job folders with results")
        with _aggregation_turn(sweep_dir):
            return _aggregate(sweep_dir, baseline, log or (lambda msg: None))
    except OSError as exc:
        raise environment_fault(exc, exc.filename or sweep_dir, "write") from None


def _aggregate(sweep_dir: Path, baseline: str | None, log: Callable[[str], None]) -> dict:
    try:
        folders = job_folders(sweep_dir)
    except OSError as exc:
        raise environment_fault(exc, sweep_dir, "read") from None
    if not recorded_plan(sweep_dir)[0] and (singles := single_runs(sweep_dir)) and len(singles) == len(folders):
        refuse_single_runs(sweep_dir)  # no job's folder among them: said before reading them as jobs
    jobs = {f.name: read_job(f) for f in folders}
    planned, own = recorded_plan(sweep_dir)
    for name in own or ():  # a folder the sweep made for a job of its own is that job's, whatever it holds
        if name in jobs and jobs[name]["status"] == "not_a_job":
            jobs[name] = {"status": "missing", "overrides": [], "error": "no result (not run, or interrupted)",
                          "job_num": None}
    strays = sorted(name for name, job in jobs.items() if job["status"] == "not_a_job")
    if strays:  # a user's folder named like a job was counted as a missing job (exit 5), a row of runs.csv
        log(f"left out of the tables: {', '.join(strays)} (files but no job's result, failure or claim: "
            "not a job folder)")
        jobs = {name: job for name, job in jobs.items() if job["status"] != "not_a_job"}
    if not jobs or all(j["status"] in ("missing", "running") for j in jobs.values()):
        raise DataError(f"{sweep_dir} is not a sweep folder: no job folders with results")
    repeats = repeated_jobs(jobs)
    if repeats:
        shown = sorted(repeats.items())[:3]
        log(f"counted once: {len(repeats)} job folder{'s' if len(repeats) > 1 else ''} repeat{'' if len(repeats) > 1 else 's'} "
            "another's settings written otherwise (" + "; ".join(f"{d} = {k}" for d, k in shown)
            + ("; ..." if len(repeats) > 3 else "") + "): left out of the tables; write each value one way "
            "when extending a sweep")
        jobs = {name: job for name, job in jobs.items() if name not in repeats}
    refuse_single_runs(sweep_dir)
    params = swept_parameters(jobs)
    settings = [p for p in params if p not in REPLICATE_KEYS]
    from .objective import recorded

    rows = [_runs_row(name, job, params) | {"job_num": job["job_num"]}
            | (recorded(sweep_dir / name) if job["status"] == "ok" else {}) for name, job in jobs.items()]
    runs = pd.DataFrame(rows).sort_values(["job_num", "job"], na_position="last").reset_index(drop=True)
    if "replicate" not in runs:
        runs["replicate"] = 0
    base = choose_baseline(runs, settings, baseline)  # a bad --baseline fails before anything is written
    tables = {sweep_dir / "runs.csv": runs}

    frames = []
    for name, job in jobs.items():
        if job["status"] != "ok":
            continue
        path = sweep_dir / name / "series.csv"
        try:
            s = pd.read_csv(io.BytesIO(listed_bytes(sweep_dir / name, "series.csv", job["manifest"])), index_col="date")
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable or damaged ({type(exc).__name__}); "
                            "check it with skillsim-verify or re-run that job") from None
        given = dict(filter(None, (parse_override(o) for o in job["overrides"])))
        frames.append((name, [_value(given[p]) if p in given else None for p in params], s))
    counts = {k: int((runs["status"] == k).sum()) for k in STATUSES}
    # a stopped sweep leaves no folder for the jobs it never began; where the sweep recorded its jobs'
    # folders, those are the ones counted (an earlier, different sweep may have left others here)
    if own is not None:  # a repeat left out of the tables ran: not a job never started
        counts["not_started"] = sum(name not in jobs and name not in repeats for name in own)
        counts["planned"] = len(own) - sum(name in repeats for name in own)
    else:
        counts["not_started"] = max(0, planned - len(jobs)) if planned is not None else 0
    # an optimiser's trials with the same settings share one folder: said once its study has finished (a
    # stopped or running one has simply not run them all)
    trials = recorded_trials(sweep_dir) if (sweep_dir / "optimization_results.yaml").is_file() else None
    counts["trials"] = trials if trials is not None and trials > len(jobs) else 0
    faults = [j for j in jobs.values() if j["status"] == "failed" and j.get("environment")]
    counts["faults"] = len(faults)
    counts["objective_failed"] = int(runs["objective_error"].notna().sum()) if "objective_error" in runs else 0
    counts["first_fault"] = faults[0]["error"] if faults else ""
    if frames:
        long = _long(frames, params)
        try:
            import pyarrow  # noqa: F401

            tables[sweep_dir / "series_long.parquet"] = long
        except ImportError:
            tables[sweep_dir / "series_long.csv"] = long
        tables[sweep_dir / "ensemble.csv"] = ensemble(long, settings)
        if base is not None:
            tables[sweep_dir / "effects.csv"] = paired_effects(runs, settings, base)
    try:
        before = (sweep_dir / TABLES_MANIFEST).read_bytes()
    except OSError:
        before = None
    try:
        write_tables(tables, sweep_dir / TABLES_MANIFEST)
        counts["tables_changed"] = before != (sweep_dir / TABLES_MANIFEST).read_bytes()
    except OSError as exc:
        raise environment_fault(exc, sweep_dir / "runs.csv" if len(tables) == 1 else sweep_dir, "write") from None
    if frames and not settings:
        log(NO_EFFECTS)
    stale = [sweep_dir / "effects.csv"] if not settings else []  # from an aggregation before this rule
    if frames:  # the long series in the other format, from an aggregation with(out) pyarrow
        stale += [p for p in (sweep_dir / "series_long.parquet", sweep_dir / "series_long.csv") if p not in tables]
    for path in stale:
        path.unlink(missing_ok=True)
    return counts


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    """`skillsim-aggregate DIR [--baseline key=value,...]`: rebuild a sweep's tables."""
    ap = one_line_errors(argparse.ArgumentParser(prog="skillsim-aggregate", description=__doc__.splitlines()[0]))
    ap.add_argument("sweep_dir", help="a sweep folder (Hydra's sweep directory)")
    ap.add_argument("--baseline", default=None,
                    help="reference setting for the paired effects, e.g. scenario=no_policy")
    args = ap.parse_args(argv)
    sweep_dir = Path(args.sweep_dir)
    try:
        counts = aggregate(sweep_dir, args.baseline, log=lambda msg: print(f"skillsim-aggregate: {msg}",
                                                                            file=sys.stderr))
        report(sweep_dir, counts)
    except SkillsimError as err:
        print(f"skillsim-aggregate: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except OSError as exc:
        print(f"skillsim-aggregate: {environment_fault(exc, exc.filename or sweep_dir, 'read')}", file=sys.stderr)
        raise SystemExit(EXIT_OUTPUT) from None
    except Exception as exc:  # a bug: one line, never a traceback (SKILLSIM_DEBUG=1 shows it)
        if debug_enabled():
            raise
        print(f"skillsim-aggregate: {internal_error(exc, f'aggregating {sweep_dir}')}", file=sys.stderr)
        raise SystemExit(EXIT_INTERNAL) from None
    raise SystemExit(exit_code(counts))


def exit_code(counts: dict) -> int:
    """0 if every job is finished or being run by another process; 4 if the machine stopped some
    (disk full, permission denied, ...); 5 if some failed, are missing or were never started."""
    if counts.get("faults"):
        return EXIT_OUTPUT
    return EXIT_PARTIAL if counts["failed"] or counts["missing"] or counts.get("not_started") else 0


def report(sweep_dir: Path, counts: dict) -> None:
    """One summary line, one line per job that is not finished, and one for the jobs of the sweep's
    grid that were never started (they have no folder to name)."""
    running = f", {counts['running']} running in another process" if counts.get("running") else ""
    unstarted = counts.get("not_started", 0)
    never = f", {unstarted} not started" if unstarted else ""
    no_value = counts.get("objective_failed", 0)
    objectives = (f" ({no_value} of them without an objective: see objective_error in runs.csv)" if no_value else "")
    trials = (f" (from {counts['trials']} trials asked for: trials with the same settings share one job folder)"
              if counts.get("trials") else "")
    print(f"{sweep_dir}: {counts['ok']} job{'' if counts['ok'] == 1 else 's'} ok{objectives}, {counts['failed']} failed, {counts['missing']} missing"
          f"{never}{running}{trials}; tables in {sweep_dir}", file=sys.stderr)
    runs = pd.read_csv(sweep_dir / "runs.csv")
    for _, r in runs[runs["status"] != "ok"].iterrows():
        print(f"  {r['status']}: {r['job']}: {r.get('error', '')}", file=sys.stderr)
    if no_value:
        for _, r in runs[runs["objective_error"].notna()].iterrows():
            print(f"  objective failed: {r['job']}: {r['objective_error']}", file=sys.stderr)
    for made in sorted(sweep_dir.glob("report*/report.md")) if counts.get("tables_changed") else []:
        # skillsim-report's, from the tables this aggregation replaced with others (a sweep extended)
        print(f"  note: {made.parent} was made from this sweep's earlier tables; run skillsim-report {sweep_dir} "
              f"again{'' if made.parent.name == 'report' else ' lang=' + made.parent.name[7:]} to bring it up to date",
              file=sys.stderr)
    if unstarted:
        planned = counts.get("planned", len(runs) + unstarted)
        # where the machine refused other jobs' writes (a full disk), a job may have found no room for its
        # folder at all: not "stopped before them" only (a user trial on a full disk)
        why = ("the sweep was stopped before them, or the machine could not make their folders, as it could "
               "not write the jobs above" if counts.get("faults") else "the sweep was stopped before them")
        print(f"  not started: {unstarted} of the sweep's {planned} jobs have no folder ({why}); to run them, "
              f"repeat the sweep command with hydra.sweep.dir={sweep_dir}", file=sys.stderr)


def note_a_better_earlier_trial(sweep_dir: Path, direction: object) -> None:
    """An optimising study run again into its folder without a saved study (hydra.sweeper.storage) is
    a new study: optimization_results.yaml gives the best of its own trials, while runs.csv also holds
    the earlier study's. Where one of those is better, one line says so and how to continue a study."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file() or str(direction).lower() not in ("minimize", "maximize"):
        return  # not an optimiser's folder, or several objectives
    try:
        import yaml

        best = yaml.safe_load(path.read_text(encoding="utf-8")).get("best_value")
        runs = pd.read_csv(sweep_dir / "runs.csv")
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return
    if not isinstance(best, (int, float)) or "objective" not in runs:
        return
    done = runs[runs["status"] == "ok"].dropna(subset=["objective"])
    if done.empty:
        return
    maximize = str(direction).lower() == "maximize"
    top = done.loc[done["objective"].idxmax() if maximize else done["objective"].idxmin()]
    margin = 1e-12 * max(1.0, abs(best))
    if (top["objective"] > best + margin) if maximize else (top["objective"] < best - margin):
        print(f"  note: optimization_results.yaml gives the best of this study's own trials ({best:.6g}); runs.csv "
              f"also holds an earlier study's, and one of them is better: {top['objective']:.6g}, job {top['job']}. "
              "A study run again continues the earlier one only from a saved study: hydra.sweeper.storage="
              "sqlite:///FILE hydra.sweeper.study_name=NAME", file=sys.stderr)


if __name__ == "__main__":
    main()
