"""The numbers behind each figure, as tidy frames derived from a `Folder` (written beside the figure).

Across replicates of a setting: quantiles are pandas' linear-interpolation quantiles, as in the sweep's
ensemble.csv (`sim.aggregate.ensemble`); intervals of a mean are 95% t-intervals
(`sim.aggregate.mean_interval`), the same formula as the paired effects in effects.csv.
"""

from __future__ import annotations

import math

import pandas as pd

from ..aggregate import QUANTILES, mean_interval
from ..ladder import HIGH_SKILL_MIN, N_LEVELS
from ..metrics import CHANNELS
from ..sources import observed_shares, target
from .load import STATS, Folder, wide

NATIONAL_TARGET_ROW = "nat_target_2025"
INCOME_METRICS = ("income_mean", "income_median", "middle_income_share")


def quantile_stats(values: pd.Series, keys: list[str]) -> pd.DataFrame:
    """n, mean and the ensemble quantiles of `values` grouped by `keys`; quantiles blank when n = 1."""
    g = values.groupby(keys, sort=True)
    out = g.agg(n="count", mean="mean")
    for name, q in QUANTILES.items():
        out[name] = g.quantile(q)
    single = out["n"] < 2
    for name in QUANTILES:
        if name != "median":
            out.loc[single, name] = math.nan
    return out.reset_index()


def fan(folder: Folder, metric: str) -> pd.DataFrame:
    """Per setting and month: n, mean and quantiles of `metric` across replicates.

    The sweep's ensemble.csv is used where it has the metric; other metrics are computed the same way
    from the long series."""
    ens = folder.ensemble[folder.ensemble["metric"] == metric]
    if ens.empty:
        w = wide(folder, [metric])
        ens = quantile_stats(w.set_index(["setting", "date"])[metric], ["setting", "date"])
    out = ens.drop(columns=["metric"], errors="ignore").copy()
    out.insert(1, "metric", metric)
    return out[["setting", "metric", "date", *STATS]].sort_values(["setting", "date"]).reset_index(drop=True)


def references(folder: Folder, lang_label) -> pd.DataFrame:
    """Policy targets and observed high-skill shares for the folder's region(s): targets.csv's rows
    for the region, and on dates it has none (a region of the user's own), the shares the region's
    preset observes (`region.history.high_skill_share`).

    `lang_label(region_dict)` gives the region's display name."""
    rows = []
    seen = set()
    regions = {s.region["name"]: s.region for s in folder.settings}
    nat = target(NATIONAL_TARGET_ROW, folder.targets_file)
    for name, reg in regions.items():
        rows.append({"kind": "region_target", "scope": name, "region": lang_label(reg),
                     "date": f"{int(reg['high_skill_target_year'])}-12", "value": float(reg["high_skill_target"]),
                     "source": "config: region.high_skill_target"})
        seen.add((round(float(reg["high_skill_target"]), 3), f"{int(reg['high_skill_target_year'])}-12"))
        observed = {}
        for obs in observed_shares(name, folder.targets_file):
            date = obs.date if "-" in obs.date else f"{obs.date}-12"
            observed[date] = (obs.number, f"targets.csv: {obs.id}")
        # a region of the user's own (not in targets.csv) shows the shares its preset observes
        for date, value in ((reg.get("history") or {}).get("high_skill_share") or {}).items():
            observed.setdefault(str(date), (float(value), "config: region.history.high_skill_share"))
        for date, (value, source) in sorted(observed.items()):
            rows.append({"kind": "observed", "scope": name, "region": lang_label(reg), "date": date,
                         "value": value, "source": source})
    if (round(nat.number, 3), nat.date) not in seen:
        rows.append({"kind": "national_target", "scope": "national", "region": "", "date": nat.date,
                     "value": nat.number, "source": f"targets.csv: {NATIONAL_TARGET_ROW}"})
    return pd.DataFrame(rows, columns=["kind", "scope", "region", "date", "value", "source"])


def composition(folder: Folder) -> pd.DataFrame:
    """Per setting, month and level: mean across replicates of the level's share of all workers.

    Means (not medians) so that the eight shares add up to 100% and stack exactly."""
    levels = [f"level_{k}" for k in range(N_LEVELS)]
    w = wide(folder, ["workers", *levels])
    rows = []
    for k, col in enumerate(levels):
        share = (w[col] / w["workers"]).where(w["workers"] > 0)
        g = pd.DataFrame({"setting": w["setting"], "date": w["date"], "share": share, "count": w[col]})
        agg = g.groupby(["setting", "date"], sort=True).agg(n=("share", "count"), share_mean=("share", "mean"),
                                                          count_mean=("count", "mean")).reset_index()
        agg.insert(2, "level", k)
        rows.append(agg)
    return pd.concat(rows).sort_values(["setting", "date", "level"]).reset_index(drop=True)


def income_by_level(folder: Folder) -> pd.DataFrame:
    """Per setting and level: the target year's mean income per worker of that level (weighted by the
    monthly head count), then its mean across replicates with a 95% t-interval. Yuan per year.
    `n`: the replicates with anybody at the level in the year; `n_whole_year`: those with somebody at
    it in every month (a level held for a few months by a handful of agents is drawn apart)."""
    levels = range(N_LEVELS)
    cols = [f"income_mean_level_{k}" for k in levels] + [f"level_{k}" for k in levels]
    w = wide(folder, cols)
    year = w["setting"].map({s.id: str(s.target_year) for s in folder.settings})
    w = w[w["date"].str.slice(0, 4) == year]
    rows = []
    for k in levels:
        g = pd.DataFrame({"setting": w["setting"], "run": w["run"], "heads": w[f"level_{k}"],
                          "pay": w[f"income_mean_level_{k}"] * w[f"level_{k}"],
                          "empty_months": w[f"level_{k}"] <= 0}).groupby(["setting", "run"]).sum()
        per_run = (g["pay"] / g["heads"]).where(g["heads"] > 0).dropna()
        whole_year = g["empty_months"] == 0  # the level had workers every month of the year
        for s in folder.settings:
            d = per_run[per_run.index.get_level_values("setting") == s.id].to_numpy()
            mean, lo, hi = mean_interval(d)
            rows.append({"setting": s.id, "level": k, "year": s.target_year, "n": len(d),
                         "n_whole_year": int(whole_year[whole_year.index.get_level_values("setting") == s.id].sum()),
                         "mean": mean, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows).sort_values(["setting", "level"], key=lambda c: c.map(
        {s.id: i for i, s in enumerate(folder.settings)}) if c.name == "setting" else c).reset_index(drop=True)


def _interval_rows(folder: Folder, column: str, metric: str) -> list[dict]:
    rows = []
    for s in folder.settings:
        d = folder.runs.loc[folder.runs["setting"] == s.id, column].to_numpy(dtype=float)
        mean, lo, hi = mean_interval(d)
        rows.append({"setting": s.id, "metric": metric, "n": len(d), "mean": mean, "ci_low": lo, "ci_high": hi})
    return rows


def comparison(folder: Folder) -> pd.DataFrame:
    """Target-year figures per setting (mean across replicates, 95% t-interval) and, from effects.csv,
    the cost per additional high-skill worker (no interval: a ratio of two mean differences)."""
    rows = _interval_rows(folder, "high_skill_share", "high_skill_share")
    rows += _interval_rows(folder, "income_mean_target_year", "income_mean_target_year")
    if folder.effects is not None:
        eff = folder.effects.set_index("setting")
        for s in folder.settings:
            if s.id in eff.index:
                e = eff.loc[s.id]
                cost = float(e["cost_per_additional_high_skill_worker"])
                rows.append({"setting": s.id, "metric": "cost_per_additional_high_skill_worker",
                             "n": int(e["n_pairs"]), "mean": cost, "ci_low": math.nan, "ci_high": math.nan,
                             "undefined_because": cost_undefined_because(e, s.is_baseline) if math.isnan(cost) else ""})
    return pd.DataFrame(rows, columns=["setting", "metric", "n", "mean", "ci_low", "ci_high", "undefined_because"])


def cost_undefined_because(effect, is_baseline: bool) -> str:
    """Why a setting has no cost per additional high-skill worker (a key of text.PHRASES, minus 'na_')."""
    if is_baseline or str(effect.get("is_baseline", "")).lower() == "true":
        return "baseline"
    if int(effect.get("n_pairs", 0) or 0) == 0:
        return "no_pairs"
    extra = float(effect.get("extra_high_skill_workers", math.nan))
    if math.isnan(extra):
        return "no_pairs"
    return "no_gain" if extra <= 0 else "unknown"


def summary_table(folder: Folder) -> pd.DataFrame:
    """One row per setting with the report's key numbers (wide)."""
    rows = []
    for s in folder.settings:
        r = folder.runs[folder.runs["setting"] == s.id]
        row = {"setting": s.id, "n": len(r), "target_year": s.target_year}
        for col in ("high_skill_share", "income_mean_target_year"):
            row[col], row[f"{col}_ci_low"], row[f"{col}_ci_high"] = mean_interval(r[col].to_numpy(dtype=float))
        for col in ("income_median_target_year", "middle_income_share_target_year", "high_skill_workers",
                    "spend_cum_total", "high_skill_share_workforce"):
            row[col] = float(r[col].mean()) if col in r else math.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    if folder.effects is not None:
        eff = folder.effects.drop(columns=[k for k in folder.keys if k in folder.effects.columns])
        out = out.merge(eff, on="setting", how="left")
    return out


def at_target_date(folder: Folder) -> pd.DataFrame:
    """High-skill share in December of each setting's policy target year, if the forecast reaches it."""
    f = fan(folder, "high_skill_share")
    rows = []
    for s in folder.settings:
        date = f"{int(s.region['high_skill_target_year'])}-12"
        hit = f[(f["setting"] == s.id) & (f["date"] == date)]
        if not hit.empty:
            rows.append({"setting": s.id, "date": date, "target": float(s.region["high_skill_target"]),
                         **hit.iloc[0][STATS].to_dict()})
    return pd.DataFrame(rows)


def surface(folder: Folder, keys: list[str]) -> pd.DataFrame:
    """Per setting: the swept values, target-year high-skill share (n, mean, quantiles across replicates)
    and mean cumulative spend (yuan)."""
    runs = folder.runs
    share = quantile_stats(runs.set_index("setting")["high_skill_share"], ["setting"])
    spend = runs.groupby("setting")["spend_cum_total"].mean().rename("spend_cum_total_mean").reset_index()
    out = share.merge(spend, on="setting")
    for k in keys:
        out.insert(1, k, out["setting"].map({s.id: s.params[k] for s in folder.settings}))
    return out


def promotions(folder: Folder) -> pd.DataFrame:
    """Per setting, calendar year and channel: promotions in the year (population-scaled), n, mean and
    quantiles across replicates. Only full years (12 months) are kept."""
    cols = [f"promotions_{c}" for c in CHANNELS]
    w = wide(folder, cols)
    w["year"] = w["date"].str.slice(0, 4).astype(int)
    grp = w.groupby(["setting", "run", "year"])
    annual = grp[cols].sum()
    annual = annual[grp.size() == 12].reset_index()
    rows = []
    for c in CHANNELS:
        st = quantile_stats(annual.set_index(["setting", "year"])[f"promotions_{c}"], ["setting", "year"])
        st.insert(2, "channel", c)
        rows.append(st)
    return pd.concat(rows).sort_values(["setting", "channel", "year"]).reset_index(drop=True)


def high_skill_boundary(comp: pd.DataFrame) -> pd.DataFrame:
    """Cumulative share below the first high-skill level, per setting and month (fig. 2 guide line)."""
    low = comp[comp["level"] < HIGH_SKILL_MIN]
    return low.groupby(["setting", "date"], sort=True)["share_mean"].sum().rename("boundary").reset_index()
