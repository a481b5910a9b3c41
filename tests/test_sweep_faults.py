"""Aggregation never fails silently: a sweep of replicates alone, a broken aggregation, and the fast
composition of sweep jobs (sim.fastsweep) giving exactly Hydra's own configs."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from sim import fastsweep
from sim.cli import CONFIG_DIR, register_schema
from sim.errors import EXIT_CONFIG, EXIT_DATA

from .faults import assert_one_line_error, run

REPLICATES = ["-m", "replicate=range(0,3)", "n_agents=100", "horizon.end_year=2023", "hydra/launcher=basic"]


@pytest.fixture(scope="module")
def replicates(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reps")
    out = tmp / "D"
    proc = run("sim", *REPLICATES, f"hydra.sweep.dir={out}", cwd=tmp)
    return tmp, out, proc


def test_a_replicate_only_sweep_exits_0_with_its_tables(replicates):
    _, out, proc = replicates
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "raised" not in proc.stderr and "Warning" not in proc.stderr
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 3 and (runs["status"] == "ok").all()
    assert sorted(runs["replicate"]) == [0, 1, 2]
    assert runs["run_seed"].nunique() == 3, "replicates must differ"
    ens = pd.read_csv(out / "ensemble.csv")
    assert (ens["n"] == 3).all() and set(ens["metric"]) >= {"high_skill_share", "income_mean"}
    share = ens[(ens["metric"] == "high_skill_share") & (ens["date"] == "2023-12")].iloc[0]
    finals = runs["high_skill_share"]
    assert share["median"] == pytest.approx(finals.median(), rel=1e-9)
    assert share["q05"] <= share["median"] <= share["q95"]
    assert not (out / "effects.csv").exists()
    assert "effects.csv not written: the sweep has a single setting" in proc.stderr


def test_skillsim_aggregate_on_a_replicate_only_sweep(replicates):
    tmp, out, _ = replicates
    before = (out / "runs.csv").read_bytes()
    proc = run("sim.aggregate", str(out), cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "effects.csv not written" in proc.stderr
    assert (out / "runs.csv").read_bytes() == before
    bad = run("sim.aggregate", str(out), "--baseline", "replicate=0", cwd=tmp)
    assert_one_line_error(bad, "skillsim-aggregate", EXIT_CONFIG, "single setting")


def aggregate_here(folder, capsys) -> tuple[int, str]:
    """`skillsim-aggregate FOLDER` in this process (its exit code, what it printed): the command's own
    process is tested by the other tests of this file."""
    from sim.aggregate import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:  # the command always ends with its exit code
        main([str(folder)])
    said = capsys.readouterr()
    return ended.value.code, said.out + said.err


def test_a_users_folder_named_like_a_job_is_left_out_not_counted_missing(replicates, tmp_path, capsys):
    """A folder of the user's own with a job-like name (key=value) was tabled as a missing job, a row of
    runs.csv, and the command ended with exit 5. It holds files but no result, failure record or job
    claim, so it is no job: left out, and said so. A job folder Hydra made and nothing wrote (empty) is
    still missing."""
    _, out, _ = replicates
    copy = tmp_path / "D"
    shutil.copytree(out, copy)
    (copy / "n_agents=100,replicate=9").mkdir()
    (copy / "n_agents=100,replicate=9" / "notes.txt").write_text("my notes\n")
    code, said = aggregate_here(copy, capsys)
    assert code == 0, said
    assert "left out of the tables: n_agents=100,replicate=9" in said
    runs = pd.read_csv(copy / "runs.csv")
    assert len(runs) == 3 and (runs["status"] == "ok").all()
    (copy / "n_agents=100,replicate=8").mkdir()  # made for a job that never wrote it
    code, said = aggregate_here(copy, capsys)
    assert code == 5 and "1 missing" in said, said


def test_a_broken_aggregation_exits_non_zero_with_one_line(replicates, tmp_path):
    tmp, out, _ = replicates
    broken = tmp_path / "D"
    shutil.copytree(out, broken)
    job = sorted(p for p in broken.iterdir() if p.is_dir())[0]
    (job / "summary.json").unlink()  # after the jobs finished
    proc = run("sim.aggregate", str(broken), cwd=tmp_path)
    assert_one_line_error(proc, "skillsim-aggregate", EXIT_DATA, str(job / "summary.json"), "unreadable or damaged")
    # the line says how to run the job again, and doing what it says gives the tables back: the sweep's
    # command, repeated, runs the damaged job again (its folder kept aside) and skips the intact ones
    assert f"to run that job again, repeat the sweep's command: it keeps the damaged folder ({job})" in proc.stderr
    proc = run("sim", *REPLICATES, f"hydra.sweep.dir={broken}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"job {job.name}: its finished folder is damaged: {job / 'summary.json'}: missing" in proc.stderr
    assert proc.stderr.count("already finished, skipped") == len([p for p in out.iterdir() if (p / "COMPLETE").is_file()]) - 1
    assert (broken / f".{job.name}.damaged-1" / "series.csv").is_file()
    assert (broken / "runs.csv").read_bytes() == (out / "runs.csv").read_bytes()


# -- fast composition ------------------------------------------------------------------------------

JOBS = [
    ["replicate=0", "n_agents=100"],
    ["replicate=7", "n_agents=250"],
    ["replicate=3", "n_agents=100", "scenario=combined"],
    ["replicate=4", "n_agents=120", "scenario=combined"],
    ["levers.training.intensity=2.5", "replicate=1", "region=national"],
    ["levers.training.intensity=0.5", "replicate=2", "region=national"],
]


@pytest.fixture
def loaders():
    register_schema()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        hydra_loader = GlobalHydra.instance().config_loader()
        fast = fastsweep.FastConfigLoader.__new__(fastsweep.FastConfigLoader)
        fast.__dict__.update(hydra_loader.__dict__)
        fast._token = "test"
        master = compose(config_name="config", overrides=["hydra.sweep.dir=/tmp/x"], return_hydra_config=True)
        yield hydra_loader, fast, master
    GlobalHydra.instance().clear()
    fastsweep.restore()


def test_fast_composition_equals_hydras(loaders):
    hydra_loader, fast, master = loaders
    for job in JOBS:
        want, got = hydra_loader.load_sweep_config(master, job), fast.load_sweep_config(master, job)
        assert OmegaConf.to_container(got, resolve=False) == OmegaConf.to_container(want, resolve=False), job
        assert [n for n in _nodes(got)] == [n for n in _nodes(want)], job  # types and flags too
    assert len(fastsweep._BASES) == 3, "one full composition per structure (group choices and keys)"


def _nodes(cfg, path=""):
    """(path, node type, metadata, value) of every node of a config, parents checked on the way."""
    from omegaconf import DictConfig, ListConfig

    meta = cfg._metadata
    yield path, type(cfg), repr(meta), None  # every field: types, flags, key, resolver cache
    if isinstance(cfg, (DictConfig, ListConfig)):
        content = cfg._content
        items = content.items() if isinstance(content, dict) else enumerate(content or [])
        for k, child in items:
            assert child._get_parent() is cfg, f"{path}.{k}: parent"
            yield from _nodes(child, f"{path}.{k}")
    else:
        yield path, type(cfg), None, repr(cfg._val)


def test_a_frozen_config_copies_as_deepcopy_does_classes_kept_by_identity():
    """sim.fastsweep._Frozen: every node, type, flag and value of copy.deepcopy's copy; the same
    class objects (a class pickle cannot find by name, as Hydra's plugin copies are, included); and a
    copy independent of the original and of the next copy."""
    import copy
    import dataclasses

    @dataclasses.dataclass
    class Local:  # defined in a function: pickle cannot find it by name
        x: int = 1
        names: list = dataclasses.field(default_factory=lambda: ["a", "b"])

    cfg = OmegaConf.merge(OmegaConf.structured(Local), {"x": 3})
    cfg = OmegaConf.create({"run": cfg, "plain": {"y": 2.5, "z": None}, "missing": "???", "ref": "${plain.y}"})
    OmegaConf.set_struct(cfg, True)
    OmegaConf.set_readonly(cfg.plain, True)
    frozen = fastsweep._Frozen(cfg)
    assert frozen.kept is None and frozen.data, "pickled, not the deepcopy fallback"
    got, want = frozen.copy(), copy.deepcopy(cfg)
    assert list(_nodes(got)) == list(_nodes(want))
    assert OmegaConf.get_type(got.run) is Local
    got.run.x = 9
    assert cfg.run.x == 3 and frozen.copy().run.x == 3 and got.ref == 2.5
    with pytest.raises(Exception):
        got.plain.y = 1.0  # read-only, as in the original


def test_run_jobs_copies_by_pickling_are_deepcopys_and_leave_the_original_as_it_was(loaders):
    """sim.fastsweep._JobCopies, what Hydra's run_job copies job configs with during a sweep or a run:
    the job's config and HydraConfig's masked copy (its hydra node's parent is the full config, and
    the copy's must be the copy, as DictConfig.__deepcopy__ makes it) come out node for node as
    copy.deepcopy's; the originals keep their parents; anything else goes to copy.deepcopy; and the
    switch puts Hydra's own `copy` back."""
    import copy

    import hydra.core.utils as hydra_utils
    from hydra.core.hydra_config import HydraConfig

    _, fast, master = loaders
    job = fast.load_sweep_config(master, ["replicate=3", "n_agents=700"])
    previous = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(job)
    masked = HydraConfig.instance().cfg
    HydraConfig.instance().cfg = previous  # as run_job leaves it
    assert masked.hydra._get_parent() is job  # the case deepcopy re-parents
    copies = fastsweep._JobCopies()
    for cfg in (job, masked):
        got, want = copies.deepcopy(cfg), copy.deepcopy(cfg)
        assert list(_nodes(got)) == list(_nodes(want))  # parents checked on the way
        assert got is not cfg and got.hydra is not cfg.hydra
    assert masked.hydra._get_parent() is job and job.hydra._get_parent() is job
    assert copies.deepcopy(job.levers) is not job.levers  # a node with a parent: deepcopy's
    assert list(_nodes(copies.deepcopy(job.levers))) == list(_nodes(copy.deepcopy(job.levers)))
    assert copies.deepcopy([1, {"a": 2}]) == [1, {"a": 2}] and copies.copy is copy.copy
    fastsweep.copies_by_pickling()
    assert hydra_utils.copy is fastsweep._JOB_COPIES
    fastsweep.copies_by_pickling(False)
    assert hydra_utils.copy is copy


def test_fast_validation_raises_what_hydra_raises(loaders):
    hydra_loader, fast, master = loaders
    fast.check_sweep_config(master, ["replicate=0", "n_agents=100"])
    for bad in (["replicate=0", "n_agents=lots"], ["replicate=0", "n_agnts=100"], ["scenario=nope", "replicate=0"]):
        with pytest.raises(Exception) as theirs:
            hydra_loader.load_sweep_config(master, bad)
        with pytest.raises(type(theirs.value)):
            fast.check_sweep_config(master, bad)


def test_a_joblib_launch_pickles_what_its_jobs_share_once_and_a_worker_unpickles_it_once():
    """sim.fastsweep._delayed: the jobs of one launch carry the same `_Shipment`, pickled once (its
    bytes are reused); a worker unpickles it once and its jobs get the same objects, as the basic
    launcher's jobs do (unpickled, they are new objects, not the parent's); a launch with other shared
    objects gets a new shipment, unpickled anew; other functions are joblib's own."""
    import pickle

    import cloudpickle

    calls = []
    state = {"instances": {"x": [1]}}
    config = OmegaConf.create({"a": 1})
    shared = ("context", config, len, state)
    jobs = [fastsweep._delayed(fastsweep.execute_joblib_job)(i, [f"replicate={i}"], *shared) for i in range(3)]
    shipments = [job[1][2] for job in jobs]
    assert all(s is shipments[0] for s in shipments) and shipments[0].args == shared
    assert all(job[0] is fastsweep.execute_shipped_job for job in jobs)
    real = cloudpickle.dumps
    try:
        cloudpickle.dumps = lambda *a, **k: calls.append(1) or real(*a, **k)
        blobs = [pickle.dumps(job[1]) for job in jobs]
    finally:
        cloudpickle.dumps = real
    assert len(calls) == 1, "the shared arguments are pickled once per launch"
    fastsweep._unshipped.clear()  # a fresh worker
    first, second = (pickle.loads(b) for b in blobs[:2])
    assert first[:2] == (0, ["replicate=0"]) and second[:2] == (1, ["replicate=1"])
    assert first[2] is second[2], "a worker unpickles a launch's shared arguments once"
    assert first[2][1] is not config and first[2][1] == config and first[2][3] == state
    assert first[2][2] is len
    other = fastsweep._delayed(fastsweep.execute_joblib_job)(3, [], "context", OmegaConf.create({"a": 2}), len, state)
    assert other[1][2] is not shipments[0] and other[1][2].args[1].a == 2
    again = pickle.loads(pickle.dumps(other[1]))[2]  # another launch in the same worker: its own objects
    assert again is not first[2] and again[1].a == 2 and pickle.loads(blobs[2])[2][1].a == 1
    fastsweep._unshipped.clear()
    plain = fastsweep._delayed(max)(1, 2)
    assert plain[0] is max and plain[1] == (1, 2)
    fastsweep._shipment.clear()  # no test's objects kept for a later launch


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_a_sweeps_own_job_folder_stays_missing_whatever_it_holds(replicates, tmp_path):
    """An interrupted job releases its claim and leaves the folder Hydra made; a file manager's hidden
    file in it, or any file in a folder the sweep recorded as one of its jobs, does not make it "not a
    job": it stays missing (exit 5), as before."""
    import json

    from sim.results import PROGRESS_FILE

    _, out, _ = replicates
    copy = tmp_path / "D"
    shutil.copytree(out, copy)
    jobs = sorted(p.name for p in copy.iterdir() if p.is_dir() and not p.name.startswith("."))
    shutil.rmtree(copy / jobs[2])
    (copy / jobs[2]).mkdir()
    (copy / jobs[2] / ".DS_Store").write_text("x")
    proc = run("sim.aggregate", str(copy), cwd=tmp_path)
    assert proc.returncode == 5 and "1 missing" in proc.stdout + proc.stderr and "left out" not in proc.stderr
    (copy / jobs[2] / "notes.txt").write_text("mine")  # a visible file, in a folder the sweep planned
    info = json.loads((copy / PROGRESS_FILE).read_text())
    assert jobs[2] in info.get("jobs", []), info  # the grid's own folders are recorded
    proc = run("sim.aggregate", str(copy), cwd=tmp_path)
    assert proc.returncode == 5 and "1 missing" in proc.stdout + proc.stderr and "left out" not in proc.stderr
