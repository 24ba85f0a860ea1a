"""The book's chapters: the ``NN_*`` entries of ``_toc.yml``, read as notebooks with jupytext.

``yaml`` and ``jupytext`` are imported inside the functions that need them, so that the package
works without the book extras.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CHAPTER_RE", "DEFAULT_BOOK_DIR", "ChapterError", "Chapter", "read_yaml", "toc_files", "list_chapters",
           "front_page", "is_front_page", "select_chapters", "read_chapter", "book_dir_or_error"]

CHAPTER_RE = re.compile(r"^\d\d_[A-Za-z0-9_-]+$")
# relative to the current directory: the book of the repository when run from its root
DEFAULT_BOOK_DIR = Path("book")


class ChapterError(RuntimeError):
    """A chapter cannot be read or executed; the message names the chapter (and the failing cell)."""


@dataclass(frozen=True)
class Chapter:
    stem: str    # "01_overview"
    path: Path   # book/01_overview.md

    @property
    def exists(self) -> bool:
        return self.path.is_file()


def read_yaml(path: Path) -> Any:
    """A YAML file, parsed (``yaml`` is a book extra)."""
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


def list_chapters(book_dir: Path = DEFAULT_BOOK_DIR) -> list[Chapter]:
    """The executable chapters: the ``NN_*`` entries of ``_toc.yml``, whether or not written yet."""
    book_dir = Path(book_dir)
    toc_path = book_dir / "_toc.yml"
    if not toc_path.is_file():
        raise ChapterError(f"no table of contents: {toc_path} is missing")
    chapters = []
    for entry in toc_files(read_yaml(toc_path)):
        stem = Path(entry).stem if entry.endswith((".md", ".ipynb")) else entry
        if CHAPTER_RE.match(Path(stem).name):
            chapters.append(Chapter(stem, book_dir / f"{stem}.md"))
    return chapters


def front_page(book_dir: Path = DEFAULT_BOOK_DIR) -> Chapter | None:
    """The root page of ``_toc.yml`` when it is an executable notebook (it has code cells), else None.

    The front page summarises the chapters' results files, so ``fastfcn book run`` executes it after
    them and ``fastfcn book build`` renders its executed notebook; a plain Markdown root is copied as is.
    """
    toc_path = Path(book_dir) / "_toc.yml"
    root = read_yaml(toc_path).get("root") if toc_path.is_file() else None
    if not isinstance(root, str):
        return None
    stem = Path(root).stem if root.endswith((".md", ".ipynb")) else root
    path = Path(book_dir) / f"{stem}.md"
    if path.is_file() and "```{code-cell}" in path.read_text():
        return Chapter(stem, path)
    return None


def is_front_page(key: str, page: Chapter | None) -> bool:
    """Whether ``key`` (as given to ``--only``: ``intro``, ``intro.md`` or ``book/intro.md``) names the front page."""
    return page is not None and Path(key).stem == page.stem


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


def book_dir_or_error(book_dir: str | Path | None) -> Path:
    """``book_dir`` (default ``./book``) resolved, or a ``ChapterError`` saying where a book is expected."""
    path = Path(book_dir) if book_dir is not None else DEFAULT_BOOK_DIR
    if not (path / "_toc.yml").is_file():
        raise ChapterError(f"no book at {path.resolve()} (no _toc.yml there): run from the repository's root "
                           "or pass --book-dir")
    return path.resolve()
