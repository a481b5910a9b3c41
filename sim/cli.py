"""Command-line entry point `skillsim` (also `python -m sim`): the only place Hydra meets the model.

`skillsim` composes sim/conf/config.yaml with the overrides, checks every value, runs the forecast
and writes the run folder (Hydra's output directory) atomically. User mistakes end with one line on
stderr and a documented exit code (sim.errors), never a traceback, and leave no result folder.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import re
from contextlib import contextmanager
import signal
import sys
import time
from pathlib import Path

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (InterpolationKeyError, InterpolationResolutionError, InterpolationToMissingValueError,
                              UnsupportedInterpolationType)

from . import claims
from .config import RunConfig, from_mapping
from .errors import (EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OUTPUT, EXIT_PARTIAL, WORKER_KILLED, ConfigError,
                     MissingSetting, SkillsimError, caused_by_interrupt, debug_enabled, environment_fault, os_reason,
                     end_with_parent, given_once, internal_error, stop_on_signal, quiet_when_output_closed,
                     worker_killed)
from .results import COMMAND_ENV, COMPLETE_MARKER, FAILED_MARKER
from .single_run import (INTERRUPTED, JOB_NAME, PROG, checked_with_files, errors_of_a_run, exit_now, fail, read_from,
                         run_entry, run_forecast, run_in_folder)
from .sweep import (as_typed_overrides, clear_failure, damage, finished_intact, is_finished, log_progress, record_failure,
                    set_aside, sweeper_params)
from . import sweep
from .sources import DEFAULT_TARGETS, load_targets

#: The Hydra config groups, experiments and sweeps ship inside the package (sim/conf/).
CONFIG_DIR = Path(__file__).resolve().parent / "conf"
log = logging.getLogger("skillsim")
EDGE_KEYS = ("hydra", "objective")  # keys of the composed config that are not model parameters
#: Keys already in a default run folder's name, or that do not change what runs.
_NAMED_KEYS = ("region", "scenario", "experiments", "sweep")


def run_tag(task_overrides, root) -> str:
    """What ran, for the default run folder name: the non-default overrides and a short config hash.

    `levers.training.intensity=2` and `levers.studio.enabled=false` give different names; the same
    configuration always gives the same 6-hex hash (of the composed model config, not of the hydra node).
    """
    import hashlib
    import json

    data = {k: OmegaConf.to_container(root[k], resolve=True) if OmegaConf.is_config(root[k]) else root[k]
            for k in root if k not in EDGE_KEYS}
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:6]
    parts = []
    for o in task_overrides or []:
        key = o.split("=", 1)[0].lstrip("+~")
        if key.split(".")[0].split("/")[0] in _NAMED_KEYS:
            continue
        key = key.removeprefix("levers.")
        value = o.split("=", 1)[1] if "=" in o else ""
        parts.append(re.sub(r"[^A-Za-z0-9._=-]+", "-", f"{key}={value}").strip("-"))
    label = ",".join(parts)
    if len(label) > 60:
        label = label[:57].rstrip(",.-=") + "..."
    return f"{label}_{digest}" if label else digest


if not OmegaConf.has_resolver("skillsim_tag"):
    OmegaConf.register_new_resolver(
        "skillsim_tag", lambda *, _root_: run_tag(_root_.hydra.overrides.task, _root_), use_cache=False)


def _document(name: str) -> str:
    """`${skillsim_doc:NAME}`: `skillsim --help` names the documents where this installation has them."""
    from .documents import where

    return where(name)


if not OmegaConf.has_resolver("skillsim_doc"):
    OmegaConf.register_new_resolver("skillsim_doc", _document)

JOB_DIR_BYTES = 200  # file names stop at 255 bytes; the temporary ".NAME.partial-PID" needs the rest


DEFAULTS_JOB = "defaults"  #: the folder of a sweep's one job at the default settings (no "=": no setting's name)


def job_dir_name(override_dirname: str) -> str:
    """A sweep job's folder name: its settings (Hydra's override_dirname), or, when they are longer than
    a file name may be, their first part and a hash of the whole (the same settings, the same name,
    so a re-run still finds the job)."""
    import hashlib

    if not override_dirname:  # `skillsim -m` with nothing that names a job: its folder was the sweep's own,
        return DEFAULTS_JOB   # "already exists and is not empty"
    raw = override_dirname.encode()
    if len(raw) <= JOB_DIR_BYTES:
        return override_dirname
    head = raw[:JOB_DIR_BYTES - 20].decode("utf-8", "ignore").rstrip(",")
    return f"{head}...{hashlib.sha256(raw).hexdigest()[:12]}"


if not OmegaConf.has_resolver("skillsim_job_dir"):
    OmegaConf.register_new_resolver("skillsim_job_dir", lambda name: job_dir_name(str(name)))


def chosen_run_dir(hc) -> bool:
    """True if the user gave hydra.run.dir (on the command line): then it is used as it is, or refused."""
    return any(o.lstrip("+").startswith("hydra.run.dir=") for o in hc.overrides.hydra)


#: Mappings that a region preset gives whole: Hydra merges a preset's mapping into the schema's
#: default, so the schema holds them empty (the Python defaults keep Chongqing's).
PRESET_MAPPINGS = ("region.history.high_skill_share", "region.history.level_share",
                   "region.history.skilled_workers", "region.structural")


#: The region's own values: a region preset gives every one of them. The schema holds them unset, so
#: a preset that leaves one out (an empty or partial file) is refused in one line naming the key,
#: instead of running with Chongqing's value (the Python defaults) under another region's name. The
#: other region keys (age spread, female share, the spin-up's pace) are generic assumptions that
#: every preset shares unless it sets them.
PRESET_REQUIRED = tuple(f"region.{k}" for k in (
    "name", "label_en", "label_zh", "observed", "population", "uncertified_share", "skilled_mix", "mean_age",
    "n_firms", "base_wage", "training_budget_per_worker_year", "competition_participation", "studios",
    "studio_growth_per_year", "growth_per_year", "high_skill_target", "high_skill_target_year",
    "history.origin", "history.high_skill_share", "structural"))


def check_preset(dcfg: DictConfig, preset: str | None = None) -> None:
    """One line, exit 2, for a region preset that does not give all of the region's own values, or a
    copy of a shipped preset that still gives that preset's name or display names (its results would
    be labelled as the shipped region's). `preset`: the region file chosen (from the composed hydra
    node if None; unknown, only the first check is made)."""
    refuse_shadowed_presets(dcfg)
    if preset is None and "hydra" in dcfg:
        preset = OmegaConf.select(dcfg, "hydra.runtime.choices.region", default=None)
    where = f"region/{preset}.yaml" if preset else "the region preset"
    missing = [k for k in PRESET_REQUIRED if _is_missing(dcfg, k)]
    if missing:
        raise MissingSetting(missing[0], "???", f"{where} must give it: a region preset gives every one of the "
                             "region's own values (see sim/conf/region/chongqing.yaml, each with its source)")
    if not preset or preset in shipped_preset_files():  # a shipped preset: its names are its own
        return
    name = OmegaConf.select(dcfg, "region.name", default=None)
    file_name = preset.rsplit("/", 1)[-1]  # region=cities/my_town reads cities/my_town.yaml
    if name != file_name and not any(name == names.get("name") for names in shipped_presets().values()):
        raise ConfigError("region.name", name, f"{file_name!r}, the name of its file: region= chooses a preset by "
                          "its file, and results, reports and the commands they suggest name it by region.name "
                          "(label_en and label_zh are the names shown)")
    shipped = shipped_presets()
    for key, what in (("name", f"name (for example {preset!r})"), ("label_en", "English display name"),
                      ("label_zh", "Chinese display name")):
        value = OmegaConf.select(dcfg, f"region.{key}", default=None)
        for other, names in shipped.items():
            if value == names.get(key):
                raise ConfigError(f"region.{key}", value, f"{where}'s own {what}: it is a copy of the {other} "
                                  f"preset that still names itself {value}, so its results would be labelled "
                                  f"as {other}'s")


def refuse_shadowed_presets(dcfg: DictConfig) -> None:
    """One line, exit 2, for a file in the user's config folder (--config-dir, hydra.searchpath, file://
    or pkg://) that has the name of a shipped config the run reads (`region/chongqing.yaml`, a
    `hydra/launcher/slurm.yaml`, the primary `config.yaml`) and other contents: Hydra reads the
    package's folder first, so the run used the shipped values while its manifest named the user's
    folder. A user updating a shipped preset with newer data got the old numbers without a word. A copy
    with the same bytes (sim/conf copied as a template) changes nothing and passes."""
    if "hydra" not in dcfg:
        return
    choices = OmegaConf.select(dcfg, "hydra.runtime.choices", default=None) or {}
    read = [(str(group).split("@", 1)[0], option) for group, option in choices.items() if isinstance(option, str)]
    primary = OmegaConf.select(dcfg, "hydra.job.config_name", default=None) or "config"
    read.append(("", str(primary)))
    for entry in OmegaConf.select(dcfg, "hydra.searchpath", default=None) or ():
        folder = _searchpath_folder(str(entry))
        if folder is None:
            continue
        for group, option in read:
            rel = f"{group}/{option}.yaml" if group else f"{option}.yaml"
            shipped, theirs = CONFIG_DIR / rel, folder / rel
            if not (shipped.is_file() and theirs.is_file()) or theirs.read_bytes() == shipped.read_bytes():
                continue
            if not group:
                raise ConfigError("--config-dir", str(folder), f"a folder without {rel} of its own: skillsim reads "
                                  f"its own {rel} instead of {theirs}; give its settings on the command line or in "
                                  "a preset (region/..., scenario/...), or choose a file of another name with "
                                  "--config-name")
            raise ConfigError(group, option, f"a {group} of your own under a name of its own: {theirs} has "
                              f"the name of the {group} that ships with skillsim, which Hydra reads instead of "
                              f"it; rename the file{' (and its name: key)' if group == 'region' else ''}, for "
                              f"example to {option}_mine.yaml, and choose it with {group}={option}_mine")


def _searchpath_folder(entry: str):
    """The folder (a Path, or an importlib.resources Traversable for pkg://) of a search path entry; an
    entry without a scheme is a file path, as Hydra reads it."""
    if entry.startswith("file://"):
        return Path(entry[len("file://"):]).expanduser()
    if "://" not in entry:
        return Path(entry).expanduser()
    if entry.startswith("pkg://"):
        from importlib import resources

        try:
            return resources.files(entry[len("pkg://"):].replace("/", "."))
        except (ModuleNotFoundError, TypeError, ValueError):
            return None
    return None


@functools.lru_cache(maxsize=1)
def shipped_preset_files() -> frozenset[str]:
    """The region presets that ship with skillsim, by file name (without reading them: parsing every
    preset's YAML to learn their names took 7.6 ms of every run's start)."""
    return frozenset(path.stem for path in (CONFIG_DIR / "region").glob("*.yaml"))


@functools.lru_cache(maxsize=1)
def shipped_presets() -> dict[str, dict]:
    """The name and display names of each region preset that ships with skillsim, by file name."""
    out = {}
    for path in sorted((CONFIG_DIR / "region").glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        out[path.stem] = {k: data.get(k) for k in ("name", "label_en", "label_zh")}
    return out


def _is_missing(dcfg: DictConfig, dotted: str) -> bool:
    parent, _, key = dotted.rpartition(".")
    node = OmegaConf.select(dcfg, parent, default=None)
    try:
        return OmegaConf.is_config(node) and OmegaConf.is_missing(node, key)  # `in` is False for a missing value
    except Exception:  # noqa: BLE001 - no such key: the schema's own checks name it
        return False


#: the schema's entry in Hydra's store as this process last stored it (register_schema)
_STORED_SCHEMA: list = [None]


def register_schema() -> None:
    """Make RunConfig the schema of the composed config: every key, its type and default.

    Built and stored once a process while the store keeps that entry: building it
    (`OmegaConf.structured` of the whole schema) and storing it (a copy) took 50-70 ms, and a process
    that composes many times (a tool built on `compose_config`, the tests) paid it at every
    composition. The store hands out copies of its entries (`ConfigStore.load`), so the entry is the
    same for every composition."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    if _STORED_SCHEMA[0] is None or store.repo.get("run_schema.yaml") is not _STORED_SCHEMA[0]:
        from omegaconf import MISSING, open_dict

        from .objective import ObjectiveParams

        node = OmegaConf.structured(RunConfig)
        for key in PRESET_MAPPINGS:
            OmegaConf.update(node, key, {}, merge=False)
        for key in PRESET_REQUIRED:
            OmegaConf.update(node, key, MISSING, merge=False)
        with open_dict(node):  # what a sweep job returns to its sweeper (sim.objective): not a model setting
            node.objective = OmegaConf.structured(ObjectiveParams)
        store.store(name="run_schema", node=node)
        _STORED_SCHEMA[0] = store.repo["run_schema.yaml"]
    share_the_config_store(ConfigStore)
    from .cluster import register_launchers

    register_launchers()  # hydra/launcher=slurm (sim.cluster)


def _the_store_itself(store, memo):
    return store


def share_the_config_store(store_class) -> None:
    """A deep copy of Hydra's ConfigStore is the store itself. Hydra copies its config repository
    (`CachingConfigRepository`) for every composition, and with it every config registered in the
    process-wide store, though a composition never changes the store (it replaces the repository's
    sources and `ConfigStore.load` hands out copies of the configs it reads): 5-7 ms a composition, and
    `skillsim --help`, which composes once for each of 76 config groups, took 0.9 s instead of 0.35 s. The
    store of a copied repository is the process's store, as every other source finds it."""
    if store_class.__dict__.get("__deepcopy__") is None:
        store_class.__deepcopy__ = _the_store_itself


def config_dirs(hydra_node: DictConfig | None = None) -> list[str]:
    """The user's own config folders this job read (--config-dir and hydra.searchpath), absolute, as the
    study commands take them; recorded in a run's manifest, so that a report of its folder can say
    which command would read them again. `hydra_node`: the composed config's (default: the running job's)."""
    hydra_node = job_hydra() if hydra_node is None else hydra_node
    return [os.path.abspath(source.path) for source in hydra_node.runtime.config_sources
            if "command-line" in str(source.provider) and source.schema == "file"]  # file://my_conf: from here


def check_optimised_ranges(master: DictConfig, data: dict, swept: list) -> None:
    """An optimising sweeper's swept keys exist, its sweeps are ones it takes, and their ends and choices
    are allowed values: checked before any trial, as a grid's values are (the trials ran, then each
    failed on a value it happened to draw; a sweep Optuna refused ended as "a bug in skillsim")."""
    missing = object()
    groups = set(OmegaConf.select(master, "hydra.runtime.choices", default=None) or ())
    for o in swept:
        key = o.get_key_element()
        if key.lstrip("+~") in groups:  # a config group (region=choice(...)): Hydra composes each choice
            continue
        if OmegaConf.select(master, key, default=missing) is missing:
            raise ConfigError(key, o.input_line.split("=", 1)[-1], f"a key of the config ({unknown_key_hint(key)})")
        values, bounds = swept_values(master, o)
        configured = OmegaConf.select(master, key, default=None)
        if (bounds is not None and isinstance(configured, int) and not isinstance(configured, bool)
                and any(isinstance(b, float) for b in bounds)):  # the trials' values would not be whole numbers
            raise ConfigError(key, o.input_line.split("=", 1)[-1], "whole numbers for an integer setting: "
                              "int(interval(LO,HI)) or range(LO,HI)")
        for end in values if values is not None else bounds or ():
            if isinstance(end, str) and end.startswith(("{", "[")):  # a mapping or list, as the sweeper encodes
                continue  # it for Optuna: its switches are checked as typed (refuse_numbers_for_switches), the rest by the job
            if isinstance(end, (int, float, str, bool)):
                from_mapping(_with_value(data, key, end))


def check_sampler_settings(master: DictConfig) -> None:
    """Optuna's sampler takes the settings its class does: `+hydra.sweeper.sampler.seed=1` for the grid
    sampler, which has no seed, failed in the sweeper as "a bug in skillsim"."""
    import inspect

    node = OmegaConf.select(master, "hydra.sweeper.sampler", default=None)
    if not isinstance(node, DictConfig) or not node.get("_target_"):
        return
    from hydra.utils import get_class

    try:
        params = inspect.signature(get_class(str(node._target_))).parameters
    except Exception:  # noqa: BLE001 - an unknown sampler: the sweeper reports it in its own words
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    seed = node.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):  # numpy's rule
        raise ConfigError("hydra.sweeper.sampler.seed", seed, "an integer >= 0, or null")
    for key in node:
        if not str(key).startswith("_") and key not in params:
            names = ", ".join(p for p in params if p != "search_space")  # the grid's, filled by the sweeper
            allowed = f"a setting of {node._target_} ({names})" if names else f"no setting: {node._target_} takes none"
            group = str((OmegaConf.select(master, "hydra.runtime.choices", default=None) or {}).get(
                "hydra/sweeper/sampler") or "")
            if node.get(key) is None or (group and group.lower() not in str(node._target_).lower().replace("_", "")):
                # the chosen sampler group's settings, kept when only _target_ was changed (a user trial:
                # GridSampler refused "seed = null", RandomSampler "consider_prior = true")
                allowed += ("; the default sampler's settings stay when only its _target_ is changed: choose "
                            "the sampler as a group instead, hydra/sweeper/sampler=NAME (grid, random, tpe, cmaes, ...)")
            raise ConfigError(f"hydra.sweeper.sampler.{key}", node.get(key), allowed)


def refuse_hydra_settings_skillsim_replaces(dcfg: DictConfig) -> None:
    """Two of Hydra's run settings that skillsim's own writing replaces: `hydra.output_subdir` (Hydra's
    .hydra folder inside the run folder, which skillsim then found "not empty"), and `hydra.job.chdir`
    (the run simulated, then could not find its folder from the changed working folder)."""
    for key, allowed, why in (("hydra.output_subdir", None, "null: skillsim writes config.yaml and "
                               "manifest.json into the run folder itself"),
                              ("hydra.job.chdir", False, "false: skillsim writes the run folder from the folder "
                               "it was started in")):
        value = OmegaConf.select(dcfg, key, default=allowed)
        if value != allowed:
            raise ConfigError(key, value, why)


def refuse_listed_choices(dcfg: DictConfig) -> None:
    """`scenario=[no_policy,baseline]` is Hydra's list of configs, merged in turn: it ran a blend labelled
    as the last one. A run has one region and one scenario (a sweep lists them without brackets). Hydra
    records no choice for a listed group, which is how it is told apart here."""
    choices = OmegaConf.select(dcfg, "hydra.runtime.choices", default=None)
    if choices is None:
        return
    for group in ("region", "scenario"):
        if group not in choices:
            given = next((o.split("=", 1)[1] for o in as_typed_overrides(dcfg)
                          if o.lstrip("+~").split("=", 1)[0] == group and "=" in o), "")
            if not given.lstrip().startswith("["):  # removed (~scenario) or set by the user's own config
                continue
            names = ", ".join(sorted(shipped_preset_files() if group == "region" else
                                     (p.stem for p in (CONFIG_DIR / "scenario").glob("*.yaml"))))
            raise ConfigError(group, given, f"one {group} (one of {names}, or your own); to compare several, "
                                            f"sweep them: skillsim -m {group}=A,B")


def refuse_numbers_for_switches(dcfg: DictConfig, lines: list[str]) -> None:
    """A switch (a true/false setting) given a number: OmegaConf reads any number but 0 as true, so
    `levers.training.enabled=2` (meant as an intensity, say) ran the lever at its configured intensity
    without a word, and a sweep over `true,1` ran the same setting twice under two names, whose table
    then mixed words and numbers. `lines` are `key=value` overrides as typed."""
    for line in lines:
        key, sep, text = line.partition("=")
        key = key.lstrip("+~")
        if not sep or key.startswith("hydra.") or "/" in key or "@" in key:
            continue
        raw = text.strip().strip("'\"")
        if raw.startswith("{"):  # a mapping, `levers.training={enabled:2}`: each switch inside it
            _refuse_numbers_in_mapping(dcfg, line)
            continue
        if not isinstance(OmegaConf.select(dcfg, key, default=None), bool):
            continue
        try:
            number = float(raw)
        except ValueError:
            continue  # true/false/yes/no..., or a word OmegaConf refuses itself
        raise ConfigError(key, int(number) if number.is_integer() else number, "true or false (a switch)")


def swept_values(master: DictConfig, override) -> tuple[list | None, tuple | None]:
    """sim.sweep.optimiser_values for this sweep's sweeper and sampler; a sweep the sweeper refuses is a
    config error naming it, with the sweeper's reason."""
    from .sweep import grid_sampler, optimiser_values

    optuna = "optuna" in str(master.hydra.sweeper.get("_target_", "")).lower()
    try:
        return optimiser_values(override, optuna=optuna, grid=optuna and grid_sampler(master))
    except (ValueError, TypeError, AssertionError, NotImplementedError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(override.get_key_element(), override.input_line.split("=", 1)[-1],
                          f"a sweep the sweeper takes (Optuna: {why})" if optuna else "a sweep the sweeper takes") from None


def _latest_swept(master: DictConfig, override) -> int | None:
    """The latest year an optimising sweeper can give a year it sweeps, None if not a number (the job's
    own check reports it) or if it gives none."""
    values, bounds = swept_values(master, override)
    try:
        return int(max(float(v) for v in (values if values is not None else bounds or ())))
    except (TypeError, ValueError):
        return None


def _refuse_numbers_in_mapping(dcfg: DictConfig, line: str) -> None:
    """refuse_numbers_for_switches for a mapping given whole (`key={enabled:2,intensity:1.5}`), its
    values read by Hydra's own override parser (nested mappings walked key by key)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        override = OverridesParser.create().parse_override(line)
        value = override.value()
    except Exception:  # noqa: BLE001 - a malformed override is Hydra's to report, in its words
        return
    stack = [(override.get_key_element().lstrip("+~"), value)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{key}.{k}", v) for k, v in value.items())
        elif (isinstance(value, (int, float)) and not isinstance(value, bool)
              and isinstance(OmegaConf.select(dcfg, key, default=None), bool)):
            raise ConfigError(key, value, "true or false (a switch)")


def refuse_broken_interpolations(dcfg: DictConfig) -> None:
    """`n_agents=${nope}` or `${oops:1}`: OmegaConf's error ("Interpolation key 'nope' not found") named
    neither the setting nor what it may be. Every interpolation is resolved here, the settings' first
    and then the hydra node's, and the first that does not resolve is refused naming its key, as typed.
    Called once resolving has failed: walking the whole config costs about 15 ms."""
    def values(node, prefix: str = ""):  # (key, parent, its key there, node), in the file's order
        for k in (range(len(node)) if isinstance(node, ListConfig) else list(node.keys())):
            key = f"{prefix}[{k}]" if isinstance(node, ListConfig) else f"{prefix}.{k}" if prefix else str(k)
            child = node._get_node(k)
            if (isinstance(child, (DictConfig, ListConfig)) and not child._is_none() and not child._is_missing()
                    and not child._is_interpolation()):
                yield from values(child, key)
            else:
                yield key, node, k, child

    hydra_lines = OmegaConf.select(dcfg, "hydra.overrides.hydra", default=None)  # the typed hydra.* keys
    typed = {str(o).split("=", 1)[0].lstrip("+~").strip()
             for o in as_typed_overrides(dcfg) + (list(OmegaConf.to_container(hydra_lines, resolve=False))
                                                  if hydra_lines is not None else [])}
    found = sorted(values(dcfg), key=lambda item: item[0].startswith("hydra."))  # the settings first: Hydra's
    for key, node, k, child in found:  # folder names hold them (hydra.job.override_dirname), as typed
        if key.startswith("hydra.overrides") or not child._is_interpolation():
            continue
        try:
            node[k]
        except UNRESOLVED as exc:
            raise ConfigError(key, child._value(), interpolation_allowed(exc)) from None
        except InterpolationResolutionError as exc:  # a resolver's own failure: ${oc.env:UNSET}
            if key.startswith("hydra.") and key not in typed:  # Hydra's own, resolved in its run only
                continue
            raise ConfigError(key, child._value(), resolver_failure(exc)) from None


def resolver_failure(exc: BaseException) -> str:
    """What a value whose resolver failed may be, with the resolver's reason without OmegaConf's wrapping
    ("KeyError raised while resolving interpolation: ...")."""
    first = str(getattr(exc, "msg", exc)).splitlines()[0] if str(exc) else type(exc).__name__
    reason = re.sub(r"^\w+ raised while resolving interpolation: ", "", first).strip().strip(chr(34))
    return f"an interpolation that resolves ({reason})"


#: OmegaConf's errors for an interpolation that names a key or resolver that does not exist, or a value
#: not set: the user's to fix (a resolver's own failure, `${oc.env:X}` unset say, keeps OmegaConf's words)
UNRESOLVED = (InterpolationKeyError, UnsupportedInterpolationType, InterpolationToMissingValueError)


def interpolation_allowed(exc: BaseException) -> str:
    """What a value that does not resolve may be, with OmegaConf's reason in the user's terms."""
    allowed = "a value, or ${KEY} naming a key of the config"
    name = re.search(r"key '([^']*)'", str(exc)) if isinstance(exc, InterpolationKeyError) else None
    if name:
        return f"{allowed} ({name.group(1)!r} is not one)"
    name = re.search(r"type (\S+)", str(exc)) if isinstance(exc, UnsupportedInterpolationType) else None
    if name:
        return f"{allowed} (there is no resolver {name.group(1)!r})"
    return "a value, or ${KEY} naming a key that has a value"


def resolved_settings(dcfg: DictConfig) -> dict:
    """The composed config as plain values, interpolations resolved: the settings, and of Hydra's own
    node only the keys the user set (`hydra.run.dir=...`), so that a bad interpolation there is a config
    error too. Resolving the whole hydra node (its help texts, the run folder's name) cost about 12 ms of
    every start, for keys that Hydra resolves itself."""
    data = {}
    for key in dcfg.keys():
        if key == "hydra":
            continue
        if dcfg._get_node(key)._is_missing():  # as to_container gives it (check_preset names the region's)
            data[key] = "???"
            continue
        value = dcfg[key]
        data[key] = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    for line in OmegaConf.select(dcfg, "hydra.overrides.hydra", default=None) or []:
        key = str(line).split("=", 1)[0].lstrip("+~")
        if key.startswith("hydra.") and "/" not in key and "@" not in key:
            value = OmegaConf.select(dcfg, key, default=None)
            if isinstance(value, (DictConfig, ListConfig)):
                OmegaConf.to_container(value, resolve=True)
    return data


def emptied_mappings(overrides: list[str]) -> dict[str, dict]:
    """The preset mappings given as `{}` (`region.history.skilled_workers={}`, `region.structural={}`), each
    with the entries given for it after its last `{}` (usually none). Hydra merges a mapping given on the
    command line into the preset's, so `{}` changed nothing, while the run recorded it as given: such a
    mapping is emptied, as asked. One with entries only is still merged (it changes or adds those
    entries, the preset's others stay)."""
    out: dict[str, dict] = {}
    for line in overrides:
        key, sep, value = line.partition("=")
        key = key.lstrip("+")
        if not sep or key not in PRESET_MAPPINGS:
            continue
        if "".join(value.split()) == "{}":
            out[key] = {}
        elif key in out:  # entries after the `{}`: the mapping is those
            from hydra.core.override_parser.overrides_parser import OverridesParser

            given = OverridesParser.create().parse_overrides([line])[0].value()
            out[key] = {**out[key], **(given if isinstance(given, dict) else {})}
    return out


def empty_given_mappings(data: dict, overrides: list[str]) -> None:
    """Apply `emptied_mappings` to the composed settings (nested plain dicts), in place."""
    for key, entries in emptied_mappings(overrides).items():
        *parents, last = key.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = entries


def _typed_overrides(dcfg: DictConfig) -> list[str]:
    """The command line's overrides: from the config's hydra node, or, in a job Hydra runs (which gets its
    config without that node), from Hydra's own record of the job."""
    typed = as_typed_overrides(dcfg)
    if not typed and "hydra" not in dcfg and job_hydra_known():
        typed = [str(o) for o in job_hydra().overrides.task]
    return typed


def config_from_hydra(dcfg: DictConfig, preset: str | None = None,
                      overrides: list[str] | None = None) -> tuple[RunConfig, dict]:
    """Checked RunConfig and the plain composed dict (without the hydra node). `overrides`: the
    command line's, as typed (default: read from the hydra node, which a sweep job's config lacks)."""
    try:
        refuse_numbers_for_switches(dcfg, as_typed_overrides(dcfg))
        refuse_listed_choices(dcfg)
        refuse_hydra_settings_skillsim_replaces(dcfg)
        check_preset(dcfg, preset)
        data = resolved_settings(dcfg)
    except InterpolationResolutionError:  # UNRESOLVED, or a resolver that failed
        refuse_broken_interpolations(dcfg)  # names the setting (15 ms: only once one has failed)
        raise
    empty_given_mappings(data, _typed_overrides(dcfg) if overrides is None else overrides)
    for key in EDGE_KEYS:
        value = data.pop(key, None)
        if key == "objective":  # what a sweep job reports: a wrong metric fails at start-up, in one line
            from .objective import check

            check(value)
    cfg = checked_with_files(from_mapping(data), as_typed_overrides(dcfg) if overrides is None else overrides)
    return cfg, data


def _quiet_worker_interrupts() -> None:
    """In a launcher's worker process, leave Ctrl-C to the main process.

    Ctrl-C reaches the whole process group. The main process stops the sweep and shuts the pool
    down; a worker that also raised KeyboardInterrupt would print a traceback from its idle loop.
    Jobs run by the basic launcher run in the main process and keep the default.
    """
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def job_objective(dcfg: DictConfig, job_dir: Path):
    """The job's objective (sim.objective) from its written series; None if it cannot be had."""
    from . import objective

    import pandas as pd

    data = OmegaConf.to_container(dcfg.objective, resolve=True) if "objective" in dcfg else {}
    try:
        cfg, _ = config_from_hydra(dcfg)
        value, detail = objective.job_evaluation(data, cfg, pd.read_csv(job_dir / "series.csv"))
        objective.record(job_dir, data, value, detail=detail)  # for the sweep's runs.csv (skillsim-aggregate)
        return value
    except SkillsimError as err:
        why = str(err)
    except Exception as err:  # noqa: BLE001 - the job itself finished; its value is only missing
        why = str(internal_error(err, "the objective"))
    log.error("job %s: objective: %s", job_dir.name, why)
    objective.record(job_dir, data, None, error=why)  # runs.csv says the trial failed, and why
    return objective.failed(data)


def _grid_sampler_stopped_after_a_failure(exc: BaseException) -> bool:
    """Optuna's GridSampler stops the study after every trial once each grid point has been tried; Hydra's
    Optuna sweeper (1.3) allows for that when the trial completed, but when it failed the sampler's
    `Study.stop` raises out of the sweeper's `tell`, outside any optimisation loop."""
    return isinstance(exc, RuntimeError) and "`Study.stop` is supposed to be invoked" in str(exc)


def _tables_of_a_stopped_study() -> None:
    """runs.csv of a study its sweeper ended with an error: every trial ran, and their records are what
    the user needs (best effort: the message that follows is what matters)."""
    try:
        from .aggregate import aggregate, report

        report(sweep.SWEEP_DIR, aggregate(sweep.SWEEP_DIR, None, log=log.info))  # the summary, as after any sweep
    except Exception:  # noqa: BLE001
        pass


def failed_objective(dcfg: DictConfig):
    """What a failed job reports to a sweeper that optimises (sim.objective): its objective's failure value."""
    from . import objective

    return objective.failed(OmegaConf.to_container(dcfg.objective, resolve=True) if "objective" in dcfg else {})


def _sweep_job(dcfg: DictConfig, job_dir: Path, overrides: list[str], job_num: int, value: bool = True):
    """One job of a multirun (`_job`), then its line of progress; an optimising sweeper's job is one
    trial, counted as such (sim.sweep.trial_done): trials with the same settings share a job folder."""
    kept = value and finished_intact(job_dir)  # answered from a finished folder: no run, no time for the ETA's rate
    result = _job(dcfg, job_dir, overrides, job_num, value)
    if value:
        sweep.trial_done(job_dir.parent, job_num, ran=not kept)
    log_progress(job_dir.parent)
    return result


def _job(dcfg: DictConfig, job_dir: Path, overrides: list[str], job_num: int, value: bool = True):
    """One job of a multirun: claim it, skip it if finished (and intact) or run elsewhere, record a failure
    instead of raising. A finished folder that is damaged is set aside (sim.sweep.set_aside) and run again.

    The claim (sim.claims) makes two processes sharing the sweep folder run each job once: a job held
    by a live process is skipped, the claim of a dead one is taken over. Only the holder of the claim
    writes into the job folder, so a finished job is never marked failed. Returns the job's objective
    for the sweeper (sim.objective; None for a failed or skipped job: a failed trial), if `value` (the
    basic sweeper does not use it).
    """
    _quiet_worker_interrupts()
    end_with_parent()  # a worker outlived a main process killed with SIGKILL
    if finished_intact(job_dir):
        log.info("job %s: already finished, skipped", job_dir.name)
        return job_objective(dcfg, job_dir) if value else None
    nan = failed_objective(dcfg) if value else None
    try:
        held = claims.claim(job_dir)
    except OSError as exc:  # the lock file cannot be written: neither can anything else here
        err = environment_fault(exc, claims.lock_path(job_dir))
        if record_failure(job_dir, err, overrides, job_num):
            log.error("job %s failed: %s", job_dir.name, err)
        return nan
    if held is None:
        if value:  # an optimising sweeper's trial with the settings of a trial running now: that run's value is its
            log.info("job %s: being run by %s; waiting for its result", job_dir.name,
                     claims.holder(job_dir) or "another process")
            # to the claim's end, not only to COMPLETE: the holder may be about to set a damaged folder aside
            # (a claim file left by a failed unlink, its lock gone, ends the wait once the job has finished)
            while claims.live_holder(job_dir) is not None and (not is_finished(job_dir) or claims.locked(job_dir)):
                time.sleep(0.2)
            return job_objective(dcfg, job_dir) if finished_intact(job_dir) else nan
        log.info("job %s: being run by %s; skipped", job_dir.name, claims.holder(job_dir) or "another process")
        return nan
    with held:
        if held.previous is not None:
            log.warning("job %s: took over the claim of %s, which is no longer running", job_dir.name,
                        held.previous)
        problems = damage(job_dir) if is_finished(job_dir) else []
        if problems:  # changed since it finished: its files are not the run's; the run gives them again
            try:
                aside = set_aside(job_dir)
            except OSError as exc:  # nothing moved: the folder stays as it is, neither finished anew nor failed
                log.error("job %s: its finished folder is damaged (%s), and cannot be set aside to run it again: %s",
                          job_dir.name, problems[0], os_reason(exc))
                return nan
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            log.warning("job %s: its finished folder is damaged: %s%s; kept as %s, and the job runs again",
                        job_dir.name, problems[0], more, aside.name)
        if is_finished(job_dir):  # finished by another process between our check and our claim
            log.info("job %s: already finished, skipped", job_dir.name)
        else:
            try:
                clear_failure(job_dir)
                refuse_numbers_for_switches(dcfg, overrides)  # a job's config has no hydra node to read them from
                cfg, data = config_from_hydra(dcfg, job_hydra().runtime.choices.get("region"), overrides)
                run_forecast(cfg, job_dir, composed=data, overrides=overrides,
                             extra={"job_num": job_num, **read_from(config_dirs())})
            except KeyboardInterrupt:
                raise
            except Exception as err:  # one failing job must not stop the others or lose their results
                if isinstance(err, OSError):
                    err = environment_fault(err, job_dir)
                if record_failure(job_dir, err, overrides, job_num):
                    log.error("job %s failed: %s", job_dir.name, err)
    return job_objective(dcfg, job_dir) if value and is_finished(job_dir) else nan


_CHECKED: list = []  # the config _run_single checked, for the task it hands to Hydra (no second check)


def _single_run(dcfg: DictConfig, run_dir: Path, unique: bool = False) -> None:
    """A single run, under a claim on its folder: a second process aimed at it refuses in one line."""
    cfg, data = _CHECKED.pop() if _CHECKED else config_from_hydra(dcfg)
    hc = job_hydra()
    run_in_folder(cfg, data, run_dir, unique=unique, overrides=list(hc.overrides.task),
                  region=hc.runtime.choices.get("region"), dirs=config_dirs())


def _task(dcfg: DictConfig):
    """The job Hydra runs: a single run, or one job of a sweep."""
    from hydra.types import RunMode

    hc = job_hydra()
    run_dir = Path(hc.runtime.output_dir)
    if hc.mode == RunMode.MULTIRUN:
        basic = hc.sweeper._target_.endswith(".BasicSweeper")  # ours too (sim.fastsweep subclasses it)
        return _sweep_job(dcfg, run_dir, list(hc.overrides.task), int(hc.job.num), value=not basic)
    with errors_of_a_run(run_dir):
        _single_run(dcfg, run_dir, unique=not chosen_run_dir(hc))


def _hydra_task() -> None:
    """`hydra.main` over _task: every run that is not plain (Hydra's flags, sweeps)."""
    import hydra

    hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")(_task)()


def job_hydra() -> DictConfig:
    """The running job's hydra node (Hydra's record of it, imported here: sim.cli does not import Hydra
    until a run needs it)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get()


def job_hydra_known() -> bool:
    """Whether Hydra is running a job, whose hydra node job_hydra() gives."""
    if "hydra" not in sys.modules:  # Hydra never started in this process: no job of its own
        return False
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized()


MAX_SWEEP_VALUES = 100_000  #: values of one swept key Hydra's basic sweeper is asked to expand, at most


def _run_single(overrides: list[str]) -> None:
    """A plain single run (overrides only, no Hydra flags), as `hydra.main` runs it but composed once.

    `hydra.main` composes the config twice for a run (once only to read `hydra.mode`), and the
    preflight check a third time; composition is about a quarter of `skillsim`'s start-up. Here the
    config is composed once (Hydra's own compose_config, from the shell's overrides, with its logging
    set-up) and checked (one line, before any folder). A run that cache_entry can keep is then run from
    its entry (sim.single_run.run_entry), as its repeats will be, from the cache and without Hydra; any
    other is handed to Hydra's run_job with the configured callbacks: the same steps as Hydra's `run`,
    the same folder, config and logging."""
    from hydra import initialize_config_dir
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import run_job
    from hydra.types import HydraContext, RunMode

    from . import compose_cache, fastsweep

    with _user_errors_in_one_line():
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3", job_name=JOB_NAME):
            loader = GlobalHydra.instance().config_loader()
            dcfg = GlobalHydra.instance().hydra.compose_config("config", overrides, run_mode=RunMode.RUN,
                                                               with_log_configuration=True)
        checked = config_from_hydra(dcfg)  # every value checked before the run folder exists
        from .results import refuse_inside_results

        refuse_inside_results(Path(str(dcfg.hydra.run.dir)), "hydra.run.dir")  # before Hydra makes it
        if (entry := cache_entry(dcfg, checked[1])) is not None:
            compose_cache.store(overrides, JOB_NAME, entry)
    if entry is not None:  # every run of these overrides, this one too, goes the same way
        return run_entry(entry, checked[0])
    dcfg.hydra.mode = RunMode.RUN
    _CHECKED[:] = [checked]  # run_job hands _task a copy of dcfg without its hydra node: the same values
    fastsweep.copies_by_pickling()  # run_job's two copies of the config, a third of the time
    try:
        callbacks = Callbacks(dcfg)
        callbacks.on_run_start(config=dcfg, config_name="config")
        ret = run_job(hydra_context=HydraContext(config_loader=loader, callbacks=callbacks), task_function=_task,
                      config=dcfg, job_dir_key="hydra.run.dir", job_subdir_key=None)
    finally:
        _CHECKED.clear()  # already taken, unless something failed before the task: never left for another run
        fastsweep.copies_by_pickling(False)
    callbacks.on_run_end(config=dcfg, config_name="config", job_return=ret)
    _ = ret.return_value  # re-raises what the task raised, as hydra.main does


#: The callbacks of config.yaml, which do nothing in a single run (sim.sweep.AggregateCallback acts on
#: sweeps, and on a job's end only drops the copies of its config Hydra keeps)
SINGLE_RUN_CALLBACKS = {"aggregate": {"_target_": "sim.sweep.AggregateCallback"}}


def plain_runnable(hydra_node: DictConfig) -> bool:
    """Whether a run without Hydra (sim.single_run.run_from_entry) does for this run all that Hydra's run_job
    would: config.yaml's callbacks and its logging (sim/conf/hydra/*_logging/skillsim.yaml: configured
    there without the target policy Hydra checks a logging config's classes against, which only files
    the package ships may skip), no environment variables to set, Hydra's output_subdir off and no
    chdir (config_from_hydra refuses both, but this check does not rely on it), not verbose."""
    def plain(key: str):
        node = OmegaConf.select(hydra_node, key, default=None)
        return OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node

    shipped_logging = all(plain(k) == _shipped_logging(k) for k in ("hydra_logging", "job_logging"))
    return (shipped_logging and plain("callbacks") == SINGLE_RUN_CALLBACKS and not plain("job.env_set")
            and plain("output_subdir") is None and plain("job.chdir") in (False, None) and plain("verbose") is False)


@functools.lru_cache(maxsize=None)
def _shipped_logging(group: str) -> dict:
    return yaml.safe_load((CONFIG_DIR / "hydra" / group / "skillsim.yaml").read_text(encoding="utf-8"))


def cache_entry(dcfg: DictConfig, data: dict) -> dict | None:
    """What sim.single_run.run_from_entry needs to repeat this checked plain run without Hydra or OmegaConf,
    as plain values; None if it could not do it as Hydra would (plain_runnable), if a setting holds an
    interpolation (`seed=${oc.env:SEED}` may resolve otherwise next time), or if `hydra.run.dir` holds
    more than its time (run_dir_parts)."""
    if not plain_runnable(dcfg.hydra):
        return None
    unresolved = OmegaConf.to_container(dcfg, resolve=False)
    unresolved.pop("hydra")
    if _holds_interpolation(unresolved):
        return None
    typed = as_typed_overrides(dcfg)
    parts = run_dir_parts(dcfg, typed)
    if parts is None:
        return None
    from .single_run import ENTRY_FORM

    return {"form": ENTRY_FORM, "data": data, "overrides": typed, "run_dir": parts,
            "chosen": chosen_run_dir(dcfg.hydra), "region": dcfg.hydra.runtime.choices.get("region"),
            "dirs": config_dirs(dcfg.hydra), "hydra_logging": _shipped_logging("hydra_logging"),
            "job_logging": _shipped_logging("job_logging")}


def _holds_interpolation(value) -> bool:
    if isinstance(value, dict):
        return any(_holds_interpolation(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_interpolation(v) for v in value)
    return isinstance(value, str) and "${" in value


def run_dir_parts(dcfg: DictConfig, typed: list[str]) -> list[tuple[str, str]] | None:
    """`hydra.run.dir` as ("text", TEXT) and ("now", FORMAT) parts (sim.single_run.filled_run_dir): its
    `${now:FORMAT}` left for each run to fill, `${skillsim_tag:}` and `${KEY}` of a setting resolved as
    OmegaConf resolves them; None if it holds any other interpolation, a nested one or an escape."""
    raw = OmegaConf.to_container(dcfg.hydra.run, resolve=False)["dir"]
    if not isinstance(raw, str) or "\\" in raw:
        return None
    parts: list[tuple[str, str]] = []
    pos = 0
    for m in re.finditer(r"\$\{([^${}]*)\}", raw):
        parts.append(("text", raw[pos:m.start()]))
        expr = m.group(1)
        if expr.startswith("now:"):
            parts.append(("now", expr[len("now:"):]))
        elif expr == "skillsim_tag:":
            parts.append(("text", run_tag(typed, dcfg)))
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", expr) and expr.split(".")[0] != "hydra":
            value = OmegaConf.select(dcfg, expr, default=None)
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                return None
            parts.append(("text", str(value)))
        else:
            return None
        pos = m.end()
    parts.append(("text", raw[pos:]))
    return None if any(kind == "text" and "${" in v for kind, v in parts) else parts  # one nested in another


# -- one-line errors for what Hydra rejects before the task runs ----------------------------------

def _chain(exc: BaseException | None) -> list[BaseException]:
    """The exception and its causes (explicit or implicit), outermost first."""
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _group_given_no_name(exc: BaseException) -> str | None:
    """`region=null`, `scenario=5`: Hydra's ValueError ("Config group override must be a string or a list")
    names neither the group nor the value, and was reported as a bug in skillsim. The override as typed,
    read from the frame of Hydra's that raised it; None for any other error."""
    found = None
    for e in _chain(exc):
        if isinstance(e, ValueError) and str(e).startswith("Config group override must be a string or a list"):
            tb = e.__traceback__
            while tb is not None:
                line = getattr(tb.tb_frame.f_locals.get("override"), "input_line", None)
                found = line if isinstance(line, str) else found
                tb = tb.tb_next
            return found or "?=?"
    return None


def _typed_value(key: str) -> str | None:
    """The value of `key` as typed on the command line (`n_agents=1e9`, which Hydra reads as 1000000000.0),
    the last one given; None if it was not given there."""
    typed = None
    for arg in sys.argv[1:]:
        name, sep, value = arg.partition("=")
        if sep and name.lstrip("+~") == key:
            typed = value
    return None if typed is None or re.search(r"[,()\[\]{}]", typed) else typed  # a sweep's list: not one value


def _preset_names(group: str) -> list[str]:
    """The shipped presets of a config group (region, scenario, ...), or [] if `group` is no group of
    skillsim's (Hydra's own groups, hydra/launcher and the like, hold mostly its plugins' configs)."""
    folder = CONFIG_DIR / group.split("@", 1)[0]
    ours = group and not group.startswith("hydra/") and folder.is_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if ours else []


def explain(exc: BaseException) -> str:
    """Turn a Hydra/OmegaConf composition error into one line naming the field and what is allowed."""
    text = str(exc)
    chain = _chain(exc)
    if (line := _group_given_no_name(exc)) is not None:
        group, _, value = line.lstrip("+~").partition("=")
        names = ", ".join(_preset_names(group))
        return str(ConfigError(group, value, f"the name of a preset ({names}, or your own)" if names else
                               "the name of a preset"))
    bad_yaml = next((e for e in chain if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark), None)
    if bad_yaml is not None:  # a hand-edited config file that is not valid YAML
        mark = bad_yaml.problem_mark
        return f"config error: {mark.name}: not valid YAML ({bad_yaml.problem}, line {mark.line + 1})"
    unparsed = getattr(exc, "override", None)
    if isinstance(unparsed, str):  # OverrideParseException: the override's syntax is wrong
        why = next((ln.strip() for ln in text.splitlines() if ln.strip() and "Error parsing" not in ln), "bad syntax")
        key, sep, value = unparsed.partition("=")
        if sep and value and not value.startswith(("'", '"')) and (
                not value.isascii() or " " in value):  # 结果/运行1: Hydra's lexer reads ASCII words only
            return (f"config error: cannot read the override {unparsed!r}: a value with spaces or non-ASCII "
                    f"characters needs quotes around all of it: {key}='{value}' (in a shell: "
                    f"\"{key}='{value}'\")")
        if not sep and re.fullmatch(r"[+~]?[A-Za-z_][\w.]*", unparsed.strip()):  # `region national`: no "="
            return (f"config error: cannot read the override {unparsed!r}: a setting is KEY=VALUE, with no spaces "
                    f"around '=' (for example {unparsed.strip().lstrip('+~')}=VALUE)")
        return f"config error: cannot read the override {unparsed!r}: {why}"
    m = re.match(r"Ambiguous value for argument '([^=']+)=(.*)'", text)  # `scenario=a,b` without -m
    if m:
        key, value = m.group(1).lstrip("+~"), m.group(2)
        one = (f"one {key} (one of {', '.join(_preset_names(key))}, or your own)" if _preset_names(key) else
               f"one value (a list is written [A,B], a text with commas is quoted: {key}='{value}')")
        return str(ConfigError(key, value, f"{one}; to compare several, sweep them: skillsim -m {key}={value}"))
    m = re.search(r"Could not load '([^']+)/([^'/]*)'", text)  # a listed name that is no preset: scenario=[a,nope]
    if m and _preset_names(m.group(1)):
        return str(ConfigError(m.group(1), m.group(2), f"one of {', '.join(_preset_names(m.group(1)))}, or your own"))
    where = re.match(r"In '([^']+)':", text)  # a value set in a config file rather than on the command line
    src = f" (set in config file {where.group(1)}.yaml)" if where else ""
    m = re.search(r"Could not find '([^']+)/([^'/]*)'", text)  # the group is all but the last part
    if m:
        group, choice = m.groups()
        section = text.split("Available options", 1)[-1].split("Config search path", 1)[0]
        opts = [o for o in re.findall(r"^\t(\S+)$", section, flags=re.M) if "=" not in o]
        allowed = ", ".join(opts) if opts else f"an existing file in sim/conf/{group}/"
        if group == "hydra/sweeper" and choice in ("optuna", "nevergrad"):  # shipped with the experiments extra
            allowed += (f"; {choice.capitalize()}'s sweeper is installed with the experiments extra "
                        "(pip install \"skillsim[experiments]\")" if choice == "optuna" else
                        "; Nevergrad's sweeper is not installed with skillsim (pip install hydra-nevergrad-sweeper)")
        if group == "hydra/launcher" and choice == "ray":  # an extra of its own, in an environment of its own
            allowed += ("; Ray's launcher is installed apart (pip install \".[ray]\" in an environment of its "
                        "own, docs/cluster.md)")
        return str(ConfigError(group, choice, f"one of {allowed}"))
    inner = next((e for e in chain if getattr(e, "full_key", None)), None)
    if inner is not None:
        full_key = inner.full_key
        if isinstance(inner, UNRESOLVED):  # a key or resolver that does not exist, or a value not set
            raw = getattr(getattr(inner, "child_node", None), "_value", lambda: None)()
            return (f"config error: {full_key}{' = ' + repr(raw) if isinstance(raw, str) else ''} is invalid; "
                    f"allowed: {interpolation_allowed(inner)}{src}")
        first = str(getattr(inner, "msg", inner)).splitlines()[0]
        if re.match(r"\w+ raised while resolving interpolation: ", first):  # a resolver that failed: ${oc.env:UNSET}
            raw = getattr(getattr(inner, "child_node", None), "_value", lambda: None)()
            return str(ConfigError(full_key, raw if isinstance(raw, str) else "${...}", resolver_failure(inner))) + src
        m = re.search(r"Value '(.*)' of type '(\w+)' could not be converted to (\w+)", first)
        if m:
            value, _, kind = m.groups()
            allowed = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false (a switch)"}.get(kind, kind)
            typed = None if src else _typed_value(full_key)
            if kind == "Integer" and re.fullmatch(r"-?\d+\.0", value):  # 1e5 or 100000.0: read as a decimal
                allowed += f", written in digits ({value[:-2]}), as {typed or value} is read as a decimal number"
            return str(ConfigError(full_key, typed or value, allowed)) + src
        m = re.search(r"Value '(.*)' is not a valid bool", first)
        if m:
            return str(ConfigError(full_key, m.group(1), "true or false (a switch)")) + src
        if "is not Optional" in first:
            return str(ConfigError(full_key, None, "a value: it cannot be null")) + src
        m = re.search(r"Invalid value assigned: \w+ is not a ListConfig", first)
        if m:
            return str(ConfigError(full_key, getattr(inner, "value", None), "a list, such as [A, B]")) + src
        m = re.search(r"Invalid type assigned: \w+ is not a subclass of (\w+)", first)
        if m:
            return str(ConfigError(full_key, getattr(inner, "value", None),
                                   f"a group of settings, given key by key ({full_key}.KEY=VALUE)")) + src
        if "not in" in first or "not in struct" in first:
            return f"config error: unknown key {full_key!r}{src}; {unknown_key_hint(full_key)}"
        return f"config error: {full_key}: {first}{src}"
    m = re.search(r"Could not override '([^']+)'", text)
    if m:
        return f"config error: unknown key {m.group(1)!r}; {unknown_key_hint(m.group(1))}"
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
    return f"config error: {first}"


#: where an unknown key's error sends the user (a study command names its own options too: sim.studies.options)
UNKNOWN_KEY_HINT = "see `skillsim --cfg job` for the keys"


def unknown_key_hint(key: str) -> str:
    """UNKNOWN_KEY_HINT, with the setting the key most likely meant if one is close; for a key of Hydra's
    own node the command that lists those (`--cfg job` leaves the hydra node out)."""
    if key.lstrip("+~").startswith("hydra."):
        return "see `skillsim --cfg hydra` for Hydra's keys"
    from .config import closest_setting

    meant = closest_setting(key)
    return f"did you mean {meant}? {UNKNOWN_KEY_HINT}" if meant else UNKNOWN_KEY_HINT

HYDRA_FLAGS_WITH_VALUE = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                          "--experimental-rerun", "--info", "-i", "--package", "-p", "--cfg", "-c"}


def _refuse_a_named_sweep_without_m(plain: list[str] | None) -> None:
    """`skillsim +sweep=NAME` (or +experiments=NAME) without -m would quietly make one run at the
    defaults: the sweep's lists are a sweeper's, which only -m starts."""
    if plain is None or any(o.replace(" ", "").lower() == "hydra.mode=multirun" for o in plain):
        return
    for o in plain:
        group, _, name = o.lstrip("+").partition("=")
        if group == "hydra.sweep.dir" and not any(p.lstrip("+").startswith("hydra.run.dir=") for p in plain):
            # a single run went to its default folder without a word (both given: a script's, for either mode)
            fail(ConfigError("hydra.sweep.dir", name, "a sweep's folder, with -m (skillsim -m ... "
                             f"hydra.sweep.dir={name}); a single run's folder is hydra.run.dir"))
        if group in ("sweep", "experiments") and name:
            what = "experiment" if group == "experiments" else "sweep"
            fail(f"config error: +{group}={name} needs -m: skillsim -m +{group}={name} (a named {what} is a "
                 "multirun; without -m it would make one run at the defaults)", 2)


def unknown_hydra_key(override: str) -> str | None:
    """For `+hydra.KEY=VALUE` (or `++`): the first part of KEY that Hydra's own schema (hydra.conf.HydraConf)
    does not have, where that part sits in one of its fixed sections (not in a mapping such as
    hydra.job.env_set, or the launcher's and sweeper's nodes, whose keys are their plugins'); None if
    Hydra reads the key. Hydra itself adds any such key and reads none of them."""
    key, sep, _ = override.partition("=")
    if not sep or not key.startswith("+") or "/" in key:
        return None
    parts = key.lstrip("+").strip().split(".")
    if parts[0] != "hydra":
        return None
    import dataclasses
    import typing

    from hydra.conf import HydraConf

    kind = HydraConf
    for i, part in enumerate(parts[1:], start=1):
        if not dataclasses.is_dataclass(kind):
            return None
        hints = typing.get_type_hints(kind)
        if part not in hints:
            return ".".join(parts[:i + 1])
        kind = hints[part]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) is typing.Union and len(args) == 1:  # Optional[X]
            kind = args[0]
    return None


def _refuse_unknown_hydra_keys(overrides: list[str] | None) -> None:
    """`+hydra.bogus=1` is accepted by Hydra and read by no one: refuse it, as `hydra.bogus=1` is refused."""
    for o in overrides or ():
        key = unknown_hydra_key(o)
        if key is not None:
            fail(f"config error: unknown key {key!r} (in {o.partition('=')[0]}): Hydra reads no such key; "
                 f"{unknown_key_hint(key)}", 2)


def _overrides(argv: list[str]) -> list[str] | None:
    """The overrides in argv, or None if argv asks Hydra for something other than a single run."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("-m", "--multirun", "-h", "--help", "--hydra-help", "--version", "--shell-completion", "-sc"):
            return None
        if a in HYDRA_FLAGS_WITH_VALUE:
            return None
        if a.startswith("-"):
            return None
        out.append(a)
    return out


@contextmanager
def _user_errors_in_one_line():
    """Compose configs with a clean Hydra state; report any user error as one line and exit."""
    _clear_hydra()
    try:
        yield
    except SkillsimError as err:
        fail(err)
    except Exception as exc:  # Hydra/OmegaConf composition errors: user input, reported in one line
        if not _composition_error(exc):  # anything else is a bug, not a config error: say so
            if debug_enabled():
                raise
            fail(internal_error(exc), EXIT_INTERNAL)
        fail(explain(exc), 2)
    finally:
        _clear_hydra()


def _clear_hydra() -> None:
    """Clear Hydra's global state, if Hydra was ever imported in this process."""
    if "hydra" in sys.modules:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()


def _composition_error(exc: BaseException) -> bool:
    """Whether Hydra, OmegaConf or the YAML reader raised it (or caused it): what a user's config or
    override can cause. Any other exception while composing is skillsim's own bug."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return (any(isinstance(e, (HydraException, OmegaConfBaseException, yaml.YAMLError)) for e in _chain(exc))
            or _group_given_no_name(exc) is not None)


def preflight(overrides: list[str]) -> None:
    """Compose and check the config the run will use; exit with one line if anything is wrong."""
    from hydra import compose, initialize_config_dir

    with _user_errors_in_one_line(), initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        config_from_hydra(compose(config_name="config", overrides=overrides, return_hydra_config=True))


def _sweep_overrides(argv: list[str]) -> list[str] | None:
    """The overrides of a plain multirun (`-m` and overrides only), else None."""
    if not any(a in ("-m", "--multirun") for a in argv):
        return None
    return _overrides([a for a in argv if a not in ("-m", "--multirun")])


#: metrics a planner wants high: minimising one of them is almost surely the sweeper's default direction
HIGHER_IS_BETTER = ("high_skill_share", "high_skill_share_workforce", "high_skill_workers", "income_mean",
                    "income_median", "income_p10", "middle_income_share")


def check_direction(direction: str, objective) -> None:
    """The objective's weights against the sweeper's direction: its value is the metric less cost_weight x
    spend and penalty x shortfall, so under `maximize` the weights are >= 0 and under `minimize` <= 0 (a
    positive weight under minimize rewards spending; `objective.cost_weight=-1` under maximize rewarded it,
    without a word). Minimising a metric a planner wants high with no weights is warned of: the Optuna
    sweeper's default direction is minimize, and such a sweep reported its worst setting as the best (a
    user trial)."""
    sign = 1 if direction == "maximize" else -1
    for key in ("cost_weight", "penalty"):
        value = getattr(objective, key)
        if value * sign < 0:
            raise ConfigError(f"objective.{key}", value, f"a number {'>=' if sign > 0 else '<='} 0 with "
                              f"hydra.sweeper.direction={direction} (the objective is {objective.metric} less "
                              f"cost_weight x spend and penalty x shortfall; with "
                              f"{'maximize' if sign < 0 else 'minimize'} the signs turn)")
    if sign < 0 and objective.metric in HIGHER_IS_BETTER and not (objective.cost_weight or objective.penalty):
        log.warning("hydra.sweeper.direction=minimize (the Optuna sweeper's default) looks for the lowest %s; "
                    "give hydra.sweeper.direction=maximize for the highest", objective.metric)


def preflight_sweep(overrides: list[str]) -> str | None:
    """Check a multirun before Hydra creates anything; exit with one line if it cannot run.

    Refused: a job that cannot be composed (unknown key or group option, wrong type: Hydra would stop
    the whole sweep with a multi-line error), or any swept value that fails the checks (out of range, a
    preset that is incomplete): the first error, in one line, before the sweep folder exists. A job
    that fails while it runs (the disk, a killed process) records its error and the others go on.
    Every swept value is checked once, on top of the sweep's first job.

    Cost: one composition per distinct config-group choice. A swept value is set on one scratch copy
    of the first job's config (OmegaConf's type checks, as Hydra applies it), copied into the first
    job's plain settings and checked by `from_mapping`: about a millisecond a value, so the values of
    a 5,000-replicate sweep are checked in seconds. Returns the sweeper's `_target_` (None if the
    sweep was not checked).
    """
    import copy

    from hydra import compose, initialize_config_dir
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    errors, checked, targets_error, notes = [], 0, [], []

    def check(data: dict, targets: bool) -> None:
        """Check one job's settings; `targets=False`: same targets file as the first job (its result)."""
        nonlocal checked
        checked += 1
        try:
            cfg = from_mapping(data)
            if (off := cfg.switched_off_note()) and off not in notes:
                notes.append(off)
            if targets:
                try:
                    load_targets(cfg.targets_file or DEFAULT_TARGETS)
                except SkillsimError as err:
                    if checked == 1:  # the first job's targets file: every value variant shares it
                        targets_error.append(err)
                    raise
            elif targets_error:
                raise targets_error[0]
        except SkillsimError as err:
            errors.append(err)

    def plain(dcfg: DictConfig) -> dict:
        check_preset(dcfg)
        data = OmegaConf.to_container(dcfg, resolve=True)
        empty_given_mappings(data, as_typed_overrides(dcfg))  # region.structural={}, as each job will
        for key in EDGE_KEYS:
            data.pop(key, None)
        return data

    with _user_errors_in_one_line(), _type_hints_cached():
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            from hydra.core.global_hydra import GlobalHydra

            parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
            given = parser.parse_overrides(overrides)
            fixed = [o.input_line for o in given if not o.is_sweep_override()]
            try:
                master = compose(config_name="config", overrides=fixed, return_hydra_config=True)
            except Exception:
                for o in given:  # into params that are null (no experiment set them): OmegaConf failed on it
                    if o.get_key_element().lstrip("+~").split(".")[:3] == ["hydra", "sweeper", "params"]:  # in Hydra
                        raise ConfigError(o.get_key_element(), o.input_line.split("=", 1)[-1], "the swept keys "
                                          "themselves on the command line (levers.training.intensity=interval(0,1)), "
                                          "or hydra.sweeper.params in a config file under experiments/") from None
                raise
            refuse_listed_choices(master)
            refuse_hydra_settings_skillsim_replaces(master)
            refuse_a_folder_of_other_results(Path(str(master.hydra.sweep.dir)))
            refuse_another_sweep(Path(str(master.hydra.sweep.dir)), given, parser)
            target = str(master.hydra.sweeper.get("_target_", ""))
            if not target.endswith(".BasicSweeper"):  # Optuna, Nevergrad: the values are not known yet
                from .objective import check as check_objective

                objective = check_objective(OmegaConf.to_container(master.objective, resolve=True)
                                            if "objective" in master else None)
                data0 = plain(master)
                cfg0 = from_mapping(data0)  # the settings every job shares
                keys = [o.get_key_element() for o in parser.parse_overrides(sweeper_params(master)) + given]
                drawing = cfg0.draw is not None or "draw" in {k.lstrip("+~") for k in keys}  # draw itself optimised
                refuse_drawn_overrides(dataclasses.replace(cfg0, draw=cfg0.draw or 0) if drawing else cfg0, keys)
                swept = [o for o in parser.parse_overrides(
                    sweeper_params(master)) + given
                    if o.is_sweep_override() and not o.get_key_element().startswith("hydra.")]
                check_optimised_ranges(master, data0, swept)
                check_sampler_settings(master)
                sweep.note_seeded_saved_study(master)
                refuse_numbers_for_switches(master, fixed + [  # each choice as typed, a mapping's too
                    f"{o.get_key_element()}={text}" for o in swept if o.is_choice_sweep()
                    for text in o.sweep_string_iterator()])
                direction = master.hydra.sweeper.get("direction") if "optuna" in target.lower() else None
                for d in (direction if isinstance(direction, ListConfig) else [direction] if direction else []):
                    name = str(getattr(d, "name", d))  # the schema's default is an enum member
                    if name.lower() not in ("minimize", "maximize"):  # Optuna's own error read as a bug
                        raise ConfigError("hydra.sweeper.direction", name, "minimize or maximize (a list of "
                                          "them for several objectives)")
                if direction is not None:  # one direction a value: else no trial counted, or every one failed
                    n_dir = len(direction) if isinstance(direction, ListConfig) else 1
                    n_obj = len(objective.metrics) or 1
                    if n_dir != n_obj:
                        raise ConfigError("hydra.sweeper.direction", OmegaConf.to_container(direction)
                                          if isinstance(direction, ListConfig) else str(getattr(direction, "name", direction)),
                                          f"one direction for each of the objective's {n_obj} value(s) (objective."
                                          f"{'metrics' if objective.metrics else 'metric'})")
                if direction is not None and not objective.metrics:  # one value: its one direction, listed or not
                    one = direction[0] if isinstance(direction, ListConfig) else direction
                    check_direction(str(getattr(one, "name", one)).lower(), objective)
                for key in ("n_trials", "n_jobs"):  # Optuna's ZeroDivisionError, or a study of no trial
                    value = master.hydra.sweeper.get(key)
                    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                        raise ConfigError(f"hydra.sweeper.{key}", value, "an integer >= 1")
                ends = [o for o in swept if o.get_key_element() == "horizon.end_year"]
                last = _latest_swept(master, ends[-1]) if ends else cfg0.horizon.end_year
                if (objective.year is not None and last is not None
                        and not cfg0.start_year <= objective.year <= last):
                    # else every trial runs and none has an objective (swept: the latest end it can reach)
                    raise ConfigError("objective.year", objective.year, f"a year the runs reach ({cfg0.start_year}-"
                                      f"{last}{', the latest swept horizon.end_year' if ends else ''})")
                return target
            params = sweeper_params(master)
            lists: dict[str, dict[str, object]] = {}  # key -> {"key=value": parsed value}, in Hydra's job order
            given_as: dict[str, str] = {}  # key -> its sweep as typed
            for o in parser.parse_overrides(params) + given:
                key = o.get_key_element()
                if o.is_sweep_override():
                    if not o.is_discrete_sweep():  # Hydra's words named neither the key nor what to do
                        raise ConfigError(key, o.input_line.split("=", 1)[-1], "a list (A,B) or range(...) for "
                                          "Hydra's basic sweeper; interval(...) needs an optimising sweeper, such as "
                                          "hydra/sweeper=optuna")
                    lists[key] = {}
                    given_as[key] = o.input_line.split("=", 1)[-1]
                    try:  # range(0,3,0): Python's ValueError was "a bug in skillsim"
                        for text, value in zip(o.sweep_string_iterator(), o.sweep_iterator()):
                            lists[key].setdefault(f"{key}={text}", value)
                            if len(lists[key]) > MAX_SWEEP_VALUES:  # range(0,100000000) sat silent for minutes
                                raise ConfigError(key, given_as[key], f"a sweep of at most {MAX_SWEEP_VALUES:,} "
                                                  "values of one key (split a larger one into several sweeps)")
                    except ValueError as exc:
                        raise ConfigError(key, given_as[key], f"a sweep Hydra can expand ({exc})") from None
                else:
                    lists[key] = {f"{key}={o.get_value_element_as_str()}": None}
            for key, values in lists.items():  # the last override of a key wins, as in Hydra's sweeper
                if not values:  # Hydra would make the sweep folder and run no job in it
                    raise ConfigError(key, given_as[key], "a sweep of at least one value (range(a,b) runs a, "
                                      "a+1, ... below b; range(a,b,step) counts down with a negative step)")
                refuse_a_value_twice(key, given_as.get(key), values)
            refuse_numbers_for_switches(master, [line for values in lists.values() for line in values])
            first = [next(iter(values)) for values in lists.values()]
            base = compose(config_name="config", overrides=first, return_hydra_config=True)
            data0 = plain(base)
            check(data0, targets=True)
            if not errors:  # draw= with a setting its joint draw replaces (the first job's draw tells which)
                refuse_drawn_overrides(from_mapping(data0), list(lists))
            groups = set(master.hydra.runtime.choices)
            # whether a value can move another through an interpolation: in the settings only (Hydra's own
            # node always has some, and resolving it for every value cost 18 ms a value, 90 s for 5,000)
            interpolated = "${" in repr({k: v for k, v in OmegaConf.to_container(base, resolve=False).items()
                                         if k not in EDGE_KEYS})
            scratch = None
            for i, (key, values) in enumerate(lists.items()):
                line, name = first[i], key.lstrip("+~")
                if name.startswith("hydra.") or name.startswith("hydra/") or len(values) < 2:
                    continue
                if name in groups or name != key or "/" in name or "@" in name:
                    for other in list(values)[1:]:
                        try:
                            variant = plain(compose(config_name="config", overrides=[*first[:i], other, *first[i + 1:]],
                                                    return_hydra_config=True))
                        except SkillsimError as err:  # a preset that is incomplete or not valid
                            fail(err)
                        check(variant, targets=True)
                        if not errors:  # another region may draw a key the first does not
                            refuse_drawn_overrides(from_mapping(variant), list(lists))
                    continue
                if scratch is None:
                    scratch = copy.deepcopy(base)
                for other, value in list(values.items())[1:]:  # each distinct value once
                    if interpolated or not isinstance(value, (str, int, float, bool, type(None))):
                        ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides([other]), scratch)
                        data = plain(scratch)
                    else:  # as Hydra applies a value (OmegaConf.update, typed), without converting everything
                        OmegaConf.update(scratch, name, value, merge=True)
                        data = _with_value(data0, name, OmegaConf.select(scratch, name))
                    check(data, targets=name == "targets_file")
                ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides([line]), scratch)
        if errors:  # a wrong value in any job: refused before anything is written, as for a single run
            fail(errors[0])
    for note in notes:  # once for the sweep, not in every job's log
        log.warning(note)
    return target


def refuse_a_value_twice(key: str, given: str | None, values: dict[str, object]) -> None:
    """A swept number written two ways (`intensity=1,1.0,2`): two jobs of one setting, which ensemble.csv
    pooled as twice the replicates (n=4 where effects.csv paired 2). Refused before the sweep starts."""
    seen: dict[object, str] = {}
    for line, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            text = line.split("=", 1)[1]
            if value in seen:
                raise ConfigError(key, given, f"each value once: {seen[value]} and {text} are the same setting")
            seen[value] = text


def refuse_drawn_overrides(cfg: RunConfig, keys: list[str]) -> None:
    """A sweep that sets `draw` and a setting its joint draw replaces: refused before it starts, as each
    of its jobs would be (sim.studies.uncertainty.draw_given)."""
    if cfg.draw is not None:
        from .studies.uncertainty import draw_given

        draw_given(cfg, keys)


def refuse_a_folder_of_other_results(sweep_dir: Path) -> None:
    """A sweep run into a finished run's or a study's folder, or into a folder of the user's own files
    with no sweep in it, wrote its job folders and tables among them (a runs.csv overwritten, a run
    folder that no longer verifies): refused in one line, as a single run refuses a folder that is not
    empty. A sweep's own folder (one of its records, or job folders) is resumed as before."""
    from .aggregate import TABLES_MANIFEST
    from .results import PROGRESS_FILE, refuse_inside_results, single_runs

    refuse_inside_results(sweep_dir, "hydra.sweep.dir")  # inside a finished folder or another sweep's
    try:
        entries = list(sweep_dir.iterdir())
    except OSError:  # not there yet (or not a folder: Hydra's own error follows)
        return
    if not entries:
        return
    if (sweep_dir / COMPLETE_MARKER).exists() or (sweep_dir / "manifest.json").exists():
        what = "a finished run's or a study's folder"
    elif any((sweep_dir / name).exists() for name in ("multirun.yaml", PROGRESS_FILE, TABLES_MANIFEST)):
        return  # a sweep's own (its job folders are not read: a resumed sweep may have thousands)
    elif singles := single_runs(sweep_dir):  # results/ itself, or runs gathered by hand (aggregate refuses them)
        what = f"a folder of single runs ({singles[0]}{', ...' if len(singles) > 1 else ''})"
    else:
        visible = sorted(e.name for e in entries if not e.name.startswith("."))
        if not visible or any(_job_like(sweep_dir / name) for name in visible):
            return
        what = f"a folder of other files ({', '.join(visible[:3])}{', ...' if len(visible) > 3 else ''})"
    raise ConfigError("hydra.sweep.dir", str(sweep_dir), f"an empty or new folder, or a sweep's own: it is {what}, "
                      "which the sweep's job folders and tables would be written among")


def _job_like(path: Path) -> bool:
    """A sweep's job folder: named by its settings (`key=value,...`), finished, failed, or made and not
    yet written (Hydra makes it first)."""
    try:
        return path.is_dir() and ("=" in path.name or (path / COMPLETE_MARKER).exists()
                                  or (path / FAILED_MARKER).exists() or not any(path.iterdir()))
    except OSError:
        return False


def refuse_another_sweep(sweep_dir: Path, given: list, parser) -> None:
    """A sweep re-run into a folder resumes it, and more values of its keys extend it. Run into the
    folder of another sweep (a setting fixed at another value, or set in one and left at its default
    in the other), its jobs would be counted and tabled with that sweep's, and the effects would
    compare runs of configurations nobody asked to compare: refused in one line. Values are compared
    as Hydra reads them (1_000 is 1000). Hydra writes multirun.yaml for its basic sweeper only; an
    optimising sweeper's study is compared with the settings skillsim recorded when it started (a
    different study's trials had been tabled with the first's, and its optimization_results.yaml
    replaced), swept keys by name, as a grid's: re-running the same study reuses its finished trials."""
    old_file = sweep_dir / "multirun.yaml"
    try:
        old = parser.parse_overrides(as_typed_overrides(OmegaConf.load(old_file)))
    except Exception:  # noqa: BLE001 - no folder yet, not one a sweep wrote, or an older record: nothing to compare
        from .results import PROGRESS_FILE, progress_record

        old_file = sweep_dir / PROGRESS_FILE  # an optimising sweeper's study: its settings as skillsim recorded them
        try:
            old = parser.parse_overrides(progress_record(sweep_dir)["command"])
        except Exception:  # noqa: BLE001 - the same: nothing to compare
            return

    def shape(overrides) -> tuple[dict, set]:
        task = [o for o in overrides if not o.is_hydra_override()]  # as multirun.yaml records them
        fixed = {o.key_or_group: repr(o.value()) for o in task if not o.is_sweep_override()}
        return fixed, {o.key_or_group for o in task}

    (fixed_old, keys_old), (fixed_new, keys_new) = shape(old), shape(given)
    differ = sorted({k for k in set(fixed_old) & set(fixed_new) if fixed_old[k] != fixed_new[k]}
                    | (keys_old ^ keys_new))
    if differ:
        raise ConfigError("hydra.sweep.dir", str(sweep_dir), f"a folder of this sweep or a new one: it holds "
                          f"another sweep (it differs in {', '.join(differ)}; its command is in {old_file.name}); "
                          "re-run that sweep's command, or one with more values of its swept keys, to resume or "
                          "extend it")


def _with_value(data: dict, dotted: str, value) -> dict:
    """A copy of nested `data` with one dotted key set (only the dicts on its path are copied)."""
    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    out = dict(data)
    cur = out
    *path, last = dotted.split(".")
    for part in path:
        cur[part] = dict(cur.get(part) or {})
        cur = cur[part]
    cur[last] = value
    return out


@contextmanager
def _type_hints_cached():
    """Cache typing.get_type_hints in sim.config while a sweep's values are checked.

    `from_mapping` asks for the type hints of every dataclass on every call, which was two thirds of
    its time; the hints of a class do not change while the values are checked.
    """
    import functools

    from . import config as config_module

    original = getattr(config_module, "get_type_hints", None)
    if original is not None:
        config_module.get_type_hints = functools.lru_cache(maxsize=None)(original)
    try:
        yield
    finally:
        if original is not None:
            config_module.get_type_hints = original


def _planned_jobs(sweep_dir: Path) -> list[str]:
    """The job folders of this grid sweep, as it recorded them when it started ([] if it has not, or could
    not: an optimising sweeper's trials; an earlier sweep's record in the same folder is not this one's)."""
    return list(sweep.PLANNED or []) if sweep.SWEEP_DIR is not None and Path(sweep.SWEEP_DIR) == sweep_dir else []


def _interrupted() -> str:
    """The one-line message for Ctrl-C / SIGTERM: what was kept and how to go on."""
    d = sweep.SWEEP_DIR
    if d is None:
        return INTERRUPTED
    done = sum(not p.parent.name.startswith(".") for p in Path(d).glob(f"*/{COMPLETE_MARKER}"))  # not .partial-*
    # Parallel workers are stopped asynchronously: a job being written may still finish after this count.
    n = sweep.LAST_CANCELLED
    cancelled = "" if n is None else f"cancelled the {n} SLURM jobs not seen finished; "
    planned = _planned_jobs(Path(d))
    if planned and all((Path(d) / name / COMPLETE_MARKER).is_file() for name in planned):  # it said "run the rest"
        return (f"interrupted; {cancelled}all {len(planned)} jobs are finished in {d}; if its tables (runs.csv) are "
                f"missing or older than the jobs, write them with skillsim-aggregate {d}")
    return (f"interrupted; {cancelled}finished jobs are kept in {d} ({done} when stopped, and any a worker was "
            f"writing then); to run the rest, repeat the command with hydra.sweep.dir={d}")


def _flag_value(argv: list[str], names: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """The value of a Hydra flag (`--flag V` or `--flag=V`) and argv without it."""
    out, value, i = [], None, 0
    while i < len(argv):
        a = argv[i]
        name, eq, rest = a.partition("=")
        if name in names:
            if eq:
                value = rest
            elif i + 1 < len(argv):
                value = argv[i + 1]
                i += 1
            else:
                value = ""
        else:
            out.append(a)
        i += 1
    return value, out


def _route(argv: list[str]) -> list[str]:
    """Send Hydra's "rerun from a folder" route to skillsim-rerun; refuse a replaced primary config.

    `skillsim --config-path=RUN --config-name=config [hydra.run.dir=NEW]` is what a Hydra user tries to
    reproduce a run: it is the same as `skillsim-rerun RUN [hydra.run.dir=NEW]`. Any other
    `--config-path` would replace skillsim's own configs (schema, logging, folder rules) and end in an
    error after Hydra wrote files; it is refused before anything is written. Your own config groups
    go in a folder added with `--config-dir DIR`.
    """
    path, rest = _flag_value(argv, ("--config-path", "-cp"))
    name, rest2 = _flag_value(rest, ("--config-name", "-cn"))
    if path is not None:
        folder = Path(path.removeprefix("file://")).expanduser()
        if (folder / "manifest.json").is_file() and name in (None, "config", "config.yaml"):
            from .rerun import main as rerun_main

            log_route = "skillsim-rerun " + " ".join([path, *rest2])
            print(f"{PROG}: {path} holds manifest.json: running `{log_route}`", file=sys.stderr)
            rerun_main([path, *rest2])
            raise SystemExit(0)
        fail(ConfigError("--config-path", path, "a run folder to rerun (it holds manifest.json); to add "
                         "your own config groups use --config-dir DIR"), 2)
    if name is not None and name not in ("config", "config.yaml") and _flag_value(argv, ("--config-dir", "-cd"))[0] is None:
        fail(ConfigError("--config-name", name, "config, or a config of your own in a folder given "
                         "with --config-dir DIR"), 2)
    return argv


def _with_config_dir(argv: list[str], overrides: list[str] | None) -> list[str] | None:
    """Preflight overrides that see the folder added with --config-dir (as Hydra will)."""
    if overrides is None:
        return None
    cdir, _ = _flag_value(argv, ("--config-dir", "-cd"))
    if cdir is None:
        return overrides
    path = str(Path(cdir).expanduser().resolve()).replace("\\", "\\\\").replace("'", "\\'")
    extra = f"'file://{path}'"  # quoted: a folder name with a space or a non-ASCII letter is not a bare word
    given = next((o for o in overrides if o.startswith("hydra.searchpath=")), None)
    if given is None:
        return [*overrides, f"hydra.searchpath=[{extra}]"]
    inner = given.split("=", 1)[1].strip().strip("[]")
    return [o for o in overrides if o != given] + [f"hydra.searchpath=[{inner},{extra}]" if inner
                                                   else f"hydra.searchpath=[{extra}]"]


def _refuse_unknown_flags(argv: list[str]) -> None:
    """A misspelt flag (`--multirn`) or a flag's wrong value (`--cfg jobb`): Hydra's own parser, which reads
    the same command line next, printed its 8-line usage block before the error. Parsed here first by that
    parser, whose errors are one line (`one_line_errors`)."""
    from hydra._internal.utils import get_args_parser

    from .errors import one_line_errors

    def a_setting(flag: str, value: str) -> str | None:
        """`--region=x`, `--n_agents=300`: a setting (or a config group, or Hydra's node) given as a flag."""
        from .config import closest_setting, setting_names

        key = flag.lstrip("-")
        first = {name.split(".")[0] for name in setting_names()} | {"region", "scenario", "sweep", "experiments", "hydra"}
        if key.split(".")[0] not in first and closest_setting(key) is None:
            return None
        return f"a setting is KEY=VALUE without dashes: {key}={value or 'VALUE'}; skillsim --cfg job lists them"

    one_line_errors(get_args_parser(), PROG, a_setting).parse_args(argv)


def _printed_overrides(argv: list[str]) -> list[str] | None:
    """The overrides of `skillsim --cfg job|hydra|all [--resolve] [-p PKG] OVERRIDES` (no -m), else None."""
    shown, rest = _flag_value(argv, ("--cfg", "-c"))
    if shown is None:
        return None
    _, rest = _flag_value(rest, ("--package", "-p"))
    _, rest = _flag_value(rest, ("--config-dir", "-cd"))
    return _with_config_dir(argv, _overrides([a for a in rest if a != "--resolve"]))


@quiet_when_output_closed
def main(argv: list[str] | None = None) -> None:
    """`skillsim [overrides]`: run a forecast. With no arguments: Chongqing baseline to 2035."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--version"]:  # Hydra's answer named only Hydra's version
        from importlib import metadata

        def version(name: str) -> str:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:  # run from a source tree on PYTHONPATH, not installed
                return "(not installed)"
        print(f"skillsim {version('skillsim')} (Hydra {version('hydra-core')})")
        return
    signal.signal(signal.SIGTERM, stop_on_signal)
    if any(a.startswith("-") for a in argv) and "--version" not in argv:
        _refuse_unknown_flags(argv)
    typed = argv  # recorded in the manifest as typed
    # a key given twice: the last value, before any check (sim.single_run.cache_hit looks the composition up
    # under these words, so a check of the dropped value would refuse one route and not the other)
    argv = given_once(argv, HYDRA_FLAGS_WITH_VALUE)
    plain = _overrides(argv)  # overrides only, no Hydra flags: composed once (_run_single), and kept for a repeat
    _refuse_a_named_sweep_without_m(plain)
    swept = {o.lstrip("+").partition("=")[0] for o in _sweep_overrides(argv) or ()}
    for o in _sweep_overrides(argv) or ():  # a sweep's jobs went to the default sweep folder without a word
        key, _, value = o.lstrip("+").partition("=")
        if key == "hydra.run.dir" and "hydra.sweep.dir" not in swept:  # both given: a script's, for either mode
            fail(ConfigError("hydra.run.dir", value, "a single run's folder, without -m; a sweep's folder is "
                             f"hydra.sweep.dir (skillsim -m ... hydra.sweep.dir={value})"))
    _refuse_unknown_hydra_keys(plain if plain is not None else _sweep_overrides(argv))
    register_schema()
    argv = _route(argv)
    given_dir, bare = _flag_value(argv, ("--config-dir", "-cd"))  # what is left are overrides and Hydra's flags
    if given_dir is not None and (not given_dir.strip() or not Path(given_dir).expanduser().is_dir()):
        fail(ConfigError("--config-dir", given_dir, "an existing folder laid out like sim/conf "
                         "(for example my_conf/region/my_city.yaml)"))
    overrides = _with_config_dir(argv, _overrides(bare))
    direct = overrides is not None and bare == argv  # a plain run: composed and checked once (_run_single)
    from .history_reuse import KEEP_ENV  # set for a sweep whose jobs share no history

    previous_keep = os.environ.get(KEEP_ENV)
    if overrides is not None and not direct:
        preflight(overrides)  # with --config-dir: through hydra.main, which adds the folder as it does
    elif (printed := _printed_overrides(argv)) is not None:
        preflight(printed)  # --cfg job n_agents=-5: Hydra prints any config; a bad value is refused as a run's
    elif overrides is None and (sweep_overrides := _with_config_dir(argv, _sweep_overrides(bare))) is not None:
        sweep.quiet_optuna_notes()  # said in one line by the checks instead
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray's launcher: no usage report, whose start
        # probed the cloud metadata address and DNS (a user trial: nothing reaches the network at run time)
        from .studies.batch import drop_unusable_loky_count

        drop_unusable_loky_count()  # the joblib launcher counts the cores (n_jobs=-1) with it
        from . import fastsweep

        if (preflight_sweep(sweep_overrides) or "").endswith(".BasicSweeper"):
            fastsweep.use_fast_sweeps()
        from .history_reuse import sweep_may_share
        from .passes import use_compiled_in_workers

        use_compiled_in_workers()  # compiled once here if the cache is cold, not by every worker at once
        fastsweep.use_fast_jobs()  # joblib workers discover Hydra's plugins once, not for every job
        if not sweep_may_share(sweep_overrides):  # every job's history is its own: keep none (workers inherit)
            os.environ[KEEP_ENV] = "0"
    previous_argv, previous_cmd = sys.argv, os.environ.get(COMMAND_ENV)
    sys.argv = [sys.argv[0]] + argv
    # The manifest records the command as typed; sweep workers (other processes) inherit it.
    os.environ[COMMAND_ENV] = json.dumps([PROG, *typed], ensure_ascii=False)
    sweep.LAST_COUNTS = sweep.SWEEP_DIR = sweep.LAST_ERROR = sweep.LAST_CANCELLED = sweep.PLANNED = None
    try:
        with _hydra_errors_reach_us():
            _run_single(overrides) if direct else _hydra_task()
    except KeyboardInterrupt:  # a sweep (a single run handles its own), or Hydra before the task
        fail(_interrupted(), EXIT_INTERRUPTED)
    except SkillsimError as err:  # a launcher refusing the sweep's jobs (sim.cluster), in one line
        fail(err)
    except OSError as exc:  # Hydra creating a folder or writing multirun.yaml: disk, permissions, ...
        from hydra.errors import HydraException

        if type(exc) is ConnectionError and sweep.SWEEP_DIR is not None:  # Ray found no cluster at its address
            if not sweep.SWEEP_DIR_EXISTED:  # the folder this command made, with nothing of a job in it
                from .cluster.slurm import forget_new_sweep

                forget_new_sweep(sweep.SWEEP_DIR, None)
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            fail(f"config error: the sweep's launcher could not connect to its cluster ({first}); start the cluster, "
                 "or give its address (hydra.launcher.ray.init.address for Ray; leave it out to start Ray on this "
                 "machine); no job ran", 2)
        if isinstance(exc, HydraException):  # Hydra's MissingConfigException is an IOError: a config choice
            fail(explain(exc), 2)  # that does not exist (region=nowhere with --cfg job), not the disk
        fail(environment_fault(exc, exc.filename or "the output folder"))
    except ValueError as exc:  # Hydra refuses a combination of its flags (e.g. -m with --cfg)
        if _group_given_no_name(exc) is not None:  # region=null in a sweep: Hydra's, before any job
            fail(explain(exc), 2)
        if "No trials are completed yet" in str(exc) and sweep.SWEEP_DIR is not None:  # Optuna: every trial failed
            _tables_of_a_stopped_study()
            fail(f"no trial of the study finished: every job or its objective failed; the errors are in "
                 f"{sweep.SWEEP_DIR / 'runs.csv'} (columns error and objective_error)", EXIT_PARTIAL)
        if "can be specified" not in str(exc):
            if debug_enabled() or _user_wants_tracebacks:
                raise
            fail(internal_error(exc), EXIT_INTERNAL)
        fail(f"config error: {exc} (see skillsim --help)", 2)
    except Exception as exc:
        if caused_by_interrupt(exc):  # numba, compiling when Ctrl-C came, raised a RuntimeError over it
            fail(_interrupted(), EXIT_INTERRUPTED)
        if worker_killed(exc) and sweep.SWEEP_DIR is not None:  # joblib's pool stops every job with it
            _tables_of_a_stopped_study()
            fail(f"{WORKER_KILLED}; the sweep stopped: finished jobs are kept in {sweep.SWEEP_DIR}, and repeating "
                 f"the command with hydra.sweep.dir={sweep.SWEEP_DIR} runs the rest", EXIT_PARTIAL)
        if _grid_sampler_stopped_after_a_failure(exc) and sweep.SWEEP_DIR is not None:
            _tables_of_a_stopped_study()
            fail(f"Optuna's grid sampler stopped the study after a failed trial, every grid point having been "
                 f"tried, and Hydra's Optuna sweeper stopped with an error rather than ending the study, so it "
                 f"wrote no optimization_results.yaml and ran no further trial; the trials that ran, with their "
                 f"objective or why they have none, are in {sweep.SWEEP_DIR / 'runs.csv'}", EXIT_PARTIAL)
        if debug_enabled() or _user_wants_tracebacks:
            raise
        from hydra.errors import HydraException
        from omegaconf.errors import OmegaConfBaseException

        if isinstance(exc, (HydraException, OmegaConfBaseException)):
            fail(explain(exc), 2)
        fail(internal_error(exc), EXIT_INTERNAL)
    finally:
        if (fastsweep := sys.modules.get(f"{__package__}.fastsweep")) is not None:  # imported by Hydra's routes only
            fastsweep.restore()
        sys.argv = previous_argv
        for name, value in ((COMMAND_ENV, previous_cmd), (KEEP_ENV, previous_keep)):
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if sweep.LAST_ERROR is not None:  # the sweep ran, but its tables could not be built
        fail(sweep.LAST_ERROR)
    counts = sweep.LAST_COUNTS
    if counts:
        from .aggregate import exit_code as sweep_exit_code

        code = sweep_exit_code(counts)
        if code == EXIT_OUTPUT:
            fail(f"{counts['faults']} of {sum(counts[k] for k in ('ok', 'failed', 'running', 'missing'))} jobs "
                 f"could not write their results; the first: {counts['first_fault']}", EXIT_OUTPUT)
        if code:
            raise SystemExit(code)


def console() -> None:
    """`skillsim` (and `python -m sim`) through Hydra, for every command but a plain run found in the cache
    (sim.single_run.console, the command's entry, sends those there): `main`, then the process ends at once.

    Once the run folder is written and its last line logged, the interpreter's own teardown (freeing
    some 500 modules one by one) took 0.1-0.15 s, a tenth of a default run. The exit functions still
    run (logging's flush, those of Hydra and joblib); only the teardown is skipped, and only when
    nothing else may want the process afterwards (`sim.single_run.may_end_at_once`). An unexpected exception ends
    the normal way, with its traceback."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    _end_idle_workers()
    exit_now(code)


def _end_idle_workers() -> None:
    """End the joblib workers a sweep leaves waiting. loky keeps them for the process's next
    Parallel call, for up to 300 s; the command is over, so at exit the interpreter would wait for
    them to stop one by one and then tear itself down with its threads still alive (0.92 s from a
    sweep's last line to the process's end, against 0.10 s; benchmarks/README.md, ninth step).
    Killing them is safe here: every job has returned and its folder was written atomically (an
    interrupted sweep's workers are being stopped anyway)."""
    module = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(module, "_executor", None)
    if executor is not None:
        try:
            if hasattr(executor, "terminate"):  # joblib's executor: also removes its temporary folders
                executor.terminate(kill_workers=True)
            else:
                executor.shutdown(wait=True, kill_workers=True)
        except Exception:  # ending early is only a saving: the normal exit stops them as before
            pass
    if sweep.SWEEP_DIR is not None:  # an interrupted sweep: the folders its killed workers were writing
        sweep.remove_partials(Path(sweep.SWEEP_DIR))


_user_wants_tracebacks = False


@contextmanager
def _hydra_errors_reach_us():
    """Let exceptions from Hydra's own steps (making folders, writing multirun.yaml) reach `main`.

    Hydra prints them as a trimmed traceback and exits 1 unless HYDRA_FULL_ERROR is set; `main` turns
    them into one line with a documented exit code instead. A user who set HYDRA_FULL_ERROR or
    SKILLSIM_DEBUG gets the traceback.
    """
    global _user_wants_tracebacks
    before = os.environ.get("HYDRA_FULL_ERROR")
    _user_wants_tracebacks = before not in (None, "", "0")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


def compose_config(overrides: list[str]) -> RunConfig:
    """The checked RunConfig that `skillsim OVERRIDES` would run (for tools built on the CLI's configs)."""
    from hydra import compose, initialize_config_dir

    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_schema()
    _clear_hydra()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg, _ = config_from_hydra(compose(config_name="config", overrides=overrides, return_hydra_config=True))
    except (HydraException, OmegaConfBaseException, yaml.YAMLError) as exc:  # an unknown key, a wrong type,
        raise UserConfigError(explain(exc)) from None  # a hand-edited file that is not YAML: one line
    except ValueError as exc:
        if _group_given_no_name(exc) is None:
            raise
        raise UserConfigError(explain(exc)) from None  # region=null
    finally:
        _clear_hydra()
    return cfg


class UserConfigError(SkillsimError):
    """An override the composition refused, already said in one line (by `explain`)."""

    exit_code = 2
