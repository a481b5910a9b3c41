"""Figures over time: 1 high-skill share, 2 level composition, 3 income (6, promotions: promotions.py).

Each function takes a `Folder` and a language and returns (figure, data) where `data` is exactly what
is drawn (written beside the figure as CSV), or None when the folder lacks the data.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib
import matplotlib.font_manager
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from ..ladder import HIGH_SKILL_MIN, N_LEVELS
from . import tables
from .load import STATS, Folder
from .style import (LEVEL_COLOURS, NATIONAL_TARGET_COLOUR, REGION_TARGET_COLOUR, WIDTH, band_handles, draw_fan,
                    month_end, new_figure, percent_axis, year_axis)
from .text import (income_scale, lever_key, lever_name, level_label, money, pct, scenario_label, setting_label,
                   short_setting_label, t, what_runs)

MAX_OVERLAY = 4  # more settings than this: one panel each (fig. 1) and no bands (figs. 3, 6)


def compact(folder: Folder) -> bool:
    """Many settings that differ in lever intensities: label them 'T×2 S×1 C×0', with a key in the note."""
    return (folder.kind == "sweep" and len(folder.settings) > MAX_OVERLAY
            and any(lever_name(k, "en") for k in folder.keys))


def label(folder: Folder, s, lang: str, short: bool | None = None) -> str:
    """A setting as the charts name it: in full, or compact (see `compact`) unless short=False."""
    if folder.kind == "run" or not s.params:
        return scenario_label(s.scenario, lang)
    make = short_setting_label if (compact(folder) if short is None else short) else setting_label
    digits = folder.label_digits
    if "region" in s.params:  # a swept region reads as its name
        return make({k: v for k, v in s.params.items() if k != "region"}, lang, region_name(s.region, lang), digits)
    return make(s.params, lang, digits=digits)


def region_name(reg: dict, lang: str) -> str:
    return reg.get("label_zh" if lang == "zh" else "label_en") or reg.get("name", "")


def region_title(folder: Folder, lang: str) -> str:
    """The region(s) of the folder, for titles ('Chongqing', or 'Chongqing, China' if regions are swept)."""
    names = dict.fromkeys(region_name(s.region, lang) for s in folder.settings)
    return ("、" if lang == "zh" else ", ").join(names)


def note(folder: Folder, lang: str, kind: str = "fan", bands: bool | None = None, key: bool = True) -> str:
    """What the lines (and bands) show: one run, or the median/mean across replicates; with the key to
    the compact setting labels where the chart uses them (`key`)."""
    if folder.kind == "run":
        return t("note_single", lang, n_agents=f"{int(folder.config.get('n_agents', 0)):,}")
    if kind == "fan" and not (bands if bands is not None else len(folder.settings) <= MAX_OVERLAY):
        kind = "lines"
    if folder.one_run_each:  # "median of 1 replicates", an interval of one value
        kind = "one_ci" if kind == "ci" else "one"
    text = t({"fan": "note_fan", "lines": "note_lines", "mean": "note_mean", "ci": "note_ci", "one": "note_one",
              "one_ci": "note_one_ci"}[kind], lang, n=folder.replicates_text, what=what_runs(folder, lang))
    return text + t("sep", lang) + lever_key(folder.keys, lang) if key and compact(folder) else text


def with_labels(folder: Folder, df: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The data with each setting's full label (and, when the chart abbreviates, the short one)."""
    out = df.copy()
    out.insert(1, "label", out["setting"].map({s.id: label(folder, s, lang, short=False) for s in folder.settings}))
    if compact(folder):
        out.insert(2, "short_label", out["setting"].map({s.id: label(folder, s, lang) for s in folder.settings}))
    return out


def _grid(n: int) -> tuple[int, int]:
    cols = 1 if n == 1 else 2 if n in (2, 4) else 3
    return math.ceil(n / cols), cols


#: legend key length (font sizes): a target's dash-dot line shows a whole pattern on each side of its star
LEGEND_HANDLE = 3.2


def _legend(body, handles, ncol=None, width: float = WIDTH):
    """A legend under the panels, in as many columns as its longest label lets fit in the width."""
    if ncol is None:
        size = matplotlib.rcParams["legend.fontsize"]
        size = matplotlib.font_manager.FontProperties(size=size).get_size_in_points()
        longest = max((_text_width(h.get_label(), size) for h in handles), default=0.0)
        entry = longest + (LEGEND_HANDLE + 0.8 + 1.6) * size  # key, gap to the text, gap between columns (points)
        ncol = max(1, min(len(handles), 6, int((width * 72 - 24) // entry)))
    body.legend(handles=handles, loc="outside lower center", ncol=ncol, handlelength=LEGEND_HANDLE, columnspacing=1.6)


def _text_width(text: str, size: float) -> float:
    """Approximate width in points: CJK characters are one em wide, others about 0.6 em."""
    return sum(size if "\u2e80" <= c <= "\uffef" else 0.6 * size for c in text)


def fig_high_skill_share(folder: Folder, lang: str):
    """Fig. 1: fan chart per setting, with the policy targets and the observed history."""
    f = tables.fan(folder, "high_skill_share")
    ref = tables.references(folder, lambda r: region_name(r, lang))
    n = len(folder.settings)
    facets = n > MAX_OVERLAY
    rows, cols = _grid(n) if facets else (1, 1)
    region = region_title(folder, lang)
    fig, body = new_figure(2.3 * rows + 2.4 if facets else 5.0, t("fig1_title", lang, region=region),
                           note(folder, lang, bands=True))
    axes = np.atleast_1d(body.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    x_all = month_end(pd.concat([f["date"], ref["date"]]))
    years = x_all.dt.year
    handles = []
    for i, ax in enumerate(axes):
        if facets and i >= n:
            ax.set_visible(False)
            continue
        shown = [folder.settings[i]] if facets else folder.settings
        if facets:
            for other in folder.settings:
                if other is not folder.settings[i]:
                    o = f[f["setting"] == other.id]
                    ax.plot(month_end(o["date"]), o["median"], color="#BBBBBB", lw=0.7)
            ax.set_title(label(folder, folder.settings[i], lang), color=folder.settings[i].colour)
        for s in shown:
            d = f[f["setting"] == s.id]
            line = draw_fan(ax, month_end(d["date"]), d, s.colour, ls=s.linestyle)
            if not facets:
                line.set_label(label(folder, s, lang))
                handles.append(line)
        _references(ax, ref, lang, handles if i == 0 else None, _region_colours(folder))
        year_axis(ax, years.min(), years.max(), 5 if facets else 14)
        percent_axis(ax)
        if not facets:
            ax.set_ylabel(t("hs_share_axis", lang))
        if not facets or i + cols >= n:
            ax.set_xlabel(t("year", lang))
            ax.tick_params(axis="x", which="both", labelbottom=True)
        pad = pd.Timedelta(days=60)
        ax.set_xlim(x_all.min() - pad, x_all.max() + pad)
    if facets:
        body.supylabel(t("hs_share_axis", lang), fontsize=8.5)
        handles.insert(0, Line2D([], [], color="#BBBBBB", lw=0.7, label=t("others", lang)))
    if folder.kind == "sweep":
        handles += band_handles(lambda k: t(k, lang))
    _legend(body, handles)
    data = with_labels(folder, f, lang)
    data.insert(0, "kind", "forecast")
    ref_rows = ref.rename(columns={"scope": "setting", "region": "label"})
    data = pd.concat([data, ref_rows], ignore_index=True)
    return fig, data[["kind", "setting", "label", "metric", "date", *STATS, "value", "source"]]


def _region_colours(folder: Folder) -> dict:
    """With several regions (a swept region), each region's references take its first setting's colour."""
    colours = {}
    for s in folder.settings:
        colours.setdefault(s.region["name"], s.colour)
    return colours if len(colours) > 1 else {}


def _references(ax, ref: pd.DataFrame, lang: str, handles: list | None, colours: dict) -> None:
    for _, r in ref.iterrows():
        x = month_end([r["date"]])[0]
        if r["kind"] == "observed":
            continue
        nat = r["kind"] == "national_target"
        colour = NATIONAL_TARGET_COLOUR if nat else colours.get(r["scope"], REGION_TARGET_COLOUR)
        text = (t("national_target", lang, year=r["date"][:4]) if nat else
                t("region_target", lang, region=r["region"], value=pct(r["value"], 1).replace(".0%", "%"),
                  year=r["date"][:4]))
        ax.axhline(r["value"], color=colour, lw=1.0, ls="-." if nat else "--", zorder=1)
        line = ax.plot([x], [r["value"]], marker="*", ms=9, color=colour, ls="-." if nat else "--", lw=1.0,
                       zorder=4, label=text)[0]
        if handles is not None:
            handles.append(line)
    obs = ref[ref["kind"] == "observed"]
    for scope, o in obs.groupby("scope", sort=False):
        pts = ax.scatter(month_end(o["date"]), o["value"], marker="D", s=22, color="white",
                         edgecolor=colours.get(scope, "#000000"),
                         lw=1.1, zorder=5, label=t("observed", lang, region=o["region"].iloc[0]))
        if handles is not None:
            handles.append(pts)


def fig_composition(folder: Folder, lang: str):
    """Fig. 2: stacked shares of the eight levels over time, one panel per setting."""
    comp = tables.composition(folder)
    bound = tables.high_skill_boundary(comp)
    n = len(folder.settings)
    rows, cols = _grid(n)
    region = region_title(folder, lang)
    fig, body = new_figure(2.5 * rows + 1.4 if n > 1 else 4.6, t("fig2_title", lang, region=region),
                           note(folder, lang, "mean"))
    axes = body.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i >= n:
            ax.set_visible(False)
            continue
        s = folder.settings[i]
        c = comp[comp["setting"] == s.id].pivot(index="date", columns="level", values="share_mean").sort_index()
        x = month_end(c.index)
        ax.stackplot(x, *[c[k].to_numpy() for k in range(N_LEVELS)], colors=LEVEL_COLOURS, lw=0)
        b = bound[bound["setting"] == s.id].sort_values("date")
        ax.plot(month_end(b["date"]), b["boundary"], color="#000000", lw=1.0)
        ax.set_ylim(0, 1)
        ax.set_xlim(x.min(), x.max())
        ax.grid(False)
        year_axis(ax, x.min().year, x.max().year, 4 if cols > 1 else 14)
        percent_axis(ax)
        if n > 1:
            ax.set_title(label(folder, s, lang), color=s.colour if s.colour != "#000000" else "#000000")
        if rows == 1 and i == 0:
            ax.set_ylabel(t("workforce_share_axis", lang))
        if i + cols >= n:
            ax.set_xlabel(t("year", lang))
            ax.tick_params(axis="x", which="both", labelbottom=True)
    from matplotlib.patches import Patch

    handles = [Patch(fc=LEVEL_COLOURS[k], label=level_label(k, lang)) for k in range(N_LEVELS)]
    boundary = Line2D([], [], color="#000000", lw=1.0, label=t("hs_boundary", lang))
    if rows == 1:  # legend beside the panels, top level first as in the stack
        handles = handles[::-1]
        handles.insert(N_LEVELS - HIGH_SKILL_MIN, boundary)
        body.legend(handles=handles, loc="outside right center", title=t("level_axis", lang))
    else:
        body.supylabel(t("workforce_share_axis", lang), fontsize=8.5)
        body.legend(handles=handles + [boundary], loc="outside lower center", ncol=3, title=t("level_axis", lang))
    data = with_labels(folder, comp, lang)
    data.insert(4, "level_name", data["level"].map(lambda k: level_label(k, lang)))
    return fig, data


def fig_income(folder: Folder, lang: str):
    """Fig. 3: mean and median income over time, middle-income share, mean income by level."""
    scale = income_scale(lang)
    fans = {m: tables.fan(folder, m) for m in tables.INCOME_METRICS}
    by_level = tables.income_by_level(folder)
    threshold = float(folder.config.get("wages", {}).get("middle_income_threshold", 100000.0))
    region = region_title(folder, lang)
    fig, body = new_figure(7.4, t("fig3_title", lang, region=region), note(folder, lang))
    axd = body.subplot_mosaic([["a", "b", "c"], ["d", "d", "d"]], height_ratios=[1.15, 1])
    axes = [axd[k] for k in "abcd"]
    bands = len(folder.settings) <= MAX_OVERLAY
    handles = []
    titles = [t("fig3a", lang), t("fig3b", lang), t("fig3c", lang, value=money(threshold, lang, 0)),
              t("fig3d", lang, year=folder.target_year)]
    for ax, metric in zip(axes[:3], tables.INCOME_METRICS):
        f = fans[metric]
        k = 1.0 if metric == "middle_income_share" else scale
        for s in folder.settings:
            d = f[f["setting"] == s.id]
            line = draw_fan(ax, month_end(d["date"]), d, s.colour, scale=k, bands=bands, ls=s.linestyle)
            if metric == "income_mean":
                line.set_label(label(folder, s, lang))
                handles.append(line)
        x = month_end(f["date"])
        ax.set_xlim(x.min(), x.max())
        year_axis(ax, x.min().year, x.max().year, 4)
        ax.set_xlabel(t("year", lang))
        if metric == "middle_income_share":
            percent_axis(ax)
            ax.set_ylabel(t("share_pct_axis", lang))
            ax.set_ylim(0, 1)
        else:
            ax.axhline(threshold / scale, color="#666666", lw=0.9, ls=":")
            # the short unit (the panels' titles say annual): "per year (nominal)" was long enough that the
            # top row's label ran into the bottom row's under a 30-setting legend; b shares a's scale
            ax.set_ylabel(t("income_axis_short", lang) if metric == "income_mean" else "")
    axes[1].sharey(axes[0])
    axes[0].autoscale_view(scalex=False)  # the shared scale over both panels' lines (the median runs lower)
    handles.append(Line2D([], [], color="#666666", lw=0.9, ls=":",
                          label=t("threshold", lang, value=money(threshold, lang, 0))))
    partial, whiskers = _income_levels(axes[3], folder, by_level, scale, lang)
    if whiskers:  # the panel's whiskers are not the bands of the panels above: say what they are
        titles[3] = t("fig3d_ci", lang, year=folder.target_year, what=what_runs(folder, lang))
    if partial:
        handles.append(Line2D([], [], marker="o", mfc="white", mec="#000000", ls="", ms=4,
                              label=t("partial_level" if folder.kind == "sweep" else "partial_level_run", lang)))
    for ax, title in zip(axes, titles):
        ax.set_title("\n".join(textwrap.wrap(title, 34)) if lang == "en" else title)
    if bands and folder.kind == "sweep":
        handles += band_handles(lambda k: t(k, lang))
    _legend(body, handles)
    data = pd.concat([fans[m] for m in tables.INCOME_METRICS], ignore_index=True)
    data = pd.concat([data, level_rows(folder, by_level)], ignore_index=True)
    return fig, with_labels(folder, data, lang)


def level_rows(folder: Folder, by_level: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3's by-level rows of its CSV, as drawn: no interval where the dot is hollow (some runs had
    nobody at the level in some month; the CSV gave an interval the chart did not draw)."""
    lv = by_level.rename(columns={"year": "date"}).assign(metric="income_mean_by_level")
    lv["date"] = lv["date"].astype(str)
    runs = lv["setting"].map({s.id: s.n for s in folder.settings})
    lv.loc[lv["n_whole_year"] < runs, ["ci_low", "ci_high"]] = np.nan
    return lv


def _income_levels(ax, folder: Folder, by_level: pd.DataFrame, scale: float, lang: str) -> tuple[bool, bool]:
    """Dot per setting and level with its 95% interval; hollow where some replicates had nobody at
    that level in some month of the target year (no interval then). Returns whether any dot is hollow
    and whether any interval was drawn."""
    n = len(folder.settings)
    width = min(0.8 / n, 0.2)
    partial = whiskers = False
    for j, s in enumerate(folder.settings):
        d = by_level[(by_level["setting"] == s.id) & by_level["mean"].notna()]
        full = d["n_whole_year"] >= s.n
        partial |= bool((~full).any())
        x = d["level"].to_numpy() + (j - (n - 1) / 2) * width
        y = d["mean"].to_numpy() / scale
        lo, hi = d["ci_low"].to_numpy() / scale, d["ci_high"].to_numpy() / scale
        for xi, yi, l, h, ok in zip(x, y, lo, hi, full):
            if ok and not np.isnan(l):
                ax.plot([xi, xi], [l, h], color=s.colour, lw=1.2)
                whiskers = True
            ax.plot([xi], [yi], "o", ms=3.8, color=s.colour, mfc=s.colour if ok else "white")
    names = [level_label(k, lang) for k in range(N_LEVELS)]
    ax.set_xticks(range(N_LEVELS), [textwrap.fill(nm, 12, break_long_words=False) if lang == "en" else nm
                                    for nm in names])
    ax.set_xlim(-0.6, N_LEVELS - 0.4)
    ax.set_ylim(bottom=0)
    ax.set_ylabel(t("income_axis_short", lang))
    ax.set_xlabel(t("level_axis", lang))
    ax.grid(axis="x", visible=False)
    return partial, whiskers
