"""ONNX export and the other runtimes: the exported graph computes our function at any size, checks itself,
and `predict`/`eval` run it with the same outputs and file handling; without the extra, one line says what
to install."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from graph_checks import assert_graph_matches_model
from PIL import Image

from fastfcn.checkpoint import save_checkpoint
from fastfcn.cli import main
from fastfcn.inference.fast_path import optimize, resolve_variant, variant_for
from fastfcn.models import build_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    # the procedural scenes' 8 classes, so that `fastfcn eval` can score it
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=8, jpu_width=16).eval()
    with torch.no_grad():  # BatchNorm statistics of real activations: clear class margins, few ties
        model.train()
        for _ in range(3):
            model(torch.randn(2, 3, 64, 64))
        model.eval()
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rt") / "tiny.pth"
    save_checkpoint(_tiny(), path, classes=None, train_config={"base_size": 64, "crop_size": 48, "image_size": 64})
    return path


@pytest.fixture(scope="module")
def exported(checkpoint: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    assert main(["export", str(checkpoint), str(out), "--size", "64"]) == 0
    return out


def test_export_checks_itself_and_writes_one_file(exported: Path, capsys) -> None:
    assert exported.is_file() and not (exported.parent / (exported.name + ".data")).exists()
    import onnx

    graph = onnx.load(str(exported)).graph
    assert [o.name for o in graph.output] == ["logits"]  # the main output only: no aux, no SE
    dims = graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in dims] == [True, False, True, True]  # batch, height and width are free


def test_exported_graph_equals_the_model_at_other_sizes(checkpoint: Path, exported: Path) -> None:
    from fastfcn.checkpoint import model_from_checkpoint
    from fastfcn.inference.runtimes import OnnxRuntimeModel

    model = model_from_checkpoint(checkpoint)[0]
    engine = OnnxRuntimeModel(onnx_path=exported, config=model.config)
    assert_graph_matches_model(model, engine, SHAPES)


SHAPES = [(1, 3, 64, 64), (2, 3, 57, 90), (1, 3, 33, 200)]
# OpenVINO runs in a process of its own: loaded into the test process, it made a later test of the suite
# (one that starts torchrun) die of a segmentation fault (OpenVINO 2026.4.1, torch 2.14.1)
OPENVINO_CHECK = """
import sys, torch
from fastfcn.checkpoint import model_from_checkpoint
from fastfcn.inference.runtimes import OpenVinoModel
model = model_from_checkpoint(sys.argv[1])[0]
engine = OpenVinoModel(onnx_path=sys.argv[2], config=model.config, precision="fp32")
for shape in {shapes}:
    x = torch.randn(shape)
    with torch.inference_mode():
        ref = model(x, with_aux=False)["out"]
    got = engine(x)["out"]
    assert got.shape == ref.shape, (got.shape, ref.shape)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
print("openvino ok", engine.precision)
"""


def test_openvino_runs_the_exported_graph_at_other_sizes(checkpoint: Path, exported: Path) -> None:
    import subprocess

    pytest.importorskip("openvino")
    proc = subprocess.run([sys.executable, "-c", OPENVINO_CHECK.format(shapes=SHAPES), str(checkpoint), str(exported)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "openvino ok" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]


def test_export_refuses_to_overwrite_and_rejects_outside_tolerance(checkpoint: Path, exported: Path, tmp_path: Path,
                                                                 capsys) -> None:
    before = exported.stat().st_mtime_ns
    assert main(["export", str(checkpoint), str(exported)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err and "--overwrite" in err
    assert exported.stat().st_mtime_ns == before
    strict = tmp_path / "strict.onnx"  # no fp32 graph reproduces the logits to 0: the check must fail
    assert main(["export", str(checkpoint), str(strict), "--max-abs-diff", "0", "--images", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "was not written" in err and "allowed 0" in err
    assert not strict.exists() and list(tmp_path.iterdir()) == []  # no temporary left either
    assert main(["export", str(tmp_path / "missing.pth"), str(tmp_path / "x.onnx")]) == 2
    assert "not found" in capsys.readouterr().err


def _images(folder: Path) -> None:
    folder.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)).save(folder / "wide.png")
    Image.fromarray(rng.integers(0, 256, (70, 40, 3), dtype=np.uint8)).save(folder / "tall.png")
    Image.fromarray(rng.integers(0, 256, (6, 90, 3), dtype=np.uint8)).save(folder / "strip.png")  # 33 px minimum


def test_predict_with_onnxruntime_writes_the_torch_outputs(checkpoint: Path, exported: Path, tmp_path: Path,
                                                           capsys) -> None:
    _images(tmp_path / "in")
    outs = {}
    for runtime in ("torch", "onnxruntime", "auto"):
        out = tmp_path / runtime
        extra = ["--onnx", str(exported)] if runtime == "onnxruntime" else []
        assert main(["predict", str(tmp_path / "in"), "--checkpoint", str(checkpoint), "--out", str(out),
                     "--runtime", runtime, *extra]) == 0
        err = capsys.readouterr().err
        outs[runtime] = sorted(p.relative_to(out) for p in out.rglob("*.png"))
        if runtime == "auto":  # the default picks ONNX Runtime when it is installed, and says so
            assert "onnxruntime on cpu, whole image at long side 64" in err
    assert outs["torch"] == outs["onnxruntime"] == outs["auto"] and len(outs["torch"]) == 6
    for name in outs["torch"]:
        if name.name.endswith("_mask.png"):
            a = np.array(Image.open(tmp_path / "torch" / name))
            b = np.array(Image.open(tmp_path / "onnxruntime" / name))
            assert a.shape == b.shape and (a == b).mean() >= 0.999


def test_eval_in_every_runtime_gives_the_same_metrics(checkpoint: Path, exported: Path, tmp_path: Path) -> None:
    results = {}
    for runtime in ("torch", "onnxruntime"):
        out = tmp_path / f"{runtime}.json"
        graph = ["--onnx", str(exported)] if runtime != "torch" else []  # torch given a graph is an error
        assert main(["eval", "--checkpoint", str(checkpoint), "--dataset", "procedural", "--num-images", "2",
                     "--device", "cpu", "--runtime", runtime, *graph, "--mode", "whole",
                     "--no-progress", "--out", str(out)]) == 0
        results[runtime] = json.loads(out.read_text())
    assert results["torch"]["variant"] == "channels_last+fold_bn" and results["onnxruntime"]["variant"] == "onnxruntime"
    assert results["torch"]["mode"] == "whole"
    assert results["torch"]["pixAcc"] == pytest.approx(results["onnxruntime"]["pixAcc"], abs=1e-3)


def test_optimize_auto_and_a_missing_extra(checkpoint: Path, exported: Path, tmp_path: Path, monkeypatch,
                                           capsys) -> None:
    model = _tiny()
    assert resolve_variant("auto", "cpu") == "onnxruntime" == variant_for("auto", "fp32", "cpu")
    fast = optimize(model, "auto", onnx_path=exported)
    assert fast.variant == "onnxruntime" and fast.config == model.config
    with torch.inference_mode():
        x = torch.randn(1, 3, 64, 64)
        torch.testing.assert_close(fast(x)["out"], model(x, with_aux=False)["out"], rtol=1e-4, atol=1e-4)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the deploy extra were not installed
    assert variant_for("auto", "fp32", "cpu") == "channels_last+fold_bn"  # auto falls back to our exact path
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image)
    assert main(["predict", str(image), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"),
                 "--runtime", "onnxruntime", "--onnx", str(exported)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "onnxruntime" in err and ".[deploy]" in err
    assert main(["export", str(checkpoint), str(tmp_path / "x.onnx")]) == 2
    assert ".[deploy]" in capsys.readouterr().err


def test_the_benchmark_times_the_runtimes_beside_our_variants() -> None:
    from dataclasses import replace

    from fastfcn import benchmark as bench

    # isolate: in a worker process, as the book measures, so that OpenVINO never loads into the test process
    opts = bench.BenchOptions(device="cpu", size=64, runs=1, warmup=0, isolate=True, threads=1)
    spec = bench.parse_rows(["encnet/resnet50/jpu"], substitute="resnet18")[0]
    variants = ["fp32", "channels_last+fold_bn", "onnxruntime", "onnxruntime+int8"]
    if pytest.importorskip("openvino"):
        variants += ["openvino+fp32", "openvino", "openvino+int8"]
    fp = bench.fast_path(spec, replace(opts, jpu_width=16), variants, images=1)
    rows = {v["variant"]: v for v in fp["variants"]}
    assert list(rows) == variants and rows["onnxruntime"]["runtime"] == "onnxruntime"
    assert rows["onnxruntime"]["exact"] and rows["channels_last+fold_bn"]["exact"] and rows["fp32"]["exact"]
    assert "openvino" not in rows or not rows["openvino"]["exact"]  # its default precision is its own choice
    assert not rows["onnxruntime+int8"]["exact"] and rows["onnxruntime+int8"]["dtype"] == "int8"
    assert 0.3 < rows["onnxruntime+int8"]["agreement"] < 1.0  # rounded to 256 levels: random weights amplify it
    assert rows["onnxruntime"]["agreement"] >= 0.999  # fp32 graphs: the same labels to rounding
    assert fp["best_exact_variant"] in variants and fp["best_torch_exact_variant"] in ("fp32", "channels_last+fold_bn")
    assert "onnxruntime" in bench.format_fast_path(fp)


def test_predict_cost_compares_every_configuration_with_fp32_whole_images() -> None:
    from fastfcn import benchmark as bench

    opts = bench.BenchOptions(device="cpu", size=48, runs=1, warmup=0, isolate=False, threads=1, jpu_width=16)
    spec = bench.parse_rows(["encnet/resnet50/jpu"], substitute="resnet18")[0]
    pc = bench.predict_cost(spec, opts, images=2, rounds=1)
    rows = {(r["mode"], r["asked"]): r for r in pc["rows"]}
    assert list(rows) == list(bench.predict_cost.__globals__["DEFAULT_CONFIGURATIONS"])
    assert rows["whole", "fp32"]["agreement"] == 1.0  # the reference itself
    assert rows["whole", "default"]["variant"] == "onnxruntime" and rows["whole", "exact"]["variant"] == "channels_last+fold_bn"
    assert rows["whole", "exact"]["agreement"] >= 0.999 and rows["whole", "default"]["agreement"] >= 0.999
    for r in pc["rows"]:
        assert r["per_image_s"] > 0 and r["ratio_to_forward"] == pytest.approx(r["per_image_s"] / pc["forward_s"])
        assert r["ratio_to_own_forward"] == pytest.approx(r["per_image_s"] / r["own_forward_s"])
    assert (pc["base_size"], pc["crop_size"]) == (49, 45) and "x forward" in bench.format_predict_cost(pc)  # 520, 480 at 512
    assert "x own" in bench.format_predict_cost(pc)
    parts = pc["parts"]  # the default configuration, part by part
    assert parts["variant"] == "onnxruntime" and parts["images"] == 2 and "network" in parts["parts_ms"]
    assert "one image part by part" in bench.format_predict_cost(pc)
    with pytest.raises(ValueError, match="at least one image"):
        bench.predict_cost(spec, opts, images=0)


def test_bf16_on_a_cpu_without_it_is_said_in_one_line(checkpoint: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("fastfcn.utils.device.bf16_supported", lambda device: False)
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(image)
    assert main(["predict", str(image), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o"),
                 "--runtime", "torch", "--precision", "bf16", "--no-progress"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["fastfcn predict: warning: this CPU does not compute bfloat16 natively (no AVX-512 BF16 or AMX), "
                   "so bf16 would run slower than fp32: running the exact fp32 path instead"]
    monkeypatch.setattr("fastfcn.utils.device.bf16_supported", lambda device: True)
    assert main(["predict", str(image), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "p"),
                 "--runtime", "torch", "--precision", "bf16", "--no-progress"]) == 0
    assert "reduced precision: a few labels may differ from fp32" in capsys.readouterr().err  # said even without progress


def _spins(engine: torch.nn.Module) -> str:
    """ONNX Runtime's allow_spinning entry of an engine's session ('' where it is left at ORT's default: on)."""
    inner = engine.model if hasattr(engine, "model") else engine
    try:
        return inner.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
    except RuntimeError:  # ORT raises for an entry that was never set
        return ""


def test_predict_and_eval_engines_do_not_spin_and_the_benchmark_keeps_ort_default(checkpoint: Path,
                                                                                  exported: Path) -> None:
    from fastfcn.inference.graphs import engine_for
    from fastfcn.inference.predict import Predictor

    predictor = Predictor(checkpoint, device="cpu", runtime="onnxruntime", onnx_path=exported)
    assert _spins(predictor.engine) == "0"
    model = _tiny()
    assert _spins(engine_for(model, checkpoint, "onnxruntime", exported)) == "0"  # what `fastfcn eval` builds
    assert _spins(optimize(model, "onnxruntime", onnx_path=exported)) == ""  # bare forwards: ORT's default
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():  # the same function either way
        assert torch.equal(predictor.engine(x)["out"], optimize(model, "onnxruntime", onnx_path=exported)(x)["out"])
