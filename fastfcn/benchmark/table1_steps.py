"""The training step of every row of the book's Table 1 miniature, run every way this CPU offers, as ratios.

``fastfcn bench --table1-steps`` prints it: for each row (and the shared trunk's pretraining), the median seconds
of one training step in fp32 with PyTorch's default layout, the other paths as speed-ups over it, and the row's
step time as a share of its head's dilated row. All cells are measured interleaved in one run (see
:func:`fastfcn.training.step_time.time_paths`), so the ratios compare like with like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..data.scene import CLASSES
from ..profiles import get_profile
from ..training.step_time import TRAINING_PATHS, time_paths
from ..training.table1 import pretrain_config, table1_config, table1_rows
from ..utils.device import bf16_supported
from ..utils.environment import environment

__all__ = ["table1_steps", "format_table1_steps"]


def table1_steps(profile: str = "quick", paths: Sequence[str] = tuple(TRAINING_PATHS), *, runs: int = 3,
                 warmup: int = 1, device: str = "cpu") -> dict[str, Any]:
    """Seconds per training step of every Table 1 row of ``profile`` (and of the trunk's pretraining) per path.

    Returns ``{"rows": [{"row", "head", "upsampling", "seconds": {path: s}, "speedup": {path: x}, ...}],
    "paths", "not_timed", "environment", ...}``; bf16 is listed in ``not_timed`` where the CPU emulates it.
    """
    p = get_profile(profile)
    if p.name == "full":
        raise ValueError("the full profile's rows train on a GPU; time them with --modes train instead")
    rows = table1_rows(p.ablation_heads)
    configs = [pretrain_config(p, 0, device=device), *[table1_config(p, h, u, 0, device=device) for h, u in rows]]
    names = [("pretrain", "fcn", "bilinear"), *[(f"{h}+{u}", h, u) for h, u in rows]]
    seconds = time_paths(configs, len(CLASSES), paths, runs=runs, warmup=warmup, device=device)
    timed = [q for q in paths if (0, q) in seconds]
    out = []
    for i, (name, head, ups) in enumerate(names):
        s = {q: seconds[i, q] for q in timed}
        out.append({"row": name, "head": head, "upsampling": ups, "seconds": s,
                    "speedup": {q: s["fp32"] / v for q, v in s.items()} if "fp32" in s else {}})
    for r in out:  # each row's best time against its head's dilated row's best time
        dilated = next((d for d in out if d["head"] == r["head"] and d["upsampling"] == "none"), None)
        r["x_dilated"] = min(r["seconds"].values()) / min(dilated["seconds"].values()) if dilated else None
    return {"profile": p.name, "backbone": p.small_backbone, "batch": p.ablation_batch_size,
            "image_size": p.train_image_size, "runs": runs, "warmup": warmup, "paths": timed,
            "not_timed": [q for q in paths if q not in timed], "bf16_native": bf16_supported(device),
            "rows": out, "environment": environment(device)}


def format_table1_steps(result: Mapping[str, Any]) -> str:
    """A terminal table: seconds in fp32, the speed-up of every other path, the best path, x the dilated row."""
    paths = list(result["paths"])
    head = ["row", "fp32 s"] + [f"{q} x" for q in paths if q != "fp32"] + ["fastest", "x dilated"]
    lines = [head]
    for r in result["rows"]:
        best = min(r["seconds"], key=r["seconds"].get)
        lines.append([r["row"], f"{r['seconds'].get('fp32', float('nan')):.3f}"]
                     + [f"{r['speedup'][q]:.2f}" for q in paths if q != "fp32"]
                     + [best, "-" if r["x_dilated"] is None else f"{r['x_dilated']:.2f}"])
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    text = "\n".join("  ".join(str(c).rjust(w) if k else str(c).ljust(w) for k, (c, w) in
                               enumerate(zip(row, widths, strict=True))) for row in lines)
    env = result["environment"]
    note = (f"{env.get('cpu_model', '?')} ({env.get('cpu_capability', '?')}), torch {env.get('torch', '?')}: "
            f"{result['backbone']}, batch {result['batch']} x {result['image_size']} px, median of {result['runs']} "
            f"interleaved steps after {result['warmup']} warm-up")
    if result["not_timed"]:
        note += f"; not timed (this CPU emulates bf16): {', '.join(result['not_timed'])}"
    return note + "\n" + text
