"""The model as a whole: Mesa use, reproducibility, common random numbers, levers and invariants."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import sim.model as model_module
from sim import WorkforceModel
from sim.config import RunConfig
from sim.levers import CompetitionLever, StudioLever, TrainingLever
from sim.metrics import SPEND_ACCOUNTS

from .conftest import CheckedModel, small_config, with_lever

LEVER_NAMES = ("training", "competition", "studio")


def run(cfg: RunConfig, levers=None) -> pd.DataFrame:
    return WorkforceModel(cfg, levers=levers).run().series()


def test_plain_mesa_use_with_defaults():
    m = WorkforceModel(seed=1)
    for _ in range(12):
        m.step()
    df = m.datacollector.get_model_vars_dataframe()
    assert len(df) == 12 and df["date"].iloc[0] == "2023-01"  # one row per month: Jan .. Dec 2023
    assert m.steps == 12 and m.dates[0] == "2022-12" and m.dates[-1] == "2023-12" == df["date"].iloc[-1]
    assert len(m.series()) == 13 and m.series()["date"].iloc[0] == "2022-12"  # the start state first
    g = m.cfg.region.growth_per_year  # the growth path after the last observed stock
    assert df["workers"].iloc[-1] == pytest.approx(5.7e6 * (1 + g), rel=1e-4)
    assert 0.25 < df["high_skill_share"].iloc[-1] < 0.40


def test_same_seed_same_bytes_and_different_seeds_differ(small):
    a = run(small).to_csv(index=False)
    b = run(small).to_csv(index=False)
    c = run(dataclasses.replace(small, seed=small.seed + 1)).to_csv(index=False)
    assert a == b
    assert a != c


@pytest.mark.parametrize("lever", LEVER_NAMES)
def test_switched_off_or_zero_lever_equals_no_lever_at_all(small, lever):
    """Common random numbers: an inactive lever leaves every other draw untouched."""
    without = [lv for lv in model_module.default_levers(small.levers) if lv.name != lever]
    absent = run(small, levers=without)
    off = run(with_lever(small, lever, enabled=False))
    zero = run(with_lever(small, lever, intensity=0.0))
    pd.testing.assert_frame_equal(absent, off, check_exact=True)
    pd.testing.assert_frame_equal(absent, zero, check_exact=True)


def test_scenarios_that_differ_in_one_lever_share_the_other_draws(small):
    """Competition acts first in March: January and February are identical with or without it;
    the initial population, firms and the first month's exits and entrants are shared too."""
    base = with_lever(with_lever(small, "training", enabled=False), "studio", enabled=False)
    a = WorkforceModel(with_lever(base, "competition", enabled=False))
    b = WorkforceModel(with_lever(base, "competition", intensity=3.0))
    for field in ("level", "age", "firm", "aptitude", "progress", "wage_factor"):
        np.testing.assert_array_equal(getattr(a.workforce, field), getattr(b.workforce, field))
    for _ in range(2):
        a.step()
        b.step()
    for field in ("level", "age", "firm", "aptitude", "progress", "months_at_level"):
        np.testing.assert_array_equal(getattr(a.workforce, field), getattr(b.workforce, field))
    a.step()
    b.step()
    assert a.row["promotions_competition"] == 0 and b.row["promotions_competition"] > 0
    # In March the competition changed levels, but demography drew the same exits and entrants.
    assert a.row["exits"] == b.row["exits"] and a.row["entries"] == b.row["entries"]


INTENSITY = {"training": (1.0, 3.0), "competition": (1.0, 3.0), "studio": (1.0, 3.0)}
# Mentoring acts slowly: studio members climb over years, and by 2030 the paired effect of tripling the
# studios is within noise (measured 2026-12-02 over 6 seeds: -0.00 +/- 0.11 points; 2035: +0.31 +/- 0.11)
END_YEAR = {"training": 2030, "competition": 2030, "studio": 2035}


@pytest.mark.slow  # 20 runs with their histories per lever
@pytest.mark.parametrize("lever", LEVER_NAMES)
def test_more_of_each_lever_raises_high_skill_share_and_spend(lever):
    """Paired over 10 seeds (common random numbers): the mean effect must exceed twice its standard
    error, so the claim holds across seeds rather than for a lucky one."""
    lo, hi = INTENSITY[lever]
    d_share, d_spend = [], []
    for seed in range(10):
        cfg = small_config(n_agents=20000, end_year=END_YEAR[lever], seed=seed)
        a = run(with_lever(cfg, lever, intensity=lo))
        b = run(with_lever(cfg, lever, intensity=hi))
        d_share.append(b["high_skill_share"].iloc[-1] - a["high_skill_share"].iloc[-1])
        cols = [f"spend_{lever}_{f}" for lv, f in SPEND_ACCOUNTS if lv == lever]
        d_spend.append(b[cols].to_numpy().sum() - a[cols].to_numpy().sum())
    for name, d in (("high-skill share", d_share), ("spend", d_spend)):
        d = np.asarray(d)
        se = d.std(ddof=1) / np.sqrt(d.size)
        assert d.mean() - 2 * se > 0, f"{lever}: {name} effect {d.mean():.4g} +/- {se:.2g}"




def test_invariants_hold_every_month():
    cfg = small_config(n_agents=8000, end_year=2030, seed=5)
    m = CheckedModel(cfg)
    m.violations = m.certified = 0
    m.run()
    df = m.series()
    assert m.certified > 0 and m.violations == 0
    levels = df[[f"level_{k}" for k in range(8)]]
    np.testing.assert_allclose(levels.sum(axis=1), df["workers"], rtol=1e-9)
    np.testing.assert_allclose(df["workers"].iloc[1:].to_numpy(),
                               (df["workers"] + df["entries"].shift(-1) - df["exits"].shift(-1)).iloc[:-1].to_numpy(),
                               rtol=1e-9)
    assert (m.workforce.level >= 0).all() and (m.workforce.level <= 7).all()
    money = [c for c in df.columns if c.startswith(("spend_", "income_"))]
    assert (df[money] >= 0).all().all()
    for col in ("high_skill_share", "high_skill_share_workforce", "middle_income_share"):
        assert df[col].between(0, 1).all()
    hs = df[[f"level_{k}" for k in range(3, 8)]].sum(axis=1)
    np.testing.assert_allclose(df["high_skill_workers"], hs, rtol=1e-9)
    np.testing.assert_allclose(df["high_skill_share"], hs / levels.iloc[:, 1:].sum(axis=1), rtol=1e-9)
    assert (m.workforce.age < m.workforce.retire_age).all()
    count, pay = m.ledger.recount(m.workforce)
    np.testing.assert_allclose(m.ledger.count, count, rtol=1e-9)
    np.testing.assert_allclose(m.ledger.pay, pay, rtol=1e-6)


def test_weights_scale_counts_to_the_population():
    from sim.demography import SizePath

    for n in (3000, 12000):
        cfg = small_config(n_agents=n, end_year=2024)
        df = run(cfg)
        assert df["workers"].iloc[0] == pytest.approx(5.7e6, rel=1e-6)
        end = SizePath(cfg).persons(2024 * 12 + 11)  # the growth path after the observed stock
        assert end == pytest.approx(5.7e6 * (1 + cfg.region.growth_per_year) ** 2, rel=1e-9)
        assert df["workers"].iloc[-1] == pytest.approx(end, rel=0.6 / n)  # whole agents


def test_full_weight_run_works():
    region = RunConfig().region
    region = dataclasses.replace(region, population=3000,
                                 history=dataclasses.replace(region.history, skilled_workers={}))
    cfg = dataclasses.replace(small_config(n_agents=3000, end_year=2024), region=region)
    df = run(cfg)
    assert cfg.weight == 1.0 and df["workers"].iloc[0] == 3000
    assert df["workers"].iloc[-1] == round(3000 * (1 + cfg.region.growth_per_year) ** 2)


def test_growth_path_is_followed():
    cfg = dataclasses.replace(small_config(n_agents=5000, end_year=2032),
                              region=dataclasses.replace(RunConfig().region, growth_per_year=0.02))
    df = run(cfg)
    assert df["workers"].iloc[-1] == pytest.approx(5.7e6 * 1.02**10, rel=2e-3)


def test_competition_promotes_at_most_once_a_year():
    cfg = with_lever(small_config(n_agents=5000, end_year=2026), "competition", intensity=20.0, promote_fraction=0.5)
    m = WorkforceModel(cfg)
    m.step(), m.step()  # January, February: no event
    assert m.row["promotions_competition"] == 0
    demography = m._demography

    def everyone_promoted_last_month():  # after March's entrants arrive: they too were, for this test
        demography()
        m.workforce.comp_month[:] = m.t - 1

    m._demography = everyone_promoted_last_month
    m.step()  # March event
    del m._demography
    assert m.row["competition_participants"] > 0 and m.row["promotions_competition"] == 0
    m.workforce.comp_month[:] = m.t - 12  # a year ago: eligible again
    m.step(), m.step(), m.step()  # April, May, June event
    assert m.row["promotions_competition"] > 0
    assert (m.workforce.comp_month <= m.t).all()


def test_chongqing_baseline_is_plausible_and_smooth():
    """The status quo at the default 100,000 agents: a plausible 2035 share and no jumps.

    The issue asked for 25-45%. With the national calibration of 2026-12-03 the status quo gives 40.5%
    at the default seed (docs/model.md section 9): Chongqing's competition participation (cq_comp_2024,
    0.39 per worker a year, 4.6x the national rate) adds about 2.4 points. The bound here is 50%, which still catches a
    runaway ladder (an earlier calibration without school entrants gave 56%); docs/model.md reports it.
    """
    df = WorkforceModel(RunConfig()).run().series()
    final = df["high_skill_share"].iloc[-1]
    assert 0.25 <= final <= 0.50
    steps = df["high_skill_share"].diff().abs().iloc[1:]
    assert steps.max() < 0.01, f"largest monthly change {steps.max():.4f}"
    assert df["income_mean"].iloc[-1] > df["income_mean"].iloc[0]


def test_levers_keep_their_own_accounts(small):
    m = WorkforceModel(small).run()
    spend = {lv.name: lv.spend for lv in m.levers}
    assert spend["training"]["government"] > 0 and spend["training"]["employer"] > 0
    assert spend["competition"]["government"] > 0 and spend["competition"]["employer"] > 0
    assert spend["studio"]["government"] > 0
    df = m.series()
    assert df["spend_training_government"].sum() == pytest.approx(spend["training"]["government"])
    assert isinstance(m.levers[0], TrainingLever) and isinstance(m.levers[1], CompetitionLever)
    assert isinstance(m.levers[2], StudioLever)


def test_the_core_imports_neither_mesas_batch_runner_nor_scipy_and_mesa_stays_whole():
    """`import sim` loads Mesa's model frame only (sim.mesa_frame): no batch runner (whose import
    switches the process to the "spawn" start method), no experimental spaces, no web framework or
    study library (Solara, SALib, EMA Workbench), none of scipy's subpackages (numba, which the kernels use, imports scipy's light top level only). A user who then
    imports Mesa gets the whole package with the same Model class."""
    import subprocess
    import sys

    code = """
import multiprocessing as mp, sys
import sim, sim.cli
heavy = ("scipy.stats", "scipy.optimize", "scipy.special", "scipy.linalg", "scipy.sparse", "scipy.interpolate",
         "solara", "ipywidgets", "ipyvuetify", "SALib", "ema_workbench", "selenium")  # studies and the explorer only
loaded = sorted(m for m in sys.modules if m.startswith(("mesa.batchrunner", "mesa.experimental") + heavy))
print(loaded, mp.get_start_method(allow_none=True))
import mesa
from mesa import Agent, batch_run
assert mesa.Model is sim.model.Model and mesa.DataCollector is sim.model.DataCollector
assert mesa.__version__.startswith("3.") and callable(batch_run) and Agent.__name__ == "Agent"
print("whole")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[] None", out[0]
    assert out[1] == "whole"


def test_a_run_and_its_folder_need_no_pandas_and_mesas_dataframes_still_work(tmp_path):
    """`skillsim`'s run path (composing, the model, writing series.csv, series.parquet and the summary)
    never imports pandas (a quarter of a second of start-up, sim.lazy) nor pyarrow.compute (0.06 s);
    Mesa's and the model's dataframes import it when asked for, and the written CSV and Parquet hold
    what pandas itself writes and reads (the text column as pyarrow's `string`)."""
    import subprocess
    import sys

    code = f"""
import sys
from pathlib import Path
from sim.cli import compose_config, run_forecast
cfg = compose_config(["n_agents=2000", "horizon.end_year=2024"])
from sim.model import WorkforceModel
m = WorkforceModel(cfg).run()
path = run_forecast(cfg, Path({str(tmp_path / 'run')!r}))
print("pandas" in sys.modules, "pyarrow.compute" in sys.modules)
df = m.datacollector.get_model_vars_dataframe()
print(type(df).__module__.split(".")[0], len(df) == len(m.dates) - 1)
print((path / "series.csv").read_text() == m.series().to_csv(index=False))
import pandas as pd, pyarrow.parquet as pq
print(pq.read_schema(path / "series.parquet").field("date").type, pd.read_parquet(path / "series.parquet").equals(m.series()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:4] == ["False False", "pandas True", "True", "string True"], out


def test_a_calendar_month_pays_the_same_whatever_the_forecasts_start():
    """The wage index is anchored where base_wage is dated (region.observed, 2022-12), not at the start
    state: `horizon.start_year=2030` paid December 2035 a third less than a default run (a user trial:
    124,243 against 179,676 yuan), because the 2022 base wage was read as 2029's."""
    from sim.calendar import month_index

    cfg = dataclasses.replace(RunConfig(), n_agents=3000)
    late = dataclasses.replace(cfg, horizon=dataclasses.replace(cfg.horizon, start_year=2030))
    g, base = cfg.wages.growth_per_year, cfg.region.base_wage
    m = WorkforceModel(late)
    assert m.calendar_month == 12 and m.year == 2029  # the start state
    months = m.now - month_index(cfg.region.observed)
    assert months == 84 and m.wage_index == pytest.approx(base / 12 * (1 + g) ** (months / 12), rel=1e-12)
    early = WorkforceModel(cfg)
    assert early.wage_index == pytest.approx(base / 12, rel=1e-12)  # the default start state is the observed date
    a, b = early.run().series(), m.run().series()
    at = lambda s: s.loc[s["date"] == "2035-12", "income_mean"].item()  # noqa: E731
    assert at(b) / at(a) == pytest.approx(1.0, abs=0.05)  # was 0.69; what is left is the runs' own spread
