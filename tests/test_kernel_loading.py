"""Compiled passes loaded from numba's cache with their bitcode parsed only when used (sim.kernel_loading)."""

import os
import subprocess
import sys

import pytest

from sim import kernel_loading


@pytest.mark.parametrize("version, checked", [("0.60.0", True), ("0.64.0rc1", True), ("0.68.1", True),
                                              ("0.59.1", False), ("0.69.0", False), ("1.0.0", False),
                                              ("dev", False)])
def test_only_the_numba_versions_whose_loading_code_was_read_are_changed(version, checked):
    assert kernel_loading.checked_version(version) is checked


# A fresh process: the passes come from the cache (.ci/run and `python -m sim.kernels` fill it).
FRESH = """
import numpy as np
from numba import njit
import sim.kernels as k
from sim import kernel_loading as kl

a, b = np.array([1, 4, 9], np.int64), np.array([2, 4, 10], np.int64)
got = k.union_sorted(a, b)
lib = k.union_sorted.overloads[k.union_sorted.signatures[0]].library
print("cached", k.union_sorted.stats.cache_hits.most_common(1)[0][1] if k.union_sorted.stats.cache_hits else 0)
print("loaded", got.tolist(), kl.pending(lib))
print("unknown", lib.get_pointer_to_function("no_such_function_here"), kl.pending(lib))

other = k.minus_sorted(np.array([1, 2, 3], np.int64), np.array([2], np.int64))
lib3 = k.minus_sorted.overloads[k.minus_sorted.signatures[0]].library
print("other", other.tolist(), kl.pending(lib3))

@njit
def twice(x, y):  # new code linking against a cached pass whose bitcode is not parsed: it needs it
    return k.minus_sorted(x, y) * 2

print("linked", twice(np.array([1, 2, 3], np.int64), np.array([2], np.int64)).tolist(), kl.pending(lib3))
"""


def test_a_fresh_process_runs_cached_passes_without_their_bitcode_and_parses_it_when_code_links_against_them(tmp_path):
    """The pass answers as before with its bitcode unparsed; a name that is not in its machine code
    goes through numba's own check (0, not a crash, and the bitcode is then parsed); new code compiled
    against a cached pass gets its bitcode and runs."""
    env = dict(os.environ, SKILLSIM_HISTORY_DISK_MB="0")
    out = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert int(lines["cached"]) >= 1, "the pass was compiled, not loaded from the cache: run python -m sim.kernels"
    assert lines["loaded"] == "[1, 2, 4, 9, 10] True"
    assert lines["unknown"] == "0 False"
    assert lines["other"] == "[1, 3] True"
    assert lines["linked"] == "[2, 6] False"
