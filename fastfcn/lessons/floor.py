"""Chapter 7: how far the miniature is from nine times the majority-class mIoU, in fine-tuning iterations.

``scripts/table1_iterations.py`` fine-tunes some Table 1 rows for growing numbers of iterations and commits
what each reaches (``book/results/table1_iterations_cpu.json``). Here that measurement becomes something to
read: the curve of each row (:func:`iteration_curves`), the fewest measured iterations that reach the floor
(:func:`iterations_to_floor`), what the sixteen trainings would cost at a given count with the step times a
chapter measured (:func:`trainings_seconds`), and the plot (:func:`plot_iteration_curves`). What the
``full`` table costs on a GPU starts from the training-step times a committed GPU benchmark holds, if any
(:func:`committed_step_seconds`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["iteration_curves", "iterations_to_floor", "trainings_seconds", "plot_iteration_curves",
           "committed_step_seconds"]

Row = tuple[str, str]  # (head, upsampling)


def iteration_curves(runs: Sequence[Mapping[str, Any]]) -> dict[Row, list[tuple[int, float]]]:
    """``(head, upsampling) -> [(iterations, mIoU), ...]`` in increasing iterations, from the measured runs
    (each a mapping with ``head``, ``upsampling``, ``iterations`` and ``miou``; one seed per count)."""
    curves: dict[Row, list[tuple[int, float]]] = {}
    for r in runs:
        curves.setdefault((r["head"], r["upsampling"]), []).append((int(r["iterations"]), float(r["miou"])))
    for row, points in curves.items():
        counts = [n for n, _ in points]
        if len(set(counts)) != len(counts):
            raise ValueError(f"{row[0]}+{row[1]} has more than one run at the same number of iterations")
        points.sort()
    return curves


def iterations_to_floor(curves: Mapping[Row, Sequence[tuple[int, float]]], floor: float) -> dict[Row, int | None]:
    """Per row, the fewest measured iterations whose mIoU is at least ``floor`` (``None``: none of them)."""
    return {row: next((n for n, miou in points if miou >= floor), None) for row, points in curves.items()}


def trainings_seconds(s_per_it: Mapping[Row, float], iterations: int, seeds: int) -> float:
    """Seconds that ``seeds`` trainings of every row in ``s_per_it`` take at ``iterations`` each (steps only)."""
    return sum(s_per_it.values()) * iterations * seeds


def committed_step_seconds(files: Iterable[str | Path], backbone: str, batch: int, where: str
                           ) -> tuple[dict[Row, float], str]:
    """The training-step seconds (median) of Table 1 rows that committed benchmark files (``fastfcn bench``
    JSON) measured for ``backbone`` (ours or the paper's name of it) at ``batch``, and, for the prose, why
    there are none where there are none (``where``: how the prose names the files' folder)."""
    measured: dict[Row, float] = {}
    present = [Path(f) for f in files if Path(f).is_file()]
    modes = set()
    for f in present:
        for r in json.loads(f.read_text()).get("results", []):
            modes.add(r.get("mode"))
            if (r.get("mode") == "train" and r.get("kind", "fastfcn") == "fastfcn" and r.get("batch") == batch
                    and backbone in (r.get("backbone"), r.get("paper_backbone"))):
                measured[r["head"], r["upsampling"]] = float(r["latency_median_s"])
    if not present:
        why = f"no GPU benchmark is committed in {where}"
    elif "train" not in modes:
        held = " and ".join(sorted(str(m) for m in modes if m)) or "no"
        why = f"no GPU training-step time is committed: {where} holds {held} timings only"
    elif measured:
        why = f"for the rows without a training-step time of {backbone} at batch {batch} in {where}"
    else:
        why = f"the GPU training-step times committed in {where} are not of {backbone} at batch {batch}"
    return measured, why


def plot_iteration_curves(curves: Mapping[Row, Sequence[tuple[int, float]]], floor: float, *,
                          labels: Mapping[Row, str], colours: Mapping[Row, str], linestyles: Mapping[Row, str],
                          current: int) -> Figure:
    """mIoU against fine-tuning iterations (log scale), one line per row; the floor dashed, and the iterations
    the chapter trains (``current``) as a vertical line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for row, points in curves.items():
        ax.plot([n for n, _ in points], [m for _, m in points], marker="o", color=colours[row],
                linestyle=linestyles[row], label=labels[row])
    ax.axhline(floor, color="black", linestyle="--", linewidth=1, label=f"9x majority class ({floor:.1f}%)")
    ax.axvline(current, color="gray", linestyle=":", linewidth=1, label=f"this chapter ({current} iterations)")
    ax.set_xscale("log")
    ticks = sorted({n for points in curves.values() for n, _ in points})
    ax.set_xticks(ticks, [str(n) for n in ticks])
    ax.minorticks_off()
    ax.set_xlabel("fine-tuning iterations (one training per point, seed 0)")
    ax.set_ylabel("val mIoU (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
