"""`skillsim-report PATH [lang=en|zh] [formats=png,svg] [out=DIR] [middle_income=YUAN]`.

Options are key=value pairs, like the overrides of `skillsim`. A mistake ends with one line on stderr
and the project's exit codes (sim.errors): 2 for a bad option, 3 for a folder that is not a run or
sweep folder (or is damaged), 4 when the output folder cannot be written; nothing is left behind.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from ..errors import EXIT_INTERRUPTED, EXIT_OK, ConfigError, SkillsimError, environment_fault, stop_on_signal
from .pack import FORMATS, LANGS, Options, make_report
from ..errors import quiet_when_output_closed

USAGE = f"""usage: skillsim-report PATH [lang=en|zh] [formats=png,svg] [out=DIR] [middle_income=YUAN]

Charts and tables from a folder skillsim wrote: a run, a sweep, a forecast (skillsim-forecast), a plan
(skillsim-plan), a sensitivity study (skillsim-sensitivity) or a scenario discovery (skillsim-discover).

  PATH            a run folder (series.csv, summary.json, ...), a sweep folder (runs.csv, ...) or the
                  folder of a forecast, plan, sensitivity study or discovery
  lang=en|zh      language of every label, title and table (default en)
  formats=LIST    image formats besides the 300-dpi PNG: any of {', '.join(FORMATS)} (default png,svg)
  out=DIR         output folder (default PATH/report, or PATH/report_zh for lang=zh); a previous
                  report of PATH there is replaced, another folder's is refused
  middle_income=Y check that the runs used this middle-income threshold (yuan a year)

Writes DIR/figures/ (each figure as PNG, SVG/PDF and the CSV of its data) and DIR/report.md.
"""
KEYS = ("lang", "formats", "out", "middle_income")


def parse(argv: list[str]) -> tuple[str, Options]:
    """PATH and the options from the command line; ConfigError for anything else."""
    path = None
    values: dict[str, str] = {}
    for arg in argv:
        if "=" in arg and not Path(arg).exists():
            key, value = arg.split("=", 1)
            if key not in KEYS:
                raise ConfigError(key, value, "a known option: " + ", ".join(KEYS))
            if key in values:  # lang=zh lang=en: the last, said (it went without a word); the first is not checked
                from ..errors import warn_given_twice

                warn_given_twice(key, values[key], value)
            values[key] = value
        elif arg.startswith("-"):
            raise ConfigError("option", arg, "key=value options: " + ", ".join(KEYS) + " (see --help)")
        elif path is None:
            path = arg
        else:
            raise ConfigError("PATH", arg, "a single run or sweep folder (already given: " + path + ")")
    if path is None:
        from ..errors import MissingSetting

        raise MissingSetting("PATH", None, "give the folder to report on: skillsim-report PATH [key=value ...] "
                             "(a run, sweep, forecast, plan, sensitivity or discovery folder; see --help)")
    opts = Options()
    if "lang" in values:
        opts.lang = values["lang"].strip().lower()
        if opts.lang not in LANGS:
            raise ConfigError("lang", values["lang"], "one of " + ", ".join(LANGS))
    if "formats" in values:
        opts.formats = tuple(f.strip().lower().lstrip(".") for f in values["formats"].split(",") if f.strip())
    if "out" in values:
        if not values["out"].strip():
            raise ConfigError("out", values["out"], "a folder path")
        opts.out = Path(values["out"]).expanduser()
    if "middle_income" in values:
        try:
            opts.middle_income = float(values["middle_income"])
        except ValueError:
            raise ConfigError("middle_income", values["middle_income"], "a number of yuan a year") from None
    return path, opts.check()


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE, end="")
        raise SystemExit(EXIT_OK)
    previous = signal.signal(signal.SIGTERM, stop_on_signal)
    path = opts = None
    try:
        path, opts = parse(argv)
        written = make_report(path, opts)
    except SkillsimError as err:
        for line in getattr(err, "problems", []):  # skillsim-verify's, one a line
            print(line, file=sys.stderr)
        print(f"skillsim-report: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except OSError as exc:  # disk full, permission denied, read-only, vanished: one line (sim.errors)
        out = getattr(opts, "out", None) or (Path(path) / "report" if path else exc.filename)
        err = environment_fault(exc, out)
        print(f"skillsim-report: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except KeyboardInterrupt:
        print("skillsim-report: interrupted; no report was written", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    folder = written.folder  # None for a study's own report (forecast, plan, sensitivity, discovery)
    if folder is not None and folder.unfinished:
        ok = len(folder.runs)
        print(f"skillsim-report: warning: {folder.unfinished} of the sweep's {ok + folder.unfinished} "
              f"jobs did not finish (see runs.csv); the report uses the {ok} that did", file=sys.stderr)
    for stem, problems in written.layout.items():
        for problem in problems:
            print(f"skillsim-report: warning: {stem}: {problem}", file=sys.stderr)
    n = len(written.figures)
    print(f"skillsim-report: {n} figures and report.md in {written.out}"
          + (f" (not applicable: {', '.join(written.skipped)})" if written.skipped else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
