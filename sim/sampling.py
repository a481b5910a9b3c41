"""Drawing workers without scanning the whole workforce.

Levers reach a few percent of workers a month. Poisson sampling with geometric skipping visits only
candidate slots and keeps each with an acceptance probability, so the cost grows with the number
reached, not with the size of the workforce.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .metrics import order_statistics


def stochastic_round(rng: np.random.Generator, x: float) -> int:
    """floor(x) plus one with probability frac(x): unbiased integer count of agents."""
    if x <= 0:
        return 0
    base = int(np.floor(x))
    return base + int(rng.random() < x - base)


def sample_distinct(
    rng: np.random.Generator,
    n: int,
    k: int,
    accept: Callable[[np.ndarray], np.ndarray],
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
    (sim.passes; the numpy ones by default), which give the same slots.
    """
    if passes is None:
        from . import kernels_numpy as passes
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
