"""One training run per folder at a time: a lock file, and the clean-up of what a killed run left.

:class:`RunLock` holds ``OUT_DIR/train.lock`` while a run writes the folder: the package's one folder
lock (:class:`fastfcn.utils.lock.FolderLock`: the holder named, released by the kernel when the holder
dies, a dead holder's lock taken over with a warning) with a training run's words in its messages.

:func:`remove_stale_temp_files` deletes the hidden temporary files (``.last.pth.XXXX.tmp``) of an
atomic write whose process was killed; with the lock held, no writer of these files is running.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

from ..utils.io import temp_files
from ..utils.lock import FolderLock, FolderLockedError

__all__ = ["RunLock", "RunLockedError", "remove_stale_temp_files", "LOCK_NAME"]

LOCK_NAME = "train.lock"
RunLockedError = FolderLockedError  # the name training code has always caught


class RunLock(FolderLock):
    """``with RunLock(out_dir):`` -- the training folder's lock for this process."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__(folder, LOCK_NAME, holder="training run", option="--out-dir")


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
