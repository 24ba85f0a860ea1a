"""Argument types shared by the sub-commands (argparse calls them; a bad value is one line of usage error)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["unit_interval"]


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
