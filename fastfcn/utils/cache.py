"""The one folder where the package keeps what it can make again (exported ONNX graphs).

``$FASTFCN_CACHE`` when set, else ``$XDG_CACHE_HOME/fastfcn``, else ``~/.cache/fastfcn``. Everything in
it is derived from other files and may be deleted at any time.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["cache_dir", "file_digest"]


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it), created when missing."""
    root = os.environ.get("FASTFCN_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastfcn"
    path = Path(root).joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_digest(path: str | Path, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of a file's bytes (read a megabyte at a time)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()[:length]
