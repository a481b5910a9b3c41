"""Hostile input, one table: config values, names, horizon and size, files, sweeps, and the other tools.

Every case must end with exactly one non-empty line on stderr, prefixed by the tool's name and naming
what is wrong, the exit code documented in sim.errors / the README ("Errors and what they mean"), no
traceback, and no output at all: nothing is created or changed under the test's folders (no result
folder, no hidden `.partial` folder, no sweep folder, no table).

Cases run in-process (`main(argv)`, catching SystemExit), where what the user sees is the same: an
uncaught exception fails the test just as a traceback would. The cases marked `e2e` also run as real
commands (`python -m sim ...`), concurrently, to observe exit codes and stderr end to end; a few cases
that get past the checks into Hydra's run only run that way.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import sim.model
from sim import aggregate as aggregate_module
from sim import cli, verify
from sim.cli import CONFIG_DIR, run_forecast
from sim.config import HorizonParams, RunConfig
from sim.errors import EXIT_CONFIG, EXIT_DATA, EXIT_INTERNAL, EXIT_OUTPUT

from .conftest import own_preset

TARGETS_HEADER = "id,scope,date,metric,value,unit,kind,source,note\n"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # values, names, horizon/size, files, sweep (-m), command line
    tool: str  # skillsim, aggregate, verify, report, forecast, plan
    args: tuple[str, ...]
    code: int
    says: tuple[str, ...]  # fragments of the one-line message (placeholders as in args)
    e2e: bool = False  # also run as a real command
    only_e2e: bool = False  # gets into Hydra's run: only as a real command
    xfail: str = ""  # a known defect outside this change (reported), strict


def C(id, kind, args, code, *says, tool="skillsim", **kw) -> Case:  # noqa: N802 - a table row
    return Case(id, kind, tool, tuple(args.split()) if isinstance(args, str) else tuple(args), code, says, **kw)


V, N, H, F, M, L = "values", "names", "horizon/size", "files", "sweep (-m)", "command line"
CASES = [
    # -- values: wrong types ---------------------------------------------------------------------
    C("int-not-a-number", V, "n_agents=abc", EXIT_CONFIG, "n_agents = 'abc'", "an integer"),
    C("int-given-a-fraction", V, "seed=1.5", EXIT_CONFIG, "seed = '1.5'", "an integer"),
    # Hydra reads 1e5 as 100000.0: the message said that, not what was typed (a user trial)
    C("int-given-an-exponent", V, "n_agents=1e5", EXIT_CONFIG,
      "n_agents = '1e5' is invalid; allowed: an integer, written in digits (100000), as 1e5 is read as a decimal"),
    C("int-given-nan", V, "n_agents=nan", EXIT_CONFIG, "n_agents = 'nan'", "an integer"),
    C("float-not-a-number", V, "levers.training.intensity=high", EXIT_CONFIG, "levers.training.intensity = 'high'"),
    C("bool-not-a-bool", V, "levers.studio.enabled=perhaps", EXIT_CONFIG, "levers.studio.enabled", "true or false"),
    # OmegaConf reads any number as a switch's true: 2 ran the lever at its configured intensity
    C("bool-given-a-number", V, "levers.training.enabled=2", EXIT_CONFIG,
      "levers.training.enabled = 2 is invalid; allowed: true or false", e2e=True),
    # ... and inside a mapping given whole, which the check first read as one word
    C("bool-given-a-number-in-a-mapping", V, "levers.training={{enabled:2,intensity:1.5}}", EXIT_CONFIG,
      "levers.training.enabled = 2 is invalid; allowed: true or false"),
    C("sweep-bool-given-a-number-in-a-mapping", M, ["-m", "levers.training={{enabled:true}},{{enabled:0}}"], EXIT_CONFIG,
      "levers.training.enabled = 0 is invalid; allowed: true or false"),
    C("sweep-bool-given-a-number", M, ["-m", "levers.training.enabled=true,-1"], EXIT_CONFIG,
      "levers.training.enabled = -1 is invalid; allowed: true or false"),
    C("sweep-bool-words-and-numbers", M, ["-m", "levers.training.enabled=true,1,0"], EXIT_CONFIG,
      "levers.training.enabled = 1 is invalid; allowed: true or false"),
    C("optuna-bool-given-a-number", M, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                                        "levers.training.intensity=interval(0,3)", "levers.training.enabled=2"],
      EXIT_CONFIG, "levers.training.enabled = 2 is invalid; allowed: true or false"),
    C("optuna-bool-choice-given-a-number", M, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                                               "levers.training.enabled=choice(true,2)"],
      EXIT_CONFIG, "levers.training.enabled = 2 is invalid; allowed: true or false"),
    C("list-given-a-number", V, "region.skilled_mix=0.5", EXIT_CONFIG, "region.skilled_mix"),
    C("number-given-a-list", V, "horizon.end_year=[2030]", EXIT_CONFIG, "horizon.end_year", "an integer"),
    C("list-wrong-length", V, "region.skilled_mix=[0.5,0.5]", EXIT_CONFIG, "region.skilled_mix", "exactly 7"),
    C("date-not-a-month", V, "region.observed=2022-13", EXIT_CONFIG, "region.observed", "YYYY-MM"),
    C("choice-not-offered", V, "levers.training.allocation=everyone", EXIT_CONFIG,
      "levers.training.allocation", "random, lowest_level, near_standard"),
    # -- values: out of range, NaN and infinity, negative money ------------------------------------
    C("seed-negative", V, "seed=-1", EXIT_CONFIG, "seed = -1", "[0, "),
    C("share-above-one", V, "region.female_share=1.5", EXIT_CONFIG, "region.female_share", "[0, 1]"),
    C("intensity-negative", V, "levers.training.intensity=-1", EXIT_CONFIG, "levers.training.intensity", "[0, 100]"),
    C("level-out-of-ladder", V, "levers.training.eligible_max_level=9", EXIT_CONFIG,
      "levers.training.eligible_max_level", "[0, 4]"),
    C("mix-not-summing-to-one", V, "region.skilled_mix=[0.9,0.9,0,0,0,0,0]", EXIT_CONFIG,
      "region.skilled_mix", "summing to 1"),
    C("mix-without-high-skill-levels", V, "region.skilled_mix=[1,0,0,0,0,0,0]", EXIT_CONFIG,
      "region.skilled_mix = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]", "some at levels 3-7"),
    C("mix-without-levels-1-2", V, "region.skilled_mix=[0,0,0,0,0,0,1]", EXIT_CONFIG,
      "region.skilled_mix", "some at levels 1-2", e2e=True),
    C("int-given-null", V, "seed=null", EXIT_CONFIG, "seed = null is invalid; allowed: a value: it cannot be null"),
    C("list-given-an-int", V, "levers.competition.eligible_levels=3", EXIT_CONFIG,
      "levers.competition.eligible_levels = 3 is invalid; allowed: a list"),
    C("group-given-a-number", V, "levers=5", EXIT_CONFIG, "levers = 5 is invalid; allowed: a group of settings"),
    C("retirement-reform-lowering-the-age", V, "retirement.male_from=70", EXIT_CONFIG,
      "retirement.male_to = 63.0 is invalid; allowed: an age no lower than retirement.male_from (70)"),
    C("hydra-output-subdir", N, "hydra.output_subdir=.hydra", EXIT_CONFIG,
      "hydra.output_subdir = '.hydra' is invalid; allowed: null", e2e=True),
    C("hydra-job-chdir", N, "hydra.job.chdir=true", EXIT_CONFIG, "hydra.job.chdir = true is invalid; allowed: false"),
    C("sweep-hydra-output-subdir", M, ["-m", "replicate=0,1", "hydra.output_subdir=.hydra"], EXIT_CONFIG,
      "hydra.output_subdir = '.hydra' is invalid"),
    C("scenario-given-a-list", N, "scenario=[no_policy,baseline]", EXIT_CONFIG,
      "scenario = '[no_policy,baseline]' is invalid; allowed: one scenario (one of baseline,",
      "sweep them: skillsim -m scenario=A,B", e2e=True),
    C("a-setting-the-draw-replaces", V, "draw=3 region.growth_per_year=0.03", EXIT_CONFIG,
      "region.growth_per_year = 0.03 is invalid; allowed: not set together with draw=3, whose joint draw replaces it",
      e2e=True),
    C("sweep-nevergrad-not-installed", M, ["-m", "hydra/sweeper=nevergrad", "replicate=0,1"], EXIT_CONFIG,
      "hydra/sweeper = 'nevergrad' is invalid; allowed: one of basic, optuna; Nevergrad's sweeper is not installed "
      "with skillsim (pip install hydra-nevergrad-sweeper)"),
    C("sweep-a-number-written-twice", M, ["-m", "levers.training.intensity=1,1.0,2"], EXIT_CONFIG,
      "levers.training.intensity = '1,1.0,2' is invalid; allowed: each value once: 1 and 1.0 are the same setting"),
    C("sweep-a-setting-the-draw-replaces", M, ["-m", "draw=range(0,2)", "region.growth_per_year=0,0.03"], EXIT_CONFIG,
      "region.growth_per_year = 0.0 is invalid; allowed: not set together with draw=0"),
    C("sweep-a-setting-a-later-region-draws", M, ["-m", "region=chongqing,national", "draw=range(0,2)",
                                                  "region.uncertified_share=0.1"], EXIT_CONFIG,
      "region.uncertified_share = 0.1 is invalid; allowed: not set together with draw=0"),
    C("optuna-a-setting-its-swept-draw-replaces", M, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2",
                                                      "draw=range(0,5)", "region.base_wage=61000"],
      EXIT_CONFIG, "region.base_wage = 61000.0 is invalid; allowed: not set together with draw=0"),
    C("optuna-a-setting-the-draw-replaces", M, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "draw=1",
                                                "behaviour.turnover_per_year=interval(0.15,0.17)", "region.base_wage=61000"],
      EXIT_CONFIG, "region.base_wage = 61000.0 is invalid; allowed: not set together with draw=1"),
    C("region-null", N, "region=null", EXIT_CONFIG,
      "region = 'null' is invalid; allowed: the name of a preset (chongqing, national, zhong_county, or your own)",
      e2e=True),
    C("scenario-a-number", N, "scenario=5", EXIT_CONFIG, "scenario = '5' is invalid; allowed: the name of a preset"),
    C("sweep-region-null", M, ["-m", "region=null,national"], EXIT_CONFIG,
      "region = 'null' is invalid; allowed: the name of a preset"),
    C("forecast-a-setting-it-draws", V, "region.growth_per_year=0.03 params=2 structural=2 replicates=2", EXIT_CONFIG,
      "region.growth_per_year = 0.03 is invalid; allowed: not set here: skillsim-forecast draws it for each run "
      "(a structural input of the region", tool="forecast"),
    C("plan-a-setting-it-draws", V, "behaviour.turnover_per_year=0.16 region.base_wage=61000 uncertainty=true "
      "target.share=0.35 target.year=2030", EXIT_CONFIG,
      "region.base_wage = 61000.0 is invalid; allowed: not set here: skillsim-plan with uncertainty=true draws it",
      tool="plan"),
    C("forecast-region-null", N, "region=null params=2 structural=2 replicates=2", EXIT_CONFIG,
      "region = 'null' is invalid; allowed: the name of a preset", tool="forecast"),
    C("region-given-a-list", N, "region=[national,zhong_county]", EXIT_CONFIG,
      "region = '[national,zhong_county]' is invalid; allowed: one region"),
    C("sweep-scenario-given-a-list", M, ["-m", "scenario=[no_policy,baseline]", "replicate=0,1"], EXIT_CONFIG,
      "scenario = '[no_policy,baseline]' is invalid"),
    C("optuna-interval-outside-the-allowed-range", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "levers.training.intensity=interval(-3,-1)"],
      EXIT_CONFIG, "levers.training.intensity = -3.0 is invalid; allowed: a number in [0, 100]"),
    C("optuna-unknown-swept-key", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "levers.trainng.intensity=interval(0,3)"],
      EXIT_CONFIG, "levers.trainng.intensity = 'interval(0,3)' is invalid; allowed: a key of the config"),
    C("optuna-objective-year-beyond-the-runs", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "levers.training.intensity=interval(0,3)",
       "horizon.end_year=2024", "objective.year=2040"],
      EXIT_CONFIG, "objective.year = 2040 is invalid; allowed: a year the runs reach"),
    # ... also when the horizon is swept and no value of it reaches the year (every trial ran, none scored)
    C("optuna-objective-year-beyond-every-swept-horizon", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "horizon.end_year=choice(2026,2027)",
       "objective.year=2030"],
      EXIT_CONFIG, "objective.year = 2030 is invalid; allowed: a year the runs reach (2023-2027, the latest swept"),
    # an infinite weight gave every trial -inf (reported as the best), a NaN one "a bug" after all the jobs,
    # and a NaN target was dropped
    C("optuna-objective-weight-infinite", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "levers.training.intensity=interval(0,3)",
       "objective.cost_weight=inf"],
      EXIT_CONFIG, "objective.cost_weight = inf is invalid; allowed: a finite number"),
    C("optuna-objective-penalty-nan", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "levers.training.intensity=interval(0,3)",
       "objective.penalty=nan"],
      EXIT_CONFIG, "objective.penalty = nan is invalid; allowed: a finite number"),
    C("optuna-objective-target-nan", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "levers.training.intensity=interval(0,3)",
       "objective.target=nan"],
      EXIT_CONFIG, "objective.target = nan is invalid; allowed: a finite number"),
    C("non-ascii-path-unquoted", M, ["n_agents=300", "hydra.run.dir=结果/运行1"],  # LexerNoViableAltException
      EXIT_CONFIG, "cannot read the override 'hydra.run.dir=结果/运行1': a value with spaces or non-ASCII characters "
      "needs quotes around all of it: hydra.run.dir='结果/运行1'"),
    C("setting-without-equals", M, ["region", "national"],  # a user trial: Hydra's "missing EQUAL at '<EOF>'"
      EXIT_CONFIG, "cannot read the override 'region': a setting is KEY=VALUE, with no spaces around '='"),
    C("sweep-range-step-zero", M, ["-m", "replicate=range(0,3,0)"],  # Python's ValueError read "a bug in skillsim"
      EXIT_CONFIG, "replicate = 'range(0,3,0)' is invalid; allowed: a sweep Hydra can expand"),
    C("sweep-range-too-long", M, ["-m", "replicate=range(0,100000000)"],  # sat silent for minutes
      EXIT_CONFIG, "replicate = 'range(0,100000000)' is invalid; allowed: a sweep of at most 100,000 values"),
    C("optuna-range-beyond-the-allowed-values", M,  # range(...)'s ends were not checked, interval(...)'s were
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "levers.training.intensity=range(1,500,10)"],
      EXIT_CONFIG, "levers.training.intensity = 491.0 is invalid; allowed: a number in [0, 100]"),  # Optuna's top
    # sweeps Optuna refuses were reported as a bug in skillsim
    C("optuna-range-high-end-first", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "horizon.end_year=range(2030,2025,-1)"],
      EXIT_CONFIG, "horizon.end_year = 'range(2030,2025,-1)' is invalid; allowed: a sweep the sweeper takes (Optuna: "
      "The `low` value must be smaller than or equal to the `high` value"),
    C("optuna-range-step-not-positive", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "horizon.end_year=range(2025,2030,-1)"],
      EXIT_CONFIG, "horizon.end_year = 'range(2025,2030,-1)' is invalid; allowed: a sweep the sweeper takes (Optuna: "
      "The `step` value must be non-zero positive value"),
    C("optuna-grid-given-an-interval", M,
      ["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "levers.training.intensity=interval(0,3)"],
      EXIT_CONFIG, "levers.training.intensity = 'interval(0,3)' is invalid; allowed: a sweep the sweeper takes "
      "(Optuna: GridSampler only supports discrete distributions"),
    # the grid stops before range's high end, as shuffle(range(...)) does; Optuna's samplers stop at the last step
    C("optuna-grid-objective-year-beyond-its-range", M,
      ["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "horizon.end_year=range(2025,2031)",
       "objective.year=2031"],
      EXIT_CONFIG, "objective.year = 2031 is invalid; allowed: a year the runs reach (2023-2030, the latest swept"),
    C("optuna-objective-year-beyond-the-last-step", M,
      ["-m", "hydra/sweeper=optuna", "horizon.end_year=range(2025,2030,2)", "objective.year=2030"],
      EXIT_CONFIG, "objective.year = 2030 is invalid; allowed: a year the runs reach (2023-2029, the latest swept"),
    C("optuna-sampler-setting-it-does-not-take", M,  # the grid sampler has no seed: "a bug in skillsim"
      ["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=grid", "+hydra.sweeper.sampler.seed=1",
       "horizon.end_year=choice(2023,2024)"],
      EXIT_CONFIG, "hydra.sweeper.sampler.seed = 1 is invalid; allowed: no setting: optuna.samplers.GridSampler"),
    # the default sampler's seed, kept when only its _target_ changed, was refused as if the user had set it
    C("optuna-sampler-target-changed-alone", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.sampler._target_=optuna.samplers.GridSampler",
       "horizon.end_year=choice(2023,2024)"],
      EXIT_CONFIG, "hydra.sweeper.sampler.seed = null is invalid; allowed: no setting: optuna.samplers.GridSampler "
      "takes none; the default sampler's settings stay when only its _target_ is changed: choose the sampler as a "
      "group instead, hydra/sweeper/sampler=NAME (grid, random"),
    C("optuna-sampler-setting-misspelt", M,
      ["-m", "hydra/sweeper=optuna", "+hydra.sweeper.sampler.sed=1", "horizon.end_year=choice(2023,2024)"],
      EXIT_CONFIG, "hydra.sweeper.sampler.sed = 1 is invalid; allowed: a setting of optuna.samplers.TPESampler (",
      "seed"),
    # a spend weight of the wrong sign for the direction rewarded spending, without a word (a user trial)
    C("optuna-a-cost-weight-that-rewards-spend", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=maximize", "objective.cost_weight=-1",
       "levers.training.intensity=interval(0,3)"],
      EXIT_CONFIG, "objective.cost_weight = -1.0 is invalid; allowed: a number >= 0 with hydra.sweeper.direction="
      "maximize (the objective is high_skill_share less cost_weight x spend and penalty x shortfall"),
    C("optuna-a-share-target-above-one", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=maximize", "objective.target=1.5",
       "levers.training.intensity=interval(0,3)"],
      EXIT_CONFIG, "objective.target = 1.5 is invalid; allowed: a share in [0, 1], as high_skill_share is"),
    C("optuna-a-listed-direction-is-read-as-given", M,  # [maximize] was read as minimize (a review)
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=[maximize]", "objective.cost_weight=-0.01",
       "levers.training.intensity=interval(0,3)"],
      EXIT_CONFIG, "objective.cost_weight = -0.01 is invalid; allowed: a number >= 0 with hydra.sweeper.direction="
      "maximize"),
    C("optuna-a-workforce-share-target-above-one", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=maximize", "objective.target=1.5",
       "objective.metric=high_skill_share_workforce", "levers.training.intensity=interval(0,3)"],
      EXIT_CONFIG, "objective.target = 1.5 is invalid; allowed: a share in [0, 1], as high_skill_share_workforce is"),
    C("optuna-minimise-with-a-cost-weight", M,
      ["-m", "hydra/sweeper=optuna", "objective.cost_weight=0.01", "levers.training.intensity=interval(0,3)"],
      EXIT_CONFIG, "objective.cost_weight = 0.01 is invalid; allowed: a number <= 0 with hydra.sweeper.direction="
      "minimize"),
    # each of these failed after or during the trials, some as "a bug in skillsim"
    C("optuna-two-directions-one-metric", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.direction=[maximize,minimize]", "horizon.end_year=choice(2023,2024)"],
      EXIT_CONFIG, "hydra.sweeper.direction = ['maximize', 'minimize'] is invalid; allowed: one direction for each of "
      "the objective's 1 value(s)"),
    C("optuna-one-direction-two-metrics", M,
      ["-m", "hydra/sweeper=optuna", "objective.metrics=[high_skill_share,income_mean]",
       "horizon.end_year=choice(2023,2024)"],
      EXIT_CONFIG, "hydra.sweeper.direction = 'minimize' is invalid; allowed: one direction for each of the "
      "objective's 2 value(s) (objective.metrics)"),
    C("optuna-no-parallel-jobs", M, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_jobs=0",
                                     "horizon.end_year=choice(2023,2024)"],
      EXIT_CONFIG, "hydra.sweeper.n_jobs = 0 is invalid; allowed: an integer >= 1"),
    C("optuna-no-trials", M, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=-2",
                              "horizon.end_year=choice(2023,2024)"],
      EXIT_CONFIG, "hydra.sweeper.n_trials = -2 is invalid; allowed: an integer >= 1"),
    C("optuna-interval-on-an-integer", M, ["-m", "hydra/sweeper=optuna", "n_agents=interval(300,400)"],
      EXIT_CONFIG, "n_agents = 'interval(300,400)' is invalid; allowed: whole numbers for an integer setting"),
    C("optuna-negative-sampler-seed", M, ["-m", "hydra/sweeper=optuna", "hydra.sweeper.sampler.seed=-1",
                                          "horizon.end_year=choice(2023,2024)"],
      EXIT_CONFIG, "hydra.sweeper.sampler.seed = -1 is invalid; allowed: an integer >= 0, or null"),
    C("optuna-params-on-the-command-line", M, ["-m", "hydra/sweeper=optuna",
                                               "hydra.sweeper.params.levers.training.intensity='interval(0,1)'"],
      EXIT_CONFIG, "hydra.sweeper.params.levers.training.intensity = \"'interval(0,1)'\" is invalid; allowed: the "
      "swept keys themselves on the command line"),
    C("optuna-params-mapping-on-the-command-line", M, ["-m", "hydra/sweeper=optuna",
                                                       'hydra.sweeper.params={{levers.training.intensity:"interval(0,1)"}}'],
      EXIT_CONFIG, "hydra.sweeper.params = ", "allowed: the swept keys themselves on the command line"),
    C("basic-sweep-given-an-interval", M, ["-m", "levers.training.intensity=interval(0,1)"], EXIT_CONFIG,
      "levers.training.intensity = 'interval(0,1)' is invalid; allowed: a list (A,B) or range(...) for Hydra's basic "
      "sweeper; interval(...) needs an optimising sweeper"),  # Hydra's words, and a folder left behind
    C("ray-launcher-where-ray-is-not-installed", M, ["-m", "hydra/launcher=ray", "replicate=0,1"], EXIT_CONFIG,
      "hydra/launcher = 'ray' is invalid; allowed: one of ", "Ray's launcher is installed apart (pip install"),
    # Hydra made the sweep folder, ran no job, and skillsim said it was "not a sweep folder" (exit 3)
    C("basic-sweep-given-an-empty-range", M, ["-m", "replicate=range(0,-2)"], EXIT_CONFIG,
      "replicate = 'range(0,-2)' is invalid; allowed: a sweep of at least one value", e2e=True),
    C("optuna-sampler-unknown", M, ["-m", "hydra/sweeper=optuna", "hydra/sweeper/sampler=bogus",
                                    "horizon.end_year=choice(2023,2024)"],
      EXIT_CONFIG, "hydra/sweeper/sampler = 'bogus' is invalid; allowed: one of cmaes, grid"),  # named `hydra`
    C("optuna-choice-of-mappings-with-a-number-for-a-switch", M,
      ["-m", "hydra/sweeper=optuna", "levers.training=choice({{enabled:false}},{{enabled:2}})"],
      EXIT_CONFIG, "levers.training.enabled = 2 is invalid; allowed: true or false (a switch)"),
    C("optuna-plain-choice-with-a-number-for-a-switch", M,
      ["-m", "hydra/sweeper=optuna", "levers.training.enabled=choice(true,2)"],
      EXIT_CONFIG, "levers.training.enabled = 2 is invalid; allowed: true or false (a switch)"),  # said "true or false"
    C("optuna-direction-misspelt", M,
      ["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "levers.training.intensity=interval(0,3)",
       "hydra.sweeper.direction=maximise"],
      EXIT_CONFIG, "hydra.sweeper.direction = 'maximise' is invalid; allowed: minimize or maximize"),
    C("swept-mix-without-high-skill-levels", M, ["-m", "region.skilled_mix=[0.4,0.3,0.2,0.1,0,0,0],[1,0,0,0,0,0,0]"],
      EXIT_CONFIG, "region.skilled_mix", "some at levels 3-7"),
    C("range-reversed", V, "levers.competition.eligible_levels=[3,1]", EXIT_CONFIG,
      "levers.competition.eligible_levels", "lowest <= highest"),
    C("levy-reversed", V, "firms.levy_rate=[0.03,0.02]", EXIT_CONFIG, "firms.levy_rate", "low <= high"),
    C("retirement-age-falls", V, "retirement.male_to=55", EXIT_CONFIG, "retirement", "no lower than"),
    C("growth-too-high", V, "wages.growth_per_year=2", EXIT_CONFIG, "wages.growth_per_year", "[-0.5, 1]"),
    C("nan", V, "levers.competition.promote_fraction=nan", EXIT_CONFIG,
      "levers.competition.promote_fraction", "a finite number", e2e=True),
    C("infinity", V, "levers.studio.subsidy_per_studio=inf", EXIT_CONFIG,
      "levers.studio.subsidy_per_studio", "a finite number"),
    C("minus-infinity", V, "levers.training.intensity=-inf", EXIT_CONFIG, "levers.training.intensity", "finite"),
    C("budget-negative", V, "region.training_budget_per_worker_year=-100", EXIT_CONFIG,
      "region.training_budget_per_worker_year = -100.0", "[0, "),
    C("subsidy-negative", V, "levers.competition.subsidy_per_event=-1", EXIT_CONFIG,
      "levers.competition.subsidy_per_event", "[0, "),
    C("certificate-subsidy-negative", V, "cert_subsidy=[-1,0,0,0,0]", EXIT_CONFIG, "cert_subsidy[0] = -1.0"),
    C("cost-zero", V, "levers.training.cost_per_place=0", EXIT_CONFIG, "levers.training.cost_per_place", "(0, "),
    C("wage-negative", V, "region.base_wage=-60000", EXIT_CONFIG, "region.base_wage", "(0, "),
    C("memory-limit-zero", V, "max_memory_gb=0", EXIT_CONFIG, "max_memory_gb", "(0, "),
    # -- names ---------------------------------------------------------------------------------
    C("unknown-region", N, "region=atlantis", EXIT_CONFIG, "region = 'atlantis'",
      "one of chongqing, national, zhong_county", e2e=True),
    C("unknown-region-with-cfg-job", N, "--cfg job region=atlantis", EXIT_CONFIG, "region = 'atlantis'",
      "one of chongqing, national, zhong_county"),  # Hydra's missing-config error is an IOError, not the disk
    C("named-sweep-without-m", N, "+sweep=training_vs_studios", EXIT_CONFIG,
      "+sweep=training_vs_studios needs -m: skillsim -m +sweep=training_vs_studios"),
    C("named-experiment-without-m", N, "+experiments=cq_2035_lever_comparison", EXIT_CONFIG,
      "+experiments=cq_2035_lever_comparison needs -m"),
    C("unknown-scenario", N, "scenario=miracle", EXIT_CONFIG, "scenario = 'miracle'", "baseline"),
    C("empty-scenario", N, "scenario=", EXIT_CONFIG, "scenario"),
    C("unknown-lever", N, "levers.magic.intensity=2", EXIT_CONFIG, "unknown key 'levers.magic'"),
    C("misspelt-lever-key", N, "levers.training.intensty=2", EXIT_CONFIG, "unknown key 'levers.training.intensty'",
      "did you mean levers.training.intensity?"),
    C("unknown-top-level-key", N, "agents=5", EXIT_CONFIG, "unknown key 'agents'", "skillsim --cfg job"),
    C("unknown-hydra-key", N, "hydra.job.nam=x", EXIT_CONFIG, "unknown key 'hydra.job.nam'",
      "skillsim --cfg hydra` for Hydra's keys"),  # `--cfg job`, which it named, leaves the hydra node out
    C("added-unknown-key", N, "+levers.training.foo=1", EXIT_CONFIG, "levers.training.foo", "a known key"),
    C("added-unknown-hydra-key", N, "+hydra.bogus=1", EXIT_CONFIG, "unknown key 'hydra.bogus'",
      "Hydra reads no such key"),  # Hydra adds it and reads it nowhere
    C("added-unknown-hydra-job-key", N, "++hydra.job.bogus=1", EXIT_CONFIG, "unknown key 'hydra.job.bogus'"),
    C("unknown-selection", N, "levers.competition.selection=best", EXIT_CONFIG,
      "levers.competition.selection", "random, progress"),
    # -- horizon and size --------------------------------------------------------------------------
    C("end-before-start", H, "horizon.end_year=2000", EXIT_CONFIG, "horizon.end_year = 2000",
      "no earlier than the start year 2023"),
    C("start-after-end", H, "horizon.start_year=2030 horizon.end_year=2028", EXIT_CONFIG,
      "horizon.start_year = 2030", "no later than horizon.end_year (2028)"),
    C("start-after-default-end", H, "horizon.start_year=2040", EXIT_CONFIG,
      "horizon.start_year = 2040", "no later than horizon.end_year (2035)"),
    C("horizon-beyond-2100", H, "horizon.end_year=2200", EXIT_CONFIG, "horizon.end_year", "[1990, 2100]"),
    C("zero-agents", H, "n_agents=0", EXIT_CONFIG, "n_agents = 0", ">= 1"),
    C("negative-agents", H, "n_agents=-5", EXIT_CONFIG, "n_agents = -5"),
    C("too-many-agents-for-memory", H, "n_agents=2000000000", EXIT_CONFIG, "n_agents = 2000000000",
      "at most about", "GB", e2e=True),
    C("too-many-agents-national", H, "region=national n_agents=200000000 max_memory_gb=4", EXIT_CONFIG,
      "n_agents = 200000000", "at most about", "this run would need about"),
    C("absurd-agent-count", H, "n_agents=100000000000000000000", EXIT_CONFIG, "n_agents"),
    C("population-below-one", H, "region.population=0.5", EXIT_CONFIG, "region.population = 0.5", "[1, "),
    # -- files: the targets file -------------------------------------------------------------------
    C("targets-missing", F, "targets_file={files}/missing.csv", EXIT_DATA,
      "targets file {files}/missing.csv", "cannot be read"),
    C("targets-is-a-folder", F, "targets_file={files}", EXIT_DATA, "targets file {files}", "cannot be read"),
    C("targets-bad-header", F, "targets_file={files}/bad_header.csv", EXIT_DATA, "bad_header.csv", "malformed header"),
    C("targets-short-row", F, "targets_file={files}/short_row.csv", EXIT_DATA, "short_row.csv",
      "line 3 has the wrong number of fields"),
    C("targets-not-utf8", F, "targets_file={files}/not_utf8.csv", EXIT_DATA, "not_utf8.csv", "not a readable CSV"),
    C("targets-empty", F, "targets_file={files}/empty.csv", EXIT_DATA, "empty.csv", "malformed header"),
    C("targets-header-only", F, "targets_file={files}/header_only.csv", EXIT_DATA, "header_only.csv", "has no rows"),
    # -- files: hand-edited config YAML ------------------------------------------------------------
    C("yaml-misspelt-key", F, "hydra.searchpath=[file://{files}/cfg] region=typo", EXIT_CONFIG,
      "unknown key 'region.populaton'", "region/typo.yaml"),
    C("yaml-not-yaml", F, "hydra.searchpath=[file://{files}/cfg] region=broken", EXIT_CONFIG,
      "{files}/cfg/region/broken.yaml", "not valid YAML", e2e=True),
    C("yaml-wrong-type", F, "hydra.searchpath=[file://{files}/cfg] region=wrongtype", EXIT_CONFIG,
      "region.population = 'lots'", "region/wrongtype.yaml"),
    C("study-yaml-not-yaml", F, "hydra.searchpath=[file://{files}/cfg] region=broken params=2 structural=2 "
      "n_agents=300", EXIT_CONFIG, "{files}/cfg/region/broken.yaml", "not valid YAML", tool="forecast"),
    C("study-region-partial", F, "hydra.searchpath=[file://{files}/cfg] region=partial params=2 structural=2 "
      "n_agents=300", EXIT_CONFIG, "region.label_en is not set", tool="forecast"),
    C("yaml-out-of-range", F, "hydra.searchpath=[file://{files}/cfg] region=negative", EXIT_CONFIG,
      "region.population = -5.0"),
    # a region preset gives all of the region's own values: none is Chongqing's by default, unsaid
    C("yaml-region-empty", F, "hydra.searchpath=[file://{files}/cfg] region=empty", EXIT_CONFIG,
      "region.name is not set", "region/empty.yaml must give it"),
    C("yaml-region-partial", F, "hydra.searchpath=[file://{files}/cfg] region=partial", EXIT_CONFIG,
      "region.label_en is not set", "region/partial.yaml must give it", e2e=True),
    C("yaml-region-no-history", F, "hydra.searchpath=[file://{files}/cfg] region=nohistory", EXIT_CONFIG,
      "region.history.high_skill_share is not set", "region/nohistory.yaml"),
    C("yaml-region-copy-named-chongqing", F, "hydra.searchpath=[file://{files}/cfg] region=copied", EXIT_CONFIG,
      "region.name = 'chongqing'", "region/copied.yaml's own name"),
    # results labelled by a name no region= chooses (and reports' suggested commands failed on it)
    C("yaml-region-named-other-than-its-file", F, "hydra.searchpath=[file://{files}/cfg] region=misnamed",
      EXIT_CONFIG, "region.name = 'liuzhuo' is invalid; allowed: 'misnamed', the name of its file"),
    C("yaml-region-copy-labelled-chongqing", F, "hydra.searchpath=[file://{files}/cfg] region=relabel", EXIT_CONFIG,
      "region.label_en = 'Chongqing'", "labelled as chongqing's"),
    C("yaml-region-copy-of-zhong-county", F, "hydra.searchpath=[file://{files}/cfg] region=zcopy", EXIT_CONFIG,
      "region.name = 'zhong_county'", "a copy of the zhong_county preset"),
    C("region-structural-range-reversed", H, "region.structural={{region.growth_per_year:[0.039,-0.012]}}",
      EXIT_CONFIG, "region.structural[region.growth_per_year] = [0.039, -0.012]", "LO <= HI"),
    # a narrowed range without the central value named a value the user never typed, without saying what it was
    C("region-structural-range-without-its-centre", H, "region.structural={{region.growth_per_year:[0.01,0.01]}}",
      EXIT_CONFIG, "region.growth_per_year = 0.0135 is invalid; allowed: a value inside its structural range "
      "[0.01, 0.01] (region.structural): 0.0135 is its central value (the preset's, unless given)"),
    C("forecast-empty-out", L, "out=", EXIT_CONFIG,  # it wrote to the default folder without a word
      "out = '' is invalid; allowed: a path (leave out= out for the default folder)", tool="forecast"),
    # `region chongqing`: "region = '' is invalid; allowed: key=value arguments", a value never given
    C("forecast-a-bare-word", L, "region chongqing", EXIT_CONFIG, "argument = 'region' is invalid; allowed: "
      "key=value arguments, such as region=chongqing (see skillsim-forecast --help)", tool="forecast"),
    C("forecast-a-lone-word", L, "chongqing", EXIT_CONFIG, "argument = 'chongqing' is invalid; allowed: "
      "key=value arguments, such as KEY=VALUE (see skillsim-forecast --help)", tool="forecast"),
    # every mix met a target of 0, at 100%: a plan with no question in it (a user trial)
    C("plan-target-share-zero", V, "target.share=0 target.year=2030", EXIT_CONFIG,
      "target.share = 0.0 is invalid; allowed: a share above 0 and at most 1", tool="plan"),
    C("plan-empty-out", L, "target.share=0.35 target.year=2030 out=", EXIT_CONFIG,
      "out = '' is invalid; allowed: a path", tool="plan"),
    # settings every run of a plan replaced: config.yaml recorded them, the plan's numbers were the same bytes
    C("plan-a-lever-intensity-it-sets", V, "target.share=0.35 target.year=2030 levers.training.intensity=2",
      EXIT_CONFIG, "levers.training.intensity = '2' is invalid; allowed: not a setting here: skillsim-plan sets "
      "training's intensity in every run (fix it with training.fixed=X", tool="plan"),
    C("plan-a-scenario", N, "target.share=0.35 target.year=2030 scenario=no_policy", EXIT_CONFIG,
      "scenario = 'no_policy' is invalid; allowed: not a setting here: a scenario sets the levers' intensities, which "
      "skillsim-plan sets for the levers it plans",
      tool="plan"),
    C("plan-fixed-outside-its-bounds", V, "target.share=0.35 target.year=2030 training.fixed=5 training.hi=2",
      EXIT_CONFIG, "training.fixed = 5.0 is invalid; allowed: no bounds with it: a fixed lever is not searched",
      tool="plan"),
    C("plan-bounds-of-a-lever-not-searched", V, "target.share=0.35 target.year=2030 levers=training studio.hi=2",
      EXIT_CONFIG, "studio.hi = 2.0 is invalid; allowed: bounds of a lever in levers= (training)", tool="plan"),
    C("plan-no-free-lever", V, "target.share=0.35 target.year=2030 levers=training training.fixed=1", EXIT_CONFIG,
      "levers = 'training' is invalid; allowed: at least one lever that is not fixed", tool="plan"),
    C("forecast-dashes", L, "--params=3", EXIT_CONFIG,  # it named Hydra's LexerNoViableAltException
      "--params = '3' is invalid; allowed: key=value arguments without dashes: params=3", tool="forecast"),
    C("forecast-one-parameter-set", L, "params=1 structural=2", EXIT_CONFIG,
      "params = 1 is invalid; allowed: an integer >= 2 (one parameter set has no spread to measure)", tool="forecast"),
    C("forecast-one-structural-point", L, "structural=1", EXIT_CONFIG,
      "structural = 1 is invalid; allowed: an integer >= 2 (one structural point has", tool="forecast"),
    C("forecast-misspelt-option", L, "paramz=3", EXIT_CONFIG,
      "paramz = '3' is invalid; allowed: an option: params=... (check its spelling; see skillsim-forecast --help)",
      tool="forecast"),
    # a mistyped config key named no key (a user trial: region.base_wag)
    C("forecast-misspelt-config-key", L, "region.base_wag=1", EXIT_CONFIG,
      "region.base_wag = '1' is invalid; allowed: a config key: region.base_wage=...", tool="forecast"),
    # nothing close: the composition names the unknown key
    C("forecast-unknown-key", L, "qwertyuiop=3", EXIT_CONFIG,
      "unknown key 'qwertyuiop'; it is neither an option of skillsim-forecast", tool="forecast"),
    C("forecast-one-replicate", L, "replicates=1", EXIT_CONFIG,
      "replicates = 1 is invalid; allowed: an integer >= 2 (one replicate per point leaves the agents' own noise "
      "unmeasured)", tool="forecast"),
    C("study-config-dir-missing", L, "--config-dir {tmp}/no_such_conf params=2", EXIT_CONFIG,
      "--config-dir = '{tmp}/no_such_conf' is invalid", tool="forecast"),
    C("sweep-region-partial-only", M, "-m region=partial,empty hydra.searchpath=[file://{files}/cfg]", EXIT_CONFIG,
      "region.label_en is not set"),
    # -- files: skillsim-aggregate, skillsim-verify and skillsim-report on the wrong path ------------
    C("aggregate-no-such-path", F, "{tmp}/nowhere", EXIT_DATA, "{tmp}/nowhere is not a folder", tool="aggregate"),
    C("aggregate-empty-folder", F, "{files}/empty_dir", EXIT_DATA, "not a sweep folder", tool="aggregate"),
    C("aggregate-a-file", F, "{files}/bad_header.csv", EXIT_DATA, "is not a folder", tool="aggregate"),
    C("aggregate-a-run-folder", F, "{run}", EXIT_DATA, "{run} is not a sweep folder", tool="aggregate", e2e=True),
    C("aggregate-baseline-of-a-single-setting", F, "{sweep} --baseline scenario=nosuch", EXIT_CONFIG,
      "config error: baseline = 'scenario=nosuch' is invalid; allowed: no baseline: this sweep has a single setting",
      tool="aggregate"),
    C("aggregate-job-manifest-truncated", F, "{files}/sweep_bad_manifest", EXIT_DATA, "manifest.json",
      tool="aggregate"),
    C("verify-no-such-path", F, "{tmp}/nowhere", EXIT_DATA, "{tmp}/nowhere does not exist", tool="verify"),
    C("verify-empty-folder", F, "{files}/empty_dir", EXIT_DATA, "is not a run or sweep folder", tool="verify"),
    C("verify-a-file", F, "{files}/bad_header.csv", EXIT_DATA, "is a file, not a run or sweep folder", tool="verify"),
    C("report-no-such-path", F, "{tmp}/nowhere", EXIT_DATA, "nowhere", tool="report"),
    C("report-empty-folder", F, "{files}/empty_dir", EXIT_DATA, "empty_dir", tool="report"),
    C("report-a-file", F, "{files}/bad_header.csv", EXIT_DATA, "bad_header.csv", tool="report"),
    # -- sweeps (-m): refused before the sweep folder is made ------------------------------------------
    C("sweep-wrong-type-second-value", M, "-m n_agents=3000,abc", EXIT_CONFIG, "n_agents = 'abc'", "an integer",
      e2e=True),
    C("sweep-wrong-type-first-value", M, "-m n_agents=abc,3000", EXIT_CONFIG, "n_agents = 'abc'"),
    C("sweep-unknown-region", M, "-m region=national,atlantis", EXIT_CONFIG, "region = 'atlantis'"),
    C("sweep-unknown-key", M, "-m levers.magic.intensity=1,2", EXIT_CONFIG, "unknown key 'levers.magic'"),
    C("sweep-bool", M, "-m levers.studio.enabled=true,perhaps", EXIT_CONFIG, "levers.studio.enabled = 'perhaps'"),
    C("sweep-no-job-can-run", M, "-m scenario=baseline,combined n_agents=0", EXIT_CONFIG, "n_agents = 0"),
    C("sweep-one-value-out-of-range", M, "-m levers.training.intensity=1,-1 replicate=0,1", EXIT_CONFIG,
      "levers.training.intensity = -1.0", "[0, 100]"),
    C("sweep-one-option-unknown", M, "-m levers.training.allocation=random,best", EXIT_CONFIG,
      "levers.training.allocation = 'best'", "lowest_level"),
    C("sweep-every-value-bad", M, "-m levers.training.intensity=-1,-2", EXIT_CONFIG, "levers.training.intensity"),
    C("sweep-bad-fixed-targets", M, "-m replicate=0,1 targets_file={files}/bad_header.csv", EXIT_DATA,
      "malformed header"),
    C("sweep-unknown-named-sweep", M, "-m +sweep=nosuch", EXIT_CONFIG, "sweep = 'nosuch'", "training_vs_studios"),
    C("sweep-unknown-experiment", M, "-m +experiments=nosuch", EXIT_CONFIG, "experiments = 'nosuch'",
      "cq_2035_lever_comparison"),
    C("sweep-bad-override-in-named-sweep", M, "-m +sweep=training_vs_studios levers.studio.intensity=x",
      EXIT_CONFIG, "levers.studio.intensity = 'x'"),
    C("sweep-syntax", M, "-m n_agents=range(1,", EXIT_CONFIG, "cannot read the override 'n_agents=range(1,'"),
    # -- command-line syntax and the output folder -------------------------------------------------
    C("list-without-multirun", L, "levers.training.intensity=1,2", EXIT_CONFIG, "levers.training.intensity=1,2"),
    # a comma list without -m was Hydra's "Ambiguous value for argument", its hints cut off
    C("scenarios-listed-without-multirun", L, "scenario=baseline,no_policy", EXIT_CONFIG,
      "scenario = 'baseline,no_policy' is invalid; allowed: one scenario (one of baseline, combined",
      "to compare several, sweep them: skillsim -m scenario=baseline,no_policy"),
    C("value-listed-without-multirun", L, "levers.training.intensity=1,2", EXIT_CONFIG,
      "levers.training.intensity = '1,2' is invalid; allowed: one value (a list is written [A,B]"),
    # Chongqing's calibration is a check of the national fit: write=true exited 0 and replaced nothing
    C("plan-lever-listed-twice", V, "target.share=0.35 target.year=2030 levers=training,training", EXIT_CONFIG,
      "levers = 'training,training' is invalid; allowed: a comma list of training, competition, studio, each at most once",
      tool="plan"),
    C("calibrate-chongqing-write", V, "region=chongqing write=true", EXIT_CONFIG,
      "write = 'true' is invalid; allowed: false with region=chongqing", tool="calibrate"),
    C("calibrate-hindcast-write", V, "cutoff=2016 write=true", EXIT_CONFIG,
      "write = 'true' is invalid; allowed: false with cutoff=", tool="calibrate"),
    C("study-scenarios-listed", L, "scenario=baseline,no_policy", EXIT_CONFIG,
      "scenario = 'baseline,no_policy' is invalid; allowed: one scenario", tool="forecast"),
    # a listed name that is no preset was Hydra's "Could not load 'scenario/nope'"
    C("listed-unknown-scenario", L, "scenario=[baseline,nope]", EXIT_CONFIG,
      "scenario = 'nope' is invalid; allowed: one of baseline, combined"),
    C("override-syntax", L, "n_agents=(3", EXIT_CONFIG, "n_agents=(3"),
    C("config-dir-missing", L, "--config-dir {tmp}/no_such_conf n_agents=300", EXIT_CONFIG,
      "--config-dir = '{tmp}/no_such_conf' is invalid; allowed: an existing folder"),
    C("config-dir-empty", L, "--config-dir= n_agents=300", EXIT_CONFIG, "--config-dir = '' is invalid"),
    C("study-config-dir-empty", L, "-cd", EXIT_CONFIG, "--config-dir = '' is invalid", tool="forecast"),
    C("cfg-job-checks-values", L, "--cfg job n_agents=-5", EXIT_CONFIG, "n_agents = -5"),
    # a misspelt flag, or a flag's wrong value: Hydra's parser printed its 8-line usage block before the error
    C("misspelt-flag", L, "--multirn n_agents=300", EXIT_CONFIG, "unknown option --multirn (did you mean --multirun?); see skillsim --help",
      e2e=True),
    C("flag-wrong-choice", L, "--cfg jobb", EXIT_CONFIG, "argument --cfg/-c: invalid choice: 'jobb'"),
    # a setting given as a flag is named as one, not as a misspelt flag near it (--region: --version)
    C("setting-given-as-a-flag-near-a-flag", L, "--region=atlantis", EXIT_CONFIG,
      "unknown option --region (a setting is KEY=VALUE without dashes: region=atlantis;"),
    C("setting-given-as-a-flag", L, "--n_agents=300", EXIT_CONFIG,
      "unknown option --n_agents (a setting is KEY=VALUE without dashes: n_agents=300;"),
    C("aggregate-misspelt-flag", L, "{sweep} --basline scenario=baseline", EXIT_CONFIG,
      "unknown option --basline (did you mean --baseline?)", tool="aggregate"),
    C("verify-unknown-flag", L, "{run} --quiet", EXIT_CONFIG, "unknown option --quiet; see skillsim-verify --help",
      tool="verify"),
    C("cfg-resolve-checks-values", L, "-c job --resolve -p levers levers.training.intensity=-1", EXIT_CONFIG,
      "levers.training.intensity = -1.0"),
    # an interpolation that does not resolve was reported in OmegaConf's words, naming no setting
    C("hydra-interpolation-unknown", L, "n_agents=300 +hydra.job.env_set.FOO=${{nope}}", EXIT_CONFIG,
      "hydra.job.env_set.FOO = '${{nope}}' is invalid; allowed: a value, or ${{KEY}} naming a key of the config "
      "('nope' is not one)"),
    C("interpolation-unknown-key", V, "n_agents=${{nope}}", EXIT_CONFIG,
      "n_agents = '${{nope}}' is invalid; allowed: a value, or ${{KEY}} naming a key of the config ('nope' is not one)",
      e2e=True),
    C("interpolation-unknown-resolver", V, "region.label_en=${{oops:1}}", EXIT_CONFIG,
      "region.label_en = '${{oops:1}}' is invalid; allowed: a value, or ${{KEY}} naming a key of the config (there "
      "is no resolver 'oops')"),
    C("sweep-interpolation-unknown-key", M, ["-m", "n_agents=1000,${{nope}}"], EXIT_CONFIG,
      "n_agents = '${{nope}}' is invalid; allowed: a value, or ${{KEY}} naming a key of the config ('nope' is not one)"),
    # a resolver that fails was reported as "KeyError raised while resolving interpolation: ..."
    C("interpolation-env-unset", V, "n_agents=${{oc.env:SKILLSIM_TEST_SURELY_UNSET}}", EXIT_CONFIG,
      "n_agents = '${{oc.env:SKILLSIM_TEST_SURELY_UNSET}}' is invalid; allowed: an interpolation that resolves "
      "(Environment variable 'SKILLSIM_TEST_SURELY_UNSET' not found)"),
    C("interpolation-env-unset-in-a-text", V, "region.label_en=${{oc.env:SKILLSIM_TEST_SURELY_UNSET}}", EXIT_CONFIG,
      "region.label_en = '${{oc.env:SKILLSIM_TEST_SURELY_UNSET}}' is invalid; allowed: an interpolation that "
      "resolves (Environment variable 'SKILLSIM_TEST_SURELY_UNSET' not found)"),
    C("hydra-interpolation-env-unset", L, "n_agents=300 hydra.run.dir=${{oc.env:SKILLSIM_TEST_SURELY_UNSET}}",
      EXIT_CONFIG, "hydra.run.dir = '${{oc.env:SKILLSIM_TEST_SURELY_UNSET}}' is invalid; allowed: an interpolation "
      "that resolves (Environment variable 'SKILLSIM_TEST_SURELY_UNSET' not found)"),
    C("run-folder-not-empty", L, "n_agents=300 horizon.end_year=2023 hydra.run.dir={files}/full_run", EXIT_OUTPUT,
      "run folder {files}/full_run already exists and is not empty", only_e2e=True),
]
IDS = [c.id for c in CASES]
assert len(set(IDS)) == len(IDS) and len(CASES) >= 30


# -- fixtures: the bad files, and a real run folder and sweep folder to point tools at --------------

@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, Path]:
    files = tmp_path_factory.mktemp("bad_files")
    (files / "bad_header.csv").write_text("id,value\nx,1\n", encoding="utf-8")
    (files / "short_row.csv").write_text(TARGETS_HEADER + "a,b,c,d,e,f,g,h,i\nshort,row\n", encoding="utf-8")
    (files / "not_utf8.csv").write_bytes(TARGETS_HEADER.encode() + b"\xff\xfe\xfa,broken\n")
    (files / "empty.csv").write_bytes(b"")
    (files / "header_only.csv").write_text(TARGETS_HEADER, encoding="utf-8")
    (files / "empty_dir").mkdir()
    region = files / "cfg" / "region"
    region.mkdir(parents=True)
    (region / "typo.yaml").write_text("name: typo\npopulaton: 5\n", encoding="utf-8")
    (region / "broken.yaml").write_text("name: broken\npopulation: [1,\n", encoding="utf-8")
    (region / "wrongtype.yaml").write_text("name: wrongtype\npopulation: lots\n", encoding="utf-8")
    (region / "negative.yaml").write_text(own_preset("negative", ("population: 5700000", "population: -5")),
                                          encoding="utf-8")
    (region / "empty.yaml").write_text("", encoding="utf-8")
    (region / "misnamed.yaml").write_text(own_preset("liuzhuo"), encoding="utf-8")
    (region / "partial.yaml").write_text("name: partial\npopulation: 100000\n", encoding="utf-8")
    history = own_preset("nohistory")
    (region / "nohistory.yaml").write_text(history[:history.index("  high_skill_share:")]
                                           + history[history.index("  skilled_workers:"):], encoding="utf-8")
    cq = (CONFIG_DIR / "region" / "chongqing.yaml").read_text(encoding="utf-8")
    (region / "copied.yaml").write_text(cq.replace("population: 5700000", "population: 1000000"), encoding="utf-8")
    (region / "relabel.yaml").write_text(cq.replace("name: chongqing", "name: relabel"), encoding="utf-8")
    (region / "zcopy.yaml").write_text((CONFIG_DIR / "region" / "zhong_county.yaml").read_text(encoding="utf-8"),
                                       encoding="utf-8")
    (files / "full_run").mkdir()
    (files / "full_run" / "series.csv").write_text("precious\n", encoding="utf-8")

    shared = tmp_path_factory.mktemp("folders")
    cfg = dataclasses.replace(RunConfig(), n_agents=300, horizon=HorizonParams(end_year=2023))
    run = run_forecast(cfg, shared / "run")
    sweep = shared / "sweep"
    for rep in (0, 1):
        run_forecast(dataclasses.replace(cfg, replicate=rep), sweep / f"replicate={rep}",
                     overrides=[f"replicate={rep}"], extra={"job_num": rep})
    shutil.copytree(sweep, files / "sweep_bad_manifest")
    manifest = files / "sweep_bad_manifest" / "replicate=1" / "manifest.json"
    manifest.write_text(manifest.read_text(encoding="utf-8")[:60], encoding="utf-8")
    return {"files": files, "run": run, "sweep": sweep, "shared": shared}


def fill(text: str, places: dict[str, Path], tmp: Path) -> str:
    return text.format(tmp=tmp, **{k: v for k, v in places.items() if k != "shared"})


def argv_of(case: Case, places, tmp: Path) -> list[str]:
    argv = [fill(a, places, tmp) for a in case.args]
    if case.tool == "skillsim":
        if "-m" in argv:
            argv.append(f"hydra.sweep.dir={tmp / 'sweep'}")
        elif not any(a.startswith("hydra.run.dir=") for a in argv):
            argv.append(f"hydra.run.dir={tmp / 'run'}")
    return argv


def snapshot(*roots: Path) -> dict[str, tuple]:
    """Every file and folder under the roots, hidden ones included, with size and mtime."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                p = Path(dirpath) / name
                st = p.stat()
                out[str(p)] = (p.is_dir(), st.st_size, st.st_mtime_ns)
    return out


PREFIX = {"skillsim": "skillsim: ", "aggregate": "skillsim-aggregate: ", "verify": "skillsim-verify: ", "report": "",
          "forecast": "skillsim-forecast: ", "plan": "skillsim-plan: ", "calibrate": "skillsim-calibrate: "}


def check(case: Case, code, stdout: str, stderr: str, places, tmp: Path, before: dict, after: dict) -> None:
    assert "Traceback" not in stdout + stderr, stderr
    assert code == case.code, f"exit {code}, expected {case.code}: {stderr}"
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    line = lines[0]
    assert line.startswith(PREFIX[case.tool]), line
    for fragment in case.says:
        assert fill(fragment, places, tmp) in line, f"{fill(fragment, places, tmp)!r} not in {line!r}"
    assert after == before, f"output left behind: {sorted(set(after) ^ set(before))}"


def tool_main(tool: str):
    if tool == "skillsim":
        return cli.main
    if tool == "aggregate":
        return aggregate_module.main
    if tool == "verify":
        return verify.main
    if tool == "forecast":
        from sim.studies import forecast

        return forecast.main
    if tool == "calibrate":
        from sim.studies import calibrate

        return calibrate.main
    if tool == "plan":
        from sim.studies import plan

        return plan.main
    return pytest.importorskip("sim.report.cli", reason="skillsim-report is not in this tree yet").main


@pytest.fixture
def in_process(monkeypatch, tmp_path):
    """What `main(argv)` leaves: no env switch for full Hydra errors, results (if any) under tmp_path."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["skillsim"])
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}  # main() installs its own
    yield
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


#: sweep and optimiser (Optuna) cases the default run keeps, of each kind; the rest run with the slow tests
#: (each composes a sweep, 0.3-1 s), so that the default run stays within 3 minutes on 2 cores
FAST_SWEEP_CASES = 8


def params(cases):
    out, seen = [], {"optuna": 0, "sweep": 0}
    for c in cases:
        marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
        kind = c.id.split("-")[0]
        if kind in seen:
            seen[kind] += 1
            if seen[kind] > FAST_SWEEP_CASES:
                marks.append(pytest.mark.slow)
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


@pytest.mark.parametrize("case", params([c for c in CASES if not c.only_e2e]))
def test_bad_input_in_process(case, places, tmp_path, capsys, in_process):
    main = tool_main(case.tool)
    argv = argv_of(case, places, tmp_path)
    before = snapshot(tmp_path, places["files"], places["shared"])
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    check(case, info.value.code, out, err, places, tmp_path, before, snapshot(tmp_path, places["files"], places["shared"]))


# -- end to end: real commands, two at a time ------------------------------------------------------

COMMAND = {
    "skillsim": [sys.executable, "-m", "sim"],
    "aggregate": [sys.executable, "-c", "from sim.aggregate import main; main()"],
    "verify": [sys.executable, "-m", "sim.verify"],
}
E2E = [c for c in CASES if (c.e2e or c.only_e2e)]


@pytest.fixture(scope="module")
def e2e_results(places, tmp_path_factory):
    """Run every e2e case as a command, concurrently (each start costs about 1.5 s)."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}

    def one(case: Case):
        tmp = tmp_path_factory.mktemp(case.id)
        before = snapshot(tmp, places["files"], places["shared"])
        proc = subprocess.run([*COMMAND[case.tool], *argv_of(case, places, tmp)], cwd=tmp, capture_output=True,
                              text=True, timeout=120, env=env)
        return tmp, before, proc

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip([c.id for c in E2E], pool.map(one, E2E)))
    # snapshots of the shared folders are taken after every command has finished
    return {k: (tmp, before, proc, snapshot(tmp, places["files"], places["shared"]))
            for k, (tmp, before, proc) in results.items()}


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
@pytest.mark.parametrize("case", params(E2E))
def test_bad_input_end_to_end(case, places, e2e_results):
    tmp, before, proc, after = e2e_results[case.id]
    check(case, proc.returncode, proc.stdout, proc.stderr, places, tmp, before, after)


def test_a_bug_while_composing_is_not_called_a_config_error(monkeypatch, tmp_path, capsys, in_process):
    """An exception of skillsim's own while the config is composed and checked is reported as a bug
    (exit 1, the SKILLSIM_DEBUG hint), never as a config error: that once hid a broken installed
    package behind 'config error: 'NoneType' object has no attribute '__dict__''."""
    def broken(dcfg):
        raise AttributeError("'NoneType' object has no attribute '__dict__'")

    monkeypatch.delenv("SKILLSIM_DEBUG", raising=False)
    monkeypatch.setattr(cli, "config_from_hydra", broken)
    with pytest.raises(SystemExit) as info:
        cli.main(["n_agents=1000", f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert info.value.code == EXIT_INTERNAL, err
    assert "config error" not in err and "a bug in skillsim" in err and "AttributeError" in err
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()


def test_too_many_agents_is_refused_before_anything_is_allocated(monkeypatch, tmp_path, capsys, in_process):
    """The memory estimate is made from the config alone: no model, no worker arrays."""
    def forbidden(*args, **kwargs):
        raise AssertionError("the model was built")

    monkeypatch.setattr(sim.model.Workforce, "__init__", forbidden)
    monkeypatch.setattr(sim.model.WorkforceModel, "__init__", forbidden)
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as info:
        cli.main(["n_agents=5700000000", f"hydra.run.dir={tmp_path / 'run'}"])
    err = capsys.readouterr().err
    assert info.value.code == EXIT_CONFIG and time.perf_counter() - t0 < 10
    assert re.fullmatch(r"skillsim: config error: n_agents = 5700000000 is invalid; allowed: at most about "
                        r"[\d,]+ agents \(this run would need about [\d.]+ GB; max_memory_gb=16.0\)\n", err), err


@pytest.mark.parametrize("command", [["-m", "sim"], *[pytest.param(c, marks=pytest.mark.slow) for c in (  # one by default
    ["-c", "from sim.studies.calibrate import main; main()"], ["-c", "from sim.studies.plan import main; main()"],
    ["-c", "from sim.report.cli import main; main()"], ["-c", "from sim.verify import main; main()"])]])
def test_a_reader_that_closes_the_output_ends_the_command_quietly(command):
    """`skillsim --help | head -3`: the reader goes away before the help is written. The command ends
    silently with SIGPIPE's status, as a C tool does; it said "cannot write the output folder: Broken
    pipe" (exit 4) or printed a traceback. The read end is closed before the command starts, so every
    write meets a closed pipe (with `head` that depends on timing)."""
    read, write = os.pipe()
    os.close(read)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as in a shell
    try:
        proc = subprocess.run([sys.executable, *command, "--help"], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120, env=env)
    finally:
        os.close(write)
    assert proc.stderr == "" and proc.returncode == 141, (proc.returncode, proc.stderr[-1500:])


def test_keys_added_to_hydras_node_are_checked_against_its_schema_down_to_its_open_mappings():
    """`+hydra.KEY` is refused where Hydra's own schema has fixed fields, and left alone inside its
    mappings (env_set, callbacks, logging) and plugin nodes (launcher, sweeper), whose keys are open."""
    from sim.cli import unknown_hydra_key

    assert unknown_hydra_key("+hydra.bogus=1") == "hydra.bogus"
    assert unknown_hydra_key("++hydra.run.dirr=x") == "hydra.run.dirr"
    assert unknown_hydra_key("+hydra.job.config.override_dirname.kv_sepp==") == "hydra.job.config.override_dirname.kv_sepp"
    for fine in ("+hydra.job.env_set.FOO=1", "+hydra.launcher.n_jobs=2", "+hydra.sweeper.params.seed=1,2",
                 "+hydra.callbacks.mine._target_=x.Y", "+hydra.job_logging.root.level=INFO", "+hydra.run.dir=x",
                 "hydra.bogus=1", "+hydra/launcher=slurm", "+levers.training.foo=1", "+hydra.output_subdir.x=1"):
        assert unknown_hydra_key(fine) is None, fine
