"""fastfcn.benchmark.variants on tiny models: every variant timed and its changed labels counted."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from fastfcn import benchmark as bench
from fastfcn.inference import fast_path
from fastfcn.utils.device import bf16_supported

TINY = bench.BenchOptions(device="cpu", size=64, runs=1, warmup=0, isolate=False, threads=1)
SPEC = bench.parse_rows(["encnet/resnet50/jpu"], substitute="resnet18")[0]


def test_fast_path_reports_agreement() -> None:
    fp = bench.fast_path(SPEC, replace(TINY, size=32), ["channels_last", "fold_bn", "bf16"], images=2)
    names = [v["variant"] for v in fp["variants"]]
    assert names == ["fp32", "channels_last", "fold_bn", "bf16"]  # the fp32 eager reference is always first
    ref = fp["variants"][0]
    assert ref["agreement"] == 1.0 and ref["speedup"] == 1.0 and ref["counts"]
    assert ref["changed_on_boundary_fraction"] is None  # nothing changed
    for v in fp["variants"]:
        assert 0.0 <= v["worst_image_agreement"] <= v["agreement"] <= 1.0
        assert v["changed_fraction"] == pytest.approx(1.0 - v["agreement"])
        assert v["counts"] == (v["agreement"] >= bench.AGREEMENT_THRESHOLD)
        assert v["speedup"] > 0 and len(v["times_s"]) == 1
        frac = v["changed_on_boundary_fraction"]
        assert frac is None or 0.0 <= frac <= 1.0
    # folding BatchNorm is exact up to float rounding: even random weights keep their labels
    assert fp["variants"][2]["agreement"] >= 0.999
    assert fp["best_variant"] in names and fp["best_agreement"] >= 0.999
    assert fp["images"] == 2 and "0-1 at 32x32" in fp["comparison_images"]
    assert fp["reference_classes"] >= 1 and 0.0 < fp["boundary_fraction"] < 1.0
    assert fp["agreement_resolvable"] == (fp["input_rounding_changed_fraction"] < 0.001)
    assert fp["fastest_variant"] in names and fp["weights"].startswith("random")
    assert "labels changed" in bench.format_fast_path(fp)


def test_fast_path_on_a_checkpoint(tmp_path) -> None:
    from fastfcn import build_model
    from fastfcn.checkpoint import save_checkpoint

    torch.manual_seed(0)
    path = save_checkpoint(build_model("encnet", backbone="resnet18", upsampling="jpu", jpu_width=32).eval(), tmp_path / "m.pth")
    fp = bench.fast_path(SPEC, TINY, ["fp32", "channels_last"], weights=path, images=1)
    assert fp["weights"] == str(path) and fp["backbone"] == "resnet18"
    assert [v["variant"] for v in fp["variants"]] == ["fp32", "channels_last"]


def test_comparison_images_are_procedural_validation_scenes() -> None:
    from fastfcn.data.procedural import ProceduralScenes
    from fastfcn.models import MEAN, STD

    x = bench.comparison_images(3, 48)
    assert x.shape == (3, 3, 48, 48) and x.dtype == torch.float32
    assert torch.equal(x, bench.comparison_images(3, 48))
    rgb = ProceduralScenes("val", num_images=3, image_size=48).generate(2)[0]
    pixel = (torch.tensor(rgb[5, 7], dtype=torch.float32) / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    torch.testing.assert_close(x[2, :, 5, 7], pixel)
    assert not torch.equal(x[0], x[1])


def test_early_layers_in_fp32(one_thread) -> None:
    from fastfcn import build_model

    torch.manual_seed(0)
    model = fast_path.early_layers_in_fp32(build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=4, jpu_width=16).eval())
    dtypes = {}
    for name in ("conv1", "layer1", "layer2"):
        getattr(model.backbone, name).register_forward_hook(
            lambda mod, args, out, name=name: dtypes.__setitem__(name, out.dtype))
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)["out"]
    assert dtypes == {"conv1": torch.float32, "layer1": torch.float32, "layer2": torch.bfloat16}
    with torch.inference_mode():  # outside autocast the wrapper changes nothing
        plain = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=4, jpu_width=16).eval()
        plain.load_state_dict({k.replace(".module.", "."): v for k, v in model.state_dict().items()})
        torch.testing.assert_close(model(x)["out"], plain(x)["out"])
    assert out.shape == (1, 4, 64, 64)


def test_the_reference_labels_are_computed_without_tf32() -> None:
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
            return {"out": x[:, :2]}

    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default for convolutions
    try:
        ref = bench.variants._reference(Recorder(), torch.randn(2, 3, 8, 8), 1)
        assert seen == [(False, False)] * 4 and ref.labels.shape == (2, 8, 8)
        assert torch.backends.cudnn.allow_tf32  # as it was, afterwards
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_label_boundary() -> None:
    labels = torch.zeros(1, 6, 6, dtype=torch.long)
    labels[:, :, 3:] = 2
    boundary = bench.variants.label_boundary(labels)
    assert boundary[0, :, 2:4].all() and not boundary[0, :, :2].any() and not boundary[0, :, 4:].any()


def test_variants() -> None:
    assert fast_path.parse_variant("channels_last+fold_bn+bf16", "cpu") == {
        "runtime": "torch", "dtype": "bf16", "dtype_given": True, "early_fp32": False, "channels_last": True,
        "fold_bn": True, "compile": False}
    assert fast_path.parse_variant("openvino+fp32", "cpu")["runtime"] == "openvino"
    assert fast_path.parse_variant("bf16+early_fp32", "cpu")["early_fp32"]
    cpu = fast_path.default_variants("cpu", with_compile=False)
    assert cpu[0] == "fp32" and "fp16" not in " ".join(cpu)
    assert ("channels_last+fold_bn+bf16" in cpu) == bf16_supported("cpu")  # emulated bf16 is not worth timing
    assert not any("compile" in v for v in cpu)
    assert cpu[-len(fast_path.other_runtimes("cpu")) or len(cpu):] == fast_path.other_runtimes("cpu")
    cuda = fast_path.default_variants("cuda")
    assert fast_path.other_runtimes("cuda") == [] and not any(v in cuda for v in ("onnxruntime", "openvino"))
    assert "compile+channels_last+fold_bn+fp16" in cuda and "channels_last+fold_bn+fp16+early_fp32" in cuda


def test_bad_input_is_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="fp16 autocast is for CUDA"):
        bench.fast_path(SPEC, TINY, ["fp32", "fp16"])
    with pytest.raises(ValueError, match="more than one dtype"):
        bench.fast_path(SPEC, TINY, ["fp32", "bf16+fp32"])
    with pytest.raises(ValueError, match="bad fast-path variant 'turbo'"):
        bench.fast_path(SPEC, TINY, ["turbo"])
    with pytest.raises(ValueError, match="bad fast-path variant 'bf16\\+bf16'"):
        bench.fast_path(SPEC, TINY, ["bf16+bf16"])
    with pytest.raises(ValueError, match="early_fp32 keeps the first layers in fp32"):
        bench.fast_path(SPEC, TINY, ["fp32", "channels_last+early_fp32"])
    with pytest.raises(ValueError, match="at least one image"):
        bench.fast_path(SPEC, TINY, ["fp32"], images=0)
    with pytest.raises(FileNotFoundError, match="fastfcn train"):
        bench.fast_path(SPEC, TINY, ["fp32"], weights=tmp_path / "missing.pth")


def test_cli_fast_path_only_on_a_checkpoint(tmp_path, capsys) -> None:
    import json

    from fastfcn import build_model
    from fastfcn.checkpoint import save_checkpoint
    from fastfcn.cli import main

    rc = main(["bench", "--no-table", "--no-save"])
    assert rc == 2 and "--no-table leaves nothing to measure" in capsys.readouterr().err
    torch.manual_seed(0)
    ckpt = save_checkpoint(build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=8, jpu_width=16).eval(),
                           tmp_path / "m.pth", dataset="procedural", iteration=7)
    rc = main(["bench", "--device", "cpu", "--size", "32", "--runs", "1", "--warmup", "0", "--in-process",
               "--threads", "1", "--no-table", "--fast-path", "fp32", "fold_bn", "--fast-path-weights", str(ckpt),
               "--fast-path-images", "2", "--out-dir", str(tmp_path), "--name", "fast_path_cpu_test"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "fast inference path" in out and "fold_bn" in out
    (path,) = bench.result_files(tmp_path)
    doc = json.loads(path.read_text())
    assert doc["results"] == [] and doc["fast_path"]["images"] == 2
    assert not (tmp_path / "fast_path_cpu_test.csv").exists()  # no table, no CSV
    info = doc["fast_path"]["weights_info"]
    assert info["config"]["num_classes"] == 8 and info["dataset"] == "procedural" and info["iteration"] == 7
    text = bench.describe_measurement(doc, bench.environment("cpu"))
    assert "(the same CPU model as this machine)" in text and "trained 7 iterations on procedural" in text
    assert "another machine" in bench.describe_measurement(doc, {"device_name": "elsewhere", "cpu_count": 64})



class _ResidualBlocks(torch.nn.Module):
    """Convolution + BatchNorm + ReLU, a residual add and a bilinear resize: the patterns the compiler fuses
    and freezes in the segmentation networks, at a size that compiles in seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
                                        torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        self.branch = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=2, dilation=2, bias=False),
                                          torch.nn.BatchNorm2d(8))
        self.classifier = torch.nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.stem(x)
        y = torch.relu(y + self.branch(y))
        return {"out": torch.nn.functional.interpolate(self.classifier(y), x.shape[-2:], mode="bilinear",
                                                       align_corners=True)}


def test_compiled_variant_with_frozen_weights_matches_eager() -> None:
    """``compile`` (inductor with the weights frozen: BatchNorm folded, convolutions pre-packed and fused with
    their ReLU and add) computes the model's function: logits within 1e-4 of fp32 eager."""
    torch.manual_seed(0)
    model = _ResidualBlocks()
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 32, 32))  # BatchNorm statistics that are not the identity
    model.eval()
    x = torch.randn(1, 3, 40, 56)
    with torch.no_grad():
        want = model(x)["out"]
        fast = fast_path.optimize(model, "compile+channels_last+fold_bn", example=x)
        got = fast(x)["out"]
    assert fast.compiled and fast.variant == "compile+channels_last+fold_bn"
    assert got.shape == want.shape and float((got - want).abs().max()) <= 1e-4


def test_fast_path_records_the_faster_exact_layout_for_the_exact_preset(tmp_path, monkeypatch) -> None:
    from fastfcn.inference import exact_path

    monkeypatch.setenv("FASTFCN_CACHE", str(tmp_path))
    assert fast_path.resolve_variant("exact", "cpu") == exact_path.EXACT_DEFAULT  # nothing measured yet
    fp = bench.fast_path(SPEC, replace(TINY, size=32), ["fold_bn", "channels_last+fold_bn"], images=1)
    seconds = {v["variant"]: v["latency_median_s"] for v in fp["variants"]}
    want = min(exact_path.EXACT_CANDIDATES, key=seconds.get)
    assert fp["exact_recorded"] == want and "exact path on this machine (" in bench.format_fast_path(fp)
    doc = json.loads((tmp_path / exact_path.RECORD_NAME).read_text())
    entry = doc[exact_path.machine_key(1)]  # measured with TINY's one thread
    assert entry["variant"] == want and entry["seconds"] == {v: seconds[v] for v in exact_path.EXACT_CANDIDATES}
    # a measurement without both candidates records nothing
    assert bench.fast_path(SPEC, replace(TINY, size=32), ["fold_bn"], images=1)["exact_recorded"] is None


def test_the_exact_preset_runs_what_this_machine_measured(tmp_path, monkeypatch) -> None:
    from fastfcn.inference import exact_path

    monkeypatch.setenv("FASTFCN_CACHE", str(tmp_path))
    threads = torch.get_num_threads()
    assert exact_path.record_exact({"fold_bn": 1.0, "channels_last+fold_bn": 1.2}, "cpu", "test",
                                   threads=threads) == "fold_bn"
    assert fast_path.resolve_variant("exact", "cpu") == "fold_bn"
    assert fast_path.variant_for("torch", "fp32", "cpu") == "fold_bn"
    assert fast_path.variant_for("torch", "fp32", "cpu", compile=True) == "compile+fold_bn"
    # recorded per machine and thread count: another thread count has measured nothing
    assert exact_path.recorded_exact("cpu") == "fold_bn"
    monkeypatch.setattr(exact_path, "machine_key", lambda threads=None: "another machine")
    assert fast_path.resolve_variant("exact", "cpu") == exact_path.EXACT_DEFAULT
    monkeypatch.undo()
    monkeypatch.setenv("FASTFCN_CACHE", str(tmp_path))
    assert exact_path.record_exact({"fold_bn": 2.0, "channels_last+fold_bn": 1.0}, "cpu", "test",
                                   threads=threads) == "channels_last+fold_bn"
    assert fast_path.resolve_variant("exact", "cpu") == "channels_last+fold_bn"  # the newer measurement
    # GPUs are not recorded; a record of one candidate only is not a choice; a damaged file is no record
    assert exact_path.record_exact({"fold_bn": 1.0, "channels_last+fold_bn": 2.0}, "cuda", "test") is None
    assert fast_path.resolve_variant("exact", "cuda") == exact_path.EXACT_DEFAULT
    assert exact_path.record_exact({"fold_bn": 1.0}, "cpu", "test") is None
    (tmp_path / exact_path.RECORD_NAME).write_text("{not json")
    assert fast_path.resolve_variant("exact", "cpu") == exact_path.EXACT_DEFAULT


def test_compiling_on_the_cpu_leaves_out_torchs_no_cuda_note() -> None:
    """torch's C++ builder notes 'No CUDA runtime is found' when Inductor compiles for the CPU on a machine with a
    CUDA folder; compiled variants drop that one note (the book would show it) and nothing else."""
    import logging

    fast_path._quiet_cpu_compile()
    fast_path._quiet_cpu_compile()  # once is enough: no second filter
    builder = logging.getLogger("torch.utils.cpp_extension")
    assert sum(isinstance(f, fast_path._NoCudaRuntimeNote) for f in builder.filters) == 1
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    builder.addHandler(handler)
    try:
        builder.warning("No CUDA runtime is found, using CUDA_HOME='%s'", "/usr/local")
        builder.warning("something else")
    finally:
        builder.removeHandler(handler)
    assert seen == ["something else"]


def test_without_a_cpp_compiler_compiled_variants_are_left_out_and_compile_is_refused(monkeypatch) -> None:
    """Inductor builds C++ for the CPU: on a machine without a compiler the compiled variants are not timed
    (chapter 6, bench --fast-path) and --compile is refused in one line, before any model is loaded."""
    variants = ["fp32", "channels_last+fold_bn", "compile+channels_last+fold_bn", "onnxruntime"]
    monkeypatch.setattr(fast_path, "compiler_available", lambda: True)
    assert fast_path.compilable_variants(variants, "cpu") == (variants, [])
    monkeypatch.setattr(fast_path, "compiler_available", lambda: False)
    assert fast_path.compilable_variants(variants, "cpu") == (
        ["fp32", "channels_last+fold_bn", "onnxruntime"], ["compile+channels_last+fold_bn"])
    assert fast_path.compilable_variants(variants, "cuda")[1] == []  # the GPU compiles with Triton
    with pytest.raises(ValueError, match="needs a C\\+\\+ compiler"):
        fast_path.variant_for("torch", "fp32", "cpu", compile=True)


def test_compiler_available_looks_for_the_compiler_inductor_uses() -> None:
    import subprocess
    import sys

    # a fresh interpreter with nothing on PATH finds no g++ (Inductor caches its search within a process)
    code = "from fastfcn.inference.fast_path import compiler_available; print(compiler_available())"
    out = subprocess.run([sys.executable, "-c", code], env={"PATH": "/nonexistent", "HOME": "/tmp"},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr[-2000:]
