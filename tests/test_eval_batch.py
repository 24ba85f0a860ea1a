"""Images of one size through the network together: the same probabilities and metrics as one by one."""

from __future__ import annotations

import warnings

import pytest
import torch

from fastfcn.inference.evaluate import NonFiniteWarning, evaluate, predict_probs, predict_probs_batch
from fastfcn.lessons.differences import val_predictions

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model(calibrated_encnet_jpu) -> torch.nn.Module:
    return calibrated_encnet_jpu


class Batches(torch.nn.Module):
    """The model, recording the batch size of every forward."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.batches = net, []

    def forward(self, x: torch.Tensor) -> dict:
        self.batches.append(x.shape[0])
        return self.net(x, with_aux=False)


class Scenes:
    """Images of two sizes, in runs: 64x64 three times, 48x64 twice, 64x64 twice."""

    num_classes = 5
    ignore_index = 255

    def __init__(self, nan_at: int | None = None) -> None:
        g = torch.Generator().manual_seed(3)
        self.items = []
        for i, (h, w) in enumerate([(64, 64)] * 3 + [(48, 64)] * 2 + [(64, 64)] * 2):
            image = torch.randn(3, h, w, generator=g)
            if i == nan_at:
                image[0, 5, 5] = float("nan")
            self.items.append((image, torch.randint(0, 5, (h, w), generator=g)))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.items[i]


@pytest.mark.parametrize("mode, scales, flip", [("whole", (1.0,), False), ("slide", (0.75, 1.0), True)])
def test_a_batch_gives_each_images_probabilities(model, mode, scales, flip) -> None:
    images = [item[0] for item in Scenes().items[:3]]
    counted = Batches(model)
    together = predict_probs_batch(counted, images, scales=scales, flip=flip, base_size=72, crop_size=48, mode=mode)
    alone = torch.stack([predict_probs(model, im, scales=scales, flip=flip, base_size=72, crop_size=48, mode=mode)
                         for im in images])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)
    assert set(counted.batches) == {3 * (2 if flip else 1)}  # every forward took the three images (and mirrors)


def test_a_batch_refuses_images_of_two_sizes(model) -> None:
    scenes = Scenes().items
    with pytest.raises(ValueError, match="must share a size"):
        predict_probs_batch(model, [scenes[0][0], scenes[3][0]])
    with pytest.raises(ValueError, match="at least one image"):
        predict_probs_batch(model, [])


def test_evaluate_batches_runs_of_one_size_and_scores_as_one_by_one(model) -> None:
    counted = Batches(model)
    batched = evaluate(counted, Scenes(), base_size=64, crop_size=64, mode="whole", progress=False, batch_size=2)
    # 64 64 | 64 (a size change closes the batch) | 48 48 | 64 64
    assert counted.batches == [2, 1, 2, 2]
    single = evaluate(model, Scenes(), base_size=64, crop_size=64, mode="whole", progress=False)
    assert batched["images"] == single["images"] == 7
    assert batched["mIoU"] == pytest.approx(single["mIoU"], abs=1e-4)
    assert batched["pixAcc"] == pytest.approx(single["pixAcc"], abs=1e-4)
    with pytest.raises(ValueError, match="batch_size .* at least 1, got 0"):
        evaluate(model, Scenes(), progress=False, batch_size=0)


def test_evaluate_refuses_a_model_on_another_device(model) -> None:
    # the images would go to the CPU, the weights are only shapes: one line that says how to fix it
    with torch.device("meta"):
        elsewhere = torch.nn.Conv2d(3, 5, 1)
    with pytest.raises(ValueError, match=r"the model is on meta but device='cpu': move it first \(model.to\('cpu'\)\)"):
        evaluate(elsewhere, Scenes(), base_size=64, crop_size=64, mode="whole", progress=False)


def test_a_non_finite_image_in_a_batch_is_named(model) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate(model, Scenes(nan_at=2), base_size=64, crop_size=64, mode="whole", progress=False, batch_size=3)
    found = [str(w.message) for w in caught if issubclass(w.category, NonFiniteWarning)]
    assert len(found) == 1 and "1 of 7 evaluated images" in found[0] and "first: image 2" in found[0]


def test_val_predictions_agree_with_evaluate_batched_alike(model, tmp_path) -> None:
    from fastfcn.checkpoint import save_checkpoint

    checkpoint = save_checkpoint(model, tmp_path / "model.pth", classes=None)
    scenes = Scenes()
    got = val_predictions(checkpoint, scenes, 7, base_size=64, crop_size=64, cache=False, batch_size=3)
    assert isinstance(got["labels"], list) and len(got["labels"]) == 7  # two sizes: a list
    cm = got["cms"].sum(0).double()
    ref = evaluate(model, scenes, base_size=64, crop_size=64, progress=False, batch_size=3)
    iou = cm.diag() / (cm.sum(0) + cm.sum(1) - cm.diag())
    assert float(iou[cm.sum(1) > 0].nanmean()) == pytest.approx(ref["mIoU"], abs=1e-12)
    assert float(cm.diag().sum() / cm.sum()) == pytest.approx(ref["pixAcc"], abs=1e-12)
