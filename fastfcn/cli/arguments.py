"""Argument types shared by the sub-commands (argparse calls them; a bad value is one line of usage error)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["positive_float", "positive_int", "unit_interval"]


def _number_type(convert: Callable[[str], float], kind: str, accepts: Callable[[float], bool],
                 rule: str, what: str) -> Callable[[str], float]:
    """An argparse type: ``convert`` the text (else "expected {kind}"), then ``accepts`` or "{what} {rule}"."""

    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"{what} {rule}, got {text}")
        return value

    return parse


def unit_interval(what: str) -> Callable[[str], float]:
    """An argparse type for a number between 0 and 1; ``what`` names it in the error (``"the opacity"``)."""
    return _number_type(float, "a number between 0 and 1", lambda v: 0.0 <= v <= 1.0,
                        "must lie between 0 and 1", what)


def positive_int(what: str) -> Callable[[str], int]:
    """An argparse type for a whole number of at least 1; ``what`` names it in the error (``"--limit"``)."""
    return _number_type(int, "a whole number", lambda v: v >= 1, "must be at least 1", what)


def positive_float(what: str) -> Callable[[str], float]:
    """An argparse type for a finite number above 0; ``what`` names it in the error (``"a scale"``)."""
    return _number_type(float, "a number", lambda v: math.isfinite(v) and v > 0,
                        "must be a finite number above 0", what)
