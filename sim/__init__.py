"""skillsim: an agent-based forecast of China's skilled industrial workforce (新八级工).

`simulate`, `RunConfig` and `WorkforceModel` are imported on first use (PEP 562): importing the package
alone stays light, so that a command's entry point (sim.entry) handles Ctrl-C before numpy and Hydra load.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"
__all__ = ["RunConfig", "WorkforceModel", "simulate", "__version__"]

_WHERE = {"simulate": "sim.api", "RunConfig": "sim.config", "WorkforceModel": "sim.model"}


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
