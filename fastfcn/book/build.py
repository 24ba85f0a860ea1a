"""Rendering the executed chapters with jupyter-book 1.x, strictly and offline.

``fastfcn book build`` stages the executed notebooks (instead of the ``.md`` sources) with the
book's configuration in ``book/_build/src`` and renders them into ``book/_build/html``; MathJax is
served from the build itself and a page that loads a remote script fails the build.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .chapters import (
    CHAPTER_RE,
    DEFAULT_BOOK_DIR,
    Chapter,
    ChapterError,
    front_page,
    list_chapters,
    read_yaml,
)
from .editions import check_edition, default_output_dir, prepare_edition

__all__ = ["merge_injected_parameters", "stage_book", "remote_scripts", "build_book"]


_SKIP_IN_STAGE = {"_build", "_executed", "__pycache__", ".ipynb_checkpoints"}
# pages that link into every chapter (the course page lists each chapter's exercises): a build of
# some chapters only leaves them out, as their links would not resolve
WHOLE_BOOK_PAGES = {"course"}


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


_ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)\s*=")


def _tags(cell: dict[str, Any]) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def merge_injected_parameters(nb: dict[str, Any]) -> dict[str, Any]:
    """Show the ``parameters`` cell once, with the values the chapter ran with.

    papermill leaves the chapter's own ``parameters`` cell (the defaults) and adds an
    ``injected-parameters`` cell after it (the values used); a reader would see both. Each default
    that was injected is replaced by its injected value (other lines of the cell stay as written), and
    the injected cell is dropped. ``nb`` is a notebook as parsed JSON; it is changed in place and returned.
    """
    cells = nb.get("cells", [])
    injected = [c for c in cells if "injected-parameters" in _tags(c)]
    own = [c for c in cells if "parameters" in _tags(c)]
    if not injected or not own:
        return nb
    values = {}
    for line in _source(injected[0]).splitlines():
        if (m := _ASSIGNMENT.match(line)) is not None:
            values[m.group(1)] = line
    lines = []
    for line in _source(own[0]).splitlines():
        m = _ASSIGNMENT.match(line)
        lines.append(values.pop(m.group(1)) if m is not None and m.group(1) in values else line)
    own[0]["source"] = "\n".join(lines + list(values.values()))
    nb["cells"] = [c for c in cells if c is not injected[0]]
    return nb


def _stage_front_page(front: Chapter, executed_dir: Path, stage_dir: Path, partial: bool) -> None:
    """The executed front page; in a build of some chapters only, a plain page instead (it links to all)."""
    if partial:
        title = next((ln for ln in front.path.read_text().splitlines() if ln.startswith("# ")), "# The book")
        (stage_dir / f"{front.stem}.md").write_text(
            f"{title}\n\nA build of some chapters only: the front page, which summarises the whole book, is "
            "left out.\n\n```{tableofcontents}\n```\n")
        return
    nb = json.loads((executed_dir / f"{front.stem}.ipynb").read_text())
    (stage_dir / f"{front.stem}.ipynb").write_text(json.dumps(merge_injected_parameters(nb), indent=1))


def stage_book(book_dir: Path, executed_dir: Path, stage_dir: Path, stems: Sequence[str] | None = None) -> Path:
    """Lay out the sources jupyter-book renders: the executed notebooks instead of the ``.md`` chapters.

    Copies ``_config.yml``, ``_toc.yml`` (without the chapters not in ``stems``, and then without the
    :data:`WHOLE_BOOK_PAGES`), ``references.bib`` and every other file of ``book/`` except chapter
    sources, notebooks and build folders.
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
    front, partial = front_page(book_dir), set(stems) != set(all_stems)
    if front is not None and not partial and not (executed_dir / f"{front.stem}.ipynb").is_file():
        raise ChapterError(f"the front page {front.path.name} is a notebook and was not executed (looked in "
                           f"{executed_dir}): `python -m fastfcn book run` runs it after the chapters, "
                           f"`python -m fastfcn book run --only {front.stem}` alone")
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    for item in sorted(book_dir.iterdir()):
        name = item.name
        if name in _SKIP_IN_STAGE or name.startswith(".") or name in ("_toc.yml",):
            continue
        if item.is_file() and (item.suffix == ".ipynb" or (item.suffix == ".md" and CHAPTER_RE.match(item.stem))):
            continue
        if front is not None and item == front.path:  # staged below, executed
            continue
        if item.is_dir():
            shutil.copytree(item, stage_dir / name, ignore=shutil.ignore_patterns(*_SKIP_IN_STAGE, "*.ipynb"))
        else:
            shutil.copy2(item, stage_dir / name)
    drop = set(all_stems) - set(stems)
    toc = _filter_toc(read_yaml(book_dir / "_toc.yml"), (drop | WHOLE_BOOK_PAGES) if drop else drop)
    (stage_dir / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    for s in stems:
        nb = json.loads((executed_dir / f"{s}.ipynb").read_text())
        papermill_meta = nb.get("metadata", {}).get("papermill", {})
        if not isinstance(papermill_meta.get("input_path", ""), str):
            # papermill stores the notebook it was given (the chapter, with its solutions) as input_path
            papermill_meta["input_path"] = f"{s}.md"
        (stage_dir / f"{s}.ipynb").write_text(json.dumps(merge_injected_parameters(nb), indent=1))
    if front is not None:
        _stage_front_page(front, executed_dir, stage_dir, partial)
    return stage_dir


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


def build_book(book_dir: Path = DEFAULT_BOOK_DIR, executed_dir: Path | None = None, output_dir: Path | None = None,
               stems: Sequence[str] | None = None, quiet: bool = False, edition: str = "complete") -> Path:
    """Render the executed chapters with jupyter-book 1.x, strictly; returns the path of ``index.html``.

    Sources are staged in ``<output_dir>/_build/src`` and the HTML lands in ``<output_dir>/_build/html``;
    ``output_dir`` defaults to ``book/`` for the complete edition and to ``book/_build/student`` for the
    ``"student"`` edition (the same chapters without their solutions, see :mod:`.editions`). Raises
    ``RuntimeError`` when the build fails, MathJax was not copied, or a page loads a remote script.
    """
    book_dir = Path(book_dir)
    check_edition(edition)
    executed_dir = Path(executed_dir) if executed_dir is not None else book_dir / "_executed"
    output_dir = Path(output_dir) if output_dir is not None else default_output_dir(book_dir, edition)
    stage = stage_book(book_dir, executed_dir, output_dir / "_build" / "src", stems)
    prepare_edition(stage, edition)
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
