"""The lever lifecycle: built from parameters, `init(model)` once, `apply(model)` every month.

Each lever keeps its own spend by funder and its monthly reach, and draws only from its own random
stream. A lever that is disabled or at zero intensity does nothing at all, so a run with it is
bit-identical to a run without it. A lever writes `act(model, rng)`, and `acts_in(model)` if it acts
only in some months (the competition's rounds), so that the other months make no stream for it.
"""

from __future__ import annotations

import numpy as np

FUNDERS = ("government", "employer")


class Lever:
    """Base class: cost accounts, reach and the on/off rule."""

    name = "lever"

    def __init__(self, params):
        self.params = params
        self.spend = {f: 0.0 for f in FUNDERS}  # cumulative, yuan
        self.month_spend = {f: 0.0 for f in FUNDERS}  # this month, yuan
        self.month_reach = 0.0  # people reached this month (population-scaled)

    @property
    def active(self) -> bool:
        return bool(self.params.enabled) and self.params.intensity > 0

    def init(self, model) -> None:
        """Called once when the model is built."""

    def apply(self, model) -> None:
        """Called once a month, in phase (c) of the step."""
        for f in FUNDERS:
            self.month_spend[f] = 0.0
        self.month_reach = 0.0
        if self.active and self.acts_in(model):
            self.act(model, model.streams.get(self.name, model.now))

    def acts_in(self, model) -> bool:
        """Whether the lever acts this month (every month unless a lever says otherwise): a month it
        skips does not make its random stream, which draws nothing it would not have drawn anyway."""
        return True

    def act(self, model, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def book(self, funder: str, amount: float) -> None:
        """Record spend (yuan) by one funder."""
        self.month_spend[funder] += float(amount)
        self.spend[funder] += float(amount)
