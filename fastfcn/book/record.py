"""What a chapter calls: ``record`` a key figure, ``note`` it for the prose.

A chapter calls ``record("name", value)`` for each figure it states in its prose. When the chapter
is executed by the book runner, the figures are written to the chapter's results JSON (the runner
sets ``FASTFCN_RESULTS`` to that file); opened interactively, ``record`` just returns the value.
``note`` also glues the value (myst-nb), so the prose can quote it as ``{glue:}`name```; without
the book extras installed it only records. ``notes`` does the same for several figures in one call.

A chapter keeps these calls out of the reader's way: they sit in a cell tagged ``remove-cell``
right after the cell that computes the figures ("figures for the prose"), so the visible code is the
code that teaches.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..utils.io import atomic_write_text

__all__ = ["RESULTS_ENV", "record", "note", "notes"]

RESULTS_ENV = "FASTFCN_RESULTS"


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN: a figure that could not be measured is null
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def record(name: str, value: Any, unit: str | None = None) -> Any:
    """Store one key figure of the running chapter; returns ``value`` unchanged."""
    path = os.environ.get(RESULTS_ENV)
    if path:
        p = Path(path)
        data = json.loads(p.read_text()) if p.exists() else {}
        data[name] = {"value": _jsonable(value), "unit": unit}
        atomic_write_text(p, json.dumps(data, indent=1))
    return value


def note(name: str, value: Any, unit: str | None = None, *, markdown: bool = False) -> Any:
    """``record`` a key figure and ``glue`` it (myst-nb), so the prose can quote it as {glue:}`name`.

    ``markdown=True`` glues ``value`` as Markdown text (quoted with {glue:md}`name`): a word or a
    phrase the chapter computed, such as "smaller than". A numpy or torch scalar is glued as the Python number it
    holds. Returns the value glued.
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()  # a numpy or torch scalar: glue would show its repr, "np.float64(6.3)"
    record(name, value, unit)
    try:
        from myst_nb import glue
    except ImportError:  # the package works without the book stack
        return value
    if markdown:
        from IPython.display import Markdown

        glue(name, Markdown(str(value)), display=False)
    else:
        glue(name, value, display=False)
    return value


def notes(figures: Mapping[str, Any], unit: str | None = None, *, markdown: bool = False) -> None:
    """``note`` every ``name: value`` of ``figures``, all with the same ``unit`` (and ``markdown``)."""
    for name, value in figures.items():
        note(name, value, unit, markdown=markdown)
