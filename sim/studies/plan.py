"""`skillsim-plan`: the least-cost lever mix that reaches a target share by a target year with a
stated probability (or, with `objective=max_share`, the highest share within a budget).

    skillsim-plan region=chongqing target.share=0.35 target.year=2030 confidence=0.8

Method (for a noisy simulator; the budget is in the manifest):
1. **Samples.** A plan evaluates every candidate mix on the same `samples` futures (common random
   numbers). With `uncertainty=true` (the default when the calibration ensemble exists) sample i is
   joint draw i of the behavioural parameters (the fitted ones and the assumptions without a source)
   and the structural inputs (sim.studies.uncertainty) with replicate i; otherwise replicate i. The probability of meeting the target is the share of
   samples whose December share of the target year reaches it. The cost of a mix is its cumulative
   spend (of `funder`) from the start to December of the target year, less the cost base's spend on
   the same sample: the status quo levers (`cost_base=status_quo`) or no policy (`no_policy`). With
   `discount=r` each month's spend is discounted to the start at r a year (nominal yuan, as the model
   books them; r = 0, the default, is the plain sum).
2. **Search (sample-average approximation).** A scrambled Sobol design of `candidates` mixes in the
   box of the free levers, plus the box's two corners and the status quo (every free lever at 1),
   evaluated on the search samples. From the
   cheapest mix that meets the target (mean cost, probability >= confidence), each free lever in turn
   is bisected towards its lower bound `refine` times, keeping the target met: with one free lever
   this finds the least intensity to (hi - lo) / 2^refine. With several, each lever in use is then
   traded for each other one (dropped to its bound while the other is bisected up until the target
   is met again), keeping the cheapest, and the bisection runs again from a trade that won (at most
   ROUNDS rounds); then each lever is raised to its bound with each other one lowered as far as the
   target allows (`part_for_part`). A budget plan (`objective=max_share`) bisects upwards and trades as far as the
   budget allows, in part too: each lever raised to its upper bound while another is lowered only as
   far as the budget needs (`_part_for_all`).
3. **Re-evaluation.** The `finalists` cheapest feasible mixes are run again on `fresh` samples the
   search never used, which removes the optimiser's winner's bias (if none of them holds there, the
   next `finalists` in order of cost, and so on; then, from the failed finalist cheaper than the
   first that holds (or, if none holds within the budget, the failed one within it) that came nearest
   to holding, and from the `finalists` cheapest of them, each free lever alone is raised by bisection,
   `refine` steps). A finalist is
   eligible if its fresh success rate
   is at least the confidence (the planner's request, not an indifference zone below it); the
   cheapest eligible one is the answer, and its fresh rate, with its 95% Wilson interval, is the
   stated probability. A budget plan's finalists sit at the budget's edge on the search samples, so
   about half cost more than the budget on the fresh ones: each that would reach more than the best
   that fits is moved along two lines (towards that mix, and towards the lower corner) to where it
   fits (`fit_budget`), and the highest mean share within the budget on the fresh samples is the
   answer. Such a mix is chosen on the samples that state it: its cost fits the budget on them by
   construction, which choice.json says (`budget_fitted_on_fresh_samples`, with the mean cost's
   standard error: how far other samples may put it over), and finalists.csv holds the moved mixes.
   **Confirmation.** The fresh samples chose the answer, so its rate (or cost) there leans its way: it is
   run once more on `fresh` samples no step saw (`confirm`), and the statement and choice.json's
   `confirmation` give what they say of it, and whether the probability still reaches the confidence.
4. **Infeasible.** If no mix meets the target within the bounds (and budget), the plan says so, with
   the best probability and share it found, and exits 0: no made-up answer.

Outputs (written whole or not at all, with manifest.json and COMPLETE): `choice.json` (the answer or
the infeasibility statement), `candidates.csv` (every mix evaluated, on which samples, its probability,
mean share and mean cost), `finalists.csv`, `frontier_probability.csv` and `frontier_share.csv` (the
mixes no other beats on both cost and probability, or cost and mean share), `near_optimal.csv` (feasible
mixes within `tolerance` of the chosen mix's cost, all on the search samples, less those that fell short
on the fresh samples), `marginal_cost.csv` (yuan per point of mean share for each
free lever at the chosen mix, from a step of 0.1 on the fresh samples, up or, at the upper bound, down,
and stated as the gain of going up from gain_from_intensity to gain_to_intensity; empty if it adds none),
`trajectory.csv` (the monthly high-skill share of the chosen mix and of the cost base on the same fresh
samples, as quantiles: the fan chart; for an infeasible target, the best mix found, labelled
best_found, on the fresh samples if any finalist was tried there, else on the search samples).
A budget plan has no target: its tables leave the probability columns empty and
frontier_probability.csv has no rows. `skillsim-report` draws the folder (sim.report.plan).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..config import RunConfig, to_dict
from ..errors import ConfigError, MissingSetting, SkillsimError, quiet_when_output_closed
from .options import boolean, config_override, key_values, number, path_option, releases_claims, run_command

LEVERS = ("training", "competition", "studio")
#: categorical lever settings a plan can search over (`training.allocation=random,near_standard`):
#: the search runs once per combination, on the same samples, and the best answer wins
SETTINGS = {"training.allocation": ("random", "lowest_level", "near_standard"),
            "competition.selection": ("random", "progress")}
FUNDERS = ("total", "government", "employer")
OPTIONS = {"target.share": None, "target.year": None, "confidence": 0.8, "objective": "min_cost", "budget": None,
           "levers": "training,competition,studio", "funder": "total", "cost_base": "status_quo",
           "samples": 16, "fresh": 32, "candidates": 16, "refine": 4, "finalists": 3, "tolerance": 0.1,
           "discount": 0.0, "training.allocation": None, "competition.selection": None,
           "uncertainty": None, "n_agents": 20000, "out": None, "preview": False}
BOUNDS = {"lo": 0.0, "hi": 3.0}
FIT_XTOL = 1e-3  #: how close to the budget a budget plan's finalist is moved along a line (fit_budget)
ROUNDS = 3  #: at most this many rounds of trading levers and climbing again (sim.studies.plan.search)
USAGE = """usage: skillsim-plan [region=NAME] target.share=S target.year=Y [confidence=0.8]
                     [objective=min_cost|max_share] [budget=YUAN] [levers=training,competition,studio]
                     [LEVER.lo=0] [LEVER.hi=3] [LEVER.fixed=X] [funder=total|government|employer]
                     [cost_base=status_quo|no_policy] [discount=0]
                     [training.allocation=A[,B..]] [competition.selection=S[,T]] [samples=16] [fresh=32] [candidates=16] [refine=4]
                     [finalists=3] [tolerance=0.1] [uncertainty=true|false] [n_agents=20000] [preview=true]
                     [out=DIR] [OVERRIDE ...]

The least-cost mix of lever intensities that reaches target.share by December of target.year with
probability >= confidence (objective=max_share: the highest mean share within budget). Costs are yuan,
cumulative to the target year, over the cost base, discounted to the start at `discount` a year.
preview=true: 8 search and 16 fresh samples, 8 candidates, 5,000 agents, unless given. Any other key=value
is a skillsim config override (not the intensity or enabled of a lever it plans, nor scenario=: the plan
sets those in every run). Writes choice.json,
candidates.csv, finalists.csv, frontier_probability.csv, frontier_share.csv, near_optimal.csv,
marginal_cost.csv, trajectory.csv, config.yaml, manifest.json and COMPLETE into out (default
results/plans/<time>_<region>); `skillsim-report OUT` draws it."""


# --------------------------------------------------------------------------------------------------
# the search, on any evaluator (tests give it known functions)
# --------------------------------------------------------------------------------------------------

@dataclass
class Box:
    """The free levers' bounds; fixed levers keep their values."""

    names: list[str]
    lo: np.ndarray
    hi: np.ndarray
    fixed: dict[str, float] = field(default_factory=dict)

    def mix(self, x: np.ndarray) -> dict[str, float]:
        return {**self.fixed, **{n: float(v) for n, v in zip(self.names, x)}}

    def words(self, x: np.ndarray) -> str:
        """The mix as a person reads it: each lever's intensity (a multiple of its status-quo level)."""
        return ", ".join(f"{n} x{v:.2f}" for n, v in self.mix(x).items())


@dataclass
class Evaluation:
    """One mix on one sample set: per sample, the share reached and the incremental cost."""

    x: tuple
    which: str  # "search", "fresh" or "confirm" (the answer's alone, `confirm`)
    share: np.ndarray
    cost: np.ndarray
    target: float
    setting: tuple = ()  # the categorical lever settings searched over (SETTINGS order), if any

    @property
    def success(self) -> np.ndarray:
        return self.share >= self.target

    @property
    def p(self) -> float:
        return float(self.success.mean())

    @property
    def mean_cost(self) -> float:
        return float(self.cost.mean())

    @property
    def mean_share(self) -> float:
        return float(self.share.mean())


Evaluator = Callable[[list[tuple], str], list[Evaluation]]


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a success rate k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def pareto(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other has at lower-or-equal cost and higher-or-equal value (one
    strictly better); points are (cost, value)."""
    keep = []
    for i, (c, v) in enumerate(points):
        if not any((c2 <= c and v2 >= v and (c2 < c or v2 > v)) for c2, v2 in points):
            keep.append(i)
    return sorted(keep, key=lambda i: points[i][0])


def search(evaluate: Evaluator, box: Box, *, confidence: float, candidates: int, refine: int, finalists: int,
           objective: str = "min_cost", budget: float | None = None, seed: int = 0, log=print,
           anchors: list[np.ndarray] = ()) -> dict:
    """Steps 2-4 of the module docstring. Returns the evaluations and the choice. `anchors` are mixes
    evaluated with the design (the status quo: often the cheapest answer, which a random design
    would miss)."""
    from scipy.stats import qmc

    d = len(box.names)
    seen: dict[tuple, Evaluation] = {}

    def run(xs: list[np.ndarray], which: str = "search") -> list[Evaluation]:
        keys = [tuple(round(float(v), 12) for v in x) for x in xs]
        todo = [k for k in dict.fromkeys(keys) if (k, which) not in seen]
        for k, ev in zip(todo, evaluate(list(todo), which) if todo else []):
            seen[(k, which)] = ev
        return [seen[(k, which)] for k in keys]

    def ok(ev: Evaluation) -> bool:
        within = budget is None or ev.mean_cost <= budget
        return within and (objective == "max_share" or ev.p >= confidence)

    def better(a: Evaluation, b: Evaluation | None) -> bool:
        if b is None:
            return True
        return a.mean_cost < b.mean_cost if objective == "min_cost" else a.mean_share > b.mean_share

    with warnings.catch_warnings():  # candidates=6: a Sobol design of 6 points is still spread; scipy's
        # note that its balance needs a power of 2 printed as a raw UserWarning in the plan's output (a user trial)
        warnings.filterwarnings("ignore", message="The balance properties of Sobol", category=UserWarning)
        design = qmc.Sobol(d, scramble=True, seed=seed).random(candidates) if d else np.zeros((0, 0))
    xs = [box.lo + (box.hi - box.lo) * u for u in design] + [box.lo.copy(), box.hi.copy()]
    xs += [np.clip(np.asarray(a, dtype=float), box.lo, box.hi) for a in anchors]
    evs = run(xs)
    log(f"plan: {len(evs)} mix{'es' if len(evs) != 1 else ''} on the search samples; "
        f"{sum(ok(e) for e in evs)} meet the target")
    best = None
    for ev in evs:
        if ok(ev) and better(ev, best):
            best = ev

    def climb(best: Evaluation) -> Evaluation:
        """Coordinate bisection towards cheaper (min_cost) or higher (max_share), one lever at a time."""
        x = np.array(best.x, dtype=float)
        for j in range(d):
            lo_j, hi_j = (box.lo[j], x[j]) if objective == "min_cost" else (x[j], box.hi[j])
            for _ in range(refine):
                trial = x.copy()
                trial[j] = 0.5 * (lo_j + hi_j)
                ev = run([trial])[0]
                if ok(ev) and better(ev, best):
                    best, x = ev, trial
                    if objective == "min_cost":
                        hi_j = trial[j]
                    else:
                        lo_j = trial[j]
                elif objective == "min_cost":
                    lo_j = trial[j]
                else:
                    hi_j = trial[j]
        return best

    if best is not None and d:
        # climb, then trade one lever for another, and climb again from a trade that won (up to ROUNDS
        # times): a trade can leave a lever at its bound where the other levers now leave room (a budget
        # plan traded training for competitions up to their bound and left the money training would buy)
        best = climb(best)
        for _ in range(ROUNDS if d > 1 else 0):
            traded = trade(run, ok, better, box, best, refine, least=objective == "min_cost")
            if traded is best:
                break
            best = climb(traded)
        if objective == "min_cost" and d > 1:  # once settled, so the search's path is what it was
            polished = part_for_part(run, ok, better, box, best, refine)
            if polished is not best:
                best = climb(polished)
        log(f"plan: refined to {box.words(np.array(best.x))}")
    search_evs = [v for (k, w), v in seen.items() if w == "search"]
    feasible = sorted((e for e in search_evs if ok(e)),
                      key=lambda e: e.mean_cost if objective == "min_cost" else -e.mean_share)
    # Finalists in order of cost, `finalists` at a time: the cheapest search winners sit at the edge of
    # the target and may all have been lucky on the search samples (winner's curse), so if none of a
    # batch holds on the fresh samples, the next batch is tried, until one does or none is left.
    def eligible(ev: Evaluation) -> bool:
        within = budget is None or ev.mean_cost <= budget
        return within and (objective == "max_share" or ev.p >= confidence)

    fresh, chosen = [], None
    for start in range(0, len(feasible), max(1, finalists)):
        batch = run([np.array(e.x) for e in feasible[start:start + finalists]], "fresh")
        fresh += batch
        for ev in batch:
            if eligible(ev) and better(ev, chosen):
                chosen = ev
        if chosen is not None:
            break
    finalists_tried = {e.x for e in fresh}  # run on the fresh samples as they were: not moved there
    # The first finalist that holds can be far dearer than the last that failed (the design's
    # spacing, or search samples kinder than the fresh ones), and with a budget none may hold within it
    # (a planner's trial: the one finalist that held cost more than a budget that a mix of a negative
    # cost met): from the failed finalist cheaper than the answer (within the budget, when there is no
    # answer) that came nearest to holding, raise each free lever alone by bisection (`refine` steps,
    # up to where the mix would cost more than the answer, or the budget), keeping mixes that meet the
    # target on the search samples and on the fresh ones, so the answer is not dearer than the samples
    # need, and no plan is called infeasible that one lever's step from a near miss makes feasible.
    cheaper = [e for e in fresh if not eligible(e) and e.p < confidence
               and (e.mean_cost < chosen.mean_cost if chosen is not None else budget is None or e.mean_cost <= budget)]
    # from the one nearest to holding, then the cheapest `finalists`: the nearest alone was often the
    # dearest (a preview plan raised training x3 competitions x1.79, 17.1 bn yuan at 75%, where
    # training x1.59 competitions x3, 7.1 bn at 69%, was never tried)
    starts = ([max(cheaper, key=lambda e: (e.p, -e.mean_cost))] + sorted(cheaper, key=lambda e: e.mean_cost)[
        :max(1, finalists)]) if cheaper else []
    for failed in ({e.x: e for e in starts}.values() if objective == "min_cost" else ()):
        if chosen is not None and failed.mean_cost >= chosen.mean_cost:  # no cheaper answer from here
            continue
        start_x = np.array(failed.x, dtype=float)
        for j in range(d):
            lo_j, hi_j = start_x[j], box.hi[j]
            for _ in range(refine):
                trial = start_x.copy()
                trial[j] = 0.5 * (lo_j + hi_j)
                ev = run([trial])[0]
                # the answer's cost on the samples `ev` is on: a search cost against the answer's fresh one
                # kept a mix cheaper on both sets of samples from ever being tried (a user trial: near_optimal
                # listed it, 1.0 bn against the answer's 1.21 bn, never tried on the fresh samples)
                cap = run([np.array(chosen.x)])[0].mean_cost if chosen is not None else budget
                if cap is not None and (ev.mean_cost >= cap if chosen is not None else ev.mean_cost > cap):
                    hi_j = trial[j]  # dearer than the answer (or over the budget): raise it less
                    continue
                if ok(ev):
                    ev = run([trial], "fresh")[0]
                    fresh.append(ev)
                    if eligible(ev):
                        if better(ev, chosen):
                            chosen = ev
                        hi_j = trial[j]
                        continue
                lo_j = trial[j]
    # a lever raised on the fresh samples until the mix held there: its rate there is fitted to them (a
    # user trial: 13 of 16 fresh samples, 81%, where 320 others gave 69%)
    fitted = objective == "min_cost" and chosen is not None and chosen.x not in finalists_tried
    if objective == "max_share" and budget is not None:
        finalist_keys = {e.x for e in fresh}
        chosen = fit_budget(run, box, fresh, chosen, budget, refine)
        if chosen is not None:
            run([np.array(chosen.x)])  # a moved mix on the search samples too, where mixes are compared (tables)
            fitted = chosen.x not in finalist_keys  # moved on the fresh samples: its cost fits them by construction
    return {"evaluations": list(seen.values()), "fresh": fresh, "chosen": chosen, "fitted": fitted,
            "marginal": marginal(run, box, chosen) if chosen is not None else []}


def fit_budget(run, box: Box, fresh: list[Evaluation], chosen: Evaluation | None, budget: float,
               refine: int) -> Evaluation | None:
    """A budget plan's finalists that spend more than the budget on the fresh samples, moved until they
    fit it there: to where the line towards the best mix that fits (`chosen`), and the line towards the
    box's lower corner, cross the budget (Brent's method, scipy.optimize.brentq, to FIT_XTOL of the line
    or at most max(refine, 4) steps: the cost is smooth along a line, where Brent's steps land near the
    crossing); the mix with the highest mean share that fits wins.

    The search spends the budget to its edge on the search samples, so its best mixes cross it on the
    fresh ones about half the time, by sampling noise (a planner's trial: a mix 0.7% over a budget of
    the status quo's spending was dropped, and the status quo, which costs exactly the cost base on
    every sample, was returned). Two lines, because neither always works: between two mixes the cost
    can be over the budget everywhere but at the fitting end (the status quo at exactly the budget), and
    the lower corner gives up every lever alike. A finalist is moved only if it reaches more than the
    best mix that fits; moved mixes are added to `fresh`."""
    from scipy.optimize import brentq

    over = sorted((e for e in fresh if e.mean_cost > budget), key=lambda e: -e.mean_share)
    for ev in over:
        if chosen is not None and ev.mean_share <= chosen.mean_share:
            break  # nothing on either line reaches more than its far end: no later finalist can win
        x = np.array(ev.x, dtype=float)
        ends = [np.array(chosen.x, dtype=float)] if chosen is not None else []
        for end in ends + [box.lo.copy()]:
            tried: list[Evaluation] = []

            def over_budget(t: float) -> float:
                """Yuan over the budget at t; at most -1 for a mix that fits (the status quo fits at
                exactly a budget of 0, where Brent's method would stop at once)."""
                trial = run([end + t * (x - end)], "fresh")[0]  # the two ends: runs already made
                tried.append(trial)
                return trial.mean_cost - budget if trial.mean_cost > budget else min(trial.mean_cost - budget, -1.0)

            if over_budget(0.0) < 0:  # the lower corner can be over the budget too: nothing on that line fits
                brentq(over_budget, 0.0, 1.0, xtol=FIT_XTOL, maxiter=max(refine, 4), full_output=True, disp=False)
            known = {e.x for e in fresh}
            for trial in tried:
                if trial.x not in known:
                    fresh.append(trial)
                    known.add(trial.x)
                if trial.mean_cost <= budget and (chosen is None or trial.mean_share > chosen.mean_share):
                    chosen = trial
    return chosen


def trade(run, ok, better, box: Box, best: Evaluation, refine: int, least: bool = True) -> Evaluation:
    """Trade one lever for another on the search samples: for each lever j in use, drop it to its
    lower bound and move each other lever k by bisection (`refine` steps); keep the best. `least`
    (min_cost): k rises only until the target is met again, and the cheapest such mix wins; otherwise
    (max_share) k rises as far as the budget allows, and the highest mean share wins. Moving one lever at
    a time cannot leave a lever the search happened to start with even when another buys the share
    cheaper (a budget plan returned the status quo where a target plan found a mix that reached more for
    1 bn yuan less, with training traded for competitions)."""
    for j in range(len(box.names)):
        for k in range(len(box.names)):
            x = np.array(best.x, dtype=float)
            if k == j or x[j] <= box.lo[j]:
                continue
            if not least and x[k] < box.hi[k]:
                best = _part_for_all(run, ok, better, box, best, x, j, k, refine)
            trial = x.copy()
            trial[j] = box.lo[j]
            lo_k, hi_k = x[k], box.hi[k]
            trial[k] = hi_k
            ev = run([trial.copy()])[0]
            if ok(ev) and not least:  # all of k within the budget
                best = ev if better(ev, best) else best
                continue
            if not ok(ev) and least:  # even all of k does not meet the target
                continue
            best = _bisect(run, ok, better, best, trial, k, lo_k, hi_k, refine, least)
    return best


def _bisect(run, ok, better, best: Evaluation, trial: np.ndarray, i: int, lo: float, hi: float, refine: int,
            least: bool) -> Evaluation:
    """Lever i of `trial` bisected between lo and hi, `refine` steps, towards the least value that still
    meets `ok` (`least`: a target plan) or the most (a budget plan); the best mix met is returned."""
    for _ in range(refine):
        trial[i] = 0.5 * (lo + hi)
        ev = run([trial.copy()])[0]
        if ok(ev):
            lo, hi = (lo, trial[i]) if least else (trial[i], hi)
            if better(ev, best):
                best = ev
        else:
            lo, hi = (trial[i], hi) if least else (lo, trial[i])
    return best


def part_for_part(run, ok, better, box: Box, best: Evaluation, refine: int) -> Evaluation:
    """A target plan's partial trade, once the search has settled: each lever k raised to its upper bound
    and each other lever j then lowered as far as the target allows (bisection between j's lower bound
    and where it was, `refine` steps), the cheapest kept. The climb only lowers levers and a whole trade
    drops one to its bound, so a mix with a cheap lever short of its bound and a dear one above what it
    needs stayed (a user trial: training x2.47 and competitions x2.65 were beaten on the same samples by
    competitions x3 and training x2.23, 11% cheaper). Run after the rounds, not in them: in them it
    changed the search's path, and a user's plan came out dearer (1.09 against 0.90 bn yuan)."""
    d = len(box.names)
    for k in range(d):
        for j in range(d):
            x = np.array(best.x, dtype=float)
            if k == j or x[k] >= box.hi[k] or x[j] <= box.lo[j]:
                continue
            best = _k_up_j_bisected(run, ok, better, box, best, x, j, k, refine, least=True)
    return best


def _k_up_j_bisected(run, ok, better, box: Box, best: Evaluation, x: np.ndarray, j: int, k: int, refine: int,
                     least: bool) -> Evaluation:
    """Lever k at its upper bound and lever j bisected between its lower bound and where it was, `refine`
    steps: as low as the target allows (`least`, a target plan) or as high as the budget allows."""
    trial = x.copy()
    trial[k] = box.hi[k]
    return _bisect(run, ok, better, best, trial, j, box.lo[j], x[j], refine, least)


def _part_for_all(run, ok, better, box: Box, best: Evaluation, x: np.ndarray, j: int, k: int,
                  refine: int) -> Evaluation:
    """A budget plan's partial trade: lever k at its upper bound, and lever j kept as high as the budget
    then allows (bisection between its lower bound and where it was, `refine` steps). The whole trade
    (j at its bound, k as high as it fits) gave up all of j: a preview plan kept training at 1.5 and
    competitions at 1.5 for 38% at 4.4 bn yuan, where competitions at 3 and training a little lower
    reached 39% for 0.9 bn (a user trial)."""
    trial = x.copy()
    trial[k] = box.hi[k]
    ev = run([trial.copy()])[0]
    if ok(ev):  # all of k fits beside all of j
        return ev if better(ev, best) else best
    return _k_up_j_bisected(run, ok, better, box, best, x, j, k, refine, least=False)


#: marginal_cost.csv's columns, as `marginal` gives them (a fixed list here once dropped the two it gained)
MARGINAL_COLUMNS = ["lever", "intensity", "step", "gain_from_intensity", "gain_to_intensity", "share_points_per_step",
                    "cost_per_step", "cost_per_point"]


def marginal(run, box: Box, chosen: Evaluation, step: float = 0.1) -> list[dict]:
    """The marginal cost of one more point of share for each free lever at the chosen mix: its
    intensity raised by `step` (or lowered, where a step up would pass its upper bound), on the chosen
    mix's fresh samples (common random numbers), yuan per percentage point of the mean share; none
    (NaN, an empty field in marginal_cost.csv) if the step adds no share. Either way the share and
    cost per step are those of going up, from `gain_from_intensity` to `gain_to_intensity` (a step
    down of -0.1 beside a positive gain read as "lowering competition raises the share", a user trial)."""
    out = []
    x0 = np.array(chosen.x, dtype=float)
    for j, name in enumerate(box.names):
        x = x0.copy()
        up = x[j] + step <= box.hi[j]
        x[j] = x[j] + step if up else x[j] - step
        ev = run([x], "fresh")[0]
        d_share = (ev.mean_share - chosen.mean_share) * (1 if up else -1)
        d_cost = (ev.mean_cost - chosen.mean_cost) * (1 if up else -1)
        points = 100 * d_share
        lo_x, hi_x = (x0[j], x[j]) if up else (x[j], x0[j])  # the step's two ends: what the gain is over
        out.append({"lever": name, "intensity": float(x0[j]), "step": step if up else -step,
                    "gain_from_intensity": float(lo_x), "gain_to_intensity": float(hi_x),
                    "share_points_per_step": points, "cost_per_step": d_cost,
                    "cost_per_point": d_cost / points if points > 0 else float("nan")})  # no gain: none
    return out


# --------------------------------------------------------------------------------------------------
# the model as evaluator
# --------------------------------------------------------------------------------------------------

def sample_config(cfg: RunConfig, i: int, uncertainty: bool) -> RunConfig:
    """Sample i: joint draw i of parameters and structural inputs (with replicate i), or replicate i."""
    cfg = dataclasses.replace(cfg, replicate=i)
    if uncertainty:
        from .uncertainty import draw_config

        cfg = draw_config(cfg, i)
    return cfg


def with_mix(cfg: RunConfig, mix: dict[str, float]) -> RunConfig:
    levers = cfg.levers
    for name, value in mix.items():
        part = dataclasses.replace(getattr(levers, name), intensity=float(value), enabled=True)
        levers = dataclasses.replace(levers, **{name: part})
    return dataclasses.replace(cfg, levers=levers)


def base_config(cfg: RunConfig, cost_base: str) -> RunConfig:
    from ..history import status_quo

    if cost_base == "no_policy":
        off = {n: dataclasses.replace(getattr(cfg.levers, n), enabled=False) for n in LEVERS}
        return dataclasses.replace(cfg, levers=dataclasses.replace(cfg.levers, **off))
    return dataclasses.replace(cfg, levers=status_quo(cfg.levers))


def spend_of(series: pd.DataFrame, funder: str) -> pd.Series:
    from ..objective import spend

    return spend(series, funder)


def read_run(model, year: int, funder: str, discount: float = 0.0) -> tuple[float, float, list[float]]:
    """(December share of the target year, cumulative spend to it, the monthly share from the start
    state on): the path is kept for the trajectory fan chart. Month k's spend (k = 1 the first
    simulated month) counts (1 + discount)^(-k/12). A plain function, so that a batch's workers
    receive only it and the two numbers, not the evaluator."""
    s = model.series()
    upto = s[s["date"] <= f"{year}-12"]
    path = upto["high_skill_share"].astype(float).tolist()
    monthly = spend_of(upto.iloc[1:], funder).to_numpy(dtype=float)
    factor = (1.0 + discount) ** (-np.arange(1, monthly.size + 1) / 12.0) if discount else 1.0
    return path[-1], float((monthly * factor).sum()), path


class ModelEvaluator:
    """Runs mixes on sample sets with the batch runner (every core).

    Every finished run is appended to `journal` (one JSON line: the run's config digest, share and
    spend), so an interrupted plan re-run into the same folder reuses them: the search is
    deterministic given its evaluations, so it takes the same path and gives the same answer."""

    def __init__(self, cfg: RunConfig, box: Box, *, target: float, year: int, funder: str, cost_base: str,
                 samples: int, fresh: int, uncertainty: bool, log=print, journal: Path | None = None,
                 discount: float = 0.0):
        self.cfg, self.box, self.target, self.year, self.funder = cfg, box, target, year, funder
        self.discount, self.cost_base = discount, cost_base
        # confirm: samples no step of the search sees, for what is said of the answer (`confirm`)
        self.sets = {"search": list(range(samples)), "fresh": list(range(samples, samples + fresh)),
                     "confirm": list(range(samples + fresh, samples + 2 * fresh))}
        from .batch import JournalledBatch

        self.uncertainty, self.log = uncertainty, log
        tag = [year, funder] + ([discount] if discount else [])  # journals of undiscounted plans stay valid
        self.batch = JournalledBatch(journal, tag=tag, log=lambda m: log("plan: " + m))  # progress too
        self.base = base_config(cfg, cost_base)
        self.base_cost: dict[str, np.ndarray] = {}
        for which in ("search", "fresh"):  # the confirmation samples' once the answer is run there
            self.cost_of_base(which)

    def cost_of_base(self, which: str) -> np.ndarray:
        """The cost base's spend on each of the `which` samples, run there when first needed."""
        if which not in self.base_cost:
            self.base_cost[which] = np.array([c for _, c, _ in self._run([self.base], self.sets[which])[0]])
        return self.base_cost[which]

    @property
    def runs(self) -> int:
        return self.batch.runs

    #: runs per journalled piece of a step: an interrupt loses at most this many, and a long step
    #: (the design: candidates x samples runs) shows its progress this often
    CHUNK = 32

    def _run(self, configs: list[RunConfig], idx: list[int]) -> list[list[tuple[float, float, list]]]:
        runs = [sample_config(c, i, self.uncertainty) for c in configs for i in idx]
        read = functools.partial(read_run, year=self.year, funder=self.funder, discount=self.discount)
        out = self.batch.run(runs, read, chunk=self.CHUNK)
        return [out[k * len(idx):(k + 1) * len(idx)] for k in range(len(configs))]

    def __call__(self, xs: list[tuple], which: str) -> list[Evaluation]:
        t0 = time.perf_counter()
        configs = [with_mix(self.cfg, self.box.mix(np.array(x))) for x in xs]
        base_cost = self.cost_of_base(which)
        results = self._run(configs, self.sets[which])
        self.log(f"plan: {len(xs)} mix{'es' if len(xs) != 1 else ''} x {len(self.sets[which])} {which} samples in "
                 f"{time.perf_counter() - t0:.1f} s ({self.runs} runs so far)")
        return [Evaluation(tuple(x), which, np.array([s for s, _, _ in r]),
                           np.array([c for _, c, _ in r]) - base_cost, self.target)
                for x, r in zip(xs, results)]

    def trajectory(self, x: tuple, which: str, kind: str = "chosen") -> pd.DataFrame:
        """Monthly high-skill share of mix x and of the cost base on the `which` samples (common random
        numbers; no new runs: both were evaluated there): quantiles by date, long by `mix` (x's rows
        named `kind`: chosen, or best_found when no mix met the target). With a cost base other than
        the status quo, the status quo is added (`mix` = status_quo), run on the same samples, so the
        chart always shows the chosen mix against what happens without a change."""
        from ..aggregate import QUANTILES
        from ..calendar import label

        mix = with_mix(self.cfg, self.box.mix(np.array(x)))
        rows = []
        kinds = [(kind, mix), ("cost_base", self.base)]
        if self.cost_base != "status_quo":
            kinds.append(("status_quo", base_config(self.cfg, "status_quo")))
        for kind, cfg in kinds:
            paths = np.array([p for _, _, p in self._run([cfg], self.sets[which])[0]])
            qs = {q: np.quantile(paths, level, axis=0) for q, level in QUANTILES.items()}
            for k in range(paths.shape[1]):
                rows.append({"mix": kind, "date": label(self.cfg.start_month - 1 + k), "n": paths.shape[0],
                             "mean": float(paths[:, k].mean()), **{q: float(v[k]) for q, v in qs.items()}})
        return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------

def parse(argv: list[str]) -> tuple[dict, dict, list[str]]:
    """(options, lever bounds and fixed values, config overrides); one-line errors."""
    opts, levers, overrides = dict(OPTIONS), {}, []
    given: set[str] = set()
    for key, value in key_values(argv, USAGE, "skillsim-plan"):
        given.add(key)
        head, _, tail = key.partition(".")
        if key in SETTINGS:
            names = [n for n in value.split(",") if n]
            if not names or any(n not in SETTINGS[key] for n in names):
                raise ConfigError(key, value, "a comma list of " + ", ".join(SETTINGS[key]))
            opts[key] = list(dict.fromkeys(names))
        elif head in LEVERS and tail in ("lo", "hi", "fixed"):
            levers.setdefault(head, {})[tail] = number(key, value, 0.0, 100.0)
        elif head in LEVERS:  # training.hii: named, with what a lever takes here
            takes = [f"{head}.{t}" for t in ("lo", "hi", "fixed")] + [k for k in SETTINGS if k.startswith(f"{head}.")]
            raise ConfigError(key, value, f"an option of skillsim-plan: {', '.join(takes)} (check its spelling)")
        elif key == "target.share":
            share = "a share above 0 and at most 1"  # 0 was met by every mix, at a probability of 100%
            opts[key] = number(key, value, 0.0, 1.0, allowed=share)
            if not opts[key] > 0.0:
                raise ConfigError(key, opts[key], share)
        elif key == "target.year":
            opts[key] = number(key, value, 1990, 2100, int)
        elif key == "confidence":
            between = "a probability strictly between 0 and 1"  # the same words for 80 as for 1
            opts[key] = number(key, value, 0.0, 1.0, allowed=between)
            if not 0.0 < opts[key] < 1.0:
                raise ConfigError(key, opts[key], between)
        elif key == "discount":
            opts[key] = number(key, value, 0.0, 1.0)
        elif key == "budget":
            opts[key] = number(key, value, 0.0)
        elif key in ("samples", "fresh", "candidates", "finalists"):
            opts[key] = number(key, value, 2 if key != "finalists" else 1, 10_000, int)
        elif key == "refine":
            opts[key] = number(key, value, 0, 30, int)
        elif key == "tolerance":
            opts[key] = number(key, value, 0.0, 10.0)
        elif key == "n_agents":
            opts[key] = number(key, value, 100, 10_000_000, int)
        elif key in ("objective", "funder", "cost_base"):
            allowed = {"objective": ("min_cost", "max_share"), "funder": FUNDERS,
                       "cost_base": ("status_quo", "no_policy")}[key]
            if value not in allowed:
                raise ConfigError(key, value, "one of " + ", ".join(allowed))
            opts[key] = value
        elif key == "levers":
            names = [n for n in value.split(",") if n]
            bad = [n for n in names if n not in LEVERS]
            if bad or not names:
                raise ConfigError(key, value, "a comma list of " + ", ".join(LEVERS))
            if len(set(names)) < len(names):  # training,training planned one lever as if two were listed
                raise ConfigError(key, value, "a comma list of " + ", ".join(LEVERS) + ", each at most once")
            opts[key] = value
        elif key in ("uncertainty", "preview"):
            opts[key] = boolean(key, value)
        elif key == "out":
            opts[key] = path_option(key, value)
        else:
            overrides.append(config_override(key, value, "skillsim-plan", OPTIONS))
    if opts["objective"] == "min_cost" and opts["target.share"] is None:
        raise MissingSetting("target.share", allowed="give target.share=S, a share above 0 and at most 1 (the target to reach)")
    if opts["objective"] == "max_share" and opts["budget"] is None:
        raise MissingSetting("budget", allowed="give budget=YUAN (objective=max_share maximises the share within it)")
    if opts["target.year"] is None:
        raise MissingSetting("target.year", allowed="give target.year=Y, a year of the forecast horizon")
    listed = [n for n in opts["levers"].split(",") if n]
    for name, b in levers.items():
        lo, hi = b.get("lo", BOUNDS["lo"]), b.get("hi", BOUNDS["hi"])
        if lo > hi:
            raise ConfigError(f"{name}.lo", lo, f"at most {name}.hi ({hi})")
        bound = next((t for t in ("lo", "hi") if t in b), None)
        if "fixed" in b and bound:  # training.fixed=5 training.hi=2 ran at 5
            raise ConfigError(f"{name}.fixed", b["fixed"], f"no bounds with it: a fixed lever is not searched (drop "
                              f"{name}.{bound}, or {name}.fixed to search {name})")
        if bound and name not in listed:  # studio.hi=2 with levers=training bounded nothing
            raise ConfigError(f"{name}.{bound}", b[bound], f"bounds of a lever in levers= ({opts['levers']}); add "
                              f"{name} there to search it")
    if all("fixed" in levers.get(n, {}) for n in listed):  # nothing to search: one mix, called a search
        raise ConfigError("levers", opts["levers"], "at least one lever that is not fixed (every lever listed has "
                          "LEVER.fixed, so there is nothing to search; skillsim-forecast runs one mix)")
    planned = set(listed) | {n for n, b in levers.items() if "fixed" in b}  # the levers every run's mix sets
    for line in overrides:  # settings every run of the plan replaces: recorded in config.yaml, used nowhere
        key, _, value = line.partition("=")
        lever = next((name for name, setting in lever_settings(line) if name in planned
                      and setting in ("intensity", "enabled")), None)
        if lever is not None:
            raise ConfigError(key, value, f"not a setting here: skillsim-plan sets {lever}'s intensity in every run "
                              f"(fix it with {lever}.fixed=X, 0 for none; bound it with {lever}.lo= and "
                              f"{lever}.hi=)")
        if key.lstrip("+~") == "scenario" and value.strip().strip("'\"") != "baseline":
            raise ConfigError(key, value, "not a setting here: a scenario sets the levers' intensities, which "
                              "skillsim-plan sets for the levers it plans (levers=); give another lever's as "
                              "LEVER.fixed=X, its allocation as training.allocation=, and the comparison as "
                              "cost_base=status_quo or cost_base=no_policy")
    if opts["objective"] == "max_share" and opts["target.share"] is not None:  # it was ignored without a word
        raise ConfigError("target.share", opts["target.share"], "no value with objective=max_share (it finds the "
                          "highest mean share within the budget; for the least cost of a target, drop objective=)")
    if opts["preview"]:  # a small preset for what was not given: an explicit value wins (samples=2 ran 8)
        small = {"samples": 8, "fresh": 16, "candidates": 8, "refine": 3, "n_agents": min(opts["n_agents"], 5000)}
        opts.update({k: v for k, v in small.items() if k not in given})
    return opts, levers, overrides


def lever_settings(line: str) -> list[tuple[str, str]]:
    """(lever, setting) pairs an override sets: `levers.training.intensity=2`, and the same as a mapping,
    `levers.training={intensity:2}` or `+levers={training:{enabled:false}}`."""
    key, _, value = line.partition("=")
    parts = key.lstrip("+~").split(".")
    if parts[0] != "levers":
        return []
    if len(parts) == 3:
        return [(parts[1], parts[2])]
    if "{" not in value:
        return []
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = OverridesParser.create().parse_overrides([line])[0].value()
    by_lever = {parts[1]: given} if len(parts) == 2 else given
    return [(name, setting) for name, part in (by_lever.items() if isinstance(by_lever, dict) else ())
            if isinstance(part, dict) for setting in part]


def make_box(opts: dict, levers: dict) -> Box:
    free = [n for n in opts["levers"].split(",") if "fixed" not in levers.get(n, {})]
    fixed = {n: b["fixed"] for n, b in levers.items() if "fixed" in b}
    lo = np.array([levers.get(n, {}).get("lo", BOUNDS["lo"]) for n in free], dtype=float)
    hi = np.array([levers.get(n, {}).get("hi", BOUNDS["hi"]) for n in free], dtype=float)
    return Box(free, lo, hi, fixed)


def tables(result: dict, box: Box, opts: dict) -> dict:
    searched = searched_settings(opts)

    by_share = opts["objective"] == "max_share"  # no target: its probability columns would be P(share >= 100%)

    def row(ev: Evaluation) -> dict:
        k, n = int(ev.success.sum()), ev.success.size
        lo, hi = (None, None) if by_share else wilson(k, n)
        cat = {key.replace(".", "_"): v for key, v in zip(searched, ev.setting)}
        return {**{f"{nm}_intensity": v for nm, v in box.mix(np.array(ev.x)).items()}, **cat, "samples": ev.which,
                "n": n, "p_target": None if by_share else ev.p, "p_lo95": lo, "p_hi95": hi, "share_mean": ev.mean_share,
                "share_q05": float(np.quantile(ev.share, 0.05)), "share_q95": float(np.quantile(ev.share, 0.95)),
                "cost_mean": ev.mean_cost}

    cand = pd.DataFrame([row(e) for e in result["evaluations"]]).sort_values("cost_mean", kind="stable")
    search = [e for e in result["evaluations"] if e.which == "search"]
    # a finalist is run once on the fresh samples; the refinement's bisection can come back to it (a lever
    # at its bound), which listed one mix seven times
    fresh = list({(tuple(e.x), tuple(e.setting)): e for e in result["fresh"]}.values())
    # mixes that met the target on the search samples but not on the fresh ones: not near-optimal answers
    failed_fresh = {(tuple(e.x), tuple(e.setting)) for e in fresh
                    if not by_share and e.p < opts["confidence"]}
    fp = [] if by_share else pareto([(e.mean_cost, e.p) for e in search])  # a budget plan has no probability
    fs = pareto([(e.mean_cost, e.mean_share) for e in search])
    out = {"candidates": cand.reset_index(drop=True),
           "finalists": pd.DataFrame([row(e) for e in fresh], columns=list(cand.columns)),
           "frontier_probability": pd.DataFrame([row(search[i]) for i in fp], columns=list(cand.columns)),
           "frontier_share": pd.DataFrame([row(search[i]) for i in fs], columns=list(cand.columns)),
           "marginal_cost": pd.DataFrame(result["marginal"], columns=MARGINAL_COLUMNS)}
    chosen = result["chosen"]
    # the mixes are compared on the search samples, so the chosen mix's cost is its cost on those too
    # (its fresh samples cost otherwise: a limit from those admitted mixes 30% dearer than it)
    on_search = None if chosen is None else next(
        (e for e in search if e.x == chosen.x and e.setting == chosen.setting), None)
    if on_search is not None and opts["objective"] == "max_share":
        # within the budget, with a mean share within `tolerance` of the chosen mix's (a cost limit listed
        # every cheaper mix, down to no policy at all, as near-optimal)
        floor = on_search.mean_share * (1 - opts["tolerance"])
        near = [e for e in search if e.mean_share >= floor
                and (opts.get("budget") is None or e.mean_cost <= opts["budget"])]
        out["near_optimal"] = pd.DataFrame([row(e) for e in near], columns=list(cand.columns)).sort_values(
            "share_mean", ascending=False, kind="stable")
    elif on_search is not None:
        limit = on_search.mean_cost + opts["tolerance"] * abs(on_search.mean_cost)
        near = [e for e in search if e.mean_cost <= limit and (tuple(e.x), tuple(e.setting)) not in failed_fresh
                and e.p >= opts["confidence"]]
        out["near_optimal"] = pd.DataFrame([row(e) for e in near], columns=list(cand.columns)).sort_values(
            "cost_mean", kind="stable")
    else:
        out["near_optimal"] = pd.DataFrame(columns=list(cand.columns))
    return out


def searched_settings(opts: dict) -> list[str]:
    """The categorical settings the plan searches over (given on the command line), in SETTINGS order."""
    return [key for key in SETTINGS if opts.get(key)]


def with_setting(cfg: RunConfig, setting: dict[str, str]) -> RunConfig:
    levers = cfg.levers
    for key, value in setting.items():
        lever, field_name = key.split(".")
        levers = dataclasses.replace(levers, **{lever: dataclasses.replace(getattr(levers, lever), **{field_name: value})})
    return dataclasses.replace(cfg, levers=levers)


def combine(results: list[dict], objective: str) -> dict:
    """One result from the searches of several settings: every evaluation, and the best answer (the
    cheapest, or for max_share the highest mean share) with its own marginal costs."""
    answers = [r for r in results if r["chosen"] is not None]
    key = (lambda r: r["chosen"].mean_cost) if objective == "min_cost" else (lambda r: -r["chosen"].mean_share)
    best = min(answers, key=key) if answers else None
    return {"evaluations": [e for r in results for e in r["evaluations"]],
            "fresh": [e for r in results for e in r["fresh"]],
            "chosen": best["chosen"] if best else None, "marginal": best["marginal"] if best else [],
            "fitted": bool(best and best.get("fitted"))}


def best_found(result: dict, budget: float | None = None, objective: str = "min_cost") -> Evaluation:
    """Without an answer, what came closest: the mix with the highest probability (then mean share)
    among those within the budget, if any is; for max_share (nothing within the budget) the cheapest
    mix. Among the finalists, on their fresh samples, if any was tried there: the search samples'
    best is the winner's curse the fresh samples are there to correct (a mix at 100% on the search
    samples and 75% on the fresh ones was reported at 100%)."""
    search = [e for e in result["evaluations"] if e.which == "search"]
    if objective == "max_share":
        return min(search, key=lambda e: e.mean_cost)
    fresh = result.get("fresh") or []

    def within(pool):
        return [e for e in pool if budget is None or e.mean_cost <= budget]
    pool = within(fresh) or within(search) or fresh or search  # within the budget first, fresh samples first
    return max(pool, key=lambda e: (e.p, e.mean_share))


COST_BASES = {"status_quo": "the status quo", "no_policy": "no policy"}


def versus(cost: float, cost_base: str, funder: str = "total") -> str:
    """An incremental cost in words: what a mix costs more (or saves) against the cost base, and whose
    spending it counts unless all of it (`funder`)."""
    whose = "" if funder == "total" else f" of {funder} spending"
    return (f"{yuan_words(abs(cost))}{whose} {'less' if cost < 0 else 'more'} than "
            f"{COST_BASES.get(cost_base, cost_base)}")


def yuan_words(amount: float) -> str:
    """An amount of yuan to three significant figures, in millions or billions from those: a cost stated
    to the yuan ("14,497,042,736 yuan") beside a standard error of 518 million claimed a precision the
    samples do not have (a user trial). choice.json keeps the exact means."""
    size = float(f"{abs(amount):.3g}") if math.isfinite(amount) else abs(amount)  # rounded first: 999.6 M is 1.00 bn
    if not math.isfinite(size) or size < 1e6:
        return f"{amount:,.0f} yuan"
    scale, unit = (1e9, "billion") if size >= 1e9 else (1e6, "million")
    decimals = max(0, 2 - int(math.floor(math.log10(size / scale))))
    return f"{math.copysign(size, amount) / scale:,.{decimals}f} {unit} yuan"


def confirm(result: dict, evaluators: dict) -> Evaluation | None:
    """The answer run on the confirmation samples, which no step of the search saw. The fresh samples
    chose it (the cheapest of the finalists that held there, or a lever raised there until the mix held),
    so its rate there is the best of several tries and leans high; on samples it was not chosen on, its
    rate is what a planner can expect (a user trial: 81% on the 16 fresh samples, 69% on 320 others)."""
    chosen = result["chosen"]
    if chosen is None:
        return None
    ev = evaluators[chosen.setting]([chosen.x], "confirm")[0]
    ev.setting = chosen.setting
    return ev


def confirmation_text(ev: Evaluation, opts: dict) -> tuple[str, dict]:
    """What the confirmation samples say of the answer, for its statement and choice.json."""
    n = ev.success.size
    record = {"samples": n, "share_mean": ev.mean_share, "cost_yuan": ev.mean_cost}
    if opts["objective"] == "max_share":
        within = ev.mean_cost <= opts["budget"]
        record["within_budget"] = within
        return (f"; on {n} samples it was not chosen on: mean share {ev.mean_share:.1%}, "
                f"{versus(ev.mean_cost, opts['cost_base'], opts['funder'])} "
                f"({'within' if within else 'over'} the budget)"), record
    k = int(ev.success.sum())
    lo, hi = wilson(k, n)
    conf = opts["confidence"]
    # below only where its interval is: an answer at the confidence shows under it on 32 samples about
    # four times in ten (a review), which is no evidence against it
    held = hi >= conf
    record.update(probability=ev.p, probability_95=[lo, hi], confirmed=held)
    verdict = (f": below the {conf:.0%} asked (its interval is under it); more samples= and fresh= make the "
               "samples that choose the answer more like others" if not held else
               f", an interval that holds the {conf:.0%} asked" if lo <= conf else f", above the {conf:.0%} asked")
    return (f"; on {n} samples it was not chosen on, P = {ev.p:.0%} [{lo:.0%}, {hi:.0%}]{verdict}"), record


def choice(result: dict, box: Box, opts: dict) -> dict:
    chosen = result["chosen"]
    target, year, conf = opts["target.share"], opts["target.year"], opts["confidence"]
    if chosen is None:
        top = best_found(result, opts["budget"], opts["objective"])
        failed_fresh = [e for e in result["fresh"] if opts["objective"] == "min_cost"]
        if opts["objective"] == "min_cost":
            budget = opts["budget"]
            what = (f"no mix within the bounds{f' and the budget of {budget:,.0f} yuan' if budget is not None else ''}"
                    f" reaches {target:.1%} by {year} with probability {conf:.0%}")
            if failed_fresh:  # below the confidence, or, on those samples, over the budget
                dear = sum(budget is not None and e.mean_cost > budget and e.p >= conf for e in failed_fresh)
                short = len(failed_fresh) - dear
                why = [f"{short} fell short of it" if short else "",
                       f"{dear} reached it but cost more than the budget" if dear else ""]
                what += (f" (of the {len(failed_fresh)} mix{'es' if len(failed_fresh) != 1 else ''} tried on fresh "
                         f"samples, {' and '.join(w for w in why if w)} there)")
            best = (f"the best found: probability {top.p:.0%}, mean share {top.mean_share:.1%} on "
                    f"{top.success.size} {top.which} samples at {box.words(np.array(top.x))}, "
                    f"{versus(top.mean_cost, opts.get('cost_base', 'status_quo'), opts.get('funder', 'total'))}")
        else:
            what = f"no mix within the bounds costs at most {opts['budget']:,.0f} yuan"
            best = (f"the cheapest found: {versus(top.mean_cost, opts.get('cost_base', 'status_quo'), opts.get('funder', 'total'))}, at "
                    f"{box.words(np.array(top.x))}")
        return {"feasible": False, "statement": f"{what}; {best}", "best_probability": top.p,
                "best_mean_share": top.mean_share, "best_mix": box.mix(np.array(top.x)),
                "best_cost_yuan": top.mean_cost, "best_samples": top.which, "best_n_samples": int(top.success.size)}
    k, n = int(chosen.success.sum()), chosen.success.size
    lo, hi = wilson(k, n)
    mix = box.words(np.array(chosen.x))
    cost_se = float(np.std(chosen.cost, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    if opts["objective"] == "max_share":
        statement = (f"{mix}: mean share {chosen.mean_share:.1%} (5-95%: {np.quantile(chosen.share, 0.05):.1%} to "
                     f"{np.quantile(chosen.share, 0.95):.1%}) in {year}, "
                     f"{versus(chosen.mean_cost, opts['cost_base'], opts['funder'])} "
                     f"(budget {opts['budget']:,.0f}), on {n} fresh samples")
        if result.get("fitted"):  # chosen on the samples that state it: say what that leaves open
            statement += (f"; moved to fit the budget on these samples, so its cost is within the budget there by "
                          f"construction (its mean cost's standard error, {yuan_words(cost_se)}, is how far other "
                          f"samples may put it over)")
    else:
        statement = (f"{mix}: {versus(chosen.mean_cost, opts['cost_base'], opts['funder'])} to {year}"
                     + (f" (discounted at {opts['discount']:.1%} a year)" if opts["discount"] else "")
                     + (f" (budget {opts['budget']:,.0f})" if opts.get("budget") is not None else "")
                     + f"; P(share >= {target:.1%}) = {chosen.p:.0%} [{lo:.0%}, {hi:.0%}] on {n} fresh samples")
        if result.get("fitted"):  # a lever raised on these samples until the mix held on them
            statement += " (a lever was raised on them until it held there)"
    confirmation = None
    if result.get("confirmation") is not None:
        said, confirmation = confirmation_text(result["confirmation"], opts)
        statement += said
    settings = dict(zip(searched_settings(opts), chosen.setting))
    if settings:
        statement = ", ".join(f"{k}={v}" for k, v in settings.items()) + ": " + statement
    return {"feasible": True, "objective": opts["objective"], "mix": box.mix(np.array(chosen.x)),
            **({"settings": settings} if settings else {}),
            "cost_yuan": chosen.mean_cost, "funder": opts["funder"], "cost_base": opts["cost_base"],
            "discount_rate": opts["discount"],
            "target_share": target, "target_year": year,
            # a max_share plan has no target, so no probability of meeting one (it read 0%)
            "confidence": conf if target is not None else None,
            "probability": chosen.p if target is not None else None,
            "probability_95": [lo, hi] if target is not None else None, "fresh_samples": n,
            "share_mean": chosen.mean_share, "share_q05": float(np.quantile(chosen.share, 0.05)),
            "share_q95": float(np.quantile(chosen.share, 0.95)),
            "cost_standard_error_yuan": cost_se,
            "budget_fitted_on_fresh_samples": bool(result.get("fitted")) and opts["objective"] == "max_share",
            "probability_fitted_on_fresh_samples": bool(result.get("fitted")) and opts["objective"] == "min_cost",
            # the answer on samples no step of the search saw (`confirm`)
            "confirmation": confirmation,
            "statement": statement}


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    run_command(run, "skillsim-plan", argv, what="plan folder")  # SIGTERM as Ctrl-C: the journal stays


@releases_claims
def run(argv: list[str]) -> Path:
    from ..cli import compose_config
    from ..results import calibration_checksums, config_file_checksums, git_commit, package_versions
    from .forecast import write_folder

    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    opts, levers, overrides = parse(argv)
    config_files = config_file_checksums(overrides)  # as the runs read them
    if not any(o.startswith("n_agents=") for o in overrides):
        overrides.append(f"n_agents={opts['n_agents']}")
    year = opts["target.year"]
    cfg = compose_config(overrides)
    if not cfg.start_year <= year <= cfg.horizon.end_year:
        raise ConfigError("target.year", year, f"a year of the forecast horizon, {cfg.start_year}-{cfg.horizon.end_year}")
    if year < cfg.horizon.end_year:
        cfg = dataclasses.replace(cfg, horizon=dataclasses.replace(cfg.horizon, end_year=year))
    uncertainty = opts["uncertainty"]
    if uncertainty is None:
        from .uncertainty import load_ensemble

        try:
            uncertainty = len(load_ensemble()) > 0
        except SkillsimError:
            uncertainty = False
    if uncertainty and cfg.draw is not None:  # each sample is a joint draw of its own: draw=N would do nothing
        raise ConfigError("draw", cfg.draw, "not a setting here with uncertainty=true: skillsim-plan draws the "
                          "parameters and structural inputs of each sample itself (uncertainty=false plans at draw N)")
    if uncertainty:  # a structural input or calibrated parameter given here was replaced in every sample
        from .uncertainty import draw_given, load_ensemble

        draw_given(cfg, overrides, 0, by="skillsim-plan with uncertainty=true")
        members, needed = len(load_ensemble()), opts["samples"] + 2 * opts["fresh"]
        if needed > members:  # sample i takes parameter set i mod members (sim.studies.uncertainty.draw_config)
            log(f"plan: note: the {needed} search, fresh and confirmation samples outnumber the calibration "
                f"ensemble's {members} parameter sets, so later samples reuse earlier ones' sets (each with its own "
                f"noise and structural inputs): the fresh and confirmation samples are less independent of the search")
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out = Path(opts["out"] or f"results/plans/{stamp}_{cfg.region.name}")
    from .options import check_writable

    out = check_writable(out, "plan", unique=opts["out"] is None)  # before the runs (the journal, then the
    # folder, go there); makes out's parent
    journal = out.parent / f".{out.name}.runs.jsonl"  # finished runs, for a resumed plan (removed at the end)
    box = make_box(opts, levers)
    log(f"plan: into {out} (if interrupted, the same command with out={out} resumes it)")
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    target = opts["target.share"] if opts["target.share"] is not None else 1.0
    searched = searched_settings(opts)
    results, evaluators = [], {}
    for combo in itertools.product(*(opts[key] for key in searched)):  # one empty combination if none
        setting = dict(zip(searched, combo))
        if setting:
            log(f"plan: searching with {setting}")
        evaluator = ModelEvaluator(with_setting(cfg, setting), box, target=target, year=year, funder=opts["funder"],
                                   cost_base=opts["cost_base"], samples=opts["samples"], fresh=opts["fresh"],
                                   uncertainty=uncertainty, log=log, journal=journal, discount=opts["discount"])
        result = search(evaluator, box, confidence=opts["confidence"], candidates=opts["candidates"],
                        refine=opts["refine"], finalists=opts["finalists"], objective=opts["objective"],
                        budget=opts["budget"], seed=cfg.seed % (2**32), log=log,
                        anchors=[np.ones(len(box.names))])
        for ev in result["evaluations"] + result["fresh"]:
            ev.setting = combo
        results.append(result)
        evaluators[combo] = evaluator
    result = combine(results, opts["objective"])
    result["confirmation"] = confirm(result, evaluators)
    out_tables = tables(result, box, opts)
    out_tables["choice"] = choice(result, box, opts)
    shown = result["chosen"] or best_found(result, opts["budget"], opts["objective"])  # the answer on the fresh samples, or the best found
    evaluator = evaluators[shown.setting]
    out_tables["trajectory"] = evaluator.trajectory(shown.x, shown.which,
                                                    "chosen" if result["chosen"] is not None else "best_found")
    out_tables["config"] = to_dict(cfg)
    manifest = {"kind": "plan", "command": ["skillsim-plan", *argv], "overrides": overrides,
                "region": cfg.region.name, "n_agents": cfg.n_agents, "seed": cfg.seed,
                "options": {k: v for k, v in opts.items() if k != "out"}, "bounds": levers,
                "uncertainty": "joint draws of parameters (fitted and assumed) and structural inputs, with replicates" if uncertainty
                else "replicates only", "runs": len(set().union(*(e.batch.used for e in evaluators.values()))),
                "versions": package_versions("numba"), **calibration_checksums(), **config_files,
                "git_commit": git_commit(), "started": started}
    path = write_folder(out, out_tables, manifest, what="plan")
    evaluator.batch.close()  # the journal all the settings' evaluators shared
    log("plan: " + out_tables["choice"]["statement"])
    log(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
