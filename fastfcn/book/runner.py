"""Executing the chapters: papermill, one kernel per chapter, with a cache.

``fastfcn book run`` executes every chapter listed in ``book/_toc.yml`` (the ``book/NN_*.md``
jupytext notebooks) with papermill and writes ``book/_executed/<stem>.ipynb`` and
``book/_executed/<stem>.json`` (key figures, per-cell times, environment). A chapter is executed
again only when its text, any file of the ``fastfcn`` package, the profile, the device or the seed
changed.

The front page (the table of contents' root, when it is a notebook: ``book/intro.md``) reads the
chapters' results files, so it runs last, with the folder of those files as its ``executed_dir``
parameter, and again whenever one of them changed. It runs with the whole book, or when ``--only``
names it (``--only 07 intro``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..utils.environment import environment
from ..utils.io import atomic_write_text, pause_point
from ..utils.lock import FolderLock
from .chapters import (
    DEFAULT_BOOK_DIR,
    Chapter,
    ChapterError,
    front_page,
    is_front_page,
    list_chapters,
    read_chapter,
    select_chapters,
)
from .record import RESULTS_ENV

__all__ = ["PACKAGE_DIR", "BOOK_LOCK_NAME", "ExecutionOptions", "content_hash", "needs_run", "read_results_file",
           "execute_chapter", "run_book", "stale_chapters"]

BOOK_LOCK_NAME = "book_run.lock"  # held in the executed folder while `fastfcn book run` writes it
# the package's own files are part of every chapter's cache key (read only, never written)
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _package_files(package_dir: Path) -> list[Path]:
    return sorted(p for p in Path(package_dir).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))


def content_hash(chapter_path: Path, package_dir: Path = PACKAGE_DIR, *, profile: str, device: str,
                 seed: int = 0, inputs: Iterable[Path] = ()) -> str:
    """SHA-256 of the chapter's text, every file of the package, the profile, the device and the seed.

    ``inputs``: files the page reads besides the package (the front page: the chapters' results files).
    """
    h = hashlib.sha256()
    h.update(b"chapter\0" + Path(chapter_path).read_bytes() + b"\0")
    package_dir = Path(package_dir)
    for p in _package_files(package_dir):
        h.update(b"file\0" + p.relative_to(package_dir).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    for p in inputs:
        h.update(b"input\0" + Path(p).name.encode() + b"\0" + Path(p).read_bytes() + b"\0")
    h.update(json.dumps({"profile": profile, "device": device, "seed": seed}, sort_keys=True).encode())
    return h.hexdigest()


def needs_run(stem: str, out_dir: Path, digest: str, force: bool = False) -> str | None:
    """Why chapter ``stem`` must be executed (a short reason), or ``None`` when its outputs are current."""
    out_dir = Path(out_dir)
    nb_path, res_path = out_dir / f"{stem}.ipynb", out_dir / f"{stem}.json"
    if force:
        return "forced"
    if not nb_path.is_file() or not res_path.is_file():
        return "no outputs yet"
    doc = read_results_file(res_path)
    if doc is None:
        return "unreadable results"
    if doc.get("hash") != digest:
        return "changed"
    return None


def read_results_file(path: Path) -> dict[str, Any] | None:
    """A chapter's results file parsed; None when it cannot be read or is not a JSON object (truncated by a
    killed run, ``null``, a list): such a file is executed again, never trusted."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _source_line(chapter_path: Path, source: str) -> int | None:
    """1-based line of the chapter's .md where a cell's source starts (best effort)."""
    text = chapter_path.read_text()
    first = next((ln for ln in source.splitlines() if ln.strip()), "")
    pos = text.find(source.strip()) if source.strip() else -1
    if pos < 0 and first:
        pos = text.find(first)
    return text.count("\n", 0, pos) + 1 if pos >= 0 else None


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


_ARROW = re.compile(r"^-*>\s*(\d+)\s?(.*)$")
_CELL_FRAME = re.compile(r"^Cell In\[(\d+)\], line (\d+)")


def _failing_line(exc) -> tuple[int | None, str | None]:
    """(line within the failing cell, its code), from IPython's traceback: the innermost frame of that cell
    (``Cell In[N]`` with N its execution count), not a frame of a helper defined in an earlier cell; a
    frame without arrows (a SyntaxError) gives the line its header names."""
    lines = _ANSI.sub("", "\n".join(exc.traceback or [])).splitlines()
    in_cell = False
    found: tuple[int | None, str | None] = (None, None)
    for i, line in enumerate(lines):
        frame = _CELL_FRAME.match(line.strip())
        if frame:
            in_cell = exc.exec_count is None or int(frame.group(1)) == exc.exec_count
            if in_cell:
                code = next((ln for ln in lines[i + 1:] if ln.strip()), None)
                found = (int(frame.group(2)), code)
            continue
        if line.startswith(("File ", "/")) or line.endswith(".py"):
            in_cell = False
        arrow = _ARROW.match(line.strip())
        if arrow and in_cell:
            found = (int(arrow.group(1)), arrow.group(2))
    return found


def _cell_times(nb) -> list[dict[str, Any]]:
    cells = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("papermill", {})
        seconds = meta.get("duration")
        if seconds is None and meta.get("start_time") and meta.get("end_time"):
            start = datetime.fromisoformat(meta["start_time"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(meta["end_time"].replace("Z", "+00:00"))
            seconds = (end - start).total_seconds()
        head = next((ln for ln in cell.source.splitlines() if ln.strip()), "")
        cells.append({"index": i, "seconds": None if seconds is None else round(float(seconds), 3),
                      "source": head[:80]})
    return cells


@dataclass(frozen=True)
class ExecutionOptions:
    """How a chapter is executed: the parameters every chapter receives, and where and how long its kernel runs."""

    profile: str  # smoke / quick / full
    device: str  # as asked ("auto" included): the chapter's parameter
    seed: int = 0
    resolved_device: str | None = None  # what ``device`` resolved to, for the results file (default: ``device``)
    cell_timeout: int | None = None  # seconds per cell, None: no limit
    cwd: Path | None = None  # the kernel's folder (default: the chapter's)

    def chapter_parameters(self) -> dict[str, Any]:
        return {"profile": self.profile, "device": self.device, "seed": self.seed}


@dataclass(frozen=True)
class _ChapterFiles:
    """What executing chapter ``stem`` writes into ``out_dir``, final and temporary."""

    notebook: Path  # <stem>.ipynb
    results: Path  # <stem>.json
    partial: Path  # the notebook while papermill writes it
    figures: Path  # what the chapter's record() calls write, read into the results file
    failed: Path  # the partly executed notebook of a failed run

    @classmethod
    def of(cls, out_dir: Path, stem: str) -> _ChapterFiles:
        return cls(out_dir / f"{stem}.ipynb", out_dir / f"{stem}.json", out_dir / f".{stem}.partial.ipynb",
                   out_dir / f".{stem}.figures.json", out_dir / f"{stem}.failed.ipynb")

    def discard(self) -> None:
        # stale outputs must not be rendered as if they were current, nor count as a cache hit
        for p in (self.notebook, self.results, self.figures):
            p.unlink(missing_ok=True)
        if self.partial.exists():
            os.replace(self.partial, self.failed)


def execute_chapter(chapter: Chapter, out_dir: Path, options: ExecutionOptions, *, digest: str | None = None,
                    parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute one chapter with papermill; write ``<stem>.ipynb`` and ``<stem>.json`` atomically.

    ``parameters`` are injected besides profile, device and seed (the front page's ``executed_dir``);
    ``digest`` (the chapter's :func:`content_hash`) is stored in the results file, the cache's key.

    Raises ``ChapterError`` naming the chapter and the failing cell; the partly executed notebook is
    then kept as ``<stem>.failed.ipynb`` and the chapter's old outputs are removed.
    """
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = read_chapter(chapter.path)
    files = _ChapterFiles.of(out_dir, chapter.stem)
    for p in (files.partial, files.figures, files.failed):
        p.unlink(missing_ok=True)
    start = time.perf_counter()
    executed = _run_papermill(nb, chapter, files, options, {**options.chapter_parameters(), **(parameters or {})})
    total = time.perf_counter() - start
    figures = json.loads(files.figures.read_text()) if files.figures.is_file() else {}
    files.figures.unlink(missing_ok=True)
    results = _results_record(chapter.stem, options, digest, figures, _cell_times(executed), total)
    os.replace(files.partial, files.notebook)
    atomic_write_text(files.results, json.dumps(results, indent=1) + "\n")
    return results


def _run_papermill(nb, chapter: Chapter, files: _ChapterFiles, options: ExecutionOptions,
                   parameters: dict[str, Any]):
    """``nb`` (the chapter read) executed; a failure discards the chapter's outputs and is one ``ChapterError``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    old_env = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(files.figures)
    try:
        return papermill.execute_notebook(
            nb, str(files.partial), parameters=parameters, kernel_name="python3",
            cwd=str(options.cwd or chapter.path.parent), progress_bar=False, execution_timeout=options.cell_timeout,
            # the kernel's own log (not the chapter's output) warns about plain-TCP transport on every start
            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as exc:
        files.discard()
        raise ChapterError(_failure_message(chapter, exc, files.failed)) from None
    except Exception as exc:  # kernel died, timeout, ...
        files.discard()
        raise ChapterError(f"chapter {chapter.stem} could not be executed: {type(exc).__name__}: {exc}") from exc
    finally:
        if old_env is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = old_env


def _failure_message(chapter: Chapter, exc, failed: Path) -> str:
    """Which cell and line of the chapter failed, with what, and where the partly executed notebook is."""
    start_line = _source_line(chapter.path, exc.source or "")
    offset, code = _failing_line(exc)
    line = start_line + offset - 1 if start_line and offset else start_line
    where = f"cell {exc.cell_index} (In [{exc.exec_count}]" + (f", {chapter.path.name} line {line}" if line else "")
    code = code or next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
    return (f"chapter {chapter.stem} failed in {where}): {exc.ename}: {exc.evalue}\n"
            f"    {code.strip()}\n    the partly executed notebook is {failed}")


def _results_record(stem: str, options: ExecutionOptions, digest: str | None, figures: dict[str, Any],
                    cells: list[dict[str, Any]], total: float) -> dict[str, Any]:
    """The chapter's results file: its key figures, per-cell times and the environment it ran in."""
    device = options.resolved_device or options.device
    return {
        "chapter": stem,
        "hash": digest,
        "profile": options.profile,
        "device": device,
        "device_requested": options.device,
        "seed": options.seed,
        "figures": figures,
        "cells": cells,
        "cells_seconds": round(sum(c["seconds"] or 0.0 for c in cells), 3),
        "total_seconds": round(total, 3),
        "executed_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "environment": environment(device),
    }


def run_book(book_dir: Path = DEFAULT_BOOK_DIR, out_dir: Path | None = None, *, profile: str = "quick",
             device: str = "auto", seed: int = 0, only: Iterable[str] | None = None, force: bool = False,
             package_dir: Path = PACKAGE_DIR, cell_timeout: int | None = None,
             progress: bool = True) -> list[dict[str, Any]]:
    """Execute the chapters that need it; returns one summary per chapter (``status``: executed/cached).

    The run holds ``out_dir/book_run.lock`` (:class:`~fastfcn.utils.lock.FolderLock`): a second run into
    the same folder is refused at once, naming the first."""
    from ..profiles import get_profile
    from ..utils.device import resolve_device

    book_dir = Path(book_dir).resolve()
    # absolute: the kernel runs in book_dir and writes the figures to a path given to it
    out_dir = Path(out_dir).resolve() if out_dir is not None else book_dir / "_executed"
    get_profile(profile)  # fail early on an unknown profile
    resolved = resolve_device(device)
    every = list_chapters(book_dir)
    front, only = front_page(book_dir), list(only or [])
    rest = [o for o in only if not is_front_page(o, front)]
    chapters = select_chapters(every, rest) if rest or not only else []
    missing = [c.stem for c in chapters if not c.exists]
    if missing:
        raise ChapterError(f"chapters listed in {book_dir / '_toc.yml'} but not written: {', '.join(missing)}")
    if front is not None and (not only or len(rest) < len(only)):
        chapters.append(front)  # last: it reads the results files the chapters write
    for c in chapters:  # check every chapter's parameters cell before spending time on any
        read_chapter(c.path)

    options = ExecutionOptions(profile, device, seed, resolved_device=resolved, cell_timeout=cell_timeout,
                               cwd=book_dir)
    # two runs into one folder would interleave their chapters' figures and cache the mixture as current
    with FolderLock(out_dir, BOOK_LOCK_NAME, holder="book run", option="--out"):
        pause_point("book_run_locked")
        return _execute_chapters(chapters, front, every, out_dir, options, package_dir, force, progress)


def _execute_chapters(chapters: list[Chapter], front: Chapter | None, every: list[Chapter], out_dir: Path,
                      options: ExecutionOptions, package_dir: Path, force: bool, progress: bool
                      ) -> list[dict[str, Any]]:
    """The loop of :func:`run_book`: each chapter executed, or its cached outputs reported."""
    from tqdm.auto import tqdm

    book_dir, profile, resolved, seed = options.cwd, options.profile, options.resolved_device, options.seed
    summary = []
    bar = tqdm(chapters, desc=f"book ({profile}, {resolved})", unit="chapter", disable=not progress,
               file=sys.stderr)
    try:
        for chapter in bar:
            bar.set_postfix_str(chapter.stem)
            inputs, params = _inputs(chapter, front, every, out_dir), None
            if chapter == front or reads_results(chapter):
                params = {"executed_dir": os.path.relpath(out_dir, book_dir)}  # the page runs in book_dir
            digest = content_hash(chapter.path, package_dir, profile=profile, device=resolved, seed=seed,
                                  inputs=inputs)
            reason = needs_run(chapter.stem, out_dir, digest, force)
            if reason is None:
                res = read_results_file(out_dir / f"{chapter.stem}.json") or {}
                summary.append({"chapter": chapter.stem, "status": "cached", "seconds": res.get("total_seconds")})
                if progress:
                    tqdm.write(f"  {chapter.stem:<28} cached    (executed in {res.get('total_seconds', 0):.1f} s)")
                continue
            res = execute_chapter(chapter, out_dir, options, digest=digest, parameters=params)
            summary.append({"chapter": chapter.stem, "status": "executed", "reason": reason,
                            "seconds": res["total_seconds"]})
            if progress:
                tqdm.write(f"  {chapter.stem:<28} executed  {res['total_seconds']:7.1f} s  ({reason})")
    finally:
        bar.close()
    return summary


def _results_files(out_dir: Path, chapters: Iterable[Chapter]) -> list[Path]:
    """The chapters' results files that exist: what the front page reads."""
    return [p for c in chapters if (p := Path(out_dir) / f"{c.stem}.json").is_file()]


def reads_results(chapter: Chapter) -> bool:
    """Whether a chapter reads other chapters' results files: its parameters cell names ``executed_dir``."""
    if not chapter.exists:
        return False
    nb = read_chapter(chapter.path)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    return re.search(r"^executed_dir\s*=", cell.source, re.M) is not None


def _inputs(chapter: Chapter, front: Chapter | None, every: list[Chapter], out_dir: Path) -> list[Path]:
    """The results files a page depends on: the front page all chapters', a reader (the report) the earlier ones'."""
    if chapter == front:
        return _results_files(out_dir, every)
    if reads_results(chapter):
        return _results_files(out_dir, every[:every.index(chapter)])
    return []


def stale_chapters(book_dir: Path = DEFAULT_BOOK_DIR, executed_dir: Path | None = None,
                   package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Human-readable notes on executed chapters that no longer match their sources (or each other)."""
    book_dir = Path(book_dir)
    executed_dir = Path(executed_dir) if executed_dir is not None else book_dir / "_executed"
    notes, profiles = [], {}
    chapters, front = list_chapters(book_dir), front_page(book_dir)
    for c in chapters + ([front] if front is not None else []):
        res_path = executed_dir / f"{c.stem}.json"
        if not c.exists or not res_path.is_file():
            continue
        res = read_results_file(res_path)
        if res is None:
            notes.append(f"{res_path} is damaged (not a chapter's results JSON); `python -m fastfcn book run "
                         f"--only {c.stem} --force` executes {c.stem} again")
            continue
        profiles.setdefault(res.get("profile"), []).append(c.stem)
        inputs = _inputs(c, front, chapters, executed_dir)
        digest = content_hash(c.path, package_dir, profile=res.get("profile"), device=res.get("device"),
                              seed=res.get("seed", 0), inputs=inputs)
        if digest != res.get("hash"):
            notes.append(f"{c.stem} was executed from an older version of the chapter or of the package")
    if len(profiles) > 1:
        notes.append("chapters were executed with different profiles: "
                     + "; ".join(f"{p}: {', '.join(s)}" for p, s in profiles.items()))
    return notes
