"""The explorer's page (Solara): lever sliders and settings on the left; the fan chart of the chosen
setting against the status quo, the level composition, income, costs and the cost per additional
high-skill worker, with a summary and exports; every word from LABELS (or the engine's and charts' TEXT)
in the chosen language.

Solara is what Mesa's own browser visualisation is built on: pages are Python components with
reactive state, served by a local server, and testable in-process with its test renderer (no browser).
The work runs in a thread per view (solara.use_thread): a newer view cancels the older one's
remaining runs; the first look and each finished replicate update the page as they come.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import threading

import solara
from solara.alias import rw

from ..errors import ConfigError, SkillsimError
from ..report.text import scenario_label
from . import charts
from .engine import (ALLOCATIONS, END_YEARS, EXPERIMENT_NAME, MAX_REPLICATES, REGIONS, SCENARIOS, SELECTIONS, Result,
                     View, chosen_config, compute, progress_text, region_label, with_preset)

VIEW_ENV = "SKILLSIM_EXPLORE_VIEW"  # the first view, as JSON fields of View (skillsim-explore's options)


def first_view() -> View:
    import json
    import os

    try:
        fields = json.loads(os.environ.get(VIEW_ENV) or "{}")
        return dataclasses.replace(View(), **fields)
    except (ValueError, TypeError):
        return View()


view = solara.reactive(first_view())
lang = solara.reactive("en")

LABELS = {
    "en": {"title": "skillsim explorer", "region": "region", "scenario": "scenario",
           "training": "training intensity (× status quo)", "competition": "competition intensity (× status quo)",
           "studio": "studio intensity (× status quo)", "allocation": "training allocation",
           "selection": "competition selection", "members": "studio places (members per studio)",
           "end_year": "horizon (last year)", "n_agents": "agents", "replicates": "runs (draws or replicates)",
           "uncertainty": "parameter, assumption and structural uncertainty (calibration ensemble)",
           "working": "working", "done": "done", "command": "Reproduce with skillsim",
           "config": "study file (skillsim_view.yaml)", "png": "PNG", "csv": "CSV", "error": "Not run",
           "summary": "December {y}: median high-skill share {c} with the chosen setting, {s} under the status "
                      "quo; the mean of the paired differences (same seeds) {d:+.1f} points; mean extra spend "
                      "{cost} billion yuan, {per} yuan per additional high-skill worker.",
           "language": "language", "previous": "(previous setting) ", "colon": ": ",
           "config_error": "config error: {field} = {value} is invalid; allowed: {allowed}", "fault": "",
           "charts": {"share": "high-skill share", "composition": "level composition", "income": "income",
                      "cost": "cumulative spend", "cost_per_worker": "cost per additional high-skill worker"},
           "allocations": {"random": "random", "lowest_level": "lowest levels first",
                           "near_standard": "nearest the next standard first"},
           "selections": {"progress": "those progressing best", "random": "random"}},
    "zh": {"title": "skillsim 政策模拟器", "region": "地区", "scenario": "情景",
           "training": "培训强度（现行水平的倍数）", "competition": "竞赛强度（现行水平的倍数）",
           "studio": "工作室强度（现行水平的倍数）", "allocation": "培训分配方式", "selection": "竞赛选拔方式",
           "members": "工作室名额（每个工作室成员数）", "end_year": "预测截止年份", "n_agents": "主体数",
           "replicates": "运行次数（抽样或重复）", "uncertainty": "参数、假设与结构性输入的不确定性（校准集合）",
           "working": "计算中", "done": "完成", "command": "用 skillsim 复现",
           "config": "研究配置文件（skillsim_view.yaml）", "png": "PNG", "csv": "CSV", "error": "未运行",
           "summary": "{y}年12月：高技能人才占比中位数，所选方案下{c}，现行政策下{s}；相同随机种子下配对差异的均值"
                      "{d:+.1f}个百分点；平均额外支出{cost}亿元，每增加一名高技能人才{per}元。",
           "language": "语言", "previous": "（上一设置）", "colon": "：",
           "config_error": "配置错误：{field} = {value} 无效；允许：{allowed}", "fault": "程序错误：",
           "charts": {"share": "高技能人才占比", "composition": "等级构成", "income": "收入", "cost": "累计支出",
                      "cost_per_worker": "每增加一名高技能人才的成本"},
           "allocations": {"random": "随机", "lowest_level": "低等级优先", "near_standard": "接近下一等级标准者优先"},
           "selections": {"progress": "进步最快者", "random": "随机"}},
}


#: the studio-places slider's step: the default (View.members_per_studio, 17.4) must lie on its grid
MEMBERS_STEP = 0.1


def set_field(**kw) -> None:
    view.value = dataclasses.replace(view.value, **kw)


def set_preset(**kw) -> None:
    """A new region or scenario: the lever sliders take the preset's settings (a scenario is its lever
    settings), so the page shows, and its command runs, what the preset composes to."""
    view.value = with_preset(dataclasses.replace(view.value, **kw))


def one_line(err: BaseException) -> str:
    """An unexpected error as the page says it: its type and message, on one line."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


#: the config checks' usual words for what is allowed (sim.config.range_text), in Chinese; a phrase not
#: listed stays in English inside the Chinese sentence
_ALLOWED_ZH = ((re.compile(r"^an integer, "), "整数，"), (re.compile(r"^a finite number, "), "有限的数，"),
               (re.compile(r"a number in ([\[(][^\]]*\])"), r"\1 之间的数"), (re.compile(r"a number >= (\S+)"), r"不小于 \1 的数"),
               (re.compile(r"a number > (\S+)"), r"大于 \1 的数"), (re.compile(r"a number <= (\S+)"), r"不大于 \1 的数"),
               (re.compile(r"^true or false$"), "true 或 false"), (re.compile(r"^one of "), "以下之一："))


def allowed_zh(text: str) -> str:
    """What is allowed, in Chinese where the phrase is one of the checks' usual ones."""
    for pattern, zh in _ALLOWED_ZH:
        text = pattern.sub(zh, text)
    return text


def error_text(err: BaseException, L: str) -> str:
    """An error in the page's language when shown: a bad value names its field, value and what is
    allowed; other errors of ours keep their message; a fault of ours gives its type and message."""
    T = LABELS[L]
    if isinstance(err, ConfigError):
        allowed = (err.allowed_in(L) if hasattr(err, "allowed_in")
                   else allowed_zh(err.allowed) if L == "zh" else err.allowed)
        return T["config_error"].format(field=err.field, value=repr(err.value), allowed=allowed)
    if isinstance(err, SkillsimError):
        return " ".join(str(err).split())
    return T["fault"] + one_line(err)


@solara.component
def Choice(label: str, value: str, options: dict[str, str], on_value) -> None:
    """A drop-down that shows each option's label in the page's language and sets its value."""
    # the label under both names Vuetify reads by default: "text" (Vuetify 2, what the pinned ipyvuetify
    # serves) and "title" (Vuetify 3); an item without the one it reads shows as "[object Object]"
    solara.v.Select(label=label, v_model=value, on_v_model=on_value,
                    items=[{"text": t, "title": t, "value": k} for k, t in options.items()])


def summary_text(res: Result, L: str) -> str:
    s = res.summary()
    scale = 1e9 if L == "en" else 1e8
    per = s["cost_per_extra_worker"]
    return LABELS[L]["summary"].format(y=s["date"][:4], c=f"{100 * s['share_chosen']:.1f}%",
                                       s=f"{100 * s['share_status_quo']:.1f}%", d=100 * s["share_difference"],
                                       cost=f"{s['extra_cost_yuan'] / scale:,.2f}",
                                       per=f"{per:,.0f}" if per == per else "—")


#: resolution of a chart's PNG download (the page shows each chart at the figure's own, 100 dpi)
DOWNLOAD_DPI = 150


def png_bytes(fig, dpi: float | None = None) -> bytes:
    """The figure as PNG at `dpi`, by default the figure's own (what the page shows). Asked for
    explicitly: savefig's default follows the process's `savefig.dpi`, which the reports' settings
    set to 300. Drawn holding the settings' lock (sim.report.style.SETTINGS_LOCK): matplotlib's
    settings are the process's, and two sessions' threads may draw at once."""
    from ..report.style import SETTINGS_LOCK

    buf = io.BytesIO()
    with SETTINGS_LOCK:
        fig.savefig(buf, format="png", dpi=dpi if dpi is not None else "figure")
    return buf.getvalue()


def draw_all(res: Result, L: str) -> list:
    """Every chart of a result: (key, figure, table), drawn once per result and language."""
    from ..report.style import language

    region = dataclasses.asdict(chosen_config(res.view, n_agents=res.n_agents).region)
    with language(L):
        return [(key, *draw(res, region, L)) for key, draw in charts.CHARTS]


def shown_charts(res: Result, L: str) -> list:
    """What the page shows of a result: (key, PNG, PNG download, CSV download) for every chart, the PNG
    encoded once at the figure's resolution, the downloads made when clicked. The downloads are made
    here, once per result, so that they stay the same objects from one render to the next: a new one
    at each render (a replicate finishing) resets Solara's download and cancels one under way."""
    return [(key, png_bytes(fig), functools.partial(png_bytes, fig, DOWNLOAD_DPI), functools.partial(csv_bytes, data))
            for key, fig, data in draw_all(res, L)]


def csv_bytes(data) -> bytes:
    return data.to_csv(index=False).encode()


@solara.component
def Controls():
    v, L = view.value, lang.value
    T = LABELS[L]
    with solara.ToggleButtonsSingle(value=L, on_value=lang.set):
        solara.Button("English", value="en", text=True)
        solara.Button("中文", value="zh", text=True)
    Choice(T["region"], v.region, {r: region_label(r, L) for r in REGIONS}, lambda x: set_preset(region=x))
    Choice(T["scenario"], v.scenario, {s: scenario_label(s, L) for s in SCENARIOS},
           lambda x: set_preset(scenario=x))
    solara.SliderFloat(T["training"], value=v.training, min=0, max=3, step=0.1, thumb_label="always",
                       on_value=lambda x: set_field(training=round(x, 6)))
    solara.SliderFloat(T["competition"], value=v.competition, min=0, max=3, step=0.1,
                       thumb_label="always", on_value=lambda x: set_field(competition=round(x, 6)))
    solara.SliderFloat(T["studio"], value=v.studio, min=0, max=3, step=0.1, thumb_label="always",
                       on_value=lambda x: set_field(studio=round(x, 6)))
    Choice(T["allocation"], v.allocation, {a: T["allocations"][a] for a in ALLOCATIONS},
           lambda x: set_field(allocation=x))
    Choice(T["selection"], v.selection, {s: T["selections"][s] for s in SELECTIONS}, lambda x: set_field(selection=x))
    # step 0.1: the browser snaps the shown value to the slider's steps and sends it back, and on a 0.5
    # grid the default 17.4 came back as 17.5, so the untouched page compared a changed setting
    solara.SliderFloat(T["members"], value=v.members_per_studio, min=5, max=40, step=MEMBERS_STEP,
                       thumb_label="always", on_value=lambda x: set_field(members_per_studio=round(x, 6)))
    solara.SliderInt(T["end_year"], value=v.end_year, min=END_YEARS[0], max=END_YEARS[1], thumb_label="always",
                     on_value=lambda x: set_field(end_year=x))
    solara.InputInt(T["n_agents"], value=v.n_agents, on_value=lambda x: set_field(n_agents=int(x)), continuous_update=False)
    solara.SliderInt(T["replicates"], value=v.replicates, min=1, max=MAX_REPLICATES, thumb_label="always",
                     on_value=lambda x: set_field(replicates=x))
    solara.Checkbox(label=T["uncertainty"], value=v.uncertainty, on_value=lambda x: set_field(uncertainty=x))


@solara.component
def Page():
    v, L = view.value, lang.value
    T = LABELS[L]
    shown, set_shown = solara.use_state(None)  # (Result, runs done: 0 for the first look)
    failed, set_failed = solara.use_state(None)  # (view, error): shown only while that view is current

    def work(cancel: threading.Event):
        def update(res: Result, done: int) -> None:
            if not cancel.is_set():
                set_shown((Result(res.view, res.n_agents, {k: list(r) for k, r in res.runs.items()}, res.final), done))

        try:
            compute(v, update, cancelled=cancel.is_set)
        except SkillsimError as err:
            set_failed((v, err))
        except Exception as err:  # noqa: BLE001 - a fault of ours: said on the page, which keeps serving
            import logging

            logging.getLogger(__name__).exception("the explorer could not compute %s", v)
            set_failed((v, err))

    # not intrusive: its trace hook slows the runs several times; compute() checks the cancel event itself
    task = solara.use_thread(work, dependencies=[v], intrusive_cancel=False)
    solara.Title(T["title"])
    with solara.Columns([1, 3]):
        with solara.Column():
            solara.v.Html(tag="h2", children=[T["title"]])  # not Markdown: its math support loads KaTeX from a CDN
            Controls()
        with solara.Column():
            Results(shown, failed[1] if failed is not None and failed[0] == v else None, task, v, L)


@solara.component
def Results(shown, error, task, v: View, L: str):
    T = LABELS[L]
    res = shown[0] if shown is not None else None
    # drawn and encoded once per result and language: without it every render (a slider move, a
    # progress line) would draw and encode the five charts again, about a second before a new answer shows
    drawn = solara.use_memo(lambda: shown_charts(res, L) if res is not None else [],
                            dependencies=[id(res), res.replicates if res is not None else 0, L])
    if error:  # ipyvuetify's Alert directly: solara.Error passes a bool where this Alert wants text
        solara.v.Alert(type="error", outlined=True, children=[T["error"] + T["colon"] + error_text(error, L)])
    if shown is None:
        solara.ProgressLinear(not error)
        return
    res, done = shown
    running = task.state not in (solara.ResultState.FINISHED, solara.ResultState.ERROR) or not res.final
    solara.ProgressLinear(running and not error)
    solara.Text(("" if res.view == v else T["previous"]) + progress_text(res.view, done, L))
    solara.Text(summary_text(res, L), classes=["skillsim-summary"])
    for key, png, png_download, csv_download in drawn:
        rw.Image(value=png, format="png")  # what solara.FigureMatplotlib shows, from the PNG made above
        with solara.Row():  # made when asked for (a click), not at every update
            solara.FileDownload(png_download, filename=f"skillsim_{key}.png", label=T["charts"][key] + T["colon"] + T["png"])
            solara.FileDownload(csv_download, filename=f"skillsim_{key}.csv", label=T["charts"][key] + T["colon"] + T["csv"])
    solara.v.Html(tag="h3", children=[T["command"]])
    solara.v.Html(tag="pre", children=[res.view.command()])
    solara.FileDownload(res.view.experiment_yaml().encode(), filename=f"{EXPERIMENT_NAME}.yaml", label=T["config"])
