"""Reproducing a run from its folder alone, what a manifest records, folder names, and Hydra's routes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sim import rerun as rerun_mod
from sim.errors import EXIT_CONFIG, EXIT_DATA, EXIT_INTEGRITY, EXIT_OK, EXIT_OUTPUT
from sim.results import write_run

from .conftest import own_preset

BIN = Path(sys.executable).parent
TINY = ["n_agents=1000", "horizon.end_year=2024"]


def tool(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = BIN / name
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "sim"] if name == "skillsim" else [name]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def snapshot(root: Path) -> dict[str, int]:
    """Every file and folder under root, with file sizes (a before/after picture)."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A small run with a few overrides, made by the real command in its own folder."""
    tmp = tmp_path_factory.mktemp("rerun")
    proc = tool("skillsim", *TINY, "levers.training.intensity=2", "seed=5", "hydra.run.dir=orig", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return tmp / "orig"


def test_manifest_records_the_command_as_typed_and_machine_facts_apart(run):
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["command"] == ["skillsim", *TINY, "levers.training.intensity=2", "seed=5", "hydra.run.dir=orig"]
    assert manifest["overrides"] == [*TINY, "levers.training.intensity=2", "seed=5"]
    text = json.dumps({k: v for k, v in manifest.items() if k != "machine"})
    assert "searchpath" not in text and str(run.parent) not in text and "file://" not in text
    assert manifest["machine"]["cwd"] == str(run.parent) and "platform" in manifest["machine"]


@pytest.mark.slow  # several processes
def test_rerun_is_byte_identical_and_says_so(run, tmp_path):
    proc = tool("skillsim-rerun", str(run), f"hydra.run.dir={tmp_path / 'again'}", cwd=tmp_path)
    assert proc.returncode == EXIT_OK, proc.stderr
    assert "identical" in proc.stderr.splitlines()[-1]
    for name in ("series.csv", "summary.json", "config.yaml"):
        assert (tmp_path / "again" / name).read_bytes() == (run / name).read_bytes(), name
    manifest = json.loads((tmp_path / "again" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["rerun_of"]["folder"] == "orig" and manifest["overrides"][-1] == "seed=5"
    assert manifest["command"][0] == "skillsim-rerun"
    # the default folder: results/reruns/<name> under the current folder, then NAME-2
    for expected in ("orig", "orig-2"):
        proc = tool("skillsim-rerun", str(run), cwd=tmp_path)
        assert proc.returncode == EXIT_OK, proc.stderr
        assert (tmp_path / "results" / "reruns" / expected / "series.csv").read_bytes() == (run / "series.csv").read_bytes()


def test_rerun_needs_only_the_folder(run, tmp_path, monkeypatch):
    """The composed config.yaml is enough: changed shipped presets do not change what a rerun computes."""
    import sim.cli

    monkeypatch.setattr(sim.cli, "CONFIG_DIR", tmp_path / "no_configs_here")
    new, differ = rerun_mod.rerun(run, tmp_path / "again")
    assert differ == [] and (new / "series.csv").read_bytes() == (run / "series.csv").read_bytes()


def test_a_changed_folder_is_not_rerun(run, tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for p in run.iterdir():
        (bad / p.name).write_bytes(p.read_bytes())
    with (bad / "series.csv").open("a") as fh:
        fh.write("2099-01,1\n")
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exc:
        rerun_mod.main([str(bad), f"hydra.run.dir={tmp_path / 'new'}"])
    err = capsys.readouterr().err
    assert exc.value.code == EXIT_INTEGRITY
    assert "series.csv: changed" in err and "nothing was rerun" in err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("given, folder", [('"my out"', "my out"), ("'我的 run'", "我的 run"), ("plain", "plain"),
                                           ("a/b", "a/b"), ("'it\\'s'", "it's")])
def test_the_new_folder_is_read_as_skillsim_reads_it(given, folder):
    """`hydra.run.dir="my out"` names the folder `my out` (quotes are the shell's and Hydra's, not part
    of the name), as `skillsim hydra.run.dir="my out"` does."""
    assert rerun_mod.parse(["run", f"hydra.run.dir={given}"]) == (Path("run"), Path(folder))


@pytest.mark.parametrize("args, code, words", [
    ([], EXIT_CONFIG, "RUN_DIR"),
    (["{run}", "seed=3"], EXIT_CONFIG, "no overrides"),
    (["{tmp}/nowhere"], EXIT_DATA, "does not exist"),
    (["{run}", "--fast"], EXIT_CONFIG, "option"),
    (["{run}", "hydra.run.dir='x y'/z"], EXIT_CONFIG, "quote all of it"),  # skillsim cannot read it either
])
def test_rerun_mistakes_are_one_line(run, tmp_path, capsys, monkeypatch, args, code, words):
    monkeypatch.chdir(tmp_path)  # a mistake that is not refused writes here, never into the checkout
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exc:
        rerun_mod.main([a.format(run=run, tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert exc.value.code == code and words in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before  # and nothing was written


def test_a_rerun_into_a_folder_it_cannot_write_stops_before_its_run(run, tmp_path, capsys, monkeypatch):
    """hydra.run.dir under a file (or /sys): the rerun built and ran its model first, then failed writing."""
    import sim.single_run

    monkeypatch.setattr(sim.single_run, "run_forecast",
                        lambda *a, **k: pytest.fail("ran before finding the folder unwritable"))
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        rerun_mod.main([str(run), f"hydra.run.dir={tmp_path / 'a_file' / 'again'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == EXIT_OUTPUT and err[-1].startswith(f"skillsim-rerun: cannot write {tmp_path / 'a_file'}")


@pytest.mark.slow  # several processes
def test_the_hydra_route_reruns_and_other_config_paths_leave_nothing(run, tmp_path):
    """`skillsim --config-path=RUN --config-name=config hydra.run.dir=NEW` is a rerun; a --config-path that
    is not a run folder is refused before Hydra writes anything."""
    other = tmp_path / "some_configs"
    other.mkdir()
    (other / "config.yaml").write_text("n_agents: 1000\n", encoding="utf-8")
    before = snapshot(tmp_path)
    proc = tool("skillsim", f"--config-path={other}", "--config-name=config", "hydra.run.dir=NEW", cwd=tmp_path)
    assert proc.returncode == EXIT_CONFIG and "--config-dir" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before
    proc = tool("skillsim", f"--config-path={run}", "--config-name=config", "hydra.run.dir=NEW", cwd=tmp_path)
    assert proc.returncode == EXIT_OK, proc.stderr
    after = snapshot(tmp_path)
    assert set(after) - set(before) == {"NEW", *(f"NEW/{p.name}" for p in (tmp_path / "NEW").iterdir())}
    assert (tmp_path / "NEW" / "series.csv").read_bytes() == (run / "series.csv").read_bytes()
    assert not (tmp_path / "NEW" / ".hydra").exists()


@pytest.mark.slow  # several processes
def test_runs_started_together_with_default_folders_both_succeed(tmp_path):
    """Same settings, same second: different folders. Folder names say which overrides ran."""
    procs = [subprocess.Popen([str(BIN / "skillsim"), *TINY], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    procs.append(subprocess.Popen([str(BIN / "skillsim"), *TINY, "levers.studio.enabled=false"], cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errs
    names = sorted(p.name for p in (tmp_path / "results" / "runs").iterdir())
    assert len(names) == 3 and not [n for n in names if n.startswith(".")]
    same = [n for n in names if "studio" not in n]
    assert len(same) == 2
    assert same[0].split("_", 2)[2].removesuffix("-2") == same[1].split("_", 2)[2].removesuffix("-2")
    assert all("n_agents=1000,horizon.end_year=2024" in n for n in names)
    studio = next(n for n in names if "studio" in n)
    assert "studio.enabled=false" in studio and studio.rsplit("_", 1)[1] != same[0].rsplit("_", 1)[1].removesuffix("-2")


def test_a_taken_default_name_gives_the_next_free_one(run, tmp_path):
    import pandas as pd
    import yaml

    from sim.config import from_mapping

    cfg = from_mapping(yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8")))
    series = pd.read_csv(run / "series.csv")
    target = tmp_path / "name"
    got = [write_run(target, cfg, series, unique=True) for _ in range(3)]
    assert [p.name for p in got] == ["name", "name-2", "name-3"]
    from sim.errors import OutputError

    with pytest.raises(OutputError, match="already exists"):
        write_run(target, cfg, series)  # a folder the user chose is never replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["name", "name-2", "name-3"]


def test_skillsim_help_is_the_projects_page(tmp_path):
    proc = tool("skillsim", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    out = proc.stdout
    for words in ("region: chongqing, national, zhong_county", "experiments: cq_2035_lever_comparison",
                  "sweep: competition_intensity", "skillsim-rerun", "skillsim-report", "skillsim-verify",
                  "skillsim-aggregate", "== Examples ==", "--config-dir"):
        assert words in out, words
    assert "powered by Hydra" not in out and "n_agents: 100000" not in out  # not Hydra's page, no config dump
    assert len(out.splitlines()) < 70
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", ["sim.aggregate", "sim.report.cli", "sim.verify", "sim.rerun"])
def test_every_other_command_has_help(module, capsys):
    import importlib

    with pytest.raises(SystemExit) as exc:
        importlib.import_module(module).main(["--help"])
    assert exc.value.code in (0, None)
    assert capsys.readouterr().out.lower().startswith("usage:")


@pytest.mark.parametrize("name", ["my conf", "我的配置", "it's"])
def test_a_config_folder_of_any_name_joins_the_search_path(tmp_path, name):
    """--config-dir becomes a hydra.searchpath override: quoted, so that a folder name with a space, a
    non-ASCII letter or a quote is read as Hydra reads the flag itself (it was refused as bad syntax)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sim.cli import _with_config_dir

    folder = tmp_path / name
    (override,) = [o for o in _with_config_dir(["--config-dir", str(folder), "n_agents=5"], ["n_agents=5"])
                   if o.startswith("hydra.searchpath=")]
    (parsed,) = OverridesParser.create().parse_overrides([override])
    assert parsed.value() == [f"file://{folder.resolve()}"]


def test_a_study_rerun_reads_a_relative_config_folder_where_the_study_read_it():
    """The recorded command's relative --config-dir becomes the folder the manifest's overrides name
    (a rerun from another folder failed: "--config-dir = 'my_conf' is invalid"); a folder they do not
    name, and an absolute one, stay as they are."""
    from sim.rerun import _config_dir_absolute

    read = ["region=liuzhou", "hydra.searchpath=['file:///data/my conf 柳州']"]
    assert _config_dir_absolute(["--config-dir", "my conf 柳州", "region=liuzhou"], read) == [
        "--config-dir", "/data/my conf 柳州", "region=liuzhou"]
    assert _config_dir_absolute(["-cd", "./my conf 柳州/", "n=1"], read) == ["-cd", "/data/my conf 柳州", "n=1"]
    assert _config_dir_absolute(["--config-dir=my conf 柳州"], read) == ["--config-dir=/data/my conf 柳州"]
    assert _config_dir_absolute(["--config-dir", "other"], read + ["hydra.searchpath=['file:///x']"]) == [
        "--config-dir", "other"]  # two folders read, neither this one: left as it is
    assert _config_dir_absolute(["--config-dir", "/abs/x"], read) == ["--config-dir", "/abs/x"]
    assert _config_dir_absolute(["--config-dir", "my conf 柳州"], None) == ["--config-dir", "my conf 柳州"]
    for given in (".", "../my conf 柳州"):  # the study read one folder: that one, however it was written
        assert _config_dir_absolute(["--config-dir", given], read) == ["--config-dir", "/data/my conf 柳州"]


@pytest.mark.slow  # three forecasts: about 11 s
def test_a_study_rerun_names_the_users_config_file_changed_since(tmp_path):
    """A forecast of the user's own region, its preset edited, then rerun: exit 6 "differs" with no word
    of why (a user trial). The manifest keeps each config file's checksum and the rerun names the one
    that changed; unchanged, the rerun is identical and says nothing of it."""
    conf = tmp_path / "my_conf" / "region"
    conf.mkdir(parents=True)
    preset = conf / "my_town.yaml"
    preset.write_text(own_preset("my_town"), encoding="utf-8")
    args = ["--config-dir", "my_conf", "region=my_town", "params=2", "structural=2", "replicates=2", *TINY]
    proc = tool("skillsim-forecast", *args, "out=fc", cwd=tmp_path)
    assert proc.returncode == EXIT_OK, proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "fc" / "manifest.json").read_text(encoding="utf-8"))
    assert list(manifest["config_files_sha256"]) == [str(preset.resolve())]
    other = tmp_path / "elsewhere"
    other.mkdir()
    same = tool("skillsim-rerun", str(tmp_path / "fc"), "out=same", cwd=other)
    assert same.returncode == EXIT_OK and "config file" not in same.stderr, same.stderr[-2000:]
    preset.write_text(preset.read_text(encoding="utf-8").replace("mean_age: 43.2", "mean_age: 40.0"), encoding="utf-8")
    assert "mean_age: 40.0" in preset.read_text(encoding="utf-8")
    changed = tool("skillsim-rerun", str(tmp_path / "fc"), "out=changed", cwd=other)
    assert changed.returncode == EXIT_INTEGRITY
    assert f"your config file {preset.resolve()} (changed)" in changed.stderr


def test_a_region_preset_in_a_subfolder_is_checked_against_its_file_name(tmp_path, capsys):
    """The rule of the next test in the default run, in this process and without a run (`--cfg job`
    checks the settings as a run does): cities/my_town.yaml may say name: my_town, cities/other.yaml
    may not."""
    from sim import cli

    cities = tmp_path / "conf" / "region" / "cities"
    cities.mkdir(parents=True)
    for stem in ("my_town", "other"):
        (cities / f"{stem}.yaml").write_text(own_preset("my_town"), encoding="utf-8")
    codes = []
    for stem in ("my_town", "other"):
        try:
            cli.main(["--config-dir", str(tmp_path / "conf"), f"region=cities/{stem}", "--cfg", "job"])
            codes.append(EXIT_OK)
        except SystemExit as exc:
            codes.append(exc.code or EXIT_OK)
        codes.append(capsys.readouterr())
    assert codes[0] == EXIT_OK and "name: my_town" in codes[1].out, codes[1].err
    assert codes[2] == EXIT_CONFIG and "region.name = 'my_town' is invalid; allowed: 'other'" in codes[3].err, codes[3]


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_region_preset_in_a_subfolder_names_itself_by_its_file(tmp_path):
    """region=cities/my_town reads cities/my_town.yaml, which says name: my_town (a review: the check
    that a preset's name is its file's asked for name: cities/my_town, and a folder named after it)."""
    cities = tmp_path / "conf" / "region" / "cities"
    cities.mkdir(parents=True)
    (cities / "my_town.yaml").write_text(own_preset("my_town"), encoding="utf-8")
    proc = tool("skillsim", "--config-dir", str(tmp_path / "conf"), "region=cities/my_town", *TINY,
                "hydra.run.dir=town", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (cities / "other.yaml").write_text(own_preset("my_town"), encoding="utf-8")
    proc = tool("skillsim", "--config-dir", str(tmp_path / "conf"), "region=cities/other", *TINY, cwd=tmp_path)
    assert proc.returncode == EXIT_CONFIG and "region.name = 'my_town' is invalid; allowed: 'other'" in proc.stderr


@pytest.mark.slow  # several processes
def test_own_config_folder_adds_a_region_preset(tmp_path):
    """A user's region preset, in a folder given with --config-dir (README, "Your own region")."""
    conf = tmp_path / "我的 配置"  # a space and non-ASCII letters in the folder's name, as users have
    mine = conf / "region"
    mine.mkdir(parents=True)
    (mine / "my_city.yaml").write_text(own_preset("my_city", ("population: 5700000", "population: 1000000"),
                                                  ('"2022-10": 4940000', '"2022-10": 866700')),  # its own stock
                                       encoding="utf-8")
    proc = tool("skillsim", "--config-dir", str(conf), "region=my_city", *TINY,
                "hydra.run.dir=mine", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "mine" / "summary.json").read_text(encoding="utf-8"))
    assert summary["config"]["region"]["name"] == "my_city"
    assert summary["config"]["region"]["population"] == pytest.approx(1e6)
    # the folder it read, whole, for the commands a report of this run suggests (sim.report.markdown.where)
    manifest = json.loads((tmp_path / "mine" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config_dirs"] == [str(conf.resolve())]
    # the bands the run's log points to: the command it gives runs, on the same preset and folder
    hint = proc.stderr.split("run skillsim-forecast ", 1)[1].splitlines()[0]
    # (with the run's own settings, without the forecast's own option n_agents)
    assert hint == shlex.join(["--config-dir", str(conf.resolve()), "region=my_city", "horizon.end_year=2024"])
    bands = tool("skillsim-forecast", *shlex.split(hint), "params=2", "structural=2", "n_agents=1000", "out=bands",
                 cwd=tmp_path)
    assert bands.returncode == 0, bands.stderr
    assert json.loads((tmp_path / "bands" / "manifest.json").read_text(encoding="utf-8"))["region"] == "my_city"
    # given as a relative folder, and rerun from another folder: the study's configs are read again
    relative = tool("skillsim-forecast", "--config-dir", conf.name, "region=my_city", "params=2", "structural=2",
                    *TINY, "out=bands_rel", cwd=tmp_path)
    assert relative.returncode == 0, relative.stderr
    (tmp_path / "elsewhere").mkdir()
    again = tool("skillsim-rerun", "../bands_rel", "out=again", cwd=tmp_path / "elsewhere")
    assert again.returncode == 0, again.stderr
    assert "every file identical" in again.stderr
    proc = tool("skillsim", "--config-dir", str(conf), "region=my_twn", *TINY, cwd=tmp_path)
    assert proc.returncode == EXIT_CONFIG and "my_city" in proc.stderr  # the user's presets are listed


@pytest.mark.slow  # a sweep with the default (joblib) launcher
def test_every_job_of_a_sweep_reruns_byte_for_byte(tmp_path):
    args = ["-m", "scenario=baseline,no_policy", "replicate=0,1", *TINY, "hydra.sweep.dir=sw"]
    proc = tool("skillsim", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.parent for p in (tmp_path / "sw").glob("*/COMPLETE"))
    assert len(jobs) == 4
    for job in jobs:
        manifest = json.loads((job / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["command"] == ["skillsim", *args]  # as typed, also in the launcher's worker processes
        new, differ = rerun_mod.rerun(job, tmp_path / "again" / job.name)
        assert differ == [], job.name
        assert json.loads((new / "manifest.json").read_text(encoding="utf-8"))["job_num"] == manifest["job_num"]
    with pytest.raises(rerun_mod.DataError, match="is a sweep folder"):
        rerun_mod.rerun(tmp_path / "sw")
    import shutil  # a single run put among the jobs: still a sweep folder, not "a folder of single runs"

    one = tool("skillsim", *TINY, f"hydra.run.dir={tmp_path / 'mine'}", cwd=tmp_path)  # not inside: refused
    assert one.returncode == 0, one.stderr
    shutil.copytree(tmp_path / "mine", tmp_path / "sw" / "mine")
    with pytest.raises(rerun_mod.DataError, match="is a sweep folder"):
        rerun_mod.rerun(tmp_path / "sw")
    shutil.rmtree(tmp_path / "sw" / "mine")


@pytest.fixture(scope="module")
def draw_run(tmp_path_factory) -> Path:
    """A run at a joint parameter draw (draw=2), made by the real command."""
    tmp = tmp_path_factory.mktemp("draw")
    proc = tool("skillsim", "draw=2", "n_agents=1500", "horizon.end_year=2025", "hydra.run.dir=orig", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return tmp / "orig"


def test_a_run_at_a_draw_reruns_byte_for_byte(draw_run, tmp_path, capsys, monkeypatch, caplog):
    """config.yaml holds the composed values and `draw: 2`; what ran is draw 2 of the calibration ensemble
    (summary.json's config). The rerun runs that, also after the ensemble has changed."""
    import yaml

    from sim.studies import uncertainty

    composed = yaml.safe_load((draw_run / "config.yaml").read_text(encoding="utf-8"))
    ran = json.loads((draw_run / "summary.json").read_text(encoding="utf-8"))["config"]
    assert composed["draw"] == ran["draw"] == 2 and composed["behaviour"] != ran["behaviour"]  # the draw mattered
    # and config.yaml says so where its reader looks (it lists the central values the draw replaces)
    assert (draw_run / "config.yaml").read_text(encoding="utf-8").startswith("# draw: 2 sets the behavioural parameters")
    rerun_mod.main([str(draw_run), f"hydra.run.dir={tmp_path / 'again'}"])
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"identical to {draw_run}'s")
    for name in ("series.csv", "summary.json", "config.yaml"):
        assert (tmp_path / "again" / name).read_bytes() == (draw_run / name).read_bytes(), name
    # a calibration ensemble made since (other members at each index) changes nothing: the folder is enough
    real = uncertainty.load_ensemble
    monkeypatch.setattr(uncertainty, "load_ensemble", lambda path=None: real(path).iloc[::-1].reset_index(drop=True))
    with caplog.at_level("WARNING", logger="skillsim"):
        new, differ = rerun_mod.rerun(draw_run, tmp_path / "later")
    assert differ == [] and (new / "series.csv").read_bytes() == (draw_run / "series.csv").read_bytes()
    assert "draw=2 gives other values with the current calibration ensemble" in caplog.text


@pytest.mark.parametrize("kind, tool_name", [("report", "skillsim-report"), ("forecast", None), (None, None)])
def test_a_folder_that_is_neither_a_run_nor_a_rerunnable_study_is_refused(tmp_path, capsys, monkeypatch, kind,
                                                                           tool_name):
    """A folder whose manifest names a kind but a command that is no study (or none), or an intact folder
    whose manifest lists no series.csv: one line, exit 3, nothing written."""
    import dataclasses

    import pandas as pd

    from sim.config import HorizonParams, RunConfig, to_dict
    from sim.studies.forecast import write_folder

    cfg = dataclasses.replace(RunConfig(), n_agents=1500, horizon=HorizonParams(end_year=2025))
    manifest = {"command": [tool_name] if tool_name else None, "overrides": ["n_agents=1500"]}
    if kind is not None:
        manifest["kind"] = kind
    study = write_folder(tmp_path / "study", {"config": to_dict(cfg), "runs": pd.DataFrame({"run": [0]})}, manifest)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit) as exc:
        rerun_mod.main([str(study)])
    err = capsys.readouterr().err
    assert exc.value.code == EXIT_DATA and len(err.strip().splitlines()) == 1, err
    if tool_name is not None:
        assert err.startswith(f"skillsim-rerun: {study} was written by {tool_name}: skillsim-rerun reruns a run "
                              "folder, one job folder of a sweep, or the folder of one of skillsim-forecast"), err
    elif kind is not None:
        assert err.startswith(f"skillsim-rerun: {study / 'manifest.json'}: records no command to rerun"), err
    else:
        assert err.startswith(f"skillsim-rerun: {study} is not a run folder (its manifest lists no series.csv")
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before and not (tmp_path / "results").exists()


FORECAST = ["params=2", "structural=2", "replicates=2", "n_agents=1200", "horizon.end_year=2027"]


@pytest.fixture(scope="module")
def forecast_folder(tmp_path_factory):
    """A small forecast written by its command, as a user writes one."""
    from sim.studies import forecast

    out = tmp_path_factory.mktemp("study") / "fc"
    forecast.main([*FORECAST, f"out={out}"])
    assert (out / "COMPLETE").is_file()
    return out


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_study_folder_is_rerun_by_its_command_and_every_file_compared(forecast_folder, tmp_path, capsys, monkeypatch):
    """skillsim-rerun on a forecast's folder runs its recorded command again into results/reruns/<name>,
    here NAME-2 as NAME is taken: every file the manifests list has the same checksum, exit 0; the
    original and the folder already at NAME are untouched."""
    import shutil

    study = tmp_path / "fc"
    shutil.copytree(forecast_folder, study)
    monkeypatch.chdir(tmp_path)
    decoy = tmp_path / "sim"  # a `sim` folder where the rerun starts (another checkout): not what runs
    decoy.mkdir()
    (decoy / "__init__.py").write_text("", encoding="utf-8")
    (decoy / "entry.py").write_text("def run(target):\n    raise SystemExit(0)\n", encoding="utf-8")
    taken = tmp_path / "results" / "reruns" / "fc"  # an earlier rerun's (each rerun is a forecast: 6 s)
    taken.mkdir(parents=True)
    (taken / "notes.txt").write_text("mine\n", encoding="utf-8")
    before = snapshot(study)
    for expected in ("results/reruns/fc-2",):
        rerun_mod.main([str(study)])
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1] == f"skillsim-rerun: {expected}: every file identical to {study}'s", err
        new = json.loads((tmp_path / expected / "manifest.json").read_text(encoding="utf-8"))
        old = json.loads((study / "manifest.json").read_text(encoding="utf-8"))
        assert new["files"] == old["files"] and len(old["files"]) >= 6
        assert new["command"] == ["skillsim-forecast", *FORECAST, f"out={expected}"]
        assert new["rerun_of"] == {"folder": "fc", "command": old["command"], "started": old["started"]}
        assert "rerun_of" not in old
    assert snapshot(study) == before
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_study_rerun_that_differs_names_the_files_and_a_changed_study_is_not_rerun(forecast_folder, tmp_path,
                                                                                       capsys, monkeypatch):
    """A study folder resealed after one table was edited (so it verifies) reruns and differs there only:
    exit 6 naming runs.csv. The same edit without resealing fails the check: exit 6, nothing rerun."""
    import shutil

    from sim.studies.forecast import seal

    monkeypatch.chdir(tmp_path)
    edited = tmp_path / "edited"
    shutil.copytree(forecast_folder, edited)
    runs = edited / "runs.csv"
    runs.write_text(runs.read_text(encoding="utf-8").replace("2", "3", 1), encoding="utf-8")
    changed = tmp_path / "changed"
    shutil.copytree(edited, changed)
    manifest = json.loads((edited / "manifest.json").read_text(encoding="utf-8"))
    for name in ("manifest.json", "COMPLETE"):
        (edited / name).unlink()
    seal(edited, {k: v for k, v in manifest.items() if k not in ("files", "sizes", "finished")})
    with pytest.raises(SystemExit) as exc:
        rerun_mod.main([str(edited), "out=again"])
    assert exc.value.code == EXIT_INTEGRITY
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"skillsim-rerun: again: differs from {edited} in runs.csv"
    with pytest.raises(SystemExit) as exc:
        rerun_mod.main([str(changed), "out=never"])
    assert exc.value.code == EXIT_INTEGRITY and "runs.csv" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_a_calibrations_rerun_never_writes_the_package_files_and_ignores_only_the_fits_duration(tmp_path):
    """The recorded command loses out= and write= (a rerun writes its own folder and never replaces the
    package's calibration); two calibration folders that differ only in calibration.json's `seconds`
    are the same, and in any other value are not."""
    from sim.studies.forecast import seal

    manifest = {"kind": "calibration", "command": ["skillsim-calibrate", "write=true", "max_evals=3", "out=x/y",
                                                   "n_agents=500"]}
    assert rerun_mod.study_command(tmp_path, manifest) == ("sim.studies.calibrate:main", ["max_evals=3", "n_agents=500"])
    manifest = {"kind": "backtest", "command": ["skillsim-backtest", "origins=2016", "docs=docs/model.md"]}
    assert rerun_mod.study_command(tmp_path, manifest) == ("sim.studies.backtest:main", ["origins=2016"])
    folders = []
    for name, seconds, objective in (("a", 12.5, 0.25), ("b", 99.0, 0.25), ("c", 12.5, 0.26)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "calibration.json").write_text(json.dumps({"values": {"x": 1.0}, "objective": objective,
                                                             "seconds": seconds}), encoding="utf-8")
        (folder / "fit.csv").write_text("target,model\na,1\n", encoding="utf-8")
        seal(folder, {"kind": "calibration"})
        folders.append(folder)
    assert rerun_mod.compare_folders(folders[0], folders[1]) == []
    assert rerun_mod.compare_folders(folders[0], folders[2]) == ["calibration.json"]
    (folders[2] / "extra.csv").write_text("x\n", encoding="utf-8")
    for name in ("manifest.json", "COMPLETE"):
        (folders[2] / name).unlink()
    seal(folders[2], {"kind": "calibration"})
    assert rerun_mod.compare_folders(folders[0], folders[2]) == ["calibration.json", "extra.csv"]


def test_an_interrupted_study_rerun_lets_the_study_end_before_going_on(tmp_path, monkeypatch):
    """Interrupted while its study runs (SIGTERM reaches the rerun only), the rerun stops the study with
    SIGTERM after the grace period, which the study's handler turns into its own clean end, and waits
    for it before raising the interrupt: no study process is left running."""
    import time

    monkeypatch.setattr(rerun_mod, "INTERRUPT_GRACE_S", 0.2)
    ended, ready = tmp_path / "ended", tmp_path / "ready"
    child = ("import signal, sys, time\n"
             f"signal.signal(signal.SIGTERM, lambda *a: (open({str(ended)!r}, 'w').write('clean'), sys.exit(3)))\n"
             f"open({str(ready)!r}, 'w').close()\n"
             "time.sleep(60)\n")
    real_wait, calls = subprocess.Popen.wait, []

    def wait(self, timeout=None):
        calls.append(timeout)
        if len(calls) == 1:  # the interrupt, once the study has its handler
            for _ in range(200):
                if ready.exists():
                    break
                time.sleep(0.05)
            raise KeyboardInterrupt
        return real_wait(self, timeout=timeout)

    monkeypatch.setattr(subprocess.Popen, "wait", wait)
    with pytest.raises(KeyboardInterrupt):
        rerun_mod._run_to_its_end([sys.executable, "-c", child])
    assert ended.read_text() == "clean" and calls[:3] == [None, 0.2, 60]
    # a SIGTERM that reached the rerun only: the study gets one at once, no grace period
    from sim import errors

    ended.unlink()
    ready.unlink()
    calls.clear()
    monkeypatch.setattr(errors, "_SIGNALLED", True)
    with pytest.raises(KeyboardInterrupt):
        rerun_mod._run_to_its_end([sys.executable, "-c", child])
    assert ended.read_text() == "clean" and calls[:2] == [None, 60]


def test_the_study_runner_names_the_study_in_its_messages():
    """The study's process runs under its own command's name: an interrupt it meets says
    `skillsim-plan: interrupted` (exit 130), not `skillsim: interrupted`."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-P", "-c", rerun_mod._STUDY_RUNNER, "_thread:interrupt_main", "skillsim-plan"],
                          capture_output=True, text=True, timeout=60, cwd=Path(rerun_mod.__file__).parents[1])
    assert done.returncode == 130 and done.stderr.strip().splitlines()[-1] == "skillsim-plan: interrupted", done.stderr


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_folder_of_studies_and_a_relative_path_the_study_reads_are_said(forecast_folder, tmp_path, capsys,
                                                                        monkeypatch, caplog):
    """A folder holding study folders side by side is named as such (not as a sweep); a relative path the
    recorded command reads is named in a warning before the study runs."""
    from sim.studies.forecast import seal

    monkeypatch.chdir(tmp_path)
    assert_a_folder_of(tmp_path / "studies", forecast_folder, "result folders", capsys)
    study = tmp_path / "studies" / "fc"
    manifest = json.loads((study / "manifest.json").read_text(encoding="utf-8"))
    manifest["command"] = [*manifest["command"], "targets_file=mine/targets.csv"]
    for name in ("manifest.json", "COMPLETE"):
        (study / name).unlink()
    seal(study, {k: v for k, v in manifest.items() if k not in ("files", "sizes", "finished")})
    monkeypatch.setattr(rerun_mod, "_run_to_its_end", lambda command, env=None: 0)
    with pytest.raises(SystemExit):
        rerun_mod.main([str(study), "out=new"])
    assert f"targets_file=mine/targets.csv: a relative path, read from this folder ({tmp_path})" in caplog.text


def test_a_study_that_ends_well_without_its_folder_is_said_in_one_line(forecast_folder, tmp_path, capsys,
                                                                         monkeypatch):
    """If the study command exits 0 but writes no folder (an edited command asking for its help), the
    rerun says so in one line, exit 3, rather than failing on the missing manifest."""
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(forecast_folder, tmp_path / "fc")
    monkeypatch.setattr(rerun_mod, "_run_to_its_end", lambda command, env=None: 0)
    with pytest.raises(SystemExit) as exc:
        rerun_mod.main([str(tmp_path / "fc"), "out=new"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == EXIT_DATA and err[-1] == "skillsim-rerun: skillsim-forecast ended without writing new; nothing to compare"


def test_a_manifests_commit_is_the_checkouts_and_an_installed_package_starts_no_git(tmp_path, monkeypatch):
    """commit_of: a package folder at the top of a git work tree gives its HEAD (with -dirty if tracked
    files changed); one in a folder without .git (as in site-packages) gives "unknown" and starts no git
    process."""
    import os
    import shutil

    from sim import results

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "sim").mkdir(parents=True)
    (repo / "sim" / "a.py").write_text("x = 1\n")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env={**os.environ, **env})
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert results.commit_of(repo / "sim") == head
    (repo / "sim" / "a.py").write_text("x = 2\n")
    assert results.commit_of(repo / "sim") == head + "-dirty"

    installed = tmp_path / "site-packages" / "sim"
    installed.mkdir(parents=True)
    started = []
    monkeypatch.setattr(results.subprocess, "run", lambda *a, **k: started.append(a) or pytest.fail("git started"))
    assert results.commit_of(installed) == "unknown" and started == []


def test_a_rerun_after_a_new_commit_compares_the_numbers_not_the_record_of_the_code(run, tmp_path, monkeypatch, caplog):
    """summary.json records the commit and package versions that ran. After any commit a rerun was
    reported as different (exit 6) though its numbers were the same; the change is now a warning, and
    a changed number still differs."""
    from sim import results
    from sim.rerun import compared_bytes, rerun

    monkeypatch.setattr(results, "git_commit", lambda: "f" * 40 + "-dirty")
    monkeypatch.setattr(results, "package_versions", lambda *extra: {"python": "3.11.0", "numpy": "0.0"})
    new, differ = rerun(run, tmp_path / "again")
    assert differ == []
    assert (new / "summary.json").read_bytes() != (run / "summary.json").read_bytes()  # the record differs
    summary = json.loads((new / "summary.json").read_text(encoding="utf-8"))
    assert summary["manifest"]["git_commit"] == "f" * 40 + "-dirty"
    changed = tmp_path / "changed" / "summary.json"
    changed.parent.mkdir()
    summary["at_end"]["high_skill_share"] += 1e-12
    changed.write_text(json.dumps(summary), encoding="utf-8")
    assert compared_bytes(changed) != compared_bytes(run / "summary.json")
    summary = json.loads((new / "summary.json").read_text(encoding="utf-8"))
    summary["config"]["seed"] += 1
    changed.write_text(json.dumps(summary), encoding="utf-8")
    assert compared_bytes(changed) != compared_bytes(run / "summary.json")


def test_a_failed_studys_exit_is_the_reruns_and_a_killed_one_exits_as_a_shell_says():
    """A study that ends with exit code 2 makes the rerun exit 2; one killed by signal 9 (or 2) exits 137
    (or 130), as a shell reports it, and the message names the signal."""
    codes = {c: rerun_mod.StudyFailed("skillsim-plan", c) for c in (2, -9, -2)}
    assert {c: e.exit_code for c, e in codes.items()} == {2: 2, -9: 137, -2: 130}
    assert str(codes[-9]) == "skillsim-plan ended with signal 9; nothing to compare"


def test_the_studys_process_imports_this_processs_package(monkeypatch):
    """The study's process is pointed at the folder holding this process's `sim` (a checkout used
    without installing, whose folder `-P` leaves off the path), ahead of any PYTHONPATH given; an
    installed package (its folder a site-packages one) gets nothing added."""
    import site

    root = str(Path(rerun_mod.__file__).resolve().parents[1])
    monkeypatch.setattr(site, "getsitepackages", lambda: ["/nowhere/site-packages"])
    assert rerun_mod._same_package({}) == {"PYTHONPATH": root}
    assert rerun_mod._same_package({"PYTHONPATH": "/x"}) == {"PYTHONPATH": f"{root}{os.pathsep}/x"}
    monkeypatch.setattr(site, "getsitepackages", lambda: [root])
    assert rerun_mod._same_package({"PYTHONPATH": "/x"}) == {}


def test_a_folder_of_single_runs_is_called_that_not_a_sweep(run, tmp_path, capsys):
    """`skillsim-rerun results/runs` said "is a sweep folder: rerun one of its jobs" (a user trial); the
    folder holds single runs, and the message names one to rerun."""
    assert_a_folder_of(tmp_path / "runs", run, "single runs", capsys)


def test_a_folder_holding_folders_of_results_is_refused_in_one_line(run, tmp_path, capsys):
    """`skillsim-rerun results` (runs/ and reruns/ under it) and `skillsim-rerun results/sweeps` printed a
    traceback (a user trial): not a run folder; one line, exit 3, naming a run folder under it."""
    import shutil

    parent = tmp_path / "results"
    target = parent / "runs" / "fc"
    shutil.copytree(run, target)
    (parent / "empty").mkdir()
    with pytest.raises(SystemExit) as exc:
        rerun_mod.main([str(parent)])
    assert exc.value.code == EXIT_DATA
    err = capsys.readouterr().err.strip()
    assert err == (f"skillsim-rerun: {parent} is not a run folder but holds folders of results: rerun one run "
                   f"folder, one job folder of a sweep, or one study folder (skillsim-rerun {target})"), err


def assert_a_folder_of(parent: Path, folder: Path, what: str, capsys) -> None:
    """Two copies of `folder` side by side in `parent` (fc and fc2): rerun refuses the parent in one line
    that names one of them to rerun."""
    import shutil

    shutil.copytree(folder, parent / "fc")
    shutil.copytree(folder, parent / "fc2")
    with pytest.raises(SystemExit) as exc:
        rerun_mod.main([str(parent)])
    assert exc.value.code == EXIT_DATA
    assert capsys.readouterr().err.strip() == (f"skillsim-rerun: {parent} is a folder of {what}: rerun one of them "
                                               f"(skillsim-rerun {parent / 'fc'})")


def test_the_config_files_a_study_records_are_its_config_groups_only(tmp_path):
    """A review: `--config-dir .` in a project folder hashed every run's config.yaml under results/, so
    each rerun warned of the study's own outputs; a folder name with a comma recorded nothing."""
    from sim.cli import _with_config_dir
    from sim.results import config_file_checksums, searchpath_folders

    conf = tmp_path / "my,conf"
    (conf / "region").mkdir(parents=True)
    (conf / "region" / "my_town.yaml").write_text(own_preset("my_town"), encoding="utf-8")
    (conf / "top.yaml").write_text("n_agents: 5\n", encoding="utf-8")
    for noise in ("results/runs/r1/config.yaml", "results/runs/r1/.hydra/config.yaml", "region/.hidden/x.yaml"):
        (conf / noise).parent.mkdir(parents=True, exist_ok=True)
        (conf / noise).write_text("n_agents: 1\n", encoding="utf-8")
    (line,) = [o for o in _with_config_dir(["--config-dir", str(conf)], ["n_agents=5"]) if o.startswith("hydra.")]
    assert searchpath_folders([line]) == [str(conf)]
    assert searchpath_folders(["hydra.searchpath=[/a/b,pkg://x.y]"]) == ["/a/b"]  # no scheme: a file path
    files = config_file_checksums([line, "n_agents=5"])["config_files_sha256"]
    assert sorted(files) == [str((conf / "region" / "my_town.yaml").resolve()), str((conf / "top.yaml").resolve())]
    assert config_file_checksums(["n_agents=5"]) == {}


def test_a_rerun_names_config_files_gone_only_when_they_are(tmp_path):
    """A review: an older manifest checksummed every YAML file of the folder; one outside skillsim's
    config groups, still there and unchanged, was said to be "gone". Only a file that is gone is."""
    from sim.cli import _with_config_dir
    from sim.rerun import config_file_changes
    from sim.results import config_file_checksums

    conf = tmp_path / "conf"
    (conf / "region").mkdir(parents=True)
    (conf / "outputs").mkdir()
    (conf / "region" / "my_town.yaml").write_text(own_preset("my_town"), encoding="utf-8")
    (conf / "outputs" / "x.yaml").write_text("a: 1\n", encoding="utf-8")
    overrides = [o for o in _with_config_dir(["--config-dir", str(conf)], ["n_agents=5"])]
    then = dict(config_file_checksums(overrides)["config_files_sha256"])
    then[str((conf / "outputs" / "x.yaml").resolve())] = "0" * 64  # as an older manifest recorded it
    then[str((conf / "region" / "old.yaml").resolve())] = "0" * 64  # a preset deleted since
    said = config_file_changes({"overrides": overrides, "config_files_sha256": then})
    assert said == [f"your config file {(conf / 'region' / 'old.yaml').resolve()} (gone)"]


def test_the_new_folder_is_named_once(tmp_path, caplog):
    """`skillsim-rerun RUN hydra.run.dir=b1 out=b2` wrote b2 only, and a key given twice used its last value,
    both without a word (a user trial): both names are refused in one line, a key given twice is said, and
    its dropped value is not checked. skillsim-report's options the same."""
    import logging

    from sim.errors import ConfigError
    from sim.report.cli import parse as report_parse

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ConfigError, match=r"out = 'b2' is invalid; allowed: hydra.run.dir=NEW or out=NEW, not both"):
        rerun_mod.parse([str(run), "hydra.run.dir=b1", "out=b2"])
    with caplog.at_level(logging.WARNING, logger="skillsim"):
        assert rerun_mod.parse([str(run), "hydra.run.dir=", "hydra.run.dir=y2"]) == (run, Path("y2"))
        assert rerun_mod.parse([str(run), "out=a", "out=b"]) == (run, Path("b"))
        path, opts = report_parse([str(run), "lang=xx", "lang=en"])
    assert opts.lang == "en"
    said = [r.getMessage() for r in caplog.records]
    assert said == ["hydra.run.dir was given twice (, then y2): hydra.run.dir=y2 is used, the last",
                    "out was given twice (a, then b): out=b is used, the last",
                    "lang was given twice (xx, then en): lang=en is used, the last"]


def test_a_studys_inputs_file_is_rerun_from_the_text_its_manifest_records(forecast_folder, tmp_path, monkeypatch,
                                                                          caplog):
    """`skillsim-rerun` of a study given `inputs_file=ok.yaml` failed from another folder ("No such file or
    directory"), and where another ok.yaml lay it ran that one, with only a warning about the path (a
    user trial). The manifest records the file's text: the rerun reads that."""
    import shutil

    from sim.studies.forecast import seal

    monkeypatch.chdir(tmp_path)
    study = tmp_path / "fc"
    shutil.copytree(forecast_folder, study)
    (tmp_path / "ok.yaml").write_text("levers.studio.intensity: [0, 1]\n", encoding="utf-8")  # another file, same name
    text = "levers.training.intensity: [0, 2]\ngroups: []\n"
    manifest = json.loads((study / "manifest.json").read_text(encoding="utf-8"))
    manifest["command"] = [*manifest["command"], "inputs_file=ok.yaml"]
    manifest["inputs_file"] = {"path": "ok.yaml", "text": text}
    for name in ("manifest.json", "COMPLETE"):
        (study / name).unlink()
    seal(study, {k: v for k, v in manifest.items() if k not in ("files", "sizes", "finished")})
    seen = {}

    def run(command, env=None):
        given = [a for a in command if a.startswith("inputs_file=")]
        seen["args"], seen["text"] = given, Path(given[0].partition("=")[2]).read_text(encoding="utf-8")
        return 0

    monkeypatch.setattr(rerun_mod, "_run_to_its_end", run)
    with pytest.raises(SystemExit):
        rerun_mod.main([str(study), "out=new"])
    assert len(seen["args"]) == 1 and Path(seen["args"][0].partition("=")[2]).name == "ok.yaml"
    assert seen["text"] == text and "a relative path" not in caplog.text
    assert not Path(seen["args"][0].partition("=")[2]).exists()  # the copy goes with the rerun
