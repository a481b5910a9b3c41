"""The explorer's charts, as the reports draw them (sim.report.style), each returned with the table it
draws: (figure, data). No web code here."""

from __future__ import annotations

import pandas as pd
from matplotlib.patches import Patch

from ..report.figures import region_name
from ..report.style import BAND50_ALPHA, band_handles, draw_fan, month_end, new_figure, percent_axis, year_axis
from ..report.text import LEVERS, level_label, spend_scale
from .engine import Result

CHOSEN, BASE = "#0072B2", "#555555"
TEXT = {
    "en": {"chosen": "chosen setting", "status_quo": "status quo", "band50": "50% band", "band90": "90% band",
           "observed": "observed", "target": "{who} target {v} by {y}", "regional": "the region preset's", "national": "national",
           "fan_title": "{region}: high-skill share, chosen setting against the status quo",
           "fan_note": "median and 50% / 90% bands over {r} {what} of {n:,} agents, the same for both settings",
           "draw": "joint draws of the parameters, assumptions and structural inputs", "replicate": "replicates (seeds)",
           "share_axis": "high-skill share of skilled workers (%)", "year": "year",
           "comp_title": "{region}: level composition of skilled workers, chosen setting",
           "comp_note": "mean over {r} runs", "comp_axis": "share of skilled workers (%)",
           "inc_title": "{region}: mean income", "inc_note": "median and 50% / 90% bands over {r} runs (thousand yuan a year, nominal)",
           "inc_axis": "thousand yuan a year (nominal)",
           "cost_title": "{region}: cumulative spend to December {y}, by lever and funder",
           "cost_note": "mean over {r} runs (billion yuan)", "cost_axis": "billion yuan",
           "government": "government", "employer": "employers", "certification": "certificate subsidies",
           "per_title": "{region}: cost per additional high-skill worker, chosen setting over the status quo",
           "per_note": "extra cumulative spend (all levers and funders) / extra high-skill workers, each December; "
                       "median and 50% band over the runs of {r} that add workers (shown where most do)",
           "per_axis": "thousand yuan per additional worker",
           "per_none": "This setting adds no high-skill workers over the status quo,\n"
                       "so there is no cost per additional worker to show.",
           "per_few": "In no year do most runs of this setting add high-skill workers\n"
                      "over the status quo: no cost per additional worker to show."},
    "zh": {"chosen": "所选方案", "status_quo": "现行政策", "band50": "50%区间", "band90": "90%区间", "observed": "观测值",
           "target": "{who}目标：{y}年{v}", "regional": "地区预设", "national": "全国",
           "fan_title": "{region}：高技能人才占比，所选方案与现行政策对比",
           "fan_note": "中位数及50%/90%区间，{r}{what}，每次{n:,}个主体，两种方案相同",
           "draw": "组参数、假设与结构性输入联合抽样", "replicate": "次重复（随机种子）",
           "share_axis": "高技能人才占技能人才比例（%）", "year": "年份",
           "comp_title": "{region}：所选方案下技能人才的等级构成", "comp_note": "{r}次运行的均值",
           "comp_axis": "占技能人才比例（%）",
           "inc_title": "{region}：平均收入", "inc_note": "{r}次运行的中位数及50%/90%区间（万元/年，名义）", "inc_axis": "万元/年（名义）",
           "cost_title": "{region}：截至{y}年12月的累计支出（按政策工具与出资方）",
           "cost_note": "{r}次运行的均值（亿元）", "cost_axis": "亿元",
           "government": "政府", "employer": "企业", "certification": "证书补贴",
           "per_title": "{region}：每增加一名高技能人才的成本（所选方案相对现行政策）",
           "per_note": "每年12月的累计额外支出（全部政策工具与出资方）÷ 新增高技能人才；"
                       "{r}次运行中有新增的运行的中位数及50%区间（多数运行有新增时显示）",
           "per_axis": "万元/新增一人",
           "per_none": "所选方案相对现行政策没有新增高技能人才，\n因此没有每增加一人的成本可显示。",
           "per_few": "没有哪一年多数运行相对现行政策有新增高技能人才，\n因此没有每增加一人的成本可显示。"},
}


def national_target() -> tuple[float, int]:
    """nat_target_2025 of targets.csv: a third of skilled workers high-skilled by the end of 2025."""
    from ..sources import target

    t = target("nat_target_2025")
    return float(t.value), int(str(t.date)[:4])


def fan_chart(res: Result, cfg_region: dict, lang: str):
    T = TEXT[lang]
    name = region_name(cfg_region, lang)
    fan = res.fan("high_skill_share")
    fig, body = new_figure(4.6, T["fan_title"].format(region=name),
                           T["fan_note"].format(r=res.replicates, n=res.n_agents, what=T[res.view.over]))
    ax = body.subplots()
    handles = []
    for kind, colour in (("status_quo", BASE), ("chosen", CHOSEN)):
        d = fan[fan["kind"] == kind]
        line = draw_fan(ax, month_end(d["date"]), d, colour)
        line.set_label(T[kind])
        handles.append(line)
    handles += band_handles(T.__getitem__)
    first = int(fan["date"].iloc[0][:4])
    obs = pd.DataFrame(sorted((cfg_region.get("history") or {}).get("high_skill_share", {}).items()),
                       columns=["date", "value"])
    obs = obs[obs["date"] >= f"{first - 3}-01"]
    if not obs.empty:
        handles.append(ax.scatter(month_end(obs["date"]), obs["value"], color="#D55E00", s=16, zorder=5,
                                  label=T["observed"]))
    national = ("national", *national_target())
    targets = []
    regional = ("regional", cfg_region.get("high_skill_target"), cfg_region.get("high_skill_target_year"))
    if regional[1] is not None and (round(float(regional[1]), 3), regional[2]) != (round(national[1], 3), national[2]):
        targets.append(regional)  # the national preset's own target is the national one: drawn once
    targets.append(national)
    for (who, v, y), style in zip(targets, ("--", ":") if len(targets) == 2 else (":",)):
        handles.append(ax.axhline(v, color="#D55E00", lw=0.9, ls=style,
                                  label=T["target"].format(who=T[who], v=f"{100 * v:g}%", y=y)))
    years = pd.concat([month_end(fan["date"]), month_end(obs["date"])]).dt.year
    year_axis(ax, years.min(), years.max(), 12)
    percent_axis(ax)
    ax.set_ylabel(T["share_axis"])
    ax.set_xlabel(T["year"])
    body.legend(handles=handles, loc="outside lower center", ncol=4)
    return fig, pd.concat([fan, obs.assign(kind="observed", metric="high_skill_share")], ignore_index=True)


def composition_chart(res: Result, cfg_region: dict, lang: str):
    T = TEXT[lang]
    comp = res.composition()
    fig, body = new_figure(4.0, T["comp_title"].format(region=region_name(cfg_region, lang)),
                           T["comp_note"].format(r=res.replicates))
    ax = body.subplots()
    x = month_end(comp["date"])
    colours = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"]
    ax.stackplot(x, *[comp[f"level_{k}"] for k in range(1, 8)], colors=colours,
                 labels=[level_label(k, lang) for k in range(1, 8)], alpha=0.9)
    ax.set_ylim(0, 1)
    percent_axis(ax)
    year_axis(ax, x.min().year, x.max().year, 12)
    ax.set_ylabel(T["comp_axis"])
    body.legend(loc="outside lower center", ncol=4)
    return fig, comp


def income_chart(res: Result, cfg_region: dict, lang: str):
    T = TEXT[lang]
    fan = res.fan("income_mean")
    scale = 1e4 if lang == "zh" else 1e3
    fig, body = new_figure(3.8, T["inc_title"].format(region=region_name(cfg_region, lang)),
                           T["inc_note"].format(r=res.replicates))
    ax = body.subplots()
    for kind, colour in (("status_quo", BASE), ("chosen", CHOSEN)):
        d = fan[fan["kind"] == kind]
        draw_fan(ax, month_end(d["date"]), d, colour, scale=scale, label=T[kind])
    x = month_end(fan["date"])
    year_axis(ax, x.min().year, x.max().year, 12)
    ax.set_ylabel(T["inc_axis"])
    body.legend(loc="outside lower center", ncol=2)
    return fig, fan


def cost_chart(res: Result, cfg_region: dict, lang: str):
    T = TEXT[lang]
    costs = res.costs()
    scale = spend_scale(lang)
    year = res.summary()["date"][:4]
    fig, body = new_figure(3.8, T["cost_title"].format(region=region_name(cfg_region, lang), y=year),
                           T["cost_note"].format(r=res.replicates))
    ax = body.subplots()
    levers = [lv for lv in ("training", "competition", "studio", "certification") if lv in set(costs["lever"])]
    labels = [T["certification"] if lv == "certification" else LEVERS[lv][1 if lang == "zh" else 0] for lv in levers]
    width = 0.38
    for j, (kind, colour) in enumerate((("status_quo", BASE), ("chosen", CHOSEN))):
        bottom = [0.0] * len(levers)
        for funder, alpha in (("government", 1.0), ("employer", 0.5)):
            vals = [float(costs[(costs["kind"] == kind) & (costs["lever"] == lv) & (costs["funder"] == funder)]
                          ["cumulative_yuan"].sum()) / scale for lv in levers]
            ax.bar([i + (j - 0.5) * width for i in range(len(levers))], vals, width, bottom=bottom, color=colour,
                   alpha=alpha, label=f"{T[kind]}: {T[funder]}")
            bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xticks(range(len(levers)), labels)
    ax.set_ylabel(T["cost_axis"])
    body.legend(loc="outside lower center", ncol=2)
    return fig, costs.assign(shown=costs["cumulative_yuan"] / scale, unit=T["cost_axis"])


def cost_per_worker_chart(res: Result, cfg_region: dict, lang: str):
    T = TEXT[lang]
    per = res.cost_per_worker()
    scale = 1e4 if lang == "zh" else 1e3
    fig, body = new_figure(3.8, T["per_title"].format(region=region_name(cfg_region, lang)),
                           T["per_note"].format(r=res.replicates))
    ax = body.subplots()
    shown = per[["q25", "median", "q75"]].where(2 * per["adding"] > per["n"], axis=0) / scale
    x = month_end(per["date"])
    if shown["median"].notna().any():
        ax.fill_between(x, shown["q25"], shown["q75"], color=CHOSEN, alpha=BAND50_ALPHA, lw=0)
        ax.plot(x, shown["median"], color=CHOSEN, lw=1.6, marker="o", ms=3.5, label=T["chosen"])
        # the 50% band drawn alone here: its key at the band's own opacity
        ax.legend(handles=[*ax.get_lines(), Patch(fc=CHOSEN, alpha=BAND50_ALPHA, ec="none", label=T["band50"])],
                  loc="upper right", fontsize=8)
    else:  # said plainly rather than an empty axis
        none = (per["adding"] == 0).all()
        ax.text(0.5, 0.5, T["per_none" if none else "per_few"], ha="center", va="center", transform=ax.transAxes)
    year_axis(ax, x.min().year, x.max().year, 12)
    ax.set_xlim(pd.Timestamp(f"{x.min().year}-01-01"), x.max() + pd.Timedelta(days=30))
    ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.set_ylabel(T["per_axis"])
    return fig, per.assign(shown_median=shown["median"], unit=T["per_axis"])


CHARTS = (("share", fan_chart), ("composition", composition_chart), ("income", income_chart), ("cost", cost_chart),
          ("cost_per_worker", cost_per_worker_chart))
