"""Support for the book's chapters: recording key figures.

A chapter calls ``record("name", value)`` for each figure it states in its prose. When the chapter
is executed by the book runner, the figures are written to the chapter's results JSON (the runner
sets ``FASTFCN_RESULTS`` to that file); opened interactively, ``record`` just returns the value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["record", "RESULTS_ENV"]

RESULTS_ENV = "FASTFCN_RESULTS"


def _jsonable(value: Any) -> Any:
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
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, p)
    return value
