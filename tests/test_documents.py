"""sim.documents: the help texts name README.md and docs/*.md where this installation has them."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from sim import documents


@pytest.fixture(autouse=True)
def fresh_lookup():
    documents.folder.cache_clear()
    yield
    documents.folder.cache_clear()


def test_a_checkout_names_its_own_files():
    root = Path(documents.__file__).resolve().parent.parent
    for name in documents.NAMES:
        assert documents.where(name) == str(root / name) and Path(documents.where(name)).is_file()


def installed_layout(tmp_path: Path) -> Path:
    """A wheel's install: the package in lib/.../site-packages, the documents in share/skillsim, and the
    dist-info's RECORD listing them as a wheel install lists its data files."""
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "sim").mkdir(parents=True)
    info = site / "skillsim-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: skillsim\nVersion: 0.1.0\n", encoding="utf-8")
    share = tmp_path / "venv" / "share" / "skillsim"
    lines = ["sim/documents.py,,"]
    for name in documents.NAMES:
        (share / name).parent.mkdir(parents=True, exist_ok=True)
        (share / name).write_text(f"# {name}\n", encoding="utf-8")
        lines.append(f"../../../share/skillsim/{name},,")
    (info / "RECORD").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return site


def test_an_installed_package_names_the_files_its_wheel_installed(tmp_path, monkeypatch):
    site = installed_layout(tmp_path)
    monkeypatch.setattr(documents, "__file__", str(site / "sim" / "documents.py"))
    monkeypatch.setattr(metadata, "distribution", lambda name: metadata.Distribution.at(site / "skillsim-0.1.0.dist-info"))
    share = (tmp_path / "venv" / "share" / "skillsim").resolve()
    assert documents.folder() == share
    assert documents.where("docs/model.md") == str(share / "docs" / "model.md")
    assert documents.where("README.md") == str(share / "README.md")


def test_without_the_files_the_source_is_named(tmp_path, monkeypatch):
    site = installed_layout(tmp_path)
    (tmp_path / "venv" / "share" / "skillsim" / "docs" / "model.md").unlink()
    monkeypatch.setattr(documents, "__file__", str(site / "sim" / "documents.py"))
    monkeypatch.setattr(metadata, "distribution", lambda name: metadata.Distribution.at(site / "skillsim-0.1.0.dist-info"))
    assert documents.where("docs/model.md") == "docs/model.md in skillsim's source"


def test_the_help_names_the_documents_where_they_are(capsys):
    from sim import cli

    try:
        cli.main(["--help"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    out = capsys.readouterr().out
    assert f"Full cookbook and exit codes: {documents.where('README.md')}\n" in out
    assert f"The model, its sources and ranges: {documents.where('docs/model.md')}\n" in out
