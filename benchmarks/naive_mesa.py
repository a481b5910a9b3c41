"""Naive reference: the model's core rules written the default Mesa way, one object per worker.

This file exists only to be measured against (benchmark (c) in `benchmarks/run.py`). It is what a
careful Mesa user would write first: a `Worker(mesa.Agent)` per worker holding its state as plain
attributes, a `NaiveWorkforceModel(mesa.Model)` that activates them with
`self.agents.shuffle_do("step")` once a month, and a `DataCollector` whose reporters read the agents.

It implements the same core rules, with the same parameter values (taken from a `RunConfig`, default
Chongqing status quo), as `sim.model.WorkforceModel`:

- initial state: the same region level mix, ages, firms, aptitudes and times at level (drawn with the
  array model's own `initial_population`, then copied into one Worker object each);
- demography: ageing; retirement at the worker's statutory retirement age; a monthly separation
  hazard by level, a share leaving the region and the rest changing firm (leaving the studio); each
  leaver or retiree is replaced by one entrant (school graduate at level 2 or 3, junior, or apprentice)
  so the workforce keeps its size;
- learning: progress += gain (aptitude x level rate x studio multiplier); months at level += 1;
- certification in assessment months: eligible if level < 5, progress >= 1 and months at level >=
  wait[level] - training credit; sits with the trained or untrained per-round probability and passes
  with the pass probability for the level;
- appointments 5 -> 6 and 6 -> 7 each December at the annual rates, after the minimum years at level;
- training lever: a government and an employer (levy) budget set each January buy places at the
  cost per place (grown with wages); each month that many random eligible workers (level <= 4;
  employer places accepted in proportion to the firm's levy) gain progress and wait credit;
- competition lever: in event months, participants drawn in proportion to progress among levels
  1-4 gain preparation progress; the top `promote_fraction` by score (progress + 0.5 log aptitude +
  luck) are promoted unless promoted by a competition in the last `cooldown_months`, and get a prize;
- studio lever: studios (status quo + growth, capped by 20% of masters) x members per studio
  places; members leave after their term or when they leave the member levels, vacancies are filled
  at random; members learn `learning_multiplier` faster and, once at the standard, may be promoted
  out of turn (fast track);
- wages: income = wage index x (level pay x firm premium x individual factor) + prizes;
- a DataCollector recording the high-skill share (levels 3-7 over levels 1-7) and mean annual income
  each month.

Simplifications, none of which changes the amount of per-worker work much:
- Order within a month: the levers act first (on the state at the end of last month), then every
  worker steps once (demography, learning, certification/appointment, wage). The array model runs
  demography and learning before the levers. Both let a course this month count at this month's
  assessment.
- Entrants are created during the activation loop and are not stepped in the month they enter (in
  the array model they learn in their first month).
- Random numbers come from Mesa's `model.random` (Python's `random.Random`), one draw at a time; the
  run is reproducible from the seed but not bit-identical to the array model, so paths agree only in
  distribution (the benchmark prints both for a sanity check).
- No spend accounts, flows or income quantiles are recorded: the collector keeps only the two series
  the issue names.
"""

from __future__ import annotations

import bisect
import math

import mesa
import numpy as np

from sim.calendar import month_index, monthly_rate
from sim.config import RunConfig
from sim.demography import MIN_AGE_MONTHS, initial_population, make_firms
from sim.ladder import HIGH_SKILL_MIN, MAX_TRAINING_CREDIT_YEARS, N_LEVELS, pay_ratios, wait_months
from sim.streams import RandomStreams
from sim.workforce import Workforce

HIGH = HIGH_SKILL_MIN
WAITS = [int(w) for w in wait_months()]
CREDIT_CAP = MAX_TRAINING_CREDIT_YEARS * 12


def retirement_age(female: bool, birth_month: int, ret) -> int:
    """Statutory retirement age in months (scalar version of the phased 2025 reform rule)."""
    if female:
        base, step, max_delay = round(ret.female_from * 12), ret.female_months_per_step, round(
            (ret.female_to - ret.female_from) * 12)
    else:
        base, step, max_delay = round(ret.male_from * 12), ret.male_months_per_step, round(
            (ret.male_to - ret.male_from) * 12)
    original = birth_month + base
    reform = month_index(ret.reform_start)
    delay = min((original - reform) // step + 1, max_delay) if original >= reform else 0
    return base + delay


class Worker(mesa.Agent):
    """One worker: level, time at level, age, firm, aptitude, progress, credit, studio, pay."""

    def __init__(self, model: "NaiveWorkforceModel", level: int, months_at_level: int, age: int,
                 retire_age: int, female: bool, firm: int, aptitude: float, wage_factor: float,
                 progress: float):
        super().__init__(model)
        self.level = level
        self.months_at_level = months_at_level
        self.age = age
        self.retire_age = retire_age
        self.female = female
        self.firm = firm
        self.aptitude = aptitude
        self.wage_factor = wage_factor
        self.progress = progress
        self.credit = 0
        self.studio_since = None  # month joined, None if not a member
        self.comp_month = -10_000  # month of the last competition promotion
        self.bonus = 0.0
        self.income = 0.0
        self.refresh()

    # cached rates: recomputed whenever level, firm or studio membership changes
    def refresh(self) -> None:
        m = self.model
        gain = m.level_rate[self.level] * self.aptitude
        if self.studio_since is not None:
            gain *= m.studio_mult
        self.gain = gain
        self.pay = m.level_pay[self.level] * m.firm_premium[self.firm] * self.wage_factor

    def promote(self, channel: str) -> None:
        self.level += 1
        self.months_at_level = 0
        self.progress = 0.0
        self.credit = 0
        self.refresh()
        self.model.promotions[channel] += 1

    def step(self) -> None:
        m = self.model
        rnd = m.random
        # a. demography
        self.age += 1
        if self.age >= self.retire_age:
            self.leave()
            return
        u = rnd.random()
        h = m.hazard[self.level]
        if u < h:
            if u < h * m.leave_share:
                self.leave()
                return
            self.firm = m.sample_firm()
            if self.studio_since is not None:
                m.studio_members.discard(self)
                self.studio_since = None
            self.refresh()
        # b. learning
        self.progress += self.gain
        self.months_at_level += 1
        # d. certification
        if m.assessment_month and self.level < 5 and self.progress >= 1.0 \
                and self.months_at_level >= WAITS[self.level] - self.credit:
            sit = m.trained_sit if (self.credit > 0 or self in m.studio_members) else m.sit_untrained[self.level]
            if rnd.random() < sit * m.pass_prob[self.level]:
                self.promote("certification")
        # e. appointments
        elif m.december and 5 <= self.level <= 6 and self.months_at_level >= m.appoint_min_months:
            if rnd.random() < m.appoint_rate[self.level - 5]:
                self.promote("appointment")
        # f. wage
        self.income = m.wage_index * self.pay + self.bonus
        self.bonus = 0.0

    def leave(self) -> None:
        """Exit (retirement or leaving the region); one entrant takes the place."""
        m = self.model
        if self.studio_since is not None:
            m.studio_members.discard(self)
        self.remove()
        m.add_entrant()


def high_skill_share(model: "NaiveWorkforceModel") -> float:
    levels = model.agents.get("level")
    skilled = sum(1 for lv in levels if lv >= 1)
    high = sum(1 for lv in levels if lv >= HIGH)
    return high / skilled if skilled else 0.0


def income_mean(model: "NaiveWorkforceModel") -> float:
    return 12.0 * model.agents.agg("income", math.fsum) / len(model.agents)


class NaiveWorkforceModel(mesa.Model):
    """The reference model: one `Worker` object per simulated worker (see the module docstring)."""

    def __init__(self, config: RunConfig | None = None, seed: int = 1):
        super().__init__(seed=seed)
        cfg = config if config is not None else RunConfig()
        self.cfg = cfg
        beh, lev = cfg.behaviour, cfg.levers
        self.weight = cfg.weight
        self.n_months = cfg.n_months
        self.start_month = month_index(f"{cfg.start_year}-01")
        self.t = -1
        streams = RandomStreams(seed)
        firms = make_firms(cfg, streams.get("firms", 0))
        self.cum_share = np.cumsum(firms.size_share).tolist()
        self.firm_premium = firms.premium.astype(float).tolist()
        self.levy = firms.levy_rate.astype(float).tolist()
        self.levy_max = max(self.levy)
        rate = [0.0] * N_LEVELS
        for k, mm in enumerate(beh.mastery_months):
            rate[k] = 1.0 / mm
        self.level_rate = rate
        self.level_pay = pay_ratios(cfg.wages.apprentice_pay_ratio).tolist()
        self.studio_mult = lev.studio.learning_multiplier
        annual = [min(beh.turnover_per_year * f, 1.0) for f in beh.turnover_level_factor]
        self.hazard = [monthly_rate(a) for a in annual]
        self.leave_share = beh.leave_share
        rounds = len(set(beh.assessment_months))
        self.sit_untrained = [1.0 - (1.0 - s) ** (1.0 / rounds) for s in beh.sit_rate]
        self.trained_sit = beh.trained_sit_prob
        self.pass_prob = list(beh.pass_prob)
        self.appoint_rate = list(beh.appointment_rate)
        self.appoint_min_months = int(round(beh.appointment_min_years * 12))
        self.promotions = {c: 0 for c in ("certification", "competition", "studio", "appointment")}

        # Initial workers: the array model's own initial draw, one object each.
        wf = Workforce(cfg.n_agents)
        initial_population(wf, cfg, firms, self.start_month - 1, streams.get("population", 0))
        cols = [getattr(wf, f).tolist() for f in ("level", "months_at_level", "age", "retire_age", "female",
                                                    "firm", "aptitude", "wage_factor", "progress")]
        for row in zip(*cols):
            Worker(self, *row)
        del wf, cols

        self.studio_members: set[Worker] = set()
        self.training_budget = (0.0, 0.0)
        self.budget_year = None
        self.wage_index = self.wage_index_start = self._wage_index()
        self.assessment_month = self.december = False
        for a in self.agents:
            a.income = self.wage_index * a.pay
        self.datacollector = mesa.DataCollector(
            model_reporters={"high_skill_share": high_skill_share, "income_mean": income_mean})
        self.datacollector.collect(self)

    # -- helpers ----------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self.start_month + self.t

    def _wage_index(self) -> float:
        return self.cfg.region.base_wage / 12.0 * (1.0 + self.cfg.wages.growth_per_year) ** ((self.t + 1) / 12.0)

    def sample_firm(self) -> int:
        return min(bisect.bisect_right(self.cum_share, self.random.random()), len(self.cum_share) - 1)

    def stochastic_round(self, x: float) -> int:
        base = int(math.floor(x))
        return base + int(self.random.random() < x - base)

    def add_entrant(self) -> None:
        cfg, beh, rnd = self.cfg, self.cfg.behaviour, self.random
        u = rnd.random()  # as sim.demography.fill_entrants: school graduates (中级工/高级工), junior, apprentice
        s2, s3 = beh.entrant_school_shares
        if u < s3:
            level = 3
        elif u < s3 + s2:
            level = 2
        else:
            level = 1 if (u - s2 - s3) / max(1.0 - s2 - s3, 1e-12) < beh.entrant_junior_share else 0
        female = rnd.random() < cfg.region.female_share
        age = int(min(max(rnd.gauss(beh.entrant_age_mean, beh.entrant_age_sd) * 12, MIN_AGE_MONTHS), 40 * 12))
        sd = beh.aptitude_sd
        Worker(self, level, 0, age, retirement_age(female, self.now - age, cfg.retirement), female,
               self.sample_firm(), math.exp(rnd.gauss(-0.5 * sd * sd, sd)),
               math.exp(rnd.gauss(0.0, cfg.wages.individual_sd)), 0.0)

    def draw(self, workers: list, k: int, accept) -> list:
        """Up to k distinct workers drawn at random and kept with probability accept(worker).

        Returned in draw order (a dict keeps it), so runs are reproducible from the seed.
        """
        chosen: dict = {}
        rnd = self.random
        tries = 0
        while len(chosen) < k and tries < 50 * k + 1000:
            a = workers[int(rnd.random() * len(workers))]
            tries += 1
            if rnd.random() < accept(a):
                chosen[a] = None
        return list(chosen)

    # -- levers -----------------------------------------------------------------------------
    def training(self, workers: list) -> None:
        p = self.cfg.levers.training
        if not (p.enabled and p.intensity > 0):
            return
        if self.budget_year != self.now // 12:
            n_w = len(workers) * self.weight
            gov = self.cfg.region.training_budget_per_worker_year * n_w * p.intensity
            payroll_levy = sum(self.levy[a.firm] * a.pay for a in workers) * self.weight * 12 * self.wage_index
            emp = payroll_levy * self.cfg.firms.levy_frontline_share * p.levy_upgrade_share * p.intensity
            self.training_budget = (gov, emp)
            self.budget_year = self.now // 12
        cost = p.cost_per_place * self.wage_index / self.wage_index_start
        top = p.eligible_max_level
        for funder, budget in zip(("government", "employer"), self.training_budget):
            k = self.stochastic_round(budget / 12.0 / cost / self.weight)
            if funder == "government":
                chosen = self.draw(workers, k, lambda a: a.level <= top)
            else:
                chosen = self.draw(workers, k, lambda a: (a.level <= top) * self.levy[a.firm] / self.levy_max)
            for a in chosen:
                a.progress += p.progress_gain
                a.credit = min(a.credit + p.wait_credit_months, CREDIT_CAP)

    def competition(self, workers: list) -> None:
        p = self.cfg.levers.competition
        if not (p.enabled and p.intensity > 0):
            return
        months = {int(round((i + 1) * 12 / p.events_per_year)) for i in range(p.events_per_year)}
        if self.now % 12 + 1 not in months:
            return
        lo, hi = p.eligible_levels
        k = self.stochastic_round(self.cfg.region.competition_participation * len(workers) * p.intensity
                                  / p.events_per_year)
        part = self.draw(workers, k, lambda a: (lo <= a.level <= hi) * min(max(a.progress, 0.05), 1.0))
        scored = []
        for a in part:
            scored.append((a.progress + 0.5 * math.log(a.aptitude) + self.random.gauss(0.0, p.luck_sd), a))
            a.progress += p.prep_progress_gain
        scored.sort(key=lambda s: -s[0])
        for _, a in scored[: self.stochastic_round(p.promote_fraction * len(part))]:
            if a.comp_month <= self.t - p.cooldown_months:
                a.bonus += p.prize_per_promotion  # paid this month; annualised x12 like the array model
                a.comp_month = self.t
                a.promote("competition")

    def studio(self, workers: list) -> None:
        p, reg = self.cfg.levers.studio, self.cfg.region
        if not (p.enabled and p.intensity > 0):
            return
        lo, hi = p.member_levels
        planned = max(0.0, (reg.studios + reg.studio_growth_per_year * self.t / 12.0) * p.intensity)
        masters = self.masters * self.weight * p.masters_share_max
        capacity = self.stochastic_round(min(planned, masters) * p.members_per_studio / self.weight)
        for a in list(self.studio_members):
            if self.t - a.studio_since >= p.term_months or not lo <= a.level <= hi:
                self.studio_members.discard(a)
                a.studio_since = None
                a.refresh()
        if len(self.studio_members) > capacity:
            for a in self.random.sample(sorted(self.studio_members, key=lambda a: a.unique_id),
                                        len(self.studio_members) - capacity):
                self.studio_members.discard(a)
                a.studio_since = None
                a.refresh()
        vacancies = capacity - len(self.studio_members)
        if vacancies > 0:
            for a in self.draw(workers, vacancies, lambda a: lo <= a.level <= hi and a.studio_since is None):
                a.studio_since = self.t
                a.refresh()
                self.studio_members.add(a)
        p_fast = monthly_rate(p.fast_track_rate)
        for a in sorted(self.studio_members, key=lambda a: a.unique_id):
            if a.progress >= 1.0 and a.level <= hi and self.random.random() < p_fast:
                a.promote("studio")

    # -- the step ---------------------------------------------------------------------------
    def step(self) -> None:
        """One month: levers on last month's state, then every worker steps once, then collection."""
        self.t = self.steps - 1
        month = self.now % 12 + 1
        self.assessment_month = month in self.cfg.behaviour.assessment_months
        self.december = month == 12
        workers = list(self.agents)
        self.masters = sum(1 for a in workers if a.level >= self.cfg.levers.studio.master_min_level)
        self.training(workers)
        self.competition(workers)
        self.studio(workers)
        del workers
        self.wage_index = self._wage_index()
        self.agents.shuffle_do("step")
        self.datacollector.collect(self)
        if self.t + 1 >= self.n_months:
            self.running = False

    def run(self) -> "NaiveWorkforceModel":
        while self.t + 1 < self.n_months:
            self.step()
        return self
