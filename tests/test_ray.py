"""A sweep through Hydra's Ray launcher gives the basic launcher's tables, byte for byte (slow).

Ray's launcher pins cloudpickle<3, so it lives in its own venv (docs/cluster.md): `.venv-ray` at the
repository root, with `pip install ".[ray]"` (`.ci/run` makes it). The sweep runs there on a local Ray;
the basic launcher's sweep runs in this environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.errors import EXIT_OK
from .conftest import SHORT_HISTORY

RAY_PYTHON = Path(__file__).resolve().parents[1] / ".venv-ray" / "bin" / "python"
SWEEP = ["scenario=baseline,no_policy", "replicate=range(0,2)", "n_agents=2000", "horizon.end_year=2025",
         SHORT_HISTORY]
TABLES = ("runs.csv", "ensemble.csv", "effects.csv", "series_long.parquet")


@pytest.mark.slow
def test_a_ray_sweep_gives_the_basic_launchers_tables(tmp_path):
    if not RAY_PYTHON.exists():
        why = f"needs the Ray venv {RAY_PYTHON.parent.parent} (pip install '.[ray]' into it; .ci/run does)"
        if os.environ.get("SKILLSIM_REQUIRE_CLUSTER"):
            pytest.fail(why)
        pytest.skip(why)
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")  # no network at run time
    on_ray = subprocess.run([str(RAY_PYTHON), "-m", "sim", "-m", *SWEEP, "hydra/launcher=ray",
                             "+hydra.launcher.ray.init.num_cpus=2", f"hydra.sweep.dir={tmp_path / 'ray'}"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert on_ray.returncode == EXIT_OK, on_ray.stderr[-3000:]
    basic = subprocess.run([sys.executable, "-m", "sim", "-m", *SWEEP, "hydra/launcher=basic",
                            f"hydra.sweep.dir={tmp_path / 'basic'}"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
    assert basic.returncode == EXIT_OK, basic.stderr[-3000:]
    for table in TABLES:
        assert (tmp_path / "ray" / table).read_bytes() == (tmp_path / "basic" / table).read_bytes(), table
    assert "4 jobs ok, 0 failed" in on_ray.stderr
