"""``fastfcn predict`` and ``evaluate`` as pipelines: decoding and PNG writing around the network in other
threads, with the files, the messages and their order of one image after another, and nothing lost."""

from __future__ import annotations

import importlib
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fastfcn.inference.batching import READ_AHEAD
from fastfcn.inference.evaluate import evaluate
from fastfcn.inference.predict import Predictor, predict_files

pytestmark = pytest.mark.usefixtures("one_thread")
# the modules themselves (the package exports a function named evaluate)
evaluate_module = importlib.import_module("fastfcn.inference.evaluate")
predict_module = importlib.import_module("fastfcn.inference.predict")


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint: Path) -> Predictor:
    return Predictor(tiny_checkpoint, device="cpu", runtime="torch")


def _scenes(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"{chr(ord('a') + i)}.png"
        Image.fromarray(rng.integers(0, 256, (40 + i, 56, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_pipeline_writes_the_files_of_one_image_at_a_time(tmp_path: Path, predictor: Predictor,
                                                             monkeypatch) -> None:
    files = _scenes(tmp_path / "in", 6)
    one_by_one = tmp_path / "single"
    for f in files:
        assert not predict_files([f], None, one_by_one, predictor=predictor, progress=False).failed
    together = predict_files(files, None, tmp_path / "all", predictor=predictor, progress=False)
    assert together.written == [p for f in files for p in predict_module.output_paths(tmp_path / "all", Path(f.name))]
    assert _outputs(tmp_path / "all") == _outputs(one_by_one)
    # no read-ahead room at all: every image waits for the previous one's PNGs; the same files
    monkeypatch.setattr(importlib.import_module("fastfcn.inference.pipeline"), "HELD_BYTES", 1)
    predict_files(files, None, tmp_path / "tight", predictor=predictor, progress=False)
    assert _outputs(tmp_path / "tight") == _outputs(one_by_one)


def test_messages_keep_the_input_order_and_an_error_loses_nothing_else(tmp_path: Path, predictor: Predictor,
                                                                      capsys, monkeypatch) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    a, b, c, d = _scenes(tmp_path / "in", 4)
    b.write_bytes(b"not a PNG")  # fails in a reader thread, long before a's write has failed
    real_mkstemp, real_write = tempfile.mkstemp, predict_module.write_prediction
    real_labels, real_later = Predictor.labels, Predictor.labels_later

    def full_for_a(prefix="", suffix="", dir=None):
        if prefix.startswith(".a.png_"):
            return os.open("/dev/full", os.O_WRONLY), os.path.join(dir, f"{prefix}devfull{suffix}")
        return real_mkstemp(prefix=prefix, suffix=suffix, dir=dir)

    def slow_write(rgb, labels, *args):
        if rgb.shape[0] == 40:  # image a: its failure comes late
            time.sleep(0.5)
        return real_write(rgb, labels, *args)

    def fails_for_c(self, rgb):
        if rgb.shape[0] == 42:
            raise RuntimeError("DefaultCPUAllocator: not enough memory")
        return real_labels(self, rgb)

    def fails_later_for_c(self, rgb):  # the network's half, where predict splits the labels in two
        if rgb.shape[0] == 42:
            raise RuntimeError("DefaultCPUAllocator: not enough memory")
        return real_later(self, rgb)

    monkeypatch.setattr(tempfile, "mkstemp", full_for_a)
    monkeypatch.setattr(predict_module, "write_prediction", slow_write)
    monkeypatch.setattr(Predictor, "labels", fails_for_c)
    monkeypatch.setattr(Predictor, "labels_later", fails_later_for_c)
    out = tmp_path / "out"
    result = predict_files([tmp_path / "in"], None, out, predictor=predictor, progress=False)
    lines = capsys.readouterr().err.splitlines()
    assert [Path(p).name for p, _ in result.failed] == ["a.png", "b.png", "c.png"]
    assert len(lines) == 3
    assert "a.png" in lines[0] and "No space left on device" in lines[0]
    assert "b.png" in lines[1] and "cannot read" in lines[1]
    assert "c.png" in lines[2] and "not enough memory" in lines[2]
    assert sorted(p.name for p in (out / "in").iterdir()) == ["d.png_mask.png", "d.png_overlay.png"]
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize("shape", [(40, 56), (97, 23), (12, 300), (64, 64)])
def test_labels_in_two_halves_equal_predict_labels(predictor: Predictor, shape: tuple[int, int]) -> None:
    """The network now, the rest later: the same labels to the bit (a strip padded to MIN_SIDE included)."""
    rgb = np.random.default_rng(shape[0]).integers(0, 256, (*shape, 3), dtype=np.uint8)
    finish = predictor.labels_later(rgb)
    assert finish is not None
    labels, message = finish()
    assert message is None and labels.dtype == np.uint8 and labels.shape == shape
    assert np.array_equal(labels, predictor.labels(rgb))


def test_labels_in_two_halves_only_where_they_can_be_held(predictor: Predictor, monkeypatch) -> None:
    rgb = np.zeros((40, 56, 3), np.uint8)
    monkeypatch.setattr(predictor, "max_bytes", 3 * 40 * 56 * 4 - 1)  # full-size probabilities over the budget
    assert predictor.labels_later(rgb) is None
    monkeypatch.undo()
    held = 3 * 46 * 64 * 4  # the logits held between the halves: 3 classes at 46 x 64 (long side 64)
    monkeypatch.setattr(evaluate_module, "LATER_BYTES", held)
    assert predictor.labels_later(rgb) is not None
    monkeypatch.setattr(evaluate_module, "LATER_BYTES", held - 1)
    assert predictor.labels_later(rgb) is None
    large = np.zeros((100, 140, 3), np.uint8)  # its probabilities at full size outweigh the network's logits
    monkeypatch.setattr(evaluate_module, "LATER_BYTES", 3 * 100 * 140 * 4)
    assert predictor.labels_later(large) is not None
    monkeypatch.setattr(evaluate_module, "LATER_BYTES", 3 * 100 * 140 * 4 - 1)
    assert predictor.labels_later(large) is None
    monkeypatch.undo()
    monkeypatch.setattr(predictor, "mode", "slide")
    assert predictor.labels_later(rgb) is None


def test_non_finite_probabilities_are_said_by_the_second_half(predictor: Predictor) -> None:
    rgb = np.zeros((40, 56, 3), np.uint8)
    broken = {k: v.clone() for k, v in predictor.engine.state_dict().items()}
    key = next(k for k, v in broken.items() if v.is_floating_point() and k.endswith("weight"))
    engine = predictor.engine
    try:
        with torch.no_grad():
            dict(engine.named_parameters())[key].fill_(float("nan"))
        labels, message = predictor.labels_later(rgb)()
        with pytest.warns(evaluate_module.NonFiniteWarning) as caught:
            want = predictor.labels(rgb)
    finally:
        engine.load_state_dict(broken)
    assert message == str(caught[0].message) and np.array_equal(labels, want)


def test_the_writer_finishes_the_labels_and_its_failure_loses_nothing_else(tmp_path: Path, predictor: Predictor,
                                                                           capsys, monkeypatch) -> None:
    a, b, c = _scenes(tmp_path / "in", 3)
    real_later, threads = Predictor.labels_later, []

    def recorded(self, rgb):
        finish = real_later(self, rgb)

        def later():
            threads.append(threading.current_thread().name)
            if rgb.shape[0] == 41:  # image b: its second half fails
                raise RuntimeError("DefaultCPUAllocator: not enough memory")
            return finish()
        return later

    monkeypatch.setattr(Predictor, "labels_later", recorded)
    result = predict_files([tmp_path / "in"], None, tmp_path / "out", predictor=predictor, progress=False)
    lines = capsys.readouterr().err.splitlines()
    assert [Path(p).name for p, _ in result.failed] == ["b.png"] and len(lines) == 1
    assert "b.png" in lines[0] and "not enough memory" in lines[0]
    assert sorted(p.name for p in (tmp_path / "out" / "in").iterdir()) == [
        "a.png_mask.png", "a.png_overlay.png", "c.png_mask.png", "c.png_overlay.png"]
    assert len(threads) == 3 and all(t.startswith("fastfcn-write") for t in threads)


class _Recorded:
    """A dataset that records which thread reads which item, and fails at ``broken``."""

    name, classes, num_classes = "procedural", ["a", "b", "c"], 3

    def __init__(self, count: int, broken: int | None = None) -> None:
        self.count, self.broken = count, broken
        self.reads: list[tuple[int, str]] = []

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int):
        self.reads.append((i, threading.current_thread().name))
        if i == self.broken:
            raise OSError(f"image {i} is damaged")
        g = torch.Generator().manual_seed(i)
        return torch.randn(3, 20, 24, generator=g), torch.randint(0, 3, (20, 24), generator=g)


def test_evaluate_reads_ahead_in_one_other_thread(predictor: Predictor) -> None:
    model = predictor.model
    data = _Recorded(5)
    got = evaluate(model, data, base_size=32, crop_size=32, progress=False)
    assert [i for i, _ in data.reads] == list(range(5))
    assert {thread for _, thread in data.reads} != {threading.current_thread().name}
    want = evaluate_module.SegmentationMetric(3, data.classes)
    for i in range(5):
        image, mask = data[i]
        want.update_labels(evaluate_module.predict_labels(model, image, base_size=32, crop_size=32), mask)
    assert got["iou"] == want.compute()["iou"]
    broken = _Recorded(6, broken=2)
    with pytest.raises(OSError, match="image 2 is damaged"):
        evaluate(model, broken, base_size=32, crop_size=32, progress=False)
    read = [i for i, _ in broken.reads]  # in order, up to the damaged one and never far beyond it
    assert read == list(range(len(read))) and 3 <= len(read) <= 3 + READ_AHEAD


def test_cli_bench_prints_the_predict_and_eval_costs_as_ratios(tmp_path: Path, capsys) -> None:
    import json

    from fastfcn.cli import main

    rc = main(["bench", "--device", "cpu", "--substitute-backbone", "resnet18", "--size", "48", "--runs", "1",
               "--warmup", "0", "--in-process", "--threads", "1", "--jpu-width", "16", "--no-table",
               "--predict-cost", "1", "--eval-cost", "1", "--out-dir", str(tmp_path), "--name", "predict_cost_cli"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "fastfcn predict on 1 procedural scene of" in out and "x own" in out
    assert "fastfcn eval on 1 procedural scene of 48x48" in out and "x forwards" in out
    doc = json.loads((tmp_path / "predict_cost_cli.json").read_text())
    assert doc["fast_path"] is None and [r["mode"] for r in doc["predict_cost"]["rows"]] == ["slide", "whole", "whole", "whole"]
    assert [r["mode"] for r in doc["eval_cost"]["rows"]] == ["whole", "slide"]


def test_predict_cost_takes_one_more_image_without_the_fixed_costs(monkeypatch, tmp_path: Path) -> None:
    """(T(N) - T(1)) / (N - 1): a start-up cost paid once per run falls out, the per-image cost stays."""
    cost_module = importlib.import_module("fastfcn.benchmark.predict_cost")

    def fake_predict(files, checkpoint, out, predictor, progress):
        time.sleep(0.2 + 0.05 * len(files))

    monkeypatch.setattr(cost_module, "predict_files", fake_predict)
    files = [tmp_path / f"{i}.png" for i in range(5)]
    assert cost_module._marginal_s(None, files, tmp_path, tmp_path) == pytest.approx(0.05, abs=0.02)
    assert cost_module._marginal_s(None, files[:1], tmp_path, tmp_path) == pytest.approx(0.25, abs=0.03)
