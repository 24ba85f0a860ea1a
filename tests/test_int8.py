"""int8: the quantized graph holds int8 weights, keeps the checkpoint's record, computes nearly the fp32
function, and the measurement reports every engine; bad input is refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fastfcn.checkpoint import save_checkpoint
from fastfcn.inference.quantize import QUANTIZED_KEY, calibration_images, quantize_graph
from fastfcn.inference.runtimes import DIGEST_KEY, OnnxRuntimeModel, export_onnx, graph_metadata
from fastfcn.models import build_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=8, jpu_width=16)
    with torch.no_grad():  # BatchNorm statistics of real activations
        for _ in range(3):
            model(torch.from_numpy(calibration_images(2, 64, seed=3)))
    path = tmp_path_factory.mktemp("int8") / "tiny.pth"
    return save_checkpoint(model.eval(), path, classes=None, train_config={"image_size": 64})


@pytest.fixture(scope="module")
def graphs(checkpoint: Path, tmp_path_factory) -> tuple[Path, Path]:
    from fastfcn.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(checkpoint)
    folder = tmp_path_factory.mktemp("graphs")
    fp32 = export_onnx(model, folder / "fp32.onnx", metadata=graph_metadata(checkpoint, model))
    return fp32, quantize_graph(fp32, folder / "int8.onnx", calibration_images(4, 64), reduce_range=True)


def test_calibration_images_are_normalised_training_scenes() -> None:
    images = calibration_images(2, 48)
    assert images.shape == (2, 3, 48, 48) and images.dtype == np.float32
    assert -3 < images.min() < 0 < images.max() < 3  # ImageNet mean/std normalisation, not [0, 255]
    assert not np.array_equal(images, calibration_images(2, 48, seed=1))


def test_quantized_graph_holds_int8_weights_and_the_checkpoints_record(graphs) -> None:
    fp32, int8 = graphs
    graph = onnx.load(str(int8))
    ops = {n.op_type for n in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    int8_weights = [t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]
    convs = sum(n.op_type == "Conv" for n in onnx.load(str(fp32)).graph.node)
    assert len(int8_weights) >= convs - 1  # every convolution's kernel, bar none or one
    props = {p.key: p.value for p in graph.metadata_props}
    fp32_props = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    assert props[DIGEST_KEY] == fp32_props[DIGEST_KEY]  # predict/eval --onnx still check it against the checkpoint
    assert "7-bit" in props[QUANTIZED_KEY] and QUANTIZED_KEY not in fp32_props
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size  # a byte per weight instead of four


def test_quantized_graph_computes_nearly_the_fp32_function(graphs) -> None:
    fp32, int8 = graphs
    x = torch.from_numpy(calibration_images(2, 80, seed=5))  # another size and other scenes than the calibration
    a = OnnxRuntimeModel(onnx_path=fp32)(x)["out"]
    b = OnnxRuntimeModel(onnx_path=int8)(x)["out"]
    assert a.shape == b.shape
    relative = float((a - b).norm() / a.norm())
    assert 0 < relative < 0.1  # rounded (not the same graph), yet close
    assert float((a.argmax(1) == b.argmax(1)).float().mean()) > 0.8


def test_quantize_refuses_images_of_the_wrong_shape(graphs, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        quantize_graph(graphs[0], tmp_path / "x.onnx", np.zeros((3, 64, 64), np.float32))
    with pytest.raises(ValueError, match="at least one image"):
        calibration_images(0, 64)
    assert not (tmp_path / "x.onnx").exists()


def test_int8_effect_reports_every_engine(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "int8_effect.py"), str(checkpoint), "--size", "96",
                           "--calibration", "2", "--images", "2", "--runs", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    rows = {r["engine"]: r for r in doc["int8"]["rows"]}
    assert {"torch exact (fp32)", "onnxruntime fp32", "onnxruntime int8", "onnxruntime int8, 7-bit weights"} <= set(rows)
    ref = rows["onnxruntime fp32"]
    assert ref["speedup"] == 1.0 and ref["agreement"] == 1.0
    assert rows["torch exact (fp32)"]["agreement"] > 0.999  # the same function in fp32
    for r in rows.values():
        assert r["latency_median_s"] > 0 and 0 <= r["mIoU"] <= 1 and 0 < r["agreement"] <= 1
    assert "onnxruntime int8" in proc.stdout and doc["environment"]["cpu_model"]


def test_int8_effect_refuses_bad_arguments_in_one_line(checkpoint: Path, tmp_path: Path) -> None:
    for args, message in (([str(tmp_path / "none.pth")], "does not exist"),
                          ([str(checkpoint), "--images", "0"], "images must be a positive integer")):
        proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "int8_effect.py"), *args],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2 and message in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _result(int8_ms: float, int8_miou: float) -> dict:
    rows = [{"engine": "torch exact (fp32)", "latency_median_s": 1.0, "speedup": 0.8, "mIoU": 0.6, "pixAcc": 0.9,
             "agreement": 1.0},
            {"engine": "onnxruntime fp32", "latency_median_s": 0.8, "speedup": 1.0, "mIoU": 0.6, "pixAcc": 0.9,
             "agreement": 1.0},
            {"engine": "onnxruntime int8", "latency_median_s": int8_ms / 1000, "speedup": 800 / int8_ms,
             "mIoU": int8_miou, "pixAcc": 0.905, "agreement": 0.98}]
    return {"rows": rows, "vnni": False}


def test_int8_verdict_follows_the_numbers() -> None:
    from fastfcn.benchmark.int8 import int8_figures, int8_verdict

    assert int8_verdict(_result(400, 0.599)).startswith("int8 is worth it")
    assert "only 1.05 times" in int8_verdict(_result(760, 0.6))
    assert "lost more than 0.5 points" in int8_verdict(_result(400, 0.55))
    figures = int8_figures(_result(400, 0.59))
    assert figures["int8_ort_speedup"] == (2.0, "x") and figures["int8_ort_miou_change_pts"] == (-1.0, "points")
    assert figures["int8_ort_changed_pct"] == (2.0, "%") and figures["int8_ort_pixacc_change_pts"] == (0.5, "points")
    assert np.isnan(figures["int8_ov_speedup"][0])  # OpenVINO not in this result: not measured, not absent
    missing = int8_figures(None)
    assert set(missing) == set(figures) and all(np.isnan(v) for v, _ in missing.values())
    assert int8_verdict(None).startswith("int8 was not measured")


@pytest.fixture(scope="module")
def procedural_checkpoint(checkpoint: Path, tmp_path_factory) -> Path:
    """The tiny checkpoint, recorded as trained on the procedural scenes at 64 px (as ``fastfcn train`` writes)."""
    from fastfcn.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(checkpoint)
    path = tmp_path_factory.mktemp("int8p") / "procedural.pth"
    return save_checkpoint(model, path, classes=None, dataset="procedural",
                           train_config={"dataset": "procedural", "image_size": 64, "crop_size": 64})


def _export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastfcn", "export", *args], capture_output=True, text=True,
                          timeout=600)


def test_export_int8_writes_a_checked_quantized_graph(procedural_checkpoint: Path, tmp_path: Path) -> None:
    from fastfcn.inference.predict import Predictor
    from fastfcn.inference.quantize import quantization_of
    from fastfcn.inference.runtimes import check_graph

    out = tmp_path / "model.onnx"
    proc = _export(str(procedural_checkpoint), str(out), "--int8", "--calibration-count", "3",
                   "--int8-min-agreement", "0.5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("int8:"))
    agreement = float(line.split("agree with the model's on ")[1].split(" %")[0])
    assert 50 <= agreement <= 100 and "calibrated on 3 training images" in line
    assert "min/max of 3 calibration images at 64x64" in quantization_of(out)
    predictor = Predictor(procedural_checkpoint, onnx_path=out, runtime="onnxruntime")
    check_graph(out, procedural_checkpoint, predictor.model.config)  # the checkpoint's record is kept
    assert predictor.reduced and "(int8 graph)" in predictor.describe()
    labels = predictor.labels(np.full((70, 90, 3), 128, np.uint8))
    assert labels.shape == (70, 90)


def test_export_int8_is_refused_below_its_agreement_and_writes_nothing(procedural_checkpoint: Path,
                                                                        tmp_path: Path) -> None:
    from fastfcn.inference.export import export_checkpoint

    out = tmp_path / "model.onnx"
    report = export_checkpoint(procedural_checkpoint, out, int8=True, calibration_count=2, int8_min_agreement=0.0)
    assert report["int8"]["agreement"] < 1.0  # rounded: some labels moved on these random weights
    out.unlink()
    with pytest.raises(RuntimeError, match=r"int8 graph.s labels agree .*\(needed 100 %\)"):
        export_checkpoint(procedural_checkpoint, out, int8=True, calibration_count=2, int8_min_agreement=1.0)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_export_int8_needs_the_training_images_of_real_data(checkpoint: Path, tmp_path: Path) -> None:
    for args, message in ((["--int8"], "trained on an unknown dataset: pass --calibration-images DIR"),
                          (["--calibration-count", "4"], "are for an int8 graph: add --int8"),
                          (["--int8", "--calibration-images", str(tmp_path)], "holds no image files"),
                          (["--int8", "--calibration-images", str(tmp_path / "no")], "not found")):
        proc = _export(str(checkpoint), str(tmp_path / "m.onnx"), *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()


def test_calibration_from_folder_crops_the_centre_of_each_image(tmp_path: Path) -> None:
    from PIL import Image

    from fastfcn.data.transforms import normalize
    from fastfcn.inference.quantize import calibration_from_folder

    wide = np.zeros((40, 120, 3), np.uint8)
    wide[:, 40:80] = 255  # white centre third, black sides
    Image.fromarray(wide).save(tmp_path / "a.png")
    Image.fromarray(np.full((64, 32, 3), 60, np.uint8)).save(tmp_path / "b.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    images = calibration_from_folder(tmp_path, count=5, size=32)
    assert images.shape == (2, 3, 32, 32) and images.dtype == np.float32
    white = normalize(torch.full((3, 1, 1), 255, dtype=torch.uint8)).numpy()[:, 0, 0]
    np.testing.assert_allclose(images[0, :, 8:24, 12:20].mean(axis=(1, 2)), white, atol=1e-4)  # the centre kept
    np.testing.assert_allclose(images[1], normalize(torch.full((3, 32, 32), 60, dtype=torch.uint8)).numpy(), atol=1e-4)
    assert calibration_from_folder(tmp_path, count=1, size=32).shape[0] == 1


def test_optimize_runs_the_int8_graph_it_is_given_or_makes(checkpoint: Path, graphs, tmp_path: Path) -> None:
    from fastfcn.checkpoint import model_from_checkpoint
    from fastfcn.inference.fast_path import optimize

    model, _ = model_from_checkpoint(checkpoint)
    fp32, int8 = graphs
    x = torch.from_numpy(calibration_images(1, 64, seed=9))
    given = optimize(model, "onnxruntime+int8", onnx_path=int8)(x)["out"]  # an int8 graph: run as it is
    np.testing.assert_array_equal(given.numpy(), OnnxRuntimeModel(onnx_path=int8)(x)["out"].numpy())
    made = optimize(model, "onnxruntime+int8", onnx_path=fp32)(x)["out"]  # an fp32 graph: quantized now
    exact = OnnxRuntimeModel(onnx_path=fp32)(x)["out"]
    assert 0 < float((made - exact).norm() / exact.norm()) < 0.1  # rounded, yet close
    assert fp32.is_file() and int8.is_file()  # the files given are left as they were


def test_export_int8_calibrates_on_the_folder_given(checkpoint: Path, tmp_path: Path) -> None:
    from PIL import Image

    from fastfcn.inference.quantize import quantization_of

    folder = tmp_path / "train_images"
    folder.mkdir()
    scenes = calibration_images(3, 80, seed=4)  # normalised: back to pixels for the files
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    for i, x in enumerate(scenes):
        pixels = ((x.transpose(1, 2, 0) * std + mean) * 255).clip(0, 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    out = tmp_path / "model.onnx"
    proc = _export(str(checkpoint), str(out), "--int8", "--calibration-images", str(folder),
                   "--int8-min-agreement", "0.5")  # a checkpoint of unknown data: only the folder calibrates it
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "calibrated on 3 training images" in proc.stdout
    assert "min/max of 3 calibration images at 64x64" in quantization_of(out)  # resized to its training size
