"""skillsim-report: figures, CSVs and report.md from run and sweep folders, in English and Chinese.

Small folders are made once per module by the real command (`python -m sim`), concurrently; the
reports are made once per folder and language. Each figure's CSV is checked against the folder's own
files (series.csv, ensemble.csv, runs.csv, effects.csv, the job folders), not against the report code.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.errors import OutputError
from sim.ladder import LEVELS
from sim.report import cli, pack
from sim.report.pack import Options, make_report
from sim.sources import observed_shares
from .conftest import SHORT_HISTORY

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
SMALL = ["n_agents=2000", "horizon.end_year=2027", SHORT_HISTORY]
RUN_FIGS = ["fig1_high_skill_share", "fig2_level_composition", "fig3_income", "fig6_promotions"]
SWEEP_FIGS = RUN_FIGS[:3] + ["fig4_scenario_comparison", "fig6_promotions"]
ALL_FIGS = [stem for stem, _ in pack.FIGURES]


def _sim(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sim", *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A run, a scenario sweep (2 x 3), a 2-lever grid (2 x 2 x 2) and a Zhong county run."""
    tmp = tmp_path_factory.mktemp("report")
    basic = "hydra/launcher=basic"
    procs = {
        "run": _sim(*SMALL, "n_agents=3000", f"hydra.run.dir={tmp / 'run'}", cwd=tmp),
        "sweep": _sim("-m", "scenario=baseline,training_boost", "replicate=range(0,3)", *SMALL, basic,
                      f"hydra.sweep.dir={tmp / 'sweep'}", cwd=tmp),
        "grid": _sim("-m", "levers.training.intensity=1,0", "levers.studio.intensity=1,2", "replicate=range(0,2)",
                     "n_agents=1500", "horizon.end_year=2025", basic, f"hydra.sweep.dir={tmp / 'grid'}", cwd=tmp),
        "zhong": _sim("region=zhong_county", "n_agents=1000", "horizon.end_year=2026",
                      f"hydra.run.dir={tmp / 'zhong'}", cwd=tmp),
    }
    from sim.report import fonts

    fonts.static_font_path()  # builds the Chinese font on a fresh machine while the runs go on
    for name, p in procs.items():
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, f"{name}: {err[-2000:]}"
    return {name: tmp / name for name in procs}


#: every report the module checks; the fast suite reads only FAST_REPORTS (the others are made, and
#: their tests run, in the slow suite: a Chinese run report with its SVG and PDF copies, and the sweep's)
REPORTS = [("run", "en"), ("run", "zh"), ("sweep", "en"), ("sweep", "zh"), ("grid", "en")]
FAST_REPORTS = [("run", "en"), ("grid", "en")]


def report_params():
    return [pytest.param(k, id="-".join(k), marks=() if k in FAST_REPORTS else pytest.mark.slow) for k in REPORTS]


class Reports(dict):
    """(folder, lang) -> (Written, warnings recorded while it was made), each made on first use."""

    def __init__(self, folders, out):
        super().__init__()
        self.folders, self.out = folders, out

    def __missing__(self, key):
        name, lang = key
        # vector copies (SVG, PDF) are checked on one report; the others are PNG only (a faster suite)
        formats = ("png", "svg", "pdf") if key == ("run", "zh") else ("png",)
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            written = make_report(self.folders[name], Options(lang=lang, formats=formats, out=self.out / f"{name}_{lang}"))
        self[key] = (written, [str(w.message) for w in rec])
        return self[key]


@pytest.fixture(scope="module")
def reports(folders, tmp_path_factory):
    return Reports(folders, tmp_path_factory.mktemp("reports"))


def csv(reports, name, lang, stem) -> pd.DataFrame:
    return pd.read_csv(reports[name, lang][0].out / "figures" / f"{stem}.csv")


# --- what is written --------------------------------------------------------------------------


@pytest.mark.parametrize("name,lang,expected", [
    ("run", "en", RUN_FIGS), pytest.param("run", "zh", RUN_FIGS, marks=pytest.mark.slow),
    pytest.param("sweep", "en", SWEEP_FIGS, marks=pytest.mark.slow),
    pytest.param("sweep", "zh", SWEEP_FIGS, marks=pytest.mark.slow), ("grid", "en", ALL_FIGS)])
def test_every_applicable_figure_as_png_svg_and_csv(reports, name, lang, expected):
    from PIL import Image

    written, _ = reports[name, lang]
    assert list(written.figures) == expected
    assert sorted(written.skipped) == sorted(set(ALL_FIGS) - set(expected))
    figdir = written.out / "figures"
    for stem in expected:
        with Image.open(figdir / f"{stem}.png") as im:
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.5)
            assert im.size[0] >= 2000
        if "svg" in written.figures[stem][1].suffix:
            svg = (figdir / f"{stem}.svg").read_text(encoding="utf-8")
            assert "<svg" in svg and "<text" not in svg  # glyphs as paths: no font needed to view it
        else:
            assert (name, lang) != ("run", "zh") and not (figdir / f"{stem}.svg").exists()
        assert (figdir / f"{stem}.csv").stat().st_size > 0
    assert (written.out / "report.md").exists()
    assert sorted(p.name for p in written.out.iterdir()) == [pack.MADE_FROM, "figures", "report.md"]


@pytest.mark.slow
def test_pdf_format_embeds_the_font(reports):
    figdir = reports["run", "zh"][0].out / "figures"
    for stem in RUN_FIGS:
        pdf = (figdir / f"{stem}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and b"FontFile2" in pdf


def test_png_is_always_written():
    assert Options(formats=("pdf",)).check().formats == ("png", "pdf")


@pytest.mark.parametrize("key", report_params())
def test_no_missing_glyph_warnings(reports, key):
    _, messages = reports[key]
    bad = [m for m in messages if "missing from font" in m or "Glyph" in m]
    assert not bad, (key, bad[:3])


def test_missing_glyphs_would_be_caught():
    """Control: matplotlib does warn for a CJK label in a Latin-only font, and the check sees it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    fig.text(0.1, 0.5, "首席技师", family="DejaVu Sans")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        fig.canvas.draw()
    assert any("missing from font" in str(w.message) for w in rec)


@pytest.mark.parametrize("key", report_params())
def test_no_label_overlaps_or_clipping(reports, key):
    written, _ = reports[key]
    assert not any(written.layout.values()), (key, {k: v for k, v in written.layout.items() if v})


@pytest.mark.parametrize("key", report_params())
def test_languages_are_not_mixed(reports, key):
    written, _ = reports[key]
    md = (written.out / "report.md").read_text(encoding="utf-8")
    labels = " ".join(" ".join(map(str, pd.read_csv(f).get("label", pd.Series(dtype=str)).dropna()))
                      for f in (written.out / "figures").glob("*.csv"))
    if key[1] == "en":
        assert not CJK.search(md), CJK.findall(md)[:10]
        assert not CJK.search(labels)
    else:
        assert "高技能人才占比" in md and CJK.search(labels)


def test_chinese_font_comes_from_the_package_and_covers_every_label():
    import importlib.util

    from sim.report import fonts
    from sim.report.text import CHANNELS, PHRASES, SCENARIOS

    pkg = Path(importlib.util.find_spec(fonts.FONT_PACKAGE).origin).parent
    assert pkg in fonts.source_font().parents
    assert fonts.register_cjk_font() == fonts.FAMILY
    texts = [lv.zh for lv in LEVELS] + ["重庆", "全国", "忠县"] + [zh for _, zh in PHRASES.values()]
    texts += [zh for _, zh in SCENARIOS.values()] + [zh for _, zh in CHANNELS.values()]
    assert fonts.missing_chars("".join(texts) + "0123456789%×−–·≥（）：；，") == set()


# --- each figure's CSV against the folder's own files ----------------------------------------------


def _series(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "series.csv", dtype={"date": str})


def _job_series(sweep: Path) -> pd.DataFrame:
    runs = pd.read_csv(sweep / "runs.csv")
    frames = []
    for _, r in runs[runs["status"] == "ok"].iterrows():
        s = _series(sweep / r["job"])
        s.insert(0, "setting", f"scenario={r['scenario']}")
        s.insert(1, "job", r["job"])
        frames.append(s)
    return pd.concat(frames, ignore_index=True)


def test_fig1_csv_matches_sources(reports, folders):
    run = csv(reports, "run", "en", "fig1_high_skill_share")
    fc = run[run["kind"] == "forecast"]
    s = _series(folders["run"])
    np.testing.assert_allclose(fc["median"].to_numpy(), s["high_skill_share"].to_numpy(), rtol=1e-12)
    assert list(fc["date"]) == list(s["date"])
    obs = run[run["kind"] == "observed"]
    assert list(obs["value"]) == [t.number for t in observed_shares("chongqing")]
    target = run[run["kind"] == "region_target"].iloc[0]
    assert target["value"] == 0.35 and target["date"] == "2030-12"
    assert run[run["kind"] == "national_target"]["value"].tolist() == [0.333]


@pytest.mark.slow
def test_fig1_sweep_csv_matches_the_ensemble(reports, folders):
    sw = csv(reports, "sweep", "en", "fig1_high_skill_share")
    sw = sw[sw["kind"] == "forecast"]
    ens = pd.read_csv(folders["sweep"] / "ensemble.csv", dtype={"date": str})
    ens = ens[ens["metric"] == "high_skill_share"].assign(setting=lambda d: "scenario=" + d["scenario"])
    m = sw.merge(ens, on=["setting", "date"], suffixes=("", "_src"))
    assert len(m) == len(ens) == len(sw)
    for col in ("median", "q05", "q25", "q75", "q95"):
        np.testing.assert_allclose(m[col], m[f"{col}_src"], rtol=1e-12)



def test_region_targets_and_history_for_another_region(folders):
    from sim.report import tables
    from sim.report.load import load

    ref = tables.references(load(folders["zhong"]), lambda r: r["label_zh"])
    assert ref[ref["kind"] == "observed"][["date", "value", "region"]].values.tolist() == [["2024-12", 0.303, "忠县"]]
    assert ref[ref["kind"] == "region_target"][["date", "value"]].values.tolist() == [["2030-12", 0.35]]
    assert ref[ref["kind"] == "national_target"][["date", "value"]].values.tolist() == [["2025-12", 0.333]]


def test_fig2_csv_matches_sources(reports, folders):
    s = _series(folders["run"])
    c = csv(reports, "run", "en", "fig2_level_composition")
    for k in range(len(LEVELS)):
        got = c[c["level"] == k]["share_mean"].to_numpy()
        np.testing.assert_allclose(got, (s[f"level_{k}"] / s["workers"]).to_numpy(), rtol=1e-12)
    assert set(c["level_name"]) == {lv.en[:1].upper() + lv.en[1:] for lv in LEVELS}


@pytest.mark.slow
def test_fig2_sweep_csv_matches_the_jobs(reports, folders):
    js = _job_series(folders["sweep"])
    c = csv(reports, "sweep", "zh", "fig2_level_composition")
    assert set(c["level_name"]) == {lv.zh for lv in LEVELS}
    for k in (0, 3, 7):
        want = (js[f"level_{k}"] / js["workers"]).groupby([js["setting"], js["date"]]).mean()
        got = c[c["level"] == k].set_index(["setting", "date"])["share_mean"]
        np.testing.assert_allclose(got.loc[want.index].to_numpy(), want.to_numpy(), rtol=1e-12)
    totals = c.groupby(["setting", "date"])["share_mean"].sum()
    np.testing.assert_allclose(totals, 1.0, atol=1e-9)


def test_fig3_csv_matches_sources(reports, folders):
    s = _series(folders["run"])
    c = csv(reports, "run", "en", "fig3_income")
    for metric in ("income_mean", "income_median", "middle_income_share"):
        np.testing.assert_allclose(c[c["metric"] == metric]["median"], s[metric], rtol=1e-12)
    year = s[s["date"].str.startswith("2027")]
    lv = c[c["metric"] == "income_mean_by_level"].set_index("level")
    for k in (1, 3, 5):
        want = (year[f"income_mean_level_{k}"] * year[f"level_{k}"]).sum() / year[f"level_{k}"].sum()
        assert lv.loc[k, "mean"] == pytest.approx(want, rel=1e-12)
    for k in range(8):  # held all year, or drawn hollow (a level empty in some months)
        assert lv.loc[k, "n_whole_year"] == int((year[f"level_{k}"] > 0).all())


def test_a_level_held_for_part_of_the_year_is_drawn_hollow():
    """A single run's 首席技师: one agent, in the level from January to June of the target year, was
    drawn as a solid point like a level held all year by thousands."""
    from sim.report import tables
    from sim.report.figures import _income_levels
    from sim.report.load import Folder, Setting
    import matplotlib.pyplot as plt

    dates = [f"2030-{m:02d}" for m in range(1, 13)]
    rows = []
    for i, d in enumerate(dates):
        for k in range(8):
            heads = 57.0 if k < 7 or i < 6 else 0.0
            rows += [{"setting": "all", "run": "r", "replicate": 0, "date": d, "metric": f"level_{k}", "value": heads},
                     {"setting": "all", "run": "r", "replicate": 0, "date": d, "metric": f"income_mean_level_{k}",
                      "value": 1e5 * (k + 1) if heads else 0.0}]
    s = Setting("all", {}, "baseline", {"name": "chongqing"}, 2030, 1)
    folder = Folder(path=None, kind="run", keys=[], settings=[s], config={}, long=pd.DataFrame(rows),
                    ensemble=pd.DataFrame(columns=["setting", "date", "metric"]), runs=pd.DataFrame(), effects=None)
    lv = tables.income_by_level(folder).set_index("level")
    assert lv.loc[7, "mean"] == pytest.approx(8e5) and lv.loc[7, "n"] == 1 and lv.loc[7, "n_whole_year"] == 0
    assert (lv.loc[:6, "n_whole_year"] == 1).all()
    fig, ax = plt.subplots()
    assert _income_levels(ax, folder, tables.income_by_level(folder), 1e3, "en")  # a hollow dot
    faces = [line.get_markerfacecolor() for line in ax.get_lines() if line.get_marker() == "o"]
    assert faces.count("white") == 1 and len(faces) == 8
    plt.close(fig)


def test_fig3s_csv_gives_no_interval_for_a_level_drawn_hollow():
    """Three replicates; 首席技师 held all year in two and half the year in the third: its dot is hollow
    with no interval, and the CSV gave one all the same (a user trial). Levels held all year keep theirs."""
    from sim.report import tables
    from sim.report.figures import level_rows
    from sim.report.load import Folder, Setting

    rows = []
    for rep in range(3):
        for i in range(12):
            for k in range(8):
                heads = 0.0 if (k == 7 and rep == 2 and i >= 6) else 57.0
                rows += [{"setting": "all", "run": f"r{rep}", "replicate": rep, "date": f"2030-{i + 1:02d}",
                          "metric": f"level_{k}", "value": heads},
                         {"setting": "all", "run": f"r{rep}", "replicate": rep, "date": f"2030-{i + 1:02d}",
                          "metric": f"income_mean_level_{k}", "value": 1e5 * (k + rep) if heads else 0.0}]
    s = Setting("all", {}, "baseline", {"name": "chongqing"}, 2030, 3)
    folder = Folder(path=None, kind="sweep", keys=[], settings=[s], config={}, long=pd.DataFrame(rows),
                    ensemble=pd.DataFrame(columns=["setting", "date", "metric"]), runs=pd.DataFrame(), effects=None)
    by_level = tables.income_by_level(folder)
    assert by_level.set_index("level").loc[7, ["ci_low", "ci_high"]].notna().all()  # computed, not drawn
    lv = level_rows(folder, by_level).set_index("level")
    assert lv.loc[7, ["ci_low", "ci_high"]].isna().all() and lv.loc[6, ["ci_low", "ci_high"]].notna().all()


@pytest.mark.slow
def test_fig3_sweep_csv_matches_the_ensemble_and_jobs(reports, folders):
    c = csv(reports, "sweep", "en", "fig3_income")
    ens = pd.read_csv(folders["sweep"] / "ensemble.csv", dtype={"date": str})
    for metric in ("income_mean", "income_median"):
        e = ens[ens["metric"] == metric].assign(setting=lambda d: "scenario=" + d["scenario"])
        got = c[c["metric"] == metric].merge(e, on=["setting", "date"], suffixes=("", "_src"))
        assert len(got) == len(e)
        np.testing.assert_allclose(got["median"], got["median_src"], rtol=1e-12)
        np.testing.assert_allclose(got["q95"], got["q95_src"], rtol=1e-12)
    js = _job_series(folders["sweep"])
    want = js.groupby(["setting", "date"])["middle_income_share"].median()
    got = c[c["metric"] == "middle_income_share"].set_index(["setting", "date"])["median"]
    np.testing.assert_allclose(got.loc[want.index], want, rtol=1e-12)


@pytest.mark.slow
def test_fig4_csv_matches_runs_and_effects(reports, folders):
    c = csv(reports, "sweep", "en", "fig4_scenario_comparison").set_index(["setting", "metric"])
    runs = pd.read_csv(folders["sweep"] / "runs.csv")
    eff = pd.read_csv(folders["sweep"] / "effects.csv").set_index("scenario")
    for scen, g in runs.groupby("scenario"):
        sid = f"scenario={scen}"
        for col in ("high_skill_share", "income_mean_target_year"):
            d = g[col].to_numpy()
            half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
            row = c.loc[(sid, col)]
            assert row["mean"] == pytest.approx(d.mean(), rel=1e-12)
            assert row["ci_low"] == pytest.approx(d.mean() - half, rel=1e-9)
            assert row["ci_high"] == pytest.approx(d.mean() + half, rel=1e-9)
        cost = c.loc[(sid, "cost_per_additional_high_skill_worker"), "mean"]
        want = eff.loc[scen, "cost_per_additional_high_skill_worker"]
        assert (np.isnan(cost) and np.isnan(want)) or cost == pytest.approx(want, rel=1e-12)
    assert not np.isnan(c.loc[("scenario=training_boost", "cost_per_additional_high_skill_worker"), "mean"])


def test_fig5_csv_matches_runs(reports, folders):
    c = csv(reports, "grid", "en", "fig5_lever_response")
    runs = pd.read_csv(folders["grid"] / "runs.csv")
    keys = ["levers.training.intensity", "levers.studio.intensity"]
    want = runs.groupby(keys).agg(median=("high_skill_share", "median"), spend=("spend_cum_total", "mean"))
    got = c.set_index(keys).loc[want.index]
    np.testing.assert_allclose(got["median"], want["median"], rtol=1e-12)
    np.testing.assert_allclose(got["spend_cum_total_mean"], want["spend"], rtol=1e-12)


def test_fig6_csv_matches_sources(reports, folders):
    s = _series(folders["run"])
    s["year"] = s["date"].str.slice(0, 4).astype(int)
    full = s.groupby("year").filter(lambda g: len(g) == 12)
    c = csv(reports, "run", "en", "fig6_promotions")
    for ch in ("certification", "competition", "studio", "appointment"):
        want = full.groupby("year")[f"promotions_{ch}"].sum()
        got = c[c["channel"] == ch].set_index("year")["median"]
        assert list(got.index) == list(want.index) == [2023, 2024, 2025, 2026, 2027]
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.slow
def test_fig6_sweep_csv_matches_the_jobs(reports, folders):
    js = _job_series(folders["sweep"])
    js["year"] = js["date"].str.slice(0, 4).astype(int)
    annual = js[js["year"] >= 2023].groupby(["setting", "job", "year"])["promotions_certification"].sum()
    want = annual.groupby(["setting", "year"]).median()
    c = csv(reports, "sweep", "zh", "fig6_promotions")
    got = c[c["channel"] == "certification"].set_index(["setting", "year"])["median"]
    np.testing.assert_allclose(got.loc[want.index], want, rtol=1e-12)


# --- report.md -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_md_states_key_numbers_with_intervals_and_cost(reports, folders):
    runs = pd.read_csv(folders["sweep"] / "runs.csv")
    eff = pd.read_csv(folders["sweep"] / "effects.csv").set_index("scenario")
    for lang, labels, div in (("en", {"baseline": "Baseline (current policy)", "training_boost": "Training boost"},
                               1e3), ("zh", {"baseline": "基准情景（现行政策）", "training_boost": "加大培训投入"}, 1e4)):
        md = (reports["sweep", lang][0].out / "report.md").read_text(encoding="utf-8")
        for scen, g in runs.groupby("scenario"):
            d = g["high_skill_share"].to_numpy()
            half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
            share = f"{100 * d.mean():.1f}% [{100 * (d.mean() - half):.1f}%, {100 * (d.mean() + half):.1f}%]"
            row = next(line for line in md.splitlines() if line.startswith(f"| {labels[scen]} |"))
            assert share in row
            inc = g["income_mean_target_year"].mean() / div
            assert f"{inc:,.{1 if lang == 'en' else 2}f} [" in row
        cost = eff.loc["training_boost", "cost_per_additional_high_skill_worker"] / div
        effect_row = [line for line in md.splitlines() if line.startswith(f"| {labels['training_boost']} |")][1]
        assert effect_row.rstrip(" |").endswith(f"{cost:,.{1 if lang == 'en' else 2}f}")


def test_run_report_md_states_the_run_numbers(reports, folders):
    md = (reports["run", "en"][0].out / "report.md").read_text(encoding="utf-8")
    summary = json.loads((folders["run"] / "summary.json").read_text())
    assert f"{100 * summary['at_end']['high_skill_share']:.1f}%" in md
    assert f"{summary['target_year_mean']['income_mean'] / 1e3:,.1f}" in md
    assert "cost per additional high-skill worker" in md.lower() and "not available for a single run" in md
    assert "across replicates" not in md  # one run has none: its captions say what it draws
    assert "Workforce by skill level (share of all workers)." in md
    for stem in RUN_FIGS:
        assert f"](figures/{stem}.png)" in md


def test_a_report_says_which_sources_of_uncertainty_its_spread_carries(reports, folders):
    """A run's and a replicate sweep's numbers sat beside the policy target with no word that they carry
    the agents' noise at most, and a sweep over draw= called its joint draws "replicates"."""
    from types import SimpleNamespace

    from sim.report.markdown import scope
    from sim.report.text import what_runs

    md = (reports["run", "en"][0].out / "report.md").read_text(encoding="utf-8")
    assert "one run at the central parameter set, so none of the uncertainty" in md
    # the run's own settings, without the forecast's own options (n_agents)
    assert "`skillsim-forecast region=chongqing horizon.end_year=2027 region.history.origin=2021-12`" in md
    md = (reports["grid", "en"][0].out / "report.md").read_text(encoding="utf-8")
    assert "the agents' own noise only (2 replicates at one parameter set)" in md
    assert "paired by replicate" in md and "2 settings" not in md  # the grid: 4 settings x 2 replicates
    assert "a sweep of 4 settings × 2 replicates" in md
    from sim.report.load import load

    assert load(folders["grid"]).varies == ("replicate",) and load(folders["run"]).varies == ()

    def folder(kind, varies, draw=None, manifest=None):
        return SimpleNamespace(kind=kind, varies=varies, config={"draw": draw}, region={"name": "national"},
                               replicates_text="5", one_run_each=False, manifest=manifest or {})

    assert what_runs(folder("sweep", ("draw",)), "en") == "joint parameter and structural draws"
    assert what_runs(folder("sweep", ("replicate", "draw")), "en").startswith("runs (joint parameter")
    assert what_runs(folder("sweep", ("seed",)), "en") == "replicates"
    said = scope(folder("sweep", ("draw",)), "en")
    assert "parameters' and structural inputs' uncertainty." in said and "noise" not in said
    assert "and the agents' noise" in scope(folder("sweep", ("draw", "replicate")), "en")
    assert "joint draw 7 of the parameters" in scope(folder("run", (), draw=7), "en")
    assert "`skillsim-forecast region=national`" in scope(folder("sweep", ("replicate",)), "zh")
    # what the runs of a setting are paired by, in fig. 4's note and report.md (a sweep over draws said "replicate")
    from sim.report.text import paired_by, t

    assert [paired_by(folder("sweep", v), "en") for v in (("replicate",), ("draw",), ("draw", "seed"))] == [
        "replicate", "draw", "draw and replicate"]
    assert "paired by draw." in t("note_cost", "en", pair=paired_by(folder("sweep", ("draw",)), "en"))
    assert "mean of the joint parameter and structural draws" in t("fig3d_ci", "en", year=2030,
                                                                    what=what_runs(folder("sweep", ("draw",)), "en"))
    # a user's region, read from their own config folder: the command names it (it ran Chongqing or failed)
    mine = {"config_dirs": ["/data/my conf"]}
    assert "`skillsim-forecast --config-dir '/data/my conf' region=national`" in scope(
        folder("run", (), manifest=mine), "en")


def test_a_runs_suggested_commands_hold_its_own_setting():
    """A run of scenario=training_boost levers.studio.intensity=2 suggested `skillsim-forecast
    region=chongqing` (the status quo's forecast) and a cost sweep `scenario=baseline,combined`, neither
    with the setting that ran (a user trial). The forecast now takes the setting as typed, without what it
    draws or sets itself; the sweep holds the run's setting and the baseline's."""
    from types import SimpleNamespace

    from sim.config import forecast_overrides
    from sim.report.markdown import paired_sweep, scope

    typed = ["scenario=training_boost", "levers.studio.intensity=2", "seed=3", "n_agents=2000", "region=chongqing",
             "behaviour.sit_rate=[0.2,0.1,0.1,0.1,0.1]", "region.growth_per_year=0.02", "horizon.end_year=2030",
             "hydra.run.dir=tb", "behaviour.leave_share=0.3",  # an assumption away from its value: held, kept
             "behaviour.aptitude_sd=0.3"]  # one at its assumed value: drawn (the forecast refuses it given)
    structural = {"region.growth_per_year": [-0.012, 0.039]}
    assert forecast_overrides(typed, structural) == ["scenario=training_boost", "levers.studio.intensity=2",
                                                     "horizon.end_year=2030", "behaviour.leave_share=0.3"]

    def run(scenario, overrides):
        return SimpleNamespace(kind="run", varies=(), config={"draw": None}, manifest={"overrides": overrides},
                               region={"name": "chongqing", "structural": structural},
                               settings=[SimpleNamespace(scenario=scenario)])

    tb = run("training_boost", typed)
    assert ("`skillsim-forecast region=chongqing scenario=training_boost levers.studio.intensity=2 "
            "horizon.end_year=2030 behaviour.leave_share=0.3`") in scope(tb, "en")
    # the sweep sets the run's lever settings against the status quo's and holds every other one (a review:
    # growth, a calibrated parameter, the seed and the size were dropped, a switch held on both sides)
    assert paired_sweep(tb) == ("region=chongqing levers.studio.intensity=1,2 seed=3 n_agents=2000 "
                                "'behaviour.sit_rate=[0.2,0.1,0.1,0.1,0.1]' region.growth_per_year=0.02 "
                                "horizon.end_year=2030 behaviour.leave_share=0.3 behaviour.aptitude_sd=0.3 "
                                "scenario=baseline,training_boost 'replicate=range(0,10)'")
    assert paired_sweep(run("studio_expansion", ["scenario=studio_expansion"])) == (
        "region=chongqing scenario=baseline,studio_expansion 'replicate=range(0,10)'")
    assert paired_sweep(run("studio_expansion", ["scenario=studio_expansion", "levers.studio.intensity=1"])) == (
        "region=chongqing levers.studio.intensity=1 scenario=baseline,studio_expansion 'replicate=range(0,10)'")
    assert paired_sweep(run("baseline", ["levers.training.intensity=2"])) == (
        "region=chongqing levers.training.intensity=1,2 'replicate=range(0,10)'")
    assert paired_sweep(run("baseline", ["levers.competition.enabled=false",
                                         "levers.training.allocation=near_standard"])) == (
        "region=chongqing levers.competition.enabled=true,false levers.training.allocation=random,near_standard "
        "'replicate=range(0,10)'")
    assert paired_sweep(run("baseline", [])) == "region=chongqing scenario=baseline,training_boost 'replicate=range(0,10)'"
    # a review: a list setting was held on both sides, and one equal to the status quo's, held, overrode
    # training_boost's own intensity in the fallback comparison
    assert paired_sweep(run("baseline", ["levers.studio.member_levels=[1,3]"])) == (
        "region=chongqing 'levers.studio.member_levels=[1,4],[1,3]' 'replicate=range(0,10)'")
    assert paired_sweep(run("baseline", ["levers.training.intensity=1"])) == (
        "region=chongqing scenario=baseline,training_boost 'replicate=range(0,10)'")
    one = run("baseline", ["scenario=baseline", "levers.studio.intensity=2", "replicate=0", "n_agents=1000"])
    one.kind = "sweep"  # a sweep of one setting: its first job's overrides
    assert paired_sweep(one) == "region=chongqing levers.studio.intensity=1,2 n_agents=1000 'replicate=range(0,10)'"


# --- the command -----------------------------------------------------------------------------------


def _report_cmd(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sim.report", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_cli_default_output_and_replacement(folders, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(folders["run"], run)
    p = _report_cmd(run, "lang=zh", "formats=png")  # the real command, in its own process
    assert p.returncode == 0, p.stderr
    assert p.stderr.startswith("skillsim-report: 4 figures and report.md in ")
    md = (run / "report_zh" / "report.md").read_text(encoding="utf-8")  # each language has its own folder
    assert md.startswith("# 技能人才预测：重庆") and not (run / "report").exists()
    monkeypatch.setattr(pack, "FIGURES", pack.FIGURES[:1])
    cli.main([str(run)])  # English: its own folder; the Chinese report stays
    assert (run / "report" / "report.md").read_text(encoding="utf-8").startswith("# Skilled-workforce forecast")
    assert (run / "report_zh" / "report.md").read_text(encoding="utf-8") == md
    cli.main([str(run), "out=" + str(run / "report_zh")])  # a report there is replaced whole
    assert (run / "report_zh" / "report.md").read_text(encoding="utf-8").startswith("# Skilled-workforce forecast")
    assert len(list((run / "report_zh" / "figures").glob("*.png"))) == 1
    assert not [x for x in run.iterdir() if x.name.startswith(".")]


def test_a_sweep_with_unfinished_jobs_says_so(folders, tmp_path, monkeypatch, capsys):
    """A report of a sweep whose jobs did not all finish says how many, on stderr and in report.md
    (it once read like a complete sweep)."""
    from sim.aggregate import aggregate
    from sim.results import COMPLETE_MARKER, FAILED_MARKER

    sweep_dir = tmp_path / "sweep"
    shutil.copytree(folders["sweep"], sweep_dir)
    runs = pd.read_csv(sweep_dir / "runs.csv")
    job = sweep_dir / runs["job"].iloc[-1]  # as a job that failed leaves its folder, and the tables rebuilt
    shutil.rmtree(job)
    job.mkdir()
    (job / FAILED_MARKER).write_text('{"error": "ValueError: boom"}\n', encoding="utf-8")
    assert not (job / COMPLETE_MARKER).exists()
    aggregate(sweep_dir, log=lambda *a: None)
    assert (pd.read_csv(sweep_dir / "runs.csv")["status"] == "failed").sum() == 1
    monkeypatch.setattr(pack, "FIGURES", pack.FIGURES[:1])
    cli.main([str(sweep_dir), "formats=png"])
    err = capsys.readouterr().err
    n = len(runs)
    assert f"warning: 1 of the sweep's {n} jobs did not finish (see runs.csv); the report uses the {n - 1} that did" in err
    md = (sweep_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert f"**1 of the sweep's {n} jobs did not finish** (failed or missing; see runs.csv)" in md


def test_a_sweep_with_jobs_that_never_started_says_so_and_counts_each_settings_runs(folders, tmp_path, monkeypatch,
                                                                                     capsys):
    """A sweep interrupted before two of its jobs started: its report said "2 settings x 8 replicates" and
    "means across 8 replicates" where the baseline's were over 10, and nothing of the jobs missing."""
    from sim.aggregate import aggregate

    sweep_dir = tmp_path / "sweep"
    shutil.copytree(folders["sweep"], sweep_dir)
    runs = pd.read_csv(sweep_dir / "runs.csv")
    last = runs["job"].iloc[-1]  # a training_boost job: that setting keeps 2 runs, the baseline 3
    assert "training_boost" in last
    shutil.rmtree(sweep_dir / last)  # never started: no folder at all, only the sweep's plan names it
    aggregate(sweep_dir, log=lambda *a: None)
    assert last not in set(pd.read_csv(sweep_dir / "runs.csv")["job"])
    monkeypatch.setattr(pack, "FIGURES", pack.FIGURES[:1])
    cli.main([str(sweep_dir), "formats=png"])
    n = len(runs)
    assert f"warning: 1 of the sweep's {n} jobs did not finish" in capsys.readouterr().err
    md = (sweep_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert f"**1 of the sweep's {n} jobs did not finish**" in md
    assert "a sweep of 2 settings × 2-3 replicates" in md and "means across 2-3 replicates" in md, md


def test_files_beside_the_manifests_do_not_stop_a_report(folders, tmp_path, monkeypatch):
    """The integrity check refused a folder holding another report being written (en and zh started
    together), one killed mid-way, or reports under a folder of the user's (out=RUN/reports/en): none of
    them changes a figure. A changed file still stops it."""
    run = tmp_path / "run"
    shutil.copytree(folders["run"], run, ignore=shutil.ignore_patterns("report*"))
    (run / ".report.report-tmp-99999" / "figures").mkdir(parents=True)
    (run / "reports" / "en").mkdir(parents=True)
    (run / "reports" / "en" / "report.md").write_text("# an earlier report\n", encoding="utf-8")
    monkeypatch.setattr(pack, "FIGURES", pack.FIGURES[:1])
    written = make_report(run, Options(lang="zh", formats=("png",), out=run / "reports" / "zh"))
    assert (written.out / "report.md").exists()


def test_a_report_left_behind_by_new_tables_is_said_to_be_out_of_date(folders, tmp_path, monkeypatch, capsys):
    """A sweep extended after its report kept report/report.md of the earlier tables, and nothing said so;
    tables rebuilt unchanged leave it be."""
    from sim.aggregate import aggregate, report
    from sim.results import FAILED_MARKER

    sweep_dir = tmp_path / "sweep"
    shutil.copytree(folders["sweep"], sweep_dir)
    monkeypatch.setattr(pack, "FIGURES", pack.FIGURES[:1])
    cli.main([str(sweep_dir), "formats=png"])
    capsys.readouterr()
    report(sweep_dir, aggregate(sweep_dir, log=lambda *a: None))  # the same jobs: the same tables
    assert "note:" not in capsys.readouterr().err
    job = sweep_dir / pd.read_csv(sweep_dir / "runs.csv")["job"].iloc[-1]
    shutil.rmtree(job)
    job.mkdir()
    (job / FAILED_MARKER).write_text('{"error": "ValueError: boom"}\n', encoding="utf-8")
    report(sweep_dir, aggregate(sweep_dir, log=lambda *a: None))
    err = capsys.readouterr().err
    assert f"note: {sweep_dir / 'report'} was made from this sweep's earlier tables; run skillsim-report {sweep_dir} " \
           "again to bring it up to date" in err


def test_cli_error_in_its_own_process(tmp_path):
    p = _report_cmd(tmp_path / "nowhere")
    assert p.returncode == 3 and p.stderr == f"skillsim-report: {tmp_path / 'nowhere'}: no such folder\n"


@pytest.mark.parametrize("args,code,start", [
    (["{tmp}/nowhere"], 3, "skillsim-report: {tmp}/nowhere: no such folder"),
    (["{tmp}"], 3, "skillsim-report: {tmp} is not a run folder"),
    (["{run}", "lang=fr"], 2, "skillsim-report: config error: lang = 'fr' is invalid; allowed: one of en, zh"),
    (["{run}", "formats=png,gif"], 2, "skillsim-report: config error: formats = 'png,gif' is invalid"),
    (["{run}", "colour=red"], 2, "skillsim-report: config error: colour = 'red' is invalid"),
    (["{run}", "--lang", "zh"], 2, "skillsim-report: config error: option = '--lang' is invalid"),
    (["{run}", "middle_income=120000"], 2, "skillsim-report: config error: middle_income = 120000.0 is invalid"),
    ([], 2, "skillsim-report: config error: PATH"),
])
def test_cli_errors_are_one_line_with_exit_code_and_no_output(folders, tmp_path, capsys, args, code, start):
    out = tmp_path / "out"
    fill = {"tmp": tmp_path, "run": folders["run"]}
    with pytest.raises(SystemExit) as exc:
        cli.main([a.format(**fill) for a in args] + [f"out={out}"])
    err = capsys.readouterr().err
    assert exc.value.code == code
    assert err.startswith(start.format(**fill)), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_damaged_folder_is_a_data_error(folders, tmp_path, capsys):
    """A changed file is refused as skillsim-verify finds it (exit 6): a report of edited data went out
    under the folder's provenance. Without a manifest to check against, a damaged file is a data error."""
    bad = tmp_path / "run"
    shutil.copytree(folders["run"], bad)
    (bad / "series.csv").write_text("date,workers\n2022-12,1\n")
    with pytest.raises(SystemExit) as exc:
        cli.main([str(bad), f"out={tmp_path / 'out'}"])
    err = capsys.readouterr().err
    assert exc.value.code == 6 and f"{bad / 'series.csv'}: truncated" in err and "no report was written" in err
    assert not (tmp_path / "out").exists()
    (bad / "manifest.json").unlink()
    with pytest.raises(SystemExit) as exc:
        cli.main([str(bad), f"out={tmp_path / 'out'}"])
    assert exc.value.code == 6 and "manifest.json: missing" in capsys.readouterr().err
    for name in ("COMPLETE", "summary.json", "config.yaml"):  # a folder of files, no run's: what it is not
        (bad / name).unlink()
    with pytest.raises(SystemExit) as exc:
        cli.main([str(bad), f"out={tmp_path / 'out'}"])
    assert exc.value.code == 3 and "is not a run folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_failure_leaves_previous_report_and_no_partial_output(folders, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    monkeypatch.setattr(pack, "FIGURES", pack.FIGURES[:1])
    make_report(folders["run"], Options(out=out))
    before = (out / "report.md").read_text(encoding="utf-8")

    def broken(folder, lang):
        raise RuntimeError("boom")

    monkeypatch.setattr(pack, "FIGURES", pack.FIGURES[:1] + (("fig3_income", broken),))
    with pytest.raises(RuntimeError):
        make_report(folders["run"], Options(out=out, lang="zh"))
    assert (out / "report.md").read_text(encoding="utf-8") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_out_never_replaces_the_report_of_another_folder(folders, tmp_path, monkeypatch, capsys):
    """`skillsim-report A out=B/report` replaced B's report with A's, exit 0 (a user trial). A report is
    replaced by one of the same folder, or in that folder's own place; another's is refused (exit 4)
    and left as it was; an older report (no record of its source) is replaced as it was then."""
    monkeypatch.setattr(pack, "FIGURES", pack.FIGURES[:1])
    out = tmp_path / "rep"
    make_report(folders["run"], Options(out=out))
    make_report(folders["run"], Options(out=out))  # the same folder's: replaced
    before = (out / "report.md").read_text(encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        cli.main([str(folders["zhong"]), f"out={out}"])
    err = capsys.readouterr().err
    assert exc.value.code == 4 and f"holds the report of {folders['run'].resolve()}" in err, err
    assert (out / "report.md").read_text(encoding="utf-8") == before
    (out / pack.MADE_FROM).unlink()  # a report written before the record: refreshed as before (a script's)
    make_report(folders["run"], Options(out=out))
    assert (out / pack.MADE_FROM).read_text(encoding="utf-8").strip() == str(folders["run"].resolve())
    with pytest.raises(OutputError, match="holds the report of"):
        make_report(folders["zhong"], Options(out=out))
    # a folder's own report place is its own, even moved (its record names where it was made)
    moved = tmp_path / "moved"
    shutil.copytree(folders["run"], moved, ignore=shutil.ignore_patterns("report*"))
    make_report(moved, Options(out=moved / "report"))
    (moved / "report" / pack.MADE_FROM).write_text("/somewhere/else\n", encoding="utf-8")
    make_report(moved, Options(out=moved / "report"))
    assert (moved / "report" / pack.MADE_FROM).read_text(encoding="utf-8").strip() == str(moved.resolve())


# -- exact tick labels, many settings, legends and cost panels --------------------------------------

_NUMBER = re.compile(r"^[−-]?\d[\d,]*(\.\d+)?%?$")
_SCALES = (1.0, 100.0, 1e-3, 1e-4, 1e-8, 1e-9)  # as drawn, percent, thousand, 万, 亿, billion


def _figures(path, lang):
    from sim.report.load import load
    from sim.report.style import assign_colours, language

    folder = load(path)
    assign_colours(folder.settings)
    with language(lang):
        for stem, func in pack.FIGURES:
            made = func(folder, lang)
            if made is not None:
                made[0].canvas.draw()
                yield stem, made[0]


def _tick_mismatches(fig) -> list[str]:
    """Numeric tick labels that are not their tick's value (at one of the report's scales)."""
    bad = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for loc, text in zip(axis.get_majorticklocs(), axis.get_majorticklabels()):
                label = text.get_text().strip()
                if not _NUMBER.match(label):
                    continue  # level names, years (minor ticks), empty
                value = float(label.replace("−", "-").replace(",", "").rstrip("%"))
                if not any(abs(value - loc * k) <= 1e-9 * max(1.0, abs(loc * k)) for k in _SCALES):
                    bad.append(f"{label!r} at {loc!r}")
    return bad


@pytest.mark.slow  # redraws every figure; the formatter itself is tested below in the default suite
@pytest.mark.parametrize("name, lang", [("run", "en"), ("sweep", "zh"), ("grid", "en")])
def test_every_tick_label_is_its_tick_value(folders, name, lang):
    checked = 0
    for stem, fig in _figures(folders[name], lang):
        assert _tick_mismatches(fig) == [], stem
        checked += 1
    assert checked >= 4


def test_percent_ticks_every_two_and_a_half_points_read_exactly():
    """The fan chart's case: ticks at 30, 32.5, 35 must not read '33' (a 33.3% line would sit wrongly)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MultipleLocator

    from sim.report.style import percent_axis

    fig = Figure()
    ax = fig.subplots()
    ax.set_ylim(0.295, 0.36)
    ax.yaxis.set_major_locator(MultipleLocator(0.025))
    percent_axis(ax)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    labels = [t.get_text() for t in ax.yaxis.get_majorticklabels()]
    assert {"30.0", "32.5", "35.0"} <= set(labels) and "33" not in labels
    assert _tick_mismatches(fig) == []
    ax.set_ylim(0.0, 1.0)
    ax.yaxis.set_major_locator(MultipleLocator(0.2))
    FigureCanvasAgg(fig).draw()
    labels = [t.get_text() for t in ax.yaxis.get_majorticklabels()]
    assert {"0", "20", "40", "60", "80", "100"} <= set(labels) and not [x for x in labels if "." in x]


def test_up_to_48_settings_have_distinct_colour_and_line_style():
    from types import SimpleNamespace

    from sim.report.style import assign_colours

    for n in (1, 5, 12, 13, 24, 30, 48):
        settings = [SimpleNamespace(params={"levers.training.intensity": i}, scenario="baseline", is_baseline=i == 0,
                                    colour=None, linestyle=None) for i in range(n)]
        assign_colours(settings)
        looks = [(s.colour, str(s.linestyle)) for s in settings]
        assert len(set(looks)) == n, n
        assert settings[0].colour == "#000000"


def test_compact_labels_and_their_key():
    from sim.report.text import lever_key, short_setting_label

    params = {"levers.training.intensity": 2.0, "levers.studio.intensity": 0.5, "levers.competition.intensity": 1}
    assert short_setting_label(params, "en") == "T×2 S×0.5 C×1"
    assert short_setting_label(params, "zh") == "培×2 室×0.5 赛×1"
    assert lever_key(list(params), "en") == "Key: T training, S studios, C competitions (× status-quo level)"
    assert "培＝培训" in lever_key(list(params), "zh")
    assert short_setting_label({"n_agents": 5000, "levers.studio.intensity": 2}, "en") == "n_agents=5000, S×2"


def test_legend_check_finds_cut_off_legends_and_look_alike_keys():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sim.report.style import legend_problems

    def drawn(labels_colours, **legend_kw):
        fig = Figure(figsize=(4, 3))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        for lab, c in labels_colours:
            ax.plot([0, 1], [0, 1], color=c, label=lab)
        ax.legend(**legend_kw)
        fig.canvas.draw()
        w, h = fig.get_size_inches() * fig.dpi
        return legend_problems(fig, w, h)

    assert drawn([("a", "#000000"), ("b", "#0072B2")]) == []
    same = drawn([("a", "#0072B2"), ("b", "#0072B2")])
    assert same == ["legend keys of 'a' and 'b' look the same"]
    cut = drawn([("a very long label " * 4, "#000000")], loc="center left", bbox_to_anchor=(0.6, 0.5))
    assert any("cut off" in p for p in cut)


def test_a_legend_key_too_short_for_its_line_style_is_found_and_the_targets_keys_show_theirs():
    """Fig. 1's national target (a dash-dot line with a star) had a key that looked solid: 2.2 font sizes
    of 8 points less the star's 9 left 4.3 points each side for matplotlib's 10.6-point pattern."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sim.report.figures import LEGEND_HANDLE
    from sim.report.style import language, legend_problems, rc

    def problems(handlelength, marker="*", ls="-."):
        with language("en"):
            fig = Figure(figsize=(4, 3))
            FigureCanvasAgg(fig)
            ax = fig.subplots()
            ax.plot([0, 1], [0.5, 0.5], color="#666666", ls=ls, lw=1.0, marker=marker, ms=9, label="target")
            ax.legend(handlelength=handlelength)
            fig.canvas.draw()
            w, h = fig.get_size_inches() * fig.dpi
            return legend_problems(fig, w, h)

    pattern = sum(rc("en")["lines.dashdot_pattern"])
    assert problems(2.2) == [f"legend key of 'target' shows {(2.2 * 8 - 9) / 2:.1f} points of its line, less than "
                             f"its {pattern:.1f}-point pattern: it looks solid"]
    assert problems(LEGEND_HANDLE) == [] and problems(LEGEND_HANDLE, ls="--") == []
    assert problems(2.2, marker="") == []  # without a star all 17.6 points show: a pattern and more
    assert (LEGEND_HANDLE * 8 - 9) / 2 >= pattern


@pytest.mark.slow  # a 48-job and a 30-job sweep, and their reports: about 2-3 minutes on 2 cores
@pytest.mark.parametrize("grid, replicates", [
    # the case: 4 x 3 x 2 = 24 settings of 3 levers; its layout check failed before
    (["levers.training.intensity=1,0,2,4", "levers.studio.intensity=1,2,3", "levers.competition.intensity=1,2"], 2),
    (["levers.training.intensity=1,0,0.5,2,4", "levers.studio.intensity=1,2,3", "levers.competition.intensity=1,0"], 1),
], ids=["24-settings", "30-settings"])
def test_many_settings_stay_legible(tmp_path, grid, replicates):
    out = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "sim", "-m", *grid, f"replicate=range(0,{replicates})",
                           "n_agents=500", "horizon.end_year=2024", "hydra/launcher=basic", f"hydra.sweep.dir={out}"],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    n_settings = int(np.prod([len(g.split("=", 1)[1].split(",")) for g in grid]))
    for lang in ("en", "zh"):
        written = make_report(out, Options(lang=lang, formats=("png",), out=tmp_path / f"report_{lang}"))
        assert not any(written.layout.values()), {k: v for k, v in written.layout.items() if v}
        fig4 = pd.read_csv(written.out / "figures" / "fig4_scenario_comparison.csv")
        cost = fig4[fig4["metric"] == "cost_per_additional_high_skill_worker"]
        assert len(cost) == n_settings
        undefined = cost[cost["mean"].isna()]
        assert (undefined["undefined_because"].isin(["baseline", "no_gain", "no_pairs"])).all()
        assert (undefined["undefined_because"] == "baseline").sum() == 1
        fig6 = pd.read_csv(written.out / "figures" / "fig6_promotions.csv")
        assert fig6["short_label"].nunique() == n_settings and fig6["label"].nunique() == n_settings


def test_spend_contour_labels_write_every_level_exactly():
    """Fig. 5's spend contours sit at matplotlib's round levels (3, 4.5, 6, ...): a label of 4 or 8 on
    the 4.5 and 7.5 billion contours would misstate what is drawn."""
    from sim.report.compare import level_digits

    assert level_digits([3.0, 4.5, 6.0, 7.5, 9.0]) == 1
    assert level_digits([0.25, 0.5, 0.75]) == 2
    assert level_digits([2.0, 4.0, 6.0]) == 0
    assert level_digits([1 / 3]) == 3  # never more than 3 decimals
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    x = np.arange(3.0)
    cs = ax.contour(x, x, np.add.outer(x, x) * 2.25 + 1.5, levels=5)
    d = level_digits(cs.levels)
    texts = [lab.get_text() for lab in ax.clabel(cs, fmt=lambda v: f"{v:,.{d}f}")]
    plt.close(fig)
    assert sorted(float(t) for t in texts) == sorted(v for v in cs.levels if 1.5 < v < 10.5)


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_remembered_text_widths_wrap_a_header_as_measuring_each_line_afresh():
    """fit_lines remembers the width of each line it measures (sim.report.style._text_width); the
    lines it gives must be those that measuring every line again gives, in both languages (whose fonts
    draw the same Latin text at different widths), so a width remembered under one font is never used
    for another."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from sim.report import style

    title = ("Chongqing: high-skill share of skilled workers under the chosen setting and the status quo, "
             "median and 50% / 90% bands over 8 joint draws of 20,000 agents")

    def wrapped(lang: str, width: float, size: float = 12, fresh: bool = True) -> list[str]:
        with style.language(lang):
            renderer = FigureCanvasAgg(Figure(figsize=(8, 4))).get_renderer()
            if fresh:
                style._WIDTHS.clear()
            return style.fit_lines(title, size, width, renderer)

    differ = [w for w in np.arange(3.0, 8.01, 0.25) if wrapped("en", w) != wrapped("zh", w)]
    assert differ, "the two fonts wrap this title alike at every width: the test would show nothing"
    for w in differ[:3]:
        en, zh = wrapped("en", w), wrapped("zh", w)
        wrapped("en", w)  # remembered under the English font ...
        assert wrapped("zh", w, fresh=False) == zh  # ... and not used for the Chinese one
        assert wrapped("zh", w, fresh=False) == zh and wrapped("en", w, fresh=False) == en  # all from memory
    for size in (12, 8):  # narrower trials repeat the last one's lines: the same result from memory
        assert wrapped("en", 5.0, size, fresh=False) == wrapped("en", 5.0, size)
    assert len(wrapped("en", 5.0, 12)) >= 2  # the title does wrap at 5 inches


def test_two_threads_drawing_in_two_languages_keep_their_own_settings():
    """language() on two threads at once: a Chinese block, and an English block asked for while it runs
    that would still be running when the Chinese one ends. Each block draws under its own fonts, and the
    process's settings are the earlier ones once both end. (With matplotlib's rc_context alone, so
    interleaved, the Chinese block gets the English fonts, the English block the defaults, and the
    Chinese settings stay in force.)"""
    import threading

    import matplotlib

    from sim.report.style import language, rc

    before = dict(matplotlib.rcParams)
    zh, en = rc("zh")["font.family"], rc("en")["font.family"]
    assert zh != en
    entered, english_in, chinese_out, seen = threading.Event(), threading.Event(), threading.Event(), {}

    def chinese():
        with language("zh"):
            entered.set()
            english_in.wait(0.5)  # the English block enters meanwhile, unless it has to wait for this one
            seen["zh"] = list(matplotlib.rcParams["font.family"])
        chinese_out.set()

    def english():
        entered.wait(10)
        with language("en"):
            english_in.set()
            chinese_out.wait(10)  # still inside when the Chinese block ends
            seen["en"] = list(matplotlib.rcParams["font.family"])

    threads = [threading.Thread(target=chinese), threading.Thread(target=english)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen == {"zh": list(zh), "en": list(en)}
    assert dict(matplotlib.rcParams) == before


def test_a_region_of_the_users_own_shows_the_shares_its_preset_observes(folders):
    """A preset copied under a new name (README: "your own region") has no targets.csv rows: fig. 1
    showed none of the observed shares its history holds. They now come from the preset, named as
    such; a region in targets.csv keeps its rows and adds no duplicates (test above)."""
    import dataclasses

    from sim.report import tables
    from sim.report.load import load

    folder = load(folders["zhong"])
    own = {**folder.settings[0].region, "name": "my_city",
           "history": {"high_skill_share": {"2021-12": 0.281, "2024-06": 0.297}}}
    folder.settings = [dataclasses.replace(s, region=own) for s in folder.settings]
    obs = tables.references(folder, lambda r: r["name"]).query("kind == 'observed'")
    assert obs[["date", "value", "region", "source"]].values.tolist() == [
        ["2021-12", 0.281, "my_city", "config: region.history.high_skill_share"],
        ["2024-06", 0.297, "my_city", "config: region.history.high_skill_share"]]


@pytest.mark.parametrize("name", ["run", "sweep"])
def test_the_income_panels_show_every_month_of_their_lines(folders, name):
    """The mean and median panels share one scale; it was the mean panel's alone, and the median,
    which runs lower, was cut off below the axis in its first months."""
    from sim.report.figures import fig_income
    from sim.report.load import load
    from sim.report.style import language

    with language("en"):
        fig, _ = fig_income(load(folders[name]), "en")
        for ax in fig.get_axes()[:2]:
            lo, hi = ax.get_ylim()
            ys = np.concatenate([np.asarray(line.get_ydata(), float) for line in ax.get_lines()
                                 if len(line.get_ydata()) > 2])
            assert lo <= ys.min() and ys.max() <= hi, (ax.get_title(), lo, hi, ys.min(), ys.max())


@pytest.mark.slow  # a 32-job sweep and its reports in two languages: about 20 s on 2 cores
def test_the_lever_response_heatmap_keeps_contour_labels_off_the_cells_values(tmp_path):
    """The named sweep training_vs_studios (4 x 4 settings): matplotlib placed the spend contour's "8"
    on the cell's "33.8%" (the layout check warned; the figure was written anyway), and the subtitle
    gave a key to short labels that this chart does not use."""
    out = tmp_path / "tvs"
    proc = subprocess.run([sys.executable, "-m", "sim", "-m", "+sweep=training_vs_studios", "replicate=range(0,2)",
                           "n_agents=2000", "horizon.end_year=2027", f"hydra.sweep.dir={out}"],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for lang in ("en", "zh"):
        written = make_report(out, Options(lang=lang, formats=("png",), out=tmp_path / f"report_{lang}"))
        assert "fig5_lever_response" in written.figures
        assert written.layout["fig5_lever_response"] == [], written.layout["fig5_lever_response"]
    from sim.report.compare import fig_response
    from sim.report.load import load
    from sim.report.style import language

    with language("en"):
        fig, _ = fig_response(load(out), "en")
        from matplotlib.text import Text

        texts = [t.get_text() for t in fig.findobj(Text)]
        assert not any("Key:" in t for t in texts) and any("Contours: mean cumulative spend" in t for t in texts)


def test_a_folder_of_study_folders_is_named_by_what_they_are(tmp_path):
    """`skillsim-report plans` (a folder of plan folders) said it "holds run folders"."""
    import json as _json

    from sim.errors import DataError
    from sim.report.load import load

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "COMPLETE").write_text("x", encoding="utf-8")
        (tmp_path / name / "manifest.json").write_text(_json.dumps({"kind": "plan"}), encoding="utf-8")
    with pytest.raises(DataError, match=r"holds plan folders, not a sweep's jobs; give one of them \(skillsim-report "):
        load(tmp_path)


def test_a_folder_of_folders_one_of_them_damaged_is_named_as_such_not_as_damaged(tmp_path):
    """`skillsim-report three` (a plan and a forecast under it, the forecast's runs.csv edited) said "1
    problem in the folder (skillsim-verify)" and `skillsim-report /tmp` listed 122 problems of other
    folders (a user trial): the folder given is no report's, and the line says so, as it does when the
    folders under it are intact."""
    import json as _json

    from sim.errors import DataError
    from sim.report.pack import make_report

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "choice.json").write_text("{}", encoding="utf-8")
        (tmp_path / name / "COMPLETE").write_text("x", encoding="utf-8")  # no checksum of the manifest: damaged
        (tmp_path / name / "manifest.json").write_text(_json.dumps({"kind": "plan", "files": {"choice.json": "0" * 64}}),
                                                       encoding="utf-8")
    with pytest.raises(DataError, match=r"holds plan folders, not a sweep's jobs; give one of them \(skillsim-report "):
        make_report(tmp_path)
    (tmp_path / "c").mkdir()  # a folder of none of skillsim's
    with pytest.raises(DataError, match=r"c is not a run folder"):
        make_report(tmp_path / "c")


@pytest.mark.parametrize("costs", [[None, -88_273.0, 120_000.0, float("nan")], [None, -88_273.0, -20_000.0]],
                         ids=["mixed", "only-negative"])
def test_a_negative_cost_is_a_bar_left_of_zero_and_every_bar_and_reason_is_inside_the_panel(costs):
    """A setting that spends less than the baseline and adds high-skill workers has a negative cost per
    additional worker (a user trial: -88,273 yuan). Fig. 4's cost axis ran from 0 to the largest cost,
    so its bar was cut away beside positive ones, and alone it was drawn on a reversed axis as a long bar.
    Each defined cost is now a bar of its own length and sign, inside the axis, with the zero line."""
    import matplotlib.pyplot as plt
    from types import SimpleNamespace

    from sim.report.compare import cost_panel

    ids = [f"s{i}" for i in range(len(costs))]
    d = pd.DataFrame({"setting": ids, "mean": [math.nan if c is None else c for c in costs],
                      "undefined_because": ["baseline" if c is None else ("no_gain" if c != c else "") for c in costs]})
    settings = [SimpleNamespace(id=i, colour="#0072B2", linestyle="-") for i in ids]
    ypos = {i: len(ids) - 1 - k for k, i in enumerate(ids)}
    fig, ax = plt.subplots()
    try:
        assert cost_panel(ax, d, settings, ypos, 1000.0, "en") is True
        ax.set_ylim(-0.6, len(ids) - 0.4)  # as fig. 4 sets it for its panels (shared y)
        fig.canvas.draw()
        bars = sorted((p.get_y() + p.get_height() / 2, p.get_width()) for p in ax.patches)
        want = sorted((ypos[i], c / 1000) for i, c in zip(ids, costs) if c is not None and c == c)
        assert [y for y, _ in bars] == [y for y, _ in want]
        assert np.allclose([w for _, w in bars], [w for _, w in want], rtol=1e-9)
        lo, hi = ax.get_xlim()
        assert lo < min(w for _, w in want) and hi >= max(0.0, max(w for _, w in want)) and lo < 0 <= hi
        assert any(np.allclose(line.get_xdata(), 0) for line in ax.get_lines())  # the zero line
        box = ax.get_window_extent()
        texts = [a for a in ax.texts if a.get_text().startswith("n/a")]
        assert len(texts) == sum(c is None or c != c for c in costs)
        for a in texts:  # every reason inside the panel
            e = a.get_window_extent(fig.canvas.get_renderer())
            assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1, (a.get_text(), e, box)
    finally:
        plt.close(fig)


def test_the_income_by_level_panel_says_its_whiskers_are_t_intervals_of_the_mean(folders):
    """Fig. 3's by-level panel draws each mean with its 95% t-interval over replicates, under a figure note
    that speaks of medians and 50%/90% bands (the panels above): a user trial read the whiskers as bands.
    The panel says what they are where they are drawn; a single run's has none, and says none."""
    import matplotlib.pyplot as plt

    from sim.report.figures import fig_income
    from sim.report.load import load

    for name, whiskers in (("grid", True), ("run", False)):
        fig, _ = fig_income(load(folders[name]), "en")
        try:
            panel = [ax for ax in fig.axes if "by level" in ax.get_title()]
            assert len(panel) == 1
            title = panel[0].get_title().replace("\n", " ")
            assert ("95% t-interval" in title) is whiskers, title
            vertical = [ln for ln in panel[0].get_lines() if len(ln.get_xdata()) == 2
                        and ln.get_xdata()[0] == ln.get_xdata()[1]]
            assert bool(vertical) is whiskers
        finally:
            plt.close(fig)


def test_setting_labels_round_an_optuna_trials_values_as_far_as_they_stay_apart():
    """An Optuna sweep's settings were labelled with 16-digit values (T×0.0003431244520346599), which ran
    over each other in the figures. Labels now give 3 significant digits, more only where two settings
    would otherwise read the same; whole and short values read as before."""
    from sim.report.text import fmt_number, label_digits, short_setting_label

    k = "levers.training.intensity"
    trials = [{k: 0.0003431244520346599, "levers.studio.intensity": 0.9069977178955193},
              {k: 1.2575835432098845, "levers.studio.intensity": 2.0556585011902784}]
    assert label_digits(trials) == 3
    assert short_setting_label(trials[0], "en", digits=3) == "T×0.000343 S×0.907"
    assert label_digits([{k: 1.2344}, {k: 1.2349}]) == 4  # 1.23 twice at 3 digits
    assert label_digits([{k: 1.0}, {k: 1.0000000000001}]) == 14
    assert [fmt_number(v, 3) for v in (2.0, 1.5, 0.25, 7)] == ["2", "1.5", "0.25", "7"]
    # no exponent, and a large value keeps its units (a yuan amount of an Optuna sweep read 1.05e+05)
    assert [fmt_number(v, 3) for v in (104512.75, 1734.29, 0.0003431244520346599)] == ["104513", "1734", "0.000343"]


def test_fig5_draws_points_for_scattered_settings_and_names_contours_only_where_drawn(folders):
    """Fig. 5 of an Optuna sweep (trials at scattered values) coloured a heatmap cell around each trial, so
    settings never run were coloured, and its note named spend contours that scattered points cannot
    give. Scattered settings are now points, each labelled; a full grid keeps its heatmap and contours."""
    import matplotlib.pyplot as plt
    from matplotlib.collections import PathCollection, QuadMesh
    from matplotlib.text import Text

    from sim.report import tables
    from sim.report.compare import _heatmap, numeric_keys
    from sim.report.load import load
    from sim.report.text import spend_scale

    folder = load(folders["grid"])
    keys = numeric_keys(folder)
    surf = tables.surface(folder, keys)
    assert len(keys) == 2 and len(surf) == 4
    scattered = surf.iloc[:3].copy()  # three trials at values of their own: 3 of 9 cells
    scattered[keys[0]] = [0.13, 0.61, 1.27]
    scattered[keys[1]] = [0.4, 1.9, 1.1]
    # a grid with a failed job (3 of its 4 cells) keeps its heatmap
    for rows, grid in ((surf, True), (surf.iloc[:3], True), (scattered, False)):
        fig = _heatmap(folder, rows, keys, "en", "title")
        try:
            ax = [a for a in fig.axes if a.get_xlabel()][0]
            said = " ".join(tx.get_text() for tx in fig.findobj(Text))
            assert ("Contours" in said) is grid
            assert any(isinstance(c, QuadMesh) for c in ax.collections) is grid
            dots = [c for c in ax.collections if isinstance(c, PathCollection)]
            if not grid:
                assert len(dots) == 1 and len(dots[0].get_offsets()) == 3
                labels = [a.get_text() for a in ax.texts]
                assert sorted(labels) == sorted(f"{100 * m:.1f}%, {c / spend_scale('en'):,.2f}" for m, c in
                                                zip(rows["median"], rows["spend_cum_total_mean"]))
        finally:
            plt.close(fig)


def test_a_sweep_of_one_run_per_setting_says_so_instead_of_means_and_intervals_of_one(folders):
    """Every Optuna sweep has one run per setting: its report said "means across 1 replicates with 95%
    t-intervals" with none drawn, "Mean of 1 replicates with 95% t-interval", and gave 90% ranges such as
    [37.5%, 37.5%]. It now says there is one run per setting, and no interval."""
    import dataclasses

    from sim.report.figures import note
    from sim.report.load import load
    from sim.report.markdown import scope
    from sim.report.text import what_runs

    folder = load(folders["grid"])
    assert "Mean of 2 replicates with 95% t-interval" in note(folder, "en", "ci")
    one = dataclasses.replace(folder, settings=[dataclasses.replace(s, n=1) for s in folder.settings])
    assert note(one, "en", "ci").startswith("One run per setting: no interval")
    assert note(one, "en", "fan").startswith("One run per setting") and "Median" not in note(one, "en", "fan")
    assert what_runs(one, "en") == "replicate" and what_runs(folder, "en") == "replicates"
    assert "one run per setting" in scope(one, "en") and "1 replicates" not in scope(one, "en")


@pytest.mark.parametrize("values, digits", [([0.527], 3), ([21.04, 0.527], 3), ([21.04, 5.2], 2), ([21.04], 1),
                                            ([120.0, 35.5], 1), ([0.0, float("nan")], 1), ([-0.0423, 3.0], 3)])
def test_the_spend_column_keeps_three_significant_digits_of_its_smallest_amount(values, digits):
    """A county's 0.527 billion yuan read "0.5" in the key numbers (a user trial); every row of the column
    gets the same decimals, enough for its smallest amount, from one to three."""
    from sim.report.markdown import column_digits, num

    assert column_digits(values) == digits
    assert num(0.527, column_digits([0.527])) == "0.527"


def test_band_keys_take_the_bands_colour_where_one_colour_is_drawn():
    """Fig. 5's one-lever chart drew blue bands with grey legend keys (a user trial)."""
    from matplotlib.colors import to_rgba

    from sim.report.style import band_handles

    b50, b90 = band_handles(lambda k: k, "#0072B2")
    # the 50% key as its band looks where drawn, over the 90% band (test_each_band_key_looks_as_its_band_does)
    seen = 1 - (1 - 0.30) * (1 - 0.12)
    assert b50.get_facecolor() == to_rgba("#0072B2", seen) and b90.get_facecolor() == to_rgba("#0072B2", 0.12)
    assert band_handles(lambda k: k)[0].get_facecolor() == to_rgba("#000000", seen)  # several colours: grey


def test_the_chinese_charts_name_skilled_workers_one_way():
    """Fig. 1 said 占技能人才比例 and the forecast's, the plan's and the explorer's 占技能劳动者比例 for
    the same share (a user trial): every chart says 技能人才."""
    import sim

    root = Path(sim.__file__).parent
    said = [str(p.relative_to(root)) for p in root.rglob("*.py") if "技能劳动者" in p.read_text(encoding="utf-8")]
    assert said == []


def test_each_band_key_looks_as_its_band_does_where_drawn():
    """The 50% band is drawn over the 90% band, and looked darker (grey 156) than its legend key drawn at
    the band's own opacity (grey 178; a user trial). Rendered, each key's colour is its band's, within
    one grey level, for black and for a colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.report.style import band_handles, draw_fan

    x = np.arange(10.0)
    stats_ = pd.DataFrame({"q05": 0.0, "q25": 1.0, "median": 2.0, "q75": 3.0, "q95": 4.0}, index=x)
    for colour in ("#000000", "#0072B2"):
        fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
        draw_fan(ax, x, stats_, colour, visible=False)  # the bands only
        ax.set_xlim(0, 9)
        ax.set_ylim(0, 8)  # the legend on white, as the figures place it
        legend = ax.legend(handles=band_handles(lambda k: k, colour), loc="upper left", handlelength=3,
                           handleheight=2)
        fig.canvas.draw()
        image = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
        height = image.shape[0]

        def pixel(px, py):  # display coordinates (origin bottom left) to the image's row and column
            return image[height - 1 - int(round(py)), int(round(px))]

        to_px = ax.transData.transform
        band50, band90 = pixel(*to_px((6.0, 1.5))), pixel(*to_px((6.0, 0.5)))
        keys = [pixel(*patch.get_window_extent().get_points().mean(axis=0)) for patch in legend.get_patches()]
        plt.close(fig)
        assert np.abs(keys[0] - band50).max() <= 1, (colour, keys[0], band50)
        assert np.abs(keys[1] - band90).max() <= 1, (colour, keys[1], band90)
        assert np.abs(band50 - band90).max() > 20  # the two bands do look different
