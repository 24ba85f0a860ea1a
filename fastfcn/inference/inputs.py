"""The image files ``fastfcn predict`` is given, and the names of its outputs (see :mod:`fastfcn.inference.predict`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..data.images import image_extensions

__all__ = ["collect_inputs", "output_paths"]


def _walk(root: Path, exclude: set[Path], exts: set[str], problems: list[tuple[Path, str]]) -> tuple[list[Path], int]:
    """Image files under ``root`` (sorted, symbolic links followed, loops and ``exclude`` pruned), and how
    many files were skipped for their extension; broken links, special files and unreadable folders go
    to ``problems``."""
    files: list[Path] = []
    skipped = 0
    seen = {root.resolve()}

    def unreadable(err: OSError) -> None:
        problems.append((Path(err.filename or root), f"cannot read this folder ({err.strerror or err})"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable, followlinks=True):
        folder = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            real = (folder / name).resolve()
            if name.startswith(".") or real in exclude or real in seen:
                continue
            seen.add(real)
            keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            f = folder / name
            if name.startswith("."):
                continue
            if f.suffix.lower() not in exts:
                skipped += 1
            elif f.is_symlink() and not f.exists():
                problems.append((f, f"broken symbolic link (it points to {os.readlink(f)!r})"))
            elif not f.is_file():
                problems.append((f, "not a regular file (a pipe, socket or device)"))
            else:
                files.append(f)
    return files, skipped


def collect_inputs(inputs: Sequence[str | Path], out_dir: str | Path | None = None
                   ) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]], int]:
    """``(file, output name relative to out_dir)`` pairs, the inputs that cannot be processed with the
    reason (missing, broken link, special file, unreadable folder), and how many folder files were skipped
    for not having an image extension. The output name is the file's whole name (``photo.jpg``); files
    keep their folder structure below a folder input. ``out_dir`` and the folders this run writes into are
    not searched."""
    exts = image_extensions()
    files: list[tuple[Path, Path]] = []
    problems: list[tuple[Path, str]] = []
    skipped = 0
    exclude: set[Path] = set()
    if out_dir is not None:
        out = Path(out_dir).resolve()
        exclude = {out} | {out / (Path(raw).resolve().name or "input") for raw in inputs if Path(raw).is_dir()}
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found, n = _walk(path, exclude, exts, problems)
            skipped += n
            base = Path(path.resolve().name or "input")
            files += [(f, base / f.relative_to(path)) for f in found]
        elif path.is_file():
            files.append((path, Path(path.name)))
        elif path.is_symlink():
            problems.append((path, f"broken symbolic link (it points to {os.readlink(path)!r})"))
        elif path.exists():
            problems.append((path, "not a regular file (a pipe, socket or device)"))
        else:
            problems.append((path, "no such file or folder"))
    # two inputs must not write the same outputs (the same file name from two places, or one file twice)
    used: set[Path] = set()
    unique = []
    for f, name in files:
        candidate, n = name, 2
        while candidate in used:
            candidate = name.with_name(f"{name.name}_{n}")
            n += 1
        used.add(candidate)
        unique.append((f, candidate))
    return unique, problems, skipped


def output_paths(out_dir: str | Path, name: Path) -> tuple[Path, Path]:
    """The mask and overlay paths of an input whose output name is ``name`` (see :func:`collect_inputs`)."""
    base = Path(out_dir) / name
    return base.with_name(f"{base.name}_mask.png"), base.with_name(f"{base.name}_overlay.png")
