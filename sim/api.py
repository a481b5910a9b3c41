"""The Python API: `simulate(...)`, an in-memory run that returns its outcomes, for experiment tools
(EMA Workbench, Optuna, SALib, notebooks) and for `WorkforceModel`'s Mesa-style keywords.

    >>> from sim import simulate
    >>> out = simulate("chongqing", training_intensity=2.0, n_agents=20000, end_year=2030)
    >>> out["high_skill_share"], out["spend_total"]

A call composes its config as `skillsim region=... scenario=... OVERRIDES` would, so the same
inputs give the same numbers as the command (tests/test_api.py). Composing with Hydra costs about a
quarter of a second, so it is done once per (region, scenario, config-group overrides) and cached;
every other setting (keyword parameters and dotted `key=value` overrides) is applied to the cached
composition and checked by `sim.config.from_mapping`, which names the field, the value and what is
allowed when a value is wrong. Nothing is written to disk.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

#: Flat keyword parameters (the Mesa way, e.g. for `mesa.batch_run` or an EMA model's levers) and
#: the config key each sets. Anything else: a dotted override, e.g. "behaviour.aptitude_sd=0.3".
PARAMETERS: dict[str, str] = {
    "end_year": "horizon.end_year",
    "start_year": "horizon.start_year",
    "n_agents": "n_agents",
    "seed": "seed",
    "replicate": "replicate",
    "draw": "draw",
    "training_enabled": "levers.training.enabled",
    "training_intensity": "levers.training.intensity",
    "training_allocation": "levers.training.allocation",
    "training_cost_per_place": "levers.training.cost_per_place",
    "competition_enabled": "levers.competition.enabled",
    "competition_intensity": "levers.competition.intensity",
    "competition_selection": "levers.competition.selection",
    "competition_events_per_year": "levers.competition.events_per_year",
    "competition_prize": "levers.competition.prize_per_promotion",
    "studio_enabled": "levers.studio.enabled",
    "studio_intensity": "levers.studio.intensity",
    "studio_members_per_studio": "levers.studio.members_per_studio",
    "studio_term_months": "levers.studio.term_months",
    "growth_per_year": "region.growth_per_year",
}

#: Config groups: choosing one changes which files are composed, so it is part of the cache key.
GROUPS = ("region", "scenario", "experiments", "sweep")


def _split(overrides: list[str]) -> tuple[tuple[str, ...], list[tuple[str, Any]]]:
    """Overrides that need Hydra (config groups, `+`/`~`, hydra keys) and dotted values (key, value)."""
    from .fastsweep import _parse

    from .errors import ConfigError

    structural, values = [], []
    for line in overrides:
        try:
            o = _parse(line)
        except Exception as exc:  # noqa: BLE001 - Hydra's parser: its message, in one line
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError("overrides", line, f"'key=value' as on the command line (it reads: {reason})") from None
        key = o.key_or_group
        if (o.is_add() or o.is_delete() or o.is_force_add() or key in GROUPS or key.startswith("hydra")
                or o.is_sweep_override() or o.package is not None):
            structural.append(line)
        else:
            values.append((key, o.value()))
    return tuple(structural), values


@lru_cache(maxsize=64)
def _composed(structural: tuple[str, ...]) -> dict:
    """The plain composed config (no hydra node) for these group choices, composed by Hydra once."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf, open_dict

    from .cli import CONFIG_DIR, EDGE_KEYS, check_preset, explain, refuse_listed_choices, register_schema
    from .errors import SkillsimError

    register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            composed = compose(config_name="config", overrides=list(structural), return_hydra_config=True)
            check_preset(composed)
            refuse_listed_choices(composed)  # scenario=[a,b]: Hydra's blend of both, refused as skillsim does
            with open_dict(composed):
                composed.pop("hydra")
            data = OmegaConf.to_container(composed, resolve=True)
    except SkillsimError:
        raise
    except Exception as exc:  # Hydra/OmegaConf: an unknown preset or group option, in one line
        raise SkillsimError(explain(exc)) from None
    finally:
        GlobalHydra.instance().clear()
    for key in EDGE_KEYS:
        data.pop(key, None)
    return data


def _set(data: dict, dotted: str, value: Any) -> None:
    """Set a dotted key as Hydra's override does: a mapping is merged into the mapping there (the preset's
    `region.structural` keeps the ranges not given; it was replaced, so the API ran other ranges than
    `skillsim` with the same override), anything else replaces it."""
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}  # an unknown key: from_mapping names it
        node = node[part]
    node[parts[-1]] = _merged(node.get(parts[-1]), value)


def _merged(old: Any, new: Any) -> Any:
    """`new` merged into `old` as OmegaConf merges (mappings key by key, recursively; anything else,
    lists included, replaced)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{k: _merged(old.get(k), v) for k, v in new.items()}}
    return new


def _unknown_keyword(name: str, value: Any):
    """One message for a keyword that is neither in PARAMETERS nor a dotted key, from simulate, compose,
    apply and WorkforceModel alike, with the nearest keyword: dotted keys are keywords too (EMA's levers)."""
    import difflib

    from .errors import ConfigError

    near = difflib.get_close_matches(name, [*PARAMETERS, *_calibrated_names()], n=1, cutoff=0.75)
    return ConfigError(name, value, (f"did you mean {near[0]}? " if near else "") + "a keyword of sim.api.PARAMETERS ("
                       + ", ".join(PARAMETERS) + "), a calibrated parameter (" + ", ".join(_calibrated_names())
                       + ") or a dotted config key (levers.training.intensity=2.0)")


def _calibrated_names() -> tuple[str, ...]:
    """The calibrated parameters' names (sim.studies.calibrate.FREE: mastery_scale, exit_factor_high, ...),
    the names sensitivity analysis and scenario discovery report their inputs by."""
    from .studies.calibrate import FREE

    return tuple(p.name for p in FREE)


def _split_calibrated(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings, calibrated parameters given by name): a discovery box (mastery_scale in [1.41, 2.0]) can
    be run again through simulate, EMA or WorkforceModel by the names it is reported in."""
    plain = [k for k in params if k in PARAMETERS or "." in k]
    if len(plain) == len(params):
        return params, {}
    names = set(_calibrated_names())
    return ({k: v for k, v in params.items() if k not in names},
            {k: v for k, v in params.items() if k in names and v is not None})


def with_calibrated(cfg, values: dict[str, Any], given: list[str] = ()):
    """cfg with calibrated parameters set by name, as a sensitivity or discovery study sets them
    (sim.studies.inputs.configure: on the prior config, the others at the values cfg runs with; so
    mastery_scale scales the prior's months to mastery, 1 being the prior's); each within its calibration
    bounds, checked. A calibrated field cfg holds that the names cannot give back (pass_prob given whole,
    of which the names keep three values; months to mastery beside mastery_scale) would be dropped without
    a word (two reviews): refused, naming it (sim.studies.inputs.dropped_by_names); `given`, the config
    keys the call also set, says whether the user gave it or the config had it."""
    import numpy as np

    from .config import _float_text, validate
    from .errors import ConfigError
    from .studies.calibrate import FREE
    from .studies.inputs import Input, configure, dropped_by_names

    if not values:
        return cfg
    name = next(iter(values))
    if cfg.draw is not None:
        raise ConfigError(name, values[name], f"not with draw={cfg.draw}: a draw sets every calibrated parameter "
                                              "(give one or the other)")
    lost = dropped_by_names(cfg, list(values))
    if lost is not None:
        key, was, back = lost
        how = "given" if any(k == key or key.startswith(k + ".") for k in given) else "in the config"
        raise ConfigError(name, values[name], f"not with {key} = {was} {how}: the calibrated parameters by name set "
                                              f"it from its prior value ({back} at this config's values of them); give "
                                              "the key's values or the names, not both")
    free = {p.name: p for p in FREE}
    inputs, x = [], []
    for name, value in values.items():
        p = free[name]
        if isinstance(value, str) and _float_text(value) is not None:
            value = _float_text(value)  # as a setting's number written as text is read
        number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not (number and p.lo <= float(value) <= p.hi):
            raise ConfigError(name, value, f"a number in [{p.lo:g}, {p.hi:g}], the calibration's bounds ({p.why})")
        inputs.append(Input(name, p.lo, p.hi, "parameters"))
        x.append(float(value))
    return validate(configure(cfg, inputs, np.array(x)))


def _given_once(params: dict[str, Any]) -> None:
    """A setting given twice, by its keyword and by its config key (training_intensity=3 and
    levers.training.intensity=2), or the same key twice: the one given last won without a word (a user
    trial, easy with EMA's constants beside its levers); refused as overrides=[...] refuses it."""
    from .errors import ConfigError

    seen: dict[str, tuple[str, Any]] = {}
    for name, value in params.items():
        if value is None:
            continue
        key = PARAMETERS.get(name, name)
        for other, (other_name, other_value) in seen.items():  # the same key, or a node holding it
            if _overlap(key, value, other, other_value):
                raise ConfigError(name, value, f"given once: {other_name} also sets {other}; drop one of them")
        seen[key] = (name, value)


def _overlap(key: str, value: Any, other: str, other_value: Any) -> bool:
    """Whether setting `key` to `value` and `other` to `other_value` set the same field: the same key, or
    one a node (a mapping) that holds the other (levers.training={intensity: 2} beside
    levers.training.intensity; not levers.training={enabled: true})."""
    def holds(node: Any, path: str) -> bool:
        for part in path.split("."):
            if not (isinstance(node, dict) or hasattr(node, "keys")) or part not in node:
                return False
            node = node[part]
        return True

    if key == other:
        return True
    if other.startswith(key + "."):
        return holds(value, other[len(key) + 1:])
    if key.startswith(other + "."):
        return holds(other_value, key[len(other) + 1:])
    return False


def compose(region: str | None = None, scenario: str | None = None, overrides: list[str] | tuple = (),
            **params: Any):
    """The checked RunConfig that `skillsim region=R scenario=S OVERRIDES` runs, with the keyword
    parameters (PARAMETERS) applied on top. The Hydra composition is cached per group choice."""
    from .config import from_mapping
    from .errors import ConfigError
    from .sources import DEFAULT_TARGETS, load_targets

    for name, value in (("region", region), ("scenario", scenario)):
        if value is not None and (not isinstance(value, str) or not value.replace("_", "").replace("-", "").isalnum()):
            raise ConfigError(name, value, "a preset name (dotted settings go in overrides=[...])")
    if "rng" in params:
        raise _no_rng(params["rng"])
    params, calibrated = _split_calibrated(params)
    unknown = [k for k in params if k not in PARAMETERS and "." not in k]
    if unknown:
        raise _unknown_keyword(unknown[0], params[unknown[0]])
    _given_once(params)
    if isinstance(overrides, (str, bytes)) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError("overrides", overrides, "a list of 'key=value' strings, e.g. "
                          "overrides=['levers.training.intensity=2']")
    lines = list(overrides)
    for line in lines:
        if "=" not in line and not line.startswith("~"):  # `~key` (delete) is Hydra's; the rest needs a value
            raise ConfigError("overrides", line, "'key=value' (e.g. 'behaviour.aptitude_sd=0.3')")
    if region is not None:
        lines.insert(0, f"region={region}")
    if scenario is not None:
        lines.insert(1 if region is not None else 0, f"scenario={scenario}")
    structural, values = _split(lines)
    for name, value in params.items():  # the same key twice: which one wins would be a silent choice
        key = PARAMETERS.get(name, name)
        for other, other_value in values:
            if value is not None and _overlap(key, value, other, other_value):
                raise ConfigError(name, value, f"given once: overrides also set {max(key, other, key=len)}; "
                                               "drop one of them")
    data = copy.deepcopy(_composed(structural))
    for key, value in values:
        _set(data, key, value)
    from .cli import empty_given_mappings

    empty_given_mappings(data, lines)  # region.structural={} empties it, as skillsim's does
    for name, value in params.items():
        if value is not None:  # a PARAMETERS keyword, or a dotted key given as a keyword (EMA, SALib)
            _set(data, PARAMETERS.get(name, name), value)
    cfg = from_mapping(data)
    load_targets(cfg.targets_file or DEFAULT_TARGETS)  # cached after the first call
    if note := cfg.switched_off_note():  # an intensity for a lever the scenario switched off: it would do nothing
        off = tuple(n for n in ("training", "competition", "studio") if not getattr(cfg.levers, n).enabled)
        if (cfg.scenario, off) not in _SAID_OFF:  # once per scenario and levers (an EMA design's every value)
            _SAID_OFF.add((cfg.scenario, off))
            import warnings

            warnings.warn(note, UserWarning, stacklevel=3)
    if cfg.draw is not None:  # parameter and structural uncertainty: one joint draw (as skillsim does)
        from .studies.uncertainty import draw_given

        cfg = draw_given(cfg, [key for key, _ in values] + [PARAMETERS.get(name, name) for name, value
                                                             in params.items() if value is not None])
    return with_calibrated(cfg, calibrated, [key for key, _ in values] + [PARAMETERS.get(name, name) for name, value
                                                                           in params.items() if value is not None])


def outcomes(model) -> dict[str, float]:
    """Flat outcomes of a finished run (sim.results.summarise): the end state (December of the end
    year: high_skill_share, workers, level_0..7, ...), the end year's mean income figures
    (income_mean, income_median, income_p10, income_p90, middle_income_share), spend by lever and
    funder summed over the horizon (spend_training_government, ..., spend_total) and in the end year
    (..._end_year), and the end year's flows (promotions_certification_end_year, ...)."""
    from .results import summarise

    s = summarise(model.series(), model.cfg)
    out: dict[str, float] = {k: v for k, v in s["at_end"].items() if k != "date"}
    out.update(s["target_year_mean"])
    out.update({f"spend_{k}": v for k, v in s["spend_cumulative"].items()})
    out.update({f"spend_{k}_end_year": v for k, v in s["spend_target_year"].items()})
    out.update({f"{k}_end_year": v for k, v in s["target_year_flows"].items()})
    return out


_SAID_OFF: set = set()  # (scenario, levers off) whose useless intensities compose() has warned of


def simulate(region: str | None = None, scenario: str | None = None, overrides: list[str] | tuple = (), *,
             series: bool = False, **params: Any) -> dict[str, Any]:
    """Run one forecast in memory and return its outcomes (no run folder).

    `region`, `scenario`: presets as in `skillsim region=... scenario=...` (defaults: the config's,
    Chongqing baseline); `overrides`: dotted `key=value` strings as on the command line; keyword
    parameters: see `sim.api.PARAMETERS` (n_agents, seed, replicate, end_year, the lever settings...),
    and dotted config keys passed as keywords (`simulate(**{"behaviour.aptitude_sd": 0.4})`), so that
    `simulate` is itself a model function for EMA Workbench or SALib.
    Returns a flat dict of floats: `high_skill_share`, `income_mean`, `income_median`, `income_p10`,
    `income_p90`, the level counts, spend by lever and funder, cumulative over the forecast (`spend_training_government`,
    ..., `spend_total`), the end year's spend and flows; with `series=True` also `series`, the monthly
    series as a DataFrame (as `series.csv`). Same inputs, same numbers as `skillsim`.
    `scenario_preset` and `region_preset` are the same as `scenario` and `region`, for EMA Workbench,
    whose experiments table keeps a column `scenario` of its own (a parameter of that name is refused).
    """
    from .model import WorkforceModel

    for alias, name in (("scenario_preset", "scenario"), ("region_preset", "region")):
        given = params.pop(alias, None)
        if given is not None:
            if (scenario if name == "scenario" else region) is not None:
                from .errors import ConfigError

                raise ConfigError(alias, given, f"one of {alias} and {name}, not both: they are the same setting")
            if name == "scenario":
                scenario = given
            else:
                region = given
    cfg = compose(region, scenario, overrides, **params)
    model = WorkforceModel(cfg).run()
    out: dict[str, Any] = outcomes(model)
    out["seed"] = model.run_seed
    if series:
        out["series"] = model.series()
    return out


def _no_rng(value):
    """Mesa 3's own keyword, refused with what to give instead."""
    from .errors import ConfigError

    return ConfigError("rng", value, "not a keyword here: give seed=N (skillsim draws one random stream per "
                       "mechanism from seed and replicate)")


def apply(cfg, **params: Any):
    """`cfg` with keyword parameters (PARAMETERS, or dotted keys) set, checked."""
    from .config import from_mapping, to_dict

    data = to_dict(cfg)
    params, calibrated = _split_calibrated(params)
    for name, value in params.items():
        if name == "rng":
            raise _no_rng(value)
        if name not in PARAMETERS and "." not in name:
            raise _unknown_keyword(name, value)
    _given_once(params)
    for name, value in params.items():
        if value is not None:
            _set(data, PARAMETERS.get(name, name), value)
    cfg = from_mapping(data)
    if params.get("draw") is not None:  # as compose applies it: WorkforceModel(draw=3) (Mesa's batch_run over
        from .studies.uncertainty import draw_given  # draw) ran the central values

        cfg = draw_given(cfg, [PARAMETERS.get(name, name) for name, value in params.items() if value is not None])
    return with_calibrated(cfg, calibrated, [PARAMETERS.get(name, name) for name, value in params.items()
                                             if value is not None])
