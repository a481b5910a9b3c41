"""RandomStreams computes each (mechanism, month) generator itself, SeedSequence's hashing vectorised
over months and PCG64's seeding in integers: the numbers must be those of numpy's own
SeedSequence.spawn and PCG64, for any seed, mechanism and month."""

from __future__ import annotations

import numpy as np
import pytest

from sim.streams import MECHANISMS, RandomStreams


def reference(seed: int, mechanism: str, month: int) -> np.random.Generator:
    root = np.random.SeedSequence(seed).spawn(len(MECHANISMS))[MECHANISMS.index(mechanism)]
    child = np.random.SeedSequence(root.entropy, spawn_key=root.spawn_key + (month,), pool_size=root.pool_size)
    return np.random.Generator(np.random.PCG64(child))


@pytest.mark.parametrize("seed", [0, 1, 20221231, 2**32 - 1, 2**32, 2**40 + 7, 2**63 - 5, 2**64 + 3])
def test_generators_are_numpys_for_every_mechanism_and_month(seed):
    streams = RandomStreams(seed)
    months = [0, 1, 255, 256, 12 * 2012 + 9, 12 * 2035 + 11, 2**32 - 1, 2**32, 2**40]
    for mechanism in MECHANISMS:
        for month in months:
            ref, got = reference(seed, mechanism, month), streams.get(mechanism, month)
            assert np.array_equal(ref.random(3, dtype=np.float32), got.random(3, dtype=np.float32))
            assert np.array_equal(ref.integers(0, 1 << 62, 3), got.integers(0, 1 << 62, 3))
            assert ref.bit_generator.state == got.bit_generator.state


def test_a_month_asked_again_starts_again():
    streams = RandomStreams(7)
    first = streams.get("demography", 24300).random(4)
    streams.get("demography", 24301).random(10)
    assert np.array_equal(streams.get("demography", 24300).random(4), first)


def test_mechanisms_sharing_blocks_of_months_get_their_own_numbers_in_any_order():
    """A block of child seeds is made for every mechanism whose block does not hold the month asked
    (one vectorised call): mechanisms asked at months inside, across and outside each other's blocks,
    forwards and backwards, each get numpy's generator for that month."""
    seed = 20240611
    streams = RandomStreams(seed)
    rng = np.random.default_rng(3)
    start = 12 * 2012 + 9
    months = [0, start, start + 255, start + 256, start + 100, start + 400, start + 130, 5, start + 1000]
    months += rng.integers(start - 300, start + 700, 60).tolist()
    for month in months:
        for mechanism in rng.choice(MECHANISMS, 4, replace=False).tolist():
            ref, got = reference(seed, mechanism, month), streams.get(mechanism, month)
            assert ref.bit_generator.state == got.bit_generator.state, (mechanism, month)
    held = {first for first, _ in streams._blocks.values()}
    assert len(held) < len(MECHANISMS)  # blocks were shared, not made one per mechanism
