"""Alignment of the simulated level mix to an observed one (the history's observations).

Microsimulation models align their simulated totals to external ones (LIAM2's `align`, the
"alignment by sorting" of Li & O'Donoghue 2014): the simulated probabilities decide *who*, the
external total decides *how many*. Here the external totals are observed counts by level, and the
boundary between two adjacent levels is moved by the fewest agents that make the cumulative count at
or above the upper level match:

- too few above a boundary: promote the workers of the lower level nearest the next standard (highest
  progress), as the dynamics would promote them next; their state starts again at the new level,
  exactly as after a certification;
- too many: move back workers of the upper level drawn at random (proportional alignment, so the
  upper level's distribution of time at level is not distorted) and give each the hidden state
  (progress, time at level, training credit) of a random worker of the lower level (hot-deck
  imputation), so the lower level's distribution of readiness is not distorted either and no pool of
  ready workers builds up.

Boundaries are aligned from the top down, so each boundary's count is final when the next is moved.
Agents all carry the same weight, so counts are agent counts. The kernel draws from one generator
(the model's `alignment` stream), in a fixed order.

The workers without a certificate (level 0) are aligned differently: the calibrated dynamics hold more
of them than a region's `uncertified_share` (docs/model.md section 9), and that excess is a stock of
entrants who, in the data, hold a first certificate, not workers about to earn one. `uncertified_moves`
closes a share of that gap (`region.history.uncertified_alignment`, a structural input) before the
boundaries are aligned: workers drawn at random at level 0 take the level and ladder state of 初级工
drawn at random (or the reverse, where level 0 is short). Promoting the readiest apprentices instead, as
the boundaries do, emptied the pool near the 初级工 standard: the first forecast round certified up to a
third fewer workers per head than the rounds two years on (Chongqing, three seeds).
"""

from __future__ import annotations

import numpy as np

from .ladder import HIGH_SKILL_MIN, N_LEVELS, SKILLED_MIN
from .workforce import Workforce


def target_counts(counts: np.ndarray, share: float | None, level_share: list[float] | None) -> dict[int, int]:
    """Agents wanted at or above each aligned boundary, from an observed share and/or level mix.

    `counts` are agents by level; `share` is the high-skill share (levels 3-7 over 1-7); `level_share`
    the shares of levels 3, 4 and 5 among skilled workers. Levels 6-7 (appointments) are not aligned.
    Where both are given, the share decides the count at or above level 3.
    """
    skilled = int(counts[SKILLED_MIN:].sum())
    top = int(counts[6:].sum())
    out: dict[int, int] = {}
    if level_share is not None:
        s3, s4, s5 = level_share
        out[5] = int(round(s5 * skilled)) + top
        out[4] = out[5] + int(round(s4 * skilled))
        out[HIGH_SKILL_MIN] = out[4] + int(round(s3 * skilled))
    if share is not None:
        out[HIGH_SKILL_MIN] = int(round(share * skilled))
    return dict(sorted(out.items(), reverse=True))


def plan_moves(wf: Workforce, targets: dict[int, int], rng: np.random.Generator) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """The moves that align the workforce: (boundary, promoted slots, demoted slots) per boundary.

    Applies nothing; `apply_moves` does. Each boundary b moves workers between levels b-1 and b.
    """
    level = wf.level.copy()
    moves = []
    for b, want in targets.items():
        have = int(np.count_nonzero(level >= b))
        delta = want - have
        promoted = demoted = np.empty(0, dtype=np.int64)
        if delta > 0:
            lower = np.flatnonzero(level == b - 1)
            k = min(delta, lower.size)
            if k:
                order = np.argsort(-wf.progress[lower], kind="stable")
                promoted = np.sort(lower[order[:k]])
                level[promoted] = b
        elif delta < 0:
            upper = np.flatnonzero(level == b)
            k = min(-delta, upper.size)
            if k:
                demoted = np.sort(rng.choice(upper, k, replace=False)) if k < upper.size else upper
                level[demoted] = b - 1
        moves.append((b, promoted, demoted))
    return moves


def apply_moves(wf: Workforce, moves, rng: np.random.Generator) -> int:
    """Carry out planned moves; returns the number of agents moved."""
    moved = 0
    for b, promoted, demoted in moves:
        if promoted.size:
            wf.level[promoted] = b
            wf.months_at_level[promoted] = 0
            wf.progress[promoted] = 0
            wf.credit[promoted] = 0
        if demoted.size:
            donors_pool = np.flatnonzero(wf.level == b - 1)
            wf.level[demoted] = b - 1
            if donors_pool.size:
                take_states(wf, demoted, donors_pool[rng.integers(0, donors_pool.size, demoted.size)])
            else:
                wf.months_at_level[demoted] = 0
                wf.progress[demoted] = 0
                wf.credit[demoted] = 0
        moved += promoted.size + demoted.size
    return moved


def uncertified_moves(wf: Workforce, uncertified: float, closed: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(moved, donors): workers who cross between level 0 and 初级工 (level 1), drawn at random from the
    side with too many for `uncertified`, each with a worker drawn at random (with replacement) from the
    other side, whose level and ladder state it takes (`take_states`). `closed` (0-1) of the gap between
    the agents at level 0 and `uncertified` x all agents is closed (as far as the side holds workers);
    none moves at 0."""
    level = wf.level
    have = int(np.count_nonzero(level == 0))
    want = int(round(have + closed * (uncertified * level.size - have)))
    if want == have:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    side, other = (level == 0, level == SKILLED_MIN) if want < have else (level == SKILLED_MIN, level == 0)
    pool, donors_pool = np.flatnonzero(side), np.flatnonzero(other)
    k = min(abs(want - have), pool.size)
    if k == 0 or donors_pool.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    moved = np.sort(rng.choice(pool, k, replace=False)) if k < pool.size else pool
    return moved, donors_pool[rng.integers(0, donors_pool.size, k)]


def take_states(wf: Workforce, moved: np.ndarray, donors: np.ndarray) -> None:
    """Hot-deck imputation: each moved worker takes its donor's level and ladder state (time at level,
    progress, training credit); who it is (age, firm, aptitude, pay factor) stays its own."""
    wf.level[moved] = wf.level[donors]
    wf.months_at_level[moved] = wf.months_at_level[donors]
    wf.progress[moved] = wf.progress[donors]
    wf.credit[moved] = wf.credit[donors]


def agent_counts(wf: Workforce) -> np.ndarray:
    return np.bincount(wf.level, minlength=N_LEVELS)
