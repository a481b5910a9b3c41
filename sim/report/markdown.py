"""report.md: the figures with captions, and the key numbers in tables, in English or Chinese."""

from __future__ import annotations

import math
from pathlib import Path

from . import tables
from .figures import label, region_title
from .text import paired_by, pct, what_runs

UNITS = {"en": ("thousand yuan", 1e3, 1, "billion yuan", 1e9), "zh": ("万元", 1e4, 2, "亿元", 1e8)}


def num(v: float, digits: int, signed: bool = False) -> str:
    """A number with thousands separators and an ASCII sign."""
    return f"{v:+,.{digits}f}" if signed else f"{v:,.{digits}f}"


def column_digits(values, least: int = 1, most: int = 3, significant: int = 3) -> int:
    """Decimals for a column of amounts (in billions or 亿): the same for every row, enough for
    `significant` digits of its smallest non-zero amount (a county's 0.527 billion yuan read "0.5"), at
    least `least` and at most `most`."""
    small = [abs(v) for v in values if v == v and v != 0]
    if not small:
        return least
    return max(least, min(most, significant - 1 - math.floor(math.log10(min(small)))))

W = {  # (en, zh)
    "title": ("Skilled-workforce forecast: {region}", "技能人才预测：{region}"),
    "source": ("Source folder", "数据来源"),
    "kind_run": ("a single run", "单次模拟"),
    "kind_sweep": ("a sweep of {n} settings × {r} {what}", "{n}个设定×{r}{what}的参数扫描"),
    "unfinished": ("**{k} of the sweep's {n} jobs did not finish** (failed or missing; see runs.csv): "
                   "every figure and table uses the {ok} that did.",
                   "**参数扫描的{n}个作业中有{k}个未完成**（失败或缺失，见 runs.csv）：所有图表仅使用完成的{ok}个。"),
    "made_from": ("Made by `skillsim-report` from {kind} in `{path}` ({agents} agents per run, model "
                  "`{commit}`). Every figure's data is the CSV of the same name in `figures/`.",
                  "由 `skillsim-report` 根据 `{path}` 中的{kind}生成（每次模拟{agents}个主体，模型版本 `{commit}`）。"
                  "每幅图的数据见 `figures/` 中同名 CSV 文件。"),
    "key": ("Key numbers, {year}", "{year}年关键指标"),
    "setting": ("Setting", "设定"),
    "share": ("High-skill share, Dec {year}", "{year}年12月高技能人才占比"),
    "income": ("Mean annual income, {year} ({unit})", "{year}年平均年收入（{unit}）"),
    "median_income": ("Median annual income, {year} ({unit})", "{year}年年收入中位数（{unit}）"),
    "middle": ("Share earning ≥ {thr}, {year}", "{year}年年收入≥{thr}的比例"),
    "spend": ("Spend {first}-{year} ({bunit})", "{first}-{year}年累计支出（{bunit}）"),
    "ci_note": ("Values are means across {n} {what} with 95% t-intervals (mean ± t·s/√n) in brackets. "
                "The high-skill share is senior workers (level 3) and above over certificate holders (levels "
                "1-7); income is the year's mean of the monthly annualised figures.",
                "数值为{n}{what}的平均值，括号内为95% t区间（均值 ± t·s/√n）。高技能人才占比指高级工及以上"
                "占持证技能人才（1-7级）的比例；收入为该年各月年化收入的平均值。"),
    "run_note": ("One run: no intervals. The high-skill share is senior workers (level 3) and above over "
                 "certificate holders (levels 1-7); income is the year's mean of the monthly annualised figures.",
                 "单次模拟，无区间。高技能人才占比指高级工及以上占持证技能人才（1-7级）的比例；收入为该年各月年化收入的平均值。"),
    "effects": ("Effects against the baseline setting, {base}, paired by {pair}",
                "相对基准设定“{base}”的效果（按{pair}配对）"),
    "d_share": ("Effect on high-skill share, Dec {year} (percentage points)", "{year}年12月高技能人才占比变化（百分点）"),
    "d_income": ("Effect on mean income, {year} ({unit})", "{year}年平均收入变化（{unit}）"),
    "extra_spend": ("Extra spend ({bunit})", "新增支出（{bunit}）"),
    "extra_workers": ("Extra high-skill workers, Dec {year}", "{year}年12月新增高技能人才（人）"),
    "cost": ("Cost per additional high-skill worker ({unit})", "每新增一名高技能人才的成本（{unit}）"),
    "eff_note": ("From effects.csv: mean paired differences with 95% t-intervals; the cost is extra cumulative "
                 "spend over extra high-skill workers in December {year} (n/a where the setting adds none).",
                 "数据来自 effects.csv：配对差值的平均值及95% t区间；成本为新增累计支出除以{year}年12月新增高技能人才数"
                 "（未新增时记为“无”）。"),
    "one_note": ("One run per setting: no intervals. The high-skill share is senior workers (level 3) and above "
                 "over certificate holders (levels 1-7); income is the year's mean of the monthly annualised figures.",
                 "每个设定一次模拟，无区间。高技能人才占比指高级工及以上占持证技能人才（1-7级）的比例；收入为该年各月年化收入的平均值。"),
    "target_note_one": ("One run per setting: no range.", "每个设定一次模拟，无区间。"),
    "no_cost_one": ("The cost per additional high-skill worker needs a comparison with a baseline setting, paired by "
                    "replicate: this sweep has one setting. Sweep it beside the baseline, e.g. "
                    "`skillsim -m {sweep}`, and report on its folder.",
                    "每新增一名高技能人才的成本需要与基准设定按重复模拟配对比较，本次扫描只有一个设定。请将其与基准设定一起扫描，例如 "
                    "`skillsim -m {sweep}`，再对其结果文件夹生成报告。"),
    "no_cost": ("The cost per additional high-skill worker needs a comparison with a baseline setting, "
                "paired by replicate: it is not available for a single run. Run a sweep that holds this run's "
                "setting and the baseline, e.g. `skillsim -m {sweep}`, and report on its folder.",
                "每新增一名高技能人才的成本需要与基准设定按重复模拟配对比较，单次模拟无法给出。请运行包含本次设定与基准设定的参数扫描，例如 "
                "`skillsim -m {sweep}`，再对其结果文件夹生成报告。"),
    "target_h": ("Against the policy target", "与政策目标比较"),
    "target_col": ("Target", "目标"),
    "at_target": ("Share, Dec {year}", "{year}年12月占比"),
    "target_note": ("Median across the {what} and the range holding 90% of them.", "各{what}的中位数及90%区间。"),
    # what the figures' spread carries, said beside the numbers a planner compares with a target
    "scope_rep": ("**What the intervals carry:** the agents' own noise only ({n} replicates at one parameter "
                  "set). The model's behavioural parameters and its structural inputs (the workforce's growth, "
                  "among others) are far more uncertain, and none of that is in these intervals: "
                  "`skillsim-forecast {where}` gives bands that carry them too.",
                  "**区间的含义：**仅含主体层面的随机波动（同一参数组下{n}次重复模拟）。模型行为参数与结构性输入"
                  "（如劳动力增长）的不确定性大得多，不在这些区间之内；含这些来源的区间请运行 "
                  "`skillsim-forecast {where}`。"),
    "scope_one": ("**What these runs carry:** one run per setting at one parameter set, so none of the uncertainty "
                  "of the model's behavioural parameters, its structural inputs (the workforce's growth, among others) "
                  "or the agents' noise. `skillsim-forecast {where}` gives bands that carry them.",
                  "**这些模拟的含义：**每个设定在同一参数组下仅一次模拟，不含模型行为参数、结构性输入（如劳动力增长）及主体"
                  "随机波动的不确定性。含这些来源的区间请运行 `skillsim-forecast {where}`。"),
    "scope_run": ("**What this run carries:** one run at {at}, so none of the uncertainty of the model's "
                  "behavioural parameters, its structural inputs (the workforce's growth, among others) or the "
                  "agents' noise. `skillsim-forecast {where}` gives bands that carry them.",
                  "**本次模拟的含义：**{at}下的单次模拟，不含模型行为参数、结构性输入（如劳动力增长）及主体随机波动的"
                  "不确定性。含这些来源的区间请运行 `skillsim-forecast {where}`。"),
    "at_central": ("the central parameter set", "中心参数组"),
    "at_off": ("parameter values other than the calibrated central set for {keys}",
               "{keys}取非校准中心值的参数"),
    "at_draw": ("joint draw {d} of the parameters and structural inputs", "参数与结构联合抽样第{d}组"),
    "scope_draw": ("**What the intervals carry:** the {what}: the parameters' and structural inputs' uncertainty"
                   "{noise}. `skillsim-forecast {where}` gives a forecast's full design, with each "
                   "source's share of the variance.",
                   "**区间的含义：**各{what}，即参数与结构性输入的不确定性{noise}。完整的预测设计及各来源的方差占比请运行 "
                   "`skillsim-forecast {where}`。"),
    "and_noise": (" and the agents' noise", "及主体随机波动"),
    "figures": ("Figures", "图表"),
    "skipped": ("Not applicable to this folder: {names}.", "不适用于本文件夹：{names}。"),
    "na": ("n/a", "无"),
}
CAPTIONS = {
    "fig1_high_skill_share": ("High-skill share over time, with the policy targets and observed values.",
                              "高技能人才占比走势、政策目标与实际观测值。"),
    "fig2_level_composition": ("Workforce by skill level (mean share of all workers across replicates).",
                               "各技能等级人数构成（各次模拟占全部工人比例的平均值）。"),
    "fig2_level_composition@run": ("Workforce by skill level (share of all workers).", "各技能等级人数构成（占全部工人比例）。"),
    "fig3_income": ("Income: mean and median over time, share above the middle-income threshold, and mean "
                    "income by level in the target year.",
                    "收入：均值与中位数走势、中等收入以上比例、目标年各等级平均收入。"),
    "fig4_scenario_comparison": ("Settings compared in the target year, with 95% intervals, and the cost per "
                                 "additional high-skill worker.",
                                 "目标年各设定比较（含95%区间）及每新增一名高技能人才的成本。"),
    "fig5_lever_response": ("Response of the target-year high-skill share to the swept lever settings, with "
                            "cumulative spend.", "目标年高技能人才占比对政策力度的响应及累计支出。"),
    "fig6_promotions": ("Promotions per year by channel.", "各渠道年度晋升人数。"),
}


def w(key: str, lang: str, **kw) -> str:
    en, zh = W[key]
    return (zh if lang == "zh" else en).format(**kw)


def _ci(mean: float, lo: float, hi: float, fmt) -> str:
    if math.isnan(lo) or math.isnan(hi):
        return fmt(mean)
    return f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out + [""]


def where(folder) -> str:
    """The arguments that choose the folder's region in a suggested command: its preset, and the user's
    config folders the runs read (the manifest's `config_dirs`), quoted for a shell. Without them a
    suggestion for a user's region ran Chongqing or failed ("region = 'liuzhou' is invalid")."""
    import shlex

    dirs = folder.manifest.get("config_dirs") or []
    words = [w for d in dirs if isinstance(d, str) for w in ("--config-dir", d)]
    return shlex.join([*words, f"region={folder.region.get('name') or 'REGION'}"])


def run_setting(folder) -> list[str]:
    """A run folder's setting as skillsim-forecast takes it (sim.config.forecast_overrides): a suggested
    forecast of a training-boost run forecast the status quo."""
    from ..config import forecast_overrides

    given = folder.manifest.get("overrides") or []
    return forecast_overrides([o for o in given if isinstance(o, str)],
                              (folder.region.get("structural") or {}) if isinstance(folder.region, dict) else {})


#: settings a cost sweep sets itself (its replicates; where the configs are read: `where`)
SWEEP_SETS_ITSELF = ("replicate", "draw", "region")


def paired_sweep(folder) -> str:
    """The arguments of a sweep whose settings include this folder's (a run, or a sweep of one setting)
    and the baseline's, paired by replicate: the suggestion said `scenario=baseline,training_boost`
    after a studio-expansion run, a comparison that leaves the run's own setting out (a user trial). A
    lever setting the run gave is swept between the status quo's value and the run's
    (`levers.studio.intensity=1,2`, `levers.competition.enabled=true,false`, lists too); every other setting
    it gave (its seed, size, growth, calibrated parameters) is held on both sides. A lever setting equal to
    the status quo's is held only where the run's scenario is not the baseline (there it keeps the
    scenario's lever at the run's value); in a baseline run it says nothing, and held beside the
    fallback `scenario=baseline,training_boost` it would have overridden training_boost's own. Two lever
    settings cross into four settings: the run's and the status quo's among them."""
    import shlex

    from ..config import RunConfig

    scenario = folder.settings[0].scenario
    words, swept = shlex.split(where(folder)), False
    quo = RunConfig().levers
    for o in (x for x in folder.manifest.get("overrides") or [] if isinstance(x, str)):
        key, _, value = o.partition("=")
        bare = key.lstrip("+~")
        if bare == "hydra" or bare.startswith("hydra.") or bare in SWEEP_SETS_ITSELF or bare == "scenario":
            continue
        before = _lever_value(quo, bare)
        if before is not None and not _same_value(before, value):
            words.append(f"{key}={_typed(before)},{value}")
            swept = True
        elif before is None or scenario != "baseline":
            words.append(o)
    if scenario != "baseline":
        words.append(f"scenario=baseline,{scenario}")
    elif not swept:
        words.append("scenario=baseline,training_boost")
    return shlex.join(words + ["replicate=range(0,10)"])


def _lever_value(levers, key: str):
    """The status quo's value of a `levers.*` key (a number, a switch, a word or a list of them), else None."""
    if not key.startswith("levers."):
        return None
    node = levers
    for part in key.split(".")[1:]:
        if not hasattr(node, part):
            return None
        node = getattr(node, part)
    if isinstance(node, list) and all(isinstance(v, (bool, int, float, str)) for v in node):
        return node
    return node if isinstance(node, (bool, int, float, str)) else None


def _same_value(before, typed: str) -> bool:
    import yaml

    try:
        return yaml.safe_load(typed) == before
    except yaml.YAMLError:
        return False


def _typed(value) -> str:
    """A value as an override writes it (true, 1, random, [1,4])."""
    if isinstance(value, list):
        return "[" + ",".join(_typed(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def scope(folder, lang: str) -> str:
    """Which sources of uncertainty the folder's spread carries, and where to get the others."""
    import shlex

    at_region = where(folder)
    if folder.kind == "run":
        d = folder.config.get("draw")
        from ..config import off_calibration

        off = off_calibration(folder.config) if d is None else []
        at = (w("at_draw", lang, d=d) if d is not None else w("at_off", lang, keys=", ".join(off)) if off
              else w("at_central", lang))
        return w("scope_run", lang, at=at, where=shlex.join([*shlex.split(at_region), *run_setting(folder)]))
    if "draw" in folder.varies:
        noise = w("and_noise", lang) if {"replicate", "seed"} & set(folder.varies) else ""
        return w("scope_draw", lang, what=what_runs(folder, lang), noise=noise, where=at_region)
    if folder.one_run_each:  # no spread at all
        return w("scope_one", lang, where=at_region)
    return w("scope_rep", lang, n=folder.replicates_text, where=at_region)


def write_markdown(written, opts, path: Path) -> None:
    folder, lang = written.folder, opts.lang
    year = folder.target_year
    region = region_title(folder, lang)
    thr = float(folder.config.get("wages", {}).get("middle_income_threshold", 100000.0))
    kind = (w("kind_run", lang) if folder.kind == "run" else
            w("kind_sweep", lang, n=len(folder.settings), r=folder.replicates_text, what=what_runs(folder, lang)))
    # The model that made the runs: its version, and the commit when the runs came from a source checkout.
    version = f"skillsim {folder.manifest.get('versions', {}).get('skillsim', '?')}"
    sha = str(folder.manifest.get("git_commit", "unknown"))
    commit = version if sha == "unknown" else f"{version}, commit {sha[:12]}"
    lines = [f"# {w('title', lang, region=region)}", "",
             w("made_from", lang, kind=kind, path=folder.path, agents=f"{int(folder.config.get('n_agents', 0)):,}",
               commit=commit), ""]
    if folder.unfinished:
        ok = len(folder.runs)
        lines += [w("unfinished", lang, k=folder.unfinished, n=ok + folder.unfinished, ok=ok), ""]
    summ = tables.summary_table(folder)
    unit, div, dig, bunit, bdiv = UNITS[lang]
    first = min(folder.long["date"])
    first = int(first[:4]) + (first[5:7] == "12")
    lines += [f"## {w('key', lang, year=year)}", ""]
    pfmt = lambda v: pct(v, 1)
    mfmt = lambda v: num(v / div, dig)
    rows = []
    sdig = column_digits([summ[summ["setting"] == s.id].iloc[0]["spend_cum_total"] / bdiv for s in folder.settings])
    for s in folder.settings:
        r = summ[summ["setting"] == s.id].iloc[0]
        rows.append([label(folder, s, lang),
                     _ci(r["high_skill_share"], r["high_skill_share_ci_low"], r["high_skill_share_ci_high"], pfmt),
                     _ci(r["income_mean_target_year"], r["income_mean_target_year_ci_low"],
                         r["income_mean_target_year_ci_high"], mfmt),
                     mfmt(r["income_median_target_year"]), pct(r["middle_income_share_target_year"], 1),
                     num(r["spend_cum_total"] / bdiv, sdig)])
    lines += _table([w("setting", lang), w("share", lang, year=year), w("income", lang, year=year, unit=unit),
                     w("median_income", lang, year=year, unit=unit),
                     w("middle", lang, thr=f"{num(thr / div, 0)}{'' if lang == 'zh' else ' '}{unit}", year=year),
                     w("spend", lang, first=first, year=year, bunit=bunit)], rows)
    one = folder.one_run_each  # an Optuna sweep's trials: not "means across 1 replicates"
    lines += [w("run_note", lang) if folder.kind == "run" else w("one_note", lang) if one else
              w("ci_note", lang, n=folder.replicates_text, what=what_runs(folder, lang)), "", scope(folder, lang), ""]
    if folder.effects is not None and "effect_high_skill_share" in summ:
        base = next(s for s in folder.settings if s.is_baseline)
        pair = paired_by(folder, lang)
        lines += [f"### {w('effects', lang, base=label(folder, base, lang), pair=pair)}", ""]
        rows = []
        edig = column_digits([r / bdiv for r in summ["extra_spend"]]) if "extra_spend" in summ else 1
        for s in folder.settings:
            r = summ[summ["setting"] == s.id].iloc[0]
            if s.is_baseline or math.isnan(r.get("effect_high_skill_share", math.nan)):
                continue
            cost = r["cost_per_additional_high_skill_worker"]
            rows.append([label(folder, s, lang),
                         _ci(r["effect_high_skill_share"] * 100, r["effect_high_skill_share_ci_low"] * 100,
                             r["effect_high_skill_share_ci_high"] * 100, lambda v: num(v, 2, True)),
                         _ci(r["effect_income_mean"], r["effect_income_mean_ci_low"], r["effect_income_mean_ci_high"],
                             lambda v: num(v / div, dig, True)),
                         num(r["extra_spend"] / bdiv, edig, True), num(r["extra_high_skill_workers"], 0, True),
                         w("na", lang) if math.isnan(cost) else num(cost / div, dig)])
        lines += _table([w("setting", lang), w("d_share", lang, year=year), w("d_income", lang, year=year, unit=unit),
                         w("extra_spend", lang, bunit=bunit), w("extra_workers", lang, year=year),
                         w("cost", lang, unit=unit)], rows)
        lines += [w("eff_note", lang, year=year), ""]
    else:
        lines += [w("no_cost_one" if folder.kind == "sweep" and len(folder.settings) == 1 else "no_cost", lang,
                    sweep=paired_sweep(folder)), ""]
    at = tables.at_target_date(folder)
    if not at.empty:
        lines += [f"### {w('target_h', lang)}", ""]
        rows = []
        for s in folder.settings:
            r = at[at["setting"] == s.id]
            if r.empty:
                continue
            r = r.iloc[0]
            band = "" if math.isnan(r["q05"]) or s.n == 1 else f" [{pct(r['q05'])}, {pct(r['q95'])}]"
            rows.append([label(folder, s, lang), pct(r["target"], 1), pct(r["median"], 1) + band])
        tyear = at["date"].iloc[0][:4]
        lines += _table([w("setting", lang), w("target_col", lang), w("at_target", lang, year=tyear)], rows)
        if folder.kind == "sweep":
            lines += [w("target_note_one", lang) if one else w("target_note", lang, what=what_runs(folder, lang)), ""]
    lines += [f"## {w('figures', lang)}", ""]
    for stem, files in written.figures.items():
        cap = CAPTIONS.get(f"{stem}@{folder.kind}", CAPTIONS[stem])[1 if lang == "zh" else 0]  # a run has no replicates
        lines += [f"![{cap}](figures/{stem}.png)", "", f"*{cap}* [CSV](figures/{stem}.csv)", ""]
    if written.skipped:
        lines += [w("skipped", lang, names=", ".join(f"`{s}`" for s in written.skipped)), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
