"""Metrics on hand-made confusion matrices, Pascal Context 59/60, sliding windows and multi-scale evaluation."""

from __future__ import annotations

import pytest
import torch

from fastfcn.inference.evaluate import MS_SCALES, evaluate, predict_probs, sliding_windows
from fastfcn.inference.metrics import (
    SegmentationMetric,
    background_index,
    confusion_matrix,
    format_metrics,
    scores,
)
from fastfcn.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_confusion_matrix_counts_and_ignores_255() -> None:
    target = torch.tensor([[0, 0, 1, 255], [2, 1, 1, 0]])
    pred = torch.tensor([[0, 1, 1, 2], [2, 0, 1, 0]])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[2, 1, 0], [1, 2, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match="target labels"):
        confusion_matrix(pred, torch.full_like(target, 7), 3)


def test_scores_exact_values() -> None:
    cm = torch.tensor([[3, 1, 0], [1, 2, 0], [0, 0, 0]])
    s = scores(cm, ["a", "b", "c"])
    assert s["pixAcc"] == pytest.approx(5 / 7)
    assert s["iou"] == {"a": pytest.approx(3 / 5), "b": pytest.approx(2 / 4), "c": None}
    assert s["mIoU"] == pytest.approx((3 / 5 + 2 / 4) / 2)  # the absent class is not averaged
    # a class that is predicted but never in the ground truth has IoU 0 and counts
    cm = torch.tensor([[4, 0, 1], [0, 5, 0], [0, 0, 0]])
    s = scores(cm)
    assert s["iou"] == {"0": pytest.approx(4 / 5), "1": 1.0, "2": 0.0}
    assert s["mIoU"] == pytest.approx((0.8 + 1.0 + 0.0) / 3)
    assert s["pixAcc"] == pytest.approx(9 / 10)
    s = scores(torch.tensor([[4, 1, 0], [2, 3, 0], [1, 0, 5]]), exclude=[0])
    assert s["num_classes"] == 2
    assert s["pixAcc"] == pytest.approx(8 / 8)
    assert s["iou"] == {"1": 1.0, "2": 1.0}


def test_pascal_context_59_and_60() -> None:
    classes = ["background", "cat", "sky"]
    assert background_index("pcontext60", classes) == 0
    assert background_index("pcontext", classes[1:]) is None
    # four pixels; ground truth: background, background, cat, sky
    target = torch.tensor([[0, 0, 1, 2]])
    logits = torch.tensor([
        [[5.0, 1.0, 0.0, 1.0]],   # background scores
        [[4.0, 0.0, 3.0, 0.0]],   # cat: 2nd best at pixel 0, best at pixel 2
        [[0.0, 2.0, 1.0, 0.5]],   # sky: best at pixel 1, but the background wins at pixel 3
    ])
    metric = SegmentationMetric(3, classes, background=0)
    metric.update(logits, target)
    out = metric.compute()
    # 60-class protocol: argmax over all -> [bg, sky, cat, bg]
    assert metric.cm.tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]
    assert out["pixAcc"] == pytest.approx(2 / 4)
    assert out["iou"] == {"background": pytest.approx(1 / 3), "cat": 1.0, "sky": 0.0}
    # 59-class protocol: background pixels ignored, argmax over cat/sky -> pixel 2 cat, pixel 3 sky
    wb = out["without_background"]
    assert wb["num_classes"] == 2 and wb["pixAcc"] == 1.0 and wb["mIoU"] == 1.0
    assert wb["iou"] == {"cat": 1.0, "sky": 1.0}
    text = format_metrics(out)
    assert "3 classes" in text and "2 classes without background" in text


def test_metric_accumulates_batches() -> None:
    m = SegmentationMetric(2)
    probs = torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]])  # [C=2, 1, 2] -> predicts [0, 1]
    m.update(probs, torch.tensor([[0, 0]]))
    m.update(probs[None], torch.tensor([[[0, 1]]]))
    assert m.cm.tolist() == [[2, 1], [0, 1]]


@pytest.mark.parametrize("height,width,crop", [(1, 1, 480), (37, 53, 480), (481, 479, 480), (961, 517, 480),
                                               (1001, 1000, 480), (13, 29, 7), (8, 7, 7), (6, 20, 5)])
def test_sliding_windows_cover_every_pixel(height: int, width: int, crop: int) -> None:
    windows, (ph, pw) = sliding_windows(height, width, crop)
    assert ph == max(height, crop) and pw == max(width, crop)
    counts = torch.zeros(ph, pw, dtype=torch.int64)
    for top, bottom, left, right in windows:
        assert 0 <= top < bottom <= ph and 0 <= left < right <= pw
        assert bottom - top <= crop and right - left <= crop
        counts[top:bottom, left:right] += 1
    assert (counts[:height, :width] > 0).all()
    assert len(windows) == 1 or len(windows) > 1 and max(height, width) > crop


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=3, jpu_width=16).eval()


def test_multi_scale_flip_probabilities(tiny_model: torch.nn.Module) -> None:
    image = torch.randint(0, 256, (3, 45, 61), dtype=torch.uint8)
    # base 64, crop 48: scales >= 0.75 need sliding windows, 0.5 a single padded crop
    probs = predict_probs(tiny_model, image, scales=MS_SCALES, flip=True, base_size=64, crop_size=48)
    assert probs.shape == (3, 45, 61)
    assert torch.allclose(probs.sum(0), torch.ones(45, 61), atol=1e-5)
    single = predict_probs(tiny_model, image, base_size=64, crop_size=48)
    assert single.shape == probs.shape and not torch.allclose(single, probs)


class _TinySet:
    """Three odd-sized images with a Pascal Context 60-like class list."""

    name = "pcontext60"
    classes = ["background", "cat", "sky"]
    ignore_index = 255
    num_classes = 3

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(1)
        self.items = []
        for h, w in [(33, 47), (50, 31), (40, 40)]:
            image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
            mask = torch.randint(0, 3, (h, w), generator=g)
            mask[0] = 255
            self.items.append((image, mask))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


def test_evaluate_multi_scale_metrics_in_range(tiny_model: torch.nn.Module) -> None:
    out = evaluate(tiny_model, _TinySet(), scales=MS_SCALES, flip=True, base_size=48, crop_size=40, progress=False)
    assert out["images"] == 3 and out["flip"] is True
    for s in (out, out["without_background"]):
        assert 0.0 <= s["pixAcc"] <= 1.0 and 0.0 <= s["mIoU"] <= 1.0
    assert out["without_background"]["num_classes"] == 2
    assert not tiny_model.training
