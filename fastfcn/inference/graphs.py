"""Which exported graph a run of ``predict``/``eval`` uses: the user's file, checked, or the cache's.

* ``--onnx FILE`` is checked against the checkpoint before anything runs
  (:func:`fastfcn.inference.runtimes.check_graph`): a graph of another model, of an earlier training
  written to the same checkpoint file, without our record, or a file that is not a graph is refused in
  one line. ``--onnx`` with the torch runtime is an error, not ignored.
* Otherwise the checkpoint is exported once into the cache folder (:func:`cached_onnx`). The cache
  keeps one graph per checkpoint path (a retrained checkpoint's new graph replaces its old one) and
  at most :data:`MAX_CACHED_GRAPHS` in all, the least recently used removed first.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

__all__ = ["MAX_CACHED_GRAPHS", "engine_for", "cached_onnx"]

MAX_CACHED_GRAPHS = 8  # a ResNet-50 graph weighs ~46-110 MB: a few checkpoints' worth, not every retrain's


def engine_for(model: torch.nn.Module, checkpoint: str | Path, variant: str,
               onnx_path: str | Path | None = None, *, announce: bool = True) -> torch.nn.Module:
    """``model`` (loaded from ``checkpoint``) run as ``variant``; another runtime runs ``onnx_path`` (checked
    against the checkpoint first) or the checkpoint's graph from the cache (:func:`cached_onnx`). The result's
    ``quantization`` says how ``onnx_path`` was quantized (None: an fp32 graph, or no graph). ONNX Runtime's
    threads do not spin between runs here: predict and eval work beside the network (reading, exponential,
    resizing, writing), and spinning threads would take those cores. A compiled variant whose compilation fails
    runs uncompiled, with a warning. ``announce``: whether an export into the cache says so (:func:`cached_onnx`)."""
    from .fast_path import optimize, parse_variant
    from .runtimes import QUANTIZED_KEY, check_graph

    runtime = parse_variant(variant, str(next(model.parameters()).device))["runtime"]
    props: dict[str, str] = {}
    if onnx_path is not None:
        if runtime == "torch":
            raise ValueError(f"--onnx {onnx_path} is run by ONNX Runtime or OpenVINO, but this run uses torch "
                             f"({variant}: --runtime torch, or auto where ONNX Runtime is not installed or the "
                             "device is not the CPU): drop --onnx, or pass --runtime onnxruntime or openvino")
        props = check_graph(onnx_path, checkpoint, model.config)
    elif runtime != "torch":
        onnx_path = cached_onnx(checkpoint, model, announce=announce)
    engine = optimize(model, variant, onnx_path=onnx_path, spinning=False, compile_fallback=True)
    engine.quantization = props.get(QUANTIZED_KEY)
    return engine


def _path_key(checkpoint: str | Path) -> str:
    return hashlib.sha256(str(Path(checkpoint).resolve()).encode()).hexdigest()[:12]


def cached_onnx(checkpoint: str | Path, model: torch.nn.Module, *, announce: bool = True) -> Path:
    """The exported graph of ``checkpoint`` in the cache folder, exported now if it is not there yet
    (the name holds the checkpoint's path key, its digest and the versions that made it, so a changed
    file or an upgrade exports again). A cache folder that cannot be written is one ``OSError`` naming
    it, with the ways out. ``announce``: say on stderr that the export runs, and where the graph is kept
    (off for callers that asked for no progress lines, such as ``predict_files(progress=False)``)."""
    from ..utils.cache import cache_dir, file_digest
    from .runtimes import EXPORT_VERSION, export_onnx, graph_metadata

    key = _path_key(checkpoint)
    name = f"{key}-{file_digest(checkpoint)}-export{EXPORT_VERSION}-torch{torch.__version__.split('+')[0]}.onnx"
    try:
        folder = cache_dir("onnx")
        path = folder / name
        if path.is_file():
            _touch(path)
            return path
        if announce:
            print(f"fastfcn: exporting {checkpoint} to ONNX once\n  (seconds; a minute on a slow CPU), kept as\n"
                  f"  {path}", file=sys.stderr)
        export_onnx(model, path, metadata=graph_metadata(checkpoint, model))
    except OSError as exc:
        where = exc.filename or os.environ.get("FASTFCN_CACHE") or "the cache folder"
        raise OSError(exc.errno, f"cannot keep the exported graph in the cache ({exc.strerror or exc}"
                      f"{'; the disk is full' if exc.errno == 28 else ''}): free space there, set FASTFCN_CACHE "
                      "to a writable folder, or pass --runtime torch", str(where)) from None
    _prune(folder, keep=path, same_checkpoint=f"{key}-")
    return path


def _prune(folder: Path, keep: Path, same_checkpoint: str) -> None:
    """Remove the checkpoint's older graphs, then the least recently used beyond :data:`MAX_CACHED_GRAPHS`."""
    graphs = [p for p in folder.glob("*.onnx") if p != keep]
    stale = [p for p in graphs if p.name.startswith(same_checkpoint)]
    rest = sorted((p for p in graphs if p not in stale), key=_mtime, reverse=True)
    for p in stale + rest[MAX_CACHED_GRAPHS - 1:]:
        try:
            p.unlink(missing_ok=True)  # a run that opened it already holds it in memory
        except OSError:
            pass  # another process's file we may not remove: the bound is best effort


def _touch(path: Path) -> None:
    """Mark ``path`` recently used (the last to be pruned); a read-only cache is still read."""
    try:
        os.utime(path)
    except OSError:
        pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed by another process meanwhile
        return 0.0
