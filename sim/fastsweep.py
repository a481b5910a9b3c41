"""Fast start of large sweeps: compose each job from a cached configuration instead of from scratch.

Measured on 2 cores (benchmarks/sweep_startup.py): Hydra composes every job of a multirun from the
config files twice, once to validate the batch before launching it and once to launch it, at about
0.15-0.25 s each; a 5,000-job sweep spent about 25 minutes composing. Here:

- `FastConfigLoader.load_sweep_config` composes a job in full only the first time its *structure*
  is seen (its config-group choices, `+`/`~` overrides, hydra overrides and the set of keys it
  sets). Any other job with that structure is a copy of that composition (`_Frozen`: unpickled from
  the bytes kept of it, 2-3 ms against 12-22 ms for `copy.deepcopy`, with the same nodes and the
  same classes) with the job's own values applied as Hydra applies them
  (`_apply_overrides_to_config`: the same type checks), and its `hydra.overrides.task` and
  `hydra.job.override_dirname` set as Hydra sets them. A test checks that the result equals Hydra's
  own composition, node by node.
- `FastSweeperMixin` (on Hydra's basic sweeper) validates a batch by applying each distinct value once to a scratch copy
  (every composition error Hydra would raise is still raised before the batch starts), and launches
  in batches of `BATCH` jobs unless `hydra.sweeper.max_batch_size` is set, so the first job starts
  after the first batch is checked, not after all of them.

`use_fast_sweeps()` installs both for one `skillsim -m` command and `restore()` removes them; the
module keeps its cache in each process (a joblib worker reuses it across the jobs it runs). Anything
unusual (dict or list values, a swept hydra key, another sweeper) falls back to Hydra's own path.

`use_fast_jobs()` (any sweeper) makes Hydra's joblib launcher run its jobs through
`execute_joblib_job`: Hydra's own job function, except that a worker discovers Hydra's plugins once,
not again for every job (Hydra's `Singleton.set_state` scans every plugin module and registers their
configs each time; the configs are already in the state the job brings). That was about a third
of a job's fixed cost outside the model (benchmarks/README.md, issue 12 fourth step).

It also ships what every job of one launch shares (Hydra's context with the config loader, the
master config, the task function and the singleton state: about 110 kB) pickled once per launch
(`_Shipment`) instead of once per job: the parent, which shares the cores with the workers, spent
17-30 ms a job pickling the same objects again. A worker unpickles them once per launch (`_unship`)
and hands the same objects to each of its jobs, as Hydra's basic launcher hands the same context,
master config and singletons to every job of its one process: unpickling them took 17 ms a job
(12 of them the singleton state's registered configs), a twelfth of a 50k-agent job. Each job's own
config is composed afresh from them (Hydra's execute_job), as before.
"""

from __future__ import annotations

import copy
import io
import pickle
import uuid
from typing import Any

from hydra._internal import hydra as hydra_internal
from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf, open_dict

BATCH = 500  #: jobs per batch when hydra.sweeper.max_batch_size is not set
_SWEEPER = f"{BasicSweeper.__module__}.{BasicSweeper.__name__}"
_BASES: dict[tuple, "_Frozen"] = {}  # structure key -> composed config of the first job with it
_SCRATCH: dict[tuple, tuple[DictConfig, set[str]]] = {}  # for validation: a copy and the values checked
_PARSED: dict[str, Override] = {}
_MAX_CACHED = 256
_parser: list[OverridesParser] = []


def _parse(line: str) -> Override:
    o = _PARSED.get(line)
    if o is None:
        if not _parser:
            _parser.append(OverridesParser.create())
        o = _parser[0].parse_overrides([line])[0]
        if len(_PARSED) < 10_000:  # a line unique to one job (replicate=k) is parsed once anyway
            _PARSED[line] = o
    return o


class _Frozen:
    """A config kept as pickled bytes, copied by unpickling them: what `copy.deepcopy` gives (new
    nodes, the same classes), in a fifth of its time. Classes are kept by identity beside the bytes,
    as deepcopy keeps them: Hydra's plugin scan loads its own copies of plugin modules, whose config
    classes pickle cannot find by name, and a class must stay the same object for type checks."""

    def __init__(self, cfg: DictConfig) -> None:
        self.classes: list[type] = []
        buf = io.BytesIO()
        pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = self._class_id
        try:
            pickler.dump(cfg)
            self.data, self.kept = buf.getvalue(), None
        except Exception:  # a value pickle cannot take: copied as deepcopy copies it
            self.data, self.kept = b"", copy.deepcopy(cfg)

    def _class_id(self, obj: Any) -> int | None:
        if isinstance(obj, type):
            self.classes.append(obj)
            return len(self.classes) - 1
        return None

    def copy(self) -> DictConfig:
        if self.kept is not None:
            return copy.deepcopy(self.kept)
        unpickler = pickle.Unpickler(io.BytesIO(self.data))
        unpickler.persistent_load = self.classes.__getitem__
        return unpickler.load()


class _JobCopies:
    """`copy` as Hydra's run_job sees it while fast jobs are on (`hydra.core.utils.copy`, see
    `copies_by_pickling`). run_job deep-copies every job's config twice: the task's config (13 ms for
    ours) and HydraConfig's copy of the hydra node (6 ms), together 6-7% of a 50,000-agent sweep job
    (a sampling profile of 40 jobs). Here a config whose root has no parent is copied as `_Frozen`
    copies it, by pickling: every node, type, flag and value of copy.deepcopy's copy, in about a third
    of the time. A top-level node whose parent is another config (HydraConfig's masked copy keeps the
    hydra node's parent on the full config) is given the copy as its parent, as
    DictConfig.__deepcopy__ does. Any other object, or a config pickle cannot take, is copy.deepcopy's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(x: Any, memo: dict | None = None) -> Any:
        if memo is not None or type(x) is not DictConfig or x._get_parent() is not None:
            return copy.deepcopy(x, memo)
        content = x.__dict__["_content"]
        moved = [] if not isinstance(content, dict) else [
            (node, node.__dict__["_parent"]) for node in content.values() if node.__dict__["_parent"] is not x]
        try:
            for node, _ in moved:
                node.__dict__["_parent"] = x
            frozen = _Frozen(x)
        finally:
            for node, parent in moved:
                node.__dict__["_parent"] = parent
        return frozen.copy()


_JOB_COPIES = _JobCopies()


def copies_by_pickling(on: bool = True) -> None:
    """Have Hydra's run_job copy job configs by pickling (`_JobCopies`) in this process, or not."""
    import hydra.core.utils as hydra_utils

    hydra_utils.copy = _JOB_COPIES if on else copy


def _remember(cache: dict, key: tuple, value: Any) -> None:
    if len(cache) >= _MAX_CACHED:
        cache.pop(next(iter(cache)))
    cache[key] = value


class FastConfigLoader(ConfigLoaderImpl):
    """Hydra's config loader, with sweep jobs composed from a cached composition (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token = uuid.uuid4().hex  # travels with the loader to joblib workers: caches of an older sweep never match

    def _plan(self, master: DictConfig, sweep_overrides: list[str]) -> tuple[tuple, list[Override], list[Override]] | None:
        """(structure key, value overrides, task overrides) of a job, or None to compose it in full."""
        parsed = [_parse(line) for line in sweep_overrides]
        structural, values = [], []
        for o in parsed:
            if o.is_hydra_override() or o.is_sweep_override():
                return None
            key = o.key_or_group
            plain = (o.type == OverrideType.CHANGE and o.package is None and "/" not in key
                     and not self.repository.group_exists(key))
            if plain and isinstance(o.value(), (dict, list)):
                plain = False
            (values if plain else structural).append(o)
        value_keys = tuple(o.key_or_group for o in values)
        if len(set(value_keys)) != len(value_keys) or any(
                s.key_or_group.split(".")[0] in {k.split(".")[0] for k in value_keys} for s in structural):
            return None  # a key set twice, or under a structural override: order matters, let Hydra do it
        key = (self._token, master.hydra.job.config_name, tuple(master.hydra.overrides.hydra),
               tuple(o.input_line for o in structural), value_keys)
        return key, values, parsed

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        plan = self._plan(master_config, list(sweep_overrides))
        if plan is None:
            return super().load_sweep_config(master_config, sweep_overrides)
        key, values, task = plan
        base = _BASES.get(key)
        if base is None:
            cfg = super().load_sweep_config(master_config, sweep_overrides)
            _remember(_BASES, key, _Frozen(cfg))
            return cfg
        cfg = base.copy()
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        job = cfg.hydra.job
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in task]
            job.override_dirname = get_overrides_dirname(
                overrides=task, kv_sep=job.config.override_dirname.kv_sep,
                item_sep=job.config.override_dirname.item_sep,
                exclude_keys=job.config.override_dirname.exclude_keys)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg

    def check_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> None:
        """Raise what `load_sweep_config` would raise for this job, cheaply (values checked once each)."""
        plan = self._plan(master_config, list(sweep_overrides))
        if plan is None:
            super().load_sweep_config(master_config, sweep_overrides)
            return
        key, values, _ = plan
        if key not in _BASES:
            self.load_sweep_config(master_config, sweep_overrides)
        if key not in _SCRATCH:
            _remember(_SCRATCH, key, (_BASES[key].copy(), set()))
        scratch, seen = _SCRATCH[key]
        new = [o for o in values if o.input_line not in seen]
        if new:
            ConfigLoaderImpl._apply_overrides_to_config(new, scratch)
            seen.update(o.input_line for o in new)


class FastSweeperMixin:
    """Hydra's basic sweeper with cheap batch validation and batches of BATCH jobs by default.

    A mixin: Hydra's plugin scan loads its own copy of the basic sweeper's module, so the class is
    built on the copy Hydra instantiates (`use_fast_sweeps`).
    """

    def __init__(self, max_batch_size: int | None, params: dict | None = None) -> None:
        super().__init__(max_batch_size=max_batch_size if max_batch_size is not None else BATCH, params=params)

    def validate_batch_is_legal(self, batch) -> None:
        loader = self.hydra_context.config_loader if self.hydra_context is not None else None
        if not isinstance(loader, FastConfigLoader):
            return super().validate_batch_is_legal(batch)
        for overrides in batch:
            loader.check_sweep_config(self.config, list(overrides))


_saved: dict[str, Any] = {}
FastBasicSweeper: type | None = None
_saved_job: dict[str, Any] = {}  # Hydra's joblib job function while use_fast_jobs is in force
_WORKER_PLUGINS: list = []  # this process's hydra Plugins, discovered by the first joblib job it ran
_JOBLIB_CORE = "hydra_plugins.hydra_joblib_launcher._core"


class _Shipment:
    """The arguments every job of one joblib launch shares, pickled once (cloudpickle, as joblib
    pickles them) the first time a job is sent; each job then carries these bytes, which a worker
    unpickles once (`_unship`)."""

    def __init__(self, args: tuple) -> None:
        self.args = args
        self._data: bytes | None = None

    def __reduce__(self):
        if self._data is None:
            try:  # joblib requires cloudpickle; loky falls back to pickle without it, and so does this
                from cloudpickle import dumps
            except ImportError:
                dumps = pickle.dumps
            self._data = dumps(self.args, protocol=pickle.HIGHEST_PROTOCOL)
        return _unship, (self._data,)


def _unship(data: bytes) -> tuple:
    """The shared arguments of a launch: unpickled by the first of its jobs a worker runs, the same
    objects for the next (the bytes are equal: one launch's), as the basic launcher shares them."""
    if _unshipped and _unshipped[0][0] == data:
        return _unshipped[0][1]
    args = pickle.loads(data)
    _unshipped[:] = [(data, args)]
    return args


_unshipped: list[tuple[bytes, tuple]] = []  # in a worker: the last launch's bytes and what they unpickled to


_shipment: list[_Shipment] = []  # the current launch's shared arguments (one)


def _delayed(function):
    """joblib.delayed for Hydra's joblib launcher: a job of ours carries its shared arguments as one
    `_Shipment`, the same for every job that shares them (by identity)."""
    import joblib

    if function is not execute_joblib_job:
        return joblib.delayed(function)

    def job(idx, overrides, *shared):
        last = _shipment[0] if _shipment else None
        if last is None or len(last.args) != len(shared) or any(a is not b for a, b in zip(last.args, shared)):
            _shipment[:] = [last := _Shipment(tuple(shared))]
        return joblib.delayed(execute_shipped_job)(idx, overrides, last)

    return job


def execute_shipped_job(idx, overrides, shared):
    """`execute_joblib_job` with the shared arguments as `_unship` gave them (a tuple), or the
    `_Shipment` itself where joblib ran the job in this process without pickling it (n_jobs=1)."""
    if isinstance(shared, _Shipment):
        shared = shared.args
    return execute_joblib_job(idx, overrides, *shared)


def execute_joblib_job(idx, overrides, hydra_context, config, task_function, singleton_state):
    """Hydra's joblib job (`execute_job` of its launcher), in a worker that already discovered the
    plugins: the job's singleton state gets this process's Plugins, so `Singleton.set_state` does not
    scan and register them again. Everything else is Hydra's own function."""
    import importlib

    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    hydras = _saved_job.get("execute_job") or importlib.import_module(_JOBLIB_CORE).execute_job
    if hydras is execute_joblib_job:  # never ourselves (a patched module seen before its original was saved)
        raise RuntimeError("Hydra's joblib job function was not saved")
    if _WORKER_PLUGINS:
        singleton_state["instances"][Plugins] = _WORKER_PLUGINS[0]
    copies_by_pickling()  # this worker runs only the sweep's jobs
    try:
        return hydras(idx, overrides, hydra_context, config, task_function, singleton_state)
    finally:
        found = Singleton._instances.get(Plugins)
        if found is not None and not _WORKER_PLUGINS:
            _WORKER_PLUGINS.append(found)


def use_fast_jobs() -> None:
    """Run the joblib launcher's jobs through `execute_joblib_job` for this command (if it is
    installed), and copy job configs by pickling here (`_JobCopies`: the basic launcher's jobs run in
    this process)."""
    copies_by_pickling()
    try:
        import importlib

        core = importlib.import_module(_JOBLIB_CORE)
    except ImportError:
        return
    if not _saved_job and core.execute_job is not execute_joblib_job:
        _saved_job.update(execute_job=core.execute_job, delayed=core.delayed)
        core.execute_job = execute_joblib_job
        core.delayed = _delayed


def use_fast_sweeps() -> None:
    """Install the fast loader and sweeper for this command (Hydra's basic sweeper only)."""
    from hydra.core.plugins import Plugins

    if not _saved:
        classes = Plugins.instance().class_name_to_class
        _saved.update(loader=hydra_internal.ConfigLoaderImpl, sweeper=classes.get(_SWEEPER))
        hydra_internal.ConfigLoaderImpl = FastConfigLoader
        if classes.get(_SWEEPER) is not None:
            global FastBasicSweeper  # Hydra locates the class by its import path
            FastBasicSweeper = type("FastBasicSweeper", (FastSweeperMixin, classes[_SWEEPER]),
                                    {"__module__": __name__, "__qualname__": "FastBasicSweeper"})
            classes[_SWEEPER] = FastBasicSweeper


def restore() -> None:
    """Put Hydra's own loader, sweeper and copies back and drop the caches."""
    from hydra.core.plugins import Plugins

    copies_by_pickling(False)

    if _saved_job:
        import importlib

        core = importlib.import_module(_JOBLIB_CORE)
        core.execute_job, core.delayed = _saved_job.pop("execute_job"), _saved_job.pop("delayed")
        _shipment.clear()
    if _saved:
        hydra_internal.ConfigLoaderImpl = _saved["loader"]
        if _saved["sweeper"] is not None:
            Plugins.instance().class_name_to_class[_SWEEPER] = _saved["sweeper"]
        _saved.clear()
    _BASES.clear()
    _SCRATCH.clear()
