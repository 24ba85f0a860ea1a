"""Named laps (``fastfcn.utils.timing.lap``) and ``fastfcn predict``'s parts timed one after another
(``fastfcn.benchmark.predict_parts``): what is timed is predict's own work, and its files are predict's."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fastfcn.benchmark.predict_parts import format_predict_parts, predict_parts
from fastfcn.inference.predict import Predictor, predict_files
from fastfcn.utils.text import PRINT_WIDTH
from fastfcn.utils.timing import lap, recording_laps

pytestmark = pytest.mark.usefixtures("one_thread")

PARTS = ["read and decode", "input: normalise, resize", "network", "exponential", "non-finite check",
         "resize back", "arg-max", "mask PNG", "overlay PNG", "files: create, sync, rename"]


def test_a_lap_is_recorded_only_inside_recording_laps_and_only_in_its_thread() -> None:
    with lap("outside"):  # nothing records it, nothing fails
        pass
    seen: list[dict] = []
    with recording_laps() as laps:
        with lap("b"):
            time.sleep(0.01)
        with lap("a"):
            pass
        with lap("b"):
            pass
        thread = threading.Thread(target=lambda: seen.append(_lap_in_thread()))
        thread.start()
        thread.join()
        with pytest.raises(KeyError), lap("failed"):
            raise KeyError("x")  # a lap that raises is still timed, and the error goes on
    assert list(laps) == ["b", "a", "failed"] and len(laps["b"]) == 2 and len(laps["a"]) == 1
    assert laps["b"][0] >= 0.009 and all(t >= 0 for times in laps.values() for t in times)
    assert seen == [{}]  # the other thread's lap went to its own recording, not this one
    with lap("after"):
        pass
    assert "after" not in laps


def _lap_in_thread() -> dict:
    with lap("thread"):
        pass
    with recording_laps() as own:
        pass
    return own


def test_predict_parts_times_predicts_own_parts_and_writes_its_files(tiny_checkpoint: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    files = []
    for name, size in (("a.png", (40, 56)), ("b.png", (64, 48))):
        files.append(tmp_path / name)
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(files[-1])
    predictor = Predictor(tiny_checkpoint, device="cpu", runtime="torch")
    threads = torch.get_num_threads()
    parts = predict_parts(predictor, files, tmp_path / "parts", runs=2)
    assert torch.get_num_threads() == threads  # the one-thread parts gave the threads back
    assert parts is not None and list(parts["parts_ms"]) == PARTS
    assert all(ms >= 0 for ms in parts["parts_ms"].values()) and parts["network_ms"] > 0
    assert list(parts["beside_ms"]) == [p for p in PARTS if p not in ("input: normalise, resize", "network")]
    assert parts["beside_core_ms"] == pytest.approx(sum(parts["beside_ms"].values()))
    expected = (parts["input_ms"] + parts["network_ms"] + parts["beside_core_ms"] / threads) / parts["network_ms"]
    assert parts["expected_ratio"] == pytest.approx(expected) and parts["expected_ratio"] > 1
    assert (parts["images"], parts["runs"], parts["variant"]) == (2, 2, predictor.variant)
    # the parts are predict's: the files they wrote are the ones predict writes
    predict_files(files, None, tmp_path / "predict", predictor=predictor, progress=False)
    for f in files:
        for suffix in ("_mask.png", "_overlay.png"):
            got = np.asarray(Image.open(tmp_path / "parts" / f"{f.name}{suffix}"))
            want = np.asarray(Image.open(tmp_path / "predict" / f"{f.name}{suffix}"))
            assert np.array_equal(got, want)
    text = format_predict_parts(parts)
    assert all(len(line) <= PRINT_WIDTH for line in text.splitlines()) and "resize back" in text
    with pytest.raises(ValueError, match="at least one file"):
        predict_parts(predictor, [], tmp_path / "none")


def test_predict_parts_is_none_where_predict_does_not_split_the_image(tiny_checkpoint: Path, tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    slide = Predictor(tiny_checkpoint, device="cpu", runtime="torch", mode="slide")
    assert predict_parts(slide, [path], tmp_path / "out") is None
