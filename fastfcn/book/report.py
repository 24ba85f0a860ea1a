"""The reproduction report (book/11_reproduction_report.md): each of the paper's tables, ours beside it.

For every row of the paper's Tables 1 to 5 (:mod:`fastfcn.paper`) the report shows the paper's number,
ours in the ``quick`` column (this build: a CPU and the procedural scenes), ours in the ``full``
column (a ``full`` run: this build when it ran in that profile, else one committed under
``book/results/``) and a status for each, in words computed from the numbers. It reads results files
only (:mod:`.results`); a row nobody ran says so, with what it needs.

A chapter that reproduces a table records ``table<N>_rows`` (a list of dicts); Table 1 is also read
from the older per-row figures ``miou_<upsampling>`` / ``miou_<head>_<upsampling>``, and Table 2
from chapter 6's ``ratio_<head>_<backbone>_<upsampling>`` and from the GPU benchmark's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from .. import paper
from ..data.scene import CLASSES as PROCEDURAL_CLASSES
from ..training.table1 import HEAD_LABELS, UPSAMPLING_LABELS
from .results import GpuBench, Run, figures, number

__all__ = ["REPRODUCED", "SAME", "DIFFERENT", "NOT_COMPARED", "NOT_RUN", "CONTEXT", "KINDS", "MIOU_TOLERANCE",
           "RATIO_TOLERANCE", "COLUMNS", "Cell", "Line", "Table", "Measured", "compare", "table1_dataset", "table1_measured", "table1",
           "table2", "score_table", "columns", "all_tables", "dataset_words", "DATASETS", "PAPER_DATA"]

REPRODUCED, SAME, DIFFERENT = "reproduced", "same ordering", "different ordering"
NOT_COMPARED, NOT_RUN, CONTEXT = "ran, nothing to compare with", "not run", "context"
KINDS = (REPRODUCED, SAME, DIFFERENT, NOT_COMPARED, NOT_RUN)  # counted; CONTEXT rows (other teams) are not
MIOU_TOLERANCE = 1.0    # points (%): this close to the paper's mIoU on the paper's data counts as reproduced
RATIO_TOLERANCE = 0.10  # relative: a speed-up within 10 % of the paper's counts as reproduced
COLUMNS = ("quick", "full")
DATASETS = {"pcontext": "Pascal Context, 59 classes (background excluded)",
            "pcontext60": "Pascal Context, 60 classes (background included)",
            "ade20k": "ADE20K, 150 classes",
            "procedural": f"the procedural scenes, {len(PROCEDURAL_CLASSES)} classes (no background class)"}
PAPER_DATA = {1: "pcontext", 3: "pcontext60", 4: "ade20k", 5: "ade20k"}  # a run on these compares absolutely


@dataclass(frozen=True)
class Cell:
    text: str    # what the column shows
    kind: str    # one of KINDS, or CONTEXT
    words: str   # the status, in words


@dataclass(frozen=True)
class Line:
    label: str
    paper: str
    cells: dict[str, Cell]


@dataclass(frozen=True)
class Table:
    number: int
    title: str
    protocol: str             # the paper's dataset, classes and protocol
    header: str               # what the numbers are
    rows: list[Line]
    sources: dict[str, str]   # column -> where its numbers come from, or why there are none

    def counts(self) -> dict[str, dict[str, int]]:
        """``{column: {kind: cells}}`` over the counted kinds."""
        return {c: {k: sum(r.cells[c].kind == k for r in self.rows) for k in KINDS} for c in COLUMNS}

    def markdown(self) -> str:
        out = [f"| {self.header} | paper | ours, quick | status | ours, full | status |", "|---|---|---|---|---|---|"]
        for r in self.rows:
            q, f = r.cells["quick"], r.cells["full"]
            out.append(f"| {r.label} | {r.paper} | {q.text} | {q.words} | {f.text} | {f.words} |")
        return "\n".join(out)

    def records(self) -> list[dict[str, str]]:
        """The rows as plain dicts, for the chapter's results file."""
        return [{"table": str(self.number), "row": r.label, "paper": r.paper,
                 **{f"{c}{suffix}": getattr(r.cells[c], attr) for c in COLUMNS
                    for suffix, attr in (("", "text"), ("_status", "words"), ("_kind", "kind"))}} for r in self.rows]


@dataclass(frozen=True)
class Measured:
    value: float        # the number compared (mIoU %, speed-up, final score in %)
    text: str           # what the column shows
    comparable: bool    # measured on the paper's data and protocol: the absolute value may be compared
    spread: float = 0.0  # the seed range, where several seeds ran


def _points(d: float) -> str:
    return f"{abs(d):.1f} points {'above' if d > 0 else 'below'} the paper's"


def compare(paper_values: dict[Any, float], ours: dict[Any, Measured], group: Callable[[Any], Hashable],
            relative: bool = False) -> dict[Any, Cell]:
    """A status per row of ``ours``: its rank among the rows of its group that ran, against the paper's rank
    among the same rows, and where ``comparable``, how far from the paper's number (points of %, or
    relative for ``relative=True``: speed-ups)."""
    cells = {}
    for key, m in ours.items():
        peers = [k for k in ours if group(k) == group(key)]
        mine, theirs = m.value, paper_values[key]
        far = (abs(mine / theirs - 1) > RATIO_TOLERANCE) if relative else (abs(mine - theirs) > MIOU_TOLERANCE)
        gap = (f"speed-up {mine:.2f}x against the paper's {theirs:.2f}x" if relative else _points(mine - theirs))
        if len(peers) < 2:
            kind = (REPRODUCED if not far else NOT_COMPARED) if m.comparable else NOT_COMPARED
            words = (f"reproduced: {gap}" if kind == REPRODUCED else
                     gap if m.comparable else "no other row of its group ran: nothing to order")
            cells[key] = Cell(m.text, kind, words)
            continue
        rank = 1 + sum(ours[k].value > mine for k in peers)
        paper_rank = 1 + sum(paper_values[k] > theirs for k in peers)
        # rows whose seed ranges reach each other: their order may be noise
        close = sum(k != key and 0 < max(ours[k].spread, m.spread) >= abs(ours[k].value - mine) for k in peers)
        noise = f"; within the seed range of {close} other row{'s' * (close > 1)}" if close else ""
        value = f"; {gap}" if m.comparable else ""
        if rank != paper_rank:
            words = f"different ordering: rank {rank} of {len(peers)}, the paper's {paper_rank}"
            cells[key] = Cell(m.text, DIFFERENT, words + noise + value)
        elif m.comparable and not far:
            cells[key] = Cell(m.text, REPRODUCED, f"reproduced: {gap}, same ordering")
        else:
            cells[key] = Cell(m.text, SAME, f"same ordering (rank {rank} of {len(peers)}){noise}{value}")
    return cells


def _not_run(run: Run | None, found: str | None, column: str, needs: str, chapter: str | None) -> Cell:
    if column == "quick" and chapter and found is None:
        return Cell("not run yet", NOT_RUN, f"not run yet in this build: `python -m fastfcn book run --only {chapter}`")
    if column == "quick" and chapter and run is not None:
        return Cell("not run yet", NOT_RUN, f"not run in the `{run.profile}` profile")
    return Cell("not run yet", NOT_RUN, f"not run: needs {needs}")


def dataset_words(run: Run, stem: str, full_data: str | None = None) -> tuple[str | None, str]:
    """``(dataset name or None, in words)`` that chapter ``stem`` of ``run`` trained and evaluated on: its
    ``dataset`` figure; else the procedural scenes in ``smoke``/``quick``, and ``full_data`` in ``full``."""
    name = figures(run.results, stem).get("dataset")
    profile = run.results.get(stem, {}).get("profile")
    if name is None:
        name = "procedural" if profile in ("smoke", "quick") else full_data if profile == "full" else None
    return name, DATASETS.get(name, f"{name}" if name else "dataset not recorded")


def _no_source(run: Run | None, column: str) -> str:
    if run is None:
        return ("no run of this build" if column == "quick" else
                "no `full` run: this build did not run in that profile and none is committed under book/results/")
    return f"{run.origin} holds none of this table's numbers"


# ours per row key, and where they come from (None: nothing of this table in that run)
Measure = Callable[["Run | None", str], tuple[dict[Any, Measured], "str | None"]]


def _assemble(number_: int, title: str, protocol: str, header: str, keys: list[Any], label: Callable[[Any], str],
              paper_text: Callable[[Any], str], paper_values: dict[Any, float], runs: dict[str, Run | None],
              measure: Measure, group: Callable[[Any], Hashable], needs: str | Callable[[Any], str], chapter: str | None,
              relative: bool = False, context: Callable[[Any], bool] = lambda key: False) -> Table:
    """One report table: ``measure(run, column)`` gives ours per row key and where they come from."""
    cells: dict[str, dict[Any, Cell]] = {}
    found, sources = {}, {}
    for column in COLUMNS:
        run = runs.get(column)
        ours, found[column] = measure(run, column)
        cells[column] = compare(paper_values, {k: v for k, v in ours.items() if k in paper_values}, group, relative)
        sources[column] = found[column] or _no_source(run, column)
    rows = []
    for key in keys:
        if context(key):
            other = Cell("", CONTEXT, "another method, shown for context")
            rows.append(Line(label(key), paper_text(key), {c: other for c in COLUMNS}))
            continue
        need = needs(key) if callable(needs) else needs  # what a row that did not run needs
        rows.append(Line(label(key), paper_text(key),
                         {c: cells[c].get(key) or _not_run(runs.get(c), found[c], c, need, chapter) for c in COLUMNS}))
    return Table(number_, title, protocol, header, rows, sources)


def table1_dataset(run: Run) -> tuple[str | None, str]:
    """``(dataset, in words)`` of the run's Table 1 trainings (``(None, "not run")`` when there are none)."""
    hit = run.find("table1_rows")
    stem = hit[0] if hit else (run.find("miou_none") or run.find("miou_jpu") or (None,))[0]
    if stem is None:
        return None, "not run"
    # the Table 1 chapter (table1_rows) trains on Pascal Context in `full` (book.trainings); the older
    # chapter 7 (per-row figures) on the procedural scenes in every profile
    return dataset_words(run, stem, "pcontext" if hit else "procedural")


def table1_measured(run: Run | None, column: str = "quick") -> tuple[dict[Any, Measured], str | None]:
    """Ours per Table 1 row ``(head, upsampling)``, from ``table1_rows`` or the per-row figures, and their source."""
    if run is None:
        return {}, None
    hit = run.find("table1_rows")
    stem = hit[0] if hit else None
    ours: dict[Any, Measured] = {}
    if stem is None:  # the older chapter 7: one figure per row, rounded to 0.1
        for r in paper.TABLE1:
            name = f"miou_{r.upsampling}" if r.head == "encnet" else f"miou_{r.head}_{r.upsampling}"
            found = run.find(name)
            if found and number(found[1]) is not None:
                stem = stem or found[0]
                pix = number(figures(run.results, found[0]).get(f"pixacc_{r.upsampling}")) if r.head == "encnet" else None
                text = (f"{pix:.1f} / " if pix is not None else "") + f"{found[1]:.1f}"
                ours[r.head, r.upsampling] = Measured(float(found[1]), text, False)
    else:
        for row in hit[1] if isinstance(hit[1], list) else []:
            miou = number(row.get("miou"))
            if miou is None:
                continue
            pix, rng, seeds = number(row.get("pixacc")), row.get("miou_range"), row.get("seeds")
            spread = number(rng) or 0.0  # max minus min over the seeds (or a [min, max] pair)
            if isinstance(rng, (list, tuple)) and len(rng) == 2 and all(number(v) is not None for v in rng):
                spread = float(rng[1]) - float(rng[0])
            n = len(seeds) if isinstance(seeds, list) else seeds
            many = f" (seed range {spread:.1f}, {n} seeds)" if isinstance(n, int) and n > 1 else ""
            text = (f"{pix:.1f} / " if pix is not None else "") + f"{miou:.1f}{many}"
            ours[row.get("head"), row.get("upsampling")] = Measured(miou, text, False, spread)
    if stem is None:
        return {}, None
    data, words = table1_dataset(run)
    comparable = data == PAPER_DATA[1]
    ours = {k: Measured(m.value, m.text, comparable, m.spread) for k, m in ours.items()}
    return ours, run.provenance(stem) + f"; trained and evaluated on {words}"


def table1(runs: dict[str, Run | None]) -> Table:
    """Table 1: Pascal Context val (59 classes), ResNet-50, single scale; the rows ordered within each head."""
    keys = [(r.head, r.upsampling) for r in paper.TABLE1]
    rows = {(r.head, r.upsampling): r for r in paper.TABLE1}
    return _assemble(
        1, "the upsampling modules, and JPU in three heads",
        "Pascal Context val, **59 classes** (background excluded), ResNet-50, single scale; pixAcc / mIoU %",
        "head, upsampling", keys, lambda k: f"{HEAD_LABELS[k[0]]}, {UPSAMPLING_LABELS[k[1]]}",
        lambda k: f"{rows[k].pixacc:.2f} / {rows[k].miou:.2f}", {k: rows[k].miou for k in keys}, runs,
        table1_measured, group=lambda k: k[0], needs="Pascal Context, ImageNet weights and a GPU", chapter="07")


def _table2_measured(run: Run | None, gpu: GpuBench | None = None) -> tuple[dict[Any, Measured], str | None]:
    ours: dict[Any, Measured] = {}
    if gpu is not None:  # the benchmark's own rows: frames per second, and the ratio to the dilated model
        for r in gpu.rows:
            if (r.get("kind") != "fastfcn" or r.get("dilated_backbone") or r.get("mode", "inference") != "inference"
                    or r.get("dtype", "fp32") != "fp32" or r.get("channels_last") or number(r.get("fps")) is None):
                continue
            key = (r.get("head"), r.get("paper_backbone"), r.get("upsampling"))
            ratio = 1.0 if key[2] == "none" else number(r.get("ratio"))
            if key not in ours and ratio is not None:
                ours[key] = Measured(ratio, f"{r['fps']:.1f} FPS ({ratio:.2f}x)", key[2] != "none")
        return ours, (gpu.provenance() + "; fp32, batch 1") if ours else None
    if run is None:
        return {}, None
    stem = None
    for r in paper.TABLE2:
        if r.upsampling == "none":
            continue
        found = run.find(f"ratio_{r.head}_{r.backbone}_{r.upsampling}")
        if found and number(found[1]) is not None:
            stem = stem or found[0]
            ours[r.head, r.backbone, r.upsampling] = Measured(float(found[1]), f"{found[1]:.2f}x", True)
            ours[r.head, r.backbone, "none"] = Measured(1.0, "1.00x (baseline)", False)
    if stem is None:
        return {}, None
    f = figures(run.results, stem)
    from ..profiles import PROFILES

    sub = PROFILES.get(run.results[stem].get("profile"), {}).get("bench_substitute_backbone")
    extra = f"; speed-ups over the dilated model at {f.get('bench_size', '?')} px"
    return ours, run.provenance(stem) + extra + (f", every row built on {sub} instead of the paper's backbone"
                                                 if sub else "")


def table2(runs: dict[str, Run | None], gpu: GpuBench | None = None) -> Table:
    """Table 2: FPS (Titan-Xp, 512x512); ours as speed-ups over the dilated model, which transfer between machines.

    The ``full`` column takes the GPU benchmark's rows where they exist, else the ``full`` run's chapter 6."""
    keys = [(r.head, r.backbone, r.upsampling) for r in paper.TABLE2]
    fps = {(r.head, r.backbone, r.upsampling): r.fps for r in paper.TABLE2}
    ratio = {k: paper.table2_ratio(*k) for k in keys}

    def measure(run: Run | None, column: str) -> tuple[dict[Any, Measured], str | None]:
        got = _table2_measured(None, gpu) if column == "full" and gpu is not None else ({}, None)
        return got if got[0] else _table2_measured(run)

    return _assemble(
        2, "frames per second", "FPS on a Titan-Xp, 512x512 input, mean of 100 runs (speed-up over the dilated "
        "model in brackets); ours: the speed-up measured on our machine", "backbone, head, upsampling", keys,
        lambda k: (f"{'ResNet-50' if k[1] == 'resnet50' else 'ResNet-101'}, {HEAD_LABELS[k[0]]}, "
                   f"{UPSAMPLING_LABELS[k[2]]}"),
        lambda k: f"{fps[k]:.2f} ({ratio[k]:.2f}x)", ratio, runs, measure, group=lambda k: (k[0], k[1]),
        needs="a GPU (`fastfcn bench --device cuda`)", chapter="06", relative=True)


def score_table(number_: int, runs: dict[str, Run | None]) -> Table:
    """Tables 3, 4 and 5, read from ``table<N>_rows`` ({"method", "classes", "miou" | "pixacc" | "final_score"})."""
    if number_ == 3:
        keys = [(m, 60) for m in paper.TABLE3] + [(m, 59) for m in paper.TABLE3_59]
        values = {**{(m, 60): v for m, v in paper.TABLE3.items()}, **{(m, 59): v for m, v in paper.TABLE3_59.items()}}
        text = {k: f"{v:.1f}" if k[1] == 60 else f"{v:.2f}" for k, v in values.items()}  # as printed
        title, field = "the state of the art on Pascal Context", "miou"
        protocol = ("Pascal Context val, multi-scale; **60 classes** (background included) as Table 3 prints, "
                    "and the **59-class** figures of Section 4.3; mIoU %")
        def needs(key: Any) -> str:  # the 60-class rows score background; the 59-class ones leave it out
            classes = "with background" if key[1] == 60 else "59 classes, background excluded"
            return f"Pascal Context ({classes}), multi-scale evaluation, ImageNet weights and a GPU"
    elif number_ == 4:
        keys = [(m, 150) for m in paper.TABLE4]
        values = {(m, 150): v[1] for m, v in paper.TABLE4.items()}
        text = {(m, 150): f"{v[0]:.2f} / {v[1]:.2f}" for m, v in paper.TABLE4.items()}
        title, field, protocol = "ADE20K val", "miou", "ADE20K val, 150 classes; pixAcc / mIoU %"
        needs = "ADE20K, ImageNet weights and a GPU"
    else:
        keys = [(m, 150) for m in paper.TABLE5]
        values = {(m, 150): 100 * v for m, v in paper.TABLE5.items()}  # compared in points, like the others
        text = {(m, 150): f"{v:.4f}" for m, v in paper.TABLE5.items()}
        title, field = "ADE20K test", "final_score"
        protocol = "ADE20K test (the evaluation server), 150 classes; Final Score = (pixAcc + mIoU) / 2"
        needs = "ADE20K, ImageNet weights, a GPU and the ADE20K test server"

    def measure(run: Run | None, column: str) -> tuple[dict[Any, Measured], str | None]:
        hit = run.find(f"table{number_}_rows") if run is not None else None
        if run is None or not hit or not isinstance(hit[1], list):
            return {}, None
        ours = {}
        for row in hit[1]:
            v = number(row.get(field))
            if v is None:
                continue
            key = (row.get("method"), int(row.get("classes") or 150))
            shown = f"{v:.4f}" if field == "final_score" else (
                (f"{row['pixacc']:.2f} / " if number(row.get("pixacc")) is not None else "") + f"{v:.2f}")
            ours[key] = Measured(100 * v if field == "final_score" else v, shown, True)
        return ours, run.provenance(hit[0])

    return _assemble(number_, title, protocol, "method", keys,
                     lambda k: k[0] + (f" ({k[1]} classes)" if number_ == 3 else ""), lambda k: text[k], values, runs,
                     measure, group=lambda k: k[1], needs=needs, chapter=None,
                     context=lambda k: number_ == 5 and not k[0].startswith("EncNet"))


def columns(build: Run, committed: list[Run]) -> dict[str, Run | None]:
    """Which run fills which column: this build fills the column of its profile (``smoke`` runs count as
    ``quick``, labelled so), a committed run of the other profile fills the other (``book/results/full`` first)."""
    def profile_of(run: Run) -> str:
        return "full" if run.profile == "full" else "quick"

    runs: dict[str, Run | None] = {c: None for c in COLUMNS}
    if build.results:
        runs[profile_of(build)] = build
    for run in sorted(committed, key=lambda r: not r.origin.endswith("/full")):
        if runs[profile_of(run)] is None and (profile_of(run) == "full" or run.profile == "quick"):
            runs[profile_of(run)] = run
    return runs


def all_tables(runs: dict[str, Run | None], gpu: GpuBench | None = None) -> list[Table]:
    """Tables 1 to 5 of the paper, in order."""
    return [table1(runs), table2(runs, gpu), *(score_table(n, runs) for n in (3, 4, 5))]
