"""One writer per folder at a time: a lock file that names its holder and dies with it.

:class:`FolderLock` holds ``FOLDER/NAME`` while a process writes the folder (a training run its
``--out-dir``, ``fastfcn book run`` its executed folder). The file names the holder (``{"pid", "host",
"since"}``); on POSIX an ``flock`` on it is the lock itself, so the kernel releases it when the holder
dies, however it dies. A second writer is refused with :class:`FolderLockedError` naming the holder; the
lock of a dead process (on this host) is taken over, with a warning. A lock naming another host, whose
process cannot be checked from here, is refused: the message says which file to delete if that writer
is gone. The lock is released (the file removed) on exit, exceptions too.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = ["FolderLock", "FolderLockedError"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the holder's pid is the only test
    fcntl = None  # type: ignore[assignment]


class FolderLockedError(RuntimeError):
    """Another process holds the folder's lock."""


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(holder: dict[str, Any]) -> str:
    since = holder.get("since")
    when = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))}" if since else ""
    return f"pid {holder.get('pid')} on host {holder.get('host')}{when}"


class FolderLock:
    """``with FolderLock(folder, name, holder="training run", option="--out-dir"):`` -- the folder's lock
    for this process (see the module's notes). ``holder`` names what holds such a lock and ``option`` the
    command-line option that chooses another folder, for the messages."""

    def __init__(self, folder: str | Path, name: str, holder: str = "run", option: str = "--out") -> None:
        self.folder = Path(folder)
        self.path = self.folder / name
        self.holder, self.option = holder, option
        self.fd: int | None = None
        self.created_folder = False

    def _read(self, fd: int) -> dict[str, Any]:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
        try:
            holder = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def _in_use(self, holder: dict[str, Any]) -> FolderLockedError:
        return FolderLockedError(f"{self.folder} is in use by another {self.holder} "
                                 f"({_describe(holder) if holder else 'which is starting'}); wait for it to finish, "
                                 f"stop it, or choose another {self.option}")

    def _open(self) -> int:
        try:
            if not self.folder.is_dir():
                self.folder.mkdir(parents=True, exist_ok=True)
                self.created_folder = True
        except OSError as exc:
            raise RuntimeError(f"cannot create the folder {self.folder}: {exc.strerror}; choose another "
                               f"{self.option}") from None
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            self._remove_created_folder()
            raise RuntimeError(f"cannot write the lock file {self.path}: {exc.strerror}; choose another "
                               f"{self.option}") from None

    def _take(self, fd: int) -> bool:
        """Lock the open file ``fd``; False when the file was replaced meanwhile (open it again)."""
        host, pid = socket.gethostname(), os.getpid()
        got = True
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                got = False
        holder = self._read(fd)
        if not got:
            raise self._in_use(holder)
        try:
            same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # a holder released (removed) it between our open and our flock
            return False
        if holder and (holder.get("pid"), holder.get("host")) != (pid, host):
            if holder.get("host") != host:
                raise FolderLockedError(
                    f"{self.folder} is locked by a {self.holder} on another host ({_describe(holder)}); wait for it "
                    f"to finish or choose another {self.option}; if that {self.holder} is gone, delete {self.path}")
            if fcntl is None and _alive(holder.get("pid")):
                raise self._in_use(holder)
            warnings.warn(f"{self.path}: took over the stale lock of {_describe(holder)}, which is no longer "
                          "running", stacklevel=4)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"pid": pid, "host": host, "since": time.time()}).encode())
        os.fsync(fd)
        return True

    def acquire(self) -> FolderLock:
        for _ in range(10):  # the lock file may be replaced under us (a holder releasing it): retry
            fd = self._open()
            try:
                taken = self._take(fd)
            except BaseException:
                os.close(fd)
                self._remove_created_folder()
                raise
            if taken:
                self.fd = fd
                return self
            os.close(fd)
        raise FolderLockedError(f"could not take the lock {self.path}: it keeps being replaced; retry")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: a waiting writer then finds a new file
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None
        self._remove_created_folder()

    def _remove_created_folder(self) -> None:
        if self.created_folder:
            try:
                self.folder.rmdir()  # only if empty: a writer that failed before writing anything
            except OSError:
                pass

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
