"""One forecast into its run folder: the part of `skillsim` that needs neither Hydra nor OmegaConf.

sim.cli runs a single run through here once Hydra has composed its config and it is checked. `console`
(the `skillsim` command, `python -m sim`) first looks for the run's composition in the cache
(sim.compose_cache): a plain run (overrides only) composed before, with the shipped logging and no
setting Hydra would have to act on, is run from the plain values kept there (`run_entry`), without
importing Hydra or OmegaConf (together about 0.1 s, a fifth to a third of a default run's overhead) and
without composing again. Anything else goes to sim.cli's `console`, through Hydra; the first run of a
setting whose entry is kept runs from that entry too, once composed.

What such a run does is what sim.cli does for it: the same checks of what can change between runs
(the targets file, a parameter draw; the rest of the composition was checked when it was kept and
cannot change without changing the cache key), the same folder name (`hydra.run.dir` with its time
filled in), folder, manifest and log lines, and the same one-line errors and exit codes
(tests/test_compose_cache.py compares both routes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import claims
from .config import RunConfig
from .errors import (EXIT_INTERNAL, EXIT_INTERRUPTED, BusyError, SkillsimError, caused_by_interrupt, debug_enabled,
                     environment_fault, internal_error, interrupts_kept, last_of_each, say_keys_given_twice,
                     stop_on_signal)
from .model import WorkforceModel
from .results import (prepare_target, publishing_the_result, remove_dead_partials, remove_killed_partials,
                      recorded_command, write_run)
from .streams import replicate_seed

log = logging.getLogger("skillsim")
#: Shown in messages and recorded in manifests as the program name (`python -m sim` is the same tool).
PROG = "skillsim"
JOB_NAME = "cli"  # what hydra.main names the job (sim.cli's module name), so both routes give the same config
DEFAULT_REGION = RunConfig().region.name
INTERRUPTED = "interrupted; no result folder was written"


def run_forecast(cfg: RunConfig, run_dir: Path, *, composed: dict | None = None,
                 overrides: list[str] | None = None, extra: dict | None = None, unique: bool = False,
                 machine: dict | None = None, bands_hint: str | None = None, say_few: bool = False) -> Path:
    """Run one forecast and write its folder. The plain function behind `skillsim`.

    `unique`: the folder name was chosen by default, so a folder that appears under it meanwhile (a
    run started in the same second) makes this one take the next free name (`NAME-2`, ...).
    `bands_hint`: the arguments of the skillsim-forecast command that gives this run's bands, logged
    after a run at the central values (a single run; a sweep's jobs would repeat it). `say_few`: warn of a
    workforce too small to say much (RunConfig.few_agents_note; a single run's, once its folder is free).
    """
    run_dir = Path(run_dir)
    try:
        if not unique:
            prepare_target(run_dir)
        else:
            remove_if_empty(run_dir)
    except OSError as exc:
        raise environment_fault(exc, run_dir) from None
    if say_few and cfg.few_agents_note():
        log.warning(cfg.few_agents_note())
    if say_few and (off := cfg.switched_off_note()):
        log.warning(off)
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    # said before the build: a full-scale run's build and history take seconds, which went without a word
    log.info("%s / %s: %d %s (weight %.2f), %d months from %d, seed %d", cfg.region.name, cfg.scenario,
             cfg.n_agents, "agent" if cfg.n_agents == 1 else "agents", cfg.weight, cfg.n_months, cfg.start_year,
             replicate_seed(cfg.seed, cfg.replicate))
    with interrupts_kept():  # also lever set-up and collection, which call compiled passes too
        model = WorkforceModel(cfg)
        model.run()
    path = write_run(run_dir, cfg, model.series_columns(), composed=composed, overrides=overrides, started=started,
                     extra=extra, unique=unique, machine=machine)
    row = model.row
    log.info("%s: high-skill share %.1f%%, mean income %.0f yuan a year (that month's, annualised; the "
             "year's mean is in summary.json); %.2f s; wrote %s", model.dates[-1],
             100 * row["high_skill_share"], row["income_mean"], time.perf_counter() - t0, path)
    if cfg.draw is None and bands_hint is not None:
        from .config import off_calibration

        off = off_calibration(cfg)
        at = "the central parameter set" if not off else (
            f"values other than the calibrated ones for {len(off)} calibrated "
            f"{'setting' if len(off) == 1 else 'settings'} (summary.json names them)")
        log.info("one run at %s; for bands with parameter and structural uncertainty run skillsim-forecast %s",
                 at, bands_hint)
    return path


def remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def fail(err: SkillsimError | str, code: int | None = None) -> None:
    """Print one line to stderr and exit with the error's code."""
    msg = str(err)
    print(f"skillsim: {msg}", file=sys.stderr)
    raise SystemExit(code if code is not None else getattr(err, "exit_code", 2))


def claim_run_folder(run_dir: Path, unique: bool) -> tuple[claims.Claim, Path]:
    """Claim the folder a single run writes; returns the claim and the folder claimed.

    A folder named by the user (`unique` false) that another live process holds is refused in one
    line naming that process. A default name (`unique`) held by a run started in the same second
    with the same settings is not an error: this run claims the next name, `NAME-2`, `NAME-3`, ...
    """
    try:
        held, run_dir = claims.claim_free_name(Path(run_dir), unique)
    except OSError as exc:
        raise environment_fault(exc, run_dir) from None
    if held is not None:
        return held, run_dir
    owner = claims.holder(run_dir, patience=0.5) or "another process"  # its claim's record is written just after
    raise BusyError(f"run folder {run_dir} is being written by {owner}; wait for it to finish or choose another "
                    "hydra.run.dir")


def read_from(dirs: list[str]) -> dict:
    """The manifest's `config_dirs` entry: none for a run of the package's own presets."""
    return {"config_dirs": dirs} if dirs else {}


def bands_hint(cfg: RunConfig, overrides: list[str], region: str | None, dirs: list[str]) -> str:
    """`region=PRESET` as this run chose it (`region`: the preset's file, whatever name it gives itself),
    with the search path of the user's own presets if one was given (`dirs`: --config-dir) and the run's
    setting (its scenario and lever settings: `config.forecast_overrides`), quoted for a shell."""
    import shlex

    from .config import forecast_overrides

    words = [w for path in dirs for w in ("--config-dir", path)]
    words.append(f"region={region or DEFAULT_REGION}")
    words += forecast_overrides(overrides, cfg.region.structural)
    return " ".join(shlex.quote(w) for w in words)


@contextlib.contextmanager
def errors_of_a_run(run_dir: Path):
    """A single run's mistakes and Ctrl-C as one line and their exit code, with the folder made for it
    (by Hydra's run_job or run_entry) removed if it is still empty."""
    try:
        yield
    except SkillsimError as err:
        remove_if_empty(run_dir)
        fail(err)
    except KeyboardInterrupt:
        remove_if_empty(run_dir)
        fail(INTERRUPTED, EXIT_INTERRUPTED)


def run_in_folder(cfg: RunConfig, data: dict, run_dir: Path, *, unique: bool, overrides: list[str],
                  region: str | None, dirs: list[str]) -> None:
    """A checked single run, under a claim on its folder: a second process aimed at it refuses in one line.
    `data`: the composed settings, as the folder's config.yaml records them; `overrides`: the command
    line's, as typed; `region`: the preset chosen; `dirs`: the user's config folders it read."""
    from .results import enclosing_results, refuse_inside_results

    if enclosing_results(run_dir) is not None:  # its folder is made already (by Hydra's run_job, or run_from_entry)
        remove_if_empty(run_dir)  # Hydra's empty folder would itself fail the finished folder's check
        refuse_inside_results(run_dir, "hydra.run.dir")
    held, run_dir = claim_run_folder(run_dir, unique)
    with held:
        if held.previous is not None:
            log.warning("run folder %s: took over the claim of %s, which is no longer running", run_dir,
                        held.previous)
            remove_dead_partials(run_dir)
        remove_killed_partials(run_dir.parent)  # those of killed runs under other (default) names
        with publishing_the_result():
            run_forecast(cfg, run_dir, composed=data, overrides=overrides, unique=unique,
                         bands_hint=bands_hint(cfg, overrides, region, dirs), say_few=True, extra=read_from(dirs))


def may_end_at_once() -> bool:
    """Whether ending the process skips nothing anyone waits for: the command itself is the program
    (the console script or `python -m sim`, not runpy from a notebook), no profiler, tracer, debugger
    or interactive prompt follows it, and no other thread is alive."""
    import threading

    main_module = sys.modules.get("__main__")
    spec = getattr(main_module, "__spec__", None)
    ours = (getattr(spec, "name", None) == "sim.__main__"
            or Path(getattr(main_module, "__file__", None) or "").name.startswith(PROG))
    return (ours and sys.gettrace() is None and sys.getprofile() is None and not sys.flags.interactive
            and not hasattr(sys, "ps1") and threading.active_count() == 1)


def exit_now(code) -> None:
    """End the process with `code` as SystemExit(code) would (None is 0, an int is the status, else
    it is printed and the status is 1), after the exit functions, without the interpreter's teardown;
    where that could lose something (`may_end_at_once`), the normal way."""
    import atexit

    if not may_end_at_once() or (isinstance(code, int) and not 0 <= code <= 255):
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        if sys.stderr is not None:
            print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(status)


# -- a repeated plain run, from the composition cache ----------------------------------------------

def console() -> None:
    """The `skillsim` command: a plain run composed before straight from the cache, anything else
    through Hydra (sim.cli.console). Either way the process ends as soon as the command has (exit_now)."""
    argv = sys.argv[1:]
    entry = cache_hit(argv)
    if entry is None:
        from .cli import console as through_hydra

        return through_hydra()
    try:
        run_from_entry(argv, entry)
        code = 0
    except SystemExit as exc:
        code = exc.code
    exit_now(code)


#: The layout of a cache entry (sim.cli.cache_entry); an entry of another layout is not used
ENTRY_FORM = 1


def cache_hit(argv: list[str]) -> dict | None:
    """The cache entry for `skillsim ARGV`, if ARGV is overrides only (no flag: those are Hydra's) and a
    run with them was composed and checked before (sim.cli.cache_entry)."""
    if any(a.startswith("-") for a in argv):
        return None
    from . import compose_cache

    entry = compose_cache.load(last_of_each(argv), JOB_NAME)  # as sim.cli.main stores it
    return entry if isinstance(entry, dict) and entry.get("form") == ENTRY_FORM else None


def run_from_entry(argv: list[str], entry: dict) -> None:
    """sim.cli.main's steps for a plain single run, from a cache entry: the warning for a key given twice,
    the logging, the checks of what may have changed since (checked_with_files), the folder named as
    Hydra names it (its time filled in), the run, and the one-line errors main and sim.cli._task give a
    single run (a sweep's cases, which make up most of main's, cannot arise here)."""
    signal.signal(signal.SIGTERM, stop_on_signal)
    say_keys_given_twice(argv)
    previous_argv = sys.argv
    sys.argv = [sys.argv[0]] + argv
    wants_tracebacks = os.environ.get("HYDRA_FULL_ERROR") not in (None, "", "0")
    try:
        with recorded_command([PROG, *argv]):  # the manifest's command, as typed
            run_entry(entry)  # composed from last_of_each(argv)
    except KeyboardInterrupt:
        fail(INTERRUPTED, EXIT_INTERRUPTED)
    except SkillsimError as err:
        fail(err)
    except OSError as exc:  # making the folder: disk, permissions, ...
        fail(environment_fault(exc, exc.filename or "the output folder"))
    except Exception as exc:
        if caused_by_interrupt(exc):
            fail(INTERRUPTED, EXIT_INTERRUPTED)
        if debug_enabled() or wants_tracebacks:
            raise
        fail(internal_error(exc), EXIT_INTERNAL)
    finally:
        sys.argv = previous_argv


def run_entry(entry: dict, cfg: RunConfig | None = None) -> None:
    """A plain run from its entry (sim.cli.cache_entry), as Hydra's run_job would run it (the logging, the
    folder made as Hydra names it, the task's one-line errors): a repeat from the cache (run_from_entry),
    or the first run, just composed and checked (sim.cli._run_single, `cfg` its checked settings)."""
    _configure_log(entry["hydra_logging"])  # as Hydra's composition does
    if cfg is None:
        try:
            from .config import from_mapping

            cfg = checked_with_files(from_mapping(entry["data"]), list(entry["overrides"]))
        except SkillsimError as err:
            fail(err)
    from .results import refuse_inside_results

    run_dir = Path(filled_run_dir(entry["run_dir"]))
    refuse_inside_results(run_dir, "hydra.run.dir")
    run_dir.mkdir(parents=True, exist_ok=True)  # as Hydra's run_job makes it (removed below if left empty)
    _configure_log(entry["job_logging"])
    try:
        with errors_of_a_run(run_dir):
            run_in_folder(cfg, entry["data"], Path(os.path.abspath(run_dir)), unique=not entry["chosen"],
                          overrides=list(entry["overrides"]), region=entry["region"], dirs=list(entry["dirs"]))
    except Exception:  # as Hydra's JobReturn.return_value says of a job that raised
        sys.stderr.write(f"Error executing job with overrides: {list(entry['overrides'])}" + os.linesep)
        raise
    finally:
        for handler in logging.getLogger().handlers:  # as Hydra's run_job flushes them
            handler.flush()


def checked_with_files(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """`cfg` checked against what it reads from files, which can change without changing the composition:
    the targets file (a bad one fails at start-up) and, for a run at a parameter draw (`draw`), the
    draws, which give the run its values (sim.studies.uncertainty.draw_given). Both routes end their
    checks here (sim.cli.config_from_hydra, run_from_entry)."""
    from .sources import DEFAULT_TARGETS, load_targets

    load_targets(cfg.targets_file or DEFAULT_TARGETS)
    if cfg.draw is not None:  # parameter and structural uncertainty, opted into by a sweep over `draw`
        from .studies.uncertainty import draw_given

        cfg = draw_given(cfg, overrides)
    return cfg


def filled_run_dir(parts: list[tuple[str, str]]) -> str:
    """`hydra.run.dir` from its parts (sim.cli.run_dir_parts): text, and `${now:FORMAT}` filled in with
    this moment, as Hydra's `now` resolver fills it (once per run)."""
    now = datetime.now()
    return "".join(now.strftime(value) if kind == "now" else value for kind, value in parts)


def _configure_log(config: dict) -> None:
    """Hydra's configure_log for the shipped logging configs, which the cache entry holds (sim.cli.
    plain_runnable): they name only the standard library's handler and stream."""
    import copy
    import logging.config

    logging.config.dictConfig(copy.deepcopy(config))  # dictConfig changes what it is given
