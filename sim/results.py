"""Run folders: written whole or not at all.

A run is computed first, then its files are written into a hidden temporary folder beside the
target and renamed into place in one step. A crash or an interrupt leaves no half-written result
folder under the target's name. `manifest.json` holds what is needed to reproduce the run and a
checksum and size of every other file; `COMPLETE` is written last, marks a finished run and holds
the checksum of `manifest.json`. `skillsim-verify` (sim.verify) re-checks them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .config import RunConfig, to_dict
from .errors import OutputError, environment_fault
from .ladder import N_LEVELS
from .metrics import SPEND_ACCOUNTS
from .streams import replicate_seed

COMPLETE_MARKER = "COMPLETE"
PACKAGES = ("numpy", "scipy", "pandas", "mesa", "hydra-core", "omegaconf", "pyarrow", "skillsim")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str:
    """Commit of the skillsim source tree, with '-dirty' if it has uncommitted changes."""
    src = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src,
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def complete_text(manifest: Path) -> str:
    """Content of COMPLETE: 'ok' and the manifest's own checksum (the manifest lists every other file)."""
    return f"ok\nmanifest.json sha256 {sha256(manifest)}\n"


def summarise(series: pd.DataFrame, cfg: RunConfig) -> dict:
    """Target-year figures: December stocks, the year's mean income and flows, and cumulative spend."""
    year = str(cfg.horizon.end_year)
    in_year = series[series["date"].str.startswith(year)]
    last = series.iloc[-1]
    stocks = ["workers", "skilled_workers", "high_skill_workers", "high_skill_share", "high_skill_share_workforce"]
    stocks += [f"level_{k}" for k in range(N_LEVELS)]
    incomes = ["income_mean", "income_median", "income_p10", "income_p90", "middle_income_share"]
    flows = ["promotions_certification", "promotions_competition", "promotions_studio", "promotions_appointment",
             "entries", "exits"]
    spend_cols = [f"spend_{lv}_{fu}" for lv, fu in SPEND_ACCOUNTS]
    first = series.iloc[0]
    if cfg.draw is None:
        what = ("one run at the central parameter set (sim/data/calibration.yaml) and the central structural "
                "inputs: no parameter or structural uncertainty; run skillsim-forecast for bands that carry them")
    else:
        what = (f"one run at joint draw {cfg.draw} of the calibration ensemble and the structural ranges; "
                f"aggregate a sweep over draw for bands")
    return {
        "target_year": cfg.horizon.end_year,
        "uncertainty": what,
        "start": {"date": first["date"], "high_skill_share": float(first["high_skill_share"]),
                  "workers": float(first["workers"]), "income_mean": float(first["income_mean"])},
        "at_end": {"date": last["date"], **{c: float(last[c]) for c in stocks}},
        "target_year_mean": {c: float(in_year[c].mean()) for c in incomes},
        "target_year_flows": {c: float(in_year[c].sum()) for c in flows},
        "spend_cumulative": {c.removeprefix("spend_"): float(series[c].sum()) for c in spend_cols + ["spend_total"]},
        "spend_target_year": {c.removeprefix("spend_"): float(in_year[c].sum()) for c in spend_cols + ["spend_total"]},
    }


def _json(obj) -> str:
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        raise TypeError(f"not JSON serialisable: {type(o)}")

    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False, default=default) + "\n"


def prepare_target(run_dir: Path) -> None:
    """Refuse to write over a folder that holds anything; remove an empty one (made by Hydra).

    Removing it means an interrupted run leaves nothing under the target name.
    """
    if run_dir.exists():
        if not run_dir.is_dir() or any(run_dir.iterdir()):
            raise OutputError(f"run folder {run_dir} already exists and is not empty; choose another hydra.run.dir")
        run_dir.rmdir()


def write_run(run_dir: Path, cfg: RunConfig, series: pd.DataFrame, *, composed: dict | None = None,
              overrides: list[str] | None = None, started: datetime | None = None,
              extra: dict | None = None) -> Path:
    """Write a finished run to `run_dir` atomically; returns the final path.

    An OSError of the machine (no space left, permission denied, read-only, a folder that vanished)
    becomes an OutputError naming `run_dir` and the OS error; the temporary folder is removed first,
    so nothing half-written is left and a finished folder already at `run_dir` is not touched.
    """
    run_dir = Path(run_dir)
    tmp = run_dir.parent / f".{run_dir.name}.partial-{os.getpid()}"
    try:
        _write_run(run_dir, tmp, cfg, series, composed=composed, overrides=overrides, started=started,
                   extra=extra)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise environment_fault(exc, run_dir) from None
    return run_dir


def _write_run(run_dir: Path, tmp: Path, cfg: RunConfig, series: pd.DataFrame, *, composed, overrides,
               started, extra) -> None:
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        series.to_csv(tmp / "series.csv", index=False)
        try:
            import pyarrow  # noqa: F401

            series.to_parquet(tmp / "series.parquet", index=False)
        except ImportError:
            pass
        config_dict = composed if composed is not None else to_dict(cfg)
        (tmp / "config.yaml").write_text(yaml.safe_dump(config_dict, sort_keys=False, allow_unicode=True),
                                         encoding="utf-8")
        reproduce = {
            "seed": cfg.seed,
            "replicate": cfg.replicate,
            "run_seed": replicate_seed(cfg.seed, cfg.replicate),
            "versions": package_versions(),
            "git_commit": git_commit(),
        }
        summary = {**summarise(series, cfg), "config": to_dict(cfg), "manifest": reproduce}
        (tmp / "summary.json").write_text(_json(summary), encoding="utf-8")
        files = sorted(p for p in tmp.iterdir() if p.is_file())
        manifest = {
            **reproduce,
            "region": cfg.region.name,
            "scenario": cfg.scenario,
            "n_agents": cfg.n_agents,
            "weight": cfg.weight,
            "command": [Path(sys.argv[0]).name] + sys.argv[1:],
            "overrides": list(overrides or []),
            **(extra or {}),
            "started": (started or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "platform": platform.platform(),
            "files": {p.name: sha256(p) for p in files},
            "sizes": {p.name: p.stat().st_size for p in files},  # tells a truncated file from a changed one
        }
        (tmp / "manifest.json").write_text(_json(manifest), encoding="utf-8")
        # COMPLETE protects the manifest itself: skillsim-verify (sim.verify) checks both.
        (tmp / COMPLETE_MARKER).write_text(complete_text(tmp / "manifest.json"), encoding="utf-8")
        for p in tmp.iterdir():  # flush to disk before the rename makes the folder visible
            with p.open("rb") as fh:
                os.fsync(fh.fileno())
        _rename_into_place(tmp, run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _rename_into_place(tmp: Path, run_dir: Path) -> None:
    """rename(2) replaces an empty folder (one Hydra made) in one step, and refuses a non-empty one."""
    try:
        os.rename(tmp, run_dir)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise OutputError(f"run folder {run_dir} already exists and is not empty; "
                              "choose another hydra.run.dir") from None
        raise
