"""Drawing workers without scanning the whole workforce.

Levers reach a few percent of workers a month. Poisson sampling with geometric skipping visits only
candidate slots and keeps each with an acceptance probability, so the cost grows with the number
reached, not with the size of the workforce.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from .metrics import order_statistics


def stochastic_round(rng: np.random.Generator, x: float) -> int:
    """floor(x) plus one with probability frac(x): unbiased integer count of agents."""
    if x <= 0:
        return 0
    base = math.floor(x)  # np.floor's value for a float, without a numpy scalar
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


#: a pass is set to keep k + SPARE_SD sqrt(k) + 2 workers on average: a Poisson count then falls
#: short of k in about 2% of passes, and a short pass is topped up by another, whose size is what is
#: missing (so it is cheap), while the thinning discards only about 2 sqrt(k)
SPARE_SD = 2.0
#: pilot slots per place asked for, and at least: the pilot only sets the first pass's rate (a
#: top-up corrects it), so it need not be larger than the places it serves
PILOT_PER_PLACE = 16
PILOT_MIN = 256
#: pilot slots at most (a draw's `pilot`, unless it asks for another)
PILOT_MAX = 4096
#: passes at most; more than two happen only when the places exceed what the weights can fill
MAX_PASSES = 8
#: the largest pilot and the constants above, as the compiled passes take them (sampler)
SAMPLER = (PILOT_MAX, PILOT_MIN, PILOT_PER_PLACE, SPARE_SD, MAX_PASSES)


def expected_keep(need: int) -> float:
    """How many a pass should keep on average to give `need` workers (see SPARE_SD)."""
    return need + SPARE_SD * math.sqrt(need) + 2.0


def pilot_size(k: int, pilot: int) -> int:
    """Slots in the pilot for k places: PILOT_PER_PLACE a place, within [PILOT_MIN, pilot]."""
    return min(pilot, max(PILOT_MIN, PILOT_PER_PLACE * k))


def sample_distinct(
    rng: np.random.Generator,
    n: int,
    k: int,
    accept: Callable[[np.ndarray], np.ndarray] | Acceptance,
    pilot: int = PILOT_MAX,
    passes=None,
) -> np.ndarray:
    """k distinct slots in [0, n), sorted, each chosen with probability proportional to accept(slot).

    Poisson sampling: every slot is a candidate with probability p (geometric skipping, so only the
    candidates cost anything), kept with probability accept(slot); p is set from a pilot estimate of
    the mean acceptance so that about k + 2 sqrt(k) + 2 are kept (`expected_keep`). If fewer than k
    are kept, another pass, sized for what is missing (its rate scaled by what the last pass kept),
    adds to them, up to MAX_PASSES; a uniform thinning then cuts them to exactly k. Cost grows with
    k, not n, and no duplicates arise. Returns fewer than k only if the weights cannot fill k places
    (fewer than k workers have a positive weight, or the places are close to all of them and the
    passes run out). `passes`: the per-worker passes (sim.passes; the numpy ones by default), which
    give the same slots; with the compiled ones an `Acceptance` is drawn in one call.
    """
    if passes is None:
        from . import kernels_numpy as passes
    if isinstance(accept, Acceptance):
        if hasattr(passes, "sample_distinct"):
            return passes.sample_distinct(rng, n, k, pilot, PILOT_MIN, PILOT_PER_PLACE, SPARE_SD, MAX_PASSES, *accept)
        acceptance = accept

        def accept(slots: np.ndarray) -> np.ndarray:
            return acceptance.weights(slots, passes)
    if k <= 0 or n <= 0:
        return np.empty(0, dtype=np.int64)
    m = pilot_size(k, pilot)
    probe = np.arange(n) if n <= m else rng.integers(0, n, m)
    mean_accept = float(np.add.reduce(acc := accept(probe)) / acc.size)  # np.mean, without its overhead
    if mean_accept <= 0.0:
        if n <= m:
            return np.empty(0, dtype=np.int64)
        mean_accept = 1.0 / m  # eligible workers are rare: search more widely
    p = min(1.0, expected_keep(k) / (n * mean_accept))
    keep = np.empty(0, dtype=np.int64)
    for _ in range(MAX_PASSES):
        cand = passes.skip_sample(rng, n, p)
        new = passes.keep_below(cand, rng.random(cand.size, dtype=np.float32), accept(cand))
        keep = passes.union_sorted(keep, new) if keep.size else new
        if keep.size >= k:
            break
        p = min(1.0, p * expected_keep(k - keep.size) / max(new.size, 1))
    if keep.size > k:  # uniform thinning to exactly k, keeping slot order: the k smallest random keys
        key = rng.random(keep.size)
        keep = keep[key <= order_statistics(key, [k - 1], passes=passes)[0]]
    return keep
