"""Where skillsim's own documents are, so that a help text names a file the user has.

In a checkout (or an editable install) they are README.md and docs/*.md beside the package. A wheel
installs the same files under `<prefix>/share/skillsim` (pyproject.toml's data-files), outside the
package, where importlib.metadata's record of the installed files finds them whatever the install
scheme (a venv, `--user`, a system prefix). The help texts pointed installed users to `docs/model.md`,
a file they did not have (a user trial)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

#: the documents, relative to their folder (the checkout's root, or share/skillsim once installed)
NAMES = ("README.md", "docs/model.md", "docs/report.md", "docs/cluster.md")


@lru_cache(maxsize=None)
def folder() -> Path | None:
    """The folder holding README.md and docs/, or None if neither the checkout nor the install has them."""
    source = Path(__file__).resolve().parent.parent
    if all((source / name).is_file() for name in NAMES):
        return source
    try:
        from importlib import metadata

        dist = metadata.distribution("skillsim")
        for record in dist.files or ():
            if record.as_posix().endswith("share/skillsim/docs/model.md"):
                found = Path(dist.locate_file(record)).resolve().parent.parent
                return found if (found / "README.md").is_file() else None
    except Exception:  # noqa: BLE001 - not installed (a source tree on PYTHONPATH): the words below
        pass
    return None


def where(name: str) -> str:
    """`name` (one of NAMES) as a path to open, or, if this installation lacks it, as skillsim's source's."""
    root = folder()
    return str(root / name) if root is not None and (root / name).is_file() else f"{name} in skillsim's source"
