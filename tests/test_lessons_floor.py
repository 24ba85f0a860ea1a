"""Chapter 7's reading of the longer fine-tunings (fastfcn.lessons.floor): curves, the floor, the cost, the plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from fastfcn.data import PROCEDURAL_CLASSES, build_dataset
from fastfcn.lessons.floor import (
    iteration_curves,
    iterations_to_floor,
    plot_iteration_curves,
    trainings_seconds,
)

RUNS = [{"head": "encnet", "upsampling": "jpu", "iterations": 200, "miou": 50.0},
        {"head": "encnet", "upsampling": "jpu", "iterations": 50, "miou": 40.0},
        {"head": "encnet", "upsampling": "jpu", "iterations": 100, "miou": 49.5},
        {"head": "aspp", "upsampling": "jpu", "iterations": 50, "miou": 28.0},
        {"head": "aspp", "upsampling": "jpu", "iterations": 100, "miou": 33.0}]




def test_iteration_curves_sorted_per_row() -> None:
    curves = iteration_curves(RUNS)
    assert curves == {("encnet", "jpu"): [(50, 40.0), (100, 49.5), (200, 50.0)],
                      ("aspp", "jpu"): [(50, 28.0), (100, 33.0)]}


def test_iteration_curves_reject_two_runs_at_one_count() -> None:
    with pytest.raises(ValueError, match="encnet\\+jpu has more than one run at the same number of iterations"):
        iteration_curves([*RUNS, {"head": "encnet", "upsampling": "jpu", "iterations": 50, "miou": 41.0}])


def test_iterations_to_floor_first_count_at_or_above() -> None:
    curves = iteration_curves(RUNS)
    assert iterations_to_floor(curves, 49.5) == {("encnet", "jpu"): 100, ("aspp", "jpu"): None}
    assert iterations_to_floor(curves, 49.6) == {("encnet", "jpu"): 200, ("aspp", "jpu"): None}
    assert iterations_to_floor(curves, 10.0) == {("encnet", "jpu"): 50, ("aspp", "jpu"): 50}


def test_trainings_seconds() -> None:
    assert trainings_seconds({("encnet", "jpu"): 0.2, ("encnet", "none"): 0.5}, 100, 2) == pytest.approx(140.0)


def test_plot_iteration_curves(plt: ModuleType) -> None:
    curves = iteration_curves(RUNS)
    rows = list(curves)
    fig = plot_iteration_curves(curves, 49.1, labels={r: f"{r[0]} {r[1]}" for r in rows},
                                colours={r: "tab:red" for r in rows}, linestyles={r: "-" for r in rows}, current=50)
    (ax,) = fig.axes
    data = [line for line in ax.lines if line.get_label() in ("encnet jpu", "aspp jpu")]
    assert [list(line.get_xdata()) for line in data] == [[50, 100, 200], [50, 100]]
    assert list(data[0].get_ydata()) == [40.0, 49.5, 50.0]
    floor = [line for line in ax.lines if line.get_label().startswith("9x majority")]
    assert floor and list(floor[0].get_ydata()) == [49.1, 49.1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["50", "100", "200"]
    assert ax.get_xscale() == "log"


def test_table1_iterations_script_in_smoke(tmp_path: Path) -> None:
    """The script that measures the longer fine-tunings runs end to end and writes what chapter 7 reads."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "table1_iterations.py"
    out = tmp_path / "iterations.json"
    subprocess.run([sys.executable, str(script), "--profile", "smoke", "--iterations", "1", "2", "--max-iterations", "2",
                    "--out", str(out), "--runs", str(tmp_path / "runs")], check=True, capture_output=True, text=True)
    doc = json.loads(out.read_text())
    assert doc["profile"] == "smoke" and doc["pretraining"]["iterations"] == 2
    curves = iteration_curves(doc["runs"])
    assert sorted(curves) == sorted([("encnet", "jpu"), ("aspp", "jpu"), ("psp", "jpu"), ("encnet", "none")])
    assert all([n for n, _ in points] == [1, 2] and all(0 <= m <= 100 for _, m in points)
               for points in curves.values())
    assert all(set(r["class_iou"]) == set(PROCEDURAL_CLASSES) and r["train_s"] > 0 for r in doc["runs"])
    val = build_dataset("procedural", "val", image_size=64, num_images=4)
    share = torch.bincount(torch.stack([val[i][1] for i in range(4)]).flatten(), minlength=8).double() / (4 * 64 * 64)
    assert doc["majority_floor"] == pytest.approx(9 * 100 * float(share.max()) / len(PROCEDURAL_CLASSES))


def test_committed_step_seconds_use_training_rows_and_say_why_there_are_none(tmp_path: Path) -> None:
    from fastfcn.lessons.floor import committed_step_seconds

    def bench(name: str, rows: list[dict]) -> Path:
        path = tmp_path / name
        path.write_text(json.dumps({"environment": {}, "results": rows}))
        return path

    row = {"kind": "fastfcn", "head": "encnet", "upsampling": "jpu", "backbone": "resnet50s",
           "paper_backbone": "resnet50", "batch": 16, "latency_median_s": 0.25}
    where = "book/results/gpu"
    assert committed_step_seconds([tmp_path / "absent.json"], "resnet50", 16, where) == (
        {}, "no GPU benchmark is committed in book/results/gpu")
    inference = bench("inference.json", [{**row, "mode": "inference", "batch": 1}])
    assert committed_step_seconds([inference], "resnet50", 16, where) == (
        {}, "no GPU training-step time is committed: book/results/gpu holds inference timings only")
    train = bench("train.json", [{**row, "mode": "train"}, {**row, "mode": "train", "upsampling": "none",
                                                            "batch": 2}])
    measured, why = committed_step_seconds([inference, train], "resnet50", 16, where)
    assert measured == {("encnet", "jpu"): 0.25} and "rows without a training-step time" in why
    assert committed_step_seconds([train], "resnet101", 16, where)[0] == {}
