"""Figures across settings at the target year: 4 scenario comparison, 5 lever response surface."""

from __future__ import annotations

import math
import textwrap

import numpy as np
from matplotlib import patheffects
from matplotlib.lines import Line2D

from . import tables
from .figures import label, note, region_title, with_labels
from .load import Folder
from .style import ExactFormatter, band_handles, draw_fan, new_figure, percent_axis
from .text import income_scale, lever_name, paired_by, spend_scale, t


def fig_comparison(folder: Folder, lang: str):
    """Fig. 4: target-year share and income per setting with 95% intervals; cost per additional
    high-skill worker from the paired effects. Needs at least two settings."""
    if len(folder.settings) < 2:
        return None
    comp = tables.comparison(folder)
    scale = income_scale(lang)
    n = len(folder.settings)
    year = folder.target_year
    title_key = "fig4_title" if folder.keys == ["scenario"] else "fig4_title_settings"
    fig, body = new_figure(1.9 + 0.34 * n, t(title_key, lang, region=region_title(folder, lang),
                                               year=year), note(folder, lang, "ci"))
    has_cost = (comp["metric"] == "cost_per_additional_high_skill_worker").any()
    axes = body.subplots(1, 3 if has_cost else 2, sharey=True, squeeze=False).ravel()
    ypos = {s.id: n - 1 - i for i, s in enumerate(folder.settings)}
    panels = [("high_skill_share", 1.0, t("fig4a", lang, year=year), t("hs_share_axis", lang)),
              ("income_mean_target_year", scale, t("fig4b", lang, year=year), t("income_axis", lang))]
    for ax, (metric, k, title, xlabel) in zip(axes, panels):
        d = comp[comp["metric"] == metric]
        for s in folder.settings:
            r = d[d["setting"] == s.id].iloc[0]
            y = ypos[s.id]
            if not math.isnan(r["ci_low"]):
                ax.plot([r["ci_low"] / k, r["ci_high"] / k], [y, y], color=s.colour, lw=2.2, alpha=0.55,
                        solid_capstyle="butt")
            ax.plot([r["mean"] / k], [y], "o", color=s.colour, ms=5)
        ax.set_title(wrap(title, lang))
        ax.set_xlabel(wrap(xlabel, lang))
        ax.margins(x=0.15)
        if metric == "high_skill_share":
            lo, hi = d["ci_low"].fillna(d["mean"]).min(), d["ci_high"].fillna(d["mean"]).max()
            percent_axis(ax, "x", 0 if hi - lo > 0.03 else 1)
    saves = has_cost and cost_panel(axes[2], comp[comp["metric"] == "cost_per_additional_high_skill_worker"],
                                    folder.settings, ypos, scale, lang)
    axes[0].set_yticks([ypos[s.id] for s in folder.settings], [label(folder, s, lang) for s in folder.settings])
    axes[0].set_ylim(-0.6, n - 0.4)
    for s, tick in zip(folder.settings, axes[0].get_yticklabels()):
        tick.set_color(s.colour)
    if has_cost:
        text = t("note_cost", lang, pair=paired_by(folder, lang)) + (t("sep", lang) + t("note_cost_negative", lang)
                                                                     if saves else "")
        body.supxlabel(wrap(text, lang, 120 if lang == "en" else 60), fontsize=7.5, color="#555555")
    return fig, with_labels(folder, comp, lang)


def cost_panel(ax, d, settings, ypos: dict, scale: float, lang: str) -> bool:
    """Fig. 4's cost panel: a bar per setting with a cost per additional high-skill worker, the reason on
    a row without one. A negative cost (less spent than the baseline, more high-skill workers) is a
    bar left of zero: the axis spans zero and every value (it ran from 0 to the largest, so a negative
    bar was cut away, or, with only negative costs, drawn on a reversed axis as if it were large).
    Returns whether a negative cost was drawn."""
    values = d["mean"].to_numpy(dtype=float) / scale
    defined = values[~np.isnan(values)]
    lo, hi = (min(0.0, defined.min()), max(0.0, defined.max())) if defined.size else (0.0, 1.0)
    pad = 0.1 * (hi - lo) if hi > lo else 1.0
    negative = bool(lo < 0)  # lo is a numpy float
    for s in settings:
        r = d[d["setting"] == s.id]
        v = float(r["mean"].iloc[0]) if not r.empty else math.nan
        y = ypos[s.id]
        if math.isnan(v):  # say why: the baseline itself, no gain, no pairs
            why = str(r["undefined_because"].iloc[0]) if not r.empty and r["undefined_because"].iloc[0] else "no_pairs"
            right = hi > 0 or not negative  # beside zero, on the side with room
            ax.annotate(t(f"na_{why}", lang), (0, y), xytext=(3 if right else -3, 0), textcoords="offset points",
                        va="center", ha="left" if right else "right", color="#777777", fontsize=7.5)
        else:
            ax.barh(y, v / scale, color=s.colour, hatch=_HATCH.get(s.linestyle, ""), edgecolor="white", lw=0,
                    height=0.55)
    if not defined.size:  # no bars: the reasons are the panel
        ax.set_xticks([])
    if negative:
        ax.axvline(0, color="#555555", lw=0.8)
    ax.set_xlim(lo - pad if lo < 0 else 0.0, hi + pad if hi > 0 else pad)
    ax.set_title(wrap(t("fig4c", lang), lang))
    ax.set_xlabel(t("income_axis_short", lang))
    ax.grid(axis="y", visible=False)
    return negative


_HATCH = {"-": "", "--": "////", ":": "....", "-.": "xx"}  # bars: hatches where lines are dashed


def wrap(text: str, lang: str, width: int = 26) -> str:
    """Break a long panel title or axis label over lines (at spaces in English, by length in Chinese)."""
    if lang == "zh":
        if len(text) <= max(18, width):
            return text
        cut = max((i for i, c in enumerate(text[: len(text) // 2 + 4]) if c in "，的（；"), default=len(text) // 2)
        return text[:cut + (text[cut] != "（")] + "\n" + text[cut + (text[cut] != "（"):]
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False))


def numeric_keys(folder: Folder) -> list[str]:
    """Swept settings with numeric values (lever intensities and the like)."""
    return [k for k in folder.keys
            if all(isinstance(s.params[k], (int, float)) and not isinstance(s.params[k], bool)
                   for s in folder.settings)]


def axis_label(key: str, lang: str) -> str:
    lever = lever_name(key, lang)
    if lever is None:
        return key
    return t("lever_axis", lang, lever=lever[:1].upper() + lever[1:] if lang == "en" else lever)


def fig_response(folder: Folder, lang: str):
    """Fig. 5: two swept numeric settings -> heatmap of target-year share with spend contours;
    one -> share against the setting with bands, and spend. Otherwise not applicable."""
    keys = numeric_keys(folder)
    if folder.kind != "sweep" or not keys or len(keys) > 2 or len(keys) != len(folder.keys):
        return None
    surf = tables.surface(folder, keys)
    year = folder.target_year
    title = t("fig5_title", lang, region=region_title(folder, lang), year=year)
    if len(keys) == 2:
        return _heatmap(folder, surf, keys, lang, title), with_labels(folder, surf, lang)
    return _line(folder, surf, keys[0], lang, title), with_labels(folder, surf, lang)


def _heatmap(folder, surf, keys, lang, title):
    kx, ky = keys
    xs, ys = sorted(surf[kx].unique()), sorted(surf[ky].unique())
    grid = surf.pivot(index=ky, columns=kx, values="median").reindex(index=ys, columns=xs)
    spend = surf.pivot(index=ky, columns=kx, values="spend_cum_total_mean").reindex(index=ys, columns=xs)
    if len(surf) < 0.5 * grid.size:  # not a grid (an Optuna sweep's trials): cells would colour untried settings
        return _points(folder, surf, keys, lang, title)  # (a grid with a failed job keeps its heatmap, with a hole)
    contoured = len(xs) > 1 and len(ys) > 1
    fig, body = new_figure(5.4, title, note(folder, lang, "lines", key=False)
                           + (t("sep", lang) + t("fig5_cost", lang) if contoured else ""),
                           width=6.8)  # its axes name the levers: no key to short labels
    ax = body.subplots()
    edges = lambda v: np.concatenate([[v[0] - (v[1] - v[0]) / 2], (np.array(v[1:]) + v[:-1]) / 2,
                                      [v[-1] + (v[-1] - v[-2]) / 2]]) if len(v) > 1 else np.array([v[0] - .5, v[0] + .5])
    z = grid.to_numpy(dtype=float)
    mesh = ax.pcolormesh(edges(xs), edges(ys), z, cmap="cividis", shading="flat")
    share_colorbar(body, mesh, ax, lang)
    cells = []  # where the cells' labels are (data coordinates)
    for i, yv in enumerate(ys):
        for j, xv in enumerate(xs):
            if np.isnan(z[i, j]):
                continue
            cells.append((xv, yv + 0.22 * _step(ys)))
            ax.text(*cells[-1], f"{100 * z[i, j]:.1f}%", ha="center", va="center", fontsize=8.5,
                    color="black", zorder=6,
                    bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "none", "alpha": 0.85})
    if contoured:
        div = spend_scale(lang)
        halo = [patheffects.withStroke(linewidth=2.6, foreground="white")]
        ex, ey = edges(xs), edges(ys)
        ax.set_xlim(ex[0], ex[-1])
        ax.set_ylim(ey[0], ey[-1])
        cs = ax.contour(xs, ys, spend.to_numpy(dtype=float) / div, colors="#000000", linewidths=1.0,
                        linestyles="--", levels=5, zorder=4)
        cs.set(path_effects=halo)
        digits = level_digits(cs.levels)
        spots = label_spots(ax, cs, cells)
        labels = ax.clabel(cs, [lev for lev, spot in zip(cs.levels, spots) if spot is not None],
                           fmt=lambda v: f"{v:,.{digits}f}", fontsize=7.5, inline=True, inline_spacing=4,
                           manual=[spot for spot in spots if spot is not None])
        for lab in labels:
            lab.set(path_effects=halo, zorder=5)
    ax.set_xticks(xs)
    ax.set_yticks(ys)
    ax.set_xlabel(axis_label(kx, lang))
    ax.set_ylabel(axis_label(ky, lang))
    ax.grid(False)
    return fig


def share_colorbar(body, mappable, ax, lang: str) -> None:
    """Fig. 5's colour key: the high-skill share in percent, each label exactly its tick."""
    cb = body.colorbar(mappable, ax=ax, shrink=0.9)
    cb.set_label(t("hs_share_axis", lang))
    cb.formatter = ExactFormatter(100.0)
    cb.update_ticks()


def _points(folder, surf, keys, lang, title):
    """Fig. 5 for settings that are not a grid (the trials of an Optuna sweep): a point per setting run,
    coloured by its median share and labelled with it and its cumulative spend. A heatmap coloured the
    untried settings between trials, and spend contours cannot be drawn through scattered points."""
    kx, ky = keys
    div = spend_scale(lang)
    fig, body = new_figure(5.4, title, note(folder, lang, "lines", key=False) + t("sep", lang) + t("fig5_points", lang),
                           width=6.8)
    ax = body.subplots()
    dots = ax.scatter(surf[kx], surf[ky], c=surf["median"], cmap="cividis", s=46, edgecolors="#333333",
                      linewidths=0.6, zorder=5)  # above the labels: a close neighbour's label hides no point
    share_colorbar(body, dots, ax, lang)
    for x, y, share, cost in zip(surf[kx], surf[ky], surf["median"], surf["spend_cum_total_mean"]):
        ax.annotate(f"{100 * share:.1f}%, {cost / div:,.{SPEND_DIGITS}f}", (x, y), xytext=(0, 6),
                    textcoords="offset points", ha="center", va="bottom", fontsize=7.5, zorder=4,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    ax.margins(0.12)
    ax.set_xlabel(axis_label(kx, lang))
    ax.set_ylabel(axis_label(ky, lang))
    return fig


SPEND_DIGITS = 2  #: decimals of a point's cumulative spend in fig. 5 (billion yuan, 亿元)


#: half the size of a cell's label box, and of a contour's label, in axes fraction (a 6.8-inch chart)
CELL_LABEL_HALF = (0.055, 0.028)
CONTOUR_LABEL_HALF = (0.02, 0.035)


def label_spots(ax, cs, cells: list[tuple[float, float]]) -> list[tuple[float, float] | None]:
    """Where each contour level's label goes: the point of its line (away from the frame) farthest
    from every cell's label, in label sizes; matplotlib's own choice put a label on a cell's value.
    None for a level with no line."""
    to_axes = ax.transData + ax.transAxes.inverted()
    centres = to_axes.transform(np.asarray(cells, dtype=float)) if cells else np.empty((0, 2))
    reach = np.add(CELL_LABEL_HALF, CONTOUR_LABEL_HALF)
    spots = []
    for segs in cs.allsegs:
        lines = [to_axes.transform(seg) for seg in segs if len(seg) > 1]
        if not lines:
            spots.append(None)
            continue
        # points along each line, 25 between each pair of vertices
        t = np.linspace(0.0, 1.0, 25, endpoint=False)[:, None, None]
        pts = np.concatenate([(a[:-1] + t * (a[1:] - a[:-1])).reshape(-1, 2) for a in lines])
        inner = pts[(np.abs(pts - 0.5) < 0.5 - np.asarray(CONTOUR_LABEL_HALF)).all(axis=1)]
        pts = inner if len(inner) else pts
        if len(centres):
            clear = np.max(np.abs(pts[:, None, :] - centres[None, :, :]) / reach, axis=2).min(axis=1)
            best = pts[int(np.argmax(clear))]
        else:
            best = pts[len(pts) // 2]
        spots.append(tuple(ax.transData.inverted().transform(ax.transAxes.transform(best))))
    return spots


def level_digits(levels) -> int:
    """Decimals that write every contour level exactly (4.5 is "4.5", not "4"), at most 3."""
    for d in range(4):
        if all(abs(round(float(v), d) - float(v)) <= 1e-9 * max(1.0, abs(float(v))) for v in levels):
            return d
    return 3


def _step(v) -> float:
    return float(np.min(np.diff(v))) if len(v) > 1 else 1.0


def _line(folder, surf, key, lang, title):
    fig, body = new_figure(3.8, title, note(folder, lang, "fan", key=False))  # its axis names the lever
    ax, ax2 = body.subplots(1, 2, squeeze=False).ravel()
    d = surf.sort_values(key)
    draw_fan(ax, d[key], d, "#0072B2", marker="o", ms=4)
    ax.set_title(t("fig5_share", lang, year=folder.target_year))
    ax.set_ylabel(t("hs_share_axis", lang))
    percent_axis(ax, decimals=0 if d["median"].max() - d["median"].min() > 0.03 else 1)
    div = spend_scale(lang)
    ax2.plot(d[key], d["spend_cum_total_mean"] / div, "o-", color="#0072B2", ms=4, lw=1.6)
    ax2.set_title(t("fig5_spend", lang, year=folder.target_year))
    ax2.set_ylabel(t("spend_axis", lang))
    ax2.set_ylim(bottom=0)
    base = next(s for s in folder.settings if s.is_baseline)
    for a in (ax, ax2):
        a.set_xticks(sorted(d[key].unique()))
        a.set_xlabel(axis_label(key, lang))
        a.axvline(base.params[key], color="#000000", lw=0.8, ls=":")
    handles = [Line2D([], [], color="#0072B2", marker="o", ms=4, lw=1.6, label=t("median", lang)),
               *band_handles(lambda k: t(k, lang), "#0072B2"),
               Line2D([], [], color="#000000", lw=0.8, ls=":",  # not the status quo scenario, "Baseline"
                      label=t("baseline_setting", lang, label=label(folder, base, lang)))]
    body.legend(handles=handles, loc="outside lower center", ncol=4)
    return fig
