"""The code a reader sees in a chapter fits the rendered book's code box: no sideways scrolling."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastfcn.utils.text import PRINT_WIDTH

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "book").glob("*.md"))


def visible_code_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of the code cells a reader sees (cells removed or whose input is removed left out)."""
    out, in_cell, hidden = [], False, False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```{code-cell}"):
            in_cell, hidden = True, False
        elif in_cell and line.startswith(":tags:"):
            hidden = "remove-cell" in line or "remove-input" in line
        elif in_cell and line.startswith("```"):
            in_cell = False
        elif in_cell and not hidden:
            out.append((number, line))
    return out


def test_the_scan_sees_visible_code_only() -> None:
    text = "\n".join(["```{code-cell} ipython3", "x = 1", "```", "prose " * 40,
                      "```{code-cell} ipython3", ":tags: [remove-cell]", "y = 2", "```"])
    assert visible_code_lines(text) == [(2, "x = 1")]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_visible_code_fits_the_code_box(chapter: Path) -> None:
    wide = [f"line {n}: {len(line)} characters" for n, line in visible_code_lines(chapter.read_text())
            if len(line) > PRINT_WIDTH]
    assert not wide, f"{chapter.name}: wrap these code lines to {PRINT_WIDTH} characters: {wide}"
