"""`skillsim-rerun RUN_DIR [hydra.run.dir=NEW]`: run a run folder (or a sweep's job folder) again, from
the folder alone, and show that the numbers are the same.

1. The folder is checked first, as `skillsim-verify` does: a changed, truncated or missing file stops
   the rerun (exit 6), since the rerun would reproduce something other than what was run.
2. Its `config.yaml` is the complete composed configuration (every key, with the calibrated values
   of the time), so the rerun needs neither the command line nor the config files that made it: a
   newer preset or calibration does not change what a rerun computes. A run with `draw=k` ran draw k
   of the calibration ensemble: those values are taken from its summary.json (`config`).
3. The new folder (default `results/reruns/<name of RUN_DIR>`, or `hydra.run.dir=NEW`) is written like
   any run; then its `series.csv` and `summary.json` are compared byte for byte with the original's,
   summary.json's record of the code that ran (package versions, git commit) left out: a rerun after a
   new commit or version says so in a warning, and is identical if its numbers are.

A study's folder (skillsim-forecast, -plan, -sensitivity, -discover, -backtest, -calibrate: its
manifest names its `kind` and the command that wrote it) is rerun by running that command again with
`out=NEW` (default `results/reruns/<name>`), after the same check; what the study wrote outside its
folder is dropped: a calibration's `write=true` (a rerun never replaces the package's calibration) and
a backtest's `docs=`. An `inputs_file=` is read from the text the manifest records (the folder alone
reruns the study); a relative path the command reads otherwise (`fit=`, `targets_file=`) is read from
the folder the rerun starts in, with a warning; a relative `--config-dir` is the folder the study
read (its manifest's overrides record it whole). Every file the two manifests list is then
compared by its checksum; calibration.json's `seconds` (how long the fit took) is the one value left out.
A study reads the presets and calibration files installed now, so a calibration whose checksum differs
from the one the manifest records is named in a warning, as a different version is, and so is a file of
the user's own config folder (--config-dir) changed, gone or new since the study ran.

Exit codes (sim.errors): 0 identical; 6 the folder failed its check, or the rerun differs (different
package versions are named in a warning); 2 a bad argument; 3 not a run or study folder or an unreadable
config; 4 the new folder cannot be written; 130 interrupted (nothing written); a study command's own exit
code if it fails.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from .errors import (EXIT_INTEGRITY, EXIT_INTERRUPTED, EXIT_OK, ConfigError, DataError, IntegrityError, SkillsimError,
                     stop_on_signal)
from .errors import quiet_when_output_closed

PROG = "skillsim-rerun"
COMPARED = ("series.csv", "summary.json")
DEFAULT_PARENT = Path("results") / "reruns"
USAGE = f"""usage: {PROG} RUN_DIR [hydra.run.dir=NEW | out=NEW]

Rerun a run folder, or one job folder of a sweep, from the folder alone (its config.yaml), after
checking every file against its manifest (as skillsim-verify does). Then compare the new series.csv
and summary.json with the original's, byte for byte.

A study's folder (skillsim-forecast, -plan, -sensitivity, -discover, -backtest, -calibrate) is rerun
by running the command its manifest records again, into NEW (a calibration never replaces the package's
files here: write=true is dropped); then every file is compared by its checksum.

  RUN_DIR            a folder written by skillsim (holds manifest.json and COMPLETE)
  hydra.run.dir=NEW  where to write the rerun (default results/reruns/<RUN_DIR's name>, or NAME-2, ...
  out=NEW            if that is taken); an existing non-empty NEW is refused

Exit codes: 0 identical, 6 the folder failed its check or the rerun differs, 2 bad argument,
3 not a run or study folder, 4 NEW cannot be written, 130 interrupted; a study's own exit code if it fails.
Same as the Hydra route for a run folder: skillsim --config-path=RUN_DIR --config-name=config [hydra.run.dir=NEW]
"""
log = logging.getLogger("skillsim")


def _override_value(arg: str) -> str:
    """The value of `key=value` as skillsim (Hydra's override grammar) reads it: quotes and escapes
    taken off, so `hydra.run.dir="my out"` names the same folder here as there."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        value = OverridesParser.create().parse_overrides([arg])[0].value()
    except Exception:  # noqa: BLE001 - not Hydra syntax: refused, as skillsim refuses it
        raise ConfigError("hydra.run.dir", arg.partition("=")[2], "a folder path that skillsim can read "
                          "(quote all of it: hydra.run.dir='my folder/run')") from None
    return value if isinstance(value, str) else arg.partition("=")[2]


def parse(argv: list[str]) -> tuple[Path, Path | None]:
    """RUN_DIR and the optional new folder; ConfigError for anything else."""
    run_dir, out = None, None
    given: dict[str, str] = {}  # the new folder, by the name it was given with: the last of each
    for arg in argv:
        key, eq, value = arg.partition("=")
        name = "hydra.run.dir" if key.lstrip("+") == "hydra.run.dir" else key
        if eq and name in ("hydra.run.dir", "out"):
            if name in given:  # the last was used without a word, as skillsim warns of it
                from .errors import warn_given_twice

                warn_given_twice(name, given[name].partition("=")[2], value)
            given[name] = arg
        elif eq and not Path(arg).exists():
            raise ConfigError(key, value, "no overrides: a rerun runs the folder's config as it is (only "
                              "hydra.run.dir=NEW or out=NEW); to change a setting, run the command in its "
                              "manifest.json with yours")
        elif arg.startswith("-"):
            raise ConfigError("option", arg, "RUN_DIR [hydra.run.dir=NEW] (see --help)")
        elif run_dir is None:
            run_dir = Path(arg)
        else:
            raise ConfigError("RUN_DIR", arg, f"a single run folder (already given: {run_dir})")
    if len(given) == 2:  # one of them was used without a word
        raise ConfigError("out", given["out"].partition("=")[2], "hydra.run.dir=NEW or out=NEW, not both (they "
                          f"name the same folder; given: {given['hydra.run.dir']})")
    if "hydra.run.dir" in given:
        value = _override_value(given["hydra.run.dir"])
        if not value.strip():
            raise ConfigError("hydra.run.dir", value, "a folder path")
        out = Path(value).expanduser()
    elif "out" in given:  # as the study commands take it: the value as it is
        value = given["out"].partition("=")[2]
        if not value.strip():
            raise ConfigError("out", value, "a folder path")
        out = Path(value).expanduser()
    if run_dir is None:
        raise ConfigError("RUN_DIR", None, "a run folder (see --help)")
    return run_dir, out


def check_folder(run_dir: Path) -> dict:
    """skillsim-verify's check of RUN_DIR; its manifest. Raises if it is not an intact run folder."""
    from .verify import NotARunFolder, is_run_folder, is_sweep_folder, job_folders, verify

    if is_sweep_folder(run_dir):
        from .results import kind_of, single_runs

        singles = single_runs(run_dir)
        jobs = [j for j in job_folders(run_dir) if j.name not in singles and is_run_folder(j)]
        if singles and not jobs:  # runs or studies side by side (results/runs, results/plans), not a sweep's jobs
            what = "single runs" if not any(kind_of(run_dir / name) for name in singles) else "result folders"
            raise DataError(f"{run_dir} is a folder of {what}: rerun one of them ({PROG} {run_dir / singles[0]})")
        raise DataError(f"{run_dir} is a sweep folder: rerun one of its jobs ({PROG} {run_dir}/JOB), or repeat "
                        "the sweep's command (in any job's manifest.json) into a new hydra.sweep.dir")
    study = study_kind(run_dir)
    if study is not None:
        kind, tool = study
        raise DataError(f"{run_dir} is a {kind} folder (written by {tool}), not a run folder: {PROG} reruns a "
                        f"run folder, one job folder of a sweep, or the folder of one of "
                        f"{', '.join(STUDY_COMMANDS)}")
    try:
        report = verify(run_dir)
    except NotARunFolder as err:
        raise DataError(str(err).replace("not a run or sweep folder", "not a run, sweep job or study folder")) from None
    if report.problems:
        raise IntegrityError(report.problems, "nothing was rerun")  # a rerun would not reproduce what was run
    if not (run_dir / "manifest.json").is_file():  # intact folders of results under it (results/, results/sweeps)
        found = next(run_dir.glob("*/*/manifest.json"), None) or next(run_dir.glob("*/manifest.json"), None)
        example = f" ({PROG} {found.parent})" if found is not None else ""
        raise DataError(f"{run_dir} is not a run folder but holds folders of results: rerun one run folder, one "
                        f"job folder of a sweep, or one study folder{example}")
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    files = manifest.get("files") if isinstance(manifest, dict) else None
    missing = [name for name in COMPARED if not isinstance(files, dict) or name not in files]
    if missing:  # an intact folder of some other kind: nothing to compare a rerun with
        raise DataError(f"{run_dir} is not a run folder (its manifest lists no {' or '.join(missing)}): {PROG} "
                        "reruns a run folder or one job folder of a sweep")
    return manifest


def study_kind(folder: Path) -> tuple[str, str] | None:
    """(kind, the command that wrote it) of a study folder (skillsim-forecast, -plan, -sensitivity,
    -discover: their manifest.json names its `kind`); None for anything else."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not manifest.get("kind"):
        return None
    command = manifest.get("command")
    tool = command[0] if isinstance(command, list) and command and isinstance(command[0], str) else "a study command"
    return str(manifest["kind"]), tool


#: the commands whose folders are rerun by running their recorded command again, and their entry points
STUDY_COMMANDS = {"skillsim-forecast": "sim.studies.forecast:main", "skillsim-plan": "sim.studies.plan:main",
                  "skillsim-sensitivity": "sim.studies.sensitivity:main",
                  "skillsim-discover": "sim.studies.discover:main", "skillsim-backtest": "sim.studies.backtest:main",
                  "skillsim-calibrate": "sim.studies.calibrate:main"}
#: options of the recorded command a rerun drops: where it wrote (the rerun writes NEW), and what it wrote
#: outside its folder: a calibration's package files (write=) and a backtest's table in a document (docs=)
DROPPED_OPTIONS = ("out", "write", "docs")
#: options naming a file the study reads: a relative one is read from the folder the rerun starts in
READ_PATH_OPTIONS = ("fit", "inputs_file", "targets_file")
#: values a study's file records about the running, not about what it computed: {file: top-level keys}
#: (how long a calibration's fit took), left out when two files' checksums differ
TIMINGS = {"calibration.json": ("seconds",)}
#: runs `module:function` (the first argument) as its console command would, the rest as its arguments
_STUDY_RUNNER = ("import sys; from sim.entry import run; target = sys.argv.pop(1); sys.argv[0] = sys.argv.pop(1); "
                 "sys.exit(run(target))")


def study_command(folder: Path, manifest: dict) -> tuple[str, list[str]]:
    """The entry point and arguments that repeat the study whose manifest this is (DROPPED_OPTIONS left out)."""
    command = manifest.get("command")
    if not (isinstance(command, list) and command and all(isinstance(a, str) for a in command)):
        raise DataError(f"{folder / 'manifest.json'}: records no command to rerun")
    target = STUDY_COMMANDS.get(command[0])
    if target is None:
        raise DataError(f"{folder} was written by {command[0]}: {PROG} reruns a run folder, one job folder of a "
                        f"sweep, or the folder of one of {', '.join(STUDY_COMMANDS)}")
    args = [a for a in command[1:] if a.partition("=")[0] not in DROPPED_OPTIONS]
    return target, _config_dir_absolute(args, manifest.get("overrides"))


CONFIG_DIR_FLAGS = ("--config-dir", "-cd")


def _config_dir_absolute(args: list[str], overrides) -> list[str]:
    """The arguments with a relative --config-dir replaced by the folder the study read, as its
    manifest's overrides record it (hydra.searchpath=['file:///...']): the rerun then reads the same
    configs from any folder (it failed with "--config-dir = 'my_conf' is invalid" from another one).
    Written `.` or `../conf`, it is the one folder the study read; one that matches none of several
    is left as it is (read from where the rerun starts)."""
    read = [p for o in overrides or [] if isinstance(o, str) and o.startswith("hydra.searchpath=")
            for p in re.findall(r"file://([^'\",\]]+)", o)]
    out, i = list(args), 0
    while i < len(out):
        flag, eq, value = out[i].partition("=")
        if flag in CONFIG_DIR_FLAGS and (eq or i + 1 < len(out)):
            at = i if eq else i + 1
            value = value if eq else out[at]
            if not Path(value).expanduser().is_absolute():
                rel = os.path.normpath(value)
                found = next((p for p in read if os.path.normpath(p).endswith(os.sep + rel)), None)
                if found is None and len(read) == 1:  # `.` or `../conf`: the one folder the study read
                    found = read[0]
                if found is not None:
                    out[at] = f"{flag}={found}" if eq else found
            i = at
        i += 1
    return out


def calibration_changes(manifest: dict) -> list[str]:
    """The calibration files (sim.results.calibration_checksums) whose checksum differs from the one the
    study's manifest records (a calibration's: the package's files when it ran): the rerun reads today's."""
    from .results import calibration_checksums

    then = manifest.get("package_calibration_before", manifest)
    if not isinstance(then, dict):
        return []
    now = calibration_checksums()
    return [f"{key.removesuffix('_sha256')} file {str(then[key])[:12]} -> {str(now[key])[:12]}"
            for key in ("calibration_sha256", "calibration_ensemble_sha256") if key in then and then[key] != now[key]]


def config_file_changes(manifest: dict) -> list[str]:
    """The user's config files (sim.results.config_file_checksums) changed, gone or added since the
    study ran: the rerun reads them as they are now."""
    from .results import config_file_checksums

    then = manifest.get("config_files_sha256")
    if not isinstance(then, dict):
        return []
    now = config_file_checksums(manifest.get("overrides")).get("config_files_sha256", {})
    said = [f"your config file {p} ({'changed' if p in now else 'gone'})" for p in then
            if now.get(p) != then[p] and (p in now or not Path(p).exists())]  # (an older manifest checksummed
    # files outside skillsim's config groups too: still there, they are not the rerun's to compare)
    return said + [f"your config file {p} (new)" for p in now if p not in then]


def study_target(folder: Path) -> Path:
    """Where a study's rerun goes without out=: results/reruns/<name>, or the first free NAME-2, ..."""
    return free_folder(DEFAULT_PARENT / Path(folder).resolve().name)


def free_folder(path: Path) -> Path:
    """`path`, or the first of path-2, path-3, ... that does not exist: only the name is chosen here. The
    study claims its folder itself (sim.studies.options.check_writable); a claim held here would make
    it refuse its own folder as busy, and one taken meanwhile by another process is refused there."""
    k, candidate = 1, path
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.name}-{k}")
    return candidate


def rerun_study(folder: str | Path, out: str | Path | None = None) -> tuple[Path, list[str]]:
    """Rerun a study's folder by its recorded command into `out` (default results/reruns/<name>); the new
    folder and the files that differ (compare_folders)."""
    from .results import RERUN_OF_ENV, refuse_inside_results
    from .verify import verify

    folder = Path(folder)
    report = verify(folder)
    if report.problems:
        raise IntegrityError(report.problems, "nothing was rerun")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    target, args = study_command(folder, manifest)
    for change in version_changes(manifest) + calibration_changes(manifest) + config_file_changes(manifest):
        log.warning("differs from the study's: %s; the numbers may differ", change)
    new = Path(out) if out is not None else study_target(folder)
    refuse_inside_results(new, "out")
    with tempfile.TemporaryDirectory(prefix="skillsim-rerun-") as scratch:
        args = _recorded_inputs_file(args, manifest, Path(scratch))
        for arg in args:
            key, _, value = arg.partition("=")
            if key in READ_PATH_OPTIONS and value and not Path(value).expanduser().is_absolute():
                log.warning("%s: a relative path, read from this folder (%s), not from where the study ran", arg,
                            Path.cwd())
        tool = manifest["command"][0]
        log.info("rerunning %s: %s %s", folder, tool, " ".join([*args, f"out={new}"]))
        # -P: the folder the rerun starts in is not put first on the module path (`python -c` would put it),
        # so a `sim` folder there (another checkout, an unpacked archive) is not run instead of the installed one
        rerun_of = {"folder": folder.resolve().name, "command": manifest["command"], "started": manifest.get("started")}
        code = _run_to_its_end([sys.executable, "-P", "-c", _STUDY_RUNNER, target, tool, *args, f"out={new}"],
                               {RERUN_OF_ENV: json.dumps(rerun_of, ensure_ascii=False)})
    if code != 0:
        raise StudyFailed(manifest["command"][0], code)
    if not (new / "manifest.json").is_file():
        raise DataError(f"{manifest['command'][0]} ended without writing {new}; nothing to compare")
    return new, compare_folders(folder, new)


def _recorded_inputs_file(args: list[str], manifest: dict, scratch: Path) -> list[str]:
    """The arguments with `inputs_file=` pointing at the text the study read, as its manifest records it
    (written into `scratch` under the file's own name): the folder alone reruns the study. A relative
    path was read from wherever the rerun started, failing there or reading another file of the same
    name (a user trial)."""
    recorded = manifest.get("inputs_file")
    if not (isinstance(recorded, dict) and isinstance(recorded.get("text"), str)):
        return args
    name = Path(str(recorded.get("path") or "inputs.yaml")).name or "inputs.yaml"
    copy = scratch / name
    copy.write_text(recorded["text"], encoding="utf-8")
    out = []
    for arg in args:
        if arg.partition("=")[0] == "inputs_file":
            log.info("%s: the text the study read, from its manifest", arg)
            arg = f"inputs_file={copy}"
        out.append(arg)
    return out


#: seconds an interrupted rerun waits for its study to end on its own interrupt before stopping it
INTERRUPT_GRACE_S = 5.0


def _run_to_its_end(command: list[str], extra_env: dict[str, str] | None = None) -> int:
    """Run the study's process; its exit code. Interrupted here, the study is given time to end as it
    ends on its own interrupt, leaving no half-written folder, before this one goes on with the
    interrupt: Ctrl-C reaches both processes, so the study has INTERRUPT_GRACE_S seconds to stop by itself;
    a SIGTERM reaches this one only, so the study gets one at once. Then SIGTERM, then SIGKILL only if
    it ignores that; a second Ctrl-C meanwhile moves on to the next step. A study that finished
    meanwhile (exit 0) is compared as if nothing had happened."""
    from . import errors
    from .results import COMMAND_ENV

    env = {k: v for k, v in os.environ.items() if k != COMMAND_ENV}  # the study records its own command
    proc = subprocess.Popen(command, env={**env, **_same_package(env), **(extra_env or {})})
    try:
        return proc.wait()
    except BaseException:
        # a SIGTERM reached this process only: the study is stopped the same way at once
        steps = ((None, INTERRUPT_GRACE_S), (proc.terminate, 60.0), (proc.kill, None))
        for stop, grace in steps[1:] if errors._SIGNALLED else steps:
            try:
                if stop is not None:
                    stop()
                proc.wait(timeout=grace)
                break
            except (subprocess.TimeoutExpired, KeyboardInterrupt):  # a second Ctrl-C: the next, firmer step
                continue
        if proc.returncode == 0:  # it had written its folder meanwhile: compare it, as without the interrupt
            return 0
        raise


def _same_package(env: dict[str, str]) -> dict[str, str]:
    """PYTHONPATH for the study's process so that it imports this process's `sim`: a source checkout
    run without installing (`python -m sim.rerun` in it) is found through the folder it started in,
    which `-P` leaves off the path; an installed package is found anyway (nothing is added)."""
    import site

    root = str(Path(__file__).resolve().parents[1])
    sites = {str(Path(p).resolve()) for p in [*site.getsitepackages(), site.getusersitepackages()]}
    if root in sites:
        return {}
    return {"PYTHONPATH": os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])}


class StudyFailed(SkillsimError):
    """The rerun study command ended with an error (it said why); its exit code is the rerun's."""

    def __init__(self, tool: str, code: int):
        how = f"exit code {code}" if code > 0 else f"signal {-code}"
        super().__init__(f"{tool} ended with {how}; nothing to compare")
        self.exit_code = code if 0 < code < 256 else 128 - code if code < 0 else EXIT_INTEGRITY  # as a shell says


def compare_folders(old: Path, new: Path) -> list[str]:
    """The files of two sealed folders that differ: listed by one manifest only, or with other checksums
    (and, for a file in TIMINGS, other values once those keys are left out)."""
    files = [json.loads((f / "manifest.json").read_text(encoding="utf-8")).get("files", {}) for f in (old, new)]
    differ = []
    for name in sorted(set(files[0]) | set(files[1])):
        if files[0].get(name) == files[1].get(name):
            continue
        if name in files[0] and name in files[1] and _same_but_timings(old / name, new / name):
            continue
        differ.append(name)
    return differ


def _same_but_timings(a: Path, b: Path) -> bool:
    keys = TIMINGS.get(a.name)
    if not keys:
        return False
    try:
        x, y = (json.loads(p.read_text(encoding="utf-8")) for p in (a, b))
    except (OSError, ValueError):
        return False
    if not (isinstance(x, dict) and isinstance(y, dict)):
        return False
    return {k: v for k, v in x.items() if k not in keys} == {k: v for k, v in y.items() if k not in keys}


def ran_config(run_dir: Path, cfg):
    """The configuration the run ran with.

    config.yaml is the composed configuration. A run with `draw=k` then ran joint draw k of the
    calibration ensemble and the structural ranges (sim.studies.uncertainty.draw_config, as
    sim.cli.config_from_hydra applies it), whose values summary.json's `config` records: they are
    taken from there, so a calibration ensemble made since does not change what the rerun computes.
    """
    if cfg.draw is None:
        return cfg
    from .config import from_mapping, to_dict
    from .studies.uncertainty import draw_config

    try:
        recorded = json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get("config")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if not isinstance(recorded, dict):
        log.warning("%s records no drawn values; drawing draw=%s again from the current calibration ensemble",
                    run_dir / "summary.json", cfg.draw)
        return draw_config(cfg, cfg.draw)
    drawn = from_mapping(recorded)  # ConfigError if this version no longer accepts it
    if drawn.draw != cfg.draw:
        raise DataError(f"{run_dir / 'summary.json'}: its config has draw={drawn.draw}, config.yaml draw={cfg.draw}")
    try:
        again = to_dict(draw_config(cfg, cfg.draw))
    except SkillsimError:  # no usable ensemble here: the recorded values are all the rerun needs
        again = None
    if again is not None and again != to_dict(drawn):
        log.warning("draw=%s gives other values with the current calibration ensemble; the rerun uses the "
                    "run's (summary.json)", cfg.draw)
    return drawn


def version_changes(manifest: dict) -> list[str]:
    """Packages whose version differs from the run's (their numbers may differ)."""
    from .results import package_versions

    from .results import git_commit

    then = manifest.get("versions", {})
    then = then if isinstance(then, dict) else {}
    now = package_versions(*then)  # a study records the versions of packages a run does not load, too
    changes = [f"{k} {then[k]} -> {now.get(k, 'missing')}" for k in sorted(then) if now.get(k) != then[k]]
    was, is_ = manifest.get("git_commit", "unknown"), git_commit()
    if was != "unknown" and is_ != "unknown" and was != is_:  # the same version, edited source
        changes.append(f"skillsim source {_commit(was)} -> {_commit(is_)}")
    return changes


def _commit(commit: str) -> str:
    """A commit as a warning names it: 12 characters, and whether the tree had uncommitted changes."""
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def rerun(run_dir: str | Path, out: str | Path | None = None) -> tuple[Path, list[str]]:
    """Rerun RUN_DIR into `out` (or the default folder); the new folder and the files that differ."""
    from .single_run import claim_run_folder, run_forecast
    from .config import from_mapping

    run_dir = Path(run_dir)
    manifest = check_folder(run_dir)
    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{run_dir / 'config.yaml'}: unreadable ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise DataError(f"{run_dir / 'config.yaml'}: not a configuration")
    cfg = from_mapping(data)  # ConfigError if this version no longer accepts it
    cfg = ran_config(run_dir, cfg)  # the drawn values, for a run with draw=k
    for change in version_changes(manifest):
        log.warning("differs from the run's: %s; the numbers may differ", change)
    target = Path(out) if out is not None else DEFAULT_PARENT / run_dir.resolve().name
    extra = {"rerun_of": {"folder": run_dir.resolve().name, "command": manifest.get("command"),
                          "started": manifest.get("started")}}
    for key in ("job_num", "config_dirs"):  # which job it was, and the user's config folders it read
        if key in manifest:
            extra[key] = manifest[key]
    # claimed as a single run claims its folder: a second rerun into it is refused, and a folder that cannot
    # be written is said before the run, not after it
    from .results import refuse_inside_results

    refuse_inside_results(target, "hydra.run.dir")  # a rerun into the original folder broke what it reruns
    held, target = claim_run_folder(target, unique=out is None)
    with held:
        new = run_forecast(cfg, target, composed=data, overrides=list(manifest.get("overrides", [])), extra=extra,
                           unique=out is None, machine={"rerun_of": str(run_dir.resolve())})
    differ = [name for name in COMPARED if compared_bytes(run_dir / name) != compared_bytes(new / name)]
    return new, differ


#: what summary.json records about the code that ran, not about what it computed: a rerun after a new
#: commit or package version differs there by design (a warning names the change, version_changes)
PROVENANCE = ("versions", "git_commit")


def compared_bytes(path: Path) -> bytes:
    """A compared file's bytes; summary.json's without its PROVENANCE entries (as they were written,
    key order kept), so that only the numbers and the configuration are compared."""
    raw = path.read_bytes()
    if path.name != "summary.json":
        return raw
    try:
        data = json.loads(raw)
        for key in PROVENANCE:
            data["manifest"].pop(key, None)
    except (ValueError, KeyError, TypeError, AttributeError):  # not the summary this version writes: as it is
        return raw
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE, end="")
        raise SystemExit(EXIT_OK)
    from .results import recorded_command

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(levelname)s] %(message)s", stream=sys.stderr)
    logging.getLogger("MESA").setLevel(logging.WARNING)
    previous = signal.signal(signal.SIGTERM, stop_on_signal)
    study = False
    try:
        with recorded_command([PROG, *argv]):
            run_dir, out = parse(argv)
            study = study_kind(run_dir) is not None
            if study and out is None:
                out = study_target(run_dir)  # known here: an interrupt's message says whether it was written
            new, differ = rerun_study(run_dir, out) if study else rerun(run_dir, out)
    except IntegrityError as err:
        for line in err.problems:
            print(line, file=sys.stderr)
        print(f"{PROG}: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except SkillsimError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        raise SystemExit(err.exit_code) from None
    except KeyboardInterrupt:
        if study and out is not None and (Path(out) / "COMPLETE").is_file():  # the study had finished
            print(f"{PROG}: interrupted before the comparison; the study had written {out} whole "
                  "(skillsim-verify checks it)", file=sys.stderr)
        else:
            print(f"{PROG}: interrupted; no result folder was written", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if differ:
        print(f"{PROG}: {new}: differs from {run_dir} in {', '.join(differ)}", file=sys.stderr)
        raise SystemExit(EXIT_INTEGRITY)
    if study:
        print(f"{PROG}: {new}: every file identical to {run_dir}'s", file=sys.stderr)
    else:
        print(f"{PROG}: {new}: {' and '.join(COMPARED)} identical to {run_dir}'s", file=sys.stderr)


if __name__ == "__main__":
    main()
