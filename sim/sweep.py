"""Multirun support at the Hydra edge: per-job claims, resume and failure records, progress, aggregation.

- Each job is claimed before it runs (sim.claims: an exclusive lock file per job folder, holding the
  owner's pid, host and start time), so two processes sharing one sweep folder (a second command
  started to resume it, two cluster array tasks) run every job once between them. A job claimed by
  a live process is skipped; the claim of a dead process is taken over.
- A job whose folder already holds a finished run (COMPLETE) is skipped, so re-running a sweep into
  the same folder only runs what is missing or failed. A finished folder whose files changed since
  (`damage`: checked against its manifest) is set aside whole and the job runs again.
- A job that fails writes a FAILED record (error, overrides) into its folder and returns normally,
  so the other jobs go on and the aggregate lists the failure. A failure caused by the machine (disk
  full, permission denied, ...) is marked as such; if even FAILED cannot be written, the job is left
  missing and the log says why.
- `AggregateCallback` counts the jobs when the sweep starts, and writes the sweep tables
  (sim.aggregate) when it ends; an aggregation error is kept for the command to report in one line.
- Jobs log the sweep's progress (done out of total, elapsed time and ETA) at most every few seconds.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import time
import traceback
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .errors import SkillsimError, environment_fault, internal_error, os_reason
from .results import (COMPLETE_MARKER, FAILED_MARKER, PROGRESS_FILE, remove_dead_partials,
                      remove_unheld_partials, replace_text)

log = logging.getLogger("skillsim")
#: Set by the callback in the main process: (ok, failed, missing) of the last multirun.
LAST_COUNTS: dict | None = None
#: Set by the callback in the main process: the folder of the running multirun (for an interrupt).
SWEEP_DIR: Path | None = None
#: Set by the callback in the main process: whether the sweep folder existed before this command (a
#: launcher that fails to submit removes a folder that it did not find).
SWEEP_DIR_EXISTED: bool = True
#: Set by the callback in the main process once its progress record is written: a grid sweep's job folders
#: (an interrupt after the last of them says so; the record on disk may be an earlier sweep's).
PLANNED: list[str] | None = None
#: Set by a cluster launcher (sim.cluster.slurm) when an interrupt cancelled the sweep's queued jobs: how many.
LAST_CANCELLED: int | None = None
#: Set by the callback in the main process: the one-line error that stopped the aggregation, if any.
LAST_ERROR: SkillsimError | None = None
PROGRESS_EVERY_S = 5.0  #: a job logs the sweep's progress if this long has passed since the last log
_last_progress = [0.0]


def is_finished(job_dir: Path) -> bool:
    return (job_dir / COMPLETE_MARKER).exists()


def damage(job_dir: Path) -> list[str]:
    """What is wrong with a finished job's folder, checked against its manifest as skillsim-verify checks
    it (a file changed, truncated, missing or added since the job finished); [] for an intact folder, and
    for one that cannot be read now (permission denied, an I/O error, moved aside by another resumer):
    that is not known to be damaged, and re-running it could not mend it. A resume runs a damaged job
    again rather than keep its files as finished (`set_aside`)."""
    from .verify import CANNOT_READ, Report, verify_run

    report = Report()
    try:
        verify_run(job_dir, report)
    except OSError:
        return []
    return [p for p in report.problems if CANNOT_READ not in p]


def finished_intact(job_dir: Path) -> bool:
    """A finished job whose folder is as it wrote it (`damage`): a resume, or a SLURM resubmission, skips it."""
    return is_finished(job_dir) and not damage(job_dir)


def set_aside(job_dir: Path) -> Path:
    """Move a damaged finished job's folder to a hidden sibling `.NAME.damaged-K` (the first K free), under
    the job's claim, so that the job can run again into its own name and nothing of the old folder is
    lost. Aggregation and skillsim-verify skip hidden folders."""
    k = 1
    while (aside := job_dir.parent / f".{job_dir.name}.damaged-{k}").exists():
        k += 1
    os.rename(job_dir, aside)
    return aside


def clear_failure(job_dir: Path) -> None:
    """Before a retry (under the job's claim): drop an old FAILED record and half-written folders.

    Only the holder of the claim writes a `.NAME.partial-PID` folder for this job, so any that exists
    now was left by a process that died.
    """
    (job_dir / FAILED_MARKER).unlink(missing_ok=True)
    remove_dead_partials(job_dir)


def remove_partials(sweep_dir: Path) -> None:
    """Remove the half-written `.NAME.partial-PID` folders that a stopped sweep's workers left: a sweep
    stopped while a worker was writing a job left one behind (hidden, and removed when the job ran
    again). A folder is removed only if its job's claim names its writer on this host and no process
    holds that claim (`claims.unclaimed`: the lock itself, which the kernel drops however the writer
    ended). The workers' pids are not needed: joblib often ends them itself on an interrupt, and then
    listed none (a user trial: 5 of 9 interrupts left one, and skillsim-verify said nothing)."""
    try:
        found = sorted(sweep_dir.glob(".*.partial-*"))
    except OSError:
        return
    remove_unheld_partials(found)


def record_failure(job_dir: Path, err: BaseException, overrides: list[str], job_num: int | None) -> bool:
    """Write FAILED atomically into the job folder; False (and a log line) if even that cannot be written."""
    ours = isinstance(err, SkillsimError)  # a message written for the user (a scheduler's kill included)
    user = bool(getattr(err, "user_error", ours))
    info = {"error": str(err) if ours else f"{type(err).__name__}: {err}", "overrides": overrides,
            "job_num": job_num, "user_error": user, "environment": bool(getattr(err, "environment", False))}
    if not ours:
        info["traceback"] = traceback.format_exc()
    try:
        job_dir.mkdir(parents=True, exist_ok=True)
        replace_text(job_dir / FAILED_MARKER, json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        return True
    except OSError as exc:
        try:
            job_dir.rmdir()  # only if empty: the job is then listed as missing
        except OSError:
            pass
        log.error("job %s: its FAILED record cannot be written either (%s: %s); it is listed as missing",
                  job_dir.name, job_dir / FAILED_MARKER, os_reason(exc))
        return False


def write_progress(sweep_dir: Path, total: int, grid: bool = False, folders: list[str] | None = None,
                   command: list[str] | None = None) -> None:
    """The sweep's job count and start time, for the progress log, and whether the count is a known
    grid's; with the grid's job folder names where they are known (`planned_folders`), so that
    aggregation counts the jobs a stopped sweep never started, and the log the jobs done, among this
    sweep's own folders only (an earlier, different sweep may have left others in the same place);
    and an optimising sweep's command-line settings (`command`), which Hydra records nowhere, so that
    another study is not run into its folder (sim.cli.refuse_another_sweep). Written atomically."""
    info = {"total": total, "started": time.time(), "grid": grid}
    if folders is not None:
        info["jobs"] = folders
    if command is not None:
        info["command"] = command
    replace_text(sweep_dir / PROGRESS_FILE, json.dumps(info) + "\n")


#: an optimising sweeper's trials done, one empty file per trial (its job number), for the progress log
TRIALS_DIR = ".trials"
#: suffix of the file of a trial answered from a job folder that had already finished (no run)
KEPT = ".kept"


def trial_done(sweep_dir: Path, job_num: int, ran: bool = True) -> None:
    """Count an optimising sweeper's trial as done (ran, failed, or took the value of a job folder with
    its settings): its progress counts trials, which may share folders. `ran`: false for a trial
    answered at once from a finished folder, which the ETA leaves out of its rate (a resumed study's
    first trials take no time). Best effort: a log line."""
    try:
        (sweep_dir / TRIALS_DIR).mkdir(exist_ok=True)
        (sweep_dir / TRIALS_DIR / f"{int(job_num)}{'' if ran else KEPT}").touch()
    except (OSError, TypeError, ValueError):
        pass


def _trials_done(sweep_dir: Path) -> tuple[int, int] | None:
    """Trials done since the sweep's progress record was written (trial_done's files, not older than the
    record by the file system's own clock, which may not be this machine's on a cluster; a study run
    again numbers its trials from 0), and how many of them ran; None if the sweep counts none (not an
    optimising sweeper's)."""
    try:
        since = os.stat(sweep_dir / PROGRESS_FILE).st_mtime
        with os.scandir(sweep_dir / TRIALS_DIR) as entries:
            names = [e.name for e in entries if e.stat().st_mtime >= since]
    except OSError:
        return None
    return len(names), sum(1 for name in names if not name.endswith(KEPT))


def _folders_done(sweep_dir: Path, own: set[str] | None, started: float) -> tuple[int, int]:
    """Job folders (this sweep's own, if listed) that hold a finished or failed run, and how many of them
    ended since `started`."""
    done = fresh = 0
    with os.scandir(sweep_dir) as entries:
        for d in entries:
            if d.name.startswith(".") or not d.is_dir() or (own is not None and d.name not in own):
                continue
            for marker in (COMPLETE_MARKER, FAILED_MARKER):
                try:
                    mtime = os.stat(os.path.join(d.path, marker)).st_mtime
                except OSError:
                    continue
                done += 1
                fresh += mtime >= started
                break
    return done, fresh


def log_progress(sweep_dir: Path, force: bool = False) -> None:
    """Jobs done out of total, elapsed time and ETA, from the markers in the sweep folder.

    Counting reads every job folder, so a job logs it only if PROGRESS_EVERY_S have passed since this
    process last did (the sweep's end logs it always): a 5,000-job sweep does not spend its time here.
    """
    now = time.monotonic()
    if not force and now - _last_progress[0] < PROGRESS_EVERY_S:
        return
    _last_progress[0] = now
    try:
        info = json.loads((sweep_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
        total, started = info["total"], info["started"]
        own = set(info["jobs"]) if isinstance(info.get("jobs"), list) else None  # this sweep's folders
        done, fresh = _trials_done(sweep_dir) or (0, 0)
        if not done:  # not an optimiser's trials (or none yet): the job folders finished
            done, fresh = _folders_done(sweep_dir, own, started)
    except (OSError, ValueError, KeyError, TypeError):
        return  # progress is only a log line
    remaining = max(0, total - done) if total >= 0 else None
    if not fresh and remaining != 0:  # only skipped (already finished) jobs so far: no rate for an ETA
        return  # (a sweep that had nothing left to run still says it is complete)
    if not _first_to_say(sweep_dir, started, done):
        return
    elapsed = time.time() - started
    if remaining == 0:
        log.info("sweep progress: %d/%d jobs done, elapsed %.0f s", done, total, elapsed)
    elif remaining is None:
        log.info("sweep progress: %d jobs done, elapsed %.0f s", done, elapsed)
    else:
        log.info("sweep progress: %d/%d jobs done, elapsed %.0f s, ETA %.0f s", done, total, elapsed,
                 elapsed / fresh * remaining)


def _first_to_say(sweep_dir: Path, started: float, done: int) -> bool:
    """Whether this process is the first of the sweep's processes to log `done` jobs: two joblib
    workers that finish together would otherwise both print "2/6 jobs done". The last count logged is
    kept beside the progress file, under an exclusive lock; where locking fails (some network file
    systems), every process logs, as before."""
    try:
        fd = os.open(sweep_dir / f"{PROGRESS_FILE}.said", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            last = json.loads(os.pread(fd, 256, 0) or b"{}")
            said = last.get("started") == started and int(last.get("done", -1)) >= done
        except (ValueError, TypeError, AttributeError):
            said = False
        if not said:
            record = json.dumps({"started": started, "done": done}).encode().ljust(64)
            os.pwrite(fd, record, 0)
        return not said
    except OSError:
        return True
    finally:
        os.close(fd)  # releases the lock


def is_grid(config: DictConfig) -> bool:
    """Whether the sweeper runs a grid known in advance (Hydra's basic sweeper)."""
    return str(config.hydra.sweeper.get("_target_", ".BasicSweeper")).endswith(".BasicSweeper")


def count_jobs(config: DictConfig) -> int:
    """Number of jobs the sweeper will launch: the basic sweeper's grid (its distinct jobs: a setting
    given twice is one job folder), Optuna's `n_trials`, Nevergrad's `optim.budget`; -1 (unknown) for
    any other sweeper."""
    sweeper = config.hydra.sweeper
    if not is_grid(config):
        if sweeper.get("n_trials") is not None:
            return min(int(sweeper.n_trials), _optuna_grid_size(config))
        optim = sweeper.get("optim")
        if optim is not None and optim.get("budget") is not None:
            return int(optim.budget)
        return -1
    return len(grid_jobs(config))


def grid_sampler(config: DictConfig) -> bool:
    """Whether an optimising sweep uses Optuna's GridSampler."""
    return str((config.hydra.sweeper.get("sampler") or {}).get("_target_", "")).endswith("GridSampler")


def as_typed_overrides(config: DictConfig) -> list[str]:
    """The command line's overrides (`hydra.overrides.task`) as typed: read through OmegaConf, one holding
    an interpolation (`seed=${n_agents}`) came back resolved, so the planned job folders and a re-run's
    comparison with the sweep in its folder differed from the folders Hydra named by the text."""
    from omegaconf import OmegaConf

    node = OmegaConf.select(config, "hydra.overrides.task", default=None)
    return [str(o) for o in OmegaConf.to_container(node, resolve=False)] if node is not None else []


def sweeper_params(config: DictConfig) -> list[str]:
    """The sweeper's own `params` as override lines (the command line's come after them and win)."""
    return [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]


def optimiser_values(override, optuna: bool, grid: bool) -> tuple[list | None, tuple | None]:
    """What an optimising sweeper can give a swept key, as (values, None) for a discrete set or (None,
    (low, high)) for a range it samples within. Optuna's are read by Hydra's Optuna sweeper itself
    (its distribution, and for the grid sampler its grid), whose reading differs by sampler: range(a,b,s)
    reaches b (or the last step below it) for Optuna's samplers, stops before it on the grid and in
    shuffle(range(...)). Any other sweeper (Nevergrad) gets Hydra's own reading: range as Python's.
    Raises ValueError, with Optuna's reason, for a sweep Optuna refuses (a step that is not positive, a
    range whose low end is above its high end, a continuous range on the grid)."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    value = override.value()
    if optuna:
        import warnings

        from hydra_plugins.hydra_optuna_sweeper._impl import (OptunaSweeperImpl,
                                                                create_optuna_distribution_from_override)
        from optuna.distributions import CategoricalDistribution

        with warnings.catch_warnings():  # Optuna's note that it lowers the high end: said once, below
            warnings.simplefilter("ignore")
            dist = create_optuna_distribution_from_override(override)
            if isinstance(dist, CategoricalDistribution):
                return list(dist.choices), None
            if grid:
                return list(OptunaSweeperImpl._to_grid_sampler_choices(None, dist)), None
        if isinstance(value, RangeSweep) and dist.high < value.stop:
            _say_once(f"{override.get_key_element()}: {override.input_line.split('=', 1)[-1]} reaches "
                      f"{dist.high:g} at most in Optuna's samplers (its last step from {value.start:g} by "
                      f"{value.step:g})")
        return None, (dist.low, dist.high)
    if isinstance(value, ChoiceSweep):
        return list(value.list), None
    if isinstance(value, RangeSweep):
        n = math.ceil((value.stop - value.start) / value.step) if value.step else 0
        if n <= 0:
            return [], None
        return None, tuple(sorted((value.start, value.start + (n - 1) * value.step)))
    if isinstance(value, IntervalSweep):
        return None, (value.start, value.end)
    return None, None


def note_seeded_saved_study(master) -> None:
    """A saved Optuna study (sqlite storage) continued with `hydra.sweeper.sampler.seed`: the sampler starts
    its stream again, so it proposes the settings of the earlier command's trials first, each answered
    from its finished folder; a user trial added four trials that repeated the first four, exit 0. Said
    once, before the study starts (an RDB storage that is not a file is not opened here)."""
    from omegaconf import OmegaConf

    storage = OmegaConf.select(master, "hydra.sweeper.storage", default=None)
    seed = OmegaConf.select(master, "hydra.sweeper.sampler.seed", default=None)
    if not isinstance(storage, str) or not storage.startswith("sqlite:///") or seed is None:
        return
    if not Path(storage.removeprefix("sqlite:///")).is_file():  # no saved study yet (and none made here)
        return
    name = OmegaConf.select(master, "hydra.sweeper.study_name", default=None)
    try:
        import optuna

        trials = next((s.n_trials for s in optuna.study.get_all_study_summaries(storage=storage)
                       if s.study_name == name), 0)
    except Exception:  # noqa: BLE001 - an unreadable storage: Optuna's sweeper says so in its own words
        return
    if trials:
        _say_once(f"the saved study {name!r} in {storage} has {trials} trials, and hydra.sweeper.sampler.seed={seed} "
                  f"starts its sampler again: it proposes their settings first, each answered from its finished "
                  f"folder without a new point; to search further, change the seed or drop it")


_SAID: set[str] = set()


def _say_once(note: str) -> None:
    """A note about a sweep, once per process (the checks read each swept key several times), in
    skillsim's words; Optuna's own warning with the same content is silenced (quiet_optuna_notes)."""
    if note not in _SAID:
        _SAID.add(note)
        log.warning("note: %s", note)


def quiet_optuna_notes() -> None:
    """Silence Optuna's UserWarning that a range's high end is not on a step (a raw two-line warning
    printed by the sweeper at every study): `optimiser_values` says it once, naming the key."""
    import warnings

    warnings.filterwarnings("ignore", message=r"The distribution is specified by .* the range is not divisible",
                            category=UserWarning)


def _optuna_grid_size(config: DictConfig) -> int | float:
    """The number of points of Optuna's GridSampler, which stops the study once each has been tried
    however many trials were asked for: the product of the swept keys' value counts, as Hydra's Optuna
    sweeper builds its grid (optimiser_values); inf for any other sampler, or a sweep it cannot count."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not grid_sampler(config):
        return math.inf
    swept = {}
    for o in OverridesParser.create().parse_overrides(sweeper_params(config) + as_typed_overrides(config)):
        if o.is_sweep_override():
            swept[o.get_key_element()] = o  # the command line's wins, as in the sweeper
    size = 1
    for o in swept.values():
        try:
            values, _ = optimiser_values(o, optuna=True, grid=True)
        except Exception:  # noqa: BLE001 - a sweep the sweeper refuses: the start-up checks report it
            return math.inf
        size *= len(values)
    return size


def grid_jobs(config: DictConfig) -> set[tuple[str, ...]]:
    """The basic sweeper's distinct jobs, each as its sorted override strings."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # As BasicSweeper.sweep: the sweeper's params first, then the command line, whose value wins for a
    # key given in both (`+sweep=NAME replicate=range(0,2)` runs 2 replicates, not NAME's).
    args = sweeper_params(config) + as_typed_overrides(config)
    parsed = OverridesParser.create().parse_overrides(args)
    return {tuple(sorted(job)) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch}


#: hydra.sweep.subdir as sim/conf/config.yaml sets it: each job's folder named by its settings
JOB_SUBDIR = "${skillsim_job_dir:${hydra.job.override_dirname}}"


def planned_folders(config: DictConfig, jobs: set[tuple[str, ...]]) -> list[str] | None:
    """The folder names the grid's `jobs` get, as Hydra names them: each job's override_dirname (Hydra's
    own get_overrides_dirname, with the config's separators and excluded keys) through
    sim.cli.job_dir_name. None where the folders are named otherwise (hydra.sweep.subdir set by the
    user), so that nothing is claimed about names that are not known."""
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from .cli import job_dir_name

    if OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir") != JOB_SUBDIR:
        return None
    how = config.hydra.job.config.override_dirname
    exclude, item_sep, kv_sep = list(how.exclude_keys), str(how.item_sep), str(how.kv_sep)
    parser = OverridesParser.create()
    parsed: dict[str, Any] = {}  # each distinct override string parsed once (a grid repeats them)
    names = set()
    for job in jobs:
        for line in job:
            if line not in parsed:
                parsed[line] = parser.parse_override(line)
        names.add(job_dir_name(get_overrides_dirname([parsed[line] for line in job], exclude_keys=exclude,
                                                     item_sep=item_sep, kv_sep=kv_sep)))
    return sorted(names)


class AggregateCallback(Callback):
    """Counts a multirun's jobs at the start and writes its tables at the end.

    Hydra turns an exception in a callback into a warning and exits 0, so nothing may escape from
    here: a fault is kept in LAST_ERROR, and `skillsim` reports it in one line with its exit code.
    """

    def __init__(self, baseline: str | None = None) -> None:
        self.baseline = baseline

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global SWEEP_DIR, SWEEP_DIR_EXISTED, PLANNED
        PLANNED = None
        sweep_dir = SWEEP_DIR = Path(config.hydra.sweep.dir)
        SWEEP_DIR_EXISTED = sweep_dir.exists()
        total, folders = -1, None
        try:
            if is_grid(config):
                jobs = grid_jobs(config)
                total = len(jobs)
                folders = planned_folders(config, jobs)
            else:
                total = count_jobs(config)
        except Exception:  # counting is only for the progress log and the count of jobs never started
            pass
        try:
            grid = is_grid(config)
            command = None if grid else as_typed_overrides(config)
        except Exception:  # noqa: BLE001 - only for the progress record: nothing may escape a callback
            grid, command = False, None
        try:
            sweep_dir.mkdir(parents=True, exist_ok=True)
            write_progress(sweep_dir, total, grid=total >= 0 and grid, folders=folders, command=command)
            PLANNED = folders if total >= 0 and grid else None
        except OSError:
            pass  # Hydra writes multirun.yaml next and stops with the same fault, reported by skillsim
        log.info("sweep: %s jobs into %s", total if total >= 0 else "unknown number of", sweep_dir)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Drop the job's two config copies from Hydra's JobReturn: a sweep keeps one per job until it
        ends, which made memory grow with the number of jobs (the results are in the job folders)."""
        job_return.cfg = job_return.hydra_cfg = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global LAST_COUNTS, LAST_ERROR
        sweep_dir = Path(config.hydra.sweep.dir)
        log_progress(sweep_dir, force=True)
        try:
            from .aggregate import aggregate, report  # only once a sweep has run

            LAST_COUNTS = aggregate(sweep_dir, self.baseline, log=log.info)
            report(sweep_dir, LAST_COUNTS)
            if not is_grid(config):
                from .aggregate import note_a_better_earlier_trial

                note_a_better_earlier_trial(sweep_dir, config.hydra.sweeper.get("direction"))
        except SkillsimError as err:
            LAST_ERROR = err
        except OSError as exc:
            LAST_ERROR = environment_fault(exc, sweep_dir, "write")
        except Exception as exc:  # a bug: still one line and a non-zero exit, never a warning
            LAST_ERROR = SkillsimError(internal_error(exc, f"aggregating {sweep_dir}"))
            LAST_ERROR.exit_code = 1
            if os.environ.get("SKILLSIM_DEBUG"):
                log.exception("aggregation failed")
