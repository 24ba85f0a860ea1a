"""The reproduction report put together: what book/11_reproduction_report.md shows and records.

:func:`build_report` reads the results files (this build's, and those committed under
``book/results/``) and nothing else; it trains and measures nothing and writes no file. The tables
come from :mod:`.report`, the claims and the list of what the book reproduces beyond the tables from
:mod:`.claims`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .claims import CONFIRMED, NOT_CONFIRMED, NOT_MEASURED, PARTLY, ClaimRow, beyond, claim_rows
from .evidence import ClaimEvidence, evidence
from .report import (
    COLUMNS,
    DIFFERENT,
    KINDS,
    NOT_COMPARED,
    NOT_RUN,
    REPRODUCED,
    SAME,
    Table,
    all_tables,
    columns,
    table1_dataset,
)
from .results import COMMITTED_DIR, GpuBench, Run, build_run, load_committed, load_gpu_bench

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["REPORT_FIGURE", "Report", "build_report", "chapter_link", "draw_status"]

REPORT_FIGURE = "report_status_counts"  # the report's own figure: it marks the report's results file, never read
COLOURS = {REPRODUCED: "tab:green", SAME: "tab:olive", DIFFERENT: "tab:red", NOT_COMPARED: "tab:gray",
           NOT_RUN: "lightgray"}


def chapter_link(stem: str) -> str:
    """A Markdown link to chapter ``stem``'s page of the rendered book.

    A link in a cell's output is rendered as a plain URL (not a cross-reference that the strict build
    checks), so it names the HTML page, which sits beside this one."""
    return f"[chapter {int(stem[:2])}]({stem}.html)"


@dataclass(frozen=True)
class Report:
    build: Run
    committed: list[Run]
    gpu: GpuBench | None
    runs: dict[str, Run | None]
    tables: list[Table]
    claims: list[ClaimRow]
    beyond: list[tuple[str, str | None, str]]
    recovery: Any  # the Section 3.3 chapter's recovery_rows, or None
    evidence: list[ClaimEvidence]  # per claim: the paper, this book's runs, each third party

    def counts(self) -> dict[str, int]:
        """Cells per status over every table and column (the other teams' rows of Table 5 left out)."""
        return {k: sum(t.counts()[c][k] for t in self.tables for c in COLUMNS) for k in KINDS}

    def counts_by_table(self) -> dict[str, dict[str, dict[str, int]]]:
        return {f"table{t.number}": t.counts() for t in self.tables}

    def claim_counts(self) -> dict[str, int]:
        return {k: sum(r.kind == k for r in self.claims) for k in (CONFIRMED, PARTLY, NOT_CONFIRMED, NOT_MEASURED)}

    def counts_sentence(self) -> str:
        n, c = self.counts(), self.claim_counts()
        return (f"Of the {sum(n.values())} cells of the paper's Tables 1 to 5 (each row once in the `quick` and once "
                f"in the `full` column; the other teams' rows of Table 5 left out): {n[REPRODUCED]} reproduced, "
                f"{n[SAME]} in the paper's ordering, {n[DIFFERENT]} in a different ordering, {n[NOT_COMPARED]} run "
                f"with nothing to compare them with, {n[NOT_RUN]} not run. Of the {len(self.claims)} checks of the "
                f"paper's claims (one per claim and run): {c[CONFIRMED]} confirmed, {c[PARTLY]} confirmed in part, "
                f"{c[NOT_CONFIRMED]} not confirmed, {c[NOT_MEASURED]} not measured.")

    def runs_markdown(self) -> str:
        """Which results the report read, one line per column."""
        def chapters(run: Run) -> str:
            return ", ".join(sorted(run.results))

        lines = []
        for column in COLUMNS:
            run = self.runs[column]
            if run is None:
                lines.append(f"- **{column}**: no run. " + (
                    "No chapter has run in this build." if column == "quick" else
                    "This build did not run in the `full` profile, and book/results/ holds no committed `full` run."))
            else:
                smoke = " (the `smoke` profile's numbers only show that the code runs)" if "smoke" in str(run.profile) else ""
                lines.append(f"- **{column}**: {run.origin}, the `{run.profile}` profile{smoke}: {chapters(run)}.")
        lines.append(f"- **GPU benchmark**: {self.gpu.provenance()}, {len(self.gpu.rows)} rows." if self.gpu
                     else "- **GPU benchmark**: none committed (book/results/gpu/bench.json does not exist).")
        unused = self.unused_files()
        if unused:
            lines.append(f"- also committed, not used by a column: {', '.join(unused)}.")
        return "\n".join(lines)

    def unused_files(self) -> list[str]:
        """The committed chapter results files that fill no column, one by one (``book/results/gpu/02_x.json``).

        A folder may hold files that are used (the GPU benchmark, ``gpu/bench.json``) beside chapter files
        that are not: the files are named, never the folder."""
        used = [r for r in self.runs.values() if r is not None]
        return [f"{run.origin}/{stem}.json" for run in self.committed if run not in used for stem in sorted(run.results)]

    def classes_markdown(self) -> str:
        """Which numbers are on 59 classes, which on 60, which on neither."""
        rows = [("the paper's Table 1", "Pascal Context val, single scale", "59: background excluded"),
                ("the paper's Table 3", "Pascal Context val, multi-scale", "60: background included"),
                ("the paper's Section 4.3 (the 59-class rows of Table 3 above)", "Pascal Context val, multi-scale",
                 "59: background excluded"),
                ("the paper's Tables 4 and 5", "ADE20K val (Table 4) and test (Table 5)", "150")]
        for column in COLUMNS:
            run = self.runs[column]
            name, words = table1_dataset(run) if run is not None else (None, "not run")
            data, _, classes = words.partition(", ")
            rows.append((f"ours, `{column}` column, Table 1", data, classes or "-"))
        rows.append(("ours, Tables 3 to 5", "not run (see the tables)", "-"))
        return "\n".join(["| numbers | data | classes |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows])

    def table_markdown(self, t: Table) -> str:
        sources = "\n".join(f"- {c}: {t.sources[c]}" for c in COLUMNS)
        return f"**Table {t.number}: {t.title}.** The paper: {t.protocol}.\n\n{t.markdown()}\n\nSources:\n\n{sources}"

    def recovery_rows(self) -> list[dict[str, Any]]:
        return self.recovery if isinstance(self.recovery, list) else []


def build_report(executed_dir: str | Path | None = None, results_dir: str | Path = COMMITTED_DIR) -> Report:
    """Everything the report shows, from this build's results (see :func:`.results.build_results_dir`) and
    the runs committed under ``results_dir`` (``book/results``)."""
    build = build_run(executed_dir, exclude=REPORT_FIGURE)
    committed, gpu = load_committed(results_dir), load_gpu_bench(results_dir)
    runs = columns(build, committed)
    recovery = next((r.value("recovery_rows") for r in (build, runs["full"]) if r is not None
                     and r.value("recovery_rows") is not None), None)
    return Report(build, committed, gpu, runs, all_tables(runs, gpu), claim_rows(runs, gpu), beyond(build),
                  recovery, evidence(runs, gpu))


def draw_status(tables: list[Table]) -> Figure:
    """One bar per table and column, split by status: how much of the paper this book has reproduced."""
    import matplotlib.pyplot as plt

    bars = [(f"Table {t.number}, {c}", t.counts()[c]) for t in tables for c in COLUMNS]
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(bars) + 1.6))
    left = [0] * len(bars)
    for kind in KINDS:
        widths = [counts[kind] for _, counts in bars]
        ax.barh([b for b, _ in bars], widths, left=left, color=COLOURS[kind], label=kind, edgecolor="white")
        left = [a + w for a, w in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set(xlabel="cells (rows of the paper's table)", title="every cell of the paper's Tables 1 to 5, by status")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=len(KINDS), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
