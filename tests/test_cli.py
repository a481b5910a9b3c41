"""The command line as a user meets it: `skillsim`, `python -m sim`, folders and one-line errors.

Bad input (values, names, horizon, size, files, sweeps) is one table in tests/test_bad_inputs.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from sim.cli import CONFIG_DIR, config_from_hydra, register_schema
from sim.config import RunConfig
from sim.errors import EXIT_OUTPUT

SKILLSIM = [sys.executable, "-m", "sim"]
# The console script installed beside this interpreter (works without an activated venv).
ENTRY = str(Path(sys.executable).with_name("skillsim")) if Path(sys.executable).with_name("skillsim").exists() else "skillsim"
REQUIRED = ["date", "high_skill_share", "income_mean", "income_median"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": ""}
    env.pop("HYDRA_FULL_ERROR")
    return subprocess.run([*SKILLSIM, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def compose_run(*overrides: str) -> RunConfig:
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg, _ = config_from_hydra(compose(config_name="config", overrides=list(overrides)))
    GlobalHydra.instance().clear()
    return cfg


def test_no_arguments_runs_the_chongqing_baseline(tmp_path):
    """`skillsim` with no arguments: one folder under results/ with the series, summary and manifest."""
    proc = subprocess.run([ENTRY], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "results" / "runs").iterdir())
    assert len(runs) == 1
    folder = runs[0]
    series = pd.read_csv(folder / "series.csv")
    assert list(series.columns[:1]) == ["date"] and set(REQUIRED) <= set(series.columns)
    assert series["date"].iloc[0] == "2022-12" and series["date"].iloc[-1] == "2035-12"
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert summary["config"]["region"]["name"] == "chongqing" and summary["config"]["n_agents"] == 100_000
    assert summary["at_end"]["high_skill_share"] == pytest.approx(series["high_skill_share"].iloc[-1])
    assert manifest["seed"] == RunConfig().seed and "numpy" in manifest["versions"]
    assert set(manifest["files"]) >= {"series.csv", "summary.json", "config.yaml"}
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"


def test_overrides_and_run_dir_and_byte_identical_reruns(tmp_path):
    args = ["region=national", "scenario=studio_expansion", "horizon.end_year=2026", "n_agents=4000", "seed=7"]
    a = cli(*args, f"hydra.run.dir={tmp_path / 'a'}", cwd=tmp_path)
    b = cli(*args, f"hydra.run.dir={tmp_path / 'b'}", cwd=tmp_path)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    sa, sb = (tmp_path / "a" / "series.csv").read_bytes(), (tmp_path / "b" / "series.csv").read_bytes()
    assert sa == sb
    # the forecast it suggests is of the setting that ran (it forecast the status quo), without the options
    # the forecast sets itself
    assert "run skillsim-forecast region=national scenario=studio_expansion horizon.end_year=2026\n" in a.stderr
    summary = json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["region"]["name"] == "national" and summary["config"]["scenario"] == "studio_expansion"
    assert summary["config"]["seed"] == 7 and summary["target_year"] == 2026
    assert pd.read_csv(tmp_path / "a" / "series.csv")["date"].iloc[0] == "2021-12"  # national: end-2021
    c = cli(*args[:-1], "seed=8", f"hydra.run.dir={tmp_path / 'c'}", cwd=tmp_path)
    assert c.returncode == 0 and (tmp_path / "c" / "series.csv").read_bytes() != sa


def test_existing_results_are_never_overwritten(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "series.csv").write_text("precious\n")
    proc = cli("n_agents=2000", "horizon.end_year=2024", f"hydra.run.dir={out}", cwd=tmp_path)
    assert proc.returncode == EXIT_OUTPUT
    assert "already exists" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "series.csv").read_text() == "precious\n"


@pytest.mark.parametrize("region", ["chongqing", "national", "zhong_county"])
@pytest.mark.parametrize("scenario", ["baseline", "no_policy", "training_boost", "competition_push",
                                      "studio_expansion", "combined"])
@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_every_preset_and_scenario_composes(region, scenario):
    cfg = compose_run(f"region={region}", f"scenario={scenario}")
    assert cfg.region.name == region and cfg.scenario == scenario
    active = {k: getattr(cfg.levers, k).enabled and getattr(cfg.levers, k).intensity > 0
              for k in ("training", "competition", "studio")}
    assert all(active.values()) == (scenario != "no_policy")
    assert any(active.values()) == (scenario != "no_policy")


def test_composed_chongqing_baseline_equals_the_python_defaults():
    """The YAML preset and the dataclass defaults describe the same status quo."""
    assert compose_run() == RunConfig()


def test_national_starts_at_end_2021():
    assert compose_run("region=national").start_year == 2022


def _command_script(tmp_path: Path, body: str) -> Path:
    """A stand-in for the `skillsim` console script (its name starts with skillsim): `main` replaced by
    `body`, an exit function that prints 'ran', and os._exit that says when it ends the process."""
    script = tmp_path / "skillsim_stand_in.py"
    script.write_text(
        "import atexit, os, sys\nimport sim.cli as c\n"
        "atexit.register(lambda: print('ran'))\n"
        "real_exit = os._exit\n"
        "def fast(status):\n    print('fast', flush=True)\n    real_exit(status)\n"
        "os._exit = fast\n"
        f"{body}\n"
        "c.main = main\nprint('buffered', end=' ')\nc.console()\nprint('not reached')\n")
    return script


@pytest.mark.parametrize("body, status, fast", [
    ("main = lambda: None", 0, True),
    ("def main():\n    raise SystemExit(3)", 3, True),
    ("def main():\n    raise SystemExit('config error: x')", 1, True),
    # a thread still running: the normal shutdown, which waits for it (its line is printed)
    ("import threading, time\ndef main():\n    threading.Thread(target=lambda: (time.sleep(0.3), print('thread'))).start()",
     0, False),
])
def test_the_command_ends_at_once_after_its_exit_functions_with_the_same_status(tmp_path, body, status, fast):
    """`console` (skillsim, python -m sim) skips only the interpreter's teardown: the exit functions
    run (an atexit hook writes its line), buffered output is flushed, and the status is SystemExit's."""
    proc = subprocess.run([sys.executable, str(_command_script(tmp_path, body))], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert proc.returncode == status
    assert proc.stdout.startswith("buffered") and "ran" in proc.stdout and "not reached" not in proc.stdout
    assert ("fast" in proc.stdout) == fast and ("thread" in proc.stdout) == (not fast)
    if status == 1:
        assert proc.stderr.strip() == "config error: x"


def test_the_command_ends_normally_under_a_profiler_and_with_its_output_closed(tmp_path):
    """A profiler (or coverage, a debugger) writes its results after the program returns: the command
    then ends the normal way. With stdout closed the status is still that of the run."""
    script = _command_script(tmp_path, "main = lambda: None")
    out = tmp_path / "profile.out"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), str(script)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and "fast" not in proc.stdout and out.stat().st_size > 0
    closed = subprocess.run([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, timeout=60, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 0 and "Error" not in closed.stderr


@pytest.mark.parametrize("region", ["chongqing", pytest.param("national", marks=pytest.mark.slow),
                                    pytest.param("zhong_county", marks=pytest.mark.slow)])  # one by default
def test_config_yaml_is_pyyamls_safe_dump_text_for_every_preset(region):
    """sim.results.yaml_text (libyaml's emitter) writes config.yaml as yaml.safe_dump does, byte for
    byte: the composed config of every scenario of each region, with text that needs quoting, Chinese
    text, long strings and odd numbers added."""
    import yaml

    from sim.results import yaml_text

    register_schema()
    scenarios = sorted(p.stem for p in (CONFIG_DIR / "scenario").glob("*.yaml"))
    assert len(scenarios) >= 5
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            for scenario in scenarios:
                _, data = config_from_hydra(compose(config_name="config", overrides=[f"region={region}",
                                                                                   f"scenario={scenario}"],
                                                    return_hydra_config=True))
                data = dict(data, extra={"quoted": ["yes", "no", "1e3", "null", "2035-12", "a: b", " x", "#c"],
                                         "text": "重庆 高级技师 首席技师 " * 12, "long": "word " * 60,
                                         "numbers": [1e-300, 1.5e300, float("inf"), -0.0, 12345678901234567890]})
                want = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
                assert yaml_text(data) == want, (region, scenario)
                assert yaml.safe_load(want)["extra"]["quoted"][0] == "yes"
    finally:
        GlobalHydra.instance().clear()


@pytest.mark.parametrize("text,expected", [("true", True), ("false", False), ("no", False), ("1", None), ("0", None),
                                           ("2", None), ("-1", None)])
def test_a_switch_takes_true_or_false_and_no_number(text, expected):
    """OmegaConf reads any number but 0 as a switch's true (`levers.studio.enabled=2` ran the lever; a sweep
    over `true,1` ran one setting twice and its table failed on the mix); the overrides as typed are
    checked (sim.cli.refuse_numbers_for_switches), as `simulate` and the Optuna choices are."""
    from sim.errors import ConfigError

    register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            dcfg = compose(config_name="config", overrides=[f"levers.studio.enabled={text}"], return_hydra_config=True)
            if expected is None:
                with pytest.raises(ConfigError, match=f"levers.studio.enabled = {text} is invalid; allowed: true or false"):
                    config_from_hydra(dcfg)
            else:
                assert config_from_hydra(dcfg)[0].levers.studio.enabled is expected
    finally:
        GlobalHydra.instance().clear()


def test_a_folder_for_the_other_mode_alone_is_refused(tmp_path, monkeypatch, capsys):
    """`skillsim hydra.sweep.dir=X` (no -m) and `skillsim -m ... hydra.run.dir=X` wrote to the default
    folder without a word. Both given (a script's, for either mode) is fine."""
    from sim import cli

    monkeypatch.chdir(tmp_path)
    for argv, says in ((["n_agents=300", "hydra.sweep.dir=X"], "hydra.sweep.dir = 'X' is invalid; allowed: a sweep's folder, with -m"),
                       (["-m", "replicate=0,1", "n_agents=300", "hydra.run.dir=X"],
                        "hydra.run.dir = 'X' is invalid; allowed: a single run's folder, without -m")):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert info.value.code == 2 and len(err) == 1 and says in err[0], err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, expected", [
    (["seed=1", "n_agents=500", "seed=2"], ["n_agents=500", "seed=2"]),
    (["n_agents=abc", "n_agents=1000"], ["n_agents=1000"]),
    (["+extra=1", "extra=2"], ["+extra=2"]),  # the add stays with the key
    (["-m", "seed=1,2", "seed=3", "region=national"], ["-m", "seed=3", "region=national"]),
    (["~seed", "seed=1", "n_agents=5"], ["~seed", "seed=1", "n_agents=5"]),  # a removal is not a value
    (["seed=1"], ["seed=1"]),
    # flags, and the words of those that take one, are left alone (a user trial: with --config-dir the
    # dropped value was still checked)
    (["--config-dir", "a=b", "seed=1", "-m", "seed=2"], ["--config-dir", "a=b", "-m", "seed=2"]),
    (["--cfg", "job", "n_agents=abc", "--config-dir=x", "n_agents=5"], ["--cfg", "job", "--config-dir=x", "n_agents=5"]),
])
def test_a_key_given_twice_is_kept_once_at_its_last_value(argv, expected):
    from sim.cli import HYDRA_FLAGS_WITH_VALUE
    from sim.errors import last_of_each

    assert last_of_each(argv, HYDRA_FLAGS_WITH_VALUE) == expected


def test_the_warning_names_a_key_given_twice_as_it_runs(caplog):
    """`+extra=1 extra=2` runs `+extra=2` (last_of_each keeps the add): the warning said `extra=2`."""
    import logging

    from sim.errors import given_once

    with caplog.at_level(logging.WARNING, logger="skillsim"):
        assert given_once(["+extra=1", "extra=2", "seed=1", "seed=2"]) == ["+extra=2", "seed=2"]
    assert [r.getMessage() for r in caplog.records] == [
        "extra was given twice (1, then 2): +extra=2 is used, the last",
        "seed was given twice (1, then 2): seed=2 is used, the last"]


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_key_given_twice_beside_a_flag_is_kept_once_too(tmp_path):
    """`skillsim --config-dir DIR n_agents=abc n_agents=600`, and `--cfg job`, still refused `abc` and said
    nothing of the key given twice (a user trial): the same as without the flag now."""
    conf = tmp_path / "conf"
    conf.mkdir()
    printed = cli("--cfg", "job", "n_agents=abc", "n_agents=2000", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert "\nn_agents: 2000\n" in printed.stdout
    assert "n_agents was given twice (abc, then 2000): n_agents=2000 is used, the last" in printed.stderr
    run = cli("--config-dir", str(conf), "n_agents=abc", "n_agents=600", "seed=1", "seed=4", "horizon.end_year=2023",
              f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "seed was given twice (1, then 4): seed=4 is used, the last" in run.stderr
    config = json.loads((tmp_path / "r" / "summary.json").read_text(encoding="utf-8"))["config"]
    assert config["n_agents"] == 600 and config["seed"] == 4


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
@pytest.mark.parametrize("sweep", [False, True])
def test_the_value_a_key_given_twice_drops_is_not_checked(tmp_path, sweep):
    """`skillsim n_agents=abc n_agents=1000` warned that 1000 is used, then refused `abc`: the dropped value
    is now neither used nor checked, and the manifest keeps the command as typed. Twice for a single run:
    composed, then from the composition cache."""
    env = {**os.environ, "SKILLSIM_CACHE_DIR": str(tmp_path / "cache")}
    args = ["n_agents=abc", "n_agents=600", "horizon.end_year=2023", "seed=abc", "seed=3"]
    if sweep:
        args = ["-m", *args, f"hydra.sweep.dir={tmp_path / 'sw'}"]
    for attempt in range(1 if sweep else 2):
        proc = subprocess.run([*SKILLSIM, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr
        assert "n_agents was given twice (abc, then 600): n_agents=600 is used, the last" in proc.stderr
        folders = (list((tmp_path / "sw").iterdir()) if sweep
                   else list((tmp_path / "results" / "runs").iterdir()))
        jobs = [f for f in folders if (f / "summary.json").is_file()]
        assert len(jobs) == 1 + attempt, folders
        kept = {f: f.stat().st_mtime_ns for f in (tmp_path / "cache").rglob("*") if f.is_file()}
        if attempt == 0 and not sweep:
            assert kept, "the first run keeps its composition"
            first_kept = kept
    if not sweep:  # the repeat read the entry the first run kept (under the key given once) and wrote none
        assert kept == first_kept
    for job in jobs:
        summary = json.loads((job / "summary.json").read_text(encoding="utf-8"))
        assert summary["config"]["n_agents"] == 600 and summary["config"]["seed"] == 3
        if not sweep:
            manifest = json.loads((job / "manifest.json").read_text(encoding="utf-8"))
            assert manifest["command"] == ["skillsim", *args]
            assert "n_agents=600" in job.name and "abc" not in job.name


def test_the_schema_is_built_once_a_process_and_again_when_the_store_lost_it():
    """register_schema built and stored the whole schema at every composition (50-70 ms, paid by every
    composition of a process that composes many times); now once, while Hydra's store keeps that entry.
    An entry the store lost or had replaced is registered again, and compositions read the schema."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    register_schema()
    entry = store.repo["run_schema.yaml"]
    register_schema()
    assert store.repo["run_schema.yaml"] is entry  # not built again
    assert compose_run("n_agents=1234").n_agents == 1234
    store.store(name="run_schema", node={"n_agents": 5})  # another entry in its place
    register_schema()
    assert store.repo["run_schema.yaml"] is not entry and "levers" in store.repo["run_schema.yaml"].node
    assert compose_run("levers.studio.intensity=2").levers.studio.intensity == 2
    del store.repo["run_schema.yaml"]  # lost
    assert compose_run("n_agents=1500").n_agents == 1500


def test_help_and_composition_are_the_same_with_the_config_store_shared(monkeypatch, capsys):
    """Hydra deep-copied every config registered in its store for each composition; `skillsim --help`
    composes once for each config group (0.9 s). The store is now shared by a copied repository
    (sim.cli.share_the_config_store): the help and a composed config are what they were without it."""
    import copy

    from hydra.core.config_store import ConfigStore

    from sim import cli

    said, composed = [], []
    for shared in (False, True):
        if not shared:
            monkeypatch.setattr(cli, "share_the_config_store", lambda store_class: None)
            monkeypatch.delattr(ConfigStore, "__deepcopy__", raising=False)
            assert copy.deepcopy(ConfigStore.instance()) is not ConfigStore.instance()
        else:
            monkeypatch.undo()
        try:
            cli.main(["--help"])
        except SystemExit as exc:
            assert exc.code in (0, None)
        said.append(capsys.readouterr().out)
        composed.append(compose_run("region=national", "scenario=combined", "levers.studio.intensity=2"))
    assert copy.deepcopy(ConfigStore.instance()) is ConfigStore.instance()
    assert "== Config groups" in said[0] and "scenario: baseline, combined" in said[0]
    assert said[0] == said[1]
    assert composed[0] == composed[1] and composed[0].levers.studio.intensity == 2


def test_the_checks_before_composing_read_the_last_value_of_a_key_given_twice(tmp_path, monkeypatch, capsys):
    """`hydra.mode=MULTIRUN hydra.mode=RUN +experiments=NAME` ran one run at the defaults: the check that a
    named experiment needs -m read the dropped MULTIRUN (a review), and the composition it let through was
    then kept under the words used, so the plain `hydra.mode=RUN +experiments=NAME` ran from the cache
    where composing refuses it."""
    from sim import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SKILLSIM_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(SystemExit) as info:
        cli.main(["hydra.mode=MULTIRUN", "hydra.mode=RUN", "+experiments=cq_2035_lever_comparison", "n_agents=500"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "+experiments=cq_2035_lever_comparison needs -m" in err, err
    assert not (tmp_path / "results").exists() and not (tmp_path / "cache").exists()


def test_a_runs_first_line_is_said_before_its_model_is_built(tmp_path, monkeypatch, caplog):
    """A full-scale run was silent for seconds: its first line (region, agents, months, seed) came once the
    workforce and its history were built. It is said before, with the seed the model then runs with."""
    import logging

    from sim import single_run
    from sim.streams import replicate_seed

    said_before = []

    class Built(Exception):
        pass

    def model(cfg):
        said_before.extend(r.getMessage() for r in caplog.records)
        raise Built

    monkeypatch.setattr(single_run, "WorkforceModel", model)
    cfg = compose_run("n_agents=700", "seed=5", "replicate=2")
    with caplog.at_level(logging.INFO, logger="skillsim"), pytest.raises(Built):
        single_run.run_forecast(cfg, tmp_path / "run")
    assert said_before == [f"chongqing / baseline: 700 agents (weight {cfg.weight:.2f}), {cfg.n_months} months from "
                           f"{cfg.start_year}, seed {replicate_seed(5, 2)}"], said_before
