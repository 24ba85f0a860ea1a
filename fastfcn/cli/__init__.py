"""The ``fastfcn`` command line: one module per family of sub-commands; ``main`` dispatches.

* :mod:`~fastfcn.cli.model` -- ``convert``, ``complexity``
* :mod:`~fastfcn.cli.training` -- ``train``, ``eval``, ``predict``
* :mod:`~fastfcn.cli.bench` -- ``bench``
* :mod:`~fastfcn.cli.book` -- ``book run``, ``book build``
"""

from __future__ import annotations

import argparse
import sys

from . import bench, book, model, training

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastfcn", description="FastFCN: train, evaluate, segment, benchmark, "
                                     "and execute the book.")
    sub = parser.add_subparsers(dest="command", required=True)
    model.add_subcommands(sub)      # convert, complexity
    book.add_subcommands(sub)       # book run, book build
    training.add_subcommands(sub)   # train, eval, predict
    bench.add_subcommands(sub)      # bench
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
