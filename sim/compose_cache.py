"""What a plain single run composed, cached on disk: `skillsim` composes once per machine.

Registering the schema with Hydra and composing the config (defaults tree, YAML files, the schema's
checks) costs about 0.2 s of every `skillsim` start, as much as a fifth of a small run. What a run
composes depends only on the overrides, the config files, the schema (the package's code) and the
versions of Python, Hydra and OmegaConf, so a plain run (overrides only, no Hydra flags) keeps it in a
cache file named by a hash of all of them and the next run with the same overrides loads it in a few
milliseconds, as numba keeps its compiled kernels. What can change without changing the key is checked
again on every run (the targets file, a parameter draw), before any folder is made.

What is kept is not the composed DictConfig but the plain values a repeat of the run needs (sim.cli.
cache_entry: the checked settings, the overrides, the folder name's parts, the logging configs), so
that such a run (sim.single_run.run_from_entry) imports neither Hydra nor OmegaConf. A composition whose
repeat could differ (an interpolation in a setting, a folder name with more than its time to fill in)
or that needs more of Hydra (another logging config, callbacks, environment variables) is not kept.

The entry for `skillsim` with no arguments also ships with the package (SHIPPED, made by Hydra when the
package is made), so that a user's first run does not compose either; it is used while what it was made
from is unchanged (shipped_inputs).

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
    h = hashlib.sha256()
    from .config import UNCALIBRATED_ENV  # the schema's defaults are the priors when it is set

    h.update(json.dumps([sys.version, versions_digest(), str(PACKAGE),
                         os.environ.get(UNCALIBRATED_ENV), package_digest()]).encode())
    try:
        import hydra_plugins

        for root in sorted(hydra_plugins.__path__):
            for entry in sorted(os.scandir(root), key=lambda e: e.name):
                h.update(f"{root}/{entry.name}:{entry.stat().st_mtime_ns}".encode())
    except (ImportError, OSError):
        h.update(b"no plugins")
    return h.hexdigest()


def versions_digest() -> str:
    """A digest of the files that hold Hydra's and OmegaConf's versions (`hydra/__init__.py`,
    `omegaconf/version.py`), read without importing either: a run from the cache imports neither
    (sim.single_run), and importing them only for their versions cost about 0.1 s."""
    import importlib.util

    h = hashlib.sha256()
    for package, file in (("hydra", "__init__.py"), ("omegaconf", "version.py")):
        spec = importlib.util.find_spec(package)
        folder = spec.submodule_search_locations[0] if spec is not None and spec.submodule_search_locations else None
        try:
            with open(os.path.join(folder, file), "rb") as fh:
                h.update(package.encode() + hashlib.sha256(fh.read()).digest())
        except (OSError, TypeError):  # not installed (or laid out otherwise): its absence is the key's
            h.update(f"no {package}".encode())
    return h.hexdigest()


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
    """The file's bytes: the full key and a digest of the pickled entry before it, so that a file
    renamed, copied in from another machine or edited by hand is not taken for this key's."""
    return pickle.dumps((key, hashlib.sha256(payload).hexdigest(), payload))


def _unsealed(key: str, data: bytes) -> bytes | None:
    stored_key, digest, payload = pickle.loads(data)
    if stored_key != key or hashlib.sha256(payload).hexdigest() != digest:
        return None
    return payload


def load(overrides: list[str], job_name: str):
    """The entry kept for these overrides (plain values, sim.cli.cache_entry), or None: this machine's own,
    else the one shipped with the package for `skillsim` with no arguments (shipped)."""
    own = _own(overrides, job_name)
    if own is not None or cache_dir() is None:  # the caches turned off: the shipped entry too
        return own
    return shipped(overrides, job_name)


def _own(overrides: list[str], job_name: str):
    try:
        path, key = _path(overrides, job_name)
        if path is None or not path.is_file():
            return None
        payload = _unsealed(key, path.read_bytes())
        if payload is None:
            return None
        return pickle.loads(payload)
    except Exception:  # noqa: BLE001 - a damaged or foreign cache file: compose as if there were none
        return None


# -- the composition of `skillsim` with no arguments, shipped with the package ------------------------

#: What `skillsim` with no arguments composes, made by Hydra when the package was made (`python -m
#: sim.compose_cache --ship`), so that a user's first run does not pay Hydra's import, the schema's
#: registration and the composition (0.19 s of a cold start's 0.30 s outside the model). It is used only
#: while what it was composed from is unchanged (shipped_inputs); tests/test_compose_cache.py checks
#: that it is what Hydra composes now.
SHIPPED_NAME = "data/composed_default.json"
SHIPPED = PACKAGE / SHIPPED_NAME
SHIPPED_JOB = "cli"  # sim.single_run.JOB_NAME: the job the entry is for


def shipped_inputs() -> str:
    """A digest of what the composition of `skillsim` with no arguments depends on, portable between a
    checkout and an installed package (by content, not by file times or paths): the package's code (the
    schema, the composition's checks, the folder's name: an edit in an editable install is not run
    over), its config and data files, the schema's settings with their types and defaults, Hydra's and
    OmegaConf's versions, whether SKILLSIM_UNCALIBRATED is on, and any Hydra plugin that could add
    configs (a search-path plugin; launchers and sweepers add only their own groups, which a plain run
    does not choose). About 3 ms: 1.3 MB of code read."""
    from .config import UNCALIBRATED_ENV, RunConfig

    h = hashlib.sha256()
    for rel, path in _package_files(str(PACKAGE), ""):
        if rel != SHIPPED_NAME and (rel.endswith(".py") or rel.startswith(("conf/", "data/"))):
            with open(path, "rb") as fh:
                h.update(rel.encode() + hashlib.sha256(fh.read()).digest())
    h.update(json.dumps([_schema_rows(RunConfig), repr(RunConfig()), versions_digest(),
                         os.environ.get(UNCALIBRATED_ENV) == "1", _other_plugins()]).encode())
    return h.hexdigest()


def _seal(inputs: str, entry: dict) -> str:
    """A digest of the shipped entry (as read from its JSON) and its inputs: an entry edited by hand, or
    damaged but still JSON, is not used."""
    return hashlib.sha256((inputs + json.dumps(entry, sort_keys=True, ensure_ascii=False)).encode()).hexdigest()


def _schema_rows(cls: type) -> list:
    """Each setting of the schema with its declared type, nested groups included."""
    from .config import walk_schema

    return [[owner.__qualname__, field.name, str(field.type)] for _, owner, field in walk_schema(cls)]


def _other_plugins() -> list[str]:
    """The Hydra plugins installed that are neither launchers nor sweepers (by their package's name)."""
    try:
        import hydra_plugins
    except ImportError:
        return []
    names = set()
    for root in list(hydra_plugins.__path__):  # an editable install's finder hook is listed too: no folder
        try:
            names.update(entry.name for entry in os.scandir(root))
        except OSError:
            continue
    return sorted(n for n in names if not n.endswith(("_launcher", "_sweeper", "_launchers", "_sweepers"))
                  and not n.startswith(("__", ".")))


def shipped(overrides: list[str], job_name: str) -> dict | None:
    """The shipped entry, if these are no overrides for its job and what it was composed from is unchanged."""
    if overrides or job_name != SHIPPED_JOB:
        return None
    try:
        with open(SHIPPED, encoding="utf-8") as fh:
            kept = json.load(fh)
        inputs, entry = shipped_inputs(), kept["entry"]
        if kept.get("inputs") != inputs or kept.get("seal") != _seal(inputs, entry):
            return None
        entry["run_dir"] = [tuple(part) for part in entry["run_dir"]]  # as sim.cli.run_dir_parts gives them
        return entry
    except Exception:  # noqa: BLE001 - missing or damaged: compose through Hydra
        return None


def composed_afresh() -> dict:
    """The entry Hydra's route keeps for `skillsim` with no arguments, made now: the command run through
    Hydra (sim.cli.console) in an empty folder with an empty cache, which keeps it there."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="skillsim-ship-") as tmp:
        env = dict(os.environ, **{ENV: os.path.join(tmp, "cache"), "SKILLSIM_HISTORY_DISK_MB": "0"})
        run = "import sys; sys.argv = ['skillsim']; from sim.cli import console; console()"
        proc = subprocess.run([sys.executable, "-c", run], cwd=tmp, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"skillsim with no arguments failed:\n{proc.stderr[-3000:]}")
        # read back from the same folder (the key reads the plugins found on the path, which the folder sets)
        read = (f"import json; from sim.compose_cache import _own; print(json.dumps(_own([], {SHIPPED_JOB!r}), "
                "ensure_ascii=False))")
        proc = subprocess.run([sys.executable, "-c", read], cwd=tmp, env=env, capture_output=True, text=True)
        entry = json.loads(proc.stdout) if proc.returncode == 0 else None
    if entry is None:
        raise RuntimeError("Hydra's route kept no entry for skillsim with no arguments (sim.cli.cache_entry)")
    return entry


def ship() -> Path:
    """Write SHIPPED from a composition made now (atomically)."""
    inputs, entry = shipped_inputs(), composed_afresh()
    text = json.dumps({"inputs": inputs, "seal": _seal(inputs, entry), "entry": entry}, ensure_ascii=False, indent=1)
    tmp = SHIPPED.with_name(f".{SHIPPED.name}.{os.getpid()}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, SHIPPED)
    return SHIPPED


def store(overrides: list[str], job_name: str, entry: dict) -> None:
    """Keep what a repeat of a checked run needs (atomically: a concurrent run reads a whole file or none)."""
    try:
        path, key = _path(overrides, job_name)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(_sealed(key, pickle.dumps(entry)))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # nothing half-written is left in the cache folder
            raise
        entries = sorted(path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
        for old in entries[:-MAX_ENTRIES]:
            old.unlink(missing_ok=True)
    except OSError as exc:  # a read-only or full disk only costs the next run its composition
        unwritable(exc)
    except Exception:  # noqa: BLE001 - the same: a cache never fails a run
        return


def unwritable(exc: OSError) -> None:
    """Say once that the cache folder cannot be written (the runs go on, without the caches' gain)."""
    from .errors import os_reason, warn_setting

    warn_setting(ENV, str(cache_root()), f"cannot be written ({os_reason(exc)}): runs go on without keeping "
                 "compositions or histories there; set it to a writable folder, or to an empty string to turn "
                 "the caches off")


if __name__ == "__main__":
    if sys.argv[1:] != ["--ship"]:
        raise SystemExit("usage: python -m sim.compose_cache --ship   (remake sim/data/composed_default.json)")
    print(f"wrote {ship()}")
