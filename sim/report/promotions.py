"""Figure 6: promotions per calendar year by channel (certification, competition, studio, appointment)."""

from __future__ import annotations

import pandas as pd

from ..metrics import CHANNELS
from . import tables
from .figures import _legend, label, note, region_title, with_labels
from .load import Folder
from .style import mid_year, new_figure, year_axis
from .text import channel_label, t


def fig_promotions(folder: Folder, lang: str):
    """Fig. 6: promotions per calendar year by channel, one panel per channel (median across replicates)."""
    pr = tables.promotions(folder)
    if pr.empty:
        return None
    region = region_title(folder, lang)
    fig, body = new_figure(6.4, t("fig6_title", lang, region=region),
                           note(folder, lang, "lines") + t("sep", lang) + t("note_full_years", lang))
    axes = body.subplots(2, 2, sharex=True, squeeze=False).ravel()
    handles = []
    years = pr["year"]
    for ax, c in zip(axes, CHANNELS):
        d = pr[pr["channel"] == c]
        big = d["median"].max() >= 20000
        div = (1e4 if lang == "zh" else 1e3) if big else 1.0
        for s in folder.settings:
            ds = d[d["setting"] == s.id]
            line = ax.plot(mid_year(ds["year"]), ds["median"] / div, color=s.colour, ls=s.linestyle, lw=1.5,
                           marker="o", ms=2.8)[0]
            if c == CHANNELS[0]:
                line.set_label(label(folder, s, lang))
                handles.append(line)
        ax.set_title(channel_label(c, lang))
        ax.set_ylabel(t("thousand_per_year", lang) if big else t("persons_per_year", lang))
        ax.set_ylim(bottom=0, top=max(1.0, float(d["median"].max()) / div * 1.12))
        ax.set_xlim(pd.Timestamp(f"{years.min()}-01-01"), pd.Timestamp(f"{years.max()}-12-31"))
        year_axis(ax, years.min(), years.max(), 7)
        ax.set_xlabel(t("year", lang))
        ax.tick_params(axis="x", which="both", labelbottom=True)
    _legend(body, handles)
    return fig, with_labels(folder, pr, lang)
