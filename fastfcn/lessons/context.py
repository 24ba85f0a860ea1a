"""Does the context class test context? Balls and balloons told apart from their own pixels, then with surroundings.

The procedural scenes (:mod:`fastfcn.data.scene`) draw ``balloon`` exactly like ``ball``; only where they are (sky
or ground) differs. If that holds, a classifier that sees only an object's pixels is at chance, and the same
classifier shown the object *with* its surroundings is nearly always right. This module measures both:

* :func:`lookalike_crops` -- one crop per ball/balloon of N scenes (an 8-connected component of the label map):
  ``view="object"`` is the bounding box with everything but the object's pixels zeroed, ``view="surroundings"``
  a square window 3x the box, background kept; both resized to ``crop_px`` with the mask as a fourth channel,
  plus the object's size in scene pixels;
* :func:`crop_classifier_accuracy` -- trains a crop classifier (L2 logistic regression on colour histograms,
  the downsampled crop and the size; or a tiny CNN) on train-scene crops and scores it on val-scene crops;
  :func:`context_free_accuracy` and :func:`with_context_accuracy` are its two views, :func:`context_contrast`
  both at once (each scene drawn once) and :func:`accuracy_phrase` a result in words;
* :func:`lookalike_statistics` -- per-object pixel counts and colours, for checking that the classes agree;
* :func:`swap_rates` / :func:`swap_phrase` / :func:`swaps_in_words` -- how often a trained network gives one
  look-alike's pixels to the other, in both directions and balanced.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.procedural import ProceduralScenes
from ..data.scene import BALL, BALLOON, CLASSES
from ..utils.text import number_word
from ..utils.threads import limited_threads

__all__ = ["LOOKALIKES", "VIEWS", "Crops", "CropAccuracy", "ObjectStatistics", "SwapRates", "lookalike_crops",
           "crop_classifier_accuracy", "context_contrast", "context_free_accuracy", "with_context_accuracy",
           "lookalike_statistics", "swap_rates", "swap_phrase", "swaps_in_words", "accuracy_phrase"]

LOOKALIKES = (CLASSES[BALL], CLASSES[BALLOON])  # crop label 0 and 1
VIEWS = ("object", "surroundings")
HIST_BINS = 8  # per colour channel


class Crops(NamedTuple):
    """The crops of the look-alikes of some scenes."""

    pixels: np.ndarray  # float32 [N, 4, S, S]: RGB in 0..1 and the object's mask
    size: np.ndarray    # float32 [N, 3]: log of the object's pixel count, bounding-box height and width
    labels: np.ndarray  # int64 [N]: 0 ball, 1 balloon (LOOKALIKES)

    def counts(self) -> dict[str, int]:
        """Number of crops per class name."""
        return {name: int((self.labels == k).sum()) for k, name in enumerate(LOOKALIKES)}


class CropAccuracy(NamedTuple):
    """A crop classifier's held-out result: accuracy on val-scene crops against chance."""

    view: str                   # "object" (surroundings zeroed) or "surroundings" (background kept)
    classifier: str             # "logistic" or "cnn"
    accuracy: float             # on the val crops, 0..1
    balanced_accuracy: float    # mean of the per-class recalls (chance 0.5 whatever the counts)
    chance: float               # accuracy of always answering the more frequent val class
    noise: float                # 1.96 binomial standard deviations of an accuracy at chance on this many crops
    train_accuracy: float       # on its own training crops (how much it could fit)
    train_crops: dict[str, int]
    val_crops: dict[str, int]
    seconds: float              # crops and training together


class ObjectStatistics(NamedTuple):
    """Per object of one class: how many pixels, their mean and standard deviation of colour (0..255)."""

    pixels: np.ndarray     # int64 [N]
    mean_rgb: np.ndarray   # float64 [N, 3]
    std_rgb: np.ndarray    # float64 [N, 3]
    share: float           # of all pixels of the scenes, 0..1


class SwapRates(NamedTuple):
    """Share of each look-alike's pixels a network gave to the other (0..1), and their mean."""

    a_as_b: float
    b_as_a: float
    balanced: float


# ------------------------------------------------------------------------------------------------ crops


def _components(masks: np.ndarray) -> list[list[np.ndarray]]:
    """The 8-connected components of each bool [H, W] mask of ``masks`` [K, H, W], as flat pixel indices each."""
    k, h, w = masks.shape
    out: list[list[np.ndarray]] = [[] for _ in range(k)]
    if not masks.any():
        return out
    # work in the box around all masked pixels, padded by one zero pixel: small numpy max-filters
    rows, cols = np.nonzero(masks.any(0))
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    m = np.pad(masks[:, r0:r1, c0:c1], ((0, 0), (1, 1), (1, 1)))
    index = np.zeros(m.shape[1:], dtype=np.int64)
    index[1:-1, 1:-1] = np.arange(r0, r1)[:, None] * w + np.arange(c0, c1)[None, :] + 1
    ids = np.where(m, index, 0)
    hh, ww = m.shape[1] - 2, m.shape[2] - 2
    while True:  # every pixel takes the largest id of its 3x3 neighbourhood (same mask) until nothing changes
        grown = ids.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                np.maximum(grown[:, 1:-1, 1:-1], ids[:, 1 + dy:1 + dy + hh, 1 + dx:1 + dx + ww],
                           out=grown[:, 1:-1, 1:-1])
        grown *= m
        if np.array_equal(grown, ids):
            break
        ids = grown
    for c in range(k):
        if not m[c].any():
            continue
        flat, comp = index[m[c]] - 1, ids[c][m[c]]  # flat pixel indices, and their component's id
        order = np.argsort(comp, kind="stable")
        _, starts = np.unique(comp[order], return_index=True)
        out[c] = [flat[g] for g in np.split(order, starts[1:])]
    return out


def _window(image: np.ndarray, mask: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """``[4, r1 - r0, c1 - c0]`` float32 of RGB (0..1) and mask; rows/columns outside the image are zeros."""
    h, w = mask.shape
    out = np.zeros((4, r1 - r0, c1 - c0), dtype=np.float32)
    a0, a1, b0, b1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    out[:3, a0 - r0:a1 - r0, b0 - c0:b1 - c0] = image[a0:a1, b0:b1].transpose(2, 0, 1) / 255.0
    out[3, a0 - r0:a1 - r0, b0 - c0:b1 - c0] = mask[a0:a1, b0:b1]
    return out


def _crops_of_scenes(split: str, num_images: int, views: Sequence[str], *, image_size: int, seed: int,
                     crop_px: int, context_factor: float, min_pixels: int) -> dict[str, Crops]:
    """The crops of every view in ``views``, drawing each scene once."""
    for view in views:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; choose one of {list(VIEWS)}")
    scenes = ProceduralScenes(split, num_images=num_images, image_size=image_size, seed=seed)
    pixels: dict[str, list[np.ndarray]] = {v: [] for v in views}
    sizes, labels = [], []
    for i in range(num_images):
        image, label = scenes.generate(i)
        for k, comps in enumerate(_components(np.stack([label == BALL, label == BALLOON]))):
            for comp in comps:
                if len(comp) < min_pixels:
                    continue
                obj = np.zeros(label.shape, dtype=bool)
                obj.flat[comp] = True
                rows, cols = np.divmod(comp, label.shape[1])
                r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
                for view in views:
                    if view == "object":  # the box, with everything but the object's own pixels zeroed
                        crop = _window(image, obj, r0, r1, c0, c1)
                        crop[:3] *= crop[3:]
                    else:  # a square window context_factor times the box, centred on it, background kept
                        half = context_factor * max(r1 - r0, c1 - c0) / 2
                        cy, cx = (r0 + r1) / 2, (c0 + c1) / 2
                        crop = _window(image, obj, math.floor(cy - half), math.ceil(cy + half),
                                       math.floor(cx - half), math.ceil(cx + half))
                    resized = F.interpolate(torch.from_numpy(crop)[None], size=(crop_px, crop_px),
                                            mode="bilinear", align_corners=False, antialias=True)[0]
                    pixels[view].append(resized.numpy())
                sizes.append(np.log([len(comp), r1 - r0, c1 - c0]))
                labels.append(k)
    size = np.array(sizes, dtype=np.float32).reshape(-1, 3)
    y = np.array(labels, dtype=np.int64)
    return {v: Crops(np.stack(px).astype(np.float32) if px else np.zeros((0, 4, crop_px, crop_px), np.float32),
                     size, y) for v, px in pixels.items()}


def lookalike_crops(split: str, num_images: int, *, view: str = "object", image_size: int = 128, seed: int = 0,
                    crop_px: int = 16, context_factor: float = 3.0, min_pixels: int = 4) -> Crops:
    """One crop per ball and balloon (8-connected component of ``min_pixels`` or more) of the first
    ``num_images`` procedural scenes of ``split``; ``view`` is ``"object"`` or ``"surroundings"``."""
    return _crops_of_scenes(split, num_images, [view], image_size=image_size, seed=seed, crop_px=crop_px,
                            context_factor=context_factor, min_pixels=min_pixels)[view]


# ------------------------------------------------------------------------------------------------ classifiers


def _features(crops: Crops) -> Tensor:
    """Per crop: colour histograms of the object's pixels and of the whole crop, mean and std of colour, the crop
    at 8x8 (all 4 channels) and the size."""
    x = torch.from_numpy(crops.pixels)
    rgb, mask = x[:, :3].flatten(2), x[:, 3:].flatten(2)  # [N, 3, S*S], [N, 1, S*S]
    onehot = F.one_hot((rgb * HIST_BINS).long().clamp(0, HIST_BINS - 1), HIST_BINS).float()  # [N, 3, S*S, B]
    whole = onehot.mean(2).flatten(1)
    weight = (mask / mask.sum(2, keepdim=True).clamp(min=1e-6))[..., None]
    on_object = (onehot * weight).sum(2).flatten(1)
    small = F.adaptive_avg_pool2d(x, 8).flatten(1)
    return torch.cat([on_object, whole, rgb.mean(2), rgb.std(2), small, torch.from_numpy(crops.size)], 1)


def _fit_logistic(x: np.ndarray, y: np.ndarray, weight_decay: float, steps: int = 30) -> np.ndarray:
    """Binary L2 logistic regression by Newton's method (exact and fast at a few hundred features): weights
    ``[F + 1]``, the last one the bias (not penalised)."""
    xb = np.concatenate([x, np.ones((len(x), 1))], 1).astype(np.float64)
    penalty = np.full(xb.shape[1], 2 * weight_decay)
    penalty[-1] = 0.0
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xb @ w)))
        grad = xb.T @ (p - y) / len(y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb / len(y) + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def _predict_logistic(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (x @ w[:-1] + w[-1] > 0).astype(np.int64)


class _TinyCNN(torch.nn.Module):
    """Two 3x3 conv stages on the 4-channel crop, flattened (position kept), plus the size features."""

    def __init__(self, crop_px: int, num_size: int) -> None:
        super().__init__()
        nn = torch.nn
        self.conv = nn.Sequential(nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.head = torch.nn.Linear(32 * (crop_px // 4) ** 2 + num_size, 2)

    def forward(self, pixels: Tensor, size: Tensor) -> Tensor:
        return self.head(torch.cat([self.conv(pixels).flatten(1), size], 1))


def _fit_cnn(pixels: Tensor, size: Tensor, y: Tensor, seed: int, steps: int = 200, batch_size: int = 64) -> _TinyCNN:
    """Adam on random batches: about 12 epochs of a thousand crops, a few CPU seconds."""
    torch.manual_seed(seed)
    model = _TinyCNN(pixels.shape[-1], size.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    with limited_threads(1):  # ops this small only wait for a thread pool (8x slower on a busy 2-core machine)
        for _ in range(steps):
            batch = torch.randint(len(y), (min(batch_size, len(y)),), generator=gen)
            opt.zero_grad()
            F.cross_entropy(model(pixels[batch], size[batch]), y[batch]).backward()
            opt.step()
    return model.eval()


def _scores(pred: Tensor, y: Tensor) -> tuple[float, float]:
    recalls = [float((pred[y == k] == k).float().mean()) for k in (0, 1) if (y == k).any()]
    return float((pred == y).float().mean()), float(np.mean(recalls))


def _evaluate(train: Crops, val: Crops, view: str, classifier: str, seed: int, weight_decay: float,
              seconds: float) -> CropAccuracy:
    """Fit ``classifier`` on ``train``, score it on ``val`` (crops of other scenes: held out)."""
    if classifier not in ("logistic", "cnn"):
        raise ValueError(f"unknown classifier {classifier!r}; choose 'logistic' or 'cnn'")
    if len(set(train.labels.tolist())) < 2 or len(val.labels) == 0:
        raise ValueError(f"too few look-alikes to classify: train {train.counts()}, val {val.counts()}; "
                         f"use more scenes")
    start = time.perf_counter()
    y_train, y_val = torch.from_numpy(train.labels), torch.from_numpy(val.labels)
    if classifier == "logistic":
        f_train, f_val = _features(train), _features(val)
        mu, sd = f_train.mean(0), f_train.std(0).clamp(min=1e-3)  # standardised with the train crops only
        x_train, x_val = ((f_train - mu) / sd).double().numpy(), ((f_val - mu) / sd).double().numpy()
        w = _fit_logistic(x_train, train.labels.astype(np.float64), weight_decay)
        pred_train = torch.from_numpy(_predict_logistic(w, x_train))
        pred_val = torch.from_numpy(_predict_logistic(w, x_val))
    else:
        s_train, s_val = torch.from_numpy(train.size), torch.from_numpy(val.size)
        s_mu, s_sd = s_train.mean(0), s_train.std(0).clamp(min=1e-3)
        p_train, p_val = torch.from_numpy(train.pixels), torch.from_numpy(val.pixels)
        model = _fit_cnn(p_train, (s_train - s_mu) / s_sd, y_train, seed)
        with torch.no_grad():
            pred_train = model(p_train, (s_train - s_mu) / s_sd).argmax(1)
            pred_val = model(p_val, (s_val - s_mu) / s_sd).argmax(1)
    accuracy, balanced = _scores(pred_val, y_val)
    chance = max(float(y_val.float().mean()), 1 - float(y_val.float().mean()))
    noise = 1.96 * math.sqrt(chance * (1 - chance) / len(y_val))
    return CropAccuracy(view, classifier, accuracy, balanced, chance, noise, _scores(pred_train, y_train)[0],
                        train.counts(), val.counts(), seconds + time.perf_counter() - start)


def context_contrast(*, classifier: str = "logistic", train_images: int = 300, val_images: int = 150,
                     image_size: int = 128, seed: int = 0, crop_px: int = 16, context_factor: float = 3.0,
                     weight_decay: float = 1e-2) -> dict[str, CropAccuracy]:
    """The same crop classifier on both views, ``{"object": ..., "surroundings": ...}``: trained on the
    look-alikes of ``train_images`` train scenes, scored on those of ``val_images`` val scenes. Each scene is
    drawn once for both views (that time is counted in both results' ``seconds``)."""
    start = time.perf_counter()
    train, val = (_crops_of_scenes(split, n, VIEWS, image_size=image_size, seed=seed, crop_px=crop_px,
                                   context_factor=context_factor, min_pixels=4)
                  for split, n in (("train", train_images), ("val", val_images)))
    drawn = time.perf_counter() - start
    return {v: _evaluate(train[v], val[v], v, classifier, seed, weight_decay, drawn) for v in VIEWS}


def crop_classifier_accuracy(*, view: str = "object", classifier: str = "logistic", train_images: int = 300,
                             val_images: int = 150, image_size: int = 128, seed: int = 0, crop_px: int = 16,
                             context_factor: float = 3.0, weight_decay: float = 1e-2) -> CropAccuracy:
    """Train a crop classifier on the look-alikes of ``train_images`` train scenes, score it on ``val_images``
    val scenes. ``classifier``: ``"logistic"`` (L2 logistic regression, seconds) or ``"cnn"`` (a tiny CNN)."""
    start = time.perf_counter()
    train, val = (lookalike_crops(split, n, view=view, image_size=image_size, seed=seed, crop_px=crop_px,
                                  context_factor=context_factor)
                  for split, n in (("train", train_images), ("val", val_images)))
    return _evaluate(train, val, view, classifier, seed, weight_decay, time.perf_counter() - start)


def context_free_accuracy(**kwargs: Any) -> CropAccuracy:
    """:func:`crop_classifier_accuracy` on the objects' own pixels (surroundings zeroed): chance if only context
    tells the look-alikes apart."""
    return crop_classifier_accuracy(view="object", **kwargs)


def with_context_accuracy(**kwargs: Any) -> CropAccuracy:
    """:func:`crop_classifier_accuracy` on windows 3x the object with the background kept: far above chance."""
    return crop_classifier_accuracy(view="surroundings", **kwargs)


def accuracy_phrase(result: CropAccuracy) -> str:
    """"62% (chance 50% +- 5%, 180 val crops)": a :class:`CropAccuracy` for the prose."""
    n = sum(result.val_crops.values())
    return (f"{100 * result.accuracy:.0f}% (chance {100 * result.chance:.0f}% \u00b1 {100 * result.noise:.0f}%, "
            f"{n} val crops)")


# ------------------------------------------------------------------------------------------------ statistics


def lookalike_statistics(split: str, num_images: int, *, image_size: int = 128, seed: int = 0,
                         min_pixels: int = 4) -> dict[str, ObjectStatistics]:
    """Per look-alike class: pixel count and colour mean/std of each object (component) in ``num_images`` scenes."""
    scenes = ProceduralScenes(split, num_images=num_images, image_size=image_size, seed=seed)
    found: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {BALL: [], BALLOON: []}
    class_pixels = dict.fromkeys(found, 0)
    total = 0
    for i in range(num_images):
        image, label = scenes.generate(i)
        total += label.size
        flat = image.reshape(-1, 3).astype(np.float64)
        for cls, comps in zip(found, _components(np.stack([label == c for c in found])), strict=True):
            class_pixels[cls] += int((label == cls).sum())
            for comp in comps:
                if len(comp) >= min_pixels:
                    found[cls].append((len(comp), flat[comp].mean(0), flat[comp].std(0)))
    out = {}
    for cls, rows in found.items():
        out[CLASSES[cls]] = ObjectStatistics(np.array([r[0] for r in rows], dtype=np.int64),
                                             np.array([r[1] for r in rows]).reshape(-1, 3),
                                             np.array([r[2] for r in rows]).reshape(-1, 3),
                                             class_pixels[cls] / max(total, 1))
    return out


# ------------------------------------------------------------------------------------------------ swaps


def swap_rates(cm: Tensor, a: int = BALLOON, b: int = BALL) -> SwapRates:
    """From a confusion matrix (rows: truth): the share of ``a``'s pixels predicted as ``b``, of ``b``'s as ``a``,
    and their mean (each class weighs the same, however many pixels it has)."""
    cm = cm.double()
    a_as_b = float(cm[a, b] / cm[a].sum().clamp(min=1))
    b_as_a = float(cm[b, a] / cm[b].sum().clamp(min=1))
    return SwapRates(a_as_b, b_as_a, (a_as_b + b_as_a) / 2)


def swap_phrase(rates: SwapRates, a: str = CLASSES[BALLOON], b: str = CLASSES[BALL]) -> str:
    """"2.1% of the look-alikes' pixels swapped (balloon to ball 3.0%, ball to balloon 1.2%)"."""
    return (f"{100 * rates.balanced:.1f}% of the look-alikes' pixels swapped ({a} to {b} {100 * rates.a_as_b:.1f}%, "
            f"{b} to {a} {100 * rates.b_as_a:.1f}%)")


def swaps_in_words(rates: Mapping[str, SwapRates], a: str = CLASSES[BALLOON], b: str = CLASSES[BALL]) -> str:
    """The :func:`swap_phrase` of each network (``rates``: name -> rates), said once where all networks agree."""
    phrases = {name: swap_phrase(r, a, b) for name, r in rates.items()}
    if len(phrases) < 2 or len(set(phrases.values())) > 1:
        return "; ".join(f"{name}: {phrase}" for name, phrase in phrases.items())
    count = number_word(len(phrases))
    if all(r.a_as_b == 0 and r.b_as_a == 0 for r in rates.values()):
        return f"none of the {count} networks gives a single {a} pixel to {b}, or {b} pixel to {a}"
    return f"each of the {count} networks, {next(iter(phrases.values()))}"
