"""Joint upsampling by optimisation (Eq. 1 and Eq. 4 of the paper): chapter 4's data, plumbing and reference.

Joint upsampling: a transformation ``f`` is known only through a low-resolution pair
``(x_l, y_l = f(x_l))``. Fit a cheap ``h`` from a family ``H`` to that pair (Eq. 1),

    h_hat = argmin_{h in H} || y_l - h(x_l) ||,

and apply it to the high-resolution guidance: ``y_h ~ h_hat(x_h)``. Chapter 4 writes the method
itself in its visible cells (the descent loop, the end-to-end Eq. 1, the ``S -> h -> M`` of Eq. 4);
this module holds what the chapter only uses, small enough to run on a CPU in seconds:

* the worked example's data: :func:`synthetic_guidance` draws a procedural guidance image with
  sharp edges, :func:`random_target` a frozen random per-pixel (or local) network playing ``f``;
* plumbing: :class:`PixelNet` and :func:`make_family` (an untrained ``h`` from one of the
  :data:`FAMILIES`), :func:`downsample`, the plain baseline :func:`interpolate`, :func:`psnr`,
  :class:`FitResult`, and :func:`show` for the chapter's figures;
* the reference implementations that the chapter checks its own code against (same inputs, same
  seed, same result), and that the exercises call: :func:`fit` (the gradient descent of Eq. 1),
  :func:`joint_upsample` (all of Eq. 1 in one call) and :func:`apply_to_groups` (a function applied
  to the interleaved sub-maps of a feature map, as Eq. 2 and Eq. 4 write a dilated convolution).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import merge, split

__all__ = ["FAMILIES", "FitResult", "PixelNet", "apply_to_groups", "downsample", "fit", "interpolate", "joint_upsample",
           "make_family", "mse", "psnr", "random_target", "show", "synthetic_guidance"]

FAMILIES = ("linear", "mlp", "local")


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def synthetic_guidance(size: int, seed: int = 0, num_shapes: int = 40) -> Tensor:
    """A procedural RGB guidance image ``(1, 3, size, size)`` in ``[0, 1]``.

    A smooth colour gradient under many overlapping discs and rectangles of random colours
    (sharp edges at all orientations), a checkerboard patch and a patch of fine diagonal stripes
    (detail that interpolation cannot bring back). Geometry is relative to ``size``, so the same
    seed draws the same scene at any resolution.
    """
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    g = _generator(seed)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    c0, c1 = torch.rand(3, generator=g), torch.rand(3, generator=g)
    img = c0[:, None, None] * (1 - xx) * 0.7 + c1[:, None, None] * yy * 0.7 + 0.15
    for k in range(num_shapes):
        colour = torch.rand(3, generator=g)[:, None, None]
        cx, cy = torch.rand(2, generator=g).tolist()
        r = 0.02 + 0.1 * torch.rand(1, generator=g).item()
        if k % 2 == 0:
            mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
        else:
            mask = ((xx - cx).abs() < r) & ((yy - cy).abs() < 0.5 * r)
        img = torch.where(mask, colour, img)
    checker = ((xx * 16).floor() + (yy * 16).floor()) % 2
    patch = (xx > 0.05) & (xx < 0.3) & (yy > 0.7) & (yy < 0.95)
    img = torch.where(patch, torch.stack([checker, 1 - checker, 0.5 + 0 * checker]), img)
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * (xx + yy) * 24)
    patch = (xx > 0.65) & (xx < 0.95) & (yy > 0.65) & (yy < 0.95)
    img = torch.where(patch, torch.stack([stripes, 0.3 + 0 * stripes, 1 - stripes]), img)
    return img.clamp(0, 1).unsqueeze(0)


class PixelNet(nn.Module):
    """A perceptron applied at every pixel to its colour, or to its ``k x k`` neighbourhood.

    Equivalent to a stack of convolutions (the first ``kernel_size x kernel_size``, the others
    1x1) with ``tanh`` in between, but implemented with ``nn.Linear`` on a channels-last view,
    which is many times faster on a CPU for so few channels. Borders are padded by replication
    (``padding_mode="replicate"``) or with zeros (``"zeros"``, like ``nn.Conv2d``).

    Inputs and outputs pass through fixed per-channel affine maps (buffers, identity by default);
    :meth:`standardize` sets them from data so that the trainable layers see zero-mean,
    unit-variance values, which makes gradient descent converge in far fewer steps.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: tuple[int, ...] = (),
                 kernel_size: int = 1, out_activation: nn.Module | None = None,
                 padding_mode: str = "replicate") -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")
        if padding_mode not in ("replicate", "zeros"):
            raise ValueError(f"padding_mode must be 'replicate' or 'zeros', got {padding_mode!r}")
        self.kernel_size = kernel_size
        self.padding_mode = padding_mode
        widths = [in_channels * kernel_size**2, *hidden, out_channels]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.Tanh())
        if out_activation is not None:
            layers.append(out_activation)
        self.body = nn.Sequential(*layers)
        self.register_buffer("in_mean", torch.zeros(in_channels, 1, 1))
        self.register_buffer("in_std", torch.ones(in_channels, 1, 1))
        self.register_buffer("out_mean", torch.zeros(out_channels, 1, 1))
        self.register_buffer("out_std", torch.ones(out_channels, 1, 1))

    @torch.no_grad()
    def standardize(self, x: Tensor, y: Tensor | None = None) -> PixelNet:
        """Normalise inputs (and outputs, given targets ``y``) with their per-channel statistics."""
        self.in_mean.copy_(x.mean((0, 2, 3))[:, None, None])
        self.in_std.copy_(x.std((0, 2, 3))[:, None, None].clamp_min(1e-6))
        if y is not None:
            self.out_mean.copy_(y.mean((0, 2, 3))[:, None, None])
            self.out_std.copy_(y.std((0, 2, 3))[:, None, None].clamp_min(1e-6))
        return self

    def forward(self, x: Tensor) -> Tensor:
        x = (x - self.in_mean) / self.in_std
        n, _, h, w = x.shape
        k = self.kernel_size
        if k > 1 and self.padding_mode == "zeros":
            x = F.unfold(x, k, padding=k // 2)  # N x (C k k) x (H W)
        elif k > 1:
            x = F.unfold(F.pad(x, [k // 2] * 4, mode="replicate"), k)
        else:
            x = x.flatten(2)
        y = self.body(x.transpose(1, 2))  # N x (H W) x C_out
        return y.transpose(1, 2).reshape(n, -1, h, w) * self.out_std + self.out_mean


def random_target(in_channels: int = 3, out_channels: int = 3, hidden: tuple[int, ...] = (16, 16),
                  kernel_size: int = 1, gain: float = 2.0, seed: int = 0, padding_mode: str = "replicate",
                  out_activation: nn.Module | None = None) -> PixelNet:
    """The "expensive" transformation ``f``: a frozen random network, by default with a sigmoid
    at the end (outputs in ``(0, 1)``, displayable as an image).

    ``kernel_size=1`` makes ``f`` per-pixel (a perceptron on each pixel's colour, the paper's
    example of an MLP); a larger kernel makes it depend on a neighbourhood, whose size is counted
    in pixels and so covers a different part of the scene at low and at high resolution.
    ``gain`` scales the random weights: the larger, the more non-linear ``f`` is.
    """
    out_activation = nn.Sigmoid() if out_activation is None else out_activation
    f = PixelNet(in_channels, out_channels, hidden, kernel_size, out_activation, padding_mode)
    g = _generator(seed)
    with torch.no_grad():
        for m in f.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * gain / math.sqrt(m.in_features))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.5)
    return f.requires_grad_(False).eval()


def make_family(name: str, in_channels: int = 3, out_channels: int = 3, hidden: int = 32,
                seed: int = 0) -> PixelNet:
    """An untrained member of a family ``H`` for Eq. 1.

    * ``"linear"``: per-pixel affine map (a 1x1 convolution), ``in*out + out`` parameters;
    * ``"mlp"``: per-pixel two-layer perceptron (1x1 conv -> tanh -> 1x1 conv);
    * ``"local"``: like ``"mlp"`` but the first layer reads the 3x3 neighbourhood.
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; choose one of {', '.join(FAMILIES)}")
    torch.manual_seed(seed)
    if name == "linear":
        return PixelNet(in_channels, out_channels)
    return PixelNet(in_channels, out_channels, (hidden,), kernel_size=1 if name == "mlp" else 3)


def downsample(x: Tensor, factor: int) -> Tensor:
    """Average ``factor x factor`` blocks (area downsampling); the size must be divisible."""
    if factor < 1 or x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"size {tuple(x.shape[-2:])} is not divisible by factor {factor}")
    return F.avg_pool2d(x, factor)


def interpolate(y: Tensor, size: int | tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Plain upsampling of ``y`` (pixel-centre aligned, matching :func:`downsample`)."""
    if mode not in ("nearest", "bilinear", "bicubic"):
        raise ValueError(f"mode must be nearest, bilinear or bicubic, got {mode!r}")
    if mode == "nearest":
        return F.interpolate(y, size, mode=mode)
    return F.interpolate(y, size, mode=mode, align_corners=False)


def mse(a: Tensor, b: Tensor) -> float:
    return F.mse_loss(a, b).item()


def psnr(estimate: Tensor, truth: Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(range^2 / MSE)``."""
    err = mse(estimate, truth)
    return float("inf") if err == 0 else 10 * math.log10(data_range**2 / err)


@dataclass
class FitResult:
    model: nn.Module
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(len(self.losses), 1)


def fit(h: nn.Module, x_l: Tensor, y_l: Tensor, steps: int, lr: float = 0.1) -> FitResult:
    """Eq. 1 by gradient descent: minimise ``mean (y_l - h(x_l))^2`` over the parameters of ``h``.

    Full-batch Adam with a cosine-decaying step size; ``losses[i]`` is the loss before step ``i``
    (so ``losses[0]`` is the untrained loss). ``h`` is trained in place and returned.

    Reference implementation: chapter 4 writes this loop in view (``solve_by_descent``) and checks
    that it gives the same loss curve; keep the two in step.
    """
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    opt = torch.optim.Adam(h.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    losses = []
    start = time.perf_counter()
    for _ in range(steps):
        loss = F.mse_loss(h(x_l), y_l)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    return FitResult(h.eval(), losses, seconds)


def joint_upsample(x_l: Tensor, y_l: Tensor, x_h: Tensor, family: str = "mlp", steps: int = 300,
                   lr: float = 0.1, hidden: int = 32, seed: int = 0) -> tuple[Tensor, FitResult]:
    """Eq. 1 end to end: fit ``h`` in ``family`` on ``(x_l, y_l)``, return ``h(x_h)`` and the fit.

    ``h`` is standardised with the statistics of ``(x_l, y_l)`` first (see :class:`PixelNet`).

    Reference implementation: chapter 4's visible ``teaching_joint_upsample`` must return the same
    ``h(x_h)`` and loss curve on the same inputs and seed (the chapter asserts it).
    """
    h = make_family(family, x_l.shape[1], y_l.shape[1], hidden=hidden, seed=seed).to(x_l.device)
    h.standardize(x_l, y_l)
    result = fit(h, x_l, y_l, steps, lr)
    with torch.no_grad():
        return result.model(x_h), result


def apply_to_groups(fn, y: Tensor, rate: int = 2) -> Tensor:
    """``y -> S -> fn -> M``: apply ``fn`` to each of the interleaved sub-maps of ``y`` separately.

    With a 'same'-padded regular convolution as ``fn`` this equals the dilated convolution of
    rate ``rate`` (Eq. 2); with a fitted ``h`` it is the joint-upsampling answer of Eq. 4.

    Reference implementation: chapter 4's visible ``teaching_apply_to_groups`` is checked against it.
    """
    return merge([fn(g) for g in split(y, rate)], rate)


def show(ax, img: Tensor, title: str, channel: int | None = None, fontsize: float = 9, **kw) -> None:
    """Draw a ``(1, C, H, W)`` tensor on a matplotlib axis: RGB when ``channel`` is None, else that one
    channel (``kw`` go to ``imshow``, e.g. ``cmap``, ``vmin``, ``vmax``); ``fontsize`` of the title (wide
    grids of panels are shrunk on the page: give them a larger one)."""
    img = img.detach().float().cpu()[0]
    if channel is not None:
        ax.imshow(img[channel], **kw)
    else:
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=fontsize)
    ax.set_axis_off()
