"""Performance benchmarks of sim.model.WorkforceModel: `python benchmarks/run.py`.

Measures (see benchmarks/README.md):
  (a) full scale: Chongqing, 5.7 million agents at weight 1, monthly 2025-01 .. 2035-12, all three
      levers, data collection included: wall time (construction + all steps + collection),
      agent-steps per second, peak resident memory, and where the step time goes by phase;
  (b) scaling: agent-steps per second at 10k, 100k, 1M and 5.7M agents;
  (c) naive reference: a one-object-per-worker Mesa model (benchmarks/naive_mesa.py) at 20k and 100k
      agents, and the ratio of the model's agent-steps per second to it, measured in the same run;
  (d) baseline: the same cases run from a checkout of an earlier commit (`--baseline REF`, default
      the commit before the compiled kernels), in the same benchmark run, as ratios; at full scale,
      the median of D_PAIRS pairs of fresh processes run back to back;
  (e) start-up: `skillsim` with no arguments, wall time against the model's own time (the run's
      logged seconds), with the compiled-kernel and composition caches cold (fresh NUMBA_CACHE_DIR and
      SKILLSIM_CACHE_DIR) and warm;
  and the agreement check: the full-scale run's high-skill share and mean income at each December
  against the mean and standard deviation of several 100k-agent weighted runs.

Every case runs in a fresh process (benchmarks/cases.py), so peak memory is per case. Prints plain
tables and writes JSON (default benchmarks/out/results.json).

Flags: --quick (no 5.7M case: scaling to 1M, agreement 1M vs 100k, naive over one year),
       --skip-naive, --seeds K (100k runs in the agreement check, default 8),
       --profile (also a cProfile run of the largest case; writes a .pstats file next to the JSON),
       --blas-threads N (set OPENBLAS/OMP/MKL_NUM_THREADS in the cases), --out PATH,
       --baseline REF (default BASELINE; `none` to skip (d)).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = HERE / "cases.py"
MARK = "BENCH_RESULT "

FULL_N = 5_700_000
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
CHILD_ENV: dict | None = None  # None: the children inherit this environment unchanged
#: source trees whose bytecode has been written (`installed_bytecode`)
_COMPILED: set[Path] = set()


def installed_bytecode(root: Path) -> None:
    """Write the bytecode of `root`'s package (sim, hydra_plugins) into its __pycache__ folders, once,
    untimed, as `pip install` does for an installed package. A machine with PYTHONDONTWRITEBYTECODE=1
    (this one's image sets it) never writes it, so every case would compile the package's 20,000
    lines from source, 45-50 ms of each `skillsim` start that no installed copy pays; the children
    also run without that variable (`child_env`)."""
    root = root.resolve()
    if root in _COMPILED:
        return
    folders = [str(root / name) for name in ("sim", "hydra_plugins") if (root / name).is_dir()]
    proc = subprocess.run([sys.executable, "-m", "compileall", "-q", *folders], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"could not write the bytecode of {root} (compileall exit {proc.returncode})")
    _COMPILED.add(root)


def child_env() -> dict:
    """The environment of a case: CHILD_ENV (or this one) without PYTHONDONTWRITEBYTECODE."""
    env = dict(CHILD_ENV or os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


#: issue 12's baseline: main before the compiled kernels (sim/kernels.py)
BASELINE = "e9a17b6"
TARGETS = {"wall_s": 15.0, "wall_s_stretch": 6.0, "peak_rss_mb": 1000.0, "naive_ratio_at_100k": 300.0,
           "naive_ratio_stretch": 1000.0, "speedup_vs_baseline_full_scale": 2.5,
           "cost_ratio_10k_vs_1m": 3.0, "startup_wall_over_model": 1.5, "agreement_max_z": 3.0}
#: where run_case runs a case: None (this checkout) or the baseline's worktree
CASE_ROOT: Path | None = None


# ------------------------------------------------------------------------------------------
# running cases
# ------------------------------------------------------------------------------------------

#: cases of this many agents or more start right after `settle_memory`
SETTLE_FROM = 1_000_000
SETTLE_BYTES = 1_200_000_000  # more than the largest case's peak (about 660 MB here, the baseline's 610 MB)


def settle_memory() -> None:
    """Touch SETTLE_BYTES in a throwaway process, untimed, so that the next case finds the machine's
    memory as a case run right after another finds it. On this VM memory left free for a few seconds
    goes back to the host, and touching it again cost about 2.2 s a GB against 0.08 s a GB just after
    another process freed it (np.ones of 500 MB after 20 s idle: 1.11 s; right after: 0.04 s). A
    full-scale run touches 450-650 MB, so without this its time depended on the case before it: the
    first of the (d) pairs, after the baseline's 1M case, built in 1.1 s against 0.5 s (benchmarks/
    README.md, twenty-ninth step). Both sides of every comparison get the same treatment."""
    subprocess.run([sys.executable, "-c", f"import numpy as np; np.ones({SETTLE_BYTES}, np.uint8)"],
                   capture_output=True, env=child_env())


def run_case(spec: dict, label: str, root: Path | None = None) -> dict:
    """Run one case in a fresh interpreter and return its result dict. `root`: a checkout of another
    commit (its `sim` first on the path and its own benchmarks/cases.py). A case of SETTLE_FROM agents
    or more starts right after `settle_memory`."""
    where = root or ROOT
    installed_bytecode(where)  # before the clock: its first case would otherwise count compileall
    if int(spec.get("n", 0)) >= SETTLE_FROM:
        settle_memory()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    t0 = time.perf_counter()
    env = child_env()
    if root is not None:
        env["PYTHONPATH"] = str(root)
    proc = subprocess.run([sys.executable, str(where / "benchmarks" / "cases.py"), json.dumps(spec)], cwd=where,
                          capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"benchmark case failed: {label} (exit {proc.returncode})")
    res = json.loads(lines[-1][len(MARK):])
    res["process_s"] = elapsed
    res["loadavg_before"] = load
    info = f"{res.get('wall_s', res.get('steps_s_under_profiler', 0)):.2f} s"
    if res.get("steps_cpu_s"):
        info += f", cpu/wall {res['steps_cpu_s'] / res['steps_s']:.2f}"
    if "peak_rss_mb" in res:
        info += f", peak RSS {res['peak_rss_mb']:.0f} MB"
    print(f"  done: {label:<34} {info}", file=sys.stderr, flush=True)
    return res


#: models run one after another in each warm process of (b'), by size: the median is its steady cost
WARM_RUNS = {10_000: 7, 100_000: 3, 1_000_000: 2}


def model_spec(n: int, end_year: int = 2035, **kw) -> dict:
    return {"kind": "model", "n": n, "start_year": 2025, "end_year": end_year, **kw}


def median_case(results: list[dict]) -> dict:
    """The repeat with the median steps time (all repeats' times are kept in it)."""
    ordered = sorted(results, key=lambda r: r["steps_s"])
    pick = dict(ordered[len(ordered) // 2])
    pick["repeats_steps_s"] = [r["steps_s"] for r in results]
    pick["repeats_build_s"] = [r["build_s"] for r in results]
    return pick


def baseline_checkout(ref: str) -> Path:
    """A detached worktree of `ref` in a temporary folder (removed by `drop_checkout`), its compiled
    kernels (if it has them) compiled before anything is timed: numba's cache is keyed by the source
    file's path, so a fresh worktree would otherwise compile them (about 30 s) inside the first timed
    command, as the current checkout, whose cache is warm, does not."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="skillsim-baseline-")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=ROOT, check=True,
                   capture_output=True, text=True)
    if (path / "sim" / "kernels.py").exists():
        subprocess.run([sys.executable, "-m", "sim.kernels"], cwd=path, check=True, capture_output=True,
                       env=dict(os.environ, PYTHONPATH=str(path)))
    return path


def drop_checkout(path: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True, text=True)


#: composition cache of the warm start-up cases (sim.compose_cache): filled by an untimed first run
WARM_CACHE: Path | None = None


def startup_case(label: str, root: Path | None = None, cold: bool = False, timed: bool = True,
                 history: bool = False, args: tuple[str, ...] = ()) -> dict:
    """`skillsim` with no arguments in an empty folder, as a user types it: wall time of the whole
    command, and the model's own time as the run logs it (build with its history, steps, writing the
    folder). `cold`: with an empty compiled-kernel cache (NUMBA_CACHE_DIR in a fresh folder) and an
    empty composition cache (SKILLSIM_CACHE_DIR), as on the first run after install; warm: both caches
    filled by an earlier run. `history`: the history kept on disk by an earlier run is restored
    (sim.history_reuse; otherwise that layer is off, so that the model's time is comparable). `args`:
    overrides (the no-argument run's composition ships with the package; any other is composed by Hydra
    on its first run)."""
    import re
    import shutil
    import tempfile

    global WARM_CACHE
    tmp = Path(tempfile.mkdtemp(prefix="skillsim-startup-"))
    installed_bytecode(root or ROOT)
    env = child_env()
    env.pop("SKILLSIM_KERNELS", None)  # as a user runs it: the passes chosen by size
    env["SKILLSIM_HISTORY_DISK_MB"] = "" if history else "0"
    if root is not None:
        env["PYTHONPATH"] = str(root)
    if cold:
        env["NUMBA_CACHE_DIR"] = str(tmp / "numba-cache")
        env["SKILLSIM_CACHE_DIR"] = str(tmp / "skillsim-cache")
    else:
        if WARM_CACHE is None:
            WARM_CACHE = Path(tempfile.mkdtemp(prefix="skillsim-startup-cache-"))
        env["SKILLSIM_CACHE_DIR"] = str(WARM_CACHE / (root.name if root is not None else "this"))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sim", *args], cwd=tmp, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    shutil.rmtree(tmp, ignore_errors=True)
    found = re.search(r"; ([0-9.]+) s; wrote", proc.stderr + proc.stdout)
    if proc.returncode != 0 or not found:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"start-up case failed: {label}")
    res = {"wall_s": wall, "model_s": float(found.group(1)), "cold": cold}
    res["wall_over_model"] = wall / res["model_s"]
    print(f"  done: {label:<34} {wall:.2f} s wall, model {res['model_s']:.1f} s", file=sys.stderr, flush=True)
    return res


# ------------------------------------------------------------------------------------------
# analysis
# ------------------------------------------------------------------------------------------

def default_seed() -> int:
    """The schema's default seed: given on the command line, it changes the overrides, not the model."""
    from sim.config import RunConfig

    return RunConfig().seed


def median_startup(results: list[dict]) -> dict:
    ordered = sorted(results, key=lambda r: r["wall_s"])
    pick = dict(ordered[len(ordered) // 2])
    pick["repeats_wall_s"] = [r["wall_s"] for r in results]
    return pick


#: fresh processes of this checkout and the baseline at full scale, back to back, for (d): the machine's
#: speed drifts by 10-15% over minutes, so (a), run minutes before the baseline's case, is no pair
D_PAIRS = 3


def full_scale_pairs(base: Path) -> list[tuple[dict, dict]]:
    """D_PAIRS pairs (this, baseline) of full-scale runs, each pair back to back, who goes first
    alternating."""
    pairs = []
    for i in range(D_PAIRS):
        got = {}
        for side in (("this", "base") if i % 2 == 0 else ("base", "this")):
            got[side] = run_case(model_spec(FULL_N), f"{'baseline' if side == 'base' else 'model'} "
                                 f"{fmt_n(FULL_N)} for (d), pair {i + 1}", root=base if side == "base" else None)
        pairs.append((got["this"], got["base"]))
    return pairs


def pair_ratios(this: dict, base: dict) -> dict:
    return {"wall_ratio": (base["build_s"] + base["steps_s"]) / (this["build_s"] + this["steps_s"]),
            "steps_ratio": base["steps_s"] / this["steps_s"], "this_wall_s": this["build_s"] + this["steps_s"],
            "baseline_wall_s": base["build_s"] + base["steps_s"]}


def median_pair(pairs: list[tuple[dict, dict]]) -> int:
    """Index of the pair with the median wall ratio."""
    ratios = [pair_ratios(t, b)["wall_ratio"] for t, b in pairs]
    return sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]


def baseline_ratios(points: list[dict], bpoints: list[dict]) -> list[dict]:
    """Per size: baseline time / this checkout's time, for the steps and for the wall (build + steps)."""
    by_n = {p["n"]: p for p in points}
    rows = []
    for b in bpoints:
        p = by_n.get(b["n"])
        if p:
            rows.append({"n": b["n"], "steps_ratio": b["steps_s"] / p["steps_s"],
                         "wall_ratio": (b["build_s"] + b["steps_s"]) / (p["build_s"] + p["steps_s"]),
                         "build_ratio": b["build_s"] / p["build_s"],
                         "peak_rss_mb": p["peak_rss_mb"], "baseline_peak_rss_mb": b["peak_rss_mb"]})
    return rows


def scaling_fit(points: list[dict]) -> dict:
    """Log-log slope of steps time against agents, overall (least squares) and per segment."""
    pts = sorted(points, key=lambda p: p["n"])
    xs = [math.log(p["n"]) for p in pts]
    ys = [math.log(p["steps_s"] / p["months"]) for p in pts]
    out = {"segments": []}
    if len(pts) >= 2:
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        out["slope_all"] = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        for a, b, xa, xb, ya, yb in zip(pts, pts[1:], xs, xs[1:], ys, ys[1:]):
            out["segments"].append({"from": a["n"], "to": b["n"], "slope": (yb - ya) / (xb - xa)})
        last = out["segments"][-1]["slope"]
        out["slope_last_segment"] = last
        a, b = pts[-2], pts[-1]
        out["cost_per_agent_step_ratio_last"] = (b["steps_s"] / b["agent_steps"]) / (a["steps_s"] / a["agent_steps"])
        # Linear (or better) if the largest segment's slope is at most 1.1: the cost per agent-step does
        # not rise with size. Below 1 means fixed per-step overhead is still being amortised.
        out["linear"] = last <= 1.1
    return out


def cost_ratio_small_large(points: list[dict]) -> float:
    """Cost per agent-step at 10k over that at 1M (issue 12: at most 3)."""
    cost = {p["n"]: p["steps_s"] / p["agent_steps"] for p in points}
    return cost[10_000] / cost[1_000_000]


def agreement(large: dict, smalls: list[dict]) -> dict:
    """Compare the large run's December values to the small runs' mean, in units of their sd."""
    rows = []
    for date, vals in sorted(large["series"].items()):
        for metric in ("high_skill_share", "income_mean"):
            xs = [s["series"][date][metric] for s in smalls if date in s["series"]]
            if len(xs) < 2:
                continue
            mean, sd = statistics.fmean(xs), statistics.stdev(xs)
            diff = vals[metric] - mean
            z = abs(diff) / sd if sd > 0 else (0.0 if diff == 0 else math.inf)
            rows.append({"date": date, "metric": metric, "large": vals[metric], "small_mean": mean,
                         "small_sd": sd, "diff": diff, "z": z})
    max_z = {m: max((r["z"] for r in rows if r["metric"] == m), default=float("nan"))
             for m in ("high_skill_share", "income_mean")}
    overall = max(max_z.values()) if rows else float("nan")
    return {"large_n": large["n"], "small_n": smalls[0]["n"] if smalls else None, "seeds": len(smalls),
            "small_seeds": [s["seed"] for s in smalls], "large_seed": large["seed"],
            "rows": rows, "max_z": max_z, "max_z_overall": overall,
            "threshold": TARGETS["agreement_max_z"], "pass": bool(overall < TARGETS["agreement_max_z"])}


# ------------------------------------------------------------------------------------------
# machine info
# ------------------------------------------------------------------------------------------

def _cmd(args: list[str]) -> str:
    try:
        return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def source_digest() -> str:
    """Digest of the model's source (sim/**/*.py): tells whether it changed while the benchmark ran."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((ROOT / "sim").rglob("*.py")):
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def machine_info() -> dict:
    cpu_model, mem_total = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_total = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    versions = {}
    for pkg in ("numpy", "mesa", "pandas", "skillsim"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    status = _cmd(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model, "memory": mem_total, "platform": platform.platform(),
        "python": platform.python_version(), "python_executable": sys.executable, "versions": versions,
        "git_commit": _cmd(["git", "rev-parse", "HEAD"]), "git_dirty": bool(status),
        "git_dirty_files": status.splitlines()[:20],
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "blas_env": {k: (CHILD_ENV or os.environ).get(k) for k in BLAS_VARS if (CHILD_ENV or os.environ).get(k)},
    }


# ------------------------------------------------------------------------------------------
# printing
# ------------------------------------------------------------------------------------------

def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] + [fmt(r) for r in cells[1:]])


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def fmt_n(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def report(res: dict) -> str:
    out = []
    m = res["meta"]
    out.append(f"skillsim benchmarks  {m['date']}  commit {m['machine']['git_commit'][:10]}"
               f"{' (dirty)' if m['machine']['git_dirty'] else ''}  {m['machine']['cpu_count']} cpus  "
               f"python {m['machine']['python']}  numpy {m['machine']['versions'].get('numpy')}  "
               f"mesa {m['machine']['versions'].get('mesa')}{'  [QUICK]' if m['quick'] else ''}")
    if m.get("sim_source_changed_during_run"):
        out.append("WARNING: sim/ changed while the benchmark ran; cases may have measured different code")
    blas = {k: v for k, v in m["machine"]["blas_env"].items() if v is not None}
    out.append(f"per-worker passes in the model cases: SKILLSIM_KERNELS={m.get('kernels', 'auto')} "
               "(the baseline has none); start-up (e) as a user runs it")
    out.append(f"load average at start {m['machine']['loadavg_start'][0]:.2f}, at end {m['loadavg_end'][0]:.2f}; "
               f"BLAS threads: {blas or 'library default'}")
    fs = res.get("full_scale")
    if fs:
        t = TARGETS
        out.append("\n(a) Full scale: Chongqing, 5.7M agents (weight 1), 2025-01..2035-12, 3 levers, collection on")
        out.append(table(["measure", "value", "target", "status"], [
            ["construction", f"{fs['build_s']:.2f} s", "", ""],
            ["steps (132 months, incl. collection)", f"{fs['steps_s']:.2f} s", "", ""],
            ["wall time (construction + steps)", f"{fs['wall_s']:.2f} s",
             f"<= {t['wall_s']:g} s (stretch {t['wall_s_stretch']:g})",
             mark(fs["wall_s"] <= t["wall_s"]) + (", stretch met" if fs["wall_s"] <= t["wall_s_stretch"] else "")],
            ["agent-steps per second", f"{fs['agent_steps_per_s'] / 1e6:.1f} M/s", "", ""],
            ["  cpu time / wall time of the steps", f"{fs.get('steps_cpu_s', float('nan')) / fs['steps_s']:.2f}",
             "", "(< 1: the machine was busy)"],
            ["mean / median / max step", f"{fs['step_ms']['mean']:.0f} / {fs['step_ms']['median']:.0f} / "
                                         f"{fs['step_ms']['max']:.0f} ms", "", ""],
            ["peak RSS", f"{fs['peak_rss_mb']:.0f} MB", f"<= {t['peak_rss_mb']:g} MB",
             mark(fs["peak_rss_mb"] <= t["peak_rss_mb"])],
            ["  RSS after imports / after build", f"{fs['rss_after_import_mb']:.0f} / {fs['rss_after_build_mb']:.0f} MB",
             "", ""],
        ]))
        total = fs["steps_s"]
        rows = [[k, f"{v['s']:.2f}", f"{100 * v['s'] / total:.1f}%", v["calls"], f"{1e3 * v['s'] / v['calls']:.1f}"]
                for k, v in sorted(fs["phases"].items(), key=lambda kv: -kv[1]["s"])]
        rows.append(["(unattributed)", f"{fs['phases_unattributed_s']:.2f}",
                     f"{100 * fs['phases_unattributed_s'] / total:.1f}%", "", ""])
        out.append("\n    step time by phase at 5.7M agents")
        out.append(table(["phase", "s", "share", "calls", "ms/call"], rows))
        drows = [[k, f"{v['s']:.2f}", f"{100 * v['s'] / total:.1f}%", v["calls"], f"{1e3 * v['s'] / v['calls']:.1f}"]
                 for k, v in sorted(fs["details"].items(), key=lambda kv: -kv[1]["s"])]
        out.append("\n    nested calls (already inside the phases above)")
        out.append(table(["call", "s", "share", "calls", "ms/call"], drows))
    sc = res.get("scaling")
    if sc:
        out.append("\n(b) Scaling (steps only; construction separate), 2025-01..2035-12")
        rows = [[fmt_n(p["n"]), p["months"], f"{p['build_s']:.2f}", f"{p['steps_s']:.2f}",
                 f"{p['agent_steps_per_s'] / 1e6:.1f}", f"{1e9 * p['steps_s'] / p['agent_steps']:.1f}",
                 f"{p['step_ms']['median']:.1f}", f"{p['peak_rss_mb']:.0f}",
                 f"{p.get('steps_cpu_s', float('nan')) / p['steps_s']:.2f}",
                 p.get("note") or (f"median of {len(p['repeats_steps_s'])}" if len(p.get("repeats_steps_s", [])) > 1
                                   else "single run")]
                for p in sc["points"]]
        out.append(table(["agents", "months", "build s", "steps s", "M agent-steps/s", "ns/agent-step",
                          "median step ms", "peak RSS MB", "cpu/wall", "note"], rows))
        f = sc["fit"]
        if "slope_all" in f:
            segs = ", ".join(f"{fmt_n(s['from'])}->{fmt_n(s['to'])}: {s['slope']:.2f}" for s in f["segments"])
            out.append(f"    log-log slope of step time vs agents: {f['slope_all']:.2f} overall; {segs}")
            out.append(f"    cost per agent-step, {fmt_n(sc['points'][-1]['n'])} vs {fmt_n(sc['points'][-2]['n'])}: "
                       f"{f['cost_per_agent_step_ratio_last']:.2f}x; cost grows linearly (last segment slope <= 1.1): "
                       f"{'yes' if f['linear'] else 'NO'}")
    if sc and {10_000, 1_000_000} <= {p["n"] for p in sc["points"]}:
        r = cost_ratio_small_large(sc["points"])
        out.append(f"    cost per agent-step at 10k / at 1M, each in a fresh process: {r:.1f}x "
                   f"(target <= {TARGETS['cost_ratio_10k_vs_1m']:g}x: {mark(r <= TARGETS['cost_ratio_10k_vs_1m'])})")
        out.append("      (not like for like: from 250,000 agents (sim.passes.COMPILED_FROM) the compiled passes load "
                   "during the construction, on a second thread; below, each loads at its first call, in the steps. "
                   "(b') compares the steps with the passes loaded)")
    sw = res.get("scaling_warm")
    if sw:
        out.append("\n(b') Scaling in a warm process (a 2,000-agent year run first: compiled code loaded, as in a "
                   "sweep worker, the calibration, the plan or the explorer; then several models in turn)")
        rows = [[fmt_n(p["n"]), p["months"], f"{p['steps_s']:.3f}", f"{1e9 * p['steps_s'] / p['agent_steps']:.1f}",
                 f"{p['step_ms']['median']:.2f}", f"{p['step_ms']['mean']:.2f}", f"{p['warmup_s']:.2f}",
                 f"{len(p.get('repeats_steps_s', [0]))} x {len(p.get('runs_steps_s', [0]))}"]
                for p in sw["points"]]
        out.append(table(["agents", "months", "steps s", "ns/agent-step", "median step ms", "mean step ms",
                          "warm-up run s", "processes x runs"], rows))
        out.append("    steps s: the median of each process's runs (the median process); step times: its last run")
        r = cost_ratio_small_large(sw["points"])
        out.append(f"    cost per agent-step at 10k / at 1M, warm: {r:.1f}x "
                   f"(target <= {TARGETS['cost_ratio_10k_vs_1m']:g}x: {mark(r <= TARGETS['cost_ratio_10k_vs_1m'])})")
    nv = res.get("naive")
    if nv:
        out.append(f"\n(c) Naive Mesa reference (one Worker object per worker, shuffle_do), "
                   f"{nv['horizon']}, same run")
        rows = []
        for p in nv["points"]:
            rows.append([fmt_n(p["n"]), p["months"], f"{p['model_agent_steps_per_s'] / 1e6:.2f}",
                         f"{p['naive_agent_steps_per_s'] / 1e6:.3f}", f"{p['ratio']:.1f}x",
                         f"{p['naive_build_s']:.2f} / {p['naive_steps_s']:.1f}",
                         f"{p['model_peak_rss_mb']:.0f} / {p['naive_peak_rss_mb']:.0f}",
                         (f">= {TARGETS['naive_ratio_at_100k']:g}x: " + mark(p["ratio"] >= TARGETS["naive_ratio_at_100k"])
                          + (", stretch met" if p["ratio"] >= TARGETS["naive_ratio_stretch"] else ""))
                         if p["n"] == 100_000 else ""])
        out.append(table(["agents", "months", "model M/s", "naive M/s", "ratio", "naive build/steps s",
                          "RSS MB model/naive", "target"], rows))
        warm100k = next((p for p in res.get("scaling_warm", {}).get("points", []) if p["n"] == 100_000), None)
        naive100k = next((p for p in nv["points"] if p["n"] == 100_000), None)
        if warm100k and naive100k and naive100k["months"] == warm100k.get("months"):
            out.append(f"    the same naive figure against the warm 100k model of (b'), the compiled passes loaded "
                       f"(as in a sweep or ensemble worker; not the target's measure): "
                       f"{warm100k['agent_steps_per_s'] / naive100k['naive_agent_steps_per_s']:.1f}x")
        out.append("    sanity (same rules?): last December, model vs naive: " + "; ".join(
            f"{fmt_n(p['n'])}: high-skill {p['model_last']['high_skill_share']:.4f} vs "
            f"{p['naive_last']['high_skill_share']:.4f}, income {p['model_last']['income_mean']:,.0f} vs "
            f"{p['naive_last']['income_mean']:,.0f}" for p in nv["points"]))
    bl = res.get("baseline")
    if bl:
        out.append(f"\n(d) Against the baseline commit {bl['ref']} ({bl['commit'][:10]}), same cases in the same run "
                   "(ratio = baseline time / this time)")
        rows = []
        for r in bl["speedup"]:
            target = ""
            if r["n"] == FULL_N:
                target = (f">= {TARGETS['speedup_vs_baseline_full_scale']:g}x: "
                          + mark(r["wall_ratio"] >= TARGETS["speedup_vs_baseline_full_scale"]))
            rows.append([fmt_n(r["n"]), f"{r['build_ratio']:.2f}x", f"{r['steps_ratio']:.2f}x", f"{r['wall_ratio']:.2f}x",
                         f"{r['peak_rss_mb']:.0f} / {r['baseline_peak_rss_mb']:.0f}", target])
        out.append(table(["agents", "build", "steps", "wall (build + steps)", "peak RSS MB now / baseline", "target"],
                         rows))
        if bl.get("full_scale_pairs"):
            fp = bl["full_scale_pairs"]
            out.append(f"    {fmt_n(FULL_N)}: the median of {len(fp)} pairs of fresh processes run back to back (who "
                       "goes first alternating); each pair's wall ratio (baseline s / this s): "
                       + ", ".join(f"{r['wall_ratio']:.2f}x ({r['baseline_wall_s']:.2f} / {r['this_wall_s']:.2f})"
                                   for r in fp))
    st = res.get("startup")
    if st:
        out.append("\n(e) Start-up: `skillsim` with no arguments (Chongqing, 100k agents, history from 2012-10 to 2035-12)")
        rows = []
        for key, what in (("cold", "this checkout, caches cold (median of 3)"),
                          ("cold_override", "the same with the default seed given, composed by Hydra (median of 3)"),
                          ("warm", "this checkout, warm (median of 3)"),
                          ("warm_history", "this checkout, warm, history restored from disk (median of 3)"),
                          ("baseline_warm", "baseline, warm (median of 3)")):
            if key in st:
                x = st[key]
                lim = TARGETS["startup_wall_over_model"]
                rows.append([what, f"{x['wall_s']:.2f}", f"{x['model_s']:.2f}", f"{x['wall_over_model']:.2f}x",
                             "" if key.startswith("baseline") or key == "cold_override"
                             else f"<= {lim:g}x: {mark(x['wall_over_model'] <= lim)}"])
        out.append(table(["command", "wall s", "model s (logged)", "wall / model", "target"], rows))
    for key, what in (("agreement", "independent seeds (replicates 1..K: agents and firms redrawn)"),
                      ("agreement_same_firms", "replicates 1..K with the large run's firms (agent sampling only)")):
        ag = res.get(key)
        if not ag:
            continue
        out.append(f"\nAgreement: {fmt_n(ag['large_n'])}-agent run (seed {ag['large_seed']}) vs {ag['seeds']} runs of "
                   f"{fmt_n(ag['small_n'])} agents (weighted), {what}; each December, z = |large - mean| / sd")
        rows = []
        by_date = {}
        for r in ag["rows"]:
            by_date.setdefault(r["date"], {})[r["metric"]] = r
        for date, d in sorted(by_date.items()):
            h, y = d["high_skill_share"], d["income_mean"]
            rows.append([date, f"{h['large']:.4f}", f"{h['small_mean']:.4f} ± {h['small_sd']:.4f}", f"{h['z']:.2f}",
                         f"{y['large']:,.0f}", f"{y['small_mean']:,.0f} ± {y['small_sd']:,.0f}", f"{y['z']:.2f}"])
        out.append(table(["December", "high-skill large", "100k mean ± sd", "z", "income large", "100k mean ± sd",
                          "z"], rows))
        out.append(f"    max z: high-skill share {ag['max_z']['high_skill_share']:.2f}, income "
                   f"{ag['max_z']['income_mean']:.2f}  (threshold {ag['threshold']:g}) -> "
                   f"{'PASS' if ag['pass'] else 'FAIL'}")
    pr = res.get("profile")
    if pr:
        out.append(f"\ncProfile of the {fmt_n(pr['n'])} run ({pr['steps_s_under_profiler']:.1f} s under the profiler), "
                   "top functions by own time")
        out.append(table(["function", "calls", "own s", "cum s"],
                         [[r["function"][:90], r["ncalls"], f"{r['tottime_s']:.2f}", f"{r['cumtime_s']:.2f}"]
                          for r in pr["top_tottime"][:20]]))
    return "\n".join(out)


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="reduced run: no 5.7M cases")
    ap.add_argument("--out", default=str(HERE / "out" / "results.json"), help="JSON output path")
    ap.add_argument("--skip-naive", action="store_true", help="skip (c), the naive Mesa reference")
    ap.add_argument("--seeds", type=int, default=None, help="100k runs in the agreement check (default 8; quick 4)")
    ap.add_argument("--profile", action="store_true", help="also profile the largest case with cProfile")
    ap.add_argument("--baseline", default=BASELINE,
                    help=f"commit to compare with in the same run, (d) and (e) (default {BASELINE}; 'none' to skip)")
    ap.add_argument("--kernels", default="compiled", choices=("compiled", "numpy", "auto"),
                    help="SKILLSIM_KERNELS for the model cases (default compiled: the steps' speed; the "
                         "build time then includes loading the compiled code). (e) always uses auto, as a user does")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="set OPENBLAS/OMP/MKL_NUM_THREADS in the cases (default: environment unchanged)")
    args = ap.parse_args(argv)
    global CHILD_ENV
    # every case simulates its history: none restores one kept on disk by an earlier run (sim.history_reuse),
    # except the start-up case that measures that on purpose
    CHILD_ENV = dict(os.environ, SKILLSIM_KERNELS=args.kernels, SKILLSIM_HISTORY_DISK_MB="0")
    if args.blas_threads is not None:
        CHILD_ENV.update({k: str(args.blas_threads) for k in BLAS_VARS})
    quick = args.quick
    seeds = args.seeds or (4 if quick else 8)
    started = time.time()
    digest = source_digest()
    res: dict = {"meta": {"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                          "command": " ".join([Path(sys.executable).name] + sys.argv),
                          "quick": quick, "kernels": args.kernels, "targets": TARGETS,
                          "machine": machine_info()}}
    print("running benchmark cases, one process each:", file=sys.stderr, flush=True)

    # (a) full scale (also the 5.7M scaling point and the large run of the agreement check)
    large_n = 1_000_000 if quick else FULL_N
    large = run_case(model_spec(large_n), f"model {fmt_n(large_n)} (full horizon)")
    if not quick:
        res["full_scale"] = large

    # (b) scaling
    points = []
    for n in (10_000, 100_000, 1_000_000):
        if n == large_n:
            continue
        reps = 3 if n <= 100_000 else 1
        points.append(median_case([run_case(model_spec(n), f"model {fmt_n(n)} (rep {i + 1})") for i in range(reps)]))
    lp = dict(large)
    lp["note"] = "run (a)" if not quick else "single run"
    points.append(lp)
    points.sort(key=lambda p: p["n"])
    res["scaling"] = {"points": [{k: v for k, v in p.items() if k not in ("series", "details")} for p in points],
                      "fit": scaling_fit(points)}
    # the same in a warm process (a model run before the timed one): the per-step cost a sweep worker,
    # the calibration, the plan and the explorer see
    warm = [median_case([run_case(model_spec(n, warm=True, runs=WARM_RUNS[n], replicate=WARM_RUNS[n] * i),
                                  f"model {fmt_n(n)} warm (process {i + 1}, {WARM_RUNS[n]} runs)")
                         for i in range(3 if n <= 100_000 else 1)]) for n in (10_000, 100_000, 1_000_000)]
    res["scaling_warm"] = {"points": [{k: v for k, v in p.items() if k not in ("series", "details")} for p in warm]}

    # agreement: the large run vs several 100k-agent runs (replicates 1..seeds of the default seed)
    smalls = [run_case(model_spec(100_000, phases=False, replicate=r), f"model 100k replicate {r}")
              for r in range(1, seeds + 1)]
    res["agreement"] = agreement(large, smalls)
    # the same with the large run's firms in every 100k run: isolates agent-sampling error
    same_firms = [run_case(model_spec(100_000, phases=False, replicate=r, firms_seed=large["seed"]),
                           f"model 100k replicate {r}, same firms") for r in range(1, seeds + 1)]
    res["agreement_same_firms"] = agreement(large, same_firms)

    # (c) naive reference, interleaved with the model at the same sizes and horizon
    if not args.skip_naive:
        end_year = 2025 if quick else 2035
        nv = []
        for n in (20_000, 100_000):
            mod = run_case(model_spec(n, end_year, seed=1), f"model {fmt_n(n)} for (c)")
            nai = run_case({"kind": "naive", "n": n, "start_year": 2025, "end_year": end_year, "seed": 1},
                           f"naive mesa {fmt_n(n)}")
            last = max(mod["series"])
            nv.append({"n": n, "months": mod["months"],
                       "model_agent_steps_per_s": mod["agent_steps_per_s"], "model_steps_s": mod["steps_s"],
                       "model_build_s": mod["build_s"], "model_peak_rss_mb": mod["peak_rss_mb"],
                       "naive_agent_steps_per_s": nai["agent_steps_per_s"], "naive_steps_s": nai["steps_s"],
                       "naive_build_s": nai["build_s"], "naive_peak_rss_mb": nai["peak_rss_mb"],
                       "ratio": mod["agent_steps_per_s"] / nai["agent_steps_per_s"],
                       "model_last": mod["series"][last], "naive_last": nai["series"].get(last, {}),
                       "naive_promotions": nai["promotions"], "last_december": last})
        res["naive"] = {"horizon": f"2025-01..{end_year}-12", "points": nv,
                        "target_ratio_at_100k": TARGETS["naive_ratio_at_100k"]}

    # (d) the baseline commit, same cases, same run; (e) start-up of the command, here and there
    base = None if args.baseline.lower() == "none" else baseline_checkout(args.baseline)
    try:
        if base is not None:
            bpoints = []
            for n in (10_000, 100_000, 1_000_000):
                reps = 3 if n <= 100_000 else 1
                bpoints.append(median_case([run_case(model_spec(n), f"baseline {fmt_n(n)} (rep {i + 1})", root=base)
                                            for i in range(reps)]))
            pairs = [] if quick else full_scale_pairs(base)
            this_points = points
            if pairs:  # (d)'s full-scale row: the median pair's runs
                this_full, base_full = pairs[median_pair(pairs)]
                this_points = [p for p in points if p["n"] != FULL_N] + [this_full]
                bpoints.append(base_full)
            res["baseline"] = {"ref": args.baseline,
                               "commit": _cmd(["git", "rev-parse", args.baseline]),
                               "points": [{k: v for k, v in p.items() if k not in ("series", "details")}
                                          for p in bpoints],
                               "speedup": baseline_ratios(this_points, bpoints),
                               "full_scale_pairs": [pair_ratios(t, b) for t, b in pairs]}
        # cold: each repeat with caches of its own, emptied (one sample swung by 0.1 s on this machine)
        st = {"cold": median_startup([startup_case(f"skillsim, caches cold (rep {i + 1})", cold=True)
                                      for i in range(3)])}
        # the default's own value given (the same model): a first run composed by Hydra, for comparison
        st["cold_override"] = median_startup([startup_case(f"skillsim seed=..., caches cold (rep {i + 1})", cold=True,
                                                           args=(f"seed={default_seed()}",)) for i in range(3)])
        startup_case("skillsim, filling the caches (untimed)")
        st["warm"] = median_startup([startup_case(f"skillsim, warm (rep {i + 1})") for i in range(3)])
        startup_case("skillsim, keeping the history (untimed)", history=True)
        st["warm_history"] = median_startup([startup_case(f"skillsim, history restored (rep {i + 1})", history=True)
                                             for i in range(3)])
        if base is not None:
            startup_case("baseline skillsim, first run (untimed)", root=base)
            st["baseline_warm"] = median_startup([startup_case(f"baseline skillsim (rep {i + 1})", root=base)
                                                  for i in range(3)])
        res["startup"] = st
    finally:
        if base is not None:
            drop_checkout(base)

    if args.profile:
        out = Path(args.out)
        res["profile"] = run_case({"kind": "profile", "n": large_n, "start_year": 2025, "end_year": 2035,
                                   "pstats": str(out.with_name(out.stem + f"_profile_{fmt_n(large_n)}.pstats")),
                                   "top": 30}, f"cProfile {fmt_n(large_n)}")

    fs = res.get("full_scale")
    res["targets_status"] = {
        "wall_s": None if not fs else fs["wall_s"] <= TARGETS["wall_s"],
        "wall_s_stretch": None if not fs else fs["wall_s"] <= TARGETS["wall_s_stretch"],
        "peak_rss_mb": None if not fs else fs["peak_rss_mb"] <= TARGETS["peak_rss_mb"],
        "naive_ratio_at_100k": next((p["ratio"] >= TARGETS["naive_ratio_at_100k"]
                                     for p in res.get("naive", {}).get("points", []) if p["n"] == 100_000), None),
        "agreement": res["agreement"]["pass"],
        "agreement_same_firms": res["agreement_same_firms"]["pass"],
        "scaling_linear": res["scaling"]["fit"].get("linear"),
        "speedup_vs_baseline_full_scale": next((r["wall_ratio"] >= TARGETS["speedup_vs_baseline_full_scale"]
                                                for r in res.get("baseline", {}).get("speedup", [])
                                                if r["n"] == FULL_N), None),
        "cost_ratio_10k_vs_1m": cost_ratio_small_large(res["scaling"]["points"]) <= TARGETS["cost_ratio_10k_vs_1m"],
        "cost_ratio_10k_vs_1m_warm": cost_ratio_small_large(res["scaling_warm"]["points"])
        <= TARGETS["cost_ratio_10k_vs_1m"],
        # warm_history is how a user's second run goes (the history restored from disk): judged too
        "startup_wall_over_model": all(res["startup"][k]["wall_over_model"] <= TARGETS["startup_wall_over_model"]
                                       for k in ("cold", "warm", "warm_history") if k in res["startup"]),
    }
    res["meta"]["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    res["meta"]["total_s"] = time.time() - started
    res["meta"]["sim_source_digest"] = digest
    res["meta"]["sim_source_changed_during_run"] = source_digest() != digest

    text = report(res)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(res, indent=1, default=float))
    tmp.replace(out)
    out.with_suffix(".txt").write_text(text + "\n")
    print(f"\nwrote {out} and {out.with_suffix('.txt')} ({res['meta']['total_s']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
