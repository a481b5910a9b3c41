"""One history: alignment, the status-quo past shared by every scenario, no warm-up, sourced inputs."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from sim import WorkforceModel
from sim.alignment import agent_counts, apply_moves, plan_moves, take_states, target_counts, uncertified_moves
from sim.cli import CONFIG_DIR, compose_config
from sim.sources import load_targets
from sim.workforce import Workforce

from .conftest import with_lever


def _workforce(levels, progress):
    wf = Workforce(len(levels) + 8)
    idx = wf.append(len(levels))
    wf.level[idx] = levels
    wf.progress[idx] = progress
    wf.months_at_level[idx] = np.arange(len(levels)) % 50
    return wf


def test_alignment_hits_the_target_share_with_the_fewest_moves_and_the_readiest_workers():
    rng = np.random.default_rng(3)
    levels = rng.choice([1, 2, 3, 4], 2000, p=[0.4, 0.35, 0.2, 0.05]).astype(np.int8)
    wf = _workforce(levels, rng.random(2000).astype(np.float32))
    before = agent_counts(wf)
    for share in (0.40, 0.15):
        w = _workforce(wf.level.copy(), wf.progress.copy())
        targets = target_counts(agent_counts(w), share, None)
        moves = plan_moves(w, targets, np.random.default_rng(1))
        ready_l2 = np.sort(w.progress[w.level == 2])[::-1]
        moved = apply_moves(w, moves, np.random.default_rng(1))
        after = agent_counts(w)
        skilled = after[1:].sum()
        assert after[3:].sum() == round(share * skilled)  # exact, in agents
        assert moved == abs(after[3:].sum() - before[3:].sum())  # fewest moves: only across the 2|3 boundary
        assert after[1] == before[1] and after[4:].sum() == before[4:].sum()
        if share > before[3:].sum() / skilled:  # promoted: those nearest the standard
            (_, promoted, _), = moves
            assert np.all(np.sort(wf.progress[promoted])[::-1] == ready_l2[:promoted.size])


def test_alignment_to_a_level_mix_and_hot_deck_demotions():
    rng = np.random.default_rng(5)
    levels = rng.choice([1, 2, 3, 4, 5], 5000, p=[0.3, 0.3, 0.25, 0.1, 0.05]).astype(np.int8)
    wf = _workforce(levels, rng.random(5000).astype(np.float32))
    mix = [0.235, 0.05, 0.015]
    moves = plan_moves(wf, target_counts(agent_counts(wf), None, mix), np.random.default_rng(2))
    apply_moves(wf, moves, np.random.default_rng(2))
    c = agent_counts(wf)
    skilled = c[1:].sum()
    for k, s in zip((3, 4, 5), mix):
        assert abs(c[k] / skilled - s) <= 1.5 / skilled
    demoted = np.concatenate([d for _, _, d in moves])
    assert demoted.size > 0
    # a demoted worker takes a lower-level worker's state: no one is left ready above the standard
    assert np.all(wf.progress[demoted] < 1.0)


@pytest.mark.parametrize("closed", [1.0, 0.5])
def test_the_uncertified_share_is_aligned_by_random_apprentices_taking_junior_states(closed):
    """Too many at level 0: `closed` of the gap to the observed share is closed by apprentices drawn at
    random (not the readiest, whose pool the next rounds certify) taking random 初级工's ladder state."""
    rng = np.random.default_rng(11)
    n = 20000
    levels = rng.choice([0, 1, 2, 3, 4], n, p=[0.2, 0.3, 0.25, 0.2, 0.05]).astype(np.int8)
    wf = _workforce(levels, rng.random(n).astype(np.float32))
    wf.progress[wf.level == 1] += 5.0  # a 初级工's progress is told apart from an apprentice's
    before, progress_l0 = agent_counts(wf), wf.progress[wf.level == 0].copy()
    moved, donors = uncertified_moves(wf, 0.1, closed, np.random.default_rng(4))
    assert np.all(wf.level[moved] == 0) and np.all(wf.level[donors] == 1)
    take_states(wf, moved, donors)
    after = agent_counts(wf)
    want = round(before[0] + closed * (0.1 * n - before[0]))
    assert after[0] == want and after[1] == before[1] + (before[0] - want)  # exact, in agents
    assert np.array_equal(after[2:], before[2:])  # no other level moves
    assert np.all(wf.progress[moved] >= 5.0)  # each took a 初级工's state
    # drawn at random: the apprentices left keep their readiness (mean progress within 4 standard errors)
    left = wf.progress[wf.level == 0]
    assert abs(left.mean() - progress_l0.mean()) <= 4 * progress_l0.std() / np.sqrt(left.size)
    # too few at level 0 the other way round; nothing to close, nothing moves
    wf2 = _workforce(levels, rng.random(n).astype(np.float32))
    moved2, _ = uncertified_moves(wf2, 0.3, closed, np.random.default_rng(4))
    assert moved2.size == round(closed * (0.3 * n - before[0])) and np.all(wf2.level[moved2] == 1)
    assert uncertified_moves(wf2, 0.1, 0.0, np.random.default_rng(4))[0].size == 0


def test_an_aligned_uncertified_share_gives_the_observed_skilled_stock():
    """`region.history.uncertified_alignment=1`: the start state holds the observed skilled stock
    (cq_skilled_2022, through uncertified_share) and still the observed high-skill share; at 0 (the
    preset) the dynamics' own level 0, the run the preset's."""
    cfg = dataclasses.replace(compose_config(["region.history.uncertified_alignment=1"]), n_agents=8000)
    wf = WorkforceModel(cfg).workforce
    c = agent_counts(wf)
    assert c[0] == round(cfg.region.uncertified_share * wf.n)
    skilled = c[1:].sum() * cfg.weight
    assert skilled == pytest.approx(cfg.region.population * (1 - cfg.region.uncertified_share), rel=2e-4)
    assert c[3:].sum() / c[1:].sum() == pytest.approx(0.314, abs=1 / c[1:].sum())
    free = WorkforceModel(dataclasses.replace(cfg, region=dataclasses.replace(
        cfg.region, history=dataclasses.replace(cfg.region.history, uncertified_alignment=0.0)))).workforce
    assert agent_counts(free)[0] > c[0]  # the dynamics hold more without a certificate (docs/model.md 9)


def _policy_and_baseline(n=8000):
    base = dataclasses.replace(compose_config(["region=chongqing"]), n_agents=n)
    return base, with_lever(base, "training", intensity=3.0, allocation="near_standard")


def test_every_scenario_continues_the_same_history():
    base, policy = _policy_and_baseline()
    a, b = WorkforceModel(base), WorkforceModel(policy)
    for name in ("level", "progress", "months_at_level", "credit", "studio_since", "age", "firm"):
        assert np.array_equal(getattr(a.workforce, name), getattr(b.workforce, name)), name
    assert a.history_dates[0] == "2012-10" and a.history_dates[-1] == "2022-12"
    assert a.row["high_skill_share"] == pytest.approx(0.314, abs=1e-4)  # aligned to cq_hs_2022
    assert a.series(history=True)["date"].iloc[0] == "2012-10"


def test_history_hidden_state_comes_from_the_dynamics():
    m = WorkforceModel(dataclasses.replace(compose_config([]), n_agents=8000))
    wf = m.workforce
    # studio terms and training credit exist at the start state (they are 0 after a cold start)
    assert (wf.studio_since != -32000).sum() > 0
    assert (wf.credit > 0).sum() > 0
    # the alignments move few agents: at most 2% of the workforce in any one year
    assert max(m.aligned.values()) <= 0.02 * wf.n


ROUND_MONTHS = ("03", "06", "09", "12")


@pytest.mark.slow  # eighteen histories: about a minute
@pytest.mark.parametrize("closed", [0, 1])
@pytest.mark.parametrize("region", ["chongqing", "national", "zhong_county"])
def test_no_warm_up_after_the_start(region, closed):
    """Every assessment round of the first 24 months promotes within 30% of the mean round of
    months 25-48, per worker, on each of three seeds; at both ends of the uncertified share's alignment."""
    cfg = compose_config([f"region={region}", "n_agents=20000", f"region.history.uncertified_alignment={closed}"])
    for seed in (1, 2, 3):
        c = dataclasses.replace(cfg, seed=seed,
                                horizon=dataclasses.replace(cfg.horizon, end_year=cfg.start_year + 3))
        s = WorkforceModel(c).run().series().iloc[1:].reset_index(drop=True)
        rounds = s[s["date"].str[5:].isin(ROUND_MONTHS)]
        rate = (rounds["promotions_certification"] / rounds["workers"]).to_numpy()
        first, later = rate[:8], rate[8:16]
        ratio = first / later.mean()
        assert np.all(np.abs(ratio - 1) <= 0.30), (region, seed, ratio.round(2))


SOURCE_WORDS = ("derived", "structural", "not forecast-shaping")
LABELS = {"name", "label_en", "label_zh", "high_skill_target", "high_skill_target_year", "observed"}


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONFIG_DIR / "region").glob("*.yaml")))
def test_every_forecast_shaping_input_has_a_source_row_or_a_range(preset):
    rows = set(load_targets())
    path = CONFIG_DIR / "region" / f"{preset}.yaml"
    cfg = compose_config([f"region={preset}"])
    ranges = cfg.region.structural
    above: list[str] = []  # the comment lines just above a key also give its source
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            above.append(line)
            continue
        m = re.match(r"^([a-z_]+):\s*([^#]*?)\s*(#\s*(.*))?$", line)
        block, above = " ".join(above), []
        if not m or not m.group(2) or m.group(1) in LABELS:
            continue
        key, comment = m.group(1), (m.group(4) or "") + " " + block
        cited = {w for w in re.findall(r"[A-Za-z0-9]+_[A-Za-z0-9_]+", comment) if w in rows}
        if "structural" in comment:
            assert f"region.{key}" in ranges, f"{preset}: {key} says structural but has no range"
            lo, hi = ranges[f"region.{key}"]
            assert lo <= getattr(cfg.region, key) <= hi
        elif "not forecast-shaping" not in comment:
            assert cited, f"{preset}: {key} ({comment!r}) cites no targets.csv row and has no range"
    for key, (lo, hi) in ranges.items():
        assert lo < hi, (preset, key)
    # a range's reason is written next to it
    text = path.read_text(encoding="utf-8")
    for key in ranges:
        i = text.index(f"  {key}:")
        before = text[:i].splitlines()[-1]
        assert "#" in before or "#" in text[i:].splitlines()[0], f"{preset}: range of {key} without a reason"


def test_history_observations_match_their_targets_rows():
    rows = load_targets()
    nat = compose_config(["region=national"]).region.history
    for date, rid in (("2009-12", "nat_hs_2009"), ("2011-12", "nat_hs_2011"), ("2016-12", "nat_hs_2016"),
                      ("2021-12", "nat_hs_2021")):
        assert nat.high_skill_share[date] == pytest.approx(rows[rid].number)
    assert nat.level_share["2021-12"] == pytest.approx([rows[f"nat_mix_2021_L{k}"].number for k in (3, 4, 5)])
    assert nat.skilled_workers["2011-12"] == rows["nat_skilled_2011"].number
    cq = compose_config(["region=chongqing"]).region.history
    assert cq.high_skill_share == {"2022-10": rows["cq_hs_2022_10"].number, "2022-12": rows["cq_hs_2022"].number}


@pytest.mark.slow
def test_chongqing_october_to_december_consistency(tmp_path):
    """skillsim-calibrate region=chongqing: the model's December 2022 from its October state."""
    from sim.studies import calibrate as cal

    said: list[str] = []
    out = cal.check_chongqing(compose_config(["region=chongqing"]), {"n_agents": 50000, "replicates": 4,
                                                                     "seed": 11}, tmp_path, said.append)
    import pandas as pd

    # it says that it fits nothing, on how much, and which options of the command it does not use
    assert said[0].startswith("region=chongqing: no fit, a check of the national fit on 50,000 agents x 4 seeds"), said
    assert "max_evals, cutoff, draws, stages, ensemble and fit are not used" in said[0]

    row = pd.read_csv(out / "fit.csv").iloc[0]
    # the 0.3 points, plus two standard errors of the mean over the 4 replicates
    assert abs(row["model_mean"] - 0.314) <= 0.003 + 2 * row["model_sd"] / np.sqrt(4), row.to_dict()


@pytest.mark.parametrize("region", ["chongqing", "zhong_county"])
def test_a_spin_up_grows_at_the_national_history_pace(region):
    """Before its first observed stock a spin-up grows at history.spinup_growth (the national skilled
    stock's 2011-2021 pace), not at the forecast's growth_per_year."""
    from sim.calendar import month_index
    from sim.demography import SizePath

    cfg = compose_config([f"region={region}", "region.history.spinup_growth=0.05"])
    path = SizePath(cfg)
    first = int(path.months[0])
    origin = month_index(cfg.region.history.origin)
    years = (first - origin) / 12
    assert path.persons(origin) / path.persons(first) == pytest.approx(1.05 ** -years, rel=1e-9)
    after = int(path.months[-1])
    assert path.persons(after + 24) / path.persons(after) == pytest.approx((1 + cfg.region.growth_per_year) ** 2,
                                                                           rel=1e-9)


def test_a_history_without_spin_up_keeps_its_observed_growth():
    """The national history (origin at its first observation) and a backtest cut back to one stock do
    not take the spin-up growth: the first is fixed by the stocks, the second by growth_per_year."""
    from sim.demography import SizePath, spinup
    from sim.studies.calibrate import backtest_config

    cfg = compose_config(["region=national", "region.history.spinup_growth=0.5"])
    assert not spinup(cfg.region)
    path = SizePath(cfg)
    assert path.g_before == pytest.approx(np.log(165e6 / 119e6) / 60, rel=1e-6)
    cut = backtest_config(cfg, 2011)
    assert not spinup(cut.region)
    assert SizePath(cut).g_before == pytest.approx(np.log1p(cut.region.growth_per_year) / 12, rel=1e-9)
