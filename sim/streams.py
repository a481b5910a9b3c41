"""Random streams: one per mechanism, renewed every month, all derived from the run seed.

Each mechanism (demography, entrants, certification, ...) draws from its own generator, and the
generator for month t is the child (mechanism, t) of the run's SeedSequence. So a mechanism's draws in
month t never depend on how much any other mechanism, or the same mechanism in earlier months, drew.
Two runs that differ only in one lever share every draw that lever does not make (common random
numbers), and a lever at zero intensity leaves the run bit-identical to one without the lever.
"""

from __future__ import annotations

import numpy as np

MECHANISMS: tuple[str, ...] = (
    "population",  # initial population (drawn once, month index 0)
    "firms",  # firm sizes and premia (once)
    "demography",  # exits and firm moves
    "entrants",  # new workers' attributes
    "certification",  # assessment outcomes
    "appointment",  # employer appointments to levels 6-7
    "training",
    "competition",
    "studio",
    "alignment",  # history: hot-deck donors and ties when aligning to an observation
)


def replicate_seed(base_seed: int, replicate: int) -> int:
    """Seed of replicate k, derived reproducibly from the base seed (replicate 0 uses the base seed)."""
    if replicate == 0:
        return int(base_seed)
    ss = np.random.SeedSequence(int(base_seed), spawn_key=(int(replicate),))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


class RandomStreams:
    """Per-mechanism, per-month generators spawned from one seed."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        root = np.random.SeedSequence(self.seed)
        self._roots = dict(zip(MECHANISMS, root.spawn(len(MECHANISMS))))

    def get(self, mechanism: str, month: int) -> np.random.Generator:
        """Generator for `mechanism` in absolute calendar month `month` (year * 12 + month - 1).

        Keyed by the calendar month, so two runs that simulate the same month (a forecast and its
        history, or runs whose policies start in different years) share that month's draws. The
        one-off mechanisms (population, firms) use key 0 at initialisation.
        """
        ss = self._roots[mechanism]
        child = np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (int(month),), pool_size=ss.pool_size)
        return np.random.Generator(np.random.PCG64(child))
