"""``--init CHECKPOINT``: start a new run from another run's weights, for another set of classes.

The checkpoint is a fastfcn one (trained, or converted by ``fastfcn convert``) or an official FastFCN /
PyTorch-Encoding file (its keys are renamed as :mod:`fastfcn.models.official` does). Every tensor of our model
whose name and shape the checkpoint has is loaded; the others keep the fresh initialisation of the new model:
for another number of classes those are the classifiers (``head.classifier``, ``aux_head``'s last conv) and the
EncNet head's SE layer (``head.context.se_classifier``). :class:`InitReport` says exactly which tensors were
loaded and which were not. Reading is weights-only (:func:`fastfcn.models.official.load_tensor_file`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from ..models.official import (
    OfficialCheckpointError,
    convert_official_state_dict,
    load_tensor_file,
    official_architecture,
    read_official_checkpoint,
)

__all__ = ["InitReport", "init_from_checkpoint", "init_architecture", "read_init_state"]

ARCHITECTURE_KEYS = ("head", "backbone", "upsampling", "jpu_width")
SHOWN = 12


@dataclass
class InitReport:
    """Which tensors of the model came from the checkpoint (``loaded``), which kept their fresh values and why
    (``not_loaded``: name -> reason), and which checkpoint tensors have no place in the model (``unused``)."""

    checkpoint: str
    source: str
    loaded: list[str] = field(default_factory=list)
    not_loaded: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)

    def describe(self) -> str:
        total = len(self.loaded) + len(self.not_loaded)
        groups: dict[str, int] = {}
        for key in self.loaded:
            groups[key.split(".", 1)[0]] = groups.get(key.split(".", 1)[0], 0) + 1
        parts = ", ".join(f"{name} {count}" for name, count in groups.items())
        lines = [f"--init {self.checkpoint} ({self.source} checkpoint):",
                 f"  loaded {len(self.loaded)} of {total} tensors ({parts}); {len(self.not_loaded)} newly "
                 "initialised" + (":" if self.not_loaded else "")]
        lines += [f"    {key}: {why}" for key, why in list(self.not_loaded.items())[:SHOWN]]
        if len(self.not_loaded) > SHOWN:
            lines.append(f"    ... and {len(self.not_loaded) - SHOWN} more (all listed in config.json, extra.init)")
        if self.unused:
            lines.append(f"  {len(self.unused)} checkpoint tensor(s) without a place here, e.g. "
                         + ", ".join(self.unused[:3]))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "source": self.source, "loaded": list(self.loaded),
                "not_loaded": dict(self.not_loaded), "unused": list(self.unused)}


def _official_state(path: Path, obj: Any) -> tuple[dict[str, Tensor], dict[str, Any], list[str]]:
    """An official checkpoint's tensors under our names, its architecture, and the keys that have no name here."""
    try:
        state = read_official_checkpoint(obj)
    except OfficialCheckpointError as exc:
        raise ValueError(f"{path}: {exc}") from None
    arch = official_architecture(state)
    if arch["head"] is None:
        raise ValueError(f"{path} is neither a fastfcn checkpoint nor an official FastFCN one (it has no "
                         "segmentation head that we recognise); --init takes either")
    converted, unknown = convert_official_state_dict(state, arch["head"])
    return converted, arch, unknown


def read_init_state(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any], str, list[str]]:
    """(tensors under our names, the architecture it describes, ``"fastfcn"``/``"official"``, keys without a name
    here) of a checkpoint for ``--init``."""
    path = Path(path).expanduser()
    obj = load_tensor_file(path)
    if isinstance(obj, Mapping) and obj.get("format") == "fastfcn":
        state, config = obj.get("state_dict"), obj.get("config")
        if not isinstance(state, Mapping) or not isinstance(config, Mapping):
            raise ValueError(f"{path} is a damaged fastfcn checkpoint (no state_dict or config); use another copy")
        arch = {k: config[k] for k in ARCHITECTURE_KEYS if k in config}
        return {k: v for k, v in state.items() if isinstance(v, Tensor)}, arch, "fastfcn", []
    state, arch, unknown = _official_state(path, obj)
    return state, arch, "official FastFCN", unknown


def init_architecture(path: str | Path) -> dict[str, Any]:
    """The head, backbone, upsampling and JPU width of the checkpoint's model (what a run should build)."""
    return read_init_state(path)[1]


def _shape(t: Tensor) -> str:
    return "x".join(str(d) for d in t.shape) or "scalar"


def init_from_checkpoint(model: nn.Module, path: str | Path) -> InitReport:
    """Load every tensor of ``path`` whose name and shape fit ``model``; the rest keep their values."""
    state, arch, source, unknown = read_init_state(path)
    report = InitReport(str(path), source)
    fitting: dict[str, Tensor] = {}
    for key, tensor in model.state_dict().items():
        theirs = state.get(key)
        if theirs is None:
            report.not_loaded[key] = "not in the checkpoint"
        elif tuple(theirs.shape) != tuple(tensor.shape):
            report.not_loaded[key] = f"shape {_shape(theirs)} in the checkpoint, {_shape(tensor)} here"
        else:
            fitting[key] = theirs
            report.loaded.append(key)
    report.unused = sorted(unknown) + sorted(set(state) - set(model.state_dict()))
    # a backbone that does not load whole is another backbone: fine-tuning half of one is a mistake, not a choice
    # (BatchNorm batch counters aside: checkpoints of PyTorch < 0.4.1 have none)
    unfit = [k for k in report.not_loaded if k.startswith("backbone.") and not k.endswith("num_batches_tracked")]
    if unfit:
        built = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in arch.items())
        total = sum(k.startswith("backbone.") for k in model.state_dict())
        raise ValueError(f"--init {path}: {len(unfit)} of the backbone's {total} tensors do not fit this model "
                         f"(e.g. {unfit[0]}: {report.not_loaded[unfit[0]]}); the checkpoint's model is "
                         f"{built or 'of another kind'}: build that one (or leave those options out)")
    model.load_state_dict(fitting, strict=False)
    return report
