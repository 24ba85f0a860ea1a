"""bf16 autocast + channels_last against float32 training on the CPU: loss curves, final mIoU, step time.

Trains EncNet with JPU and with the dilated backbone for two seeds each, in float32 and in bf16 +
channels_last, with the ``quick`` profile's Table 1 recipe (the same data, iterations and initial
weights), evaluates each on the profile's val images and writes the comparison as JSON:

    python scripts/compare_training_precision.py --out book/results/training_precision_cpu.json

The question it answers (issue "The whole of Table 1"): does bf16 training stay within the seed
spread of float32 training, before the book trains in bf16 by default?
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from fastfcn.book.trainings import ensure_trained
from fastfcn.checkpoint import model_from_checkpoint
from fastfcn.data import EvalTransform, build_dataset
from fastfcn.inference.evaluate import evaluate
from fastfcn.profiles import get_profile
from fastfcn.training.table1 import table1_config
from fastfcn.utils.device import bf16_supported
from fastfcn.utils.environment import environment
from fastfcn.utils.io import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    p = get_profile(args.profile)
    if not bf16_supported("cpu"):
        raise SystemExit("this CPU has no native bf16: bf16 training would fall back to float32; nothing to compare")
    val = build_dataset("procedural", "val", image_size=p.train_image_size, transform=EvalTransform())
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for up in ("jpu", "none"):
            for seed in range(args.seeds):
                for precision in ("fp32", "bf16"):
                    cfg = table1_config(p, "encnet", up, seed, device="cpu")   # float32 by default
                    if precision == "bf16":
                        cfg = replace(cfg, amp=True, channels_last=True)
                    else:
                        cfg = replace(cfg, amp=False, channels_last=False)
                    t = ensure_trained(cfg, tmp)
                    model, _ = model_from_checkpoint(t.checkpoint)
                    ev = evaluate(model, val, base_size=p.train_image_size, crop_size=p.train_image_size,
                                  device="cpu", limit=p.ablation_val_images, progress=False)
                    runs.append({"upsampling": up, "seed": seed, "precision": precision, "miou": ev["mIoU"],
                                 "pixacc": ev["pixAcc"], "s_per_it": t.s_per_it,
                                 "loss": [(s["iteration"], s["loss"]) for s in t.steps]})
                    print(f"{up:5s} seed {seed} {precision}: mIoU {100 * ev['mIoU']:.1f}%  "
                          f"{t.s_per_it:.3f} s/it", flush=True)
    summary = {}
    for up in ("jpu", "none"):
        for precision in ("fp32", "bf16"):
            sel = [r for r in runs if r["upsampling"] == up and r["precision"] == precision]
            miou = np.array([r["miou"] for r in sel]) * 100
            last = [np.mean([v for _, v in r["loss"][-5:]]) for r in sel]
            summary[f"{up}/{precision}"] = {"miou_mean": float(miou.mean()), "miou_range": float(np.ptp(miou)),
                                            "final_loss_mean": float(np.mean(last)),
                                            "s_per_it": float(np.mean([r["s_per_it"] for r in sel]))}
    from fastfcn.data.procedural import ProceduralScenes

    doc = {"environment": environment("cpu"), "profile": args.profile, "iterations": p.ablation_iterations,
           "scene_version": ProceduralScenes.version,
           "runs": runs, "summary": summary}
    atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    for k, v in summary.items():
        print(k, {kk: round(vv, 3) for kk, vv in v.items()})


if __name__ == "__main__":
    main()
