"""Where one forward spends its time in torch and in ONNX Runtime, by kind of op and by convolution shape.

    python scripts/profile_ops.py --row encnet/resnet50/jpu --variant fold_bn --size 512 --out /tmp/ops.json

Random weights (the time does not depend on them), batch 1, this process's threads for both runtimes; see
:mod:`fastfcn.benchmark.op_profile`. Prints two tables (milliseconds per forward and their ratio) and,
with ``--out``, writes the numbers as JSON. Needs the ``deploy`` extra (onnx, onnxruntime).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from fastfcn.benchmark.models import build_spec_model
from fastfcn.benchmark.op_profile import profile_model
from fastfcn.benchmark.options import BenchOptions
from fastfcn.benchmark.specs import parse_rows
from fastfcn.utils.environment import environment
from fastfcn.utils.io import atomic_write_text


def _table(title: str, rows: list[tuple[str, float, float]]) -> str:
    lines = [f"{title:38s} {'torch ms':>9s} {'ORT ms':>9s} {'torch/ORT':>9s}"]
    for name, ours, theirs in rows:
        ratio = f"{ours / theirs:9.2f}" if theirs > 0 else f"{'-':>9s}"
        lines.append(f"{name:38s} {ours:9.1f} {theirs:9.1f} {ratio}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--row", default="encnet/resnet50/jpu", help="a Table 2 row: head/backbone/upsampling")
    parser.add_argument("--variant", default="fold_bn", help="the torch fast-path variant profiled")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", help="write the numbers here as JSON")
    args = parser.parse_args(argv)
    try:
        (spec,) = parse_rows(args.row)
    except ValueError as exc:
        print(f"profile_ops: {exc}", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    model = build_spec_model(spec, BenchOptions())
    result = profile_model(model, args.variant, args.size, args.runs)
    ours, theirs = result["torch"]["total_ms"], result["onnxruntime"]["total_ms"]
    print(f"{args.row}, {args.size}x{args.size}, torch {args.variant} against ONNX Runtime fp32, "
          f"{torch.get_num_threads()} threads, {args.runs} profiled runs each")
    print(_table("kind of op", [*result["compared"]["kinds"], ("all", ours, theirs)]))
    print()
    print(_table("convolution (input * weight)", result["compared"]["convolutions"]))
    if args.out:
        doc = {"environment": environment("cpu"), "row": args.row, **result}
        atomic_write_text(args.out, json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
