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

from .config import ASSUMED, HorizonParams, RunConfig, to_dict
from .errors import ConfigError, SkillsimError
from .ladder import pay_ratios
from .model import WorkforceModel
from .sources import target

CALIBRATION_FILE = Path(__file__).with_name("data") / "calibration.yaml"
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


def national_start(base: RunConfig, n_agents: int) -> RunConfig:
    """The national preset moved back to its observed state at end-2009 (nat_hs_2009).

    Skilled workers grow from 119M (nat_skilled_2011) to about 200M (nat_hs_2021 note): 5.3% a year.
    The level mix below the high-skill line is split as in the preset; the high-skill part keeps the
    2021 proportions (assumption: no earlier level mix is published). Money is deflated to 2009 at the
    nominal wage growth so that budgets and costs keep their real relation.
    """
    hs = target("nat_hs_2009").number
    growth = (NATIONAL_2021_SKILLED / target("nat_skilled_2011").number) ** (1 / 10) - 1
    top = [base.region.skilled_mix[5], base.region.skilled_mix[6]]
    hs_23 = [target("nat_mix_2021_L3").number, target("nat_mix_2021_L4").number, target("nat_mix_2021_L5").number]
    scale = (hs - sum(top)) / sum(hs_23)
    mix = [(1 - hs) / 2, (1 - hs) / 2] + [x * scale for x in hs_23] + top
    deflate = (1 + base.wages.growth_per_year) ** -12
    skilled_2009 = target("nat_skilled_2011").number / (1 + growth) ** 2
    region = dataclasses.replace(
        base.region, observed="2009-12", skilled_mix=mix, growth_per_year=round(growth, 5),
        population=skilled_2009 / (1 - base.region.uncertified_share), base_wage=base.region.base_wage * deflate,
        training_budget_per_worker_year=base.region.training_budget_per_worker_year * deflate,
        studios=base.region.studios * 0.3, studio_growth_per_year=base.region.studios * 0.7 / 12)
    training = dataclasses.replace(base.levers.training, cost_per_place=base.levers.training.cost_per_place * deflate)
    levers = dataclasses.replace(base.levers, training=training)
    return dataclasses.replace(base, region=region, levers=levers, n_agents=n_agents,
                               horizon=HorizonParams(end_year=2025))


def prior_config(cfg: RunConfig) -> RunConfig:
    """cfg with every calibrated field at its assumed (prior) value, ignoring any earlier calibration."""
    beh = {k.split(".", 1)[1]: v for k, v in ASSUMED.items() if k.startswith("behaviour.")}
    cfg = _beh(cfg, **beh)
    return _studio_mult(cfg, ASSUMED["levers.studio.learning_multiplier"])


def bounded(theta: np.ndarray) -> np.ndarray:
    """Unbounded optimiser coordinates -> parameter values within their bounds."""
    lo = np.array([p.lo for p in FREE])
    hi = np.array([p.hi for p in FREE])
    return lo + (hi - lo) / (1 + np.exp(-theta))


def unbounded(values: np.ndarray) -> np.ndarray:
    lo = np.array([p.lo for p in FREE])
    hi = np.array([p.hi for p in FREE])
    u = np.clip((np.asarray(values) - lo) / (hi - lo), 1e-6, 1 - 1e-6)
    return np.log(u / (1 - u))


def apply(cfg: RunConfig, values: np.ndarray) -> RunConfig:
    for p, v in zip(FREE, values):
        cfg = p.set(cfg, float(v))
    return cfg


def simulate(cfg: RunConfig, moments: list[Moment], seeds: list[int]) -> np.ndarray:
    """Moments (rows: replicates) of the model under cfg, one run per seed."""
    out = np.empty((len(seeds), len(moments)))
    for i, seed in enumerate(seeds):
        series = WorkforceModel(dataclasses.replace(cfg, seed=seed)).run().series()
        out[i] = [m.read(series) for m in moments]
    return out


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


def calibrate(base: RunConfig, *, n_agents: int = 4000, replicates: int = 3, max_evals: int = 1000,
              cutoff: int | None = None, log=print) -> Result:
    """Fit FREE to the national moments dated up to `cutoff` (all if None), starting from the priors."""
    base = prior_config(base)
    start_cfg = national_start(base, n_agents)
    moments = [m for m in national_moments() if cutoff is None or m.year <= cutoff]
    seeds = [int(base.seed) + 1000 * k for k in range(replicates)]
    theta0 = unbounded(np.array([p.get(start_cfg) for p in FREE]))
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


def fit_table(cfg: RunConfig, moments: list[Moment], seeds: list[int], fitted: set[str]) -> pd.DataFrame:
    """Each target against the model: mean and spread over replicates, standardised gap."""
    sim = simulate(cfg, moments, seeds)
    rows = []
    for j, m in enumerate(moments):
        rows.append({"target": m.id, "what": m.label, "kind": "hard" if m.hard else "soft",
                     "used_in_fit": m.id in fitted, "observed": m.value, "model_mean": sim[:, j].mean(),
                     "model_sd": sim[:, j].std(ddof=1) if len(seeds) > 1 else float("nan"),
                     "gap": sim[:, j].mean() - m.value, "z": (sim[:, j].mean() - m.value) / m.sigma})
    return pd.DataFrame(rows)


def wage_ladder_check(cfg: RunConfig, seed: int) -> pd.DataFrame:
    """Model mean pay by level relative to 初级工 against the survey's median ratios (wage_sh_2022_*)."""
    m = WorkforceModel(dataclasses.replace(cfg, seed=seed, n_agents=min(cfg.n_agents, 20000),
                                           horizon=HorizonParams(end_year=cfg.start_year)))
    row = m.row
    base = row["income_mean_level_1"]
    survey = pay_ratios(cfg.wages.apprentice_pay_ratio)
    return pd.DataFrame({"level": range(1, 8),
                         "survey_ratio": [survey[k] for k in range(1, 8)],
                         "model_ratio": [row[f"income_mean_level_{k}"] / base if row[f"level_{k}"] else float("nan")
                                         for k in range(1, 8)]})


def write_calibration(result: Result, path: Path, moments: list[Moment]) -> None:
    """The calibrated parameters as the config file the presets use, with provenance."""
    beh = to_dict(result.config)["behaviour"]
    data = {
        "provenance": {
            "written_by": "skillsim-calibrate region=national",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "method": "simulated method of moments, Nelder-Mead, common random numbers (sim/calibrate.py)",
            "targets": [m.id for m in moments],
            "objective_start": round(result.objective_start, 4),
            "objective": round(result.objective, 4),
            "evaluations": result.evaluations,
            "seconds": round(result.seconds, 1),
            "seeds": result.seeds,
            "n_agents": result.n_agents,
            "fitted": {k: round(v, 6) for k, v in result.values.items()},
        },
        "behaviour": {k: beh[k] for k in ("sit_rate", "pass_prob", "turnover_level_factor", "mastery_months",
                                          "initial_progress_scale", "entrant_junior_share",
                                          "entrant_school_shares")},
        "levers": {"studio": {"learning_multiplier": round(result.values["studio_learning_multiplier"], 4)}},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("# Calibrated behavioural parameters; written by skillsim-calibrate, do not edit by hand.\n"
                   + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)


def parse_args(argv: list[str]) -> dict:
    known = {"region": str, "n_agents": int, "replicates": int, "max_evals": int, "cutoff": int, "out": str,
             "write": str, "seed": int}
    out: dict = {"region": "national", "n_agents": 4000, "replicates": 3, "max_evals": 1000, "cutoff": None,
                 "out": None, "write": "auto", "seed": RunConfig().seed}
    for a in argv:
        key, sep, value = a.partition("=")
        if not sep or key not in known:
            raise ConfigError(key or a, value, "one of " + ", ".join(f"{k}=..." for k in known))
        try:
            out[key] = known[key](value)
        except ValueError:
            raise ConfigError(key, value, f"a {known[key].__name__}") from None
    if out["region"] not in ("national", "chongqing"):
        raise ConfigError("region", out["region"], "national or chongqing (the regions with observed shares)")
    return out


def main(argv: list[str] | None = None) -> None:
    """`skillsim-calibrate region=national [cutoff=2016] [n_agents=..] [replicates=..] [max_evals=..]`."""
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
        run(args)
    except SkillsimError as err:
        print(f"skillsim-calibrate: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None


def run(args: dict) -> Path:
    from .cli import compose_config

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = Path(args["out"] or f"results/calibration/{args['region']}_{stamp}")
    out.mkdir(parents=True, exist_ok=True)
    if args["region"] == "chongqing":
        return check_chongqing(compose_config(["region=chongqing", f"seed={args['seed']}"]), args, out, log)
    base = compose_config(["region=national", f"seed={args['seed']}"])
    res = calibrate(base, n_agents=args["n_agents"], replicates=args["replicates"], max_evals=args["max_evals"],
                    cutoff=args["cutoff"], log=log)
    all_moments = national_moments()
    check_seeds = [args["seed"] + 7919 * (k + 1) for k in range(max(args["replicates"], 8))]  # fresh seeds
    table = fit_table(national_start(res.config, args["n_agents"]), all_moments, check_seeds,
                      {m.id for m in res.fitted})
    table.to_csv(out / "fit.csv", index=False)
    wages = wage_ladder_check(res.config, args["seed"])
    wages.to_csv(out / "wage_ladder.csv", index=False)
    (out / "calibration.json").write_text(json.dumps({
        "region": "national", "cutoff": res.cutoff, "values": res.values, "objective_start": res.objective_start,
        "objective": res.objective, "evaluations": res.evaluations, "seconds": res.seconds, "seeds": res.seeds,
        "check_seeds": check_seeds, "n_agents": res.n_agents}, indent=2) + "\n", encoding="utf-8")
    log(f"objective {res.objective_start:.2f} -> {res.objective:.2f} in {res.evaluations} evaluations, "
        f"{res.seconds:.0f} s")
    log(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if res.cutoff is not None:
        for _, r in table[~table["used_in_fit"] & (table["kind"] == "hard")].iterrows():
            log(f"hindcast {r['target']}: observed {100 * r['observed']:.1f}%, forecast "
                f"{100 * r['model_mean']:.1f}% (sd {100 * r['model_sd']:.1f}), error {100 * r['gap']:+.1f} points")
    write = args["write"] == "true" or (args["write"] == "auto" and res.cutoff is None and args["out"] is None)
    if write:
        write_calibration(res, CALIBRATION_FILE, res.fitted)
        log(f"wrote {CALIBRATION_FILE}")
        docs = Path(__file__).resolve().parent.parent / "docs" / "model.md"
        if docs.exists():  # the parameter table shows the new defaults (a fresh process reads the file)
            import subprocess

            subprocess.run([sys.executable, "-m", "sim.paramtable", "--write", str(docs)], check=False)
    log(f"fit report in {out}")
    return out


def check_chongqing(cfg: RunConfig, args: dict, out: Path, log) -> Path:
    """Chongqing's two 2022 observations against the model started from the first of them."""
    first, second = target("cq_hs_2022_10"), target("cq_hs_2022")
    reg = dataclasses.replace(cfg.region, observed=first.date, skilled_mix=_scaled_mix(cfg, first.number))
    start = dataclasses.replace(cfg, region=reg, n_agents=args["n_agents"],
                                horizon=HorizonParams(start_year=int(first.date[:4]), end_year=2023))
    seeds = [args["seed"] + k for k in range(args["replicates"])]
    vals = []
    for s in seeds:
        m = WorkforceModel(dataclasses.replace(start, seed=s))
        while m.dates[-1] < second.date:
            m.step()
        vals.append(m.row["high_skill_share"])
    table = pd.DataFrame([{"target": second.id, "observed": second.number, "model_mean": float(np.mean(vals)),
                           "model_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan"),
                           "started_from": f"{first.id} ({first.number})"}])
    table.to_csv(out / "fit.csv", index=False)
    log("Chongqing has one observed date, so only a consistency check is possible:")
    log(table.to_string(index=False))
    return out


def _scaled_mix(cfg: RunConfig, share: float) -> list[float]:
    mix = list(cfg.region.skilled_mix)
    low, high = sum(mix[:2]), sum(mix[2:])
    return [x * (1 - share) / low for x in mix[:2]] + [x * share / high for x in mix[2:]]
