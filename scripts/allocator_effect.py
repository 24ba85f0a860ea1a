"""What keeping freed memory saves, measured in one run: glibc's malloc defaults against fastfcn's settings.

    python scripts/allocator_effect.py                                   # EncNet+JPU R50s forward, 512x512
    python scripts/allocator_effect.py --kind training --row encnet+jpu  # a Table 1 training step (quick)

Each measurement runs in a fresh process (the allocator is set at ``import fastfcn``), the two settings
alternating; see :mod:`fastfcn.benchmark.allocator_effect` and :mod:`fastfcn.utils.allocator`.
"""

from __future__ import annotations

import argparse
import json
import sys

from fastfcn.benchmark.allocator_effect import allocator_effect, format_allocator_effect
from fastfcn.utils.environment import environment
from fastfcn.utils.io import atomic_write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=("forward", "training"), default="forward")
    parser.add_argument("--row", help="forward: a Table 2 row head/backbone/upsampling (default encnet/resnet50/jpu); "
                                      "training: a Table 1 row head+upsampling (default encnet+jpu)")
    parser.add_argument("--variant", default="channels_last+fold_bn", help="the fast-path variant of a forward")
    parser.add_argument("--size", type=int, default=512, help="the forward's image side")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per process")
    parser.add_argument("--rounds", type=int, default=2, help="processes per setting")
    parser.add_argument("--out", help="write the numbers here as JSON")
    args = parser.parse_args(argv)
    row = args.row or ("encnet/resnet50/jpu" if args.kind == "forward" else "encnet+jpu")
    try:
        result = allocator_effect(args.kind, row, args.variant, args.size, args.runs, args.rounds)
    except (ValueError, RuntimeError) as exc:
        print(f"allocator_effect: {exc}", file=sys.stderr)
        return 2
    print(format_allocator_effect(result))
    if args.out:
        atomic_write_text(args.out, json.dumps({"environment": environment("cpu"), **result}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
