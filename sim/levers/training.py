"""Training lever: subsidised training places (person-times) bought from two budgets.

Mechanism
- Budget, fixed each January for the year: the government subsidy (region's status-quo yuan per worker
  per year x intensity) plus the employers' levy: levy rate (rule_training_levy, 1.5-2.5% of payroll)
  x the front-line share (at least 60%) x the share of it spent on skill-upgrade places
  (`levy_upgrade_share`, assumption) x intensity.
- Places: budget / cost per place (cq_training_cost, grown with the wage index), spread evenly
  over the months.
- Allocation: government places go to eligible workers anywhere; employer places go to workers in
  proportion to their firm's levy rate. `allocation` weights who gets a place: at random, lower
  levels first, or those nearest the next standard.
- Effect per place: progress towards the next standard rises by `progress_gain`, and the worker
  earns `wait_credit_months` off the statutory wait, capped at two years (rule_wait_* notes).
"""

from __future__ import annotations

import numpy as np

from ..ladder import MAX_TRAINING_CREDIT_YEARS
from ..metrics import numpy_sum
from ..sampling import SAMPLER
from .base import FUNDERS, Lever

CREDIT_CAP = np.int16(MAX_TRAINING_CREDIT_YEARS * 12)


class TrainingLever(Lever):
    name = "training"

    def init(self, model) -> None:
        self.year_budget = {"government": 0.0, "employer": 0.0}
        self._budget_year = None

    def cost_per_place(self, model) -> float:
        """Cost of a place this month: its cost at region.observed (the wage index's anchor) grown with
        wages (mostly trainers' pay)."""
        return self.params.cost_per_place * model.wage_index / model.wage_index_start

    def _set_budget(self, model) -> None:
        p, wf = self.params, model.workforce
        workers = numpy_sum(model.ledger.count.tolist())
        # Constant in real terms: the per-worker budget at region.observed, grown (or, before it,
        # deflated) with the wage index, so the status quo buys the same places per worker each year.
        real = model.wage_index / model.wage_index_start
        gov = model.cfg.region.training_budget_per_worker_year * workers * p.intensity * real
        # Payroll by firm, then the levy: no per-worker gather, and no BLAS call (whose worker thread
        # would spin on the other core through a small run).
        firm_pay = wf.kernels.firm_payroll(wf.firm, wf.pay, wf.weight, model.firms.n)
        payroll_levy = float((firm_pay * model.firms.levy_rate).sum()) * 12 * model.wage_index
        emp = payroll_levy * model.cfg.firms.levy_frontline_share * p.levy_upgrade_share * p.intensity
        self.year_budget = {"government": gov, "employer": emp}
        self._budget_year = model.year

    ALLOCATION_MODES = {"random": 0, "lowest_level": 1, "near_standard": 2}

    def _levy_max(self, levy: np.ndarray) -> np.float32:
        """The highest firm levy rate (employer places follow the rate relative to it): the firms are
        drawn once per run, so it is worked out once for their array."""
        cached = self.__dict__.get("_levy")
        if cached is None or cached[0] is not levy:
            cached = self._levy = (levy, np.float32(levy.max()) if levy.size else np.float32(1.0))
        return cached[1]

    def act(self, model, rng) -> None:
        if self._budget_year != model.year:
            self._set_budget(model)
        p, wf, w = self.params, model.workforce, model.weight
        cost = self.cost_per_place(model)
        # Government then employer places (fixed order: the same draws for the same budgets), each
        # rounded to a count, drawn and trained in one call of the passes. Who may get a place (weight in
        # [0, 1], the passes' accept_training): levels up to `eligible_max_level`, weighted by
        # `allocation` (at random; lower levels first, (top + 1 - level) / (top + 1); nearest the
        # standard, clip(progress, 0.05, 1)) and, for employer places, by the firm's levy rate relative
        # to the highest.
        places = np.array([self.year_budget[funder] / 12.0 / cost / w for funder in FUNDERS])
        levy = model.firms.levy_rate
        levy_max = self._levy_max(levy)
        reached = wf.kernels.train_places(
            rng, places, wf.n, SAMPLER, wf.level, p.eligible_max_level, wf.progress, self.ALLOCATION_MODES[p.allocation],
            wf.firm, levy, levy_max, wf.studio_since, wf.credit, np.float32(p.progress_gain),
            np.int16(p.wait_credit_months), CREDIT_CAP).tolist()
        for funder, filled in zip(FUNDERS, reached):
            if filled:
                self.book(funder, filled * w * cost)
                self.month_reach += filled * w
