"""What ``fastfcn predict`` does to one image, part by part: where the time beyond the network goes.

``fastfcn predict`` overlaps its parts in threads (:mod:`fastfcn.inference.pipeline`): a reader decodes the next
image and a writer finishes the last one while the network runs. On a CPU whose every core the network keeps
busy, what runs beside it still takes its core time from the network. :func:`predict_parts` runs the parts of
one image one after another on this thread, timed where predict's own functions name them
(:func:`~fastfcn.utils.timing.lap`): reading and decoding (:func:`~fastfcn.data.images.read_rgb`), the input's
normalisation and resize and the network (:meth:`~fastfcn.inference.predictor.Predictor.labels_later`), the
exponential, the non-finite check, resizing the class scores back and the arg-max (its ``finish()``), and the two
PNG files (:func:`~fastfcn.inference.predict.write_prediction`). The network and its input run on their
threads, as in predict; every other part on one thread, so its time is its core time. From these,
``expected_ratio`` is what one more image should cost over one forward if the parts beside the network only
shared the cores with it: ``(input + network + beside / threads) / network``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..data.images import read_rgb
from ..data.palette import class_colours
from ..inference.evaluate import INPUT_LAP, NETWORK_LAP
from ..inference.predict import MASK_LAP, OVERLAY_LAP, write_prediction
from ..inference.predictor import Predictor
from ..utils.timing import lap, recording_laps

__all__ = ["predict_parts", "format_predict_parts"]

_ON_CALLERS_THREAD = (INPUT_LAP, NETWORK_LAP)  # the network and its input, just before it: not beside it
_FILES = "files: create, sync, rename"  # writing both PNGs less encoding them
_WRITING = "PNG files"


def _one_image(predictor: Predictor, path: Path, table: Any, out_dir: Path) -> dict[str, list[float]] | None:
    """The laps of one image's parts, each part once; everything but the network's half on one thread."""
    with recording_laps() as laps:
        with lap("read and decode"):  # Pillow's decoder: one thread
            rgb = read_rgb(path)
        finish = predictor.labels_later(rgb)  # the input and the network, on their threads
        if finish is None:  # predict does not split this image: it has no parts beside the network
            return None
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            labels, _ = finish()
            with lap(_WRITING):
                write_prediction(rgb, labels, table, 0.5, out_dir / f"{path.name}_mask.png",
                                 out_dir / f"{path.name}_overlay.png")
        finally:
            torch.set_num_threads(threads)
    return laps


def predict_parts(predictor: Predictor, files: Sequence[Path], out_dir: Path, runs: int = 1) -> dict[str, Any] | None:
    """Milliseconds of each part of ``fastfcn predict`` on each of ``files`` (``runs`` times each, after one
    untimed image), medians over them; see the module docstring. None where predict runs the image in one piece
    on the caller's thread (slide mode, several scales, a GPU, class scores above
    :data:`~fastfcn.inference.evaluate.LATER_BYTES`)."""
    if not files or runs < 1:
        raise ValueError(f"predict_parts needs at least one file and one run, got {len(files)} and {runs}")
    out_dir.mkdir(parents=True, exist_ok=True)
    table = class_colours(predictor.num_classes, predictor.colours)
    if _one_image(predictor, files[0], table, out_dir) is None:  # also the warm-up: first calls allocate
        return None
    seconds: dict[str, list[float]] = {}
    for _ in range(runs):
        for path in files:
            laps = _one_image(predictor, path, table, out_dir)
            for name, times in (laps or {}).items():
                seconds.setdefault(name, []).append(sum(times))
    ms = {name: 1e3 * statistics.median(times) for name, times in seconds.items()}  # in the order they ran
    ms[_FILES] = max(0.0, ms.pop(_WRITING) - ms[MASK_LAP] - ms[OVERLAY_LAP])
    threads = torch.get_num_threads()
    beside_ms = {name: v for name, v in ms.items() if name not in _ON_CALLERS_THREAD}
    beside, network = sum(beside_ms.values()), ms[NETWORK_LAP]
    return {"variant": predictor.variant, "threads": threads, "images": len(files), "runs": runs,
            "parts_ms": ms, "beside_ms": beside_ms, "network_ms": network, "input_ms": ms[INPUT_LAP],
            "beside_core_ms": beside, "beside_share": beside / (threads * network),
            "expected_ratio": (ms[INPUT_LAP] + network + beside / threads) / network}


def format_predict_parts(parts: dict[str, Any]) -> str:
    """The parts as a terminal table, with the ratio they predict."""
    threads = parts["threads"]
    width = max(len(name) for name in parts["parts_ms"])
    lines = [f"fastfcn predict, one image part by part ({parts['variant']}, medians of {parts['images']} images"
             f" x {parts['runs']} run(s))",
             f"  the network and its input on {threads} threads, every other part on one (its core time)",
             f"  {'part':<{width}} {'ms':>7}  where predict runs it"]
    for name, ms in parts["parts_ms"].items():
        where = ("the caller's thread" if name in _ON_CALLERS_THREAD else
                 "reader thread" if name == "read and decode" else "writer thread")
        lines.append(f"  {name:<{width}} {ms:>7.1f}  {where}")
    lines.append(f"beside the network: {parts['beside_core_ms']:.1f} core-ms per image, "
                 f"{100 * parts['beside_share']:.1f} % of the network's {threads} x {parts['network_ms']:.0f} core-ms")
    lines.append(f"expected per image: (input + network + beside / {threads}) / network = "
                 f"{parts['expected_ratio']:.2f} x the network")
    return "\n".join(lines)
