"""Every word the report shows, in English and Chinese.

Level names come from `sim.ladder.LEVELS`; region names from the folder's config (label_en, label_zh).
`t(key, lang, **fields)` looks a phrase up and fills it in; a missing key is a programming error.
"""

from __future__ import annotations

import math

from ..ladder import LEVELS

LANGS = ("en", "zh")

SCENARIOS = {  # sim/conf/scenario/*.yaml
    "baseline": ("Baseline (current policy)", "基准情景（现行政策）"),
    "no_policy": ("No policy", "无政策"),
    "training_boost": ("Training boost", "加大培训投入"),
    "competition_push": ("Competition push", "强化技能竞赛"),
    "studio_expansion": ("Studio expansion", "扩建创新工作室"),
    "combined": ("Combined levers", "组合政策"),
}
SCENARIO_ORDER = tuple(SCENARIOS)

LEVERS = {"training": ("training", "培训"), "competition": ("competitions", "竞赛"), "studio": ("studios", "工作室")}
#: One-letter (one-character) keys for the levers in compact setting labels ("T×2 S×1 C×0").
LEVER_KEYS = {"training": ("T", "培"), "competition": ("C", "赛"), "studio": ("S", "室")}

CHANNELS = {
    "certification": ("Certification (assessment)", "考核认定"),
    "competition": ("Competition promotion", "以赛代评"),
    "studio": ("Studio mentoring (out of turn)", "工作室破格晋升"),
    "appointment": ("Employer appointment (levels 6-7)", "企业聘任（特级、首席技师）"),
}

PHRASES: dict[str, tuple[str, str]] = {
    # axes and units
    "year": ("Year", "年份"),
    "hs_share_axis": ("High-skill share of skilled workers (%)", "高技能人才占技能人才比例（%）"),
    "workforce_share_axis": ("Share of all workers (%)", "占全部工人比例（%）"),
    "income_axis": ("Thousand yuan per year (nominal)", "万元/年（名义）"),
    "income_axis_short": ("Thousand yuan (nominal)", "万元（名义）"),
    "share_pct_axis": ("Share of workers (%)", "工人比例（%）"),
    "persons_per_year": ("Persons per year", "人/年"),
    "thousand_per_year": ("Thousand persons per year", "万人/年"),
    "spend_axis": ("Cumulative spend (billion yuan, nominal)", "累计支出（亿元，名义）"),
    "lever_axis": ("{lever} (× status-quo level)", "{lever}（现行水平的倍数）"),
    "level_axis": ("Skill level", "技能等级"),
    # legends
    "median": ("median", "中位数"),
    "band50": ("50% band", "50%区间"),
    "band90": ("90% band", "90%区间"),
    "ci95": ("95% interval", "95%区间"),
    "observed": ("Observed, {region}", "实际值（{region}）"),
    "region_target": ("Target in the {region} preset: {value} by end-{year}", "{region}预设目标：{year}年底达到{value}"),
    "national_target": ("National target: one third by end-{year}", "全国目标：{year}年底达到三分之一"),
    "threshold": ("Middle-income threshold ({value})", "中等收入线（{value}）"),
    "hs_boundary": ("Lower edge of high-skill levels", "高技能等级下沿"),
    "na": ("n/a", "无"),
    "na_baseline": ("n/a: baseline", "无：基准"),
    "na_no_gain": ("n/a: no gain", "无：未新增"),
    "na_no_pairs": ("n/a: no pairs", "无：无配对"),
    "na_unknown": ("n/a", "无"),
    "baseline_setting": ("Baseline setting of the effects: {label}", "效果的基准设定：{label}"),
    # titles
    "fig1_title": ("High-skill share of skilled workers, {region}", "{region}高技能人才占技能人才比例"),
    "fig2_title": ("Workforce by skill level, {region}", "{region}各技能等级人数构成"),
    "fig3_title": ("Worker income, {region}", "{region}工人收入"),
    "fig3a": ("Mean annual income", "年收入均值"),
    "fig3b": ("Median annual income", "年收入中位数"),
    "fig3c": ("Share earning at least {value} a year", "年收入不低于{value}的工人比例"),
    "fig3d": ("Mean annual income by level, {year}", "{year}年各等级平均年收入"),
    "fig3d_ci": ("Mean annual income by level, {year}: mean of the {what}, 95% t-interval",
                 "{year}年各等级平均年收入：各{what}均值，95% t区间"),
    "fig4_title": ("Scenarios compared in {year}, {region}", "{region}{year}年各情景比较"),
    "fig4_title_settings": ("Settings compared in {year}, {region}", "{region}{year}年各设定比较"),
    "fig4a": ("High-skill share, Dec {year}", "{year}年12月高技能人才占比"),
    "fig4b": ("Mean annual income, {year}", "{year}年平均年收入"),
    "fig4c": ("Cost per additional high-skill worker", "每新增一名高技能人才的成本"),
    "fig5_title": ("High-skill share in Dec {year} by lever setting, {region}",
                   "{region}{year}年12月高技能人才占比与政策力度"),
    "fig5_cost": ("Contours: mean cumulative spend, billion yuan", "等值线：平均累计支出（亿元）"),
    "fig5_points": ("a point per setting run, labelled with its share and cumulative spend (billion yuan)",
                    "每点为一个已运行的设定，标注其占比与累计支出（亿元）"),
    "fig5_share": ("High-skill share, Dec {year}", "{year}年12月高技能人才占比"),
    "fig5_spend": ("Cumulative spend to {year}, mean", "至{year}年累计支出（平均值）"),
    "fig6_title": ("Promotions by channel, {region}", "{region}各渠道晋升人数"),
    # notes under titles
    "note_single": ("One run ({n_agents} agents); no uncertainty bands", "单次模拟（{n_agents}个主体），无不确定性区间"),
    "note_fan": ("Median of {n} {what} per setting; bands hold 50% and 90% of them",
                 "每个设定{n}{what}的中位数；阴影为50%和90%区间"),
    "note_lines": ("Median of {n} {what} per setting", "每个设定{n}{what}的中位数"),
    "note_mean": ("Mean of {n} {what} per setting", "每个设定{n}{what}的平均值"),
    "note_ci": ("Mean of {n} {what} with 95% t-interval", "{n}{what}的平均值及95% t区间"),
    "note_one": ("One run per setting", "每个设定一次模拟"),
    "note_one_ci": ("One run per setting: no interval", "每个设定一次模拟：无区间"),
    # what a setting's runs differ in (sim.report.load.Folder.varies)
    "runs_rep": ("replicates", "次重复模拟"),
    "runs_draw": ("joint parameter and structural draws", "次参数与结构联合抽样"),
    "runs_both": ("runs (joint parameter and structural draws × replicates)", "次模拟（参数与结构联合抽样×重复）"),
    "runs_rep_1": ("replicate", "次重复模拟"),
    "runs_draw_1": ("joint parameter and structural draw", "次参数与结构联合抽样"),
    "runs_both_1": ("run", "次模拟"),
    "note_cost_negative": ("a bar left of zero: less spent than the baseline setting, with more high-skill workers",
                           "零左侧的条：支出少于基准设定，且高技能人才更多"),
    "note_cost": ("Cost: extra cumulative spend over extra high-skill workers against the baseline setting, paired "
                  "by {pair}. n/a: baseline = the reference itself; no gain = no extra high-skill workers, so no cost "
                  "per worker; no pairs = no {pair} shared with the baseline",
                  "成本：相对基准设定的新增累计支出除以新增高技能人才数（按{pair}配对）。无：基准＝参照设定本身；"
                  "未新增＝未新增高技能人才，无单位成本；无配对＝与基准无共同{pair}"),
    # what a sweep's settings are paired by (the runs they share: sim.aggregate.paired_effects)
    "pair_rep": ("replicate", "重复模拟"),
    "pair_draw": ("draw", "联合抽样"),
    "pair_both": ("draw and replicate", "联合抽样与重复模拟"),
    "note_full_years": ("Full calendar years only", "仅含完整年份"),
    "all_runs": ("all runs", "全部模拟"),
    "sep": ("; ", "；"),
    "partial_level": ("Hollow: nobody at the level in some months of the year, in some replicates (no interval)",
                      "空心点：部分模拟中该等级在当年某些月份无人（不给区间）"),
    "partial_level_run": ("Hollow: nobody at the level in some months of the year", "空心点：该等级在当年某些月份无人"),
    "others": ("Other settings (median)", "其他设定（中位数）"),
    "single_run": ("single run", "单次模拟"),
}


def t(key: str, lang: str, **fields) -> str:
    """The phrase `key` in `lang`, with {fields} filled in."""
    en, zh = PHRASES[key]
    return (zh if lang == "zh" else en).format(**fields)


def what_runs(folder, lang: str) -> str:
    """What a sweep's runs of one setting are, by what they differ in: replicates (the agents' noise
    only), joint draws of the parameters and structural inputs, or both."""
    draws = "draw" in folder.varies
    noise = bool({"replicate", "seed"} & set(folder.varies))
    one = "_1" if folder.one_run_each else ""  # "1 replicate", not "1 replicates"
    return t(("runs_both" if draws and noise else "runs_draw" if draws else "runs_rep") + one, lang)


def paired_by(folder, lang: str) -> str:
    """What a sweep's settings are paired by in its effects: the replicate, the joint draw, or both."""
    draws, noise = "draw" in folder.varies, bool({"replicate", "seed"} & set(folder.varies))
    return t("pair_both" if draws and noise else "pair_draw" if draws else "pair_rep", lang)


def level_label(index: int, lang: str) -> str:
    """Level name from the ladder module, capitalised in English."""
    lv = LEVELS[index]
    return lv.zh if lang == "zh" else lv.en[:1].upper() + lv.en[1:]


def channel_label(channel: str, lang: str) -> str:
    en, zh = CHANNELS[channel]
    return zh if lang == "zh" else en


def scenario_label(name: str, lang: str) -> str:
    en, zh = SCENARIOS.get(name, (name.replace("_", " "), name))
    return zh if lang == "zh" else en


def lever_name(key: str, lang: str) -> str | None:
    """'levers.training.intensity' -> 'training' / '培训'; None for other keys."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "levers" and parts[1] in LEVERS and parts[2] == "intensity":
        en, zh = LEVERS[parts[1]]
        return zh if lang == "zh" else en
    return None


def param_label(key: str, value, lang: str, digits: int | None = None) -> str:
    """One swept parameter as a reader reads it: 'training ×2', 'Training boost', 'n_agents=5000'."""
    if key == "scenario":
        return scenario_label(str(value), lang)
    lever = lever_name(key, lang)
    number = fmt_number(value, digits)
    if lever is not None:
        return f"{lever}×{number}" if lang == "zh" else f"{lever} ×{number}"
    return f"{key}={number}"


def setting_label(params: dict, lang: str, first: str | None = None, digits: int | None = None) -> str:
    sep = "，" if lang == "zh" else ", "
    return sep.join(([first] if first else []) + [param_label(k, v, lang, digits) for k, v in params.items()])


def short_param_label(key: str, value, lang: str, digits: int | None = None) -> str:
    """One swept parameter in a compact label: 'T×2' for a lever intensity, else 'name=value'."""
    if key == "scenario":
        return scenario_label(str(value), lang)
    lever = lever_name(key, lang)
    if lever is not None:
        en, zh = LEVER_KEYS[key.split(".")[1]]
        return f"{zh if lang == 'zh' else en}×{fmt_number(value, digits)}"
    return f"{key.rsplit('.', 1)[-1]}={fmt_number(value, digits)}"


def short_setting_label(params: dict, lang: str, first: str | None = None, digits: int | None = None) -> str:
    sep = "，" if lang == "zh" else ", "
    levers = [short_param_label(k, v, lang, digits) for k, v in params.items() if lever_name(k, lang)]
    others = [short_param_label(k, v, lang, digits) for k, v in params.items() if not lever_name(k, lang)]
    return sep.join(([first] if first else []) + others + ([" ".join(levers)] if levers else []))


def lever_key(keys, lang: str) -> str:
    """The key to compact labels: 'Key: T training, S studios (× status-quo level)'."""
    parts = []
    for k in keys:
        lever = lever_name(k, lang)
        if lever is not None:
            en, zh = LEVER_KEYS[k.split(".")[1]]
            parts.append(f"{zh}＝{lever}" if lang == "zh" else f"{en} {lever}")
    if not parts:
        return ""
    if lang == "zh":
        return "图例缩写：" + "，".join(parts) + "（现行水平的倍数）"
    return "Key: " + ", ".join(parts) + " (× status-quo level)"


def fmt_number(v, digits: int | None = None) -> str:
    """A parameter value as a label shows it: 2, 1.5, or to `digits` significant digits (an Optuna trial's
    0.0003431244520346599 as 0.000343; `label_digits` picks enough to tell a folder's settings apart)."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if digits is not None and isinstance(v, float) and math.isfinite(v):
        import numpy as np

        whole = len(str(int(abs(v)))) if abs(v) >= 1 else 0  # a yuan amount keeps its units: 104513, not 1.05e+05
        return np.format_float_positional(v, precision=max(digits, whole), unique=False, fractional=False, trim="-")
    return str(v)


#: significant digits a setting's label starts from (more only where two settings would read the same)
LABEL_DIGITS = 3


def label_digits(param_sets: list[dict]) -> int:
    """The fewest significant digits, from LABEL_DIGITS, at which no two settings' labels read the same."""
    for digits in range(LABEL_DIGITS, 18):
        seen = {tuple(sorted((k, fmt_number(v, digits)) for k, v in params.items())) for params in param_sets}
        if len(seen) == len(param_sets):
            return digits
    return 17


def pct(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f}%"


def money(yuan: float, lang: str, digits: int = 1) -> str:
    """Yuan as '12.3 thousand yuan' / '1.2万元'."""
    if lang == "zh":
        return f"{yuan / 1e4:.{digits}f}万元"
    return f"{yuan / 1e3:,.{digits}f} thousand yuan"


def income_scale(lang: str) -> float:
    """Divisor from yuan to the income axis unit (thousand yuan / 万元)."""
    return 1e4 if lang == "zh" else 1e3


def spend_scale(lang: str) -> float:
    """Divisor from yuan to the spend unit (billion yuan / 亿元)."""
    return 1e8 if lang == "zh" else 1e9
