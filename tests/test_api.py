"""The Python API: sim.simulate and WorkforceModel's Mesa-style keywords, against the command line
and against Mesa's own batch_run."""

from __future__ import annotations

import dataclasses
import re

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from sim import WorkforceModel, simulate
from sim.api import PARAMETERS, _composed, compose
from sim.cli import compose_config
from sim.errors import ConfigError, SkillsimError

SMALL = dict(n_agents=2000, end_year=2024, seed=5)


def test_simulate_gives_what_skillsim_writes(tmp_path):
    """Same settings, same numbers: the command's series.csv and summary.json against simulate()."""
    cmd = [sys.executable, "-m", "sim", "n_agents=2000", "horizon.end_year=2024", "seed=5",
           "levers.training.intensity=2", "region=national", f"hydra.run.dir={tmp_path / 'run'}"]
    subprocess.run(cmd, check=True, capture_output=True, cwd=tmp_path)
    written = pd.read_csv(tmp_path / "run" / "series.csv")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    out = simulate("national", training_intensity=2, series=True, **SMALL)
    assert out["series"].to_csv(index=False) == written.to_csv(index=False)
    assert out["high_skill_share"] == summary["at_end"]["high_skill_share"]
    assert out["income_median"] == summary["target_year_mean"]["income_median"]
    assert out["spend_total"] == summary["spend_cumulative"]["total"]
    assert out["spend_training_government"] == summary["spend_cumulative"]["training_government"]


def test_keywords_overrides_and_presets_compose_as_the_command_line_does():
    a = compose("national", "training_boost", ["behaviour.aptitude_sd=0.4"], competition_intensity=0.5,
                training_allocation="lowest_level", **SMALL)
    b = compose_config(["region=national", "scenario=training_boost", "behaviour.aptitude_sd=0.4",
                        "levers.competition.intensity=0.5", "levers.training.allocation=lowest_level",
                        "n_agents=2000", "horizon.end_year=2024", "seed=5"])
    assert a == b
    # the Hydra composition is made once per choice of presets and reused
    before = _composed.cache_info()
    for k in range(5):
        compose("national", "training_boost", competition_intensity=0.1 * k, **SMALL)
    after = _composed.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 5


def test_an_intensity_for_a_lever_the_scenario_switched_off_is_warned_of():
    """simulate('chongqing', 'no_policy', studio_intensity=2) gave the no_policy numbers, silently. Said
    once per scenario and levers off: an EMA design's every intensity was a warning of its own."""
    import warnings

    from sim import api

    api._SAID_OFF.clear()
    with pytest.warns(UserWarning, match=r"levers.studio.intensity=2 has no effect: the lever is off"):
        compose("chongqing", "no_policy", studio_intensity=2.0, **SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compose("chongqing", "no_policy", studio_intensity=2.5, **SMALL)  # said already
        compose("chongqing", "baseline", studio_intensity=2.0, **SMALL)  # on: nothing said


def test_bad_keywords_and_values_name_the_field():
    with pytest.raises(ConfigError, match="training_intensty"):
        simulate(training_intensty=2.0, **SMALL)
    with pytest.raises(ConfigError, match=r"levers\.training\.intensity = -1"):
        simulate(training_intensity=-1, **SMALL)
    with pytest.raises(ConfigError, match=r"behaviour\.no_such_key"):
        compose(overrides=["behaviour.no_such_key=1"])
    with pytest.raises(SkillsimError, match="atlantis"):
        compose("atlantis")
    # overrides given as one string (it was read letter by letter) or without a value: one line each
    with pytest.raises(ConfigError, match=r"overrides = 'levers\.training\.intensity=2' is invalid; allowed: a list"):
        simulate("chongqing", "baseline", "levers.training.intensity=2", **SMALL)
    with pytest.raises(ConfigError, match=r"overrides = 'behaviour\.aptitude_sd' is invalid; allowed: 'key=value'"):
        compose(overrides=["behaviour.aptitude_sd"])
    with pytest.raises(ConfigError, match="overrides = "):
        compose(overrides=[("n_agents", 5)])
    # Hydra's parser error raised as it was (several lines, a link), and a setting in the scenario's place
    with pytest.raises(ConfigError, match=r"overrides = 'behaviour\.aptitude_sd==' is invalid; allowed: 'key=value' "
                                          "as on the command line"):
        compose("chongqing", "baseline", ["behaviour.aptitude_sd=="])
    with pytest.raises(ConfigError, match=r"scenario = 'a=b' is invalid; allowed: a preset name"):
        compose("chongqing", "a=b")
    # a keyword and an override of the same key: the keyword won, silently
    with pytest.raises(ConfigError, match=r"training_intensity = 1 is invalid; allowed: given once: overrides also "
                                          r"set levers\.training\.intensity"):
        compose("chongqing", "baseline", ["levers.training.intensity=3"], training_intensity=1)
    with pytest.raises(ConfigError, match=r"levers\.studio\.intensity = 2 is invalid; allowed: given once"):
        compose(overrides=["levers.studio.intensity=1"], **{"levers.studio.intensity": 2})
    assert compose(overrides=["levers.studio.intensity=1"], training_intensity=2).levers.training.intensity == 2
    # WorkforceModel's own seed= and n_agents= too (they overruled the overrides, silently); and a seed given
    # in overrides is the run's (a fresh one replaced it)
    with pytest.raises(ConfigError, match="seed = 9 is invalid; allowed: given once"):
        WorkforceModel(region="chongqing", overrides=["seed=3"], seed=9)
    with pytest.raises(ConfigError, match="n_agents = 700 is invalid; allowed: given once"):
        WorkforceModel(region="chongqing", overrides=["n_agents=500"], n_agents=700)
    assert WorkforceModel(region="chongqing", overrides=["seed=3", "n_agents=500"]).cfg.seed == 3
    assert WorkforceModel(region="chongqing", seed=4, n_agents=600).cfg.seed == 4
    for make in (lambda: WorkforceModel(rng=5), lambda: simulate(rng=5, **SMALL)):  # Mesa 3's keyword
        with pytest.raises(ConfigError, match="rng = 5 is invalid; allowed: not a keyword here: give seed=N"):
            make()
    assert {"training_intensity", "competition_intensity", "studio_intensity", "end_year", "replicate"} <= set(PARAMETERS)


@pytest.mark.parametrize("given", [{"levers.training.intensity": 2, "training_intensity": 3},
                                   {"training_intensity": 3, "levers.training.intensity": 2},
                                   {"growth_per_year": 0.03, "region.growth_per_year": 0.0}])
def test_a_setting_given_by_its_keyword_and_its_config_key_is_refused(given):
    """The keyword given last won without a word (a user trial: training_intensity=3 beside the config key at
    2; easy with EMA's constants beside its levers), in simulate and WorkforceModel alike."""
    first, second = given
    words = rf"{second} = {given[second]} is invalid; allowed: given once: {first} also sets "
    for make in (lambda: simulate("chongqing", **given, **SMALL), lambda: WorkforceModel(**given),
                 lambda: WorkforceModel(region="chongqing", **given)):
        with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
            make()
    assert compose(**{first: given[first]}) is not None  # either alone is a setting


def test_a_node_holding_a_keyword_setting_is_refused_beside_it():
    """levers.training={intensity: 2} beside training_intensity=3: the one given last won (a review), as
    keywords or one of them in overrides; a node that does not hold the setting is no clash."""
    for given in ({"training_intensity": 3, "levers.training": {"intensity": 2}},
                  {"levers.training": {"intensity": 2}, "training_intensity": 3}):
        with pytest.raises(ConfigError, match="given once"):
            compose(**given)
    for overrides, given in ((["levers.training={intensity:2}"], {"training_intensity": 3}),
                             (["levers.training.intensity=2"], {"levers.training": {"intensity": 3}})):
        with pytest.raises(ConfigError, match=r"given once: overrides also set levers\.training\.intensity"):
            compose(overrides=overrides, **given)
    assert compose(training_intensity=2, **{"levers.training": {"enabled": True}}).levers.training.intensity == 2


def test_a_misspelt_keyword_gets_the_same_line_with_the_nearest_from_simulate_and_workforce_model():
    """simulate listed every keyword and sent dotted keys to overrides=[...] (keywords take them too);
    WorkforceModel listed none and suggested nothing."""
    for make in (lambda: simulate(training_intensty=2, **SMALL), lambda: WorkforceModel(training_intensty=2)):
        with pytest.raises(ConfigError) as exc:
            make()
        assert str(exc.value).startswith("config error: training_intensty = 2 is invalid; allowed: did you mean "
                                         "training_intensity? a keyword of sim.api.PARAMETERS (end_year, "), exc.value
        assert str(exc.value).endswith("or a dotted config key (levers.training.intensity=2.0)")


def test_workforce_model_keywords_equal_a_composed_config():
    a = WorkforceModel(region="national", training_intensity=2, **SMALL).run().series()
    b = WorkforceModel(compose_config(["region=national", "levers.training.intensity=2", "n_agents=2000",
                                       "horizon.end_year=2024", "seed=5"])).run().series()
    assert a.to_csv(index=False) == b.to_csv(index=False)
    # keywords on top of a config
    c = WorkforceModel(compose_config(["region=national", "n_agents=2000", "horizon.end_year=2024", "seed=5"]),
                       training_intensity=2).run().series()
    assert c.to_csv(index=False) == a.to_csv(index=False)
    with pytest.raises(ConfigError, match="region"):
        WorkforceModel(compose_config(["n_agents=2000"]), region="national")


def test_no_seed_means_a_fresh_recorded_seed_as_in_mesa():
    a = WorkforceModel(n_agents=2000, end_year=2023)
    b = WorkforceModel(n_agents=2000, end_year=2023)
    assert a.run_seed != b.run_seed
    sa, sb = a.run().series(), b.run().series()
    assert not sa.equals(sb)
    again = WorkforceModel(n_agents=2000, end_year=2023, seed=a.run_seed).run().series()
    assert again.to_csv(index=False) == sa.to_csv(index=False)
    # a config keeps its seed
    cfg = compose_config(["n_agents=2000", "horizon.end_year=2023"])
    assert WorkforceModel(cfg).run_seed == WorkforceModel(cfg).run_seed == cfg.seed


def test_mesa_batch_run_gives_tidy_rows_with_the_final_month(tmp_path):
    """Mesa's own batch_run (in a fresh process: importing it switches the process to "spawn") over
    two intensities x two replicates: four distinct runs keyed by the parameters, last row December of
    the end year, equal to the same settings run directly."""
    code = textwrap.dedent("""
        import json, sys
        import pandas as pd
        from mesa import batch_run
        from sim import WorkforceModel
        rows = batch_run(WorkforceModel, {"training_intensity": [1.0, 2.0], "replicate": [0, 1], "seed": 5,
                                          "n_agents": 2000, "end_year": 2024},
                         number_processes=1, data_collection_period=-1, display_progress=False)
        pd.DataFrame(rows).to_csv(sys.argv[1], index=False)
        yearly = batch_run(WorkforceModel, {"n_agents": 500, "end_year": 2024, "seed": 5}, number_processes=1,
                           data_collection_period=12, display_progress=False)
        print(json.dumps([r["date"] for r in yearly]))
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "rows.csv")], check=True, capture_output=True,
                          text=True)
    # README: the rows start at the first simulated month, so a period of 12 gives Januaries (and the last)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["2023-01", "2024-01", "2024-12"]
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert len(rows) == 4 and (rows["date"] == "2024-12").all()
    assert rows[["training_intensity", "replicate"]].drop_duplicates().shape[0] == 4
    assert rows["high_skill_share"].nunique() == 4
    for _, r in rows.iterrows():  # CSV keeps floats exactly (shortest repr)
        direct = simulate(training_intensity=r["training_intensity"], replicate=int(r["replicate"]), **SMALL)
        assert r["high_skill_share"] == direct["high_skill_share"]
    full = simulate(training_intensity=2.0, replicate=1, series=True, **SMALL)["series"].iloc[-1]
    last = rows[(rows["training_intensity"] == 2.0) & (rows["replicate"] == 1)].iloc[0]
    for col in ("workers", "high_skill_share", "income_mean", "income_median", "spend_total"):
        assert last[col] == full[col], col
    # each row names its run: the run's seed repeats it with no other setting of the sweep (replicate 1 too)
    assert rows["run_seed"].nunique() == 2 and (rows.loc[rows["replicate"] == 0, "run_seed"] == 5).all()
    again = simulate(training_intensity=2.0, seed=int(last["run_seed"]), n_agents=2000, end_year=2024)
    assert again["high_skill_share"] == last["high_skill_share"] and again["seed"] == last["run_seed"]


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_batch_run_row_without_a_seed_names_the_fresh_seed_it_ran(tmp_path):
    """Without a seed each run draws a fresh one (as Mesa models do); the row's run_seed repeats it."""
    code = textwrap.dedent("""
        import sys
        import pandas as pd
        from mesa import batch_run
        from sim import WorkforceModel
        rows = batch_run(WorkforceModel, {"n_agents": 2000, "end_year": 2023}, iterations=2,
                         number_processes=1, data_collection_period=-1, display_progress=False)
        pd.DataFrame(rows).to_csv(sys.argv[1], index=False)
    """)
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "rows.csv")], check=True, capture_output=True)
    rows = pd.read_csv(tmp_path / "rows.csv")
    assert len(rows) == 2 and rows["run_seed"].nunique() == 2
    for _, r in rows.iterrows():
        assert simulate(seed=int(r["run_seed"]), n_agents=2000, end_year=2023)["high_skill_share"] == r["high_skill_share"]


def test_presets_by_the_names_ema_workbench_leaves_free():
    """EMA Workbench keeps a `scenario` column of its own (a parameter of that name fails in numpy);
    `scenario_preset` and `region_preset` choose the same presets as `scenario` and `region`."""
    from sim.errors import ConfigError

    small = dict(n_agents=2000, end_year=2024, seed=3)
    a = simulate(scenario_preset="no_policy", region_preset="national", **small)
    b = simulate(region="national", scenario="no_policy", **small)
    assert a == b and a != simulate(region="national", **small)
    with pytest.raises(ConfigError, match="scenario_preset = 'baseline' is invalid; allowed: one of scenario_preset "
                                          "and scenario, not both"):
        simulate(scenario="no_policy", scenario_preset="baseline", **small)
    assert simulate(scenario="no_policy", scenario_preset=None, region_preset="national", **small) == b


def test_numpys_numbers_are_taken_as_the_numbers_they_are():
    """A loop over np.arange passed np.int64: refused as "n_agents = np.int64(2000) is invalid; allowed:
    an integer". numpy's integers and floats are taken as Python's; its booleans and fractions given
    for an integer are still refused."""
    import numpy as np

    plain = simulate("chongqing", n_agents=500, end_year=2023, seed=5, training_intensity=1.5)
    given = simulate("chongqing", n_agents=np.int64(500), end_year=np.int32(2023), seed=np.uint8(5),
                     training_intensity=np.float32(1.5))
    assert given == plain
    model = WorkforceModel(n_agents=np.int64(500), seed=np.int64(5), end_year=np.int64(2023))
    assert model.cfg.n_agents == 500 and type(model.cfg.n_agents) is int
    for bad, said in ((np.bool_(True), "n_agents = true is"), (np.float64(500.5), "n_agents = 500.5 is")):
        with pytest.raises(ConfigError, match=said):  # the number as written, not np.float64(500.5)
            simulate("chongqing", n_agents=bad, end_year=2023)


def test_numpys_booleans_and_0d_arrays_are_the_values_they_hold():
    """Mesa's batch_run given np.array([True, False]), or a pandas row's np.bool_, was refused as
    "levers.training.enabled = true is invalid; allowed: true or false", and np.array(1.0) as "= 1.0 is
    invalid; allowed: a number": the values, not their numpy wrappers, are checked."""
    import numpy as np

    from sim.api import compose

    for flag in (np.array([True, False])[1], np.bool_(False), np.array(False)):
        cfg = compose(training_enabled=flag, training_intensity=np.array(1.5), n_agents=np.array(2000))
        assert cfg.levers.training.enabled is False and cfg.levers.training.intensity == 1.5
        assert type(cfg.levers.training.intensity) is float and type(cfg.n_agents) is int
    with pytest.raises(ConfigError, match="levers.training.enabled = .* allowed: true or false"):
        compose(training_enabled=np.array([True, False]))  # an array of them is still not a switch
    with pytest.raises(ConfigError, match="levers.training.intensity = true is invalid"):
        compose(training_intensity=np.bool_(True))  # a boolean for a number: refused as Python's is


def test_a_list_of_scenarios_is_refused_as_skillsim_refuses_it():
    """`overrides=["scenario=[no_policy,training_boost]"]` ran Hydra's blend of both presets labelled
    training_boost with training switched off; the command line refuses it in one line, and so does the API."""
    from sim.api import compose

    for group, value in (("scenario", "[no_policy,training_boost]"), ("region", "[national,zhong_county]")):
        with pytest.raises(ConfigError, match=f"{group} = '\\{value[:-1]}\\]' is invalid; allowed: one {group}"):
            compose(overrides=[f"{group}={value}"])
        with pytest.raises(ConfigError, match=f"allowed: one {group}"):
            WorkforceModel(overrides=[f"{group}={value}"], n_agents=500, end_year=2023)


def test_a_setting_a_draw_replaces_is_refused_with_the_draw():
    """`draw=3` with `growth_per_year=0.03` ran at the draw's growth (0.0295...) without a word, so a study
    pairing the two found the setting had no effect. A setting the draw replaces (a structural input, a
    calibrated parameter) is refused, naming it; one it leaves alone, or a group choice, is not."""
    from sim.api import compose
    from sim.studies.uncertainty import draw_config

    drawn = compose("chongqing", draw=3, n_agents=2000)
    assert drawn == dataclasses.replace(draw_config(compose("chongqing", n_agents=2000), 3), draw=3)
    for given, key in ((dict(growth_per_year=0.03), "region.growth_per_year = 0.03"),
                       (dict(overrides=["region.base_wage=61000"]), "region.base_wage = 61000"),
                       (dict(overrides=["behaviour.pass_prob=[0.9,0.8,0.7,0.6,0.5]"]), "behaviour.pass_prob = ")):
        with pytest.raises(ConfigError, match=f"{re.escape(key)}.*not set together with draw=3, whose joint draw "
                                              "replaces it"):
            compose("chongqing", draw=3, n_agents=2000, **given)
    kept = compose("chongqing", draw=3, n_agents=2000, training_intensity=2.0, overrides=["region=chongqing"])
    assert kept.levers.training.intensity == 2.0 and kept.region.growth_per_year == drawn.region.growth_per_year
    assert compose("chongqing", n_agents=2000, growth_per_year=0.03).region.growth_per_year == 0.03  # no draw
    # WorkforceModel's keywords (Mesa's batch_run over draw) ran the central values under draw=3
    assert WorkforceModel(draw=3, n_agents=2000, seed=drawn.seed).cfg == drawn
    with pytest.raises(ConfigError, match="region.growth_per_year = 0.03 is invalid; allowed: not set together with "
                                          "draw=3"):
        WorkforceModel(draw=3, growth_per_year=0.03, n_agents=2000)
    # a given population is rescaled by a drawn uncertified share, not replaced: it is not refused
    big = compose("national", draw=3, n_agents=2000, overrides=["region.population=250000000"])
    assert big.region.population > compose("national", draw=3, n_agents=2000).region.population


@pytest.mark.parametrize("overrides", [
    ["region.structural={region.base_wage:[55000,61000]}"],  # merged into the preset's ranges, as Hydra does
    ["region.structural={}"],
    ["region.structural={}", "region.structural={region.base_wage:[55000,61000]}"],
    ["levers.training={intensity:2}", "region.history.skilled_workers={}", "n_agents=3000"],
])
def test_a_mapping_given_in_overrides_composes_as_on_the_command_line(overrides):
    """The API replaced a mapping that skillsim merges: the same override ran the preset's other structural
    ranges from the command line and none of them from Python (a review)."""
    from sim import api
    from sim.cli import compose_config

    assert api.compose(None, None, overrides) == compose_config(overrides)


def test_calibrated_parameters_by_their_study_names_set_what_a_study_point_sets():
    """Sensitivity and discovery report their inputs as mastery_scale, exit_factor_high, ...; simulate refused
    those names, so a discovery box could not be run again (a user trial). Given by name they now set the
    config as the study's point does (sim.studies.inputs.configure), within the calibration's bounds."""
    import numpy as np

    from sim.cli import compose_config
    from sim.studies.calibrate import FREE
    from sim.studies.inputs import Input, configure

    rng = np.random.default_rng(3)
    base = compose_config(["region=chongqing", "n_agents=2000"])
    for names in (["mastery_scale"], ["exit_factor_high", "sit_rate_low", "entrant_share_senior"]):
        free = {p.name: p for p in FREE}
        x = [float(rng.uniform(free[n].lo, free[n].hi)) for n in names]
        want = configure(base, [Input(n, free[n].lo, free[n].hi, "parameters") for n in names], np.array(x))
        got = compose("chongqing", n_agents=2000, **dict(zip(names, x)))
        assert got == want and got != base, names
        assert WorkforceModel(region="chongqing", n_agents=2000, seed=1, **dict(zip(names, x))).cfg.behaviour == \
            want.behaviour
    with pytest.raises(ConfigError, match=r"mastery_scale = 5 is invalid; allowed: a number in \[0\.5, 2\], the "
                                          r"calibration's bounds \(learning speed"):
        compose(mastery_scale=5)
    with pytest.raises(ConfigError, match=r"mastery_scale = 1\.2 is invalid; allowed: not with draw=3"):
        compose(draw=3, mastery_scale=1.2)
    with pytest.raises(ConfigError, match="did you mean mastery_scale"):
        compose(mastery_scal=1.2)
    assert compose(mastery_scale="1.2") == compose(mastery_scale=1.2)  # as a setting's number written as text
    # a calibrated field the names cannot give back: setting them starts from the prior's values, which
    # dropped part of a list the user gave without a word (two reviews: two of pass_prob's five values), in
    # the call or in the config given
    for given, clash in ((["behaviour.pass_prob=[0.9,0.9,0.9,0.5,0.5]"], "behaviour.pass_prob"),
                         (["behaviour={turnover_level_factor:[1.5,1.2,1.0,0.5,0.5,0.5,0.5,0.5]}"],
                          "behaviour.turnover_level_factor")):
        with pytest.raises(ConfigError, match=rf"mastery_scale = 1\.2 is invalid; allowed: not with {clash} = .* "
                                              r"given: the calibrated parameters by name set it from its prior value"):
            compose(overrides=given, mastery_scale=1.2)
    with pytest.raises(ConfigError, match=r"sit_rate_apprentice = 0\.4 is invalid; allowed: not with "
                                          r"behaviour\.sit_rate = \[0\.5, 0\.1, 0\.2, 0\.05, 0\.04\] in the config"):
        WorkforceModel(compose(overrides=["behaviour.sit_rate=[0.5,0.1,0.2,0.05,0.04]"]), sit_rate_apprentice=0.4)
    with pytest.raises(ConfigError, match=r"not with behaviour\.mastery_months = \[1\.0, 2\.0, 3\.0, 4\.0, 5\.0\] given"):
        compose(mastery_scale=1.2, **{"behaviour.mastery_months": [1, 2, 3, 4, 5]})
    # what the names give back, or do not touch, is kept: no refusal (a review: these were refused)
    assert compose(mastery_scale=1.2, **{"behaviour.aptitude_sd": 0.3}).behaviour.aptitude_sd == 0.3  # not calibrated
    assert compose(mastery_scale=1.2, **{"behaviour.initial_progress_scale": 0.5}).behaviour.initial_progress_scale == 0.5
    assert compose(mastery_scale=1.2, **{"levers.studio": {"intensity": 2.0}}).levers.studio.intensity == 2.0


def test_the_readme_lists_every_calibrated_parameter_with_its_bounds():
    from pathlib import Path

    from sim.studies.calibrate import FREE

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for p in FREE:
        assert f"| `{p.name}` | {p.lo:g}-{p.hi:g} | {p.why} |" in readme, p.name


def test_numbers_written_as_text_are_read_alike_for_integers_and_floats():
    """n_agents="2000" was read and training_intensity="2" refused (a user trial): one rule now, and a word
    is still refused."""
    assert compose(training_intensity="2", n_agents="2000") == compose(training_intensity=2, n_agents=2000)
    assert compose(**{"behaviour.aptitude_sd": "0.3"}).behaviour.aptitude_sd == 0.3
    for bad in ("high", "nan", "inf", ""):
        with pytest.raises(ConfigError, match=r"levers\.training\.intensity = .* is invalid; allowed: a number"):
            compose(training_intensity=bad)
