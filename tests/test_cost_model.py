"""The GPU roofline cost model (fastfcn.benchmark.cost_model): its FLOPs are the package's counter's, layer by layer."""

from __future__ import annotations

import math

import pytest

from fastfcn import build_model, complexity
from fastfcn.benchmark import BenchOptions, parse_rows, run_benchmark, torchvision_specs
from fastfcn.benchmark.cost_check import (
    cost_figures,
    cost_phrases,
    format_gpu_predictions,
    format_validation,
    gpu_predictions,
    measure_machine,
    spearman,
    table_layers,
    time_by_part,
    validate,
)
from fastfcn.benchmark.cost_model import GPUS, LAUNCH_SECONDS, Gpu, Layer, layers, predict_seconds
from fastfcn.profiles import get_profile
from fastfcn.utils.text import PRINT_WIDTH


@pytest.mark.parametrize("head,upsampling", [("encnet", "jpu"), ("psp", "none"), ("aspp", "jpu")])
def test_per_layer_flops_equal_the_counter(head, upsampling):
    model = build_model(head, backbone="resnet18", upsampling=upsampling, num_classes=5).eval()
    counted = complexity(model, 64, by_module_depth=10**6)
    found = layers(model, 64)
    assert sum(layer.flops for layer in found) == counted.flops
    leaves = [layer for layer in found if not layer.name.endswith("(own ops)")]
    convs = [layer for layer in leaves if layer.kind == "Conv2d"]
    assert convs and all(layer.flops == counted.flops_by_module[layer.name] for layer in convs)
    assert all(layer.bytes > 0 and layer.kernels >= 1 for layer in found)


def test_roofline_time_is_the_slower_of_arithmetic_and_traffic_plus_launches():
    gpu = Gpu("test", peak_flops=1e12, bandwidth=1e11, source="made up")
    compute = Layer("a", "Conv2d", flops=4_000_000_000, bytes=1_000_000, kernels=1)
    memory = Layer("b", "ReLU", flops=0, bytes=2_000_000_000, kernels=2)
    assert compute.seconds(gpu, launch=0.0) == 4e-3 and compute.bound(gpu) == "compute"
    assert memory.seconds(gpu, launch=1e-3) == 2e-2 + 2e-3 and memory.bound(gpu) == "memory"
    assert predict_seconds([compute, memory], gpu, launch=0.0) == 4e-3 + 2e-2
    assert LAUNCH_SECONDS > 0 and all(g.source and g.peak_flops > 0 and g.bandwidth > 0 for g in GPUS.values())


# ------------------------------------------------------------------------------------------------
# the model checked on this machine (fastfcn.benchmark.cost_check), and its GPU figures for chapter 6


@pytest.mark.parametrize("x,y,expected", [
    ([1, 2, 3, 4], [10, 20, 30, 40], 1.0),
    ([1, 2, 3, 4], [4, 3, 2, 1], -1.0),
    ([1, 2, 3], [1, 3, 2], 0.5),                   # 1 - 6 * (0 + 1 + 1) / (3 * 8)
    ([1, 2, 2, 3], [1, 2, 3, 4], 0.9486832980505138),  # ties share rank 2.5: r = 4.5 / sqrt(4.5 * 5)
    ([5, 5, 5], [1, 2, 3], math.nan),
])
def test_spearman_is_exact_on_known_cases_ties_included(x, y, expected):
    got = spearman(x, y)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_spearman_refuses_sequences_of_different_lengths():
    with pytest.raises(ValueError, match="one length"):
        spearman([1, 2], [1, 2, 3])


def test_validation_runs_on_the_smoke_profile_and_gives_finite_numbers():
    smoke = get_profile("smoke")
    opts = BenchOptions(size=smoke.bench_size, runs=1, warmup=0, isolate=False).validated()
    specs = parse_rows(smoke.bench_rows, substitute=smoke.bench_substitute_backbone)
    table = run_benchmark(specs + torchvision_specs(smoke.bench_torchvision), opts)
    machine = measure_machine(matmul_size=256, copy_mib=8, runs=2)
    assert machine.peak_flops > 0 and machine.bandwidth > 0
    found = table_layers(table, opts)
    validation = validate(table, found, machine)
    assert len(validation["rows"]) == len(table) == len(found) == 3
    assert all(math.isfinite(r["predicted_s"]) and r["predicted_s"] > 0 and math.isfinite(r["ratio"])
               for r in validation["rows"])
    assert math.isfinite(validation["spearman"]) and math.isfinite(validation["median_abs_rel_error"])
    # the row predicted from the layers is the sum of their roofline times on the measured machine
    assert validation["rows"][0]["predicted_s"] == predict_seconds(found[0], machine)
    assert "Spearman" in format_validation(validation)

    predictions = gpu_predictions(table, table_layers(table, opts, size=128, paper_backbones=True))
    by_model = {p["model"]: p for p in predictions}
    dilated, jpu = by_model["encnet/none resnet50"], by_model["encnet/jpu resnet50"]
    assert set(jpu["fps"]) == set(GPUS) and dilated["ratio"] == {g: 1.0 for g in GPUS}
    assert jpu["ratio"]["V100"] == pytest.approx(jpu["fps"]["V100"] / dilated["fps"]["V100"])
    # mmsegmentation's V100 fps, ADE20K 80k: EncNet dilated 22.81, JPU 17.23 (fastfcn/third_party.py)
    assert (dilated["mmseg_fps"], jpu["mmseg_fps"]) == (22.81, 17.23)
    assert jpu["mmseg_ratio"] == pytest.approx(17.23 / 22.81)
    assert by_model["fcn_resnet50"]["ratio"] is None and by_model["fcn_resnet50"]["mmseg_fps"] is None
    # the longest name of the book's table (EncNet bilinear R101) and torchvision's, named once, fit a page
    longest = {**jpu, "model": "encnet/bilinear resnet101"}
    text = format_gpu_predictions([*predictions, longest])
    assert max(len(line) for line in text.splitlines()) <= PRINT_WIDTH and "fcn_resnet50 " in text
    figures, phrases = cost_figures(validation, predictions), cost_phrases(validation, predictions)
    assert figures["cost_rows"] == (3, None) and phrases["cost_best_model"] == "`encnet/jpu resnet50`"
    assert "1 of 1 heads" in phrases["cost_mmseg_phrase"]
    assert all(math.isfinite(v) for name, (v, _) in figures.items() if not name.endswith("paper_ratio"))


def test_time_by_part_adds_up_to_the_prediction():
    model = build_model("psp", backbone="resnet18", upsampling="jpu", num_classes=5).eval()
    found, gpu = layers(model, 64), GPUS["V100"]
    parts = time_by_part(found, gpu)
    assert set(parts) == {"backbone", "upsample", "head", "aux_head"}
    assert sum(v["seconds"] for v in parts.values()) == pytest.approx(predict_seconds(found, gpu), rel=1e-12)
    assert all(0 <= v["memory_bound_s"] <= v["seconds"] for v in parts.values())


def test_counting_leaves_real_interpolation_alone():
    # while layers() counts, F.interpolate is replaced process-wide; a real tensor still gets real values
    import torch
    import torch.nn.functional as F

    from fastfcn.benchmark.cost_model import _shape_only_elementwise

    real = torch.arange(16.0).reshape(1, 1, 4, 4)
    want = F.interpolate(real, (8, 8), mode="bilinear", align_corners=True)
    with _shape_only_elementwise(torch.nn.Sequential(torch.nn.ReLU())):
        got = F.interpolate(real, (8, 8), mode="bilinear", align_corners=True)
        shape_only = F.interpolate(real.to("meta"), (8, 8), mode="bilinear", align_corners=True)
    assert torch.equal(got, want) and shape_only.shape == (1, 1, 8, 8) and shape_only.is_meta
    assert F.interpolate(real, (8, 8), mode="bilinear", align_corners=True).equal(want)  # restored
