"""The ``fastfcn`` command line: one module per family of sub-commands; ``main`` dispatches.

* :mod:`~fastfcn.cli.model` -- ``convert``, ``export``, ``complexity``
* :mod:`~fastfcn.cli.training` -- ``train``, ``eval``, ``predict``
* :mod:`~fastfcn.cli.bench` -- ``bench``
* :mod:`~fastfcn.cli.data` -- ``data check``
* :mod:`~fastfcn.cli.book` -- ``book run``, ``book build``
"""

from __future__ import annotations

import argparse
import sys

from . import bench, book, data, model, training

__all__ = ["main", "build_parser", "describe_error"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastfcn", description="FastFCN: train, evaluate, segment, benchmark, "
                                     "and execute the book.")
    sub = parser.add_subparsers(dest="command", required=True)
    model.add_subcommands(sub)      # convert, export, complexity
    book.add_subcommands(sub)       # book run, book build
    training.add_subcommands(sub)   # train, eval, predict
    bench.add_subcommands(sub)      # bench
    data.add_subcommands(sub)       # data check
    return parser


def describe_error(exc: BaseException) -> str:
    """One line for an error of the user's input or environment: an ``OSError`` as ``FILE: what``.

    Two kinds of message are instructions written on several lines and stay so: a missing dataset
    (where to download it, how to prepare it) and a failing chapter (the failing line, the partial notebook).
    """
    from ..book.chapters import ChapterError
    from ..data.base import DatasetNotFoundError

    if isinstance(exc, (DatasetNotFoundError, ChapterError)):
        return str(exc).strip()
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        target = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else str(exc.filename)
        hint = " (the disk is full)" if exc.errno == 28 else ""
        return f"{target}: {exc.strerror}{hint}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}{' (the disk is full)' if exc.errno == 28 else ''}"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError, OSError) as exc:  # OSError: missing files, disk full, permissions, ...
        print(f"fastfcn {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastfcn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
