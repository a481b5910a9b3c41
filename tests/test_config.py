"""Typed configs: defaults, sources and the checks that turn bad values into one-line errors."""

from __future__ import annotations

import dataclasses
import math

import pytest

from sim.config import RunConfig, estimate_memory_gb, from_mapping, to_dict, validate
from sim.errors import ConfigError
from sim.sources import target


def test_defaults_are_valid_and_describe_chongqing():
    cfg = validate(RunConfig())
    assert cfg.region.name == "chongqing"
    assert cfg.start_year == 2023  # state observed at end-2022 (cq_hs_2022)
    assert cfg.horizon.end_year == 2035 and cfg.n_agents == 100_000
    assert cfg.weight == pytest.approx(57.0)


def test_default_numbers_match_their_source_rows():
    cfg = RunConfig()
    mix = cfg.region.skilled_mix
    assert sum(mix[2:]) == pytest.approx(target("cq_hs_2022").number, abs=5e-4)
    assert cfg.region.population == target("cq_industrial_workers").number
    assert 1 - cfg.region.uncertified_share == pytest.approx(
        target("cq_skilled_2022").number / target("cq_industrial_workers").number, abs=1e-3)
    assert cfg.levers.training.cost_per_place == target("cq_training_cost").number
    assert cfg.levers.competition.promote_fraction == target("nat_comp_promo_rate").number
    assert cfg.levers.competition.subsidy_per_event == target("rule_comp_subsidy").number
    assert cfg.levers.studio.subsidy_per_studio == target("rule_studio_subsidy").number
    assert cfg.behaviour.turnover_per_year == target("prior_turnover").number
    assert cfg.region.mean_age == target("prior_age").number
    assert cfg.firms.competition_fund_rate == target("rule_comp_fund").number
    assert tuple(cfg.firms.levy_rate) == target("rule_training_levy").bounds
    assert cfg.wages.growth_per_year == target("wage_growth").bounds[0]
    assert tuple(cfg.wages.craftsman_salary_floor) == target("rule_craftsman_salary").bounds
    lo, hi = target("prior_mentoring").bounds  # calibrated within the prior's range
    assert lo <= cfg.levers.studio.learning_multiplier <= hi
    assert cfg.levers.studio.members_per_studio == pytest.approx(15000 / target("cq_studios_2024").number, rel=0.01)


def test_every_numeric_field_names_its_source():
    def walk(cls, prefix=""):
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.type) or (isinstance(f.type, str) and f.type.endswith("Params")):
                continue
            yield prefix + f.name, f.metadata

    missing = [name for name, meta in walk(RunConfig) if not meta.get("source")]
    assert missing == []


@pytest.mark.parametrize(
    "data, field, fragment",
    [
        ({"n_agents": 0}, "n_agents", ">= 1"),
        ({"n_agents": "many"}, "n_agents", "an integer"),
        ({"n_agents": True}, "n_agents", "an integer"),
        ({"seed": 1.5}, "seed", "an integer"),
        ({"levers": {"training": {"intensity": -2}}}, "levers.training.intensity", "[0, 100]"),
        ({"levers": {"training": {"intensity": math.nan}}}, "levers.training.intensity", "finite"),
        ({"levers": {"studio": {"subsidy_per_studio": math.inf}}}, "levers.studio.subsidy_per_studio", "finite"),
        ({"levers": {"competition": {"selection": "best"}}}, "levers.competition.selection", "random, progress"),
        ({"levers": {"bogus": {}}}, "levers.bogus", "known key"),
        ({"region": {"female_share": 1.5}}, "region.female_share", "[0, 1]"),
        ({"region": {"skilled_mix": [0.5, 0.6, 0, 0, 0, 0, 0]}}, "region.skilled_mix", "summing to 1"),
        ({"region": {"skilled_mix": [1.0]}}, "region.skilled_mix", "exactly 7"),
        ({"region": {"observed": "end of 2022"}}, "region.observed", "YYYY-MM"),
        ({"horizon": {"end_year": 2020}}, "horizon.end_year", "no earlier than the start year"),
        ({"horizon": {"start_year": 2030, "end_year": 2029}}, "horizon.start_year", "no later than horizon.end_year"),
        ({"levers": {"training": {"enabled": "yes"}}}, "levers.training.enabled", "true or false"),
        ({"firms": {"levy_rate": [0.03, 0.02]}}, "firms.levy_rate", "low <= high"),
        ({"n_agents": 10**10}, "n_agents", "GB"),
        ({"region": {"base_wage": 0}}, "region.base_wage", "(0, "),
        ({"levers": {"training": {"cost_per_place": -5}}}, "levers.training.cost_per_place", "(0, "),
        # a value dated after the start state: never read by the run, and drawn as observed (a user trial)
        ({"region": {"history": {"high_skill_share": {"2022-12": 0.314, "2025-12": 0.27}}}},
         "region.history.high_skill_share[2025-12]", "a date before the forecast starts (2022-12 at the latest)"),
        ({"region": {"history": {"level_share": {"2023-06": [0.2, 0.05, 0.01]}}}},
         "region.history.level_share[2023-06]", "a date before the forecast starts"),
        ({"horizon": {"start_year": 2025}, "region": {"history": {"high_skill_share": {"2025-01": 0.3}}}},
         "region.history.high_skill_share[2025-01]", "(2024-12 at the latest)"),
        ({"region": {"high_skill_target_year": 2020}}, "region.high_skill_target_year",
         "no earlier than region.observed (2022-12)"),
        # a population in 万 was blamed on the observed stocks (a user trial)
        ({"region": {"population": 570}}, "region.population", "a head count of workers (not in 万 or millions)"),
    ],
)
def test_bad_values_name_the_field_value_and_what_is_allowed(data, field, fragment):
    with pytest.raises(ConfigError) as info:
        from_mapping(data)
    err = info.value
    assert err.field == field
    assert fragment in str(err)
    assert "\n" not in str(err)


def test_memory_estimate_is_made_before_allocation_and_scales_with_agents():
    base = estimate_memory_gb(dataclasses.replace(RunConfig(), n_agents=1))
    small = estimate_memory_gb(dataclasses.replace(RunConfig(), n_agents=1_000_000))
    big = estimate_memory_gb(dataclasses.replace(RunConfig(), n_agents=10_000_000))
    assert (big - base) / (small - base) == pytest.approx(10, rel=1e-3)


def test_round_trip_through_a_dict():
    cfg = RunConfig()
    assert from_mapping(to_dict(cfg)) == cfg


def test_a_workforce_too_small_to_say_much_is_warned_of():
    """n_agents=1 gave a high-skill share of 100% and n_agents=3 of 50%, without a word."""
    import dataclasses

    from sim.config import FEW_AGENTS, RunConfig

    cfg = RunConfig()
    assert dataclasses.replace(cfg, n_agents=FEW_AGENTS).few_agents_note() is None
    note = dataclasses.replace(cfg, n_agents=3).few_agents_note()
    assert note.startswith("n_agents=3: each agent stands for ") and "mostly sampling noise" in note
    assert f"{cfg.region.population / 3:,.0f} workers" in note


def test_more_agents_than_workers_is_warned_of():
    """region=zhong_county n_agents=200000: each agent stood for 0.65 of a worker, without a word."""
    import dataclasses

    from sim.config import RunConfig

    cfg = RunConfig()
    people = cfg.region.population
    assert dataclasses.replace(cfg, n_agents=int(people)).few_agents_note() is None  # one worker each
    note = dataclasses.replace(cfg, n_agents=int(people * 2)).few_agents_note()
    assert note == (f"n_agents={int(people * 2):,} is more than the region's {people:,.0f} workers: each agent "
                    f"stands for {people / int(people * 2):.2f} of a worker (no more information than "
                    f"n_agents={round(people):,} would give, at more cost)")


def test_a_preset_mapping_given_empty_is_emptied_and_one_with_entries_is_merged(tmp_path):
    """`region.structural={}` and `region.history.skilled_workers={}` (which an error message tells users to
    give) changed nothing: Hydra merges a mapping into the preset's. A forecast then sampled the preset's
    ranges under a title naming the empty mapping (a user trial)."""
    from sim.cli import compose_config

    preset = RunConfig().region
    assert preset.structural and preset.history.skilled_workers  # the preset's, to be emptied
    assert compose_config(["region.structural={}"]).region.structural == {}
    assert compose_config(["region.history.skilled_workers={ }"]).region.history.skilled_workers == {}
    narrowed = compose_config(["region.structural={region.base_wage:[55000,61000]}"]).region.structural
    assert narrowed == {**preset.structural, "region.base_wage": [55000.0, 61000.0]}  # merged: the rest stays


def test_an_emptied_mapping_takes_the_entries_given_after_it_and_reaches_sweeps_and_config_dirs(tmp_path):
    """`{}` then entries: the entries only (it gave {} on the command line); with a tab inside; and in the
    routes where the config comes without its hydra node (--config-dir, a sweep's pre-check), which
    refused region.growth_per_year=0.2 as outside the preset's range (a review)."""
    import subprocess
    import sys

    from sim.cli import compose_config, preflight_sweep

    given = compose_config(["region.structural={}", "region.structural={region.base_wage:[55000,61000]}"])
    assert given.region.structural == {"region.base_wage": [55000.0, 61000.0]}
    assert compose_config(["region.structural={\t}"]).region.structural == {}
    preflight_sweep(["region.structural={}", "region.growth_per_year=0.2", "seed=1,2", "n_agents=200",
                     "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'sweep'}"])  # no refusal, no exit
    (tmp_path / "conf").mkdir()
    run = subprocess.run([sys.executable, "-m", "sim", "--config-dir", str(tmp_path / "conf"), "region.structural={}",
                          "region.growth_per_year=0.2", "n_agents=200", "horizon.end_year=2023",
                          f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "  structural: {}" in (tmp_path / "run" / "config.yaml").read_text()


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_config_of_the_users_own_named_as_a_shipped_one_is_refused(tmp_path):
    """my_conf/region/chongqing.yaml with the population changed: Hydra read the shipped preset first, and
    the run gave the shipped numbers with exit 0 while its manifest named the user's folder (a user
    trial). Refused in one line naming the file, with no folder, from a run, a sweep and the API; a file
    of another name in the same folder is taken."""
    import shutil
    import subprocess
    import sys

    from sim import simulate
    from sim.cli import CONFIG_DIR

    conf = tmp_path / "conf"
    (conf / "region").mkdir(parents=True)
    text = (CONFIG_DIR / "region" / "chongqing.yaml").read_text(encoding="utf-8")
    (conf / "region" / "chongqing.yaml").write_text(text.replace("population: 5700000 ", "population: 1200000 ")
                                                    .replace('"2022-10": 4940000 ', '"2022-10": 1040000 '))
    assert "population: 1200000 " in (conf / "region" / "chongqing.yaml").read_text()
    for flags, extra in (([], [f"hydra.run.dir={tmp_path / 'run'}"]),
                         (["-m"], ["seed=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}"])):
        run = subprocess.run([sys.executable, "-m", "sim", *flags, "--config-dir", str(conf), "n_agents=200",
                              "horizon.end_year=2023", *extra], capture_output=True, text=True, timeout=300)
        assert run.returncode == 2, run.stderr[-2000:]
        assert "Traceback" not in run.stderr and str(conf / "region" / "chongqing.yaml") in run.stderr
        assert "region=chongqing_mine" in run.stderr
    assert not (tmp_path / "run").exists() and not (tmp_path / "sweep").exists()
    with pytest.raises(ConfigError, match="ships with skillsim"):
        simulate(overrides=[f"hydra.searchpath=[file://{conf}]", "n_agents=200", "horizon.end_year=2023"])
    with pytest.raises(ConfigError, match="ships with skillsim"):  # a path without file://, as Hydra reads it too
        simulate(overrides=[f"hydra.searchpath=[{conf}]", "n_agents=200", "horizon.end_year=2023"])
    shutil.move(conf / "region" / "chongqing.yaml", conf / "region" / "chongqing_mine.yaml")
    mine = (conf / "region" / "chongqing_mine.yaml")
    mine.write_text(mine.read_text().replace("name: chongqing", "name: chongqing_mine")
                    .replace("label_en: Chongqing", "label_en: Chongqing (mine)").replace("label_zh: 重庆", "label_zh: 重庆（自定）"))
    run = subprocess.run([sys.executable, "-m", "sim", "--config-dir", str(conf), "region=chongqing_mine",
                          "n_agents=200", "horizon.end_year=2023", f"hydra.run.dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "population: 1200000" in (tmp_path / "run" / "config.yaml").read_text()


def test_history_dates_up_to_the_forecasts_start_are_taken_written_either_way():
    """A later start (horizon.start_year) runs the history on to the month before it, and aligns to what
    is dated there (a review: 2024-12 with a 2025 start was refused); a month written 2022-6 is June."""
    later = from_mapping({"horizon": {"start_year": 2025, "end_year": 2026},
                          "region": {"history": {"high_skill_share": {"2022-10": 0.315, "2022-12": 0.314,
                                                                     "2024-12": 0.36}}}})
    assert later.region.history.high_skill_share["2024-12"] == 0.36
    assert from_mapping({"region": {"history": {"high_skill_share": {"2022-6": 0.31, "2022-12": 0.314}}}})
    # one stock far from today's count that its own bound allows is not blamed on the population
    cfg = RunConfig()
    far = {"region": {"history": {"skilled_workers": {"2008-12": 0.09 * cfg.region.population * 0.883}}}}
    assert from_mapping(far)


def test_an_intensity_for_a_lever_the_scenario_switched_off_is_said():
    """scenario=no_policy levers.studio.intensity=2 ran as no_policy alone, silently (a user trial; EMA
    designs pairing no_policy with lever policies fell into it too). The run says so; a lever on, or
    off at its default intensity, says nothing."""
    off = from_mapping({"scenario": "no_policy", "levers": {"studio": {"enabled": False, "intensity": 2},
                                                            "training": {"enabled": False, "intensity": 0}}})
    assert off.switched_off_note() == (
        "levers.training.intensity=0, levers.studio.intensity=2 have no effect: the levers are off in this run "
        "(scenario no_policy; levers.training.enabled=false, levers.studio.enabled=false); add "
        "levers.training.enabled=true levers.studio.enabled=true to use it")
    # switched off on the command line in the baseline scenario: the scenario is named, not blamed (it said
    # "scenario baseline: levers.competition.enabled=false", a user trial)
    mine = from_mapping({"levers": {"competition": {"enabled": False, "intensity": 0}}})
    assert "off in this run (scenario baseline; levers.competition.enabled=false)" in mine.switched_off_note()
    assert from_mapping({"levers": {"studio": {"intensity": 2}}}).switched_off_note() is None
    assert from_mapping({"levers": {"studio": {"enabled": False}}}).switched_off_note() is None


def test_every_numeric_assumption_has_a_range_a_study_can_give_it():
    """An assumption without a source row had no documented range (a review: some 25 of them, held fixed
    in the bands, which said they carried "parameter" uncertainty). Each numeric one that shapes a
    forecast has a range in config.ASSUMPTION_RANGES, with its value inside and the range inside what
    the field allows; the docs' table shows it (sim.paramtable)."""
    import dataclasses as dc

    from sim.config import ASSUMPTION_RANGES, NOT_FORECAST_SHAPING
    from sim.paramtable import parameter_table

    def walk(obj, path=""):
        for f in dc.fields(obj):
            v = getattr(obj, f.name)
            if dc.is_dataclass(v):
                yield from walk(v, f"{path}{f.name}.")
            else:
                yield f"{path}{f.name}", v, f.metadata

    found = []
    for key, value, meta in walk(RunConfig()):
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or "assumption" not in meta.get("source", "").lower():
            continue
        found.append(key)
        if key in NOT_FORECAST_SHAPING:
            continue
        assert key in ASSUMPTION_RANGES, f"{key} = {value}: an assumption with no range"
        lo, hi, why = ASSUMPTION_RANGES[key]
        assert lo <= value <= hi and lo < hi and why, (key, value, lo, hi)
        assert (meta["lo"] is None or meta["lo"] <= lo) and (meta["hi"] is None or hi <= meta["hi"]), key
    assert len(found) >= 25 and set(ASSUMPTION_RANGES) <= set(found)  # no range for a key that is no assumption
    table = parameter_table()
    assert "| `behaviour.leave_share` |" in table and "range 0.1-0.4, drawn in the calibration ensemble and varied by `inputs=assumptions`" in table


def test_a_shipped_config_copied_unchanged_passes_and_other_shadows_are_refused(tmp_path):
    """A review: sim/conf copied whole as a template, then a region added, was refused (its shipped
    scenario/baseline.yaml, byte for byte the same, counted as a shadow); a config.yaml of the user's own
    and a group chosen under hydra/ were read from the package without a word."""
    import shutil

    from sim.cli import CONFIG_DIR, compose_config

    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    path = f"hydra.searchpath=[file://{conf}]"
    assert compose_config([path, "n_agents=300"]).n_agents == 300  # the same bytes: nothing shadowed
    (conf / "config.yaml").write_text((CONFIG_DIR / "config.yaml").read_text(encoding="utf-8") + "\nn_agents: 1500\n")
    with pytest.raises(ConfigError, match=r"--config-dir = .* is invalid; allowed: a folder without config\.yaml of its own"):
        compose_config([path])
    shutil.copy(CONFIG_DIR / "config.yaml", conf / "config.yaml")
    launchers = sorted(p.stem for p in (CONFIG_DIR / "hydra" / "launcher").glob("*.yaml"))
    assert launchers, "a launcher config ships with skillsim"
    mine = conf / "hydra" / "launcher" / f"{launchers[0]}.yaml"
    mine.write_text(mine.read_text(encoding="utf-8") + "\n# my cluster\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"hydra/launcher = '{launchers[0]}' is invalid"):
        compose_config([path, f"hydra/launcher={launchers[0]}"])


def test_a_run_off_the_calibrated_values_is_not_called_at_the_central_set(monkeypatch):
    """A run under SKILLSIM_UNCALIBRATED=1 (the priors) said in its summary and report "one run at the
    central parameter set (sim/data/calibration.yaml)" (a user trial). Which calibrated settings a config
    holds other values of is read from the config alone (a RunConfig or config.yaml's mapping), so a rerun
    says the same whatever its environment."""
    from sim import config
    from sim.model import WorkforceModel
    from sim.results import summarise

    cfg = RunConfig(n_agents=500, horizon=config.HorizonParams(end_year=2023))
    assert config.off_calibration(cfg) == [] and config.off_calibration(to_dict(cfg)) == []
    data = to_dict(cfg)
    data["behaviour"]["pass_prob"] = [p * 0.9 for p in data["behaviour"]["pass_prob"]]
    data["levers"]["studio"]["learning_multiplier"] = config.ASSUMED["levers.studio.learning_multiplier"]
    assert config.ASSUMED["levers.studio.learning_multiplier"] != cfg.levers.studio.learning_multiplier
    moved = from_mapping(data)
    assert config.off_calibration(moved) == config.off_calibration(data) == [
        "behaviour.pass_prob", "levers.studio.learning_multiplier"]
    priors = to_dict(cfg)
    for key, value in config.ASSUMED.items():
        *section, name = key.split(".")
        node = priors
        for part in section:
            node = node[part]
        node[name] = value
    monkeypatch.setenv(config.UNCALIBRATED_ENV, "1")  # the file is still what the values are compared with
    config._calibration_in_file.cache_clear()
    try:
        assert config.off_calibration(priors) == list(config.ASSUMED)
    finally:
        monkeypatch.delenv(config.UNCALIBRATED_ENV)
        config._calibration_in_file.cache_clear()
    texts = {}
    for name, c in (("calibrated", cfg), ("moved", moved)):
        model = WorkforceModel(c)
        model.run()
        texts[name] = summarise(model.series_columns(), c)["uncertainty"]
    assert texts["calibrated"].startswith("one run at the central parameter set (sim/data/calibration.yaml)")
    assert texts["moved"].startswith("one run at parameter values other than the calibrated central set "
                                     "(sim/data/calibration.yaml) for behaviour.pass_prob, "
                                     "levers.studio.learning_multiplier (config.yaml holds the values run)")


def test_a_runs_manifest_says_where_its_calibrated_defaults_came_from(tmp_path):
    """A run under SKILLSIM_UNCALIBRATED=1 left no trace of it in manifest.json (a user trial): the manifest
    names where the calibrated settings' defaults came from, as they were fixed when sim.config was
    imported (the variable changed later changes no default, and no record)."""
    import json
    import os
    import subprocess
    import sys

    from sim import config
    from sim.results import sha256

    code = ("import json, os, sys\n"
            "from sim.config import RunConfig, HorizonParams\n"
            "from sim.model import WorkforceModel\n"
            "from sim.results import write_run\n"
            "cfg = RunConfig(n_agents=300, horizon=HorizonParams(end_year=2023))\n"
            "m = WorkforceModel(cfg)\n"
            "m.run()\n"
            "os.environ.pop('SKILLSIM_UNCALIBRATED', None)  # after the import: the defaults are fixed\n"
            "out = write_run(__import__('pathlib').Path(sys.argv[1]), cfg, m.series_columns())\n"
            "print(json.dumps(json.loads((out / 'manifest.json').read_text())['defaults']))\n")
    records = {}
    for env in (None, "1"):
        e = {k: v for k, v in os.environ.items() if k != config.UNCALIBRATED_ENV}
        if env:
            e[config.UNCALIBRATED_ENV] = env
        proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / f"run-{env}")], capture_output=True,
                              text=True, env=e, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        records[env] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert records[None] == {"from": "the calibration file", "calibration_sha256": sha256(config.CALIBRATION_FILE)}
    assert records["1"] == {"from": "the priors (SKILLSIM_UNCALIBRATED=1)", "calibration_sha256": None}
