"""Look of every chart: colour-blind-safe palettes, fonts per language, the time axis, layout checks.

Scenario colours are fixed by scenario name (Okabe-Ito); other settings (lever grids) take the
remaining colours in their display order, the baseline setting always black. Level colours are fixed
per level: blues for levels below 高级工, oranges from 高级工 up, so the high-skill block reads as one.
"""

from __future__ import annotations

import textwrap
import threading
import warnings
from contextlib import contextmanager
from itertools import combinations

import matplotlib
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .fonts import LATIN_FALLBACK, register_cjk_font

DPI = 300
WIDTH = 8.0  # inches: 2400 px at 300 dpi

SCENARIO_COLOURS = {  # Okabe & Ito (2008), colour-blind safe
    "baseline": "#000000",
    "training_boost": "#0072B2",
    "competition_push": "#E69F00",
    "studio_expansion": "#009E73",
    "combined": "#CC79A7",
    "no_policy": "#56B4E9",
}
# For settings that are not named scenarios: Okabe-Ito, then Paul Tol's muted scheme.
EXTRA_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#882255", "#44AA99", "#999933",
                 "#DDCC77", "#332288", "#AA4499", "#117733")
LEVEL_COLOURS = ("#D9D9D9", "#9ECAE1", "#4292C6", "#FDD0A2", "#FDAE6B", "#F16913", "#D94801", "#7F2704")
REGION_TARGET_COLOUR = "#D55E00"  # vermillion, used for nothing else
NATIONAL_TARGET_COLOUR = "#666666"
OBSERVED_COLOUR = "#D55E00"


LINESTYLES = ("-", "--", ":", "-.")  # solid, dashed, dotted, dash-dot (named: legends tell them apart)


def assign_colours(settings) -> None:
    """Give each setting its colour (and line style) in place (see module doc).

    Past the 12 extra colours, line styles take over: the next 12 settings reuse the colours dashed,
    then dotted, then dash-dot, so up to 48 settings have distinct (colour, line style) pairs.
    """
    named = all(s.params.get("scenario", s.scenario) in SCENARIO_COLOURS for s in settings)
    if named and (len(settings) == 1 or all("scenario" in s.params for s in settings)):
        for s in settings:
            s.colour = SCENARIO_COLOURS[s.params.get("scenario", s.scenario)]
        return
    i = 0
    for s in settings:
        if s.is_baseline:
            s.colour, s.linestyle = "#000000", "-"
            continue
        s.colour = EXTRA_COLOURS[i % len(EXTRA_COLOURS)]
        s.linestyle = LINESTYLES[(i // len(EXTRA_COLOURS)) % len(LINESTYLES)]
        i += 1


def rc(lang: str) -> dict:
    """matplotlib settings for one language."""
    family = [register_cjk_font(), LATIN_FALLBACK] if lang == "zh" else [LATIN_FALLBACK]
    return {
        "font.family": family,
        "font.size": 8.5,
        "axes.titlesize": 9.5,
        "axes.titleweight": "normal",
        "axes.labelsize": 8.5,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "legend.fontsize": 8,
        # a dash-dot whose pattern fits on each side of a target's star in a legend key (LEGEND_HANDLE):
        # matplotlib's own, 10.6 points long, drew that key as a solid line
        "lines.dashdot_pattern": [4.0, 1.3, 1.0, 1.3],
        "legend.frameon": False,
        "figure.titlesize": 12,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#E5E5E5",
        "grid.linewidth": 0.6,
        "axes.axisbelow": True,
        "axes.unicode_minus": True,
        "pdf.fonttype": 42,
        "svg.fonttype": "path",
        "svg.hashsalt": "skillsim-report",
        "savefig.dpi": DPI,
    }


#: matplotlib's settings are the process's: one thread at a time draws under `language` (and the
#: explorer renders its charts holding it too, so never under another thread's settings)
SETTINGS_LOCK = threading.RLock()


@contextmanager
def language(lang: str):
    """matplotlib's settings for `lang` while the block runs, then the earlier ones again.

    The settings are global to the process, and the explorer draws each session's charts on its own
    thread: two blocks on two threads at once would draw one language's charts in the other's fonts
    (Chinese text in a font without its glyphs), and if the second ended after the first, it would put
    back the first's settings for good (rc_context restores what it saw on entering). So a block waits
    for another thread's to end."""
    with SETTINGS_LOCK, matplotlib.rc_context(rc(lang)):
        yield


HEADER_IN = 0.62  # inches above the panels for the title and the note
HEADER_MARGIN_IN = 0.3  # of the figure's width, kept free beside a header line (both sides together)
LINE_SPACING = 1.2  # matplotlib's default, between the lines of a wrapped text


_WIDTHS: dict[tuple, float] = {}  # (line, font, renderer, dpi) -> width in pixels (`_text_width`)
_MAX_WIDTHS = 20_000  # lines remembered; all are forgotten past it (a report measures a few hundred)


def _text_width(line: str, prop, renderer, key: tuple) -> float:
    """The drawn width of one line of text, remembered. Wrapping a title measures the same lines again
    and again (each narrower trial repeats most of the last one's), and the explorer draws the same
    titles at every update: a measurement took about 1 ms, and they were a fifth of an update's drawing."""
    full = (line, *key)
    width = _WIDTHS.get(full)
    if width is None:
        with warnings.catch_warnings():  # measuring only: a missing glyph is the draw's to report
            warnings.filterwarnings("ignore", message=r".*[Gg]lyph .* missing from")
            width = renderer.get_text_width_height_descent(line, prop, ismath=False)[0]
        if len(_WIDTHS) >= _MAX_WIDTHS:
            _WIDTHS.clear()
        _WIDTHS[full] = width
    return width


def fit_lines(text: str, size: float, width: float, renderer) -> list[str]:
    """`text` (at `size` points) broken into as few lines as fit in `width` inches, as even as they can
    be: at spaces in English; Chinese (no spaces) by characters. One line when it fits; a text's own
    line breaks are kept."""
    if "\n" in text:
        return [line for part in text.split("\n") for line in fit_lines(part, size, width, renderer)]
    from matplotlib.font_manager import FontProperties

    prop = FontProperties(size=size)
    room = (width - HEADER_MARGIN_IN) * renderer.points_to_pixels(72)
    key = (tuple(prop.get_family()), prop.get_size_in_points(), prop.get_weight(), prop.get_style(),
           prop.get_stretch(), type(renderer), renderer.dpi)

    def fits(lines: list[str]) -> bool:
        return all(_text_width(line, prop, renderer, key) <= room for line in lines)

    if fits([text]):
        return [text]
    best = None
    for chars in range(len(text) - 1, 0, -1):  # narrower and narrower: the fewest lines, then the evenest
        lines = textwrap.wrap(text, chars, break_on_hyphens=False)
        if best is not None and len(lines) > len(best):
            break
        if fits(lines):
            best = lines
    return best or [text]


def new_figure(height: float, title: str, note: str | None = None, width: float = WIDTH):
    """A figure with a header (title, and a smaller grey note saying what lines and bands are) and a
    body sub-figure for the panels. Returns (figure, body). A title or note too long for the width is
    wrapped, and the header (and the figure) made taller by its extra lines, so the panels keep `height`
    minus the one-line header."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # a canvas that can measure text (layout checks) without pyplot
    renderer = fig.canvas.get_renderer()
    title_lines = fit_lines(title, 12, width, renderer)
    note_lines = fit_lines(note, 8, width, renderer) if note else []
    extra = LINE_SPACING * (12 * (len(title_lines) - 1) + 8 * max(len(note_lines) - 1, 0)) / 72
    head_h = (HEADER_IN if note else 0.42) + extra
    fig.set_size_inches(width, height + extra)
    header, body = fig.subfigures(2, 1, height_ratios=[head_h, height - head_h + extra])
    kept = (head_h - extra) / head_h  # the one-line header's margins, in the taller header's units
    header.text(0.5, 1 - 0.04 * kept, "\n".join(title_lines), ha="center", va="top", fontsize=12)
    if note:
        header.text(0.5, 0.06 * kept, "\n".join(note_lines), ha="center", va="bottom", fontsize=8,
                    color="#555555")
    return fig, body


def month_end(dates) -> pd.DatetimeIndex:
    """'YYYY-MM' -> the last day of that month (the series hold the state at the end of the month)."""
    return pd.to_datetime(pd.Series(dates, dtype=str) + "-01") + pd.offsets.MonthEnd(0)


def year_axis(ax, first: int, last: int, max_labels: int = 10) -> None:
    """Calendar years on a date x axis: a tick at each new year and the year's number centred under its
    span (every 1, 2, 5 or 10 years, at most `max_labels`), so a point at the end of December sits at
    the right end of its year."""
    import datetime as dt

    import matplotlib.dates as mdates
    import matplotlib.ticker as mticker

    first, last = int(first), int(last)
    base = next(b for b in (1, 2, 5, 10, 20, 50) if (last - first) // b + 1 <= max_labels)
    years = [y for y in range(first, last + 1) if y % base == 0] or [first]
    ax.xaxis.set_major_locator(mdates.YearLocator(1))
    ax.xaxis.set_major_formatter(mticker.NullFormatter())
    ax.xaxis.set_minor_locator(mticker.FixedLocator([mdates.date2num(dt.date(y, 7, 2)) for y in years]))
    ax.xaxis.set_minor_formatter(mdates.DateFormatter("%Y"))
    ax.tick_params(axis="x", which="minor", length=0)
    ax.tick_params(axis="x", which="major", length=3)
    ax.grid(axis="x", visible=False, which="both")


def december_axis(ax, x: pd.DatetimeIndex, max_labels: int = 14) -> None:
    """A date x axis for one point each December: the axis runs from the first point to the last, with
    a tick at each point named by its year (every 1, 2, 5 or 10 years, at most `max_labels`). year_axis
    names the span of each year, which for December points left an empty year at the left (its label
    over the y axis's 0) and an unnamed one at the right (a user trial of fig. 7)."""
    import matplotlib.dates as mdates
    import matplotlib.ticker as mticker

    x = pd.DatetimeIndex(x).sort_values()
    years = [d.year for d in x]
    base = next(b for b in (1, 2, 5, 10, 20, 50) if len(range(years[0], years[-1] + 1, b)) <= max_labels)
    at = [d for d in x if (d.year - years[-1]) % base == 0]  # the last year always named
    ax.xaxis.set_major_locator(mticker.FixedLocator(mdates.date2num(at)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    ax.xaxis.set_minor_locator(mticker.NullLocator())
    if len(x) > 1:
        ax.set_xlim(x[0], x[-1])
    ax.grid(axis="x", visible=False, which="both")


def mid_year(years) -> pd.DatetimeIndex:
    """1 July of each year: where annual totals are drawn on a date axis."""
    return pd.to_datetime(pd.Series(years, dtype=int).astype(str) + "-07-02")


class ExactFormatter(matplotlib.ticker.Formatter):
    """Tick labels that are the tick values (times `scale`), with as many decimals as the ticks need.

    Every tick on an axis gets the same number of decimals, at least `decimals`: ticks every 2.5
    points read 30.0, 32.5, 35.0, never "33" for 32.5 (which would put a 33.3% target line a third
    of the way between "33" and "35").
    """

    def __init__(self, scale: float = 1.0, decimals: int = 0, max_decimals: int = 6):
        self.scale, self.decimals, self.max_decimals = scale, decimals, max_decimals
        self.ticks: list[float] = []

    def set_locs(self, locs):  # the axis's tick values, before it asks for their labels
        self.ticks = [float(v) for v in locs]

    def _places(self, values) -> int:
        for d in range(self.decimals, self.max_decimals + 1):
            if all(abs(round(v, d) - v) <= 1e-9 * max(1.0, abs(v)) for v in values):
                return d
        return self.max_decimals

    def __call__(self, x, pos=None):
        ticks = [v * self.scale for v in (self.ticks or [x])]
        d = self._places(ticks + [x * self.scale])
        v = round(x * self.scale, d)
        return f"{0.0 if v == 0 else v:,.{d}f}".replace(",", "")

    def format_ticks(self, values):
        self.set_locs(values)
        return [self(v, i) for i, v in enumerate(values)]


def percent_axis(ax, axis: str = "y", decimals: int = 0) -> None:
    """Shares (0-1) labelled as percent, each label exactly its tick's value."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(ExactFormatter(100.0, decimals))


#: The bands' opacities (draw_fan): the 90% band, and the 50% band drawn over it.
BAND90_ALPHA, BAND50_ALPHA = 0.12, 0.30
#: How opaque the 50% band looks where draw_fan draws it, over the 90% band: its legend key's. A key at
#: the 50% band's own opacity was lighter than the band it explains (grey 178 against 156, a user trial).
BAND50_SEEN_ALPHA = 1 - (1 - BAND50_ALPHA) * (1 - BAND90_ALPHA)


def band_handles(lang_text, colour: str = "#000000") -> list:
    """Legend keys explaining the 50% and 90% bands of draw_fan, each as it looks where drawn: grey where
    the bands of several colours are drawn, in the one colour where there is one (fig. 5's blue bands
    had grey keys, a user trial). `lang_text(key)`: the label of "band50" and "band90"."""
    from matplotlib.patches import Patch

    return [Patch(fc=colour, alpha=BAND50_SEEN_ALPHA, ec="none", label=lang_text("band50")),
            Patch(fc=colour, alpha=BAND90_ALPHA, ec="none", label=lang_text("band90"))]


def draw_fan(ax, x, stats: pd.DataFrame, colour: str, scale: float = 1.0, bands: bool = True, **line_kw):
    """Median line with 90% and 50% bands (bands only where the quantiles exist)."""
    if bands and stats["q05"].notna().any():
        ax.fill_between(x, stats["q05"] / scale, stats["q95"] / scale, color=colour, alpha=BAND90_ALPHA, lw=0)
        ax.fill_between(x, stats["q25"] / scale, stats["q75"] / scale, color=colour, alpha=BAND50_ALPHA, lw=0)
    return ax.plot(x, stats["median"] / scale, color=colour, lw=1.6, **line_kw)[0]


@contextmanager
def recording_texts():
    """Collect (text, window extent in pixels) of every non-empty text drawn inside the block."""
    from matplotlib.text import Text

    drawn: list[tuple[str, object]] = []
    last: dict[int, tuple[str, object]] = {}  # a save may draw twice (layout, then render): keep the last
    original = Text.draw

    def record(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            bb = self.get_window_extent(renderer)
            if bb.width > 0 and bb.height > 0:
                last[id(self)] = (self.get_text(), bb)

    Text.draw = record
    try:
        yield drawn
    finally:
        Text.draw = original
        drawn.extend(last.values())


def layout_problems(boxes, width: float, height: float, pad: float = 0.5) -> list[str]:
    """Texts that overlap another (by more than `pad` pixels) or stick out of the figure."""
    problems = []
    for (a, ba), (b, bb) in combinations(boxes, 2):
        if min(ba.x1, bb.x1) - max(ba.x0, bb.x0) > pad and min(ba.y1, bb.y1) - max(ba.y0, bb.y0) > pad:
            problems.append(f"{a!r} overlaps {b!r}")
    for a, b in boxes:
        if b.x0 < -1 or b.y0 < -1 or b.x1 > width + 1 or b.y1 > height + 1:
            problems.append(f"{a!r} is cut off at the edge")
    return problems


def _legends(fig) -> list:
    out, stack = [], [fig]
    while stack:
        f = stack.pop()
        out += list(getattr(f, "legends", []))
        stack += list(getattr(f, "subfigs", []))
        out += [ax.get_legend() for ax in getattr(f, "axes", []) if ax.get_legend() is not None]
    return list(dict.fromkeys(out))


def _key(handle) -> tuple:
    """How a legend key looks: colour, line style, marker and fill."""
    from matplotlib.colors import to_hex

    def hexed(c):
        try:
            return to_hex(c, keep_alpha=True)
        except (ValueError, TypeError):
            return str(c)

    if hasattr(handle, "get_linestyle") and hasattr(handle, "get_marker"):
        ls = handle.get_linestyle() if handle.get_linewidth() > 0 else "None"
        return ("line", hexed(handle.get_color()), str(ls), str(handle.get_marker()), hexed(handle.get_markerfacecolor()))
    if hasattr(handle, "get_facecolor"):
        fc = handle.get_facecolor()
        return ("patch", hexed(fc[0] if getattr(fc, "ndim", 1) == 2 and len(fc) else fc), str(handle.get_hatch()))
    return (type(handle).__name__, id(handle))


def hidden_pattern(leg, handle) -> tuple[float, float] | None:
    """A dashed or dash-dotted legend key too short to show its pattern: (the pattern's length, the line
    shown on each side of the key's marker, or all of it without one), in points; None if it shows. The
    national target's key once looked solid beside the chart's dash-dot line (fig. 1)."""
    if not (hasattr(handle, "get_linestyle") and hasattr(handle, "get_marker")) or handle.get_linewidth() <= 0:
        return None
    dashes = getattr(handle, "_dash_pattern", (0.0, None))[1]  # as drawn: scaled by the line width
    if not dashes:
        return None
    length = leg.handlelength * leg.prop.get_size_in_points()
    marker = handle.get_marker()
    shown = length if marker in (None, "None", "none", "", " ") else (length - handle.get_markersize()) / 2
    period = float(sum(dashes))
    return (period, shown) if shown < period else None


def legend_problems(fig, width: float, height: float) -> list[str]:
    """Legends that stick out of the figure (keys or labels cut off), whose keys look alike, or whose keys
    are too short to show their line style."""
    renderer = fig.canvas.get_renderer()
    problems = []
    for leg in _legends(fig):
        bb = leg.get_window_extent(renderer)
        if bb.x0 < -1 or bb.y0 < -1 or bb.x1 > width + 1 or bb.y1 > height + 1:
            problems.append(f"legend {leg.get_title().get_text()!r} is cut off at the edge")
        seen: dict[tuple, str] = {}
        for handle, text in zip(leg.legend_handles, leg.get_texts()):
            if handle is None:
                continue
            hidden = hidden_pattern(leg, handle)
            if hidden is not None:
                problems.append(f"legend key of {text.get_text()!r} shows {hidden[1]:.1f} points of its line, less than "
                                f"its {hidden[0]:.1f}-point pattern: it looks solid")
            k = _key(handle)
            if k in seen:
                problems.append(f"legend keys of {seen[k]!r} and {text.get_text()!r} look the same")
            else:
                seen[k] = text.get_text()
    return problems
