"""skillsim-report on a plan folder: the trajectory of the chosen mix against the cost base, the
frontiers and the marginal costs, each figure's CSV being exactly the plan's numbers, in English and
Chinese; an infeasible plan is reported as such."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from sim.report import pack
from sim.studies import plan

#: two plans and four reports, about 25 s: in the slow set, which .ci/run runs, so that the default
#: suite keeps under 3 minutes on 2 cores (the plan's search itself is tested in test_plan.py)
pytestmark = pytest.mark.slow

TINY = ["region=chongqing", "target.year=2026", "levers=training", "training.lo=1", "n_agents=500",
        "samples=4", "fresh=8", "candidates=4", "refine=2", "finalists=1", "uncertainty=false"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("plans")
    ok = plan.run([*TINY, "target.share=0.30", f"out={root / 'ok'}"])
    far = plan.run([*TINY, "target.share=0.9", f"out={root / 'far'}"])
    reports = {(name, lang): pack.make_report(path, pack.Options(lang=lang, formats=("png",)))
               for name, path in (("ok", ok), ("far", far)) for lang in ("en", "zh")}
    return {"ok": ok, "far": far, "reports": reports}


def fig_csv(written, stem: str) -> pd.DataFrame:
    return pd.read_csv(written.out / "figures" / f"{stem}.csv")


def test_the_trajectory_holds_the_plans_own_runs(folders):
    ok = folders["ok"]
    choice = json.loads((ok / "choice.json").read_text())
    assert choice["feasible"], choice["statement"]
    traj = pd.read_csv(ok / "trajectory.csv")
    chosen, base = traj[traj["mix"] == "chosen"], traj[traj["mix"] == "cost_base"]
    assert (chosen["n"] == 8).all() and (base["n"] == 8).all()  # the fresh samples
    # both start from the same simulated history (the mix acts from the forecast start): identical
    assert chosen["mean"].iloc[0] == base["mean"].iloc[0]
    # the chosen mix's December of the target year is what the plan states for it
    last = chosen[chosen["date"] == "2026-12"].iloc[0]
    assert last["mean"] == pytest.approx(choice["share_mean"], abs=1e-12)
    assert last["q05"] == pytest.approx(choice["share_q05"], abs=1e-12)
    assert last["q95"] == pytest.approx(choice["share_q95"], abs=1e-12)
    assert list(chosen["date"]) == list(base["date"]) and chosen["date"].iloc[-1] == "2026-12"


def test_each_figure_csv_is_what_the_plan_wrote(folders):
    ok = folders["ok"]
    en = folders["reports"][("ok", "en")]
    assert set(en.figures) == {"fig1_plan_trajectory", "fig2_plan_cost_probability", "fig3_plan_cost_share",
                               "fig4_plan_marginal_cost"}
    traj = pd.read_csv(ok / "trajectory.csv")
    drawn = fig_csv(en, "fig1_plan_trajectory")
    sim_rows = drawn[drawn["kind"] == "simulated"].reset_index(drop=True)
    pd.testing.assert_frame_equal(sim_rows[traj.columns], traj, check_dtype=False)
    choice = json.loads((ok / "choice.json").read_text())
    cp = fig_csv(en, "fig2_plan_cost_probability")
    star = cp[cp["kind"] == "chosen"].iloc[0]
    assert star["p_target"] == choice["probability"] and star["cost_mean"] == pytest.approx(choice["cost_yuan"])
    front = pd.read_csv(ok / "frontier_probability.csv")
    assert np.allclose(cp[cp["kind"] == "frontier"]["cost_mean"], front["cost_mean"])
    cand = pd.read_csv(ok / "candidates.csv")
    assert (cp["kind"] == "searched").sum() == (cand["samples"] == "search").sum()
    mc = fig_csv(en, "fig4_plan_marginal_cost")
    written_mc = pd.read_csv(ok / "marginal_cost.csv")
    finite = np.isfinite(written_mc["cost_per_point"])
    assert np.allclose(mc["cost_per_point_shown"][finite], written_mc["cost_per_point"][finite] / 1e9)


def test_the_chinese_report_is_the_same_numbers_in_its_own_units(folders):
    en, zh = folders["reports"][("ok", "en")], folders["reports"][("ok", "zh")]
    md_en, md_zh = (en.out / "report.md").read_text(), (zh.out / "report.md").read_text()
    assert md_en.startswith("# Plan: Chongqing") and md_zh.startswith("# 规划：重庆")
    assert "亿元" in md_zh and "billion yuan" in md_en
    choice = json.loads((folders["ok"] / "choice.json").read_text())
    assert f"{choice['cost_yuan'] / 1e9:,.2f} billion yuan" in md_en
    assert f"{choice['cost_yuan'] / 1e8:,.2f}亿元" in md_zh
    mc_en, mc_zh = fig_csv(en, "fig4_plan_marginal_cost"), fig_csv(zh, "fig4_plan_marginal_cost")
    assert np.allclose(mc_zh["cost_per_point_shown"], 10 * mc_en["cost_per_point_shown"], equal_nan=True)
    assert not en.layout.get("fig1_plan_trajectory") and not zh.layout.get("fig1_plan_trajectory")


def test_an_infeasible_plan_is_reported_as_such(folders):
    far = folders["far"]
    choice = json.loads((far / "choice.json").read_text())
    assert choice["feasible"] is False
    en = folders["reports"][("far", "en")]
    md = (en.out / "report.md").read_text()
    assert "No mix within the bounds reaches 90.0% by 2026" in md
    # the trajectory shows the best mix found on the search samples, against the cost base
    traj = pd.read_csv(far / "trajectory.csv")
    assert (traj["n"] == 4).all()
    assert "chosen" not in set(traj["mix"])  # nothing was chosen: the best found is labelled as such
    best = traj[(traj["mix"] == "best_found") & (traj["date"] == "2026-12")].iloc[0]
    assert best["mean"] == pytest.approx(choice["best_mean_share"], abs=1e-12)
    assert (choice["best_samples"], choice["best_n_samples"]) == ("search", 4)
    assert f"mean share {100 * choice['best_mean_share']:.1f}%, on 4 search samples." in md
    assert "fig4_plan_marginal_cost" in en.skipped  # no chosen mix, no marginal cost


def test_an_infeasible_plan_written_before_best_found_is_drawn_as_before(folders, tmp_path):
    """A folder written before the best mix had its own label (trajectory.csv: chosen; choice.json without
    best_samples) is drawn with its best mix, on the search samples its options name: the package's
    promise that a folder's report can be drawn again from the folder alone."""
    import shutil

    old = tmp_path / "far_old"
    shutil.copytree(folders["far"], old, ignore=shutil.ignore_patterns("report*"))
    traj = pd.read_csv(old / "trajectory.csv")
    traj.loc[traj["mix"] == "best_found", "mix"] = "chosen"
    traj.to_csv(old / "trajectory.csv", index=False)
    choice = json.loads((old / "choice.json").read_text())
    del choice["best_samples"], choice["best_n_samples"]
    (old / "choice.json").write_text(json.dumps(choice))
    from sim.results import complete_text, sha256

    manifest = json.loads((old / "manifest.json").read_text())  # as the older version wrote it: sealed
    for name in ("trajectory.csv", "choice.json"):
        manifest["files"][name], manifest["sizes"][name] = sha256(old / name), (old / name).stat().st_size
    (old / "manifest.json").write_text(json.dumps(manifest))
    (old / "COMPLETE").write_text(complete_text(old / "manifest.json"), encoding="utf-8")
    written = pack.make_report(old, pack.Options(lang="en", formats=("png",)))
    md = (written.out / "report.md").read_text()
    assert f"mean share {100 * choice['best_mean_share']:.1f}%, on 4 search samples." in md
    drawn = fig_csv(written, "fig1_plan_trajectory")
    assert (drawn["mix"] == "chosen").any() and (drawn["mix"] == "cost_base").any(), drawn.head()


def _header(fig) -> str:
    """The figure's title and note, as drawn (wrapped lines joined)."""
    from matplotlib.text import Text

    return " ".join(t.get_text() for t in fig.findobj(Text) if t.get_text()).replace("\n", " ")


def test_a_caption_names_a_star_only_where_one_is_drawn(folders):
    """An unreachable target's frontier charts said "star: the chosen mix on 0 fresh samples with its 95%
    interval" over no star; the share chart's star has a 5-95% bar its caption did not name (a user trial)."""
    from sim.report import plan as plan_report

    ok, far = (plan_report._load(folders[k]) for k in ("ok", "far"))
    for figure in (plan_report.cost_probability, plan_report.cost_share):
        assert "star" not in _header(figure(far, "en")[0])
        assert "星号" not in _header(figure(far, "zh")[0])
    assert "star: the chosen mix on 8 fresh samples with its 95% interval" in _header(
        plan_report.cost_probability(ok, "en")[0])
    assert "star: the chosen mix on 8 fresh samples with its 5-95% range" in _header(plan_report.cost_share(ok, "en")[0])
    # the trajectory's third line (the status quo, with cost_base=no_policy) is named in its title
    no_policy = {**ok, "manifest": {**ok["manifest"], "options": {**ok["manifest"]["options"], "cost_base": "no_policy"}}}
    tr = ok["trajectory"]
    no_policy["trajectory"] = pd.concat([tr, tr[tr["mix"] == "cost_base"].assign(mix="status_quo")], ignore_index=True)
    assert "with the chosen mix, with no policy and with the status quo" in _header(
        plan_report.trajectory(no_policy, "en")[0])
    assert "with the chosen mix and with the status quo" in _header(plan_report.trajectory(ok, "en")[0])


def test_middle_income_is_refused_for_a_plans_report_which_shows_no_middle_income_share(folders, tmp_path):
    """`skillsim-report PLAN middle_income=-5` exited 0 and ignored the value (a run's report refuses it):
    a study's report draws no middle-income share, so the option is refused there, naming why."""
    from sim.errors import ConfigError

    with pytest.raises(ConfigError, match=r"middle_income = '-5' is invalid; allowed: an option of a run's or "
                                          r"sweep's report \(a plan report shows no middle-income share"):
        pack.make_report(folders["ok"], pack.Options(middle_income=-5.0, out=tmp_path / "r"))
    assert not (tmp_path / "r").exists()

