"""Compiled per-worker passes (numba): the monthly rules fused into one loop each.

Why numba: the rules are simple loops over a few million small integers and floats. In numpy each
rule is several passes with temporaries (a mask, a gather, a scatter), and at small sizes each call
costs microseconds of overhead. One compiled loop per rule does the same work in one pass.
`cache=True` stores the machine code next to this file (or in numba's user cache if the package
folder is read-only), so compilation is paid once per machine, not once per run: see `warm()`.

Bit for bit the numpy rules: every kernel does the same float32/float64 operations in the same
order as the numpy code it replaced (float32 products stay float32, sums into the level ledger are
sequential in slot order as `np.bincount` does them). Draws stay on the mechanism's own stream, with
the same sizes and order: `skip_sample`, `sample_distinct`, `firm_draws`, `entrant_draws`, `depart`,
`train_places` and `compete` draw inside the kernel through numba's `np.random.Generator` support (the
generator handed over by its bit generator's addresses, `generator_addresses`), which runs numpy's
own algorithms on the same bit generator (so the same numbers, 32-bit integers' buffering included;
one call where numpy makes ten at small sizes). The geometric gaps of `skip_sample` call numba's own draws (the standard exponential,
the uniform) with numpy's geometric algorithms around them, the loop constants hoisted (`_skip_sample`):
2.5-3.5x faster per slot than rng.geometric, the same numbers. Exponentials
and logarithms stay numpy's (its SIMD versions may differ from the C library's in the last bit). A run's
output is therefore byte-identical to the numpy implementation and the calibration stands
(tests/test_compiled.py compares each kernel with its numpy form, and whole runs).
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import sys
import threading

import numpy as np
from llvmlite import ir
from numba import literal_unroll, njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.random.distributions import random_standard_exponential
from numba.np.random.generator_core import next_double, next_uint32, next_uint64

from . import kernel_loading

kernel_loading.install()  # before any pass loads: their bitcode is parsed only if used (sim.kernel_loading)

NO_MONTH = -32000  # workforce.NO_MONTH (kept here so this module imports nothing from the model)
NEGLIGIBLE_RATE = 1e-12  # kernels_numpy.NEGLIGIBLE_RATE (the tests compare them)


def _check_blas_without_importing_scipy() -> None:
    """numba's first compilation or cache load in a process imports numba.np.arraymath, and that
    import checks for a BLAS (for np.dot and the like, which no kernel uses) by importing
    scipy.linalg: 0.3-0.4 s here, numpy.f2py included, half of what loading every kernel costs.
    scipy is a dependency of this package, so the check's answer is known without the import: the
    module is imported here with the check answered by whether scipy is installed, and numba's own
    check put back for everything after (np.dot in a user's kernel imports scipy.linalg as before)."""
    if "numba.np.arraymath" in sys.modules:
        return
    import importlib.util

    import numba.np.linalg as linalg

    numbas_check = getattr(linalg, "ensure_blas", None)
    if numbas_check is None:  # a numba without this check: nothing to answer
        return

    def scipy_installed() -> None:
        if importlib.util.find_spec("scipy") is None:
            numbas_check()  # numba's own ImportError

    linalg.ensure_blas = scipy_installed
    try:
        import numba.np.arraymath as arraymath
    finally:
        linalg.ensure_blas = numbas_check
    arraymath.ensure_blas = numbas_check


_check_blas_without_importing_scipy()

_JIT = dict(cache=True, nogil=True, boundscheck=False)
#: helpers called per worker inside the kernels: inlined by numba itself (a call per worker with a
#: dozen array arguments costs several times the work it does)
_INLINE = dict(_JIT, inline="always")
#: the scattered visits (firm moves, entrants, promotions) split over threads (numba's prange): see `threads`
_PARALLEL = dict(_JIT, parallel=True)
#: workers visited in one call from which the visits use threads: below, waking them costs more
THREADS_FROM = 16_384
#: workers from which the passes over every worker (ageing, eligibility, the studio roster) run one
#: part of the slots per thread
PARTS_FROM = 1 << 20


_forked = False
_MAIN_THREAD = threading.main_thread().ident


def _after_fork() -> None:
    global _forked
    _forked = True


os.register_at_fork(after_in_child=_after_fork)


@functools.cache
def _numba_threads() -> int:
    """numba's threads, its threading layer started (numba.get_num_threads does that). It must be
    started before a kernel that calls a threaded one is loaded from the cache: such a kernel does not
    start it itself, and calling it without crashes the process (numba 0.68). About 15 ms, once."""
    import numba

    # OpenMP's threads wait for work asleep, not spinning: spinning kept a second core busy for half
    # of a full-scale run's wall time, for no speed (benchmarks/README.md). GNU OpenMP reads the setting
    # once, as its library loads (when numba starts its layer); it is then taken out of the environment
    # again, so that other programs this process starts keep their own default.
    ours = "OMP_WAIT_POLICY" not in os.environ
    if ours:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        n = numba.get_num_threads()
        layer = numba.threading_layer()
    finally:
        if ours:
            os.environ.pop("OMP_WAIT_POLICY", None)
    # workqueue, numba's fallback when no OpenMP or TBB library loads, is not thread-safe, and was no
    # faster than one thread here
    return n if layer in ("omp", "tbb") else 1


def threads() -> int:
    """Threads for the passes of a large workforce (read by the kernels' callers at each call): numba's
    (NUMBA_NUM_THREADS, by default one per core), at most OMP_NUM_THREADS if that is set (the threads
    are OpenMP's; Ray sets it to 1 in its workers), read once per process; and 1 in a worker of a
    process pool (a multiprocessing child: joblib's, the batch runner's, Hydra's joblib launcher's,
    Mesa's batch_run, EMA Workbench's) and in any forked child. A pool already uses the cores, and a
    child forked from a process that has started numba's OpenMP threads would be ended by numba at its
    first threaded call (GNU OpenMP is not fork-safe); for the same reason 1 where other code started
    them before this module was imported (`_gnu_openmp_started`). Also 1 off the main thread (the
    explorer's views, a thread pool's tasks): several Python threads may run models at once, their
    passes already in parallel (they release the GIL), and each calling thread would start a team of
    its own. Each
    threaded loop is split into this many parts, so no more threads than this work on it. The threads
    change no value: the ledger's sums are taken in slot order after them (tests/test_compiled.py)."""
    if _forked or _STARTED_BEFORE or threading.get_ident() != _MAIN_THREAD:  # a forked child: _forked
        return 1
    return _allowed_threads()


def _gnu_openmp_started() -> bool:
    """Whether numba's threading layer has been started, on GNU OpenMP, in this process or in the one it
    was forked from: other code used numba's threads before this module was imported. A child forked
    (a bare os.fork) from a process that started them is ended by numba at its first threaded call, and
    this module, imported first in the child, cannot tell such a child from the process that started
    them (numba keeps the starting process's id to itself). So its passes then keep to one thread (said
    once in the log): a full-scale run in a process whose own code used numba's threads first went
    1.12-1.22x slower on 2 cores (README.md; more with more cores), where a child would be killed.
    Intel's OpenMP and TBB are safe across fork."""
    import numba

    try:
        layer = numba.threading_layer()  # raises until the layer has been started
    except ValueError:
        return False
    omp = sys.modules.get("numba.np.ufunc.omppool")  # which OpenMP; unknown counts as GNU's (the safe side)
    return layer == "omp" and getattr(omp, "openmp_vendor", "GNU") == "GNU"


@functools.cache
def _allowed_threads() -> int:
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        return 1
    n = _numba_threads()
    quota = quota_cpus()  # numba counts the CPUs of the affinity, not a container's quota
    if quota is not None:
        n = min(n, quota)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(n, int(omp)) if omp.isdigit() and int(omp) >= 1 else n


def quota_cpus(root: str = "/sys/fs/cgroup") -> int | None:
    """The CPUs a container's CPU quota allows (cgroup v2 `cpu.max`, else v1's `cpu.cfs_quota_us` over
    `cpu.cfs_period_us`), rounded up; None without a quota or where there are no cgroups. A container
    given 2 CPUs of a 64-core host ran its passes on 64 threads, throttled by the quota. joblib's cpu_count
    (which the batch runner uses) reads the same files, but importing joblib would add 0.16 s to every
    process that runs the compiled passes; this reads two small files once."""
    try:
        with open(f"{root}/cpu.max") as fh:
            parts = fh.read().split()
    except OSError:
        try:
            with open(f"{root}/cpu/cpu.cfs_quota_us") as fh, open(f"{root}/cpu/cpu.cfs_period_us") as gh:
                parts = [fh.read().strip(), gh.read().strip()]
        except OSError:
            return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):  # "max": no quota (or a file of another form)
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


_STARTED_BEFORE = _gnu_openmp_started()  # before this module starts the layer itself
if _STARTED_BEFORE:
    import logging

    logging.getLogger(__name__).info("numba's OpenMP threads were started before skillsim was imported: its "
                                     "passes run on one thread (a forked child would otherwise be ended)")
_numba_threads()


# -- handing a generator to compiled code --------------------------------------------------------
# numba unboxes an np.random.Generator argument on every call by reading its bit generator's ctypes
# interface and casting three function pointers through ctypes: about 10 microseconds a call, several
# calls a month, as much as the work of a small run's sampler. The addresses never change for the
# life of a bit generator (sim.streams keeps one per mechanism for a whole run), so they are read
# once (`generator_addresses`) and the kernels rebuild numba's Generator from them (`_generator_at`):
# the same struct numba's own unboxing fills, so the same algorithms on the same state, the same numbers.
_GENERATOR = types.NumPyRandomGeneratorType("generator")
_BIT_GENERATOR = types.NumPyRandomBitGeneratorType("bit_generator")
_ADDRESSES: dict[int, tuple[object, np.ndarray]] = {}  # id(bit generator) -> (it, its addresses)
_MAX_ADDRESSES = 64  # bit generators remembered (a run has one per mechanism); the oldest go first


def generator_addresses(rng: np.random.Generator) -> np.ndarray:
    """The C interface of `rng`'s bit generator as uint64 words: its state, next_uint64, next_uint32,
    next_double and the bitgen_t struct (numpy's `BitGenerator.ctypes`). The entry keeps the bit
    generator alive, so its id cannot be reused by another while the entry exists."""
    bitgen = rng.bit_generator
    hit = _ADDRESSES.get(id(bitgen))
    if hit is None or hit[0] is not bitgen:
        c = bitgen.ctypes
        words = [c.state_address] + [ctypes.cast(f, ctypes.c_void_p).value
                                     for f in (c.next_uint64, c.next_uint32, c.next_double)]
        hit = (bitgen, np.array(words + [c.bit_generator.value], dtype=np.uint64))
        if len(_ADDRESSES) >= _MAX_ADDRESSES:
            try:
                del _ADDRESSES[next(iter(_ADDRESSES))]
            except (KeyError, StopIteration, RuntimeError):  # another thread got there first
                pass
        _ADDRESSES[id(bitgen)] = hit
    return hit[1]


@intrinsic
def _generator_at(typingctx, addresses):
    """numba's Generator over the bit generator whose `generator_addresses` are given: the fields
    numba's unboxing sets (numba.core.boxing.unbox_numpy_random_generator), without the Python
    object (never boxed back) or its meminfo (null, which the runtime's decref skips)."""
    if not (isinstance(addresses, types.Array) and addresses.ndim == 1 and addresses.dtype == types.uint64):
        return None

    def codegen(context, builder, sig, args):
        words = context.make_array(sig.args[0])(context, builder, args[0])

        def word(i):
            return builder.load(cgutils.gep(builder, words.data, i))

        bit = cgutils.create_struct_proxy(_BIT_GENERATOR)(context, builder)  # zero-filled: no parent
        bit.state_address = word(0)
        bit.state = word(0)
        bit.fnptr_next_uint64 = word(1)
        bit.fnptr_next_uint32 = word(2)
        bit.fnptr_next_double = word(3)
        bit.bit_generator = word(4)
        gen = cgutils.create_struct_proxy(_GENERATOR)(context, builder)  # null meminfo and parent
        gen.bit_generator = bit._getvalue()
        return gen._getvalue()

    return _GENERATOR(addresses), codegen


@njit(**_JIT)
def age_and_retire(age, retire_age, out):
    """Everyone one month older; returns the slots that reached their retirement age, in slot order
    (phase a: ageing, then the retirement test, rule_retirement), as a view of the scratch buffer `out`.

    A block of workers at a time: a vectorised pass ages them and marks who reached the age
    (`_age_block`), then the marks are read eight at a time, stepping from mark to mark
    (`_marked_slots`; a few retire in a month). The block's marks stay in the first-level cache. One
    branching pass took 18.9 against 7.0 us at 50,000 workers, 2.07 against 1.36 ms at 5.7 million
    (its columns out of the cache, as in a run)."""
    n = age.size
    marks = np.empty(_BLOCK, dtype=np.uint8)
    k = 0
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        _age_block(age[start:stop], retire_age[start:stop], marks)
        k = _marked_slots(marks, stop - start, start, out, k)
    return out[:k]


_BLOCK = 4096  # workers marked at a time by the passes that mark a few (4 kB of marks: they stay in cache)


@njit(**_JIT)
def _age_and_retire_parts(age, retire_age, out, parts):
    """age_and_retire with one part of the slots per thread (whole blocks each), each part's retirees
    listed from its own first slot in `out`, then joined: the same slots in the same order."""
    starts = _part_starts(age.size, parts)
    found = np.empty(parts, dtype=np.int64)
    _age_parts(age, retire_age, out, starts, found)
    return out[:_join_parts(out, starts, found)]


@njit(**_JIT)
def _part_starts(n, parts):
    """The first slot of each of `parts` parts of n slots (whole blocks each), and n."""
    blocks = (n + _BLOCK - 1) // _BLOCK
    starts = np.empty(parts + 1, dtype=np.int64)
    for c in range(parts + 1):
        starts[c] = min(n, blocks * c // parts * _BLOCK)
    return starts


@njit(**_JIT)
def _join_parts(out, starts, found):
    """Part c's list of found[c] slots, counted from its first slot starts[c] and written from
    out[starts[c]] on, moved after the parts before it, as slots: the whole list in slot order.
    Returns its length."""
    k = found[0]
    for c in range(1, found.size):
        for j in range(found[c]):  # forwards: the part's own list is at or after k
            out[k + j] = starts[c] + out[starts[c] + j]
        k += found[c]
    return k


@njit(**_PARALLEL)
def _age_parts(age, retire_age, out, starts, found):
    for c in prange(found.size):
        lo, hi = starts[c], starts[c + 1]
        found[c] = age_and_retire(age[lo:hi], retire_age[lo:hi], out[lo:hi]).size


@njit(**_JIT)
def _age_block(age, retire_age, marks):
    """age += 1 (int16), and marks[i] = whether age[i] reached retire_age[i]: branch-free, vectorised."""
    for i in range(age.size):
        a = np.int16(age[i] + np.int16(1))
        age[i] = a
        marks[i] = a >= retire_age[i]


@njit(**_INLINE)
def _marked_slots(marks, m, start, out, k):
    """start + the positions of the marks among the first m (in order) into out[k:]; returns the new
    k. Read a word of eight marks at a time, from mark to mark by its trailing zero bits; the marks
    past m (a short last block's, left from the block before) are cleared first."""
    words = (m + 7) // 8
    marks[m:words * 8] = 0
    marked = marks[:words * 8].view(np.uint64)
    for w in range(words):
        word = marked[w]
        while word != 0:
            out[k] = start + 8 * w + _byte_of_lowest_bit(word)
            word &= word - np.uint64(1)
            k += 1
    return k


@njit(**_JIT)
def learn(progress, gain, months_at_level, threads):
    """Phase b: progress grows by the cached monthly gain; time at level by one month. From
    PARTS_FROM workers one part per thread: memory-bound, 1.4 against 2.5 ms at 5.9 million workers on
    two threads."""
    if threads > 1 and progress.size >= PARTS_FROM:
        _learn_parts(progress, gain, months_at_level, _part_starts(progress.size, threads))
    else:
        _learn_slots(progress, gain, months_at_level)


@njit(**_INLINE)
def _learn_slots(progress, gain, months_at_level):
    for i in range(progress.size):
        progress[i] += gain[i]
        months_at_level[i] += 1


@njit(**_PARALLEL)
def _learn_parts(progress, gain, months_at_level, starts):
    for c in prange(starts.size - 1):
        lo, hi = starts[c], starts[c + 1]
        _learn_slots(progress[lo:hi], gain[lo:hi], months_at_level[lo:hi])


@njit(**_INLINE)
def _refresh_one(i, level, studio_since, aptitude, firm, wage_factor, gain, pay,
                 level_rate, studio_mult, level_pay, firm_premium, pay_floor):
    lv = level[i]
    g = level_rate[lv] * aptitude[i]
    if studio_since[i] != NO_MONTH:
        g *= studio_mult
    gain[i] = g
    p = level_pay[lv] * firm_premium[firm[i]] * wage_factor[i]
    f = pay_floor[lv]
    pay[i] = p if p >= f else f


@njit(**_JIT)
def refresh(idx, level, studio_since, aptitude, firm, wage_factor, gain, pay,
            level_rate, studio_mult, level_pay, firm_premium, pay_floor):
    """Recompute the cached gain and pay of slots `idx` (sim.rates.refresh)."""
    for j in range(idx.size):
        _refresh_one(idx[j], level, studio_since, aptitude, firm, wage_factor, gain, pay,
                     level_rate, studio_mult, level_pay, firm_premium, pay_floor)


@njit(**_JIT)
def refresh_all(level, studio_since, aptitude, firm, wage_factor, gain, pay,
                level_rate, studio_mult, level_pay, firm_premium, pay_floor):
    """refresh of every slot of the arrays (a workforce just built), without an index array of them
    all: at 5.7 million workers that index was 46 MB to fill and read."""
    for i in range(level.size):
        _refresh_one(i, level, studio_since, aptitude, firm, wage_factor, gain, pay,
                     level_rate, studio_mult, level_pay, firm_premium, pay_floor)


@njit(**_JIT)
def ledger_add_all(level, weight, pay, count, pay_sum, sign):
    """ledger_add over every slot of the arrays, in slot order: the same sums, without copying the
    three columns out through an index of every slot."""
    _ledger_sums_add(level, weight, pay, count, pay_sum, sign)


@njit(**_INLINE)
def _tally(sums, row, i, level, weight, pay):
    """Slot i's weight and weight x pay, at its current level, into rows `row` (0: out of the ledger,
    2: into it) and row + 1 of the per-level partial sums."""
    w = np.float64(weight[i])
    sums[row, level[i]] += w
    sums[row + 1, level[i]] += w * np.float64(pay[i])


@njit(**_JIT)
def _book(sums, sign, count, pay_sum):
    """Add per-level partial sums (rows: count out, pay out, count in, pay in) to the ledger: what
    went out first, then what came in, as two `LevelLedger.add` calls would."""
    for lv in range(8):
        count[lv] += -1.0 * sums[0, lv]
        pay_sum[lv] += -1.0 * sums[1, lv]
    for lv in range(8):
        count[lv] += sign * sums[2, lv]
        pay_sum[lv] += sign * sums[3, lv]


@njit(**_JIT)
def ledger_add(idx, level, weight, pay, count, pay_sum, sign):
    """count[level] and pay_sum[level] += sign x (weight, weight x pay) summed over `idx`.

    The sums over `idx` are taken first, in slot order, and then added, as
    `count += sign * np.bincount(...)` does."""
    _ledger_sums_add(level[idx], weight[idx], pay[idx], count, pay_sum, sign)


@njit(**_JIT)
def eligible(progress, level, months_at_level, credit, waits, top, out):
    """Slots that may sit an assessment: progress at the standard, below level `top`, and the wait
    (less training credit) served; in slot order (certification.eligible_for_assessment).

    Two passes, both branch-free (`_at_standard`, then the wait on those at the standard only). The
    result is a view of the scratch buffer `out` (at least as long as the workforce), which a fresh
    allocation of that size would page-fault on each call."""
    wait = np.full(8, 1 << 30, dtype=np.int64)  # levels at or above `top` never qualify
    for lv in range(top):
        wait[lv] = waits[lv]
    k = _at_standard(progress, out)
    m = 0
    for j in range(k):
        i = out[j]
        out[m] = i
        m += months_at_level[i] >= wait[level[i]] - credit[i]
    return out[:m]


@njit(**_INLINE)
def _at_standard(progress, out):
    """The slots whose progress is at the next standard, in slot order, into `out`; returns how many.
    Branch-free (every slot is stored, the cursor moves past those at the standard): about a fifth
    of workers are, in no order, so a branch on it would often be mispredicted. Reading only progress
    here, and the other columns for those slots only, took 1.35 ms at a million workers against 3.4
    for one pass testing everything."""
    return _at_standard_from(0, progress.size, progress, out)


@njit(**_INLINE)
def _at_standard_from(lo, hi, progress, out):
    """_at_standard over slots lo..hi-1, written from out[lo] on; returns how many."""
    k = lo
    for i in range(lo, hi):
        out[k] = i
        k += progress[i] >= 1.0
    return k - lo


@njit(**_JIT)
def eligible_odds(progress, level, months_at_level, credit, studio_since, waits, top,
                  sit_untrained, sit_trained, pass_prob, out, out_odds, threads):
    """`eligible` and each candidate's odds (kernels_numpy.sitting_odds) in one call, in its two passes:
    the candidates (a view of `out`) and each one's probability of sitting and passing (a view of the
    float32 `out_odds`)."""
    wait = np.full(8, 1 << 30, dtype=np.int64)
    odds = np.zeros(8, dtype=np.float32)  # by level: untrained sitters
    odds_prepared = np.zeros(8, dtype=np.float32)
    for lv in range(top):
        wait[lv] = waits[lv]
        odds[lv] = sit_untrained[lv] * pass_prob[lv]
        odds_prepared[lv] = sit_trained * pass_prob[lv]
    n = progress.size
    parts = threads if n >= PARTS_FROM else 1
    if parts == 1:
        m = _eligible_odds_part(0, n, progress, level, months_at_level, credit, studio_since, wait, odds,
                                odds_prepared, out, out_odds)
        return out[:m], out_odds[:m]
    found = np.empty(parts, dtype=np.int64)
    _eligible_odds_parts(found, progress, level, months_at_level, credit, studio_since, wait, odds, odds_prepared,
                         out, out_odds)
    m = found[0]
    for c in range(1, parts):  # then the parts one after another
        start = n * c // parts
        for j in range(found[c]):  # forwards: the part's own slots are at or after m
            out[m + j] = out[start + j]
            out_odds[m + j] = out_odds[start + j]
        m += found[c]
    return out[:m], out_odds[:m]


@njit(**_PARALLEL)
def _eligible_odds_parts(found, progress, level, months_at_level, credit, studio_since, wait, odds, odds_prepared,
                         out, out_odds):
    """The parts of eligible_odds, one per thread: part c's candidates in slot order from its own first
    slot, how many in found[c]."""
    n, parts = progress.size, found.size
    for c in prange(parts):
        found[c] = _eligible_odds_part(n * c // parts, n * (c + 1) // parts, progress, level, months_at_level,
                                       credit, studio_since, wait, odds, odds_prepared, out, out_odds)


@njit(**_INLINE)
def _eligible_odds_part(lo, hi, progress, level, months_at_level, credit, studio_since, wait, odds, odds_prepared,
                        out, out_odds):
    """eligible_odds over slots lo..hi-1, its candidates written from out[lo] on; returns how many."""
    k = lo + _at_standard_from(lo, hi, progress, out)
    m = lo
    for j in range(lo, k):
        i = out[j]
        lv = level[i]
        prepared = (credit[i] > 0) | (studio_since[i] != NO_MONTH)
        out[m] = i
        out_odds[m] = odds_prepared[lv] if prepared else odds[lv]
        m += months_at_level[i] >= wait[lv] - credit[i]
    return m - lo


@njit(**_JIT)
def train(idx, progress, credit, gain, credit_months, cap):
    """kernels_numpy.train in one pass (float32 progress, int16 credit: the same values)."""
    for j in range(idx.size):
        i = idx[j]
        progress[i] += gain
        c = credit[i] + credit_months
        credit[i] = c if c < cap else cap


def fast_track(rng, members, progress, level, hi, rate):
    """kernels_numpy.fast_track in one compiled call on `rng` (the same doubles)."""
    return _fast_track(generator_addresses(rng), members, progress, level, hi, rate)


@njit(**_JIT)
def _fast_track(addresses, members, progress, level, hi, rate):
    members = np.sort(members)
    ready = np.empty(members.size, dtype=np.int64)
    k = 0
    for j in range(members.size):
        i = members[j]
        ready[k] = i
        k += (progress[i] >= 1.0) & (level[i] <= hi)
    u = _generator_at(addresses).random(k)
    out = np.empty(k, dtype=np.int64)
    m = 0
    for j in range(k):
        out[m] = ready[j]
        m += u[j] < rate
    return out[:m]


def compete(rng, *args):
    """kernels_numpy.compete in one compiled call (`_compete`) on `rng` (`part`: distinct slots, as
    sample_distinct gives them)."""
    return _compete(generator_addresses(rng), *args)


@njit(**_JIT)
def _compete(addresses, part, progress, half_log_aptitude, luck_sd, prep_gain):
    """The same normals (numba's Generator runs numpy's ziggurat on the bit generator, one value at a
    time as numpy's array fill does, loc + scale x z), the same float32 sum of progress and
    aptitude's half log, widened to float64 before the luck is added, as numpy's mixed-type add does;
    the log itself stays numpy's (its vectorised float32 log rounds differently from LLVM's). One
    pass instead of four array calls, the normals three times faster than numpy's."""
    rng = _generator_at(addresses)
    score = np.empty(part.size)
    for j in range(part.size):
        score[j] = rng.normal(0.0, luck_sd)
    for j in range(part.size):
        i = part[j]
        score[j] = np.float64(progress[i] + half_log_aptitude[j]) + score[j]
        progress[i] = progress[i] + prep_gain
    return score


@njit(**_JIT)
def studio_roster(studio_since, level, t, term, lo, hi, stay, leave, threads):
    """kernels_numpy.studio_roster: (staying members, leaving members) in slot order, views of the
    buffers `stay` and `leave`. A block at a time, as `age_and_retire`: a vectorised pass marks the
    members (1-3% of workers), and only they are read further. From PARTS_FROM workers,
    one part of the slots per thread, the parts' lists joined."""
    n = studio_since.size
    if threads > 1 and n >= PARTS_FROM:
        starts = _part_starts(n, threads)
        kept = np.empty(threads, dtype=np.int64)
        gone = np.empty(threads, dtype=np.int64)
        _roster_parts(studio_since, level, t, term, lo, hi, stay, leave, starts, kept, gone)
        return stay[:_join_parts(stay, starts, kept)], leave[:_join_parts(leave, starts, gone)]
    return _roster(studio_since, level, t, term, lo, hi, stay, leave)


@njit(**_PARALLEL)
def _roster_parts(studio_since, level, t, term, lo, hi, stay, leave, starts, kept, gone):
    for c in prange(kept.size):
        a, b = starts[c], starts[c + 1]
        s, g = _roster(studio_since[a:b], level[a:b], t, term, lo, hi, stay[a:b], leave[a:b])
        kept[c], gone[c] = s.size, g.size


@njit(**_JIT)
def _roster(studio_since, level, t, term, lo, hi, stay, leave):
    n = studio_since.size
    marks = np.empty(_BLOCK, dtype=np.uint8)
    members = np.empty(_BLOCK, dtype=np.int64)
    a = b = 0
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        _mark_members(studio_since[start:stop], marks)
        for j in range(_marked_slots(marks, stop - start, start, members, 0)):
            i = members[j]
            lv = level[i]
            if t - np.int64(studio_since[i]) >= term or lv > hi or lv < lo:
                leave[b] = i
                b += 1
            else:
                stay[a] = i
                a += 1
    return stay[:a], leave[:b]


@njit(**_JIT)
def _mark_members(studio_since, marks):
    """marks[i] = whether worker i is in a studio: branch-free, vectorised."""
    for i in range(studio_since.size):
        marks[i] = studio_since[i] != NO_MONTH


@njit(**_JIT)
def keep_below(cand, u, odds):
    """cand[u < odds], in order (branch-free)."""
    out = np.empty(cand.size, dtype=np.int64)
    k = 0
    for j in range(cand.size):
        out[k] = cand[j]
        k += u[j] < odds[j]
    return out[:k]


@njit(**_INLINE)
def _visit_buffers(m):
    """Per visited worker: level before, weight, pay before and after (filled by the threads, summed
    in slot order after them)."""
    return (np.empty(m, dtype=np.int8), np.empty(m, dtype=np.float32), np.empty(m, dtype=np.float32),
            np.empty(m, dtype=np.float32))


@njit(**_INLINE)
def _part(m, c, parts):
    """Part c of `parts` of range(m): one contiguous piece per thread (so that no more threads than
    `parts` take part, whatever numba's count)."""
    return range(m * c // parts, m * (c + 1) // parts)


@njit(**_PARALLEL)
def _gather_levels(idx, level, parts):
    """level[idx], read by the threads (the slots are scattered: a cache miss each)."""
    lv = np.empty(idx.size, dtype=level.dtype)
    for c in prange(parts):
        for j in _part(idx.size, c, parts):
            lv[j] = level[idx[j]]
    return lv


@njit(**_PARALLEL)
def _gather_visits(idx, level, weight, pay, lv, w, p, parts):
    """Level, weight and pay of the slots idx, read by the threads, for sums taken after them."""
    for c in prange(parts):
        for j in _part(idx.size, c, parts):
            i = idx[j]
            lv[j], w[j], p[j] = level[i], weight[i], pay[i]


@njit(**_JIT)
def _ledger_sums_add(lv, w, p, count, pay_sum, sign):
    """ledger_add from gathered levels, weights and pays: the same sums in the same order."""
    c = np.zeros(8)
    s = np.zeros(8)
    for j in range(w.size):
        x = np.float64(w[j])
        c[lv[j]] += x
        s[lv[j]] += x * np.float64(p[j])
    for v in range(8):
        count[v] += sign * c[v]
        pay_sum[v] += sign * s[v]


@njit(**_JIT)
def _book_visits(lv, step, w, before, after, count, pay_sum):
    """The ledger's sums of a threaded visit, in slot order as the one-thread loop takes them: each
    worker out at level lv and pay before, back in at level lv + step and pay after."""
    sums = np.zeros((4, 8))
    for j in range(w.size):
        x = np.float64(w[j])
        sums[0, lv[j]] += x
        sums[1, lv[j]] += x * np.float64(before[j])
        sums[2, lv[j] + step] += x
        sums[3, lv[j] + step] += x * np.float64(after[j])
    _book(sums, 1.0, count, pay_sum)


@njit(**_INLINE)
def _promote_one(i, level, months_at_level, progress, credit, studio_since, aptitude, firm, wage_factor, gain, pay,
                 level_rate, studio_mult, level_pay, firm_premium, pay_floor):
    """Worker i one level up (certification.promote), its rates refreshed."""
    level[i] += 1
    months_at_level[i] = 0
    progress[i] = 0
    credit[i] = 0
    _refresh_one(i, level, studio_since, aptitude, firm, wage_factor, gain, pay,
                 level_rate, studio_mult, level_pay, firm_premium, pay_floor)


@njit(**_INLINE)
def _relocate_one(i, to_firm, level, studio_since, aptitude, firm, wage_factor, gain, pay,
                  level_rate, studio_mult, level_pay, firm_premium, pay_floor):
    """Worker i to firm `to_firm` and out of any studio, its rates refreshed."""
    firm[i] = to_firm
    studio_since[i] = NO_MONTH
    _refresh_one(i, level, studio_since, aptitude, firm, wage_factor, gain, pay,
                 level_rate, studio_mult, level_pay, firm_premium, pay_floor)


@njit(**_INLINE)
def _enter_one(i, j, new_level, new_female, new_age, new_retire_age, new_firm, new_aptitude, new_wage_factor,
               new_weight, level, female, age, retire_age, firm, aptitude, wage_factor, months_at_level, progress,
               credit, studio_since, comp_month, weight, bonus, gain, pay, tables):
    """Entrant j written into slot i, its rates computed. The rate tables come as one tuple: Python
    passes more than 30 arguments as *args, which numba cannot inline."""
    level_rate, studio_mult, level_pay, firm_premium, pay_floor = tables
    level[i] = new_level[j]
    female[i] = new_female[j]
    age[i] = new_age[j]
    retire_age[i] = new_retire_age[j]
    firm[i] = new_firm[j]
    aptitude[i] = new_aptitude[j]
    wage_factor[i] = new_wage_factor[j]
    months_at_level[i] = 0
    progress[i] = 0
    credit[i] = 0
    studio_since[i] = NO_MONTH
    comp_month[i] = NO_MONTH
    weight[i] = new_weight
    bonus[i] = 0
    _refresh_one(i, level, studio_since, aptitude, firm, wage_factor, gain, pay,
                 level_rate, studio_mult, level_pay, firm_premium, pay_floor)


@njit(**_PARALLEL)
def _relocate_visits(idx, new_firm, level, weight, studio_since, aptitude, firm, wage_factor, gain, pay,
                     lv, w, before, after, level_rate, studio_mult, level_pay, firm_premium, pay_floor, parts):
    for c in prange(parts):
        for j in _part(idx.size, c, parts):
            i = idx[j]
            lv[j], w[j], before[j] = level[i], weight[i], pay[i]
            _relocate_one(i, new_firm[j], level, studio_since, aptitude, firm, wage_factor, gain, pay,
                          level_rate, studio_mult, level_pay, firm_premium, pay_floor)
            after[j] = pay[i]


@njit(**_PARALLEL)
def _promote_visits(idx, level, months_at_level, progress, credit, weight, studio_since, aptitude, firm,
                    wage_factor, gain, pay, lv, w, before, after,
                    level_rate, studio_mult, level_pay, firm_premium, pay_floor, parts):
    for c in prange(parts):
        for j in _part(idx.size, c, parts):
            i = idx[j]
            lv[j], w[j], before[j] = level[i], weight[i], pay[i]
            _promote_one(i, level, months_at_level, progress, credit, studio_since, aptitude, firm, wage_factor,
                         gain, pay, level_rate, studio_mult, level_pay, firm_premium, pay_floor)
            after[j] = pay[i]


@njit(**_JIT)
def promote(idx, level, months_at_level, progress, credit, weight,
            studio_since, aptitude, firm, wage_factor, gain, pay, count, pay_sum,
            level_rate, studio_mult, level_pay, firm_premium, pay_floor, threads):
    """One level up for `idx`, with the level ledger kept current: out of the ledger, promoted
    (certification.promote), rates refreshed, back in; one visit per worker (the workers are
    scattered over the arrays, so each visit is a cache miss per field)."""
    if threads > 1 and idx.size >= THREADS_FROM:
        lv, w, before, after = _visit_buffers(idx.size)
        _promote_visits(idx, level, months_at_level, progress, credit, weight, studio_since, aptitude, firm,
                        wage_factor, gain, pay, lv, w, before, after,
                        level_rate, studio_mult, level_pay, firm_premium, pay_floor, threads)
        _book_visits(lv, 1, w, before, after, count, pay_sum)
        return
    sums = np.zeros((4, 8))
    for j in range(idx.size):
        i = idx[j]
        _tally(sums, 0, i, level, weight, pay)
        _promote_one(i, level, months_at_level, progress, credit, studio_since, aptitude, firm, wage_factor, gain,
                     pay, level_rate, studio_mult, level_pay, firm_premium, pay_floor)
        _tally(sums, 2, i, level, weight, pay)
    _book(sums, 1.0, count, pay_sum)


@njit(**_JIT)
def relocate(idx, new_firm, level, weight, studio_since, aptitude, firm, wage_factor, gain, pay, count, pay_sum,
             level_rate, studio_mult, level_pay, firm_premium, pay_floor, threads):
    """Firm moves: out of the ledger, to the new firm and out of any studio, rates refreshed, back
    into the ledger (the sequence WorkforceModel._demography runs for movers), one visit per worker."""
    if threads > 1 and idx.size >= THREADS_FROM:
        lv, w, before, after = _visit_buffers(idx.size)
        _relocate_visits(idx, new_firm, level, weight, studio_since, aptitude, firm, wage_factor, gain, pay,
                         lv, w, before, after, level_rate, studio_mult, level_pay, firm_premium, pay_floor,
                         threads)
        _book_visits(lv, 0, w, before, after, count, pay_sum)
        return
    sums = np.zeros((4, 8))
    for j in range(idx.size):
        i = idx[j]
        _tally(sums, 0, i, level, weight, pay)
        _relocate_one(i, new_firm[j], level, studio_since, aptitude, firm, wage_factor, gain, pay,
                      level_rate, studio_mult, level_pay, firm_premium, pay_floor)
        _tally(sums, 2, i, level, weight, pay)
    _book(sums, 1.0, count, pay_sum)


@njit(**_PARALLEL)
def _enter_visits(idx, new_level, new_female, new_age, new_retire_age, new_firm, new_aptitude, new_wage_factor,
                  new_weight, level, female, age, retire_age, firm, aptitude, wage_factor, months_at_level, progress,
                  credit, studio_since, comp_month, weight, bonus, gain, pay, after, tables, parts):
    for c in prange(parts):
        for j in _part(idx.size, c, parts):
            i = idx[j]
            _enter_one(i, j, new_level, new_female, new_age, new_retire_age, new_firm, new_aptitude,
                       new_wage_factor, new_weight, level, female, age, retire_age, firm, aptitude, wage_factor,
                       months_at_level, progress, credit, studio_since, comp_month, weight, bonus, gain, pay, tables)
            after[j] = pay[i]


@njit(**_JIT)
def enter(idx, new_level, new_female, new_age, new_retire_age, new_firm, new_aptitude, new_wage_factor,
          new_weight, level, female, age, retire_age, firm, aptitude, wage_factor, months_at_level, progress,
          credit, studio_since, comp_month, weight, bonus, gain, pay, count, pay_sum,
          level_rate, studio_mult, level_pay, firm_premium, pay_floor, threads):
    """Entrants written into slots `idx` (demography.fill_entrants draws them), their rates
    computed and added to the ledger (rates.refresh, LevelLedger.add): one visit per slot."""
    sums = np.zeros((4, 8))
    if threads > 1 and idx.size >= THREADS_FROM:
        after = np.empty(idx.size, dtype=np.float32)
        _enter_visits(idx, new_level, new_female, new_age, new_retire_age, new_firm, new_aptitude, new_wage_factor,
                      new_weight, level, female, age, retire_age, firm, aptitude, wage_factor, months_at_level,
                      progress, credit, studio_since, comp_month, weight, bonus, gain, pay, after,
                      (level_rate, studio_mult, level_pay, firm_premium, pay_floor), threads)
        x = np.float64(np.float32(new_weight))  # as stored in the weight column and read back
        for j in range(idx.size):
            sums[2, new_level[j]] += x
            sums[3, new_level[j]] += x * np.float64(after[j])
        _book(sums, 1.0, count, pay_sum)
        return
    for j in range(idx.size):
        i = idx[j]
        _enter_one(i, j, new_level, new_female, new_age, new_retire_age, new_firm, new_aptitude, new_wage_factor,
                   new_weight, level, female, age, retire_age, firm, aptitude, wage_factor, months_at_level,
                   progress, credit, studio_since, comp_month, weight, bonus, gain, pay,
                   (level_rate, studio_mult, level_pay, firm_premium, pay_floor))
        _tally(sums, 2, i, level, weight, pay)
    _book(sums, 1.0, count, pay_sum)


@njit(**_JIT)
def accept_levels(slots, level, lo, hi, progress, by_progress):
    """Acceptance weight (float32): 1 for levels lo..hi, times clip(progress, 0.05, 1) if asked."""
    out = np.empty(slots.size, dtype=np.float32)
    low, high = np.float32(0.05), np.float32(1.0)
    for j in range(slots.size):
        i = slots[j]
        lv = level[i]
        a = np.float32((lv >= lo) & (lv <= hi))
        if by_progress:
            a *= min(max(progress[i], low), high)
        out[j] = a
    return out


@njit(**_JIT)
def accept_training(slots, level, top, mode, progress, firm, levy, levy_max, by_levy):
    """Training acceptance (float32): level <= top, weighted by `mode` (0 random, 1 lowest level
    first, 2 nearest the standard) and, for employer places, by the firm's levy rate."""
    out = np.empty(slots.size, dtype=np.float32)
    low, high = np.float32(0.05), np.float32(1.0)
    denom = np.float32(top + 1)
    for j in range(slots.size):
        i = slots[j]
        lv = level[i]
        a = np.float32(lv <= top)
        if mode == 1:
            a *= np.float32(top + 1 - lv) / denom
        elif mode == 2:
            a *= min(max(progress[i], low), high)
        if by_levy:
            a *= levy[firm[i]] / levy_max
        out[j] = a
    return out


@njit(**_JIT)
def accept_studio(slots, level, lo, hi, studio_since):
    """Studio acceptance (float32): member levels and not a member yet."""
    out = np.empty(slots.size, dtype=np.float32)
    for j in range(slots.size):
        i = slots[j]
        lv = level[i]
        out[j] = np.float32((lv >= lo) & (lv <= hi) & (studio_since[i] == NO_MONTH))
    return out


ACCEPT_LEVELS, ACCEPT_TRAINING, ACCEPT_STUDIO = 0, 1, 2  # sim.sampling.Acceptance.kind


@njit(**_INLINE)
def _accept(kind, slots, level, lo, hi, progress, by, mode, firm, levy, levy_max, studio_since):
    """The acceptance kernel of `kind` (sim.sampling.Acceptance), for the fused sampler."""
    if kind == ACCEPT_LEVELS:
        return accept_levels(slots, level, lo, hi, progress, by)
    if kind == ACCEPT_TRAINING:
        return accept_training(slots, level, hi, mode, progress, firm, levy, levy_max, by)
    return accept_studio(slots, level, lo, hi, studio_since)


@njit(**_INLINE)
def _pairwise_leaf(a, lo, n):
    """numpy's pairwise summation of float32 a[lo:lo + n] for n <= 128: sequential below 8 values,
    else eight running sums combined as a tree, then the rest."""
    if n < 8:
        res = np.float32(0.0)
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    end = n - n % 8
    while i < end:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(**_JIT)
def _pairwise_sum(a, n):
    """np.add.reduce(a[:n]) for float32 a, to the bit: numpy halves a block above 128 values (the
    first half a multiple of 8) and adds the two halves' sums. Walked with an explicit stack, as
    numba's cache cannot load a recursive function (it segfaults)."""
    los = np.empty(64, dtype=np.int64)
    ns = np.empty(64, dtype=np.int64)
    left = np.empty(64, dtype=np.float32)
    right_pending = np.zeros(64, dtype=np.bool_)  # the node's left sum is in `left`, its right is being summed
    top = 0
    los[0], ns[0] = 0, n
    while True:
        lo, m = los[top], ns[top]
        if m > 128:  # descend into the left half
            h = m // 2 - (m // 2) % 8
            top += 1
            los[top], ns[top], right_pending[top] = lo, h, False
            continue
        v = _pairwise_leaf(a, lo, m)
        while True:  # hand the sum up: a left half starts its sibling, a right half completes its parent
            if top == 0:
                return v
            top -= 1
            if right_pending[top + 1]:
                v = left[top] + v
                continue
            left[top] = v
            h = ns[top] // 2 - (ns[top] // 2) % 8
            top += 1
            los[top], ns[top], right_pending[top] = los[top - 1] + h, ns[top - 1] - h, True
            break


@njit(**_INLINE)
def _expected_keep(need, spare_sd):
    """sim.sampling.expected_keep (the same float operations)."""
    return need + spare_sd * math.sqrt(need) + 2.0


def sample_distinct(rng, n, k, *args):
    """sim.sampling.sample_distinct in one compiled call (`_sample_distinct`) on `rng`."""
    return _sample_distinct(generator_addresses(rng), n, k, *args)


@njit(**_JIT)
def _sample_distinct(addresses, n, k, pilot, pilot_min, per_place, spare_sd, max_passes, kind, level, lo, hi, progress, by,
                    mode, firm, levy, levy_max, studio_since):
    """sim.sampling.sample_distinct in one compiled call (its constants passed in, so that the cached
    machine code never holds stale ones), with the same draws in the same order on
    `rng` (numba's Generator runs numpy's algorithms on its bit generator), the same float32 mean
    of the pilot's acceptance (numpy's pairwise sum), the same rates of the passes and the same
    thinning threshold (the k-th smallest key, which any selection finds): the same slots, and the
    stream left in the same state. At small sizes the numpy calls it replaces cost more than their work."""
    if k <= 0 or n <= 0:
        return np.empty(0, dtype=np.int64)
    rng = _generator_at(addresses)
    m = min(pilot, max(pilot_min, per_place * k))
    if n <= m:
        probe = np.arange(n)
    else:
        probe = rng.integers(0, n, m)
    acc = _accept(kind, probe, level, lo, hi, progress, by, mode, firm, levy, levy_max, studio_since)
    # float(np.add.reduce(acc) / acc.size): a float32 sum divided in float32
    mean_accept = np.float64(_pairwise_sum(acc, acc.size) / np.float32(acc.size))
    if mean_accept <= 0.0:
        if n <= m:
            return np.empty(0, dtype=np.int64)
        mean_accept = 1.0 / m
    p = min(1.0, _expected_keep(k, spare_sd) / (n * mean_accept))
    keep = np.empty(0, dtype=np.int64)
    for _ in range(max_passes):
        cand = _skip_sample(rng, n, p)
        u = rng.random(cand.size, dtype=np.float32)
        new = keep_below(cand, u, _accept(kind, cand, level, lo, hi, progress, by, mode, firm, levy, levy_max,
                                          studio_since))
        keep = union_sorted(keep, new) if keep.size else new
        if keep.size >= k:
            break
        p = min(1.0, p * _expected_keep(k - keep.size, spare_sd) / max(new.size, 1))
    if keep.size > k:
        key = rng.random(keep.size)
        keep = keep[key <= _kth_smallest_key(key, k)]
    return keep


@njit(**_JIT)
def _kth_smallest_key(key, k):
    """np.partition(key, k - 1)[k - 1] for uniform keys in [0, 1) (no NaN) of which only a few (d = size - k)
    are to be dropped: the value of a rank does not depend on the selection that finds it, so it is
    found among the keys at or above a cut that more than d of them pass with near certainty (the
    sampler drops about 2 sqrt(k)), gathered in one pass and partitioned there; a full partition if
    the cut lets too few or far too many through. At 570,000 keys (a full-scale competition round)
    0.3 ms against 5.4 for the full partition."""
    size = key.size
    d = size - k
    want = d + 1.0
    cut = 1.0 - (want + 6.0 * math.sqrt(want) + 16.0) / size
    if cut <= 0.5:  # not few to drop: a partition of all of them is as cheap
        return np.partition(key, k - 1)[k - 1]
    top = np.empty(int(2.0 * (size - cut * size)) + 64, dtype=key.dtype)  # twice the keys expected
    m = 0
    for i in range(size):
        v = key[i]
        if v >= cut:  # rare, so the branch is well predicted
            if m == top.size:  # far more than expected (never, for uniform keys): all of them then
                return np.partition(key, k - 1)[k - 1]
            top[m] = v
            m += 1
    if m < d + 1:  # fewer than d + 1 at or above the cut: the rank lies below it
        return np.partition(key, k - 1)[k - 1]
    # the size - m keys below the cut are the smallest; the rank k - 1 is at m - d - 1 among the rest
    return np.partition(top[:m], m - d - 1)[m - d - 1]


def train_places(rng, *args):
    """kernels_numpy.train_places in one compiled call (`_train_places`) on `rng`."""
    return _train_places(generator_addresses(rng), *args)


@njit(**_JIT)
def _train_places(addresses, places, n, sampler, level, top, progress, mode, firm, levy, levy_max, studio_since,
                  credit, gain, credit_months, cap):
    """Both funders' places of a month: for each in turn, the count rounded by one double
    (sim.sampling.stochastic_round: floor, plus one if the draw is below the fraction), the places
    drawn as the fused sampler draws them (employer places weighted by the levy), and the training
    given; the same draws in the same order, so the same workers."""
    rng = _generator_at(addresses)
    pilot, pilot_min, per_place, spare_sd, max_passes = sampler
    reached = np.zeros(places.size, dtype=np.int64)
    for f in range(places.size):
        x = places[f]
        k = 0
        if x > 0:
            base = np.floor(x)
            k = np.int64(base) + (1 if rng.random() < x - base else 0)
        idx = _sample_distinct(addresses, n, k, pilot, pilot_min, per_place, spare_sd, max_passes, ACCEPT_TRAINING,
                               level, 0, top, progress, f == 1, mode, firm, levy, levy_max, studio_since)
        if idx.size:
            train(idx, progress, credit, gain, credit_months, cap)
        reached[f] = idx.size
    return reached


@njit(**_JIT)
def union_sorted(a, b):
    """Sorted union of two sorted arrays of distinct slots (np.union1d for this case, in O(len))."""
    out = np.empty(a.size + b.size, dtype=np.int64)
    i = j = k = 0
    while i < a.size and j < b.size:
        x, y = a[i], b[j]
        if x < y:
            out[k] = x
            i += 1
        elif y < x:
            out[k] = y
            j += 1
        else:
            out[k] = x
            i += 1
            j += 1
        k += 1
    while i < a.size:
        out[k] = a[i]
        i += 1
        k += 1
    while j < b.size:
        out[k] = b[j]
        j += 1
        k += 1
    return out[:k]


@njit(**_JIT)
def minus_sorted(a, b):
    """a without the elements of b, both sorted and distinct (np.setdiff1d for this case)."""
    out = np.empty(a.size, dtype=np.int64)
    j = k = 0
    for i in range(a.size):
        x = a[i]
        while j < b.size and b[j] < x:
            j += 1
        if j < b.size and b[j] == x:
            continue
        out[k] = x
        k += 1
    return out[:k]


@njit(**_JIT)
def firm_payroll(firm, pay, weight, n_firms):
    """Weighted pay summed by firm: np.bincount(firm, weights=pay * weight) (float32 products, float64
    sums in slot order), without the 5.7M-long temporaries."""
    out = np.zeros(n_firms)
    for i in range(firm.size):
        out[firm[i]] += np.float64(pay[i] * weight[i])
    return out


#: workers from which the retirement ages are looked up in a table over their birth months' range
#: (one integer division per worker otherwise: 80 ms for the initial 5.7 million, 10 a month's entrants)
RETIREMENT_TABLE_FROM = 256


@njit(**_INLINE)
def _retirement_one(fem, birth, reform, base_f, base_m, step_f, step_m, max_f, max_m):
    base = base_f if fem else base_m
    original = np.int64(birth) + base
    delay = 0
    if original >= reform:
        delay = min((original - reform) // (step_f if fem else step_m) + 1, max_f if fem else max_m)
    return base + delay


@njit(**_INLINE)
def _retirement_table(first, width, reform, base_f, base_m, step_f, step_m, max_f, max_m):
    """Men's retirement ages for birth months first .. first + width - 1, then women's (int16)."""
    table = np.empty(2 * width, dtype=np.int16)
    for j in range(width):
        table[j] = _retirement_one(False, first + j, reform, base_f, base_m, step_f, step_m, max_f, max_m)
        table[width + j] = _retirement_one(True, first + j, reform, base_f, base_m, step_f, step_m, max_f, max_m)
    return table


@njit(**_JIT)
def retirement_age(female, birth_month, reform, base_f, base_m, step_f, step_m, max_f, max_m):
    """Statutory retirement age in months (demography.retirement_age_months: integer arithmetic only).
    Many workers born over fewer months than there are workers (always, for a workforce or a month's
    entrants) read it from a table of both sexes' ages over those months: the same integers."""
    n = female.size
    out = np.empty(n, dtype=np.int16)
    if n == 0:
        return out
    lo = hi = np.int64(birth_month[0])
    if n >= RETIREMENT_TABLE_FROM:
        for i in range(n):
            lo = min(lo, np.int64(birth_month[i]))
            hi = max(hi, np.int64(birth_month[i]))
    # the range's width in unsigned arithmetic: hi - lo can exceed the largest int64
    if n >= RETIREMENT_TABLE_FROM and np.uint64(hi) - np.uint64(lo) < np.uint64(n):
        width = hi - lo + 1
        table = _retirement_table(lo, width, reform, base_f, base_m, step_f, step_m, max_f, max_m)
        for i in range(n):  # any true value of `female` is a woman, as in the formula
            out[i] = table[np.int64(birth_month[i]) - lo + (width if female[i] else 0)]
        return out
    for i in range(n):
        out[i] = _retirement_one(female[i], birth_month[i], reform, base_f, base_m, step_f, step_m, max_f, max_m)
    return out


def settle_ages(rng, *args):
    """kernels_numpy.settle_ages in one compiled call (`_settle_ages`) on `rng`: the same normals in
    the same rounds, so the same ages, retirement ages and stream state."""
    _settle_ages(generator_addresses(rng), *args)


@njit(**_JIT)
def _settle_ages(addresses, level, female, age, ret_age, now, mean_age, scale, min_age, max_rounds,
                 reform, base_f, base_m, step_f, step_m, max_f, max_m):
    scale = np.float32(scale)
    mean_age = mean_age.astype(np.float32)
    n = age.size
    if n == 0:
        return
    lo = hi = np.int64(age[0])
    for i in range(n):
        lo = min(lo, np.int64(age[i]))
        hi = max(hi, np.int64(age[i]))
    width = hi - lo + 1
    if n >= RETIREMENT_TABLE_FROM and width < n:  # by birth month now - age, from now - hi
        table = _retirement_table(now - hi, width, reform, base_f, base_m, step_f, step_m, max_f, max_m)
        for i in range(n):
            ret_age[i] = table[hi - np.int64(age[i]) + (width if female[i] else 0)]
    else:
        for i in range(n):
            ret_age[i] = _retirement_one(female[i], now - np.int64(age[i]), reform, base_f, base_m, step_f, step_m,
                                         max_f, max_m)
    m = 0
    for i in range(n):
        m += (age[i] < min_age) | (age[i] >= ret_age[i])
    bad = np.empty(m, dtype=np.int64)
    m = 0
    for i in range(n):
        if (age[i] < min_age) | (age[i] >= ret_age[i]):
            bad[m] = i
            m += 1
    rng = _generator_at(addresses)
    for _ in range(max_rounds):
        if m == 0:
            break
        z = rng.standard_normal(m, dtype=np.float32)
        for j in range(m):
            i = bad[j]
            v = z[j] * scale
            v = v + mean_age[level[i]]
            age[i] = np.int16(v)
            ret_age[i] = _retirement_one(female[i], now - np.int64(age[i]), reform, base_f, base_m, step_f, step_m,
                                         max_f, max_m)
        kept = 0
        for j in range(m):
            i = bad[j]
            if (age[i] < min_age) | (age[i] >= ret_age[i]):
                bad[kept] = i
                kept += 1
        m = kept
    for j in range(m):
        i = bad[j]
        age[i] = min_age
        ret_age[i] = _retirement_one(female[i], now - np.int64(age[i]), reform, base_f, base_m, step_f, step_m,
                                     max_f, max_m)


@njit(**_JIT)
def ages_from_normals(z, level, mean_age, scale, age):
    """kernels_numpy.ages_from_normals in one pass: z x scale + the level's mean age in float32,
    truncated to int16 (as numpy's cast), into `age`; z is left as it is. The scale and the mean ages
    are taken as float32, whatever float they come as (as the numpy form takes them)."""
    scale = np.float32(scale)
    mean_age = mean_age.astype(np.float32)
    for i in range(z.size):
        v = z[i] * scale
        v = v + mean_age[level[i]]
        age[i] = np.int16(v)


@njit(**_JIT)
def tenure_and_progress(tenure_u, spread_u, level, age, span, rate, aptitude, two_thirds, scale, min_age,
                        months_at_level, progress):
    """kernels_numpy.tenure_and_progress in one pass: the same float32 products, minimum and casts
    (the uniforms are left as they are; the scalars and tables taken as float32, as the numpy form
    takes them)."""
    two_thirds, scale = np.float32(two_thirds), np.float32(scale)
    span, rate = span.astype(np.float32), rate.astype(np.float32)
    for i in range(tenure_u.size):
        lv = level[i]
        t = tenure_u[i] * span[lv]
        cap = np.float32(np.int64(age[i]) - min_age)
        if cap < t:
            t = cap
        months = np.int16(t)
        months_at_level[i] = months
        s = two_thirds * spread_u[i]
        s = two_thirds + s
        p = np.float32(months) * rate[lv]
        p = p * aptitude[i]
        p = p * s
        progress[i] = p * scale


def shuffle(rng, x):
    """kernels_numpy.shuffle (rng.shuffle of a 1-D array) compiled: numpy's Fisher-Yates, from the
    last slot down, each swap partner drawn by its random_interval (a 32-bit draw masked to the
    smallest all-ones mask, redrawn while above the bound; 64-bit above 2**32), on the same bit
    generator: the same permutation and the same stream state. About twice as fast for the initial
    population's 5.7 million levels: numpy swaps through a buffer with three memcpy calls."""
    _shuffle_at(generator_addresses(rng), x)


@njit(**_JIT)
def _shuffle_at(addresses, x):
    bitgen = _generator_at(addresses).bit_generator
    for i in range(x.size - 1, 0, -1):
        mask = np.uint64(i)
        mask |= mask >> np.uint64(1)
        mask |= mask >> np.uint64(2)
        mask |= mask >> np.uint64(4)
        mask |= mask >> np.uint64(8)
        mask |= mask >> np.uint64(16)
        mask |= mask >> np.uint64(32)
        bound = np.uint64(i)
        if bound <= np.uint64(0xFFFFFFFF):
            j = np.uint64(next_uint32(bitgen)) & mask
            while j > bound:
                j = np.uint64(next_uint32(bitgen)) & mask
        else:
            j = next_uint64(bitgen) & mask
            while j > bound:
                j = next_uint64(bitgen) & mask
        k = np.int64(j)
        x[i], x[k] = x[k], x[i]


@njit(**_INLINE)
def _firm_draws(rng, k, alias_prob, alias):
    """The drawn firm where the uniform is below its keeping probability, its alias otherwise. In
    three vectorised loops (the two lookups, then a masked store): one loop choosing per draw took
    40 against 14 ms for 5.7 million draws."""
    i = rng.integers(0, alias_prob.size, k, dtype=np.int32)
    u = rng.random(k, dtype=np.float32)
    keep = np.empty(k, dtype=np.float32)
    for j in range(k):
        keep[j] = alias_prob[i[j]]
    out = np.empty(k, dtype=np.int32)
    for j in range(k):
        out[j] = alias[i[j]]
    for j in range(k):
        if u[j] < keep[j]:
            out[j] = i[j]
    return out


def firm_draws(rng, k, alias_prob, alias):
    """kernels_numpy.firm_draws: the same draws (numba's Generator runs numpy's algorithms, the
    32-bit integers' buffering included), the same firms."""
    return _firm_draws_at(generator_addresses(rng), k, alias_prob, alias)


@njit(**_JIT)
def _firm_draws_at(addresses, k, alias_prob, alias):
    return _firm_draws(_generator_at(addresses), k, alias_prob, alias)


def entrant_draws(rng, *args):
    """kernels_numpy.entrant_draws in one compiled call (`_entrant_draws`) on `rng`."""
    return _entrant_draws(generator_addresses(rng), *args)


@njit(**_JIT)
def _entrant_draws(addresses, k, female_share, age_mean, age_sd, min_age, max_age, alias_prob, alias, s2, s3, rest,
                  junior_share, wage_sd):
    """kernels_numpy.entrant_draws in one call: the same draws in the same order, the same
    float64 operations for the age's clip and the level's thresholds."""
    rng = _generator_at(addresses)
    u_junior = rng.random(k)
    u_female = rng.random(k)
    age_years = rng.normal(age_mean, age_sd, k)
    firm = _firm_draws(rng, k, alias_prob, alias)
    z_aptitude = rng.standard_normal(k, dtype=np.float32)
    log_wage = rng.normal(0.0, wage_sd, k)
    level = np.empty(k, dtype=np.int8)
    female = np.empty(k, dtype=np.bool_)
    age = np.empty(k, dtype=np.int16)
    for j in range(k):
        u = u_junior[j]
        lv = 3 if u < s3 else (2 if u < s3 + s2 else 0)
        if u >= s2 + s3 and (u - s2 - s3) / rest < junior_share:
            lv = 1
        level[j] = lv
        female[j] = u_female[j] < female_share
        a = age_years[j] * 12
        age[j] = np.int16(min(max(a, min_age), max_age))
    return level, female, age, firm, z_aptitude, log_wage


def skip_sample(rng, n, p):
    """Slots in [0, n) each included independently with probability p, by geometric gaps, in slot
    order: kernels_numpy.skip_sample with the same draws (chunk sizes included) on `rng`. With the
    generator handed by address, the compiled form is faster than numpy's at every size (1.7 against
    11 microseconds for 10 expected slots, the same time for 20,000)."""
    return _skip_sample_at(generator_addresses(rng), n, p)


@njit(**_JIT)
def _skip_sample_at(addresses, n, p):
    return _skip_sample(_generator_at(addresses), n, p)


#: partial sums of numpy's geometric search kept in a table (`_search_table`): P(X > 16) <= (2/3)**16
SEARCH_TABLE = 16


@njit(**_JIT)
def _search_table(p):
    """The partial sums that numpy's geometric search (random_geometric_search, used for p >= 1/3)
    forms, in its own float operations and order: sums[i] is its running sum when X = i + 1. Returns
    the table and the last product and sum, from which the search goes on past the table."""
    sums = np.empty(SEARCH_TABLE)
    s = prod = p
    q = 1.0 - p
    sums[0] = s
    for i in range(1, SEARCH_TABLE):
        prod *= q
        s += prod
        sums[i] = s
    return sums, prod, s


@njit(**_INLINE)
def _geometric_search(bitgen, q, sums, prod, s):
    """numpy's geometric search from its table of partial sums: the same uniform and the same X (the
    first X whose running sum reaches U; the sums never decrease, so X - 1 counts the sums below U).
    The first four are counted without branches: the search's loop exit, unpredictable, cost more
    than the draw."""
    u = next_double(bitgen)
    j = (u > sums[0]) + (u > sums[1]) + (u > sums[2]) + (u > sums[3])
    if j < 4:
        return np.int64(j + 1)
    for i in range(4, SEARCH_TABLE):
        if u <= sums[i]:
            return np.int64(i + 1)
    x = SEARCH_TABLE
    while u > s:
        prod *= q
        s += prod
        x += 1
    return np.int64(x)


@njit(**_JIT)
def _skip_sample(rng, n, p):
    """The geometric gaps drawn as numba's rng.geometric(p, m) draws them (numpy's algorithms: the
    search for p >= 1/3, else the inversion of a standard exponential; the same uniforms and
    exponentials on the bit generator, the same float operations), with what does not change hoisted
    out of the loop: log1p(-p), the search's partial sums and the buffer's size check. Each slot is
    stored without a branch, those inside counted (a prefix of each chunk). 2.5-3.5x faster than
    drawing an array of gaps first."""
    if p >= 1.0:
        return np.arange(n)
    if p < NEGLIGIBLE_RATE:  # no slot, nothing drawn (kernels_numpy.NEGLIGIBLE_RATE: the gaps would overflow)
        return np.empty(0, dtype=np.int64)
    bitgen = rng.bit_generator
    search = p >= 0.333333333333333333333333  # numpy's choice of algorithm (random_geometric)
    denom = np.log1p(-p)
    q = 1.0 - p
    sums, prod_end, sum_end = _search_table(p)
    out = np.empty(int(n * p * 1.2 + 8 * np.sqrt(n * p + 1) + 32), dtype=np.int64)
    k = 0
    pos = -1
    while True:
        # numpy draws the gaps in chunks of m: the same chunks, so the stream ends in the same state
        m = int(max(16.0, (n - pos) * p * 1.1 + 6 * np.sqrt((n - pos) * p + 1)))
        if k + m > out.size:
            grown = np.empty(max(2 * out.size, k + m), dtype=np.int64)
            grown[:k] = out[:k]
            out = grown
        step = pos
        inside = 0
        # the chunk's slots go to out[k:k + m] and those inside [0, n) are counted: the gaps are never
        # negative, so those are its first `inside` (a store at a place known before the gap is drawn
        # cost a fifth less than one at a cursor moved by each comparison)
        if search:
            for j in range(m):
                step += _geometric_search(bitgen, q, sums, prod_end, sum_end)
                out[k + j] = step
                inside += step < n
        else:
            for j in range(m):
                step += np.int64(np.ceil(-random_standard_exponential(bitgen) / denom))
                out[k + j] = step
                inside += step < n
        k += inside
        if step >= n:
            break
        pos = step
    return out[:k]


@njit(**_JIT)
def split_separations(cand, u, level, hazard, leave_share):
    """Separations among the candidates (the passes' depart): with u the candidates'
    uniforms scaled by the highest hazard, a candidate separates if u < hazard(level) and leaves
    the region if u < hazard(level) x leave_share; returns (leavers, movers), in slot order."""
    return _split_by_levels(cand, u, level[cand], hazard, leave_share)


@njit(**_JIT)
def _split_by_levels(cand, u, lv, hazard, leave_share):
    """split_separations with the candidates' levels gathered beforehand (`_gather_levels`)."""
    leave = np.empty(cand.size, dtype=np.int64)
    move = np.empty(cand.size, dtype=np.int64)
    a = b = 0
    for j in range(cand.size):
        h = hazard[lv[j]]
        if u[j] < h * leave_share:
            leave[a] = cand[j]
            a += 1
        elif u[j] < h:
            move[b] = cand[j]
            b += 1
    return leave[:a], move[:b]


def depart(rng, *args):
    """kernels_numpy.depart in one compiled call (`_depart`) on `rng`: the same draws in the same order
    (skip sampling, the float32 uniforms, the movers' firms), so the same workers leave and move."""
    return _depart(generator_addresses(rng), *args)


@njit(**_JIT)
def _depart(addresses, age, retire_age, out, level, hazard, p_max, leave_share, alias_prob, alias, weight,
            studio_since, aptitude, firm, wage_factor, gain, pay, count, pay_sum,
            level_rate, studio_mult, level_pay, firm_premium, pay_floor, threads):
    """A small run's month had nine Python calls here, a few microseconds each, more than their work."""
    if threads > 1 and age.size >= PARTS_FROM:
        retired = _age_and_retire_parts(age, retire_age, out, threads)
    else:
        retired = age_and_retire(age, retire_age, out)
    rng = _generator_at(addresses)
    n = age.size
    if p_max > 0 and n > 0:
        cand = _skip_sample(rng, n, p_max)
        u = rng.random(cand.size, dtype=np.float32)
        scale = np.float32(p_max)  # numpy's float32 array times a Python float: a float32 product
        for j in range(u.size):
            u[j] = u[j] * scale
        if threads > 1 and cand.size >= THREADS_FROM:
            lv = _gather_levels(cand, level, threads)
        else:
            lv = level[cand]
        leavers, movers = _split_by_levels(cand, u, lv, hazard, leave_share)
    else:
        leavers = np.empty(0, dtype=np.int64)
        movers = np.empty(0, dtype=np.int64)
    gone = union_sorted(retired, leavers)
    movers = minus_sorted(movers, retired)
    if movers.size:
        new_firm = _firm_draws(rng, movers.size, alias_prob, alias)
        relocate(movers, new_firm, level, weight, studio_since, aptitude, firm, wage_factor, gain, pay, count,
                 pay_sum, level_rate, studio_mult, level_pay, firm_premium, pay_floor, threads)
    if threads > 1 and gone.size >= THREADS_FROM:
        lv, w, before, _ = _visit_buffers(gone.size)
        _gather_visits(gone, level, weight, pay, lv, w, before, threads)
        _ledger_sums_add(lv, w, before, count, pay_sum, -1.0)
    elif gone.size:
        ledger_add(gone, level, weight, pay, count, pay_sum, -1.0)
    return gone, retired.size, movers.size


@njit(**_INLINE)
def _move(col, to, source):
    for j in range(to.size):
        col[to[j]] = col[source[j]]


@njit(**_JIT)
def compact(leavers, n_new, n, columns):
    """kernels_numpy.compact: the tail's live workers into the holes below the new end, in slot order,
    every column (one compiled loop per column instead of two numpy calls per column)."""
    holes = leavers[n_new:]
    new_n = n - holes.size
    cut = np.searchsorted(holes, new_n)  # holes are sorted: those below the new end, then the tail's
    low = holes[:cut]
    source = minus_sorted(np.arange(new_n, n), holes[cut:])  # the tail's live workers, in slot order
    k = low.size
    if k:
        for col in literal_unroll(columns):
            _move(col, low, source)
    return new_n


@njit(**_JIT)
def _count_bracket(x, a, b):
    """(values below a, values in [a, b]), branch-free: the comparisons are unpredictable."""
    nbelow = 0
    ninside = 0
    for i in range(x.size):
        v = x[i]
        nbelow += v < a
        ninside += (v >= a) & (v <= b)
    return nbelow, ninside


@njit(**_JIT)
def _gather_bracket(x, a, b, out, k):
    """Values of x in [a, b] into out[k:], in order, branch-free: every value is stored and the cursor
    moves past those inside (`out` has one spare slot at its end)."""
    for i in range(x.size):
        v = x[i]
        out[k] = v
        k += (v >= a) & (v <= b)


@njit(**_JIT)
def _gather_bracket_bits(x, a, b, out, k):
    """_gather_bracket for float32 x and 0 < a <= b, both float32 values: one unsigned comparison of
    bit patterns (which order non-negative floats as their values and put negatives, -0.0 and NaN
    outside), so the one branch is well predicted when few values are inside, as for income brackets."""
    bits = x.view(np.uint32)
    lo = np.array([np.float32(a)]).view(np.uint32)[0]
    span = np.array([np.float32(b)]).view(np.uint32)[0] - lo
    for i in range(x.size):
        if np.uint32(bits[i] - lo) <= span:
            out[k] = x[i]
            k += 1


def bracketed(x, lo, hi):
    """For each bracket j: how many values of x lie below lo[j], and the values inside
    [lo[j], hi[j]] (concatenated, bracket j at starts[j]:starts[j + 1]), as kernels_numpy.bracketed
    (sim.metrics.order_statistics). x is float32 or float64; the float64 bounds compare exactly.
    Positive brackets of float32 values (incomes) gather by bit patterns (`_gather_bracket_bits`)."""
    return _bracketed(x, lo, hi, x.dtype == np.float32 and _float32_positive(lo, hi))


def _float32_positive(lo, hi) -> bool:
    """Whether brackets of float32 values can be gathered by bit patterns: positive float32 bounds."""
    # a few quantiles' brackets: Python floats, without numpy's per-call overhead (a NaN fails the equality)
    los, his = lo.tolist(), hi.tolist()
    return bool(los) and min(los) > 0 and all(float(np.float32(v)) == v for v in los + his)


@njit(**_JIT)
def _bracketed(x, lo, hi, bits):
    nb = lo.size
    below = np.zeros(nb, dtype=np.int64)
    starts = np.zeros(nb + 1, dtype=np.int64)
    for j in range(nb):
        nbelow, ninside = _count_bracket(x, lo[j], hi[j])
        below[j] = nbelow
        starts[j + 1] = starts[j] + ninside
    values = np.empty(starts[nb] + 1, dtype=x.dtype)
    for j in range(nb):
        if bits:
            _gather_bracket_bits(x, lo[j], hi[j], values, starts[j])
        else:
            _gather_bracket(x, lo[j], hi[j], values, starts[j])
    return below, values[:starts[nb]], starts

@njit(**_JIT)
def select_ranks(x, ranks, below, values, starts):
    """kernels_numpy.select_ranks: the same values (a value of given rank does not depend on the
    selection that finds it), without a numpy call per rank."""
    out = np.empty(ranks.size, dtype=x.dtype)
    for j in range(ranks.size):
        r = ranks[j]
        inside = values[starts[j]:starts[j + 1]]
        k = r - below[j]
        if 0 <= k < inside.size:
            out[j] = np.partition(inside, k)[k]
        else:
            out[j] = np.partition(x, r)[r]
    return out


def income_pass(pay, bonus, stride, scale, threshold, lo, hi):
    """The month's income sample and what its quantiles need, in one call (sim.metrics.measure):
    sample = pay[::stride] * scale + bonus[::stride] in float32 (as numpy computes it), how many
    reach `threshold` (a float32, as numpy compares a float32 array with a Python float), and
    `bracketed(sample, lo, hi)`. As kernels_numpy.income_pass."""
    return _income_pass(pay, bonus, stride, scale, threshold, lo, hi, _float32_positive(lo, hi))


@njit(**_JIT)
def _income_pass(pay, bonus, stride, scale, threshold, lo, hi, bits):
    sample, n_mid = _income_sample(pay, bonus, stride, scale, threshold)
    below, values, starts = _bracketed(sample, lo, hi, bits)
    return sample, n_mid, below, values, starts


@njit(**_JIT)
def income_quantiles(pay, bonus, stride, scale, threshold, guess, windows, quantiles, threads):
    """kernels_numpy.income_quantiles for three quantiles in one call (the same float64 products
    rounded to float32, the same ranks and values).

    Nearly always one pass over the workers and one over marks: the pass makes the sample, the
    middle-income count, and for the narrowest window around each of last month's quantiles the
    values below it and up to it, and a mark on each value inside one (`_income_narrow`); if every
    rank lies in its window (a month's moves are small), the marked values are gathered
    (`_gather_marked`) and partitioned. Otherwise each wider window in turn is counted on the sample
    (`_count_and_mark`) until every rank lies in one, and the windows kept are marked again. A
    quantile no window holds, or whose gathered values do not match their count, is found by a full
    partition, so the values are always exact: the windows decide the speed only."""
    m = (pay.size + stride - 1) // stride
    if m == 0:
        return 0, 0, 0.0, 0.0, 0.0
    ranks = np.empty(3, dtype=np.int64)
    for j in range(3):
        ranks[j] = max(0, math.ceil(quantiles[j] * m) - 1)
    if m >= _INT32_COUNTS:  # past the 32-bit counts (never: QUANTILE_SAMPLE keeps a sample far below)
        sample, n_mid = _income_sample(pay, bonus, stride, scale, threshold)
        out = np.empty(3, dtype=np.float32)
        for j in range(3):
            out[j] = np.partition(sample, ranks[j])[ranks[j]]
        return m, n_mid, np.float64(out[0]), np.float64(out[1]), np.float64(out[2])
    lo = np.zeros(3, dtype=np.float32)
    hi = np.zeros(3, dtype=np.float32)
    below = np.zeros(3, dtype=np.int64)
    size = np.zeros(3, dtype=np.int64)
    found = np.zeros(3, dtype=np.bool_)
    sample = np.empty(0, dtype=np.float32)
    marks = np.empty(0, dtype=np.uint8)
    n_mid = 0
    one, zero = np.float32(1.0), np.float32(0.0)  # the later windows count the sample's values as they are
    for w in range(windows.size):
        a = np.empty(3, dtype=np.float32)
        b = np.empty(3, dtype=np.float32)
        for j in range(3):
            a[j] = np.float32(guess[j] * (1.0 - windows[w]))
            b[j] = np.float32(guess[j] * (1.0 + windows[w]))
        if w == 0:  # the pass over the workers: the sample, the middle-income count, counts and marks
            sample, n_mid, c, d, marks = _income_narrow(pay, bonus, stride, scale, threshold, a, b, threads)
        else:
            _, c, d = _count_and_mark(sample, sample, one, False, zero, a, b, sample, marks)
        done = True
        for j in range(3):
            if not found[j] and a[j] > 0 and c[j] <= ranks[j] < d[j]:
                found[j] = True
                lo[j], hi[j], below[j], size[j] = a[j], b[j], c[j], d[j] - c[j]
            done = done and found[j]
        if done:
            break
    if w > 0:  # the marks of the windows kept (the narrow pass's hold when every rank is in its window)
        _count_and_mark(sample, sample, one, False, zero, lo, hi, sample, marks)
    inside, kept = _gather_marked(sample, marks, lo, hi, size)
    out = np.empty(3, dtype=np.float32)
    for j in range(3):
        if found[j] and kept[j] == size[j]:
            out[j] = np.partition(inside[j], ranks[j] - below[j])[ranks[j] - below[j]]
        else:  # no window holds its rank
            out[j] = np.partition(sample, ranks[j])[ranks[j]]
    return m, n_mid, np.float64(out[0]), np.float64(out[1]), np.float64(out[2])


#: samples below this size are counted in 32-bit integers (`_income_narrow`), whose sums vectorise
#: twice as wide as 64-bit ones: the pass took 35 against 55 us at 100,000 workers
_INT32_COUNTS = 2**31 - 1


@njit(**_INLINE)
def _income_narrow(pay, bonus, stride, scale, threshold, lo, hi, threads):
    """`_income_sample`, and for three windows [lo_j, hi_j] how many values lie below lo_j and how
    many up to hi_j, and a mark (1) on each value inside any window
    (in a buffer of whole 8-byte words, the tail unmarked): in the same pass for every worker (stride
    1), after the sample otherwise (strided loads do not vectorise with the counts). Branch-free and
    vectorised; the counts in 32-bit integers (the caller keeps the sample below 2**31)."""
    m = (pay.size + stride - 1) // stride
    words = (m + 7) // 8
    marks = np.empty(words * 8, dtype=np.uint8)
    marks[m:] = 0
    if stride == 1:  # written apart, as in `_income_sample`, so that the loads vectorise
        sample = np.empty(m, dtype=np.float32)
        n_mid, below, upto = _count_and_mark(pay, bonus, scale, True, threshold, lo, hi, sample, marks)
    else:
        if threads > 1 and m >= THREADS_FROM:  # a cache miss a value: read by the threads
            sample = _income_sample_threads(pay, bonus, stride, scale, threads)
        else:
            sample, _ = _income_sample(pay, bonus, stride, scale, threshold)
        n_mid, below, upto = _count_and_mark(sample, sample, scale, False, threshold, lo, hi, sample, marks)
    return sample, n_mid, below, upto, marks


@njit(**_INLINE)
def _count_and_mark(x, bonus, scale, incomes, threshold, lo, hi, sample, marks):
    """`_income_narrow`'s pass over the values: x (`incomes` False: x is the sample), or the incomes
    x * scale + bonus in float32, written to `sample` (the test of `incomes` is taken out of the loop
    by the compiler, which vectorises both versions)."""
    a0, a1, a2, b0, b1, b2 = lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]
    n_mid = c0 = c1 = c2 = d0 = d1 = d2 = np.int32(0)
    for t in range(sample.size):
        v = x[t] * scale + bonus[t] if incomes else x[t]
        if incomes:
            sample[t] = v
        n_mid = np.int32(n_mid + np.int32(v >= threshold))
        c0 = np.int32(c0 + np.int32(v < a0))
        c1 = np.int32(c1 + np.int32(v < a1))
        c2 = np.int32(c2 + np.int32(v < a2))
        d0 = np.int32(d0 + np.int32(v <= b0))
        d1 = np.int32(d1 + np.int32(v <= b1))
        d2 = np.int32(d2 + np.int32(v <= b2))
        marks[t] = ((v >= a0) & (v <= b0)) | ((v >= a1) & (v <= b1)) | ((v >= a2) & (v <= b2))
    return np.int64(n_mid), np.array([c0, c1, c2], dtype=np.int64), np.array([d0, d1, d2], dtype=np.int64)


@njit(**_INLINE)
def _gather_marked(x, marks, lo, hi, size):
    """The values of x inside each window [lo_j, hi_j] (at most size_j of them) and how many lie
    inside, in slot order, reading `_income_narrow`'s marks eight at a time as one word and, in a
    marked word, going from mark to mark by the word's trailing zero bits (no test of the unmarked
    values between them)."""
    a0, a1, a2, b0, b1, b2 = lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]
    v0 = np.empty(size[0], dtype=x.dtype)
    v1 = np.empty(size[1], dtype=x.dtype)
    v2 = np.empty(size[2], dtype=x.dtype)
    k0 = k1 = k2 = 0
    marked = marks.view(np.uint64)
    for w in range(marked.size):
        word = marked[w]
        while word != 0:
            i = 8 * w + _byte_of_lowest_bit(word)
            word &= word - np.uint64(1)
            v = x[i]
            if a0 <= v and v <= b0:
                if k0 < v0.size:
                    v0[k0] = v
                k0 += 1
            if a1 <= v and v <= b1:
                if k1 < v1.size:
                    v1[k1] = v
                k1 += 1
            if a2 <= v and v <= b2:
                if k2 < v2.size:
                    v2[k2] = v
                k2 += 1
    return (v0, v1, v2), (k0, k1, k2)


@intrinsic
def _trailing_zeros(typingctx, word):
    """The number of trailing zero bits of a uint64 (LLVM's cttz: one instruction)."""
    if word != types.uint64:
        return None

    def codegen(context, builder, sig, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return types.uint64(types.uint64), codegen


_LITTLE_ENDIAN = sys.byteorder == "little"  # a word's first byte holds its lowest bits


@njit(**_INLINE)
def _byte_of_lowest_bit(word):
    """Which of a nonzero word's eight bytes (in memory order) holds its lowest set bit."""
    k = np.int64(_trailing_zeros(word) >> np.uint64(3))
    return k if _LITTLE_ENDIAN else 7 - k


@njit(**_INLINE)
def _income_sample(pay, bonus, stride, scale, threshold):
    """pay[::stride] * scale + bonus[::stride] in float32, and how many reach the threshold; the
    loop over every worker (stride 1) is written apart so that it vectorises."""
    m = (pay.size + stride - 1) // stride
    sample = np.empty(m, dtype=np.float32)
    n_mid = 0
    if stride == 1:
        for i in range(m):
            v = pay[i] * scale + bonus[i]
            sample[i] = v
            n_mid += v >= threshold
    else:
        for i in range(m):
            v = pay[i * stride] * scale + bonus[i * stride]
            sample[i] = v
            n_mid += v >= threshold
    return sample, n_mid


@njit(**_PARALLEL)
def _income_sample_threads(pay, bonus, stride, scale, parts):
    """The strided sample of `_income_sample` (stride > 1), its values read by the threads."""
    m = (pay.size + stride - 1) // stride
    sample = np.empty(m, dtype=np.float32)
    for c in prange(parts):
        for i in _part(m, c, parts):
            sample[i] = pay[i * stride] * scale + bonus[i * stride]
    return sample


_WARMING: list[threading.Thread] = []  # warm_in_background's thread, while it may still run
_WARM_LOCK = threading.Lock()
_WARMED = False


def warm_in_background() -> None:
    """Start loading every kernel (warm) on a second thread, once per process: a large model's
    construction calls it as it chooses these passes (sim.passes.select, from COMPILED_FROM agents), and
    goes on building its workforce with numpy meanwhile. A small one does not: built in milliseconds,
    it would wait for every kernel, where it loads only those it calls, as it calls them. In a
    fresh process numba loads each kernel from its cache on first use, about 0.25 s in all, most of it
    in the first months; on the second core it overlaps the construction (benchmarks/README.md, (d)).
    Loading takes numba's compiler lock, so a kernel the construction calls first is loaded by whichever
    thread gets there first, and the other waits for it; a failure here is left to the first use, as
    without this thread."""
    with _WARM_LOCK:
        if _WARMED or _WARMING:
            return
        thread = threading.Thread(target=_warm_quietly, name="skillsim-kernel-loading", daemon=True)
        thread.start()  # before it is listed: warmed() on another thread never joins an unstarted thread
        _WARMING.append(thread)


def _warm_quietly() -> None:
    try:
        warm()
    except BaseException:  # noqa: BLE001 - each kernel still loads (and reports) on its first use
        pass


def warmed() -> None:
    """Wait for warm_in_background's thread: a model's construction ends with it, and a fork waits for
    it, so no process forks while this thread holds numba's compiler lock (a child would inherit it held)."""
    for thread in list(_WARMING):
        if thread is not threading.current_thread():
            thread.join()


os.register_at_fork(before=warmed)


def cached(unknown: bool = True) -> bool:
    """Whether numba's cache holds code for this source of every kernel that is not inlined (the
    private ones too: most public names are Python wrappers of one, `depart` of `_depart`), compiled
    for this machine's CPU (numba keys each entry by the CPU's name and features: a cache shared by a
    cluster's nodes through a home folder may hold another node's code only), read from each one's cache
    index as numba reads it on loading (an index written for other source counts as none). If not, the
    first use compiles: 30-80 s. `unknown`: the answer when numba's private cache API has moved (True:
    the caller then loads or compiles as it would have)."""
    try:
        from numba.core.registry import CPUDispatcher, cpu_target

        magic = cpu_target.target_context.codegen().magic_tuple()
        return all(any(key[1] == magic for key in obj._cache._cache_file._load_index())
                   for obj in list(globals().values())
                   if isinstance(obj, CPUDispatcher) and obj.targetoptions.get("inline") != "always")
    except Exception:  # noqa: BLE001 - numba's private cache API moved
        return unknown


def warm() -> None:
    """Compile (or load from the cache) every kernel on tiny arrays, so that a run or a sweep's
    workers never compile in the middle of the work. `.ci/run` calls it after installing. The passes
    of the steps come first and those a workforce's construction calls first (shuffle, retirement ages,
    firm draws) last: on warm_in_background's thread, the construction loads those itself meanwhile."""
    global _WARMED
    if not _WARMED and not cached(unknown=True):  # 2-3 ms to ask; a run would otherwise go quiet for a minute
        import logging

        logging.getLogger("skillsim").warning(
            "compiling the model's per-worker passes for this machine (once; about 30-80 s): later runs load "
            "them from numba's cache in a fraction of a second")
    i8, i16, f32 = np.zeros(4, np.int8), np.zeros(4, np.int16), np.zeros(4, np.float32)
    idx = np.arange(2, dtype=np.int64)
    age_and_retire(i16.copy(), i16 + 1, np.empty(4, np.int64))
    learn(f32.copy(), f32, i16.copy(), 1)
    tables = (np.zeros(8, np.float32), np.float32(1.5), np.ones(8, np.float32), np.ones(4, np.float32),
              np.zeros(8, np.float32))
    refresh(idx, i8, i16, f32, np.zeros(4, np.int32), f32, f32.copy(), f32.copy(), *tables)
    ledger_add(idx, i8, f32, f32, np.zeros(8), np.zeros(8), 1.0)
    refresh_all(i8, i16, f32, np.zeros(4, np.int32), f32, f32.copy(), f32.copy(), *tables)
    ledger_add_all(i8, f32, f32, np.zeros(8), np.zeros(8), 1.0)
    cand = eligible(f32, i8, i16, i16, np.zeros(5, np.int16), 5, np.empty(4, np.int64))
    eligible_odds(f32, i8, i16, i16, i16, np.zeros(5, np.int16), 5, f32, np.float32(0.5), f32,
                  np.empty(4, np.int64), np.empty(4, np.float32), 1)
    keep_below(idx, f32[:2], f32[:2])
    promote(idx, i8.copy(), i16.copy(), f32.copy(), i16.copy(), f32, i16, f32, np.zeros(4, np.int32), f32,
            f32.copy(), f32.copy(), np.zeros(8), np.zeros(8), *tables, 1)
    relocate(idx, np.zeros(2, np.int32), i8, f32, i16.copy(), f32, np.zeros(4, np.int32), f32, f32.copy(),
             f32.copy(), np.zeros(8), np.zeros(8), *tables, 1)
    b1, i32 = np.zeros(2, np.bool_), np.zeros(4, np.int32)
    enter(idx, i8[:2], b1, i16[:2], i16[:2], i32[:2], f32[:2], f32[:2], np.float32(1.0),
          i8.copy(), b1.repeat(2), i16.copy(), i16.copy(), i32, f32.copy(), f32.copy(), i16.copy(), f32.copy(),
          i16.copy(), i16.copy(), i16.copy(), f32.copy(), f32.copy(), f32.copy(), f32.copy(), np.zeros(8), np.zeros(8),
          *tables, 1)
    accept_levels(cand, i8, 1, 4, f32, True)
    accept_training(idx, i8, 4, 0, f32, np.zeros(4, np.int32), f32, np.float32(1.0), True)
    accept_studio(idx, i8, 2, 4, i16)
    studio_roster(i16, i8, 5, 36, 2, 4, np.empty(4, np.int64), np.empty(4, np.int64), 1)
    train(idx, f32.copy(), i16.copy(), np.float32(0.1), np.int16(6), np.int16(24))
    fast_track(np.random.default_rng(0), idx, f32, i8, 4, 0.5)
    union_sorted(idx, idx)
    minus_sorted(idx, idx)
    firm_payroll(np.zeros(4, np.int32), f32, f32, 2)
    _skip_sample_at(generator_addresses(np.random.default_rng(0)), 100, 0.05)
    split_separations(idx, f32[:2], i8, f32, np.float32(0.5))
    from .workforce import FIELDS

    compact(idx, 1, 4, tuple(np.zeros(4, dt) for dt in FIELDS.values()))
    hazard = np.full(8, 0.1, np.float32)
    hazard.flags.writeable = False  # the model's is shared, read-only (sim.demography.separation_hazard)
    depart(np.random.default_rng(0), i16.copy(), i16 + 1, np.empty(4, np.int64), i8, hazard,
           0.1, np.float32(0.5), np.ones(3, np.float32), np.arange(3, dtype=np.int32), f32, i16.copy(), f32,
           np.zeros(4, np.int32), f32, f32.copy(), f32.copy(), np.zeros(8), np.zeros(8), *tables, 1)
    table = (np.ones(3, np.float32), np.arange(3, dtype=np.int32))
    entrant_draws(np.random.default_rng(0), 2, 0.5, 22.0, 5.0, 192, 480, *table, 0.1, 0.1, 0.8, 0.5, 0.3)
    bracketed(f32, np.zeros(2), np.ones(2))
    bracketed(f32, np.ones(2), np.ones(2) * 2)
    bracketed(np.zeros(4), np.zeros(2), np.ones(2))
    for x in (f32, np.zeros(4)):
        select_ranks(x, np.zeros(2, np.int64), np.zeros(2, np.int64), x[:2], np.array([0, 1, 2]))
    for lo in (np.zeros(0), np.ones(2), np.zeros(2)):
        income_pass(f32, f32, 1, np.float32(12.0), np.float32(1.0), lo, lo + 1)
    from .metrics import GUESS_WINDOWS, QUANTILES
    from .sampling import SAMPLER

    income_quantiles(f32, f32, 1, np.float32(12.0), np.float32(1.0), np.ones(3), GUESS_WINDOWS, QUANTILES, 1)

    train_places(np.random.default_rng(0), np.array([1.5, 0.5]), 4, SAMPLER, i8, 4, f32.copy(), 0, i32,
                 np.ones(1, np.float32), np.float32(1.0), i16, i16.copy(), np.float32(0.1), np.int16(6),
                 np.int16(24))
    compete(np.random.default_rng(0), idx, f32.copy(), f32[:2], 0.5, np.float32(0.03))
    for kind in (ACCEPT_LEVELS, ACCEPT_TRAINING, ACCEPT_STUDIO):
        sample_distinct(np.random.default_rng(0), 4, 2, 4096, 256, 16, 2.0, 8, kind, i8, 0, 3, f32, True, 1, i32,
                        np.ones(1, np.float32), np.float32(1.0), i16)
    retirement_age(np.zeros(2, np.bool_), np.zeros(2, np.int64), 0, 600, 720, 2, 4, 60, 36)
    ages_from_normals(f32, i8, f32, np.float32(120.0), i16.copy())
    settle_ages(np.random.default_rng(0), i8, np.zeros(4, np.bool_), i16 + 300, i16.copy(), 600, f32,
                np.float32(120.0), 192, 200, 0, 600, 720, 2, 4, 60, 36)
    tenure_and_progress(f32, f32, i8, i16, f32, f32, f32, np.float32(2 / 3), np.float32(1.0), 192, i16.copy(),
                        f32.copy())
    firm_draws(np.random.default_rng(0), 2, *table)
    shuffle(np.random.default_rng(0), i8.copy())
    _WARMED = True


if __name__ == "__main__":
    warm()
