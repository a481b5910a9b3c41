"""Shared fixtures: small, fast configurations built without Hydra."""

from __future__ import annotations

import dataclasses

import pytest

from sim.config import HorizonParams, RunConfig


def small_config(n_agents: int = 5000, end_year: int = 2026, **changes) -> RunConfig:
    """Chongqing status quo with few agents and a short horizon."""
    return dataclasses.replace(RunConfig(), n_agents=n_agents,
                               horizon=HorizonParams(end_year=end_year), **changes)


def with_lever(cfg: RunConfig, lever: str, **changes) -> RunConfig:
    """Copy of cfg with some fields of one lever changed."""
    levers = dataclasses.replace(cfg.levers, **{lever: dataclasses.replace(getattr(cfg.levers, lever), **changes)})
    return dataclasses.replace(cfg, levers=levers)


@pytest.fixture
def small() -> RunConfig:
    return small_config()
