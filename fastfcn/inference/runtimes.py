"""Other runtimes for the same weights: the network exported to ONNX, run by ONNX Runtime or OpenVINO.

These are optional (the ``deploy`` extra: ``pip install -e '.[deploy]'``); without them
:func:`require` says which extra to install. :func:`export_onnx` writes the main output only (the
auxiliary and SE heads serve the training loss), with batch, height and width left free, through
``torch.onnx.export``. :class:`OnnxRuntimeModel` and :class:`OpenVinoModel`
take a tensor and return ``{"out": logits}`` like our model, so evaluation and ``predict`` run them
unchanged.
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..models import FastFCN
from ..utils.cache import file_digest
from ..utils.io import atomic_write

__all__ = ["DEPLOY_EXTRA", "RUNTIMES", "MissingExtraError", "require", "available", "MainOutput", "export_onnx",
           "graph_metadata", "read_graph_props", "check_graph", "OnnxRuntimeModel", "OpenVinoModel"]

DEPLOY_EXTRA = "pip install -e '.[deploy]' (in a checkout of the book) or pip install onnx onnxscript onnxruntime openvino"
RUNTIMES = ("onnxruntime", "openvino")
OPSET = 17
EXPORT_VERSION = 2  # raise when export_onnx writes a different graph: cached exports are then made again
# what a graph records of the checkpoint it was exported from (ONNX metadata_props), checked before it is run
DIGEST_KEY, CONFIG_KEY = "fastfcn.checkpoint_digest", "fastfcn.model_config"
QUANTIZED_KEY = "fastfcn.quantized"  # how an int8 graph was quantized (fastfcn.inference.quantize)


class MissingExtraError(ImportError, RuntimeError):
    """An optional package of the ``deploy`` extra is not installed (a RuntimeError too: the command line
    reports it in one line)."""


def require(module: str, what: str) -> Any:
    """Import ``module`` or fail with one line naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{what} needs the Python package {module!r}, which is not installed: "
                                f"{DEPLOY_EXTRA}") from None


def available(runtime: str) -> bool:
    """Whether ``runtime`` (``"onnxruntime"`` or ``"openvino"``) can be imported, and ONNX export with it."""
    try:
        importlib.import_module(runtime)
        importlib.import_module("onnx")
    except ImportError:
        return False
    return True


class MainOutput(nn.Module):
    """``image -> logits``: the model's main output only (what an exported graph computes)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        if isinstance(self.model, FastFCN):
            return self.model(image, with_aux=False)["out"]
        return self.model(image)["out"]


def export_onnx(model: nn.Module, path: str | Path, example_size: int = 96,
                metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model``'s main output as an ONNX graph (one file, weights inside) with free batch, height
    and width (at least 33 pixels a side: C5, at 1/32, needs two rows and columns to interpolate); written
    atomically. The caller's model is not changed (a CPU copy is exported). ``metadata``: stored in the
    graph's ``metadata_props`` (:func:`graph_metadata`: the checkpoint it comes from).

    The exporter is torch's TorchScript-based one: on these networks it writes the same graph as the
    ``torch.export``-based exporter in a few seconds instead of a minute or more (measured on a 2-core CPU,
    ResNet-18: 3 s against 20-90 s); the graph is checked by :mod:`fastfcn.inference.export`.
    """
    require("onnx", "ONNX export")
    net = MainOutput(copy.deepcopy(model).cpu().eval())  # the caller's model stays where and as it was
    example = torch.randn(1, 3, example_size, example_size + 32)
    free = {0: "batch", 2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on shape checks and the exporter's deprecation are not the user's
        torch.onnx.export(net, (example,), buffer, dynamo=False, opset_version=OPSET, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": free, "logits": free},
                          do_constant_folding=True)
    data = buffer.getvalue()
    if metadata:
        import onnx

        graph = onnx.load_from_string(data)
        onnx.helper.set_model_props(graph, dict(metadata))
        data = graph.SerializeToString()
    return atomic_write(path, lambda f: f.write(data))


def graph_metadata(checkpoint: str | Path, model: nn.Module) -> dict[str, str]:
    """What an exported graph records of its checkpoint: the file's digest and the model configuration."""
    config = getattr(model, "config", None) or {}
    return {DIGEST_KEY: file_digest(checkpoint), CONFIG_KEY: json.dumps(config, sort_keys=True, default=str)}


def _describe_config(config: Mapping[str, Any]) -> str:
    return (f"{config.get('head', '?')} head, {config.get('backbone', '?')}, {config.get('upsampling', '?')}, "
            f"{config.get('num_classes', '?')} classes")


def read_graph_props(path: str | Path) -> dict[str, str]:
    """The graph's metadata; ``ValueError`` (one line) when ``path`` is not an ONNX graph."""
    onnx = require("onnx", "checking an ONNX graph")
    try:
        graph = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors have no common base
        raise ValueError(f"{path} is not an ONNX graph ({type(exc).__name__}); give the file written by "
                         "`fastfcn export CKPT OUT.onnx`") from None
    if not len(graph.graph.node):
        raise ValueError(f"{path} is not an ONNX graph (it holds no operations); give the file written by "
                         "`fastfcn export CKPT OUT.onnx`")
    return {p.key: p.value for p in graph.metadata_props}


def check_graph(onnx_path: str | Path, checkpoint: str | Path, config: Mapping[str, Any]) -> dict[str, str]:
    """Refuse (``ValueError``, one line) a graph that was not exported from ``checkpoint`` (whose model has
    ``config``): another model, an older training in the same file, a graph without our record, or a
    file that is not an ONNX graph. Returns the graph's metadata (:data:`QUANTIZED_KEY` for an int8 graph)."""
    path = Path(onnx_path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX file {path} not found: write one with `fastfcn export CKPT OUT.onnx`")
    props = read_graph_props(path)
    int8 = " --int8" if QUANTIZED_KEY in props else ""
    again = f"export it again: fastfcn export {checkpoint} {path}{int8} --overwrite (or drop --onnx)"
    if DIGEST_KEY not in props or CONFIG_KEY not in props:
        raise ValueError(f"{path} does not record which checkpoint it was exported from (an older fastfcn "
                         f"export, or another tool's graph), so it cannot be checked against {checkpoint}; {again}")
    try:
        stored = json.loads(props[CONFIG_KEY])
    except json.JSONDecodeError:
        stored = {}
    ours = json.loads(json.dumps(dict(config), sort_keys=True, default=str))
    if stored != ours:
        raise ValueError(f"{path} is a graph of another model ({_describe_config(stored)}) than {checkpoint} "
                         f"({_describe_config(ours)}); {again}")
    digest = file_digest(checkpoint)
    if props[DIGEST_KEY] != digest:
        raise ValueError(f"{path} was exported from another version of {checkpoint} (checkpoint digest "
                         f"{props[DIGEST_KEY]}, the file now: {digest}; retrained?); {again}")
    return props


def _onnx_file(model: nn.Module, onnx_path: str | Path | None) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    if onnx_path is not None:
        if not Path(onnx_path).is_file():
            raise FileNotFoundError(f"ONNX file {onnx_path} not found: write one with `fastfcn export CKPT OUT.onnx`")
        return Path(onnx_path), None
    tmp = tempfile.TemporaryDirectory(prefix="fastfcn-onnx-")
    return export_onnx(model, Path(tmp.name) / "model.onnx"), tmp


class _ExportedModel(nn.Module):
    """Common part: the model's configuration (for evaluation), a float32 CPU input, ``{"out": logits}``."""

    def __init__(self, model: nn.Module | None, config: dict[str, Any] | None) -> None:
        super().__init__()
        self.config = dict(config if config is not None else getattr(model, "config", {}) or {})

    def run(self, x: Any) -> Any:  # numpy in, numpy out
        raise NotImplementedError

    def forward(self, x: Tensor, with_aux: bool = False) -> dict[str, Tensor]:
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return {"out": torch.from_numpy(self.run(array)).to(x.device)}


class OnnxRuntimeModel(_ExportedModel):
    """ONNX Runtime (CPU) on the exported graph of ``model`` (or on the file ``onnx_path``).

    ``spinning``: whether ONNX Runtime's threads keep spinning for a while after each run, waiting for the next
    (its default). That buys a bare forward after a forward about 1 %, but while other work runs beside the
    network (``fastfcn predict``'s reader and writer threads, the exponential and resizing in torch's threads) the
    spinning threads take those cores: with it off, predict's marginal cost per 512 px image fell from
    1.10 s to 1.02 s (medians of five processes each, alternating, EncNet+JPU R50s, 2-core AVX2 EPYC,
    2026-12-05). :func:`fastfcn.inference.graphs.engine_for` (predict, eval) turns it off.
    """

    def __init__(self, model: nn.Module | None = None, onnx_path: str | Path | None = None,
                 config: dict[str, Any] | None = None, threads: int | None = None, spinning: bool = True) -> None:
        super().__init__(model, config)
        ort = require("onnxruntime", "the ONNX Runtime path")
        path, tmp = _onnx_file(model, onnx_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.log_severity_level = 3
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.spinning = spinning
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        if tmp is not None:
            tmp.cleanup()

    def run(self, x: Any) -> Any:
        return self.session.run(None, {self.input_name: x})[0]


class OpenVinoModel(_ExportedModel):
    """OpenVINO (CPU) on the exported graph. ``precision``: None for OpenVINO's default (bf16 on CPUs that
    compute it natively, else f32), or ``"fp32"``/``"bf16"`` as its inference-precision hint."""

    def __init__(self, model: nn.Module | None = None, onnx_path: str | Path | None = None,
                 config: dict[str, Any] | None = None, precision: str | None = None,
                 threads: int | None = None) -> None:
        super().__init__(model, config)
        ov = require("openvino", "the OpenVINO path")
        path, tmp = _onnx_file(model, onnx_path)
        hints = {"fp32": "f32", "bf16": "bf16"}
        if precision is not None and precision not in hints:
            raise ValueError(f"OpenVINO precision {precision!r}: choose fp32 or bf16 (or None for its default)")
        core = ov.Core()
        settings: dict[str, Any] = {"INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
        if precision is not None:
            settings["INFERENCE_PRECISION_HINT"] = hints[precision]
        self.compiled = core.compile_model(core.read_model(str(path)), "CPU", settings)
        self.precision = str(self.compiled.get_property("INFERENCE_PRECISION_HINT"))
        if tmp is not None:
            tmp.cleanup()

    def run(self, x: Any) -> Any:
        return self.compiled(x)[0]


os.environ.setdefault("OPENVINO_TELEMETRY_DISABLE", "1")  # never phone home, even where a network is reachable
