"""fastfcn.benchmark on tiny models: results complete, JSON/CSV written, fast path, torchvision rows, bad options."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import pytest
import torch

from fastfcn import benchmark as bench
from fastfcn import paper
from fastfcn.cli import main

TINY = bench.BenchOptions(device="cpu", size=64, runs=1, warmup=0, isolate=False, threads=1)
ROWS = ["encnet/resnet50/none", "encnet/resnet50/jpu"]


@pytest.fixture(scope="module")
def tiny_results() -> list[dict]:
    specs = bench.parse_rows(ROWS, substitute="resnet18")
    return bench.run_benchmark(specs, TINY, modes=("inference", "train"))


def test_results_json_and_csv_are_complete(tiny_results: list[dict], tmp_path) -> None:
    assert [(r["name"], r["mode"]) for r in tiny_results] == [
        ("encnet/none", "inference"), ("encnet/none", "train"), ("encnet/jpu", "inference"), ("encnet/jpu", "train")]
    path = bench.write_json(tmp_path / "bench_cpu_test.json", tiny_results, TINY, {"fast_path": None})
    doc = json.loads(path.read_text())
    env = doc["environment"]
    for key in ("created", "device", "device_name", "cpu_model", "cpu_count", "torch_threads", "python", "torch",
                "torchvision", "platform"):
        assert env.get(key) not in (None, ""), key
    assert env["torch"] == torch.__version__
    assert doc["options"]["size"] == 64 and doc["options"]["dtype"] == "fp32"
    for r in doc["results"]:
        missing = [k for k in bench.CSV_FIELDS if k not in r]
        assert not missing, missing
        assert r["backbone"] == "resnet18" and r["paper_backbone"] == "resnet50" and r["size"] == 64
        assert r["params"] > 0 and r["gmacs"] > 0 and r["fps"] > 0
        assert 0 < r["latency_min_s"] <= r["latency_median_s"] <= r["latency_max_s"]
        assert r["latency_q25_s"] <= r["latency_median_s"] <= r["latency_q75_s"]
        assert len(r["times_s"]) == 1
        assert r["batch"] == (1 if r["mode"] == "inference" else 2)
        assert r["peak_mem_bytes"] is not None and r["peak_mem_bytes"] >= 0
        assert "in-process" in r["memory_method"]
        # the paper's FPS and ratio sit beside ours
        assert r["paper_fps"] == {"none": 18.77, "jpu": 37.56}[r["upsampling"]]
        assert r["paper_ratio"] == pytest.approx(37.56 / 18.77 if r["upsampling"] == "jpu" else 1.0)
        assert r["ratio"] is not None
        assert r["official_cpu_latency_s"] is None  # not the official configuration (resnet18, 64 px)
        assert r["output_stride"] == (8 if r["upsampling"] == "none" else 32)
    none = [r for r in doc["results"] if r["upsampling"] == "none"]
    assert all(r["ratio"] == 1.0 for r in none)

    csv_path = bench.write_csv(tiny_results, tmp_path / "bench_cpu_test.csv")
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(tiny_results)
    assert list(rows[0]) == bench.CSV_FIELDS
    table = bench.format_table(tiny_results)
    lines = table.splitlines()
    columns = ["Mparams", "GMACs", "ms", "IQR", "ms", "FPS", "MiB", "x", "dil", "paper", "p", "x", "dil"]
    assert len({(r["mode"], r["batch"]) for r in tiny_results}) > 1  # the modes differ: a column each
    assert lines[0].split() == ["model", "backbone", "OS", "mode", "bs", *columns]  # no official latency: no column
    inference = [r for r in tiny_results if r["mode"] == "inference"]
    shared = bench.format_table(inference).splitlines()  # one mode and batch: said once, above
    assert shared[0] == f"inference, batch {inference[0]['batch']}"
    assert shared[1].split() == ["model", "backbone", "OS", *columns]
    assert "encnet/jpu" in table and max(map(len, lines)) <= 100


def test_isolated_measurement_reads_peak_memory_of_a_fresh_process() -> None:
    spec = bench.parse_rows(["encnet/resnet50/jpu"], substitute="resnet18")[0]
    r = bench.run_benchmark([spec], replace(TINY, size=32, isolate=True))[0]
    assert r["isolated"] is True and "fresh process" in r["memory_method"]
    assert r["peak_total_bytes"] >= r["baseline_bytes"] > 0
    assert r["peak_mem_bytes"] > 0


@pytest.mark.parametrize("name", bench.TORCHVISION_MODELS)
def test_torchvision_rows_build(name: str) -> None:
    (spec,) = bench.torchvision_specs([name])
    assert spec.output_stride == 8 and spec.paper_row is None
    cx = bench.model_complexity(spec, replace(TINY, size=512))
    assert cx["params"] > 30e6
    # dilated torchvision models cost more than EncNet+JPU on the official ResNet-50
    jpu = bench.model_complexity(bench.parse_rows(["encnet/resnet50/jpu"])[0], replace(TINY, size=512))
    assert cx["gmacs"] > jpu["gmacs"]


def test_torchvision_row_measures() -> None:
    (spec,) = bench.torchvision_specs(["fcn_resnet50"])
    r = bench.run_benchmark([spec], replace(TINY, size=32))[0]
    assert r["kind"] == "torchvision" and r["fps"] > 0 and r["paper_fps"] is None and r["ratio"] is None


def test_table2_specs_and_filters() -> None:
    specs = bench.table2_specs()
    assert len(specs) == 16
    assert {s.backbone for s in specs} == {"resnet50s", "resnet101s"}  # deep stem, as the official models
    assert all(s.paper_row is not None for s in specs)
    tv = bench.table2_specs(["resnet101"], ["encnet"], stem="torchvision")
    assert [(s.backbone, s.upsampling) for s in tv] == [("resnet101", u) for u in ("none", "bilinear", "fpn", "jpu")]
    assert len(bench.parse_rows("all")) == 16


def test_dilated_jpu_keeps_the_dilated_backbone_cost() -> None:
    opts = replace(TINY, size=512)
    none, plain, dilated = (bench.flops_by_part(s, opts) for s in (
        *bench.parse_rows(ROWS), bench.dilated_jpu_spec("encnet", "resnet50")))
    assert dilated["backbone"] == pytest.approx(none["backbone"])
    assert plain["backbone"] < none["backbone"] / 3
    assert dilated["upsample"] > 2 * plain["upsample"]  # its input convolutions read C4, C5 at 1/8
    assert dilated["total"] > none["total"]
    # the model itself runs: C3, C4 and C5 all at 1/8
    model = bench.build_spec_model(bench.dilated_jpu_spec("encnet", "resnet50", substitute="resnet18"), TINY)
    assert model.eval()(torch.randn(1, 3, 64, 64))["out"].shape == (1, 59, 64, 64)
    assert [f.shape[-1] for f in model.backbone(torch.randn(1, 3, 64, 64))[1:]] == [8, 8, 8]


def test_training_memory_fit() -> None:
    spec = bench.parse_rows(["encnet/resnet50/jpu"], substitute="resnet18")[0]
    fit = bench.training_memory_fit(spec, TINY, budget_bytes=2**30)
    assert fit["per_image_bytes"] > 0
    assert fit["saved_bytes"][2] > fit["saved_bytes"][1]
    assert isinstance(fit["max_batch"], int) and fit["max_batch"] > 0
    # at 32 px C5 is 1x1: BatchNorm cannot train on one value per channel, and says how to avoid it
    with pytest.raises(ValueError, match="use larger batches"):
        bench.training_memory_fit(spec, replace(TINY, size=32))


def test_annotate_puts_the_official_cpu_latency_beside_the_official_configuration(monkeypatch) -> None:
    def fake(upsampling: str, seconds: float, backbone: str = "resnet50s") -> dict:
        spec = bench.parse_rows([f"encnet/resnet50/{upsampling}"])[0]
        return {**bench.spec_fields(spec), "backbone": backbone, "mode": "inference", "size": 512, "batch": 1,
                "dtype": "fp32", "device": "cpu", "aux": True, "fps": 1 / seconds, "latency_median_s": seconds}

    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: paper.OFFICIAL_CPU_CAPABILITY)
    results = bench.annotate([fake("none", 1.5), fake("jpu", 1.0)])
    official = paper.OFFICIAL_CPU_LATENCY["encnet", "resnet50"]
    assert [r["official_cpu_latency_s"] for r in results] == [official["none"], official["jpu"]]
    assert results[1]["ratio"] == pytest.approx(1.5) and results[1]["paper_ratio"] == pytest.approx(2.0, abs=0.01)
    # the 7x7-stem backbone is not the official configuration
    assert bench.annotate([fake("jpu", 1.0, "resnet50")])[0]["official_cpu_latency_s"] is None
    # a latency belongs to its CPU: on another kind the official figure is not put beside ours
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "another")
    assert bench.annotate([fake("jpu", 1.0)])[0]["official_cpu_latency_s"] is None


def test_gpu_result_files(tmp_path) -> None:
    assert bench.gpu_result_files(tmp_path) == []
    (tmp_path / "bench_gpu_test.json").write_text("{}")
    (tmp_path / "bench_cpu_test.json").write_text("{}")
    assert [p.name for p in bench.gpu_result_files(tmp_path)] == ["bench_gpu_test.json"]


@pytest.mark.parametrize(("change", "message"), [
    ({"dtype": "fp8"}, "unknown dtype 'fp8'"),
    ({"dtype": "fp16"}, "fp16 autocast is for CUDA"),
    ({"device": "tpu"}, "unknown device"),
    ({"train_batch": 1}, "train_batch must be at least 2"),
    ({"size": 16}, "size must be an integer >= 32"),
    ({"runs": 0}, "runs must be a positive integer"),
    ({"warmup": -1}, "warmup must be a non-negative integer"),
    ({"threads": 0}, "threads must be a positive integer"),
])
def test_bad_options_are_rejected(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(TINY, **change).validated()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_without_a_gpu_is_rejected() -> None:
    with pytest.raises(RuntimeError, match="no GPU is visible"):
        replace(TINY, device="cuda").validated()


def test_bad_selections_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown head 'fcn8'"):
        bench.table2_specs(heads=["fcn8"])
    with pytest.raises(ValueError, match="unknown backbone 'resnet152'"):
        bench.table2_specs(["resnet152"])
    with pytest.raises(ValueError, match="select no row"):
        bench.table2_specs(["resnet50"], ["aspp"], ["fpn"])
    with pytest.raises(ValueError, match="'head/backbone/upsampling'"):
        bench.parse_rows(["encnet-jpu"])
    with pytest.raises(ValueError, match="not a row of Table 2"):
        bench.parse_rows(["psp/resnet50/bilinear"])
    with pytest.raises(ValueError, match="unknown torchvision model"):
        bench.torchvision_specs(["deeplabv3_mobilenet_v3_large"])
    with pytest.raises(ValueError, match="unknown substitute backbone"):
        bench.table2_specs(substitute="vgg16")
    with pytest.raises(ValueError, match="unknown mode"):
        bench.run_benchmark(bench.parse_rows(ROWS[:1], substitute="resnet18"), TINY, modes=("eval",))


def test_cli_bench(tmp_path, capsys) -> None:
    rc = main(["bench", "--device", "cpu", "--dtype", "fp16", "--no-save"])
    assert rc == 2 and "fp16 autocast is for CUDA" in capsys.readouterr().err
    rc = main(["bench", "--device", "cpu", "--substitute-backbone", "resnet18", "--size", "32", "--runs", "1",
               "--warmup", "0", "--rows", "encnet/resnet50/jpu", "--no-torchvision", "--in-process", "--threads", "1",
               "--quiet", "--out-dir", str(tmp_path), "--name", "bench_cpu_cli", "--fast-path", "fp32", "channels_last"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "encnet/jpu" in out and "fast inference path" in out
    doc = json.loads((tmp_path / "bench_cpu_cli.json").read_text())
    assert doc["fast_path"]["variants"][1]["variant"] == "channels_last"
    assert len(doc["results"]) == 1 and (tmp_path / "bench_cpu_cli.csv").is_file()


def test_official_fps_records_both_timings(tmp_path, capsys) -> None:
    """``--official-fps`` also times the loop unsynchronised (the official script's way); on the CPU synchronising
    is a no-op, so both figures are measured and recorded, and the CUDA-event figures are None."""
    spec = bench.parse_rows(ROWS[1:], substitute="resnet18")[0]
    (r,) = bench.run_benchmark([spec], replace(TINY, size=32, runs=2, official_fps=True))
    assert r["fps"] > 0 and r["fps_unsynchronised"] > 0
    assert r["fps_cuda_events"] is None and r["latency_cuda_events_median_s"] is None
    (plain,) = bench.run_benchmark([spec], replace(TINY, size=32))
    assert plain["fps_unsynchronised"] is None  # not asked for
    rc = main(["bench", "--device", "cpu", "--substitute-backbone", "resnet18", "--size", "32", "--runs", "2",
               "--warmup", "0", "--rows", "encnet/resnet50/jpu", "--no-torchvision", "--in-process", "--threads", "1",
               "--quiet", "--official-fps", "--out-dir", str(tmp_path), "--name", "bench_cpu_official"])
    assert rc == 0, capsys.readouterr().out
    doc = json.loads((tmp_path / "bench_cpu_official.json").read_text())
    assert doc["options"]["official_fps"] is True
    (row,) = doc["results"]
    assert row["fps"] > 0 and row["fps_unsynchronised"] > 0 and "fps_cuda_events" in row
    with (tmp_path / "bench_cpu_official.csv").open() as f:
        assert float(next(csv.DictReader(f))["fps_unsynchronised"]) > 0


def _paths(ours_ms: float, ort_ms: float) -> list[dict]:
    row = {"changed_fraction": 0.0, "counts": True}
    return [{"path": "ours, fp32 eager", "variant": "fp32", "speedup": 1.0, "latency_median_s": 1.0, "exact": True, **row},
            {"path": "ours, exact", "variant": "channels_last+fold_bn", "speedup": 1000 / ours_ms,
             "latency_median_s": ours_ms / 1000, "exact": True, **row},
            {"path": "ONNX Runtime, fp32", "variant": "onnxruntime", "speedup": 1000 / ort_ms,
             "latency_median_s": ort_ms / 1000, "exact": True, **row},
            {"path": "ours, reduced precision", "variant": "bf16", "speedup": 1.5, "latency_median_s": 1 / 1.5,
             "exact": False, "changed_fraction": 0.0005, "counts": True}]


def test_runtime_phrases_follow_the_numbers() -> None:
    from fastfcn.benchmark.advice import runtime_phrases

    slow = runtime_phrases(_paths(800, 600), bf16_native=False)
    assert slow["runtime_fastest_exact"].startswith("ONNX Runtime, fp32 (`onnxruntime`), 1.67 times")
    assert "ONNX Runtime was 1.33 times as fast as our exact path" in slow["runtime_ours_vs_ort"]
    assert "bf16 is emulated" in slow["runtime_reduced"] and "int8 graph" in slow["runtime_reduced"]
    int8 = {"path": "ONNX Runtime, int8", "variant": "onnxruntime+int8", "speedup": 2.5, "latency_median_s": 0.4,
            "exact": False, "changed_fraction": 0.02, "counts": False}
    measured = runtime_phrases(_paths(800, 600) + [int8], bf16_native=False)["runtime_reduced"]
    assert "`onnxruntime+int8` ran 2.50 times fp32 eager, changing 2.00 % of the labels" in measured
    fast = runtime_phrases(_paths(500, 600), bf16_native=True)
    assert "our exact path (`channels_last+fold_bn`) was 1.20 times as fast as ONNX Runtime" in fast["runtime_ours_vs_ort"]
    assert "in reduced precision was ours, reduced precision (`bf16`, 1.50 times" in fast["runtime_reduced"]
