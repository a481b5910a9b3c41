"""pandas, imported when first used.

A single run needs no pandas: it writes its series with the csv module and pyarrow (sim.results).
pandas costs about a quarter of a second to import, a quarter of `skillsim`'s own start-up, so the
modules that use it for tables (sim.model.series, sim.aggregate, sim.objective, and Mesa's
DataCollector through sim.mesa_frame) reach it through `pd` here, which imports pandas the first time
one of its attributes is read (`pd.DataFrame`, ...). A proxy object rather than
importlib.util.LazyLoader: any `import pandas` elsewhere would load a lazy module in sys.modules at
once (the import system reads its `__spec__`).
"""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """Stands for module `name`; imports it on the first attribute read."""

    def __init__(self, name: str):
        self._name = name

    def _module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attr: str):
        return getattr(self._module(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


pd = LazyModule("pandas")
