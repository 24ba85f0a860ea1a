"""The ``fastfcn`` command line. Each sub-command is a small function; ``main`` dispatches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def _cmd_convert(args: argparse.Namespace) -> int:
    from .checkpoint import save_checkpoint
    from .official import load_official

    model = load_official(args.checkpoint, head=args.head, backbone=args.backbone, upsampling=args.upsampling,
                          num_classes=args.num_classes, trusted=args.trusted)
    save_checkpoint(model, args.out, classes=None, source=str(args.checkpoint))
    print(f"converted {args.checkpoint} -> {args.out} ({model.config})")
    return 0


def _cmd_complexity(args: argparse.Namespace) -> int:
    from .complexity import complexity
    from .model import build_model

    model = build_model(args.head, backbone=args.backbone, upsampling=args.upsampling,
                        num_classes=args.num_classes, aux=not args.no_aux)
    c = complexity(model, args.size)
    print(f"{args.head} {args.backbone} {args.upsampling} @ {args.size}x{args.size}: "
          f"{c.params / 1e6:.1f} M params, {c.gmacs:.1f} GMACs, {c.activation_bytes / 2**20:.0f} MiB activations")
    return 0


def _cmd_book_run(args: argparse.Namespace) -> int:
    from .book import BOOK_DIR, run_book

    book_dir = args.book_dir or BOOK_DIR
    summary = run_book(book_dir, args.out, profile=args.profile, device=args.device, seed=args.seed,
                       only=args.only, force=args.force, cell_timeout=args.cell_timeout)
    executed = [s for s in summary if s["status"] == "executed"]
    print(f"{len(executed)} chapter(s) executed, {len(summary) - len(executed)} cached; "
          f"outputs in {args.out or book_dir / '_executed'}")
    return 0


def _cmd_book_build(args: argparse.Namespace) -> int:
    import time

    from .book import BOOK_DIR, build_book, stale_chapters

    start = time.perf_counter()
    book_dir = args.book_dir or BOOK_DIR
    for note in stale_chapters(book_dir, args.executed):
        print(f"warning: {note}; `python -m fastfcn book run` brings it up to date", file=sys.stderr)
    index = build_book(book_dir, args.executed, args.output, stems=args.only or None)
    print(f"the book is at {index.resolve()} (built in {time.perf_counter() - start:.0f} s)")
    return 0


def _model_args(p: argparse.ArgumentParser, backbone: str = "resnet50s") -> None:
    p.add_argument("--head", required=True, choices=["encnet", "aspp", "psp", "fcn"])
    p.add_argument("--backbone", default=backbone)
    p.add_argument("--upsampling", default="jpu", choices=["none", "bilinear", "fpn", "jpu"])
    p.add_argument("--num-classes", type=int, default=59)


def build_parser() -> argparse.ArgumentParser:
    from .profiles import PROFILES

    parser = argparse.ArgumentParser(prog="fastfcn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("convert", help="convert an official FastFCN checkpoint into a fastfcn checkpoint")
    p.add_argument("checkpoint", help="official .pth.tar (torch.save'd dict with 'state_dict')")
    p.add_argument("out", help="output .pth")
    _model_args(p)
    p.add_argument("--trusted", action="store_true",
                   help="unpickle the whole file (needed when it holds non-tensor objects); only for trusted files")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("complexity", help="parameters, GMACs and activation memory of one configuration")
    _model_args(p, backbone="resnet50")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--no-aux", action="store_true")
    p.set_defaults(func=_cmd_complexity)

    p = sub.add_parser("book", help="execute the book's chapters (papermill) and render them (jupyter-book)")
    book = p.add_subparsers(dest="book_command", required=True)
    q = book.add_parser("run", help="execute the chapters listed in book/_toc.yml that changed")
    q.add_argument("--profile", default="quick", choices=list(PROFILES))
    q.add_argument("--device", default="auto", help="auto (GPU when visible), cpu, cuda or cuda:N")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--only", nargs="+", metavar="CH", help="chapters to run: 01, 01_overview or book/01_overview.md")
    q.add_argument("--force", action="store_true", help="execute even when the outputs are current")
    q.add_argument("--cell-timeout", type=int, default=None, help="seconds a cell may run (default: no limit)")
    q.add_argument("--book-dir", type=Path, default=None, help=argparse.SUPPRESS)
    q.add_argument("--out", type=Path, default=None, help="where executed notebooks go (default book/_executed)")
    q.set_defaults(func=_cmd_book_run)
    q = book.add_parser("build", help="render the executed chapters to HTML with jupyter-book (strict, offline)")
    q.add_argument("--only", nargs="+", metavar="STEM", help="render only these chapters (default: all in _toc.yml)")
    q.add_argument("--book-dir", type=Path, default=None, help=argparse.SUPPRESS)
    q.add_argument("--executed", type=Path, default=None, help="executed notebooks (default book/_executed)")
    q.add_argument("--output", type=Path, default=None, help="output root; HTML goes to OUTPUT/_build/html")
    q.set_defaults(func=_cmd_book_build)

    from .cli_training import add_subcommands as _add_training_subcommands

    _add_training_subcommands(sub)  # train, eval, predict

    from .cli_bench import add_subcommand as _add_bench_subcommand

    _add_bench_subcommand(sub)  # bench
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"fastfcn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastfcn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
