"""The book's two editions: the complete one, and the student edition without the solutions.

Both render the same executed notebooks. The student edition is made from the staged copies
(``book/_build/student/_build/src``): every ``{solution}`` block is cut out of the notebooks' Markdown
cells and of the other pages, so the solutions are neither in the HTML nor in the page sources the
HTML offers for download, and sphinx-exercise's ``hide_solutions`` is set as well, so that a solution
the cutting missed still does not render. The executed notebooks themselves are never changed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .chapters import ChapterError, read_yaml
from .exercises import directive_blocks, strip_solutions

__all__ = ["EDITIONS", "check_edition", "default_output_dir", "prepare_edition"]

EDITIONS = ("complete", "student")
STUDENT_SUBDIR = Path("_build") / "student"
_SOLUTION = re.compile(r"\{solution(-start|-end)?\}")


def check_edition(edition: str) -> str:
    """``edition`` when it is one of :data:`EDITIONS`, else a ``ValueError`` listing them."""
    if edition not in EDITIONS:
        raise ValueError(f"unknown edition {edition!r}: choose one of {', '.join(EDITIONS)}")
    return edition


def default_output_dir(book_dir: Path, edition: str) -> Path:
    """Where an edition is rendered by default: ``book/`` (HTML in ``book/_build/html``) for the complete
    edition, ``book/_build/student`` (HTML in ``book/_build/student/_build/html``) for the student one,
    so that the two coexist."""
    return Path(book_dir) if check_edition(edition) == "complete" else Path(book_dir) / STUDENT_SUBDIR


def _strip_notebook(path: Path) -> int:
    nb = json.loads(path.read_text())
    removed = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text, n = strip_solutions("".join(source) if isinstance(source, list) else source)
        if n:
            cell["source"], removed = text, removed + n
    if removed:
        path.write_text(json.dumps(nb, indent=1))
    return removed


def _leftover_solutions(stage_dir: Path) -> list[str]:
    found = []
    for path in sorted(stage_dir.rglob("*.md")):
        found += [f"{path.name} line {b.start + 1}" for b in directive_blocks(path.read_text())
                  if b.name.startswith("solution")]
    # anywhere in a notebook, metadata included: a copy of the chapter there would be served for download
    found += [path.name for path in sorted(stage_dir.rglob("*.ipynb")) if _SOLUTION.search(path.read_text())]
    return found


def prepare_edition(stage_dir: Path, edition: str) -> int:
    """Turn a staged book into ``edition``, in place; returns the number of solutions removed.

    Raises ``ChapterError`` when a solution cannot be removed (a gated ``{solution-start}``), naming where.
    """
    stage_dir = Path(stage_dir)
    if check_edition(edition) == "complete":
        return 0
    import yaml

    removed = 0
    for path in sorted(stage_dir.rglob("*.ipynb")):
        try:
            removed += _strip_notebook(path)
        except ValueError as exc:
            raise ChapterError(f"student edition: {path.name}: {exc}") from None
    for path in sorted(stage_dir.rglob("*.md")):
        try:
            text, n = strip_solutions(path.read_text())
        except ValueError as exc:
            raise ChapterError(f"student edition: {path.name}: {exc}") from None
        if n:
            path.write_text(text)
            removed += n
    leftover = _leftover_solutions(stage_dir)
    if leftover:
        raise ChapterError(f"student edition: solutions left after removal at {', '.join(leftover)}")
    config_path = stage_dir / "_config.yml"
    config = read_yaml(config_path) or {}
    config["title"] = f"{config.get('title', 'The book')} (student edition)"
    sphinx = config.setdefault("sphinx", {})
    sphinx.setdefault("config", {})["hide_solutions"] = True
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return removed
