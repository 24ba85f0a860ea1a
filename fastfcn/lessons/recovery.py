"""Chapter 9's measurement: does an upsampling module recover the dilated backbone's last feature map?

Section 3.3 of the paper argues that the plain backbone's C3, C4, C5 plus a joint-upsampling module can
stand in for the dilated backbone's C5 (``y_d``). Chapter 9 writes the method in view: the two trunks with
one set of weights, the regressor and its fitting loop, the errors. The functions here marked *reference*
are the versions its visible code is checked against, on the same inputs and seeds; the rest is plumbing
the chapter only calls (image sets, feature banks, standardisation, costs, the frozen head).

* :func:`backbone_pair` / :func:`random_backbone_pair` -- reference: the same weights as a dilated (output
  stride 8) and a plain (output stride 32) trunk, the trained one taken from a dilated model;
* :func:`extract_features` -- the plain trunk's C3, C4, C5 (inputs) and the dilated trunk's C5 (target),
  computed once, without gradients, into a :class:`Features` bank;
* :func:`kept_mask` and :func:`offset_errors` -- the positions of the stride-8 grid that the stride-32
  grid samples (``y_s = R(R(y_d))``: one in 16), and the check of which offset they are;
* :class:`Standardizer` -- per-channel standardisation with the train images' statistics;
* :func:`build_regressor` and :func:`train_regressor` -- reference: bilinear, FPN or JPU
  (:func:`fastfcn.models.build_upsampler`) and a 1x1 projection to ``y_d``'s channels, trained by MSE
  with the same budget for all;
* :func:`approximation_errors` -- reference: relative error and cosine similarity, overall and on
  kept/other positions;
* :func:`head_logits` and :func:`frozen_head_scores` -- the dilated model's trained head, frozen, fed
  with an approximation (or with the real ``y_d``, which must reproduce the model's own output).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..data.base import IGNORE_INDEX
from ..models import FastFCN, build_upsampler
from ..models.resnet import ResNet, build_resnet
from .kept_positions import RATE, aligned_upsample, kept_mask, offset_errors

__all__ = ["RATE", "MODULES", "LR", "Features", "Standardizer", "Regressor", "CenterCrop", "backbone_pair",
           "random_backbone_pair", "image_set", "extract_features", "kept_mask", "offset_errors", "aligned_upsample",
           "build_regressor", "train_regressor", "predict", "approximation_errors", "module_cost", "head_logits",
           "frozen_head_scores", "rows_for"]

MODULES = ("bilinear", "fpn", "jpu")
LR = 2e-3  # Adam, cosine-decayed to zero: one recipe for every module (no per-module tuning)


# ------------------------------------------------------------------------------------------------
# the two trunks and their features


def _copy_trunk(state: dict[str, Tensor], name: str, output_stride: int) -> ResNet:
    trunk = build_resnet(name, output_stride=output_stride)
    trunk.load_state_dict(state)
    return trunk.eval()


def backbone_pair(model: FastFCN) -> tuple[ResNet, ResNet]:
    """``(dilated, plain)`` trunks, both with ``model``'s backbone weights, in eval mode (BN uses running stats).

    The reference chapter 9's visible ``trunk_pair`` is checked against. ``model`` is normally a dilated (``upsampling="none"``) network; the plain trunk is the same network
    with the strides of layer3 and layer4 put back and the dilations removed.
    """
    name = model.config["backbone"]
    state = {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}
    return _copy_trunk(state, name, 8), _copy_trunk(state, name, 32)


def random_backbone_pair(name: str, seed: int = 0) -> tuple[ResNet, ResNet]:
    """The control: ``(dilated, plain)`` trunks of the same architecture with one random initialisation.

    The reference for chapter 9's random pair (``torch.manual_seed(seed)``, then a plain trunk's weights).
    BatchNorm keeps its initial running statistics (mean 0, variance 1) and is used in eval mode, so both
    trunks compute fixed functions, as the trained pair does.
    """
    torch.manual_seed(seed)
    state = build_resnet(name, output_stride=32).state_dict()
    return _copy_trunk(state, name, 8), _copy_trunk(state, name, 32)


@dataclass
class Features:
    """A bank of features of ``n`` images: the plain trunk's C3, C4, C5, the dilated C5 ``y_d``, the labels."""

    c3: Tensor
    c4: Tensor
    c5: Tensor
    y_d: Tensor
    masks: Tensor
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.y_d.shape[0]

    def inputs(self, index: Tensor | slice | None = None) -> tuple[Tensor, Tensor, Tensor]:
        sel = slice(None) if index is None else index
        return self.c3[sel], self.c4[sel], self.c5[sel]

    def channels(self) -> tuple[int, int, int]:
        return self.c3.shape[1], self.c4.shape[1], self.c5.shape[1]

    def first(self, n: int) -> Features:
        """The bank of the first ``n`` images (views, not copies)."""
        return replace(self, c3=self.c3[:n], c4=self.c4[:n], c5=self.c5[:n], y_d=self.y_d[:n], masks=self.masks[:n])


class CenterCrop:
    """A fixed-size evaluation crop for datasets whose images differ in size (Pascal Context, in ``full``).

    ``base`` (e.g. :class:`fastfcn.data.EvalTransform`) runs first; the crop is taken from the centre,
    and an image smaller than ``size`` is padded with zeros (the mean, after normalisation) and its
    mask with the ignore label.
    """

    def __init__(self, size: int, base: Any) -> None:
        self.size, self.base = int(size), base

    def __repr__(self) -> str:
        return f"CenterCrop({self.size}, {self.base!r})"

    def __call__(self, image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        image, mask = self.base(image, mask)
        h, w = mask.shape[-2:]
        ph, pw = max(self.size - h, 0), max(self.size - w, 0)
        if ph or pw:
            image = F.pad(image, (0, pw, 0, ph))
            mask = F.pad(mask, (0, pw, 0, ph), value=IGNORE_INDEX)
        h, w = mask.shape[-2:]
        top, left = (h - self.size) // 2, (w - self.size) // 2
        return (image[..., top:top + self.size, left:left + self.size],
                mask[..., top:top + self.size, left:left + self.size])


def image_set(config: Any, split: str, n: int, size: int) -> Any:
    """The first ``n`` images of ``split`` from the dataset ``config`` (a ``TrainConfig``) trained on, normalised.

    The procedural scenes are drawn at ``size``, once, into a list of ``(image, mask)`` pairs: both trunk
    pairs read every image, and drawing a scene costs more than a small trunk's forward pass. A real
    dataset (Pascal Context in ``full``) is read from disk on each access (its crops would hold
    hundreds of megabytes), cropped to ``size`` at the centre (:class:`CenterCrop`), so that the
    features of all images stack.
    """
    from torch.utils.data import Subset

    from ..data import EvalTransform, build_dataset

    if config.dataset == "procedural":
        scenes = build_dataset("procedural", split, image_size=size, num_images=n, transform=EvalTransform())
        return [scenes[i] for i in range(len(scenes))]
    full = build_dataset(config.dataset, split, root=config.root, transform=CenterCrop(size, EvalTransform()))
    return Subset(full, range(min(n, len(full))))


@torch.no_grad()
def extract_features(dilated: ResNet, plain: ResNet, dataset: Any, n: int, *, batch_size: int = 8,
                     device: str = "cpu") -> Features:
    """Run both frozen trunks once over the first ``n`` images of ``dataset`` (normalised, equal sizes).

    The inputs (C3, C4, C5) come from the plain trunk and the target from the dilated trunk, each
    computed by its own network: the exact relation between them is measured, not assumed.
    ``extra["c3_max_abs_diff"]``: the largest difference between the two trunks' C3 (Conv1 to Conv3
    are the same layers in both, so it must be 0 up to float rounding).
    """
    if n < 1 or n > len(dataset):
        raise ValueError(f"need 1 <= n <= {len(dataset)} images, got {n}")
    dilated, plain = dilated.to(device).eval(), plain.to(device).eval()
    parts: dict[str, list[Tensor]] = {k: [] for k in ("c3", "c4", "c5", "y_d", "masks")}
    c3_diff = 0.0
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(start + batch_size, n))]
        x = torch.stack([im for im, _ in items]).to(device)
        _, c3, c4, c5 = plain(x)
        _, d3, _, y_d = dilated(x)
        c3_diff = max(c3_diff, float((c3 - d3).abs().max()))
        for key, t in (("c3", c3), ("c4", c4), ("c5", c5), ("y_d", y_d)):
            parts[key].append(t)
        parts["masks"].append(torch.stack([m for _, m in items]).to(device))
    return Features(*(torch.cat(parts[k]) for k in ("c3", "c4", "c5", "y_d", "masks")),
                    extra={"c3_max_abs_diff": c3_diff})


# ------------------------------------------------------------------------------------------------
# standardisation


@dataclass
class Standardizer:
    """Per-channel mean and standard deviation of each feature, over the images and positions of a bank.

    Every input is standardised with its own statistics and the target with ``y_d``'s, so that the loss
    weighs all channels alike and "predict each channel's mean" scores a relative error of about 1 (exactly 1
    on the images the statistics come from). A channel's spread is floored at a tenth of the mean spread.
    """

    mean: dict[str, Tensor]
    std: dict[str, Tensor]

    @classmethod
    def fit(cls, bank: Features) -> Standardizer:
        mean, std = {}, {}
        for key in ("c3", "c4", "c5", "y_d"):
            t = getattr(bank, key).double()
            mean[key] = t.mean(dim=(0, 2, 3), keepdim=True).float()
            sd = t.std(dim=(0, 2, 3), keepdim=True)
            # a channel (nearly) dead on the train images is scaled as one with a tenth of the typical spread:
            # dividing by its own tiny spread would blow up whatever it does on other images
            std[key] = sd.clamp_min(0.1 * float(sd.mean())).clamp_min(1e-12).float()
        return cls(mean, std)

    def apply(self, bank: Features) -> Features:
        """A standardised copy of ``bank`` (the labels are shared)."""
        z = {key: (getattr(bank, key) - self.mean[key]) / self.std[key] for key in ("c3", "c4", "c5", "y_d")}
        return replace(bank, **z)

    def target(self, y_d: Tensor) -> Tensor:
        return (y_d - self.mean["y_d"]) / self.std["y_d"]

    def restore(self, z: Tensor) -> Tensor:
        """From the standardised target space back to ``y_d``'s (what the head reads)."""
        return z * self.std["y_d"] + self.mean["y_d"]


# ------------------------------------------------------------------------------------------------
# the modules and their training


class Regressor(nn.Module):
    """An upsampling module (C3, C4, C5 -> output stride 8) followed by a 1x1 projection to ``y_d``'s channels.

    The reference of chapter 9's visible ``Regressor`` (the same parameter names, so the same initialisation).
    """

    def __init__(self, upsample: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.upsample = upsample
        self.project = nn.Conv2d(upsample.out_channels, out_channels, 1)  # with bias: the target is centred

    def forward(self, c3: Tensor, c4: Tensor, c5: Tensor) -> Tensor:
        return self.project(self.upsample(c3, c4, c5))


def build_regressor(kind: str, in_channels: Sequence[int], out_channels: int, width: int) -> Regressor:
    """``"bilinear"`` (C5 resized, no parameters before the projection), ``"fpn"`` or ``"jpu"`` at ``width``.

    The modules are the package's own (:func:`fastfcn.models.build_upsampler`); ``"none"`` (no module) has
    nothing to regress with and is refused with the unknown names.
    """
    if kind not in MODULES:
        raise ValueError(f"unknown module {kind!r}; choose one of {', '.join(MODULES)}")
    c3, c4, c5 = in_channels
    return Regressor(build_upsampler(kind, (c3, c4, c5), width), out_channels)


@torch.no_grad()
def predict(regressor: nn.Module, bank: Features, batch_size: int = 16) -> Tensor:
    """The regressor's output (eval mode) for every image of a standardised bank."""
    was = regressor.training
    regressor.eval()
    try:
        return torch.cat([regressor(*bank.inputs(slice(s, s + batch_size))) for s in range(0, len(bank), batch_size)])
    finally:
        regressor.train(was)


def approximation_errors(pred: Tensor, target: Tensor, kept: Tensor | None = None) -> dict[str, float]:
    """How close ``pred`` is to ``target`` (both ``[N, C, H, W]``, standardised).

    The reference of chapter 9's visible ``approximation_errors``.
    ``rel_error`` = ||pred - target|| / ||target|| over everything; ``cosine``: the cosine between the
    predicted and the true feature vector at each position, averaged over positions. With ``kept`` (a
    ``[H, W]`` bool mask) also the relative error on the kept positions and on the others.
    """
    diff = (pred - target).double()
    tgt = target.double()
    out = {"rel_error": float(diff.norm() / tgt.norm().clamp_min(1e-12)),
           "cosine": float(F.cosine_similarity(pred.double(), tgt, dim=1, eps=1e-12).mean())}
    if kept is not None:
        for name, where in (("kept", kept), ("other", ~kept)):
            d, t = diff[..., where], tgt[..., where]
            out[f"rel_error_{name}"] = float(d.norm() / t.norm().clamp_min(1e-12))
    return out


def _eval_points(iterations: int, count: int) -> list[int]:
    """``count`` iterations from 0 to ``iterations`` where the validation error is measured (both ends included)."""
    count = max(2, min(count, iterations + 1))
    return sorted({round(k * iterations / (count - 1)) for k in range(count)})


def train_regressor(regressor: Regressor, train: Features, val: Features, *, iterations: int, batch_size: int,
                    lr: float = LR, seed: int = 0, eval_points: int = 8, kept: Tensor | None = None
                    ) -> list[dict[str, float]]:
    """Fit ``regressor`` to the standardised ``train.y_d`` by MSE; returns the validation history.

    The reference chapter 9's visible ``fit`` is checked against (same inputs and seed: same history).
    Adam with a cosine decay of the learning rate to zero, mini-batches of ``batch_size`` images drawn
    with replacement (a fixed seed: every module sees the same batches). At ``eval_points`` iterations
    (0 and the last included) the errors of :func:`approximation_errors` on ``val`` are recorded, with
    the mean training loss since the previous point.
    """
    if iterations < 1 or batch_size < 1:
        raise ValueError(f"need iterations >= 1 and batch_size >= 1, got {iterations}, {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(regressor.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / iterations)))
    points = set(_eval_points(iterations, eval_points))
    history: list[dict[str, float]] = []
    losses: list[float] = []
    regressor.train()
    for it in range(iterations + 1):
        if it in points:
            row = {"iteration": it, **approximation_errors(predict(regressor, val), val.y_d, kept)}
            row["train_loss"] = sum(losses) / len(losses) if losses else float("nan")
            history.append(row)
            losses = []
        if it == iterations:
            break
        idx = torch.randint(len(train), (batch_size,), generator=gen).to(train.y_d.device)
        loss = F.mse_loss(regressor(*train.inputs(idx)), train.y_d[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    regressor.eval()
    return history


def module_cost(module: nn.Module, bank: Features) -> dict[str, float]:
    """Parameters and GMACs (multiply-adds / 1e9) of one forward pass on one image of ``bank``."""
    was = module.training
    module.eval()
    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.no_grad():
            module(*bank.inputs(slice(0, 1)))
    finally:
        module.train(was)
    return {"params": sum(p.numel() for p in module.parameters()), "gmacs": counter.get_total_flops() / 2e9}


# ------------------------------------------------------------------------------------------------
# the frozen head


@torch.no_grad()
def head_logits(model: FastFCN, high_res: Tensor, size: Sequence[int]) -> Tensor:
    """The main output of ``model``'s head on the output-stride-8 map ``high_res``, resized to ``size``.

    The very operations of ``FastFCN.forward`` after the backbone (the auxiliary head reads C4 and only
    feeds the training loss, so it is left out): with the real ``y_d`` this is the model's own output.
    """
    out = model.head(high_res)  # a tensor of logits (EncNet without its SE output)
    return F.interpolate(out, tuple(size), mode="bilinear", align_corners=True)


@torch.no_grad()
def frozen_head_scores(model: FastFCN, maps: Tensor, masks: Tensor, num_classes: int, *, batch_size: int = 8,
                       reference: Tensor | None = None) -> dict[str, Any]:
    """mIoU and pixel accuracy of the frozen head fed with ``maps`` (``y_d``'s space, not standardised).

    Returns ``{"mIoU", "pixAcc", "labels"}``; with ``reference`` (labels, e.g. the real ``y_d``'s) also
    ``"agreement"``: the share of pixels labelled as in the reference.
    """
    from ..inference.metrics import confusion_matrix, scores

    model.eval()
    size = masks.shape[-2:]
    labels = torch.cat([head_logits(model, maps[s:s + batch_size], size).argmax(1)
                        for s in range(0, maps.shape[0], batch_size)])
    cm = confusion_matrix(labels, masks, num_classes)
    s = scores(cm)
    out: dict[str, Any] = {"mIoU": s["mIoU"], "pixAcc": s["pixAcc"], "labels": labels}
    if reference is not None:
        out["agreement"] = float((labels == reference).double().mean())
    return out


def rows_for(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded rows: only the documented keys, in a fixed order (what other chapters read)."""
    keys = ("module", "rel_error", "cosine", "rel_error_kept", "rel_error_other", "miou_frozen", "params", "gmacs")
    return [{k: r.get(k) for k in keys} for r in results]
