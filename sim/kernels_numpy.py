"""The per-worker passes in numpy: the reference implementation of sim.kernels.

Same functions, same arguments, same results to the bit (tests/test_compiled.py). Small runs use
these: loading numba's compiled code costs about a quarter of a second per process, more than the
kernels save below a few hundred thousand agents (sim.passes chooses; benchmarks/README.md).
"""

from __future__ import annotations

import math

import numpy as np

NO_MONTH = -32000


def age_and_retire(age, retire_age, out):
    age += np.int16(1)
    return np.flatnonzero(age >= retire_age)


def learn(progress, gain, months_at_level, threads):
    progress += gain
    months_at_level += np.int16(1)


def refresh(idx, level, studio_since, aptitude, firm, wage_factor, gain, pay,
            level_rate, studio_mult, level_pay, firm_premium, pay_floor):
    lv = level[idx]
    g = level_rate[lv] * aptitude[idx]
    g[studio_since[idx] != NO_MONTH] *= studio_mult
    gain[idx] = g
    p = level_pay[lv] * firm_premium[firm[idx]] * wage_factor[idx]
    pay[idx] = np.maximum(p, pay_floor[lv])


def refresh_all(level, *columns_and_tables):
    """refresh of every slot (the compiled passes skip the index; these are for small workforces)."""
    refresh(np.arange(level.size), level, *columns_and_tables)


def ledger_add_all(level, weight, pay, count, pay_sum, sign):
    ledger_add(np.arange(level.size), level, weight, pay, count, pay_sum, sign)


def ledger_add(idx, level, weight, pay, count, pay_sum, sign):
    lv = level[idx]
    w = weight[idx].astype(np.float64)
    count += sign * np.bincount(lv, weights=w, minlength=8)
    pay_sum += sign * np.bincount(lv, weights=w * pay[idx], minlength=8)


def eligible(progress, level, months_at_level, credit, waits, top, out):
    ready = np.flatnonzero(progress >= 1.0)
    lvl = level[ready]
    ready, lvl = ready[lvl < top], lvl[lvl < top]
    return ready[months_at_level[ready] >= np.asarray(waits)[lvl] - credit[ready]]


def sitting_odds(cand, level, credit, studio_since, sit_untrained, sit_trained, pass_prob):
    lvl = level[cand]
    prepared = (credit[cand] > 0) | (studio_since[cand] != NO_MONTH)
    return np.where(prepared, np.float32(sit_trained), sit_untrained[lvl]) * pass_prob[lvl]


def eligible_odds(progress, level, months_at_level, credit, studio_since, waits, top,
                  sit_untrained, sit_trained, pass_prob, out, out_odds, threads):
    cand = eligible(progress, level, months_at_level, credit, waits, top, out)
    return cand, sitting_odds(cand, level, credit, studio_since, sit_untrained, sit_trained, pass_prob)


def keep_below(cand, u, odds):
    return cand[u < odds]


def train(idx, progress, credit, gain, credit_months, cap):
    """Training places taken by the distinct slots `idx` (sim.levers.training): progress towards the
    next standard up by `gain` (float32), the wait credit up by `credit_months`, at most `cap` (int16)."""
    progress[idx] += gain
    credit[idx] = np.minimum(credit[idx] + credit_months, cap)


def fast_track(rng, members, progress, level, hi, rate):
    """Studio members promoted out of turn this month (sim.levers.studio, rule_fast_track): of the
    members (distinct slots) in slot order, those who met the next standard at a member level, each
    with probability `rate` (one double drawn per such member, in slot order)."""
    members = np.sort(members)
    ready = members[(progress[members] >= 1.0) & (level[members] <= hi)]
    return ready[rng.random(ready.size) < rate]


def compete(rng, part, progress, half_log_aptitude, luck_sd, prep_gain):
    """A competition round's scores (sim.levers.competition): each participant's luck (normal, sd
    `luck_sd`, drawn in the order of `part`), score = progress + 0.5 log(aptitude) (given, float32)
    + luck in float64, and then the preparation's gain added to their progress (float32). `part`:
    distinct slots (sample_distinct's), so each participant gains once."""
    luck = rng.normal(0.0, luck_sd, part.size)
    score = progress[part] + half_log_aptitude + luck
    progress[part] += prep_gain
    return score


def studio_roster(studio_since, level, t, term, lo, hi, stay, leave, threads):
    """Studio members (studio_since set), split into those who stay and those whose term is over or
    whose level left the member levels (sim.levers.studio), both in slot order."""
    members = np.flatnonzero(studio_since != NO_MONTH)
    lvl = level[members]
    done = (t - studio_since[members].astype(np.int64) >= term) | (lvl > hi) | (lvl < lo)
    return members[~done], members[done]


def promote(idx, level, months_at_level, progress, credit, weight,
            studio_since, aptitude, firm, wage_factor, gain, pay, count, pay_sum,
            level_rate, studio_mult, level_pay, firm_premium, pay_floor, threads):
    ledger_add(idx, level, weight, pay, count, pay_sum, -1.0)
    level[idx] += 1
    months_at_level[idx] = 0
    progress[idx] = 0
    credit[idx] = 0
    refresh(idx, level, studio_since, aptitude, firm, wage_factor, gain, pay,
            level_rate, studio_mult, level_pay, firm_premium, pay_floor)
    ledger_add(idx, level, weight, pay, count, pay_sum, 1.0)


def relocate(idx, new_firm, level, weight, studio_since, aptitude, firm, wage_factor, gain, pay, count, pay_sum,
             level_rate, studio_mult, level_pay, firm_premium, pay_floor, threads):
    ledger_add(idx, level, weight, pay, count, pay_sum, -1.0)
    firm[idx] = new_firm
    studio_since[idx] = NO_MONTH
    refresh(idx, level, studio_since, aptitude, firm, wage_factor, gain, pay,
            level_rate, studio_mult, level_pay, firm_premium, pay_floor)
    ledger_add(idx, level, weight, pay, count, pay_sum, 1.0)


def enter(idx, new_level, new_female, new_age, new_retire_age, new_firm, new_aptitude, new_wage_factor,
          new_weight, level, female, age, retire_age, firm, aptitude, wage_factor, months_at_level, progress,
          credit, studio_since, comp_month, weight, bonus, gain, pay, count, pay_sum,
          level_rate, studio_mult, level_pay, firm_premium, pay_floor, threads):
    level[idx] = new_level
    female[idx] = new_female
    age[idx] = new_age
    retire_age[idx] = new_retire_age
    firm[idx] = new_firm
    aptitude[idx] = new_aptitude
    wage_factor[idx] = new_wage_factor
    months_at_level[idx] = 0
    progress[idx] = 0
    credit[idx] = 0
    studio_since[idx] = NO_MONTH
    comp_month[idx] = NO_MONTH
    weight[idx] = new_weight
    bonus[idx] = 0
    refresh(idx, level, studio_since, aptitude, firm, wage_factor, gain, pay,
            level_rate, studio_mult, level_pay, firm_premium, pay_floor)
    ledger_add(idx, level, weight, pay, count, pay_sum, 1.0)


def accept_levels(slots, level, lo, hi, progress, by_progress):
    lvl = level[slots]
    a = ((lvl >= lo) & (lvl <= hi)).astype(np.float32)
    if by_progress:
        a *= np.clip(progress[slots], 0.05, 1.0)
    return a


def accept_training(slots, level, top, mode, progress, firm, levy, levy_max, by_levy):
    lvl = level[slots]
    a = (lvl <= top).astype(np.float32)
    if mode == 1:
        a *= (top + 1 - lvl).astype(np.float32) / (top + 1)
    elif mode == 2:
        a *= np.clip(progress[slots], 0.05, 1.0)
    if by_levy:
        a *= levy[firm[slots]] / levy_max
    return a


def accept_studio(slots, level, lo, hi, studio_since):
    lv = level[slots]
    return ((lv >= lo) & (lv <= hi) & (studio_since[slots] == NO_MONTH)).astype(np.float32)


def shuffle(rng, x):
    """Shuffle a 1-D array in place (numpy's rng.shuffle)."""
    rng.shuffle(x)


def firm_draws(rng, k, alias_prob, alias):
    """k firms by Walker's alias method (sim.demography.Firms.sample): a firm and a uniform each."""
    i = rng.integers(0, alias_prob.size, k, dtype=np.int32)
    u = rng.random(k, dtype=np.float32)
    return np.where(u < alias_prob[i], i, alias[i])


def entrant_draws(rng, k, female_share, age_mean, age_sd, min_age, max_age, alias_prob, alias, s2, s3, rest,
                  junior_share, wage_sd):
    """The draws of k entrants (sim.demography.fill_entrants), in this order: the level's uniform, sex,
    age (normal, years), firm, the aptitude's float32 standard normal and the log wage factor (normal).
    Returns (level, female, age in months as int16, firm, aptitude's normals, log wage factors); the
    caller takes the exponentials (numpy's, whichever passes draw)."""
    u_junior = rng.random(k)
    female = rng.random(k) < female_share
    age = np.clip(rng.normal(age_mean, age_sd, k) * 12, min_age, max_age)
    firm = firm_draws(rng, k, alias_prob, alias)
    z_aptitude = rng.standard_normal(k, dtype=np.float32)
    log_wage = rng.normal(0.0, wage_sd, k)
    level = np.where(u_junior < s3, 3, np.where(u_junior < s3 + s2, 2, 0)).astype(np.int8)
    junior = (u_junior >= s2 + s3) & ((u_junior - s2 - s3) / rest < junior_share)
    level[junior] = 1
    return level, female, age.astype(np.int16), firm, z_aptitude, log_wage


def train_places(rng, places, n, sampler, level, top, progress, mode, firm, levy, levy_max, studio_since, credit,
                 gain, credit_months, cap):
    """A month's training places (sim.levers.training), funder by funder (government, then employer):
    `places[f]` rounded to a count by one draw (sim.sampling.stochastic_round), that many distinct workers
    drawn by their training acceptance (sim.sampling.sample_distinct with `sampler`'s pilot; employer
    places weighted by the firm's levy), and `train` given to them. Returns the places filled per funder."""
    from .sampling import Acceptance, sample_distinct, stochastic_round  # (its numpy passes by default)

    reached = np.zeros(len(places), dtype=np.int64)
    for f, x in enumerate(places.tolist()):
        accept = Acceptance(Acceptance.TRAINING, level, 0, top, progress, f == 1, mode, firm, levy, levy_max,
                            studio_since)
        idx = sample_distinct(rng, n, stochastic_round(rng, x), accept, pilot=sampler[0])
        if idx.size:
            train(idx, progress, credit, gain, credit_months, cap)
        reached[f] = idx.size
    return reached


def sorted_distinct(x):
    """np.unique of an integer array (its distinct values, sorted, in its dtype), by sorting and
    keeping each first copy. np.unique asks whether the array is masked, which imports numpy.ma the
    first time (11 ms of every process's first call; a default run makes one in its first month).
    For integers only: NaN is never equal to itself, so every NaN of a float array would be kept."""
    out = np.sort(np.ravel(x))
    if out.size > 1:
        first = np.empty(out.size, dtype=bool)
        first[0] = True
        np.not_equal(out[1:], out[:-1], out=first[1:])
        out = out[first]
    return out


def union_sorted(a, b):
    """np.union1d for integer arrays (`sorted_distinct`)."""
    return sorted_distinct(np.concatenate((a, b), axis=None))


def minus_sorted(a, b):
    return np.setdiff1d(a, b, assume_unique=True)


def firm_payroll(firm, pay, weight, n_firms):
    return np.bincount(firm, weights=pay * weight, minlength=n_firms)


def retirement_age(female, birth_month, reform, base_f, base_m, step_f, step_m, max_f, max_m):
    base = np.where(female, base_f, base_m).astype(np.int64)
    step = np.where(female, step_f, step_m)
    max_delay = np.where(female, max_f, max_m)
    original = birth_month.astype(np.int64) + base
    delay = np.where(original >= reform, np.minimum((original - reform) // step + 1, max_delay), 0)
    return (base + delay).astype(np.int16)



def ages_from_normals(z, level, mean_age, scale, age):
    """Ages in months of new workers (sim.demography.initial_population): float32 standard normals z x
    scale + the level's float32 mean age, truncated to int16 into `age`. z is scratch (overwritten).
    The scale and mean ages are taken as float32 whatever float they come as."""
    np.multiply(z, np.float32(scale), out=z)
    np.add(z, np.asarray(mean_age, dtype=np.float32)[level], out=z)
    age[...] = z  # float32 to int16 as astype casts



def settle_ages(rng, level, female, age, ret_age, now, mean_age, scale, min_age, max_rounds, *reform):
    """Retirement ages (`retirement_age`, `reform` its arguments after the birth months) of new
    workers aged `age` in absolute month `now`, and the ages outside [min_age, retirement) drawn again
    (float32 normals x scale + the level's mean age), at most `max_rounds` times; those still outside
    are put at min_age (sim.demography.initial_population)."""
    scale, mean_age = np.float32(scale), np.asarray(mean_age, dtype=np.float32)
    ret_age[...] = retirement_age(female, np.subtract(now, age, dtype=np.int64), *reform)
    bad = np.flatnonzero((age < min_age) | (age >= ret_age))
    for _ in range(max_rounds):
        if bad.size == 0:
            break
        age[bad] = (rng.standard_normal(bad.size, dtype=np.float32) * scale + mean_age[level[bad]]).astype(np.int16)
        ret_age[bad] = retirement_age(female[bad], now - age[bad].astype(np.int64), *reform)
        bad = bad[(age[bad] < min_age) | (age[bad] >= ret_age[bad])]
    age[bad] = min_age  # only if the normal puts (almost) no mass in working age
    ret_age[bad] = retirement_age(female[bad], now - age[bad].astype(np.int64), *reform)

def tenure_and_progress(tenure_u, spread_u, level, age, span, rate, aptitude, two_thirds, scale, min_age,
                        months_at_level, progress):
    """Time at level and progress of new workers (sim.demography.initial_population) from two float32
    uniforms each: months = uniform x the level's span, no more than the months since `min_age`
    (truncated to int16); progress = months x the level's rate x aptitude x a factor uniform in
    [2/3, 4/3] x scale, in float32. The uniforms are scratch (overwritten); the scalars and tables are
    taken as float32 whatever float they come as."""
    two_thirds, scale = np.float32(two_thirds), np.float32(scale)
    span, rate = np.asarray(span, dtype=np.float32), np.asarray(rate, dtype=np.float32)
    np.multiply(tenure_u, span[level], out=tenure_u)
    np.minimum(tenure_u, age - np.int16(min_age), out=tenure_u)
    months_at_level[...] = tenure_u  # float32 to int16 as astype casts
    np.multiply(two_thirds, spread_u, out=spread_u)
    np.add(two_thirds, spread_u, out=spread_u)
    np.multiply(months_at_level, rate[level], out=progress)
    np.multiply(progress, aptitude, out=progress)
    np.multiply(progress, spread_u, out=progress)
    np.multiply(progress, scale, out=progress)

#: rates below this give no slot and draw nothing (skip_sample): n p is then under 1e-3 for any
#: workforce a run can hold. A guard: below about 1e-17 a geometric gap, E / p, no longer fits an int64
#: (numpy's geometric returns negative gaps, so negative slots, which the compiled passes would read
#: out of bounds). The model's own rates stay above it: a positive monthly hazard is at least 1.1e-16
#: (a turnover below about 1e-11 a year gives one under 1e-12, so no separation), and the samplers'
#: rates are above 1e-9.
NEGLIGIBLE_RATE = 1e-12


def skip_sample(rng, n, p):
    if p >= 1.0:
        return np.arange(n)
    if p < NEGLIGIBLE_RATE:
        return np.empty(0, dtype=np.int64)
    out = []
    pos = -1
    while True:
        m = int(max(16, (n - pos) * p * 1.1 + 6 * np.sqrt((n - pos) * p + 1)))
        steps = np.cumsum(rng.geometric(p, m)) + pos
        out.append(steps[steps < n])
        if steps[-1] >= n:
            break
        pos = int(steps[-1])
    return np.concatenate(out)


def split_separations(cand, u, level, hazard, leave_share):
    h = hazard[level[cand]]
    sep = u < h
    leave = u < h * leave_share
    return cand[leave], cand[sep & ~leave]


def depart(rng, age, retire_age, out, level, hazard, p_max, leave_share, alias_prob, alias, weight, studio_since,
           aptitude, firm, wage_factor, gain, pay, count, pay_sum, level_rate, studio_mult, level_pay, firm_premium,
           pay_floor, threads):
    """Who leaves this month, and the firm moves (phase a of WorkforceModel.step up to the entrants): ageing
    and retirement (rule_retirement); voluntary separations (prior_turnover, docs/model.md: candidates by
    geometric skipping at the highest hazard `p_max`, float32 uniforms scaled by it, split by level); a
    retiree neither quits nor moves; movers draw a new firm from the same stream and are relocated; all
    who left are taken out of the ledger. Returns (who left, in slot order; retirements; firm moves)."""
    retired = age_and_retire(age, retire_age, out)
    if p_max > 0 and age.size:
        cand = skip_sample(rng, age.size, p_max)
        u = rng.random(cand.size, dtype=np.float32) * np.float32(p_max)  # a float32 product
        leavers, movers = split_separations(cand, u, level, hazard, leave_share)
    else:
        leavers = movers = np.empty(0, dtype=np.int64)
    gone = union_sorted(retired, leavers)
    movers = minus_sorted(movers, retired)
    if movers.size:
        relocate(movers, firm_draws(rng, movers.size, alias_prob, alias), level, weight, studio_since, aptitude,
                 firm, wage_factor, gain, pay, count, pay_sum, level_rate, studio_mult, level_pay, firm_premium,
                 pay_floor, threads)
    if gone.size:
        ledger_add(gone, level, weight, pay, count, pay_sum, -1.0)
    return gone, retired.size, movers.size


def compact(leavers, n_new, n, columns):
    """sim.workforce.Workforce.replace when fewer enter than leave (n_new < len(leavers), sorted and
    distinct): the lowest leaver slots are kept for the entrants, and the live workers of the tail move
    into the holes below the new end, in slot order, in every column. Returns the new number of slots."""
    holes = leavers[n_new:]
    new_n = n - holes.size
    low_holes = holes[holes < new_n]
    tail_dead = np.zeros(n - new_n, dtype=bool)
    tail_dead[holes[holes >= new_n] - new_n] = True
    movers = np.flatnonzero(~tail_dead) + new_n
    if movers.size:
        for col in columns:
            col[low_holes] = col[movers]
    return new_n


def bracketed(x, lo, hi):
    if x.dtype == np.float32:  # float32 bounds that equal the float64 ones compare the same, 7x as fast
        with np.errstate(over="ignore"):  # a bound beyond float32's range: inf, unequal, so not taken
            lo32, hi32 = np.asarray(lo, dtype=np.float32), np.asarray(hi, dtype=np.float32)
        if np.array_equal(lo32, lo) and np.array_equal(hi32, hi):
            lo, hi = lo32, hi32
    below = np.array([np.count_nonzero(x < a) for a in lo], dtype=np.int64)
    inside = [x[(x >= a) & (x <= b)] for a, b in zip(lo, hi)]
    starts = np.concatenate([[0], np.cumsum([v.size for v in inside])]).astype(np.int64)
    return below, np.concatenate(inside) if inside else x[:0], starts


def select_ranks(x, ranks, below, values, starts):
    """Values of rank `ranks` in sorted x from the brackets of `bracketed`: a partition of the values
    inside each bracket, or of all of x where the bracket missed its rank (sim.metrics._select)."""
    out = np.empty(len(ranks), dtype=x.dtype)
    for j, r in enumerate(ranks.tolist()):
        inside = values[starts[j]:starts[j + 1]]
        k = r - int(below[j])
        out[j] = np.partition(inside, k)[k] if 0 <= k < inside.size else np.partition(x, r)[r]
    return out


def income_pass(pay, bonus, stride, scale, threshold, lo, hi):
    sample = pay[::stride] * scale + bonus[::stride]
    n_mid = int(np.count_nonzero(sample >= threshold))
    return (sample, n_mid) + bracketed(sample, lo, hi)


def window(guess, down, up):
    """Brackets guess x down .. guess x up around last month's quantiles, as float32 values (both
    implementations then compare the same values)."""
    g = np.asarray(guess, dtype=np.float64)
    return (g * down).astype(np.float32).astype(np.float64), (g * up).astype(np.float32).astype(np.float64)


def income_quantiles(pay, bonus, stride, scale, threshold, guess, windows, quantiles, threads):
    """The month's income quantiles when last month's are known (sim.metrics.measure): the brackets
    of the widest window (`window`; the compiled passes try the narrower ones first: the values are the
    same), `income_pass`, and the lower empirical quantiles `quantiles` (float64) of the sample found in
    them (`select_ranks`; a bracket that misses its rank falls back to a full partition, so the values
    are always exact). Returns (sample size, how many reach `threshold`, then one Python float per
    quantile; zeros for an empty sample)."""
    lo, hi = window(guess, 1.0 - windows[-1], 1.0 + windows[-1])
    sample, n_mid, below, values, starts = income_pass(pay, bonus, stride, scale, threshold, lo, hi)
    m = sample.size
    if m == 0:
        return (0, n_mid) + (0.0,) * quantiles.size
    ranks = np.array([max(0, math.ceil(q * m) - 1) for q in quantiles.tolist()], dtype=np.int64)
    return (m, n_mid) + tuple(select_ranks(sample, ranks, below, values, starts).tolist())


def warm() -> None:
    """Nothing to compile."""


def threads() -> int:
    """The numpy passes run on one thread (sim.kernels.threads)."""
    return 1
