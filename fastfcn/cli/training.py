"""The ``train``, ``eval`` and ``predict`` sub-commands (argument parsing only; torch is imported lazily)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from .arguments import positive_float, positive_int, unit_interval
from .data import PER_CLASS_DATASETS, check_eval_data, refused_data, with_init_architecture, write_legend

__all__ = ["add_subcommands", "TRAIN_EPILOG"]

TRAIN_EPILOG = """\
examples:
  fastfcn train                                   # EncNet+JPU, ResNet-18, procedural scenes (offline)
  fastfcn train --dataset pcontext --root data/pcontext --backbone resnet50 --weights-backbone imagenet
  fastfcn train --out-dir runs/train --resume     # continue runs/train/last.pth

several GPUs on one machine (one process per GPU; --batch-size is the total over all GPUs):
  torchrun --standalone --nproc_per_node 4 -m fastfcn train --dataset pcontext --root data/pcontext \\
      --backbone resnet50 --batch-size 16

several machines (the same command on every node; HOST = an address of one of them, reachable by all):
  torchrun --nnodes 2 --nproc_per_node 8 \\
      --rdzv_backend c10d --rdzv_endpoint HOST:29500 --rdzv_id pcontext-r50 \\
      -m fastfcn train --dataset pcontext --root data/pcontext --batch-size 16
  (or a static rendezvous: --nnodes 2 --node_rank R --master_addr HOST --master_port 29500, R = 0, 1)

Under torchrun GPUs use NCCL + SyncBatchNorm; without GPUs the processes use gloo and keep per-process
BatchNorm (no SyncBatchNorm on the CPU). Only rank 0 writes log.jsonl and last.pth.
"""


def _train_arguments(p: argparse.ArgumentParser) -> None:
    S = argparse.SUPPRESS
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=S, help="procedural (default, offline), pcontext, pcontext60, ade20k, "
                                                "cityscapes, or folder (your own data; README: Your own data)")
    g.add_argument("--root", default=S, help="dataset folder")
    g.add_argument("--image-size", type=int, default=S, help="procedural: image side (default 128)")
    g.add_argument("--num-images", type=int, default=S, help="procedural: training images (default 1000)")
    g.add_argument("--crop-size", type=int, default=S, help="training crop (480; procedural: the image size)")
    g.add_argument("--base-size", type=int, default=S, help="long side before random scaling (520)")
    g.add_argument("--workers", type=int, default=S, help="DataLoader workers per process")
    g.add_argument("--ignore-value", type=int, default=S, help="folder: the mask value of ignored pixels (255)")
    g.add_argument("--val-fraction", type=float, default=S,
                   help="folder without images/val: the share of the pairs that is val (0.2, fixed seed)")
    g.add_argument("--skip-bad", action="store_true", default=S,
                   help="go on without the image/mask pairs the up-front data check refuses (default: stop)")
    g = p.add_argument_group("model")
    g.add_argument("--head", default=S, choices=["encnet", "aspp", "psp", "fcn"], help="default encnet")
    g.add_argument("--backbone", default=S, help="resnet18 for procedural, resnet50 otherwise")
    g.add_argument("--upsampling", default=S, choices=["none", "bilinear", "fpn", "jpu"], help="default jpu")
    g.add_argument("--jpu-width", type=int, default=S, help="128 for procedural, 512 (the paper) otherwise")
    g.add_argument("--weights-backbone", default=S, help="'imagenet' or a local .pth (default: random init)")
    g.add_argument("--init", default=S, metavar="CKPT",
                   help="start from this checkpoint (fastfcn or official FastFCN) where the tensors fit; the "
                        "classifiers of another class set start new. Head/backbone/upsampling default to its own")
    g.add_argument("--aux-weight", type=float, default=S, help="0.2 EncNet, 0.4 others; 0 disables")
    g.add_argument("--se-weight", type=float, default=S, help="0.2 EncNet; 0 disables")
    g = p.add_argument_group("optimisation")
    g.add_argument("--lr", type=float, default=S,
                   help="backbone lr (head 10x); default 0.001 pcontext, 0.01 ade20k (x batch/16), 0.005 procedural")
    g.add_argument("--momentum", type=float, default=S)
    g.add_argument("--weight-decay", type=float, default=S)
    g.add_argument("--power", type=float, default=S, help="poly exponent (0.9)")
    g.add_argument("--head-lr-mult", type=float, default=S, help="lr multiplier of JPU/head/aux (10)")
    g.add_argument("--epochs", type=int, default=S, help="80 pcontext, 120 ade20k, 4 procedural")
    g.add_argument("--iterations", type=int, default=S, help="total iterations (overrides --epochs)")
    g.add_argument("--batch-size", type=int, default=S, help="total batch over all processes (16; procedural 8)")
    g.add_argument("--seed", type=int, default=S)
    g.add_argument("--device", default=S, help="auto (default), cpu, cuda")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction, default=S,
                   help="mixed precision (default: on with CUDA): fp16 on a GPU, bf16 on a CPU that has it")
    g.add_argument("--amp-dtype", choices=["fp16", "bf16"], default=S, help="the --amp dtype (fp16 CUDA, bf16 CPU)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=S,
                   help="NHWC activations (faster convolutions on CPUs)")
    g = p.add_argument_group("run")
    g.add_argument("--out-dir", default=S, help="log.jsonl, config.json and last.pth go here (runs/train)")
    g.add_argument("--resume", nargs="?", const=True, default=False, metavar="CKPT",
                   help="continue OUT_DIR/last.pth (or CKPT); its settings are reused unless given again")
    g.add_argument("--overwrite", action="store_true", default=S, help="replace a run already in --out-dir")
    g.add_argument("--log-every", type=int, default=S, help="progress-bar update period in iterations (20)")
    g.add_argument("--eval-every", type=int, default=S, help="validate every N epochs (procedural 1, else 0)")
    g.add_argument("--eval-limit", type=int, default=S, help="validate on the first N images only")
    g.add_argument("--stop-after-epochs", type=int, default=S, help="leave after N epochs (resume later)")
    g.add_argument("--no-progress", dest="progress", action="store_false", default=S)
    g.add_argument("--summary", type=Path, default=None, help="also write the run summary (JSON) here")


def _show_train_warning(message: Warning | str, *args: object, **kwargs: object) -> None:
    print(f"fastfcn train: warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def _one_line_warnings(command: str) -> Iterator[None]:
    """Warnings (bf16 not native, ...) as one line each, ``fastfcn COMMAND: warning: ...``."""
    with warnings.catch_warnings():
        warnings.showwarning = lambda message, *a, **k: print(f"fastfcn {command}: warning: {message}",
                                                               file=sys.stderr)
        yield


def _cmd_train(args: argparse.Namespace) -> int:
    from ..data.check import DataCheckError
    from ..training.config import ConfigError
    from ..training.loop import TrainConfig, train
    from ..training.resume import load_resume_checkpoint

    given = {k: v for k, v in vars(args).items() if k not in ("command", "func", "resume", "summary")}
    if "scale_range" in given:
        given["scale_range"] = tuple(given["scale_range"])
    resume, path = args.resume, None
    try:
        with warnings.catch_warnings():  # the run's warnings as one line each (a stale lock taken over, ...)
            warnings.showwarning = _show_train_warning
            if resume:
                path = Path(resume) if isinstance(resume, str) else \
                    Path(given.get("out_dir", TrainConfig.out_dir)) / "last.pth"
                stored = load_resume_checkpoint(path)["train_config"]
                # a stop_after_epochs / overwrite of the interrupted invocation is not meant for this one
                stored = {k: v for k, v in stored.items() if k not in ("stop_after_epochs", "overwrite")}
                config = TrainConfig.from_dict({**stored, **given})
                if isinstance(resume, str) and "out_dir" not in given:
                    config.out_dir = str(path.parent)
                resume = path
            else:
                config = TrainConfig(**with_init_architecture(given))
            summary = train(config, resume=resume)
    except ConfigError as exc:  # name the flag that was given, or the checkpoint that stored the value
        if exc.field in given:
            raise ValueError(exc.message("--" + exc.field.replace("_", "-"))) from None
        raise ValueError(f"{path}: its stored setting {exc}" if path is not None else str(exc)) from None
    except FileExistsError as exc:
        raise ValueError(str(exc)) from None
    except DataCheckError as exc:
        return refused_data("train", exc)
    if summary["world_size"] > 1 and int(os.environ.get("RANK", "0")) != 0:
        return 0
    final = summary["final"] or {}
    val = final.get("val")
    print(f"done: {summary['epochs_done']}/{summary['epochs']} epochs, {summary['iterations']} iterations in "
          f"{summary['time_s']:.0f} s; final loss {final.get('loss', float('nan')):.4f}"
          + (f", val pixAcc {val['pixAcc']:.4f} mIoU {val['mIoU']:.4f}" if val else "")
          + f";\n  checkpoint {summary['checkpoint']}")
    if args.summary:
        from ..utils.io import atomic_write_text

        atomic_write_text(args.summary, json.dumps(summary, indent=2) + "\n")
    return 0


def _check_file_out(out: Path, what: str) -> None:
    """Fail before the work, not after it: ``out`` must be writable as a file."""
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name for the {what}, e.g. {out / 'metrics.json'}")
    for parent in out.absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"cannot write --out {out}: {parent} is a file, not a folder")


def _cmd_eval(args: argparse.Namespace) -> int:
    from ..data.check import DataCheckError

    with _one_line_warnings("eval"):
        try:
            return _evaluate(args)
        except DataCheckError as exc:
            return refused_data("eval", exc)


def _eval_dataset(args: argparse.Namespace, model, ckpt: dict):
    """The dataset ``eval`` scores (``--dataset``, else the checkpoint's) and its name."""
    from ..data import build_dataset
    from ..data.transforms import EvalTransform

    tc = ckpt.get("train_config") or {}
    name = args.dataset or ckpt.get("dataset") or tc.get("dataset")
    if name is None:
        raise ValueError(f"{args.checkpoint} does not say which dataset it was trained on; pass --dataset")
    kwargs = {}
    if name == "procedural" and tc.get("dataset") == "procedural":
        kwargs["image_size"] = tc.get("image_size") or 128
    if name == "procedural" and args.num_images is not None:
        kwargs["num_images"] = args.num_images
    if name == "folder" and tc.get("dataset") == "folder":  # the ignore value and val share it was trained with
        kwargs.update({k: tc[k] for k in ("ignore_value", "val_fraction") if tc.get(k) is not None})
    # a procedural run's root is its scene cache: not worth creating elsewhere to evaluate on a few val images
    stored_root = tc.get("root") if tc.get("dataset") == name and name != "procedural" else None
    root = args.root if args.root is not None else stored_root
    dataset = build_dataset(name, split=args.split, root=root, transform=EvalTransform(), **kwargs)
    if dataset.num_classes != model.config["num_classes"]:
        raise ValueError(f"the model predicts {model.config['num_classes']} classes but {name} has "
                         f"{dataset.num_classes}")
    if ckpt.get("classes") and list(ckpt["classes"]) != list(dataset.classes):
        print(f"fastfcn eval: warning: the checkpoint's class names differ from {name}'s; the metrics use "
              f"{name}'s names", file=sys.stderr)
    return name, dataset


def _finite_json(value):
    """``value`` with every NaN/inf float as ``None``: JSON has no NaN (a class without pixels has no IoU)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def _eval_variant(args: argparse.Namespace, config: dict, dataset, sizes: tuple, device: str) -> str:
    """The variant ``eval`` runs: the user's choice, compiled where ``--compile`` is unset and this machine
    measured compiling to pay off within the run's forwards (``sizes``: scales, flip, base and crop size)."""
    from ..inference.fast_path import compiled_where_it_pays, variant_for
    from ..inference.windows import slide_forwards

    variant = variant_for(args.runtime, args.precision, device, bool(args.compile))
    if args.compile is not None or args.batch_size != 1 or args.mode != "slide":  # whole: sizes vary; batches too
        return variant
    scales, flip, base_size, crop_size = sizes
    images = min(len(dataset), args.limit or len(dataset))
    forwards = images * slide_forwards(*dataset[0][0].shape[-2:], scales, flip, base_size, crop_size)
    variant, reason = compiled_where_it_pays(variant, None, args.runtime, args.precision, device, config, args.mode,
                                             forwards, crop_size)
    if reason is not None:
        print(f"fastfcn eval: {reason}", file=sys.stderr)
    return variant


def _evaluate(args: argparse.Namespace) -> int:
    from ..checkpoint import model_from_checkpoint
    from ..inference.evaluate import MS_SCALES, collect_nonfinite, evaluate
    from ..inference.metrics import format_metrics
    from ..inference.predict import engine_for
    from ..utils.device import resolve_device
    from ..utils.io import atomic_write_text

    if args.out:
        _check_file_out(args.out, "JSON metrics")
    model, ckpt = model_from_checkpoint(args.checkpoint)
    tc = ckpt.get("train_config") or {}
    name, dataset = _eval_dataset(args, model, ckpt)
    if len(dataset) == 0:  # nothing to score: no metrics (not NaN ones) and a failing status
        print(f"fastfcn eval: error: the {args.split} split of {name} has no images; nothing was evaluated "
              "(check --root/--split, or --num-images for procedural)", file=sys.stderr)
        return 1
    check_eval_data([dataset], args.skip_bad)
    device = resolve_device(args.device)
    scales = tuple(args.scales) if args.scales else (MS_SCALES if args.ms else (1.0,))
    flip = args.flip or args.ms
    base_size = args.base_size or tc.get("base_size") or 520
    crop_size = args.crop_size or tc.get("crop_size") or 480
    variant = _eval_variant(args, model.config, dataset, (scales, flip, base_size, crop_size), device)
    engine = engine_for(model.to(device), args.checkpoint, variant, args.onnx)
    int8 = " (int8 graph: a few labels may differ from fp32)" if engine.quantization else ""
    print(f"{engine.variant}{int8} on {device}, {args.mode} mode", file=sys.stderr)
    with collect_nonfinite() as found:
        metrics = evaluate(engine, dataset, scales=scales, flip=flip, base_size=base_size, crop_size=crop_size,
                           device=device, limit=args.limit, progress=not args.no_progress, mode=args.mode,
                           batch_size=args.batch_size)
    for message in found:
        print(f"fastfcn eval: warning: {message}", file=sys.stderr)
    print(f"{name} {args.split}: {metrics['images']} images, {args.mode} mode, scales {list(scales)}"
          f"{' + flip' if flip else ''}, "
          f"{metrics['time_s']:.0f} s")
    print(format_metrics(metrics))
    if args.per_class or name in PER_CLASS_DATASETS:  # your own classes: each one's IoU by its name
        for cls, iou in metrics["iou"].items():
            print(f"  {cls:>24s}  {'-' if iou is None else f'{100 * iou:6.2f}%'}")
    if args.out:
        record = {"checkpoint": str(args.checkpoint), "dataset": name, "variant": engine.variant,
                  "split": args.split, **metrics}
        atomic_write_text(args.out, json.dumps(_finite_json(record), indent=2, allow_nan=False) + "\n")
    return 0


DEFAULT_MAX_PIXELS = 100_000_000  # fastfcn.data.images.DEFAULT_MAX_PIXELS (not imported: the CLI starts light)
PREDICT_DESCRIPTION = """\
Segment image files with a checkpoint. For every image NAME (its whole file name, extension included)
predict writes NAME_mask.png (a palette PNG whose pixel values are the class ids) and NAME_overlay.png
(the class colours blended over the image): photo.jpg -> OUT/photo.jpg_mask.png, OUT/photo.jpg_overlay.png,
so a.png and a.jpg never collide. Images found in a folder IN keep their path below OUT/IN/; the same file
name from two places gets _2, _3 after it (photo.jpg_2_mask.png). The output folder is never read as input.
A file that cannot be read or segmented, a broken link or an unreadable folder is named and skipped, the
others are still processed (exit status 1)."""


def _pixel_limit(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (no limit) or a positive number of pixels, got {text}")
    return value


def _cmd_predict(args: argparse.Namespace) -> int:
    from ..inference.predict import predict_files

    with _one_line_warnings("predict"):
        return _predict(args, predict_files)


def _predict(args: argparse.Namespace, predict_files) -> int:
    result = predict_files(args.inputs, args.checkpoint, args.out, device=args.device, multi_scale=args.ms,
                           alpha=args.alpha, progress=not args.no_progress, max_pixels=args.max_pixels,
                           mode=args.mode, runtime=args.runtime, precision=args.precision, compile=args.compile,
                           onnx_path=args.onnx)
    images = len(result.written) // 2
    note = f" ({result.skipped_non_images} non-image file(s) in folders ignored)" if result.skipped_non_images else ""
    if result.warnings:
        note += f"; {len(result.warnings)} with warnings (see above)"
    print(f"{images} image(s) segmented into {args.out}{note}")
    if args.legend:
        print(f"legend of the classes' colours: {write_legend(args.checkpoint, args.out / 'legend.png')}")
    if result.failed:
        print(f"fastfcn predict: {len(result.failed)} input(s) failed: "
              + ", ".join(str(p) for p, _ in result.failed), file=sys.stderr)
        return 1
    return 0


def _runtime_arguments(p: argparse.ArgumentParser, default_mode: str) -> None:
    g = p.add_argument_group("how the network runs")
    g.add_argument("--mode", choices=["whole", "slide"], default=default_mode,
                   help="whole: one forward of the image at long side --base-size; slide: the official sliding "
                        f"window of --crop-size crops (default {default_mode})")
    g.add_argument("--runtime", choices=["auto", "torch", "onnxruntime", "openvino"], default="auto",
                   help="auto (default): ONNX Runtime on the CPU where the deploy extra is installed, else torch's "
                        "exact path (fp32, channels_last, BatchNorm folded)")
    g.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="fp32 (default, exact) or bf16 (faster where the CPU computes bf16; a few labels change)")
    g.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile the torch path (pays off over many forwards of one size; default: in slide mode "
                        "where `fastfcn bench --fast-path` measured it to pay off on this machine for this network)")
    g.add_argument("--no-compile", dest="compile", action="store_false", help="never compile")
    g.add_argument("--onnx", type=Path, default=None, metavar="FILE",
                   help="the checkpoint exported by `fastfcn export` (default: exported once into the cache folder)")


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (default: EncNet+JPU on the offline procedural dataset)",
                       description="Train FastFCN with the official recipe (SGD, poly lr, 10x head lr, "
                                   "aux + SE losses). Unset options take the dataset's defaults.",
                       epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _train_arguments(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("eval", help="pixAcc / mIoU of a checkpoint (single- or multi-scale)")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--dataset", default=None, help="default: the dataset the checkpoint was trained on")
    p.add_argument("--root", default=None)
    p.add_argument("--split", default="val")
    p.add_argument("--num-images", type=int, default=None, help="procedural: images in the split")
    p.add_argument("--ms", action="store_true", help="multi-scale (0.5..1.75) + flip, as the paper's Table 3")
    p.add_argument("--flip", action="store_true", help="add the left-right flip at the given scales")
    p.add_argument("--scales", type=positive_float("a scale"), nargs="+", default=None)
    p.add_argument("--base-size", type=positive_int("--base-size"), default=None,
                   help="default: the training base size (520)")
    p.add_argument("--crop-size", type=positive_int("--crop-size"), default=None,
                   help="default: the training crop (480)")
    p.add_argument("--device", default="auto")
    _runtime_arguments(p, default_mode="slide")
    p.add_argument("--limit", type=positive_int("--limit"), default=None, help="evaluate the first N images only")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=1, metavar="N",
                   help="run up to N consecutive images of one size through the network together (faster for small "
                        "images; the same labels up to float rounding; default 1)")
    p.add_argument("--per-class", action="store_true", help="print every class's IoU")
    p.add_argument("--skip-bad", action="store_true",
                   help="score without the image/mask pairs the up-front data check refuses (default: stop)")
    p.add_argument("--out", type=Path, default=None, help="write the metrics as JSON here")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("predict", help="segment image files: coloured mask + overlay PNGs",
                       description=PREDICT_DESCRIPTION)
    p.add_argument("inputs", nargs="+", help="image files and/or folders (searched recursively)")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--out", required=True, type=Path, help="output folder (created; never read as input)")
    p.add_argument("--device", default="auto")
    p.add_argument("--ms", action="store_true", help="multi-scale + flip")
    _runtime_arguments(p, default_mode="whole")
    p.add_argument("--alpha", type=unit_interval("the opacity"), default=0.5, help="overlay opacity of the colours, 0..1 (0.5)")
    p.add_argument("--legend", action="store_true",
                   help="also write OUT/legend.png: each class's colour in the masks, with its name")
    p.add_argument("--max-pixels", type=_pixel_limit, default=DEFAULT_MAX_PIXELS, metavar="N",
                   help=f"refuse images of more than N pixels, read from the file's header before decoding, "
                        f"like Pillow's decompression-bomb guard (default {DEFAULT_MAX_PIXELS}, i.e. 10000 x 10000; "
                        "0: no limit)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_predict)
