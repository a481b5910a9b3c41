"""`python -m sim` runs the same forecast as `skillsim`."""

from .cli import console

if __name__ == "__main__":
    console()
