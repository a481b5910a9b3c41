"""Write a report folder: figures/ (each figure as PNG at 300 dpi, SVG and/or PDF, and its data as CSV)
and report.md, atomically (built in a hidden temporary folder beside the target, then renamed)."""

from __future__ import annotations

import math
import os
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, DataError, OutputError
from . import compare, figures, promotions
from .load import Folder, load
from .style import DPI, assign_colours, language, layout_problems, legend_problems, recording_texts

LANGS = ("en", "zh")
FORMATS = ("png", "svg", "pdf")

#: (file stem, function) in report order. Each function returns (figure, data) or None.
FIGURES = (
    ("fig1_high_skill_share", figures.fig_high_skill_share),
    ("fig2_level_composition", figures.fig_composition),
    ("fig3_income", figures.fig_income),
    ("fig4_scenario_comparison", compare.fig_comparison),
    ("fig5_lever_response", compare.fig_response),
    ("fig6_promotions", promotions.fig_promotions),
)


@dataclass
class Options:
    lang: str = "en"
    formats: tuple[str, ...] = ("png", "svg")
    out: Path | None = None
    middle_income: float | None = None

    def check(self) -> "Options":
        if self.lang not in LANGS:
            raise ConfigError("lang", self.lang, "one of " + ", ".join(LANGS))
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ConfigError("formats", ",".join(self.formats),
                              "a comma-separated list of " + ", ".join(FORMATS) + " (png is always written)")
        if "png" not in self.formats:
            self.formats = ("png", *self.formats)
        return self


@dataclass
class Written:
    folder: Folder
    out: Path
    figures: dict[str, list[Path]] = field(default_factory=dict)  # stem -> files (images and CSV)
    skipped: list[str] = field(default_factory=list)
    layout: dict[str, list[str]] = field(default_factory=dict)  # stem -> overlapping or clipped texts


def check_middle_income(folder: Folder, value: float | None) -> None:
    """The share above the middle-income threshold is measured by the model; the report can only show
    the threshold the runs used."""
    used = float(folder.config.get("wages", {}).get("middle_income_threshold", 100000.0))
    if value is not None and not (math.isfinite(value) and value > 0):  # nan passed (no difference is > x)
        raise ConfigError("middle_income", value, f"the threshold the runs used ({used:g} yuan a year)")
    if value is not None and abs(value - used) > 1e-6 * max(1.0, used):
        raise ConfigError("middle_income", value,
                          f"the threshold the runs used ({used:g} yuan); for another one re-run with "
                          f"wages.middle_income_threshold={value:g}")


def render(folder: Folder, opts: Options, dest: Path) -> Written:
    """Draw every applicable figure into dest/figures and write report.md."""
    from .markdown import write_markdown

    assign_colours(folder.settings)
    figdir = dest / "figures"
    figdir.mkdir(parents=True)
    written = Written(folder, dest)
    with language(opts.lang), warnings.catch_warnings():
        warnings.filterwarnings("error", message=r".*[Gg]lyph .* missing from")
        try:
            _draw_all(folder, opts, figdir, written)
        except UserWarning as warning:  # a missing glyph would print a box: refuse instead
            raise DataError(f"font: {warning}; reinstall the Chinese font package (pip install -e .)") from None
    write_markdown(written, opts, dest / "report.md")
    return written


def _draw_all(folder: Folder, opts: Options, figdir: Path, written: Written) -> None:
    """Each applicable figure: PNG (whose draw also checks the layout), vector copies, and its CSV."""
    for stem, func in FIGURES:
        made = func(folder, opts.lang)
        if made is None:
            written.skipped.append(stem)
            continue
        fig, data = made
        files = [figdir / f"{stem}.png"]
        with recording_texts() as boxes:  # the PNG draw also checks the layout
            fig.savefig(files[0], dpi=DPI, metadata={"Software": "skillsim-report"})
        w, h = fig.get_size_inches() * DPI
        written.layout[stem] = layout_problems(boxes, w, h) + legend_problems(fig, w, h)
        fig.set_layout_engine("none")  # keep the PNG's layout for the vector copies
        for fmt in opts.formats:
            if fmt == "png":
                continue
            path = figdir / f"{stem}.{fmt}"
            fig.savefig(path, dpi=DPI, metadata={"Creator": "skillsim-report", "Date": None})
            files.append(path)
        csv = figdir / f"{stem}.csv"
        data.to_csv(csv, index=False, encoding="utf-8")
        files.append(csv)
        written.figures[stem] = files


def default_out(path: Path, lang: str = "en") -> Path:
    """PATH/report for English, PATH/report_<lang> for another language: one never replaces the other."""
    return path / ("report" if lang == "en" else f"report_{lang}")


#: in each report folder: the folder it was made from (resolved), so that out= never replaces another's report
MADE_FROM = ".made_from"


def check_out(out: Path, source: Path) -> None:
    """Refuse an out= that is not this folder's to replace: a folder that is not a report, or the report
    of another folder (`skillsim-report fc out=sw/report` replaced the sweep's report with the forecast's,
    exit 0). A report folder inside `source` itself is its own (a moved folder's report included), as is
    one whose MADE_FROM names `source`, and one without MADE_FROM (written before it was recorded)."""
    if not out.exists():
        return
    if not out.is_dir() or (any(out.iterdir()) and not (out / "report.md").exists()):
        raise OutputError(f"output folder {out} exists and is not a skillsim report; choose another out=")
    if not (out / "report.md").exists() or out.resolve().parent == Path(source).resolve():
        return
    try:
        made = (out / MADE_FROM).read_text(encoding="utf-8").strip()
    except OSError:  # a report from before the record: replaced as then (a script refreshing its reports)
        return
    if made != str(Path(source).resolve()):
        raise OutputError(f"output folder {out} holds the report of {made}, not of {source}; choose another "
                          "out=, or remove that folder first")


def mark_source(dest: Path, source: Path) -> None:
    """Record in a report being written the folder it is made from (check_out reads it)."""
    (dest / MADE_FROM).write_text(str(Path(source).resolve()) + "\n", encoding="utf-8")


def check_intact(path: Path) -> None:
    """The folder matches its manifest, as skillsim-verify checks it: a report of a changed or truncated
    file presented edited data under the folder's provenance. Folders of no known kind are left to the
    loaders, which say what they are not."""
    from ..errors import IntegrityError
    from ..verify import NotARunFolder, verify

    if not _drawable(path):  # a folder of folders: the loader names it as such (it blamed a nested one's damage)
        return
    try:
        found = verify(path)
    except NotARunFolder:
        return
    # what the manifest lists, changed, truncated or missing; not files beside them (another report being
    # written, one killed mid-way, reports under a folder of the user's): they change no figure
    problems = [p for p in found.problems if ": unexpected " not in p]
    if problems:
        raise IntegrityError(problems, "no report was written (its files are not, or cannot be shown to be, what "
                             "skillsim wrote)")


def _drawable(path: Path) -> bool:
    """Whether `path` can be a report's folder: a run's or a study's (manifest.json), a sweep's (runs.csv,
    or its finished jobs without the tables). A folder holding single runs or studies, or none, is not:
    checking every folder under it (`skillsim-report /tmp`: 122 lines of other folders' problems) said
    nothing of what was wrong, which the loader says in one line (a user trial)."""
    from ..results import COMPLETE_MARKER, single_runs

    if any((path / name).is_file() for name in ("manifest.json", "runs.csv", COMPLETE_MARKER, "series.csv",
                                                 "summary.json", "config.yaml")):
        return True  # a run's, a study's or a sweep's own files, the manifest missing or not
    try:
        jobs = any((d / COMPLETE_MARKER).is_file() for d in path.iterdir() if d.is_dir())
        return jobs and not single_runs(path)
    except OSError:
        return False


def make_report(path: str | Path, opts: Options | None = None) -> Written:
    """Read a run or sweep folder and write its report; returns what was written."""
    opts = (opts or Options()).check()
    check_intact(Path(path))
    from ..results import kind_of

    kind = kind_of(Path(path))
    if kind in ("forecast", "plan", "sensitivity", "discovery") and opts.middle_income is not None:
        raise ConfigError("middle_income", f"{opts.middle_income:g}", f"an option of a run's or sweep's report "
                          f"(a {kind} report shows no middle-income share, so the value would check nothing)")
    if kind == "forecast":  # a skillsim-forecast folder: fan chart and variance decomposition
        from .forecast import forecast_report

        return forecast_report(Path(path), opts)
    if kind == "plan":  # a skillsim-plan folder: trajectory, frontiers, marginal costs
        from .plan import plan_report

        return plan_report(Path(path), opts)
    if kind == "backtest":
        from ..errors import DataError

        raise DataError(f"{path} is a skillsim-backtest folder, which has no report: its scores are in "
                        "backtest.csv, and skillsim-backtest docs=FILE writes them as a table into FILE")
    if kind == "calibration":
        from ..errors import DataError

        raise DataError(f"{path} is a skillsim-calibrate folder, which has no report: its fit is in fit.csv "
                        "and identification.csv, the ensemble's check in predictive.csv (docs/model.md section 10)")
    if kind in ("sensitivity", "discovery"):  # indices and noise; PRIM's trade-off and box
        from .sensitivity import discovery_report, sensitivity_report

        return (sensitivity_report if kind == "sensitivity" else discovery_report)(Path(path), opts)
    folder = load(path)
    check_middle_income(folder, opts.middle_income)
    out = Path(opts.out) if opts.out is not None else default_out(folder.path, opts.lang)
    check_out(out, folder.path)
    out.parent.mkdir(parents=True, exist_ok=True)
    clear_leftovers(out)
    tmp = out.parent / f".{out.name}.report-tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.report-old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        written = render(folder, opts, tmp)
        mark_source(tmp, folder.path)
        from ..entry import result_in_place

        result_in_place()  # an interrupt from here on would find the report written (sim.entry)
        if out.exists():
            os.rename(out, old)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out.exists():
            os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
    written.out = out
    written.figures = {k: [out / p.relative_to(tmp) for p in v] for k, v in written.figures.items()}
    return written


#: how old (seconds) a report's working folder of a process not running here must be to be removed: a
#: report takes seconds to minutes, and one written from another machine onto a shared disk has an id
#: that means nothing here
LEFTOVER_AGE_S = 3600


def clear_leftovers(out: Path) -> None:
    """Remove the working folders of earlier reports into `out` whose process is gone (killed, or its
    terminal closed): the new one to be written replaces what they were for. A killed report's previous
    report, moved aside (`report-old`) with nothing in its place, is put back first."""
    from ..verify import REPORT_WORK

    for path in out.parent.glob(f".{out.name}.report-*-*"):
        m = REPORT_WORK.match(path.name)
        if m is None or m["out"] != out.name or not path.is_dir() or _alive(int(m["pid"])):
            continue
        try:  # a process id says nothing of another machine's (a shared disk): left alone until clearly old
            if time.time() - path.stat().st_mtime < LEFTOVER_AGE_S:
                continue
        except OSError:
            continue
        if m["kind"] == "old" and not out.exists():
            os.rename(path, out)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether process `pid` is another live process (this one's folders are its own to replace)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's
        return True
    return True
