"""The book's machinery: recording key figures, executing the chapters, rendering the HTML.

A chapter calls ``record("name", value)`` for each figure it states in its prose. When the chapter
is executed by the book runner, the figures are written to the chapter's results JSON (the runner
sets ``FASTFCN_RESULTS`` to that file); opened interactively, ``record`` just returns the value.

The runner (``fastfcn book run``) executes every chapter listed in ``book/_toc.yml`` (the
``book/NN_*.md`` jupytext notebooks) with papermill, one kernel per chapter, and writes
``book/_executed/<stem>.ipynb`` and ``book/_executed/<stem>.json`` (key figures, per-cell times,
environment). A chapter is executed again only when its text, any file of the ``fastfcn`` package,
the profile, the device or the seed changed. ``fastfcn book build`` renders the executed notebooks
with jupyter-book 1.x (strict, offline MathJax) into ``book/_build/html``.

Only the standard library is imported at module level: papermill, jupytext and yaml are imported
inside the functions that need them, so that ``fastfcn.book`` (and ``record``) work without them.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["note", "record", "RESULTS_ENV", "BOOK_DIR", "PACKAGE_DIR", "ChapterError", "Chapter", "toc_files",
           "list_chapters", "select_chapters", "read_chapter", "content_hash", "needs_run", "execute_chapter",
           "run_book", "stage_book", "build_book", "remote_scripts", "stale_chapters",
           "environment_stamp"]

RESULTS_ENV = "FASTFCN_RESULTS"
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
BOOK_DIR = REPO_DIR / "book"
CHAPTER_RE = re.compile(r"^\d\d_[A-Za-z0-9_-]+$")
PARAMETERS = ("profile", "device", "seed")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def record(name: str, value: Any, unit: str | None = None) -> Any:
    """Store one key figure of the running chapter; returns ``value`` unchanged."""
    path = os.environ.get(RESULTS_ENV)
    if path:
        p = Path(path)
        data = json.loads(p.read_text()) if p.exists() else {}
        data[name] = {"value": _jsonable(value), "unit": unit}
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, p)
    return value


# --------------------------------------------------------------------------------------------------
# chapters and the table of contents


def note(name: str, value: Any, unit: str | None = None) -> Any:
    """``record`` a key figure and ``glue`` it (myst-nb), so the prose can quote it as {glue:}`name`."""
    record(name, value, unit)
    try:
        from myst_nb import glue
    except ImportError:  # the package works without the book stack
        return value
    glue(name, value, display=False)
    return value


class ChapterError(RuntimeError):
    """A chapter cannot be read or executed; the message names the chapter (and the failing cell)."""


@dataclass(frozen=True)
class Chapter:
    stem: str    # "01_overview"
    path: Path   # book/01_overview.md

    @property
    def exists(self) -> bool:
        return self.path.is_file()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def toc_files(toc: Any) -> list[str]:
    """Every ``file``/``root`` entry of a jupyter-book ``_toc.yml`` (parsed), in reading order."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    out.append(node[key])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(toc)
    return out


def list_chapters(book_dir: Path = BOOK_DIR) -> list[Chapter]:
    """The executable chapters: the ``NN_*`` entries of ``_toc.yml``, whether or not written yet."""
    book_dir = Path(book_dir)
    toc_path = book_dir / "_toc.yml"
    if not toc_path.is_file():
        raise ChapterError(f"no table of contents: {toc_path} is missing")
    chapters = []
    for entry in toc_files(_read_yaml(toc_path)):
        stem = Path(entry).stem if entry.endswith((".md", ".ipynb")) else entry
        if CHAPTER_RE.match(Path(stem).name):
            chapters.append(Chapter(stem, book_dir / f"{stem}.md"))
    return chapters


def select_chapters(chapters: Sequence[Chapter], only: Iterable[str] | None) -> list[Chapter]:
    """Chapters matching ``only`` (stems ``01_overview``, numbers ``01``/``1`` or paths); all when empty."""
    only = list(only or [])
    if not only:
        return list(chapters)
    chosen: list[Chapter] = []
    for want in only:
        key = Path(want).stem if want.endswith(".md") or "/" in want else want
        hits = [c for c in chapters
                if c.stem == key or c.stem.split("_", 1)[0] == key.zfill(2) or c.stem.startswith(key + "_")]
        if not hits:
            raise ChapterError(f"no chapter {want!r} in _toc.yml; the chapters are: "
                               f"{', '.join(c.stem for c in chapters)}")
        chosen += [c for c in hits if c not in chosen]
    return [c for c in chapters if c in chosen]


def read_chapter(path: Path):
    """Read a MyST-markdown chapter with jupytext; check it has exactly one ``parameters`` cell."""
    import jupytext

    path = Path(path)
    if not path.is_file():
        raise ChapterError(f"chapter {path.stem}: {path} does not exist (it is listed in _toc.yml)")
    nb = jupytext.read(path)
    tagged = [i for i, cell in enumerate(nb.cells)
              if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        found = "none" if not tagged else f"{len(tagged)} (cells {tagged})"
        raise ChapterError(
            f"chapter {path.stem}: expected exactly one code cell tagged 'parameters' (papermill injects "
            f"profile/device/seed after it), found {found}. Add a cell\n"
            "```{code-cell} ipython3\n:tags: [parameters]\n\nprofile = \"quick\"\ndevice = \"auto\"\nseed = 0\n```")
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    return nb


# --------------------------------------------------------------------------------------------------
# caching


def _package_files(package_dir: Path) -> list[Path]:
    return sorted(p for p in Path(package_dir).rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))


def content_hash(chapter_path: Path, package_dir: Path = PACKAGE_DIR, *, profile: str, device: str,
                 seed: int = 0) -> str:
    """SHA-256 of the chapter's text, every file of the package, the profile, the device and the seed."""
    h = hashlib.sha256()
    h.update(b"chapter\0" + Path(chapter_path).read_bytes() + b"\0")
    package_dir = Path(package_dir)
    for p in _package_files(package_dir):
        h.update(b"file\0" + p.relative_to(package_dir).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
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
    try:
        old = json.loads(res_path.read_text()).get("hash")
    except (OSError, ValueError):
        return "unreadable results"
    if old != digest:
        return "changed"
    return None


# --------------------------------------------------------------------------------------------------
# environment stamp


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit(repo: Path = REPO_DIR) -> str | None:
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "") if commit else None


def environment_stamp(device: str = "cpu") -> dict[str, Any]:
    """Versions and the machine a chapter ran on (no hostname)."""
    import numpy
    import torch
    import torchvision

    from . import __version__

    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(torch.device(device))
    else:
        device_name = _cpu_model()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "fastfcn": __version__,
        "device": device,
        "device_name": device_name,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
    }


# --------------------------------------------------------------------------------------------------
# execution


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


def _failing_line(exc) -> tuple[int | None, str | None]:
    """(line within the cell, its code) of the failing statement, from IPython's traceback arrows."""
    cell_frame = False
    found: tuple[int | None, str | None] = (None, None)
    for line in _ANSI.sub("", "\n".join(exc.traceback or [])).splitlines():
        if line.startswith("Cell In["):
            cell_frame = True
        elif line.startswith(("File ", "/")) or line.endswith(".py"):
            cell_frame = False
        m = _ARROW.match(line.strip())
        if m and cell_frame:
            found = (int(m.group(1)), m.group(2))
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


def execute_chapter(chapter: Chapter, out_dir: Path, *, profile: str, device: str, seed: int = 0,
                    digest: str | None = None, resolved_device: str | None = None,
                    cell_timeout: int | None = None, cwd: Path | None = None) -> dict[str, Any]:
    """Execute one chapter with papermill; write ``<stem>.ipynb`` and ``<stem>.json`` atomically.

    Raises ``ChapterError`` naming the chapter and the failing cell; the partly executed notebook is
    then kept as ``<stem>.failed.ipynb`` and the chapter's old outputs are removed.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = chapter.stem
    nb = read_chapter(chapter.path)
    resolved_device = resolved_device or device
    nb_path, res_path = out_dir / f"{stem}.ipynb", out_dir / f"{stem}.json"
    partial = out_dir / f".{stem}.partial.ipynb"
    figures_path = out_dir / f".{stem}.figures.json"
    failed = out_dir / f"{stem}.failed.ipynb"
    for p in (partial, figures_path, failed):
        p.unlink(missing_ok=True)

    old_env = os.environ.get(RESULTS_ENV)
    os.environ[RESULTS_ENV] = str(figures_path)
    start = time.perf_counter()
    try:
        executed = papermill.execute_notebook(
            nb, str(partial), parameters={"profile": profile, "device": device, "seed": seed},
            kernel_name="python3", cwd=str(cwd or chapter.path.parent), progress_bar=False,
            execution_timeout=cell_timeout,
            # the kernel's own log (not the chapter's output) warns about plain-TCP transport on every start
            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except PapermillExecutionError as exc:
        _discard(nb_path, res_path, figures_path, partial, failed)
        start_line = _source_line(chapter.path, exc.source or "")
        offset, code = _failing_line(exc)
        line = start_line + offset - 1 if start_line and offset else start_line
        where = f"cell {exc.cell_index} (In [{exc.exec_count}]" + (f", {chapter.path.name} line {line}" if line else "")
        code = code or next((ln for ln in (exc.source or "").splitlines() if ln.strip()), "")
        raise ChapterError(f"chapter {stem} failed in {where}): {exc.ename}: {exc.evalue}\n"
                           f"    {code.strip()}\n    the partly executed notebook is {failed}") from None
    except Exception as exc:  # kernel died, timeout, ...
        _discard(nb_path, res_path, figures_path, partial, failed)
        raise ChapterError(f"chapter {stem} could not be executed: {type(exc).__name__}: {exc}") from exc
    finally:
        if old_env is None:
            os.environ.pop(RESULTS_ENV, None)
        else:
            os.environ[RESULTS_ENV] = old_env
    total = time.perf_counter() - start

    figures = json.loads(figures_path.read_text()) if figures_path.is_file() else {}
    figures_path.unlink(missing_ok=True)
    cells = _cell_times(executed)
    results = {
        "chapter": stem,
        "hash": digest,
        "profile": profile,
        "device": resolved_device,
        "device_requested": device,
        "seed": seed,
        "figures": figures,
        "cells": cells,
        "cells_seconds": round(sum(c["seconds"] or 0.0 for c in cells), 3),
        "total_seconds": round(total, 3),
        "executed_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "environment": environment_stamp(resolved_device),
    }
    os.replace(partial, nb_path)
    _write_atomic(res_path, json.dumps(results, indent=1) + "\n")
    return results


def _discard(nb_path: Path, res_path: Path, figures_path: Path, partial: Path, failed: Path) -> None:
    # stale outputs must not be rendered as if they were current, nor count as a cache hit
    for p in (nb_path, res_path, figures_path):
        p.unlink(missing_ok=True)
    if partial.exists():
        os.replace(partial, failed)


def run_book(book_dir: Path = BOOK_DIR, out_dir: Path | None = None, *, profile: str = "quick",
             device: str = "auto", seed: int = 0, only: Iterable[str] | None = None, force: bool = False,
             package_dir: Path = PACKAGE_DIR, cell_timeout: int | None = None,
             progress: bool = True) -> list[dict[str, Any]]:
    """Execute the chapters that need it; returns one summary per chapter (``status``: executed/cached)."""
    from tqdm.auto import tqdm

    from .profiles import get_profile, resolve_device

    book_dir = Path(book_dir).resolve()
    # absolute: the kernel runs in book_dir and writes the figures to a path given to it
    out_dir = Path(out_dir).resolve() if out_dir is not None else book_dir / "_executed"
    get_profile(profile)  # fail early on an unknown profile
    resolved = resolve_device(device)
    chapters = select_chapters(list_chapters(book_dir), only)
    missing = [c.stem for c in chapters if not c.exists]
    if missing:
        raise ChapterError(f"chapters listed in {book_dir / '_toc.yml'} but not written: {', '.join(missing)}")
    for c in chapters:  # check every chapter's parameters cell before spending time on any
        read_chapter(c.path)

    summary = []
    bar = tqdm(chapters, desc=f"book ({profile}, {resolved})", unit="chapter", disable=not progress,
               file=sys.stderr)
    try:
        for chapter in bar:
            bar.set_postfix_str(chapter.stem)
            digest = content_hash(chapter.path, package_dir, profile=profile, device=resolved, seed=seed)
            reason = needs_run(chapter.stem, out_dir, digest, force)
            if reason is None:
                res = json.loads((out_dir / f"{chapter.stem}.json").read_text())
                summary.append({"chapter": chapter.stem, "status": "cached", "seconds": res.get("total_seconds")})
                if progress:
                    tqdm.write(f"  {chapter.stem:<28} cached    (executed in {res.get('total_seconds', 0):.1f} s)")
                continue
            res = execute_chapter(chapter, out_dir, profile=profile, device=device, seed=seed, digest=digest,
                                  resolved_device=resolved, cell_timeout=cell_timeout, cwd=book_dir)
            summary.append({"chapter": chapter.stem, "status": "executed", "reason": reason,
                            "seconds": res["total_seconds"]})
            if progress:
                tqdm.write(f"  {chapter.stem:<28} executed  {res['total_seconds']:7.1f} s  ({reason})")
    finally:
        bar.close()
    return summary


# --------------------------------------------------------------------------------------------------
# rendering


_SKIP_IN_STAGE = {"_build", "_executed", "__pycache__", ".ipynb_checkpoints"}


def _filter_toc(toc: Any, drop: set[str]) -> Any:
    if isinstance(toc, dict):
        out = {}
        for key, value in toc.items():
            if key in ("parts", "chapters", "sections") and isinstance(value, list):
                kept = [_filter_toc(v, drop) for v in value
                        if not (isinstance(v, dict) and Path(str(v.get("file", ""))).stem in drop)]
                if kept:
                    out[key] = kept
            else:
                out[key] = value
        return out
    return toc


def stage_book(book_dir: Path, executed_dir: Path, stage_dir: Path, stems: Sequence[str] | None = None) -> Path:
    """Lay out the sources jupyter-book renders: the executed notebooks instead of the ``.md`` chapters.

    Copies ``_config.yml``, ``_toc.yml`` (without the chapters not in ``stems``), ``references.bib`` and
    every other file of ``book/`` except chapter sources, notebooks and build folders.
    """
    import yaml

    book_dir, executed_dir, stage_dir = Path(book_dir), Path(executed_dir), Path(stage_dir)
    chapters = list_chapters(book_dir)
    all_stems = [c.stem for c in chapters]
    stems = all_stems if stems is None else list(stems)
    unknown = [s for s in stems if s not in all_stems]
    if unknown:
        raise ChapterError(f"not chapters of {book_dir / '_toc.yml'}: {', '.join(unknown)}")
    missing = [s for s in stems if not (executed_dir / f"{s}.ipynb").is_file()]
    if missing:
        raise ChapterError(f"not executed yet: {', '.join(missing)} (looked in {executed_dir}); "
                           "run `python -m fastfcn book run` first")
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    for item in sorted(book_dir.iterdir()):
        name = item.name
        if name in _SKIP_IN_STAGE or name.startswith(".") or name in ("_toc.yml",):
            continue
        if item.is_file() and (item.suffix == ".ipynb" or (item.suffix == ".md" and CHAPTER_RE.match(item.stem))):
            continue
        if item.is_dir():
            shutil.copytree(item, stage_dir / name, ignore=shutil.ignore_patterns(*_SKIP_IN_STAGE, "*.ipynb"))
        else:
            shutil.copy2(item, stage_dir / name)
    toc = _filter_toc(_read_yaml(book_dir / "_toc.yml"), set(all_stems) - set(stems))
    (stage_dir / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    for s in stems:
        shutil.copy2(executed_dir / f"{s}.ipynb", stage_dir / f"{s}.ipynb")
    return stage_dir


def stale_chapters(book_dir: Path = BOOK_DIR, executed_dir: Path | None = None,
                   package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Human-readable notes on executed chapters that no longer match their sources (or each other)."""
    book_dir = Path(book_dir)
    executed_dir = Path(executed_dir) if executed_dir is not None else book_dir / "_executed"
    notes, profiles = [], {}
    for c in list_chapters(book_dir):
        res_path = executed_dir / f"{c.stem}.json"
        if not c.exists or not res_path.is_file():
            continue
        res = json.loads(res_path.read_text())
        profiles.setdefault(res.get("profile"), []).append(c.stem)
        digest = content_hash(c.path, package_dir, profile=res.get("profile"), device=res.get("device"),
                              seed=res.get("seed", 0))
        if digest != res.get("hash"):
            notes.append(f"{c.stem} was executed from an older version of the chapter or of the package")
    if len(profiles) > 1:
        notes.append("chapters were executed with different profiles: "
                     + "; ".join(f"{p}: {', '.join(s)}" for p, s in profiles.items()))
    return notes


_SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?((?:https?:)?//[^\"' >]+)", re.IGNORECASE)
_LINK_CSS = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?((?:https?:)?//[^\"' >]+)[^>]*>", re.IGNORECASE)


def remote_scripts(html_dir: Path) -> list[tuple[str, str]]:
    """``(page, url)`` for every ``<script src>`` (and stylesheet) of the built HTML that is not local."""
    found = []
    for page in sorted(Path(html_dir).rglob("*.html")):
        text = page.read_text(errors="replace")
        rel = page.relative_to(html_dir).as_posix()
        found += [(rel, url) for url in _SCRIPT_SRC.findall(text)]
        found += [(rel, m.group(1)) for m in _LINK_CSS.finditer(text) if "stylesheet" in m.group(0).lower()]
    return found


def build_book(book_dir: Path = BOOK_DIR, executed_dir: Path | None = None, output_dir: Path | None = None,
               stems: Sequence[str] | None = None, quiet: bool = False) -> Path:
    """Render the executed chapters with jupyter-book 1.x, strictly; returns the path of ``index.html``.

    Sources are staged in ``<output_dir>/_build/src`` and the HTML lands in ``<output_dir>/_build/html``
    (``output_dir`` defaults to ``book/``). Raises ``RuntimeError`` when the build fails, MathJax was
    not copied, or a page loads a remote script.
    """
    book_dir = Path(book_dir)
    executed_dir = Path(executed_dir) if executed_dir is not None else book_dir / "_executed"
    output_dir = Path(output_dir) if output_dir is not None else book_dir
    stage = stage_book(book_dir, executed_dir, output_dir / "_build" / "src", stems)
    html = output_dir / "_build" / "html"
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(stage),
           "--path-output", str(output_dir), "--builder", "html", "--all", "-W", "-n", "--keep-going"]
    if quiet:
        cmd.append("-q")
    proc = subprocess.run(cmd, capture_output=quiet, text=True)
    if proc.returncode != 0:
        detail = f"\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}" if quiet else ""
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}) for {stage}{detail}")
    if not (html / "_static" / "mathjax" / "tex-chtml.js").is_file():
        raise RuntimeError(f"MathJax was not copied to {html / '_static' / 'mathjax'} (sphinx-mathjax-offline)")
    remote = remote_scripts(html)
    if remote:
        listing = "\n".join(f"  {page}: {url}" for page, url in remote[:20])
        raise RuntimeError(f"the built book loads remote resources (it must work offline):\n{listing}")
    index = html / "index.html"
    if not index.is_file():
        raise RuntimeError(f"the build produced no {index}")
    return index
