"""sim.compose_cache: a plain run's composition is kept on disk and loaded by the next run with the
same overrides, which then writes the same folder; what the composition depends on changes the key;
a damaged cache file is ignored."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim import compose_cache


REPO_ROOT = Path(__file__).resolve().parent.parent


def skillsim(cwd: Path, cache: Path, *overrides: str, python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`skillsim` in a new process, laid out as an installed package is: the checkout on the path, so
    that Hydra's plugin scan finds hydra_plugins/skillsim_launchers as it does in site-packages (an
    editable install hides it from the scan)."""
    env = dict(os.environ, SKILLSIM_CACHE_DIR=str(cache), PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, *python_flags, "-m", "sim", *overrides], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_hydras_plugin_scan_loads_the_slurm_launcher(tmp_path):
    """Hydra's scan runs a plugin module before it is in sys.modules; ours must build there (string
    annotations on its dataclass made every second `skillsim` of an installed package fail)."""
    code = ("from hydra.core.plugins import Plugins; import sys; "
            "names = Plugins.instance().class_name_to_class; "
            "sys.exit(0 if 'hydra_plugins.skillsim_launchers.slurm.SkillsimSlurmLauncher' in names else 3)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert proc.returncode == 0, proc.stderr[-2000:]


def _without_times(text: str) -> str:
    """A run's log or manifest with its clock times, its seconds and its folders' time stamps blanked."""
    text = re.sub(r"\d{4}-\d\d-\d\d[ _T]\d\d[:-]\d\d[:-]\d\d(,\d+|\+00:00)?", "TIME", text)
    return re.sub(r"[0-9.]+ s; wrote", "S s; wrote", text)


def test_a_cached_composition_writes_the_same_folder_and_a_damaged_one_is_ignored(tmp_path):
    """The second run comes from the cache and runs without Hydra (sim.single_run.run_from_entry), importing
    neither Hydra nor OmegaConf; its folder (name, files, manifest) and its log are those of the first run,
    which Hydra composed, and of a run of the same settings through Hydra's own run_job (an environment
    variable for the job, which no entry is kept for, sends it there)."""
    cache = tmp_path / "cache"
    overrides = ("n_agents=1500", "horizon.end_year=2024", "levers.training.intensity=1.5")
    folders, logs = [], []
    for name in ("first", "second", "third", "run_job"):
        (tmp_path / name).mkdir()
        if name == "third":  # a damaged cache file: composed again, as if there were none
            for f in (cache / "compose").glob("*.pickle"):
                f.write_bytes(b"not a pickle")
        extra = ("+hydra.job.env_set.SKILLSIM_UNUSED=1",) if name == "run_job" else ()
        proc = skillsim(tmp_path / name, cache, *overrides, *extra, python_flags=("-X", "importtime"))
        assert proc.returncode == 0, proc.stderr[-2000:]
        imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        for package in ("hydra", "omegaconf"):  # only the cached run goes without them
            assert (package in imported) == (name != "second"), (name, package)
        logs.append([line.replace(name, "NAME") for line in proc.stderr.splitlines() if not line.startswith("import time:")])
        (folder,) = (tmp_path / name / "results" / "runs").iterdir()
        folders.append(folder)
        assert len(list((cache / "compose").glob("*.pickle"))) == 1
    assert len(logs[0]) >= 2 and "training.intensity=1.5" in folders[0].name
    for other, log in zip(folders[1:], logs[1:]):
        assert _without_times(other.name) == _without_times(folders[0].name)
        assert sorted(p.name for p in other.iterdir()) == sorted(p.name for p in folders[0].iterdir())
        for f in ("config.yaml", "series.csv", "summary.json", "series.parquet"):
            assert (other / f).read_bytes() == (folders[0] / f).read_bytes(), f
        manifest = [json.loads(_without_times((folder / "manifest.json").read_text()).replace(
            folder.parent.parent.parent.name, "NAME")) for folder in (other, folders[0])]
        assert manifest[0].pop("command")[-1] in (overrides[-1], "+hydra.job.env_set.SKILLSIM_UNUSED=1")
        manifest[1].pop("command")
        assert manifest[0] == manifest[1]
        assert [_without_times(line) for line in log] == [_without_times(line) for line in logs[0]]


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_cached_composition_resolves_the_time_anew(tmp_path):
    """${now:} in the folder name is this run's time, not the time of the run that filled the cache
    (which once named a run after another one, and refused a second run as 'already exists')."""
    cache = tmp_path / "cache"
    overrides = ("n_agents=1000", "horizon.end_year=2023", "hydra.run.dir=out/${now:%H-%M-%S-%f}")
    for _ in range(2):
        proc = skillsim(tmp_path, cache, *overrides)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((cache / "compose").glob("*.pickle"))) == 1  # the second run came from the cache
    first, second = sorted((tmp_path / "out").iterdir())
    assert first.name < second.name and (first / "series.csv").read_bytes() == (second / "series.csv").read_bytes()


def test_a_bad_value_is_refused_on_every_run_and_never_cached(tmp_path):
    cache = tmp_path / "cache"
    for _ in range(2):
        proc = skillsim(tmp_path, cache, "n_agents=-5")
        assert proc.returncode == 2 and "n_agents" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(cache.rglob("*.pickle"))
    assert not (tmp_path / "results").exists()


def test_the_key_follows_the_overrides_the_config_files_and_the_code(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    shutil.copytree(compose_cache.PACKAGE / "conf", pkg / "conf")
    (pkg / "config.py").write_text("X = 1\n")
    monkeypatch.setattr(compose_cache, "PACKAGE", pkg)
    monkeypatch.setenv(compose_cache.ENV, str(tmp_path / "cache"))

    def key(*overrides):
        compose_cache.fingerprint.cache_clear()
        compose_cache.package_digest.cache_clear()
        return compose_cache._path(list(overrides), "cli")[0]

    base = key("n_agents=5")
    assert key("n_agents=5") == base and key("n_agents=6") != base
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "kernels.f-1.py311.nbi").write_bytes(b"numba's index")  # compiled code: not read
    (pkg / "conf" / "__pycache__").mkdir()
    (pkg / "conf" / "__pycache__" / "stale.json").write_text("{}")
    (pkg / "conf" / "loop").symlink_to(pkg, target_is_directory=True)  # a linked folder is not entered
    assert key("n_agents=5") == base
    (pkg / "conf" / "config.yaml").write_text((pkg / "conf" / "config.yaml").read_text() + "\n# edited\n")
    edited = key("n_agents=5")
    assert edited != base
    (pkg / "config.py").write_text("X = 22\n")  # the schema's code
    recoded = key("n_agents=5")
    assert recoded != edited
    monkeypatch.setenv("SKILLSIM_UNCALIBRATED", "1")  # the schema's defaults become the priors
    assert key("n_agents=5") not in (recoded, None)
    monkeypatch.delenv("SKILLSIM_UNCALIBRATED")
    assert key("hydra.searchpath=[file:///somewhere]", "region=mine") is None  # files outside the key
    monkeypatch.setenv(compose_cache.ENV, "")
    assert key("n_agents=5") is None  # turned off
    compose_cache.fingerprint.cache_clear()
    compose_cache.package_digest.cache_clear()


def test_a_cache_file_is_read_only_for_its_own_key_and_unedited(tmp_path, monkeypatch):
    """A file renamed to another key's name (say, copied in from another set of overrides) or edited by
    hand was loaded as that key's composition; each file now holds its key and a digest of its content."""
    monkeypatch.setenv(compose_cache.ENV, str(tmp_path))
    a, b = ["n_agents=1000"], ["n_agents=2000"]
    compose_cache.store(a, "cli", {"n_agents": 1000})
    assert compose_cache.load(a, "cli")["n_agents"] == 1000
    os.replace(compose_cache._path(a, "cli")[0], compose_cache._path(b, "cli")[0])  # a's file under b's name
    assert compose_cache.load(b, "cli") is None
    os.replace(compose_cache._path(b, "cli")[0], compose_cache._path(a, "cli")[0])
    path = compose_cache._path(a, "cli")[0]
    data = path.read_bytes()
    edited = data.replace(b"\xe8\x03", b"\xe9\x03")  # 1000 as pickled (little-endian) becomes 1001
    assert edited != data
    path.write_bytes(edited)
    assert compose_cache.load(a, "cli") is None
    path.write_bytes(data)
    assert compose_cache.load(a, "cli")["n_agents"] == 1000


@pytest.mark.parametrize("overrides, runnable", [
    ([], True),
    (["n_agents=2000", "hydra.run.dir=out/x"], True),
    (["hydra.verbose=true"], False),
    (["+hydra.job.env_set.SKILLSIM_X=1"], False),
    (["hydra/job_logging=default"], False),
    (["hydra/hydra_logging=disabled"], False),
    (["+hydra.callbacks.more._target_=sim.sweep.AggregateCallback"], False),
])
def test_only_a_composition_a_run_without_hydra_does_in_full_is_cached(overrides, runnable):
    """sim.single_run.run_from_entry does only what a run with the shipped logging and callbacks needs of Hydra's
    run_job; a composition needing more (verbose logging, environment variables, other logging configs,
    callbacks) is never kept, so its runs keep going through Hydra."""
    from hydra import compose, initialize_config_dir

    from sim import cli

    cli.register_schema()
    cli._clear_hydra()
    with initialize_config_dir(config_dir=str(cli.CONFIG_DIR), version_base="1.3", job_name=cli.JOB_NAME):
        dcfg = compose("config", overrides, return_hydra_config=True)
    cli._clear_hydra()
    assert cli.plain_runnable(dcfg.hydra) is runnable


@pytest.mark.parametrize("case", [pytest.param("runs-is-a-file", marks=pytest.mark.slow), "run-dir-not-empty"])
def test_a_run_from_the_cache_fails_as_a_run_through_hydra_does(tmp_path, case):
    """The same mistake found at run time gives the same exit code and the same lines from the cache and
    through Hydra's run_job (an environment variable for the job sends it there): sim.single_run.run_entry
    makes the folder by the name Hydra's run_job gives it, so a message names it alike."""
    overrides = ["n_agents=1000", "horizon.end_year=2023"] + (["hydra.run.dir=out"] if case == "run-dir-not-empty" else [])
    filled = tmp_path / "filled"
    (tmp_path / "fill").mkdir()
    assert skillsim(tmp_path / "fill", filled, *overrides).returncode == 0  # the composition is now cached
    outcomes = []
    for route, cache in (("hydra", tmp_path / "empty"), ("plain", filled)):
        cwd = tmp_path / route
        if case == "runs-is-a-file":
            (cwd / "results").mkdir(parents=True)
            (cwd / "results" / "runs").write_text("not a folder")
        else:
            (cwd / "out").mkdir(parents=True)
            (cwd / "out" / "mine.txt").write_text("kept")
        extra = ["+hydra.job.env_set.SKILLSIM_UNUSED=1"] if route == "hydra" else []
        proc = skillsim(cwd, cache, *overrides, *extra)
        outcomes.append((proc.returncode, _without_times(proc.stderr).replace(str(cwd), "CWD")))
    assert outcomes[0][0] == 4 and "Traceback" not in outcomes[0][1]
    assert outcomes[1] == outcomes[0]


def _composed(overrides):
    from hydra import compose, initialize_config_dir

    from sim import cli

    cli.register_schema()
    cli._clear_hydra()
    with initialize_config_dir(config_dir=str(cli.CONFIG_DIR), version_base="1.3", job_name=cli.JOB_NAME):
        dcfg = compose("config", overrides, return_hydra_config=True)
    cli._clear_hydra()
    return dcfg


@pytest.mark.parametrize("overrides, kept", [
    ([], True),
    (["region=national", "levers.training.intensity=1.5"], True),
    (["hydra.run.dir=out/${now:%H-%M-%S-%f}_${region.name}_${seed}"], True),
    (["seed=${n_agents}"], False),  # a setting that is an interpolation: resolved anew on every run
    (["hydra.run.dir=out/${oc.env:HOME}"], False),  # may differ on the next run
])
def test_a_repeat_is_kept_only_if_it_runs_as_hydra_would_run_it(overrides, kept, monkeypatch):
    """What sim.single_run.run_from_entry repeats a run from (sim.cli.cache_entry): its folder name is the one
    Hydra resolves from hydra.run.dir at the same moment; a composition whose repeat could differ is
    not kept."""
    import datetime as dt

    from omegaconf import OmegaConf

    from sim import cli, single_run

    dcfg = _composed(overrides)
    cfg, data = cli.config_from_hydra(dcfg)
    entry = cli.cache_entry(dcfg, data)
    assert (entry is not None) == kept
    if not kept:
        return
    task = [o for o in overrides if not o.startswith("hydra.")]  # Hydra's own are not the task's (as Hydra keeps them)
    assert entry is not None and entry["data"] == data and entry["overrides"] == task
    assert entry["chosen"] == any(o.startswith("hydra.run.dir=") for o in overrides)
    moment = dt.datetime(2031, 5, 6, 7, 8, 9, 123456)

    class Fixed(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return moment

    monkeypatch.setattr(single_run, "datetime", Fixed)
    OmegaConf.register_new_resolver("now", lambda pattern: moment.strftime(pattern), replace=True)
    try:
        assert single_run.filled_run_dir(entry["run_dir"]) == str(dcfg.hydra.run.dir)
    finally:  # Hydra's own `now` again, for whatever runs next in this process
        from hydra.core.utils import setup_globals

        setup_globals()


# -- the composition of `skillsim` with no arguments, shipped with the package ------------------------

def test_the_shipped_composition_is_what_hydra_composes_now():
    """sim/data/composed_default.json is the entry Hydra's route keeps for `skillsim` with no arguments, made
    now, and was made from the config files, schema and versions there are now (its `inputs`): else a
    user's first run would run settings other than the configs say, or compose as before."""
    kept = json.loads(compose_cache.SHIPPED.read_text(encoding="utf-8"))
    remake = "remake it with: python -m sim.compose_cache --ship"
    assert kept["inputs"] == compose_cache.shipped_inputs(), f"the configs or the schema changed; {remake}"
    assert kept["entry"] == compose_cache.composed_afresh(), f"Hydra now composes otherwise; {remake}"


def test_a_first_run_with_no_arguments_runs_from_the_shipped_composition(tmp_path):
    """With an empty cache, `skillsim` with no arguments neither imports Hydra nor OmegaConf, and writes what
    a run composed by Hydra writes (the caches turned off: composed by Hydra, and nothing shipped used)."""
    folders, logs = [], []
    for name, cache in (("shipped", tmp_path / "empty-cache"), ("composed", "")):  # names not in a manifest
        (tmp_path / name).mkdir()
        proc = skillsim(tmp_path / name, cache, python_flags=("-X", "importtime"))
        assert proc.returncode == 0, proc.stderr[-2000:]
        imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        for package in ("hydra", "omegaconf"):
            assert (package in imported) == (name == "composed"), (name, package)
        logs.append([_without_times(line).replace(f"/{name}/", "/NAME/") for line in proc.stderr.splitlines()
                     if not line.startswith("import time:")])
        (folder,) = (tmp_path / name / "results" / "runs").iterdir()
        folders.append(folder)
    assert not (tmp_path / "empty-cache" / "compose").exists()  # nothing composed, nothing kept
    assert _without_times(folders[0].name) == _without_times(folders[1].name)
    assert sorted(p.name for p in folders[0].iterdir()) == sorted(p.name for p in folders[1].iterdir())
    for f in ("config.yaml", "series.csv", "summary.json", "series.parquet"):
        assert (folders[0] / f).read_bytes() == (folders[1] / f).read_bytes(), f
    manifests = [json.loads(_without_times((folder / "manifest.json").read_text()).replace(
        folder.parent.parent.parent.name, "NAME")) for folder in folders]
    assert manifests[0] == manifests[1]
    assert logs[0] == logs[1] and len(logs[0]) >= 2


def test_the_shipped_composition_is_used_only_for_what_it_was_made_from(tmp_path, monkeypatch):
    """Not with overrides, another job or the caches turned off; not once what it was made from changed
    (a config or data file, the package's code, the schema's defaults or types, the versions,
    SKILLSIM_UNCALIBRATED turned on, a Hydra plugin that could add configs); not if edited or damaged."""
    import hydra_plugins

    import sim.config

    monkeypatch.setenv(compose_cache.ENV, str(tmp_path / "cache"))
    entry = compose_cache.load([], "cli")
    assert entry is not None and entry["overrides"] == [] and entry["run_dir"][0] == ("text", "results/runs/")
    assert compose_cache.load(["n_agents=1000"], "cli") is None and compose_cache.shipped([], "other") is None
    monkeypatch.setenv(compose_cache.ENV, "")
    assert compose_cache.load([], "cli") is None

    pkg = tmp_path / "pkg"  # a copy of the package, whose files are edited below
    shutil.copytree(compose_cache.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shipped_file = pkg / compose_cache.SHIPPED_NAME
    kept = shipped_file.read_text(encoding="utf-8")
    plugins = tmp_path / "plugins" / "hydra_plugins"
    (plugins / "their_sweeper").mkdir(parents=True)

    def inputs_after(edit=None) -> str:
        """shipped_inputs() of the copy after `edit` (then undone)."""
        with monkeypatch.context() as mp:
            mp.setattr(compose_cache, "PACKAGE", pkg)
            mp.setattr(compose_cache, "SHIPPED", shipped_file)
            saved = {path: path.read_bytes() for path in pkg.rglob("*") if path.is_file()}
            try:
                if edit is not None:
                    edit(mp)
                return compose_cache.shipped_inputs()
            finally:
                for path, data in saved.items():
                    path.write_bytes(data)
                if (plugins / "their_searchpath").exists():
                    (plugins / "their_searchpath").rmdir()

    def appended(rel: str):
        return lambda mp: (pkg / rel).write_bytes((pkg / rel).read_bytes() + b"\n# edited\n")

    def with_plugin(name: str):
        def edit(mp):
            mp.setattr(hydra_plugins, "__path__", [*hydra_plugins.__path__, str(plugins)])
            (plugins / name).mkdir(exist_ok=True)
        return edit

    base = inputs_after()
    assert base == compose_cache.shipped_inputs()  # a copy of the package has the package's inputs
    for what, edit in {"config file": appended("conf/config.yaml"), "data file": appended("data/targets.csv"),
                       "code": appended("cli.py"),
                       "schema": lambda mp: mp.setattr(sim.config, "RunConfig", _two_level_schema()),
                       "versions": lambda mp: mp.setattr(compose_cache, "versions_digest", lambda: "another Hydra"),
                       "uncalibrated": lambda mp: mp.setenv("SKILLSIM_UNCALIBRATED", "1"),
                       "search-path plugin": with_plugin("their_searchpath")}.items():
        assert inputs_after(edit) != base, what
    for what, edit in {"the shipped file": lambda mp: shipped_file.write_text("{}"),
                       "uncalibrated off": lambda mp: mp.setenv("SKILLSIM_UNCALIBRATED", "0"),
                       "a sweeper plugin": with_plugin("their_sweeper")}.items():
        assert inputs_after(edit) == base, what
    # a setting's type alone, and a default alone
    by_type = (_two_level_schema(int), _two_level_schema(float))
    assert repr(by_type[0]()) == repr(by_type[1]())  # only the type tells them apart
    for one, other in (by_type, (_two_level_schema(), _two_level_schema(default=2))):
        assert (inputs_after(lambda mp: mp.setattr(sim.config, "RunConfig", one))
                != inputs_after(lambda mp: mp.setattr(sim.config, "RunConfig", other)))

    monkeypatch.setenv(compose_cache.ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(compose_cache, "PACKAGE", pkg)
    monkeypatch.setattr(compose_cache, "SHIPPED", shipped_file)
    assert compose_cache.shipped([], "cli") == entry
    for change in ("edited", "damaged"):
        kept_json = json.loads(kept)
        if change == "edited":
            kept_json["entry"]["data"]["n_agents"] = 1000  # by hand, its inputs left as they were
        else:
            del kept_json["entry"]["job_logging"]  # damaged, still JSON
        shipped_file.write_text(json.dumps(kept_json), encoding="utf-8")
        assert compose_cache.shipped([], "cli") is None, change
    shipped_file.write_text(kept, encoding="utf-8")
    assert compose_cache.shipped([], "cli") == entry


def _two_level_schema(tp: type = int, default=1) -> type:
    """A schema of one group holding one setting, named alike whatever its type and default."""
    inner = dataclasses.make_dataclass("Inner", [("a", tp, dataclasses.field(default=default))])
    return dataclasses.make_dataclass("Outer", [("inner", inner, dataclasses.field(default_factory=inner))])


def test_the_shipped_schema_rows_follow_a_nested_settings_type():
    rows, other = compose_cache._schema_rows(_two_level_schema(int)), compose_cache._schema_rows(_two_level_schema(float))
    assert [r[1] for r in rows] == ["inner", "a"] and rows[1][2] == str(int) and other[1][2] == str(float)
