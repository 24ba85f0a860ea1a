"""Exported graphs are checked and kept in bounds (issue 21, items 1, 7 and 12): every head x upsampling
exports and runs in ONNX Runtime as in torch; `--onnx FILE` is refused in one line when it is not the
checkpoint's graph (another model, a retrained checkpoint, no record, not a graph) or when the runtime
is torch; the cache keeps one graph per checkpoint and a bounded number in all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from graph_checks import assert_graph_matches_model
from PIL import Image
from torch import nn

from fastfcn.checkpoint import save_checkpoint
from fastfcn.cli import main
from fastfcn.models import HEADS, UPSAMPLINGS, build_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = {"dataset": "procedural", "base_size": 64, "crop_size": 48, "image_size": 64}


def _model(head: str = "encnet", upsampling: str = "jpu", num_classes: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(head, backbone="resnet18_w32", upsampling=upsampling, num_classes=num_classes,
                        jpu_width=16)
    with torch.no_grad():  # BatchNorm statistics of real activations: clear class margins
        model.train()
        for _ in range(2):
            model(torch.randn(2, 3, 64, 64))
    return model.eval()


def _error_line(err: str, *needles: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- item 7: the PSP head's adaptive pooling, and every head x upsampling in ONNX Runtime ---------------

def test_binned_average_is_torchs_adaptive_pooling_at_every_size() -> None:
    from fastfcn.models.heads.psp import adaptive_avg_pool2d, binned_average

    x = torch.randn(2, 3, 41, 41, dtype=torch.float64)
    for bins in (1, 2, 3, 6):
        pool = nn.AdaptiveAvgPool2d(bins)
        for height in range(1, 41):
            for width in (1, 5, 7, 13, 40):
                part = x[..., :height, :width]
                torch.testing.assert_close(binned_average(part, bins), pool(part), rtol=1e-12, atol=1e-12)
        part = torch.randn(1, 4, 57, 90)  # float32 as the network runs it
        torch.testing.assert_close(binned_average(part, bins), pool(part), rtol=1e-6, atol=1e-6)
    assert torch.equal(adaptive_avg_pool2d(x, 6), nn.AdaptiveAvgPool2d(6)(x))  # eager: torch's own kernel


@pytest.mark.parametrize("upsampling", UPSAMPLINGS)
@pytest.mark.parametrize("head", HEADS)
def test_every_head_and_upsampling_exports_and_runs_as_in_torch(head: str, upsampling: str, tmp_path: Path) -> None:
    from fastfcn.inference.runtimes import OnnxRuntimeModel, export_onnx

    model = _model(head, upsampling, num_classes=5)
    engine = OnnxRuntimeModel(onnx_path=export_onnx(model, tmp_path / "m.onnx"), config=model.config)
    # at output stride 8 these give maps of 8x8, 8x12 and 10x6: sides the pyramid's 3 and 6 bins do not divide
    assert_graph_matches_model(model, engine, [(1, 3, 64, 64), (2, 3, 57, 90), (1, 3, 75, 41)])


# -- item 1: --onnx FILE is the checkpoint's graph, or refused in one line ------------------------------

def _photo(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def _predict(checkpoint: Path, graph: Path, out: Path, *extra: str) -> int:
    return main(["predict", str(_photo(out.parent / "in")), "--checkpoint", str(checkpoint), "--onnx", str(graph),
                 "--out", str(out), "--no-progress", "--device", "cpu", *extra])


def test_a_graph_records_its_checkpoint_and_a_mismatch_is_refused(tmp_path: Path, capsys) -> None:
    import onnx

    ckpt, graph = tmp_path / "run" / "last.pth", tmp_path / "model.onnx"
    save_checkpoint(_model(), ckpt, classes=None, train_config=TRAIN)
    assert main(["export", str(ckpt), str(graph), "--size", "64", "--images", "1"]) == 0
    assert _predict(ckpt, graph, tmp_path / "ok") == 0  # its own checkpoint: used
    capsys.readouterr()

    # --onnx with the torch runtime is an error, not ignored
    assert _predict(ckpt, graph, tmp_path / "torch", "--runtime", "torch") == 2
    _error_line(capsys.readouterr().err, f"--onnx {graph}", "--runtime onnxruntime")

    # another model: 3 classes instead of 8
    other = tmp_path / "other.pth"
    save_checkpoint(_model(num_classes=3), other, classes=None, train_config=TRAIN)
    assert _predict(other, graph, tmp_path / "other") == 2
    _error_line(capsys.readouterr().err, str(graph), "another model", "8 classes", "3 classes", "fastfcn export")

    # the same folder retrained: same configuration, other weights
    save_checkpoint(_model(seed=1), ckpt, classes=None, train_config=TRAIN)
    assert _predict(ckpt, graph, tmp_path / "stale") == 2
    _error_line(capsys.readouterr().err, str(graph), "another version", "retrained")
    assert main(["eval", "--checkpoint", str(ckpt), "--onnx", str(graph), "--num-images", "1", "--device", "cpu",
                 "--no-progress"]) == 2
    _error_line(capsys.readouterr().err, "another version")

    # not a graph at all, and a graph without our record
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert _predict(ckpt, garbage, tmp_path / "garbage") == 2
    _error_line(capsys.readouterr().err, str(garbage), "is not an ONNX graph")
    from fastfcn.inference.runtimes import export_onnx

    bare = export_onnx(_model(seed=1), tmp_path / "bare.onnx")
    assert _predict(ckpt, bare, tmp_path / "bare") == 2
    _error_line(capsys.readouterr().err, str(bare), "does not record")
    for name in ("torch", "other", "stale", "garbage", "bare"):  # refused before any image was segmented
        assert not list((tmp_path / name).glob("*.png"))
    props = {p.key: p.value for p in onnx.load(str(graph), load_external_data=False).metadata_props}
    assert set(props) == {"fastfcn.checkpoint_digest", "fastfcn.model_config"}


# -- item 12: the cache of exported graphs is bounded, and an unwritable cache is named -----------------

def test_the_graph_cache_keeps_one_graph_per_checkpoint_and_a_few_in_all(tmp_path: Path, monkeypatch) -> None:
    from fastfcn.inference import graphs

    monkeypatch.setenv("FASTFCN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(graphs, "MAX_CACHED_GRAPHS", 2)
    ckpt = tmp_path / "run" / "last.pth"
    save_checkpoint(_model(), ckpt, classes=None)
    first = graphs.cached_onnx(ckpt, _model())
    assert graphs.cached_onnx(ckpt, _model()) == first  # found, not exported again
    save_checkpoint(_model(seed=1), ckpt, classes=None)  # retrained into the same file
    second = graphs.cached_onnx(ckpt, _model(seed=1))
    assert second != first and sorted((tmp_path / "cache" / "onnx").iterdir()) == [second]
    kept = [second]
    for i in range(2):
        other = tmp_path / f"other{i}.pth"
        save_checkpoint(_model(seed=2 + i), other, classes=None)
        kept.append(graphs.cached_onnx(other, _model(seed=2 + i)))
    assert sorted((tmp_path / "cache" / "onnx").iterdir()) == sorted(kept[1:])  # the least recently used went


def test_an_unwritable_cache_is_named_with_the_way_out(tmp_path: Path, monkeypatch, capsys) -> None:
    ckpt = tmp_path / "m.pth"
    save_checkpoint(_model(), ckpt, classes=None, train_config=TRAIN)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("FASTFCN_CACHE", str(blocker / "cache"))
    assert main(["predict", str(_photo(tmp_path / "in")), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"),
                 "--runtime", "onnxruntime", "--no-progress", "--device", "cpu"]) == 2
    _error_line(capsys.readouterr().err, str(blocker), "cache", "FASTFCN_CACHE", "--runtime torch")


def test_the_first_export_is_said_unless_no_progress_was_asked_for(tmp_path: Path, monkeypatch, capsys) -> None:
    """The CLI names the graph it keeps; ``predict_files(progress=False)`` (a book chapter) prints no export
    notice, so no machine's cache path lands in a page."""
    from fastfcn.inference.predict import predict_files

    ckpt = tmp_path / "m.pth"
    save_checkpoint(_model(), ckpt, classes=None, train_config=TRAIN)
    photo = _photo(tmp_path / "in")
    monkeypatch.setenv("FASTFCN_CACHE", str(tmp_path / "quiet"))
    assert not predict_files([photo], ckpt, tmp_path / "out1", device="cpu", runtime="onnxruntime",
                             progress=False).failed
    assert "ONNX" not in capsys.readouterr().err and any((tmp_path / "quiet" / "onnx").iterdir())
    monkeypatch.setenv("FASTFCN_CACHE", str(tmp_path / "said"))
    assert main(["predict", str(photo), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out2"),
                 "--runtime", "onnxruntime", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "exporting" in err and str(tmp_path / "said") in err
