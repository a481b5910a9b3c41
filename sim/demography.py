"""Who is in the workforce: the initial population, firms, retirement, exits and entrants.

Pure kernels: each takes arrays (or the Workforce) and an explicit generator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from . import kernels_numpy
from .calendar import month_index, monthly_rate
from .ladder import N_LEVELS, wait_months
from .workforce import NO_MONTH, Workforce

MIN_AGE_MONTHS = 16 * 12  # legal minimum working age


@dataclass
class Firms:
    """Firm-level arrays: size share, wage premium, levy rate."""

    size_share: np.ndarray  # float64, sums to 1: where workers and entrants go
    premium: np.ndarray  # float32 multiplicative wage premium, median 1
    levy_rate: np.ndarray  # float32 training levy, share of payroll

    def __post_init__(self):
        self._alias_prob, self._alias = alias_table(self.size_share)

    @property
    def n(self) -> int:
        return self.size_share.size

    def sample(self, rng: np.random.Generator, k: int, passes=kernels_numpy) -> np.ndarray:
        """k firm ids drawn in proportion to size (Walker's alias method: O(1) per draw). `passes`:
        the implementation (sim.passes), the same firms either way."""
        return passes.firm_draws(rng, k, *self.alias)

    @property
    def alias(self) -> tuple[np.ndarray, np.ndarray]:
        """The alias table: (float32 probability of keeping the drawn firm, int32 alias firm)."""
        return self._alias_prob, self._alias


def alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for sampling index i with probability p[i]. The loop runs on Python
    floats (the same float64 arithmetic as numpy's scalars, without their per-element cost: a run
    builds a table for its 2,500 firms, which took a few milliseconds on numpy scalars)."""
    n = p.size
    scaled = (np.asarray(p, dtype=float) * n / np.sum(p)).tolist()
    prob = [1.0] * n
    alias = list(range(n))
    small = [i for i, x in enumerate(scaled) if x < 1.0]
    large = [i for i, x in enumerate(scaled) if x >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return np.array(prob, dtype=np.float64).astype(np.float32), np.array(alias, dtype=np.int32)


def make_firms(cfg, rng: np.random.Generator) -> Firms:
    """Heavy-tailed (Pareto) firm sizes, log-normal premia, levy rates uniform in the legal range."""
    n = cfg.region.n_firms
    sizes = rng.pareto(cfg.firms.size_alpha, n) + 1.0
    share = sizes / sizes.sum()
    premium = np.exp(rng.normal(0.0, cfg.wages.firm_premium_sd, n)).astype(np.float32)
    lo, hi = cfg.firms.levy_rate
    levy = rng.uniform(lo, hi, n).astype(np.float32)
    return Firms(share, premium, levy)


def retirement_age_months(female: np.ndarray, birth_month: np.ndarray, ret, passes=kernels_numpy) -> np.ndarray:
    """Statutory retirement age in months by sex and birth month under the phased reform.

    rule_retirement: from the reform start, men's age rises from 60 to 63 by one month every four
    months of original retirement date, women workers' from 50 to 55 by one month every two months.
    `passes`: the implementation (sim.passes; numpy by default).
    """
    return passes.retirement_age(np.asarray(female, dtype=np.bool_), np.asarray(birth_month, dtype=np.int64),
                                  *_reform_months(ret.reform_start, ret.female_from, ret.male_from,
                                                  ret.female_months_per_step, ret.male_months_per_step,
                                                  ret.female_to, ret.male_to))


@functools.lru_cache(maxsize=64)
def _reform_months(start: str, female_from: float, male_from: float, female_step: int, male_step: int,
                   female_to: float, male_to: float) -> tuple[int, ...]:
    """The reform in months (start, base ages, months per step, most delay), as the passes take it:
    the same every month of a run, so worked out once."""
    return (month_index(start), round(female_from * 12), round(male_from * 12), int(female_step), int(male_step),
            round((female_to - female_from) * 12), round((male_to - male_from) * 12))


def allocate(total: int, shares: np.ndarray) -> np.ndarray:
    """Integer counts summing to `total` in proportion to `shares` (largest remainder)."""
    raw = np.asarray(shares, dtype=float) / np.sum(shares) * total
    counts = np.floor(raw).astype(np.int64)
    rest = total - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
    return counts


def initial_population(wf: Workforce, cfg, firms: Firms, now: int, rng: np.random.Generator,
                       n: int | None = None, skilled_mix: list[float] | None = None) -> None:
    """Fill the workforce with `n` workers (default cfg.n_agents) matching a level mix and ages.

    Levels are allocated exactly (stratified) to cut sampling noise; everything else is drawn.
    `now` is the absolute month index of the initial state; `skilled_mix` (levels 1..7) defaults to
    the region's.

    The draws go straight into the new workers' columns (a contiguous block) or into two scratch
    arrays, and the arithmetic is done in place: at 5.7 million workers each temporary was 23-46 MB of
    fresh memory to fault in, and the fancy-indexed writes a pass each. The values are those of the
    same float32 operations on new arrays (tests/test_demography.py compares them).
    """
    reg, beh = cfg.region, cfg.behaviour
    n = cfg.n_agents if n is None else int(n)
    skilled = np.asarray(reg.skilled_mix if skilled_mix is None else skilled_mix)
    mix = np.concatenate([[reg.uncertified_share], (1 - reg.uncertified_share) * skilled])
    counts = allocate(n, mix)
    level = np.repeat(np.arange(N_LEVELS, dtype=np.int8), counts)
    wf.kernels.shuffle(rng, level)  # rng.shuffle, compiled where the passes are
    start = wf.extend(n)
    at = slice(start, start + n)  # the new workers' slots
    wf.level[at] = level
    female = wf.female[at]
    u = rng.random(n, dtype=np.float32)
    np.less(u, np.float32(reg.female_share), out=female)
    # each level's mean age in months, in float32 as an array of levels computes it
    mean_age = (reg.mean_age + reg.level_age_step * (np.arange(N_LEVELS, dtype=np.float32) - 2.0)) * 12
    # Ages in months from the normal truncated to working age: redraw those outside [16, retirement).
    z = rng.standard_normal(n, dtype=np.float32, out=u)
    age = wf.age[at]
    wf.kernels.ages_from_normals(z, level, mean_age, np.float32(reg.age_sd * 12), age)
    ret = cfg.retirement
    wf.kernels.settle_ages(rng, level, female, age, wf.retire_age[at], now, mean_age, np.float32(reg.age_sd * 12),
                           MIN_AGE_MONTHS, 200, *_reform_months(ret.reform_start, ret.female_from, ret.male_from,
                                                                ret.female_months_per_step, ret.male_months_per_step,
                                                                ret.female_to, ret.male_to))
    wf.firm[at] = firms.sample(rng, n, passes=wf.kernels)
    aptitude = wf.aptitude[at]  # log-normal with mean 1 (mean_one of float32 normals), in place
    rng.standard_normal(n, dtype=np.float32, out=aptitude)
    np.multiply(aptitude, np.float32(beh.aptitude_sd), out=aptitude)
    np.subtract(aptitude, np.float32(0.5 * beh.aptitude_sd * beh.aptitude_sd), out=aptitude)
    np.exp(aptitude, out=aptitude)
    wage = wf.wage_factor[at]
    rng.standard_normal(n, dtype=np.float32, out=wage)
    np.multiply(wage, np.float32(cfg.wages.individual_sd), out=wage)
    np.exp(wage, out=wage)
    # Time at level: uniform over twice the statutory wait (levels 0-4) or ten years (5-7); no older
    # than the time since age 16 allows. Progress: what that time at the worker's own speed gives,
    # scaled down by a uniform factor so not everyone who has served the wait is ready at once.
    # (spread: a uniform factor in [2/3, 4/3] x initial_progress_scale, the unobserved distance to the
    # next standard); the level's span and rate are looked up per worker by the passes
    span = np.concatenate([wait_months() * 2, np.full(3, 120)]).astype(np.float32)
    rate = np.concatenate([1.0 / np.asarray(beh.mastery_months), np.zeros(3)]).astype(np.float32)
    tenure_u = rng.random(n, dtype=np.float32, out=u)
    spread_u = rng.random(n, dtype=np.float32)
    wf.kernels.tenure_and_progress(tenure_u, spread_u, level, age, span, rate, aptitude, np.float32(2 / 3),
                                   np.float32(beh.initial_progress_scale), MIN_AGE_MONTHS,
                                   wf.months_at_level[at], wf.progress[at])
    del u, spread_u
    wf.credit[at] = 0
    wf.studio_since[at] = NO_MONTH
    wf.comp_month[at] = NO_MONTH
    wf.weight[at] = np.float32(cfg.weight)
    wf.bonus[at] = 0


def mean_one(z: np.ndarray, sd: float, out: np.ndarray | None = None) -> np.ndarray:
    """exp(sd z - sd^2 / 2) of float32 standard normals: log-normal with mean 1, in float32; into
    `out` if given (which may be z itself: the same float32 operations, without temporaries)."""
    if out is None:
        return np.exp(z * np.float32(sd) - np.float32(0.5 * sd * sd))
    np.multiply(z, np.float32(sd), out=out)
    np.subtract(out, np.float32(0.5 * sd * sd), out=out)
    return np.exp(out, out=out)


def separation_hazard(beh) -> np.ndarray:
    """Monthly separation hazard by level (float32): monthly(turnover x level factor), prior_turnover."""
    return _hazard(float(beh.turnover_per_year), tuple(float(f) for f in beh.turnover_level_factor))


@functools.lru_cache(maxsize=64)
def _hazard(turnover: float, level_factor: tuple[float, ...]) -> np.ndarray:
    """Cached: the same every month of a run. Read-only, as it is shared."""
    annual = np.minimum(turnover * np.asarray(level_factor), 1.0)
    hazard = np.array([monthly_rate(a) for a in annual], dtype=np.float32)
    hazard.flags.writeable = False
    return hazard


def spinup(reg) -> bool:
    """Whether the region's history starts before its first observed share (a spin-up)."""
    h = reg.history
    cutoff = month_index(h.cutoff) if h.cutoff else None
    dates = [month_index(d) for d in h.high_skill_share if cutoff is None or month_index(d) <= cutoff]
    return bool(dates) and month_index(h.origin) < min(dates)


_AGENTS_BY_PATH: dict[tuple, dict[int, int]] = {}  # SizePath.agents' months, by path


class SizePath:
    """How many agents the workforce has in each month: its growth path.

    The path passes through the observed skilled stocks of the history (`region.history.skilled_workers`,
    converted to workers with `uncertified_share`) and through `region.population` at
    `region.observed`, log-linear between them. Before the first stock it continues the first segment's
    growth; if there is one stock only, or the first segment is shorter than a year, a spin-up grows at
    `history.spinup_growth` (the national history's pace, so that a region's simulated past runs in the
    regime the parameters were calibrated in) and any other history at `growth_per_year`. After the last
    stock it grows at
    `growth_per_year`, the structural input the forecast ensemble samples.
    """

    def __init__(self, cfg):
        reg = cfg.region
        anchors = {month_index(reg.observed): float(reg.population)}
        cutoff = month_index(reg.history.cutoff) if reg.history.cutoff else None
        for date, skilled in reg.history.skilled_workers.items():
            m = month_index(date)
            if m < month_index(reg.observed) and (cutoff is None or m <= cutoff):
                anchors[m] = skilled / max(1e-9, 1.0 - reg.uncertified_share)
        self.months = np.array(sorted(anchors), dtype=float)
        self.log_size = np.log([anchors[int(m)] for m in self.months])
        g_after = np.log1p(reg.growth_per_year) / 12.0
        if self.months.size > 1 and self.months[1] - self.months[0] >= 12:
            g_before = (self.log_size[1] - self.log_size[0]) / (self.months[1] - self.months[0])
        elif spinup(reg):  # a spin-up grows as the national history the dynamics were fitted under
            g_before = np.log1p(reg.history.spinup_growth) / 12.0
        else:  # one stock, or a first segment too short to extrapolate over years
            g_before = g_after
        self.g_before, self.g_after = g_before, g_after
        self.scale = cfg.n_agents / float(reg.population)
        # agents by month, shared by every path of the same anchors, growth and scale (a sweep's or
        # an ensemble's runs of one region and size ask for the same months)
        key = (tuple(self.months.tolist()), tuple(self.log_size.tolist()), float(g_before), float(g_after),
               self.scale)
        self._agents = _AGENTS_BY_PATH.get(key)
        if self._agents is None:
            if len(_AGENTS_BY_PATH) >= 64:
                _AGENTS_BY_PATH.clear()
            self._agents = _AGENTS_BY_PATH[key] = {}

    def persons(self, month: int) -> float:
        """Workers represented in absolute month `month`."""
        m, first, last = float(month), self.months[0], self.months[-1]
        if m <= first:
            ls = self.log_size[0] + self.g_before * (m - first)
        elif m >= last:
            ls = self.log_size[-1] + self.g_after * (m - last)
        else:
            ls = float(np.interp(m, self.months, self.log_size))
        return float(np.exp(ls))

    def agents(self, month: int) -> int:
        """Agents the workforce should have at the end of absolute month `month` (asked every month of
        a run, and of its history: worked out once per month, a few numpy scalar calls each)."""
        n = self._agents.get(month)
        if n is None:
            n = self._agents[month] = int(round(self.persons(month) * self.scale))
        return n


def fill_entrants(wf: Workforce, idx: np.ndarray, cfg, firms: Firms, now: int, rng: np.random.Generator,
                  rates=None, ledger=None) -> None:
    """Write new young workers into slots `idx`: school graduates with an intermediate or senior
    certificate (entrant_school_shares), new junior workers, or apprentices.

    With the run's `rates` and `ledger`, their cached rates are computed and they are added to the
    ledger in the same pass (`enter` of sim.kernels); without, the caller does both."""
    k = idx.size
    if k == 0:
        return
    beh = cfg.behaviour
    # Draw order is fixed so that the same count gives the same entrants in any scenario: the level's
    # uniform, sex, age, firm, aptitude, wage factor (the passes' entrant_draws, one call compiled).
    s2, s3 = beh.entrant_school_shares
    level, female, age, firm, z_aptitude, log_wage = wf.kernels.entrant_draws(
        rng, k, cfg.region.female_share, beh.entrant_age_mean, beh.entrant_age_sd, MIN_AGE_MONTHS, 40 * 12,
        *firms.alias, s2, s3, max(1.0 - s2 - s3, 1e-12), beh.entrant_junior_share,
        cfg.wages.individual_sd)
    aptitude = mean_one(z_aptitude, beh.aptitude_sd, out=z_aptitude)  # the draws' own array, made for this call
    wage_factor = np.exp(log_wage)
    retire_age = retirement_age_months(female, now - age.astype(np.int64), cfg.retirement, wf.kernels)
    if rates is not None and ledger is not None:
        wf.kernels.enter(np.asarray(idx, dtype=np.int64), level, female, age, retire_age,
                      firm.astype(np.int32, copy=False), aptitude.astype(np.float32, copy=False),
                      wage_factor.astype(np.float32), np.float32(cfg.weight),
                      wf.level, wf.female, wf.age, wf.retire_age, wf.firm, wf.aptitude, wf.wage_factor,
                      wf.months_at_level, wf.progress, wf.credit, wf.studio_since, wf.comp_month, wf.weight,
                      wf.bonus, wf.gain, wf.pay, ledger.count, ledger.pay, *rates.kernel_tables, wf.threads)
        return
    wf.level[idx] = level
    wf.female[idx] = female
    wf.age[idx] = age
    wf.retire_age[idx] = retire_age
    wf.firm[idx] = firm
    wf.aptitude[idx] = aptitude.astype(np.float32)
    wf.wage_factor[idx] = wage_factor.astype(np.float32)
    wf.months_at_level[idx] = 0
    wf.progress[idx] = 0
    wf.credit[idx] = 0
    wf.studio_since[idx] = NO_MONTH
    wf.comp_month[idx] = NO_MONTH
    wf.weight[idx] = np.float32(cfg.weight)
    wf.bonus[idx] = 0
