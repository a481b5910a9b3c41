"""Reusing a simulated history (sim.history_reuse) changes no byte of any run, and happens only
when the history really is the same."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from sim import history_reuse
from sim.model import WorkforceModel
from sim.studies.batch import run_batch

from .conftest import small_config, with_lever


def csv(model) -> str:
    return model.series(history=True).to_csv(index=False, float_format="%.17g")


def base(**changes):
    # a 2019 origin: a history of six years, long enough to contain assessments, appointments and
    # the alignments to observed years
    cfg = small_config(n_agents=4000, end_year=2027, seed=11, **changes)
    return dataclasses.replace(cfg, region=dataclasses.replace(
        cfg.region, history=dataclasses.replace(cfg.region.history, origin="2019-12")))


LEVER_VARIANTS = {
    "status quo": lambda c: c,
    "training x2": lambda c: with_lever(c, "training", intensity=2.0),
    "training lowest level": lambda c: with_lever(c, "training", allocation="lowest_level"),
    "no competition": lambda c: with_lever(c, "competition", enabled=False),
    "competition at random": lambda c: with_lever(c, "competition", selection="random"),
    "studio x0.5": lambda c: with_lever(c, "studio", intensity=0.5),
}


def fresh(cfg, monkeypatch) -> str:
    monkeypatch.setenv(history_reuse.ENV, "0")
    try:
        return csv(WorkforceModel(cfg).run())
    finally:
        monkeypatch.delenv(history_reuse.ENV)


def test_lever_variants_reuse_the_history_and_give_the_same_bytes(monkeypatch):
    configs = {name: make(base()) for name, make in LEVER_VARIANTS.items()}
    expected = {name: fresh(cfg, monkeypatch) for name, cfg in configs.items()}
    assert len(set(expected.values())) == len(expected)  # the variants do differ
    cache = history_reuse.CACHE
    assert len(cache) == 0
    hits = cache.hits
    for name, cfg in configs.items():
        assert csv(WorkforceModel(cfg).run()) == expected[name], name
    assert cache.hits - hits == len(configs) - 1  # every run after the first restored the history
    # a restored run is independent of the kept state: running the first variant again still matches
    assert csv(WorkforceModel(configs["status quo"]).run()) == expected["status quo"]
    assert cache.hits - hits == len(configs)


@pytest.mark.parametrize("change", [
    lambda c: dataclasses.replace(c, seed=12),
    lambda c: dataclasses.replace(c, n_agents=4001),
    lambda c: dataclasses.replace(c, behaviour=dataclasses.replace(c.behaviour, aptitude_sd=0.31)),
    lambda c: with_lever(c, "studio", learning_multiplier=1.7),  # a behavioural setting: the history's too
    lambda c: with_lever(c, "training", progress_gain=0.2),
])
def test_a_different_history_is_never_reused(change, monkeypatch):
    cfg = base()
    WorkforceModel(cfg)
    other = change(cfg)
    hits = history_reuse.CACHE.hits
    got = csv(WorkforceModel(other).run())
    assert history_reuse.CACHE.hits == hits
    assert got == fresh(other, monkeypatch)


def test_the_passes_and_a_subclass_have_their_own_histories(monkeypatch):
    cfg = base()
    monkeypatch.setenv("SKILLSIM_KERNELS", "numpy")  # (a batch runner earlier in this process may set compiled)
    WorkforceModel(cfg)

    class Patched(WorkforceModel):
        pass

    hits = history_reuse.CACHE.hits
    Patched(cfg)
    monkeypatch.setenv("SKILLSIM_KERNELS", "compiled")
    WorkforceModel(cfg)
    assert history_reuse.CACHE.hits == hits


def test_the_memory_budget_is_kept(monkeypatch):
    """At most SKILLSIM_HISTORY_CACHE_MB, least recently used out; no history above 1/8 of it."""
    cfg = dataclasses.replace(base(), n_agents=1500)
    one = WorkforceModel(cfg).workforce.nbytes()
    history_reuse.CACHE.clear()
    monkeypatch.setenv(history_reuse.ENV, str(8.5 * one / 1e6))  # room for eight
    for seed in range(1, 10):
        WorkforceModel(dataclasses.replace(cfg, seed=seed))
    assert len(history_reuse.CACHE) == 8
    hits = history_reuse.CACHE.hits
    WorkforceModel(dataclasses.replace(cfg, seed=9))  # kept
    WorkforceModel(dataclasses.replace(cfg, seed=1))  # the least recently used: pushed out
    assert history_reuse.CACHE.hits == hits + 1
    monkeypatch.setenv(history_reuse.ENV, str(7.9 * one / 1e6))  # a history above 1/8: never kept
    history_reuse.CACHE.clear()
    WorkforceModel(cfg)
    assert len(history_reuse.CACHE) == 0


def _read(model) -> list[float]:
    return [float(x) for x in model.series()["high_skill_share"]]


@pytest.mark.slow  # about 11 s alone; the fast suite keeps under 3 minutes
def test_a_batch_groups_runs_by_history_and_returns_them_in_order(monkeypatch):
    """Across processes: the same results, in input order, as one run after another without reuse."""
    configs = [make(dataclasses.replace(base(), seed=s)) for s in (1, 2) for make in LEVER_VARIANTS.values()]
    configs = configs[::2] + configs[1::2]  # interleaved, so the grouping has to reorder
    pieces, shared = history_reuse.group_by_history(configs, 4)
    assert shared
    assert sorted(i for p in pieces for i in p) == list(range(len(configs)))
    for p in pieces:  # each piece shares one history
        assert len({c.seed for c in (configs[i] for i in p)}) == 1
    monkeypatch.setenv(history_reuse.ENV, "0")
    expected = [_read(WorkforceModel(c).run()) for c in configs]
    monkeypatch.delenv(history_reuse.ENV)
    got = run_batch(configs, _read, jobs=2)
    assert got == expected
    assert np.unique(np.array(expected), axis=0).shape[0] == len(configs)


def test_the_disk_layer_serves_other_processes_and_later_commands(tmp_path, monkeypatch):
    """A history kept on disk is restored by a process that never simulated it (here: this one with
    its memory cleared), with the same bytes; a damaged file is ignored; a change of the code's
    fingerprint, or SKILLSIM_CACHE_DIR empty, means no reuse."""
    monkeypatch.setenv("SKILLSIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(history_reuse.DISK_ENV, "1024")
    cfg = base()
    variant = LEVER_VARIANTS["training x2"](cfg)
    expected = fresh(variant, monkeypatch)
    monkeypatch.setenv(history_reuse.DISK_ENV, "1024")
    WorkforceModel(cfg)
    files = list((tmp_path / "history").glob("*.pickle"))
    assert len(files) == 1
    cache = history_reuse.CACHE
    cache.clear()
    disk_hits = cache.disk_hits
    assert csv(WorkforceModel(variant).run()) == expected
    assert cache.disk_hits == disk_hits + 1
    cache.clear()
    files[0].write_bytes(b"not a pickle")
    hits = cache.hits
    assert csv(WorkforceModel(variant).run()) == expected  # simulated again, and kept again
    assert cache.hits == hits
    cache.clear()
    monkeypatch.setattr(history_reuse, "fingerprint", lambda: "other code")
    WorkforceModel(variant)
    assert cache.hits == hits
    monkeypatch.setenv("SKILLSIM_CACHE_DIR", "")
    cache.clear()
    WorkforceModel(variant)
    assert cache.hits == hits
    assert len(list((tmp_path / "history").glob("*.pickle"))) == 2  # the original key, the other code's


def _read_reused(model) -> tuple[list[float], bool]:
    return _read(model), model.history_reused


@pytest.mark.slow  # two process pools, about 8 s; the one-process batch test above stays in the fast suite
def test_a_batch_reuses_histories_across_its_processes(tmp_path, monkeypatch):
    """With the disk layer, a second batch of the same histories, in a new pool, simulates none again
    and gives the same numbers."""
    from joblib.externals.loky import get_reusable_executor

    monkeypatch.setenv("SKILLSIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(history_reuse.DISK_ENV, "1024")
    get_reusable_executor().shutdown(wait=True)  # workers that see this test's environment
    configs = [make(dataclasses.replace(base(), seed=s)) for s in (1, 2, 3) for make in
               list(LEVER_VARIANTS.values())[:2]]
    first = run_batch(configs, _read_reused, jobs=2)
    assert len(list((tmp_path / "history").glob("*.pickle"))) == 3
    get_reusable_executor().shutdown(wait=True)  # new processes: only the disk can serve them
    second = run_batch(configs[::-1], _read_reused, jobs=2)
    assert [r for r, _ in second] == [r for r, _ in first[::-1]]
    assert all(reused for _, reused in second)
    get_reusable_executor().shutdown(wait=True)


def test_which_sweeps_can_share_histories():
    from sim.history_reuse import sweep_may_share

    assert not sweep_may_share(["replicate=range(0,200)", "n_agents=50000"])
    assert not sweep_may_share(["behaviour.aptitude_sd=0.2,0.3", "seed=1,2"])
    assert not sweep_may_share(["levers.training.intensity=2", "replicate=0,1"])  # one value: not swept
    assert sweep_may_share(["levers.training.intensity=1,2", "replicate=0,1"])
    assert sweep_may_share(["+levers.competition.enabled=true,false"])
    assert sweep_may_share(["levers.studio.intensity=choice(1,2)"])
    assert sweep_may_share(["scenario=status_quo,studio_expansion"])
    assert not sweep_may_share(["levers.studio.learning_multiplier=1.2,1.6"])  # changes the history too
    assert sweep_may_share(["hydra.sweeper.params.levers.training.intensity=interval(0,3)"])  # Optuna
    assert not sweep_may_share(["hydra.sweeper.params.behaviour.aptitude_sd=interval(0.1,0.4)"])


def test_runs_that_share_no_history_keep_none():
    """A batch of distinct histories (a calibration's, an ensemble's) keeps nothing; one with shared
    histories keeps them."""
    distinct = [dataclasses.replace(base(), n_agents=1000, seed=s) for s in (1, 2, 3)]
    run_batch(distinct, _read, jobs=1)
    assert len(history_reuse.CACHE) == 0
    shared = [make(distinct[0]) for make in list(LEVER_VARIANTS.values())[:3]]
    run_batch(shared, _read, jobs=1)
    assert len(history_reuse.CACHE) == 1
    assert history_reuse.CACHE.keeping


@pytest.mark.slow  # two CLI sweeps, about 7 s
@pytest.mark.parametrize("swept, files", [("replicate=0,1", 0), ("levers.training.intensity=1,2", 1)])
def test_a_sweep_keeps_histories_only_where_its_jobs_share_them(swept, files, tmp_path):
    import os
    import subprocess
    import sys

    from .conftest import SHORT_HISTORY

    env = dict(os.environ, SKILLSIM_CACHE_DIR=str(tmp_path / "cache"))
    env[history_reuse.DISK_ENV] = "1024"
    proc = subprocess.run([sys.executable, "-m", "sim", "-m", swept, "n_agents=1000", SHORT_HISTORY,
                           "horizon.end_year=2026", "hydra/launcher=basic", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(list((tmp_path / "cache" / "history").glob("*.pickle"))) == files


def test_a_cache_file_deleted_by_another_process_while_trimming_is_not_a_write_failure(tmp_path):
    """Two pool workers trim the disk cache at once: one lists a file the other then deletes, and its stat
    raised FileNotFoundError, reported as 'SKILLSIM_CACHE_DIR ... cannot be written' (an academic's
    trial). A vanished file is skipped; the rest are still listed."""
    from sim import history_reuse

    (tmp_path / "a.pickle").write_bytes(b"x" * 10)
    (tmp_path / "b.pickle").write_bytes(b"y" * 20)
    real_stat = Path.stat
    gone = tmp_path / "a.pickle"

    def stat(self, *a, **k):
        if self == gone:  # deleted by the other worker after the listing
            gone.unlink(missing_ok=True)
        return real_stat(self, *a, **k)

    import unittest.mock as mock

    with mock.patch.object(Path, "stat", stat):
        entries = history_reuse._entries(tmp_path)  # raised FileNotFoundError, which _store reported
    assert [(size, p.name) for _, size, p in entries] == [(20, "b.pickle")]


def test_a_full_disk_leaves_no_partial_history_file(tmp_path, monkeypatch):
    """A history written onto a full disk left its partial temporary file (3 MB on a user's 3 MB cache),
    and every later run added another, which the trimming (of *.pickle) never removed (a user trial):
    the run goes on, warns once, and leaves the cache folder as it was."""
    import errno
    import warnings
    from pathlib import Path

    monkeypatch.setenv("SKILLSIM_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(history_reuse.DISK_ENV, "1024")
    real_write = Path.write_bytes

    def disk_full(self, data):
        real_write(self, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    history_reuse.CACHE.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one warning that the cache cannot be written
        expected = csv(WorkforceModel(base()).run())
    monkeypatch.undo()
    assert [p.name for p in (tmp_path / "history").iterdir()] == []
    history_reuse.CACHE.clear()
    monkeypatch.setenv("SKILLSIM_CACHE_DIR", "")
    assert csv(WorkforceModel(base()).run()) == expected  # the run itself as without a cache
