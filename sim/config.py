"""Typed run parameters, with their ranges and sources, and the checks that enforce them.

The core takes these dataclasses; it never sees Hydra. `from_mapping` builds them from a plain dict
(Hydra's composed config, a YAML file, a test) and checks every value, so a wrong value fails before
anything is allocated, with one line naming the field, the value and what is allowed.

Every numeric field states where its default comes from: a `targets.csv` row id, a derivation from
rows, or "assumption". `docs/model.md` lists them and `tests/test_config.py` checks the row ids.
Defaults describe the Chongqing status quo, so `WorkforceModel(seed=1)` is a sensible run.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
import math
import numbers
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin, get_type_hints

from pathlib import Path

import yaml

from .errors import ConfigError, DataError, MissingSetting, SkillsimWarning
from .ladder import N_LEVELS

#: Written by `skillsim-calibrate region=national write=true`; its values are the defaults of the calibrated
#: fields below (behaviour, studio learning multiplier), so every preset and the Python API use them.
#: The file ships inside the package (sim/data/, found next to this module, never through the current
#: folder). Without it the model would quietly run on the priors, so its absence is an error at import;
#: only SKILLSIM_UNCALIBRATED=1 (for a calibration from scratch) runs on the priors, and says so.
CALIBRATION_FILE = Path(__file__).with_name("data") / "calibration.yaml"
UNCALIBRATED_ENV = "SKILLSIM_UNCALIBRATED"


class CalibrationMissing(DataError):
    """The calibrated parameters cannot be read: a broken installation, not a user input."""


def load_calibration(path: Path = CALIBRATION_FILE) -> dict:
    """The calibrated values (a mapping); CalibrationMissing if the file is absent, unreadable or empty."""
    if os.environ.get(UNCALIBRATED_ENV) == "1":
        warnings.warn(f"{UNCALIBRATED_ENV}=1: running on the assumed priors, not the calibrated values",
                      SkillsimWarning, stacklevel=2)
        return {}
    try:
        # libyaml's parser where PyYAML has it (the same values; read at every import, 5 ms in Python)
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        why = "is missing" if isinstance(exc, FileNotFoundError) else f"cannot be read ({type(exc).__name__})"
        raise CalibrationMissing(
            f"calibration file {path} {why}: the calibrated parameters ship with skillsim; reinstall it "
            f"(or restore the file), or set {UNCALIBRATED_ENV}=1 to run on the priors") from None
    if not isinstance(data, dict) or not data:
        raise CalibrationMissing(f"calibration file {path} holds no calibrated values; reinstall skillsim "
                                 f"or re-run skillsim-calibrate region=national write=true")
    return data


_CAL = load_calibration()
#: where the calibrated settings' defaults came from, as they were fixed at this import (results.defaults_record):
#: the variable read later may have changed since
ON_PRIORS = not _CAL
_CAL_SOURCE = ("calibrated (sim/data/calibration.yaml: nat_hs_2011, nat_hs_2016, nat_hs_2021, nat_mix_2021_*, "
               "nat_cert_flow, nat_comp_promo_rate)")


#: The assumed (prior) values of the calibrated fields, by "section.name": the calibration starts
#: from them and is pulled towards them, never towards an earlier fit.
ASSUMED: dict[str, Any] = {}


def calibrated(section: str, name: str, assumed: Any, source: str) -> tuple[Any, str]:
    """(default, source): the calibrated value if the calibration file has one, else the assumption."""
    ASSUMED[f"{section}.{name}"] = assumed
    cal = _CAL
    for key in section.split("."):
        cal = cal.get(key, {}) if isinstance(cal, dict) else {}
    if isinstance(cal, dict) and name in cal:
        return cal[name], _CAL_SOURCE
    return assumed, source


def off_calibration(cfg: "RunConfig | dict") -> list[str]:
    """The calibrated settings ("section.name", as ASSUMED names them) whose value in `cfg` (a RunConfig,
    or a run folder's config.yaml as a mapping) is not the calibration file's: the priors of a run under
    SKILLSIM_UNCALIBRATED=1, or an override. Such a run is not "at the calibrated central set", and its
    summary, log line and report say so (from the config alone: a rerun, whatever its environment, says
    the same)."""
    cal = _calibration_in_file()
    off = []
    for key in ASSUMED:
        *section, name = key.split(".")
        node: Any = cal
        for part in section:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        value: Any = cfg
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if not isinstance(node, dict) or name not in node or _plain(value) != _plain(node[name]):
            off.append(key)
    return off


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


@lru_cache(maxsize=1)
def _calibration_in_file() -> dict:
    """The calibration file's values whether or not SKILLSIM_UNCALIBRATED is set ({} if unreadable)."""
    if os.environ.get(UNCALIBRATED_ENV) != "1":
        return _CAL
    try:
        data = yaml.load(CALIBRATION_FILE.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def spec(default: Any, source: str, lo: float | None = None, hi: float | None = None, *,
         choices: tuple | None = None, length: int | None = None, doc: str = "",
         lo_open: bool = False) -> Any:
    """A dataclass field with its source, range and meaning attached as metadata."""
    meta = {"source": source, "lo": lo, "hi": hi, "choices": choices, "length": length,
            "doc": doc, "lo_open": lo_open}
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata=meta)
    if isinstance(default, dict):
        return field(default_factory=lambda d=default: {k: (list(v) if isinstance(v, list) else v)
                                                        for k, v in d.items()}, metadata=meta)
    return field(default=default, metadata=meta)


# Chongqing skilled-worker mix at end-2022 over levels 1..7: high-skill total 0.314 (cq_hs_2022) split
# over levels 3/4/5 in the national 2021 proportions (nat_mix_2021_L3/L4/L5); levels 6-7 at the
# national ratio of appointed principal/chief technicians to skilled workers (nat_top_levels / 200M);
# levels 1-2 split evenly (assumption: no official split, note of nat_mix_2021_L12).
_CQ_MIX = [0.343, 0.343, 0.245944, 0.052328, 0.015698, 0.00002, 0.00001]


@dataclass
class HistoryParams:
    """The observed past that a forecast continues (docs/model.md, section 5).

    The run starts cold at `origin`, runs the calibrated dynamics under the status-quo levers through
    every observed date, and is aligned to each observation as it passes (`sim.history`); the
    forecast starts from that simulated state. Where `origin` lies before the first observation (a
    spin-up), the run follows a path back-cast from the first observed share at `spinup_pace` a year,
    aligned each December. Dates are YYYY-MM.
    """

    origin: str = spec("2012-10", "assumption: spin-up of 10 years before cq_hs_2022_10", doc="date of the cold start")
    high_skill_share: dict[str, float] = spec({"2022-10": 0.315, "2022-12": 0.314}, "cq_hs_2022_10, cq_hs_2022",
                                              0, 1, doc="observed high-skill shares by date")
    level_share: dict[str, list[float]] = spec({}, "nat_mix_2021_L3..L5 (national preset)", 0, 1, length=3,
                                               doc="observed shares of levels 3, 4, 5 among skilled workers by date")
    skilled_workers: dict[str, float] = spec({"2022-10": 4940000.0}, "cq_hs_2022_10 source (skilled 4.94M)", 0, 2e9,
                                             doc="observed skilled workers by date (the workforce path passes "
                                                 "through them)")
    spinup_pace: float = spec(0.0044, "derived: (nat_hs_2021 - nat_hs_2009) / 12 years", -0.1, 0.1,
                              doc="yearly rise of the share on the spin-up path before the first observation")
    spinup_growth: float = spec(0.053, "derived: (nat_hs_2021 source 200M / nat_skilled_2011 119M) ^ (1/10) - 1",
                                -0.5, 1.0, doc="yearly growth of the workforce on a spin-up (before the first "
                                               "observed stock, where no earlier segment gives it): the national "
                                               "history's, which the calibrated dynamics were fitted under")
    align: bool = spec(True, "method", doc="align to the observations as the history passes (off: free "
                                           "dynamics, as the calibration runs them)")
    uncertified_alignment: float = spec(
        0.0, "structural: range in region.structural (docs/model.md section 9)", 0, 1,
        doc="share of the gap between the history's workers without a certificate and `uncertified_share` "
            "closed at each alignment (0: the dynamics' own share, the observed high-skill share among "
            "certificate holders; 1: also the observed skilled stock)")
    cutoff: str = spec("", "backtests", doc="ignore observations after this date (YYYY-MM); empty: none")


#: Structural inputs (DESIGN.md section 8): inputs with no published value that shape the forecast.
#: Each preset gives each a range in `region.structural`; `skillsim-forecast` samples them uniformly.
STRUCTURAL_INPUTS = ("region.growth_per_year", "region.training_budget_per_worker_year",
                     "region.competition_participation", "region.studio_growth_per_year")

_NO_SOURCE = "no source: half to twice the value"
#: The numeric assumptions (no targets.csv row) that shape a forecast, each with the range a study can
#: give it and why: the calibration's parameter ensemble draws them over these ranges with the fitted
#: parameters (sim.studies.calibrate.UNSOURCED), so the forecast's bands, the plan and `draw=` carry
#: them; `skillsim-sensitivity inputs=assumptions` (sim.studies.inputs) varies them one by one, and
#: docs/model.md section 12 lists them beside their source. A test (tests/test_config.py) fails if a numeric assumption has none, or its value
#: lies outside it, unless it is in NOT_FORECAST_SHAPING.
ASSUMPTION_RANGES: dict[str, tuple[float, float, str]] = {
    "region.age_sd": (7.0, 13.0, "no regional age spread is published (prior_age gives the mean): +-30%"),
    "region.level_age_step": (0.0, 4.0, "from no age gradient by level to twice the assumed one"),
    "region.female_share": (0.2, 0.4, "no share of women among the region's skilled workers is published: +-0.1"),
    "behaviour.aptitude_sd": (0.15, 0.6, _NO_SOURCE),
    "behaviour.trained_sit_prob": (0.25, 0.75, "no source: +-0.25 around an even chance"),
    "behaviour.leave_share": (0.1, 0.4, _NO_SOURCE),
    "behaviour.appointment_min_years": (1.0, 5.0, "no rule is published: one to five years"),
    "behaviour.entrant_age_mean": (18.0, 24.0, "from school leavers to college graduates"),
    "behaviour.entrant_age_sd": (1.5, 4.0, "no source: about +-50%"),
    "wages.apprentice_pay_ratio": (0.5, 0.9, "no source: +-0.2"),
    "wages.firm_premium_sd": (0.075, 0.3, _NO_SOURCE),
    "wages.individual_sd": (0.125, 0.5, _NO_SOURCE),
    "firms.size_alpha": (0.8, 1.5, "firm-size tails of manufacturing are Zipf-like (about 1); assumed spread"),
    "levers.training.levy_upgrade_share": (0.025, 0.1, _NO_SOURCE),
    "levers.training.progress_gain": (0.05, 0.2, _NO_SOURCE),
    "levers.training.wait_credit_months": (0.0, 24.0, "from none (the 2018 template) to two years (the older "
                                                       "standards cut waits by one to three: rule_wait_* notes)"),
    "levers.competition.events_per_year": (2.0, 8.0, _NO_SOURCE),
    "levers.competition.prep_progress_gain": (0.015, 0.06, _NO_SOURCE),
    "levers.competition.luck_sd": (0.25, 1.0, _NO_SOURCE),
    "levers.competition.prize_per_promotion": (1500.0, 6000.0, _NO_SOURCE),
    "levers.competition.subsidised_events_per_year": (10.0, 40.0, _NO_SOURCE),
    "levers.studio.masters_share_max": (0.1, 0.4, _NO_SOURCE),
    "levers.studio.term_months": (12.0, 36.0, "no rule is published: one to three years"),
    "levers.studio.fast_track_rate": (0.05, 0.2, _NO_SOURCE),
}
#: assumptions that shape no forecast figure, or whose range is given elsewhere (the presets' structural
#: ranges, or a method's choice), by key: why
NOT_FORECAST_SHAPING: dict[str, str] = {
    "region.base_wage": "a structural input with a range in each preset",
    "region.high_skill_target": "the target line drawn beside the forecast",
    "region.high_skill_target_year": "the target line drawn beside the forecast",
    "wages.middle_income_threshold": "the definition of an output (the share earning at least it)",
}


@dataclass
class RegionParams:
    """A region's workforce at the start date and its status-quo policy."""

    name: str = spec("chongqing", "preset", doc="preset name")
    label_en: str = spec("Chongqing", "preset", doc="display name of the region, English")
    label_zh: str = spec("重庆", "preset", doc="display name of the region, Chinese")
    observed: str = spec("2022-12", "cq_hs_2022", doc="date (YYYY-MM) of the initial state")
    population: float = spec(5_700_000, "cq_industrial_workers", 1, 2e9,
                             doc="workers modelled (certificate holders and apprentices)")
    uncertified_share: float = spec(0.117, "derived: 1 - cq_skilled_2022 / cq_industrial_workers", 0, 1,
                                    doc="share of the workforce at level 0 (apprentices, no certificate)")
    skilled_mix: list[float] = spec(_CQ_MIX, "cq_hs_2022, nat_mix_2021_L3..L5, nat_top_levels; L1/L2 split assumption",
                                    0, 1, length=N_LEVELS - 1,
                                    doc="shares of levels 1..7 among certificate holders, summing to 1")
    mean_age: float = spec(43.2, "prior_age", 16, 64, doc="mean age of the workforce, years")
    age_sd: float = spec(10.0, "assumption", 0, 30, doc="standard deviation of age, years")
    level_age_step: float = spec(2.0, "assumption", 0, 10, doc="extra years of mean age per level above 2")
    female_share: float = spec(0.30, "assumption", 0, 1, doc="share of women among workers and entrants")
    growth_per_year: float = spec(0.0135, "structural: range in region.structural", -0.2, 0.2,
                                  doc="growth of the workforce per year after the last observed stock")
    n_firms: int = spec(2500, "cq_comp_2024 note (2500+ units)", 1, 10_000_000, doc="firms in the region")
    base_wage: float = spec(60000.0, "assumption (about 0.6 of wage_sh_2022_L1)", 0, 1e7, lo_open=True,
                            doc="median annual wage of a 初级工 at region.observed (the wage index's anchor), yuan")
    training_budget_per_worker_year: float = spec(
        67.5, "derived: cq_training_cost (2.5bn yuan, 2019-2025) / cq_industrial_workers / 6.5 years", 0, 1e6,
        doc="status-quo government training subsidy, yuan per worker per year")
    competition_participation: float = spec(
        0.386, "derived: cq_comp_2024 / cq_industrial_workers", 0, 12,
        doc="status-quo competition participations per worker per year")
    studios: float = spec(681.0, "derived: cq_studios_2020 (450, September 2020) + 2.25 years at the "
                          "2020-2024 pace", 0, 1e7, doc="innovation studios at the start")
    studio_growth_per_year: float = spec(102.5, "derived: (cq_studios_2024 - cq_studios_2020) / 4.0 years "
                                         "(September 2020 to September 2024)",
                                         -1e6, 1e6, doc="studios added per year in the status quo")
    high_skill_target: float = spec(0.35, "nat_target_2025 note (eastern provinces 35%); assumption for Chongqing",
                                    0, 1, doc="policy target for the high-skill share (charts)")
    high_skill_target_year: int = spec(2030, "assumption", 1990, 2100, doc="year of that target")
    history: HistoryParams = field(default_factory=HistoryParams)
    structural: dict[str, list[float]] = spec(
        {"region.growth_per_year": [-0.012, 0.039], "region.training_budget_per_worker_year": [55.0, 90.0],
         "region.competition_participation": [0.19, 0.59], "region.studio_growth_per_year": [51.0, 154.0],
         "region.base_wage": [50000.0, 70000.0], "region.history.spinup_growth": [0.039, 0.067],
         "region.history.uncertified_alignment": [0.0, 1.0], "region.uncertified_share": [0.06, 0.2]},
        "docs/model.md section 8 (ranges and their reasons)", -1e9, 1e9, length=2,
        doc="range [low, high] of each structural input that the forecast ensemble samples")


@dataclass
class HorizonParams:
    """Simulated calendar span. The state at the start is the region's observed date."""

    start_year: int | None = spec(None, "region.observed", 1990, 2100,
                                  doc="first simulated year; default: the year after region.observed")
    end_year: int = spec(2035, "issue 2", 1990, 2100, doc="last simulated year (through December)")


@dataclass
class BehaviourParams:
    """Free behavioural parameters (the calibration's unknowns)."""

    mastery_months: list[float] = spec(*calibrated("behaviour", "mastery_months", [15.0, 54.0, 66.0, 60.0, 72.0],
                                                   "assumption (1.1-1.5x rule_wait_*)"),
                                       1, 600, length=5,
                                       doc="months for an aptitude-1 worker to meet the standard at levels 0..4")
    aptitude_sd: float = spec(0.3, "assumption", 0, 2, doc="sd of log aptitude (learning speed)")
    pass_prob: list[float] = spec(*calibrated("behaviour", "pass_prob", [0.85, 0.75, 0.6, 0.4, 0.3], "assumption"),
                                  0, 1, length=5,
                                  doc="pass probability of the assessment for levels 1..5")
    sit_rate: list[float] = spec(*calibrated("behaviour", "sit_rate", [0.5, 0.08, 0.06, 0.05, 0.04], "assumption"),
                                 0, 1, length=5,
                                 doc="annual chance that an eligible worker at levels 0..4 without training sits")
    trained_sit_prob: float = spec(0.5, "assumption", 0, 1,
                                   doc="chance per round that an eligible worker with training credit sits")
    assessment_months: list[int] = spec([3, 6, 9, 12], "assumption", 1, 12, doc="calendar months with assessments")
    turnover_per_year: float = spec(0.157, "prior_turnover", 0, 1, doc="annual separations, manufacturing")
    turnover_level_factor: list[float] = spec(*calibrated("behaviour", "turnover_level_factor",
                                                          [1.3, 1.1, 1.0, 0.8, 0.6, 0.5, 0.4, 0.4], "assumption"), 0, 5,
                                              length=N_LEVELS, doc="turnover multiplier by level (falls with level)")
    leave_share: float = spec(0.2, "assumption", 0, 1,
                              doc="share of separations that leave the regional workforce; the rest change firm")
    appointment_rate: list[float] = spec([0.0004, 0.02], "nat_top_levels (scale); split assumption", 0, 1,
                                         length=2, doc="annual appointment rate 5->6 and 6->7")
    appointment_min_years: float = spec(3.0, "assumption", 0, 40, doc="years at level before appointment")
    initial_progress_scale: float = spec(*calibrated("behaviour", "initial_progress_scale", 0.75, "assumption"),
                                         0.05, 3,
                                         doc="mean progress at the start relative to time at level x speed")
    entrant_school_shares: list[float] = spec(*calibrated("behaviour", "entrant_school_shares", [0.1, 0.03],
                                                          "assumption"), 0, 1, length=2,
                                              doc="shares of entrants arriving as 中级工 and 高级工 "
                                                  "(技工院校 graduates)")
    entrant_junior_share: float = spec(*calibrated("behaviour", "entrant_junior_share", 0.3, "assumption"), 0, 1,
                                       doc="share of entrants arriving with a junior certificate")
    entrant_age_mean: float = spec(20.0, "assumption", 16, 40, doc="mean entry age, years")
    entrant_age_sd: float = spec(2.5, "assumption", 0, 10, doc="sd of entry age, years")


@dataclass
class RetirementParams:
    """Statutory retirement ages and the phased 2025 reform (rule_retirement)."""

    male_from: float = spec(60.0, "rule_retirement", 40, 80, doc="men's statutory retirement age before the reform, years")
    male_to: float = spec(63.0, "rule_retirement", 40, 80, doc="men's retirement age when the reform is complete, years")
    female_from: float = spec(50.0, "rule_retirement (women workers)", 40, 80, doc="women workers' retirement age before the reform, years")
    female_to: float = spec(55.0, "rule_retirement (women workers)", 40, 80, doc="women workers' retirement age when the reform is complete, years")
    reform_start: str = spec("2025-01", "rule_retirement", doc="first month (YYYY-MM) of the phased reform")
    male_months_per_step: int = spec(4, "rule_retirement (one month later every 4 months)", 1, 60, doc="months of original retirement date per month of delay, men")
    female_months_per_step: int = spec(2, "rule_retirement (one month later every 2 months)", 1, 60, doc="months of original retirement date per month of delay, women")


@dataclass
class WageParams:
    """Pay: level ladder x firm premium x individual factor, with nominal growth."""

    growth_per_year: float = spec(0.054, "wage_growth (low end)", -0.5, 1, doc="nominal wage growth")
    apprentice_pay_ratio: float = spec(0.7, "assumption", 0, 1, lo_open=True, doc="apprentice pay / 初级工 pay")
    firm_premium_sd: float = spec(0.15, "assumption", 0, 2, doc="sd of log firm wage premium")
    individual_sd: float = spec(0.25, "assumption", 0, 2, doc="sd of log individual wage factor")
    craftsman_salary: bool = spec(False, "rule_craftsman_salary", doc="pay levels 6-7 at least the craftsman salary")
    craftsman_salary_floor: list[float] = spec([200000.0, 250000.0], "rule_craftsman_salary", 0, 1e8, length=2,
                                               doc="annual floor for levels 6 and 7, yuan (start-year prices)")
    middle_income_threshold: float = spec(100000.0, "assumption", 0, 1e8,
                                          doc="annual income counted as middle income, yuan")


@dataclass
class FirmParams:
    """Firm population: sizes, pay premium, levy and competition fund."""

    size_alpha: float = spec(1.1, "assumption (Zipf-like firm sizes)", 0.1, 5, lo_open=True, doc="Pareto shape of firm sizes (smaller: more concentrated)")
    levy_rate: list[float] = spec([0.015, 0.025], "rule_training_levy", 0, 0.08, length=2,
                                  doc="training levy range, share of payroll")
    levy_frontline_share: float = spec(0.6, "rule_training_levy (at least 60% on front-line workers)", 0.6, 1, doc="share of the levy spent on front-line workers")
    competition_fund_rate: float = spec(0.01, "rule_comp_fund", 0, 0.1, doc="competition fund, share of payroll")


@dataclass
class TrainingParams:
    """Training lever: subsidised places bought from a budget."""

    enabled: bool = spec(True, "scenario", doc="training lever on or off")
    intensity: float = spec(1.0, "scenario", 0, 100, doc="multiplier on the status-quo budget")
    cost_per_place: float = spec(1200.0, "cq_training_cost", 0, 1e6, lo_open=True,
                                 doc="yuan per person-time at the start; grows with wages")
    levy_upgrade_share: float = spec(0.05, "assumption", 0, 1,
                                     doc="share of the front-line levy that buys skill-upgrade places")
    allocation: str = spec("random", "assumption", choices=("random", "lowest_level", "near_standard"),
                           doc="who gets a place")
    eligible_max_level: int = spec(4, "ladder (certifiable levels)", 0, 4, doc="highest level that may receive a training place")
    progress_gain: float = spec(0.10, "assumption", 0, 5, doc="progress (standards) gained per course")
    wait_credit_months: int = spec(6, "assumption (cap from rule_wait_* notes)", 0, 60,
                                   doc="months off the wait per course, capped at two years")


@dataclass
class CompetitionParams:
    """Competition lever: events, participants, promotion of the best (以赛代评)."""

    enabled: bool = spec(True, "scenario", doc="competition lever on or off")
    intensity: float = spec(1.0, "scenario", 0, 100, doc="multiplier on status-quo participation")
    events_per_year: int = spec(4, "assumption", 1, 12, doc="competition rounds per year")
    eligible_levels: list[int] = spec([1, 4], "rule_comp_promo", 0, 4, length=2,
                                      doc="lowest and highest level that may take part (winners rise at most to 5)")
    selection: str = spec("progress", "assumption", choices=("random", "progress"),
                          doc="how firms pick participants")
    promote_fraction: float = spec(0.022, "nat_comp_promo_rate", 0, 1, doc="share of participants promoted")
    cooldown_months: int = spec(12, "rule_comp_promo (at most one promotion a year)", 0, 120, doc="months after a competition promotion before another one")
    prep_progress_gain: float = spec(0.03, "assumption", 0, 5, doc="progress gained by preparing (以赛促训)")
    luck_sd: float = spec(0.5, "assumption", 0, 10, doc="sd of luck in the score")
    prize_per_promotion: float = spec(3000.0, "assumption", 0, 1e7, doc="prize paid into income, yuan")
    subsidised_events_per_year: float = spec(20.0, "assumption", 0, 1e6, doc="key competitions subsidised")
    subsidy_per_event: float = spec(200000.0, "rule_comp_subsidy", 0, 1e9, doc="yuan per key competition")


@dataclass
class StudioParams:
    """Studio lever: masters mentor members, who learn faster and may be promoted out of turn."""

    enabled: bool = spec(True, "scenario", doc="studio lever on or off")
    intensity: float = spec(1.0, "scenario", 0, 100, doc="multiplier on status-quo studios and growth")
    members_per_studio: float = spec(17.4, "derived: cq_studios_2024 note (15000 members / 860 studios)", 0, 1000, doc="member places per studio")
    master_min_level: int = spec(4, "issue 2 (技师 or above)", 3, 7, doc="lowest level of a studio master")
    masters_share_max: float = spec(0.2, "assumption", 0, 1,
                                    doc="largest share of workers at master level who can lead a studio")
    member_levels: list[int] = spec([1, 4], "assumption", 0, 4, length=2, doc="levels that may join")
    term_months: int = spec(24, "assumption", 1, 240, doc="months of membership")
    learning_multiplier: float = spec(*calibrated("levers.studio", "learning_multiplier", 1.5,
                                                  "prior_mentoring (low end)"), 1, 10, doc="members' learning speed")
    fast_track_rate: float = spec(0.1, "assumption (rule_fast_track)", 0, 1,
                                  doc="annual chance a ready member is promoted out of turn")
    subsidy_per_studio: float = spec(200000.0, "rule_studio_subsidy", 0, 1e9, doc="yuan per studio over 3 years")


@dataclass
class LeverParams:
    """The three policy levers, applied in this order each month."""

    training: TrainingParams = field(default_factory=TrainingParams)
    competition: CompetitionParams = field(default_factory=CompetitionParams)
    studio: StudioParams = field(default_factory=StudioParams)


#: agents below which a run's figures are mostly sampling noise: a run says so (RunConfig.few_agents_note)
FEW_AGENTS = 1000


@dataclass
class RunConfig:
    """Everything one run needs. Defaults: Chongqing status quo, 100,000 agents, fixed seed."""

    region: RegionParams = field(default_factory=RegionParams)
    scenario: str = spec("baseline", "scenario", doc="scenario name (label of the run)")
    horizon: HorizonParams = field(default_factory=HorizonParams)
    n_agents: int = spec(100_000, "issue 2", 1, None, doc="simulated agents (each carries a weight)")
    seed: int = spec(20221231, "fixed default", 0, 2**63 - 1, doc="base random seed of the run")
    replicate: int = spec(0, "sweeps", 0, 1_000_000, doc="replicate index (seed derivation)")
    draw: int | None = spec(None, "sweeps", 0, 1_000_000,
                            doc="joint draw of the calibration ensemble and the structural ranges, applied by "
                                "the command line (sim.studies.uncertainty.draw_config); null: central values")
    behaviour: BehaviourParams = field(default_factory=BehaviourParams)
    retirement: RetirementParams = field(default_factory=RetirementParams)
    wages: WageParams = field(default_factory=WageParams)
    firms: FirmParams = field(default_factory=FirmParams)
    levers: LeverParams = field(default_factory=LeverParams)
    cert_subsidy: list[float] = spec([1000.0, 1500.0, 2000.0, 2000.0, 2000.0],
                                     "rule_cert_subsidy (levels 1-3); levels 4-5 assumption (as level 3)",
                                     0, 1e7, length=5, doc="government subsidy per certificate for levels 1..5, yuan")
    targets_file: str = spec("", "packaged copy of targets.csv", doc="path of a targets file; empty: packaged")
    max_memory_gb: float = spec(16.0, "machine (24 GiB)", 0, 1e6, lo_open=True,
                                doc="refuse runs whose estimated memory exceeds this")

    # -- derived --------------------------------------------------------------------------
    @property
    def start_year(self) -> int:
        """Year of the first forecast month."""
        if self.horizon.start_year is not None:
            return self.horizon.start_year
        return self.start_month // 12

    @property
    def start_month(self) -> int:
        """Absolute index of the first forecast month: January of horizon.start_year if given, else the
        month after region.observed."""
        if self.horizon.start_year is not None:
            return self.horizon.start_year * 12
        y, m = (int(x) for x in self.region.observed.split("-"))
        return y * 12 + m  # (m - 1) + 1

    @property
    def n_months(self) -> int:
        return self.horizon.end_year * 12 + 12 - self.start_month

    @property
    def weight(self) -> float:
        """People represented by each simulated agent."""
        return self.region.population / self.n_agents

    def switched_off_note(self) -> str | None:
        """A warning for a lever whose intensity is set while the lever is off (scenario=no_policy with
        levers.studio.intensity=2 ran as the scenario alone, without a word); None if there is none."""
        off = [name for name in ("training", "competition", "studio")
               if not getattr(self.levers, name).enabled and getattr(self.levers, name).intensity != 1.0]
        if not off:
            return None
        said = ", ".join(f"levers.{n}.intensity={getattr(self.levers, n).intensity:g}" for n in off)
        return (f"{said} {'has' if len(off) == 1 else 'have'} no effect: the lever{'s are' if len(off) > 1 else ' is'} "
                f"off in this run (scenario {self.scenario}; " + ", ".join(f"levers.{n}.enabled=false" for n in off)
                + "); add " + " ".join(f"levers.{n}.enabled=true" for n in off) + " to use it")

    def few_agents_note(self) -> str | None:
        """A warning for a workforce too small to say much (n_agents=1 gave a high-skill share of 100%,
        n_agents=3 of 50%, without a word), or larger than the region's: None from FEW_AGENTS up to one
        agent a worker."""
        if self.weight < 1.0:  # more agents than the region has workers: more cost, no more information
            return (f"n_agents={self.n_agents:,} is more than the region's {self.region.population:,.0f} workers: "
                    f"each agent stands for {self.weight:.2f} of a worker (no more information than "
                    f"n_agents={round(self.region.population):,} would give, at more cost)")
        if self.n_agents >= FEW_AGENTS:
            return None
        return (f"n_agents={self.n_agents}: each agent stands for {self.weight:,.0f} workers; below {FEW_AGENTS:,} "
                "agents the figures move by whole agents and are mostly sampling noise (a forecast runs 20,000 "
                "and more)")


# ------------------------------------------------------------------------------------------
# Checking and building
# ------------------------------------------------------------------------------------------

# State arrays (about 50 bytes) plus per-step temporaries; conservative against the measured peak of
# 576 MB for 5.7M agents including the interpreter (benchmarks/README.md).
BYTES_PER_AGENT = 64


def range_text(m: dict, kind: str = "a number", fmt=str, ge: str = ">=", le: str = "<=") -> str:
    """The allowed range in a field's metadata, e.g. 'a number in [0, 1]' (errors and docs)."""
    lo, hi, open_lo = m.get("lo"), m.get("hi"), m.get("lo_open")
    if lo is not None and hi is not None:
        return f"{kind} in {'(' if open_lo else '['}{fmt(lo)}, {fmt(hi)}]"
    if lo is not None:
        return f"{kind} {'>' if open_lo else ge} {fmt(lo)}"
    if hi is not None:
        return f"{kind} {le} {fmt(hi)}"
    return kind





def _float_text(text: str) -> float | None:
    """A number written out ("2", "0.35", "1e-3"), or None: not a word that float() reads (nan, inf)."""
    t = text.strip()
    if not t or not all(c in "0123456789.eE+-" for c in t):
        return None
    try:
        return float(t)
    except ValueError:
        return None


def _check_number(path: str, value: Any, kind: type, m: dict) -> Any:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's booleans are not numbers.Real
        if kind is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        elif kind is float and isinstance(value, str) and _float_text(value) is not None:
            value = _float_text(value)  # as "2000" is an integer: simulate(training_intensity="2") was refused
        else:
            what = "an integer" if kind is int else "a number"
            raise ConfigError(path, value, f"{what}, {range_text(m)}" if m.get("lo") is not None else what)
    if isinstance(value, numbers.Integral):  # numpy's integers too (a loop over np.arange, EMA's draws)
        value = int(value)
    elif not isinstance(value, float):  # numpy's floats: float64 is a float already, float32 is not
        value = float(value)
    if kind is int:
        if isinstance(value, float):
            if not value.is_integer():
                raise ConfigError(path, value, f"an integer, {range_text(m)}")
            value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(path, value, f"a finite number, {range_text(m)}")
    lo, hi = m.get("lo"), m.get("hi")
    if (lo is not None and (value < lo or (m.get("lo_open") and value == lo))) or (hi is not None and value > hi):
        raise ConfigError(path, value, range_text(m))
    return value


def _check_value(path: str, value: Any, tp: Any, m: dict) -> Any:
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # numpy's scalars (np.bool_ from a
        value = value.item()  # pandas row, np.float32) and 0-d arrays: the Python value they hold
    if isinstance(value, str) and value == "???":  # OmegaConf's mark of a value no config file gave
        raise MissingSetting(path, value, "every region preset must give it (see sim/conf/region/chongqing.yaml)")
    origin = get_origin(tp)
    if origin is list:
        (elem,) = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, value, f"a list of {m.get('length') or ''} numbers".replace("  ", " "))
        if m.get("length") is not None and len(value) != m["length"]:
            raise ConfigError(path, list(value), f"a list of exactly {m['length']} numbers")
        return [_check_number(f"{path}[{i}]", v, elem, m) for i, v in enumerate(value)]
    if origin is dict:
        _, inner = get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(path, value, "a mapping")
        return {str(k): _check_value(f"{path}[{k}]", v, inner, m) for k, v in value.items()}
    if origin is not None and type(None) in get_args(tp):  # Optional[...]
        if value is None:
            return None
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return _check_value(path, value, inner, m)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, value, "true or false (a switch)")
        return value
    if tp in (int, float):
        return _check_number(path, value, tp, m)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, value, "a string")
        if m.get("choices") and value not in m["choices"]:
            raise ConfigError(path, value, "one of " + ", ".join(m["choices"]))
        return value
    raise TypeError(f"unsupported config type {tp} at {path}")  # programming error, not user input


@lru_cache(maxsize=None)
def _schema(cls: type) -> tuple[dict, dict]:
    """Type hints and fields of a config dataclass (resolving the hints is most of a check's cost)."""
    return get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)}


def walk_schema(cls: type = RunConfig, path: str = ""):
    """Each setting of the schema, groups included and followed by their own, in declaration order: its
    dotted name (`levers.training.intensity`), the dataclass declaring it and its field."""
    hints, fields = _schema(cls)
    for name, spec in fields.items():
        sub = f"{path}.{name}" if path else name
        yield sub, cls, spec
        if dataclasses.is_dataclass(hints[name]):
            yield from walk_schema(hints[name], sub)


def setting_names(cls: type = RunConfig, path: str = "") -> list[str]:
    """Every dotted setting of the schema (`levers.training.intensity`), groups included."""
    return [name for name, _, _ in walk_schema(cls, path)]


def closest_setting(key: str) -> str | None:
    """The schema's setting a mistyped key most likely meant (`levers.training.intensty`), if one is close."""
    import difflib

    found = difflib.get_close_matches(key.lstrip("+~"), setting_names(), n=1, cutoff=0.85)
    return found[0] if found else None


def from_mapping(data: dict | None, cls: type = RunConfig, path: str = "") -> Any:
    """Build `cls` from a nested dict, checking names, types and ranges of every value."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(path or "config", data, f"a mapping of {cls.__name__} fields")
    hints, fields = _schema(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = f"{path}.{unknown[0]}" if path else str(unknown[0])
        raise ConfigError(key, data[unknown[0]], "a known key: " + ", ".join(sorted(fields)))
    kwargs = {}
    for name, value in data.items():
        f, tp, sub = fields[name], hints[name], f"{path}.{name}" if path else name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_mapping(value, tp, sub)
        else:
            kwargs[name] = _check_value(sub, value, tp, dict(f.metadata))
    obj = cls(**kwargs)
    if cls is RunConfig:
        check_cross_fields(obj)
    return obj


def validate(cfg: RunConfig) -> RunConfig:
    """Re-check a RunConfig built in Python (e.g. by a test or notebook) and return it."""
    return from_mapping(to_dict(cfg))


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (for YAML/JSON output)."""
    return dataclasses.asdict(cfg)


def _check_month(path: str, value: str) -> tuple[int, int]:
    try:
        y, m = value.split("-")
        y, m = int(y), int(m)
        if not 1 <= m <= 12:
            raise ValueError
    except ValueError:
        raise ConfigError(path, value, "a date YYYY-MM") from None
    return y, m


def check_cross_fields(cfg: RunConfig) -> None:
    """Checks that involve more than one field."""
    _check_month("region.observed", cfg.region.observed)
    _check_month("retirement.reform_start", cfg.retirement.reform_start)
    h = cfg.region.history
    _check_month("region.history.origin", h.origin)
    if h.cutoff:
        _check_month("region.history.cutoff", h.cutoff)
    for name in ("high_skill_share", "level_share", "skilled_workers"):
        for date in getattr(h, name):
            _check_month(f"region.history.{name}", date)
    obs_y, obs_m = _check_month("region.observed", cfg.region.observed)
    last = cfg.start_month - 1  # the history's last month (month indices as sim.calendar.month_index)
    for name in ("high_skill_share", "level_share", "skilled_workers"):
        for date in getattr(h, name):  # the run never reads them, and reports drew them as observed
            y, mth = _check_month(f"region.history.{name}", date)
            if y * 12 + mth - 1 > last:
                raise ConfigError(f"region.history.{name}[{date}]", getattr(h, name)[date],
                                  f"a date before the forecast starts ({last // 12}-{last % 12 + 1:02d} at the "
                                  "latest), where the history ends; a figure published for a later date is a "
                                  "check of the forecast (targets.csv), not part of its history")
    if cfg.region.high_skill_target_year < obs_y:
        raise ConfigError("region.high_skill_target_year", cfg.region.high_skill_target_year,
                          f"a year no earlier than region.observed ({cfg.region.observed}): a target for a year "
                          "before the forecast starts is drawn as one the forecast is compared with")
    skilled_now = cfg.region.population * (1 - cfg.region.uncertified_share)
    off = []  # each stock outside its bound: (date, stock, the bound)
    for date, stock in h.skilled_workers.items():
        y, mth = _check_month(f"region.history.skilled_workers[{date}]", date)
        years = abs((obs_y * 12 + obs_m) - (y * 12 + mth)) / 12.0
        bound = math.exp(0.2 * years + 0.1)  # at most 20% a year between a stock and the population
        if not skilled_now / bound <= stock <= skilled_now * bound:
            off.append((date, stock, bound))
    ratios = [stock / skilled_now for _, stock, _ in off] if skilled_now > 0 else []
    if ratios and len(off) == len(h.skilled_workers) and (min(ratios) > 10 or max(ratios) < 0.1):
        date, stock, _ = off[0]  # every stock off its bound the same way, tenfold and more: the head count
        raise ConfigError("region.population", cfg.region.population,
                          f"a head count of workers (not in 万 or millions) near the observed skilled stocks: "
                          f"{stock:,.0f} skilled at {date} (region.history.skilled_workers) over 1 - uncertified_share "
                          f"is {stock / (1 - cfg.region.uncertified_share):,.0f} workers")
    for date, stock, bound in off[:1]:
        raise ConfigError(f"region.history.skilled_workers[{date}]", stock,
                          f"a stock consistent with region.population x (1 - uncertified_share) = "
                          f"{skilled_now:,.0f} at {cfg.region.observed} (within {bound:.2f}x); set "
                          f"region.history.skilled_workers={{}} with a population of your own")
    for date, shares in h.level_share.items():
        if sum(shares) > 1:
            raise ConfigError(f"region.history.level_share[{date}]", shares, "shares summing to at most 1")
    for key, rng in cfg.region.structural.items():
        central = _field_value(cfg, key)
        if central is None:
            raise ConfigError("region.structural", key, "a numeric config key such as " + STRUCTURAL_INPUTS[0])
        lo, hi = rng
        if not lo <= hi:
            raise ConfigError(f"region.structural[{key}]", list(rng), "a range [LO, HI] with LO <= HI")
        if not lo <= central <= hi:
            raise ConfigError(key, central, f"a value inside its structural range [{lo}, {hi}] (region.structural): "
                              f"{central:g} is its central value (the preset's, unless given); set {key} inside "
                              "the range, or give a range that holds it")
    mix_sum = sum(cfg.region.skilled_mix)
    if abs(mix_sum - 1.0) > 1e-3:
        raise ConfigError("region.skilled_mix", cfg.region.skilled_mix, f"shares summing to 1 (they sum to {mix_sum:.4f})")
    if not (sum(cfg.region.skilled_mix[:2]) > 0 and sum(cfg.region.skilled_mix[2:]) > 0):
        # the simulated history scales the two parts to each observed high-skill share (sim.history.scaled_mix)
        raise ConfigError("region.skilled_mix", cfg.region.skilled_mix,
                          "shares summing to 1, some at levels 1-2 (初级工, 中级工) and some at levels 3-7 (high-skill)")
    if cfg.horizon.end_year < cfg.start_year:
        if cfg.horizon.start_year is not None:  # the start given: it is the one out of place, or both are
            raise ConfigError("horizon.start_year", cfg.horizon.start_year,
                              f"a year no later than horizon.end_year ({cfg.horizon.end_year})")
        raise ConfigError("horizon.end_year", cfg.horizon.end_year,
                          f"a year no earlier than the start year {cfg.start_year}")
    lo, hi = cfg.firms.levy_rate
    if lo > hi:
        raise ConfigError("firms.levy_rate", cfg.firms.levy_rate, "[low, high] with low <= high")
    for name, (a, b) in (("levers.competition.eligible_levels", cfg.levers.competition.eligible_levels),
                         ("levers.studio.member_levels", cfg.levers.studio.member_levels)):
        if a > b:
            raise ConfigError(name, [a, b], "[lowest, highest] with lowest <= highest")
    if sum(cfg.behaviour.entrant_school_shares) > 1:
        raise ConfigError("behaviour.entrant_school_shares", cfg.behaviour.entrant_school_shares,
                          "two shares summing to at most 1")
    r = cfg.retirement
    for who in ("male", "female"):
        start, end = getattr(r, f"{who}_from"), getattr(r, f"{who}_to")
        if end < start:
            raise ConfigError(f"retirement.{who}_to", end, f"an age no lower than retirement.{who}_from ({start:g}): "
                              "the reform raises the retirement age")
    if cfg.region.mean_age >= r.male_from:
        raise ConfigError("region.mean_age", cfg.region.mean_age, f"below the retirement age {r.male_from}")
    est_gb = estimate_memory_gb(cfg)
    if est_gb > cfg.max_memory_gb:
        raise ConfigError("n_agents", cfg.n_agents,
                          f"at most about {int(cfg.max_memory_gb / est_gb * cfg.n_agents):,} agents "
                          f"(this run would need about {est_gb:.1f} GB; max_memory_gb={cfg.max_memory_gb})")


def _field_value(cfg: Any, dotted: str) -> float | None:
    """The numeric value at a dotted key of a config, or None if there is none."""
    obj = cfg
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(obj) or not hasattr(obj, part):
            return None
        obj = getattr(obj, part)
    return float(obj) if isinstance(obj, (int, float)) and not isinstance(obj, bool) else None


def with_value(cfg: Any, dotted: str, value: Any) -> Any:
    """Copy of a config dataclass with the field at a dotted key replaced."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: with_value(getattr(cfg, head), rest, value)})


def value_at(cfg: Any, dotted: str) -> Any:
    """The value at a dotted key of a config dataclass."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


@lru_cache(maxsize=None)
def whole_number_field(dotted: str) -> bool:
    """A setting that takes whole numbers (months, years, events), as RunConfig's default holds it: a drawn
    or varied value is rounded to it (`with_number`). Cached: the calibration's chains ask it at every step."""
    try:
        value = value_at(RunConfig(), dotted)
    except AttributeError:
        return False
    return isinstance(value, int) and not isinstance(value, bool)


def with_number(cfg: Any, dotted: str, value: float) -> Any:
    """`with_value` for a drawn or varied number: a whole-number field (months, years, events) gets the
    nearest whole number, as a user would write it; any other gets the float."""
    return with_value(cfg, dotted, int(round(value)) if isinstance(value_at(cfg, dotted), int) else float(value))


def estimate_memory_gb(cfg: RunConfig) -> float:
    """Memory the run would need, estimated before anything is allocated."""
    top = max([cfg.region.growth_per_year] + [r[1] for k, r in cfg.region.structural.items()
                                              if k == "region.growth_per_year"])
    growth = max(1.0, (1 + top) ** (cfg.n_months / 12))
    return cfg.n_agents * growth * 1.1 * BYTES_PER_AGENT / 1e9 + 0.3


#: a run's settings that skillsim-forecast sets itself (its options) or that say where the configs come
#: from (`region=`, given apart with any --config-dir), not which setting is forecast
FORECAST_SETS_ITSELF = ("seed", "replicate", "draw", "n_agents", "region")


def forecast_overrides(overrides: list[str], structural: dict | None = None) -> list[str]:
    """The overrides of a run that `skillsim-forecast` takes as they are, so that the forecast a run
    suggests is of the setting that ran (`scenario=training_boost levers.studio.intensity=2`), not the
    region's status quo: without Hydra's keys, the forecast's own options and what each of its runs
    draws (the calibrated parameters, `ASSUMED`, and the region's structural inputs), which it refuses, and
    an assumption without a source given at its assumed value (drawn; the forecast refuses it too; at
    another value it is held, and kept)."""
    drawn = set(ASSUMED) | set(structural or ())
    kept = []
    for o in overrides:
        key, _, value = o.partition("=")
        key = key.lstrip("+~").split("@", 1)[0]
        if key == "hydra" or key.startswith("hydra.") or key in FORECAST_SETS_ITSELF or key in drawn:
            continue
        if key in ASSUMPTION_RANGES:
            try:
                if float(value) == float(_field_value(RunConfig(), key)):
                    continue
            except (TypeError, ValueError):
                pass
        kept.append(o)
    return kept
