"""`python -m sim` runs the same forecast as `skillsim`."""

from .cli import main

if __name__ == "__main__":
    main()
