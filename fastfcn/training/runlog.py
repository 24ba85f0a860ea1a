"""The JSON-lines logs of a run folder: ``log.jsonl`` (one record per epoch), ``steps.jsonl`` (per step).

* ``log.jsonl`` is derivable from the checkpoint: ``last.pth`` carries the list of epoch records
  (``epoch_log``), so a run killed between the checkpoint's rename and the log's append loses nothing:
  a resume rewrites ``log.jsonl`` from the checkpoint (atomically).
* ``steps.jsonl`` is appended during an epoch, ahead of the checkpoint; a resume keeps its records up
  to the checkpoint's iteration.
* A crash while appending can leave a torn last line: it is dropped with a warning naming the file.
  A bad line elsewhere is an error naming the file and the line (someone edited the file).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from ..utils.io import atomic_write_text

__all__ = ["JsonLog", "read_json_lines", "write_json_lines"]


def read_json_lines(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (a torn last line is dropped with a warning)."""
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    records = []
    for i, (n, line) in enumerate(numbered):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(numbered) - 1:
                warnings.warn(f"{path}: dropped its torn last line {n} (a crash while appending?): "
                              f"{line[:60]!r}", stacklevel=2)
                break
            raise ValueError(f"{path}, line {n}: not JSON ({exc.msg}); fix or delete that line, or delete "
                             f"the file") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {n}: a JSON {type(record).__name__}, not a record; fix or delete "
                             f"that line, or delete the file")
        records.append(record)
    return records


def write_json_lines(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Replace ``path`` atomically by one JSON line per record."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


class JsonLog:
    """Append-only JSON lines.

    ``records`` given: the file is rewritten from them (a resume: the checkpoint's epoch log).
    ``keep_until_iteration`` given: the records past that iteration are dropped (a resume without
    stored records). Neither: a new run, the file is removed.
    """

    def __init__(self, path: Path, keep_until_iteration: int | None = None,
                 records: list[dict[str, Any]] | None = None) -> None:
        self.path = path
        if records is not None:
            write_json_lines(path, records)
        elif keep_until_iteration is not None:
            if path.exists():
                kept = [r for r in read_json_lines(path) if r.get("iteration", 0) <= keep_until_iteration]
                write_json_lines(path, kept)
        elif path.exists():
            path.unlink()

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
