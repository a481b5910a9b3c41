"""The uncertain inputs of a study (sensitivity analysis, scenario discovery), each with a range, and
how a point of the input space becomes a RunConfig.

Three groups, by default all of them:
- `parameters`: the calibrated behavioural parameters (sim.studies.calibrate.FREE). Their range is the
  5%-95% spread of the calibration ensemble when it exists (each sampled independently: the ensemble's
  correlations are not kept), else their calibration bounds. A point sets them on the prior config as
  the calibration does; the ones not varied stay at the fitted values.
- `structural`: the region preset's structural inputs with their documented ranges (`region.structural`).
- `levers`: the three lever intensities, 0-3 times the status quo (each lever switched on).

And one more, chosen by name only (`inputs=assumptions`, or with others: `inputs=parameters,assumptions`):
- `assumptions`: the numeric assumptions without a source, with the ranges of `config.ASSUMPTION_RANGES`;
  the calibration ensemble draws them (so the forecast's bands carry them), and this group says how
  much each one moves a figure.

`input.KEY=LO:HI` adds or re-ranges one input (any numeric config key, a parameter name, or
`levers.NAME.intensity`); `inputs=levers,structural` chooses groups. `inputs_file=PATH` does both from a
YAML file (`read_inputs_file`), so that a config, not only a command line, chooses the inputs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..config import RunConfig, value_at, whole_number_field, with_number
from ..errors import ConfigError, SkillsimError

GROUPS = ("parameters", "structural", "levers")  # a study's inputs when none are chosen
#: every group `inputs=` takes: also the numeric assumptions without a source (config.ASSUMPTION_RANGES),
#: which the calibration ensemble also draws; chosen by name only (inputs=assumptions)
ALL_GROUPS = GROUPS + ("assumptions",)
LEVER_RANGE = (0.0, 3.0)


@dataclass(frozen=True)
class Input:
    name: str  # a FREE parameter name or a dotted config key
    lo: float
    hi: float
    group: str  # parameters, structural, levers or config

    def __post_init__(self):
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.lo < self.hi):
            raise ConfigError(f"input.{self.name}", f"{self.lo}:{self.hi}", "a range LO:HI with LO < HI")


def parameter_ranges() -> dict[str, tuple[float, float]]:
    """The 5%-95% spread of the calibration ensemble per parameter, or the calibration bounds."""
    from .calibrate import FREE
    from .uncertainty import load_ensemble

    try:
        ens = load_ensemble()
        return {p.name: (float(ens[p.name].quantile(0.05)), float(ens[p.name].quantile(0.95))) for p in FREE}
    except SkillsimError:
        return {p.name: (p.lo, p.hi) for p in FREE}


def default_inputs(cfg: RunConfig, groups: tuple[str, ...] = GROUPS) -> list[Input]:
    out: list[Input] = []
    if "parameters" in groups:
        out += [Input(name, lo, hi, "parameters") for name, (lo, hi) in parameter_ranges().items() if lo < hi]
    if "structural" in groups:
        out += [Input(k, float(r[0]), float(r[1]), "structural") for k, r in cfg.region.structural.items()]
    if "levers" in groups:
        out += [Input(f"levers.{n}.intensity", *LEVER_RANGE, "levers") for n in ("training", "competition", "studio")]
    if "assumptions" in groups:  # a lever's own assumptions only where the lever is on (off, it ignores them)
        from ..config import ASSUMPTION_RANGES

        out += [Input(key, lo, hi, "assumptions") for key, (lo, hi, _) in ASSUMPTION_RANGES.items()
                if not key.startswith("levers.") or getattr(cfg.levers, key.split(".")[1]).enabled]
    return out


def _numeric(cfg: RunConfig, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if not dataclasses.is_dataclass(node) or not hasattr(node, part):
            return False
        node = getattr(node, part)
    return isinstance(node, (int, float)) and not isinstance(node, bool)


def parse_input(cfg: RunConfig, key: str, value: str) -> Input:
    """`input.KEY=LO:HI` as an Input; a one-line error for an unknown key or a bad range."""
    name = key[len("input."):]
    lo_text, sep, hi_text = value.partition(":")
    try:
        lo, hi = float(lo_text), float(hi_text)
    except ValueError:
        raise ConfigError(key, value, "a range LO:HI of two numbers") from None
    if not sep:
        raise ConfigError(key, value, "a range LO:HI of two numbers")
    return make_input(cfg, name, lo, hi, key, value)


def make_input(cfg: RunConfig, name: str, lo: float, hi: float, field: str, value: object) -> Input:
    """The Input of a key and range, its group found from the key; errors name `field` (the option or
    the file's entry the key came from)."""
    from .calibrate import FREE

    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(field, value, "a range of two numbers LO, HI with LO < HI")
    if name in ("seed", "replicate"):  # the study's noise, kept the same at every point (common random numbers)
        raise ConfigError(field, value, "an input of the model; seed and replicate are the study's noise (it sets "
                                        "them: replicates=, and seed= for all runs)")
    # the run's size or draw were accepted as inputs (n_agents recorded as 400.00000000000006)
    if name in ("n_agents", "draw"):
        raise ConfigError(field, value, "an input of the model, not the run's size or draw (the study sets "
                          "those: n_agents= for all runs, and draw= for the point studied)")
    if name in {p.name for p in FREE}:
        return Input(name, lo, hi, "parameters")
    if name in cfg.region.structural or f"region.{name}" in cfg.region.structural:
        return Input(name if name.startswith("region.") else f"region.{name}", lo, hi, "structural")
    if name.startswith("levers.") and name.endswith(".intensity"):
        if not _numeric(cfg, name):
            raise ConfigError(field, value, "levers.training|competition|studio.intensity")
        return Input(name, lo, hi, "levers")
    if not _numeric(cfg, name):
        raise ConfigError(field, value, "a calibrated parameter, a structural input or a numeric config key")
    return Input(name, lo, hi, "config")


def _flatten(node: dict, prefix: str = "", field: str = "inputs_file") -> dict:
    """Nested mappings as dotted keys (`levers: {training: {intensity: ..}}` is `levers.training.intensity`).
    A key given twice (flat and nested) is refused: one of the two ranges was dropped without a word."""
    out = {}
    for k, v in node.items():
        key = f"{prefix}{k}"
        for name, value in (_flatten(v, key + ".", field) if isinstance(v, dict) else {key: v}).items():
            if name in out:
                raise ConfigError(f"{field}: {name}", value, f"one entry per key (it is also given as {out[name]})")
            out[name] = value
    return out


def _yaml_without_repeated_keys(text: str):
    """The YAML document, refusing a key repeated in one mapping (PyYAML keeps the last one silently)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        own = [(k, v) for k, v in node.value if k.tag != "tag:yaml.org,2002:merge"]  # `<<: *x` merges, once
        keys = [loader.construct_object(k, deep=deep) for k, _ in own]
        again = next((i for i, k in enumerate(keys) if k in keys[:i]), None)
        if again is not None:
            first = own[keys.index(keys[again])][0].start_mark.line + 1
            raise ConfigError(f"{keys[again]}", loader.construct_object(own[again][1], deep=True),
                              f"one entry per key (line {first} gives it too)")
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader with one constructor replaced


def read_inputs_file(cfg: RunConfig, path: str) -> tuple[tuple[str, ...] | None, list[Input], dict]:
    """`inputs_file=PATH`: a YAML mapping of config keys (dotted, or nested mappings) to [LO, HI], with an
    optional `groups:` list (as `inputs=`). Returns the groups (None if not given), the inputs and a
    record of the file (its path, text and what was read from it) for the manifest, so that the study's
    folder says what it ran even when the file is gone. Every mistake is a
    one-line error naming the file and the entry."""
    from pathlib import Path

    import yaml

    from .options import groups as group_list

    what = "a YAML mapping of config keys to [LO, HI] (and an optional groups: list)"
    try:
        text = Path(path).read_text(encoding="utf-8")
        content = _yaml_without_repeated_keys(text)
    except ConfigError as err:
        raise ConfigError(f"inputs_file {path}: {err.field}", err.value, err.allowed) from None
    except OSError as exc:
        raise ConfigError("inputs_file", path, f"a readable file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (it does not parse at line {mark.line + 1})" if mark is not None else " (it does not parse)"
        raise ConfigError("inputs_file", path, what + where) from None
    if not isinstance(content, dict) or not content:
        raise ConfigError("inputs_file", path, what)
    content = {str(k): v for k, v in content.items()}
    chosen = None
    if "groups" in content:
        g = content["groups"]
        listed = ",".join(map(str, g)) if isinstance(g, list) else str(g)
        if g is None or g == "" or (isinstance(g, str) and g.strip().lower() == "none"):  # `groups:` left blank
            raise ConfigError(f"inputs_file {path}: groups", g, "a list of groups, such as [levers, structural], "
                              "or [] for only the file's keys")
        chosen = () if g == [] else group_list(f"inputs_file {path}: groups", listed, ALL_GROUPS)  # []: the file's keys only
    out = []
    for name, rng in _flatten({k: v for k, v in content.items() if k != "groups"}, field=f"inputs_file {path}").items():
        field = f"inputs_file {path}: {name}"
        if not (isinstance(rng, list) and len(rng) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rng)):
            raise ConfigError(field, rng, "a range [LO, HI] of two numbers with LO < HI")
        out.append(make_input(cfg, name, float(rng[0]), float(rng[1]), field, rng))
    record = {"path": str(path), "text": text, "groups": list(chosen) if chosen is not None else None,
              "inputs": {i.name: [i.lo, i.hi] for i in out}}
    return chosen, out, record


def choose(cfg: RunConfig, groups: tuple[str, ...], extra: list[Input]) -> list[Input]:
    """The default inputs of the groups, with `extra` added or replacing the one of the same name."""
    chosen = {i.name: i for i in default_inputs(cfg, groups)}
    for i in extra:
        chosen[i.name] = i
    return list(chosen.values())


def check_range_ends(cfg: RunConfig, given: list[Input], where: dict[int, str] | None = None) -> None:
    """Each end of a range the user gave is an allowed value of its key: checked before any run, so that
    a study refuses `input.behaviour.leave_share=0.5:1.5` in one line naming the range, rather than
    failing in its first chunk on a sampled value the user never typed. Only a key's own limits are
    checked here: one that holds between keys (retirement.male_from <= male_to) depends on where the
    other keys are sampled, and is left to the runs. `where`: the error's field for an input (by id)
    that did not come from the command line (an inputs file's entry); else `input.KEY`."""
    from ..config import validate

    for i in given:
        for end in (i.lo, i.hi):
            try:
                validate(configure(cfg, [i], np.array([end])))
            except ConfigError as err:
                # a calibrated parameter sets keys of its own (pass_prob_senior: behaviour.pass_prob[2]): a value
                # refused there is this one's; a rule over a whole list (two entrant shares summing to at most 1)
                # holds between parameters, and depends on where the others are sampled
                if err.field != i.name and (i.group != "parameters" or isinstance(err.value, (list, tuple))):
                    continue
                sets = "" if err.field == i.name else f"{i.name} = {end:g} sets "
                raise ConfigError((where or {}).get(id(i), f"input.{i.name}"), f"{i.lo:g}:{i.hi:g}",
                                  f"a range whose ends are allowed values ({sets}{err.field} = {err.value}: "
                                  f"{err.allowed})") from None


def keys_set(cfg: RunConfig, i: Input) -> set[str]:
    """The config keys the input sets: those whose values differ between the two ends of its range (a
    calibrated parameter sets keys of its own: mastery_scale behaviour.mastery_months)."""
    from ..config import to_dict

    lo, hi = (_flatten(to_dict(configure(cfg, [i], np.array([end])))) for end in (i.lo, i.hi))
    return {k for k in lo if lo[k] != hi.get(k)} | ({i.name} if i.group != "parameters" else set())


def warn_fixed_and_varied(cfg: RunConfig, inputs: list[Input], overrides: list[str], prog: str,
                          nominal: bool = True) -> list[str]:
    """A setting given on the command line that the study also varies (`levers.training.intensity=2` with
    the levers group on) sets only the nominal point (`nominal`: sensitivity's inputs.csv and noise runs)
    or nothing (discovery, which has none): every design point varies it over its range. A user who meant
    it held there got a study that varied it, without a word (a user trial); said in a warning, with how
    to hold it. Returns the warnings."""
    import logging

    varied: dict[str, Input] = {}
    for i in inputs:
        for key in keys_set(cfg, i):
            varied.setdefault(key, i)
    said = []
    for line in overrides:
        key, _, value = line.partition("=")
        i = varied.get(key.lstrip("+~"))
        if i is None:
            continue
        does = "sets the nominal point (inputs.csv, noise.csv) only" if nominal else "is overridden"
        part = "it, in whole or in part," if i.group == "parameters" else "it"  # sit_rate_low: two of five values
        said.append(f"{key.lstrip('+~')}={value} {does}: {prog} sets {part} at every design point through input "
                    f"{i.name}, varied over [{i.lo:g}, {i.hi:g}] (group {i.group}); to hold it at {value}, leave "
                    f"{i.name} out of the inputs (inputs= without {i.group}, or an inputs_file)")
        logging.getLogger("skillsim").warning("%s", said[-1])
    return said


def dropped_by_names(cfg: RunConfig, names: list[str]) -> tuple[str, list, list] | None:
    """The first calibrated field of cfg that setting the calibrated parameters `names` cannot give back
    (key, cfg's value, the value the names give), or None. `configure` starts those fields from their
    prior values and keeps the others at what cfg runs with, so a field given whole that the names express
    only in part (pass_prob beside mastery_scale: two of its five values are the prior's) would be
    replaced at every point without a word. The round trip puts each name at cfg's own value, so only
    what the names cannot express shows; the calibration's files hold 6 decimals, the scaled months 3."""
    from ..config import ASSUMED
    from .calibrate import FREE

    free = {p.name: p for p in FREE}
    now = fitted_values(cfg)
    inputs = [Input(n, min(free[n].lo, now[n]), max(free[n].hi, now[n]) + 1e-9, "parameters") for n in names]
    probe = configure(cfg, inputs, np.array([now[n] for n in names]))
    for key in ASSUMED:
        was, back = (np.asarray(value_at(c, key), dtype=float) for c in (cfg, probe))
        tol = (1e-3 if key == "behaviour.mastery_months" else 2e-6) * max(1.0, float(np.max(np.abs(was))))
        if was.shape != back.shape or np.max(np.abs(was - back)) > tol:
            return key, was.tolist(), back.tolist()
    return None


def refuse_what_the_inputs_would_drop(cfg: RunConfig, inputs: list[Input], prog: str) -> None:
    """A study varying calibrated parameters replaces, at every point, what the config holds of their
    fields and they cannot express (`behaviour.pass_prob=[...]` with mastery_scale varied lost two of its
    values without a word, a review): refused before any run, naming the field."""
    names = [i.name for i in inputs if i.group == "parameters"]
    lost = dropped_by_names(cfg, names) if names else None
    if lost is not None:
        key, was, back = lost
        raise ConfigError(key, was, f"a value the varied calibrated parameters ({', '.join(names)}) can give back: "
                                    f"{prog} sets {key} from its prior value at every point ({back} at this config's "
                                    f"values); leave {key} as the preset has it, or the parameters out of the inputs "
                                    "(inputs= without parameters)")


def whole_number(i: Input) -> bool:
    """A setting that takes whole numbers (months, events): a run rounds a drawn value to it."""
    return i.group in ("config", "assumptions") and whole_number_field(i.name)


def as_run(inputs: list[Input], X: np.ndarray) -> np.ndarray:
    """A design's points as the runs take them (`configure`), which design.csv records: each value inside
    its range exactly (a design's lo + (hi - lo) x 1 can overshoot hi in the last bit: 0.03900000000000001
    was recorded, and refused when given back to skillsim), and a whole-number setting at the whole number
    it ran with (3.333 credited months were recorded for runs of 3, and a discovery's box bounds fell between
    the values that ran). The indices of a sensitivity study are those of the model as a function of the
    sampled value, which such a setting rounds."""
    X = np.array(X, dtype=float, ndmin=2)
    for j, i in enumerate(inputs):
        X[:, j] = np.clip(X[:, j], i.lo, i.hi)
        if whole_number(i):
            X[:, j] = [int(round(v)) for v in X[:, j]]  # as with_number rounds it
    return X


def configure(cfg: RunConfig, inputs: list[Input], x: np.ndarray) -> RunConfig:
    """cfg at the point x (one value per input, in order)."""
    from .calibrate import FREE, apply, prior_config
    from .uncertainty import apply_structural

    # inside the ranges exactly, whole numbers where the setting takes them, as design.csv records them
    values = {i.name: float(v) for i, v in zip(inputs, as_run(inputs, np.asarray(x, dtype=float)[None, :])[0])}
    params = [i.name for i in inputs if i.group == "parameters"]
    if params:
        fitted = fitted_values(cfg)
        months = cfg.behaviour.mastery_months
        cfg = apply(prior_config(cfg), np.array([values.get(p.name, fitted[p.name]) for p in FREE]))
        if "mastery_scale" not in values:  # the rescaled months round differently in the last digit
            cfg = dataclasses.replace(cfg, behaviour=dataclasses.replace(cfg.behaviour, mastery_months=months))
    structural = {i.name: values[i.name] for i in inputs if i.group == "structural"}
    if structural:
        cfg = apply_structural(cfg, structural)
    for i in inputs:
        if i.group == "levers":
            name = i.name.split(".")[1]
            part = dataclasses.replace(getattr(cfg.levers, name), intensity=values[i.name])  # on: sensitivity.setup
            cfg = dataclasses.replace(cfg, levers=dataclasses.replace(cfg.levers, **{name: part}))
        elif i.group in ("config", "assumptions"):
            cfg = with_number(cfg, i.name, values[i.name])
    return cfg


def fitted_values(cfg: RunConfig) -> dict[str, float]:
    """The central value of each calibrated parameter, read off cfg (the scale of the months to
    mastery relative to the prior's, as the calibration applies it), so that the parameters not
    varied keep the values cfg runs with."""
    from .calibrate import FREE, prior_config

    prior = prior_config(cfg)
    out = {p.name: float(p.get(cfg)) for p in FREE}
    out["mastery_scale"] = cfg.behaviour.mastery_months[0] / prior.behaviour.mastery_months[0]
    return out
