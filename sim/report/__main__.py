"""`python -m sim.report PATH ...` is `skillsim-report PATH ...`."""

from .cli import main

main()
