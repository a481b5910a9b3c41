"""Policy levers. Each month they apply in the order of LEVER_ORDER."""

from __future__ import annotations

from .base import Lever
from .competition import CompetitionLever
from .studio import StudioLever
from .training import TrainingLever

LEVER_ORDER = ("training", "competition", "studio")
LEVER_CLASSES = {"training": TrainingLever, "competition": CompetitionLever, "studio": StudioLever}


def default_levers(params) -> list[Lever]:
    """One lever object per lever in LEVER_ORDER, built from `LeverParams`."""
    return [LEVER_CLASSES[name](getattr(params, name)) for name in LEVER_ORDER]


__all__ = ["Lever", "TrainingLever", "CompetitionLever", "StudioLever", "LEVER_ORDER", "default_levers"]
