"""The chapters' exercises: their labels (kind and effort) and their solutions, read from the MyST text.

An exercise's title names its kind and the minutes it takes, ``{exercise} compute · 10 min``, so the
rendered book shows "Exercise 2 (compute · 10 min)" and a teacher can pick. The course page and the
student edition use the same reader: :func:`chapter_exercises` lists the exercises of a chapter,
:func:`strip_solutions` removes the ``{solution}`` blocks from MyST text.

Only the standard library is used: the directive blocks are found by their fences, as MyST finds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .chapters import ChapterError

__all__ = ["KINDS", "TITLE_EXAMPLE", "Block", "Exercise", "directive_blocks", "parse_title", "list_exercises",
           "chapter_exercises", "strip_solutions"]

# what the student does, from the least to the most machine time
KINDS = ("read", "compute", "modify the code", "run an experiment")
TITLE_EXAMPLE = "compute · 10 min"
_TITLE = re.compile(r"^\s*(?P<kind>[a-z ]+?)\s*·\s*(?P<minutes>\d+)\s*min\s*$")
# a fence as MyST reads it: up to 3 spaces, then 3+ backticks or 3+ colons (colon_fence), then the info
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|:{3,})(?P<info>.*)$")
_DIRECTIVE = re.compile(r"^\s*\{(?P<name>[A-Za-z][\w:-]*)\}\s*(?P<argument>.*?)\s*$")
_OPTION = re.compile(r"^\s*:(?P<key>[\w-]+):\s*(?P<value>.*?)\s*$")
# directives whose body is code or raw text, not Markdown: a fence inside them opens nothing
_OPAQUE = re.compile(r"^(code.*|math|raw|eval-rst|literalinclude)$")


@dataclass(frozen=True)
class Block:
    """A fenced directive: lines ``start`` (the opening fence) to ``end`` (the closing one), 0-based."""

    name: str
    argument: str
    start: int
    end: int
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Exercise:
    chapter: str    # "03_dilated_vs_stride_1d"
    label: str      # "ex-rate-three"
    kind: str       # one of KINDS
    minutes: int

    @property
    def title(self) -> str:
        return f"{self.kind} · {self.minutes} min"


def directive_blocks(text: str) -> list[Block]:
    """Every fenced directive of MyST text, nested ones included, in the order they open.

    A fence closes with the same character repeated at least as often and nothing after it. Code fences
    (```` ```python ````) and code-like directives are opaque: what looks like a fence inside them is text.
    An unclosed fence runs to the end of the text, as in MyST.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    stack: list[tuple[str, int, str, str, bool]] = []  # fence, start line, name, argument, opaque
    for i, line in enumerate(lines):
        m = _FENCE.match(line)
        if m is None:
            continue
        fence, info = m.group("fence"), m.group("info")
        top = stack[-1] if stack else None
        if top is not None and fence[0] == top[0][0] and len(fence) >= len(top[0]) and not info.strip():
            stack.pop()
            blocks.append(Block(top[2], top[3], top[1], i, _options(lines[top[1] + 1:i])))
            continue
        if top is not None and top[4]:
            continue  # inside code: not a fence
        if fence[0] == "`" and "`" in info:
            continue  # not a fence in CommonMark (an inline code span)
        d = _DIRECTIVE.match(info)
        name, argument = (d.group("name"), d.group("argument")) if d else ("", info.strip())
        stack.append((fence, i, name, argument, d is None or bool(_OPAQUE.match(name))))
    for _fence, start, name, argument, _opaque in reversed(stack):
        blocks.append(Block(name, argument, start, len(lines), _options(lines[start + 1:])))
    return sorted((b for b in blocks if b.name), key=lambda b: b.start)


def _options(body: list[str]) -> dict[str, str]:
    out = {}
    for line in body:
        m = _OPTION.match(line)
        if m is None:
            break  # the options are the first lines of the body
        out[m.group("key")] = m.group("value")
    return out


def parse_title(title: str) -> tuple[str, int]:
    """``(kind, minutes)`` of an exercise title such as ``"compute · 10 min"``; ``ValueError`` says how to fix it."""
    m = _TITLE.match(title)
    if m is None or m.group("kind") not in KINDS:
        raise ValueError(f"the title {title!r} does not name a kind and an effort: write ```{{exercise}} KIND · N min "
                         f"with KIND one of {', '.join(KINDS)} (e.g. ```{{exercise}} {TITLE_EXAMPLE})")
    minutes = int(m.group("minutes"))
    if not 1 <= minutes <= 240:
        raise ValueError(f"the title {title!r} gives {minutes} minutes: an exercise takes 1 to 240 minutes")
    return m.group("kind"), minutes


def list_exercises(text: str, chapter: str) -> list[Exercise]:
    """The exercises of a chapter's MyST text; ``ChapterError`` names the first one without label, kind or effort."""
    out = []
    for block in directive_blocks(text):
        if block.name != "exercise":
            continue
        where = f"chapter {chapter}, line {block.start + 1}"
        label = block.options.get("label", "")
        if not label:
            raise ChapterError(f"{where}: the exercise has no :label: (add `:label: ex-...` under its opening line)")
        try:
            kind, minutes = parse_title(block.argument)
        except ValueError as exc:
            raise ChapterError(f"{where} ({label}): {exc}") from None
        out.append(Exercise(chapter, label, kind, minutes))
    return out


def chapter_exercises(path: Path) -> list[Exercise]:
    """The exercises of one chapter file (``book/NN_name.md``)."""
    path = Path(path)
    return list_exercises(path.read_text(), path.stem)


def strip_solutions(text: str) -> tuple[str, int]:
    """MyST text without its ``{solution}`` blocks (and the blank lines after them); returns ``(text, removed)``.

    A solution nested in another directive goes with its fences; a solution's own nested blocks go with it.
    A gated solution (``{solution-start}`` ... ``{solution-end}``) raises ``ValueError``.
    """
    lines = text.splitlines(keepends=True)
    drop: set[int] = set()
    removed = 0
    for block in directive_blocks(text):
        if block.name in ("solution-start", "solution-end"):
            # the body of a gated solution lies between two blocks, outside both: removing them would leave it
            raise ValueError(f"line {block.start + 1}: a gated {{{block.name}}} cannot be removed for the student "
                             "edition; write the solution as one ```{solution} block")
        if block.name == "solution" and block.start not in drop:
            end = min(block.end, len(lines) - 1)
            while end + 1 < len(lines) and not lines[end + 1].strip():
                end += 1
            drop.update(range(block.start, end + 1))
            removed += 1
    return "".join(line for i, line in enumerate(lines) if i not in drop), removed
