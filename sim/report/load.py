"""Read a run folder or a sweep folder into tidy frames; nothing else (no live model objects).

Both kinds become one `Folder`: a list of settings (a single run is one setting with one replicate)
and long frames keyed by `setting` and `replicate`. A setting is the swept parameters without
`replicate`/`seed`; its id is 'key=value,...' in the sweep's own order ('run' for a run folder).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from ..aggregate import ENSEMBLE_METRICS, QUANTILES, REPLICATE_KEYS
from ..errors import DataError
from ..results import COMPLETE_MARKER, single_runs
from ..sources import DEFAULT_TARGETS
from .text import SCENARIO_ORDER

RUN_FILES = ("series.csv", "summary.json", "config.yaml")
SWEEP_TABLES = ("runs.csv", "ensemble.csv")
STATS = ["n", "mean", *QUANTILES]  # n, mean, q05, q25, median, q75, q95


@dataclass
class Setting:
    """One setting of a sweep (or the single run of a run folder)."""

    id: str
    params: dict
    scenario: str
    region: dict
    target_year: int
    n: int
    is_baseline: bool = False
    colour: str = "#000000"
    linestyle: str = "-"  # solid for the first round of colours, then dashed, dotted, dash-dot


@dataclass
class Folder:
    path: Path
    kind: str  # "run" or "sweep"
    keys: list[str]
    settings: list[Setting]
    config: dict
    long: pd.DataFrame  # setting, run, replicate, date, metric, value (run: job folder name)
    ensemble: pd.DataFrame  # setting, date, metric, n, mean, q05, q25, median, q75, q95
    runs: pd.DataFrame  # one row per finished replicate: setting, replicate, target-year figures
    effects: pd.DataFrame | None  # paired effects against the baseline setting (sweeps)
    manifest: dict = field(default_factory=dict)
    unfinished: int = 0  # a sweep's jobs that did not finish (failed or missing): left out of every figure
    #: what a setting's runs differ in (of replicate, seed, draw): draws carry the parameters' and structural
    #: inputs' uncertainty, replicates and seeds only the agents' noise
    varies: tuple[str, ...] = ()

    @property
    def target_year(self) -> int:
        return max(s.target_year for s in self.settings)

    @property
    def region(self) -> dict:
        return self.settings[0].region

    @functools.cached_property
    def label_digits(self) -> int:
        """Significant digits of the parameter values in the settings' labels (sim.report.text.label_digits)."""
        from .text import label_digits

        return label_digits([s.params for s in self.settings])

    @property
    def one_run_each(self) -> bool:
        """Every setting has a single run (an Optuna sweep's trials): no spread, no interval to state."""
        return max(s.n for s in self.settings) == 1

    @property
    def n_replicates(self) -> int:
        return min(s.n for s in self.settings)

    @property
    def replicates_text(self) -> str:
        """Runs per setting as the report states them: "8", or "8-10" where the settings have different
        numbers (an unfinished sweep; the report said 8 where the baseline's means were over 10)."""
        lo, hi = self.n_replicates, max(s.n for s in self.settings)
        return str(lo) if lo == hi else f"{lo}-{hi}"

    @property
    def targets_file(self) -> str:
        return self.config.get("targets_file") or str(DEFAULT_TARGETS)

    def setting(self, sid: str) -> Setting:
        return next(s for s in self.settings if s.id == sid)


def _read_csv(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as CSV ({exc})") from None
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot be read as YAML ({exc})") from None
    if not isinstance(data, dict) or "region" not in data:
        raise DataError(f"{path}: not a skillsim config (no region)")
    return data


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read as JSON ({exc})") from None


def value_text(v) -> str:
    """A parameter value as text, the same whichever table it was read from (1 and 1.0 -> '1')."""
    if isinstance(v, float) and not math.isnan(v) and v.is_integer():
        return str(int(v))
    return str(v)


def setting_ids(df: pd.DataFrame, keys: list[str]) -> pd.Series:
    if not keys:
        return pd.Series("all", index=df.index)
    parts = [df[k].map(lambda v, k=k: f"{k}={value_text(v)}") for k in keys]
    out = parts[0]
    for p in parts[1:]:
        out = out + "," + p
    return out


def _sort_key(params: dict) -> tuple:
    key = []
    for k, v in params.items():
        if k == "scenario" and v in SCENARIO_ORDER:
            key.append((0, SCENARIO_ORDER.index(v), ""))
        elif isinstance(v, (int, float)):
            key.append((1, float(v), ""))
        else:
            key.append((2, 0.0, str(v)))
    return tuple(key)


def load(path: str | Path) -> Folder:
    """Read a run folder or a sweep folder; DataError if it is neither."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such folder")
    if not p.is_dir():
        raise DataError(f"{p} is not a folder; give a run folder or a sweep folder")
    if (p / "runs.csv").exists():
        from ..results import kind_of

        if not (p / "manifest.json").exists() and kind_of(p.parent) == "backtest":
            raise DataError(f"{p} is one origin of the backtest in {p.parent}, not a folder of its own; give the "
                            f"backtest (skillsim-report {p.parent}): its scores are in backtest.csv")
        return load_sweep(p)
    if all((p / f).exists() for f in RUN_FILES):
        if not (p / COMPLETE_MARKER).exists():
            raise DataError(f"{p}: unfinished run folder (no {COMPLETE_MARKER} marker)")
        return load_run(p)
    if any((d / COMPLETE_MARKER).exists() for d in p.iterdir() if d.is_dir()):
        singles = single_runs(p)
        if singles:  # skillsim-aggregate refuses them too
            from ..results import kind_of

            kinds = {kind_of(p / name) or "run" for name in singles}  # a folder of plans is not one of runs
            what = "run" if kinds == {"run"} else "skillsim" if len(kinds) > 1 else next(iter(kinds))
            raise DataError(f"{p} holds {what} folders, not a sweep's jobs; give one of them "
                            f"(skillsim-report {p / singles[0]})"
                            + (", or run the settings to compare as one sweep (skillsim -m)" if what == "run" else ""))
        raise DataError(f"{p}: sweep folder without its tables (runs.csv); build them with skillsim-aggregate {p}")
    raise DataError(f"{p} is not a run folder (series.csv, summary.json, config.yaml) "
                    f"or a sweep folder (runs.csv, ensemble.csv)")


def load_run(p: Path) -> Folder:
    series = _read_csv(p / "series.csv", ("date", "high_skill_share", "income_mean", "level_0"))
    summary = _read_json(p / "summary.json")
    config = _read_yaml(p / "config.yaml")
    manifest = _read_json(p / "manifest.json") if (p / "manifest.json").exists() else {}
    long = series.melt(id_vars="date", var_name="metric", value_name="value")
    long.insert(0, "replicate", int(config.get("replicate", 0)))
    long.insert(0, "run", p.name)
    long.insert(0, "setting", "run")
    ens = long[long["metric"].isin(ENSEMBLE_METRICS)].drop(columns=["run", "replicate"]).copy()
    ens = ens.rename(columns={"value": "median"})
    ens["n"], ens["mean"] = 1, ens["median"]
    for q in QUANTILES:
        if q != "median":
            ens[q] = math.nan
    ens = ens[["setting", "date", "metric", *STATS]]
    row = {"setting": "run", "job": p.name, "replicate": int(config.get("replicate", 0)), "status": "ok",
           "scenario": config.get("scenario", ""), "target_year": summary["target_year"],
           **{k: v for k, v in summary["at_end"].items() if k != "date"},
           **{f"{k}_target_year": v for k, v in summary["target_year_mean"].items()},
           **{f"spend_cum_{k}": v for k, v in summary["spend_cumulative"].items()}}
    setting = Setting("run", {}, config.get("scenario", ""), config["region"], int(summary["target_year"]), 1,
                      is_baseline=True)
    return Folder(p, "run", [], [setting], config, long, ens.reset_index(drop=True), pd.DataFrame([row]), None,
                  manifest)


def load_sweep(p: Path) -> Folder:
    runs = _read_csv(p / "runs.csv", ("job", "status", "replicate"))
    unfinished = int((runs["status"] != "ok").sum())
    from ..results import recorded_plan

    _, planned = recorded_plan(p)  # jobs of the sweep's plan that never started have no row in runs.csv
    unfinished += len(set(planned or ()) - set(runs["job"].astype(str)))
    runs = runs[runs["status"] == "ok"].copy()
    if runs.empty:
        raise DataError(f"{p}: no finished jobs in runs.csv")
    need = ("high_skill_share", "income_mean_target_year", "spend_cum_total", "target_year", "region")
    missing = [c for c in need if c not in runs.columns]
    if missing:
        raise DataError(f"{p / 'runs.csv'}: missing column(s) {', '.join(missing)}")
    ens = _read_csv(p / "ensemble.csv", ("date", "metric", *STATS))
    keys = [c for c in ens.columns[: list(ens.columns).index("date")] if c not in REPLICATE_KEYS]
    missing = [k for k in keys if k not in runs.columns]
    if missing:
        raise DataError(f"{p}: runs.csv and ensemble.csv disagree (ensemble setting {missing[0]!r})")
    if (p / "series_long.parquet").exists():
        try:
            long = pd.read_parquet(p / "series_long.parquet")
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(f"{p / 'series_long.parquet'}: cannot be read ({exc})") from None
    elif (p / "series_long.csv").exists():
        long = _read_csv(p / "series_long.csv")
    else:
        raise DataError(f"{p}: no series_long.parquet or series_long.csv; rebuild with skillsim-aggregate {p}")
    for name, df in (("series_long", long),):
        missing = [c for c in ("job", "date", "metric", "value", *keys) if c not in df.columns]
        if missing:
            raise DataError(f"{p / name}: missing column(s) {', '.join(missing)}")
    runs["setting"] = setting_ids(runs, keys)
    ens.insert(0, "setting", setting_ids(ens, keys))
    ens = ens[["setting", "date", "metric", *STATS]]
    long = long[long["job"].isin(runs["job"])]
    rep = runs.set_index("job")["replicate"]
    long = pd.DataFrame({"setting": long["job"].map(runs.set_index("job")["setting"]), "run": long["job"],
                         "replicate": long["job"].map(rep), "date": long["date"].astype(str),
                         "metric": long["metric"], "value": long["value"].astype(float)})
    effects = None
    if (p / "effects.csv").exists():
        effects = _read_csv(p / "effects.csv", ("n_pairs", "cost_per_additional_high_skill_worker", "is_baseline"))
        effects.insert(0, "setting", setting_ids(effects, keys))
    settings = []
    for sid, grp in runs.groupby("setting", sort=False):
        first = grp.iloc[0]
        cfg = _read_yaml(p / first["job"] / "config.yaml")
        params = {k: first[k] for k in keys}
        params = {k: (v.item() if hasattr(v, "item") else v) for k, v in params.items()}
        is_base = bool(effects is not None and effects.loc[effects["setting"] == sid, "is_baseline"].astype(str)
                       .str.lower().eq("true").any())
        settings.append(Setting(sid, params, str(first.get("scenario", cfg.get("scenario", ""))), cfg["region"],
                                int(first["target_year"]), int(len(grp)), is_base))
    if not any(s.is_baseline for s in settings):
        settings[0].is_baseline = True
    settings.sort(key=lambda s: _sort_key(s.params))  # named scenarios in their usual order, numbers ascending
    first_job = runs.iloc[0]["job"]
    config = _read_yaml(p / first_job / "config.yaml")
    manifest = _read_json(p / first_job / "manifest.json") if (p / first_job / "manifest.json").exists() else {}
    varies = tuple(k for k in REPLICATE_KEYS if k in runs.columns
                   and (runs.groupby("setting", sort=False)[k].nunique(dropna=False) > 1).any())
    return Folder(p, "sweep", keys, settings, config, long.reset_index(drop=True), ens.reset_index(drop=True),
                  runs.reset_index(drop=True), effects, manifest, unfinished, varies)


def wide(folder: Folder, metrics: list[str]) -> pd.DataFrame:
    """Columns setting, run, replicate, date and the requested metrics (one row per run and month)."""
    sub = folder.long[folder.long["metric"].isin(metrics)]
    present = set(sub["metric"].unique())
    missing = [m for m in metrics if m not in present]
    if missing:
        raise DataError(f"{folder.path}: the series have no {', '.join(missing)}")
    out = sub.set_index(["setting", "run", "replicate", "date", "metric"])["value"].unstack("metric").sort_index()
    out.columns.name = None
    return out[metrics].reset_index()
