"""Report of a plan folder (skillsim-plan), in English or Chinese, each figure with the CSV of exactly
what it draws:

- the high-skill share of the chosen mix against the cost base, month by month, on the same fresh
  samples (common random numbers): medians with 50% and 90% bands, the target and the observed points;
- cost against the probability of meeting the target, and cost against the mean share, for every mix
  the search evaluated, with the frontier (the mixes no other beats on both) and the chosen mix on its
  fresh samples with its interval;
- the marginal cost of one more point of share for each free lever at the chosen mix.

report.md states the answer (or the infeasibility) from choice.json and tabulates the near-optimal
mixes and the marginal costs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import DataError
from .figures import region_name
from .style import band_handles, draw_fan, month_end, new_figure, percent_axis, year_axis
from .text import LEVERS, spend_scale

FILES = ("choice.json", "manifest.json", "config.yaml", "candidates.csv", "frontier_probability.csv",
         "frontier_share.csv", "near_optimal.csv", "marginal_cost.csv", "trajectory.csv")
CHOSEN, BASE, OTHER = "#0072B2", "#555555", "#BBBBBB"
TEXT = {
    "en": {
        "traj_title": "{region}: high-skill share with the {what} and with {the_base}",
        "traj_note": "median and 50% / 90% bands over {n} {which} samples ({unc}); every line on the same samples",
        "traj_title_sq": "{region}: high-skill share with the {what}, with {the_base} and with the status quo",
        "chosen": "chosen mix", "best": "best mix found (target not met)", "status_quo": "status quo",
        "no_policy": "no policy", "band50": "50% band (in its line's colour)", "band90": "90% band (in its line's colour)", "observed": "observed",
        "target": "target {v} by {y}", "share_axis": "high-skill share of skilled workers (%)", "year": "year",
        "cp_title": "{region}: cost and probability of reaching {v} by {y}",
        "cp_note": "dots: every mix on the {n} search samples; line: the frontier{star}",
        "cp_star": "; star: the chosen mix on {m} fresh samples with its 95% interval",
        "cost_axis": "cost over {the_base}, {funder}, to {y} (billion yuan{disc})",
        "disc": ", discounted at {r} a year",
        "p_axis": "probability of meeting the target (%)", "mixes": "mixes searched", "frontier": "frontier",
        "confidence": "required probability {c}",
        "cs_title": "{region}: cost and high-skill share in December {y}",
        "cs_note": "dots: mean over the {n} search samples for every mix; line: the frontier with 5-95% ranges{star}",
        "cs_star": "; star: the chosen mix on {m} fresh samples with its 5-95% range",
        "mean_share_axis": "mean high-skill share, December {y} (%)",
        "mc_title": "{region}: cost of one more point of share, by lever, at the chosen mix",
        "mc_note": "intensity changed by {step:g} on the {m} fresh samples (up; down where a step up would pass "
                   "the lever's upper bound; common random numbers); billion yuan per percentage point of mean share",
        "mc_axis": "billion yuan per percentage point", "no_gain": "no gain",
        "total": "total", "government": "government", "employer": "employers",
        "md_title": "Plan: {region}", "md_lever": "lever", "md_intensity": "intensity (× status quo)",
        "md_cost": "cost (billion yuan)", "md_p": "P(target met)", "md_share": "mean share [5%, 95%]",
        "md_near": "Near-optimal mixes (within {tol:.0%} of the chosen cost, on the search samples; mixes that fell "
                   "short of the target on the fresh samples are left out: finalists.csv)",
        "md_near_share": "Near-optimal mixes (within the budget, with a mean share of at least {keep:.0%} of the "
                         "chosen mix's: {tol:.0%} less, not {tol:.0%} points; on the search samples)",
        "md_marginal": "Marginal cost at the chosen mix", "md_per_point": "billion yuan per point",
        "md_method": "Method: {runs} model runs of {agents:,} agents; {unc}. See `skillsim-plan --help`.",
        "unc_joint": "parameter draws (the fitted parameters and the assumptions without a source), structural inputs and replicates", "unc_rep": "replicates only",
        "stmt": "The least-cost mix reaching {v} by {y} with probability {c}{within}: {mix}. It costs {cost} billion "
                "yuan ({funder}) {more} than {the_base} to {y}; P(target met) = {p} [{lo}, {hi}] on {n} fresh "
                "samples; mean share {share} (5-95%: {q05} to {q95}).",
        "more": "more", "less": "less",
        "stmt_max": "The highest share within a budget of {budget} billion yuan: {mix}, mean share {share} "
                    "(5-95%: {q05} to {q95}) in December {y}, at {cost} billion yuan ({funder}) {more} than {the_base}, "
                    "on {n} fresh samples.",
        "stmt_none": "No mix within the bounds{budget} reaches {v} by {y} with probability {c}. The best found: "
                     "{mix}, probability {p}, mean share {share}, on {n} {which} samples.",
        "budget_and": " and the budget of {b} billion yuan",
        "within_budget": " (within the budget of {b} billion yuan)",
        # the answer on samples no step of the search saw (skillsim-plan's confirm)
        "stmt_confirm": " On {n} samples it was not chosen on: P(target met) = {p} [{lo}, {hi}].",
        "stmt_confirm_low": " On {n} samples it was not chosen on: P(target met) = {p} [{lo}, {hi}], below the {c} "
                            "asked (its interval is under it).",
        "stmt_confirm_max": " On {n} samples it was not chosen on: mean share {share}, {cost} billion yuan {more} "
                            "({where} the budget).",
        "within": "within", "over": "over",
    },
    "zh": {
        "traj_title": "{region}：{what}与{base}下的高技能人才占比",
        "traj_note": "中位数及50%/90%区间，{n}个{which}样本（{unc}）；各条线使用相同样本",
        "traj_title_sq": "{region}：{what}、{base}与现行政策下的高技能人才占比",
        "chosen": "选定组合", "best": "找到的最佳组合（未达目标）", "status_quo": "现行政策", "no_policy": "无政策",
        "band50": "50%区间（与其曲线同色）", "band90": "90%区间（与其曲线同色）", "observed": "观测值", "target": "目标：{y}年{v}",
        "share_axis": "高技能人才占技能人才比例（%）", "year": "年份",
        "cp_title": "{region}：{y}年达到{v}的成本与概率",
        "cp_note": "圆点：各组合在{n}个搜索样本上的结果；折线：前沿{star}",
        "cp_star": "；星号：选定组合在{m}个新样本上的结果及95%区间",
        "cost_axis": "相对{base}的{funder}成本，累计至{y}年（亿元{disc}）",
        "disc": "，按年{r}贴现",
        "p_axis": "达到目标的概率（%）", "mixes": "搜索的组合", "frontier": "前沿", "confidence": "要求概率{c}",
        "cs_title": "{region}：成本与{y}年12月高技能人才占比",
        "cs_note": "圆点：各组合在{n}个搜索样本上的均值；折线：前沿及5%-95%范围{star}",
        "cs_star": "；星号：选定组合在{m}个新样本上的结果及5%-95%范围",
        "mean_share_axis": "{y}年12月高技能人才占比均值（%）",
        "mc_title": "{region}：选定组合下各政策工具每提高一个百分点的成本",
        "mc_note": "强度变动{step:g}（提高；提高将超出上限时为降低），在{m}个新样本上（共同随机数）；亿元/百分点（占比均值）",
        "mc_axis": "亿元/百分点", "no_gain": "无增益",
        "total": "总", "government": "政府", "employer": "企业",
        "md_title": "规划：{region}", "md_lever": "政策工具", "md_intensity": "强度（现行水平的倍数）",
        "md_cost": "成本（亿元）", "md_p": "达标概率", "md_share": "占比均值 [5%, 95%]",
        "md_near": "近似最优组合（成本在选定组合的{tol:.0%}以内，搜索样本；在新样本上未达目标的组合不列入，见 finalists.csv）",
        "md_near_share": "近似最优组合（预算以内，占比均值不低于选定组合的{keep:.0%}：相对相差不超过{tol:.0%}，而非{tol:.0%}个百分点；搜索样本）",
        "md_marginal": "选定组合下的边际成本", "md_per_point": "亿元/百分点",
        "md_method": "方法：共{runs}次模拟，每次{agents:,}个主体；{unc}。详见 `skillsim-plan --help`。",
        "unc_joint": "参数抽样（校准参数与无来源的假设）、结构性输入与重复运行", "unc_rep": "仅重复运行",
        "stmt": "以不低于{c}的概率在{y}年达到{v}的最低成本组合{within}：{mix}。相对{base}的{funder}成本累计至{y}年{more}{cost}亿元；"
                "达标概率{p} [{lo}, {hi}]（{n}个新样本）；占比均值{share}（5%-95%：{q05}至{q95}）。",
        "stmt_max": "预算{budget}亿元内占比最高的组合：{mix}，{y}年12月占比均值{share}（5%-95%：{q05}至{q95}），"
                    "相对{base}的{funder}成本{more}{cost}亿元（{n}个新样本）。",
        "more": "增加", "less": "减少",
        "stmt_none": "在取值范围{budget}内，没有组合能以{c}的概率在{y}年达到{v}。找到的最佳组合：{mix}，"
                     "概率{p}，占比均值{share}（{n}个{which}样本）。",
        "budget_and": "和{b}亿元预算",
        "within_budget": "（预算{b}亿元以内）",
        "stmt_confirm": "在未参与选择的{n}个样本上：达标概率{p} [{lo}, {hi}]。",
        "stmt_confirm_low": "在未参与选择的{n}个样本上：达标概率{p} [{lo}, {hi}]，低于要求的{c}（其区间整体低于该值）。",
        "stmt_confirm_max": "在未参与选择的{n}个样本上：占比均值{share}，成本{more}{cost}亿元（{where}预算）。",
        "within": "未超出", "over": "超出",
    },
}


def _pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def _load(p: Path) -> dict:
    if not (p / "COMPLETE").exists():
        raise DataError(f"{p}: unfinished plan folder (no COMPLETE marker)")
    try:
        f = {"choice": json.loads((p / "choice.json").read_text(encoding="utf-8")),
             "manifest": json.loads((p / "manifest.json").read_text(encoding="utf-8")),
             "config": yaml.safe_load((p / "config.yaml").read_text(encoding="utf-8"))}
        for name in FILES:
            if name.endswith(".csv"):
                f[name[:-4]] = pd.read_csv(p / name)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise DataError(f"{p}: plan folder cannot be read ({type(exc).__name__}: {exc})") from None
    return f


def _mix_text(mix: dict, lang: str) -> str:
    sep = "，" if lang == "zh" else ", "
    return sep.join(f"{LEVERS[k][1 if lang == 'zh' else 0]} ×{v:.2f}" for k, v in mix.items())


def _words(f: dict, lang: str) -> dict:
    T, o = TEXT[lang], f["manifest"]["options"]
    unc = T["unc_joint"] if f["manifest"].get("uncertainty", "").startswith("joint") else T["unc_rep"]
    return {"region": region_name(f["config"]["region"], lang), "y": o["target.year"],
            "v": _pct(o["target.share"]) if o.get("target.share") is not None else "",
            "c": f"{o['confidence']:.0%}", "base": T[o["cost_base"]], "funder": T[o["funder"]], "unc": unc,
            # in a sentence: "the status quo" but "no policy" ("more than the no policy" was written)
            "the_base": ("the " if lang == "en" and o["cost_base"] == "status_quo" else "") + T[o["cost_base"]]}


def statement(f: dict, lang: str) -> str:
    """The answer as a planner reads it, from choice.json's fields."""
    T, c, o, w = TEXT[lang], f["choice"], f["manifest"]["options"], _words(f, lang)
    scale = spend_scale(lang)  # billion yuan / 亿元

    def money(yuan: float) -> str:
        return f"{yuan / scale:,.2f}"
    if not c["feasible"]:
        budget = T["budget_and"].format(b=money(o["budget"])) if o.get("budget") is not None else ""
        return T["stmt_none"].format(**{**w, "budget": budget,
                                        "mix": _mix_text(c["best_mix"], lang), "p": f"{c['best_probability']:.0%}",
                                        "share": _pct(c["best_mean_share"]),
                                        "n": c.get("best_n_samples", o.get("samples", "?")),  # older folders: search
                                        "which": _samples(c.get("best_samples", "search"), lang)})
    r = o.get("discount") or 0.0
    w = {**w, "funder": w["funder"] + (T["disc"].format(r=f"{r:.1%}") if r else "")}
    settings = "".join(f", {k}={v}" for k, v in c.get("settings", {}).items())  # searched allocation/selection
    fields = {**w, "mix": _mix_text(c["mix"], lang) + settings, "cost": money(abs(c["cost_yuan"])),
              "more": T["less" if c["cost_yuan"] < 0 else "more"], "n": c["fresh_samples"],
              "share": _pct(c["share_mean"]), "q05": _pct(c["share_q05"]), "q95": _pct(c["share_q95"])}
    if c["objective"] == "max_share":
        return T["stmt_max"].format(**fields, budget=money(o["budget"])) + _confirmation(c, T, w, money)
    lo, hi = c["probability_95"]
    within = T["within_budget"].format(b=money(o["budget"])) if o.get("budget") is not None else ""
    return (T["stmt"].format(**fields, p=f"{c['probability']:.0%}", lo=f"{lo:.0%}", hi=f"{hi:.0%}", within=within)
            + _confirmation(c, T, w, money))


def _confirmation(c: dict, T: dict, w: dict, money) -> str:
    """The answer on the samples no step of the search saw (choice.json's `confirmation`; none in a folder
    written before it)."""
    k = c.get("confirmation")
    if not k:
        return ""
    if c["objective"] == "max_share":
        return T["stmt_confirm_max"].format(n=k["samples"], share=_pct(k["share_mean"]), cost=money(abs(k["cost_yuan"])),
                                            more=T["less" if k["cost_yuan"] < 0 else "more"],
                                            where=T["within" if k["within_budget"] else "over"])
    lo, hi = k["probability_95"]
    return T["stmt_confirm" if k["confirmed"] else "stmt_confirm_low"].format(
        n=k["samples"], p=f"{k['probability']:.0%}", lo=f"{lo:.0%}", hi=f"{hi:.0%}", c=w["c"])


def _samples(which: str, lang: str) -> str:
    """`fresh` / `search` samples in the page's language."""
    return {"fresh": "新" if lang == "zh" else "fresh", "search": "搜索" if lang == "zh" else "search"}[which]


def trajectory(f: dict, lang: str):
    T, w, c = TEXT[lang], _words(f, lang), f["choice"]
    tr = f["trajectory"]
    which = "fresh" if c["feasible"] else c.get("best_samples", "search")  # the best found's, on which it was judged
    n = int(tr["n"].iloc[0])
    title = "traj_title_sq" if "status_quo" in set(tr["mix"]) else "traj_title"  # a third line: the status quo
    fig, body = new_figure(5.2, T[title].format(**w, what=T["chosen" if c["feasible"] else "best"]),
                           T["traj_note"].format(n=n, which=_samples(which, lang), unc=w["unc"]))
    ax = body.subplots()
    handles = []
    kinds = [("cost_base", BASE, w["base"]), ("status_quo", "#009E73", T["status_quo"]),
             ("chosen" if c["feasible"] or "best_found" not in set(tr["mix"]) else "best_found", CHOSEN,
              T["chosen" if c["feasible"] else "best"])]  # a folder written before best_found: its best is "chosen"
    for kind, colour, label in kinds:
        d = tr[tr["mix"] == kind].sort_values("date")
        if d.empty:  # the status quo is its own line only when the cost base is something else
            continue
        line = draw_fan(ax, month_end(d["date"]), d, colour)
        line.set_label(label)
        handles.append(line)
    handles += band_handles(T.__getitem__)
    reg = f["config"]["region"]
    first = str(tr["date"].min())
    obs = pd.DataFrame(sorted(reg.get("history", {}).get("high_skill_share", {}).items()), columns=["date", "value"])
    obs = obs[obs["date"] >= f"{int(first[:4]) - 3}-01"]
    if not obs.empty:
        handles.append(ax.scatter(month_end(obs["date"]), obs["value"], color="#D55E00", s=18, zorder=5,
                                  label=T["observed"]))
    o = f["manifest"]["options"]
    if o.get("target.share") is not None:
        ax.axhline(o["target.share"], color="#D55E00", lw=0.9, ls="--")
        handles.append(ax.scatter(month_end([f"{o['target.year']}-12"]), [o["target.share"]], marker="D",
                                  color="#D55E00", s=28, zorder=6, label=T["target"].format(v=w["v"], y=w["y"])))
    years = pd.concat([month_end(tr["date"]), month_end(obs["date"])]).dt.year
    year_axis(ax, years.min(), years.max(), 14)
    percent_axis(ax)
    ax.set_ylabel(T["share_axis"])
    ax.set_xlabel(T["year"])
    body.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3))
    data = pd.concat([tr.assign(kind="simulated"),
                      obs.assign(kind="observed", mix="observed", metric="high_skill_share")], ignore_index=True)
    return fig, data


def _chosen_row(f: dict) -> pd.Series | None:
    """The chosen mix's row on its fresh samples (finalists.csv holds it; candidates.csv too)."""
    c = f["choice"]
    if not c["feasible"]:
        return None
    cand = f["candidates"]
    fresh = cand[cand["samples"] == "fresh"]
    hit = np.ones(len(fresh), dtype=bool)
    for k, v in c["mix"].items():
        hit &= np.isclose(fresh[f"{k}_intensity"], v, rtol=0, atol=1e-9)
    return fresh[hit].iloc[0] if hit.any() else None


def _cost_axis(ax, f: dict, lang: str) -> float:
    r = f["manifest"]["options"].get("discount") or 0.0
    disc = TEXT[lang]["disc"].format(r=f"{r:.1%}") if r else ""
    ax.set_xlabel(TEXT[lang]["cost_axis"].format(**_words(f, lang), disc=disc))
    return spend_scale(lang)


def _frontier_figure(f: dict, lang: str, frontier: str, key: str):
    """The common frame of the two frontier charts: the searched mixes, the frontier, the chosen row
    (on its fresh samples), the figure with its title and note, the axes and the cost scale."""
    T, w = TEXT[lang], _words(f, lang)
    cand = f["candidates"]
    search = cand[cand["samples"] == "search"]
    n_search = int(search["n"].iloc[0]) if len(search) else 0
    chosen = _chosen_row(f)
    m = int(chosen["n"]) if chosen is not None else 0
    star = "" if chosen is None else T[f"{key}_star"].format(m=m)  # no answer, no star (an unreachable target)
    fig, body = new_figure(4.8, T[f"{key}_title"].format(**w), T[f"{key}_note"].format(n=n_search, star=star))
    ax = body.subplots()
    return search, f[frontier], chosen, fig, body, ax, _cost_axis(ax, f, lang)


def _star(ax, chosen: pd.Series, scale: float, value: str, lo: str, hi: str, label: str):
    """The chosen mix on its fresh samples: a star at its cost and value, with the interval lo-hi."""
    x = [chosen["cost_mean"] / scale]
    ax.errorbar(x, [chosen[value]], yerr=[[chosen[value] - chosen[lo]], [chosen[hi] - chosen[value]]],
                color=CHOSEN, capsize=3, lw=1.2)
    return ax.scatter(x, [chosen[value]], marker="*", s=120, color=CHOSEN, zorder=6, label=label)


def cost_probability(f: dict, lang: str):
    o = f["manifest"]["options"]
    if o["objective"] != "min_cost":
        return None  # the probability of a target is not what a max_share plan asks
    T, w = TEXT[lang], _words(f, lang)
    search, front, chosen, fig, body, ax, scale = _frontier_figure(f, lang, "frontier_probability", "cp")
    handles = [ax.scatter(search["cost_mean"] / scale, search["p_target"], s=14, color=OTHER, label=T["mixes"])]
    handles.append(ax.plot(front["cost_mean"] / scale, front["p_target"], color=BASE, lw=1.2, marker="o", ms=3,
                           drawstyle="steps-post", label=T["frontier"])[0])
    handles.append(ax.axhline(o["confidence"], color="#D55E00", lw=0.9, ls="--",
                              label=T["confidence"].format(c=w["c"])))
    rows = [search.assign(kind="searched"), front.assign(kind="frontier")]
    if chosen is not None:
        handles.append(_star(ax, chosen, scale, "p_target", "p_lo95", "p_hi95", T["chosen"]))
        rows.append(chosen.to_frame().T.assign(kind="chosen"))
    ax.set_ylim(-0.03, 1.03)
    percent_axis(ax)
    ax.set_ylabel(T["p_axis"])
    body.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    return fig, pd.concat(rows, ignore_index=True)


def cost_share(f: dict, lang: str):
    o = f["manifest"]["options"]
    T, w = TEXT[lang], _words(f, lang)
    search, front, chosen, fig, body, ax, scale = _frontier_figure(f, lang, "frontier_share", "cs")
    handles = [ax.scatter(search["cost_mean"] / scale, search["share_mean"], s=14, color=OTHER, label=T["mixes"])]
    ax.errorbar(front["cost_mean"] / scale, front["share_mean"],
                yerr=[front["share_mean"] - front["share_q05"], front["share_q95"] - front["share_mean"]],
                color=BASE, lw=0.8, capsize=2, ls="none")
    handles.append(ax.plot(front["cost_mean"] / scale, front["share_mean"], color=BASE, lw=1.2, marker="o", ms=3,
                           label=T["frontier"])[0])
    rows = [search.assign(kind="searched"), front.assign(kind="frontier")]
    if o.get("target.share") is not None and o["objective"] == "min_cost":
        handles.append(ax.axhline(o["target.share"], color="#D55E00", lw=0.9, ls="--",
                                  label=T["target"].format(v=w["v"], y=w["y"])))
    if chosen is not None:
        handles.append(_star(ax, chosen, scale, "share_mean", "share_q05", "share_q95", T["chosen"]))
        rows.append(chosen.to_frame().T.assign(kind="chosen"))
    percent_axis(ax)
    ax.set_ylabel(T["mean_share_axis"].format(y=w["y"]))
    body.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    return fig, pd.concat(rows, ignore_index=True)


def marginal_cost(f: dict, lang: str):
    mc = f["marginal_cost"]
    if mc.empty:
        return None
    T, w = TEXT[lang], _words(f, lang)
    scale = spend_scale(lang)
    fresh = _chosen_row(f)
    fig, body = new_figure(3.6, T["mc_title"].format(**w),
                           T["mc_note"].format(step=abs(float(mc["step"].iloc[0])), m=int(fresh["n"]) if fresh is not None else 0))
    ax = body.subplots()
    names = [LEVERS[k][1 if lang == "zh" else 0] for k in mc["lever"]]
    values = mc["cost_per_point"].astype(float)
    finite = values.where(np.isfinite(values), np.nan)
    y = np.arange(len(mc))
    ax.barh(y, (finite / scale).fillna(0.0), color=CHOSEN, height=0.6)
    for yi, v in zip(y, values):
        if not math.isfinite(v):
            ax.text(0, yi, " " + T["no_gain"], va="center", ha="left", fontsize=8, color="#555555")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel(T["mc_axis"])
    data = mc.assign(cost_per_point_shown=finite / scale, unit=T["mc_axis"])
    return fig, data


def markdown(f: dict, lang: str, stems: list[str]) -> str:
    T, w, c, o, man = TEXT[lang], _words(f, lang), f["choice"], f["manifest"]["options"], f["manifest"]
    scale = spend_scale(lang)
    lines = [f"# {T['md_title'].format(region=w['region'])}", "", statement(f, lang), ""]
    lines += [f"![{s}](figures/{s}.png)" for s in stems] + [""]
    if c["feasible"]:
        lines += [f"| {T['md_lever']} | {T['md_intensity']} |", "|---|---|"]
        lines += [f"| {LEVERS[k][1 if lang == 'zh' else 0]} | {v:.2f} |" for k, v in c["mix"].items()] + [""]
    near = f["near_optimal"]
    if len(near):
        levers = [col for col in near.columns if col.endswith("_intensity")]
        by_share = o.get("objective") == "max_share"  # no target: no probability of one, and near in share
        lines += [f"## {T['md_near_share' if by_share else 'md_near'].format(tol=o['tolerance'], keep=1 - o['tolerance'])}", "",
                  "| " + " | ".join([LEVERS[col[:-10]][1 if lang == 'zh' else 0] for col in levers]
                                    + [T["md_cost"]] + ([] if by_share else [T["md_p"]]) + [T["md_share"]]) + " |",
                  "|" + "---|" * (len(levers) + (2 if by_share else 3))]
        for _, r in near.iterrows():
            lines.append("| " + " | ".join([f"{r[col]:.2f}" for col in levers]
                                           + [f"{r['cost_mean'] / scale:,.2f}"]
                                           + ([] if by_share else [f"{r['p_target']:.0%}"])
                                           + [f"{_pct(r['share_mean'])} [{_pct(r['share_q05'])}, "
                                              f"{_pct(r['share_q95'])}]"]) + " |")
        lines.append("")
    mc = f["marginal_cost"]
    if len(mc):
        lines += [f"## {T['md_marginal']}", "", f"| {T['md_lever']} | {T['md_per_point']} |", "|---|---|"]
        for _, r in mc.iterrows():
            v = float(r["cost_per_point"])
            lines.append(f"| {LEVERS[r['lever']][1 if lang == 'zh' else 0]} | "
                         f"{f'{v / scale:,.2f}' if math.isfinite(v) else T['no_gain']} |")
        lines.append("")
    lines.append(T["md_method"].format(runs=man.get("runs", 0), agents=man.get("n_agents", 0), unc=w["unc"]))
    return "\n".join(lines) + "\n"


def plan_report(path: Path, opts) -> "object":
    """Write the plan report atomically (sim.report.study); returns what was written."""
    from .study import write_study_report

    f = _load(Path(path))
    figures = [("fig1_plan_trajectory", lambda lang: trajectory(f, lang)),
               ("fig2_plan_cost_probability", lambda lang: cost_probability(f, lang)),
               ("fig3_plan_cost_share", lambda lang: cost_share(f, lang)),
               ("fig4_plan_marginal_cost", lambda lang: marginal_cost(f, lang))]
    return write_study_report(Path(path), opts, figures, lambda lang, stems: markdown(f, lang, stems))
