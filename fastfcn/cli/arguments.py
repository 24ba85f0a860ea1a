"""Argument types shared by the sub-commands (argparse calls them; a bad value is one line of usage error)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["positive_float", "positive_int", "unit_interval"]


def unit_interval(what: str) -> Callable[[str], float]:
    """An argparse type for a number between 0 and 1; ``what`` names it in the error (``"the opacity"``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"{what} must lie between 0 and 1, got {text}")
        return value

    return parse


def positive_int(what: str) -> Callable[[str], int]:
    """An argparse type for a whole number of at least 1; ``what`` names it in the error (``"--limit"``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{what} must be at least 1 (the number of images), got {text}")
        return value

    return parse


def positive_float(what: str) -> Callable[[str], float]:
    """An argparse type for a finite number above 0; ``what`` names it in the error (``"a scale"``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be a finite number above 0, got {text}")
        return value

    return parse
