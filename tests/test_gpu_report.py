"""fastfcn.benchmark.gpu_report: a GPU run's files (written here by the test) read back into chapter 6's table."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from fastfcn import benchmark as bench
from fastfcn.benchmark import gpu_report


def fake(row: str, fps: float, dtype: str = "fp32", unsynced: float | None = None,
         events: float | None = None, mode: str = "inference") -> dict:
    """A result as ``fastfcn bench --device cuda`` writes it, before ``annotate`` (which adds the ratios)."""
    spec = bench.parse_rows([row])[0]
    return {**bench.spec_fields(spec), "mode": mode, "size": 512, "batch": 1, "dtype": dtype, "device": "cuda",
            "aux": True, "fps": fps, "latency_median_s": 1 / fps, "fps_unsynchronised": unsynced,
            "fps_cuda_events": events, "peak_mem_bytes": 300 * 2**20}


def write_run(folder: Path, amp: bool = True, device: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = bench.annotate([
        fake("encnet/resnet50/none", 40.0, unsynced=60.0, events=41.0),
        fake("encnet/resnet50/jpu", 90.0, unsynced=130.0, events=92.0),
        fake("encnet/resnet101/none", 25.0, unsynced=35.0),
        fake("encnet/resnet101/jpu", 70.0, unsynced=80.0),
        fake("encnet/resnet50/jpu", 20.0, mode="train"),  # a training row is not in the table
    ])
    options = {"size": 512, "batch": 1, "runs": 100, "warmup": 10}
    env = {"device_name": "Test GPU", "torch": "2.11.0", "created": "2026-12-01T10:00:00+00:00", "cuda": "13.0"}
    (folder / "bench.json").write_text(json.dumps({"environment": env, "options": options, "results": fp32}))
    if amp:
        rows = bench.annotate([fake("encnet/resnet50/none", 80.0, "bf16"), fake("encnet/resnet50/jpu", 270.0, "bf16")])
        (folder / "bench_amp.json").write_text(json.dumps({"environment": env, "options": options, "results": rows}))
    if device:
        (folder / "device.json").write_text(json.dumps({"name": "NVIDIA Test", "driver": "580.1", "torch": "2.11.0",
                                                        "cuda": "13.0", "date": "2026-12-02T08:00:00+00:00",
                                                        "commit": "0123456789abcdef"}))


def test_no_run_is_none(tmp_path: Path) -> None:
    assert gpu_report.load_gpu_run(tmp_path / "gpu") is None
    (tmp_path / "bench.json").write_text(json.dumps({"results": []}))
    assert gpu_report.load_gpu_run(tmp_path) is None  # a benchmark without rows is no run
    (tmp_path / "bench.json").write_text("{half written")
    assert gpu_report.load_gpu_run(tmp_path) is None
    figures = gpu_report.gpu_figures(None)
    assert all(math.isnan(v) for v, _ in figures.values())
    assert "make gpu-run" in gpu_report.NO_GPU_RUN and "book/results/gpu/" in gpu_report.NO_GPU_RUN


def test_rows_table_figures_and_summary(tmp_path: Path) -> None:
    write_run(tmp_path)
    run = gpu_report.load_gpu_run(tmp_path)
    assert run is not None and run.amp is not None and run.fast_path is None
    assert gpu_report.describe_gpu_run(run) == ("NVIDIA Test, driver 580.1, torch 2.11.0, CUDA 13.0, 2026-12-02,\n"
                                                "  commit 0123456789; 512x512, batch 1, median of 100 runs after 10 "
                                                "warm-up")
    rows = gpu_report.gpu_rows(run)
    assert [(r["name"], r["backbone"]) for r in rows] == [("encnet/none", "resnet50"), ("encnet/jpu", "resnet50"),
                                                          ("encnet/none", "resnet101"), ("encnet/jpu", "resnet101")]
    jpu50 = rows[1]
    assert jpu50["ratio"] == pytest.approx(90 / 40) and jpu50["paper_ratio"] == pytest.approx(37.56 / 18.77)
    assert jpu50["unsynchronised_factor"] == pytest.approx(130 / 90)
    assert jpu50["amp_speedup"] == pytest.approx(3.0) and jpu50["amp_ratio"] == pytest.approx(270 / 80)
    assert rows[3]["amp_fps"] is None and rows[3]["fps_cuda_events"] is None  # not measured: "-" in the table

    table = gpu_report.format_gpu_table(rows).splitlines()
    assert table[0].split() == ["model", "backbone", "FPS", "events", "unsync", "x", "x", "dil", "paper", "p", "x",
                                "dil", "AMP", "FPS", "AMP", "x", "MiB"]
    assert table[3].split() == ["encnet/jpu", "resnet50", "90.0", "92.0", "130.0", "1.44", "2.25", "37.6", "2.00",
                                "270.0", "3.00", "300"]
    assert table[5].split() == ["encnet/jpu", "resnet101", "70.0", "-", "80.0", "1.14", "2.80", "32.0", "3.05", "-",
                                "-", "300"]
    assert max(len(line) for line in table) <= 100  # fits the book's column

    figures = gpu_report.gpu_figures(rows)
    assert figures["gpu_encnet_r50_ratio"] == (2.25, "x") and figures["gpu_encnet_r50_paper_ratio"] == (2.0, "x")
    assert figures["gpu_encnet_r101_ratio"] == (2.8, "x") and figures["gpu_encnet_r101_paper_ratio"] == (3.05, "x")
    assert figures["gpu_unsynchronised_factor"] == (1.42, "x")  # median of 1.5, 1.44, 1.4 and 1.14
    assert figures["gpu_amp_speedup"] == (2.5, "x")  # median of 2.0 and 3.0
    summary = gpu_report.gpu_summary(run, rows)
    assert summary.startswith("On the NVIDIA Test, EncNet+JPU runs 2.25 times as fast as the dilated EncNet on "
                              "ResNet-50 (paper, Titan-Xp: 2.00) and 2.80 times on ResNet-101 (paper: 3.05).")
    assert "without synchronising" in summary and "2.50 times as fast as fp32" in summary


def test_latency_against_arithmetic(tmp_path: Path) -> None:
    write_run(tmp_path)
    run = gpu_report.load_gpu_run(tmp_path)
    rows = gpu_report.gpu_rows(run)
    assert math.isnan(gpu_report.gpu_figures(rows)["gpu_latency_gmacs_r"][0])  # no GMACs recorded: not measured
    gmacs = [156.4, 66.4, 234.0, 85.9]
    for row, g in zip(rows, gmacs, strict=True):
        row["gmacs"] = g
    ms = [1000 / 40, 1000 / 90, 1000 / 25, 1000 / 70]
    paper_ms = [1000 / 18.77, 1000 / 37.56, 1000 / 10.51, 1000 / 32.02]  # the paper's Table 2 FPS of these rows
    f = gpu_report.gpu_figures(rows)
    assert f["gpu_latency_min_ms"] == (11.1, "ms") and f["gpu_latency_max_ms"] == (40.0, "ms")
    assert f["gpu_gmacs_min"] == (66, "GMACs") and f["gpu_gmacs_max"] == (234, "GMACs")
    assert f["gpu_latency_gmacs_r"] == (round(statistics.correlation(gmacs, ms), 2), "")
    assert f["paper_latency_gmacs_r"] == (round(statistics.correlation(gmacs, paper_ms), 2), "")
    assert "11.1 to 40.0 ms for 66 to 234 GMACs: latency follows the arithmetic" in gpu_report.gpu_summary(run, rows)
    for row in rows:  # every model equally fast: latency does not follow the arithmetic at all
        row["fps"] = 200.0
    assert math.isnan(gpu_report.gpu_figures(rows)["gpu_latency_gmacs_r"][0])


def test_run_without_amp_or_device_file(tmp_path: Path) -> None:
    write_run(tmp_path, amp=False, device=False)
    run = gpu_report.load_gpu_run(tmp_path)
    assert run is not None and run.amp is None and run.device == {}
    assert gpu_report.describe_gpu_run(run).startswith("Test GPU, torch 2.11.0, CUDA 13.0, 2026-12-01,\n  commit not "
                                                       "recorded")
    rows = gpu_report.gpu_rows(run)
    assert all(r["amp_speedup"] is None for r in rows)
    assert math.isnan(gpu_report.gpu_figures(rows)["gpu_amp_speedup"][0])
    assert "bf16" not in gpu_report.gpu_summary(run, rows)


def test_fast_path_file_is_read(tmp_path: Path) -> None:
    write_run(tmp_path)
    (tmp_path / "bench_fast_path.json").write_text(json.dumps({"results": [], "fast_path": {"variants": []}}))
    assert gpu_report.load_gpu_run(tmp_path).fast_path == {"variants": []}


def test_device_record_on_the_cpu(tmp_path: Path, capsys) -> None:
    record = gpu_report.device_record("cpu", commit="abc")
    assert record["name"] == record["cpu_model"] and record["commit"] == "abc" and record["torch"]
    assert record["driver"] is None and record["date"].startswith("20")
    assert gpu_report.main(["device", str(tmp_path / "out" / "device.json"), "--device", "cpu"]) == 0
    written = json.loads((tmp_path / "out" / "device.json").read_text())
    assert written["device"] == "cpu" and set(written) == set(record)
    assert "device.json" in capsys.readouterr().out
