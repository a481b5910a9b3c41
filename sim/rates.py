"""Per-worker rates that change only when level, firm or studio membership changes.

`gain` (progress per month) and `pay` (monthly pay relative to the wage index) are cached in the
workforce arrays so that learning and wages are one pass each per month. Every rule that changes
level, firm or membership calls `refresh` on the slots it touched.
"""

from __future__ import annotations

import numpy as np

from .ladder import N_LEVELS, pay_ratios
from .workforce import Workforce


class RateTables:
    """Lookup tables built once per run from the parameters."""

    def __init__(self, cfg, firm_premium: np.ndarray):
        b = cfg.behaviour
        rate = np.zeros(N_LEVELS, dtype=np.float32)
        rate[:5] = 1.0 / np.asarray(b.mastery_months, dtype=np.float32)  # levels 5-7 have no next standard
        self.level_rate = rate
        self.studio_mult = np.float32(cfg.levers.studio.learning_multiplier)
        self.level_pay = pay_ratios(cfg.wages.apprentice_pay_ratio).astype(np.float32)
        self.firm_premium = firm_premium.astype(np.float32)
        floor = np.zeros(N_LEVELS, dtype=np.float32)
        if cfg.wages.craftsman_salary:
            # rule_craftsman_salary: annual floor for levels 6 and 7, relative to the 初级工 base wage.
            floor[6:] = np.asarray(cfg.wages.craftsman_salary_floor, dtype=np.float32) / cfg.region.base_wage
        self.pay_floor = floor
        #: the tables in the order the compiled kernels take them (sim.kernels.refresh, promote)
        self.kernel_tables = (self.level_rate, self.studio_mult, self.level_pay, self.firm_premium, self.pay_floor)


def refresh_all(wf: Workforce, t: RateTables) -> None:
    """refresh of every worker (a workforce just built), without an index of them all."""
    wf.kernels.refresh_all(wf.level, wf.studio_since, wf.aptitude, wf.firm, wf.wage_factor, wf.gain, wf.pay,
                           *t.kernel_tables)


def refresh(wf: Workforce, idx: np.ndarray, t: RateTables) -> None:
    """Recompute the cached gain and pay of slots `idx` from their current state (one pass of the
    run's implementation, sim.passes)."""
    if len(idx) == 0:
        return
    wf.kernels.refresh(np.asarray(idx, dtype=np.int64), wf.level, wf.studio_since, wf.aptitude, wf.firm,
                       wf.wage_factor, wf.gain, wf.pay, *t.kernel_tables)
