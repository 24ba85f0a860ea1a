"""One check shared by the export tests: an exported graph gives the model's logits at every input shape."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def assert_graph_matches_model(model: torch.nn.Module, engine: Callable, shapes: Iterable[tuple[int, ...]]) -> None:
    """``engine(x)["out"]`` equals ``model(x, with_aux=False)["out"]`` to 1e-4 for a random input of each shape."""
    for shape in shapes:
        x = torch.randn(shape)
        with torch.inference_mode():
            ref = model(x, with_aux=False)["out"]
        got = engine(x)["out"]
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
