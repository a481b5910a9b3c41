"""The initial population drawn in place (sim.demography.initial_population) is the one the
previous code drew with a new array for every step: the same draws in the same order and the same
float32 operations, so every column is equal to the bit, whichever passes the workforce uses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sim import kernels, kernels_numpy
from sim.api import compose
from sim.config import RunConfig
from sim.demography import (MIN_AGE_MONTHS, N_LEVELS, Firms, allocate, initial_population, make_firms, mean_one,
                            retirement_age_months, wait_months)
from sim.streams import RandomStreams
from sim.workforce import FIELDS, NO_MONTH, Workforce


def previous_initial_population(wf: Workforce, cfg, firms: Firms, now: int, rng: np.random.Generator,
                                n: int | None = None, skilled_mix: list[float] | None = None) -> None:
    """sim.demography.initial_population before its draws went in place (commit e721928), verbatim."""
    reg, beh = cfg.region, cfg.behaviour
    n = cfg.n_agents if n is None else int(n)
    skilled = np.asarray(reg.skilled_mix if skilled_mix is None else skilled_mix)
    mix = np.concatenate([[reg.uncertified_share], (1 - reg.uncertified_share) * skilled])
    counts = allocate(n, mix)
    level = np.repeat(np.arange(N_LEVELS, dtype=np.int8), counts)
    rng.shuffle(level)
    idx = wf.append(n)
    wf.level[idx] = level
    female = rng.random(n, dtype=np.float32) < np.float32(reg.female_share)
    wf.female[idx] = female
    mean_age = (reg.mean_age + reg.level_age_step * (level.astype(np.float32) - 2.0)) * 12
    # Ages in months from the normal truncated to working age: redraw those outside [16, retirement).
    age = (rng.standard_normal(n, dtype=np.float32) * np.float32(reg.age_sd * 12) + mean_age).astype(np.int16)
    ret_age = retirement_age_months(female, now - age.astype(np.int64), cfg.retirement, wf.kernels)
    bad = np.flatnonzero((age < MIN_AGE_MONTHS) | (age >= ret_age))
    for _ in range(200):
        if bad.size == 0:
            break
        age[bad] = (rng.standard_normal(bad.size, dtype=np.float32) * np.float32(reg.age_sd * 12)
                    + mean_age[bad]).astype(np.int16)
        ret_age[bad] = retirement_age_months(female[bad], now - age[bad].astype(np.int64), cfg.retirement, wf.kernels)
        bad = bad[(age[bad] < MIN_AGE_MONTHS) | (age[bad] >= ret_age[bad])]
    age[bad] = MIN_AGE_MONTHS  # only if the normal puts (almost) no mass in working age
    ret_age[bad] = retirement_age_months(female[bad], now - age[bad].astype(np.int64), cfg.retirement, wf.kernels)
    wf.age[idx] = age
    wf.retire_age[idx] = ret_age
    wf.firm[idx] = firms.sample(rng, n)
    wf.aptitude[idx] = mean_one(rng.standard_normal(n, dtype=np.float32), beh.aptitude_sd)  # lognormal_mean_one
    wf.wage_factor[idx] = np.exp(rng.standard_normal(n, dtype=np.float32) * np.float32(cfg.wages.individual_sd))
    # Time at level: uniform over twice the statutory wait (levels 0-4) or ten years (5-7); no older
    # than the time since age 16 allows. Progress: what that time at the worker's own speed gives,
    # scaled down by a uniform factor so not everyone who has served the wait is ready at once.
    span = np.concatenate([wait_months() * 2, np.full(3, 120)]).astype(np.float32)[level]
    mal = np.minimum(rng.random(n, dtype=np.float32) * span, age - MIN_AGE_MONTHS).astype(np.int16)
    wf.months_at_level[idx] = mal
    rate = np.concatenate([1.0 / np.asarray(beh.mastery_months), np.zeros(3)]).astype(np.float32)[level]
    # a uniform factor in [2/3, 4/3] x initial_progress_scale (the unobserved distance to the next standard)
    spread = np.float32(2 / 3) + np.float32(2 / 3) * rng.random(n, dtype=np.float32)
    wf.progress[idx] = mal * rate * wf.aptitude[idx] * spread * np.float32(beh.initial_progress_scale)
    wf.credit[idx] = 0
    wf.studio_since[idx] = NO_MONTH
    wf.comp_month[idx] = NO_MONTH
    wf.weight[idx] = np.float32(cfg.weight)
    wf.bonus[idx] = 0


def _config(region: str, n: int, **changes) -> RunConfig:
    cfg = dataclasses.replace(RunConfig() if region == "chongqing" else compose(region), n_agents=max(n, 100))
    behaviour = {k: v for k, v in changes.items() if hasattr(cfg.behaviour, k)}
    place = {k: v for k, v in changes.items() if k not in behaviour}
    return dataclasses.replace(cfg, behaviour=dataclasses.replace(cfg.behaviour, **behaviour),
                               region=dataclasses.replace(cfg.region, **place))


@pytest.mark.parametrize("passes", [kernels_numpy, kernels], ids=["numpy", "compiled"])
@pytest.mark.parametrize("region,n,already,changes", [
    ("chongqing", 20_000, 0, {}),
    ("national", 7_001, 5, {}),
    ("chongqing", 3, 0, {}),
    ("chongqing", 0, 2, {}),
    ("chongqing", 40_000, 0, {"aptitude_sd": 0.9, "initial_progress_scale": 1.7}),
    ("chongqing", 30_000, 7, {"age_sd": 14.0, "mean_age": 30.0}),  # many ages redrawn, several times
])
def test_the_initial_population_drawn_in_place_is_the_previous_one(passes, region, n, already, changes):
    cfg = _config(region, n, **changes)
    got, want = (Workforce(n + already + 10, passes) for _ in range(2))
    for wf in (got, want):
        wf.append(already)  # workers already there (zeros) are left as they are
    rngs = [RandomStreams(17).get("population", 0) for _ in range(2)]
    firms = make_firms(cfg, RandomStreams(17).get("firms", 0))
    now = 12 * 2012 + 9
    initial_population(got, cfg, firms, now, rngs[0], n=n)
    previous_initial_population(want, cfg, firms, now, rngs[1], n=n)
    assert got.n == want.n == n + already
    for name in FIELDS:
        a, b = got.column(name), want.column(name)
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8)), name
    assert rngs[0].bit_generator.state == rngs[1].bit_generator.state  # the stream left where it was left
    if n > 1000:  # and the draws are the model's: ages in working age, levels in their mix
        live = slice(already, already + n)
        assert (got.age[live] >= MIN_AGE_MONTHS).all() and (got.age[live] < got.retire_age[live]).all()
        assert (got.studio_since[live] == NO_MONTH).all()
        mix = np.bincount(got.level[live], minlength=N_LEVELS)
        unc = cfg.region.uncertified_share
        want_mix = allocate(n, np.concatenate([[unc], (1 - unc) * np.asarray(cfg.region.skilled_mix)]))
        assert np.array_equal(mix, want_mix)


def test_size_paths_share_their_months_only_with_paths_of_the_same_anchors_growth_and_scale():
    """SizePath.agents keeps the months it has worked out for every path of the same anchors, growth
    and scale (a sweep's runs ask for the same months): another growth, size or region gets its own,
    and every count is the one worked out afresh from persons()."""
    from sim import demography
    from sim.demography import SizePath

    demography._AGENTS_BY_PATH.clear()
    base = _config("chongqing", 20_000)
    variants = [base, dataclasses.replace(base, n_agents=30_000),
                dataclasses.replace(base, region=dataclasses.replace(base.region, growth_per_year=0.03)),
                _config("national", 20_000)]
    months = list(range(2010 * 12, 2036 * 12, 7))
    paths = [SizePath(cfg) for cfg in variants]
    for path in paths:
        for m in months:
            assert path.agents(m) == int(round(path.persons(m) * path.scale))
    again = SizePath(base)
    assert again._agents is paths[0]._agents  # shared with the first path of the same config
    assert len({id(p._agents) for p in paths}) == len(paths)  # and with none of the others
    assert [again.agents(m) for m in months] != [paths[2].agents(m) for m in months]
    assert [paths[1].agents(m) for m in months] != [paths[0].agents(m) for m in months]


@pytest.mark.parametrize("sd", [0.0, 0.25, 0.9])
def test_mean_one_in_place_is_the_same_float32s(sd):
    """fill_entrants turns the aptitude draws into factors in their own array: the same float32
    operations, so the same bits as with temporaries (and the sample mean near one)."""
    z = np.random.default_rng(8).standard_normal(50_001, dtype=np.float32)
    expected = mean_one(z, sd)
    work = z.copy()
    got = mean_one(work, sd, out=work)
    assert got is work and got.dtype == np.float32
    assert np.array_equal(got.view(np.int32), expected.view(np.int32))
    se = np.sqrt(np.expm1(sd * sd) / z.size)  # standard error of a mean-one log-normal's sample mean
    assert abs(float(expected.mean(dtype=np.float64)) - 1.0) < 5 * se + 1e-6  # 1e-6: float32 rounding
