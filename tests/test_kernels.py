"""The science kernels on their own: retirement, separations, sampling, slot reuse, certification."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.calendar import month_index, monthly_rate
from sim.certification import WAITS, certify, eligible_for_assessment
from sim.config import RetirementParams
from sim.demography import allocate, retirement_age_months
from sim.kernels_numpy import skip_sample
from sim.sampling import sample_distinct, stochastic_round
from sim.workforce import FIELDS, NO_MONTH, Workforce


@pytest.mark.parametrize(
    "female, born, expected_years_months",
    [
        (False, "1964-12", (60, 0)),  # reached 60 before the reform: unchanged
        (False, "1965-01", (60, 1)),  # first cohort: one month later
        (False, "1965-05", (60, 2)),  # one more month every four months
        (False, "1976-12", (63, 0)),  # reaches 63 and stays there
        (False, "1990-06", (63, 0)),
        (True, "1974-12", (50, 0)),  # women workers: 50 before the reform
        (True, "1975-01", (50, 1)),
        (True, "1975-03", (50, 2)),  # one more month every two months
        (True, "1984-12", (55, 0)),
    ],
)
def test_retirement_age_follows_the_2025_reform(female, born, expected_years_months):
    got = retirement_age_months(np.array([female]), np.array([month_index(born)]), RetirementParams())
    y, m = expected_years_months
    assert int(got[0]) == 12 * y + m


@pytest.mark.parametrize("p", [0.001, 0.02, 0.3])
def test_skip_sample_includes_each_slot_with_probability_p(p):
    n, reps = 20000, 30
    counts = np.zeros(n)
    for seed in range(reps):
        idx = skip_sample(np.random.default_rng(seed), n, p)
        assert np.all(np.diff(idx) > 0) and idx.min() >= 0 and idx.max() < n
        counts[idx] += 1
    total = counts.sum()
    expected, sd = n * reps * p, np.sqrt(n * reps * p * (1 - p))
    assert abs(total - expected) < 4 * sd
    # no position bias: first and second halves get the same share within sampling error
    half = counts[: n // 2].sum()
    assert abs(half - total / 2) < 4 * np.sqrt(total / 4)


def test_sample_distinct_respects_acceptance_and_count():
    rng = np.random.default_rng(1)
    eligible = np.zeros(10000, dtype=bool)
    eligible[::10] = True
    got = sample_distinct(rng, eligible.size, 500, lambda s: eligible[s].astype(float))
    assert got.size == 500 and eligible[got].all()
    few = sample_distinct(rng, eligible.size, 5000, lambda s: eligible[s].astype(float))
    assert few.size == 1000, "asking for more than are eligible returns all of them, once each"
    none = sample_distinct(rng, 100, 5, lambda s: np.zeros(s.size))
    assert none.size == 0


def test_stochastic_round_is_unbiased():
    rng = np.random.default_rng(3)
    draws = [stochastic_round(rng, 2.3) for _ in range(20000)]
    assert set(draws) == {2, 3}
    assert np.mean(draws) == pytest.approx(2.3, abs=4 * 0.46 / np.sqrt(20000))


def test_allocate_sums_exactly():
    counts = allocate(1001, np.array([0.5, 0.25, 0.25]))
    assert counts.sum() == 1001 and list(counts) in ([501, 250, 250], [500, 251, 250], [500, 250, 251])


def _filled(n: int) -> Workforce:
    wf = Workforce(n)
    idx = wf.append(n)
    wf.firm[idx] = np.arange(n)  # firm doubles as an identity tag
    return wf


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), data=st.data())
def test_replace_keeps_the_live_workers_dense(n, data):
    wf = _filled(n)
    leavers = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), max_size=n))), dtype=np.int64)
    n_new = data.draw(st.integers(0, 2 * n))
    slots = wf.replace(leavers, n_new)
    assert wf.n == n - leavers.size + n_new
    assert slots.size == n_new and len(set(slots.tolist())) == n_new
    assert np.all(slots < wf.n)
    wf.firm[slots] = -1  # entrants
    survivors = sorted(set(range(n)) - set(leavers.tolist()))
    live = wf.firm[wf.firm >= 0]
    assert sorted(live.tolist()) == survivors


def test_certification_only_takes_workers_who_served_the_wait():
    n = 4000
    wf = Workforce(n)
    wf.append(n)
    rng = np.random.default_rng(0)
    wf.level[:] = rng.integers(0, 8, n)
    wf.progress[:] = rng.uniform(0, 2, n)
    wf.months_at_level[:] = rng.integers(0, 80, n)
    wf.credit[:] = rng.choice([0, 6, 24], n)
    wf.studio_since[:] = NO_MONTH
    cand = eligible_for_assessment(wf)
    lvl = wf.level[cand]
    assert np.all(lvl < 5) and np.all(wf.progress[cand] >= 1)
    assert np.all(wf.months_at_level[cand] >= WAITS[lvl] - wf.credit[cand])
    # and every worker who qualifies is a candidate
    mask = (wf.level < 5) & (wf.progress >= 1)
    mask &= wf.months_at_level >= np.where(wf.level < 5, WAITS[np.minimum(wf.level, 4)], 0) - wf.credit
    assert set(cand.tolist()) == set(np.flatnonzero(mask).tolist())
    passed = certify(wf, np.ones(5), np.ones(5), 1.0, np.random.default_rng(1))
    assert set(passed.tolist()) == set(cand.tolist())
    assert certify(wf, np.zeros(5), np.ones(5), 1.0, np.random.default_rng(1)).size == 0


def test_monthly_rate_compounds_to_the_annual_rate():
    assert (1 - monthly_rate(0.157)) ** 12 == pytest.approx(1 - 0.157)


def test_fields_use_small_dtypes():
    assert FIELDS["level"] == np.int8 and FIELDS["age"] == np.int16 and FIELDS["progress"] == np.float32


def test_sample_distinct_is_distinct_exact_and_proportional_to_acceptance():
    n = 50000
    a = np.where(np.arange(n) % 2 == 0, 1.0, 0.25)  # even slots four times as likely
    hits = np.zeros(n)
    for seed in range(40):
        got = sample_distinct(np.random.default_rng(seed), n, 2000, lambda s: a[s])
        assert got.size == 2000 and np.all(np.diff(got) > 0)
        hits[got] += 1
    ratio = hits[::2].sum() / hits[1::2].sum()
    # odd slots should take 1/5 of 80,000 draws: sd of that share ~0.45/sqrt(80,000)/0.2 = 0.7%
    # relative, and the ratio moves about 1.25x as much; allow 5 sd
    assert ratio == pytest.approx(4.0, rel=0.045)
    rare = np.zeros(n)
    rare[[5, 77, 40000]] = 1.0
    got = sample_distinct(np.random.default_rng(1), n, 10, lambda s: rare[s])
    assert set(got.tolist()) <= {5, 77, 40000}
    assert sample_distinct(np.random.default_rng(1), 100, 5, lambda s: np.zeros(s.size)).size == 0


def test_alias_sampling_draws_firms_in_proportion_to_size():
    from sim.demography import Firms

    share = np.array([0.5, 0.3, 0.15, 0.05])
    firms = Firms(share, np.ones(4, np.float32), np.full(4, 0.02, np.float32))
    k = 200_000
    got = np.bincount(firms.sample(np.random.default_rng(4), k), minlength=4) / k
    sd = np.sqrt(share * (1 - share) / k)
    assert np.all(np.abs(got - share) < 5 * sd)


@pytest.mark.parametrize("n", [100, 16385, 100_000, 300_000])
def test_order_statistics_equal_a_full_partition(n):
    from sim import kernels, kernels_numpy
    from sim.metrics import GUESS_WINDOWS, QUANTILES, order_statistics

    rng = np.random.default_rng(n)
    x = rng.lognormal(11, 0.4, n).astype(np.float32)
    x[rng.integers(0, n, 40)] += 3000  # prizes make a ragged upper tail
    ties = np.repeat(np.arange(50, dtype=np.float32), n // 50 + 1)[:n]
    rng.shuffle(ties)
    for data in (x, ties):
        ranks = [max(0, int(np.ceil(q * n)) - 1) for q in (0.1, 0.5, 0.9)]
        np.testing.assert_array_equal(order_statistics(data, ranks), np.partition(data, ranks)[ranks])
        for impl in (kernels, kernels_numpy):
            np.testing.assert_array_equal(order_statistics(data.astype(np.float64), ranks, passes=impl),
                                          np.partition(data.astype(np.float64), ranks)[ranks])
        for impl in (kernels, kernels_numpy):  # last month's values as brackets (measure's): near, far, off
            exact = np.partition(data, ranks)[ranks]
            zero = np.zeros(n, np.float32)
            # the narrow window holds (1.004), only the wide one (1.01), neither, a window whose float32
            # bound is 0 (a full partition), and three windows on one value (they overlap)
            for guess in (exact * 1.004, exact * 1.01, exact * 0.5, exact + 1e6, np.array([1e-47, *exact[1:]]),
                          np.repeat(exact[1], 3)):
                got = impl.income_quantiles(data, zero, 1, np.float32(1.0), np.float32(1e9),
                                            guess.astype(np.float64), GUESS_WINDOWS, QUANTILES, 1)
                assert got[:2] == (n, 0) and list(got[2:]) == exact.tolist()
    # a probe that misses the bracket must fall back to the exact answer
    skewed = np.concatenate([np.zeros(n - n // 100, np.float32), np.ones(n // 100, np.float32)])
    ranks = [n - 1]
    np.testing.assert_array_equal(order_statistics(skewed, ranks, probe_size=8), np.partition(skewed, ranks)[ranks])



@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 63, 64, 65, 1001, 50_003])
def test_the_one_pass_counts_and_marks_gather_every_value_inside_each_window_in_slot_order(n):
    """sim.kernels._income_narrow (the income quantiles' usual pass: the sample, the middle-income
    count, the counts below and up to each window, a mark on each value inside one) and
    _gather_marked (the marked values, mark to mark): the counts numpy's comparisons give and, for
    every window, exactly the values inside it in slot order, with the workers taken one by one and
    every third, values on the bounds (one in the last word), overlapping windows, one holding
    nothing, and values that compare oddly (NaN, inf, -0.0, negatives)."""
    from sim.kernels import _gather_marked, _income_narrow

    rng = np.random.default_rng(n)
    pay = rng.lognormal(11.0, 0.5, n).astype(np.float32)
    if n > 30:
        pay[rng.choice(n, 10, replace=False)] = np.array([np.nan, np.inf, -0.0, 0.0, -3.0] * 2, np.float32)
    bonus = np.where(rng.random(n) < 0.05, np.float32(3000.0), np.float32(0.0)).astype(np.float32)
    scale, threshold = np.float32(1.25), np.float32(70_000.0)
    for stride in (1, 3):
        x = pay[::stride] * scale + bonus[::stride]  # what measure() samples, as numpy computes it
        for windows in ([(0.9, 1.0), (1.0, 1.05), (2.0, 2.5)], [(0.5, 1.5), (0.8, 1.2), (100.0, 200.0)]):
            med = np.float32(np.nanmedian(x)) if x.size else np.float32(60_000.0)
            lo = np.array([np.float32(med * a) for a, _ in windows], dtype=np.float32)
            hi = np.array([np.float32(med * b) for _, b in windows], dtype=np.float32)
            if x.size > 20:  # values exactly on the bounds, one in the last word
                for at, value in ((3, lo[0]), (x.size - 1, hi[1]), (x.size - 2, lo[1])):
                    pay[at * stride], bonus[at * stride] = value / scale, 0.0
                    x[at] = pay[at * stride] * scale + bonus[at * stride]
                lo[0], hi[1], lo[1] = x[3], x[x.size - 1], x[x.size - 2]
            sample, n_mid, below, upto, marks = _income_narrow(pay, bonus, stride, scale, threshold, lo, hi, 1)
            assert np.array_equal(sample, x, equal_nan=True) and n_mid == np.count_nonzero(x >= threshold)
            assert below.tolist() == [int(np.count_nonzero(x < v)) for v in lo]
            assert upto.tolist() == [int(np.count_nonzero(x <= v)) for v in hi]
            inside = [(x >= lo[j]) & (x <= hi[j]) for j in range(3)]
            assert marks.size % 8 == 0 and np.array_equal(marks[:x.size] != 0, inside[0] | inside[1] | inside[2])
            assert not marks[x.size:].any()
            got, kept = _gather_marked(sample, marks, lo, hi, upto - below)
            for j in range(3):
                assert kept[j] == upto[j] - below[j] and np.array_equal(got[j], x[inside[j]]), (n, stride, windows, j)


def test_income_quantiles_are_exact_with_bounds_on_the_data_and_odd_values():
    """income_quantiles' windows (GUESS_WINDOWS) against np.partition, with either passes, where a
    bug in the window's edges or the counts would show: data holding the exact float32 bounds of both
    windows (many times, so ranks land on them), one quantile found in each window and one in
    none, and values that compare oddly (zeros, -0.0, negatives, +inf, NaN, which sorts last)."""
    from sim import kernels, kernels_numpy
    from sim.metrics import GUESS_WINDOWS, QUANTILES

    rng = np.random.default_rng(12)
    n = 20_000
    ranks = [max(0, int(np.ceil(q * n)) - 1) for q in QUANTILES]
    base = np.sort(rng.lognormal(10, 0.3, n).astype(np.float32))
    guess = base[ranks].astype(np.float64)
    edges = [np.float32(g * (1.0 + s * w)) for g in guess for w in GUESS_WINDOWS for s in (-1.0, 1.0)]
    on_edges = base.copy()
    for j, e in enumerate(edges):  # a block of each bound value next to where it sorts
        at = int(np.searchsorted(base, e))
        on_edges[max(0, at - 60):at + 60] = e
    odd = base.copy()
    odd[rng.choice(n, 400, replace=False)] = rng.choice(np.array([0.0, -0.0, -5.0, np.inf, np.nan], np.float32), 400)
    rng.shuffle(on_edges)  # in no order, as incomes lie in slot order
    rng.shuffle(odd)
    zero = np.zeros(n, np.float32)
    for data in (on_edges, odd):
        exact = np.partition(data, ranks)[ranks]
        for g in (guess, guess * np.array([1.0, 1.01, 3.0]), np.array(edges[0:3], np.float64)):
            for impl in (kernels, kernels_numpy):
                got = impl.income_quantiles(data, zero, 1, np.float32(1.0), np.float32(1e9),
                                            np.asarray(g, np.float64), GUESS_WINDOWS, QUANTILES, 1)
                assert got[0] == n and list(got[2:]) == exact.tolist(), (impl.__name__, g)

def test_competition_winners_are_the_best_scores_with_ties_broken_as_the_partition_does():
    """best_slots takes the scores at or above the n-th best (a bracketed selection) and falls back to
    np.argpartition when a tie sits on that score: the same slots as the argpartition it replaced, in
    slot order, for continuous and for tied scores, with either implementation of the passes."""
    from sim import kernels, kernels_numpy
    from sim.levers.competition import best_slots

    rng = np.random.default_rng(8)
    for scores in (rng.normal(size=40_000), np.round(rng.normal(size=40_000), 1)):
        part = np.sort(rng.choice(10**6, scores.size, replace=False))
        for n_top in (0, 1, 37, 4000, 39_999, 40_000):
            want = np.sort(part[np.argpartition(-scores, n_top - 1)[:n_top]]) if 0 < n_top < scores.size \
                else part[:n_top]
            for impl in (kernels, kernels_numpy):
                np.testing.assert_array_equal(best_slots(part, scores, n_top, impl), want)


def test_sample_distinct_gives_k_whenever_k_are_eligible():
    """A small run's call (ten places among 5,000 eligible of 10,000) returns exactly ten every time:
    a pass short of ten is topped up. Before, the sampler kept a Poisson number with mean 1.15 k and
    returned what it had, short in about a fifth of such calls (docs/model.md section 9 measured what
    that cost small runs). Also when the places nearly exhaust workers whose weight is 0.5 (a pass at
    p = 1 keeps about half), and when fewer are eligible than asked (all of them, once)."""
    eligible = (np.arange(10000) % 2).astype(float)
    sizes = [sample_distinct(np.random.default_rng(seed), eligible.size, 10, lambda s: eligible[s]).size
             for seed in range(200)]
    assert min(sizes) == max(sizes) == 10
    half = np.zeros(1000)
    half[:100] = 0.5
    for seed in range(20):
        got = sample_distinct(np.random.default_rng(seed), half.size, 80, lambda s: half[s])
        assert got.size == 80 and got.max() < 100 and np.all(np.diff(got) > 0)
        assert sample_distinct(np.random.default_rng(seed), half.size, 150, lambda s: half[s]).size <= 100


def test_sample_distinct_with_few_places_stays_proportional_to_acceptance():
    """Top-ups and the small pilot keep the draw proportional to the weights for a few places a call:
    even slots four times as likely as odd ones, 10 places, 2,000 calls. The odd slots' share of the
    20,000 places is 0.2 with sd 0.28% (relative 1.4%); the ratio moves about 1.25x as much: 5 sd is 9%."""
    n = 20000
    a = np.where(np.arange(n) % 2 == 0, 1.0, 0.25)
    hits = np.zeros(2)
    for seed in range(2000):
        got = sample_distinct(np.random.default_rng(seed), n, 10, lambda s: a[s])
        assert got.size == 10
        hits += np.bincount(got % 2, minlength=2)
    assert hits[0] / hits[1] == pytest.approx(4.0, rel=0.09)


def _alias_table_on_numpy_scalars(p):
    """The alias table as built before (the same loop on numpy scalars): the reference."""
    n = p.size
    scaled = np.asarray(p, dtype=float) * n / np.sum(p)
    prob = np.ones(n)
    alias = np.arange(n, dtype=np.int32)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = scaled[s], g
        scaled[g] -= 1.0 - scaled[s]
        (small if scaled[g] < 1.0 else large).append(g)
    return prob.astype(np.float32), alias


@pytest.mark.parametrize("seed", range(4))
def test_alias_table_is_the_same_table_and_samples_each_firm_in_proportion(seed):
    """The alias table (Python floats) is bit for bit the table built on numpy scalars, and it is
    right: firm i is drawn with probability (prob[i] + the shares aliased to it) / n = p[i], to float32
    rounding, for Pareto-sized firms like the model's, with zeros and for one firm."""
    from sim.demography import alias_table

    rng = np.random.default_rng(seed)
    cases = [rng.pareto(1.1, 2500) + 1e-3, rng.random(37), np.array([1.0]), np.r_[np.zeros(5), rng.random(20)]]
    for p in cases:
        p = p / p.sum()
        prob, alias = alias_table(p)
        ref_prob, ref_alias = _alias_table_on_numpy_scalars(p)
        assert prob.dtype == np.float32 and alias.dtype == np.int32
        assert np.array_equal(prob, ref_prob) and np.array_equal(alias, ref_alias)
        n = p.size
        drawn = prob.astype(float) + np.bincount(alias, weights=1.0 - prob.astype(float), minlength=n)
        # float32 probs (relative error 2**-24) summed over a firm's entries and divided by n: far below 4e-7;
        # a wrong table is off by the size of p itself
        assert np.allclose(drawn / n, p, rtol=0, atol=4e-7)


def test_the_rows_python_sums_are_numpys_to_the_bit():
    """sim.metrics.numpy_sum adds a row's level vectors in Python in numpy's order (one by one below
    eight values, numpy's pairwise block at eight): the same float64 as np.sum, bit for bit, for
    values of mixed signs and magnitudes, where another order of additions gives another result."""
    from sim.metrics import numpy_sum

    rng = np.random.default_rng(0)
    other_order_differs = 0
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e308, -1e308])
    for n in range(0, 13):
        for trial in range(3000):
            a = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 17, n)
            if trial % 10 == 0:  # signed zeros (numpy gives +0.0 for a sum of -0.0), infinities, NaN, overflow
                a = rng.choice(special, n) if trial % 20 == 0 else np.where(rng.random(n) < 0.3, -0.0, a)
            with np.errstate(all="ignore"):  # inf - inf, overflow: the values are the point
                want = np.sum(a)
                got = numpy_sum(a.tolist())  # (numpy's own sum beyond eight values)
            if np.isnan(want):  # which NaN (its sign) comes out of inf - inf and NaN + NaN depends on the
                assert np.isnan(got), (n, a)  # code path numpy takes for the array's alignment: not a value
            else:
                assert np.float64(got).tobytes() == want.tobytes(), (n, a)
            other_order_differs += n == 8 and sum(a.tolist()) != want
    assert other_order_differs > 1000  # the order matters, so the test can tell a wrong one
    assert str(numpy_sum([-0.0] * 3)) == "0.0" and str(numpy_sum([])) == "0.0"


@pytest.mark.parametrize("n", [0, 1, 7, 8, 4095, 4096, 4097, 4099, 8192, 8195, 20_001])
def test_ageing_in_blocks_retires_the_same_workers_as_one_pass(n):
    """sim.kernels.age_and_retire ages and marks a block of 4,096 workers at a time, then reads the
    marks eight at a time: the same ages and the same retirees, in slot order, as the numpy rule, for
    sizes around the block and word edges, with nobody, a few, a fifth and everybody retiring (a
    short last block must not read the marks the full block before it left)."""
    from sim import kernels, kernels_numpy

    rng = np.random.default_rng(n)
    age = rng.integers(200, 700, n).astype(np.int16)
    for share in (0.0, 0.001, 0.2, 1.0):
        retire_age = np.where(rng.random(n) < share, age + 1, 720).astype(np.int16)
        a, b = age.copy(), age.copy()
        want = kernels_numpy.age_and_retire(a, retire_age, None)
        got = kernels.age_and_retire(b, retire_age, np.full(n + 8, -1, np.int64))
        assert np.array_equal(a, b) and np.array_equal(got, want), (n, share)
    assert np.array_equal(a, age + 1)


@pytest.mark.parametrize("n", [0, 1, 7, 4095, 4096, 4099, 8195, 20_001])
def test_the_studio_roster_in_blocks_lists_the_same_members_as_one_pass(n):
    """sim.kernels.studio_roster marks a block's studio members and reads only them: the same staying
    and leaving members, in slot order, as the numpy rule, around the block and word edges, with no
    member, a few, half and every worker in a studio (a term served, a level out of range, both)."""
    from sim import kernels, kernels_numpy
    from sim.workforce import NO_MONTH

    rng = np.random.default_rng(n)
    level = rng.integers(0, 8, n).astype(np.int8)
    for share in (0.0, 0.02, 0.5, 1.0):
        since = np.where(rng.random(n) < share, rng.integers(24_000, 24_300, n), NO_MONTH).astype(np.int16)
        want = kernels_numpy.studio_roster(since, level, 24_300, 36, 2, 5, np.empty(n, np.int64), np.empty(n, np.int64),
                                           1)
        got = kernels.studio_roster(since, level, 24_300, 36, 2, 5, np.empty(n, np.int64), np.empty(n, np.int64), 1)
        assert all(np.array_equal(g, w) for g, w in zip(got, want)), (n, share)
        if share == 1.0 and n > 100:
            assert 0 < want[0].size < n and want[0].size + want[1].size == n  # both lists hold members
