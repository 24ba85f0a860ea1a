"""EncNet's Context Encoding Module (Zhang et al., 2018) as used by FastFCN.

The Encoding layer learns ``K`` codewords ``c_k`` and smoothing factors ``s_k``. For every
feature ``x_i`` (one per pixel) it forms soft assignments
``a_ik = softmax_k(s_k ||x_i - c_k||^2)`` and aggregates residuals
``e_k = sum_i a_ik (x_i - c_k)``. After BN over the codewords, ReLU and a mean over ``k``, the
encoded vector drives a channel attention (``x * (1 + sigmoid(W e))``) and, with SE-loss, a
classifier that predicts which classes are present in the image.
"""

from __future__ import annotations

from typing import Literal, overload

import torch
from torch import Tensor, nn

from ..blocks import conv_bn_relu

__all__ = ["Encoding", "EncModule", "EncHead"]


class Encoding(nn.Module):
    """EncNet's Encoding layer: ``K`` learned codewords and smoothing factors; a ``(B, D, H, W)`` map becomes the
    ``(B, K, D)`` residuals ``e_k = sum_i a_ik (x_i - c_k)``, aggregated with soft assignments ``a_ik`` (see the
    module's docstring). A global, orderless description of the image: the "context" of the paper's Section 3.2."""

    def __init__(self, channels: int, num_codes: int) -> None:
        super().__init__()
        self.channels, self.num_codes = channels, num_codes
        self.codewords = nn.Parameter(torch.empty(num_codes, channels))
        self.scale = nn.Parameter(torch.empty(num_codes))
        bound = 1.0 / (num_codes * channels) ** 0.5
        nn.init.uniform_(self.codewords, -bound, bound)
        nn.init.uniform_(self.scale, -1.0, 0.0)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, D, H, W)`` or ``(B, D, N)`` -> encoded residuals ``(B, K, D)``."""
        if x.dim() not in (3, 4) or x.shape[1] != self.channels:
            raise ValueError(f"Encoding expects (B, {self.channels}, ...) features, got {tuple(x.shape)}")
        feats = x.flatten(2).transpose(1, 2)  # B x N x D
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2: avoids materialising a B x N x K x D tensor
        dist = (feats.pow(2).sum(-1, keepdim=True) - 2 * feats @ self.codewords.t()
                + self.codewords.pow(2).sum(-1))
        assign = torch.softmax(dist * self.scale, dim=2)  # B x N x K
        return assign.transpose(1, 2) @ feats - assign.sum(1).unsqueeze(-1) * self.codewords

    def extra_repr(self) -> str:
        return f"N x {self.channels} => {self.num_codes} x {self.channels}"


class EncModule(nn.Module):
    """EncNet's Context Encoding Module: 1x1 conv-BN-ReLU -> Encoding -> BN over the codewords -> ReLU -> mean
    over the codewords gives the encoded vector ``e`` (B, D); ``e`` re-weights the input's channels,
    ``x * (1 + sigmoid(W e))`` then ReLU, and (with ``se_loss``) feeds the SE classifier, which predicts from
    ``e`` which classes the image contains."""

    def __init__(self, channels: int, num_classes: int, num_codes: int = 32, se_loss: bool = True) -> None:
        super().__init__()
        self.conv = conv_bn_relu(channels, channels, kernel_size=1)
        self.encoding = Encoding(channels, num_codes)
        # BN over the codeword axis of the B x K x D encoding
        self.codeword_bn = nn.BatchNorm1d(num_codes)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(channels, channels)
        self.se_classifier = nn.Linear(channels, num_classes) if se_loss else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(re-weighted features (B, D, H, W), encoded vector e (B, D))``; :meth:`se_logits` reads ``e``."""
        encoded = self.relu(self.codeword_bn(self.encoding(self.conv(x)))).mean(dim=1)  # B x D
        gamma = torch.sigmoid(self.fc(encoded))
        return torch.relu(x + x * gamma[:, :, None, None]), encoded

    def se_logits(self, encoded: Tensor) -> Tensor:
        """Per-image class-presence logits ``(B, num_classes)`` from the encoded vector (the SE-loss branch)."""
        if self.se_classifier is None:
            raise RuntimeError("this EncModule was built with se_loss=False: it has no SE classifier")
        return self.se_classifier(encoded)


class EncHead(nn.Module):
    """EncNet's head, FastFCN's main head (Section 3.2, Table 1): first conv (1x1 after JPU, 3x3 otherwise) to
    512 -> Context Encoding -> dropout -> 1x1 classifier.

    ``forward(x)`` returns the segmentation logits; ``forward(x, with_se=True)`` returns ``(logits, se)``, the
    SE branch's class-presence logits computed from the same pass (the training loss reads them), and needs a
    head built with ``se_loss=True`` (:attr:`has_se`).
    """

    def __init__(self, in_channels: int, num_classes: int, se_loss: bool = True, after_jpu: bool = True,
                 width: int = 512, num_codes: int = 32) -> None:
        super().__init__()
        self.conv = conv_bn_relu(in_channels, width, kernel_size=1 if after_jpu else 3)
        self.context = EncModule(width, num_classes, num_codes, se_loss)
        self.classifier = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(width, num_classes, 1))

    @property
    def has_se(self) -> bool:
        """Whether the head has the SE-loss branch (``forward(x, with_se=True)`` works)."""
        return self.context.se_classifier is not None

    @overload
    def forward(self, x: Tensor, with_se: Literal[False] = False) -> Tensor: ...

    @overload
    def forward(self, x: Tensor, with_se: Literal[True]) -> tuple[Tensor, Tensor]: ...

    def forward(self, x: Tensor, with_se: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        feat, encoded = self.context(self.conv(x))
        logits = self.classifier(feat)
        return (logits, self.context.se_logits(encoded)) if with_se else logits
