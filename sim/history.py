"""The simulated past that every forecast continues (DESIGN.md section 8: one history).

A run does not start cold at its forecast date. It starts cold at `region.history.origin`, runs the
calibrated dynamics month by month under the status-quo levers through the observed dates, and is
aligned to each observation as it passes (`sim.alignment`). The forecast then continues that state,
so its hidden state (progress, time at level, training credit, studio terms, age by level) comes from
the model's own dynamics, and there is no warm-up jump after the start date.

- **Status-quo levers in the history.** The past is the past: whatever scenario a run forecasts, its
  history runs the region's status-quo levers (every lever on, intensity 1, default allocation and
  selection). A baseline and a policy run therefore start from the identical state.
- **Spin-up.** Where the origin is the first observation (national: end-2009), the cold start takes
  that observation's share. Where the origin lies before it (regions with one observed date), the
  run spins up: it starts cold on a path that back-casts the first observed share at
  `history.spinup_pace` (the national pace, nat_hs_2009 to nat_hs_2021) and is aligned to that path
  each December. The dynamics generate the hidden state within each level; the path only fixes how
  many are at each level, and the alignment moves few workers a year.
- **Growth path.** The workforce follows `demography.SizePath` (through the observed stocks).
- **Calibration** runs the same history with `align: false` (free dynamics), so that the fitted
  observations are predictions of the model, not imposed on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .calendar import month_index


@dataclass(frozen=True)
class Observation:
    month: int  # absolute month index of the observed state (end of that month)
    share: float | None
    level_share: list[float] | None


def observations(cfg) -> list[Observation]:
    """Observations the history aligns to: dated after the origin, up to the cutoff and before the
    forecast starts, oldest first."""
    h = cfg.region.history
    months: dict[int, dict] = {}
    for date, share in h.high_skill_share.items():
        months.setdefault(month_index(date), {})["share"] = share
    for date, mix in h.level_share.items():
        months.setdefault(month_index(date), {})["level_share"] = list(mix)
    origin = month_index(h.origin)
    last = cfg.start_month - 1
    cutoff = month_index(h.cutoff) if h.cutoff else last
    return [Observation(m, v.get("share"), v.get("level_share")) for m, v in sorted(months.items())
            if origin <= m <= min(last, cutoff)]


def origin_month(cfg) -> int:
    """Absolute month of the cold start: the history origin, or the start state itself if the forecast
    starts before the origin (then there is no history)."""
    return min(month_index(cfg.region.history.origin), cfg.start_month - 1)


def scaled_mix(mix: list[float], share: float) -> list[float]:
    """Skilled mix over levels 1..7 rescaled to a high-skill share, keeping the proportions within
    levels 1-2 and within levels 3-7."""
    low, high = sum(mix[:2]), sum(mix[2:])
    return [x * (1 - share) / low for x in mix[:2]] + [x * share / high for x in mix[2:]]


def status_quo(levers):
    """The region's status-quo levers: every lever on at intensity 1, default allocation and selection;
    behavioural lever settings (learning multiplier, gains, costs) as in the run."""
    from .config import CompetitionParams, TrainingParams

    return dataclasses.replace(
        levers,
        training=dataclasses.replace(levers.training, enabled=True, intensity=1.0,
                                     allocation=TrainingParams.allocation),
        competition=dataclasses.replace(levers.competition, enabled=True, intensity=1.0,
                                        selection=CompetitionParams.selection),
        studio=dataclasses.replace(levers.studio, enabled=True, intensity=1.0))


def cold_share(cfg, obs: list[Observation]) -> float | None:
    """High-skill share of the cold start: the first observation's, or on a spin-up its back-cast
    (`spinup_share`); None if there is no observed share (the region's skilled_mix is used as it is)."""
    first = next((o for o in obs if o.share is not None), None)
    if first is None:
        return None
    return spinup_share(cfg, first, origin_month(cfg))


def spinup_share(cfg, first: Observation, month: int) -> float:
    """The spin-up path: the first observed share, back-cast at `history.spinup_pace` a year."""
    years = (first.month - month) / 12.0
    return min(0.95, max(0.01, first.share - cfg.region.history.spinup_pace * years))


def spinup_points(cfg, obs: list[Observation]) -> list[Observation]:
    """Each December of a spin-up (origin before the first observed share), aligned to the path."""
    first = next((o for o in obs if o.share is not None), None)
    origin = origin_month(cfg)
    if first is None or first.month <= origin:
        return []
    return [Observation(m, spinup_share(cfg, first, m), None)
            for m in range(origin + 1, first.month) if m % 12 == 11]
