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
of a short run's stream cost) and PCG64's seeding in uint64 words (`_pcg64_words`), and writes them
into one bit generator per mechanism (`_StateWriter`: 0.8 microseconds where numpy's `state` setter
and the integers it needs took 2.1). Runs of one seed share the blocks. The generators are the same,
number for number (tests/test_streams.py compares them with `SeedSequence.spawn` and `PCG64` for many
seeds, mechanisms and months, with the words written and with numpy's setter).
"""

from __future__ import annotations

import ctypes
import sys

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


def _mul64(a: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray]:
    """The full 128-bit products of uint64 `a` and the constant `b`: (low words, high words)."""
    m32 = np.uint64(_MASK)
    a0, a1 = a & m32, a >> np.uint64(32)
    b0, b1 = np.uint64(b & _MASK), np.uint64(b >> 32)
    low, mid1, mid2 = a0 * b0, a1 * b0, a0 * b1
    t = (low >> np.uint64(32)) + (mid1 & m32) + (mid2 & m32)
    high = a1 * b1 + (mid1 >> np.uint64(32)) + (mid2 >> np.uint64(32)) + (t >> np.uint64(32))
    return (t << np.uint64(32)) | (low & m32), high


def _pcg64_words(seeds: np.ndarray) -> np.ndarray:
    """`_pcg64_state` of every row of generate_state(4, uint64) words, vectorised: uint64 words
    [state low, state high, increment low, increment high], the order of PCG64's two 128-bit fields
    in its memory on a little-endian machine (checked by `_StateWriter`)."""
    seeds = np.asarray(seeds, dtype=np.uint64)
    if seeds.ndim == 1:  # one row: worked as an array of one (numpy scalars warn when they wrap)
        return _pcg64_words(seeds[None, :])[0]
    one = np.uint64(1)
    s0, s1, s2, s3 = (seeds[..., i] for i in range(4))
    inc_lo, inc_hi = (s3 << one) | one, (s2 << one) | (s3 >> np.uint64(63))
    a_lo = s1 + inc_lo  # initstate + inc, 128 bits in two words
    a_hi = s0 + inc_hi + (a_lo < inc_lo).astype(np.uint64)
    lo, hi = _mul64(a_lo, _PCG_MULT & (2**64 - 1))  # times the multiplier, modulo 2**128
    hi = hi + a_lo * np.uint64(_PCG_MULT >> 64) + a_hi * np.uint64(_PCG_MULT & (2**64 - 1))
    state_lo = lo + inc_lo
    state_hi = hi + inc_hi + (state_lo < lo).astype(np.uint64)
    return np.stack([state_lo, state_hi, inc_lo, inc_hi], axis=-1)


class _StateWriter:
    """Sets a PCG64's state by writing its words into the bit generator's memory: about a fifth of the
    cost of numpy's `state` setter (a dict parsed, Python ints split), paid by five or more mechanisms
    every month. The layout (a pointer to the 128-bit state and increment, then the 32-bit buffer's
    flag and value) is numpy's `pcg64_state`; it is checked once per process against the setter, on a
    bit generator of its own, and where it does not hold (128-bit integers stored otherwise, as where
    the compiler has none) the setter is used. The views over the memory are private and live as long
    as the writer, which holds the bit generator."""

    __slots__ = ("_bitgen", "_words", "_buffer")
    _layout_ok: bool | None = None

    def __init__(self, bitgen: np.random.PCG64):
        self._bitgen = bitgen
        self._words = self._buffer = None
        if _StateWriter._layout_ok is None:
            _StateWriter._layout_ok = _StateWriter._check()
        if _StateWriter._layout_ok:
            self._words, self._buffer = self._views(bitgen)

    @staticmethod
    def _views(bitgen: np.random.PCG64) -> tuple[np.ndarray, np.ndarray]:
        """uint64 views of the state and increment, and uint32 views of the buffer's flag and value."""
        address = bitgen.ctypes.state_address
        pointer = ctypes.c_void_p.from_address(address).value
        words = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(pointer))
        buffer = np.ctypeslib.as_array((ctypes.c_uint32 * 2).from_address(address + ctypes.sizeof(ctypes.c_void_p)))
        return words, buffer

    @staticmethod
    def _check() -> bool:
        """Whether words written through the views give the state numpy's setter gives, a 32-bit half
        left in the buffer before (on a bit generator made for the check only)."""
        if sys.byteorder != "little":
            return False
        bitgen = np.random.PCG64(1)
        bitgen.random_raw(3)
        bitgen.ctypes.next_uint32(bitgen.ctypes.state)
        probe = np.array([[0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x0F1E2D3C4B5A6978, 2**64 - 3]], dtype=np.uint64)
        words, buffer = _StateWriter._views(bitgen)
        words[:] = _pcg64_words(probe)[0]
        buffer.fill(0)
        return bitgen.state == _pcg64_state(probe[0])

    def __getstate__(self) -> dict:
        """Copied or pickled (with a model), a writer writes into its own bit generator's memory: the
        views are made again for the copy, never copied as arrays of their own."""
        return {"bitgen": self._bitgen}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["bitgen"])

    @property
    def writes(self) -> bool:
        """Whether this writer writes into memory (else it uses numpy's setter)."""
        return self._words is not None

    def set(self, words: np.ndarray) -> None:
        """Set the state and increment from `_pcg64_words` output; the 32-bit buffer emptied."""
        if self._words is None:
            lo, hi, inc_lo, inc_hi = words.tolist()
            self._bitgen.state = {"bit_generator": "PCG64", "has_uint32": 0, "uinteger": 0,
                                  "state": {"state": lo | hi << 64, "inc": inc_lo | inc_hi << 64}}
        else:
            self._words[:] = words
            self._buffer.fill(0)


#: blocks of PCG64 words by (seed, first month): runs of one seed (a sweep's lever settings, the
#: explorer's moves, goal-seek) share them; a few blocks of 80 kB each
_SHARED_BLOCKS: dict[tuple[int, int], np.ndarray] = {}
_MAX_SHARED_BLOCKS = 16


class RandomStreams:
    """Per-mechanism, per-month generators spawned from one seed."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._prefixes: tuple[list[np.ndarray], int] | None = None  # made at the first block not shared
        self._index = {name: i for i, name in enumerate(MECHANISMS)}
        # mechanism -> (first month, its PCG64 words for the block's months)
        self._blocks: dict[str, tuple[int, np.ndarray]] = {}
        # mechanism -> (its generator, reseeded at every get, and the writer of its state)
        self._generators: dict[str, tuple[np.random.Generator, _StateWriter]] = {}

    def _block(self, first: int) -> np.ndarray:
        """PCG64 words of every mechanism for the _BLOCK months from `first`: (mechanisms, months, 4)."""
        key = (self.seed, first)
        words = _SHARED_BLOCKS.get(key)
        if words is None:
            if self._prefixes is None:
                self._prefixes = _prefixes(self.seed)
            words = _pcg64_words(_child_seeds(self._prefixes, np.arange(first, first + _BLOCK)))
            words.flags.writeable = False
            if len(_SHARED_BLOCKS) >= _MAX_SHARED_BLOCKS:
                try:
                    del _SHARED_BLOCKS[next(iter(_SHARED_BLOCKS))]
                except (KeyError, StopIteration, RuntimeError):  # another thread got there first
                    pass
            _SHARED_BLOCKS[key] = words
        return words

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
            # a block from this month on, for every mechanism whose block does not hold this month
            # (one vectorised call; a run's months, history and horizon, take two or three)
            first = min(month, (1 << 32) - _BLOCK)
            words = self._block(first)
            for name, k in self._index.items():
                start, held = self._blocks.get(name, (0, None))
                if held is None or not start <= month < start + _BLOCK:
                    self._blocks[name] = first, words[k]
            block = self._blocks[mechanism][1]
        hit = self._generators.get(mechanism)
        if hit is None:
            gen = np.random.Generator(np.random.PCG64(0))  # reseeded at once by the writer
            hit = self._generators[mechanism] = gen, _StateWriter(gen.bit_generator)
        hit[1].set(block[month - first])
        return hit[0]
