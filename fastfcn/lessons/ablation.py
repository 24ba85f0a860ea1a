"""Chapter 7's helpers: the Table 1 ablation on the procedural dataset, told in tables and pictures.

The chapter trains and evaluates the networks itself; what lives here is what turns its
measurements into something to read:

* tables -- :func:`markdown_table` and the chapter's own tables built on it
  (:func:`class_share_table`, :func:`table1_markdown`, :func:`context_table`);
* the evaluation noise -- a bootstrap over the val images (:func:`bootstrap_counts`,
  :func:`bootstrap_miou`, :func:`interval`) and the sentence that reports a difference with it;
* per-class results -- :func:`summarize_seeds`, where the pixels of a class go (:func:`pixel_fate`),
  and the phrases the prose quotes;
* plots -- the legend of the label colours, the per-class IoU bars, the loss curves, image grids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..utils.text import signed

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

    from ..paper import Row

__all__ = ["Comparison", "Fate", "compare", "best_in_words", "bootstrap_counts", "bootstrap_miou",
           "class_legend", "class_share_table", "class_statistics", "context_table",
           "difference_sentence", "fate_phrase", "image_grid", "interval", "majority_floor",
           "markdown_table", "pixel_fate", "plot_class_iou", "plot_training_curves",
           "summarize_seeds", "table1_caption", "table1_markdown", "top_distinct",
           "twin_share_of_errors", "twin_verdict"]

# ------------------------------------------------------------------------------------------------
# tables


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown table: one header row, the ``|---|`` rule, then one line per row (cells with ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def class_statistics(masks: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """Share of the pixels (float64, sums to 1) and number of images containing each class.

    ``masks`` is ``[N, H, W]`` of class ids ``0 .. num_classes - 1``.
    """
    pixels = torch.bincount(masks.flatten(), minlength=num_classes).double()
    present = torch.stack([(masks == c).flatten(1).any(1) for c in range(num_classes)], 1).sum(0)
    return pixels / pixels.sum(), present


def majority_floor(share: Tensor, times: float = 9.0) -> float:
    """``times`` the mIoU (%) of answering the majority class everywhere: its IoU is its share of the pixels,
    every other class scores 0, so the mIoU is that share divided by the number of classes (``len(share)``)."""
    return times * 100 * float(share.max()) / len(share)


def class_share_table(classes: Sequence[str], share: Tensor, present: Tensor, n_images: int) -> str:
    """The chapter's class-frequency table: share of the pixels (%) and images containing each class."""
    return markdown_table(("class", "share of the pixels", "images containing it"),
                          [(n, f"{100 * share[c]:.1f}%", f"{int(present[c])} of {n_images}")
                           for c, n in enumerate(classes)])


def table1_caption(images: int, backbone: str, iterations: int, seeds: int, smoke: bool = False) -> str:
    """The sentence above :func:`table1_markdown`'s table: what was trained and evaluated, and its columns."""
    caveat = " (smoke profile: a few iterations only, these numbers mean nothing)" if smoke else ""
    runs = f"mean of {seeds} seeds" if seeds > 1 else "one seed"
    spread = "*seed range*: the largest minus the smallest mIoU of the seeds; " if seeds > 1 else ""
    return (f"Procedural val{caveat}, {images} images, {backbone} fine-tuned from the book's trunk, {iterations} "
            f"iterations; {runs}. pixAcc and mIoU in %; *90% interval*: of the mIoU, over resampled val images; "
            f"{spread}*s / it*: seconds per training iteration on this machine. The two *paper* columns are the "
            "paper's Table 1 (Pascal Context, ResNet-50, ImageNet-pretrained), for the shape of the comparison "
            "only: the numbers measure different tasks.")


def table1_markdown(summaries: Mapping[tuple[str, str], Mapping[str, Any]],
                    paper: Mapping[tuple[str, str], Row], *, head_labels: Mapping[str, str],
                    labels: Mapping[str, str], seed_range: bool) -> str:
    """Our Table 1 next to the paper's: one row per ``(head, upsampling)`` of ``summaries``.

    ``summaries`` are :func:`summarize_seeds` results; ``paper`` holds the paper's rows under the
    same keys; ``seed_range`` adds the column of the mIoU range over seeds. Short headers, one decimal
    (the paper's too), so that the ten columns fit a page: pixAcc and mIoU are in %, "90% interval"
    is the mIoU's over resampled val images, "s / it" the seconds per training iteration; the
    chapter says so above the table.
    """
    header = ["head", "OS", "upsampling", "pixAcc", "mIoU", "90% interval"]
    header += ["seed range"] * seed_range
    header += ["s / it", "paper pixAcc", "paper mIoU"]
    rows = []
    for (h, u), s in summaries.items():
        lo, hi = s["boot"]
        row = [head_labels[h], 8 if u == "none" else 32, labels[u], f"{s['pix']:.1f}", f"**{s['miou']:.1f}**",
               f"{lo:.1f} - {hi:.1f}"]
        row += [f"{s['miou_range']:.1f}"] * seed_range
        row += [f"{s['s_per_it']:.3f}", f"{paper[h, u].pixacc:.1f}", f"{paper[h, u].miou:.1f}"]
        rows.append(row)
    return markdown_table(header, rows)


# ------------------------------------------------------------------------------------------------
# the evaluation noise: a bootstrap over the val images


def bootstrap_counts(n: int, resamples: int, seed: int) -> Tensor:
    """How often each of ``n`` images is drawn in each resample with replacement: ``[resamples, n]``, float64.

    Every row sums to ``n``; the same ``seed`` gives the same resamples.
    """
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)).double()


def bootstrap_miou(cms: Tensor, counts: Tensor) -> Tensor:
    """mIoU (0..1) of every resample, from per-image confusion matrices ``cms`` ``[N, C, C]``: ``[resamples]``.

    A resample's confusion matrix is the count-weighted sum of the images' matrices; classes that
    occur neither in its ground truth nor in its predictions are left out of its mean.
    """
    c = cms.shape[-1]
    cm = (counts.double() @ cms.double().flatten(1)).view(counts.shape[0], c, c)
    inter = cm.diagonal(dim1=1, dim2=2)
    union = cm.sum(1) + cm.sum(2) - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.nan)
    return torch.nanmean(iou, dim=1)


def interval(values: Tensor | np.ndarray, level: float = 0.9) -> tuple[float, float]:
    """The central ``level`` interval of ``values`` (quantiles ``(1 - level) / 2`` and ``(1 + level) / 2``)."""
    lo, hi = np.quantile(np.asarray(values), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


class Comparison(NamedTuple):
    """One difference of Table 1 (``a`` minus ``b``, mIoU points) and the two noises it is read against."""

    a: str
    b: str
    point: float          # difference of the seed means
    seed_spread: float    # the larger of the two rows' ranges over seeds
    lo: float             # 90% interval of that difference over resampled val images
    hi: float

    @property
    def beyond_seeds(self) -> bool:
        return abs(self.point) > self.seed_spread

    @property
    def beyond_val_images(self) -> bool:
        return self.lo > 0 or self.hi < 0

    def verdict(self) -> str:
        """Whether the difference is larger than both noises, in words."""
        if self.beyond_seeds and self.beyond_val_images:
            return "larger than both the seed spread and the val-image interval"
        if self.beyond_val_images:
            return "outside the val-image interval but within the seed spread"
        if self.beyond_seeds:
            return "larger than the seed spread but within the val-image interval"
        return "within both the seed spread and the val-image interval"

    def sentence(self) -> str:
        return (f"{self.a} against {self.b}: {signed(self.point)} points (seed spread {self.seed_spread:.1f}, "
                f"val-image interval {signed(self.lo)} to {signed(self.hi)}): {self.verdict()}")


def compare(a: str, b: str, runs_a: Sequence[Mapping[str, Any]], runs_b: Sequence[Mapping[str, Any]]
            ) -> Comparison:
    """Compare two networks' seeds (runs hold ``"metrics"`` and ``"boot"`` as for :func:`summarize_seeds`).

    The point is the difference of the seed means; the val-image interval is of that same difference,
    the seed means of both networks recomputed on each resample of the val images (every run's
    ``"boot"`` drawn with the same :func:`bootstrap_counts`, so resample ``k`` holds the same images in all).
    """
    ma = np.array([r["metrics"]["mIoU"] for r in runs_a]) * 100
    mb = np.array([r["metrics"]["mIoU"] for r in runs_b]) * 100
    lo, hi = interval(100 * (_seed_mean_boot(runs_a) - _seed_mean_boot(runs_b)))
    spread = max(float(np.ptp(ma)), float(np.ptp(mb)))
    return Comparison(a, b, float(ma.mean() - mb.mean()), spread, lo, hi)


def difference_sentence(point: float, lo: float, hi: float, against: str) -> str:
    """"+1.2 points against X (90% interval ...: within/larger than the evaluation noise)"."""
    verdict = "larger than the evaluation noise" if lo > 0 or hi < 0 else "within the evaluation noise"
    return f"{signed(point)} points against {against} (90% interval {signed(lo)} to {signed(hi)}: {verdict})"


def _seed_mean_boot(runs: Sequence[Mapping[str, Any]]) -> Tensor:
    """The bootstrap of the seed-mean mIoU: the runs' ``"boot"`` (one resample per entry) averaged over the seeds."""
    return torch.stack([torch.as_tensor(r["boot"], dtype=torch.float64) for r in runs]).mean(0)


# ------------------------------------------------------------------------------------------------
# per-class results


def summarize_seeds(runs: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> dict[str, Any]:
    """Mean over the seeds of one network: pixAcc, mIoU, per-class IoU (all %), seconds per iteration.

    Each run holds ``"metrics"`` (``fastfcn.inference.metrics.scores``), ``"boot"`` (its
    :func:`bootstrap_miou`, the same resamples for every seed) and ``"s_per_it"``. ``"miou_range"`` is max
    minus min over the seeds, ``"boot"`` the 90% interval of the seed-mean mIoU over the resamples (the
    quantity ``"miou"`` is), and a class no image or prediction of a run contains counts as IoU 0.
    """
    pix = np.array([r["metrics"]["pixAcc"] for r in runs]) * 100
    miou = np.array([r["metrics"]["mIoU"] for r in runs]) * 100
    iou = {n: float(100 * np.mean([r["metrics"]["iou"][n] or 0.0 for r in runs])) for n in classes}
    return {"pix": float(pix.mean()), "miou": float(miou.mean()), "miou_range": float(miou.max() - miou.min()),
            "iou": iou, "boot": interval(100 * _seed_mean_boot(runs)),
            "s_per_it": float(np.mean([r["s_per_it"] for r in runs]))}


def top_distinct(scores: Sequence[Tensor]) -> list[int]:
    """For each score vector in turn, the index with the highest score not picked for an earlier one."""
    picked: list[int] = []
    for score in scores:
        for i in score.argsort(descending=True).tolist():
            if i not in picked:
                picked.append(i)
                break
    return picked


def best_in_words(ious: Mapping[str, float], cls: str) -> str:
    """Which network (the keys of ``ious``, IoU % of class ``cls``) is best at one decimal, in words."""
    rounded = {name: round(v, 1) for name, v in ious.items()}
    top = max(rounded.values())
    if top == 0:
        return f"none of them: no network labels a single {cls} pixel correctly yet"
    winners = [name for name, v in rounded.items() if v == top]
    return " and ".join(winners) + (" (tied)" if len(winners) > 1 else "")


class Fate(NamedTuple):
    """Where the pixels of one class go, in % of its pixels."""

    correct: float      # predicted as the class itself
    as_twin: float      # predicted as its look-alike
    other: str          # the most frequent other prediction
    as_other: float     # ... and its share


def pixel_fate(cm: Tensor, cls: int, twin: int, classes: Sequence[str]) -> Fate:
    """Shares of the ``cls`` pixels of a confusion matrix (rows: truth) predicted as cls, as twin, as anything else."""
    row = cm[cls] / cm[cls].sum().clamp(min=1)
    rest = row.clone()
    rest[[cls, twin]] = -1
    other = int(rest.argmax())
    return Fate(100 * float(row[cls]), 100 * float(row[twin]), classes[other], 100 * float(row[other]))


def fate_phrase(fate: Fate, cls: str, twin: str) -> str:
    """"balloon 80%, ball 5%, sky 10%": a :class:`Fate` as a table cell."""
    return f"{cls} {fate.correct:.0f}%, {twin} {fate.as_twin:.0f}%, {fate.other} {fate.as_other:.0f}%"


def context_table(ious: Mapping[str, Mapping[str, float]], context_fates: Mapping[str, Fate],
                  twin_fates: Mapping[str, Fate], *, thin: str = "pole", context: str = "balloon",
                  twin: str = "ball") -> str:
    """The per-network table of the thin and the look-alike classes: IoU % and where their pixels go.

    All three mappings are keyed by the network's label; ``ious`` maps class names to IoU %.
    """
    header = ("EncNet +", f"{thin} IoU %", f"{context} IoU %", f"{twin} IoU %", f"{context} pixels predicted as",
              f"{twin} pixels predicted as")
    return markdown_table(header, [(name, f"{iou[thin]:.1f}", f"{iou[context]:.1f}", f"{iou[twin]:.1f}",
                                    fate_phrase(context_fates[name], context, twin),
                                    fate_phrase(twin_fates[name], twin, context))
                                   for name, iou in ious.items()])


def twin_share_of_errors(cms: Iterable[Tensor], cls: int, twin: int) -> float:
    """Of all wrong predictions on the pixels of ``cls`` and ``twin``, the share that swaps the two (0..1)."""
    swaps = wrong = 0.0
    for cm in cms:
        swaps += float(cm[cls, twin] + cm[twin, cls])
        wrong += float(cm[cls].sum() - cm[cls, cls] + cm[twin].sum() - cm[twin, twin])
    return swaps / max(wrong, 1.0)


def twin_verdict(share: float, threshold: float = 0.25) -> str:
    """What a :func:`twin_share_of_errors` says, as the end of a sentence of the chapter."""
    if share < threshold:
        return ("so in this run the look-alike is rarely the problem: an object that is found is named after its "
                "surroundings, and what the networks miss they give to the sky or the ground around it. What limits "
                "these two IoUs is finding the objects (and drawing their outlines), not telling them apart")
    return ("so a good part of the errors are swaps between the look-alikes: the networks find the object but do "
            "not yet use its surroundings to name it")


# ------------------------------------------------------------------------------------------------
# plots


def class_legend(fig: Figure, classes: Sequence[str], colours: np.ndarray, fontsize: float = 8) -> Legend:
    """One patch per class (``colours``: ``[C, 3]`` of 0..255) in a row below the figure's panels."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=colours[c] / 255, edgecolor="black", label=n) for c, n in enumerate(classes)]
    return fig.legend(handles=handles, loc="lower center", ncol=len(classes), fontsize=fontsize, frameon=False)


def image_grid(panels: Sequence[Sequence[np.ndarray | None]], *, titles: Sequence[Sequence[str]] | None = None,
               row_labels: Sequence[str] | None = None, panel_size: tuple[float, float] = (2.2, 2.3),
               extra_height: float = 0.0, interpolation: str | None = None) -> tuple[Figure, np.ndarray]:
    """Images in rows (``panels[row][col]``, HWC), each titled by ``titles[row][col]`` (``""``: none).

    With ``row_labels`` each row is labelled on its left and the panels keep their frame; without,
    the axes are switched off. A panel that is ``None`` stays empty, with no frame (a row label on
    it still shows). Returns the figure and the ``[rows, cols]`` array of axes.
    """
    import matplotlib.pyplot as plt

    rows, cols = len(panels), len(panels[0])
    fig, axes = plt.subplots(rows, cols, figsize=(panel_size[0] * cols, panel_size[1] * rows + extra_height),
                             squeeze=False)
    for r, row in enumerate(panels):
        for c, panel in enumerate(row):
            ax = axes[r, c]
            if panel is None:
                ax.set_frame_on(False)
            else:
                ax.imshow(panel, interpolation=interpolation)
            if titles is not None and titles[r][c]:
                ax.set_title(titles[r][c], fontsize=9)
            if row_labels is None:
                ax.axis("off")
            else:
                ax.set_xticks([])
                ax.set_yticks([])
        if row_labels is not None:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=9)
    return fig, axes


def plot_class_iou(ax: Axes, ious: Mapping[str, Sequence[float]], classes: Sequence[str],
                   colours: Mapping[str, str], marks: Mapping[int, str]) -> None:
    """Grouped bars of per-class IoU %: one group per class, one bar per network (``ious``: label -> IoUs).

    ``marks`` maps class indices to a note under their name (such as "thin"); those classes are shaded.
    """
    width = 0.8 / len(ious)
    for k, (label, vals) in enumerate(ious.items()):
        ax.bar(np.arange(len(classes)) + (k - (len(ious) - 1) / 2) * width, vals, width, label=label,
               color=colours[label])
    for c in marks:
        ax.axvspan(c - 0.45, c + 0.45, color="gold", alpha=0.15, zorder=0)
    ax.set_xticks(range(len(classes)), [n + (f"\n({marks[c]})" if c in marks else "") for c, n in enumerate(classes)])
    ax.set_ylabel("IoU %")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, ncol=len(ious), loc="upper right")


def plot_training_curves(curves: Mapping[str, Sequence[Mapping[str, Any]]], colours: Mapping[str, str], *,
                         time_label: str) -> Figure:
    """Training loss against iterations (left) and against training time (right), one colour per network.

    ``curves`` maps a label to that network's runs, one per seed, each with ``"steps"`` (the
    logged ``{"iteration", "loss"}`` records) and ``"s_per_it"``; seeds after the first are faint.
    """
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.8))
    for label, runs in curves.items():
        for k, run in enumerate(runs):
            it = np.array([r["iteration"] for r in run["steps"]])
            loss = np.array([r["loss"] for r in run["steps"]])
            kw = {"color": colours[label], "alpha": 0.9 if k == 0 else 0.4, "label": label if k == 0 else None}
            ax1.plot(it, loss, **kw)
            ax2.plot(it * run["s_per_it"], loss, **kw)
    ax1.set_xlabel("iteration")
    ax2.set_xlabel(time_label)
    for ax in (ax1, ax2):
        ax.set_ylabel("training loss (one batch)")
        ax.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    ax1.set_title("loss per iteration", fontsize=10)
    ax2.set_title("the same curves against training time", fontsize=10)
    fig.tight_layout()
    return fig
