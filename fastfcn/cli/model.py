"""``fastfcn convert``, ``fastfcn export`` and ``fastfcn complexity``: the network and its checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

from .arguments import positive_int, unit_interval

__all__ = ["add_subcommands"]


def _check_convert_out(out: Path, overwrite: bool) -> None:
    if out.is_dir():
        raise ValueError(f"the output {out} is a folder; give the file to write, e.g. {out / 'model.pth'}")
    if out.exists() and not overwrite:
        raise ValueError(f"the output {out} already exists; pass --overwrite to replace it")
    for parent in out.absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"cannot write {out}: {parent} is a file, not a folder")


def _cmd_convert(args: argparse.Namespace) -> int:
    from ..checkpoint import save_checkpoint
    from ..models.official import load_official

    out = Path(args.out).expanduser()
    _check_convert_out(out, args.overwrite)
    model = load_official(args.checkpoint, head=args.head, backbone=args.backbone, upsampling=args.upsampling,
                          num_classes=args.num_classes, trusted=args.trusted)
    save_checkpoint(model, out, classes=None, source=str(args.checkpoint))
    print(f"converted {args.checkpoint} -> {args.out} ({model.config})")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ..inference.export import (
        CALIBRATION_IMAGES,
        INT8_MIN_AGREEMENT,
        MAX_ABS_DIFF,
        MIN_AGREEMENT,
        export_checkpoint,
    )

    out = Path(args.out).expanduser()
    _check_convert_out(out, args.overwrite)
    if not Path(args.checkpoint).is_file():
        raise ValueError(f"checkpoint {args.checkpoint} not found: give a file written by `fastfcn train` "
                         "(its last.pth) or `fastfcn convert`")
    int8_only = (args.calibration_images, args.calibration_count, args.int8_min_agreement)
    if not args.int8 and any(a is not None for a in int8_only):
        raise ValueError("--calibration-images, --calibration-count and --int8-min-agreement are for an int8 "
                         "graph: add --int8")
    print(f"exporting {args.checkpoint} to ONNX and checking it in ONNX Runtime"
          f"{', then quantizing it to int8' if args.int8 else ''} ...")
    r = export_checkpoint(args.checkpoint, out, images=args.images, size=args.size,
                          max_abs_diff=MAX_ABS_DIFF if args.max_abs_diff is None else args.max_abs_diff,
                          min_agreement=MIN_AGREEMENT if args.min_agreement is None else args.min_agreement,
                          int8=args.int8, calibration_folder=args.calibration_images,
                          calibration_count=args.calibration_count or CALIBRATION_IMAGES,
                          int8_min_agreement=(INT8_MIN_AGREEMENT if args.int8_min_agreement is None
                                              else args.int8_min_agreement))
    sizes = ", ".join("x".join(map(str, s)) for s in r["sizes"])
    print(f"checked on {r['images']} procedural scenes ({sizes}): logits differ by at most {r['max_abs_diff']:.2g} "
          f"(allowed {r['max_abs_diff_allowed']:g}), labels agree on {100 * r['agreement']:.4f} % "
          f"(needed {100 * r['min_agreement']:g} %)")
    size = r["bytes"]
    if "int8" in r:
        q = r["int8"]
        size = q["bytes"]
        print(f"int8: calibrated on {q['calibration_images']} training images in {q['quantize_s']:.0f} s; its labels "
              f"agree with the model's on {100 * q['agreement']:.2f} % of the same pixels (needed "
              f"{100 * q['min_agreement']:g} %); speed and mIoU against fp32 are measured in chapter 6")
    print(f"wrote {out} ({size / 2**20:.0f} MiB, exported in {r['export_s']:.0f} s); run it with "
          f"`fastfcn predict IMAGES --checkpoint {args.checkpoint} --onnx {out} --out OUT`")
    return 0


def _cmd_complexity(args: argparse.Namespace) -> int:
    from ..complexity import complexity
    from ..models import build_model

    model = build_model(args.head, backbone=args.backbone, upsampling=args.upsampling,
                        num_classes=args.num_classes, aux_loss=not args.no_aux)
    c = complexity(model, args.size)
    print(f"{args.head} {args.backbone} {args.upsampling} @ {args.size}x{args.size}: "
          f"{c.params / 1e6:.1f} M params, {c.gmacs:.1f} GMACs, {c.activation_bytes / 2**20:.0f} MiB activations")
    return 0


def _model_args(p: argparse.ArgumentParser, backbone: str = "resnet50s") -> None:
    p.add_argument("--head", required=True, choices=["encnet", "aspp", "psp", "fcn"])
    p.add_argument("--backbone", default=backbone)
    p.add_argument("--upsampling", default="jpu", choices=["none", "bilinear", "fpn", "jpu"])
    p.add_argument("--num-classes", type=int, default=59)


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert an official FastFCN checkpoint into a fastfcn checkpoint")
    p.add_argument("checkpoint", help="official .pth.tar (torch.save'd dict with 'state_dict')")
    p.add_argument("out", help="output .pth (not replaced if it exists, unless --overwrite)")
    _model_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--trusted", action="store_true",
                   help="unpickle the whole file (needed when it holds non-tensor objects); only for trusted files")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("export", help="write a checkpoint as an ONNX graph (checked in ONNX Runtime)",
                       description="Export the main output of a fastfcn checkpoint to ONNX (batch, height and width "
                                   "free; at least 33 pixels a side), run it in ONNX Runtime beside the model on "
                                   "procedural scenes and write it only if the two agree. Needs the deploy extra: "
                                   "pip install -e '.[deploy]'.")
    p.add_argument("checkpoint", type=Path, help="a fastfcn checkpoint (fastfcn train / fastfcn convert)")
    p.add_argument("out", help="the .onnx file to write (not replaced if it exists, unless --overwrite)")
    p.add_argument("--images", type=int, default=3, help="procedural scenes of the check (3, plus one 3:4 crop)")
    p.add_argument("--size", type=int, default=None, help="their side (the training size of a procedural "
                                                          "checkpoint, else 256)")
    # defaults in fastfcn.inference.export (not imported here: the command line starts without torch)
    p.add_argument("--max-abs-diff", type=float, default=None, help="largest allowed difference of the logits (1e-3)")
    p.add_argument("--min-agreement", type=unit_interval("the share of labels"), default=None, help="least share of labels that agree (0.999)")
    p.add_argument("--int8", action="store_true",
                   help="write the graph quantized to int8 (ONNX Runtime static quantization, calibrated on the "
                        "training data); faster on a CPU, labels move at class boundaries (chapter 6)")
    p.add_argument("--calibration-images", type=Path, default=None,
                   help="with --int8: a folder of training images to calibrate on (needed unless the checkpoint "
                        "was trained on the procedural scenes, which are generated)")
    p.add_argument("--calibration-count", type=positive_int("the number of calibration images"), default=None,
                   help="with --int8: how many calibration images (32)")
    p.add_argument("--int8-min-agreement", type=unit_interval("the share of labels"), default=None,
                   help="with --int8: least share of the int8 graph's labels that agree with the model's (0.95)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("complexity", help="parameters, GMACs and activation memory of one configuration")
    _model_args(p, backbone="resnet50")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--no-aux", action="store_true")
    p.set_defaults(func=_cmd_complexity)
