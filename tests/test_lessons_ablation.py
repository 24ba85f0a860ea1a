"""Chapter 7's helpers (fastfcn.lessons.ablation): tables, the bootstrap, per-class results, plots."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest
import torch

from fastfcn.lessons.ablation import (
    Fate,
    best_in_words,
    bootstrap_counts,
    bootstrap_miou,
    class_legend,
    class_share_table,
    class_statistics,
    context_table,
    difference_sentence,
    fate_phrase,
    image_grid,
    interval,
    majority_floor,
    markdown_table,
    pixel_fate,
    plot_class_iou,
    plot_training_curves,
    summarize_seeds,
    table1_caption,
    table1_markdown,
    top_distinct,
    twin_share_of_errors,
    twin_verdict,
)
from fastfcn.paper import Row
from fastfcn.training.table1 import UPSAMPLING_COLOURS

# ------------------------------------------------------------------------------------------------
# tables


def test_markdown_table_exact() -> None:
    assert markdown_table(("a", "b"), [(1, "x"), (2.5, None)]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2.5 | None |"
    assert markdown_table(("only",), []) == "| only |\n|---|"


def test_class_statistics_and_share_table() -> None:
    masks = torch.tensor([[[0, 0], [1, 1]],
                          [[0, 0], [0, 2]]])      # 8 pixels: five of class 0, two of 1, one of 2, none of 3
    share, present = class_statistics(masks, 4)
    assert share.dtype == torch.float64
    assert share.tolist() == [5 / 8, 2 / 8, 1 / 8, 0.0]
    assert present.tolist() == [2, 1, 1, 0]
    assert class_share_table(["sky", "grass", "pole", "wall"], share, present, 2) == (
        "| class | share of the pixels | images containing it |\n|---|---|---|\n"
        "| sky | 62.5% | 2 of 2 |\n| grass | 25.0% | 1 of 2 |\n| pole | 12.5% | 1 of 2 |\n| wall | 0.0% | 0 of 2 |")
    # answering sky everywhere: IoU 5/8 for sky, 0 for the three others -> mIoU 5/32 = 15.625 %
    assert majority_floor(share, times=1) == pytest.approx(15.625)
    assert majority_floor(share) == pytest.approx(9 * 15.625)


def _summary(miou: float, lo: float, hi: float) -> dict:
    return {"pix": 80.04, "miou": miou, "miou_range": 0.25, "boot": (lo, hi), "s_per_it": 0.12345, "iou": {}}


def test_table1_markdown_exact() -> None:
    summaries = {("encnet", "none"): _summary(50.06, 48.0, 52.14), ("encnet", "jpu"): _summary(51.0, 49.5, 53.0)}
    paper = {("encnet", "none"): Row("encnet", "resnet50", "none", 8, 78.39, 49.91),
             ("encnet", "jpu"): Row("encnet", "resnet50", "jpu", 32, 78.98, 51.05)}
    kw = {"head_labels": {"encnet": "EncNet"}, "labels": {"none": "dilated (OS 8)", "jpu": "JPU"}}
    assert table1_markdown(summaries, paper, seed_range=False, **kw) == (
        "| head | OS | upsampling | pixAcc | mIoU | 90% interval | s / it | paper pixAcc | paper mIoU |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "| EncNet | 8 | dilated (OS 8) | 80.0 | **50.1** | 48.0 - 52.1 | 0.123 | 78.4 | 49.9 |\n"
        "| EncNet | 32 | JPU | 80.0 | **51.0** | 49.5 - 53.0 | 0.123 | 79.0 | 51.0 |")
    with_range = table1_markdown(summaries, paper, seed_range=True, **kw).splitlines()
    assert "| seed range |" in with_range[0] and with_range[1] == "|---" * 10 + "|"
    assert with_range[2] == "| EncNet | 8 | dilated (OS 8) | 80.0 | **50.1** | 48.0 - 52.1 | 0.2 | 0.123 | 78.4 | 49.9 |"
    # ten columns that fit the page: the widest text of each column (bold marks not shown), under 85 characters
    cells = [[c.strip().strip("*") for c in line.strip("|").split("|")] for line in with_range if "---" not in line]
    assert sum(max(len(row[k]) for row in cells) for k in range(10)) <= 85


def test_table1_caption_says_what_ran_and_names_only_the_columns_shown() -> None:
    two = table1_caption(100, "resnet18_w32", 50, 2)
    assert two.startswith("Procedural val, 100 images, resnet18_w32 fine-tuned from the book's trunk, 50 iterations; "
                          "mean of 2 seeds.")
    assert "*seed range*" in two and "*90% interval*" in two and "smoke" not in two
    one = table1_caption(8, "resnet18", 2, 1, smoke=True)
    assert "one seed" in one and "*seed range*" not in one   # the column is only there with seeds to compare
    assert one.startswith("Procedural val (smoke profile: a few iterations only, these numbers mean nothing), 8 images")


# ------------------------------------------------------------------------------------------------
# the bootstrap


def test_bootstrap_counts_shape_sums_and_seed() -> None:
    counts = bootstrap_counts(5, 300, seed=3)
    assert counts.shape == (300, 5) and counts.dtype == torch.float64
    assert (counts.sum(1) == 5).all() and (counts >= 0).all()
    assert torch.equal(counts, bootstrap_counts(5, 300, seed=3))          # reproducible
    assert not torch.equal(counts, bootstrap_counts(5, 300, seed=4))      # and the seed matters
    # what the chapter's first version computed inline, with the same generator
    rng = np.random.default_rng(3)
    assert torch.equal(counts, torch.from_numpy(rng.multinomial(5, np.full(5, 0.2), size=300)).double())


def _cm(tp0: int, fp: int, tp1: int) -> torch.Tensor:
    """A 2-class confusion matrix (rows: truth): fp pixels of class 1 predicted as 0."""
    return torch.tensor([[tp0, 0], [fp, tp1]])


def test_bootstrap_miou_exact() -> None:
    cms = torch.stack([_cm(2, 0, 2), _cm(1, 1, 0)])
    # resample 1: image 0 twice -> perfect; resample 2: image 1 twice -> class 0 IoU 1/2, class 1 IoU 0;
    # resample 3: both once -> cm [[3, 0], [1, 2]]: IoU 3/4 and 2/3
    counts = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    got = bootstrap_miou(cms, counts)
    assert got.tolist() == pytest.approx([1.0, 0.25, (3 / 4 + 2 / 3) / 2])
    # a class absent from a resample (no truth, no prediction) is left out of its mean
    only0 = torch.stack([torch.tensor([[3, 0], [0, 0]]), _cm(0, 0, 3)])
    assert bootstrap_miou(only0, torch.tensor([[2.0, 0.0]])).tolist() == [1.0]


def test_interval_exact_and_level() -> None:
    values = torch.arange(101, dtype=torch.float64)          # 0, 1, ..., 100
    assert interval(values) == pytest.approx((5.0, 95.0))   # (1 - 0.9) / 2 is 0.04999... in floating point
    assert interval(values, level=0.5) == (25.0, 75.0)
    assert interval(np.arange(101.0)) == interval(values)      # numpy works too
    assert all(isinstance(v, float) for v in interval(values))


def test_bootstrap_interval_contains_the_mean_and_shrinks_with_more_images() -> None:
    gen = torch.Generator().manual_seed(0)

    def images(n: int) -> torch.Tensor:  # per-image 2-class matrices with varying accuracy
        right = torch.randint(5, 20, (n,), generator=gen)
        wrong = torch.randint(0, 6, (n,), generator=gen)
        return torch.stack([_cm(int(r), int(w), int(r)) for r, w in zip(right, wrong, strict=True)])

    widths = []
    for n in (10, 40, 160):
        cms = images(n)
        boot = bootstrap_miou(cms, bootstrap_counts(n, 2000, seed=1))
        lo, hi = interval(boot)
        full = bootstrap_miou(cms, torch.ones(1, n))[0].item()   # the mIoU of the whole sample
        assert lo < full < hi and lo < boot.mean().item() < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    assert widths[2] < widths[0] / 2.5                             # about 1 / sqrt(n): 4x the images, half the width


def test_difference_sentence() -> None:
    assert difference_sentence(1.23, 0.4, 2.0, "FPN") == (
        "+1.2 points against FPN (90% interval +0.4 to +2.0: larger than the evaluation noise)")
    assert difference_sentence(-0.5, -1.5, 0.5, "bilinear") == (
        "-0.5 points against bilinear (90% interval -1.5 to +0.5: within the evaluation noise)")
    assert difference_sentence(-3.0, -4.0, -2.0, "x").endswith("larger than the evaluation noise)")
    assert difference_sentence(-0.04, -0.3, 0.01, "x").startswith("0.0 points")   # never "-0.0"


# ------------------------------------------------------------------------------------------------
# per-class results


def test_summarize_seeds() -> None:
    runs = [{"metrics": {"pixAcc": 0.5, "mIoU": 0.2, "iou": {"a": 0.1, "b": None}}, "boot": torch.tensor([0.1, 0.3]),
             "s_per_it": 1.0},
            {"metrics": {"pixAcc": 0.7, "mIoU": 0.3, "iou": {"a": 0.3, "b": 0.5}}, "boot": torch.tensor([9.0, 9.0]),
             "s_per_it": 2.0}]
    s = summarize_seeds(runs, ["a", "b"])
    assert s["pix"] == pytest.approx(60.0) and s["miou"] == pytest.approx(25.0)
    assert s["miou_range"] == pytest.approx(10.0)
    assert s["iou"] == pytest.approx({"a": 20.0, "b": 25.0})        # None (class never seen) counts as 0
    # the interval of the seed mean (what "miou" is) over the resamples, in %: resamples [4.55, 4.65]
    assert s["boot"] == pytest.approx((455.5, 464.5))
    assert s["s_per_it"] == pytest.approx(1.5)


def test_top_distinct() -> None:
    assert top_distinct([torch.tensor([1, 9, 3]), torch.tensor([0, 8, 7]), torch.tensor([5, 6, 4])]) == [1, 2, 0]
    assert top_distinct([torch.tensor([2, 1])]) == [0]


def test_best_in_words() -> None:
    assert best_in_words({"dilated": 10.0, "JPU": 12.5, "FPN": 3.0}, "pole") == "JPU"
    assert best_in_words({"dilated": 12.51, "JPU": 12.49}, "pole") == "dilated and JPU (tied)"  # both 12.5
    assert best_in_words({"dilated": 0.0, "JPU": 0.04}, "balloon") == (
        "none of them: no network labels a single balloon pixel correctly yet")


def test_pixel_fate_and_phrase() -> None:
    classes = ["sky", "ball", "balloon"]
    cm = torch.tensor([[10.0, 0.0, 0.0],
                       [2.0, 5.0, 3.0],      # ball: 50% right, 30% to balloon, 20% to sky
                       [0.0, 0.0, 0.0]])     # no balloon pixels at all
    fate = pixel_fate(cm, 1, 2, classes)
    assert fate == pytest.approx(Fate(50.0, 30.0, "sky", 20.0))
    assert fate_phrase(fate, "ball", "balloon") == "ball 50%, balloon 30%, sky 20%"
    assert pixel_fate(cm, 2, 1, classes) == Fate(0.0, 0.0, "sky", 0.0)   # empty row: no division by zero


def test_context_table_exact() -> None:
    ious = {"JPU": {"pole": 12.34, "balloon": 5.0, "ball": 40.06}}
    table = context_table(ious, {"JPU": Fate(60.0, 10.0, "sky", 25.0)}, {"JPU": Fate(70.0, 4.6, "grass", 20.0)})
    assert table == (
        "| EncNet + | pole IoU % | balloon IoU % | ball IoU % | balloon pixels predicted as | ball pixels predicted as |\n"
        "|---|---|---|---|---|---|\n"
        "| JPU | 12.3 | 5.0 | 40.1 | balloon 60%, ball 10%, sky 25% | ball 70%, balloon 5%, grass 20% |")


def test_twin_share_of_errors_and_verdict() -> None:
    # classes: 0 other, 1 balloon, 2 ball
    a = torch.tensor([[0.0, 0, 0], [3, 5, 1], [0, 1, 4]])     # balloon: 4 wrong (1 swap); ball: 1 wrong (a swap)
    b = torch.tensor([[0.0, 0, 0], [0, 2, 2], [2, 0, 2]])     # balloon: 2 wrong (2 swaps); ball: 2 wrong (none)
    assert twin_share_of_errors([a, b], 1, 2) == pytest.approx((2 + 2) / (5 + 4))
    assert twin_share_of_errors([torch.eye(3)], 1, 2) == 0.0                  # no error: no division by zero
    assert twin_verdict(0.1).startswith("so in this run the look-alike is rarely the problem")
    assert twin_verdict(0.25).startswith("so a good part of the errors are swaps")
    assert twin_verdict(0.3, threshold=0.5) == twin_verdict(0.1)


# ------------------------------------------------------------------------------------------------
# plots


def test_class_legend_and_image_grid(plt: ModuleType) -> None:
    panels = [[np.zeros((4, 4, 3), np.uint8)] * 3, [np.ones((4, 4, 3), np.uint8)] * 3]
    fig, axes = image_grid(panels, titles=[["a", "b", "c"], ["", "", ""]], panel_size=(2.0, 1.5),
                           extra_height=0.5)
    assert axes.shape == (2, 3) and tuple(fig.get_size_inches()) == pytest.approx((6.0, 3.5))
    assert [ax.get_title() for ax in axes[0]] == ["a", "b", "c"] and axes[1, 0].get_title() == ""
    assert not axes[0, 0].axison                                         # no row labels: axes off
    legend = class_legend(fig, ["sky", "pole"], np.array([[255, 0, 0], [0, 0, 255]]))
    assert [t.get_text() for t in legend.get_texts()] == ["sky", "pole"]
    assert legend.legend_handles[1].get_facecolor()[:3] == pytest.approx((0.0, 0.0, 1.0))
    fig, axes = image_grid(panels, row_labels=["val 1", "val 2"], interpolation="nearest")
    assert axes[1, 0].get_ylabel() == "val 2" and axes[1, 0].axison and not axes[1, 0].get_xticks().size
    assert axes[0, 0].get_images()[0].get_interpolation() == "nearest"
    fig, axes = image_grid([[None, panels[0][0]]], row_labels=["errors"])    # None: an empty panel, no frame
    assert not axes[0, 0].get_images() and not axes[0, 0].get_frame_on() and axes[0, 0].get_ylabel() == "errors"
    assert axes[0, 1].get_frame_on() and axes[0, 1].get_images()


def test_plot_class_iou(plt: ModuleType) -> None:
    fig, ax = plt.subplots()
    ious = {"EncNet, dilated": [10.0, 20.0, 30.0], "EncNet, JPU": [15.0, 25.0, 35.0]}
    plot_class_iou(ax, ious, ["sky", "ball", "pole"],
                   colours={"EncNet, dilated": UPSAMPLING_COLOURS["none"], "EncNet, JPU": UPSAMPLING_COLOURS["jpu"]},
                   marks={2: "thin"})
    heights = sorted(bar.get_height() for bars in ax.containers for bar in bars)
    assert heights == [10.0, 15.0, 20.0, 25.0, 30.0, 35.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sky", "ball", "pole\n(thin)"]
    assert ax.get_ylim() == (0.0, 100.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(ious)


def test_plot_training_curves(plt: ModuleType) -> None:
    steps = [{"iteration": 1, "loss": 3.0}, {"iteration": 2, "loss": 2.0}]
    curves = {"JPU": [{"steps": steps, "s_per_it": 0.5}, {"steps": steps, "s_per_it": 0.25}]}
    fig = plot_training_curves(curves, {"JPU": "tab:red"}, time_label="seconds")
    left, right = fig.axes
    assert len(left.lines) == len(right.lines) == 2
    assert right.lines[0].get_xdata().tolist() == [0.5, 1.0] and right.lines[1].get_xdata().tolist() == [0.25, 0.5]
    assert right.lines[0].get_ydata().tolist() == [3.0, 2.0]
    assert (left.lines[0].get_alpha(), left.lines[1].get_alpha()) == (0.9, 0.4)
    assert right.get_xlabel() == "seconds"
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["JPU"]   # one legend entry per network


def test_compare_reads_a_difference_against_both_noises() -> None:
    from fastfcn.lessons.ablation import compare

    def runs(mious, shift):
        return [{"metrics": {"mIoU": m}, "boot": torch.tensor([m + shift - 0.01, m + shift, m + shift + 0.01])}
                for m in mious]

    big = compare("JPU", "bilinear", runs([0.50, 0.52], 0.0), runs([0.40, 0.41], 0.0))
    assert big.point == pytest.approx(10.5) and big.seed_spread == pytest.approx(2.0)
    assert big.beyond_seeds and big.beyond_val_images
    assert big.verdict() == "larger than both the seed spread and the val-image interval"
    small = compare("JPU", "dilated", runs([0.50, 0.53], 0.0), runs([0.49, 0.50], 0.0))
    assert not small.beyond_seeds                       # 2.0 points < a 3.0-point seed spread
    assert small.beyond_val_images                      # but the seed means' difference clears its interval
    assert small.verdict() == "outside the val-image interval but within the seed spread"
    tie = compare("a", "b", [{"metrics": {"mIoU": 0.5}, "boot": torch.tensor([0.45, 0.55])}],
                  [{"metrics": {"mIoU": 0.5}, "boot": torch.tensor([0.55, 0.45])}])
    assert tie.verdict() == "within both the seed spread and the val-image interval"
    assert "b: 0.0 points" in tie.sentence()                 # no sign on zero
    # the interval is of the seed means' difference, the quantity of the point: it holds the point
    a = [{"metrics": {"mIoU": m}, "boot": torch.tensor([m - 0.01, m, m + 0.01])} for m in (0.40, 0.44)]
    b = [{"metrics": {"mIoU": m}, "boot": torch.tensor([m + 0.01, m, m - 0.01])} for m in (0.41, 0.41)]
    mean = compare("a", "b", a, b)
    assert mean.point == pytest.approx(1.0) and mean.lo < mean.point < mean.hi
    assert (mean.lo, mean.hi) == pytest.approx((-0.8, 2.8), abs=1e-4)   # quantiles of -1, +1, +3
