"""Mesa's model frame (`Model`, `DataCollector`) without the rest of Mesa's package imports.

`import mesa` runs Mesa's package `__init__`, which imports everything Mesa has: the experimental
spaces (and through them scipy.spatial), the visualisation-free batch runner with tqdm, and the
discrete spaces. About 0.4 s of every process's start-up goes there, and importing
`mesa.batchrunner` also switches the whole process's multiprocessing start method to "spawn"
(`multiprocessing.set_start_method("spawn", force=True)` at its top level), which the design keeps out
of the core (DESIGN.md; the sweep launchers and the study batch runner choose their own).

The model needs only `mesa.model` and `mesa.datacollection`. If Mesa is not imported yet, a module
object for the package is registered first, with Mesa's own search path, so that importing those two
submodules does not run the package `__init__`. The first time anything else is asked of `mesa`
(`mesa.Agent`, `from mesa import batch_run`, `mesa.__version__`), the module runs Mesa's real
`__init__` in place (PEP 562 module `__getattr__`), so user code that imports Mesa itself sees the
whole package, with the same `Model` class.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import sys
import types


def _light_package() -> None:
    spec = importlib.util.find_spec("mesa")
    if spec is None or spec.origin is None:  # pragma: no cover - Mesa is a dependency
        raise ImportError("mesa is not installed")
    package = types.ModuleType("mesa")
    package.__spec__, package.__file__ = spec, spec.origin
    package.__path__ = list(spec.submodule_search_locations or [])
    package.__package__ = "mesa"
    done = []

    def __getattr__(name: str):
        if not done:  # run Mesa's own __init__ in this module, once
            done.append(True)
            with open(spec.origin, encoding="utf-8") as fh:
                exec(compile(fh.read(), spec.origin, "exec"), package.__dict__)
            if name in package.__dict__:
                return package.__dict__[name]
        raise AttributeError(f"module 'mesa' has no attribute {name!r}")

    package.__getattr__ = __getattr__
    sys.modules["mesa"] = package


@contextlib.contextmanager
def _frames_without_source():
    """While Mesa's logging, model and data-collection modules import, `inspect.stack`,
    `inspect.getouterframes` and `inspect.getmodule` of a frame skip reading source files.

    Mesa names its module loggers and method loggers from the caller's frame with `inspect.stack()`
    and `inspect.getouterframes()`, which read the source of every frame on the stack and scan every
    loaded module: about 0.15 s of each process's start-up (every sweep worker's too), for two names.
    Mesa reads only the frame, its function name and its module, which these give without source.
    The real functions are back when the imports end."""
    real = inspect.stack, inspect.getouterframes, inspect.getmodule

    def getouterframes(frame, context=1):
        out = []
        while frame is not None:
            out.append(inspect.FrameInfo(frame, frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name,
                                         None, None, positions=None))
            frame = frame.f_back
        return out

    def stack(context=1):
        return getouterframes(sys._getframe(1), context)

    def getmodule(obj, _filename=None):
        if inspect.isframe(obj) and obj.f_globals.get("__name__") in sys.modules:
            return sys.modules[obj.f_globals["__name__"]]
        return real[2](obj, _filename)

    inspect.stack, inspect.getouterframes, inspect.getmodule = stack, getouterframes, getmodule
    try:
        yield
    finally:
        inspect.stack, inspect.getouterframes, inspect.getmodule = real


if "mesa" not in sys.modules:
    _light_package()

@contextlib.contextmanager
def _without_pandas():
    """While Mesa's data-collection module imports, `import pandas` fails (Mesa allows that); its
    `pd` then becomes sim.lazy's, which imports pandas when a dataframe is first asked for. A run
    never asks, and pandas is a quarter of a second of start-up."""
    if "pandas" in sys.modules:
        yield
        return
    sys.modules["pandas"] = None  # makes `import pandas` raise ImportError
    try:
        yield
    finally:
        if sys.modules.get("pandas", 0) is None:
            del sys.modules["pandas"]


if "mesa.model" not in sys.modules:
    with _frames_without_source(), _without_pandas():
        import mesa.mesa_logging  # noqa: F401
        import mesa.datacollection  # noqa: F401
        import mesa.model  # noqa: F401
    if not hasattr(mesa.datacollection, "pd"):
        from .lazy import pd as _pd

        mesa.datacollection.pd = _pd

from mesa.datacollection import DataCollector  # noqa: E402
from mesa.model import Model  # noqa: E402

__all__ = ["DataCollector", "Model"]
