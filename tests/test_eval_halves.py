"""Evaluation in two halves (the network here, the finishing in a worker thread): the same counts as the plain loop,
messages in image order, errors raised, and what fastfcn eval costs per image measured as ratios."""

from __future__ import annotations

import importlib
import threading
import warnings

import pytest
import torch

from fastfcn.inference.evaluate import NonFiniteWarning, evaluate

halves = importlib.import_module("fastfcn.inference.eval_halves")
evaluate_module = importlib.import_module("fastfcn.inference.evaluate")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(calibrated_encnet_jpu) -> torch.nn.Module:
    return calibrated_encnet_jpu


class Scenes:
    """Seven images of three sizes (one a strip that whole mode pads), 5 classes, NaN pixels where asked."""

    num_classes = 5
    ignore_index = 255

    def __init__(self, nan_at: tuple[int, ...] = ()) -> None:
        g = torch.Generator().manual_seed(5)
        self.items = []
        for i, (h, w) in enumerate([(64, 64), (48, 72), (64, 64), (20, 70), (64, 64), (56, 40), (64, 64)]):
            image = torch.randn(3, h, w, generator=g)
            if i in nan_at:
                image[1, 3, 3] = float("nan")
            self.items.append((image, torch.randint(0, 5, (h, w), generator=g)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


def _finished_in(monkeypatch) -> list[str]:
    """The names of the threads that finished images in two halves (recorded as they run)."""
    threads: list[str] = []
    finish = halves._finish

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return finish(*args, **kwargs)

    monkeypatch.setattr(halves, "_finish", recording)
    return threads


def _plain(monkeypatch) -> None:
    monkeypatch.setattr(halves, "halves_apply", lambda *args, **kwargs: False)


def test_two_halves_count_every_pixel_as_the_plain_loop(model, monkeypatch) -> None:
    threads = _finished_in(monkeypatch)
    split = evaluate(model, Scenes(), base_size=64, crop_size=64, mode="whole", progress=False)
    assert len(threads) == 7 and all(name.startswith("fastfcn-eval-finish") for name in threads)
    _plain(monkeypatch)
    plain = evaluate(model, Scenes(), base_size=64, crop_size=64, mode="whole", progress=False)
    assert split["pixAcc"] == plain["pixAcc"] and split["mIoU"] == plain["mIoU"]  # the same counts, not close ones
    assert split["iou"] == plain["iou"] and split["images"] == plain["images"] == 7


def test_an_image_too_large_to_hold_is_scored_on_the_calling_thread(model, monkeypatch) -> None:
    threads = _finished_in(monkeypatch)
    reference = evaluate(model, Scenes(), base_size=64, crop_size=64, mode="whole", progress=False)
    threads.clear()
    # 5 classes x 64 x 64 x 4 bytes = 80 KiB: the 64 x 64 images no longer fit, the smaller ones still do
    monkeypatch.setattr(evaluate_module, "LATER_BYTES", 5 * 64 * 64 * 4 - 1)
    mixed = evaluate(model, Scenes(), base_size=64, crop_size=64, mode="whole", progress=False)
    assert 0 < len(threads) < 7
    assert mixed["pixAcc"] == reference["pixAcc"] and mixed["iou"] == reference["iou"]


def test_non_finite_images_are_named_in_order(model) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(model, Scenes(nan_at=(2, 4)), base_size=64, crop_size=64, mode="whole", progress=False)
    found = [str(w.message) for w in caught if issubclass(w.category, NonFiniteWarning)]
    assert len(found) == 1 and "2 of 7 evaluated images" in found[0] and "first: image 2" in found[0]
    assert "the input image holds 1 non-finite value" in found[0]  # the input's warning, caught first as ever


class FailsAt(torch.nn.Module):
    """The model, failing at its ``at``-th forward."""

    def __init__(self, net: torch.nn.Module, at: int) -> None:
        super().__init__()
        self.net, self.at, self.calls = net, at, 0

    def forward(self, x: torch.Tensor) -> dict:
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError(f"forward {self.at} failed")
        return self.net(x, with_aux=False)


def test_an_error_in_the_network_stops_the_evaluation(model) -> None:
    failing = FailsAt(model, 4).eval()
    with pytest.raises(RuntimeError, match="forward 4 failed"):
        evaluate(failing, Scenes(), base_size=64, crop_size=64, mode="whole", progress=False)
    assert failing.calls == 4 and not model.training  # stopped there, the model as it was (eval mode)


@pytest.mark.parametrize("change", [{"mode": "slide"}, {"scales": (0.75, 1.0)}, {"flip": True}, {"batch_size": 2},
                                    {"background": 0}, {"device": "cuda"}])
def test_two_halves_only_for_one_whole_image_at_one_scale_on_the_cpu(change: dict) -> None:
    settings = {"scales": (1.0,), "flip": False, "mode": "whole", "batch_size": 1, "background": None, "device": "cpu"}
    assert halves.halves_apply(**settings)
    assert not halves.halves_apply(**{**settings, **change})


def test_evaluate_refuses_a_model_of_other_classes(model) -> None:
    class EightClasses(Scenes):
        num_classes = 8

    with pytest.raises(ValueError, match="the model predicts 5 classes but the dataset has 8: evaluate a checkpoint"):
        evaluate(model, EightClasses(), base_size=64, crop_size=64, mode="whole", progress=False)


def test_eval_cost_divides_by_the_forwards_of_each_mode() -> None:
    from fastfcn import benchmark as bench

    opts = bench.BenchOptions(device="cpu", size=48, runs=1, warmup=0, isolate=False, threads=1, jpu_width=16)
    spec = bench.parse_rows(["encnet/resnet50/jpu"], substitute="resnet18")[0]
    ec = bench.eval_cost(spec, opts, images=2, rounds=1)
    rows = {r["mode"]: r for r in ec["rows"]}
    assert list(rows) == ["whole", "slide"] and ec["marginal"] and ec["variant"] == "onnxruntime"
    # 520 and 480 at 512 px: long side 49, windows of 45 placed every 30 pixels -> 2 x 2 of them
    assert (rows["whole"]["forwards"], rows["whole"]["forward_side"]) == (1, 49)
    assert (rows["slide"]["forwards"], rows["slide"]["forward_side"]) == (4, 45)
    for r in rows.values():
        assert len(r["own_forward_times_s"]) == 3 and r["per_image_s"] > 0
        assert r["ratio_to_own_forwards"] == pytest.approx(r["per_image_s"] / (r["forwards"] * r["own_forward_s"]))
        assert r["images_per_s"] == pytest.approx(1 / r["per_image_s"])
    assert "x forwards" in bench.format_eval_cost(ec) and "(T(2) - T(1)) / 1" in bench.format_eval_cost(ec)
    with pytest.raises(ValueError, match="at least one image"):
        bench.eval_cost(spec, opts, images=0)
    with pytest.raises(ValueError, match="unknown eval mode"):
        bench.eval_cost(spec, opts, images=1, modes=("sideways",))
    with pytest.raises(ValueError, match="8 classes: --num-classes 5 is fewer"):
        bench.eval_cost(spec, bench.BenchOptions(device="cpu", size=48, runs=1, isolate=False, num_classes=5), images=1)


def test_interleaved_seconds_times_around_the_measurement() -> None:
    from fastfcn.utils.timing import interleaved_seconds, marginal_seconds

    order: list[str] = []
    result, times = interleaved_seconds(lambda: order.append("forward"), lambda: order.append("run") or 7.0)
    assert result == 7.0 and len(times) == 3 and order == ["forward", "run", "forward", "forward"]
    runs: list[int] = []
    assert marginal_seconds(runs.append, 5) < 0.1 and runs == [1, 5]
    with pytest.raises(ValueError, match="at least one item"):
        marginal_seconds(runs.append, 0)
