"""Reports of a sensitivity folder (skillsim-sensitivity) and a discovery folder (skillsim-discover), in
English or Chinese, each figure with the CSV of exactly what it draws.

Sensitivity: for each output, the indices of every input with their 95% bootstrap intervals (Sobol
total and first-order, or Morris μ*), the inputs whose interval includes zero drawn apart in grey and
not ranked, and the noise floor; for Morris, μ* against σ (with σ's bootstrap interval) for every
output and year. Discovery: PRIM's peeling trajectory (coverage against density, by the number of
restricted inputs) with the chosen box, and the box's range of each restricted input within the
input's full range; the chosen box said in a sentence (in Chinese, built from choice.json's numbers
and box.csv, not the English `statement`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..errors import DataError
from .figures import region_name
from .style import ExactFormatter, new_figure
from .text import spend_scale

ACT, FAINT, TOTAL = "#0072B2", "#BBBBBB", "#56B4E9"
SOBOL_BAR, SOBOL_OFFSET = 0.36, 0.19  #: a Sobol figure's bar height and the offset of each index's bar from its row
FAINT_FIRST = "#777777"  #: a first-order bar of an input not ranked, darker than its total bar (grey on grey hid it)
TEXT = {
    "en": {
        "share": "high-skill share", "income_mean": "mean income", "income_median": "median income",
        "cost": "cumulative cost",
        "sobol_title": "{region}: what drives the {output} in December {year} (Sobol indices)",
        "sobol_note": "total (light, upper bar) and first-order (dark, lower bar) indices, each with its 95% "
                      "bootstrap interval; {n} base samples x {r} replicates; a first-order index above the total, or "
                      "below zero, is estimation error; grey (light: total, dark: first-order): the total's 95% "
                      "interval reaches down to the noise floor (dashed) or zero, not ranked",
        "morris_title": "{region}: what drives the {output} in December {year} (Morris screening)",
        "morris_note": "μ* with 95% bootstrap intervals, {n} trajectories x {r} replicates; grey: the interval "
                       "reaches down to the noise floor (dashed) or zero, not ranked",
        "total": "total index", "first": "first-order index", "interval": "95% interval of each bar",
        "not_dist": "interval reaches the noise floor or zero",
        "few_note": "{n} {what} x {r} replicates: under {min} {what} the bootstrap intervals are far narrower "
                    "than the indices' real uncertainty, so no input is ranked and every bar or point is grey "
                    "(the value is drawn; dashed: the noise floor)",
        "not_dist_few": "not ranked: fewer than {min} {what}",
        "few_note_points": "{n} {what} x {r} replicates: under {min} {what} the bootstrap intervals are far "
                           "narrower than the indices' real uncertainty, so no input is ranked and every point is "
                           "grey (the three largest μ* are named, not ranked)",
        "floor": "noise floor", "index_axis": "share of variance", "mu_axis": "μ* ({unit} per input range)",
        "unit_share": "percentage points", "unit_income": "yuan a year", "unit_cost": "billion yuan",
        "sigma_axis": "σ ({unit} per input range)",
        "ms_title": "{region}: Morris μ* against σ, December {year}",
        "ms_note": "σ large against μ*: the input acts non-linearly or with others; vertical bars: 95% bootstrap "
                   "interval of σ; grey: μ*'s interval reaches down to the noise floor or zero",
        "ms_panel": "{output}, {year}", "year_sep": ", ", "md_sigma": "σ [95%]",
        "sigma": "σ", "mu_star": "μ*", "md_total": "total index ST [95%]",
        "tradeoff_title": "{region}: where {condition} (PRIM's peeling and pasting trajectory)",
        "tradeoff_note": "each point a box: coverage (share of the {k} runs of interest inside) and density (share "
                         "of the runs inside that are of interest); star: the chosen box, on the runs it was found "
                         "from{held}",
        "held_note": "; circle: a box found the same way, on runs it was not found from ({folds}-fold cross-validation)",
        "held": "held out",
        "coverage": "coverage", "density": "density", "res_dim": "restricted inputs", "chosen": "chosen box",
        "threshold": "density threshold {t:g}",
        "box_title": "{region}: the chosen box for {condition}",
        "box_note": "bar: each restricted input's full range; blue: the box; quasi-p-value on the right "
                    "(above 0.05: not significant, grey); density in the box {d:.0%} on the runs it was found from{held}",
        "box_held": ", {h:.0%} for a box found the same way on runs it was not found from ({folds}-fold cross-validation)",
        "box_axis": "position within the input's range",
        "md_sens": "Sensitivity: {region}", "md_disc": "Scenario discovery: {region}", "md_input": "input",
        "md_how_morris": "Method: Morris elementary effects ({n} trajectories, {levels} levels; SALib)",
        "md_how_sobol": "Method: Sobol indices (Saltelli design, {n} base samples; SALib)",
        "md_how_runs": "; {runs:,} runs of {agents:,} agents, {replicates} replicate(s) per design point; inputs: {inputs}.",
        "md_how_repeats": " The design has {rows:,} rows (design.csv), with the nominal point's noise runs {planned:,}; "
                          "a point it repeats (Morris trajectories meet) runs once, so {runs:,} ran.",
        "md_how_quick": " A quick look (quick=true): a small design.",
        "md_how_unranked": " With fewer than {min} {what} the bootstrap intervals are far narrower than the "
                           "indices' uncertainty, so no input is ranked or marked distinguishable here.",
        "md_what_morris": "trajectories", "md_what_sobol": "base samples",
        "md_how_prim": "Method: PRIM (EMA Workbench) on {n:,} designs x {replicates} replicate(s) = {runs:,} runs of "
                       "{agents:,} agents; inputs: {inputs}; density threshold {threshold:g}, peel_alpha {peel_alpha:g}.",
        "md_rank": "rank", "md_noise": "Stochastic noise",
        "md_noise_text": "{output}: stochastic variance at the nominal point is {fixed:.1%} of the variance of a single "
                         "run (pooled over the design: {pooled:.1%}); noise floor of the index (μ* or total index, "
                         "on the replicate means, from the noise that common random numbers leave): {floor}.",
        "md_top": "Top inputs: {output}, December {year}", "md_box": "The box",
        "md_none": "No input's 95% interval lies above both zero and the noise floor, so none is ranked (an index "
                   "itself may be above the floor; indices.csv gives every index, its interval and the floor; more "
                   "replicates, more design points or wider ranges narrow them).",
        "md_unranked": "Not ranked: the design is too small for its intervals to rank on (see above); indices.csv "
                       "gives every index and its interval.",
        "md_range": "box range", "md_qp": "quasi-p",
        "md_noise_text_one": "{output}: stochastic variance at the nominal point is {fixed:.1%} of the variance of a "
                             "single run (one replicate per design point: no pooled figure); noise floor of the index "
                             "(μ* or total index), an upper bound from the noise at the nominal point, the part every "
                             "design point shares included (more than one replicate separates it): {floor}.",
    },
    "zh": {
        "share": "高技能人才占比", "income_mean": "平均收入", "income_median": "收入中位数", "cost": "累计成本",
        "sobol_title": "{region}：{year}年12月{output}的驱动因素（Sobol指数）",
        "sobol_note": "总效应（浅色，上方条形）与一阶效应（深色，下方条形）指数，各附其95%自助法区间；{n}个基础样本×{r}次重复；一阶指数高于总效应指数或低于零属估计误差；灰色（浅：总效应，深：一阶）：总效应的95%区间下端未高于噪声下限（虚线）或零，不排序",
        "morris_title": "{region}：{year}年12月{output}的驱动因素（Morris筛选）",
        "morris_note": "μ*及95%自助法区间，{n}条轨迹×{r}次重复；灰色：区间下端未高于噪声下限（虚线）或零，不排序",
        "total": "总效应指数", "first": "一阶效应指数", "interval": "各条形的95%区间", "not_dist": "区间下端未高于噪声下限或零", "floor": "噪声下限",
        "few_note": "{n}个{what}×{r}次重复：{what}少于{min}个时，自助法区间远窄于指数的真实不确定性，因此不对输入排序，"
                    "所有条形或点均为灰色（仍画出数值；虚线：噪声下限）",
        "not_dist_few": "未排序：{what}少于{min}个",
        "few_note_points": "{n}个{what}×{r}次重复：{what}少于{min}个时，自助法区间远窄于指数的真实不确定性，因此不对输入排序，"
                           "所有点均为灰色（标出μ*最大的三个输入，不作排序）",
        "index_axis": "方差占比", "mu_axis": "μ*（{unit}/输入取值范围）",
        "unit_share": "百分点", "unit_income": "元/年", "unit_cost": "亿元", "sigma_axis": "σ（{unit}/输入取值范围）",
        "ms_title": "{region}：Morris μ*与σ（{year}年12月）",
        "ms_note": "σ相对μ*较大：输入作用非线性或存在交互；竖线：σ的95%自助法区间；灰色：μ*的区间下端未高于噪声下限或零",
        "ms_panel": "{year}年{output}", "year_sep": "、", "md_sigma": "σ [95%]",
        "sigma": "σ", "mu_star": "μ*", "md_total": "总效应指数ST [95%]",
        "tradeoff_title": "{region}：{condition}的情景发现（PRIM剥离与粘贴轨迹）",
        "tradeoff_note": "每个点为一个区域：覆盖率（{k}次关注运行中落入区域的比例）与密度（区域内运行中属于关注情形的比例）；星号：选定区域，在用于寻找它的运行上{held}",
        "held_note": "；圆圈：按同一规则找到的区域，在未用于寻找它的运行上（{folds}折交叉验证）",
        "held": "留出检验",
        "coverage": "覆盖率", "density": "密度", "res_dim": "受限输入个数", "chosen": "选定区域",
        "threshold": "密度阈值{t:g}",
        "box_title": "{region}：{condition}的选定区域",
        "box_note": "灰条：各受限输入的完整取值范围；蓝色：选定区域；右侧为准p值（大于0.05不显著，灰色）；区域内密度：在用于寻找它的运行上为{d:.0%}{held}",
        "box_held": "，按同一规则在未用于寻找它的运行上找到的区域为{h:.0%}（{folds}折交叉验证）",
        "box_axis": "在输入取值范围中的位置",
        "md_sens": "敏感性分析：{region}", "md_disc": "情景发现：{region}", "md_input": "输入",
        "md_how_morris": "方法：Morris基本效应（{n}条轨迹，{levels}个水平；SALib）",
        "md_how_sobol": "方法：Sobol指数（Saltelli设计，{n}个基础样本；SALib）",
        "md_how_runs": "；共{runs:,}次运行，每次{agents:,}个主体，每个设计点{replicates}次重复；输入：{inputs}。",
        "md_how_repeats": "设计共{rows:,}行（design.csv），加上名义点的噪声运行共{planned:,}次；重复的设计点（Morris 轨迹相交）只运行一次，"
                          "故实际运行{runs:,}次。",
        "md_how_quick": "快速预览（quick=true）：设计较小。",
        "md_how_unranked": "{what}少于{min}个时，自助法区间远窄于指数的真实不确定性，因此本报告不对输入排序，也不标记可区分。",
        "md_what_morris": "轨迹", "md_what_sobol": "基础样本",
        "md_how_prim": "方法：PRIM（EMA Workbench），{n}个设计点×{replicates}次重复，共{runs:,}次运行，每次{agents:,}个主体；"
                       "输入：{inputs}；密度阈值{threshold:g}，peel_alpha {peel_alpha:g}。",
        "md_rank": "排序", "md_noise": "随机噪声",
        "md_noise_text": "{output}：基准点的随机方差占单次运行方差的{fixed:.1%}（设计内合并：{pooled:.1%}）；"
                         "指数（μ*或总效应指数，基于重复均值，按共同随机数未抵消的噪声计算）的噪声下限：{floor}。",
        "md_top": "主要输入：{output}，{year}年12月", "md_box": "选定区域",
        "md_none": "没有输入的95%区间同时高于零和噪声下限，因此不作排序（指数本身可能高于下限；各指数、区间及下限见indices.csv；增加重复次数、设计点或扩大取值范围可使其收窄）。",
        "md_unranked": "不作排序：设计太小，其区间不足以排序（见上）；各指数及区间见indices.csv。",
        "md_range": "区域范围", "md_qp": "准p值",
        "md_noise_text_one": "{output}：基准点的随机方差占单次运行方差的{fixed:.1%}（每个设计点仅一次重复，无设计内合并值）；"
                             "指数（μ*或总效应指数）的噪声下限为上界，按基准点的噪声计算，包括各设计点共有的部分"
                             "（重复多于一次时可将其分离）：{floor}。",
    },
}


def _load(p: Path, files: tuple[str, ...]) -> dict:
    if not (p / "COMPLETE").exists():
        raise DataError(f"{p}: unfinished study folder (no COMPLETE marker)")
    try:
        f = {"manifest": json.loads((p / "manifest.json").read_text(encoding="utf-8")),
             "config": yaml.safe_load((p / "config.yaml").read_text(encoding="utf-8"))}
        for name in files:
            path = p / name
            if name.endswith(".json"):
                f[name[:-5]] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
            else:
                f[name[:-4]] = pd.read_csv(path) if path.exists() else None
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise DataError(f"{p}: study folder cannot be read ({type(exc).__name__}: {exc})") from None
    return f


def _output_words(output: str, lang: str) -> tuple[str, int]:
    metric, year = output.split("@")
    return TEXT[lang]["share" if metric == "high_skill_share" else metric], int(year)


def _units(output: str, lang: str) -> tuple[float, str]:
    """The factor from an output's own units to those its axis is labelled in, and their name: shares
    in percentage points, incomes in yuan a year, costs in billion yuan (亿元), as the other reports."""
    metric = output.split("@")[0]
    if metric == "high_skill_share":
        return 100.0, TEXT[lang]["unit_share"]
    if metric == "cost":
        return 1.0 / spend_scale(lang), TEXT[lang]["unit_cost"]
    return 1.0, TEXT[lang]["unit_income"]


def indices_figure(f: dict, output: str, lang: str):
    T, m = TEXT[lang], f["manifest"]
    method, o = m["options"]["method"], m["options"]
    idx = f["indices"][f["indices"]["output"] == output].copy()
    key = "mu_star" if method == "morris" else "ST"
    idx["sort"] = np.where(idx["distinguishable"], idx[key], -np.inf)
    idx = idx.sort_values(["sort", key], ascending=[True, True])  # bottom to top: the largest at the top
    name, year = _output_words(output, lang)
    region = region_name(f["config"]["region"], lang)
    height = 1.6 + 0.24 * len(idx)
    fig, body = new_figure(height, T[f"{method}_title"].format(region=region, output=name, year=year),
                           few_words(m, lang) or T[f"{method}_note"].format(n=o["n"], r=o["replicates"]))
    ax = body.subplots()
    y = np.arange(len(idx))
    colours = [ACT if d else FAINT for d in idx["distinguishable"]]
    lo, hi = idx[f"{key}_lo95"].to_numpy(), idx[f"{key}_hi95"].to_numpy()
    val = idx[key].to_numpy()
    handles = []
    if method == "sobol":
        # each input's total index above its first-order index, side by side, each with its own interval
        # through its own bar: drawn over each other, the total's interval ran through the first-order bar
        # (a user trial read it as that bar's interval, one that excluded its own estimate)
        total_y, first_y = y + SOBOL_OFFSET, y - SOBOL_OFFSET
        ax.barh(total_y, val, color=[TOTAL if d else FAINT for d in idx["distinguishable"]], height=SOBOL_BAR)
        ax.errorbar(val, total_y, xerr=[np.clip(val - lo, 0, None), np.clip(hi - val, 0, None)], fmt="none",
                    ecolor="#333333", lw=0.8, capsize=2)
        s1 = idx["S1"].to_numpy()
        # the estimate as it is, below zero too (estimation error): a bar clipped at 0 had its interval
        # centred on the negative value beside it
        ax.barh(first_y, s1, color=[ACT if d else FAINT_FIRST for d in idx["distinguishable"]], height=SOBOL_BAR)
        if (np.concatenate([s1, val]) < 0).any():
            ax.axvline(0, color="#333333", lw=0.6)
        if "S1_lo95" in idx:
            ax.errorbar(s1, first_y, xerr=[np.clip(s1 - idx["S1_lo95"].to_numpy(), 0, None),
                                           np.clip(idx["S1_hi95"].to_numpy() - s1, 0, None)],
                        fmt="none", ecolor="#333333", lw=0.8, capsize=2)
        if idx["distinguishable"].any():
            handles += [Patch(fc=TOTAL, label=T["total"]), Patch(fc=ACT, label=T["first"])]
        else:  # every bar grey: the keys in the greys drawn, which tell the two indices apart (the note says why)
            handles += [Patch(fc=FAINT, label=T["total"]), Patch(fc=FAINT_FIRST, label=T["first"])]
        handles.append(Line2D([], [], color="#333333", lw=0.8, marker="|", markersize=6, label=T["interval"]))
        floor = float(idx["noise_floor"].iloc[0]) if "noise_floor" in idx else np.nan
        if np.isfinite(floor):
            handles.append(ax.axvline(floor, color="#D55E00", ls="--", lw=0.9, label=T["floor"]))
        ax.set_xlabel(T["index_axis"])
    else:
        ax.barh(y, val, color=colours, height=0.6)
        ax.errorbar(val, y, xerr=[np.clip(val - lo, 0, None), np.clip(hi - val, 0, None)], fmt="none",
                    ecolor="#333333", lw=0.8, capsize=2)
        if idx["distinguishable"].any():
            handles.append(Patch(fc=ACT, label=T["mu_star"]))
        floor = float(idx["noise_floor"].iloc[0]) if "noise_floor" in idx else np.nan
        if np.isfinite(floor) and floor > 0:
            handles.append(ax.axvline(floor, color="#D55E00", ls="--", lw=0.9, label=T["floor"]))
        scale, unit = _units(output, lang)
        ax.xaxis.set_major_formatter(ExactFormatter(scale))  # each label its tick's value, no "1e10" apart
        ax.set_xlabel(T["mu_axis"].format(unit=unit))
    if method != "sobol" or idx["distinguishable"].any():
        handles.append(Patch(fc=FAINT, label=few_words(m, lang, "not_dist_few") or T["not_dist"]))
    ax.set_yticks(y, idx["input"])
    ax.tick_params(axis="y", labelsize=7)
    body.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3))
    cols = ["output", "input", "group", *[c for c in idx.columns if c.startswith(("mu", "sigma", "S1", "ST"))],
            "noise_floor", "distinguishable", "rank"]  # the floor: the dashed line drawn
    return fig, idx[[c for c in cols if c in idx.columns]].iloc[::-1].reset_index(drop=True)


def name_points(ax, rows, points) -> None:
    """Name the chosen inputs beside their points (`rows`; `points` are every point of the panel, in data
    units): rightwards where the name fits inside the frame, else leftwards (names ran past the frame),
    and a name that would cover another name or any point moves down, with a thin line back to its point
    (two inputs with close μ* and σ wrote one name over the other). Call it once the figure is laid out
    (`Figure.draw_without_rendering`): it measures the names where they are drawn."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    marks = [Bbox.from_bounds(x - 4, y - 4, 8, 8) for x, y in ax.transData.transform(np.asarray(points, float))]
    placed: list = []
    for _, r in rows.iterrows():
        short = r["input"].split(".")[1] if r["input"].startswith("levers.") else r["input"].rsplit(".", 1)[-1]
        at = (r["mu_star"], r["sigma"])
        own = Bbox.from_bounds(*(ax.transData.transform(at) - 4), 8, 8)
        label = ax.annotate(short, at, fontsize=6, xytext=(3, 2), textcoords="offset points", ha="left")
        if label.get_window_extent(renderer).x1 > frame.x1:  # past the frame: leftwards
            label.set_position((-3, 2))
            label.set_horizontalalignment("right")
        dx, dy = label.get_position()
        obstacles = placed + [m for m in marks if not np.allclose(m.bounds, own.bounds)]
        while any(label.get_window_extent(renderer).overlaps(b) for b in obstacles) and dy > -70:
            dy -= 7
            label.set_position((dx, dy))
        if dy != 2:  # moved off its point: a line back to it
            ax.annotate("", at, xytext=(dx, dy + 2), textcoords="offset points",
                        arrowprops={"arrowstyle": "-", "lw": 0.4, "color": "#888888", "shrinkA": 0, "shrinkB": 2})
        placed.append(label.get_window_extent(renderer))


def mu_sigma_figure(f: dict, lang: str):
    """μ* against σ, one panel per output and year (two per row), σ with its bootstrap interval where
    the folder has one (folders written before it did not)."""
    T, m = TEXT[lang], f["manifest"]
    if m["options"]["method"] != "morris":
        return None
    idx = f["indices"]
    outputs = list(dict.fromkeys(idx["output"]))
    years = list(dict.fromkeys(_output_words(o, lang)[1] for o in outputs))
    region = region_name(f["config"]["region"], lang)
    rows = -(-len(outputs) // 2)
    fig, body = new_figure(0.9 + 2.75 * rows, T["ms_title"].format(region=region,
                                                                   year=T["year_sep"].join(map(str, years))),
                           few_words(m, lang, "few_note_points") or T["ms_note"])  # no noise floor drawn here
    axes = np.atleast_1d(body.subplots(rows, 2)).ravel()
    interval = "sigma_lo95" in idx
    named = []  # the names go in once the panels are laid out (`name_points` measures them)
    for ax, output in zip(axes, outputs):
        d = idx[idx["output"] == output]
        colours = [ACT if v else FAINT for v in d["distinguishable"]]
        if interval:
            sig = d["sigma"].to_numpy()
            ax.errorbar(d["mu_star"], sig, yerr=[np.clip(sig - d["sigma_lo95"].to_numpy(), 0, None),
                                                 np.clip(d["sigma_hi95"].to_numpy() - sig, 0, None)],
                        fmt="none", ecolor="#999999", lw=0.6, zorder=1)
        ax.scatter(d["mu_star"], d["sigma"], c=colours, s=14, zorder=2)
        # the ranked inputs' three largest; in a design too small to rank any, the three largest all the same
        # (a quick study's chart named no point), which its note says are not ranked
        named.append((ax, (d if too_few(m) else d[d["distinguishable"]]).nlargest(3, "mu_star"),
                      d[["mu_star", "sigma"]].to_numpy()))
        name, year = _output_words(output, lang)
        ax.set_title(T["ms_panel"].format(output=name, year=year) if len(years) > 1 else name, fontsize=9)
        scale, unit = _units(output, lang)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ExactFormatter(scale))
        ax.set_xlabel(T["mu_axis"].format(unit=unit), fontsize=8)
        ax.set_ylabel(T["sigma_axis"].format(unit=unit), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(outputs):]:
        ax.set_visible(False)
    fig.draw_without_rendering()  # the limits and the layout the names are placed in
    for ax, rows, points in named:
        name_points(ax, rows, points)
    cols = ["output", "input", "mu_star", "sigma", *(["sigma_lo95", "sigma_hi95"] if interval else []),
            "distinguishable"]
    return fig, idx[cols]


def too_few(m: dict) -> bool:
    """Whether the study's design was too small to rank its inputs on (sim.studies.sensitivity.MIN_RANKED)."""
    from ..studies.sensitivity import MIN_RANKED

    o = m.get("options", {})
    return o.get("method") in MIN_RANKED and "n" in o and int(o["n"]) < MIN_RANKED[o["method"]]


def few_words(m: dict, lang: str, key: str = "few_note") -> str:
    """A figure's note (or its legend's grey key, `not_dist_few`) for a design too small to rank on; ""
    otherwise. The figures said the grey bars' intervals reached the noise floor, which was not why (a
    user trial: intervals of 12.8-14.1 points against a floor of 0.52)."""
    if not too_few(m):
        return ""
    from ..studies.sensitivity import MIN_RANKED

    o = m["options"]
    return TEXT[lang][key].format(n=o["n"], r=o.get("replicates", 1), min=MIN_RANKED[o["method"]],
                                  what=TEXT[lang][f"md_what_{o['method']}"])


def how_sensitivity(m: dict, lang: str) -> str:
    """How the study ran, from its manifest: method and design, runs, agents, replicates, inputs (the
    report named none of them)."""
    T, o = TEXT[lang], m["options"]
    if "n" not in o:  # a manifest without its design (none is written so): say nothing rather than guess
        return ""
    text = T[f"md_how_{o['method']}"].format(n=o["n"], levels=o.get("levels"))
    text += T["md_how_runs"].format(runs=m.get("runs", 0), agents=m.get("n_agents", 0),
                                    replicates=o.get("replicates", 1), inputs=o.get("inputs", ""))
    rows = m.get("design_runs")
    noise = o.get("noise_replicates", 0) if (o.get("noise_replicates") or 0) > 1 else 0
    if rows is not None and rows + noise != m.get("runs"):  # the log's count: 96 runs, then 4; the report said 72
        text += T["md_how_repeats"].format(rows=rows, planned=rows + noise, runs=m.get("runs", 0))
    from ..studies.sensitivity import MIN_RANKED

    return (text + (T["md_how_quick"] if o.get("quick") else "")
            + (T["md_how_unranked"].format(min=MIN_RANKED.get(o["method"]), what=T[f"md_what_{o['method']}"])
               if too_few(m) else ""))


def sensitivity_markdown(f: dict, lang: str, stems: list[str]) -> str:
    T, m = TEXT[lang], f["manifest"]
    region = region_name(f["config"]["region"], lang)
    key = "mu_star" if m["options"]["method"] == "morris" else "ST"
    how = how_sensitivity(m, lang)
    lines = [f"# {T['md_sens'].format(region=region)}", ""] + ([how, ""] if how else [])
    lines += [f"![{s}](figures/{s}.png)" for s in stems] + [""]
    idx = f["indices"]
    for output in dict.fromkeys(idx["output"]):
        name, year = _output_words(output, lang)
        d = idx[(idx["output"] == output) & idx["distinguishable"]].sort_values("rank").head(8)
        sigma = key == "mu_star" and "sigma_lo95" in idx  # Morris: σ and its interval beside μ*
        if d.empty:  # no table with no rows: say why (a design too small to rank on is said in how_sensitivity)
            lines += [f"## {T['md_top'].format(output=name, year=year)}", "",
                      T["md_unranked"] if too_few(m) else T["md_none"], ""]
            continue
        # in the figures' units (μ* and σ: percentage points, yuan a year, billion yuan; Sobol: the total
        # index, a share of variance), named in the header: the table gave a share as 0.125 and costs in yuan
        scale, unit = _units(output, lang) if key == "mu_star" else (1.0, "")
        head = (f"{T['mu_star']} [95%] ({unit})" if key == "mu_star" else T["md_total"])
        lines += [f"## {T['md_top'].format(output=name, year=year)}", "",
                  f"| {T['md_rank']} | {T['md_input']} | {head} |" + (f" {T['md_sigma']} ({unit}) |" if sigma else ""),
                  "|---|---|---|" + ("---|" if sigma else "")]
        lines += [f"| {int(r['rank'])} | {r['input']} | {scale * r[key]:.3g} [{scale * r[f'{key}_lo95']:.3g}, "
                  f"{scale * r[f'{key}_hi95']:.3g}] |"
                  + (f" {scale * r['sigma']:.3g} [{scale * r['sigma_lo95']:.3g}, {scale * r['sigma_hi95']:.3g}] |"
                     if sigma else "")
                  for _, r in d.iterrows()]
        lines.append("")
    if f["noise"] is not None:
        lines += [f"## {T['md_noise']}", ""]
        for _, r in f["noise"].iterrows():
            rows = idx[idx["output"] == r["output"]]
            floor = float(rows["noise_floor"].iloc[0]) if "noise_floor" in rows and len(rows) else r["noise_floor"]
            one = int(r.get("replicates", 2)) == 1  # no pooled variance (it read "nan%"), and the floor is an upper bound
            if key == "mu_star":  # in the tables' units (points, yuan, bn yuan), not the output's own
                scale, unit = _units(r["output"], lang)
                floor = f"{scale * floor:.3g} {unit}"
            else:
                floor = f"{floor:.3g}"
            lines.append("- " + T["md_noise_text_one" if one else "md_noise_text"].format(
                output=r["output"], fixed=r["stochastic_share_fixed"], pooled=r["stochastic_share_pooled"], floor=floor))
    return "\n".join(lines) + "\n"


def sensitivity_report(path: Path, opts):
    from .study import write_study_report

    f = _load(Path(path), ("indices.csv", "noise.csv", "inputs.csv"))
    figures = [(f"fig{k + 1}_indices_{o.replace('@', '_')}", (lambda o: lambda lang: indices_figure(f, o, lang))(o))
               for k, o in enumerate(dict.fromkeys(f["indices"]["output"]))]
    figures.append((f"fig{len(figures) + 1}_morris_mu_sigma", lambda lang: mu_sigma_figure(f, lang)))
    return write_study_report(Path(path), opts, figures, lambda lang, stems: sensitivity_markdown(f, lang, stems))


# --------------------------------------------------------------------------------------------------
# scenario discovery
# --------------------------------------------------------------------------------------------------

def input_label(name: str, lang: str) -> str:
    """An input as the report names it: in Chinese a lever intensity by its Chinese name (the report's
    lever names), other keys as they are; in English the key."""
    from .text import lever_name

    lever = lever_name(name, lang) if lang == "zh" else None
    return f"{lever}强度" if lever else name


def condition_words(condition: str, lang: str) -> str:
    """The condition as written (English), or in Chinese with the outputs' and levers' Chinese names."""
    if lang != "zh":
        return condition
    from ..studies.discover import parse_condition

    terms = []
    for name, op, value in parse_condition(condition):
        if "@" in name and name.split("@")[0] in ("high_skill_share", "income_mean", "income_median", "cost"):
            out, year = _output_words(name, lang)
            said = f"{year}年12月{out}"
        else:
            said = input_label(name, lang)
        terms.append(f"{said}{op}{value:g}")
    return "且".join(terms)


def discovery_sentence(f: dict, lang: str) -> str:
    """What choice.json says in a sentence: in English its own `statement`; in Chinese built here from
    its numbers and box.csv's restricted inputs, as discover.analyse builds the English one."""
    c = f["choice"]
    if lang != "zh":
        return c["statement"]
    cond = condition_words(c["condition"], lang)
    if c.get("box_id") is None:
        holds = "均不成立" if c["of_interest"] == 0 else "均成立"
        return f"在全部{c['runs']}次运行中，{cond}{holds}：没有可寻找的区域。"
    box = f["box"] if f["box"] is not None else pd.DataFrame(columns=["restricted", "qp_value"])
    from ..studies.discover import significant_restrictions

    main, rest = significant_restrictions(box)
    ranges = "且".join(f"{input_label(r['input'], lang)}在[{r['box_lo']:.4g}, {r['box_hi']:.4g}]之间"
                       for _, r in main.iterrows())
    if len(main) and rest:  # the whole box's density is not that of its significant restrictions alone (below)
        said = f"在找到的区域内（共限制{len(main) + rest}个输入）"
    elif len(main):
        said = "当" + ranges + "时"
    elif rest:
        said = f"在一个限制了{rest}个输入、但准p值均高于0.05的区域内"
    else:
        said = "无论输入取何值"
    text = (f"{said}，{cond}在{c['density']:.0%}的运行中成立（该区域占全部运行的{c['mass']:.0%}）；"
            f"在{cond}成立的{c['of_interest']}次运行中，该区域包含{c['coverage']:.0%}。")
    sig = c.get("significant_only")
    if sig:
        text += (f"仅保留准p值不高于0.05的{len(main)}个限制（{ranges}）时，{cond}在{sig['density']:.0%}的运行中成立"
                 f"（占全部运行的{sig['mass']:.0%}，覆盖{sig['coverage']:.0%}）。")
    held = c.get("held_out")
    if held and held.get("runs_inside", 1):
        text += (f"在未用于寻找该区域的运行上（{held['folds']}折交叉验证），按同一规则找到的区域内{cond}在"
                 f"{held['density']:.0%}的运行中成立（{held.get('runs_inside', '')}次中{held.get('of_interest_inside', '')}次；"
                 f"覆盖{held['coverage']:.0%}）。")
    elif held:
        text += f"在未用于寻找该区域的运行上（{held['folds']}折交叉验证），按同一规则找到的区域不含任何运行：无从确认该区域。"
    if not c["threshold_met"]:
        text = f"没有区域达到密度阈值{c['threshold']:g}；以下为找到的密度最高的区域：" + text
    return text


def _held_out(c: dict) -> dict:
    """choice.json's held-out check of the box, if a box found on held-out runs had runs in it; else {}."""
    held = c.get("held_out") or {}
    return held if held.get("runs_inside") and held.get("density") is not None else {}


def how_discovery(m: dict, lang: str) -> str:
    """How the discovery ran, from its manifest (as `how_sensitivity`); "" for a manifest without its design."""
    T, o = TEXT[lang], m["options"]
    if "n" not in o or "peel_alpha" not in o:
        return ""
    return T["md_how_prim"].format(n=o["n"], replicates=o.get("replicates", 1), runs=m.get("runs", 0),
                                   agents=m.get("n_agents", 0), inputs=o.get("inputs", ""), threshold=o["threshold"],
                                   peel_alpha=o["peel_alpha"]) + (T["md_how_quick"] if o.get("quick") else "")


def tradeoff_figure(f: dict, lang: str):
    if f["trajectory"] is None:
        return None
    T, c = TEXT[lang], f["choice"]
    region = region_name(f["config"]["region"], lang)
    tr = f["trajectory"]
    cond = condition_words(c["condition"], lang)
    held = _held_out(c)
    fig, body = new_figure(4.8, T["tradeoff_title"].format(region=region, condition=cond),
                           T["tradeoff_note"].format(k=c["of_interest"],
                                                     held=T["held_note"].format(folds=held["folds"]) if held else ""))
    ax = body.subplots()
    sc = ax.scatter(tr["coverage"], tr["density"], c=tr["res_dim"], cmap="viridis", s=16)
    cb = fig.colorbar(sc, ax=ax)
    cb.set_label(T["res_dim"])
    ch = tr[tr["chosen"]]
    handles = [ax.scatter(ch["coverage"], ch["density"], marker="*", s=150, color="#D55E00", zorder=5,
                          label=T["chosen"])]
    if held:  # the in-sample density is optimistic: the held-out figure beside it (docs: scenario discovery)
        handles.append(ax.scatter([held["coverage"]], [held["density"]], marker="o", s=70, facecolors="none",
                                  edgecolors="#D55E00", linewidths=1.4, zorder=5, label=T["held"]))
    thr = f["manifest"]["options"]["threshold"]
    handles.append(ax.axhline(thr, color="#555555", ls="--", lw=0.8, label=T["threshold"].format(t=thr)))
    ax.set_xlabel(T["coverage"])
    ax.set_ylabel(T["density"])
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    body.legend(handles=handles, loc="outside lower center", ncol=len(handles))
    if held:
        tr = pd.concat([tr.assign(held_out=False), pd.DataFrame([{"coverage": held["coverage"], "density": held["density"],
                                                                  "chosen": False, "held_out": True}])], ignore_index=True)
        # the held-out row has no box id or counts: whole numbers stay whole (id 17.0, n 64.0: a user trial)
        tr = tr.astype({c: "Int64" for c in tr.columns if c in ("id", "n", "k", "res_dim")})
    return fig, tr


def box_figure(f: dict, lang: str):
    if f["box"] is None:
        return None
    T, c = TEXT[lang], f["choice"]
    region = region_name(f["config"]["region"], lang)
    box = f["box"][f["box"]["restricted"]].iloc[::-1]
    if box.empty:
        return None
    cond = condition_words(c["condition"], lang)
    held = _held_out(c)
    said = T["box_held"].format(h=held["density"], folds=held["folds"]) if held else ""
    fig, body = new_figure(1.6 + 0.32 * len(box), T["box_title"].format(region=region, condition=cond),
                           T["box_note"].format(d=c["density"], held=said))  # the density beside the held-out one
    ax = body.subplots()
    y = np.arange(len(box))
    width = (box["range_hi"] - box["range_lo"]).to_numpy()
    lo = ((box["box_lo"] - box["range_lo"]) / width).to_numpy()
    hi = ((box["box_hi"] - box["range_lo"]) / width).to_numpy()
    sig = (box["qp_value"] <= 0.05).to_numpy()
    ax.barh(y, np.ones(len(box)), color="#EEEEEE", height=0.6)
    ax.barh(y, hi - lo, left=lo, color=[ACT if s else FAINT for s in sig], height=0.6)
    for yi, (_, r), s in zip(y, box.iterrows(), sig):
        ax.text(1.01, yi, f"[{r['box_lo']:.3g}, {r['box_hi']:.3g}]  qp={r['qp_value']:.2g}", va="center",
                fontsize=7, color="#000000" if s else "#888888", transform=ax.get_yaxis_transform())
    ax.set_yticks(y, [input_label(n, lang) for n in box["input"]])
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlim(0, 1)
    ax.set_xlabel(T["box_axis"])
    return fig, box.iloc[::-1].assign(box_lo_scaled=lo[::-1], box_hi_scaled=hi[::-1])


def discovery_markdown(f: dict, lang: str, stems: list[str]) -> str:
    T = TEXT[lang]
    region = region_name(f["config"]["region"], lang)
    how = how_discovery(f["manifest"], lang)
    lines = [f"# {T['md_disc'].format(region=region)}", "", discovery_sentence(f, lang), ""]
    lines += [how, ""] if how else []
    lines += [f"![{s}](figures/{s}.png)" for s in stems] + [""]
    if f["box"] is not None:
        box = f["box"][f["box"]["restricted"]]
        lines += [f"## {T['md_box']}", "", f"| {T['md_input']} | {T['md_range']} | {T['md_qp']} |", "|---|---|---|"]
        of = "，全范围" if lang == "zh" else " of"
        lines += [f"| {input_label(r['input'], lang)} | [{r['box_lo']:.4g}, {r['box_hi']:.4g}]{of} "
                  f"[{r['range_lo']:.4g}, "
                  f"{r['range_hi']:.4g}] | {r['qp_value']:.2g} |" for _, r in box.iterrows()]
    return "\n".join(lines) + "\n"


def discovery_report(path: Path, opts):
    from .study import write_study_report

    f = _load(Path(path), ("choice.json", "trajectory.csv", "box.csv"))
    figures = [("fig1_prim_tradeoff", lambda lang: tradeoff_figure(f, lang)),
               ("fig2_prim_box", lambda lang: box_figure(f, lang))]
    return write_study_report(Path(path), opts, figures, lambda lang, stems: discovery_markdown(f, lang, stems))
