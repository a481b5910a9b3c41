"""skillsim: an agent-based forecast of China's skilled industrial workforce (新八级工)."""

from .api import simulate
from .config import RunConfig
from .model import WorkforceModel

__version__ = "0.1.0"
__all__ = ["RunConfig", "WorkforceModel", "simulate", "__version__"]
