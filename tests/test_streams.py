"""RandomStreams computes each (mechanism, month) generator itself, SeedSequence's hashing vectorised
over months and PCG64's seeding in integers: the numbers must be those of numpy's own
SeedSequence.spawn and PCG64, for any seed, mechanism and month."""

from __future__ import annotations

import platform
import sys

import numpy as np
import pytest

from sim import streams as streams_module
from sim.streams import MECHANISMS, RandomStreams


@pytest.fixture(params=["written", "setter"], autouse=True)
def state_writes(request, monkeypatch):
    """Every test runs with the states written into the bit generators' memory and with numpy's
    `state` setter (the path taken where the memory layout check fails); blocks are not shared
    from one test to the next."""
    monkeypatch.setattr(streams_module, "_SHARED_BLOCKS", {})
    if request.param == "setter":
        monkeypatch.setattr(streams_module._StateWriter, "_layout_ok", False)
    return request.param


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


def test_the_words_are_pcg64s_seeding_and_the_layout_check_holds_here(state_writes):
    """`_pcg64_words` against PCG64's seeding in Python integers, for words at the edges of 64 bits
    (carries through both halves); and on this machine the writer does write (the check passed)."""
    rng = np.random.default_rng(11)
    edges = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64)
    seeds = np.concatenate([np.stack(np.meshgrid(*[edges] * 4), -1).reshape(-1, 4),
                            rng.integers(0, 2**64 - 1, (500, 4), dtype=np.uint64, endpoint=True)])
    words = streams_module._pcg64_words(seeds)
    for s, w in zip(seeds.tolist(), words.tolist()):
        ref = streams_module._pcg64_state(s)["state"]
        assert (w[0] | w[1] << 64, w[2] | w[3] << 64) == (ref["state"], ref["inc"])
    assert streams_module._pcg64_words(seeds[7]).tolist() == words[7].tolist()  # one row, as rows
    bitgen = np.random.PCG64(5)
    before = bitgen.state
    writer = streams_module._StateWriter(bitgen)
    assert bitgen.state == before  # the layout check draws on a bit generator of its own
    if state_writes == "setter":
        assert not writer.writes
    elif sys.byteorder == "little" and platform.machine() in ("x86_64", "AMD64", "aarch64", "arm64"):
        # where numpy stores 128-bit integers natively (gcc, clang) the check holds
        assert writer.writes and streams_module._StateWriter._check()


def test_runs_of_one_seed_share_blocks_and_other_seeds_do_not():
    a, b, c = RandomStreams(5), RandomStreams(5), RandomStreams(6)
    ga = a.get("entrants", 24300).random(5)
    gb = b.get("entrants", 24300).random(5)
    gc = c.get("entrants", 24300).random(5)
    assert np.array_equal(ga, gb) and not np.array_equal(ga, gc)
    assert a._blocks["entrants"][1].base is b._blocks["entrants"][1].base
    assert np.array_equal(c.get("entrants", 24300).random(5), reference(6, "entrants", 24300).random(5))


def test_copied_and_pickled_streams_draw_their_own_numbers():
    """A copy of the streams (a model copied or pickled) reseeds its own generators: the writer's
    views are made again over the copy's bit generators, not copied as arrays of their own."""
    import copy
    import pickle

    streams = RandomStreams(9)
    streams.get("training", 24300).random(3)
    for twin in (copy.deepcopy(streams), pickle.loads(pickle.dumps(streams))):
        for month in (24301, 24302, 24300):
            got = twin.get("training", month)
            assert got.bit_generator.state == reference(9, "training", month).bit_generator.state
            assert np.array_equal(got.random(5), reference(9, "training", month).random(5))
        assert np.array_equal(streams.get("training", 24305).random(4), reference(9, "training", 24305).random(4))
