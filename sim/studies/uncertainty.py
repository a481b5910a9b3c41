"""The three sources of a forecast's uncertainty, as configs (DESIGN.md section 8).

- parameters: a member of the calibration ensemble (`sim/data/calibration_ensemble.csv`, written by
  `skillsim-calibrate`), applied on top of the assumed values exactly as the calibration applied it;
- structural inputs: a point in the preset's `region.structural` ranges, from a Latin hypercube
  (scipy.stats.qmc) so a few draws cover every range evenly;
- stochastic: the replicate (its own seed).

`draw_config(cfg, k)` gives joint draw k (member k mod ensemble size, structural point k of a fixed
hypercube), so a sweep can opt into parameter and structural uncertainty with `draw=range(0,N)`:
two settings with the same draw and replicate share parameters, inputs and random numbers.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import qmc

from ..config import RunConfig, with_number, with_value
from ..errors import DataError

DRAW_POINTS = 1024  # size of the fixed structural hypercube behind `draw_config`


@lru_cache(maxsize=4)
def load_ensemble(path: str | None = None) -> pd.DataFrame:
    """The calibration ensemble: one row per parameter set, columns named after the free parameters."""
    from .calibrate import ENSEMBLE_FILE, FREE

    p = Path(path) if path else ENSEMBLE_FILE
    try:
        df = pd.read_csv(p)
    except (OSError, ValueError) as exc:
        raise DataError(f"calibration ensemble {p}: cannot be read ({type(exc).__name__}); "
                        f"regenerate it with skillsim-calibrate region=national write=true") from None
    missing = [f.name for f in FREE if f.name not in df.columns]
    if missing or df.empty:
        raise DataError(f"calibration ensemble {p}: missing columns {missing} or no rows; "
                        f"regenerate it with skillsim-calibrate region=national write=true")
    return df


def member_config(cfg: RunConfig, member: pd.Series) -> RunConfig:
    from .calibrate import ensemble_configs

    return ensemble_configs(cfg, pd.DataFrame([member]))[0]


def hypercube(ranges: dict[str, list[float]], n: int, seed: int) -> list[dict[str, float]]:
    """n points of a Latin hypercube over the given ranges (key -> [low, high]), as key -> value."""
    keys = list(ranges)
    if not keys or n <= 0:
        return [{} for _ in range(max(n, 0))]
    u = qmc.LatinHypercube(len(keys), seed=seed).random(n)
    lo = np.array([ranges[k][0] for k in keys])
    hi = np.array([ranges[k][1] for k in keys])
    return [dict(zip(keys, map(float, row))) for row in lo + u * (hi - lo)]


def structural_points(cfg: RunConfig, n: int, seed: int) -> list[dict[str, float]]:
    """n points of a Latin hypercube over the preset's structural ranges."""
    return hypercube(cfg.region.structural, n, seed)


def apply_structural(cfg: RunConfig, values: dict[str, float]) -> RunConfig:
    """cfg with structural inputs set. A different uncertified share changes the workforce around
    the observed skilled stock, so the population moves with it (skilled workers stay as observed)."""
    for key, value in values.items():
        if key == "region.uncertified_share":
            skilled = cfg.region.population * (1 - cfg.region.uncertified_share)
            cfg = with_value(cfg, "region.population", skilled / (1 - value))
        cfg = with_number(cfg, key, value)
    return cfg


def draw_given(given: RunConfig, keys, k: int | None = None, by: str | None = None) -> RunConfig:
    """`given` at joint draw k (default: its own `draw`), with each setting the user gave (`keys`: the
    command line's `key=value` lines or dotted keys, the API's keywords) that the draw replaces refused
    in one line: which one wins would be a silent choice, and a study that paired `draw` with
    `region.growth_per_year` found the latter had no effect at all. Only settings the draw changes
    count, so a group choice (`region=national`) or a key the draw leaves alone passes. `by`: a study
    command that draws every run's parameters and inputs itself (its name; k is then any draw)."""
    from ..config import to_dict
    from ..errors import ConfigError

    k = given.draw if k is None else k
    drawn = draw_config(given, k)
    before, after = _leaves(to_dict(given)), _leaves(to_dict(drawn))
    from .calibrate import UNSOURCED, held_assumptions

    held, columns = held_assumptions(given), set(load_ensemble().columns)
    drawn_here = {u.name for u in UNSOURCED if u.name in columns and u.name not in held}
    for key in keys:
        key = str(key).split("=", 1)[0].lstrip("+~").split("@", 1)[0]
        if key == "region.population":  # rescaled from the given one with a drawn uncertified share: it counts
            continue
        if key in drawn_here and key in before:
            # at its assumed value it is drawn like any other (a value away from it is held): given, it said
            # "hold it" and was drawn in most runs, refused only where draw 0 moved it (a review)
            raise ConfigError(key, before[key], f"a value other than its assumed {before[key]!r}: the calibration "
                                                "ensemble draws it around that for each run (an assumption without a "
                                                "source); drop it to carry its uncertainty, or give another value to "
                                                "hold it there")
        if key in before and before[key] != after.get(key):
            where = ("a structural input of the region, drawn from its range in region.structural"
                     if key in given.region.structural else "a parameter of the calibration ensemble")
            if by is not None:
                raise ConfigError(key, before[key], f"not set here: {by} draws it for each run ({where}); drop it")
            raise ConfigError(key, before[key], f"not set together with draw={k}, whose joint draw replaces it "
                                                f"({where}); drop one of them")
    return drawn


def _leaves(tree: dict, prefix: str = "") -> dict:
    """Dotted key -> value of a nested dict's leaves (a list is a leaf)."""
    out = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            out.update(_leaves(value, key + "."))
        else:
            out[key] = value
    return out


@lru_cache(maxsize=8)
def _draw_points(ranges: tuple, seed: int) -> tuple:
    return tuple(hypercube({k: list(r) for k, r in ranges}, DRAW_POINTS, seed))


def draw_config(cfg: RunConfig, k: int) -> RunConfig:
    """Joint draw k of parameters and structural inputs (the same for every setting of a sweep)."""
    ens = load_ensemble()
    cfg = member_config(cfg, ens.iloc[k % len(ens)])
    ranges = tuple((key, tuple(r)) for key, r in cfg.region.structural.items())
    return apply_structural(cfg, _draw_points(ranges, 20240101)[k % DRAW_POINTS]) if ranges else cfg
