"""Reusing a simulated history (sim.history_reuse) changes no byte of any run, and happens only
when the history really is the same."""

from __future__ import annotations

import dataclasses

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


def test_a_batch_groups_runs_by_history_and_returns_them_in_order(monkeypatch):
    """Across processes: the same results, in input order, as one run after another without reuse."""
    configs = [make(dataclasses.replace(base(), seed=s)) for s in (1, 2) for make in LEVER_VARIANTS.values()]
    configs = configs[::2] + configs[1::2]  # interleaved, so the grouping has to reorder
    pieces = history_reuse.group_by_history(configs, 4)
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
