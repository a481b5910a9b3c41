"""Random streams: one per mechanism, renewed every month, all derived from the run seed.

Each mechanism (demography, entrants, certification, ...) draws from its own generator, and the
generator for month t is the child (mechanism, t) of the run's SeedSequence. So a mechanism's draws in
month t never depend on how much any other mechanism, or the same mechanism in earlier months, drew.
Two runs that differ only in one lever share every draw that lever does not make (common random
numbers), and a lever at zero intensity leaves the run bit-identical to one without the lever.

Making a child SeedSequence and seeding a PCG64 from it costs 10-25 microseconds, paid by five or
more mechanisms every month: at 10,000 agents that was a tenth of a month's work. `RandomStreams`
computes the same child states itself, numpy's SeedSequence hashing vectorised over a block of months
and every mechanism at once (`_child_seeds`: one call where one per mechanism took 0.1 ms each, most
of a short run's stream cost) and PCG64's seeding in Python integers, and sets them on one bit
generator per mechanism. The generators are the same, number for number (tests/test_streams.py
compares them with `SeedSequence.spawn` and `PCG64` for many seeds, mechanisms and months).
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

# numpy's SeedSequence constants (numpy/random/bit_generator.pyx) and PCG64's default multiplier
_MASK = 0xFFFFFFFF
_INIT_A, _MULT_A, _INIT_B, _MULT_B = 0x43B0D7E5, 0x931E8875, 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = 0xCA01F9DD, 0x4973F715
_PCG_MULT = 0x2360ED051FC65DA44385DF649FCCF645
_M128 = (1 << 128) - 1
_BLOCK = 256  # months of child seeds computed at once, from the first month asked for


def replicate_seed(base_seed: int, replicate: int) -> int:
    """Seed of replicate k, derived reproducibly from the base seed (replicate 0 uses the base seed)."""
    if replicate == 0:
        return int(base_seed)
    ss = np.random.SeedSequence(int(base_seed), spawn_key=(int(replicate),))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _words(n: int) -> list[int]:
    """An int as little-endian 32-bit words, as SeedSequence reads entropy (0 is one word)."""
    out = []
    while n > 0:
        out.append(n & _MASK)
        n >>= 32
    return out or [0]


def _hashmix(value, hc):
    """SeedSequence's hashmix on uint32 values held in uint64 (or Python ints): (value, next hc)."""
    value = value ^ hc
    hc = (hc * _MULT_A) & _MASK
    value = (value * hc) & _MASK
    return value ^ (value >> 16), hc


def _mix(x, y):
    r = (_MIX_L * x - _MIX_R * y) & _MASK
    return r ^ (r >> 16)


def _absorb(pool: list, hc, entropy) -> tuple[list, object]:
    """Mix entropy words beyond the pool's own into it (the last loop of SeedSequence.mix_entropy)."""
    pool = list(pool)
    for w in entropy:
        for d in range(4):
            v, hc = _hashmix(w, hc)
            pool[d] = _mix(pool[d], v)
    return pool, hc


def _prefixes(seed: int) -> tuple[list[np.ndarray], int]:
    """The pools of SeedSequence(seed, spawn_key=(mechanism, ...)) for every mechanism before the
    month's word (four uint64 arrays, one entry per mechanism), and the hash constant after them: the
    run entropy padded to the pool size and mixed, then the mechanism's word absorbed. The constant is
    the same for every mechanism (hashmix moves it by multiplication only, once per word, and each
    mechanism is one word)."""
    run = _words(seed)
    run += [0] * (4 - len(run))
    hc, pool = _INIT_A, []
    for w in run[:4]:
        v, hc = _hashmix(w, hc)
        pool.append(v)
    for s in range(4):
        for d in range(4):
            if s != d:
                v, hc = _hashmix(pool[s], hc)
                pool[d] = _mix(pool[d], v)
    pool, hc = _absorb(pool, hc, run[4:])
    mechanisms = np.arange(len(MECHANISMS), dtype=np.uint64)
    pool, hc = _absorb([np.full(mechanisms.size, p, dtype=np.uint64) for p in pool], np.uint64(hc), [mechanisms])
    return pool, int(hc)


def _child_seeds(prefixes: tuple[list[np.ndarray], int], months: np.ndarray) -> np.ndarray:
    """generate_state(4, uint64) of the child SeedSequence of every mechanism for each month
    (< 2**32): uint64 (mechanisms, len(months), 4)."""
    pool, hc = prefixes
    m = months.astype(np.uint64)[None, :]
    pool, _ = _absorb([p[:, None] for p in pool], np.uint64(hc), [m])
    hc = _INIT_B
    w = []
    for i in range(8):
        v = pool[i % 4] ^ np.uint64(hc)
        hc = (hc * _MULT_B) & _MASK
        v = (v * np.uint64(hc)) & np.uint64(_MASK)
        w.append(v ^ (v >> np.uint64(16)))
    return np.stack([w[2 * j] | (w[2 * j + 1] << np.uint64(32)) for j in range(4)], axis=2)


def _pcg64_state(seed4) -> dict:
    """PCG64's state after seeding with generate_state(4, uint64) (pcg64_set_seed, pcg_setseq_128_srandom_r)."""
    s0, s1, s2, s3 = seed4.tolist() if isinstance(seed4, np.ndarray) else seed4
    initstate, initseq = (s0 << 64) | s1, (s2 << 64) | s3
    inc = ((initseq << 1) | 1) & _M128
    state = (((inc + initstate) & _M128) * _PCG_MULT + inc) & _M128
    return {"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0, "uinteger": 0}


class RandomStreams:
    """Per-mechanism, per-month generators spawned from one seed."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._prefixes = _prefixes(self.seed)
        self._index = {name: i for i, name in enumerate(MECHANISMS)}
        # mechanism -> (first month, its child seeds as Python ints, or the block they come from)
        self._blocks: dict[str, tuple[int, list | np.ndarray]] = {}
        self._generators: dict[str, np.random.Generator] = {}  # one per mechanism, its bit generator reseeded

    def get(self, mechanism: str, month: int) -> np.random.Generator:
        """Generator for `mechanism` in absolute calendar month `month` (year * 12 + month - 1).

        Keyed by the calendar month, so two runs that simulate the same month (a forecast and its
        history, or runs whose policies start in different years) share that month's draws. The
        one-off mechanisms (population, firms) use key 0 at initialisation. The same numbers as
        `np.random.Generator(np.random.PCG64(SeedSequence(seed).spawn(...)[mechanism] child month))`;
        a generator is valid until the next `get` of the same mechanism, which reseeds and returns it
        again (a Generator keeps no state of its own: its numbers, 32-bit buffer included, are its bit
        generator's state).
        """
        month = int(month)
        if not 0 <= month < 1 << 32:
            ss = np.random.SeedSequence(self.seed, spawn_key=(MECHANISMS.index(mechanism), month))
            return np.random.Generator(np.random.PCG64(ss))
        first, block = self._blocks.get(mechanism, (0, None))
        if block is None or not first <= month < first + _BLOCK:
            # a block of child seeds from this month on, for every mechanism whose block does not hold
            # this month (one vectorised call; a run's months, history and horizon, take two or three)
            first = min(month, (1 << 32) - _BLOCK)
            seeds = _child_seeds(self._prefixes, np.arange(first, first + _BLOCK))
            for name, k in self._index.items():
                start, held = self._blocks.get(name, (0, None))
                if held is None or not start <= month < start + _BLOCK:
                    self._blocks[name] = first, seeds[k]
            block = self._blocks[mechanism][1]
        if not isinstance(block, list):  # as Python ints, the first time this mechanism reads the block
            block = block.tolist()
            self._blocks[mechanism] = first, block
        gen = self._generators.get(mechanism)
        if gen is None:
            gen = self._generators[mechanism] = np.random.Generator(np.random.PCG64(0))
        gen.bit_generator.state = _pcg64_state(block[month - first])
        return gen
