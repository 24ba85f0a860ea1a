"""Every precise number in the book's prose is computed by the page that states it.

The test reads the pages of ``book/`` that compute (the ``NN_*.md`` chapters and the front page
``intro.md``) as text and fails with ``page:line`` and the number when the *prose* holds a number
with three or more significant digits that is neither a glue reference nor labelled as the paper's.
A number that depends on the profile must be glued: the text has to stay true in every profile.

What counts as prose: the Markdown text, including headings, tables, list items and the bodies of
the ``{exercise}``/``{solution}`` directives. What does not:

- code: ``{code-cell}`` cells, fenced code blocks (``python``, ``bash``, ...), inline ``code``;
- math: ``$...$`` and ``$$...$$`` (a derivation by hand shows its arithmetic; the figures it is
  compared with are in the prose and glued there);
- roles and references: ``{glue:...}`name```, ``{cite}`...```, ``{ref}``/``{doc}``/``{numref}``,
  labels ``(name)=``, directive options (``:label:``), the targets of links ``[text](target)``
  and HTML comments;
- names: digits glued to a name (``ResNet-101``, ``resnet50s``, ``Conv5``, ``fp16``, ``C3``),
  dotted section numbers (``3.3.3``), and the number after ``Section``, ``Table``, ``Fig.``,
  ``Figure``, ``Eq.``, ``Equation``, ``Chapter`` or ``line``;
- years (1950 to 2039), and ResNet depths (101, 152, 269) in a sentence that names a ResNet
  ("ResNet-50/101", "the bottleneck ResNets (50 and 101)");
- the paper's numbers: a sentence that says whose they are, with "paper" in it (``(paper)``, "the
  paper's", "Table 1 of the paper"), may quote them;
- the short list :data:`METHOD_CONSTANTS`: sizes that the paper's method fixes (not measurements,
  the same in every profile).

Significant digits are counted from the first non-zero digit; an integer's trailing zeros do not
count (``480``, ``2,000`` have two and one), a decimal's do (``1.50`` has three), and in scientific
notation the mantissa's count (``1e5`` has one, ``1.32e5`` three). So ``4``, ``16``, ``0.25``,
``100`` and ``1e5`` pass, ``128``, ``1.50`` and ``19,735,552`` must be glued. Numbers with
fewer digits are not checked: small counts and round factors are usually facts of the text (four
branches, 4 times more), and a rule that flagged them would be noise.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
PAGES = sorted(BOOK.glob("[0-9][0-9]_*.md")) + [BOOK / "intro.md"]

# Constants of the paper's method, the same in every profile: the input side of its timing (512),
# its training crop and evaluation size (480 and 520), DeepLab's aligned side (513) and EncNet's
# crop (576), and ResNet-50's stage widths (256, 512, 1024, 2048).
METHOD_CONSTANTS = {"256", "480", "512", "513", "520", "576", "1024", "2048"}

# ResNet depths, in a sentence that names a ResNet ("ResNet-50/101", "the bottleneck ResNets (50 and 101)")
RESNET_DEPTHS = {"101", "152", "269"}
RESNET = re.compile(r"resnet", re.I)

# directives whose bodies are prose (everything else fenced is code or machinery)
PROSE_DIRECTIVES = {"exercise", "solution", "note", "tip", "warning", "important", "admonition", "dropdown",
                    "margin", "seealso", "epigraph", "figure"}

FENCE = re.compile(r"^\s*(`{3,}|~{3,}|:{3,})\s*(\{([\w:-]+)\})?")
NUMBER = re.compile(r"(?<![\w.,])(?<![A-Za-z]-)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?([eE][-+]?\d+)?(?![\w.]*\d)")
ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")
INLINE_CODE = re.compile(r"(`+).*?\1")
DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
INLINE_MATH = re.compile(r"(?<!\\)\$[^$]+?(?<!\\)\$")  # may cross a line end
LINK_TARGET = re.compile(r"\]\([^)]*\)")
COMMENT = re.compile(r"<!--.*?-->", re.S)
LABEL = re.compile(r"^\s*\([\w:.-]+\)=\s*$")
SECTION_NUMBER = re.compile(r"\b\d+(?:\.\d+){2,}\b")
REFERENCE = re.compile(r"\b(?:Section|Sections|Table|Tables|Fig\.|Figs\.|Figure|Figures|Eq\.|Eqs\.|Equation|"
                       r"Equations|Chapter|Chapters|line|lines)\s+\d+", re.I)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
PAPER = re.compile(r"\bpaper", re.I)


def significant_digits(integer: str, fraction: str | None) -> int:
    """Significant digits of a number written as ``integer`` (commas allowed) and ``.fraction``."""
    digits = integer.replace(",", "")
    if fraction:
        return len((digits + fraction[1:]).lstrip("0"))
    return len(digits.lstrip("0").rstrip("0"))


def prose_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of every prose line of a MyST page; code, math blocks and options removed."""
    lines = text.splitlines()
    out: list[tuple[int, str]] = []
    stack: list[tuple[str, bool]] = []  # (closing fence, prose inside)
    start = 0
    if lines and lines[0].strip() == "---":  # YAML front matter
        start = next((i + 1 for i in range(1, len(lines)) if lines[i].strip() == "---"), len(lines))
    in_math = False
    after_open = False  # directive options (":label: x") come right after the fence
    for i in range(start, len(lines)):
        line = lines[i]
        m = FENCE.match(line)
        if m and stack and line.strip() == m.group(1) and len(m.group(1)) >= len(stack[-1][0]) \
                and m.group(1)[0] == stack[-1][0][0]:
            stack.pop()
            continue
        if m and (not stack or stack[-1][1]):
            prose = m.group(3) in PROSE_DIRECTIVES
            stack.append((m.group(1), prose))
            after_open = prose
            continue
        if stack and not stack[-1][1]:
            continue
        if after_open and re.match(r"^\s*:[\w-]+:", line):
            continue
        after_open = False
        if line.strip().startswith("$$") or in_math:  # a display-math block spanning lines
            count = line.count("$$")
            if in_math or count == 1:
                in_math = in_math != (count % 2 == 1)
                continue
        if LABEL.match(line):
            continue
        out.append((i + 1, line))
    return out


def paragraphs(lines: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Consecutive prose lines, split at blank lines (a sentence never crosses a paragraph)."""
    out, current = [], []
    for no, line in lines:
        if not line.strip():
            if current:
                out.append(current)
            current = []
        else:
            current.append((no, line))
    return out + ([current] if current else [])


def unglued_numbers(text: str) -> list[tuple[int, str]]:
    """``(line, number)`` for every number of three or more significant digits the prose states on its own."""
    found = []
    for para in paragraphs(prose_lines(text)):
        # one string for the paragraph, remembering where each line starts, so that sentences and inline
        # math may cross line ends
        joined, starts = "", []
        for no, line in para:
            starts.append((len(joined), no))
            joined += line + "\n"
        cleaned = strip_markup(joined)
        pos = 0
        for sentence in SENTENCE_END.split(cleaned):
            begin = cleaned.index(sentence, pos)
            pos = begin + len(sentence)
            if PAPER.search(sentence):
                continue
            for m in NUMBER.finditer(sentence):
                integer, fraction, value = m.group(1), m.group(2), m.group(0)
                if value in METHOD_CONSTANTS or (value in RESNET_DEPTHS and RESNET.search(sentence)):
                    continue
                if re.fullmatch(r"19[5-9]\d|20[0-3]\d", value):
                    continue
                if significant_digits(integer, fraction) < 3:
                    continue
                at = begin + m.start()
                line = max(no for offset, no in starts if offset <= at)
                found.append((line, value))
    return found


def strip_markup(text: str) -> str:
    """``text`` with roles, code, math, link targets and references blanked out (same length: offsets stay valid)."""
    def blank(m: re.Match) -> str:
        return "".join("\n" if c == "\n" else " " for c in m.group(0))

    for pattern in (COMMENT, ROLE, INLINE_CODE, DISPLAY_MATH, INLINE_MATH, LINK_TARGET, SECTION_NUMBER, REFERENCE):
        text = pattern.sub(blank, text)
    return text


# ------------------------------------------------------------------------------------------------
# the rule itself, on small examples


@pytest.mark.parametrize(("integer", "fraction", "digits"), [
    ("128", None, 3), ("480", None, 2), ("2,000", None, 1), ("19,735,552", None, 8), ("1", ".50", 3),
    ("0", ".96", 2), ("0", ".001", 1), ("65504", None, 5), ("100", None, 1)])
def test_significant_digits(integer, fraction, digits):
    assert significant_digits(integer, fraction) == digits


def test_rule_flags_unglued_numbers_and_spares_the_rest():
    page = """---
jupytext: {}
---

# Title 2019

Measured 1.50 s against 0.96 s at 128 px, and {glue:text}`x:.2f` with `code 123.4`, 1e5 but 1.32e5.
ResNet-101 and resnet50s, Section 3.3.3, Table 1 and $x = 4.831$; the crop is 480, the size 512.
The paper reports 51.05% mIoU. In Table 2 of the paper, 18.77 FPS. But we measured 37.56 FPS.
A [link 1](https://example.org/123456) and (paper) 78.98.

$$
y = 123.45
$$

```{code-cell} ipython3
x = 12345
```

````{solution} ex-a
:label: ex-a-sol

About 13.4 GFLOPs.

```python
print(99999)
```
````
"""
    assert unglued_numbers(page) == [(7, "1.50"), (7, "128"), (7, "1.32e5"), (9, "37.56"), (23, "13.4")]


# ------------------------------------------------------------------------------------------------
# the book


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_prose_numbers_are_computed(page):
    if not page.is_file():
        pytest.skip(f"{page.name} is not written")
    found = unglued_numbers(page.read_text())
    listing = "\n".join(f"  {page.name}:{line}: {number}" for line, number in found)
    assert not found, ("numbers in the prose that the page does not compute (glue them with "
                       "fastfcn.book.note and {glue:text}`name`, or say they are the paper's):\n" + listing)
