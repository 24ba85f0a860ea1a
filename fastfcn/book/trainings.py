"""The trainings behind the book's Table 1: one configuration per row and seed, trained once, found again.

Chapters 7, 8 and 9 need the same trained networks, and a ``full`` run of them takes GPU-hours, so:

* :func:`table1_config` is the one place that turns (profile, head, upsampling, seed) into a
  :class:`~fastfcn.training.TrainConfig`: in ``smoke`` and ``quick`` the procedural scenes, fine-tuned
  from the book's own pretrained trunk (:func:`ensure_trunk`: a plain FCN trained once on scenes no row
  sees, the stand-in for ImageNet pretraining), in float32 on every machine; Pascal Context from ImageNet
  weights in ``full`` (:func:`check_full_inputs` says what is missing, and how to get it, before anything
  trains);
* :func:`row_layouts` measures, once per machine, whether each row trains faster in channels_last or in
  PyTorch's default layout (the same arithmetic up to rounding) and keeps the answer beside the runs; with
  the portable kernels (:mod:`fastfcn.utils.kernels`) every row trains channels last, so that every CPU
  rounds alike;
* :func:`ensure_trained` looks through the runs folder for a run of *that configuration* (read from
  each run's ``config.json``, whatever its folder is called): a finished one is reused, an interrupted
  one resumed from its last checkpoint, and only a missing one is trained, through ``torchrun`` when
  several GPUs are visible;
* :func:`gpu_hours` states what the whole table costs on a GPU, from measured step times where there
  are some and from FLOPs otherwise (and says which).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..training.config import TrainConfig
from ..training.table1 import Trunk, pretrain_config, stamp_scene_version, table1_config, table1_rows

__all__ = ["RUNS_ENV", "IMAGENET_ENV", "Training", "FullRunInputsMissing", "ensure_trunk", "row_layouts",
           "check_full_inputs", "run_identity", "find_run", "ensure_trained", "default_runs_dir", "gpu_hours",
           "train_table1"]

RUNS_ENV = "FASTFCN_BOOK_RUNS"           # where the book's trainings live (default: _build/runs under the book)
IMAGENET_ENV = "FASTFCN_IMAGENET_WEIGHTS"  # a local ImageNet ResNet-50 state_dict for the full profile
# settings that say where or how a run is watched, not what it trains: two runs that differ only in
# these are the same training
NOT_IDENTITY = frozenset({"root", "out_dir", "device", "workers", "log_every", "progress", "stop_after_epochs",
                          "eval_every", "eval_limit", "overwrite", "extra",
                          "num_classes",     # filled in from the dataset when a run starts
                          # the memory layout changes the float rounding, not what is trained: a chapter that asks
                          # for a row in another layout than chapter 7 measured fastest here finds chapter 7's run
                          "channels_last"})


class FullRunInputsMissing(RuntimeError):
    """The ``full`` profile needs Pascal Context and ImageNet weights; the message names what is missing."""


@dataclass
class Training:
    """One finished training: its configuration, checkpoint and what its logs say."""

    config: TrainConfig
    out_dir: Path
    checkpoint: Path
    iterations: int
    train_s: float               # seconds spent in training steps (all invocations together)
    steps: list[dict[str, Any]]  # the logged {"iteration", "loss", ...} records
    status: str                  # "trained", "resumed" or "reused"

    @property
    def s_per_it(self) -> float:
        return self.train_s / max(self.iterations, 1)


def ensure_trunk(profile: Mapping[str, Any], seed: int = 0, runs_dir: str | Path | None = None, *,
                 device: str = "auto", channels_last: bool = True) -> Trunk:
    """The pretrained trunk of :func:`pretrain_config`: trained once, found again like any run."""
    import torch

    from ..utils.io import atomic_save

    config = pretrain_config(profile, seed, device=device, channels_last=channels_last)
    training = ensure_trained(config, runs_dir)
    path = training.out_dir / "trunk.pth"
    if not path.is_file() or path.stat().st_mtime < training.checkpoint.stat().st_mtime:
        state = torch.load(training.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
        atomic_save({k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}, path)
    return Trunk(path=path, identity=_identity_digest(config), training=training)


def _imagenet_reachable(backbone: str) -> tuple[bool, str]:
    """Whether torchvision's ImageNet weights for ``backbone`` are in its cache or can be downloaded."""
    import torch.hub

    from ..models.resnet import imagenet_weights_url

    url = imagenet_weights_url(backbone)
    if url is None:
        return False, f"torchvision has no ImageNet weights for {backbone}"
    cached = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if cached.is_file():
        return True, str(cached)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5):
            return True, url
    except OSError as exc:
        return False, f"{url} is not in {cached.parent} and cannot be downloaded ({type(exc).__name__})"


def check_full_inputs(root: str | Path | None = None, backbone: str = "resnet50",
                      weights: str | None = None) -> str:
    """Check what the ``full`` profile trains from; returns the weights to use (a file or ``"imagenet"``).

    Raises :class:`FullRunInputsMissing` listing everything missing (the prepared Pascal Context
    train and val splits, the ImageNet weights) and the commands that get it.
    """
    from ..data import build_dataset
    from ..data.base import DatasetNotFoundError

    problems: list[str] = []
    for split in ("train", "val"):
        try:
            build_dataset("pcontext", split, root=root)
        except DatasetNotFoundError as exc:
            problems.append(str(exc))
            break
    weights = weights or os.environ.get(IMAGENET_ENV)
    if weights:
        if not Path(weights).expanduser().is_file():
            problems.append(f"ImageNet weights: {weights} (from {IMAGENET_ENV} or the weights parameter) is no file")
    else:
        ok, where = _imagenet_reachable(backbone)
        if ok:
            weights = "imagenet"
        else:
            problems.append(f"ImageNet weights for {backbone}: {where}.\nDownload that file on a machine with "
                            f"network access, then either put it there or set {IMAGENET_ENV}=/path/to/file.pth")
    if problems:
        raise FullRunInputsMissing("the full profile trains Table 1 on Pascal Context from ImageNet weights, and "
                                   "this machine lacks:\n- " + "\n- ".join(problems))
    return weights or "imagenet"


def run_identity(config: TrainConfig | Mapping[str, Any]) -> dict[str, Any]:
    """What makes a training what it is: its settings, without where and how it is watched."""
    d = config.to_dict() if isinstance(config, TrainConfig) else dict(config)
    identity = {k: v for k, v in sorted(d.items()) if k not in NOT_IDENTITY}
    trunk = (d.get("extra") or {}).get("trunk")
    if trunk is not None:  # the pretraining that made the initial weights, not the file's path, says what they are
        identity["weights_backbone"] = f"trunk:{trunk}"
    if d.get("dataset") == "procedural":  # scenes drawn by another version of the generator are other data
        # a run stored without the stamp predates it: it was drawn by version 1
        identity["scene_version"] = (d.get("extra") or {}).get("scene_version", 1)
    return identity


def _identity_digest(config: TrainConfig) -> str:
    return hashlib.sha256(json.dumps(run_identity(config), sort_keys=True).encode()).hexdigest()[:12]


def default_runs_dir() -> Path:
    """``$FASTFCN_BOOK_RUNS``, else ``_build/runs`` under the current folder (the book's, when it runs)."""
    env = os.environ.get(RUNS_ENV)
    return Path(env) if env else Path("_build") / "runs"


def _read_log(out_dir: Path, name: str = "log.jsonl") -> list[dict[str, Any]]:
    """A run's JSON-lines log (a torn last line dropped with a warning, a bad line elsewhere one error naming
    the file and line: :func:`fastfcn.training.runlog.read_json_lines`); empty when there is none."""
    from ..training.runlog import read_json_lines

    path = out_dir / name
    return read_json_lines(path) if path.is_file() else []


def _finished(config: TrainConfig, records: list[dict[str, Any]]) -> bool:
    if not records:
        return False
    last = records[-1]
    if config.iterations is not None:
        return int(last.get("iteration", 0)) >= config.iterations
    return int(last.get("epoch", 0)) >= int(config.resolved().epochs)


def find_run(config: TrainConfig, runs_dir: str | Path) -> tuple[Path, bool] | None:
    """The folder under ``runs_dir`` holding a run of ``config``'s identity and whether it has finished.

    A finished run wins over an unfinished one; ``None`` when no run of it was ever started.
    """
    want = run_identity(stamp_scene_version(config).resolved())
    found: list[tuple[bool, Path]] = []
    for cfg_file in sorted(Path(runs_dir).glob("*/config.json")):
        try:
            stored = TrainConfig.from_dict(json.loads(cfg_file.read_text()))
        except (ValueError, TypeError):  # another version's or a damaged file: not this run
            continue
        if run_identity(stored) == want:
            found.append((_finished(stored, _read_log(cfg_file.parent)), cfg_file.parent))
    if not found:
        return None
    done, folder = max(found, key=lambda t: t[0])
    return folder, done


def _train_in_process(config: TrainConfig, resume: bool) -> None:
    from ..training import train

    train(config, resume=resume)


def _train_with_torchrun(config: TrainConfig, resume: bool, processes: int) -> None:
    """One process per GPU: ``torchrun`` runs this module on the configuration written to a file."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"config": config.to_dict(), "resume": resume}, f)
    try:
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc_per_node={processes}", "-m", "fastfcn.book.trainings", f.name])
        if done.returncode:
            raise RuntimeError(f"the torchrun training in {config.out_dir} failed (exit {done.returncode}; its "
                               f"processes' messages are above); running this again resumes it")
    finally:
        os.unlink(f.name)


def _refuse_damaged(folder: Path) -> None:
    """A run folder of this configuration's name whose ``config.json`` cannot be read: say so and what to do,
    instead of letting the training refuse the folder with advice meant for ``fastfcn train``."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        return
    try:
        TrainConfig.from_dict(json.loads(config_file.read_text()))
        return
    except (ValueError, TypeError) as exc:  # JSONDecodeError and ConfigError are ValueErrors
        reason = " ".join(str(exc).split())[:160]
    raise RuntimeError(f"{config_file} is damaged ({reason}), so its Table 1 run can be neither reused nor "
                       f"resumed: delete the folder {folder}, then run the chapter again to train that row anew")


def _processes(config: TrainConfig, processes: int | None) -> int:
    if processes is not None:
        return processes
    import torch

    cuda = config.device in ("auto", "cuda") and torch.cuda.is_available()
    return torch.cuda.device_count() if cuda else 1


def ensure_trained(config: TrainConfig, runs_dir: str | Path | None = None, *, processes: int | None = None
                   ) -> Training:
    """The finished training of ``config``: reused if one exists, resumed if one was interrupted, else trained.

    Runs live in ``runs_dir`` (default :func:`default_runs_dir`), one folder each, named after a digest of
    the configuration; they are *found* by the configuration stored inside. ``processes`` > 1 trains
    through ``torchrun`` (default: one process per visible GPU, one on the CPU).
    """
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    config = stamp_scene_version(config)
    if config.dataset == "procedural" and config.root is None:  # the scenes drawn once, shared by every run
        config = replace(config, root=str(runs_dir / "scenes"))
    found = find_run(config, runs_dir)
    if found is not None and found[1]:
        folder, status = found[0], "reused"
    else:
        folder = found[0] if found is not None else runs_dir / f"{config.head}-{config.upsampling}-seed{config.seed}-" \
                                                                 f"{_identity_digest(config)}"
        if found is None:
            _refuse_damaged(folder)
        resume = found is not None and (folder / "last.pth").is_file()
        run = replace(config, out_dir=str(folder), overwrite=found is not None and not resume)
        n = _processes(config, processes)
        if n > 1:
            _train_with_torchrun(run, resume, n)
        else:
            _train_in_process(run, resume)
        status = "resumed" if resume else "trained"
    records = _read_log(folder)
    steps = _read_log(folder, "steps.jsonl")
    return Training(config=config, out_dir=folder, checkpoint=folder / "last.pth",
                    iterations=int(records[-1]["iteration"]), train_s=sum(r["train_time_s"] for r in records),
                    steps=steps, status=status)


def _layout_key(config: TrainConfig) -> str:
    import torch

    from ..utils.environment import cpu_model

    c = config.resolved(num_classes=1)
    return (f"{cpu_model()} | {torch.backends.cpu.get_cpu_capability()} | torch {torch.__version__} | "
            f"{c.head}+{c.upsampling} {c.backbone} w{c.jpu_width} | batch {c.batch_size} x {c.crop_size} px")


def row_layouts(configs: Sequence[TrainConfig], num_classes: int, runs_dir: str | Path | None = None, *,
                device: str = "cpu") -> dict[str, dict[str, Any]]:
    """For each configuration, whether it trains faster in channels_last on this machine (see
    :func:`fastfcn.training.step_time.fastest_exact_layout`), measured once and kept in ``runs_dir/layouts.json``
    (keyed by the CPU, torch and the network, so another machine measures again). On a GPU, and on a CPU that
    runs the portable kernels (:mod:`fastfcn.utils.kernels`): channels_last, unmeasured. The layout changes the
    rounding, so machines that are to give the same numbers train in one layout; with the portable kernels
    channels_last was as fast as channels-first or faster for every row but two (within 3 %) on a 2-core Xeon
    (2026-12-05)."""
    from ..training.step_time import fastest_exact_layout
    from ..utils.io import atomic_write_text
    from ..utils.kernels import portable_kernels_active

    keys = [_layout_key(c) for c in configs]
    if not device.startswith("cpu") or portable_kernels_active():
        return {k: {"channels_last": True, "seconds": {}} for k in keys}
    path = (Path(runs_dir) if runs_dir is not None else default_runs_dir()) / "layouts.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    for key, config in zip(keys, configs, strict=True):
        if key not in known:
            # two timed steps per layout: with one, the pretraining's pick flipped between two builds on the
            # same CPU (2026-12-03), and with it every network the book trains
            known[key] = fastest_exact_layout(config, num_classes, device=device)
            atomic_write_text(path, json.dumps(known, indent=1) + "\n")
    return {k: known[k] for k in keys}


def train_table1(profile: Mapping[str, Any], seed: int, *, device: str = "auto", runs_dir: str | Path | None = None,
                 root: str | Path | None = None, weights: str | None = None, progress: bool = True
                 ) -> dict[tuple[str, str, int], Training]:
    """Every Table 1 row of ``profile`` for each of its seeds (``seed``, ``seed + 1``, ...), found or trained.

    In ``full`` the inputs are checked first (:func:`check_full_inputs`): nothing trains when the data
    or the weights are missing. Elsewhere the shared trunk is pretrained first (:func:`ensure_trunk`) and
    each row trains in the layout measured fastest here (:func:`row_layouts`). Keys are
    ``(head, upsampling, seed)``, in the paper's row order.
    """
    from tqdm import tqdm  # the text bar: tqdm.auto warns in kernels without ipywidgets, even when disabled

    from ..utils.device import resolve_device

    full = getattr(profile, "name", None) == "full"
    if full:
        weights = check_full_inputs(root, profile["small_backbone"], weights)
    rows = table1_rows(profile["ablation_heads"])
    seeds = [seed + k for k in range(profile["ablation_seeds"])]
    trunk, layout = None, {}
    if not full:
        where = resolve_device(device)
        first = [table1_config(profile, h, u, seed, device=device) for h, u in rows]
        pre = pretrain_config(profile, seed, device=device)
        from ..data.scene import CLASSES

        found = row_layouts([pre, *first], len(CLASSES), runs_dir, device=where)
        fast = [v["channels_last"] for v in found.values()]
        trunk = ensure_trunk(profile, seed, runs_dir, device=device, channels_last=fast[0])
        layout = {row: cl for row, cl in zip(rows, fast[1:], strict=True)}
    configs = {(h, u, s): table1_config(profile, h, u, s, device=device, root=root, weights=weights, trunk=trunk,
                                        channels_last=layout.get((h, u), True)) for s in seeds for h, u in rows}
    # the bar counts the trainings still to run, and none is shown when every one is found: its refreshes
    # would only add lines (a notebook keeps each one)
    todo = [k for k, c in configs.items() if not (find_run(c, runs_dir or default_runs_dir()) or ("", False))[1]]
    out: dict[tuple[str, str, int], Training] = {}
    with tqdm(total=len(todo), desc="Table 1 trainings", disable=not (progress and todo)) as bar:
        for key, cfg in configs.items():
            if key in todo:
                bar.set_postfix_str("{}+{} seed {}".format(*key))
            out[key] = ensure_trained(cfg, runs_dir)
            bar.update(key in todo)
    return {k: out[k] for k in sorted(out, key=lambda k: (rows.index(k[:2]), k[2]))}


def gpu_hours(rows: Sequence[tuple[str, str]], seeds: int, iterations: int, *,
              step_seconds: Mapping[tuple[str, str], float] | None = None,
              step_flops: Mapping[tuple[str, str], float] | None = None,
              sustained_flops: float | None = None) -> dict[str, Any]:
    """GPU-hours of ``rows`` x ``seeds`` trainings of ``iterations`` steps.

    Per row, a measured step time (``step_seconds``) is used where there is one; otherwise the step's
    FLOPs divided by ``sustained_flops`` (an assumed throughput, so the result is labelled an estimate).
    """
    per_row, basis = {}, {}
    for row in rows:
        if step_seconds and row in step_seconds:
            per_row[row], basis[row] = step_seconds[row], "measured"
        elif step_flops and row in step_flops and sustained_flops:
            per_row[row], basis[row] = step_flops[row] / sustained_flops, "estimated from FLOPs"
        else:
            raise ValueError(f"no step time and no FLOPs for {row}")
    hours = {row: s * iterations * seeds / 3600 for row, s in per_row.items()}
    return {"hours": hours, "total_hours": sum(hours.values()), "basis": basis,
            "all_measured": all(b == "measured" for b in basis.values())}


def _main(argv: Sequence[str]) -> None:
    """``torchrun ... -m fastfcn.book.trainings FILE``: train the configuration in FILE."""
    spec = json.loads(Path(argv[0]).read_text())
    _train_in_process(TrainConfig.from_dict(spec["config"]), bool(spec["resume"]))


if __name__ == "__main__":  # pragma: no cover - run by torchrun
    _main(sys.argv[1:])
