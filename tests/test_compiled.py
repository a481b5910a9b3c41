"""The compiled passes (sim.kernels, numba) give bit for bit what their numpy forms
(sim.kernels_numpy) give, so a run's output does not depend on which one it used (sim.passes) and
the calibration stands.

Each pass is compared with exact equality on a mid-run workforce (every level, studio members,
training credit, workers at and below the standard); then whole runs are compared, history
included. Exact equality is the claim: the kernels keep float32 arithmetic in float32 and sum the
level ledger in slot order, as np.bincount does.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from sim import kernels, kernels_numpy, passes
from sim.certification import WAITS
from sim.kernels import RETIREMENT_TABLE_FROM
from sim.cli import compose_config
from sim.config import RunConfig
from sim.ladder import TOP_CERTIFIED
from sim.metrics import GUESS_WINDOWS, QUANTILES
from sim.model import WorkforceModel
from sim.workforce import NO_MONTH, LevelLedger

from .conftest import SHORT_HISTORY

IMPLS = (kernels, kernels_numpy)


@pytest.fixture(scope="module")
def model():
    """A 20k-agent run 30 months past its start: a workforce with every kind of worker state."""
    m = WorkforceModel(RunConfig(n_agents=20000, seed=5))
    for _ in range(30):
        m.step()
    assert (m.workforce.studio_since != NO_MONTH).any() and (m.workforce.credit > 0).any()
    return m


def some_slots(m, k=3000, seed=0):
    return np.sort(np.random.default_rng(seed).choice(m.workforce.n, k, replace=False)).astype(np.int64)


def both(fn):
    """fn(impl) for the compiled and the numpy passes."""
    return [fn(impl) for impl in IMPLS]


def same(a, b):
    if isinstance(a, tuple):
        return all(same(x, y) for x, y in zip(a, b))
    return np.array_equal(np.asarray(a), np.asarray(b)) and np.asarray(a).dtype == np.asarray(b).dtype


def test_refresh_ledger_promote_relocate_are_identical(model):
    idx = some_slots(model)
    outs = []
    for impl in IMPLS:
        wf = model.workforce.copy()
        led = LevelLedger(wf)
        wf.gain[idx] = -1
        impl.refresh(idx, wf.level, wf.studio_since, wf.aptitude, wf.firm, wf.wage_factor, wf.gain, wf.pay,
                     *model.rates.kernel_tables)
        impl.ledger_add(idx[::2], wf.level, wf.weight, wf.pay, led.count, led.pay, -1.0)
        up = idx[wf.level[idx] < 5]
        impl.promote(up, wf.level, wf.months_at_level, wf.progress, wf.credit, wf.weight, wf.studio_since,
                     wf.aptitude, wf.firm, wf.wage_factor, wf.gain, wf.pay, led.count, led.pay,
                     *model.rates.kernel_tables, 1)
        movers = idx[1::3]
        impl.relocate(movers, (movers % model.firms.n).astype(np.int32), wf.level, wf.weight, wf.studio_since,
                      wf.aptitude, wf.firm, wf.wage_factor, wf.gain, wf.pay, led.count, led.pay,
                      *model.rates.kernel_tables, 1)
        outs.append((wf, led))
    (a, la), (b, lb) = outs
    for f in ("level", "months_at_level", "progress", "credit", "gain", "pay", "firm", "studio_since"):
        assert same(getattr(a, f), getattr(b, f)), f
    assert same(la.count, lb.count) and same(la.pay, lb.pay)
    # a ledger built from nothing equals a recount, to the bit
    c, p = LevelLedger.recount(a)
    assert same(LevelLedger(a).count, c) and same(LevelLedger(a).pay, p)


def test_refreshing_and_booking_every_worker_is_the_indexed_pass_over_all_slots(model):
    """A workforce's construction refreshes and books every worker without an index of all slots
    (refresh_all, ledger_add_all): the same values, to the bit, as the indexed passes given
    np.arange(n), in both implementations."""
    outs = []
    for impl in IMPLS:
        wf, ref = model.workforce.copy(), model.workforce.copy()
        for w in (wf, ref):
            w.gain[:] = -1
            w.pay[::7] = 0
        every = np.arange(wf.n, dtype=np.int64)
        impl.refresh_all(wf.level, wf.studio_since, wf.aptitude, wf.firm, wf.wage_factor, wf.gain, wf.pay,
                         *model.rates.kernel_tables)
        impl.refresh(every, ref.level, ref.studio_since, ref.aptitude, ref.firm, ref.wage_factor, ref.gain, ref.pay,
                     *model.rates.kernel_tables)
        assert same(wf.gain, ref.gain) and same(wf.pay, ref.pay) and (wf.gain >= 0).all()
        count, pay, count_ref, pay_ref = np.ones(8), np.ones(8), np.ones(8), np.ones(8)
        impl.ledger_add_all(wf.level, wf.weight, wf.pay, count, pay, 1.0)
        impl.ledger_add(every, ref.level, ref.weight, ref.pay, count_ref, pay_ref, 1.0)
        assert same(count, count_ref) and same(pay, pay_ref)
        outs.append((wf.gain, wf.pay, count, pay))
    assert same(outs[0], outs[1])


def test_entrants_are_written_identically(model):
    idx = some_slots(model, 500, 3)
    rng = np.random.default_rng(1)
    k = idx.size
    new = (rng.integers(0, 4, k).astype(np.int8), rng.random(k) < 0.4, rng.integers(200, 400, k).astype(np.int16),
           rng.integers(600, 760, k).astype(np.int16), rng.integers(0, model.firms.n, k).astype(np.int32),
           rng.random(k).astype(np.float32), rng.random(k).astype(np.float32), np.float32(57.0))
    outs = []
    for impl in IMPLS:
        wf = model.workforce.copy()
        led = LevelLedger(wf)
        impl.enter(idx, *new, wf.level, wf.female, wf.age, wf.retire_age, wf.firm, wf.aptitude, wf.wage_factor,
                   wf.months_at_level, wf.progress, wf.credit, wf.studio_since, wf.comp_month, wf.weight, wf.bonus,
                   wf.gain, wf.pay, led.count, led.pay, *model.rates.kernel_tables, 1)
        outs.append((wf, led))
    (a, la), (b, lb) = outs
    from sim.workforce import FIELDS

    assert all(same(getattr(a, f), getattr(b, f)) for f in FIELDS)
    assert same(la.count, lb.count) and same(la.pay, lb.pay)


@pytest.mark.parametrize("p_max", [0.0, 0.012, 0.35])
def test_departures_and_firm_moves_in_one_pass_are_identical(model, p_max):
    """depart (ageing, retirement, separations, firm moves, ledger out) in one compiled call: the same
    leavers, movers and new firms as the numpy passes one by one, the same ledger to the bit, and the
    stream left in the same state; with retirements among the separation candidates (a retiree
    neither quits nor moves) and with no separations at all (p_max 0 draws nothing). Both also equal
    the sequence of calls depart replaced, replayed one by one."""
    hazard = (np.linspace(1.0, 0.2, 8) * p_max).astype(np.float32)
    outs = []
    for impl in IMPLS:
        wf = model.workforce.copy()
        led = LevelLedger(wf)
        wf.retire_age[::7] = wf.age[::7] + 1  # one in seven retires this month
        rng = np.random.default_rng(11)
        got = impl.depart(rng, wf.age, wf.retire_age, wf.scratch("retired"), wf.level, hazard,
                          float(hazard.max()), np.float32(0.4), *model.firms.alias, wf.weight, wf.studio_since,
                          wf.aptitude, wf.firm, wf.wage_factor, wf.gain, wf.pay, led.count, led.pay,
                          *model.rates.kernel_tables, 1)
        outs.append((got, wf, led, rng.bit_generator.state))
    # the calls depart replaced (WorkforceModel._demography before it), one by one with the numpy passes
    kn, wf = kernels_numpy, model.workforce.copy()
    led = LevelLedger(wf)
    wf.retire_age[::7] = wf.age[::7] + 1
    rng = np.random.default_rng(11)
    retired = kn.age_and_retire(wf.age, wf.retire_age, None)
    leavers = movers = np.empty(0, dtype=np.int64)
    if p_max > 0:
        cand = kn.skip_sample(rng, wf.n, float(hazard.max()))
        u = rng.random(cand.size, dtype=np.float32) * float(hazard.max())
        leavers, movers = kn.split_separations(cand, u, wf.level, hazard, np.float32(0.4))
    gone, movers = kn.union_sorted(retired, leavers), kn.minus_sorted(movers, retired)
    if movers.size:
        kn.relocate(movers, kn.firm_draws(rng, movers.size, *model.firms.alias), wf.level, wf.weight,
                    wf.studio_since, wf.aptitude, wf.firm, wf.wage_factor, wf.gain, wf.pay, led.count, led.pay,
                    *model.rates.kernel_tables, 1)
    led.remove(wf, gone)
    outs.append(((gone, retired.size, movers.size), wf, led, rng.bit_generator.state))
    (ga, a, la, sa), (gb, b, lb, sb), (gc, c, lc, sc) = outs
    assert same(ga[0], gb[0]) and ga[1:] == gb[1:] and sa == sb
    assert same(ga[0], gc[0]) and ga[1:] == gc[1:] and sa == sc
    assert all(same(getattr(a, f), getattr(c, f)) for f in ("age", "firm", "studio_since", "gain", "pay"))
    assert same(la.count, lc.count) and same(la.pay, lc.pay)
    gone, n_retired, n_movers = ga
    assert n_retired >= model.workforce.n // 7 and np.all(np.diff(gone) > 0)
    assert (n_movers > 0 and gone.size > n_retired) == (p_max > 0)
    for f in ("age", "firm", "studio_since", "gain", "pay"):
        assert same(getattr(a, f), getattr(b, f)), f
    assert same(la.count, lb.count) and same(la.pay, lb.pay)
    # the ledger no longer holds who left: a recount without them, within rounding of the order of sums
    keep = np.setdiff1d(np.arange(a.n), gone)
    count = np.bincount(a.level[keep], weights=a.weight[keep].astype(np.float64), minlength=8)
    assert np.allclose(la.count, count, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("mode", [0, 1, 2])
def test_a_months_training_places_in_one_call_are_the_numpy_passes(model, mode):
    """train_places (both funders' places rounded, drawn and trained in one compiled call) takes the
    same workers and leaves the same progress, credit and stream as the numpy passes and as the
    per-funder loop it replaced (with either passes), for fractional, zero and large place counts, and
    for levy weights that the employer places follow."""
    from sim.sampling import SAMPLER, Acceptance, sample_distinct, stochastic_round

    levy = model.firms.levy_rate
    for places in ((12.4, 30.7), (0.0, 0.6), (900.0, 0.0), (-1.0, 2500.2)):
        outs = []
        for impl in IMPLS:
            wf = model.workforce.copy()
            rng = np.random.default_rng(int(places[1] * 10) + mode)
            got = impl.train_places(rng, np.array(places), wf.n, SAMPLER, wf.level, 4, wf.progress, mode, wf.firm,
                                    levy, np.float32(levy.max()), wf.studio_since, wf.credit, np.float32(0.15),
                                    np.int16(6), np.int16(24))
            outs.append((got, wf.progress.copy(), wf.credit.copy(), rng.bit_generator.state))
        # the loop train_places replaced (TrainingLever.act before it), with either passes
        for impl in IMPLS:
            wf = model.workforce.copy()
            rng = np.random.default_rng(int(places[1] * 10) + mode)
            got = []
            for funder, x in enumerate(places):
                accept = Acceptance(Acceptance.TRAINING, wf.level, 0, 4, wf.progress, funder == 1, mode, wf.firm, levy,
                                    np.float32(levy.max()), wf.studio_since)
                idx = sample_distinct(rng, wf.n, stochastic_round(rng, x), accept, passes=impl)
                if idx.size:
                    impl.train(idx, wf.progress, wf.credit, np.float32(0.15), np.int16(6), np.int16(24))
                got.append(idx.size)
            outs.append((np.array(got), wf.progress.copy(), wf.credit.copy(), rng.bit_generator.state))
        (ga, pa, ca, sa) = outs[0]
        for gb, pb, cb, sb in outs[1:]:
            assert same(ga, gb) and same(pa, pb) and same(ca, cb) and sa == sb
        trained = np.flatnonzero(pa != model.workforce.progress)
        assert trained.size == ga.sum() and np.all(model.workforce.level[trained] <= 4)
        assert all(abs(int(g) - x) < 1 for g, x in zip(ga, places) if 0 < x < 500)  # rounded, not truncated


@pytest.mark.parametrize("k", [0, 1, 7, 3000])
def test_a_competition_rounds_scores_in_one_call_are_the_numpy_passes(model, k):
    """compete (the luck, the score and the preparation's gain in one compiled call) gives the same
    scores, bit for bit, the same progress and leaves the stream where the numpy passes and the
    array expressions CompetitionLever.act used before it leave them, for 0, 1, a few and many
    participants; the score's float32 part is not rounded through float64 first (the test would
    show it: float32 sums of progress and the log differ from float64 ones)."""
    wf0 = model.workforce
    part = np.sort(np.random.default_rng(k).choice(wf0.n, k, replace=False)).astype(np.int64)
    sd, gain = 0.5, np.float32(0.03)
    outs = []
    for impl in IMPLS:
        wf = wf0.copy()
        rng = np.random.default_rng(100 + k)
        score = impl.compete(rng, part, wf.progress, 0.5 * np.log(wf.aptitude[part]), sd, gain)
        outs.append((score, wf.progress.copy(), rng.random()))
    wf = wf0.copy()  # the expressions compete replaced
    rng = np.random.default_rng(100 + k)
    luck = rng.normal(0.0, sd, part.size)
    score = wf.progress[part] + 0.5 * np.log(wf.aptitude[part]) + luck
    wf.progress[part] += gain
    outs.append((score, wf.progress.copy(), rng.random()))
    for got in outs[1:]:
        assert same(got[0], outs[0][0]) and got[0].dtype == np.float64
        assert same(got[1], outs[0][1]) and got[2] == outs[0][2]
    assert np.count_nonzero(outs[0][1] != wf0.progress) == k
    if k > 100:  # the luck is what was asked for: sd within 5 standard errors
        resid = outs[0][0] - (wf0.progress[part] + 0.5 * np.log(wf0.aptitude[part]))
        assert abs(resid.std() - sd) < 5 * sd / np.sqrt(2 * k)
        wide = wf0.progress[part].astype(np.float64) + (0.5 * np.log(wf0.aptitude[part])).astype(np.float64)
        assert np.any(wide + luck != outs[0][0])


def test_the_compiled_rounds_normals_are_numpys_over_a_million_draws():
    """compete's luck over 10^6 participants: numba's normals (the ziggurat's tail, |z| > 3.65, comes
    up about 270 times) equal numpy's array of normals bit for bit, and so do the scores and the
    stream's state after them."""
    rng = np.random.default_rng(3)
    n = 1_000_000
    progress, aptitude = rng.random(n, dtype=np.float32), rng.lognormal(0, 0.3, n).astype(np.float32)
    part = np.arange(n, dtype=np.int64)
    half_log = 0.5 * np.log(aptitude)
    got = []
    for impl in IMPLS:
        prog, gen = progress.copy(), np.random.default_rng(9)
        got.append((impl.compete(gen, part, prog, half_log, 0.5, np.float32(0.03)), prog, gen.random()))
    luck = np.random.default_rng(9).normal(0.0, 0.5, n)
    assert np.count_nonzero(np.abs(luck) > 0.5 * 3.6541528853610088) > 100  # the tail was drawn
    assert same(got[0][0], got[1][0]) and same(got[0][1], got[1][1]) and got[0][2] == got[1][2]
    assert same(got[0][0], progress + half_log + luck)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 1000, 65_536, 65_537, 300_001])
def test_the_compiled_shuffle_is_numpys_permutation_and_leaves_the_stream_alike(n):
    """shuffle (the initial population's levels): numpy's Fisher-Yates with its masked rejection
    draws, so the same permutation of int8, int64 and float32 arrays, and the same stream after it,
    with a 32-bit draw left buffered before it or not (numpy's next_uint32 keeps half a 64-bit word)."""
    for seed in range(4):
        for dtype in (np.int8, np.int64, np.float32):
            x = [np.arange(n).astype(dtype) for _ in IMPLS]
            gens = [np.random.default_rng(seed) for _ in IMPLS]
            for gen in gens:
                if seed % 2:
                    gen.integers(0, 5, size=3, dtype=np.int32)  # leaves a 32-bit half buffered
            for impl, gen, arr in zip(IMPLS, gens, x):
                impl.shuffle(gen, arr)
            assert same(x[0], x[1]), (seed, dtype)
            assert gens[0].bit_generator.state == gens[1].bit_generator.state
            assert np.array_equal(np.sort(x[0]), np.sort(np.arange(n).astype(dtype)))  # the same values
            if n > 1000:  # a permutation drawn, not the identity or a rotation
                assert np.count_nonzero(x[0] == np.arange(n).astype(dtype)) < 20 + (n // 128 if dtype is np.int8 else 0)


@pytest.mark.parametrize("seed", range(12))
def test_the_tail_moves_into_the_holes_identically(seed):
    """compact (Workforce.replace when fewer enter than leave) moves every column alike in both passes,
    for leavers anywhere (all in the tail, none in it, every slot), sorted by replace or handed over
    in order as the model does; each column holds distinct values, so a wrong source slot shows."""
    from sim.workforce import FIELDS, Workforce

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    k = n if seed % 4 == 0 else int(rng.integers(1, n + 1))
    leavers = np.sort(rng.choice(n, k, replace=False)).astype(np.int64)
    n_new = int(rng.integers(0, k))  # fewer enter than leave: the holes are filled by compact
    given = leavers if seed % 2 else rng.permutation(leavers)  # in order (as the model hands them) or not
    outs = []
    for impl in IMPLS:
        wf = Workforce(n + 5, impl)
        wf.append(n)
        for name in FIELDS:
            col = wf.column(name)
            col[:] = (np.arange(col.size) % 2 == 1) if col.dtype == np.bool_ else np.arange(col.size)
        slots = wf.replace(given, n_new, in_order=bool(seed % 2))
        outs.append((slots, wf.n, {name: wf.column(name).copy() for name in FIELDS}))
    (sa, na, ca), (sb, nb, cb) = outs
    assert same(sa, sb) and na == nb == n - k + n_new
    assert all(same(ca[f], cb[f]) for f in FIELDS)
    # the workers who stay are exactly those who did not leave, below the new end, each once (the
    # firm column, an int32 tag per original slot, identifies them; entrants' slots hold stale tags)
    live = np.setdiff1d(np.arange(na), sa)
    assert sorted(ca["firm"][live].tolist()) == sorted(set(range(n)) - set(leavers.tolist()))


def test_eligibility_odds_and_ageing_are_identical(model):
    wf = model.workforce
    beh = model.cfg.behaviour
    sit_u = np.asarray(beh.sit_rate, dtype=np.float32)
    pp = np.asarray(beh.pass_prob, dtype=np.float32)
    got = both(lambda k: k.eligible_odds(wf.progress, wf.level, wf.months_at_level, wf.credit, wf.studio_since,
                                         WAITS, TOP_CERTIFIED, sit_u, np.float32(beh.trained_sit_prob), pp,
                                         np.empty(wf.n, np.int64), np.empty(wf.n, np.float32), 1))
    assert got[0][0].size > 100 and same(got[0], got[1])
    assert same(*both(lambda k: k.eligible(wf.progress, wf.level, wf.months_at_level, wf.credit, WAITS,
                                           TOP_CERTIFIED, np.empty(wf.n, np.int64))))
    cand, odds = got[1]
    u = np.random.default_rng(0).random(cand.size, dtype=np.float32)
    assert same(*both(lambda k: k.keep_below(cand, u, odds)))
    for t, term, lo, hi in ((30, 36, 2, 4), (30, 6, 3, 3), (-200, 36, 0, 7), (10_000, 1, 2, 4)):
        got = both(lambda k: k.studio_roster(wf.studio_since, wf.level, t, term, lo, hi, np.empty(wf.n, np.int64),
                                             np.empty(wf.n, np.int64), 1))
        assert same(*got) and got[0][1].size + got[0][0].size == np.count_nonzero(wf.studio_since != NO_MONTH)

    idx = np.sort(np.random.default_rng(1).choice(wf.n, 3000, replace=False)).astype(np.int64)

    def train(k, months, cap):
        w = wf.copy()
        w.credit[idx[:40]] = cap  # at the cap already
        k.train(idx, w.progress, w.credit, np.float32(0.37), np.int16(months), np.int16(cap))
        return w.progress.copy(), w.credit.copy()

    for months, cap in ((6, 24), (30, 24), (0, 24)):
        got = both(lambda k: train(k, months, cap))
        assert same(*got) and got[0][1].max() == cap and not np.array_equal(got[0][0], wf.progress)

    def age_learn(k):
        w = wf.copy()
        r = k.age_and_retire(w.age, w.retire_age, np.empty(w.n, np.int64)).copy()
        k.learn(w.progress, w.gain, w.months_at_level, 1)
        return r, w.age.copy(), w.progress.copy(), w.months_at_level.copy()

    assert same(*both(age_learn))


def test_acceptance_weights_payroll_sets_and_retirement_are_identical(model):
    wf = model.workforce
    slots = np.random.default_rng(2).integers(0, wf.n, 4000)
    for lo, hi in ((1, 4), (2, 3)):
        for by in (False, True):
            assert same(*both(lambda k: k.accept_levels(slots, wf.level, lo, hi, wf.progress, by)))
        assert same(*both(lambda k: k.accept_studio(slots, wf.level, lo, hi, wf.studio_since)))
    levy = model.firms.levy_rate
    for mode in (0, 1, 2):
        for by_levy in (False, True):
            assert same(*both(lambda k: k.accept_training(slots, wf.level, 4, mode, wf.progress, wf.firm, levy,
                                                          np.float32(levy.max()), by_levy)))
    assert same(*both(lambda k: k.firm_payroll(wf.firm, wf.pay, wf.weight, model.firms.n)))
    rng = np.random.default_rng(4)
    for _ in range(20):
        a = np.unique(rng.integers(0, 500, rng.integers(0, 80)))
        b = np.unique(rng.integers(0, 500, rng.integers(0, 80)))
        assert same(*both(lambda k: k.union_sorted(a, b))) and same(*both(lambda k: k.minus_sorted(a, b)))
    female = rng.random(50000) < 0.4
    birth = rng.integers(1940 * 12, 2010 * 12, 50000)
    args = (23 * 12 * 100 + 11, 600, 720, 2, 4, 60, 36)
    assert same(*both(lambda k: k.retirement_age(female, birth, *args)))



@pytest.mark.parametrize("n, span", [(50, 840), (5000, 840), (300, 20000), (RETIREMENT_TABLE_FROM, 1)])
def test_retirement_ages_from_the_table_and_worker_by_worker_are_the_same_integers(n, span):
    """The compiled pass reads the ages from a table over the birth months' range when there are more
    workers than months (and at least RETIREMENT_TABLE_FROM), worker by worker otherwise: both paths
    and every reform branch (before the reform, phased in, capped) give numpy's integers."""
    rng = np.random.default_rng(n + span)
    for reform in (1900 * 12, 2019 * 12 + 1, 2150 * 12):
        female = rng.random(n) < 0.4
        birth = rng.integers(1960 * 12, 1960 * 12 + span, n)
        args = (reform, 600, 720, 2, 4, 60, 36)
        assert same(*both(lambda k: k.retirement_age(female, birth, *args)))
        assert same(*both(lambda k: k.retirement_age(female[::-1].copy(), birth.astype(np.int32), *args)))
        assert same(*both(lambda k: k.retirement_age(female.astype(np.int8) * 2, birth, *args)))  # any true value


def test_retirement_ages_over_a_range_wider_than_any_int64_difference_are_worked_out_per_worker():
    """Birth months at both ends of int64 (a range whose width overflows a signed difference) are not
    looked up in a table: the same integers as numpy's formula."""
    female = np.zeros(RETIREMENT_TABLE_FROM + 44, np.bool_)
    args = (2025 * 12, 600, 720, 2, 4, 60, 36)
    for ends in ((np.iinfo(np.int64).min, np.iinfo(np.int64).max), (-(1 << 62), 1 << 62)):
        birth = np.zeros(female.size, np.int64)
        birth[:2] = ends
        assert same(*both(lambda k: k.retirement_age(female, birth, *args)))


@pytest.mark.parametrize("n, mean_years, rounds", [(20000, 40.0, 200), (300, 40.0, 200), (3000, 70.0, 200),
                                                   (3000, 70.0, 3), (3000, 10.0, 0)])
def test_initial_ages_their_redraws_tenure_and_progress_are_numpys(n, mean_years, rounds):
    """A new workforce's ages (normals x sd + the level's mean, truncated), the redraws of those
    outside working age round by round (a mean near or past retirement forces many rounds, and with
    few rounds some stay at the minimum age), the retirement ages, the time at level and progress: the
    same integers and float32 values as numpy's operations, and the stream left alike."""
    gens = [np.random.default_rng(n) for _ in IMPLS]
    level = np.random.default_rng(1).integers(0, 8, n).astype(np.int8)
    female = np.random.default_rng(2).random(n) < 0.4
    mean_age = (np.float32(mean_years) + np.float32(1.5) * (np.arange(8, dtype=np.float32) - 2.0)) * 12
    if rounds == 3:  # given as float64 and a Python float, both forms take them as float32
        mean_age, scale = mean_age.astype(np.float64), 9.0 * 12
    else:
        scale = np.float32(9.0 * 12)
    reform = (2025 * 12, 600, 720, 2, 4, 60, 36)
    out = []
    for impl, g in zip(IMPLS, gens):
        z = g.standard_normal(n, dtype=np.float32)
        age, ret = np.empty(n, np.int16), np.empty(n, np.int16)
        impl.ages_from_normals(z, level, mean_age, scale, age)
        first = age.copy()
        impl.settle_ages(g, level, female, age, ret, 2025 * 12, mean_age, scale, 192, rounds, *reform)
        aptitude = np.exp(g.standard_normal(n, dtype=np.float32) * np.float32(0.3))
        span = np.array([24, 48, 72, 96, 120, 120, 120, 120], np.float32)
        rate = np.array([1 / 24, 1 / 30, 1 / 36, 1 / 48, 1 / 60, 0, 0, 0], np.float32)
        months, progress = np.empty(n, np.int16), np.empty(n, np.float32)
        floats = (2 / 3, 0.8) if rounds == 3 else (np.float32(2 / 3), np.float32(0.8))
        impl.tenure_and_progress(g.random(n, dtype=np.float32), g.random(n, dtype=np.float32), level, age, span, rate,
                                 aptitude, *floats, 192, months, progress)
        out.append((first, age, ret, months, progress))
    assert same(*out)
    assert gens[0].bit_generator.state == gens[1].bit_generator.state
    first, age, ret = out[0][:3]
    redrawn = (first < 192) | (first >= ret)
    if rounds == 0:
        assert (age[redrawn] == 192).all() and redrawn.sum() > n // 2  # a mean age of 10: nearly all too young
    elif rounds == 200:
        assert ((age >= 192) & (age < ret)).all() and redrawn.any()
    else:  # a mean of 70 years: a few rounds leave some past retirement, put at the minimum age
        assert (age == 192).any()
    assert (out[0][3] >= 0).all() and (out[0][3] <= np.maximum(age - 192, 0)).all()


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_sorted_distinct_and_union_are_numpys_unique_and_union1d(dtype):
    """The numpy passes' own np.unique and np.union1d (which import numpy.ma): the same values, dtype
    and order, for empty arrays, one value, repeats, runs of equal values and unsorted input."""
    rng = np.random.default_rng(7)
    cases = [np.array([], dtype), np.array([3], dtype), np.array([5, 5, 5], dtype)]
    cases += [rng.integers(0, hi, size, dtype=dtype) for hi in (2, 9, 200) for size in (1, 2, 17, 1000)]
    for x in cases:
        assert same(kernels_numpy.sorted_distinct(x), np.unique(x))
        for y in cases[::3]:
            assert same(kernels_numpy.union_sorted(x, y), np.union1d(x, y))
    kept = kernels_numpy.sorted_distinct(cases[-1])
    assert kept.size > 1 and (np.diff(kept.astype(np.int64)) > 0).all()


def test_a_default_run_of_the_numpy_passes_does_not_import_numpy_ma(tmp_path):
    """numpy.ma costs 11 ms to import; nothing on a plain run's path needs it (np.unique did)."""
    import subprocess
    import sys

    # the run must pass through every former np.unique / np.union1d: the history's alignment, prizes, departures
    code = ("import sys; from sim.config import RunConfig; from sim.model import WorkforceModel; "
            "m = WorkforceModel(RunConfig(n_agents=3000)); m.run(); ma = 'numpy.ma' in sys.modules; "
            "c = m.series_columns(); print(ma, len(m.aligned) > 0, "
            "sum(c['promotions_competition']) > 0, sum(c['exits']) > 0)")
    env = dict(os.environ, SKILLSIM_KERNELS="numpy", SKILLSIM_HISTORY_DISK_MB="0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "True", "True", "True"]


def test_the_kernels_load_beside_the_construction_and_no_loading_thread_outlives_it(tmp_path):
    """A fresh process choosing the compiled passes loads them on a second thread while it builds
    (sim.kernels.warm_in_background): when the model exists, that thread has finished and every kernel
    is loaded, so the steps load nothing and no fork can inherit numba's compiler lock held; a second
    model starts no second thread. A small workforce starts none: built at once, it would wait for every
    kernel, where it loads only those it calls. Its bytes are those of the numpy passes (the other tests)."""
    import subprocess
    import sys

    small = ("import sim.kernels as k; from sim.config import RunConfig; from sim.model import WorkforceModel; "
             "WorkforceModel(RunConfig(n_agents=2000)); print(len(k._WARMING))")
    env = dict(os.environ, SKILLSIM_KERNELS="compiled", SKILLSIM_HISTORY_DISK_MB="0")
    out = subprocess.run([sys.executable, "-c", small], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stderr[-2000:]
    # no history (its origin after the start): the construction takes about 0.05 s, the loading 0.2 s
    code = ("import threading, dataclasses as d; from sim.config import RunConfig; "
            "from sim.model import WorkforceModel; import sim.kernels as k; c = RunConfig(n_agents=300_000); "
            "c = d.replace(c, region=d.replace(c.region, history=d.replace(c.region.history, origin='2100-12'))); "
            "m = WorkforceModel(c); "
            "alive = [t.name for t in threading.enumerate() if t.name == 'skillsim-kernel-loading']; "
            "unloaded = [n for n in ('_depart', '_compete', 'studio_roster', 'promote', 'income_quantiles') "
            "if not getattr(k, n).signatures]; m2 = WorkforceModel(d.replace(c, n_agents=400_000)); "
            "print(k._WARMED, len(k._WARMING), alive, unloaded)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True 1 [] []"


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_fresh_process_builds_with_the_numpy_passes_while_a_thread_imports_the_compiled(tmp_path):
    """In a process that has not imported the compiled passes, a large run's construction starts
    before they are imported (numba's import and their loading run on a second thread meanwhile,
    sim.passes.for_construction) and the run continues on them once built, with the same bytes as the
    numpy passes throughout. No loading thread outlives the construction; a second model starts none.
    If the import fails, the construction raises its error, as a run choosing the compiled passes did."""
    import subprocess
    import sys

    code = ("import sys, threading, dataclasses as d; from sim.config import RunConfig; from sim import passes; "
            "from sim.model import WorkforceModel; seen = []; f = passes.for_construction; "
            "passes.for_construction = lambda n: (seen.append('sim.kernels' in sys.modules), f(n))[1]; "
            "c = RunConfig(n_agents=300_000); c = d.replace(c, horizon=d.replace(c.horizon, start_year=2025, end_year=2025), "
            "region=d.replace(c.region, history=d.replace(c.region.history, origin='2100-12'))); "
            "m = WorkforceModel(c); name = m.workforce.kernels.__name__; m.run(); "
            "alive = [t.name for t in threading.enumerate() if t.name.startswith('skillsim-kernel')]; "
            "m2 = WorkforceModel(d.replace(c, n_agents=400_000)); "
            "print(seen[0], name, len(passes._LOADING), alive, m2.workforce.kernels.__name__); "
            "print(m.series(history=True).to_csv(index=False, float_format='%.17g'))")
    out = {}
    for how in ("auto", "compiled", "numpy"):
        env = dict(os.environ, SKILLSIM_KERNELS=how, SKILLSIM_HISTORY_DISK_MB="0")
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                             timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        out[how] = run.stdout.split("\n", 1)
    assert out["auto"][0].split() == ["False", "sim.kernels", "1", "[]", "sim.kernels"]
    assert out["compiled"][0] == out["auto"][0]
    assert out["numpy"][0].split() == ["False", "sim.kernels_numpy", "0", "[]", "sim.kernels_numpy"]
    assert out["auto"][1] == out["compiled"][1] == out["numpy"][1] and out["auto"][1].count("\n") >= 12

    fake = tmp_path / "fake"
    (fake / "numba").mkdir(parents=True)
    (fake / "numba" / "__init__.py").write_text("raise ImportError('no numba here')\n")
    failing = ("from sim.config import RunConfig; from sim.model import WorkforceModel\n"
               "try:\n    WorkforceModel(RunConfig(n_agents=300_000))\n"
               "except ImportError as e:\n    print('ImportError', e)\n")
    env = dict(os.environ, SKILLSIM_KERNELS="auto", SKILLSIM_HISTORY_DISK_MB="0",
               PYTHONPATH=os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-c", failing], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ImportError no numba here", run.stderr[-2000:]


def test_a_fork_while_the_compiled_passes_are_imported_on_their_thread_waits_for_them(tmp_path):
    """A fork from another thread between the loading thread's start and its listing (widened here to
    0.5 s) left a child with sim.kernels half imported, its import lock held by a thread the child does
    not have: the child's own import hung. The fork now waits for the thread, listed or not yet."""
    code = ("import os, signal, threading, time\n"
            "from sim import passes\n"
            "started = threading.Event()\n"
            "def forker():\n"
            "    started.wait(); time.sleep(0.1)\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        signal.alarm(20)\n"
            "        from sim import kernels\n"
            "        os._exit(0)\n"
            "    print('child', os.waitpid(pid, 0)[1])\n"
            "f = threading.Thread(target=forker); f.start()\n"
            "Base = threading.Thread\n"
            "class Slow(Base):\n"
            "    def start(self):\n"
            "        super().start(); started.set(); time.sleep(0.5)\n"
            "threading.Thread = Slow\n"
            "passes._load_in_background()\n"
            "threading.Thread = Base\n"
            "f.join(); passes._wait_for_loading()\n")
    assert _forking_script(code, tmp_path).stdout.split() == ["child", "0"]  # 14 (SIGALRM): the child's import hung


def _forking_script(code: str, folder, timeout: float = 120):
    """Run `code` (which forks and prints the child's status) in a fresh interpreter; it must end, and
    end well (a hang is the timeout's error)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=folder, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_a_fork_waits_for_the_loading_thread_before_another_librarys_fork_hook_takes_its_lock(tmp_path):
    """Python calls the before-fork hooks in reverse order of registration. logging's, registered by the
    loading thread's import of numba after sim.passes registered its own, ran first: the forking thread
    held logging's lock while it waited for the loading thread, which needed that lock (a hang under
    load in the test above). Here the loading thread takes logging's lock after the fork has begun."""
    code = ("import os, threading, time\n"
            "from sim import passes\n"
            "import logging\n"  # as numba imports it on the loading thread (a no-op once passes imported it)
            "def load():\n"
            "    time.sleep(0.5)\n"
            "    logging.getLogger('skillsim.loading')  # takes logging's module lock\n"
            "passes._load_quietly = load\n"
            "passes._load_in_background()\n"
            "time.sleep(0.1)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os._exit(0)\n"
            "print('child', os.waitpid(pid, 0)[1])\n")
    out = _forking_script(code, tmp_path, timeout=60)
    assert out.stdout.split() == ["child", "0"] and "Exception ignored" not in out.stderr


def test_geometric_gaps_are_numpys_on_both_sides_of_its_switch_and_past_the_search_table():
    """skip_sample's own geometric loop (numba's exponential and uniform, numpy's two algorithms
    around them, constants hoisted, the search from a table of partial sums) gives numpy's gaps:
    the same slots and the stream in the same state. The values of p straddle numpy's switch to the
    search at 1/3, and at p near 1/3 over 500,000 slots some gaps pass the table's 16 entries
    (probability (2/3)**16 each), so the search's continuation is taken too."""
    third = 0.333333333333333333333333
    ps = (1e-6, 0.004, 0.2, np.nextafter(third, 0), third, np.nextafter(third, 1), 0.34, 0.5, 0.6, 0.95,
          0.999999)
    longest_searched = 0  # the longest gap compared that numpy found by its search
    for n in (1, 7, 1000, 500_000):
        for i, p in enumerate(ps):
            gens = [np.random.default_rng([n, i]) for _ in IMPLS]
            got = kernels._skip_sample_at(kernels.generator_addresses(gens[0]), n, p)
            want = kernels_numpy.skip_sample(gens[1], n, p)
            assert same(got, want), (n, p)
            assert gens[0].integers(0, 1 << 62) == gens[1].integers(0, 1 << 62), (n, p)  # same amount drawn
            if p >= third and want.size:
                longest_searched = max(longest_searched, int(np.diff(want, prepend=-1).max()))
    assert longest_searched > kernels.SEARCH_TABLE  # the search's continuation past the table was compared


def test_a_negligible_rate_gives_no_slot_in_both_passes_rather_than_overflowing_gaps():
    """Below NEGLIGIBLE_RATE skip_sample gives no slot and draws nothing, in both implementations: at
    p = 1e-18 a gap E / p passes 2**63 and numpy's geometric returned negative slots, which the
    compiled passes would then read out of bounds. Just above it, the slots are still drawn."""
    assert kernels.NEGLIGIBLE_RATE == kernels_numpy.NEGLIGIBLE_RATE
    for p in (1e-18, 1e-15, np.nextafter(kernels.NEGLIGIBLE_RATE, 0)):
        for seed in range(20):
            gens = [np.random.default_rng(seed) for _ in range(3)]
            got = kernels._skip_sample_at(kernels.generator_addresses(gens[0]), 5, p)
            want = kernels_numpy.skip_sample(gens[1], 5, p)
            assert got.size == 0 and want.size == 0 and got.dtype == want.dtype == np.int64
            assert gens[0].integers(0, 1 << 62) == gens[1].integers(0, 1 << 62) == gens[2].integers(0, 1 << 62)
    n = 10**12  # n p = 1 at the threshold: slots drawn, the same on both sides
    gens = [np.random.default_rng(3) for _ in IMPLS]
    got = kernels._skip_sample_at(kernels.generator_addresses(gens[0]), n, kernels.NEGLIGIBLE_RATE * 4)
    want = kernels_numpy.skip_sample(gens[1], n, kernels.NEGLIGIBLE_RATE * 4)
    assert same(got, want) and got.size > 0 and got.min() >= 0 and got.max() < n


def test_draws_separations_and_brackets_are_identical(model):
    """The kernels that draw (skip_sample, with numba's Generator on the same bit generator) take
    the same numbers from the stream and leave it in the same state."""
    wf = model.workforce
    for n, p in ((0, 0.3), (1, 0.5), (50, 0.9), (20000, 0.004), (20000, 0.3), (300_000, 0.02), (10, 1.0),
                 (2_000_000, 0.3)):
        gens = [np.random.default_rng(n) for _ in IMPLS]
        outs = [kernels._skip_sample_at(kernels.generator_addresses(gens[0]), n, p),
                kernels_numpy.skip_sample(gens[1], n, p)]
        assert same(*outs)
        assert gens[0].integers(0, 1 << 62) == gens[1].integers(0, 1 << 62)  # same amount drawn
    cand = np.sort(np.random.default_rng(1).choice(wf.n, 3000, replace=False)).astype(np.int64)
    u = np.random.default_rng(2).random(cand.size, dtype=np.float32) * np.float32(0.02)
    hazard = np.linspace(0.02, 0.002, 8).astype(np.float32)
    assert same(*both(lambda k: k.split_separations(cand, u, wf.level, hazard, np.float32(0.4))))
    x = wf.pay * np.float32(12 * 5000.0) + wf.bonus
    x[:7] = -1.0
    x[7:9] = -0.0
    x[9:11] = 0.0
    x[11:13] = np.nan
    x[13:15] = np.inf
    for lo, hi in (([-np.inf, 5e4, 1e5], [np.inf, 6e4, 1e5]), ([0.0, -1.0, 1e-3], [0.0, 0.0, 1e9]),
                   ([1e-30, 5e4, 2e5], [1e4, 5e4, np.inf])):  # positive: gathered by bit patterns
        lo, hi = (np.asarray(v, np.float32).astype(np.float64) for v in (lo, hi))
        got = both(lambda k: k.bracketed(x, lo, hi))
        assert all(np.array_equal(a, b, equal_nan=True) and a.dtype == b.dtype for a, b in zip(*got))
        keys = np.random.default_rng(3).random(50_000)  # float64: the thinning keys and competition scores
        assert same(*both(lambda k: k.bracketed(keys, np.array([0.1, 0.5 + 1e-17]), np.array([0.2, 0.6]))))
    # bounds between float32 values compare in float64: as float32 they would take in the values planted
    # at their float32 roundings (50,000 and 70,000)
    x[20:22], x[22:24] = 5e4, 7e4
    lo, hi = np.array([5e4 + 1e-3, 6e4]), np.array([5.5e4, 7e4 - 1e-3])
    got = both(lambda k: k.bracketed(x, lo, hi))
    assert all(np.array_equal(a, b, equal_nan=True) and a.dtype == b.dtype for a, b in zip(*got))
    wide = x.astype(np.float64)
    assert got[1][0].tolist() == [np.count_nonzero(wide < a) for a in lo]
    with warnings.catch_warnings():  # bounds past float32's range: compared in float64, without a warning
        warnings.simplefilter("error")
        assert kernels_numpy.bracketed(x, np.array([1e39]), np.array([1e40]))[0].tolist() == [
            np.count_nonzero(wide < 1e39)]
    assert np.array_equal(got[1][1], np.concatenate([x[(wide >= a) & (wide <= b)] for a, b in zip(lo, hi)]))

    # the ranks' values from the brackets: inside a bracket, or by a full partition where it missed
    y = np.random.default_rng(4).lognormal(11, 0.5, 30_000).astype(np.float32)
    ranks = np.array([2999, 14999, 26999], dtype=np.int64)
    for lo, hi in (([5e4, 5.5e4, 1e5], [6e4, 6.5e4, 1.2e5]), ([1.0, 1.0, 1.0], [2.0, 2.0, 2.0])):
        lo, hi = (np.asarray(v, np.float32).astype(np.float64) for v in (lo, hi))
        got = both(lambda k: k.select_ranks(y, ranks, *k.bracketed(y, lo, hi)))
        assert same(*got) and same(got[0], np.sort(y)[ranks])


def test_generators_handed_by_address_draw_on_their_own_state(model):
    """The kernels rebuild numba's Generator from its bit generator's addresses, remembered per bit
    generator: many generators in turn (more than are remembered, so entries are dropped and ids of
    freed generators reused) each draw their own numbers, the same as numpy's, and each stream is
    left where numpy leaves it."""
    prob, alias = model.firms.alias
    for round_ in range(3):
        pairs = [(np.random.default_rng(s), np.random.default_rng(s)) for s in range(kernels._MAX_ADDRESSES + 9)]
        for a, b in pairs + pairs[:5]:  # the first five again, after their entries were dropped
            assert same(kernels.firm_draws(a, 37, prob, alias), kernels_numpy.firm_draws(b, 37, prob, alias))
            assert a.bit_generator.state == b.bit_generator.state
        assert len(kernels._ADDRESSES) <= kernels._MAX_ADDRESSES
        del pairs  # freed: their ids may be reused by the next round's generators


def test_fast_track_draws_and_promotes_as_numpy(model):
    """The studio's out-of-turn promotions in one compiled call: the same members, from the same
    doubles, and the stream left in the same state; members given in any order, none ready, or all."""
    wf = model.workforce
    rng = np.random.default_rng(7)
    for size in (0, 1, 50, 4000):
        members = rng.choice(wf.n, size, replace=False).astype(np.int64)  # unsorted, as the lever has them
        for hi, rate in ((4, 0.3), (7, 1.0), (0, 0.5), (4, 0.0)):
            for seed in range(3):
                gens = [np.random.default_rng(seed) for _ in IMPLS]
                got = [impl.fast_track(g, members, wf.progress, wf.level, hi, rate) for impl, g in zip(IMPLS, gens)]
                assert same(*got)
                assert gens[0].bit_generator.state == gens[1].bit_generator.state
                if rate == 1.0 and size:
                    ready = members[(wf.progress[members] >= 1.0) & (wf.level[members] <= hi)]
                    assert same(got[0], np.sort(ready)) and (ready.size > 0 or size < 4000)


@pytest.mark.parametrize("k", [0, 1, 7, 333, 4000])
def test_entrant_and_firm_draws_are_identical_and_leave_the_stream_alike(model, k):
    """The entrants' draws in one compiled call (numba's Generator: the same doubles, normals,
    float32 normals and buffered 32-bit integers as numpy) give the same entrants, and leave the
    stream where numpy leaves it; the shares and thresholds cover every level branch."""
    prob, alias = model.firms.alias
    for seed in range(6):
        for shares in ((0.1, 0.05, 0.3), (0.0, 0.0, 1.0), (0.4, 0.5, 0.0)):
            gens = [np.random.default_rng(seed) for _ in IMPLS]
            outs = [impl.entrant_draws(g, k, 0.35, 22.0, 6.0, 192, 480, prob, alias, shares[0], shares[1],
                                       max(1.0 - shares[0] - shares[1], 1e-12), shares[2], 0.3)
                    for impl, g in zip(IMPLS, gens)]
            assert same(*outs)
            if k > 100:
                assert set(np.unique(outs[0][0])) <= {0, 1, 2, 3} and outs[0][2].min() >= 192
            assert gens[0].bit_generator.state == gens[1].bit_generator.state  # the buffered 32-bit half too
        gens = [np.random.default_rng(seed) for _ in IMPLS]
        for g in gens:
            g.integers(0, 5, dtype=np.int32)  # a 32-bit half left in the buffer before the draws
        assert same(*[impl.firm_draws(g, k, prob, alias) for impl, g in zip(IMPLS, gens)])
        assert gens[0].bit_generator.state == gens[1].bit_generator.state


def test_the_fused_sampler_draws_what_the_numpy_sampler_draws(model):
    """sim.kernels.sample_distinct (one compiled call) takes the same slots as sim.sampling's numpy
    form for every kind of acceptance, pilot or none, thinning or not, and leaves the stream in the
    same state; the pilot's float32 mean is numpy's pairwise sum to the bit."""
    from sim.sampling import Acceptance, sample_distinct

    wf = model.workforce
    levy = model.firms.levy_rate
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 8, 100, 129, 1000, 4095, 4096, 8193, 100_003):
        a = (rng.random(n, dtype=np.float32) * (rng.random(n) < 0.4)).astype(np.float32)
        assert kernels._pairwise_sum(a, n) == np.add.reduce(a)
    cases = 0
    for kind, (lo, hi) in ((Acceptance.LEVELS, (2, 4)), (Acceptance.TRAINING, (0, 3)), (Acceptance.STUDIO, (4, 6)),
                           (Acceptance.LEVELS, (7, 7))):
        for by, mode in ((False, 0), (True, 1), (True, 2)):
            acc = Acceptance(kind, wf.level, lo, hi, wf.progress, by, mode, wf.firm, levy, np.float32(levy.max()),
                             wf.studio_since)
            for n, k in ((wf.n, 400), (wf.n, 3), (3000, 2500), (100, 30), (wf.n, 0), (wf.n, wf.n - 10)):
                for seed in range(2):
                    gens = [np.random.default_rng(seed) for _ in IMPLS]
                    got = [sample_distinct(g, n, k, acc, passes=p) for g, p in zip(gens, IMPLS)]
                    assert same(*got)
                    assert gens[0].integers(0, 1 << 62) == gens[1].integers(0, 1 << 62)
                    cases += got[0].size > 0
    assert cases > 50  # most cases draw someone


def test_the_samplers_thinning_threshold_is_the_partitions_value_on_every_path():
    """The thinning keeps keep[key <= the k-th smallest key]: the compiled sampler finds that value
    among the keys above a cut (few are dropped), which must give np.partition's value whatever the
    number dropped, and fall back to a full partition when the cut lets too few through (keys not
    uniform: all near 0) or far too many (all near 1)."""
    rng = np.random.default_rng(7)
    cases = 0
    for size in (2, 3, 10, 100, 1000, 20_000, 300_000):
        for d in sorted({1, 2, 5, int(2 * size ** 0.5), int(6 * size ** 0.5), size // 10, size // 2, size - 1}):
            if not 1 <= d < size:
                continue
            for key in (rng.random(size), rng.random(size) * 1e-3, np.where(rng.random(size) < 0.9, 0.9999, 0.1)):
                k = size - d
                want = np.partition(key, k - 1)[k - 1]
                assert kernels._kth_smallest_key(key, k) == want
                cases += 1
    assert cases > 100


@pytest.mark.parametrize("stride", [1, 3])
def test_income_pass_is_the_numpy_income_sample_threshold_and_brackets(model, stride):
    """The fused income pass of measure() gives the sample numpy computed, numpy's middle-income
    share (a float32 array compared with a Python float: in float32) and the same brackets."""
    wf = model.workforce
    bonus = wf.bonus.copy()
    bonus[::50] = np.float32(1234.5)
    threshold = 100000.299  # float32(threshold) rounds down: a value equal to it counts in float32 only
    scale = np.float32(12 * 5000.0)
    pay = wf.pay.copy()
    pay[: 5 * stride: stride] = (np.float32(threshold) - bonus[: 5 * stride: stride]) / scale
    ref = pay[::stride] * scale + bonus[::stride]
    assert (ref == np.float32(threshold)).any() and not (ref.astype(np.float64) == threshold).any()
    q = np.quantile(ref, [0.1, 0.5, 0.9])
    for lo, hi in ((q * 0.975, q * 1.025), (np.array([-1.0, 0.0, q[2]]), np.array([0.0, q[1], np.inf])),
                   (np.empty(0), np.empty(0))):
        lo, hi = (np.asarray(v, np.float32).astype(np.float64) for v in (lo, hi))
        got = both(lambda k: k.income_pass(pay, bonus, stride, scale, np.float32(threshold), lo, hi))
        for a in got:
            assert np.array_equal(a[0], ref) and a[0].dtype == np.float32
            assert a[1] / ref.size == float(np.mean(ref >= threshold))  # what measure() computed
            assert all(np.array_equal(x, y) for x, y in zip(a[2:], kernels_numpy.bracketed(ref, lo, hi)))
        assert all(same(x, y) for x, y in zip(*got))


@pytest.mark.parametrize("stride", [1, 3])
def test_income_quantiles_in_one_call_are_the_samples_order_statistics(model, stride):
    """measure()'s quantiles from last month's brackets in one call: with either passes, the sample
    size, the middle-income count and the lower empirical quantiles (np.partition of the sample) exactly,
    whether the brackets hold their ranks (a good guess), miss them (a guess far off) or are empty."""
    wf = model.workforce
    scale, threshold = np.float32(12 * 5000.0), np.float32(100000.0)
    ref = wf.pay[::stride] * scale + wf.bonus[::stride]
    m = ref.size
    ranks = [max(0, int(np.ceil(q * m)) - 1) for q in QUANTILES]
    want = np.partition(ref, ranks)[ranks].tolist()
    q = np.quantile(ref, QUANTILES)
    for guess in (q, q * 1.01, q * 3.0, q * 0.2, np.array([q[0], q[0], q[0]])):
        got = both(lambda k: k.income_quantiles(wf.pay, wf.bonus, stride, scale, threshold, np.asarray(guess, float),
                                                GUESS_WINDOWS, QUANTILES, 1))
        assert got[0] == got[1] and all(type(x) is float for x in got[0][2:])
        assert got[0][:2] == (m, int(np.count_nonzero(ref >= threshold))) and list(got[0][2:]) == want
    empty = np.empty(0, np.float32)
    assert both(lambda k: k.income_quantiles(empty, empty, 1, scale, threshold, q, GUESS_WINDOWS, QUANTILES, 1)) == \
        [(0, 0, 0.0, 0.0, 0.0)] * 2


def tiled(model, times: int):
    """`times` copies of the model's workers one after another: a workforce large enough for the
    kernels' threaded paths (sim.kernels.THREADS_FROM, PARTS_FROM)."""
    from sim.workforce import FIELDS, Workforce

    src = model.workforce
    wf = Workforce(src.n * times, kernels)
    wf.append(src.n * times)
    for name in FIELDS:
        wf.column(name)[:] = np.tile(getattr(src, name), times)
    return wf


@pytest.mark.parametrize("threads", [2, 3])
def test_visits_split_over_threads_are_bit_for_bit_those_of_one_thread(model, threads):
    """Promotions, firm moves and entrants of more than THREADS_FROM workers are visited by several
    threads, and the ledger's sums are then taken in slot order: the same columns and ledger, to the
    bit, as one thread and as the numpy passes (a worker's pay before or after, or its level, taken
    wrongly, or the sums in another order, would differ)."""
    base = tiled(model, 6)
    rng = np.random.default_rng(3)
    idx = np.sort(rng.choice(base.n, 3 * kernels.THREADS_FROM, replace=False)).astype(np.int64)
    up = idx[base.level[idx] < 5]
    movers, slots = idx[::2], idx[1::2]
    assert min(up.size, movers.size, slots.size) >= kernels.THREADS_FROM
    k = slots.size
    new = (rng.integers(0, 4, k).astype(np.int8), rng.random(k) < 0.4, rng.integers(200, 400, k).astype(np.int16),
           rng.integers(600, 760, k).astype(np.int16), rng.integers(0, model.firms.n, k).astype(np.int32),
           rng.random(k).astype(np.float32), rng.random(k).astype(np.float32), np.float32(57.0))
    new_firm = rng.integers(0, model.firms.n, movers.size).astype(np.int32)
    tables = model.rates.kernel_tables
    outs = []
    for impl, t in ((kernels, threads), (kernels, 1), (kernels_numpy, 1)):
        wf = base.copy()
        led = LevelLedger(wf)
        impl.promote(up, wf.level, wf.months_at_level, wf.progress, wf.credit, wf.weight, wf.studio_since,
                     wf.aptitude, wf.firm, wf.wage_factor, wf.gain, wf.pay, led.count, led.pay, *tables, t)
        impl.relocate(movers, new_firm, wf.level, wf.weight, wf.studio_since, wf.aptitude, wf.firm, wf.wage_factor,
                      wf.gain, wf.pay, led.count, led.pay, *tables, t)
        impl.enter(slots, *new, wf.level, wf.female, wf.age, wf.retire_age, wf.firm, wf.aptitude, wf.wage_factor,
                   wf.months_at_level, wf.progress, wf.credit, wf.studio_since, wf.comp_month, wf.weight, wf.bonus,
                   wf.gain, wf.pay, led.count, led.pay, *tables, t)
        outs.append((wf, led))
    from sim.workforce import FIELDS

    (a, la), *others = outs
    for b, lb in others:
        for f in FIELDS:
            assert same(getattr(a, f), getattr(b, f)), f
        assert same(la.count, lb.count) and same(la.pay, lb.pay)
    assert not np.array_equal(a.level, base.level) and not np.array_equal(a.firm, base.firm)


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("empty_part", [False, True])
def test_eligibility_found_in_one_part_per_thread_is_in_slot_order(model, threads, empty_part):
    """From PARTS_FROM workers eligible_odds finds its candidates in one part of the slots
    per thread and joins the parts: the same candidates and odds, in slot order, as one thread and as
    the numpy passes; also when a part has nobody at the standard."""
    wf = tiled(model, -(-kernels.PARTS_FROM // model.workforce.n))
    assert wf.n >= kernels.PARTS_FROM
    if empty_part:
        wf.progress[wf.n // 3:2 * wf.n // 3] = 0.0
    beh = model.cfg.behaviour
    args = (wf.progress, wf.level, wf.months_at_level, wf.credit, wf.studio_since, WAITS, TOP_CERTIFIED,
            np.asarray(beh.sit_rate, dtype=np.float32), np.float32(beh.trained_sit_prob),
            np.asarray(beh.pass_prob, dtype=np.float32))
    got = [impl.eligible_odds(*args, np.empty(wf.n, np.int64), np.empty(wf.n, np.float32), t)
           for impl, t in ((kernels, threads), (kernels, 1), (kernels_numpy, 1))]
    assert got[0][0].size > 10_000
    assert same(got[0], got[1]) and same(got[0], got[2])


@pytest.mark.parametrize("threads", [2, 3])
def test_departures_with_threads_are_bit_for_bit_those_of_one_thread(model, threads):
    """From PARTS_FROM workers depart ages one part of the slots per thread, and from
    THREADS_FROM candidates or leavers it reads their levels, weights and pays with the threads: the
    same leavers, movers, columns, ledger and stream state as one thread and as the numpy passes."""
    base = tiled(model, -(-kernels.PARTS_FROM // model.workforce.n))
    base.retire_age[::5] = base.age[::5] + 1  # one in five retires, in every part
    hazard = (np.linspace(1.0, 0.2, 8) * 0.05).astype(np.float32)
    outs = []
    for impl, t in ((kernels, threads), (kernels, 1), (kernels_numpy, 1)):
        wf = base.copy()
        led = LevelLedger(wf)
        rng = np.random.default_rng(4)
        got = impl.depart(rng, wf.age, wf.retire_age, wf.scratch("retired"), wf.level, hazard, float(hazard.max()),
                          np.float32(0.4), *model.firms.alias, wf.weight, wf.studio_since, wf.aptitude, wf.firm,
                          wf.wage_factor, wf.gain, wf.pay, led.count, led.pay, *model.rates.kernel_tables, t)
        outs.append((got, wf, led, rng.bit_generator.state))
    (ga, a, la, sa), *others = outs
    gone, n_retired, n_movers = ga
    assert n_retired >= base.n // 5 and min(gone.size, n_movers) >= kernels.THREADS_FROM
    for gb, b, lb, sb in others:
        assert same(ga[0], gb[0]) and ga[1:] == gb[1:] and sa == sb
        for f in ("age", "firm", "studio_since", "gain", "pay"):
            assert same(getattr(a, f), getattr(b, f)), f
        assert same(la.count, lb.count) and same(la.pay, lb.pay)


@pytest.mark.parametrize("threads", [2, 3])
def test_the_studio_roster_and_income_sample_with_threads_are_those_of_one_thread(model, threads):
    """From PARTS_FROM workers the studio roster is read and learning done one part of the slots per
    thread, and a strided income sample of THREADS_FROM values or more is read by the threads: the same
    members in the same order, and the same quantiles, as one thread and as the numpy passes (also
    with no member in some parts, and with everyone a member)."""
    wf = tiled(model, -(-kernels.PARTS_FROM // model.workforce.n))
    since = wf.studio_since.copy()
    since[wf.n // 2:] = NO_MONTH
    impls = ((kernels, threads), (kernels, 1), (kernels_numpy, 1))
    for studio_since in (wf.studio_since, since, np.full(wf.n, 5, np.int16)):
        for t, term, lo, hi in ((30, 36, 2, 4), (30, 6, 3, 3)):
            got = [impl.studio_roster(studio_since, wf.level, t, term, lo, hi, np.empty(wf.n, np.int64),
                                      np.empty(wf.n, np.int64), n) for impl, n in impls]
            assert same(got[0], got[1]) and same(got[0], got[2])
            assert got[0][0].size + got[0][1].size == np.count_nonzero(studio_since != NO_MONTH)
    stride = 8
    assert -(-wf.n // stride) >= kernels.THREADS_FROM
    scale = np.float32(12.0)
    ref = np.sort(wf.pay[::stride] * scale + wf.bonus[::stride])
    q = np.quantile(ref, QUANTILES)
    threshold = np.float32(q[1])
    for guess in (q, q * 1.01, q * 3.0):
        got = [impl.income_quantiles(wf.pay, wf.bonus, stride, scale, threshold, np.asarray(guess, float),
                                     GUESS_WINDOWS, QUANTILES, n) for impl, n in impls]
        assert got[0] == got[1] == got[2] and got[0][1] == np.count_nonzero(ref >= threshold) > 0
    learned = []
    for impl, n in impls:  # learning, one part per thread from PARTS_FROM workers
        progress, months = wf.progress.copy(), wf.months_at_level.copy()
        impl.learn(progress, wf.gain, months, n)
        learned.append((progress, months))
    assert same(learned[0], learned[1]) and same(learned[0], learned[2])
    assert same(learned[0][1], wf.months_at_level + np.int16(1)) and not same(learned[0][0], wf.progress)


@pytest.mark.slow
def test_a_full_scale_year_is_the_same_bytes_on_one_thread_and_on_all():
    """The whole model at full scale (5.7M workers, where every threaded path is taken) for a year,
    history skipped: the series and every column are the same bytes with OMP_NUM_THREADS=1 and with
    numba's threads. Run in fresh processes (the threads are read once per process)."""
    import subprocess
    import sys

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: numba has one thread, so both runs would take the same path")
    script = """
import dataclasses, hashlib
from sim import kernels
from sim.config import HorizonParams, RunConfig
from sim.model import WorkforceModel
from sim.workforce import FIELDS
cfg = RunConfig(n_agents=5_700_000, seed=11, horizon=HorizonParams(start_year=2025, end_year=2025))
cfg = dataclasses.replace(cfg, region=dataclasses.replace(
    cfg.region, history=dataclasses.replace(cfg.region.history, origin="2100-12")))
m = WorkforceModel(cfg).run()
h = hashlib.sha256(m.series().to_csv(index=False, float_format="%.17g").encode())
for f in FIELDS:
    h.update(getattr(m.workforce, f).tobytes())
print(kernels.threads(), h.hexdigest())
"""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    out = []
    for env in ({"OMP_NUM_THREADS": "1"}, {}):
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                             env=dict(base, SKILLSIM_KERNELS="compiled", SKILLSIM_HISTORY_DISK_MB="0", **env))
        assert run.returncode == 0, run.stderr[-2000:]
        out.append(run.stdout.split())
    (one, a), (many, b) = out
    assert one == "1" and int(many) >= 2
    assert a == b


def test_a_forked_child_visits_in_one_thread():
    """GNU OpenMP is not fork-safe: numba ends a forked child at its first threaded call once the parent
    has started its threads. A child forked from this process (which has) gets one thread."""
    import multiprocessing

    kernels.warm()
    assert kernels.threads() == kernels._allowed_threads()
    pid = os.fork()
    if pid == 0:  # a bare fork (not a pool's worker): the at-fork hook
        os._exit(0 if kernels.threads() == 1 else 1)
    assert os.waitpid(pid, 0)[1] == 0
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(kernels.threads) == 1
    assert kernels_numpy.threads() == 1


def test_a_child_forked_after_other_code_started_numbas_threads_is_not_ended():
    """Other code starts numba's threading layer (GNU OpenMP) in a process, which then forks (a bare
    os.fork); the child imports skillsim for the first time and calls a threaded pass as the model's
    callers do (when threads() > 1). numba ends such a child at its first threaded call; the passes
    keep to one thread there, and the child lives. A process that started nothing first keeps numba's
    threads."""
    import subprocess
    import sys

    script = """
import os, numpy as np, numba
if numba.get_num_threads() < 2:  # another package's use of numba's threads: the layer started
    print("layer has one thread"); raise SystemExit(0)
if numba.threading_layer() != "omp":
    print("layer", numba.threading_layer()); raise SystemExit(0)
pid = os.fork()
if pid == 0:
    code = 3
    try:
        from sim import kernels
        t = kernels.threads()
        if t > 1:
            kernels._gather_levels(np.arange(10), np.zeros(10, np.int8), t)
        code = 0 if t == 1 else 4
    finally:
        os._exit(code)
print("child", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    if out.stdout.startswith("layer"):
        pytest.skip(f"the rule cannot be seen here (numba's threads: {out.stdout.strip()})")
    assert out.stdout.split() == ["child", "0"], (out.stdout, out.stderr[-2000:])
    alone = subprocess.run([sys.executable, "-c", "import numba; from sim import kernels; "
                            "print(kernels.threads() == kernels._allowed_threads(), kernels._STARTED_BEFORE)"],
                           capture_output=True, text=True, timeout=120, env=env)
    assert alone.stdout.split() == ["True", "False"], alone.stderr[-2000:]


@pytest.mark.parametrize("env, expected", [({}, "numba"), ({"OMP_NUM_THREADS": "1"}, "1"),
                                           ({"NUMBA_NUM_THREADS": "1"}, "1"), ({"OMP_NUM_THREADS": "x"}, "numba")])
@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_the_threads_are_numbas_capped_by_omp_num_threads(env, expected):
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    script = "import numba; from sim import kernels; print(kernels.threads(), numba.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env=dict(base, **env))
    assert out.returncode == 0, out.stderr[-2000:]
    got, numbas = out.stdout.split()
    assert got == (numbas if expected == "numba" else expected)


def test_other_python_threads_use_one_thread_each():
    """Only the main thread starts a team: a view of the explorer or a thread pool's task, which may run
    beside other models (their passes release the GIL), visits on one thread."""
    from concurrent.futures import ThreadPoolExecutor

    kernels.warm()
    if kernels._allowed_threads() < 2:
        pytest.skip("one thread here: the rule cannot be seen")
    assert kernels.threads() == kernels._allowed_threads()
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda _: kernels.threads(), range(4))) == [1, 1, 1, 1]
    assert kernels.threads() == kernels._allowed_threads()


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_openmp_waits_asleep_without_the_setting_left_in_the_environment():
    """GNU OpenMP reads OMP_WAIT_POLICY as its library loads: PASSIVE then (threads asleep between
    calls, not spinning on a core), and the variable gone again, so programs started later keep
    their default; a policy the user set is kept."""
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    script = ("import os; from sim import kernels; import numba; "
              "print(numba.threading_layer(), os.environ.get('OMP_WAIT_POLICY'))")
    for env, policy, left in (({}, "PASSIVE", "None"), ({"OMP_WAIT_POLICY": "active"}, "ACTIVE", "active")):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                             env=dict(base, OMP_DISPLAY_ENV="TRUE", **env))
        assert out.returncode == 0, out.stderr[-2000:]
        layer, now = out.stdout.split()
        if layer != "omp":
            pytest.skip(f"numba's threading layer here is {layer}, not OpenMP")
        assert now == left
        assert f"OMP_WAIT_POLICY = '{policy}'" in out.stderr


@pytest.mark.parametrize("files, cpus", [
    ({"cpu.max": "200000 100000\n"}, 2),  # cgroup v2: 2 CPUs' time a period
    ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: two threads, rounded up
    ({"cpu.max": "max 100000\n"}, None),  # no quota
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1 without a quota
    ({}, None),  # no cgroups
    ({"cpu.max": "garbage\n"}, None),
])
def test_a_containers_cpu_quota_is_read_from_its_cgroup(tmp_path, files, cpus):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert kernels.quota_cpus(str(tmp_path)) == cpus


def test_the_passes_threads_keep_within_a_containers_cpu_quota(monkeypatch):
    """numba starts a thread per CPU of the affinity: a container given 2 CPUs of a 64-core host ran its
    passes on 64 threads, throttled by the quota."""
    kernels._allowed_threads.cache_clear()
    monkeypatch.setattr(kernels, "quota_cpus", lambda: 1)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        assert kernels._allowed_threads() == 1
    finally:
        kernels._allowed_threads.cache_clear()


def test_a_pools_workers_use_one_thread_each():
    """A worker of a process pool (here joblib's, as the batch runner's) runs on one thread: the pool
    already uses the cores."""
    from joblib import Parallel, delayed

    assert Parallel(n_jobs=2, backend="loky")(delayed(kernels.threads)() for _ in range(2)) == [1, 1]


def _passes_of(model) -> str:
    return model.workforce.kernels.__name__


@pytest.mark.parametrize("asked, runs, imported, warm_cache, expected", [
    ("", 3, False, True, "sim.kernels"),  # auto, enough runs: loading the passes pays back
    ("", 2, False, True, "sim.kernels_numpy"),  # auto, too few runs and nothing loaded: numpy
    ("", 2, True, True, "sim.kernels"),  # auto, loaded by an earlier batch of the study: nothing left to pay
    ("", 3, True, False, "sim.kernels_numpy"),  # a cold cache: a small batch does not compile for 30-80 s
    ("numpy", 3, True, True, "sim.kernels_numpy"),  # a forced choice stands
])
def test_a_batch_run_in_this_process_takes_the_compiled_passes_when_they_pay_back(monkeypatch, asked, runs, imported,
                                                                                    warm_cache, expected):
    """SKILLSIM_JOBS=1 (one core, a cluster job of one CPU) ran every run of a study on the numpy
    passes, three to four times slower than a pool's worker; studies that run their design 32 points at
    a time decided it per piece, on the numpy passes after the compiled ones were loaded. The choice is
    the batch's thread's, for the batch only: another thread (the explorer's views) keeps its own."""
    import threading

    from sim.studies.batch import recording, run_batch

    monkeypatch.setattr(passes, "BATCH_COMPILED_RUNS", 3)  # the rule at test sizes
    monkeypatch.setattr(passes, "_kernels_imported", lambda: imported)
    monkeypatch.setattr(kernels, "cached", lambda unknown=True: warm_cache)
    if asked:
        monkeypatch.setenv(passes.ENV, asked)
    else:
        monkeypatch.delenv(passes.ENV, raising=False)
    elsewhere = []

    def read(model):
        thread = threading.Thread(target=lambda: elsewhere.append(passes.choice()))
        thread.start()
        thread.join()
        return _passes_of(model)

    base = compose_config(["n_agents=1000", SHORT_HISTORY, "horizon.end_year=2025"])
    configs = [dataclasses.replace(base, replicate=r) for r in range(runs)]
    with recording() as study:
        assert run_batch(configs, read, jobs=1) == [expected] * runs
    # what a study's manifest keeps names the passes the runs took, and the one process
    record = study.as_dict()
    assert record["runs"] == runs and record["processes"] == [1] and record["from_journal"] == 0
    assert record["passes"] == ["compiled" if expected == "sim.kernels" else "numpy"]
    assert elsewhere == [asked or "auto"] * runs
    assert os.environ.get(passes.ENV, "") == asked and passes.choice() == (asked or "auto")


def test_a_pools_workers_take_each_batchs_passes_and_the_callers_environment_stays(monkeypatch):
    """A study's pool handed its workers their passes through the caller's SKILLSIM_KERNELS: it stayed
    set after the study (a Python session's later runs took it), and loky's reused workers kept the
    setting they started with (a study after one with SKILLSIM_KERNELS=numpy ran numpy). The choice now
    goes with each batch's pieces, and each run names the passes it took."""
    from sim.studies.batch import recording, run_batch

    kernels.warm()
    cfg = compose_config(["n_agents=500", SHORT_HISTORY, "horizon.end_year=2025"])
    configs = [dataclasses.replace(cfg, replicate=r) for r in range(2)]
    for asked, expected in (("numpy", "sim.kernels_numpy"), ("", "sim.kernels"), ("numpy", "sim.kernels_numpy")):
        if asked:
            monkeypatch.setenv(passes.ENV, asked)
        else:
            monkeypatch.delenv(passes.ENV, raising=False)
        with recording() as study:
            assert run_batch(configs, _passes_of, jobs=2) == [expected] * 2  # the same workers, reused
        assert os.environ.get(passes.ENV, "") == asked
        assert study.as_dict()["passes"] == ["numpy" if expected.endswith("numpy") else "compiled"]


def test_a_study_notes_only_its_own_runs(monkeypatch):
    """The record of how a study's runs ran (its manifest's `execution`) holds the runs of that study's
    thread and block: not a batch run outside any study, not the explorer's views on other threads while
    it runs, and nothing of a study that failed before it."""
    import threading

    from sim.studies.batch import execution, recording, run_batch

    monkeypatch.setenv(passes.ENV, "numpy")
    cfg = compose_config(["n_agents=1000", SHORT_HISTORY, "horizon.end_year=2025"])
    read = _passes_of
    assert execution() is None
    assert run_batch([cfg], read) == ["sim.kernels_numpy"]  # outside a study: nothing noted or kept
    with pytest.raises(RuntimeError):
        with recording():
            run_batch([cfg], read)
            raise RuntimeError("a study that fails")
    with recording() as study:
        view = threading.Thread(target=lambda: run_batch([cfg], read))  # the explorer, meanwhile
        view.start()
        view.join()
        assert execution()["runs"] == 0
        run_batch([cfg, dataclasses.replace(cfg, replicate=1)], read, jobs=1)
    assert execution() is None
    assert {k: study.as_dict()[k] for k in ("runs", "processes", "passes")} == {
        "runs": 2, "processes": [1], "passes": ["numpy"]}


@pytest.mark.parametrize("overrides", [
    ["n_agents=20000", SHORT_HISTORY],
    ["region=national", "n_agents=20000", "levers.training.allocation=lowest_level",
     "levers.competition.selection=random", "levers.studio.intensity=2", "horizon.end_year=2026"],
])
def test_whole_runs_are_byte_identical_with_either_implementation(overrides, monkeypatch):
    cfg = compose_config(overrides)
    out = []
    for how in ("compiled", "numpy"):
        monkeypatch.setenv(passes.ENV, how)
        m = WorkforceModel(cfg).run()
        assert m.workforce.kernels is (kernels if how == "compiled" else kernels_numpy)
        out.append((m.series(history=True).to_csv(index=False, float_format="%.17g"), m.workforce))
    (sa, a), (sb, b) = out
    assert sa == sb
    assert np.array_equal(a.progress, b.progress) and np.array_equal(a.level, b.level)


def test_small_runs_use_numpy_and_large_or_batched_runs_the_compiled_passes(monkeypatch):
    monkeypatch.delenv(passes.ENV, raising=False)
    assert passes.select(10_000) is kernels_numpy
    assert passes.select(passes.COMPILED_FROM) is kernels
    monkeypatch.setenv(passes.ENV, "numpy")
    assert passes.select(10**7) is kernels_numpy
    monkeypatch.setenv(passes.ENV, "compiled")
    assert passes.select(100) is kernels


def test_an_unknown_choice_of_passes_is_auto_with_one_warning(monkeypatch, caplog):
    monkeypatch.setenv(passes.ENV, "compiledd")
    from sim import errors

    monkeypatch.setattr(errors, "_WARNED_SETTINGS", set())
    with caplog.at_level("WARNING", logger="skillsim"):
        assert passes.select(10_000) is kernels_numpy and passes.select(passes.COMPILED_FROM) is kernels
    warned = [r.getMessage() for r in caplog.records if r.name == "skillsim"]
    assert warned == ["SKILLSIM_KERNELS=compiledd is not one of auto, compiled, numpy; using auto"]


def test_kernels_are_cached_on_disk():
    """cache=True: compiled code is stored, so a run or a sweep worker loads it instead of compiling."""
    kernels.warm()
    assert all(type(getattr(k, "_cache", None)).__name__ == "FunctionCache"
               for k in (kernels.learn, kernels.promote, kernels.eligible_odds, kernels.enter))


def test_warming_loads_every_kernel_a_run_calls_with_the_types_it_calls_them_with(tmp_path):
    """kernels.warm() (run by .ci/run at install and, when the cache is cold, by a sweep's parent before its
    workers start) must
    cover the argument types a run uses: a kernel met with other types (a read-only table, another
    integer width) is compiled again in the middle of the run, in every sweep worker at once on a cold
    cache. In a fresh process: warm, then a run through its history with every lever on, its
    assessments and appointments, a shrinking workforce and prizes; no kernel may gain a signature."""
    import subprocess
    import sys

    script = """
import json, numba
from sim import kernels
from sim.model import WorkforceModel
kernels.warm()
found = {n: f for n, f in vars(kernels).items() if isinstance(f, numba.core.registry.CPUDispatcher)}
before = {n: len(f.signatures) for n, f in found.items()}
m = WorkforceModel(region="chongqing", n_agents=3000, seed=3, end_year=2027, training_intensity=2.0,
                   competition_intensity=2.0, studio_intensity=2.0, overrides=["region.growth_per_year=-0.012"])
m.run()
assert m.datacollector.model_vars["promotions_competition"][-1] >= 0
print(json.dumps({n: [str(s) for s in f.signatures[before[n]:]] for n, f in found.items()
                  if len(f.signatures) > before[n]}))
"""
    env = dict(os.environ, SKILLSIM_KERNELS="compiled", SKILLSIM_HISTORY_DISK_MB="0")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "{}", out.stdout


def test_an_interrupt_inside_a_compiled_call_stays_an_interrupt():
    """CPython reports a KeyboardInterrupt raised while a compiled function returns as SystemError
    with the interrupt as its cause (seen in CI: a SIGINT during `eligible_odds`); the model raises
    the interrupt itself, so the command exits 130 with nothing left behind."""
    from sim.errors import interrupts_kept

    def wrapped():
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as ki:
            raise SystemError("returned a result with an exception set") from ki

    with pytest.raises(KeyboardInterrupt):
        with interrupts_kept():
            wrapped()
    with pytest.raises(SystemError):  # any other SystemError is left alone
        with interrupts_kept():
            raise SystemError("something else")


def test_an_interrupt_wrapped_twice_or_lost_by_a_compiled_call_stays_an_interrupt(monkeypatch):
    """Seen in CI once: a SIGTERM during `eligible_odds` surfaced as a SystemError that the one-level
    check missed. The whole cause chain is searched, and after a SIGTERM reached the process, the
    "returned a result with an exception set" SystemError counts as the interrupt."""
    import sim.errors as errors

    def nested():
        try:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as ki:
                raise SystemError("inner returned a result with an exception set") from ki
        except SystemError as inner:
            raise SystemError("outer returned a result with an exception set") from inner

    with pytest.raises(KeyboardInterrupt):
        with errors.interrupts_kept():
            nested()
    lost = SystemError("CPUDispatcher(f) returned a result with an exception set")
    with pytest.raises(SystemError):  # no signal seen: a bug, reported as one
        with errors.interrupts_kept():
            raise lost
    monkeypatch.setattr(errors, "_SIGNALLED", True)
    with pytest.raises(KeyboardInterrupt):
        with errors.interrupts_kept():
            raise lost
    with pytest.raises(SystemError):  # any other SystemError is still left alone
        with errors.interrupts_kept():
            raise SystemError("something else")


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_loading_the_kernels_does_not_import_scipy_linalg_and_leaves_numbas_blas_check_in_place(tmp_path):
    """numba's BLAS check (an import of scipy.linalg, 0.3-0.4 s) is answered without the import when
    the kernels load, and numba's own check is back afterwards: a user's np.dot still compiles, and
    only then is scipy.linalg imported. Run in a fresh process, where numba has loaded nothing yet."""
    import subprocess
    import sys

    code = """
import sys
import numpy as np
import sim.kernels as k
k.warm()
import numba, numba.np.arraymath as am, numba.np.linalg as la
assert 'scipy.linalg' not in sys.modules, 'scipy.linalg was imported'
assert am._HAVE_BLAS is True
assert la.ensure_blas.__module__ == 'numba.np.linalg' and la.ensure_blas.__qualname__ == 'ensure_blas'
assert am.ensure_blas is la.ensure_blas
dot = numba.njit(lambda a, b: np.dot(a, b))
a = np.arange(6.0).reshape(2, 3)
assert np.array_equal(dot(a, a.T), a @ a.T)
assert 'scipy.linalg' in sys.modules
print('ok')
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_cold_compiled_cache_is_filled_apart_while_the_explorers_workers_use_numpy(tmp_path):
    """The explorer's first start with an empty numba cache showed no chart for about 83 s, its batch
    compiling every kernel before the first run. Asked not to wait (the explorer's batches), a cold cache
    is filled by a process of its own, started once, and the workers use the numpy passes (the same
    numbers) until it has finished; the compiler ends with the process that started it. A warm cache is
    used as before, and a sweep still waits (compiling once, not in every worker)."""
    import subprocess
    import sys

    code = ("import os, time, sim.kernels as k, sim.passes as p\n"
            "cold = k.cached()\n"
            "p.use_compiled_in_workers(False)\n"
            "p.use_compiled_in_workers(False)\n"
            "print(cold, os.environ['SKILLSIM_KERNELS'], len(p._COMPILING), flush=True)\n"
            "if p._COMPILING:\n"
            "    print(p._COMPILING[0].pid, flush=True)\n"
            "    time.sleep(1.0)\n")  # then ends, with its compiler still working
    env = {k: v for k, v in os.environ.items() if k != passes.ENV}
    cold = subprocess.run([sys.executable, "-c", code], env=dict(env, NUMBA_CACHE_DIR=str(tmp_path)),
                          capture_output=True, text=True, timeout=300)
    assert cold.returncode == 0, cold.stderr[-2000:]
    first, pid = cold.stdout.split("\n")[:2]
    assert first == "False numpy 1"
    for _ in range(100):  # the compiler got SIGTERM when its parent ended
        if not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(int(pid), 9)
        raise AssertionError("the background compiler outlived the process that started it")
    kernels.warm()  # this process's cache (the checkout's, or NUMBA_CACHE_DIR's) is warm from here on
    assert kernels.cached()
    warm = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert warm.stdout.split("\n")[0] == "True compiled 0"


def test_a_cache_compiled_for_another_cpu_counts_as_cold(monkeypatch):
    """numba keys cached code by the CPU's name and features: a home folder shared by a cluster's nodes
    may hold another node's code only, and each worker would then compile for itself."""
    from numba.core.registry import cpu_target

    kernels.warm()
    assert kernels.cached()
    codegen = type(cpu_target.target_context.codegen())
    monkeypatch.setattr(codegen, "magic_tuple", lambda self: ("x86_64-unknown-linux-gnu", "another-cpu", ""))
    assert not kernels.cached()


def test_a_cache_without_a_private_kernel_counts_as_cold(monkeypatch):
    """Most public passes are Python wrappers of a private kernel (`depart` of `_depart`): a cache
    filled by runs, or by a warm-up stopped before its end, may lack one, and every worker of a pool
    would then compile it at once."""
    kernels.warm()
    assert kernels.cached()
    monkeypatch.setattr(kernels._depart._cache._cache_file, "_load_index", lambda: {})
    assert not kernels.cached()


@pytest.mark.parametrize("warm_cache", [True, False])
def test_a_pools_parent_loads_the_kernels_only_to_fill_a_cold_cache(monkeypatch, warm_cache):
    """The parent of a pool runs no model: loading every kernel there (0.35-0.8 s) only delayed its
    workers' start. It compiles them when the cache is cold, once, so that the workers do not each."""
    loaded = []
    monkeypatch.setattr(kernels, "cached", lambda unknown=True: warm_cache)
    monkeypatch.setattr(kernels, "warm", lambda: loaded.append(True))
    monkeypatch.setenv(passes.ENV, "auto")
    passes.use_compiled_in_workers()
    assert os.environ[passes.ENV] == "compiled"
    assert loaded == ([] if warm_cache else [True])


@pytest.mark.parametrize("finished", [False, True])
def test_the_explorers_workers_take_the_compiled_passes_once_the_background_compiler_has_finished(
        monkeypatch, finished):
    class Compiler:
        def poll(self):
            return 0 if finished else None

    kernels.warm()
    monkeypatch.setattr(passes, "_COMPILING", [Compiler()])
    monkeypatch.setenv(passes.ENV, "numpy")  # as the first, cold call left it
    passes.use_compiled_in_workers(False)
    assert os.environ[passes.ENV] == ("compiled" if finished else "numpy")
    assert len(passes._COMPILING) == (0 if finished else 1)  # reaped once finished


@pytest.mark.parametrize("cold", [True, False])
def test_compiling_the_passes_is_said_before_the_minute_it_takes(cold, monkeypatch, caplog):
    """A user trial: the first sweep after installing went quiet for 40 s while numba compiled. warm()
    now says so first when numba's cache does not hold the passes, and says nothing when it does."""
    monkeypatch.setattr(kernels, "cached", lambda unknown=True: not cold)
    monkeypatch.setattr(kernels, "_WARMED", False)
    with caplog.at_level("WARNING", logger="skillsim"):
        kernels.warm()
    said = [r.getMessage() for r in caplog.records if "compiling" in r.getMessage()]
    assert len(said) == (1 if cold else 0) and (not cold or "once" in said[0])
