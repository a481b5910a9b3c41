"""Competition lever: skill competitions that train (以赛促训) and promote the best (以赛代评).

Mechanism
- `events_per_year` rounds, evenly spaced in the year. Participations per year: the region's
  status-quo rate per worker (cq_comp_2024) x workers x intensity, split over the rounds.
- Participants: workers at the eligible levels (rule_comp_promo), picked at random or, by default,
  in proportion to progress (firms send those who are doing well).
- Every participant gains `prep_progress_gain` from preparing.
- Score = progress + 0.5 log(aptitude) + luck (normal, `luck_sd`). The top `promote_fraction`
  (nat_comp_promo_rate) move one level up, unless promoted by a competition within
  `cooldown_months` (at most once a year, rule_comp_promo). Winners get a prize paid into income.
- Cost: government subsidy per key competition (rule_comp_subsidy) for the subsidised events, and
  prizes paid by employers from the competition fund (rule_comp_fund).
"""

from __future__ import annotations

import numpy as np

from ..metrics import numpy_sum, order_statistics
from ..sampling import Acceptance, sample_distinct, stochastic_round
from .base import Lever


def event_months(events_per_year: int) -> set[int]:
    """Calendar months (1-12) with a competition round, evenly spaced, the last in December."""
    return {int(round((i + 1) * 12 / events_per_year)) for i in range(events_per_year)}


def best_slots(part: np.ndarray, score: np.ndarray, n_top: int, passes) -> np.ndarray:
    """The n_top participants with the best scores, in slot order (`part` is sorted): the slots
    np.sort(part[np.argpartition(-score, n_top - 1)[:n_top]]) gives, found as the scores at or above
    the n_top-th best by a bracketed selection (sim.metrics.order_statistics), which is several times
    faster; if a tie sits on that score, the partition decides, as before."""
    if not 0 < n_top < part.size:
        return part[:n_top]
    best = score >= order_statistics(score, [part.size - n_top], passes=passes)[0]
    if np.count_nonzero(best) == n_top:
        return part[best]
    return np.sort(part[np.argpartition(-score, n_top - 1)[:n_top]])


class CompetitionLever(Lever):
    name = "competition"

    def init(self, model) -> None:
        self.months = event_months(self.params.events_per_year)
        self._fund_year, self._fund_left = None, 0.0

    @staticmethod
    def annual_fund(model) -> float:
        """This year's competition fund: the fund rate x the annual payroll (yuan)."""
        return model.cfg.firms.competition_fund_rate * float(model.ledger.pay.sum()) * 12 * model.wage_index

    def acts_in(self, model) -> bool:
        """Only in the months with a round."""
        return model.calendar_month in self.months

    def act(self, model, rng) -> None:
        if model.calendar_month not in self.months:
            return
        p, wf, w = self.params, model.workforce, model.weight
        lo, hi = p.eligible_levels
        workers = numpy_sum(model.ledger.count.tolist())
        per_event = model.cfg.region.competition_participation * workers * p.intensity / p.events_per_year
        k = stochastic_round(rng, per_event / w)

        by_progress = p.selection == "progress"

        # eligible levels, x clip(progress, 0.05, 1) when firms send those doing well
        accept = Acceptance(Acceptance.LEVELS, wf.level, lo, hi, wf.progress, by_progress, 0, wf.firm,
                            model.firms.levy_rate, np.float32(1.0), wf.studio_since)
        part = sample_distinct(rng, wf.n, k, accept, passes=wf.kernels)
        self.book("government", p.subsidised_events_per_year * p.intensity / p.events_per_year * p.subsidy_per_event)
        if part.size == 0:
            return
        # luck, score = progress + 0.5 log(aptitude) + luck, and the preparation's gain: one call
        score = wf.kernels.compete(rng, part, wf.progress, 0.5 * np.log(wf.aptitude[part]), p.luck_sd,
                                   np.float32(p.prep_progress_gain))
        self.month_reach += part.size * w
        n_top = stochastic_round(rng, p.promote_fraction * part.size)
        top = best_slots(part, score, n_top, wf.kernels)
        cooled = wf.comp_month[top].astype(np.int64) <= model.t - p.cooldown_months
        winners = top[cooled]
        if winners.size:
            # Prizes come out of the employers' competition fund (rule_comp_fund), never beyond it.
            if self._fund_year != model.year:
                self._fund_year, self._fund_left = model.year, self.annual_fund(model)
            prize = max(0.0, min(p.prize_per_promotion, self._fund_left / (winners.size * w)))
            model.pay_bonus(winners, prize)
            self.book("employer", winners.size * w * prize)
            self._fund_left = max(0.0, self._fund_left - winners.size * w * prize)  # no rounding below zero
        wf.comp_month[winners] = model.t
        model.promote(winners, "competition")
