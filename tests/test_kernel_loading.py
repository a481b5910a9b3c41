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


def test_the_change_applies_only_to_numba_code_it_was_written_against(tmp_path):
    """The installed numba's four functions are the ones read (checked in a process that has not
    installed the change); a function with other bytecode, or a missing one, turns it off."""
    code = "from numba.core import codegen; from sim import kernel_loading as k; print(k.checked_code(codegen))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]

    class Changed:
        def _unserialize(cls, codegen, state):
            return None

        _get_module_for_linking = get_pointer_to_function = _load_defined_symbols = _unserialize

    from types import SimpleNamespace

    assert not kernel_loading.checked_code(SimpleNamespace(CPUCodeLibrary=Changed, JITCodeLibrary=Changed,
                                                           JitEngine=Changed))
    assert not kernel_loading.checked_code(SimpleNamespace())


CACHED_FUNCTIONS = "from numba import njit\n" + "".join(
    f"\n@njit(cache=True)\ndef f{i}(x):\n    return x * {i} + 1.0\n" for i in range(12))

RACE = """
import threading, sys
import sim.kernels  # installs sim.kernel_loading
from numba import njit, types
import cached_functions as cf

fnty = types.FunctionType(types.float64(types.float64))

@njit(types.float64(fnty, types.float64))
def apply(f, x):
    return f(x)

wrong = 0
for i in range(12):
    d = getattr(cf, f"f{i}")
    d(2.0)  # loaded from the cache, its bitcode not parsed
    barrier, out = threading.Barrier(2), [None, None]

    def work(j):
        barrier.wait()
        try:
            out[j] = apply(d, 2.0)  # its address looked up as the call's arguments are read: outside the lock
        except Exception as exc:
            out[j] = repr(exc)[:200]

    threads = [threading.Thread(target=work, args=(j,)) for j in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    if out != [2.0 * i + 1.0] * 2:
        wrong += 1
        print(i, out, file=sys.stderr)
print("hits", sum(sum(getattr(cf, f"f{i}").stats.cache_hits.values()) for i in range(12)), "wrong", wrong)
"""


@pytest.mark.slow  # a long end-to-end check: the default run stays within 3 minutes on 2 cores
def test_two_threads_asking_for_a_cached_function_at_once_both_get_it(tmp_path):
    """A cached function handed to compiled code as a first-class function is looked up outside
    numba's compiler lock; two threads doing it at once, the first parsing the bitcode, must not give
    the second a half-done list of symbols (it got address 0, "must be a positive integer")."""
    (tmp_path / "cached_functions.py").write_text(CACHED_FUNCTIONS)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    fill = "import cached_functions as cf; [getattr(cf, f'f{i}')(1.0) for i in range(12)]"
    out = subprocess.run([sys.executable, "-c", fill], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    out = subprocess.run([sys.executable, "-c", RACE], capture_output=True, text=True, env=env, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["hits", "12", "wrong", "0"], out.stderr[-3000:]
