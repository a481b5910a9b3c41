"""Drawing workers without scanning the whole workforce.

Levers reach a few percent of workers a month. Poisson sampling with geometric skipping visits only
candidate slots and keeps each with an acceptance probability, so the cost grows with the number
reached, not with the size of the workforce.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from .metrics import order_statistics


def stochastic_round(rng: np.random.Generator, x: float) -> int:
    """floor(x) plus one with probability frac(x): unbiased integer count of agents."""
    if x <= 0:
        return 0
    base = int(np.floor(x))
    return base + int(rng.random() < x - base)


class Acceptance(NamedTuple):
    """Who a lever may draw, as data rather than a closure, so that the compiled passes can draw in
    one call (sim.kernels.sample_distinct) what `sample_distinct` draws in ten numpy calls.

    kind: LEVELS (levels lo..hi, x clip(progress, 0.05, 1) if `by`), TRAINING (levels up to hi,
    weighted by `mode`, and by the firm's levy if `by`) or STUDIO (levels lo..hi, not a member).
    The acceptance of a slot is the passes' accept_levels, accept_training or accept_studio."""

    kind: int
    level: np.ndarray
    lo: int
    hi: int
    progress: np.ndarray
    by: bool
    mode: int
    firm: np.ndarray
    levy: np.ndarray
    levy_max: np.float32
    studio_since: np.ndarray

    LEVELS = 0
    TRAINING = 1
    STUDIO = 2

    def weights(self, slots: np.ndarray, passes) -> np.ndarray:
        if self.kind == self.LEVELS:
            return passes.accept_levels(slots, self.level, self.lo, self.hi, self.progress, self.by)
        if self.kind == self.TRAINING:
            return passes.accept_training(slots, self.level, self.hi, self.mode, self.progress, self.firm,
                                          self.levy, self.levy_max, self.by)
        return passes.accept_studio(slots, self.level, self.lo, self.hi, self.studio_since)


def sample_distinct(
    rng: np.random.Generator,
    n: int,
    k: int,
    accept: Callable[[np.ndarray], np.ndarray] | Acceptance,
    pilot: int = 4096,
    margin: float = 1.15,
    passes=None,
) -> np.ndarray:
    """k distinct slots in [0, n), sorted, each chosen with probability proportional to accept(slot).

    Poisson sampling: every slot is a candidate with probability p (geometric skipping, so only the
    candidates cost anything), kept with probability accept(slot); p is set from a pilot estimate of
    the mean acceptance so that about `margin` x k are kept, and a uniform thinning then cuts them to
    exactly k. Cost grows with k, not n, and no duplicates arise. Returns fewer than k only if fewer
    can be found (for example when few workers are eligible). `passes`: the per-worker passes
    (sim.passes; the numpy ones by default), which give the same slots; with the compiled ones an
    `Acceptance` is drawn in one call.
    """
    if passes is None:
        from . import kernels_numpy as passes
    if isinstance(accept, Acceptance):
        if hasattr(passes, "sample_distinct"):
            return passes.sample_distinct(rng, n, k, pilot, margin, *accept)
        acceptance = accept

        def accept(slots: np.ndarray) -> np.ndarray:
            return acceptance.weights(slots, passes)
    if k <= 0 or n <= 0:
        return np.empty(0, dtype=np.int64)
    probe = np.arange(n) if n <= pilot else rng.integers(0, n, pilot)
    mean_accept = float(np.add.reduce(acc := accept(probe)) / acc.size)  # np.mean, without its overhead
    if mean_accept <= 0.0:
        if n <= pilot:
            return np.empty(0, dtype=np.int64)
        mean_accept = 1.0 / pilot  # eligible workers are rare: search more widely
    p = min(1.0, margin * k / (n * mean_accept))
    cand = passes.skip_sample(rng, n, p)
    keep = passes.keep_below(cand, rng.random(cand.size, dtype=np.float32), accept(cand))
    if keep.size > k:  # uniform thinning to exactly k, keeping slot order: the k smallest random keys
        key = rng.random(keep.size)
        keep = keep[key <= order_statistics(key, [k - 1], passes=passes)[0]]
    return keep
