"""Report of a forecast folder (skillsim-forecast): the fan chart with the total band and the variance
decomposition, in English or Chinese, each figure with the CSV of exactly what it draws.

The bands are quantiles over every run of the ensemble, so they carry all three sources of
uncertainty (parameters, structural inputs, stochastic noise); the decomposition says how much of the
variance each contributes in each December.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..errors import DataError
from .figures import region_name
from .style import band_handles, december_axis, draw_fan, month_end, new_figure, percent_axis, year_axis

COMPONENT_COLOURS = {"parameters": "#0072B2", "structural": "#E69F00", "interaction": "#CC79A7",
                     "stochastic": "#999999"}
TEXT = {
    "en": {
        "fan_title": "{region}, {setting}: high-skill share forecast with calibrated-parameter, structural-input "
                     "and stochastic uncertainty",
        "fan_note": "median and 50% / 90% bands over {n} runs: {p} parameter sets x {s} structural points x {r} "
                    "replicates; dots: observed; not carried: the assumptions without a source (see report.md)",
        "fan_note_drawn": "median and 50% / 90% bands over {n} runs: {p} parameter sets (fitted parameters and {k} "
                          "assumptions without a source, drawn together) x {s} structural points x {r} replicates; "
                          "dots: observed",
        "share_axis": "high-skill share of skilled workers (%)", "year": "year", "december_year": "December of each year", "median": "median",
        "band50": "50% band", "band90": "90% band", "observed": "observed", "target": "preset target {v} by {y}",
        "var_title": "{region}: where the spread of the high-skill share comes from",
        "var_note": "each source's share of the sum of the variance components in each December (crossed "
                    "random-effects ANOVA; the sum is {ratio} times the variance across runs, which the bands use)",
        "var_axis": "share of variance (%)",
        "parameters": "behavioural parameters (calibration ensemble)", "structural": "structural inputs (ranges)",
        "parameters_drawn": "parameters and assumptions (calibration ensemble)",
        "interaction": "parameters x structural", "stochastic": "stochastic noise (replicates)",
        "md_title": "Forecast: {region}, {setting}", "md_year": "December", "md_median": "median",
        "md_band": "90% band", "md_var": "variance from parameters / structural / interaction / stochastic",
        "md_made": "Made by `skillsim-report` from the forecast in `{path}`: {n} runs of {agents} agents ({p} "
                   "parameter sets × {s} structural points × {r} replicates), seed {seed}, model `{commit}`. "
                   "Settings: {settings}. Every figure's data is the CSV of the same name in `figures/`.",
        "md_scope": "**What the bands carry:** the behavioural parameters' uncertainty (the calibration "
                    "ensemble), the structural inputs' (their ranges, the workforce's growth among them) and the "
                    "agents' noise. They do not carry the model's own form (its backtests, docs/model.md section "
                    "11, forecast the level mix with the wrong lean), the assumptions held at one value (the "
                    "parameters docs/model.md section 12 marks 'assumption', such as the competition's preparation "
                    "gain and the studios' fast-track rate, and wage growth at 5.4% a year, the low end of "
                    "`wage_growth`: incomes are nominal; `skillsim-sensitivity inputs=assumptions` screens the "
                    "assumptions over their ranges) or policy changes after the forecast's settings.",
        "md_scope_drawn": "**What the bands carry:** the calibration ensemble's uncertainty (each member a joint "
                          "draw of the fitted behavioural parameters and of the {k} numeric assumptions without a "
                          "source, over the ranges docs/model.md section 12 gives them, weighed by the calibration "
                          "targets through its emulator, which resolves them only coarsely), the structural inputs' (their ranges, the workforce's growth among them) and the "
                          "agents' noise. They do not carry the model's own form (its backtests, docs/model.md "
                          "section 11, forecast the level mix with the wrong lean), wage growth held at 5.4% a year, "
                          "the low end of `wage_growth` (incomes are nominal), or policy changes after the forecast's "
                          "settings.",
        "held": " Held at this forecast's setting, not drawn: {held}.",
        "none": "the region's status quo",
    },
    "zh": {
        "fan_title": "{region}（{setting}）：高技能人才占比预测（含校准参数、结构性输入与随机不确定性）",
        "fan_note": "中位数及50%/90%区间，共{n}次运行：{p}组参数 × {s}个结构性输入点 × {r}次重复；圆点：观测值；未计入：无来源的假设（见report.md）",
        "fan_note_drawn": "中位数及50%/90%区间，共{n}次运行：{p}组参数（校准参数与{k}项无来源的假设，联合抽取）× {s}个结构性输入点 × "
                          "{r}次重复；圆点：观测值",
        "share_axis": "高技能人才占技能人才比例（%）", "year": "年份", "december_year": "每年12月", "median": "中位数",
        "band50": "50%区间", "band90": "90%区间", "observed": "观测值", "target": "预设目标：{y}年{v}",
        "var_title": "{region}：高技能人才占比预测的方差来源",
        "var_note": "各年12月各来源占方差分量之和的比例（交叉随机效应方差分析；分量之和为各次运行间方差（即区间所用方差）的{ratio}倍）",
        "var_axis": "方差占比（%）",
        "parameters": "行为参数（校准集合）", "structural": "结构性输入（取值范围）",
        "parameters_drawn": "参数与假设（校准集合）",
        "interaction": "参数×结构性输入", "stochastic": "随机噪声（重复运行）",
        "md_title": "预测：{region}（{setting}）", "md_year": "12月", "md_median": "中位数", "md_band": "90%区间",
        "md_var": "方差来源：参数 / 结构性输入 / 交互 / 随机",
        "md_made": "由 `skillsim-report` 根据 `{path}` 中的预测生成：共{n}次运行，每次{agents}个主体（{p}组参数 × "
                   "{s}个结构性输入点 × {r}次重复），随机种子{seed}，模型版本 `{commit}`。设定：{settings}。"
                   "每幅图的数据见 `figures/` 中同名 CSV 文件。",
        "md_scope": "**区间的含义：**包含行为参数（校准集合）、结构性输入（取值范围，含劳动力增长）及主体随机波动的"
                    "不确定性；不包含模型结构本身的误差（回测见 docs/model.md 第11节：技能等级构成的预测有系统偏差）、"
                    "取固定值的假设（docs/model.md 第12节中标为 assumption 的参数，如竞赛备赛增益、工作室快速晋升率，"
                    "以及工资年增长5.4%，即 `wage_growth` 的下限：收入为名义值；`skillsim-sensitivity inputs=assumptions` "
                    "可在其取值范围内筛查这些假设），也不包含预测设定之后的政策变化。",
        "md_scope_drawn": "**区间的含义：**包含校准集合的不确定性（每个成员联合抽取校准的行为参数与{k}项无来源的数值假设，"
                          "假设取 docs/model.md 第12节给出的取值范围，并经校准仿真器按校准目标粗略加权）、结构性输入（取值范围，含劳动力增长）及主体"
                          "随机波动的不确定性；不包含模型结构本身的误差（回测见 docs/model.md 第11节：技能等级构成的预测有系统偏差）、"
                          "固定为每年5.4%的工资增长（`wage_growth` 的下限：收入为名义值），也不包含预测设定之后的政策变化。",
        "held": "按本预测设定固定、未抽样的假设：{held}。",
        "none": "本地区现状",
    },
}


def _load(p: Path) -> dict:
    try:
        manifest = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
        config = yaml.safe_load((p / "config.yaml").read_text(encoding="utf-8"))
        ens = pd.read_csv(p / "ensemble.csv")
        var = pd.read_csv(p / "variance.csv")
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise DataError(f"{p}: forecast folder cannot be read ({type(exc).__name__}: {exc})") from None
    if not (p / "COMPLETE").exists():
        raise DataError(f"{p}: unfinished forecast folder (no COMPLETE marker)")
    return {"manifest": manifest, "config": config, "ensemble": ens, "variance": var, "path": p}


#: keys of a forecast's command that are not the setting forecast (where and how big, not which policy)
NOT_SETTINGS = ("region", "scenario", "n_agents", "seed", "horizon.end_year")


def setting_text(f: dict, lang: str) -> str:
    """The setting forecast, as its title says it: the scenario and the command's other settings
    (levers.studio.intensity=0, ...), so that a training-boost forecast is not read as the status quo's."""
    from .text import scenario_label

    m = f["manifest"]
    scenario = str(m.get("scenario") or f["config"].get("scenario") or "")
    extra = [o for o in m.get("overrides", []) if o.split("=", 1)[0].lstrip("+~") not in NOT_SETTINGS
             and not o.lstrip("+~").startswith("hydra.")]  # where the configs were read (--config-dir): not a policy
    parts = ([scenario_label(scenario, lang)] if scenario else [TEXT[lang]["none"]]) + extra
    return ("，" if lang == "zh" else ", ").join(parts)


def fan(f: dict, lang: str):
    T = TEXT[lang]
    reg = f["config"]["region"]
    name = region_name(reg, lang)
    setting = setting_text(f, lang)
    m, o = f["manifest"], f["manifest"]["options"]
    d = f["ensemble"][f["ensemble"]["metric"] == "high_skill_share"].sort_values("date")
    obs = pd.DataFrame(sorted(reg["history"]["high_skill_share"].items()), columns=["date", "value"])
    drawn = len(m.get("drawn_assumptions") or ())
    note = T["fan_note_drawn" if drawn else "fan_note"]
    fig, body = new_figure(5.2, T["fan_title"].format(region=name, setting=setting),
                           note.format(n=m["runs"], p=o["params"], s=o["structural"], r=o["replicates"], k=drawn))
    ax = body.subplots()
    x = month_end(d["date"])
    line = draw_fan(ax, x, d, "#000000")
    line.set_label(T["median"])
    handles = [line, *band_handles(T.__getitem__)]
    first_year = int(d["date"].iloc[0][:4])
    shown = obs[obs["date"].str[:4].astype(int) >= first_year - 3]
    if not shown.empty:
        handles.append(ax.scatter(month_end(shown["date"]), shown["value"], color="#D55E00", s=18, zorder=5,
                                  label=T["observed"]))
    tv, ty = reg.get("high_skill_target"), reg.get("high_skill_target_year")
    years = pd.concat([x, month_end(shown["date"])]).dt.year if not shown.empty else x.dt.year
    if tv is not None:  # as the run and sweep figures draw it: the level, and a star at its date (the axis
        # reaches it): a line alone across a 2023-2027 axis read as a target for every year (a user trial)
        at = month_end([f"{int(ty)}-12"])
        ax.axhline(tv, color="#D55E00", lw=0.9, ls="--", zorder=1)
        handles.append(ax.plot([at[0]], [tv], marker="*", ms=9, color="#D55E00", ls="--", lw=0.9, zorder=4,
                               label=T["target"].format(v=f"{100 * tv:g}%", y=ty))[0])
        years = pd.concat([pd.Series(years), pd.Series([int(ty)])])
    year_axis(ax, years.min(), years.max(), 14)
    percent_axis(ax)
    ax.set_ylabel(T["share_axis"])
    ax.set_xlabel(T["year"])
    body.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5))
    data = d[["date", "metric", "n", "mean", "q05", "q25", "median", "q75", "q95"]].copy()
    data.insert(0, "kind", "forecast")
    rows = [data, shown.assign(kind="observed", metric="high_skill_share", source="region.history.high_skill_share")]
    if tv is not None:  # the target line drawn
        rows.append(pd.DataFrame([{"kind": "region_target", "metric": "high_skill_share", "date": f"{ty}-12",
                                   "value": tv, "source": "region.high_skill_target"}]))
    out = pd.concat(rows, ignore_index=True)
    out["n"] = out["n"].astype("Int64")  # a count (blank on observed and target rows), not 12.0
    return fig, _with_setting(out, f"{name}{'，' if lang == 'zh' else ', '}{setting}")


def decomposition(f: dict, lang: str):
    T = TEXT[lang]
    reg = f["config"]["region"]
    name = region_name(reg, lang)
    v = f["variance"][f["variance"]["metric"] == "high_skill_share"]
    wide = v.pivot(index="date", columns="component", values="share").fillna(0.0).sort_index()
    wide = wide.iloc[1:] if len(wide) > 1 else wide  # the start state has (almost) no spread
    setting = setting_text(f, lang)
    named = f"{name}{'，' if lang == 'zh' else ', '}{setting}"
    # the components' sum against the runs' own variance, as drawn (it was said "close to": 1.02-1.19x)
    drawn = v[v["date"].isin(wide.index)]
    sums = drawn.groupby("date").agg(total=("variance", "sum"), runs=("total_variance", "first"))
    ratio = (sums["total"] / sums["runs"]).replace([np.inf, -np.inf], np.nan).dropna()
    lo, hi = (ratio.min(), ratio.max()) if len(ratio) else (np.nan, np.nan)
    said = f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}-{hi:.2f}"
    fig, body = new_figure(4.6, T["var_title"].format(region=named), T["var_note"].format(ratio=said))
    ax = body.subplots()
    x = month_end(wide.index)
    comps = [c for c in COMPONENT_COLOURS if c in wide.columns]
    ax.stackplot(x, *[wide[c].to_numpy() for c in comps], colors=[COMPONENT_COLOURS[c] for c in comps],
                 labels=[T["parameters_drawn" if c == "parameters" and f["manifest"].get("drawn_assumptions") else c]
                         for c in comps], alpha=0.85)
    ax.set_ylim(0, 1)
    percent_axis(ax)
    december_axis(ax, x)
    ax.set_ylabel(T["var_axis"])
    ax.set_xlabel(T["december_year"])
    body.legend(loc="outside lower center", ncol=2)
    data = v[v["date"].isin(wide.index)][["date", "metric", "component", "variance", "share", "total_variance"]]
    data = data.assign(share=data["share"].fillna(0.0))  # as stacked: an undefined share draws as nothing
    return fig, _with_setting(data.reset_index(drop=True), named)


def _with_setting(data: pd.DataFrame, label: str) -> pd.DataFrame:
    """The `setting` and `label` columns every report CSV starts with (docs/report.md): a forecast
    folder is one setting, the region's, labelled as the figure labels it."""
    data = data.copy()
    data.insert(0, "label", label)
    data.insert(0, "setting", "forecast")
    return data


def scope(f: dict, lang: str) -> str:
    """What the bands carry: with the assumptions without a source if the forecast's ensemble drew them
    (its manifest's `drawn_assumptions`; a forecast made before they were drawn says they are not)."""
    drawn = len(f["manifest"].get("drawn_assumptions") or ())
    if not drawn:
        return TEXT[lang]["md_scope"]
    held = f["manifest"].get("held_assumptions") or {}
    said = ", ".join(f"`{k}={v:g}`" for k, v in held.items()) if isinstance(held, dict) else ""
    return TEXT[lang]["md_scope_drawn"].format(k=drawn) + (TEXT[lang]["held"].format(held=said) if said else "")


def markdown(f: dict, lang: str, figures: list[str]) -> str:
    T = TEXT[lang]
    reg = f["config"]["region"]
    name = region_name(reg, lang)
    ens, var = f["ensemble"], f["variance"]
    m, o = f["manifest"], f["manifest"].get("options", {})
    sha = str(m.get("git_commit", "unknown"))
    commit = f"skillsim {m.get('versions', {}).get('skillsim', '?')}" + ("" if sha == "unknown" else f", commit {sha[:12]}")
    settings = ", ".join(f"`{x}`" for x in m.get("overrides", [])) or TEXT[lang]["none"]
    lines = [f"# {T['md_title'].format(region=name, setting=setting_text(f, lang))}", "",
             T["md_made"].format(path=f["path"], n=m.get("runs", "?"), agents=f"{int(m.get('n_agents', 0)):,}",
                                 p=o.get("params", "?"), s=o.get("structural", "?"), r=o.get("replicates", "?"),
                                 seed=m.get("seed", "?"), commit=commit, settings=settings), "",
             scope(f, lang), ""]
    lines += [f"![{s}](figures/{s}.png)" for s in figures] + [""]
    lines += [f"| {T['md_year']} | {T['md_median']} | {T['md_band']} | {T['md_var']} |", "|---|---|---|---|"]
    share = ens[ens["metric"] == "high_skill_share"]
    # Decembers of the forecast; not the start state (the same observed December in every run: no spread to
    # decompose, as fig7 leaves it out too)
    dec = share[share["date"].str.endswith("-12") & (share["date"] > share["date"].min())].sort_values("date")
    for _, r in dec.iterrows():
        vv = var[(var["date"] == r["date"]) & (var["metric"] == "high_skill_share")].set_index("component")["share"]
        parts = " / ".join(f"{100 * vv.get(k, np.nan):.0f}%" for k in COMPONENT_COLOURS)
        lines.append(f"| {r['date'][:4]} | {100 * r['median']:.1f}% | {100 * r['q05']:.1f}–{100 * r['q95']:.1f}% "
                     f"| {parts} |")
    return "\n".join(lines) + "\n"


def forecast_report(path: Path, opts) -> "object":
    """Write the forecast report atomically (sim.report.study); returns what was written."""
    from .study import write_study_report

    f = _load(Path(path))
    return write_study_report(Path(path), opts, [("fig1_high_skill_share", lambda lang: fan(f, lang)),
                                                 ("fig7_variance_decomposition", lambda lang: decomposition(f, lang))],
                              lambda lang, stems: markdown(f, lang, stems))
