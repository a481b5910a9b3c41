"""`skillsim-backtest`: forecasts from earlier origins, scored against what happened and against naive
forecasts, the way official projection programmes judge theirs.

For each origin (a cut-off year: 2011, 2016) the whole pipeline runs on what was known then:
calibrate on the national targets dated up to the cut-off (simulated method of moments, then the
parameter ensemble), build the preset as of the cut-off (`calibrate.backtest_config`: its history,
stock and growth range), and run the forecast ensemble to 2021. Each held-out observation (the later
high-skill shares, and the 2021 level mix) is scored by:

- the point error of the ensemble median;
- whether the 50% and 90% bands cover it;
- the CRPS of the ensemble (continuous ranked probability score, in the share's units: backtest.csv gives
  it as a fraction, report.md in points; for a point
  forecast it is the absolute error, so naive forecasts are scored on the same scale);
- the errors of two naive forecasts: the last observed value, and the linear trend through the last
  two observations.

Writes `backtest.csv` (one row per origin and held-out point) and each origin's calibration and
forecast tables (`origin_YEAR/`) into the output folder, with its manifest and COMPLETE, all at once
at the end (a hidden folder, renamed), so `skillsim-verify` checks it and an interrupted backtest
leaves nothing; a folder that already holds anything is refused before the calibration starts.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..calendar import month_index
from ..config import to_dict
from ..errors import ConfigError, os_reason, quiet_when_output_closed
from ..results import calibration_checksums, git_commit, package_versions, replace_text
from ..sources import target
from . import calibrate as cal
from .forecast import forecast, write_folder
from .options import check_writable, releases_claims

MIX_ROWS = {3: "nat_mix_2021_L3", 4: "nat_mix_2021_L4", 5: "nat_mix_2021_L5"}
USAGE = """usage: skillsim-backtest [origins=2011,2016] [n_agents=6000] [replicates=2] [max_evals=400]
                         [draws=128] [stages=5] [ensemble=100] [params=16] [structural=8] [forecast_replicates=2]
                         [forecast_agents=20000] [seed=S] [out=DIR] [docs=FILE]

Rolling-origin backtests of the national forecast: for each origin, calibrate on the data up to it,
forecast the held-out observations with the full ensemble, and score median error, 50%/90% band
coverage and CRPS against the naive last-value and linear-trend forecasts. Writes backtest.csv, an
origin_YEAR folder per origin (calibration.json, identification.csv, parameter_ensemble.csv, config.yaml,
ensemble.csv, runs.csv, variance.csv, scored.csv: every run's value at each held-out date scored),
manifest.json and COMPLETE (and, with docs=FILE, the table between the BACKTEST markers of that file:
docs/model.md section 11 in skillsim's source, which records it)."""


def crps(sample: np.ndarray, y: float) -> float:
    """CRPS of an ensemble (the empirical distribution of `sample`) for the observation y."""
    x = np.sort(np.asarray(sample, dtype=float))
    n = x.size
    # E|X - y| - E|X - X'| / 2, with E|X - X'| = 2/n^2 * sum_i (2i - n - 1) x_(i) for sorted x
    return float(np.mean(np.abs(x - y)) - np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / n**2)


def naive(observed: dict[str, float], cutoff: int, date: str) -> tuple[float, float]:
    """(last value, linear trend of the last two observations) forecasts for `date`."""
    known = sorted((d, v) for d, v in observed.items() if d <= f"{cutoff}-12")
    (d0, v0), (d1, v1) = known[-2], known[-1]
    slope = (v1 - v0) / (month_index(d1) - month_index(d0))
    return v1, v1 + slope * (month_index(date) - month_index(d1))


def held_out(full: dict[str, float], cutoff: int) -> list[tuple[str, str, float]]:
    """(id, date, value) of what the origin did not know: later shares and the 2021 level mix."""
    out = [(f"nat_hs_{d[:4]}", d, v) for d, v in sorted(full.items()) if d > f"{cutoff}-12"]
    out += [(MIX_ROWS[k], "2021-12", target(MIX_ROWS[k]).number) for k in (3, 4, 5)]
    return out


def scored_runs(long: pd.DataFrame, full: dict[str, float], cutoff: int) -> pd.DataFrame:
    """Every run's value at each held-out date that `score` scores (origin_YEAR/scored.csv): a 2016 share
    scored from origin 2011 was in no file of the folder, so its CRPS could only be taken on trust (a
    user trial)."""
    parts = []
    for rid, date, _ in held_out(full, cutoff):
        metric = "high_skill_share" if rid.startswith("nat_hs") else f"level_{rid[-1]}_share"
        part = long[(long["date"] == date) & (long["metric"] == metric)]
        parts.append(part.assign(target=rid)[["target", *[c for c in part.columns if c != "target"]]])
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def score(long: pd.DataFrame, full: dict[str, float], cutoff: int) -> list[dict]:
    rows = []
    for rid, date, y in held_out(full, cutoff):
        metric = "high_skill_share" if rid.startswith("nat_hs") else f"level_{rid[-1]}_share"
        sample = long[(long["date"] == date) & (long["metric"] == metric)]["value"].to_numpy()
        q05, q25, med, q75, q95 = np.quantile(sample, [0.05, 0.25, 0.5, 0.75, 0.95])
        row = {"origin": cutoff, "target": rid, "date": date, "observed": y, "median": med, "q05": q05, "q25": q25,
               "q75": q75, "q95": q95, "error": med - y, "in_50": bool(q25 <= y <= q75), "in_90": bool(q05 <= y <= q95),
               "crps": crps(sample, y), "n": int(sample.size)}
        if metric == "high_skill_share":
            last, trend = naive(full, cutoff, date)
            row.update(naive_last=last, naive_last_error=last - y, naive_trend=trend, naive_trend_error=trend - y)
        rows.append(row)
    return rows


DOC_BEGIN, DOC_END = "<!-- BACKTEST:BEGIN -->", "<!-- BACKTEST:END -->"


def markdown_table(table: pd.DataFrame) -> str:
    """The backtest table as docs/model.md section 11 records it (shares in points)."""
    pts = lambda v: "" if pd.isna(v) else f"{100 * v:.1f}"  # noqa: E731
    signed = lambda v: "" if pd.isna(v) else f"{100 * v:+.1f}"  # noqa: E731
    lines = ["| origin | held out | observed | median | 50% band | 90% band | error | in 50% | in 90% | CRPS "
             "| naive last (error) | naive trend (error) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        naive_last = f"{pts(r.get('naive_last'))} ({signed(r.get('naive_last_error'))})" \
            if not pd.isna(r.get("naive_last", float("nan"))) else "—"
        naive_trend = f"{pts(r.get('naive_trend'))} ({signed(r.get('naive_trend_error'))})" \
            if not pd.isna(r.get("naive_trend", float("nan"))) else "—"
        lines.append(f"| {r['origin']} | `{r['target']}` | {pts(r['observed'])} | {pts(r['median'])} | "
                     f"{pts(r['q25'])}–{pts(r['q75'])} | {pts(r['q05'])}–{pts(r['q95'])} | {signed(r['error'])} | "
                     f"{'yes' if r['in_50'] else 'no'} | {'yes' if r['in_90'] else 'no'} | {100 * r['crps']:.2f} | "
                     f"{naive_last} | {naive_trend} |")
    return "\n".join(lines)


def check_docs(path: Path) -> str:
    """The docs= file's text, if it is a Markdown file with the markers that this process can rewrite:
    checked before the backtest (minutes to hours), which found a missing file or markers only at its end,
    after writing its folder."""
    allowed = f"a Markdown file with the markers {DOC_BEGIN} and {DOC_END}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError("docs", str(path), f"{allowed} ({reason})") from None
    if DOC_BEGIN not in text or DOC_END not in text:
        raise ConfigError("docs", str(path), allowed)
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        raise ConfigError("docs", str(path), f"{allowed} that can be written")
    return text


def made_by(argv: list[str], opts: dict, started: str) -> str:
    """The line under the docs table that says which run made it: a quick run's rows replaced the
    published ones under prose that described another budget, and said nothing of it (a user trial)."""
    return (f"*Made by `skillsim-backtest{''.join(' ' + a for a in argv if not a.startswith('docs='))}` "
            f"({started[:10]}): origins {', '.join(map(str, opts['origins']))}; each a calibration of "
            f"{opts['n_agents']:,} agents, then {opts['params']} parameter sets x {opts['structural']} structural "
            f"points x {opts['forecast_replicates']} replicates of {opts['forecast_agents']:,} agents.*")


def write_docs(path: Path, table: pd.DataFrame, caption: str = "") -> None:
    """The table between the markers, with `caption` (made_by) under it; the file replaced whole (a reader
    never sees half of it)."""
    text = check_docs(path)
    head, rest = text.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    below = f"\n{caption}\n" if caption else ""
    replace_text(path, f"{head}{DOC_BEGIN}\n{markdown_table(table)}\n{below}{DOC_END}{tail}")


def parse(argv: list[str]) -> dict:
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        raise SystemExit(0)
    opts = {"origins": "2011,2016", "n_agents": 6000, "replicates": 2, "max_evals": 400, "draws": 128,
            "stages": 5, "ensemble": 100, "params": 16, "structural": 8, "forecast_replicates": 2, "forecast_agents": 20000,
            "seed": None, "out": None, "docs": None}
    from ..errors import given_once

    for a in given_once(argv):  # the last of a key given twice, said in a warning; the other is not checked
        key, sep, value = a.partition("=")
        if not sep or key not in opts:
            raise ConfigError(key or a, value, "one of " + ", ".join(f"{k}=..." for k in opts))
        if key in ("origins", "out", "docs"):
            if key != "origins" and not value.strip():  # out= ran into the default folder without a word
                raise ConfigError(key, value, "a path" + (" (leave out= out for the default folder)"
                                                          if key == "out" else ""))
            opts[key] = value
            continue
        try:
            opts[key] = int(value)
        except ValueError:
            raise ConfigError(key, value, "an integer") from None
        # as skillsim-forecast: each source of the forecast's spread needs two draws for its share
        least = 2 if key in ("forecast_replicates", "params", "structural") else 0 if key == "seed" else 1
        if opts[key] < least:
            raise ConfigError(key, opts[key], f"an integer >= {least}" + (
                " (one draw has no spread to measure)" if least == 2 else ""))
    if opts["params"] > opts["ensemble"]:  # found now, not after hours of calibration
        raise ConfigError("params", opts["params"], f"at most ensemble={opts['ensemble']} (the parameter sets "
                          "each origin's calibration keeps)")
    try:
        opts["origins"] = [int(x) for x in str(opts["origins"]).split(",")]
    except ValueError:
        raise ConfigError("origins", opts["origins"], "years separated by commas, e.g. 2011,2016") from None
    for o in opts["origins"]:
        if o not in (2011, 2016):
            raise ConfigError("origins", o, "2011 or 2016 (years with an observed skilled stock)")
    if len(set(opts["origins"])) < len(opts["origins"]):  # ran twice, and its rows counted twice in backtest.csv
        raise ConfigError("origins", ",".join(map(str, opts["origins"])), "each origin once, e.g. 2011,2016")
    return opts


def refuse_sizes_too_big(base, opts: dict) -> None:
    """The calibration's and the forecast's sizes checked against the memory limit before anything runs,
    each under its own option's name: forecast_agents=200000000 was refused after the whole calibration,
    as `n_agents` (a user trial)."""
    from ..config import check_cross_fields

    checked = [("n_agents", base)] + [("forecast_agents", forecast_config(base, cutoff, opts))
                                      for cutoff in opts["origins"]]  # each origin's growth and horizon
    for key, cfg in checked:
        try:
            check_cross_fields(dataclasses.replace(cfg, n_agents=opts[key]))
        except ConfigError as err:
            if err.field != "n_agents":
                raise
            raise ConfigError(key, opts[key], err.allowed) from None


def forecast_config(base, cutoff: int, opts: dict):
    """The config of an origin's forecast: the preset as written then, run to the last held-out year."""
    fcfg = cal.backtest_config(base, cutoff)
    return dataclasses.replace(fcfg, n_agents=opts["forecast_agents"],
                               horizon=dataclasses.replace(fcfg.horizon, end_year=2021))


@releases_claims
def run(argv: list[str]) -> Path:
    from ..cli import compose_config

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    opts = parse(argv)
    if opts["docs"]:
        check_docs(Path(opts["docs"]))
    base = compose_config(["region=national"] + ([f"seed={opts['seed']}"] if opts["seed"] is not None else []))
    refuse_sizes_too_big(base, opts)
    out = Path(opts["out"] or f"results/backtests/{datetime.now():%Y-%m-%d_%H-%M-%S}")
    out = check_writable(out, "backtest", unique=opts["out"] is None)  # before hours of calibration, which a
    # folder that cannot be written would lose
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    full = dict(base.region.history.high_skill_share)
    rows, origins = [], {}
    for cutoff in opts["origins"]:
        t0 = time.perf_counter()
        log(f"backtest origin {cutoff}: calibrating on data up to {cutoff}")
        res = cal.calibrate(base, n_agents=opts["n_agents"], replicates=opts["replicates"],
                            max_evals=opts["max_evals"], cutoff=cutoff, log=log)
        fit = cal.fit_table(cal.national_history(res.config, opts["n_agents"], cutoff), res.fitted,
                            [base.seed + 7919 * (k + 1) for k in range(8)], {m.id for m in res.fitted})
        members, draws, ess, ident = cal.parameter_ensemble(
            res, res.fitted, draws=opts["draws"], size=opts["ensemble"],
            model_var=fit["model_sd"].to_numpy() ** 2, log=log, stages=opts["stages"])
        fcfg = forecast_config(base, cutoff, opts)
        tables = forecast(fcfg, params=opts["params"], structural=opts["structural"],
                          replicates=opts["forecast_replicates"], seed=base.seed, log=log, ensemble=members)
        origins[f"origin_{cutoff}"] = {
            **{name: tables[name] for name in ("ensemble", "runs", "variance")},
            "scored": scored_runs(tables["long"], full, cutoff),
            "parameter_ensemble": members, "identification": ident,
            # the origin's preset as forecast (history cut, growth range, the levers' inputs kept: docs/model.md
            # section 11), so the folder says what each origin ran
            "config": to_dict(fcfg),
            "calibration": {"values": res.values, "objective": res.objective, "evaluations": res.evaluations,
                            "effective_sample_size": ess}}
        rows += score(tables["long"], full, cutoff)
        log(f"backtest origin {cutoff}: done in {time.perf_counter() - t0:.0f} s")
    table = pd.DataFrame(rows)
    manifest = {"kind": "backtest", "command": ["skillsim-backtest", *argv],
                "options": {k: v for k, v in opts.items() if k not in ("out", "docs")}, "seed": base.seed,
                **calibration_checksums(), "versions": package_versions("numba"),
                "git_commit": git_commit(), "started": started}
    write_folder(out, {"backtest": table}, manifest, what="backtest", subfolders=origins)
    log(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    log(f"wrote {out / 'backtest.csv'}")
    if opts["docs"]:
        write_docs(Path(opts["docs"]), table, made_by(argv, opts, started))
        log(f"wrote the table into {opts['docs']}, between its BACKTEST markers")
    return out


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    from .options import run_command

    run_command(run, "skillsim-backtest", argv, what="backtest folder", resumable=False)


if __name__ == "__main__":
    main()
