"""Printed text that fits a page of the rendered book: :data:`PRINT_WIDTH` characters to a line."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence

__all__ = ["PRINT_WIDTH", "fit_lines", "signed", "in_words", "number_word"]

# what a code cell's output shows beside both sidebars of the rendered book (1400 px window) before it scrolls
PRINT_WIDTH = 100


def fit_lines(lines: Iterable[str], width: int = PRINT_WIDTH) -> str:
    """``lines`` joined by newlines, each longer than ``width`` continued on lines indented by two spaces
    (broken between words only: a word or path longer than a line stays whole)."""
    return "\n".join(textwrap.fill(line, width, subsequent_indent="  ", break_long_words=False,
                                   break_on_hyphens=False) if len(line) > width else line for line in lines)


def signed(x: float, digits: int = 1) -> str:
    """A difference as the book prints it: "+1.8", "-1.6", and "0.0" (no sign) where it rounds to zero,
    never "-0.0"."""
    text = f"{x:+.{digits}f}"
    return f"{0:.{digits}f}" if float(text) == 0 else text


def number_word(n: int) -> str:
    """"two" .. "ten" in words, larger (and smaller) counts in digits."""
    return "two three four five six seven eight nine ten".split()[n - 2] if 2 <= n <= 10 else str(n)


def in_words(items: Sequence[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
