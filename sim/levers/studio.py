"""Studio lever: innovation and master studios (劳模和工匠人才创新工作室 / 技能大师工作室).

Mechanism
- Studios: the region's status-quo count plus its yearly growth (cq_studios_2020, cq_studios_2024),
  x intensity. Each needs a master at 技师 or above; at most `masters_share_max` of the workers at
  master level can lead one, so the masters' number is the binding limit when studios grow fast.
- Places: studios x `members_per_studio` (cq_studios_2024 note). Workers at the member levels join at
  random to fill vacancies and stay `term_months`, or until promoted past the member levels.
- Members learn `learning_multiplier` times faster (prior_mentoring) and, prepared by their master,
  sit assessments as readily as trained workers (`behaviour.trained_sit_prob`). A member who has met the next
  standard may be promoted out of turn, before the wait is served, with annual probability
  `fast_track_rate` (rule_fast_track).
- Cost: the government subsidy per studio (rule_studio_subsidy: 200,000 yuan over 3 years), booked as
  a running cost of subsidy / 36 per studio-month (assumption: studios are re-accredited every 3 years).
"""

from __future__ import annotations

import numpy as np

from ..calendar import monthly_rate
from ..metrics import numpy_sum
from ..rates import refresh
from ..sampling import Acceptance, sample_distinct, stochastic_round
from ..workforce import NO_MONTH
from .base import Lever


class StudioLever(Lever):
    name = "studio"

    def init(self, model) -> None:
        self.studios = 0.0  # studios operating this month (population-scaled count)
        self.members = 0.0  # members this month (population-scaled)

    def studio_count(self, model) -> float:
        """Studios this month: status quo plus growth, x intensity, limited by available masters."""
        p, reg = self.params, model.cfg.region
        planned = max(0.0, (reg.studios + reg.studio_growth_per_year * model.t / 12.0) * p.intensity)
        masters = numpy_sum(model.level_counts.tolist()[p.master_min_level:]) * p.masters_share_max
        return min(planned, masters)

    def act(self, model, rng) -> None:
        p, wf, w = self.params, model.workforce, model.weight
        lo, hi = p.member_levels
        self.studios = self.studio_count(model)
        capacity = stochastic_round(rng, self.studios * p.members_per_studio / w)

        # members whose term is over or whose level left the member levels leave (one pass)
        members, leaving = wf.kernels.studio_roster(wf.studio_since, wf.level, model.t, p.term_months, lo, hi,
                                                    wf.scratch("studio"), wf.scratch("studio_leaving"), wf.threads)
        if members.size > capacity:  # fewer places than members: a random excess leaves
            drop = rng.choice(members.size, members.size - capacity, replace=False)
            leaving = np.concatenate([leaving, members[drop]])
            members = np.delete(members, drop)
        if leaving.size:
            wf.studio_since[leaving] = NO_MONTH
            refresh(wf, leaving, model.rates)

        vacancies = capacity - members.size
        if vacancies > 0:
            # member levels, not a member yet
            accept = Acceptance(Acceptance.STUDIO, wf.level, lo, hi, wf.progress, False, 0, wf.firm,
                                model.firms.levy_rate, np.float32(1.0), wf.studio_since)
            joiners = sample_distinct(rng, wf.n, vacancies, accept, passes=wf.kernels)
            wf.studio_since[joiners] = model.t
            refresh(wf, joiners, model.rates)
            members = np.concatenate([members, joiners])

        # Out-of-turn promotion of members who have met the next standard (rule_fast_track).
        fast = wf.kernels.fast_track(rng, members, wf.progress, wf.level, hi, monthly_rate(p.fast_track_rate))
        model.promote(fast, "studio")

        self.members = members.size * w
        self.month_reach = self.members
        self.book("government", self.studios * p.subsidy_per_studio / 36.0)
