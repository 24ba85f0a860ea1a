"""How long `fastfcn data check` takes on many small image/mask pairs (a benchmark, not a test).

    python scripts/bench_data_check.py                      # 10,000 pairs of 64 x 64 in a temporary folder
    python scripts/bench_data_check.py --pairs 2000 --size 256 --root /tmp/pairs --keep

Writes a folder dataset (JPEG images, PNG masks of 5 classes plus ignored pixels; 90 % train, 10 % val), then
runs ``python -m fastfcn data check --dataset folder --root DIR --json DIR/check.json`` in a fresh process
and prints the check's own time and the whole command's (Python and torch start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def make_pairs(root: Path, pairs: int, size: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("sky\nroad\ntree\ncar\nperson\n")
    n_val = max(1, pairs // 10)
    for split, count in (("train", pairs - n_val), ("val", n_val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            labels = rng.integers(0, 5, (size // 8, size // 8), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
            labels[:2, :2] = 255
            image = (labels[..., None] * 40 + rng.integers(0, 30, (size, size, 3))).astype(np.uint8)
            Image.fromarray(image).save(root / "images" / split / f"{i:06d}.jpg", quality=90)
            Image.fromarray(labels).save(root / "masks" / split / f"{i:06d}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--root", type=Path, default=None, help="where to write the pairs (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the pairs afterwards")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="fastfcn-data-check-"))
    try:
        if not (root / "classes.txt").is_file():
            t0 = time.perf_counter()
            make_pairs(root, args.pairs, args.size)
            print(f"wrote {args.pairs} pairs of {args.size}x{args.size} in {time.perf_counter() - t0:.1f} s: {root}")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "fastfcn", "data", "check", "--dataset", "folder", "--root",
                               str(root), "--json", str(root / "check.json")], env=env, capture_output=True,
                              text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            return proc.returncode
        seconds = json.loads((root / "check.json").read_text())["seconds"]
        print(f"data check of {args.pairs} pairs ({args.size}x{args.size}) on {os.cpu_count()} CPU(s): "
              f"{seconds:.2f} s checking ({args.pairs / seconds:.0f} pairs/s), {wall:.2f} s for the whole command")
        return 0
    finally:
        if not args.keep and args.root is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
