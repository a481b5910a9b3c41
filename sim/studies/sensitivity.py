"""`skillsim-sensitivity`: which inputs drive the forecast, by global sensitivity analysis.

    skillsim-sensitivity region=chongqing year=2030 method=morris
    skillsim-sensitivity region=chongqing year=2030 method=sobol

Inputs (sim.studies.inputs): the calibrated behavioural parameters over the calibration ensemble's
5%-95% spread, the structural inputs over their documented ranges and the three lever intensities over
0-3, or the groups chosen with `inputs=`, or any numeric key with `input.KEY=LO:HI`, or both from a YAML
file with `inputs_file=PATH` (recorded in the manifest; the command line wins). Outputs, in December of
each year: the high-skill share, the mean and median income, and the cumulative total spend from the
start (`cost`).

Method. The estimators are SALib's (a maintained library, used by EMA Workbench): Morris elementary
effects (μ* and σ, each with a bootstrap interval: SALib's for μ*, and for σ a percentile bootstrap over
trajectories of the elementary effects, which `elementary_effects` recomputes as SALib does) on `n`
trajectories of `levels` levels, and Sobol first-order and total indices (Saltelli's design, Jansen's
total estimator) on `n` base samples, with bootstrap intervals; the design's two base matrices are
independently scrambled Sobol' sequences (`saltelli_design`: SALib's sampler takes them from one
sequence, whose dimensions pair badly at small n). Every design point runs `replicates` times with replicate seeds 0..R-1, the same at
every point (common random numbers): an input that does not act gives exactly the same runs, so its
index is exactly zero, and the indices are computed on the replicate means.

Noise. The stochastic part of the variance is reported, not mixed into the indices unseen:
- at fixed inputs: `noise_replicates` runs at the nominal point (every input at its configured value,
  inside its range), their variance;
- pooled: the mean within-point variance of the design's replicates;
- unshared: the part of it that common random numbers do not cancel (a replicate's seed shifts every
  point alike, by its firms' draw for one; that shift drops out of the differences between points the
  indices are made of): the interaction mean square of points x replicates;
- each as a share of the variance of a single run (the points' part plus all the noise), and the noise
  floor: the index that noise alone would give an input on the replicate means (unshared variance / R /
  variance of the means).
An input whose interval reaches zero or the noise floor (the index noise alone would give it if the input
drew fresh noise at each point: sensitivity.noise_floor) is marked `distinguishable = false` and is not
ranked.

Output folder (written whole or not at all, with manifest.json and COMPLETE; an interrupted study
re-run with the same out= resumes from its journal): indices.csv, noise.csv, inputs.csv, design.csv (every
run: the inputs, the replicate, the outputs), config.yaml. `skillsim-report` draws it.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..config import RunConfig, to_dict
from ..errors import ConfigError, quiet_when_output_closed
from .batch import evaluate_in_chunks
from .inputs import (ALL_GROUPS, GROUPS, Input, as_run, check_range_ends, choose, configure, parse_input, read_inputs_file,
                     refuse_what_the_inputs_would_drop, warn_fixed_and_varied)
from .options import (NO_GROUPS, config_override, key_values, number, one_of, releases_claims, run_command,
                      study_option)

METHODS = ("morris", "sobol")
OUTPUTS = ("high_skill_share", "income_mean", "income_median", "cost")
OPTIONS = {"method": "morris", "year": None, "years": None, "n": None, "replicates": 2, "noise_replicates": 8,
           "levels": 4, "inputs": None, "inputs_file": None, "n_agents": 10000, "resamples": 1000, "quick": False,
           "out": None}
DEFAULT_N = {"morris": 20, "sobol": 64}
#: the fewest trajectories (Morris) or base samples (Sobol) whose bootstrap intervals a ranking is built on:
#: below, resampling 2-8 of them gives intervals far narrower than the index's uncertainty (a user trial's
#: Morris n=2 marked 11 inputs distinguishable on intervals of +-1%, every sigma interval [0, sigma]; Sobol
#: n=8 gave first-order indices summing to 1.37), so no input is ranked and the study says why
MIN_RANKED = {"morris": 10, "sobol": 32}
CHUNK = 32  # design points per chunk: progress and the journal advance this often (batch.evaluate_in_chunks)
USAGE = """usage: skillsim-sensitivity [region=NAME] [year=2030 | years=2030,2035] [method=morris|sobol]
                            [n=N] [replicates=2] [noise_replicates=8] [levels=4]
                            [inputs=parameters,structural,levers|assumptions] [inputs_file=PATH] [input.KEY=LO:HI ...]
                            [n_agents=10000] [resamples=1000] [quick=true] [out=DIR] [OVERRIDE ...]

Global sensitivity of the high-skill share, mean and median income and cumulative cost in December of
the year(s) to the inputs: Morris screening (n trajectories, default 20) or Sobol indices (n base
samples, default 64, a power of 2), both with bootstrap intervals and the stochastic share of the
variance. inputs= chooses groups (default parameters,structural,levers); inputs=assumptions varies the
numeric assumptions without a source over the ranges in docs/model.md section 12 (the calibration
ensemble draws them too). inputs_file=PATH: a YAML mapping of config keys to [LO, HI] and an optional groups: list
(input.KEY=LO:HI and inputs= on the command line win). quick=true: n=4 (Morris) or 8 (Sobol), 2,000
agents, at most 4 noise replicates and 200 resamples, unless given. Writes indices.csv, noise.csv,
inputs.csv, design.csv, config.yaml, manifest.json and COMPLETE into out (default
results/sensitivity/<time>_<region>_<method>); `skillsim-report OUT` draws it."""

Evaluate = Callable[[np.ndarray, list[int]], dict[str, np.ndarray]]  # X (n, d), replicates -> name: (n, R)


# --------------------------------------------------------------------------------------------------
# design and analysis, on any evaluator (tests give them analytic functions)
# --------------------------------------------------------------------------------------------------

def problem(inputs: list[Input]) -> dict:
    return {"num_vars": len(inputs), "names": [i.name for i in inputs], "bounds": [[i.lo, i.hi] for i in inputs]}


def design(inputs: list[Input], method: str, n: int, *, levels: int = 4, seed: int = 0) -> np.ndarray:
    if method == "morris":
        from SALib.sample import morris

        return morris.sample(problem(inputs), n, num_levels=levels, seed=seed)
    return saltelli_design(inputs, n, seed)


def saltelli_design(inputs: list[Input], n: int, seed: int) -> np.ndarray:
    """Saltelli's design for first-order and total indices, in SALib's layout (per base sample: A, then
    A with column j from B for each input j, then B), which SALib's sobol.analyze reads.

    SALib's own sampler takes A and B as the two halves of one scrambled Sobol' sequence of 2 x inputs
    dimensions. At small n some pairs of its dimensions are far from independent: with 22 inputs and
    n = 64, input 18's A and B columns differed by a quarter of what independent uniforms do in 8 of 10
    seeds, and its total index (1/22 for a sum of 22 uniforms) fell outside its 95% interval in 20 of
    20 seeds (an academic's trial). Here A and B are two Sobol' sequences of the inputs' dimension,
    scrambled independently, B's rows in random order (each still a low-discrepancy set; their columns
    independent)."""
    from SALib.util import scale_samples
    from scipy.stats import qmc

    d = len(inputs)
    a_rng, b_rng = (np.random.default_rng([seed, half]) for half in (0, 1))
    A = qmc.Sobol(d, scramble=True, seed=a_rng).random(n)
    # another scramble of the same sequence is a digital shift of it (A xor B nearly constant by row), so
    # B's rows are also put in random order: each base sample pairs with an unrelated point of B
    B = qmc.Sobol(d, scramble=True, seed=b_rng).random(n)[b_rng.permutation(n)]
    rows = np.repeat(A, d + 2, axis=0).reshape(n, d + 2, d)
    for j in range(d):
        rows[:, 1 + j, j] = B[:, j]
    rows[:, d + 1, :] = B
    return scale_samples(rows.reshape(n * (d + 2), d), problem(inputs))


def nominal_point(inputs: list[Input], cfg: RunConfig | None = None, log=None) -> np.ndarray:
    """Every input at the value the config runs with, clipped into its range (the middle without one).
    `log`: told of each input the clip moved (intensity=5 against a range of 0-3, or a draw's member outside
    the ensemble's 5-95% spread), which the noise runs and inputs.csv then hold at the range's end: the
    warning had said the setting was held there, and the clip was silent (a user trial)."""
    from .inputs import fitted_values

    fitted = fitted_values(cfg) if cfg is not None and any(i.group == "parameters" for i in inputs) else {}
    out = []
    for i in inputs:
        if cfg is None:
            v = 0.5 * (i.lo + i.hi)
        elif i.group == "parameters":
            v = fitted[i.name]
        else:  # a lever's intensity too: the scenario's (training_boost runs training at 2, not the status quo's 1)
            node = cfg
            for part in i.name.split("."):
                node = getattr(node, part)
            v = float(node)
        held = min(max(v, i.lo), i.hi)
        # a fitted parameter's central value may lie outside the ensemble's 5-95% spread (its range here):
        # said only for a draw's member, which the user chose, not on every default study
        if held != v and log is not None and (i.group != "parameters" or getattr(cfg, "draw", None) is not None):
            log(f"warning: the nominal point (inputs.csv, noise.csv) holds {i.name} at {held:g}, the end of its range "
                f"[{i.lo:g}, {i.hi:g}] nearest the config's {v:g}; widen the range (input.{i.name}=LO:HI) to hold "
                f"it there")
        out.append(held)
    return np.array(out)


def noise_floor(method: str, stochastic_variance: float, replicates: int, variance_of_means: float,
                levels: int = 4) -> float:
    """The index an input would get from stochastic noise alone, on the replicate means, if a change of
    the input drew a fresh random path (common random numbers make it smaller; so this is an upper
    bound): Sobol total index  s2 / R / V;  Morris mu*  E|N(0, 2 s2 / R)| / delta  (delta: the step
    in units of the input's range, levels / (2 (levels - 1)))."""
    if not np.isfinite(stochastic_variance) or stochastic_variance <= 0:
        return 0.0
    if method == "sobol":
        return stochastic_variance / replicates / variance_of_means if variance_of_means > 0 else float("inf")
    delta = levels / (2 * (levels - 1))
    return float(np.sqrt(2 * stochastic_variance / replicates) * np.sqrt(2 / np.pi) / delta)


def elementary_effects(X: np.ndarray, y: np.ndarray, levels: int = 4) -> np.ndarray:
    """The Morris elementary effects (trajectories x inputs) as SALib computes them (in output units per
    input range: the output's change over a step of delta = levels / (2 (levels - 1)) of the range,
    signed by the step's direction), kept here because SALib's analysis returns only their statistics:
    the bootstrap of σ resamples them."""
    d = X.shape[1]
    Xt, yt = X.reshape(-1, d + 1, d), y.reshape(-1, d + 1)
    dx, dy = np.diff(Xt, axis=1), np.diff(yt, axis=1)  # step k of a trajectory moves one input
    moved = np.abs(dx).argmax(axis=2)
    sign = np.sign(np.take_along_axis(dx, moved[..., None], axis=2)[..., 0])
    ee = np.empty((len(yt), d))
    ee[np.arange(len(yt))[:, None], moved] = dy * sign / (levels / (2 * (levels - 1)))
    return ee


def sigma_interval(ee: np.ndarray, resamples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """95% bootstrap interval of Morris σ per input, resampling whole trajectories (a percentile
    interval: σ is not negative and its bootstrap distribution is skewed, unlike μ*'s). NaN with
    fewer than two trajectories."""
    t = len(ee)
    if t < 2:
        return np.full(ee.shape[1], np.nan), np.full(ee.shape[1], np.nan)
    pick = np.random.default_rng(seed).integers(t, size=(resamples, t))
    sig = ee[pick].std(axis=1, ddof=1)  # (resamples, inputs)
    lo, hi = np.percentile(sig, [2.5, 97.5], axis=0)
    return lo, hi


def indices(inputs: list[Input], method: str, X: np.ndarray, Y: dict[str, np.ndarray], *, levels: int = 4,
            resamples: int = 1000, seed: int = 0, stochastic: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per output and input: the indices with their 95% bootstrap intervals, on the replicate
    means, and the noise floor (`noise_floor`, from the stochastic variance of each output);
    `distinguishable` if the interval lies above both zero and the noise floor, ranked only then."""
    rows = []
    prob = problem(inputs)
    per = len(inputs) + (1 if method == "morris" else 2)  # runs a trajectory (a base sample) takes
    ranked = len(X) // per >= MIN_RANKED[method]
    for name, y in Y.items():
        mean = y.mean(axis=1)
        var_means = float(np.var(mean, ddof=1)) if len(mean) > 1 else 0.0
        floor = noise_floor(method, (stochastic or {}).get(name, 0.0), y.shape[1], var_means, levels)
        if method == "morris":
            from SALib.analyze import morris

            r = morris.analyze(prob, X, mean, num_resamples=resamples, conf_level=0.95, num_levels=levels, seed=seed)
            s_lo, s_hi = sigma_interval(elementary_effects(X, mean, levels), resamples, seed)
            for k, i in enumerate(inputs):
                lo = float(r["mu_star"][k] - r["mu_star_conf"][k])
                rows.append({"output": name, "input": i.name, "group": i.group, "mu": float(r["mu"][k]),
                             "mu_star": float(r["mu_star"][k]), "mu_star_lo95": max(lo, 0.0),
                             "mu_star_hi95": float(r["mu_star"][k] + r["mu_star_conf"][k]),
                             "sigma": float(r["sigma"][k]), "sigma_lo95": float(s_lo[k]),
                             "sigma_hi95": float(s_hi[k]), "noise_floor": floor,
                             "distinguishable": ranked and bool(lo > max(0.0, floor))})
        else:
            from SALib.analyze import sobol

            if np.var(mean) == 0:  # no input moves this output: every index is zero
                r = {k: np.zeros(len(inputs)) for k in ("S1", "S1_conf", "ST", "ST_conf")}
            else:
                r = sobol.analyze(prob, mean, calc_second_order=False, num_resamples=resamples, conf_level=0.95,
                                  seed=seed)
            for k, i in enumerate(inputs):
                lo = float(r["ST"][k] - r["ST_conf"][k])
                rows.append({"output": name, "input": i.name, "group": i.group,
                             "S1": float(r["S1"][k]), "S1_lo95": float(r["S1"][k] - r["S1_conf"][k]),
                             "S1_hi95": float(r["S1"][k] + r["S1_conf"][k]), "ST": float(r["ST"][k]),
                             "ST_lo95": lo, "ST_hi95": float(r["ST"][k] + r["ST_conf"][k]), "noise_floor": floor,
                             "distinguishable": ranked and bool(lo > max(0.0, floor))})
    df = pd.DataFrame(rows)
    key = "mu_star" if method == "morris" else "ST"
    df["rank"] = np.nan
    for name, part in df[df["distinguishable"]].groupby("output"):
        df.loc[part.index, "rank"] = part[key].rank(ascending=False, method="min")
    return df


def noise(Y: dict[str, np.ndarray], fixed: dict[str, np.ndarray], method: str = "sobol",
          levels: int = 4) -> pd.DataFrame:
    """The stochastic part of each output's variance: at fixed inputs, pooled over the design, as
    shares of the variance of single runs, and the noise floor of the method's index on replicate
    means (`noise_floor`: the same value and units as in indices.csv; Morris: output units)."""
    rows = []
    for name, y in Y.items():
        r = y.shape[1]
        pooled = float(np.mean(np.var(y, axis=1, ddof=1))) if r > 1 else float("nan")
        unshared = _unshared_variance(y)
        at_fixed = float(np.var(fixed[name], ddof=1)) if fixed[name].size > 1 else float("nan")
        means = float(np.var(y.mean(axis=1), ddof=1))
        single = _single_run_variance(y, pooled, unshared) if r > 1 else _single_run_variance_one_replicate(y, at_fixed)
        floor_var = stochastic_for_floor(pooled, unshared, at_fixed)
        rows.append({"output": name, "replicates": r, "fixed_replicates": int(fixed[name].size),
                     "variance_single_runs": single, "stochastic_variance_fixed": at_fixed,
                     "stochastic_variance_pooled": pooled, "stochastic_variance_unshared": unshared,
                     "stochastic_share_fixed": at_fixed / single if single > 0 else float("nan"),
                     "stochastic_share_pooled": pooled / single if single > 0 else float("nan"),
                     # as `indices` takes it (stochastic_for_floor)
                     "noise_floor": noise_floor(method, floor_var, r, means, levels) if means > 0 else float("nan")})
    return pd.DataFrame(rows)


def _unshared_variance(y: np.ndarray) -> float:
    """The noise that common random numbers do not cancel: the interaction mean square of points x
    replicates (y = mean + point + replicate + rest; the rest's variance). Replicate r runs with the
    same seed at every point, so whatever it shifts at every point alike (its firms' draw, which moves
    incomes by several per cent) is in the pooled within-point variance but drops out of every
    difference between points, which is what the indices are made of. NaN with one point or one
    replicate."""
    p, r = y.shape
    if p < 2 or r < 2:
        return float("nan")
    rest = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + y.mean()
    return float((rest ** 2).sum() / ((p - 1) * (r - 1)))


def _single_run_variance(y: np.ndarray, pooled: float, unshared: float) -> float:
    """The variance of one run at a random point of the design with its own noise: the points' part
    (the variance of the replicate means less the unshared noise they still carry) plus all of the noise
    (pooled). The plain variance over the design's runs counted the shared noise only R times, so the
    noise's share of it could pass 100% (169% of an income with two replicates)."""
    if not np.isfinite(pooled) or not np.isfinite(unshared):
        return float(np.var(y, ddof=1)) if y.size > 1 else float("nan")
    between = max(float(np.var(y.mean(axis=1), ddof=1)) - unshared / y.shape[1], 0.0)
    return between + pooled


def _single_run_variance_one_replicate(y: np.ndarray, at_fixed: float) -> float:
    """With one replicate every point runs on the same seed, so the design's spread holds none of the
    noise a seed shares with every point: the points' part (the design's variance, which still holds the
    unshared noise: at most) plus the noise at the nominal point (all of it)."""
    spread = float(np.var(y, ddof=1)) if y.size > 1 else float("nan")
    return spread + at_fixed if np.isfinite(at_fixed) else spread


def stochastic_for_floor(pooled: float, unshared: float, at_fixed: float) -> float:
    """The noise variance the floor is worked out from: the unshared part where the design measures it
    (the indices compare points, which share their replicates' seeds), else the pooled within-point
    variance, else the variance at the nominal point. With one replicate only the last is known, and it
    holds the shared noise as well: that floor is an upper bound, which can hide a real effect (two
    replicates or more measure the part that matters)."""
    for v in (unshared, pooled, at_fixed):
        if np.isfinite(v):
            return v
    return float("nan")


def runs_table(inputs: list[Input], X: np.ndarray, reps: list[int], Y: dict[str, np.ndarray],
               cfg: RunConfig | None = None) -> pd.DataFrame:
    """One row per run: the point, the replicate, the inputs as the run took them (`as_run`) and the
    outputs (design.csv). With `cfg` (the study's), a varied uncertified share also gives the population
    each run had: a study keeps the observed skilled stock (`uncertainty.apply_structural`), and a row
    given back to skillsim without it ran another workforce (2.8 points apart in 2026, a user trial)."""
    X = as_run(inputs, X)
    table = pd.DataFrame(np.repeat(X, len(reps), axis=0), columns=[i.name for i in inputs])
    names = [i.name for i in inputs]
    if cfg is not None and "region.uncertified_share" in names and "region.population" not in names:
        from .uncertainty import apply_structural

        j = names.index("region.uncertified_share")
        pops = [apply_structural(cfg, {"region.uncertified_share": float(v)}).region.population for v in X[:, j]]
        table.insert(len(inputs), "region.population", np.repeat(pops, len(reps)))
    table.insert(0, "point", np.repeat(np.arange(len(X)), len(reps)))
    table.insert(1, "replicate", np.tile(reps, len(X)))
    for k, y in Y.items():
        table[k] = y.ravel()
    return table


def study(inputs: list[Input], evaluate: Evaluate, *, method: str, n: int, replicates: int, noise_replicates: int,
          levels: int = 4, resamples: int = 1000, seed: int = 0, nominal: np.ndarray | None = None,
          log=print) -> dict:
    """Design, runs (in chunks, with progress) and analysis. Returns the tables."""
    X = design(inputs, method, n, levels=levels, seed=seed)
    reps = list(range(replicates))
    at_nominal = noise_replicates if noise_replicates > 1 else 0  # one alone says nothing about noise
    log(f"sensitivity: {method}, {len(inputs)} inputs, {len(X)} points x {replicates} replicates "
        f"= {len(X) * replicates} runs, then {at_nominal} at the nominal point")
    if n < MIN_RANKED[method]:
        log(f"sensitivity: warning: n={n}: below {MIN_RANKED[method]} {'trajectories' if method == 'morris' else 'base samples'} "
            "the bootstrap intervals are far narrower than the indices' uncertainty, so no input is ranked or marked "
            f"distinguishable (indices.csv still gives every index); n={MIN_RANKED[method]} or more ranks them")
    if replicates == 1:
        log("sensitivity: replicates=1: the noise floor comes from the noise at the nominal point, the part every "
            "point shares with its seed included (it cancels between points): an upper bound that can hide a real "
            "effect; replicates=2 or more measure the part that matters")
    Y = evaluate_in_chunks(evaluate, X, reps, chunk=CHUNK, log=log, prog="sensitivity")
    x0 = nominal if nominal is not None else nominal_point(inputs)
    fixed = {k: v[0] for k, v in evaluate(x0[None, :], list(range(at_nominal))).items()} \
        if at_nominal else {k: np.array([]) for k in Y}
    if at_nominal:
        log(f"sensitivity: {at_nominal} runs at the nominal point done")
    design_rows = runs_table(inputs, X, reps, Y, getattr(evaluate, "cfg", None))
    noise_table = noise(Y, fixed, method, levels)
    stochastic = {r["output"]: stochastic_for_floor(r["stochastic_variance_pooled"], r["stochastic_variance_unshared"],
                                                    r["stochastic_variance_fixed"]) for _, r in noise_table.iterrows()}
    return {"indices": indices(inputs, method, X, Y, levels=levels, resamples=resamples, seed=seed,
                               stochastic=stochastic),
            "noise": noise_table, "design": design_rows,
            "inputs": pd.DataFrame([{**dataclasses.asdict(i), "nominal": float(v)} for i, v in zip(inputs, x0)])}


# --------------------------------------------------------------------------------------------------
# the model as evaluator
# --------------------------------------------------------------------------------------------------

def read_outputs(model, years: tuple[int, ...]) -> dict[str, float]:
    """The outputs in December of each year (cost: total spend from the start to then, yuan)."""
    s = model.series()
    out = {}
    for year in years:
        upto = s[s["date"] <= f"{year}-12"]
        last = upto.iloc[-1]
        out.update({f"high_skill_share@{year}": float(last["high_skill_share"]),
                    f"income_mean@{year}": float(last["income_mean"]),
                    f"income_median@{year}": float(last["income_median"]),
                    f"cost@{year}": float(upto["spend_total"].iloc[1:].sum())})
    return out


class ModelEvaluator:
    """Design points as configs (sim.studies.inputs.configure) with replicate seeds, run by the shared
    journalled batch runner (every core; finished runs kept for a resumed study)."""

    def __init__(self, cfg: RunConfig, inputs: list[Input], years: tuple[int, ...], journal: Path | None, log=print,
                 prog: str = "sensitivity"):
        from .batch import JournalledBatch

        self.cfg, self.inputs, self.years = cfg, inputs, years
        self.batch = JournalledBatch(journal, tag=list(years), log=lambda m: log(f"{prog}: " + m))

    @property
    def runs(self) -> int:
        """Runs actually run so far (not read back from the journal): the progress line's ETA."""
        return self.batch.runs

    def __call__(self, X: np.ndarray, reps: list[int]) -> dict[str, np.ndarray]:
        configs = [dataclasses.replace(configure(self.cfg, self.inputs, x), replicate=r) for x in X for r in reps]
        res = self.batch.run(configs, functools.partial(read_outputs, years=self.years))
        keys = list(res[0])
        return {k: np.array([r[k] for r in res]).reshape(len(X), len(reps)) for k in keys}


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------

def parse(argv: list[str]) -> tuple[dict, list[tuple[str, str]], list[str]]:
    """(options, input.KEY=LO:HI pairs, config overrides); one-line errors."""
    opts, extra, overrides = dict(OPTIONS), [], []
    given: set[str] = set()
    from ..documents import where

    usage = USAGE.replace("docs/model.md", where("docs/model.md"))  # a file an installed user has
    for key, value in key_values(argv, usage, "skillsim-sensitivity"):
        if key in ("year", "years") and ({"year", "years"} & given) - {key}:  # the later one won, silently
            raise ConfigError(key, value, "year= or years=, not both (years=2030,2035 gives both years)")
        given.add(key)
        if key == "method":
            opts[key] = one_of(key, value, METHODS)
        elif key == "year":
            opts["years"] = (number(key, value, 1990, 2100, int),)
        elif key == "years":
            try:
                opts["years"] = tuple(sorted({int(v) for v in value.split(",") if v}))
            except ValueError:
                raise ConfigError(key, value, "a comma list of years") from None
            if not opts["years"]:
                raise ConfigError(key, value, "a comma list of years")
        elif key == "n":  # one trajectory (base sample) gives a zero-width bootstrap interval and no sigma
            opts[key] = number(key, value, 2, 100_000, int, allowed="an integer in [2, 100000] (the intervals "
                               "resample trajectories or base samples: one has no spread)")
        elif key == "replicates":
            opts[key] = number(key, value, 1, 100_000, int)
        elif key == "levels":
            opts[key] = number(key, value, 2, 100_000, int)
            if opts[key] % 2:  # Morris's design needs an even grid for its step of levels / (2 (levels - 1))
                raise ConfigError(key, opts[key], "an even integer >= 2 (the Morris grid)")
        elif key == "noise_replicates":
            opts[key] = number(key, value, 0, 10_000, int)
            if opts[key] == 1:  # one run has no variance
                raise ConfigError(key, 1, "0 (none) or an integer >= 2")
        elif key == "resamples":
            opts[key] = number(key, value, 10, 100_000, int)
        elif key == "inputs_file":
            opts[key] = value
        elif not study_option(key, value, opts, extra, ALL_GROUPS):
            overrides.append(config_override(key, value, "skillsim-sensitivity", OPTIONS))
    if opts["quick"]:  # a small preset for what was not given: an explicit value wins (n_agents=3000 ran 2000)
        quick = {"n": opts["n"] or (4 if opts["method"] == "morris" else 8), "n_agents": min(opts["n_agents"], 2000),
                 "noise_replicates": min(opts["noise_replicates"], 4), "resamples": min(opts["resamples"], 200)}
        opts.update({k: v for k, v in quick.items() if k not in given})
    opts["n"] = opts["n"] or DEFAULT_N[opts["method"]]
    if opts["replicates"] == 1 and opts["noise_replicates"] == 0:  # nothing would measure the noise
        raise ConfigError("noise_replicates", 0, "an integer >= 2 when replicates=1 (else no estimate of the noise)")
    if opts["method"] == "sobol" and opts["n"] & (opts["n"] - 1):
        raise ConfigError("n", opts["n"], "a power of 2 for method=sobol (Saltelli's design)")
    return opts, extra, overrides


def setup(argv: list[str], what: str, parse_fn, check=None) -> tuple:
    """Shared by the study commands: options, the composed config (horizon cut to the last year),
    the chosen inputs and the output folder (which must be new). `check(opts, inputs)`, if given, is the
    command's own check of its options against the inputs; it runs before any folder is made, so bad
    input creates nothing."""
    from ..cli import compose_config

    opts, extra, overrides = parse_fn(argv)
    if not any(o.startswith("n_agents=") for o in overrides):
        overrides.append(f"n_agents={opts['n_agents']}")
    cfg = compose_config(overrides)
    years = opts.get("years") or (cfg.region.high_skill_target_year or cfg.horizon.end_year,)
    for y in years:
        if not cfg.start_year <= y <= cfg.horizon.end_year:
            # not given: say where it came from (the other default, the horizon's end, is always inside it)
            default = "" if opts.get("years") else f"; {y} is the default, the region's high-skill target year: give year=Y"
            raise ConfigError(opts.get("years_field", "year"), y,
                              f"a year of the forecast horizon, {cfg.start_year}-{cfg.horizon.end_year}{default}")
    opts.pop("years_field", None)  # only for the message above: not an option to record
    cfg = dataclasses.replace(cfg, horizon=dataclasses.replace(cfg.horizon, end_year=max(years)))
    groups, from_file = None, []
    if opts.get("inputs_file"):  # the file's entries first: the command line's input.KEY and inputs= win
        groups, from_file, opts["inputs_file_content"] = read_inputs_file(cfg, opts["inputs_file"])
    opts["inputs"] = opts["inputs"] or ",".join(GROUPS if groups is None else groups) or NO_GROUPS
    given = from_file + [parse_input(cfg, k, v) for k, v in extra]
    inputs = choose(cfg, () if opts["inputs"] == NO_GROUPS else tuple(opts["inputs"].split(",")), given)
    check_range_ends(cfg, [i for i in inputs if any(i is g for g in given)],  # the command line's wins over the file's
                     {id(i): f"inputs_file {opts['inputs_file']}: {i.name}" for i in from_file})
    if not inputs:
        if groups == () and opts["inputs"] == NO_GROUPS and not given:  # the file's `groups: []`, and no key
            raise ConfigError(f"inputs_file {opts['inputs_file']}: groups", [], "a list of groups, or [] with "
                              "keys of the file or input.KEY=LO:HI that give at least one input")
        raise ConfigError("inputs", opts["inputs"], "groups or input.KEY=LO:HI that give at least one input")
    for i in inputs:  # a lever that is off ignores its settings: the study would have turned it on, silently
        part = i.name.split(".")
        if part[0] == "levers" and len(part) > 2 and not getattr(cfg.levers, part[1]).enabled:
            raise ConfigError(f"levers.{part[1]}.enabled", False,
                              f"true while the study varies {i.name} (a lever that is off ignores its settings; "
                              f"scenario=no_policy turns every lever off): turn it on (levers.{part[1]}.enabled=true) "
                              f"or leave {i.name} out of the inputs (inputs= without {i.group})")
    for i in inputs:  # a run that ends before the study's year: its last December was read as that year's
        if i.name == "horizon.end_year" and i.lo < max(years):
            raise ConfigError("input.horizon.end_year", f"{i.lo:g}:{i.hi:g}", f"a range from {max(years)} up: the "
                              f"study reads December {max(years)}, which a run ending earlier does not reach")
    if check is not None:
        check(opts, inputs)
    sensitivity = what == "sensitivity"  # discovery has no nominal point: the setting does nothing there
    refuse_what_the_inputs_would_drop(cfg, inputs, "skillsim-sensitivity" if sensitivity else "skillsim-discover")
    warn_fixed_and_varied(cfg, inputs, overrides, "skillsim-sensitivity" if sensitivity else "skillsim-discover",
                          nominal=sensitivity)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = Path(opts["out"] or f"results/{what}/{stamp}_{cfg.region.name}" + (f"_{opts['method']}" if "method" in opts else ""))
    from .options import check_writable

    out = check_writable(out, what, unique=opts["out"] is None)  # before the first chunk of runs (its journal,
    # then the folder, go there)
    return opts, overrides, cfg, tuple(years), inputs, out


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    run_command(run, "skillsim-sensitivity", argv, what="sensitivity folder")


@releases_claims
def run(argv: list[str]) -> Path:
    from ..results import calibration_checksums, config_file_checksums, git_commit, package_versions
    from .forecast import write_folder

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    opts, overrides, cfg, years, inputs, out = setup(argv, "sensitivity", parse)
    config_files = config_file_checksums(overrides)  # as the runs read them
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    journal = out.parent / f".{out.name}.runs.jsonl"
    evaluator = ModelEvaluator(cfg, inputs, years, journal, log)
    tables = study(inputs, evaluator, method=opts["method"], n=opts["n"], replicates=opts["replicates"],
                   noise_replicates=opts["noise_replicates"], levels=opts["levels"], resamples=opts["resamples"],
                   seed=cfg.seed % (2**32), nominal=nominal_point(inputs, cfg, log), log=log)
    tables["config"] = to_dict(cfg)
    manifest = {"kind": "sensitivity", "command": ["skillsim-sensitivity", *argv], "overrides": overrides,
                "region": cfg.region.name, "n_agents": cfg.n_agents, "seed": cfg.seed, "years": list(years),
                "outputs": list(OUTPUTS), "options": {k: v for k, v in opts.items() if k != "out"},
                "runs": len(evaluator.batch.used), "design_runs": len(tables["design"]), "library": "SALib", "versions": package_versions("SALib", "numba"),
                **calibration_checksums(), **config_files,
                "git_commit": git_commit(), "started": started}
    if "inputs_file_content" in opts:  # its path, text and ranges: the folder says what ran
        manifest["options"].pop("inputs_file_content")
        manifest["inputs_file"] = opts["inputs_file_content"]
    path = write_folder(out, tables, manifest, what="sensitivity")
    evaluator.batch.close()
    top = tables["indices"]
    key = "mu_star" if opts["method"] == "morris" else "ST"
    few = opts["n"] < MIN_RANKED[opts["method"]]
    for year in years:  # each year the study asked for, named
        head = top[top["output"] == f"high_skill_share@{year}"].sort_values("rank").dropna(subset=["rank"]).head(5)
        ranked = ", ".join(f"{r['input']} {r[key]:.3g}" for _, r in head.iterrows())
        why = (f"none ranked: n={opts['n']} is below the {MIN_RANKED[opts['method']]} a ranking needs (indices.csv "
               "gives each input's index and interval)" if few else
               "none ranked: no input's 95% interval lies above both zero and the noise floor (indices.csv gives "
               "each input's index, interval and the floor; more replicates or a wider range narrow them)")
        log(f"sensitivity: high-skill share in December {year}, top inputs ({key}): " + (ranked or why))
    log(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
