"""int8 against fp32 on a trained checkpoint, measured in one run (see :mod:`fastfcn.benchmark.int8`).

    fastfcn train --backbone resnet50s --jpu-width 512 --epochs 8 --eval-limit 50 --out-dir runs/encjpu_r50s
    python scripts/int8_effect.py runs/encjpu_r50s/last.pth --out book/results/int8_cpu_trained.json

Chapter 6 reads the JSON file and says on which machine it was measured.
"""

from __future__ import annotations

import argparse
import json
import sys

from fastfcn.benchmark.int8 import format_int8_effect, int8_effect
from fastfcn.checkpoint import CheckpointReadError
from fastfcn.utils.environment import environment
from fastfcn.utils.io import atomic_write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="a trained fastfcn checkpoint (.pth)")
    parser.add_argument("--size", type=int, default=512, help="the timed image's side (512)")
    parser.add_argument("--calibration", type=int, default=32, help="training scenes the ranges are measured on")
    parser.add_argument("--images", type=int, default=20, help="validation scenes scored")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds")
    parser.add_argument("--out", help="write the numbers here as JSON")
    args = parser.parse_args(argv)
    try:
        result = int8_effect(args.checkpoint, args.size, args.calibration, args.images, args.runs)
    except (ValueError, RuntimeError, OSError, CheckpointReadError) as exc:
        print(f"int8_effect: {exc}", file=sys.stderr)
        return 2
    print(format_int8_effect(result))
    if args.out:
        atomic_write_text(args.out, json.dumps({"environment": environment("cpu"), "int8": result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
