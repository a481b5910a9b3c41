"""`python -m sim` runs the same forecast as `skillsim`."""

import sys

from .entry import skillsim

if __name__ == "__main__":
    sys.exit(skillsim())
