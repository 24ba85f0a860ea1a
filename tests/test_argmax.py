"""class_argmax: the labels of torch's max(0) to the bit, ties and NaN included, on the plane loop and below it."""

import pytest
import torch

from fastfcn.inference.argmax import PLANE_LOOP_PIXELS, class_argmax


def _probs(classes: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(classes, height, width, generator=g).softmax(0)


@pytest.mark.parametrize("shape", [(59, 96, 96), (8, 2, 64, 64), (1, 80, 80), (300, 70, 70), (21, 10, 10)])
def test_equals_max_indices(shape: tuple[int, ...]) -> None:
    probs = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    dtype = torch.int32 if shape[0] > 256 else torch.uint8
    got = class_argmax(probs, dtype)
    assert got.dtype == dtype and got.shape == probs.shape[1:]
    assert torch.equal(got.long(), probs.max(0).indices)


def test_ties_go_to_the_first_class() -> None:
    probs = _probs(12, 80, 80)
    probs[7] = probs[3]  # class 3 and 7 equal everywhere
    probs[3:8, :5, :5] = 2.0  # five classes tie for the maximum here
    got = class_argmax(probs)
    assert torch.equal(got, probs.max(0).indices)
    assert bool((got[:5, :5] == 3).all()) and not bool((got == 7).any())


@pytest.mark.parametrize("where", [0, 5, 11])
def test_nan_gives_the_first_nan_class_as_max_does(where: int) -> None:
    probs = _probs(12, 80, 80)
    probs[where, 10:20, 10:20] = float("nan")
    probs[9, 15:25, 15:25] = float("nan")  # a second NaN class overlapping the first
    probs[:, 40, 40] = float("nan")  # a pixel where every class is NaN
    got = class_argmax(probs)
    assert torch.equal(got, probs.max(0).indices)
    assert int(got[40, 40]) == 0


def test_the_loop_runs_above_the_threshold_and_agrees_with_the_kernel_below() -> None:
    side = int(PLANE_LOOP_PIXELS ** 0.5)
    for height in (side - 1, side + 1):  # one plane under the threshold, one over it
        probs = _probs(30, height, side, seed=height)
        assert torch.equal(class_argmax(probs), probs.max(0).indices)


def test_rejects_scores_without_a_class_axis() -> None:
    with pytest.raises(ValueError, match="class axis first"):
        class_argmax(torch.empty(0, 4, 4))
