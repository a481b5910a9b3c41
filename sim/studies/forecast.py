"""`skillsim-forecast`: the forecast of a region with the uncertainty of its calibrated parameters and
the assumptions without a source (drawn together in the calibration ensemble), its structural inputs
and its agents' noise (docs/model.md section 11).

The ensemble crosses `params` members of the calibration ensemble (parameter uncertainty: the fitted
parameters and the 24 numeric assumptions without a source, each member a joint draw) with
`structural` points of the preset's structural ranges (the growth path, status-quo lever intensities
and the like) and runs `replicates` replicates in each cell (stochastic noise). Every run continues
the region's simulated history (sim.history), so the forecast carries on from the history the
calibration fitted. The folder it writes has the sweep tables' format:

- `ensemble.csv`: date, metric, n, mean, q05, q25, median, q75, q95 across all runs (each run is an
  equally likely draw of the three sources), for the high-skill share (over skilled workers and over
  the workforce), mean and median income;
- `runs.csv`: one row per run: cell, member, structural values, replicate, seeds, end-year figures;
- `variance.csv`: for each December and metric, the variance from parameters, structural inputs,
  their interaction and stochastic noise (sim.studies.variance), and each one's share;
- `manifest.json` (command, options, seeds, versions, ensemble provenance, checksums) and `COMPLETE`.

Written whole or not at all (a hidden temporary folder, renamed). The same options give the same
tables byte for byte, however many processes run them. Plain `skillsim` stays one run at the central
parameter set and central structural inputs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import RunConfig, to_dict
from ..entry import result_in_place
from ..errors import ConfigError, OutputError, quiet_when_output_closed
from .options import config_override, key_values, path_option, releases_claims
from ..results import (COMPLETE_MARKER, RERUN_OF_ENV, _json, calibration_checksums, complete_text, config_file_checksums, git_commit,
                       package_versions, partial_folder, sha256)
from ..streams import replicate_seed
from . import uncertainty, variance
from .batch import execution, run_batch

METRICS = ("high_skill_share", "high_skill_share_workforce", "income_mean", "income_median",
           "level_3_share", "level_4_share", "level_5_share")
QUANTILES = {"q05": 0.05, "q25": 0.25, "median": 0.5, "q75": 0.75, "q95": 0.95}
OPTIONS = {"params": 16, "structural": 8, "replicates": 2, "n_agents": 50000, "seed": None, "out": None}
USAGE = """usage: skillsim-forecast [region=NAME] [scenario=NAME] [OVERRIDE ...]
                         [params=16] [structural=8] [replicates=2] [n_agents=50000] [seed=S] [out=DIR]

The forecast of a region with all three sources of uncertainty: `params` sets of the calibration
ensemble (each the fitted parameters and the 24 assumptions without a source, drawn together) x
`structural` points of the preset's structural ranges x `replicates` seeds. Any other
key=value is a skillsim config override (as for `skillsim`). Writes ensemble.csv, runs.csv, long.csv,
variance.csv, members.csv, config.yaml, manifest.json and COMPLETE into out (default
results/forecasts/<time>_<region>_<scenario>).
Draw the fan chart and the variance decomposition with `skillsim-report DIR`."""


def read_series(model) -> pd.DataFrame:
    s = model.series()
    for k in (3, 4, 5):  # level shares among skilled workers (the published level mix)
        s[f"level_{k}_share"] = s[f"level_{k}"] / s["skilled_workers"]
    return s[["date", *METRICS]].copy()


@dataclasses.dataclass
class Cell:
    index: int
    member: int
    point: int
    structural: dict[str, float]


def design(cfg: RunConfig, params: int, structural: int, seed: int,
           ens: pd.DataFrame | None = None) -> tuple[list[Cell], pd.DataFrame]:
    """Cells of the crossed design: members spread evenly over the ensemble x hypercube points."""
    ens = uncertainty.load_ensemble() if ens is None else ens
    if params > len(ens):  # more would repeat members, and the labels would count runs that never ran
        raise ConfigError("params", params, f"at most {len(ens)}: the calibration ensemble holds {len(ens)} "
                          "parameter sets")
    members = np.unique(np.linspace(0, len(ens) - 1, params).round().astype(int)) if params < len(ens) \
        else np.arange(len(ens))
    points = uncertainty.structural_points(cfg, structural, seed)
    cells = [Cell(i * len(points) + j, int(m), j, pt) for i, m in enumerate(members) for j, pt in enumerate(points)]
    return cells, ens


def configs_for(cfg: RunConfig, cells: list[Cell], ens: pd.DataFrame, replicates: int) -> list[RunConfig]:
    out = []
    for c in cells:
        cc = uncertainty.apply_structural(uncertainty.member_config(cfg, ens.iloc[c.member]), c.structural)
        for r in range(replicates):
            out.append(dataclasses.replace(cc, replicate=c.index * replicates + r))
    return out


def ensemble_table(long: pd.DataFrame) -> pd.DataFrame:
    g = long.groupby(["date", "metric"], sort=True)["value"]
    out = g.agg(n="count", mean="mean")
    for name, q in QUANTILES.items():
        out[name] = g.quantile(q)
    return out.reset_index()


def variance_table(long: pd.DataFrame, n_members: int, n_points: int, replicates: int) -> pd.DataFrame:
    rows = []
    dec = long[long["date"].str.endswith("-12")]
    for (date, metric), grp in dec.groupby(["date", "metric"], sort=True):
        grp = grp.sort_values(["member_idx", "point", "replicate_in_cell"])
        y = grp["value"].to_numpy().reshape(n_members, n_points, replicates)
        comps = variance.decompose(y)
        sh = variance.shares(comps)
        for k in variance.COMPONENTS:
            rows.append({"date": date, "metric": metric, "component": k, "variance": comps[k], "share": sh[k],
                         "total_variance": float(np.var(y, ddof=1))})
    return pd.DataFrame(rows)


def forecast(cfg: RunConfig, *, params: int, structural: int, replicates: int, seed: int, log=print,
             ensemble: pd.DataFrame | None = None) -> dict:
    """Run the ensemble and build its tables (in memory); `ensemble` replaces the packaged one."""
    cells, ens = design(cfg, params, structural, seed, ensemble)
    runs_cfg = configs_for(cfg, cells, ens, replicates)
    log(f"forecast: {len(runs_cfg)} runs ({len({c.member for c in cells})} parameter sets x "
        f"{structural} structural points x {replicates} replicates), {cfg.n_agents} agents each")
    t0 = time.perf_counter()
    series = run_batch(runs_cfg, read_series)
    log(f"forecast: runs done in {time.perf_counter() - t0:.0f} s")
    frames, rows = [], []
    member_order = {m: i for i, m in enumerate(sorted({c.member for c in cells}))}
    k = 0
    end = str(cfg.horizon.end_year)
    for c in cells:
        for r in range(replicates):
            s, rc = series[k], runs_cfg[k]
            k += 1
            long = s.melt(id_vars="date", var_name="metric", value_name="value")
            long["run"] = k - 1
            long["member_idx"], long["point"], long["replicate_in_cell"] = member_order[c.member], c.point, r
            frames.append(long)
            last = s[s["date"] == f"{end}-12"].iloc[0]
            rows.append({"run": k - 1, "cell": c.index, "member": c.member, "point": c.point, "replicate": rc.replicate,
                         "seed": rc.seed, "run_seed": replicate_seed(rc.seed, rc.replicate),  # as a sweep's runs.csv
                         **{f"structural:{key}": v for key, v in c.structural.items()},
                         **{f"{m}_{end}": float(last[m]) for m in METRICS}})
    long = pd.concat(frames, ignore_index=True)
    # the parameter values each member ran with (runs.csv names members by their row of the ensemble, which a
    # later calibration replaces): the folder says what ran without the ensemble file of its day
    members = ens.iloc[sorted(member_order)].drop(columns=["member"], errors="ignore")
    members.insert(0, "member", sorted(member_order))  # the row, as runs.csv's member counts
    return {"ensemble": ensemble_table(long), "runs": pd.DataFrame(rows), "long": long,
            "variance": variance_table(long, len(member_order), structural, replicates), "cells": len(cells),
            "members": members.reset_index(drop=True)}


def refuse_existing(out: Path, what: str) -> None:
    """A study never writes into a folder that holds anything: one line, before its runs."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{what} folder {out} is a file, not a folder; choose another out=")
    if out.exists() and any(out.iterdir()):
        raise OutputError(f"{what} folder {out} already exists and is not empty; choose another out=")


def refuse_file_above(out: Path, what: str) -> None:
    """out= below a file (a_file/sub) said only "File exists" when its parent was made: name the file."""
    for above in Path(out).parents:
        if above.exists():
            if not above.is_dir():
                raise OutputError(f"{what} folder {out}: {above} is a file, not a folder; choose another out=")
            return


def _write_tables(folder: Path, tables: dict) -> None:
    for name, table in tables.items():
        if isinstance(table, pd.DataFrame):
            table.to_csv(folder / f"{name}.csv", index=False)
        elif name == "config":  # the central composed config (region labels, history, ranges; a rerun)
            import yaml

            (folder / "config.yaml").write_text(yaml.safe_dump(table, sort_keys=False, allow_unicode=True),
                                                encoding="utf-8")
        elif isinstance(table, dict):
            (folder / f"{name}.json").write_text(_json(table), encoding="utf-8")


def write_folder(out: Path, tables: dict, manifest: dict, what: str = "forecast",
                 subfolders: dict[str, dict] | None = None) -> Path:
    """Write the tables (every DataFrame as NAME.csv; `config` as config.yaml; any other dict as
    NAME.json), each of `subfolders`' tables into its folder alike, the manifest (every file by its
    path in the folder) and COMPLETE atomically: a hidden temporary folder, renamed."""
    out = Path(out)
    refuse_existing(out, what)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_folder(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_tables(tmp, tables)
        for sub, sub_tables in (subfolders or {}).items():
            (tmp / sub).mkdir()
            _write_tables(tmp / sub, sub_tables)
        seal(tmp, manifest)
        if out.exists():
            out.rmdir()
        result_in_place()  # an interrupt from here on would find the folder written (sim.entry)
        os.rename(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.filename is None:  # a table's write failing as it is flushed names no file (a full disk): the
            exc.filename = str(out)  # line said "cannot write the forecast folder" (a user trial); name it
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def seal(folder: Path, manifest: dict) -> None:
    """Write `manifest` with every file of `folder` (its path there, checksum and size) and the COMPLETE
    marker that protects it: what skillsim-verify and skillsim-report check."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    names = {p: p.relative_to(folder).as_posix() for p in files}
    rerun_of = os.environ.get(RERUN_OF_ENV)
    if rerun_of:  # a study skillsim-rerun runs again: which folder, as a run's rerun says
        try:
            manifest = {**manifest, "rerun_of": json.loads(rerun_of)}
        except ValueError:
            pass
    ran = execution()  # how its runs ran (processes, passes): not needed to reproduce it
    if ran is not None:
        manifest = {**manifest, "execution": ran}
    manifest = {**manifest, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "files": {names[p]: sha256(p) for p in files}, "sizes": {names[p]: p.stat().st_size for p in files}}
    (folder / "manifest.json").write_text(_json(manifest), encoding="utf-8")
    (folder / COMPLETE_MARKER).write_text(complete_text(folder / "manifest.json"), encoding="utf-8")


def parse(argv: list[str]) -> tuple[dict, list[str]]:
    opts, overrides = dict(OPTIONS), []
    for key, value in key_values(argv, USAGE, "skillsim-forecast"):
        if key in ("params", "structural", "replicates", "n_agents", "seed"):
            try:
                opts[key] = int(value)
            except ValueError:
                raise ConfigError(key, value, "an integer") from None
            # each source of uncertainty needs two draws or more for its share of the variance (one set
            # or one point has no spread: its share would read 0%)
            lo = 2 if key in ("replicates", "params", "structural") else 1 if key != "seed" else 0
            if opts[key] < lo:
                why = {"params": "one parameter set has no spread to measure",
                       "structural": "one structural point has no spread to measure",
                       "replicates": "one replicate per point leaves the agents' own noise unmeasured"}
                raise ConfigError(key, opts[key], f"an integer >= {lo}" + (f" ({why[key]})" if key in why else ""))
            if key in ("n_agents", "seed"):
                overrides.append(f"{key}={value}")
        elif key == "out":
            opts["out"] = path_option(key, value)
        else:
            overrides.append(config_override(key, value, "skillsim-forecast", OPTIONS, sets=("draw", "replicate")))
    if not any(o.startswith("n_agents=") for o in overrides):
        overrides.append(f"n_agents={opts['n_agents']}")
    return opts, overrides


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    from .options import run_command

    run_command(run, "skillsim-forecast", argv, what="forecast folder", resumable=False)


@releases_claims
def run(argv: list[str]) -> Path:
    from ..cli import compose_config
    from .calibrate import held_assumptions

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    opts, overrides = parse(argv)
    cfg = compose_config(overrides)
    config_files = config_file_checksums(overrides)  # as the runs read them, not as they are at the end
    # a structural input or calibrated parameter given here was replaced in every run without a word
    uncertainty.draw_given(cfg, overrides, 0, by="skillsim-forecast")
    seed = cfg.seed if opts["seed"] is None else opts["seed"]
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = Path(opts["out"] or f"results/forecasts/{stamp}_{cfg.region.name}_{cfg.scenario}")
    from .options import check_writable

    out = check_writable(out, "forecast", unique=opts["out"] is None)  # before the runs: a folder that cannot
    # be written would lose them all
    if cfg.few_agents_note():
        log(f"warning: {cfg.few_agents_note()}")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    tables = forecast(cfg, params=opts["params"], structural=opts["structural"], replicates=opts["replicates"],
                      seed=seed, log=log)
    tables["config"] = to_dict(cfg)
    manifest = {"kind": "forecast", "command": ["skillsim-forecast", *argv], "overrides": overrides,
                "region": cfg.region.name, "scenario": cfg.scenario, "n_agents": cfg.n_agents, "seed": seed,
                "options": {k: opts[k] for k in ("params", "structural", "replicates")}, "runs": len(tables["runs"]),
                "target_year": cfg.horizon.end_year, "structural_ranges": cfg.region.structural,
                "drawn_assumptions": drawn_assumptions(tables["members"], cfg),
                "held_assumptions": held_assumptions(cfg), **calibration_checksums(), **config_files,
                "versions": package_versions("numba"),
                "git_commit": git_commit(), "started": started}
    path = write_folder(out, tables, manifest)
    headline(tables, cfg, log)
    log(f"wrote {path}")
    return path


def drawn_assumptions(members: pd.DataFrame, cfg: RunConfig) -> list[str]:
    """The assumptions without a source that the members ran with drawn values (the ensemble's columns
    named by their dotted keys; none in an ensemble written before they were drawn), but for those the
    forecast's setting holds (`calibrate.held_assumptions`): what the bands carry, as the report says it."""
    from .calibrate import UNSOURCED, held_assumptions

    held = held_assumptions(cfg)
    return [u.name for u in UNSOURCED if u.name in members.columns and u.name not in held]


def headline(tables: dict, cfg: RunConfig, log) -> None:
    ens, var = tables["ensemble"], tables["variance"]
    years = sorted({cfg.region.high_skill_target_year, cfg.horizon.end_year})
    for y in years:
        row = ens[(ens["date"] == f"{y}-12") & (ens["metric"] == "high_skill_share")]
        if row.empty:
            continue
        r = row.iloc[0]
        v = var[(var["date"] == f"{y}-12") & (var["metric"] == "high_skill_share")].set_index("component")["share"]
        parts = ", ".join(f"{k} {100 * v.get(k, float('nan')):.0f}%" for k in variance.COMPONENTS)
        log(f"{cfg.region.label_en} {y}-12 high-skill share: median {100 * r['median']:.1f}%, "
            f"90% band [{100 * r['q05']:.1f}, {100 * r['q95']:.1f}]; variance from {parts}")


if __name__ == "__main__":
    main()
