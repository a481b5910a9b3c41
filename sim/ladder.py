"""The eight-level skill ladder (新八级工): names, grades, thresholds, waits and pay ratios.

This is the one place that knows the ladder. Charts, configs and kernels take level names,
the high-skill threshold and the statutory waits from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Level:
    """One rung of the ladder."""

    index: int
    zh: str
    en: str
    grade_zh: str
    grade_en: str
    high_skill: bool


LEVELS: tuple[Level, ...] = (
    Level(0, "学徒工", "apprentice", "无", "none", False),
    Level(1, "初级工", "junior worker", "五级", "grade 5", False),
    Level(2, "中级工", "intermediate worker", "四级", "grade 4", False),
    Level(3, "高级工", "senior worker", "三级", "grade 3", True),
    Level(4, "技师", "technician", "二级", "grade 2", True),
    Level(5, "高级技师", "senior technician", "一级", "grade 1", True),
    Level(6, "特级技师", "principal technician", "企业聘任", "appointed by the employer", True),
    Level(7, "首席技师", "chief technician", "企业聘任", "appointed by the employer", True),
)
N_LEVELS = len(LEVELS)

#: First high-skill level: 高级工 (senior worker) and above.
HIGH_SKILL_MIN = 3
#: First certificate level: "skilled workers" hold a certificate (levels 1-7).
SKILLED_MIN = 1
#: Highest level reached by certification; 6 and 7 are employer appointments.
TOP_CERTIFIED = 5

#: Minimum years at level L before assessment for level L+1 (targets.csv rows rule_wait_L0_L1,
#: rule_wait_L1_L2, rule_wait_L2_L3, rule_wait_L3_L4, rule_wait_L4_L5; 2018 standard template).
MIN_WAIT_YEARS: tuple[int, ...] = (1, 4, 5, 4, 4)
#: Formal training shortens each wait by at most about two years (older standards in the notes of
#: the rule_wait_* rows: 3 with training / 5 without, 4 / 7, 5 / 7, 5 / 7).
MAX_TRAINING_CREDIT_YEARS = 2

#: Median annual wage by level relative to 初级工, Shanghai 2022 skilled-worker survey
#: (rows wage_sh_2022_L1 .. wage_sh_2022_L7). Index 0 (apprentice) has no survey figure; its ratio
#: is the assumption `apprentice_pay_ratio` in WageParams.
SHANGHAI_2022_MEDIAN_WAGE: tuple[int, ...] = (99500, 155800, 173700, 194300, 208700, 279100, 303300)


def wait_months() -> np.ndarray:
    """Minimum months at levels 0..4 before sitting the next assessment, as int16."""
    return (np.array(MIN_WAIT_YEARS, dtype=np.int16) * 12).astype(np.int16)


def pay_ratios(apprentice_ratio: float) -> np.ndarray:
    """Pay of each level relative to 初级工 (level 1), float64, length 8."""
    base = SHANGHAI_2022_MEDIAN_WAGE[0]
    return np.array([apprentice_ratio] + [w / base for w in SHANGHAI_2022_MEDIAN_WAGE], dtype=float)


def level_name(index: int, lang: str = "en") -> str:
    """Display name of a level in 'en' or 'zh'."""
    lv = LEVELS[index]
    return lv.zh if lang == "zh" else lv.en
