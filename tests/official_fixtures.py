"""Deterministic stand-ins for official FastFCN checkpoints, and the reference fixtures that go with them.

``tests/fixtures/official/<name>.json`` lists the key names and shapes of one official model's
``state_dict`` (in the official order, ``pretrained.fc.*`` and ``num_batches_tracked`` included) and
``<name>.pt`` holds that model's eval-mode outputs for :func:`reference_input`, computed by running
the official implementation (wuhuikai/FastFCN) once, outside this repository, on the weights that
:func:`official_like_state` makes from the key list. The tests rebuild the same weights here, save
them the way the official trainer does and check that :func:`fastfcn.load_official` reproduces the
outputs. Only facts (names, shapes, numbers) are stored; no official code is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["FIXTURES", "INPUT_SEED", "INPUT_SHAPE", "WEIGHT_SEED", "fixture_names", "load_fixture",
           "official_checkpoint", "official_like_state", "reference_input", "subsample"]

FIXTURES = Path(__file__).parent / "fixtures" / "official"
WEIGHT_SEED = 0
INPUT_SEED = 123
INPUT_SHAPE = (1, 3, 97, 75)  # odd and not a multiple of 32: exercises every resize and padding
# the last BN of each residual branch (``*.bn3.weight``) gets ``0.1 * uniform(0.5, 1.5)``: with
# eval-mode BN on random weights the residual sums would otherwise grow ~1e5-fold through ResNet-50
# and float32 rounding alone would exceed the tests' 1e-4 tolerance
RESIDUAL_BN_SCALE = 0.1
OUT_STEP = 4  # "out" is stored as out[..., ::4, ::4]
AUX_STEP = 8  # "aux" as aux[..., ::8, ::8] (it only checks the aux head's mapping; keeps the files small)


def _keys_and_shapes(keys_and_shapes: Mapping[str, Sequence[int]] | Iterable[tuple[str, Sequence[int]]]
                     ) -> dict[str, tuple[int, ...]]:
    items = keys_and_shapes.items() if isinstance(keys_and_shapes, Mapping) else keys_and_shapes
    return {str(k): tuple(int(d) for d in shape) for k, shape in items}


def official_like_state(keys_and_shapes: Mapping[str, Sequence[int]] | Iterable[tuple[str, Sequence[int]]],
                        seed: int = WEIGHT_SEED) -> dict[str, Tensor]:
    """Random but well-scaled weights for an official ``state_dict``, decided by names and shapes only.

    Keys are visited in sorted order and drawn from one ``torch.Generator`` seeded with ``seed``:
    conv weights ``randn * sqrt(2 / fan_in)``, linear weights ``randn * sqrt(1 / fan_in)``, biases
    ``0.1 * randn``, BN weight ``uniform(0.5, 1.5)``, BN bias ``0.1 * randn``, running mean
    ``0.1 * randn``, running var ``uniform(0.5, 1.5)``, ``num_batches_tracked = 0``, Encoding
    codewords ``0.1 * randn`` and Encoding scale ``uniform(-1, 0)``; the residual branches' last BN
    weights (``*.bn3.weight``) are scaled by ``RESIDUAL_BN_SCALE``. The result keeps the input order.
    """
    shapes = _keys_and_shapes(keys_and_shapes)
    gen = torch.Generator().manual_seed(seed)

    def randn(shape: tuple[int, ...]) -> Tensor:
        return torch.randn(shape, generator=gen, dtype=torch.float32)

    def uniform(shape: tuple[int, ...], low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float32)

    drawn: dict[str, Tensor] = {}
    for key in sorted(shapes):
        shape = shapes[key]
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            drawn[key] = torch.zeros(shape, dtype=torch.long)
        elif leaf == "running_mean":
            drawn[key] = 0.1 * randn(shape)
        elif leaf == "running_var":
            drawn[key] = uniform(shape, 0.5, 1.5)
        elif leaf == "codewords":
            drawn[key] = 0.1 * randn(shape)
        elif leaf == "scale":
            drawn[key] = uniform(shape, -1.0, 0.0)
        elif leaf == "bias":
            drawn[key] = 0.1 * randn(shape)  # conv, linear and BN biases alike
        elif leaf == "weight" and len(shape) == 4:
            drawn[key] = randn(shape) * math.sqrt(2.0 / math.prod(shape[1:]))
        elif leaf == "weight" and len(shape) == 2:
            drawn[key] = randn(shape) * math.sqrt(1.0 / shape[1])
        elif leaf == "weight" and len(shape) == 1 and key.endswith(".bn3.weight"):
            # the last BN of a residual branch: scaled down so that the activations stay O(1) through
            # the residual sums (eval-mode BN does not renormalise random weights)
            drawn[key] = RESIDUAL_BN_SCALE * uniform(shape, 0.5, 1.5)
        elif leaf == "weight" and len(shape) == 1:
            drawn[key] = uniform(shape, 0.5, 1.5)  # BN
        else:
            raise ValueError(f"no rule for {key} with shape {shape}")
    return {k: drawn[k] for k in shapes}


def reference_input(dtype: torch.dtype = torch.float32) -> Tensor:
    gen = torch.Generator().manual_seed(INPUT_SEED)
    return torch.randn(INPUT_SHAPE, generator=gen, dtype=torch.float32).to(dtype)


def subsample(outputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """What the fixtures store of a forward pass: subsampled ``out``/``aux`` and the whole ``se``."""
    small = {"out": outputs["out"][..., ::OUT_STEP, ::OUT_STEP]}
    if outputs.get("aux") is not None:
        small["aux"] = outputs["aux"][..., ::AUX_STEP, ::AUX_STEP]
    if outputs.get("se") is not None:
        small["se"] = outputs["se"]
    return {k: v.detach().float().contiguous().clone() for k, v in small.items()}


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


def load_fixture(name: str) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(description with ``keys`` = [[name, shape], ...] and ``load`` = load_official kwargs, outputs)."""
    meta = json.loads((FIXTURES / f"{name}.json").read_text())
    ref = torch.load(FIXTURES / f"{name}.pt", map_location="cpu", weights_only=True)
    return meta, ref


def official_checkpoint(meta: Mapping[str, Any], data_parallel: bool = False) -> dict[str, Any]:
    """The dict the official trainer saves (``train.py``), optionally with DataParallel's prefixes."""
    state = official_like_state([(k, s) for k, s in meta["keys"]], meta.get("weight_seed", WEIGHT_SEED))
    if data_parallel:
        state = {f"module.{k}": v for k, v in state.items()}
    return {"epoch": 1, "state_dict": state, "optimizer": {}, "best_pred": 0.5}
