"""The report of a study folder (a forecast, a plan): its figures, each with the CSV of exactly what it
draws, and report.md, written atomically into PATH/report (or report_<lang>), like a run's report.

Each study module gives the figures as (file stem, function of the language returning (figure, data))
and a function of the language and the figure stems returning the markdown text.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from .style import DPI, language, layout_problems, recording_texts


def write_study_report(path: Path, opts, figures: list[tuple[str, Callable]],
                       markdown: Callable[[str, list[str]], str]):
    """Draw the figures and write report.md into the report folder atomically; returns a Written."""
    from .pack import Written, check_out, clear_leftovers, default_out, mark_source

    out = Path(opts.out) if opts.out is not None else default_out(Path(path), opts.lang)
    check_out(out, Path(path))
    out.parent.mkdir(parents=True, exist_ok=True)
    clear_leftovers(out)
    tmp = out.parent / f".{out.name}.report-tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "figures").mkdir(parents=True)
    written = Written(None, out)
    try:
        with language(opts.lang):
            for stem, func in figures:
                drawn = func(opts.lang)
                if drawn is None:
                    written.skipped.append(stem)
                    continue
                fig, data = drawn
                with recording_texts() as boxes:
                    fig.savefig(tmp / "figures" / f"{stem}.png", dpi=DPI, metadata={"Software": "skillsim-report"})
                w, h = fig.get_size_inches() * DPI
                written.layout[stem] = layout_problems(boxes, w, h)
                fig.set_layout_engine("none")  # keep the PNG's layout for the vector copies
                files = [out / "figures" / f"{stem}.png"]
                for fmt in opts.formats:
                    if fmt != "png":
                        fig.savefig(tmp / "figures" / f"{stem}.{fmt}", dpi=DPI,
                                    metadata={"Creator": "skillsim-report", "Date": None})
                        files.append(out / "figures" / f"{stem}.{fmt}")
                data.to_csv(tmp / "figures" / f"{stem}.csv", index=False, encoding="utf-8")
                files.append(out / "figures" / f"{stem}.csv")
                written.figures[stem] = files
        (tmp / "report.md").write_text(markdown(opts.lang, list(written.figures)), encoding="utf-8")
        mark_source(tmp, Path(path))
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written
