"""Calibration to published statistics (simulated method of moments) and hindcast validation.

`skillsim-calibrate region=national` fits the free behavioural parameters to the national series in
targets.csv: the high-skill share at end-2011, end-2016 and end-2021 and the 2021 level mix (hard
targets), with certificates per worker-year and the competition promotion rate as soft targets.
The model is started from the observed state at end-2009 (nat_hs_2009) and run to 2025.

Method: the objective is the sum of squared standardised gaps between the mean over R replicates and
each target, plus a weak pull towards the prior (assumed) values. The replicates use fixed seeds in
every evaluation (common random numbers), so the objective is a deterministic function of the
parameters and Nelder-Mead can compare neighbouring points. Parameters are optimised on an unbounded
scale mapped into their bounds by a logistic function.

`cutoff=2016` fits only to targets dated up to the cut-off and then forecasts the held-out ones
(the hindcast); the held-out values are never used in the fit.

Chongqing has one observed date (2022), so its dynamics cannot be fitted; `region=chongqing` checks the
calibrated (national) parameters against the two 2022 observations (cq_hs_2022_10, cq_hs_2022).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import minimize

from functools import partial

from ..config import ASSUMED, ASSUMPTION_RANGES, CALIBRATION_FILE, HorizonParams, RunConfig, to_dict, value_at, whole_number_field, with_number
from ..errors import ConfigError, quiet_when_output_closed
from ..ladder import pay_ratios
from ..model import WorkforceModel
from ..sources import target
from . import posterior
from .batch import note_model, run_batch
from .options import releases_claims

ENSEMBLE_FILE = CALIBRATION_FILE.with_name("calibration_ensemble.csv")
NATIONAL_2021_SKILLED = 200e6  # nat_hs_2021 note: skilled > 200M


@dataclass(frozen=True)
class FreeParam:
    """One calibrated parameter: where it lives in RunConfig, its bounds and why."""

    name: str
    lo: float
    hi: float
    get: Callable[[RunConfig], float]
    set: Callable[[RunConfig, float], RunConfig]
    why: str


def _beh(cfg: RunConfig, **kw) -> RunConfig:
    return dataclasses.replace(cfg, behaviour=dataclasses.replace(cfg.behaviour, **kw))


def _set_list(cfg: RunConfig, field: str, idx: tuple[int, ...], value: float) -> RunConfig:
    vals = list(getattr(cfg.behaviour, field))
    for i in idx:
        vals[i] = value
    return _beh(cfg, **{field: vals})


def _studio_mult(cfg: RunConfig, v: float) -> RunConfig:
    studio = dataclasses.replace(cfg.levers.studio, learning_multiplier=v)
    return dataclasses.replace(cfg, levers=dataclasses.replace(cfg.levers, studio=studio))


def _exit_high(cfg: RunConfig, v: float) -> RunConfig:
    f = list(cfg.behaviour.turnover_level_factor)
    return _beh(cfg, turnover_level_factor=f[:3] + [round(v * x / f[3], 6) for x in f[3:]])


FREE: tuple[FreeParam, ...] = (
    FreeParam("sit_rate_apprentice", 0.05, 0.95, lambda c: c.behaviour.sit_rate[0],
              lambda c, v: _set_list(c, "sit_rate", (0,), v), "apprentices' yearly chance to sit"),
    FreeParam("sit_rate_low", 0.005, 0.6, lambda c: c.behaviour.sit_rate[1],
              lambda c, v: _set_list(c, "sit_rate", (1, 2), v), "levels 1-2: yearly chance to sit"),
    FreeParam("sit_rate_high", 0.002, 0.6, lambda c: c.behaviour.sit_rate[3],
              lambda c, v: _set_list(c, "sit_rate", (3, 4), v), "levels 3-4: yearly chance to sit"),
    FreeParam("pass_prob_senior", 0.2, 0.98, lambda c: c.behaviour.pass_prob[2],
              lambda c, v: _set_list(c, "pass_prob", (2,), v), "pass rate for 高级工"),
    FreeParam("pass_prob_technician", 0.05, 0.95, lambda c: c.behaviour.pass_prob[3],
              lambda c, v: _set_list(c, "pass_prob", (3,), v), "pass rate for 技师"),
    FreeParam("pass_prob_senior_technician", 0.05, 0.95, lambda c: c.behaviour.pass_prob[4],
              lambda c, v: _set_list(c, "pass_prob", (4,), v), "pass rate for 高级技师"),
    FreeParam("exit_factor_high", 0.2, 2.0, lambda c: c.behaviour.turnover_level_factor[3], _exit_high,
              "turnover factor of levels 3-7 (level 3's; the others keep their ratio)"),
    FreeParam("mastery_scale", 0.5, 2.0, lambda c: 1.0,
              lambda c, v: _beh(c, mastery_months=[round(m * v, 3) for m in c.behaviour.mastery_months]),
              "learning speed: scale of the months to meet each standard"),
    FreeParam("initial_progress_scale", 0.05, 2.0, lambda c: c.behaviour.initial_progress_scale,
              lambda c, v: _beh(c, initial_progress_scale=v), "unobserved progress of the initial workforce"),
    FreeParam("entrant_junior_share", 0.0, 0.95, lambda c: c.behaviour.entrant_junior_share,
              lambda c, v: _beh(c, entrant_junior_share=v), "entrants who arrive with a junior certificate"),
    FreeParam("entrant_share_intermediate", 0.0, 0.6, lambda c: c.behaviour.entrant_school_shares[0],
              lambda c, v: _beh(c, entrant_school_shares=[v, c.behaviour.entrant_school_shares[1]]),
              "entrants arriving as 中级工 (技工院校 graduates)"),
    FreeParam("entrant_share_senior", 0.0, 0.35, lambda c: c.behaviour.entrant_school_shares[1],
              lambda c, v: _beh(c, entrant_school_shares=[c.behaviour.entrant_school_shares[0], v]),
              "entrants arriving as 高级工 (技工院校 graduates)"),
    FreeParam("studio_learning_multiplier", 1.5, 3.0, lambda c: c.levers.studio.learning_multiplier,
              _studio_mult, "within prior_mentoring (1.5-3)"),
)


@dataclass(frozen=True)
class Unsourced:
    """A numeric assumption without a source (`config.ASSUMPTION_RANGES`), drawn in the parameter ensemble
    with the fitted parameters, over its documented range: the targets then say how far they pin it down,
    and every forecast, plan and `draw=` run carries it (DESIGN.md section 8: a band that leaves out an
    input that moves the 2035 share by up to seven points is false precision). The fit itself holds it
    at its assumed value. Its column in the ensemble is its dotted key."""

    name: str
    lo: float
    hi: float
    why: str

    def get(self, cfg: RunConfig) -> float:
        return float(value_at(cfg, self.name))

    def set(self, cfg: RunConfig, value: float) -> RunConfig:
        return with_number(cfg, self.name, value)


UNSOURCED: tuple[Unsourced, ...] = tuple(Unsourced(k, lo, hi, why) for k, (lo, hi, why) in ASSUMPTION_RANGES.items())
#: the coordinates of the parameter ensemble: the fitted parameters, then the assumptions without a source
ENSEMBLE_DIMS: tuple = FREE + UNSOURCED


@dataclass(frozen=True)
class Moment:
    """A published figure and how to read the same figure off a simulated series."""

    id: str
    label: str
    value: float
    sigma: float
    hard: bool
    year: int
    read: Callable[[pd.DataFrame], float]


def _at(date: str, col: str) -> Callable[[pd.DataFrame], float]:
    return lambda s: float(s.loc[s["date"] == date, col].iloc[0])


def _mix(date: str, level: int) -> Callable[[pd.DataFrame], float]:
    return lambda s: _at(date, f"level_{level}")(s) / _at(date, "skilled_workers")(s)


def _per_worker_year(col: str, years: tuple[str, ...]) -> Callable[[pd.DataFrame], float]:
    def read(s: pd.DataFrame) -> float:
        rows = s[s["date"].str[:4].isin(years)]
        return float(rows[col].sum() / rows["workers"].mean() / len(years))
    return read


def national_moments() -> list[Moment]:
    share = lambda rid, date: Moment(rid, f"high-skill share {date}", target(rid).number, 0.005, True,  # noqa: E731
                                     int(date[:4]), _at(date, "high_skill_share"))
    mix = lambda rid, lvl: Moment(rid, f"level {lvl} share of skilled, 2021-12", target(rid).number, 0.01,  # noqa: E731
                                  True, 2021, _mix("2021-12", lvl))
    cert_rate = target("nat_cert_flow").number / (NATIONAL_2021_SKILLED / 0.9)
    years = ("2022", "2023", "2024", "2025")
    comp = target("nat_comp_promo_rate").number

    def comp_rate(s: pd.DataFrame) -> float:
        rows = s[s["date"].str[:4].isin(years)]
        return float(rows["promotions_competition"].sum() / max(rows["competition_participants"].sum(), 1e-9))

    return [
        share("nat_hs_2011", "2011-12"), share("nat_hs_2016", "2016-12"), share("nat_hs_2021", "2021-12"),
        mix("nat_mix_2021_L3", 3), mix("nat_mix_2021_L4", 4), mix("nat_mix_2021_L5", 5),
        Moment("nat_cert_flow", "certificates per worker-year 2022-2025", cert_rate, 0.25 * cert_rate, False,
               2025, _per_worker_year("promotions_certification", years)),
        Moment("nat_comp_promo_rate", "competition promotions per participation 2022-2025", comp, 0.25 * comp,
               False, 2025, comp_rate),
    ]


def national_history(base: RunConfig, n_agents: int, cutoff: int | None = None) -> RunConfig:
    """The national preset as the calibration runs it: its history from the end-2009 cold start
    (nat_hs_2009) with free dynamics (no alignment), through the observed stocks, to 2025.

    With a cutoff year the preset is first cut back to what was known then (`backtest_config`).
    """
    cfg = backtest_config(base, cutoff) if cutoff is not None else base
    hist = dataclasses.replace(cfg.region.history, align=False)
    end = 2025 if cutoff is None else cutoff
    return dataclasses.replace(cfg, region=dataclasses.replace(cfg.region, history=hist), n_agents=n_agents,
                               horizon=HorizonParams(end_year=max(end, cfg.start_year)))


def backtest_config(cfg: RunConfig, cutoff: int) -> RunConfig:
    """A preset as it would have been written at the end of `cutoff`: observations up to then only.

    The state is observed at the cut-off's last observed share; the population is the last observed
    skilled stock / (1 - uncertified_share); growth after it ranges from zero to the last observed
    growth between two stocks (from zero to 8% a year, wide, if fewer than two stocks were known).
    Nothing dated after the cut-off enters the history, the state or the growth path; the levers' and
    wages' inputs and ranges (training budget, competition participation, studios, base wage) stay the
    present preset's, which no source gives for the cut-off (docs/model.md section 11 says so).
    """
    h, reg = cfg.region.history, cfg.region
    limit = f"{cutoff}-12"
    shares = {d: v for d, v in h.high_skill_share.items() if d <= limit}
    mixes = {d: v for d, v in h.level_share.items() if d <= limit}
    stocks = {d: v for d, v in h.skilled_workers.items() if d <= limit}
    if not shares:
        raise ConfigError("cutoff", cutoff, "a year after the preset's first observed share")
    observed = max(shares)
    if observed not in stocks and observed == reg.observed:
        stocks[observed] = reg.population * (1 - reg.uncertified_share)
    if observed not in stocks:
        raise ConfigError("cutoff", cutoff, "a year with an observed skilled stock in the preset's history")
    dates = sorted(stocks)
    if len(dates) >= 2:
        (d0, s0), (d1, s1) = (dates[-2], stocks[dates[-2]]), (dates[-1], stocks[dates[-1]])
        years = (int(d1[:4]) - int(d0[:4])) + (int(d1[5:]) - int(d0[5:])) / 12
        g_hi = round((s1 / s0) ** (1 / years) - 1, 4)
    else:
        g_hi = 0.08
    structural = dict(reg.structural)
    structural["region.growth_per_year"] = [0.0, g_hi]
    hist = dataclasses.replace(h, high_skill_share=shares, level_share=mixes,
                               skilled_workers={d: v for d, v in stocks.items() if d != observed})
    region = dataclasses.replace(reg, observed=observed, population=stocks[observed] / (1 - reg.uncertified_share),
                                 growth_per_year=round(g_hi / 2, 5), history=hist, structural=structural)
    return dataclasses.replace(cfg, region=region,
                               horizon=dataclasses.replace(cfg.horizon, start_year=None,
                                                           end_year=max(cfg.horizon.end_year, cutoff + 1)))


def prior_config(cfg: RunConfig) -> RunConfig:
    """cfg with every calibrated field at its assumed (prior) value, ignoring any earlier calibration."""
    beh = {k.split(".", 1)[1]: v for k, v in ASSUMED.items() if k.startswith("behaviour.")}
    cfg = _beh(cfg, **beh)
    return _studio_mult(cfg, ASSUMED["levers.studio.learning_multiplier"])


def bounded(theta: np.ndarray, dims: tuple = FREE) -> np.ndarray:
    """Unbounded optimiser coordinates -> parameter values within their bounds."""
    lo = np.array([p.lo for p in dims])
    hi = np.array([p.hi for p in dims])
    return lo + (hi - lo) / (1 + np.exp(-theta))


def unbounded(values: np.ndarray, dims: tuple = FREE) -> np.ndarray:
    lo = np.array([p.lo for p in dims])
    hi = np.array([p.hi for p in dims])
    u = np.clip((np.asarray(values) - lo) / (hi - lo), 1e-6, 1 - 1e-6)
    return np.log(u / (1 - u))


def prior_centre(cfg: RunConfig, dims: tuple = FREE) -> np.ndarray:
    """The assumed values in optimiser coordinates, kept 2.5 logit units inside the bounds (an
    assumption at a bound, like the studio multiplier's 1.5, would otherwise pin the prior there)."""
    return np.clip(unbounded(np.array([p.get(cfg) for p in dims]), dims), -2.5, 2.5)


def apply(cfg: RunConfig, values: np.ndarray, dims: tuple = FREE) -> RunConfig:
    for p, v in zip(dims, values):
        cfg = p.set(cfg, float(v))
    return cfg


def read_moments(moments: list[Moment], model: WorkforceModel) -> list[float]:
    series = model.series(history=True)
    return [m.read(series) for m in moments]


def simulate(cfg: RunConfig, moments: list[Moment], seeds: list[int]) -> np.ndarray:
    """Moments (rows: replicates) of the model under cfg, one run per seed."""
    return simulate_many([cfg], moments, seeds)[0]


def simulate_many(cfgs: list[RunConfig], moments: list[Moment], seeds: list[int]) -> np.ndarray:
    """Moments of every config x seed, shape (configs, seeds, moments), one batch."""
    runs = [dataclasses.replace(c, seed=s) for c in cfgs for s in seeds]
    out = np.asarray(run_batch(runs, partial(read_moments, moments)), dtype=float)
    return out.reshape(len(cfgs), len(seeds), len(moments))


def objective_value(sim: np.ndarray, moments: list[Moment], theta: np.ndarray, theta0: np.ndarray) -> float:
    gaps = (sim.mean(axis=0) - np.array([m.value for m in moments])) / np.array([m.sigma for m in moments])
    prior = 0.05 * float(np.sum((theta - theta0) ** 2))  # weak pull towards the assumed values
    return float(np.sum(gaps**2)) + prior


@dataclass
class Result:
    region: str
    values: dict[str, float]
    objective_start: float
    objective: float
    evaluations: int
    seconds: float
    seeds: list[int]
    n_agents: int
    cutoff: int | None
    fitted: list[Moment]
    config: RunConfig


def calibrate(base: RunConfig, *, n_agents: int = 6000, replicates: int = 2, max_evals: int = 600,
              cutoff: int | None = None, log=print) -> Result:
    """Fit FREE to the national moments dated up to `cutoff` (all if None), starting from the priors."""
    base = prior_config(base)
    start_cfg = national_history(base, n_agents, cutoff)
    moments = [m for m in national_moments() if cutoff is None or m.year <= cutoff]
    seeds = [int(base.seed) + 1000 * k for k in range(replicates)]
    theta0 = prior_centre(start_cfg)
    t0 = time.perf_counter()
    evals = 0
    best = {"f": np.inf, "theta": theta0}

    def f(theta: np.ndarray) -> float:
        nonlocal evals
        evals += 1
        value = objective_value(simulate(apply(start_cfg, bounded(theta)), moments, seeds), moments, theta, theta0)
        if value < best["f"]:
            best.update(f=value, theta=theta.copy())
        if evals % 25 == 0:
            log(f"calibration: {evals} evaluations, best objective {best['f']:.3f}, {time.perf_counter() - t0:.0f} s")
        return value

    f0 = f(theta0)
    # Two Nelder-Mead passes: a wide first simplex (one logit unit per parameter) explores, then a
    # restart from the best point with a narrower one refines (Nelder-Mead often stalls in 10-D).
    for width, share in ((1.0, 0.7), (0.3, 0.3)):
        start = best["theta"].copy()
        simplex = np.vstack([start] + [start + width * np.eye(len(FREE))[i] for i in range(len(FREE))])
        budget = int(share * max_evals) if width == 1.0 else max(1, max_evals - evals)
        minimize(f, start, method="Nelder-Mead",
                 options={"maxfev": max(1, budget), "xatol": 1e-3, "fatol": 1e-3, "adaptive": True,
                          "initial_simplex": simplex})
        if evals >= max_evals:
            break
    values = bounded(best["theta"])
    return Result("national", {p.name: float(v) for p, v in zip(FREE, values)}, f0, best["f"], evals,
                  time.perf_counter() - t0, seeds, n_agents, cutoff, moments, apply(base, values))


def _fit_file(path: Path) -> dict:
    """An earlier calibration.json, read; one line naming what is wrong with it (it named only the
    exception's type: "(KeyError)")."""
    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
        for p in FREE:
            value = info["values"][p.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"values.{p.name} is {value!r}, not a number")
        for key in ("objective_start", "objective", "evaluations", "seconds"):
            info[key]
        seeds, n_agents, cutoff = info["seeds"], info["n_agents"], info.get("cutoff")
        if not (isinstance(seeds, list) and seeds and all(isinstance(x, int) and not isinstance(x, bool) for x in seeds)):
            raise ValueError(f"seeds is {seeds!r}, not a list of integers")
        if isinstance(n_agents, bool) or not isinstance(n_agents, int) or n_agents < 1:
            raise ValueError(f"n_agents is {n_agents!r}, not an integer >= 1")
        if cutoff is not None and (isinstance(cutoff, bool) or cutoff not in (2011, 2016)):
            raise ValueError(f"cutoff is {cutoff!r}, not null, 2011 or 2016")  # "2016" crashed the run
        return info
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
    except KeyError as exc:
        why = f"no {exc.args[0]!r} in it"
    except (TypeError, ValueError) as exc:
        why = str(exc) if isinstance(exc, ValueError) and not isinstance(exc, json.JSONDecodeError) else \
            f"unreadable: {exc}"
    raise ConfigError("fit", str(path), f"an earlier calibration.json with fitted values ({why})") from None


def _fit_cutoff(path: Path) -> int | None:
    return _fit_file(path).get("cutoff")


def load_fit(base: RunConfig, path: Path) -> Result:
    """An earlier fit (its calibration.json) as a Result, to re-sample the ensemble without refitting."""
    info = _fit_file(path)
    values = np.array([info["values"][p.name] for p in FREE], dtype=float)
    cutoff = info.get("cutoff")
    moments = [m for m in national_moments() if cutoff is None or m.year <= cutoff]
    return Result("national", {p.name: float(v) for p, v in zip(FREE, values)}, info["objective_start"],
                  info["objective"], info["evaluations"], info["seconds"], info["seeds"], info["n_agents"], cutoff,
                  moments, apply(prior_config(base), values))


def fit_table(cfg: RunConfig, moments: list[Moment], seeds: list[int], fitted: set[str]) -> pd.DataFrame:
    """Each target against the model: mean and spread over replicates, standardised gap."""
    sim = simulate(cfg, moments, seeds)
    rows = []
    for j, m in enumerate(moments):
        rows.append({"target": m.id, "what": m.label, "kind": "hard" if m.hard else "soft",
                     "used_in_fit": m.id in fitted, "observed": m.value, "model_mean": sim[:, j].mean(),
                     "model_sd": sim[:, j].std(ddof=1) if len(seeds) > 1 else float("nan"),
                     "gap": sim[:, j].mean() - m.value, "sigma": m.sigma,  # z's scale, in the folder itself
                     "z": (sim[:, j].mean() - m.value) / m.sigma})
    return pd.DataFrame(rows)


def wage_ladder_check(cfg: RunConfig, seed: int) -> pd.DataFrame:
    """Model mean pay by level relative to 初级工 against the survey's median ratios (wage_sh_2022_*)."""
    m = WorkforceModel(dataclasses.replace(cfg, seed=seed, n_agents=min(cfg.n_agents, 20000),
                                           horizon=HorizonParams(end_year=cfg.start_year)))
    note_model(m)
    row = m.row
    base = row["income_mean_level_1"]
    survey = pay_ratios(cfg.wages.apprentice_pay_ratio)
    return pd.DataFrame({"level": range(1, 8),
                         "survey_ratio": [survey[k] for k in range(1, 8)],
                         "model_ratio": [row[f"income_mean_level_{k}"] / base if row[f"level_{k}"] else float("nan")
                                         for k in range(1, 8)]})


def write_calibration(result: Result, path: Path, moments: list[Moment], post: dict | None = None) -> None:
    """The calibrated parameters as the config file the presets use, with provenance."""
    beh = to_dict(result.config)["behaviour"]
    data = {
        "provenance": {
            "written_by": "skillsim-calibrate region=national write=true",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "method": "simulated method of moments, Nelder-Mead, common random numbers (sim/studies/calibrate.py); "
                      "parameter ensemble by waves of simulations, a quadratic emulator and adaptive Metropolis "
                      "(sim/studies/posterior.py)",
            "targets": [m.id for m in moments],
            "objective_start": round(result.objective_start, 4),
            "objective": round(result.objective, 4),
            "evaluations": result.evaluations,
            "seconds": round(result.seconds, 1),
            "seeds": result.seeds,
            "n_agents": result.n_agents,
            "fitted": {k: round(v, 6) for k, v in result.values.items()},
            **({"ensemble": post} if post else {}),
        },
        "behaviour": {k: beh[k] for k in ("sit_rate", "pass_prob", "turnover_level_factor", "mastery_months",
                                          "initial_progress_scale", "entrant_junior_share",
                                          "entrant_school_shares")},
        "levers": {"studio": {"learning_multiplier": round(result.values["studio_learning_multiplier"], 4)}},
    }
    _write_text(path, "# Calibrated behavioural parameters; written by skillsim-calibrate write=true, do not edit by hand.\n"
                + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def held_assumptions(cfg: RunConfig) -> dict[str, float]:
    """The assumptions without a source that cfg sets away from their assumed values (a preset of the
    user's with a sourced value for its region, or `key=value` on the command line), by key: an ensemble
    member holds them there instead of drawing them (a value set in a config file was replaced by the
    draws without a word, a review)."""
    default = RunConfig()
    return {u.name: u.get(cfg) for u in UNSOURCED if u.get(cfg) != u.get(default)}


def ensemble_configs(cfg: RunConfig, members: pd.DataFrame) -> list[RunConfig]:
    """cfg with each ensemble member's values: the fitted parameters (the columns named after FREE) and
    the assumptions without a source it drew (the columns named by their dotted keys; an ensemble
    without them, written before they were drawn, leaves them at cfg's values), but for those cfg holds
    (`held_assumptions`)."""
    base = prior_config(cfg)
    held = held_assumptions(cfg)
    dims = tuple(p for p in ENSEMBLE_DIMS if p.name in members.columns and p.name not in held)
    return [apply(base, np.array([row[p.name] for p in dims], dtype=float), dims) for _, row in members.iterrows()]


def parameter_ensemble(res: Result, moments: list[Moment], *, draws: int, size: int,
                       model_var: np.ndarray, log, stages: int = 5) -> tuple[pd.DataFrame, pd.DataFrame, float, pd.DataFrame]:
    """A sample of the parameters' posterior, by emulator and MCMC (sim.studies.posterior)."""
    start_cfg = national_history(prior_config(res.config), res.n_agents, res.cutoff)
    dims = ENSEMBLE_DIMS  # the assumptions without a source start at their assumed values, where the fit held them
    theta_hat = np.concatenate([unbounded(np.array([res.values[p.name] for p in FREE])),
                                prior_centre(start_cfg, UNSOURCED)])
    theta0 = prior_centre(start_cfg, dims)

    def evaluate(thetas: np.ndarray) -> np.ndarray:
        sims = simulate_many([apply(start_cfg, bounded(t, dims), dims) for t in thetas], moments, res.seeds)
        return sims.mean(axis=1)

    observed = np.array([m.value for m in moments])
    sigma = np.array([m.sigma for m in moments])
    discrepancy = max(1.0, res.objective / len(moments))  # reduced chi-square of the best fit
    log(f"posterior: discrepancy scale {discrepancy:.2f} (best fit's objective {res.objective:.2f} over "
        f"{len(moments)} targets)")
    prior = posterior.Prior(theta0)
    post = posterior.sample_posterior(
        evaluate, theta_hat, prior, observed, sigma, model_var / len(res.seeds), n_per_stage=draws,
        stages=stages, size=size, seed=int(res.seeds[0]), discrepancy=discrepancy, cross_dims=len(FREE),
        emulated=partial(as_emulated, dims=dims), log=log)
    ess = post["ess"]
    names = [p.name for p in dims]
    draws_df = pd.DataFrame(as_applied(bounded_rows(post["thetas"], dims), dims), columns=names)  # as they ran
    draws_df.insert(0, "wave", post["stage"])
    draws_df["log_posterior"] = post["log_weight"]
    for j, m in enumerate(moments):
        draws_df[f"sim_{m.id}"] = post["sims"][:, j]
    members = posterior.members_table(names, as_applied(bounded_rows(post["members"], dims), dims))
    ident = posterior.identification(names, members[names].to_numpy(),
                                     as_applied(bounded_rows(prior.sample(4000, int(res.seeds[0])), dims), dims), ess)
    return members, draws_df, ess, ident


def predictive_check(cfg: RunConfig, members: pd.DataFrame, moments: list[Moment], n_agents: int,
                     seeds: list[int], cutoff: int | None = None) -> pd.DataFrame:
    """Every target against the ensemble's simulated values (each member run on fresh seeds): the
    5%, 50% and 95% quantiles over members, and whether the observed value lies inside the 90% range.
    The honest check of an ensemble: a target it was fitted to should mostly lie inside."""
    runs = [national_history(c, n_agents, cutoff) for c in ensemble_configs(cfg, members)]
    sims = simulate_many(runs, moments, seeds).mean(axis=1)
    rows = []
    for j, m in enumerate(moments):
        q05, q50, q95 = np.quantile(sims[:, j], [0.05, 0.5, 0.95])
        rows.append({"target": m.id, "observed": m.value, "q05": q05, "median": q50, "q95": q95,
                     "inside_90": bool(q05 <= m.value <= q95)})
    return pd.DataFrame(rows)


def bounded_rows(thetas: np.ndarray, dims: tuple = FREE) -> np.ndarray:
    return np.vstack([bounded(t, dims) for t in np.atleast_2d(thetas)])


def _whole(dims: tuple) -> list[int]:
    """The coordinates of whole-number assumptions (months, events), which a run rounds."""
    return [j for j, p in enumerate(dims) if isinstance(p, Unsourced) and whole_number_field(p.name)]


def as_applied(values: np.ndarray, dims: tuple) -> np.ndarray:
    """Ensemble rows as a run applies them: a whole-number assumption (months, years, events) rounded,
    so that the ensemble file says what runs."""
    out = np.array(values, dtype=float, ndmin=2)
    whole = _whole(dims)
    out[:, whole] = np.round(out[:, whole])
    return out


def as_emulated(thetas: np.ndarray, dims: tuple) -> np.ndarray:
    """The posterior's coordinates as the emulator reads them: a whole-number assumption as the value its
    runs take, on its range scaled to [0, 1] (flat where the runs are the same, as the simulations are),
    every other coordinate as it is."""
    out = np.array(thetas, dtype=float, ndmin=2)
    whole = _whole(dims)
    if whole:
        lo = np.array([dims[j].lo for j in whole])
        hi = np.array([dims[j].hi for j in whole])
        out[:, whole] = (np.round(lo + (hi - lo) / (1 + np.exp(-out[:, whole]))) - lo) / (hi - lo)
    return out


USAGE = """usage: skillsim-calibrate [region=national|chongqing] [cutoff=YEAR] [n_agents=N] [replicates=R]
                          [max_evals=N] [draws=N] [stages=N] [ensemble=N] [seed=S] [out=DIR]
                          [write=false|true]
                          [fit=DIR/calibration.json]

Fit the behavioural parameters to the national series (simulated method of moments), then sample an
ensemble of parameter sets consistent with the targets (waves of simulations, an emulator and MCMC).
region=national (default) fits and writes the fit report; write=true also replaces the package's
sim/data/calibration.yaml (the central set) and sim/data/calibration_ensemble.csv (the ensemble), which
every run reads, and the parameter table of docs/model.md (never with cutoff); cutoff=YEAR fits only
to data up to YEAR (a hindcast); fit=FILE re-samples the ensemble around an earlier fit without
refitting. region=chongqing checks the calibrated model's October to December
2022 step against the two Chongqing observations. Defaults: n_agents=6000 replicates=2 max_evals=600
draws=256 (simulated points per wave: the ensemble draws 37 coordinates) stages=5 (waves) ensemble=100."""


def parse_args(argv: list[str]) -> dict:
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        raise SystemExit(0)
    known = {"region": str, "n_agents": int, "replicates": int, "max_evals": int, "cutoff": int, "out": str,
             "write": str, "seed": int, "draws": int, "stages": int, "ensemble": int, "fit": str}
    out: dict = {"region": "national", "n_agents": 6000, "replicates": 2, "max_evals": 600, "cutoff": None,
                 "out": None, "write": "false", "seed": RunConfig().seed, "draws": 256, "stages": 5, "ensemble": 100,
                 "fit": None}
    from ..errors import given_once

    for a in given_once(argv):  # region=national region=chongqing: chongqing, said in a warning
        key, sep, value = a.partition("=")
        if not sep or key not in known:
            raise ConfigError(key or a, value, "one of " + ", ".join(f"{k}=..." for k in known))
        try:
            out[key] = known[key](value)
        except ValueError:
            raise ConfigError(key, value, "an integer" if known[key] is int else "a string") from None
    if out["region"] not in ("national", "chongqing"):
        raise ConfigError("region", out["region"], "national or chongqing (the regions with observed shares)")
    for key in ("n_agents", "replicates", "draws", "stages", "ensemble", "max_evals"):  # max_evals=0 "fitted" nothing
        if out[key] < 1:
            raise ConfigError(key, out[key], "an integer >= 1")
    for key in ("out", "fit"):
        if out[key] is not None and not out[key].strip():  # out= fell back to the default folder
            raise ConfigError(key, out[key], "a path")
    if out["cutoff"] is not None and out["cutoff"] not in (2011, 2016):
        raise ConfigError("cutoff", out["cutoff"], "2011 or 2016 (years with an observed skilled stock)")
    from_fit = False
    if out["fit"] is not None and out["region"] == "national":  # the fit's own cutoff is what the ensemble is
        fit_cutoff = _fit_cutoff(Path(out["fit"]))  # fitted to (load_fit); chongqing's check reads no fit
        if out["cutoff"] is not None and out["cutoff"] != fit_cutoff:  # was ignored, and recorded as used
            raise ConfigError("cutoff", out["cutoff"], f"{'no cutoff' if fit_cutoff is None else fit_cutoff} with "
                              f"fit={out['fit']} (that fit was made with "
                              f"{'no cutoff' if fit_cutoff is None else f'cutoff={fit_cutoff}'}, which sets the "
                              "targets the ensemble is fitted to)")
        from_fit = out["cutoff"] is None and fit_cutoff is not None
        out["cutoff"] = fit_cutoff  # the options (manifest.json) say what runs: a fit's cutoff is a hindcast
    if out["write"] not in ("true", "false"):  # "auto", the former default, wrote the package's files itself
        raise ConfigError("write", out["write"], "true or false (true replaces the package's calibration; "
                          "there is no auto)")
    if out["write"] == "true" and out["cutoff"] is not None:  # a hindcast is not the package's calibration
        raise ConfigError("write", out["write"], f"false with cutoff={out['cutoff']}"
                          + (f" (the cutoff of fit={out['fit']})" if from_fit else "")
                          + " (a hindcast's fit is not the package's calibration)")
    if out["write"] == "true" and out["region"] == "chongqing":  # exited 0, the package's files untouched
        raise ConfigError("write", out["write"], "false with region=chongqing (a check of the national fit, which "
                          "fits nothing; write=true belongs to region=national)")
    return out


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    """`skillsim-calibrate region=national [cutoff=2016] [n_agents=..] [replicates=..] [max_evals=..]`:
    a mistake is one line, Ctrl-C or SIGTERM exit 130 with no folder (as the other studies)."""
    from .options import run_command

    run_command(lambda a: run({**parse_args(a), "argv": list(a)}), "skillsim-calibrate", argv, what="calibration folder",
                resumable=False)


@releases_claims
def run(args: dict) -> Path:
    """The fit report's folder, written whole or not at all: an existing one is refused before the
    fit (a calibration wrote its files among another folder's, which then failed verification), and
    the files go into a hidden folder beside it, renamed when all are written."""
    import os
    import shutil

    from .options import check_writable

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = check_writable(Path(args["out"] or f"results/calibration/{args['region']}_{stamp}"), "calibration",
                         unique=args["out"] is None)
    from ..results import calibration_checksums, git_commit, package_versions, partial_folder

    tmp = partial_folder(out)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    from .forecast import seal

    # what the package's calibration was when this one ran (a fit with write=true replaces it)
    before = calibration_checksums()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        _run_into(tmp, args, log)
        seal(tmp, {"kind": "calibration", "command": ["skillsim-calibrate", *args.get("argv", [])],
                   "options": {k: v for k, v in args.items() if k != "argv"}, "seed": args["seed"],
                   "package_calibration_before": before, "versions": package_versions("numba"),
                   "git_commit": git_commit(), "started": started})
        if out.exists():
            out.rmdir()  # empty (check_writable refused anything else)
        from ..entry import result_in_place

        result_in_place()  # an interrupt from here on would find the folder written
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"fit report in {out}")
    return out


def _run_into(out: Path, args: dict, log) -> None:
    from ..cli import compose_config

    if args["region"] == "chongqing":
        check_chongqing(compose_config(["region=chongqing", f"seed={args['seed']}"]), args, out, log)
        return
    base = compose_config(["region=national", f"seed={args['seed']}"])
    if args.get("fit"):
        res = load_fit(base, Path(args["fit"]))
        log(f"using the fit in {args['fit']} (objective {res.objective:.2f}); sampling the ensemble only")
    else:
        res = calibrate(base, n_agents=args["n_agents"], replicates=args["replicates"],
                        max_evals=args["max_evals"], cutoff=args["cutoff"], log=log)
    all_moments = national_moments()
    check_seeds = [args["seed"] + 7919 * (k + 1) for k in range(max(args["replicates"], 8))]  # fresh seeds
    table = fit_table(national_history(res.config, args["n_agents"]), all_moments, check_seeds,
                      {m.id for m in res.fitted})
    table.to_csv(out / "fit.csv", index=False)
    fitted_var = (table.set_index("target").loc[[m.id for m in res.fitted], "model_sd"].to_numpy()) ** 2
    (out / "calibration.json").write_text(json.dumps({
        "region": "national", "cutoff": res.cutoff, "values": res.values, "objective_start": res.objective_start,
        "objective": res.objective, "evaluations": res.evaluations, "seconds": res.seconds, "seeds": res.seeds,
        "check_seeds": check_seeds, "n_agents": res.n_agents}, indent=2) + "\n", encoding="utf-8")
    members, draws, ess, ident = parameter_ensemble(res, res.fitted, draws=args["draws"], size=args["ensemble"],
                                                    model_var=fitted_var, log=log,
                                                    stages=args["stages"])
    draws.to_csv(out / "posterior_draws.csv", index=False)
    members.to_csv(out / "ensemble.csv", index=False)
    ident.to_csv(out / "identification.csv", index=False)
    predictive = predictive_check(res.config, members, res.fitted if res.cutoff else all_moments, res.n_agents,
                                  check_seeds[:1], res.cutoff)
    predictive.to_csv(out / "predictive.csv", index=False)
    log("posterior predictive check (each member simulated once, fresh seed):")
    log(predictive.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    wages = wage_ladder_check(res.config, args["seed"])
    wages.to_csv(out / "wage_ladder.csv", index=False)
    post = {"members": int(len(members)), "draws": int(len(draws)), "stages": args["stages"],
            "effective_sample_size": round(ess, 1), "replicates_per_draw": len(res.seeds),
            "method": "waves of simulations, quadratic emulator, adaptive Metropolis on the emulated posterior; logistic prior on the assumed values (sim/studies/posterior.py)"}
    (out / "calibration.json").write_text(json.dumps({
        "region": "national", "cutoff": res.cutoff, "values": res.values, "objective_start": res.objective_start,
        "objective": res.objective, "evaluations": res.evaluations, "seconds": res.seconds, "seeds": res.seeds,
        "check_seeds": check_seeds, "n_agents": res.n_agents, "ensemble": post}, indent=2) + "\n", encoding="utf-8")
    log(f"{'the earlier fit (fit=): ' if args.get('fit') else ''}objective {res.objective_start:.2f} -> "
        f"{res.objective:.2f} in {res.evaluations} evaluations, {res.seconds:.0f} s; ensemble of {len(members)} sets drawn from chains whose effective sample size "
        f"is {ess:.1f}")
    log(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    log(ident.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if res.cutoff is not None:
        for _, r in table[~table["used_in_fit"] & (table["kind"] == "hard")].iterrows():
            log(f"hindcast {r['target']}: observed {100 * r['observed']:.1f}%, central fit "
                f"{100 * r['model_mean']:.1f}% (sd {100 * r['model_sd']:.1f}), error {100 * r['gap']:+.1f} points")
    # Only on request: a trial with a budget of a few evaluations replaced the shipped calibration (and
    # the parameter table of docs/model.md), and every later run forecast from it without a word
    write = args["write"] == "true" and res.cutoff is None
    if not write and res.cutoff is None:
        log(f"the package's calibration ({CALIBRATION_FILE.name}) was not replaced; write=true replaces it "
            "with this fit and ensemble")
    if write:
        from ..entry import result_in_place

        result_in_place()  # the package's calibration is replaced from here: an interrupt would leave it half done
        write_calibration(res, CALIBRATION_FILE, res.fitted, post)
        _write_text(ENSEMBLE_FILE, members.to_csv(index=False))
        log(f"wrote {CALIBRATION_FILE} and {ENSEMBLE_FILE}")
        docs = Path(__file__).resolve().parents[2] / "docs" / "model.md"
        if docs.exists():  # the parameter table shows the new defaults (a fresh process reads the file)
            import subprocess

            subprocess.run([sys.executable, "-m", "sim.paramtable", "--write", str(docs)], check=False)


def check_chongqing(cfg: RunConfig, args: dict, out: Path, log) -> Path:
    """Chongqing's December 2022 share predicted from its history aligned up to October 2022.

    The run's history (spin-up, then alignment to cq_hs_2022_10) stops aligning after October; the
    state at end-2022 is the model's own continuation, compared with cq_hs_2022.
    """
    first, second = target("cq_hs_2022_10"), target("cq_hs_2022")
    hist = dataclasses.replace(cfg.region.history, cutoff=first.date)
    start = dataclasses.replace(cfg, region=dataclasses.replace(cfg.region, history=hist),
                                n_agents=max(args["n_agents"], 20000), horizon=HorizonParams(end_year=2023))
    seeds = [args["seed"] + k for k in range(max(args["replicates"], 4))]
    log(f"region=chongqing: no fit, a check of the national fit on {start.n_agents:,} agents x {len(seeds)} seeds "
        "(at least 20,000 and 4: the two observed shares are two months apart, so the check needs little "
        "sampling noise); max_evals, cutoff, draws, stages, "
        "ensemble and fit are not used")

    vals = []
    for seed in seeds:
        m = WorkforceModel(dataclasses.replace(start, seed=seed))
        note_model(m)
        vals.append(m.row["high_skill_share"])
    table = pd.DataFrame([{"target": second.id, "observed": second.number, "model_mean": float(np.mean(vals)),
                           "model_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan"),
                           "gap": float(np.mean(vals)) - second.number,
                           "started_from": f"history aligned to {first.id} ({first.number})"}])
    table.to_csv(out / "fit.csv", index=False)
    log("Chongqing has two observed dates two months apart: the model continues the first to the second.")
    log(table.to_string(index=False))
    return out


if __name__ == "__main__":
    main()
