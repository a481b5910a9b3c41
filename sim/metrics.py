"""What is recorded each month: the columns of the monthly series.

`measure(model)` computes one row from the model's arrays and its level ledger (head count and pay by
level, kept current by the model); the Mesa DataCollector's reporters read from that row. Counts and
money are population-scaled (sums of agent weights). Annualised income is 12 x this month's pay plus
one-off payments (prizes) received this month, counted once. Income quantiles are
computed over a systematic subsample of at most QUANTILE_SAMPLE agents (exact below that size): the
slot order is unrelated to income, and the subsample's error is far below the sampling error of the
agents themselves.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from .ladder import HIGH_SKILL_MIN, N_LEVELS, SKILLED_MIN

QUANTILE_SAMPLE = 1 << 17
QUANTILES = np.array([0.1, 0.5, 0.9])  #: the income quantiles of the row: p10, median, p90 (an array, as the passes take it)
CHANNELS = ("certification", "competition", "studio", "appointment")
SPEND_ACCOUNTS = (
    ("training", "government"),
    ("training", "employer"),
    ("competition", "government"),
    ("competition", "employer"),
    ("studio", "government"),
    ("studio", "employer"),
    ("certification", "government"),
)

# column names built once: measure() runs every month of every run
_LEVEL_KEYS = tuple(f"level_{k}" for k in range(N_LEVELS))
_INCOME_LEVEL_KEYS = tuple(f"income_mean_level_{k}" for k in range(N_LEVELS))
_PROMOTION_KEYS = tuple(f"promotions_{c}" for c in CHANNELS)
_FLOW_KEYS = _PROMOTION_KEYS + ("entries", "exits", "exits_retirement", "exits_quit", "firm_moves")
_flows_of = operator.itemgetter(*_FLOW_KEYS)  # a month's flows in the row's order, in one call
_SPEND_KEYS = tuple(f"spend_{lever}_{funder}" for lever, funder in SPEND_ACCOUNTS)


#: half-widths of the windows around last month's income quantiles (grown with the wage index),
#: relative, narrowest first: a month moves them by at most 1.7% in the runs measured (0.1-0.3%
#: typically, under 0.8% in the default runs), so the narrow window holds each rank nearly every month
#: and leaves few values to gather and partition; the wide one is counted only when it misses
GUESS_WINDOWS = np.array([0.008, 0.025])


def order_statistics(x: np.ndarray, ranks: list[int], probe_size: int = 4096, passes=None) -> np.ndarray:
    """The values of rank `ranks` in sorted x, exactly as np.partition gives them, in a fraction of its time.

    Each rank is bracketed by a sorted systematic probe of x with a margin of five binomial standard
    deviations. One pass per bracket (`bracketed` of sim.kernels or sim.kernels_numpy) counts the
    values below it and gathers those inside, and only those are partitioned. If a bracket misses, the
    full partition is used, so the result is always exact; the brackets only decide the speed. (A full
    partition of fresh data costs several times what repeated timings of one array suggest: its
    branches are unpredictable.) The monthly income quantiles bracket last month's values instead
    (the passes' income_quantiles).
    """
    n = x.size
    if passes is None:
        from . import kernels_numpy as passes
    if n <= 4 * probe_size:
        return np.partition(x, ranks)[ranks]
    else:
        probe = np.sort(x[:: n // probe_size])
        m = probe.size
        lo = np.empty(len(ranks))
        hi = np.empty(len(ranks))
        for j, r in enumerate(ranks):
            p = (r + 0.5) / n
            half = 5.0 * math.sqrt(m * p * (1 - p)) + 2
            lo_i, hi_i = int(p * m - half), int(p * m + half)
            lo[j] = probe[lo_i] if lo_i >= 0 else -np.inf
            hi[j] = probe[hi_i] if hi_i < m else np.inf
    return _select(x, ranks, *passes.bracketed(x, lo, hi), passes)


_NO_BONUS = (0.0,) * N_LEVELS  # prizes by level in a month without any


def numpy_sum(values: list[float]) -> float:
    """What np.sum gives for these float64 values, summed in Python: a month's row sums vectors of
    eight levels, and numpy's call costs more than the additions. numpy adds to its identity, +0.0,
    a pairwise sum, which for fewer than eight values adds them one by one from -0.0 and for eight
    (one block) is ((v0+v1)+(v2+v3))+((v4+v5)+(v6+v7)); longer lists are numpy's own sum.
    tests/test_kernels.py compares them, signed zeros, infinities and NaN included."""
    n = len(values)
    if n < 8:
        total = -0.0
        for v in values:
            total += v
        return 0.0 + total
    if n == 8:
        v0, v1, v2, v3, v4, v5, v6, v7 = values
        return 0.0 + (((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)))
    return float(np.sum(np.asarray(values, dtype=np.float64)))


_NO_BRACKET = np.empty(0)  # no bracket (empty: nothing can write into it; writeable, as the compiled passes take it)


def _select(x: np.ndarray, ranks: list[int], below, values, starts, passes) -> np.ndarray:
    """The order statistics from the brackets' counts and values (`bracketed`): a partition of the
    values inside each bracket, or of all of x where the bracket missed its rank (the passes'
    select_ranks: a value of given rank is the same whichever selection finds it)."""
    return passes.select_ranks(x, np.array(ranks, dtype=np.int64), below, values, starts)


def column_names() -> list[str]:
    """All columns of the monthly series except `date`, in order."""
    cols = ["workers", "skilled_workers", "high_skill_workers", "high_skill_share", "high_skill_share_workforce"]
    cols += [f"level_{k}" for k in range(N_LEVELS)]
    cols += ["income_mean", "income_median", "income_p10", "income_p90", "middle_income_share"]
    cols += [f"income_mean_level_{k}" for k in range(N_LEVELS)]
    cols += [f"promotions_{c}" for c in CHANNELS]
    cols += ["entries", "exits", "exits_retirement", "exits_quit", "firm_moves"]
    cols += ["trained", "competition_participants", "studios", "studio_members"]
    cols += [f"spend_{lever}_{funder}" for lever, funder in SPEND_ACCOUNTS]
    cols += ["spend_total"]
    return cols


def measure(model) -> dict[str, float]:
    """One row of the monthly series from the model's current state and this month's flows."""
    wf = model.workforce
    level, weight, pay = wf.level, wf.weight, wf.pay
    counts = model.ledger.count.copy()
    model.level_counts = counts
    pay_by_level = model.ledger.pay
    bonus_idx = model.bonus_slots
    bonus_by_level = np.bincount(level[bonus_idx], weights=wf.bonus[bonus_idx] * weight[bonus_idx],
                                 minlength=N_LEVELS).tolist() if bonus_idx.size else _NO_BONUS
    wi = model.wage_index
    by_level = counts.tolist()
    workers = numpy_sum(by_level)
    skilled = numpy_sum(by_level[SKILLED_MIN:])
    high = numpy_sum(by_level[HIGH_SKILL_MIN:])
    row: dict[str, float] = {
        "workers": workers,
        "skilled_workers": skilled,
        "high_skill_workers": high,
        "high_skill_share": high / skilled if skilled > 0 else 0.0,
        "high_skill_share_workforce": high / workers if workers > 0 else 0.0,
    }
    row.update(zip(_LEVEL_KEYS, by_level))
    # 12 x wage index x pay + prizes, by level, as numpy's float64 operations give it
    annual_scale = 12.0 * wi
    annual = [annual_scale * p + b for p, b in zip(pay_by_level.tolist(), bonus_by_level)]
    row["income_mean"] = numpy_sum(annual) / workers if workers > 0 else 0.0
    stride = max(1, -(-wf.n // QUANTILE_SAMPLE))
    # the income sample, the middle-income count and the quantiles, from windows around last month's, in one call
    # (numpy compares a float32 array with a Python float in float32, hence the float32 threshold)
    last = getattr(model, "income_quantiles", None)  # last month's, in units of the wage index
    guess = None if last is None else [q * wi for q in last]
    scale, threshold = np.float32(12.0 * wi), np.float32(model.cfg.wages.middle_income_threshold)
    if guess is not None and min(guess) > 0:  # windows around last month's (GUESS_WINDOWS), in one call
        size, n_mid, q10, q50, q90 = wf.kernels.income_quantiles(
            pay, wf.bonus, stride, scale, threshold, np.array(guess), GUESS_WINDOWS, QUANTILES, wf.threads)
    else:
        sample, n_mid, _, _, _ = wf.kernels.income_pass(pay, wf.bonus, stride, scale, threshold, _NO_BRACKET,
                                                          _NO_BRACKET)
        size = sample.size
        if size:
            # Lower empirical quantiles (inverted CDF): order statistics found by one partition.
            ranks = [max(0, math.ceil(q * size) - 1) for q in QUANTILES.tolist()]
            q10, q50, q90 = order_statistics(sample, ranks, passes=wf.kernels)
    if size:
        model.income_quantiles = (float(q10) / wi, float(q50) / wi, float(q90) / wi)
        mid = n_mid / size  # np.mean of the comparison: exact for any count below 2**53
    else:
        q10 = q50 = q90 = mid = 0.0
    row.update(income_median=float(q50), income_p10=float(q10), income_p90=float(q90), middle_income_share=mid)
    row.update(zip(_INCOME_LEVEL_KEYS, [a / c if c > 0 else 0.0 for a, c in zip(annual, by_level)]))
    flows = model.flows
    row.update(zip(_FLOW_KEYS, _flows_of(flows)))
    levers = {lv.name: lv for lv in model.levers}
    row["trained"] = levers["training"].month_reach if "training" in levers else 0.0
    row["competition_participants"] = levers["competition"].month_reach if "competition" in levers else 0.0
    studio = levers.get("studio")
    row["studios"] = studio.studios if studio is not None and studio.active else 0.0
    row["studio_members"] = studio.month_reach if studio is not None else 0.0
    total = 0.0
    for (lever, funder), key in zip(SPEND_ACCOUNTS, _SPEND_KEYS):
        if lever == "certification":
            v = model.certification_spend
        else:
            v = levers[lever].month_spend[funder] if lever in levers else 0.0
        row[key] = v
        total += v
    row["spend_total"] = total
    return row
