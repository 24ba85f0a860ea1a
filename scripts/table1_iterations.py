"""How many fine-tuning iterations the Table 1 miniature would need for 9x the majority-class mIoU, measured.

Fine-tunes the book's pretrained trunk (the profile's pretraining, as chapter 7 does) with the book's recipe
for a growing number of iterations (each count a separate training, since the poly schedule spans the whole
run) and evaluates each on the profile's val images. The rows measured are each head's JPU row and EncNet's
dilated row, seed 0 (the dilated rows of ASPP and PSP cost 2-3x more per iteration, and in chapter 7 they score within
two points of their JPU rows). A row still under the floor after the last count is trained twice as long, up to
``--max-iterations``. Writes what chapter 7 shows (``book/results/table1_iterations_cpu.json``):

    python scripts/table1_iterations.py --out book/results/table1_iterations_cpu.json

Per row and iteration count: mIoU, per-class IoU, training seconds and seconds per iteration on this machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from fastfcn.book.trainings import ensure_trained, ensure_trunk
from fastfcn.checkpoint import model_from_checkpoint
from fastfcn.data import PROCEDURAL_CLASSES, EvalTransform, build_dataset
from fastfcn.data.procedural import ProceduralScenes
from fastfcn.inference.evaluate import evaluate
from fastfcn.lessons.ablation import class_statistics, majority_floor
from fastfcn.profiles import Profile, get_profile
from fastfcn.training.table1 import Trunk, table1_config
from fastfcn.utils.environment import environment
from fastfcn.utils.io import atomic_write_text
from fastfcn.utils.kernels import use_portable_kernels

ROWS = [("encnet", "jpu"), ("aspp", "jpu"), ("psp", "jpu"), ("encnet", "none")]
ITERATIONS = [50, 100, 200, 400]


def fine_tune(p: Profile, head: str, upsampling: str, iterations: int, trunk: Trunk, runs_dir: Path,
              val: Any) -> dict[str, Any]:
    """One row fine-tuned from ``trunk`` for ``iterations`` (found again if ``runs_dir`` has it), evaluated."""
    cfg = replace(table1_config(p, head, upsampling, 0, device="cpu", trunk=trunk), iterations=iterations,
                  log_every=max(1, iterations // 50))
    t = ensure_trained(cfg, runs_dir)
    model, _ = model_from_checkpoint(t.checkpoint)
    size = p.train_image_size
    ev = evaluate(model, val, base_size=size, crop_size=size, device="cpu", progress=False)
    return {"head": head, "upsampling": upsampling, "seed": 0, "iterations": iterations, "miou": 100 * ev["mIoU"],
            "class_iou": {c: None if v is None else 100 * v for c, v in ev["iou"].items()},
            "train_s": t.train_s, "s_per_it": t.s_per_it}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--runs", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    ap.add_argument("--iterations", type=int, nargs="+", default=ITERATIONS)
    ap.add_argument("--max-iterations", type=int, default=800,
                    help="a row still under the floor after the last of --iterations is trained twice as long, "
                         "then again, up to this many iterations")
    args = ap.parse_args()
    print(use_portable_kernels())  # before the first tensor operation: the numbers chapter 7 trains
    p = get_profile(args.profile)
    size = p.train_image_size
    val = build_dataset("procedural", "val", image_size=size, num_images=p.ablation_val_images,
                        transform=EvalTransform())
    share, _ = class_statistics(torch.stack([val[i][1] for i in range(len(val))]), len(PROCEDURAL_CLASSES))
    floor = majority_floor(share)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs or Path(tmp)
        trunk = ensure_trunk(p, 0, runs_dir, device="cpu")
        for h, u in tqdm(ROWS, desc="rows"):
            counts = list(args.iterations)
            while counts:
                n = counts.pop(0)
                runs.append(fine_tune(p, h, u, n, trunk, runs_dir, val))
                tqdm.write(f"{h}+{u} {n:4d} iterations: mIoU {runs[-1]['miou']:.1f} (floor {floor:.1f}), "
                           f"{runs[-1]['train_s']:.0f} s")
                if not counts and runs[-1]["miou"] < floor and 2 * n <= args.max_iterations:
                    counts.append(2 * n)  # not there yet: twice as long, up to --max-iterations
        pretrain = {"iterations": p.pretrain_iterations, "train_s": trunk.training.train_s}
    doc = {"environment": environment("cpu"), "profile": p.name, "scene_version": ProceduralScenes.version,
           "backbone": p.small_backbone, "batch": p.ablation_batch_size, "image_size": size,
           "val_images": p.ablation_val_images, "majority_floor": floor, "pretraining": pretrain, "runs": runs}
    atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
