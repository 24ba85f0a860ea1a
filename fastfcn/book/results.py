"""The results files that the book's summary pages read: this build's chapters, and runs made elsewhere.

One home for reading them, shared by the front page (:mod:`.front_page`) and the reproduction report
(:mod:`.report`):

* **this build**: ``book/_executed/<stem>.json``, one per chapter, written by ``fastfcn book run``
  (:mod:`fastfcn.book.runner`): ``{"chapter", "profile", "device", "figures": {name: {"value",
  "unit"}}, "executed_at", "environment": {"device_name", "git_commit", ...}, ...}``;
* **committed runs**: ``book/results/<folder>/NN_<stem>.json`` in the same format, copied from a run
  made on another machine (``book/results/full/`` for a ``full`` run on a GPU), and the GPU
  benchmark ``book/results/gpu/bench.json`` (``fastfcn bench`` JSON: environment, options, results)
  with ``device.json`` beside it.

Nothing here writes a file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .record import RESULTS_ENV

__all__ = ["BUILD_DIR", "COMMITTED_DIR", "load_results", "figures", "number", "build_results_dir",
           "find_figure", "chapter_stem", "Run", "build_run", "load_committed", "GpuBench", "load_gpu_bench"]

BUILD_DIR = Path("_executed")   # where `fastfcn book run` writes the results, relative to book/ (pages run there)
COMMITTED_DIR = Path("results")  # book/results: measurements committed from runs made elsewhere


def load_results(executed_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Every chapter's results file in ``executed_dir``, ``{stem: parsed JSON}`` (unreadable ones left out)."""
    out = {}
    for path in sorted(Path(executed_dir).glob("[0-9][0-9]_*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a file being written or broken: the page says the chapter is missing
        if isinstance(doc, dict):
            out[path.stem] = doc
    return out


def figures(results: dict[str, dict[str, Any]], stem: str) -> dict[str, Any]:
    """The figures chapter ``stem`` recorded, ``{name: value}`` (empty when it has not run)."""
    recorded = results.get(stem, {}).get("figures", {})
    return {k: v.get("value") if isinstance(v, dict) else v for k, v in recorded.items()}


def number(value: Any) -> float | None:
    """A recorded figure as a float; None when it was not measured (null, NaN or not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def build_results_dir(executed_dir: str | Path | None = None) -> Path:
    """The folder of this build's results files.

    ``executed_dir`` when given; else the folder the book runner is writing the running chapter's
    figures to (it names a file there in ``FASTFCN_RESULTS``), so a page run by ``fastfcn book run
    --out DIR`` reads that build; else ``book/_executed`` (a page opened in Jupyter runs in ``book/``).
    """
    if executed_dir:
        return Path(executed_dir)
    running = os.environ.get(RESULTS_ENV)
    return Path(running).parent if running else BUILD_DIR


def _stems(results: dict[str, dict[str, Any]]) -> Iterator[str]:
    yield from sorted(results)


def find_figure(results: dict[str, dict[str, Any]], name: str) -> tuple[str, Any] | None:
    """``(stem, value)`` of the first chapter (in number order) that recorded ``name`` with a value, or None.

    Pages look figures up by name rather than by chapter, so that a chapter may be split or renumbered.
    """
    for stem in _stems(results):
        value = figures(results, stem).get(name)
        if value is not None:
            return stem, value
    return None


def chapter_stem(results: dict[str, dict[str, Any]], chapter: str) -> str | None:
    """The stem of chapter number ``chapter`` ("03") among the results, or None when it has not run."""
    return next((s for s in _stems(results) if s.split("_", 1)[0] == chapter), None)


def _short_commit(commit: Any) -> str | None:
    if not isinstance(commit, str) or not commit:
        return None
    dirty = commit.endswith("-dirty")
    return commit[:10] + (" (with local changes)" if dirty else "")


@dataclass(frozen=True)
class Run:
    """One set of chapter results: this build, or a run committed under ``book/results/<folder>/``."""

    origin: str                               # "this build" or "book/results/full"
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def profile(self) -> str | None:
        profiles = sorted({d.get("profile") for d in self.results.values() if d.get("profile")})
        return "+".join(profiles) if profiles else None

    def find(self, name: str) -> tuple[str, Any] | None:
        return find_figure(self.results, name)

    def value(self, name: str) -> Any:
        hit = self.find(name)
        return None if hit is None else hit[1]

    def provenance(self, stem: str) -> str:
        """Where chapter ``stem`` of this run ran: device, date and commit, in words."""
        doc = self.results.get(stem, {})
        env = doc.get("environment") or {}
        device = env.get("device_name") or "device not recorded"
        where = f"{device} ({doc.get('device') or env.get('device') or '?'})"
        date = str(doc.get("executed_at") or env.get("created") or "")[:10] or "date not recorded"
        commit = _short_commit(env.get("git_commit"))
        return (f"{self.origin}, chapter {stem}, `{doc.get('profile', '?')}` profile, {where}, {date}, "
                + (f"commit {commit}" if commit else "commit not recorded"))


def build_run(executed_dir: str | Path | None = None, *, exclude: str | None = None) -> Run:
    """This build's results (see :func:`build_results_dir`); ``exclude``: a figure that marks a page's own file."""
    results = load_results(build_results_dir(executed_dir))
    if exclude:
        results = {s: d for s, d in results.items() if exclude not in d.get("figures", {})}
    return Run("this build", results)


def _label(root: Path, name: str) -> str:
    # the book's own folder is named as a reader finds it in the repository
    return f"book/results/{name}" if root.name == COMMITTED_DIR.name else str(root / name)


def load_committed(results_dir: str | Path = COMMITTED_DIR) -> list[Run]:
    """One :class:`Run` per folder of ``results_dir`` that holds chapter results files (``full/``, ``gpu/``, ...)."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    runs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        results = load_results(folder)
        if results:
            runs.append(Run(_label(root, folder.name), results))
    return runs


@dataclass(frozen=True)
class GpuBench:
    """The committed GPU benchmark: ``fastfcn bench`` rows and where they were measured."""

    path: str
    rows: list[dict[str, Any]]
    device_name: str
    date: str
    commit: str | None

    def provenance(self) -> str:
        return (f"{self.path}, {self.device_name}, {self.date}, "
                + (f"commit {self.commit}" if self.commit else "commit not recorded"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def load_gpu_bench(results_dir: str | Path = COMMITTED_DIR) -> GpuBench | None:
    """``<results_dir>/gpu/bench.json`` with ``device.json`` beside it (either may lack fields), or None."""
    folder = Path(results_dir) / "gpu"
    bench = _read_json(folder / "bench.json")
    rows = bench.get("results")
    if not isinstance(rows, list) or not rows:
        return None
    device, env = _read_json(folder / "device.json"), bench.get("environment") or {}
    name = device.get("name") or device.get("device_name") or env.get("device_name") or "device not recorded"
    date = str(device.get("date") or device.get("created") or env.get("created") or "")[:10] or "date not recorded"
    commit = _short_commit(device.get("commit") or device.get("git_commit") or env.get("git_commit"))
    return GpuBench(_label(Path(results_dir), "gpu/bench.json"), [r for r in rows if isinstance(r, dict)],
                    str(name), date, commit)
