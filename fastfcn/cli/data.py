"""The ``data check`` sub-command: the up-front dataset check of ``train``/``eval`` on its own, with statistics."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["add_subcommands", "PER_CLASS_DATASETS", "check_eval_data", "refused_data", "with_init_architecture",
           "write_legend"]

PER_CLASS_DATASETS = ("folder", "cityscapes")  # eval prints every class's IoU without --per-class

DESCRIPTION = """\
Check every image/mask pair of a dataset on disk, as train and eval do before their first iteration: images
without a mask and masks without an image, unreadable files, sizes that differ, mask values that are neither a
class nor the ignore value (file, value, pixel count), an empty split. Prints the problems, the pixels of each
class and the image sizes; --json writes all of it. Exit status 0 when every split is clean, 1 otherwise."""


def refused_data(command: str, exc: Exception) -> int:
    """The data check's report (several lines: the files and what is wrong with each); exit status 1."""
    print(f"fastfcn {command}: error: {exc}", file=sys.stderr)
    return 1


def check_eval_data(datasets: list, skip_bad: bool) -> None:
    """Every pair of an on-disk dataset checked before the first image is scored (:mod:`fastfcn.data.check`)."""
    from ..data.check import check_or_raise
    from ..data.registry import ON_DISK

    if datasets and getattr(datasets[0], "name", None) in ON_DISK:
        check_or_raise(datasets, skip_bad, "evaluated",
                       warn=lambda text: print(f"fastfcn eval: warning: {text}", file=sys.stderr))


def with_init_architecture(given: dict) -> dict:
    """``train --init`` without ``--head``/``--backbone``/``--upsampling``/``--jpu-width``: those of the
    checkpoint's model, so that its tensors fit (said on stdout, before the run's other reports)."""
    if not given.get("init"):
        return given
    from ..training.warm_start import init_architecture

    taken = {k: v for k, v in init_architecture(given["init"]).items() if k not in given}
    if taken:
        print("fastfcn train: --init: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in taken.items())
              + f"\n  as in {given['init']}", flush=True)
    return {**taken, **given}


def write_legend(checkpoint: Path, path: Path) -> Path:
    """``predict --legend``: every class's colour in the masks (the checkpoint's dataset palette) and its name."""
    from ..checkpoint import load_checkpoint
    from ..data.images import save_png
    from ..data.palette import class_colours, legend_image

    ckpt = load_checkpoint(checkpoint)
    num_classes = int(ckpt["config"].get("num_classes", len(ckpt.get("classes") or [])))
    classes = list(ckpt.get("classes") or [f"class {k}" for k in range(num_classes)])
    image = legend_image(classes, class_colours(num_classes, ckpt.get("palette")))
    return save_png(image, path)


def _frequency_lines(report) -> list[str]:
    total = sum(report.class_pixels.values())
    lines = [f"  {'class':>24s}  {'pixels':>12s}  share"]
    for name, count in report.class_pixels.items():
        share = f"{100 * count / total:6.2f}%" if total else "     -"
        lines.append(f"  {name:>24s}  {count:12d}  {share}{'   (no pixels)' if count == 0 else ''}")
    lines.append(f"  {'(ignored)':>24s}  {report.ignored_pixels:12d}")
    return lines


def _size_line(report) -> str:
    stats = report.size_statistics()
    if not stats["images"]:
        return "  image sizes: no readable image"
    w, h = stats["width"], stats["height"]
    return (f"  image sizes ({stats['images']} images, {stats['distinct_sizes']} distinct): width {w['min']}.."
            f"{w['max']} (median {w['median']:g}), height {h['min']}..{h['max']} (median {h['median']:g})")


def _cmd_check(args: argparse.Namespace) -> int:
    from ..data import build_dataset
    from ..data.check import check_dataset
    from ..data.registry import ON_DISK
    from ..utils.io import atomic_write_text

    if args.dataset not in ON_DISK:
        raise ValueError(f"data check reads datasets on disk: choose one of {', '.join(ON_DISK)}")
    kwargs = {k: v for k, v in (("ignore_value", args.ignore_value), ("val_fraction", args.val_fraction))
              if v is not None}
    if kwargs and args.dataset != "folder":
        raise ValueError("--ignore-value and --val-fraction apply to --dataset folder only")
    reports, start = [], time.perf_counter()
    for split in args.split:
        report = check_dataset(build_dataset(args.dataset, split=split, root=args.root, **kwargs))
        reports.append(report)
        print(f"{args.dataset} {split}: {report.pairs} image/mask pairs, "
              f"{'no problems' if report.ok else f'{len(report.problems)} problem(s)'}")
        if not report.ok:
            print(report.describe(), file=sys.stderr)
        print("\n".join([*_frequency_lines(report), _size_line(report)]))
    seconds = time.perf_counter() - start
    print(f"checked {sum(r.pairs for r in reports)} pairs in {seconds:.2f} s")
    if args.json:
        record = {"seconds": seconds, "splits": {r.split: r.to_json() for r in reports}}
        atomic_write_text(args.json, json.dumps(record, indent=2) + "\n")
    return 0 if all(r.ok for r in reports) else 1


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="check a dataset on disk (data check)")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    c = data_sub.add_parser("check", help="check every image/mask pair; class pixel shares, image sizes",
                            description=DESCRIPTION)
    c.add_argument("--dataset", required=True, help="folder, cityscapes, pcontext, pcontext60 or ade20k")
    c.add_argument("--root", required=True, help="the dataset folder")
    c.add_argument("--split", nargs="+", default=["train", "val"], help="the splits to check (train val)")
    c.add_argument("--ignore-value", type=int, default=None, help="folder: the mask value of ignored pixels (255)")
    c.add_argument("--val-fraction", type=float, default=None,
                   help="folder without images/val: the share of the pairs that is val (0.2)")
    c.add_argument("--json", type=Path, default=None, metavar="OUT",
                   help="write the problems, class pixel counts and size statistics as JSON (atomically)")
    c.set_defaults(func=_cmd_check)
