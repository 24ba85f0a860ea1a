"""Fold inference-mode BatchNorm into the convolution before it: the same function, one pass fewer.

In eval mode ``bn(conv(x)) = s * (W * x + b - mean) + beta`` with ``s = gamma / sqrt(var + eps)``
per output channel, which is the convolution with weights ``s * W`` and bias
``s * (b - mean) + beta``. On a CPU, where BatchNorm is a separate pass over memory after every
convolution, folding saves that pass; the result differs only by float rounding.

Which BatchNorm follows which convolution is found by running the model once: a BatchNorm whose
input is the very tensor a ``Conv2d`` returned, when no other operation reads that tensor, is
folded. The folded copy is then checked against the original on the same input.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.overrides import TorchFunctionMode

from ..utils.device import exact_fp32

__all__ = ["fold_batchnorm", "fold_conv_bn"]


def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new ``Conv2d`` equal to ``bn(conv(x))`` with ``bn`` in eval mode (PyTorch's
    ``fuse_conv_bn_eval`` does the arithmetic; the checks make its failures readable)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics (track_running_stats=False)")
    if conv.out_channels != bn.num_features:
        raise ValueError(f"conv has {conv.out_channels} output channels but the BatchNorm {bn.num_features}")
    modes = conv.training, bn.training
    conv.eval(), bn.eval()  # fuse_conv_bn_eval asks for eval mode; the running statistics are used either way
    try:
        return fuse_conv_bn_eval(conv, bn)
    finally:
        conv.train(modes[0]), bn.train(modes[1])


class _CountUses(TorchFunctionMode):
    """Counts, per tensor id, the torch functions and tensor methods outside BatchNorm that read it."""

    def __init__(self, watched: dict[int, str]) -> None:
        super().__init__()
        self.watched = watched
        self.uses: dict[int, int] = {}
        self.inside_bn = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        for a in (*args, *(kwargs or {}).values()):
            if not self.inside_bn and isinstance(a, Tensor) and id(a) in self.watched:
                self.uses[id(a)] = self.uses.get(id(a), 0) + 1
        return func(*args, **(kwargs or {}))


def _pairs(model: nn.Module, example: Tensor) -> list[tuple[str, str]]:
    """(conv name, bn name) for each BatchNorm2d that is the only user of a Conv2d's output."""
    names = {m: n for n, m in model.named_modules()}
    produced: dict[int, str] = {}      # id(conv output) -> conv name
    bn_input: dict[int, str] = {}      # id(conv output) -> the BatchNorm it was given to
    keep: list[Tensor] = []            # keep outputs alive so that their ids stay unique during the run
    hooks = []

    def bn_pre_hook(module: nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], Tensor) and id(args[0]) in produced:
            bn_input[id(args[0])] = names[module]
        counter.inside_bn += 1

    def bn_hook(module: nn.Module, args: tuple, output: Tensor) -> None:
        counter.inside_bn -= 1

    def conv_hook(module: nn.Module, args: tuple, output: Tensor) -> None:
        produced[id(output)] = names[module]
        keep.append(output)

    counter = _CountUses(produced)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            hooks.append(module.register_forward_pre_hook(bn_pre_hook))
            hooks.append(module.register_forward_hook(bn_hook))
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
    try:
        with torch.no_grad(), counter:
            model(example)
    finally:
        for h in hooks:
            h.remove()
    # any read outside the BatchNorm (a residual add, a second branch) needs the unnormalised output
    return [(produced[t], bn) for t, bn in bn_input.items() if counter.uses.get(t, 0) == 0]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


def fold_batchnorm(model: nn.Module, example: Tensor, rtol: float = 1e-3) -> tuple[nn.Module, int]:
    """An eval-mode copy of ``model`` with every Conv2d -> BatchNorm2d pair folded into one Conv2d.

    ``example``: an input the model accepts (it is run twice: to find the pairs, and to check the
    folded copy, whose outputs must match the original's to ``rtol`` of their largest magnitude).
    Returns the copy and the number of BatchNorms folded. A BatchNorm that is called twice, whose
    input is not a convolution's output, or whose convolution's output is also read elsewhere,
    stays as it is.
    """
    folded = copy.deepcopy(model).eval()
    pairs = _pairs(folded, example)
    bn_uses: dict[str, int] = {}
    for _, bn_name in pairs:
        bn_uses[bn_name] = bn_uses.get(bn_name, 0) + 1
    done = 0
    for conv_name, bn_name in pairs:
        conv, bn = folded.get_submodule(conv_name), folded.get_submodule(bn_name)
        if bn_uses[bn_name] > 1 or type(conv) is not nn.Conv2d or not isinstance(bn, nn.BatchNorm2d):
            continue
        _set(folded, conv_name, fold_conv_bn(conv, bn))
        _set(folded, bn_name, nn.Identity())
        done += 1
    model_was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), exact_fp32():  # TF32 on a GPU would hide or fake a difference
            want, got = model(example), folded(example)
    finally:
        model.train(model_was_training)
    want = want if isinstance(want, dict) else {"out": want}
    got = got if isinstance(got, dict) else {"out": got}
    for key, ref in want.items():
        if ref is None:
            continue
        err = float((got[key].float() - ref.float()).abs().max())
        scale = float(ref.float().abs().max()) or 1.0
        if err > rtol * scale:
            raise RuntimeError(f"folding BatchNorm changed output {key!r} by {err:.3g} (largest value {scale:.3g}); "
                               "a folded convolution's output must be used elsewhere too")
    return folded, done
