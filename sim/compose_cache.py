"""Composed configs of plain single runs, cached on disk: `skillsim` composes once per machine.

Registering the schema with Hydra and composing the config (defaults tree, YAML files, the schema's
checks) costs about 0.2 s of every `skillsim` start, as much as a fifth of a small run. The composed
config depends only on the overrides, the config files, the schema (the package's code) and the
versions of Python, Hydra and OmegaConf, so a plain run (overrides only, no Hydra flags) keeps it in a
cache file named by a hash of all of them and the next run with the same overrides loads it in a few
milliseconds, as numba keeps its compiled kernels. Only `hydra.runtime.cwd` differs from one folder to
the next; it is set again on loading. The values are still checked on every run (sim.cli.
config_from_hydra), before any folder is made. The hydra node is kept untyped, so that loading it does
not import Hydra: a run from the cache runs without it (sim.cli._run_plain), and only compositions that
such a run does in full are kept (sim.cli.plain_runnable).

The cache is `$SKILLSIM_CACHE_DIR/compose`, else `$XDG_CACHE_HOME/skillsim/compose`, else
`~/.cache/skillsim/compose`; set SKILLSIM_CACHE_DIR to an empty string to turn it off. It holds at most
MAX_ENTRIES files; a file that cannot be read or written is ignored (the run composes as before).
Files are pickles written by this package into the user's own cache folder, as numba's are.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pickle
import sys
from pathlib import Path

ENV = "SKILLSIM_CACHE_DIR"
MAX_ENTRIES = 64
PACKAGE = Path(__file__).resolve().parent


def cache_root() -> Path | None:
    """The package's cache folder ($SKILLSIM_CACHE_DIR, else $XDG_CACHE_HOME/skillsim, else
    ~/.cache/skillsim); None if SKILLSIM_CACHE_DIR is empty (the caches are off). Also where
    sim.history_reuse keeps histories."""
    root = os.environ.get(ENV)
    if root is not None:
        return Path(root).expanduser() if root.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "skillsim"


def cache_dir() -> Path | None:
    """Where composed configs are kept; None if the cache is turned off."""
    root = cache_root()
    return None if root is None else root / "compose"


@functools.lru_cache(maxsize=1)
def package_digest() -> str:
    """The package's code (by size and modification time: reading it all would cost more than a
    cache hit saves) and its config and data files (by content). The `__pycache__` folders are not
    entered: they hold numba's compiled kernels, thousands of files in a checkout whose code has
    changed, and listing them took 25-35 ms of every run."""
    h = hashlib.sha256()
    for rel, path in _package_files(str(PACKAGE), ""):
        if path.endswith(".py"):
            st = os.stat(path)
            h.update(rel.encode() + f"{st.st_size}:{st.st_mtime_ns}".encode())
        elif path.endswith((".yaml", ".yml", ".csv", ".json")):
            with open(path, "rb") as fh:
                h.update(rel.encode() + hashlib.sha256(fh.read()).digest())
    return h.hexdigest()


def _package_files(folder: str, rel: str) -> list[tuple[str, str]]:
    """(path relative to the package, path) of every file under `folder` but in `__pycache__`, sorted
    by the relative path's parts."""
    found = []
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:  # an unreadable folder is left out, as Path.rglob leaves it
        return found
    for entry in entries:
        name = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_dir(follow_symlinks=False):  # linked folders are not entered (nor by rglob)
            if entry.name != "__pycache__":
                found.extend(_package_files(entry.path, name))
        elif entry.is_file():
            found.append((name, entry.path))
    return found


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """What a composition depends on besides the overrides: Python, Hydra and OmegaConf versions, the
    config and data files (by content), the package's code (by size and time, for the schema and its
    defaults), SKILLSIM_UNCALIBRATED (the defaults are then the priors) and the Hydra plugins installed
    (their launcher and sweeper configs are part of the tree)."""
    import omegaconf

    h = hashlib.sha256()
    from .config import UNCALIBRATED_ENV  # the schema's defaults are the priors when it is set

    h.update(json.dumps([sys.version, hydra_digest(), omegaconf.__version__, str(PACKAGE),
                         os.environ.get(UNCALIBRATED_ENV), package_digest()]).encode())
    try:
        import hydra_plugins

        for root in sorted(hydra_plugins.__path__):
            for entry in sorted(os.scandir(root), key=lambda e: e.name):
                h.update(f"{root}/{entry.name}:{entry.stat().st_mtime_ns}".encode())
    except (ImportError, OSError):
        h.update(b"no plugins")
    return h.hexdigest()


def hydra_digest() -> str:
    """A digest of Hydra's `__init__.py`, which holds its version: read without importing Hydra: a run from the cache never imports it (sim.cli._run_plain), and importing it only
    for its version cost 0.05-0.07 s."""
    import importlib.util

    spec = importlib.util.find_spec("hydra")
    if spec is None or spec.origin is None:
        return "no hydra"
    with open(spec.origin, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def cacheable(overrides: list[str]) -> bool:
    """Whether a composition from these overrides depends only on what the key holds: not when they
    add a config search path (files outside the package, which the key does not read)."""
    return not any("searchpath" in o or "file://" in o or "pkg://" in o for o in overrides)


def _key(overrides: list[str], job_name: str) -> str:
    return hashlib.sha256(json.dumps([fingerprint(), job_name, list(overrides)]).encode()).hexdigest()


def _path(overrides: list[str], job_name: str) -> tuple[Path, str] | tuple[None, None]:
    """The cache file for these overrides and its full key, or (None, None) if they are not cached."""
    folder = cache_dir()
    if folder is None or not cacheable(overrides):
        return None, None
    key = _key(overrides, job_name)
    return folder / f"{key[:32]}.pickle", key


def _sealed(key: str, payload: bytes) -> bytes:
    """The file's bytes: the full key and a digest of the pickled composition before it, so that a file
    renamed, copied in from another machine or edited by hand is not taken for this key's."""
    return pickle.dumps((key, hashlib.sha256(payload).hexdigest(), payload))


def _unsealed(key: str, data: bytes) -> bytes | None:
    stored_key, digest, payload = pickle.loads(data)
    if stored_key != key or hashlib.sha256(payload).hexdigest() != digest:
        return None
    return payload


def load(overrides: list[str], job_name: str):
    """The cached composition for these overrides (a DictConfig, its cwd set to this folder; its hydra
    node plain values, run by sim.cli._run_plain), or None."""
    try:
        path, key = _path(overrides, job_name)
        if path is None or not path.is_file():
            return None
        payload = _unsealed(key, path.read_bytes())
        if payload is None:
            return None
        dcfg = pickle.loads(payload)
        from omegaconf import OmegaConf, open_dict

        # values resolved by the run that stored it (${now:} in the folder name) are this run's to resolve
        OmegaConf.clear_cache(dcfg)
        with open_dict(dcfg):
            dcfg.hydra.runtime.cwd = os.getcwd()
        return dcfg
    except Exception:  # noqa: BLE001 - a damaged or foreign cache file: compose as if there were none
        return None


def store(overrides: list[str], job_name: str, dcfg) -> None:
    """Keep a checked composition (atomically: a concurrent run reads a whole file or none)."""
    try:
        path, key = _path(overrides, job_name)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(_sealed(key, pickle.dumps(_kept(dcfg))))
        os.replace(tmp, path)
        entries = sorted(path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError as exc:  # a read-only or full disk only costs the next run its composition
        unwritable(exc)
    except Exception:  # noqa: BLE001 - the same: a cache never fails a run
        return


def _kept(dcfg):
    """The composition as it is kept: its hydra node untyped, with its enums as their names. Hydra types
    that node with its own classes, and unpickling them imported Hydra (sim.cli._run_plain runs without
    it). Interpolations stay unresolved: ${now:} is each run's own."""
    import copy

    from omegaconf import OmegaConf, open_dict

    kept = copy.deepcopy(dcfg)
    with open_dict(kept):
        kept.hydra = OmegaConf.create(OmegaConf.to_container(dcfg.hydra, resolve=False, enum_to_str=True))
    OmegaConf.clear_cache(kept)
    return kept


def unwritable(exc: OSError) -> None:
    """Say once that the cache folder cannot be written (the runs go on, without the caches' gain)."""
    from .errors import os_reason, warn_setting

    warn_setting(ENV, str(cache_root()), f"cannot be written ({os_reason(exc)}): runs go on without keeping "
                 "compositions or histories there; set it to a writable folder, or to an empty string to turn "
                 "the caches off")
