"""Reports from run and sweep folders: figures (PNG, SVG/PDF, CSV) and report.md, in English or Chinese.

`make_report(path, Options(lang="zh"))` or `skillsim-report PATH lang=zh`. Reads only the files of the
folder (never live model objects), so a report can be redrawn years later from the folder alone.
Modules: load (folders into tidy frames), tables (the numbers behind each figure), text (words, en/zh),
fonts (the Chinese font), style (palette, axes, layout checks), figures and compare (one function per
figure), markdown (report.md), pack (writing the folder atomically), cli (the command).
"""

from .pack import FIGURES, Options, make_report

__all__ = ["FIGURES", "Options", "make_report"]
