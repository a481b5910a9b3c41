"""Claims on run folders: one process at a time writes a run folder or runs a sweep job.

A claim is a hidden lock file beside the folder, `.NAME.lock`, held with an exclusive `flock` and
holding its owner as JSON: pid, host, the owner's process start time and the time of the claim.

- Taking a claim never waits. If another live process holds it, `claim()` returns None and
  `holder()` says who; a sweep skips that job, a single run refuses in one line naming the holder.
- The kernel drops a `flock` when its process dies, however it dies (SIGKILL included), so the claim
  of a dead process is free at once: the next process takes it over and logs whose it was. The lock
  file itself stays behind with the dead owner in it, which is how a sweep tells a job that was
  interrupted from one that never ran.
- Releasing removes the file while it is still locked; a process that opened the old file checks,
  after locking, that the path still names the file it locked, and starts again if not.
- Reading a claim (`holder`) never locks, so it cannot make a claimer think the job is taken. A claim
  by a process on this host is alive while that pid runs with the recorded start time (a recycled
  pid does not count); a claim from another host is taken as alive (it cannot be checked from here).

Why flock and not a library (filelock, fasteners): their locks carry no owner, and the messages and
the stale-claim takeover need the owner's pid and host. Linux NFS clients map flock onto POSIX
locks, so claims also work between cluster nodes sharing a folder over NFS.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HOST = socket.gethostname()


def lock_path(folder: Path) -> Path:
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


def _proc_start(pid: int) -> str | None:
    """The start time of a process on this host (clock ticks since boot), to tell a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user: it exists
        pass
    if start is not None and (now := _proc_start(pid)) is not None:
        return now == start
    return True


@dataclass
class Owner:
    pid: int
    host: str
    since: str
    start: str | None = None

    def alive(self) -> bool:
        return self.host != HOST or _alive(self.pid, self.start)

    def __str__(self) -> str:
        return f"pid {self.pid} on host {self.host} (since {self.since})"


def _parse(raw: str) -> Owner | None:
    try:
        d = json.loads(raw)
        return Owner(int(d["pid"]), str(d["host"]), str(d["since"]), d.get("start"))
    except (ValueError, KeyError, TypeError):
        return None


def holder(folder: Path, patience: float = 0.0) -> Owner | None:
    """The owner recorded in the claim of `folder`, or None if there is no claim file (or it is empty).
    `patience`: seconds to read again while the file is there but empty, as it is between its owner's
    lock and its owner's write (two runs started together: the refused one named "another process")."""
    deadline = time.monotonic() + patience
    while True:
        try:
            text = lock_path(folder).read_text(encoding="utf-8")
        except OSError:
            return None
        owner = _parse(text)
        if owner is not None or text.strip() or time.monotonic() >= deadline:
            return owner
        time.sleep(0.005)


def live_holder(folder: Path) -> Owner | None:
    """The owner of the claim on `folder` if that process is still running (see module doc)."""
    owner = holder(folder)
    return owner if owner is not None and owner.alive() else None


class Claim:
    """A held claim; `previous` is the dead owner it was taken over from, if any. Use as a context manager."""

    def __init__(self, path: Path, fd: int, previous: Owner | None):
        self.path, self.fd, self.previous = path, fd, previous

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            self.path.unlink(missing_ok=True)  # while locked: see the module doc
        except OSError:
            pass  # a vanished or read-only folder: the lock goes with the descriptor anyway
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim(folder: Path) -> Claim | None:
    """Take the claim on `folder` without waiting; None if a live process holds it.

    Raises OSError if the lock file cannot be created (a full disk, no permission, a read-only or
    vanished folder): the caller reports that as an environment fault.
    """
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(50):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return None
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # released (removed) between our open and our lock: try the new file
            os.close(fd)
            continue
        try:
            previous = _parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            me = {"pid": os.getpid(), "host": HOST, "start": _proc_start(os.getpid()),
                  "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            data = (json.dumps(me) + "\n").encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except BaseException:
            try:  # a lock file we cannot write (a full disk) is not left behind; we hold its lock
                path.unlink(missing_ok=True)
            except OSError:
                pass
            os.close(fd)
            raise
        if previous is not None and (previous.pid, previous.host) == (os.getpid(), HOST):
            previous = None  # our own earlier claim (a retry in the same process)
        return Claim(path, fd, previous)
    return None  # pragma: no cover - released 50 times in a row between our open and our lock


@contextlib.contextmanager
def unclaimed(folder: Path):
    """The owner recorded in the claim file of `folder` if no process holds that claim, for the block; None
    if a process holds it or there is no claim file. The test is the lock itself, which the kernel drops
    however its holder died: a pid and host say nothing of a writer in another pid namespace with the same
    host name (a container on a shared folder). A shared lock is held for the block, so no process takes
    the claim meanwhile (one that tries is told the folder is being written, for that moment)."""
    path = lock_path(folder)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except OSError:  # held by a live process, or released (removed) since we opened it
            same = False
        yield _parse(os.pread(fd, 4096, 0).decode("utf-8", "replace")) if same else None
    finally:
        os.close(fd)


def locked(folder: Path) -> bool:
    """Whether a process holds the claim on `folder` by its lock, whatever its file says: between its
    lock and its record's write (a sweep stopped there, SIGSTOP or a paused VM) the file is empty, and
    the job was reported missing while its process was alive (a CI run). Read from the kernel's table of
    locks (/proc/locks), so that, as the module asks of a reader, it never locks: a probe by a lock of
    its own could refuse a claimer in the same microseconds, and a sweep would skip that job (a review).
    False where there is no such table, or the file is gone."""
    try:
        st = os.stat(lock_path(folder))
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    inode = str(st.st_ino)  # by inode: an overlay's device numbers there are not those stat gives
    for line in table.splitlines():
        parts = line.split()
        if "->" in parts:  # a process waiting for the lock, not holding it
            continue
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rpartition(":")[2] == inode:
            return True
    return False


#: default names a claimer tries (NAME, NAME-2, ..., NAME-999) before it gives up
NAMES_TRIED = 999


def claim_free_name(base: Path, unique: bool, free=None) -> tuple[Claim | None, Path]:
    """Claim `base`; or, if `unique` (the name is a default one), the first of `base`, `NAME-2`,
    `NAME-3`, ... that no live process holds and that `free(path)` accepts both before the claim and
    once it is held (a folder written meanwhile by a process that has since finished). Single runs and
    studies name their default folders this way, so two started in the same second with the same
    settings each get their own. Returns (claim, path), or (None, the last path tried) if none could be
    claimed. `free` may raise to refuse a name outright; OSError from the lock file is raised."""
    base = Path(base)
    path = base
    for n in range(1, NAMES_TRIED + 1 if unique else 2):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        if free is not None and not free(path):
            continue
        held = claim(path)
        if held is None:
            continue
        try:
            taken = free is not None and not free(path)
        except BaseException:
            held.release()
            raise
        if taken:
            held.release()
            continue
        return held, path
    return None, path
