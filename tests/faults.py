"""Helpers for the fault tests: a small tmpfs to fill, an unprivileged user, and the skillsim commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout

ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
ENV.pop("HYDRA_FULL_ERROR", None)
ENV.pop("SKILLSIM_DEBUG", None)


def run(*args: str, cwd: Path, prefix: list[str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m sim.X args` (module given as first arg, e.g. 'sim' or 'sim.aggregate')."""
    module, *rest = args
    return subprocess.run([*(prefix or []), sys.executable, "-m", module, *rest], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=ENV)


def error_lines(stderr: str, prog: str) -> list[str]:
    """The lines a command printed as its own messages (not the log lines with a [time][LEVEL] prefix)."""
    return [ln for ln in stderr.splitlines() if ln.startswith(f"{prog}:")]


def assert_one_line_error(proc: subprocess.CompletedProcess, prog: str, code: int, *words: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = error_lines(proc.stderr, prog)
    assert len(lines) == 1, proc.stderr[-3000:]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert proc.stderr.rstrip().splitlines()[-1] == lines[0], "the error must be the last line"
    return lines[0]


@contextmanager
def tmpfs(size_kb: int):
    """A fresh tmpfs of `size_kb` KB, or skip (with the reason) where mounting is not permitted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = Path(tempfile.mkdtemp(prefix="skillsim-tmpfs-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)


def fill(mnt: Path, leave_kb: int = 16) -> Path:
    """Fill the filesystem, then free `leave_kb` KB: small files still fit, a run folder does not."""
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        block = b"\0" * 65536
        while True:
            try:
                os.write(fd, block)
            except OSError:
                break
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave_kb * 1024))
    return filler


def leftovers(folder: Path) -> list[Path]:
    """Half-written or stray files: temporary folders and files, claims, partial runs."""
    bad = []
    for p in folder.rglob("*"):
        n = p.name
        if ".partial-" in n or ".tmp-" in n or n.endswith(".lock") or "report-tmp" in n:
            bad.append(p)
    return bad


def unprivileged_prefix(probe_dir: Path) -> list[str]:
    """A command prefix that runs Python without the power to ignore file permissions, or skip.

    `nobody` where it can reach this interpreter; otherwise root without CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH (setpriv), to which a folder owned by nobody with mode 0555 is read-only too.
    """
    candidates = [["runuser", "-u", "nobody", "--"],
                  ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]]
    reasons = []
    for prefix in candidates:
        if shutil.which(prefix[0]) is None:
            reasons.append(f"{prefix[0]} not installed")
            continue
        probe = subprocess.run([*prefix, sys.executable, "-c", f"open({str(probe_dir / 'x')!r}, 'w')"],
                               capture_output=True, text=True, env=ENV, cwd=probe_dir.parent)
        if probe.returncode != 0 and "PermissionError" in probe.stderr:
            ok = subprocess.run([*prefix, sys.executable, "-c", "import sim.cli"], capture_output=True, text=True,
                                env=ENV, cwd=probe_dir.parent)
            if ok.returncode == 0:
                return prefix
            reasons.append(f"{prefix[0]}: cannot import skillsim ({ok.stderr.strip().splitlines()[-1:]})")
        else:
            reasons.append(f"{prefix[0]}: could write to a read-only folder or not start ({probe.stderr.strip()[-200:]})")
    pytest.skip("no unprivileged way to run Python here: " + "; ".join(reasons))


def read_only_dir(parent: Path) -> Path:
    """A folder owned by nobody, mode 0555: nobody (and capless root) may enter it, not write in it."""
    d = parent / "locked"
    d.mkdir()
    os.chown(d, 65534, 65534)
    d.chmod(0o555)
    return d


def foreign_uid(prefix: list[str]) -> int:
    """A uid whose mode-0700 folder the unprivileged runner cannot list (root for nobody, else nobody)."""
    return 0 if "nobody" in prefix else 65534
