"""Two designs of the Table 1 miniature, measured: every row from scratch, or every row fine-tuned from one trunk.

Trains the profile's eight rows x two seeds twice, with the book's recipe (float32, the same data and
iterations for every row) and evaluates each on the profile's val images:

* ``pretrained``: the design the book uses. The trunk is pretrained once (:func:`fastfcn.book.trainings.
  ensure_trunk`: a plain FCN on scenes no row sees) and every row fine-tunes it for ``ablation_iterations``;
* ``scratch``: every row from random weights, for as many more iterations as the pretraining cost, so that both
  designs spend the same training time (pretraining time / the summed step time of the sixteen rows).

and writes what chapter 7 shows (``book/results/table1_designs_cpu.json``):

    python scripts/compare_table1_designs.py --out book/results/table1_designs_cpu.json

Per design: mIoU per row and seed, the weakest row against 9x the majority-class mIoU, the EncNet ranking
against the paper's, how many heads keep JPU within the seed spread of or above dilated, the seed spread, and
the training time on this machine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from fastfcn import paper
from fastfcn.book.trainings import ensure_trained, ensure_trunk
from fastfcn.checkpoint import model_from_checkpoint
from fastfcn.data import PROCEDURAL_CLASSES, EvalTransform, build_dataset
from fastfcn.data.procedural import ProceduralScenes
from fastfcn.inference.evaluate import evaluate
from fastfcn.lessons.ablation import class_statistics, majority_floor
from fastfcn.profiles import get_profile
from fastfcn.training.table1 import TABLE1_UPSAMPLINGS, table1_config, table1_rows
from fastfcn.utils.environment import environment
from fastfcn.utils.io import atomic_write_text
from fastfcn.utils.kernels import use_portable_kernels


def train_design(p, rows, seeds, runs_dir: Path, iterations: int, trunk) -> dict:
    from dataclasses import replace

    out = {}
    for s in seeds:
        for h, u in rows:
            cfg = replace(table1_config(p, h, u, s, device="cpu", trunk=trunk), iterations=iterations,
                          log_every=max(1, iterations // 50))
            out[h, u, s] = ensure_trained(cfg, runs_dir)
            print(f"  {h}+{u} seed {s}: {out[h, u, s].status}, {out[h, u, s].s_per_it:.3f} s/it", flush=True)
    return out


def score(trainings: dict, val, p) -> dict:
    result = {}
    for key, t in trainings.items():
        model, _ = model_from_checkpoint(t.checkpoint)
        ev = evaluate(model, val, base_size=p.train_image_size, crop_size=p.train_image_size, device="cpu",
                      limit=p.ablation_val_images, progress=False)
        result[key] = {"miou": 100 * ev["mIoU"], "pixacc": 100 * ev["pixAcc"], "train_s": t.train_s,
                       "s_per_it": t.s_per_it, "iterations": t.iterations}
    return result


def summarize(scores: dict, rows, seeds, floor: float, extra_s: float) -> dict:
    per_row = {}
    for h, u in rows:
        m = np.array([scores[h, u, s]["miou"] for s in seeds])
        per_row[f"{h}/{u}"] = {"miou": float(m.mean()), "range": float(np.ptp(m)), "seeds": m.tolist()}
    t1 = {(r.head, r.upsampling): r.miou for r in paper.TABLE1 if r.backbone == "resnet50"}
    enc = TABLE1_UPSAMPLINGS["encnet"]
    order = sorted(enc, key=lambda u: -per_row[f"encnet/{u}"]["miou"])
    paper_order = sorted(enc, key=lambda u: -t1["encnet", u])
    heads = sorted({h for h, _ in rows})
    jpu_holds = [h for h in heads if per_row[f"{h}/jpu"]["miou"] - per_row[f"{h}/none"]["miou"]
                 >= -max(per_row[f"{h}/jpu"]["range"], per_row[f"{h}/none"]["range"])]
    weakest = min(per_row, key=lambda k: per_row[k]["miou"])
    return {"rows": per_row, "weakest": weakest, "weakest_miou": per_row[weakest]["miou"],
            "rows_at_9x_majority": sum(v["miou"] >= floor for v in per_row.values()),
            "ranking": order, "paper_ranking": paper_order, "ranking_agrees": order == paper_order,
            "jpu_within_spread_or_above": jpu_holds, "mean_seed_range": float(np.mean([v["range"] for v in
                                                                                      per_row.values()])),
            "train_s": float(sum(v["train_s"] for v in scores.values()) + extra_s), "pretrain_s": extra_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--runs", type=Path, default=None, help="where the runs go (default: a temporary folder)")
    args = ap.parse_args()
    print(use_portable_kernels())  # before the first tensor operation: the numbers chapter 7 trains
    torch.manual_seed(0)
    p = get_profile(args.profile)
    rows, seeds = table1_rows(p.ablation_heads), list(range(p.ablation_seeds))
    val = build_dataset("procedural", "val", image_size=p.train_image_size, transform=EvalTransform())
    masks = torch.stack([val[i][1] for i in range(p.ablation_val_images)])
    share, _ = class_statistics(masks, len(PROCEDURAL_CLASSES))
    floor = majority_floor(share)
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or Path(tmp)
        print("design 'pretrained': the trunk, then the rows", flush=True)
        trunk = ensure_trunk(p, 0, runs / "pretrained", device="cpu")
        pre = train_design(p, rows, seeds, runs / "pretrained", p.ablation_iterations, trunk)
        pretrain_s = trunk.training.train_s
        per_iteration = sum(t.s_per_it for t in pre.values())
        extra = round(pretrain_s / per_iteration)
        print(f"pretraining {pretrain_s:.0f} s = {extra} iterations of all {len(pre)} rows", flush=True)
        print(f"design 'scratch': {p.ablation_iterations + extra} iterations per row", flush=True)
        scratch = train_design(p, rows, seeds, runs / "scratch", p.ablation_iterations + extra, None)
        designs = {"pretrained": (score(pre, val, p), pretrain_s, p.ablation_iterations),
                   "scratch": (score(scratch, val, p), 0.0, p.ablation_iterations + extra)}
    doc = {"environment": environment("cpu"), "profile": p.name, "scene_version": ProceduralScenes.version,
           "backbone": p.small_backbone, "batch": p.ablation_batch_size, "image_size": p.train_image_size,
           "pretrain_iterations": p.pretrain_iterations, "val_images": p.ablation_val_images,
           "majority_floor": floor, "designs": {}}
    for name, (sc, extra_s, its) in designs.items():
        doc["designs"][name] = {"iterations": its, **summarize(sc, rows, seeds, floor, extra_s),
                                "runs": [{"head": h, "upsampling": u, "seed": s, **v} for (h, u, s), v in sc.items()]}
    atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    for name, d in doc["designs"].items():
        print(f"{name}: {d['iterations']} iterations, {d['train_s']:.0f} s; weakest {d['weakest']} "
              f"{d['weakest_miou']:.1f} (floor {floor:.1f}); ranking {' > '.join(d['ranking'])}; "
              f"JPU holds for {d['jpu_within_spread_or_above']}; mean seed range {d['mean_seed_range']:.1f}")
        for k, v in d["rows"].items():
            print(f"   {k:16s} {v['miou']:5.1f}  range {v['range']:.1f}")


if __name__ == "__main__":
    main()
