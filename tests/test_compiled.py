"""The compiled passes (sim.kernels) give bit for bit what the numpy rules they replaced give.

Each kernel is compared, with exact equality, against the numpy form on a mid-run workforce (every
level, studio members, training credit, workers at and below the standard). Exact equality is the
claim: the kernels keep float32 arithmetic in float32 and sum the ledger in slot order, so a run's
output does not depend on whether a rule is compiled, and the calibration made with the numpy rules
stands.
"""

from __future__ import annotations

import numpy as np
import pytest

from sim import kernels
from sim.certification import WAITS
from sim.config import RunConfig
from sim.demography import retirement_age_months, retirement_age_months_numpy
from sim.ladder import TOP_CERTIFIED
from sim.model import WorkforceModel
from sim.rates import refresh, refresh_numpy
from sim.workforce import NO_MONTH, LevelLedger


@pytest.fixture(scope="module")
def model():
    """A 20k-agent run 30 months past its start: a workforce with every kind of worker state."""
    m = WorkforceModel(RunConfig(n_agents=20000, seed=5))
    for _ in range(30):
        m.step()
    assert (m.workforce.studio_since != NO_MONTH).any() and (m.workforce.credit > 0).any()
    return m


def copy_wf(m):
    import copy

    return copy.deepcopy(m.workforce)


def some_slots(m, k=3000, seed=0):
    return np.sort(np.random.default_rng(seed).choice(m.workforce.n, k, replace=False))


def test_refresh_matches_numpy(model):
    idx = some_slots(model)
    a, b = copy_wf(model), copy_wf(model)
    a.gain[idx] = -1
    b.gain[idx] = -1
    refresh(a, idx, model.rates)
    refresh_numpy(b, idx, model.rates)
    assert np.array_equal(a.gain, b.gain) and np.array_equal(a.pay, b.pay)


def test_ledger_matches_bincount(model):
    wf = model.workforce
    idx = some_slots(model, 5000, 1)
    led = LevelLedger(wf)
    count, pay = led.count.copy(), led.pay.copy()
    led.add(wf, idx, -1.0)
    w = wf.weight[idx].astype(np.float64)
    count -= np.bincount(wf.level[idx], weights=w, minlength=8)
    pay -= np.bincount(wf.level[idx], weights=w * wf.pay[idx], minlength=8)
    assert np.array_equal(led.count, count) and np.array_equal(led.pay, pay)
    # and a ledger built up from nothing equals a recount, to the bit
    c, p = LevelLedger.recount(wf)
    assert np.array_equal(LevelLedger(wf).count, c) and np.array_equal(LevelLedger(wf).pay, p)


def numpy_eligible(wf):
    ready = np.flatnonzero(wf.progress >= 1.0)
    lvl = wf.level[ready]
    ready, lvl = ready[lvl < TOP_CERTIFIED], lvl[lvl < TOP_CERTIFIED]
    return ready[wf.months_at_level[ready] >= WAITS[lvl] - wf.credit[ready]]


def test_eligibility_and_odds_match_numpy(model):
    wf = model.workforce
    expected = numpy_eligible(wf)
    assert expected.size > 100
    got = kernels.eligible(wf.progress, wf.level, wf.months_at_level, wf.credit, WAITS, TOP_CERTIFIED,
                           np.empty(wf.n, np.int64))
    assert np.array_equal(got, expected)
    beh = model.cfg.behaviour
    sit_u = np.asarray(beh.sit_rate, dtype=np.float32)
    pp = np.asarray(beh.pass_prob, dtype=np.float32)
    cand, odds = kernels.eligible_odds(wf.progress, wf.level, wf.months_at_level, wf.credit, wf.studio_since,
                                       WAITS, TOP_CERTIFIED, sit_u, np.float32(beh.trained_sit_prob), pp,
                                       np.empty(wf.n, np.int64), np.empty(wf.n, np.float32))
    lvl = wf.level[expected]
    prepared = (wf.credit[expected] > 0) | (wf.studio_since[expected] != NO_MONTH)
    sit = np.where(prepared, np.float32(beh.trained_sit_prob), sit_u[lvl])
    assert np.array_equal(cand, expected) and np.array_equal(odds, sit * pp[lvl])


def test_promote_matches_the_numpy_sequence(model):
    idx = numpy_eligible(model.workforce)[::3]
    a, b = copy_wf(model), copy_wf(model)
    la, lb = LevelLedger(a), LevelLedger(b)
    kernels.promote(idx, a.level, a.months_at_level, a.progress, a.credit, a.weight, a.studio_since, a.aptitude,
                    a.firm, a.wage_factor, a.gain, a.pay, la.count, la.pay, *model.rates.kernel_tables)
    w = b.weight[idx].astype(np.float64)
    lb.count -= np.bincount(b.level[idx], weights=w, minlength=8)
    lb.pay -= np.bincount(b.level[idx], weights=w * b.pay[idx], minlength=8)
    b.level[idx] += 1
    b.months_at_level[idx] = 0
    b.progress[idx] = 0
    b.credit[idx] = 0
    refresh_numpy(b, idx, model.rates)
    lb.count += np.bincount(b.level[idx], weights=w, minlength=8)
    lb.pay += np.bincount(b.level[idx], weights=w * b.pay[idx], minlength=8)
    for f in ("level", "months_at_level", "progress", "credit", "gain", "pay"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert np.array_equal(la.count, lb.count) and np.array_equal(la.pay, lb.pay)


def test_ageing_learning_and_retirement_match_numpy(model):
    a, b = copy_wf(model), copy_wf(model)
    got = kernels.age_and_retire(a.age, a.retire_age, np.empty(a.n, np.int64))
    b.age[:] += np.int16(1)
    assert np.array_equal(a.age, b.age) and np.array_equal(got, np.flatnonzero(b.age >= b.retire_age))
    kernels.learn(a.progress, a.gain, a.months_at_level)
    b.progress[:] += b.gain
    b.months_at_level[:] += np.int16(1)
    assert np.array_equal(a.progress, b.progress) and np.array_equal(a.months_at_level, b.months_at_level)


def test_retirement_ages_match_numpy():
    rng = np.random.default_rng(3)
    female = rng.random(50000) < 0.4
    birth = rng.integers(1940 * 12, 2010 * 12, 50000)
    ret = RunConfig().retirement
    assert np.array_equal(retirement_age_months(female, birth, ret), retirement_age_months_numpy(female, birth, ret))


def test_acceptance_weights_match_numpy(model):
    wf = model.workforce
    slots = np.random.default_rng(2).integers(0, wf.n, 4000)
    lvl = wf.level[slots]
    for lo, hi in ((1, 4), (2, 3)):
        base = ((lvl >= lo) & (lvl <= hi)).astype(np.float32)
        assert np.array_equal(kernels.accept_levels(slots, wf.level, lo, hi, wf.progress, False), base)
        assert np.array_equal(kernels.accept_levels(slots, wf.level, lo, hi, wf.progress, True),
                              base * np.clip(wf.progress[slots], 0.05, 1.0))
        studio = ((lvl >= lo) & (lvl <= hi) & (wf.studio_since[slots] == NO_MONTH)).astype(np.float32)
        assert np.array_equal(kernels.accept_studio(slots, wf.level, lo, hi, wf.studio_since), studio)
    levy = model.firms.levy_rate
    top = 4
    for mode in (0, 1, 2):
        a = (lvl <= top).astype(np.float32)
        if mode == 1:
            a *= (top + 1 - lvl).astype(np.float32) / (top + 1)
        elif mode == 2:
            a *= np.clip(wf.progress[slots], 0.05, 1.0)
        got = kernels.accept_training(slots, wf.level, top, mode, wf.progress, wf.firm, levy, np.float32(levy.max()),
                                      False)
        assert np.array_equal(got, a)
        got = kernels.accept_training(slots, wf.level, top, mode, wf.progress, wf.firm, levy, np.float32(levy.max()),
                                      True)
        assert np.array_equal(got, a * (levy[wf.firm[slots]] / float(levy.max())))


def test_sorted_set_operations_and_payroll_match_numpy(model):
    rng = np.random.default_rng(4)
    for _ in range(20):
        a = np.unique(rng.integers(0, 500, rng.integers(0, 80)))
        b = np.unique(rng.integers(0, 500, rng.integers(0, 80)))
        assert np.array_equal(kernels.union_sorted(a, b), np.union1d(a, b))
        assert np.array_equal(kernels.minus_sorted(a, b), np.setdiff1d(a, b, assume_unique=True))
    wf = model.workforce
    assert np.array_equal(kernels.firm_payroll(wf.firm, wf.pay, wf.weight, model.firms.n),
                          np.bincount(wf.firm, weights=wf.pay * wf.weight, minlength=model.firms.n))


def test_kernels_are_cached_on_disk():
    """cache=True: compiled code is stored, so a run or a sweep worker loads it instead of compiling."""
    kernels.warm()
    assert all(getattr(k, "_cache", None) is not None and type(k._cache).__name__ == "FunctionCache"
               for k in (kernels.learn, kernels.promote, kernels.eligible_odds))
