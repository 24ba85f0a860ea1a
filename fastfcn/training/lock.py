"""One training run per folder at a time: a lock file, and the clean-up of what a killed run left.

:class:`RunLock` holds ``OUT_DIR/train.lock`` while a run writes the folder. The file names the holder
(``{"pid", "host", "since"}``); on POSIX an ``flock`` on it is the lock itself, so the kernel releases
it when the holder dies, however it dies. A second run is refused with :class:`RunLockedError`
naming the holder; the lock of a dead process (on this host) is taken over, with a warning. A lock
naming another host, whose process cannot be checked from here, is refused: the message says which
file to delete if that run is gone. The lock is released (the file removed) on exit, exceptions too.

:func:`remove_stale_temp_files` deletes the hidden temporary files (``.last.pth.XXXX.tmp``) of an
atomic write whose process was killed; with the lock held, no writer of these files is running.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..utils.io import temp_files

__all__ = ["RunLock", "RunLockedError", "remove_stale_temp_files", "LOCK_NAME"]

LOCK_NAME = "train.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the holder's pid is the only test
    fcntl = None  # type: ignore[assignment]


class RunLockedError(RuntimeError):
    """Another run holds the folder's lock."""


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


class RunLock:
    """``with RunLock(folder):`` -- the folder's lock for this process (see the module's notes)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
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

    def acquire(self) -> RunLock:
        try:
            if not self.folder.is_dir():
                self.folder.mkdir(parents=True, exist_ok=True)
                self.created_folder = True
        except OSError as exc:
            raise RuntimeError(f"cannot create the run folder {self.folder}: {exc.strerror}; choose another "
                               f"--out-dir") from None
        host, pid = socket.gethostname(), os.getpid()
        for _ in range(10):  # the lock file may be replaced under us (a holder releasing it): retry
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                self._remove_created_folder()
                raise RuntimeError(f"cannot write the lock file {self.path}: {exc.strerror}; choose another "
                                   f"--out-dir") from None
            try:
                got = True
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        got = False
                holder = self._read(fd)
                if not got:
                    raise RunLockedError(
                        f"{self.folder} is in use by another training run "
                        f"({_describe(holder) if holder else 'which is starting'}); wait for it to finish, stop it, "
                        f"or choose another --out-dir")
                try:
                    same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same_file = False
                if not same_file:
                    os.close(fd)
                    continue
                if holder and (holder.get("pid"), holder.get("host")) != (pid, host):
                    if holder.get("host") != host:
                        raise RunLockedError(
                            f"{self.folder} is locked by a training run on another host ({_describe(holder)}); "
                            f"wait for it to finish or choose another --out-dir; if that run is gone, delete "
                            f"{self.path}")
                    if fcntl is None and _alive(holder.get("pid")):
                        raise RunLockedError(f"{self.folder} is in use by another training run "
                                             f"({_describe(holder)}); wait for it to finish, stop it, or "
                                             f"choose another --out-dir")
                    warnings.warn(f"{self.path}: took over the stale lock of {_describe(holder)}, which is no "
                                  f"longer running", stacklevel=3)
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, json.dumps({"pid": pid, "host": host, "since": time.time()}).encode())
                os.fsync(fd)
            except BaseException:
                os.close(fd)
                self._remove_created_folder()
                raise
            self.fd = fd
            return self
        raise RunLockedError(f"could not take the lock {self.path}: it keeps being replaced; retry")

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it: a waiting run then finds a new file
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None
        self._remove_created_folder()

    def _remove_created_folder(self) -> None:
        if self.created_folder:
            try:
                self.folder.rmdir()  # only if empty: a run that failed before writing anything
            except OSError:
                pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def remove_stale_temp_files(folder: str | Path, names: Iterable[str]) -> list[Path]:
    """Delete the temporary files of interrupted atomic writes of ``folder/NAME``; call with the lock held."""
    removed = []
    for name in names:
        for tmp in temp_files(Path(folder) / name):
            size = tmp.stat().st_size
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
            warnings.warn(f"removed {tmp} ({size / 2**20:.1f} MiB), the temporary file of a write to {name} "
                          f"that was interrupted (the process was killed)", stacklevel=2)
    return removed
