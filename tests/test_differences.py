"""Chapter 8's measurements: error maps, boundary bands, connected components, IoU per object size."""

from __future__ import annotations

import math

import pytest
import torch

from fastfcn.lessons.differences import (
    boundary_band,
    connected_components,
    error_map,
    find_objects,
    object_size_bins,
    overlap_words,
    size_bin_iou,
    size_gain_words,
    trimap_accuracy,
    val_predictions,
    zero_iou_words,
)


def test_error_map_ignores_the_ignore_label() -> None:
    mask = torch.tensor([[0, 1], [255, 2]])
    pred = torch.tensor([[0, 2], [1, 2]], dtype=torch.uint8)
    assert error_map(pred, mask).tolist() == [[False, True], [False, False]]


def test_boundary_band_widths() -> None:
    mask = torch.zeros(1, 9, 9, dtype=torch.long)
    mask[:, :, 5:] = 1                                 # a vertical boundary between columns 4 and 5
    band0 = boundary_band(mask, 0)[0]
    assert band0[:, 4].all() and band0[:, 5].all() and band0.sum() == 18
    band2 = boundary_band(mask, 2)[0]
    assert band2[:, 2:8].all() and not band2[:, :2].any() and not band2[:, 8:].any()
    pred = mask.clone()
    pred[:, :, 4] = 1                                  # one column wrong, right at the boundary
    acc = trimap_accuracy(pred, mask, [0, 2, 8])
    assert acc[0] == pytest.approx(0.5) and acc[2] == pytest.approx(5 / 6) and acc[8] == pytest.approx(8 / 9)
    assert math.isnan(trimap_accuracy(mask[:, :, :4], mask[:, :, :4], [1])[1])   # no boundary at all


def test_connected_components_are_four_connected() -> None:
    region = torch.tensor([[1, 1, 0, 1],
                           [0, 1, 0, 1],
                           [1, 0, 0, 0],
                           [1, 1, 0, 1]], dtype=torch.bool)
    comps = connected_components(region)
    assert int(comps.max()) == 4                      # the diagonal touch at (1,1)-(2,0) does not connect
    assert len({int(comps[0, 0]), int(comps[1, 1])}) == 1 and comps[0, 0] != comps[2, 0]
    assert (comps > 0).equal(region)
    spiral = torch.ones(20, 20, dtype=torch.bool)
    spiral[1:19:2, 1:19] = False                      # long corridors: needs many propagation steps
    spiral[2:19:4, 18] = True
    assert int(connected_components(spiral).max()) == 1
    batched = connected_components(torch.stack([region, spiral[:4, :4]]))
    assert torch.equal(batched[0], comps) and torch.equal(batched[1], connected_components(spiral[:4, :4]))
    assert comps[0, 0] == 1 and comps[0, 3] == 2            # numbered in raster order of their first pixel


def test_size_bins_and_their_iou() -> None:
    masks = torch.zeros(1, 128, 128, dtype=torch.long)
    masks[0, 10:14, 10:14] = 3          # 16 px: small
    masks[0, 40:52, 40:52] = 3          # 144 px: medium
    masks[0, 70:110, 70:110] = 3        # 1600 px: large
    preds = masks.clone()
    preds[0, 70:90, 70:110] = 0         # half of the large object missed
    objects = find_objects(masks, [3])
    assert [o.size_bin for o in objects] == ["small", "medium", "large"]
    out = size_bin_iou(preds, objects)
    assert out["small"] == {"iou": 1.0, "objects": 1.0} and out["medium"]["iou"] == 1.0
    assert out["large"]["iou"] == pytest.approx(0.5)
    assert object_size_bins(16, 64 * 64) == "medium"  # 16 px of a 64-px image is 64 px at 128


def test_val_predictions_are_cached_beside_the_checkpoint(tmp_path) -> None:
    from fastfcn.checkpoint import save_checkpoint
    from fastfcn.data import EvalTransform, build_dataset
    from fastfcn.models import build_model

    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=8, jpu_width=8).eval()
    ckpt = tmp_path / "last.pth"
    save_checkpoint(model, ckpt)
    val = build_dataset("procedural", "val", image_size=32, transform=EvalTransform())
    first = val_predictions(ckpt, val, 2, base_size=32, crop_size=32)
    assert first["labels"].shape == (2, 32, 32) and first["cms"].shape == (2, 8, 8)
    assert int(first["cms"].sum()) == 2 * 32 * 32
    assert (tmp_path / "val-2-32-32.pt").is_file()
    again = val_predictions(ckpt, val, 2, base_size=32, crop_size=32)
    assert torch.equal(first["labels"], again["labels"]) and torch.equal(first["cms"], again["cms"])


def test_sentences_stay_true_whatever_the_numbers() -> None:
    assert size_gain_words(5.0, 1.0, 30.0).startswith("so the gain is larger for small objects")
    assert size_gain_words(0.2, 11.2, 30.0).endswith("should hurt small objects most")   # no excuse needed
    assert "the best small-object IoU is 0.3%" in size_gain_words(0.2, 11.2, 0.3)
    ious = {"A": {"pole": 0.0, "ball": 0.04}, "B": {"pole": 5.9, "ball": 0.0}, "C": {"pole": 0.01, "ball": 0.0},
            "D": {"pole": 1.0, "ball": 2.0}}
    assert zero_iou_words(ious, ("pole", "ball")) == (
        "A and C score 0.0 on pole and ball; B scores 0.0 on ball (at one decimal: (almost) no pixel of the class "
        "labelled correctly).")
    assert zero_iou_words({"D": ious["D"]}, ("pole", "ball")) == (
        "Every network labels some pixels of pole and ball correctly.")
    curves = {"FPN": [54.6, 60.0], "JPU": [54.4, 59.9], "bilinear": [50.0, 54.8]}
    assert overlap_words(curves) == ("The curves of FPN and JPU lie within 0.5 points of each other at every width, "
                                     "so their lines nearly coincide on the plot.")
    assert overlap_words(curves, tolerance=0.1).startswith("No two curves lie within 0.1 points")

