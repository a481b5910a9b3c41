"""How much of a forecast's spread each source contributes: a crossed random-effects ANOVA.

The forecast ensemble crosses P parameter sets with S structural points and runs R replicates in
every cell (each with its own seed). For an outcome y[p, s, r] the method-of-moments estimators of
the two-way crossed random-effects model with replication (Searle, Casella & McCulloch 1992, ch. 4)
give the variance components:

    stochastic   = MS_within
    interaction  = (MS_PS - MS_within) / R
    parameters   = (MS_P - MS_PS) / (S R)
    structural   = (MS_S - MS_PS) / (P R)

Negative estimates (sampling noise around zero) are set to zero; shares are of their sum.
"""

from __future__ import annotations

import numpy as np

COMPONENTS = ("parameters", "structural", "interaction", "stochastic")


def decompose(y: np.ndarray) -> dict[str, float]:
    """Variance components of y with shape (P, S, R); R >= 2 for the stochastic part."""
    y = np.asarray(y, dtype=float)
    p, s, r = y.shape
    cell = y.mean(axis=2)
    grand = cell.mean()
    row = cell.mean(axis=1)
    col = cell.mean(axis=0)
    ms_p = s * r * np.sum((row - grand) ** 2) / max(p - 1, 1)
    ms_s = p * r * np.sum((col - grand) ** 2) / max(s - 1, 1)
    inter = cell - row[:, None] - col[None, :] + grand
    ms_ps = r * np.sum(inter**2) / max((p - 1) * (s - 1), 1)
    ms_e = np.sum((y - cell[:, :, None]) ** 2) / (p * s * (r - 1)) if r > 1 else float("nan")
    e = ms_e if r > 1 else 0.0
    comps = {
        "parameters": max(0.0, (ms_p - ms_ps) / (s * r)) if p > 1 else 0.0,
        "structural": max(0.0, (ms_s - ms_ps) / (p * r)) if s > 1 else 0.0,
        "interaction": max(0.0, (ms_ps - e) / r) if p > 1 and s > 1 else 0.0,
        "stochastic": float(ms_e) if r > 1 else float("nan"),
    }
    return comps


def shares(comps: dict[str, float]) -> dict[str, float]:
    total = sum(v for v in comps.values() if np.isfinite(v))
    return {k: (v / total if total > 0 and np.isfinite(v) else float("nan")) for k, v in comps.items()}
