"""Promotion by certification (levels 1-5) and by employer appointment (levels 6-7)."""

from __future__ import annotations

import numpy as np

from .ladder import TOP_CERTIFIED, wait_months
from .workforce import Workforce

WAITS = wait_months()  # int16, levels 0..4


def eligible_for_assessment(wf: Workforce) -> np.ndarray:
    """Slots that may sit an assessment now.

    Level 0-4, progress at or above the next level's standard (1.0), and months at level at least the
    statutory wait (rule_wait_*) less the worker's training credit.
    """
    return wf.kernels.eligible(wf.progress, wf.level, wf.months_at_level, wf.credit, WAITS, TOP_CERTIFIED,
                               wf.scratch("eligible"))


def certify(wf: Workforce, pass_prob: np.ndarray, sit_untrained: np.ndarray, sit_trained: float,
            rng: np.random.Generator) -> np.ndarray:
    """Assessment round: eligible workers sit it with a probability and pass with another.

    Most workers who could sit never do; a worker with training credit (a certification-oriented
    course) or in a studio (masters prepare members for assessments) sits with `sit_trained`, others
    with `sit_untrained[level]` per round. A sitter passes with the
    probability for the target level. One uniform per candidate, in slot order. Returns the slots that
    passed (not yet promoted).
    """
    # eligible_for_assessment and each candidate's odds (sitting_odds) in one pass
    cand, odds = wf.kernels.eligible_odds(wf.progress, wf.level, wf.months_at_level, wf.credit, wf.studio_since,
                                          WAITS, TOP_CERTIFIED, np.asarray(sit_untrained, dtype=np.float32),
                                          np.float32(sit_trained), np.asarray(pass_prob, dtype=np.float32),
                                          wf.scratch("eligible"), wf.scratch("odds", np.float32), wf.threads)
    u = rng.random(cand.size, dtype=np.float32)
    return wf.kernels.keep_below(cand, u, odds)


def appoint(wf: Workforce, annual_rate: np.ndarray, min_months: int, rng: np.random.Generator) -> np.ndarray:
    """Employer appointments 5 -> 6 (特级技师) and 6 -> 7 (首席技师), once a year.

    Each worker at level 5 or 6 with at least `min_months` at level is appointed with the annual
    rate for that step (scale: nat_top_levels). Returns the appointed slots.
    """
    cand = np.flatnonzero(wf.level >= TOP_CERTIFIED)
    lvl = wf.level[cand]
    keep = (lvl < 7) & (wf.months_at_level[cand] >= min_months)
    cand, lvl = cand[keep], lvl[keep]
    u = rng.random(cand.size)
    return cand[u < annual_rate[lvl - TOP_CERTIFIED]]


def promote(wf: Workforce, idx: np.ndarray) -> None:
    """Move workers one level up: time at level, progress and training credit start again."""
    wf.level[idx] += 1
    wf.months_at_level[idx] = 0
    wf.progress[idx] = 0
    wf.credit[idx] = 0
