"""``fastfcn book run`` and ``fastfcn book build``: execute the chapters, render the HTML; ``fastfcn book assign``
and ``fastfcn book grade``: hand out the exercises and grade them (:mod:`fastfcn.book.assignments`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_subcommands"]


def _cmd_book_run(args: argparse.Namespace) -> int:
    from ..book.chapters import book_dir_or_error
    from ..book.runner import run_book

    book_dir = book_dir_or_error(args.book_dir)
    summary = run_book(book_dir, args.out, profile=args.profile, device=args.device, seed=args.seed,
                       only=args.only, force=args.force, cell_timeout=args.cell_timeout)
    executed = [s for s in summary if s["status"] == "executed"]
    print(f"{len(executed)} chapter(s) executed, {len(summary) - len(executed)} cached; "
          f"outputs in {args.out or book_dir / '_executed'}")
    return 0


def _cmd_book_build(args: argparse.Namespace) -> int:
    import time

    from ..book.build import build_book
    from ..book.chapters import book_dir_or_error
    from ..book.runner import stale_chapters

    start = time.perf_counter()
    book_dir = book_dir_or_error(args.book_dir)
    for note in stale_chapters(book_dir, args.executed):
        print(f"warning: {note}; `python -m fastfcn book run` brings it up to date", file=sys.stderr)
    index = build_book(book_dir, args.executed, args.output, stems=args.only or None, edition=args.edition)
    which = "the student edition (no solutions)" if args.edition == "student" else "the book"
    print(f"{which} is at {index.resolve()} (built in {time.perf_counter() - start:.0f} s)")
    return 0


def _cmd_book_assign(args: argparse.Namespace) -> int:
    from ..book.assignments import build_assignment
    from ..book.chapters import book_dir_or_error

    book_dir = book_dir_or_error(args.book_dir)
    out = args.out or book_dir / "_build" / "assignment"
    archive = build_assignment(book_dir, out, profile=args.profile, only=args.only)
    print(f"the student bundle is at {out.resolve()} and {archive.resolve()}")
    return 0


def _cmd_book_grade(args: argparse.Namespace) -> int:
    from ..book.assignments import CHECKS_DIR, grade_submissions, write_grades
    from ..book.chapters import book_dir_or_error

    checks = args.checks or book_dir_or_error(args.book_dir) / CHECKS_DIR
    grades = grade_submissions(args.submissions, checks, time_limit=args.time_limit)
    out = write_grades(grades, args.out or args.submissions / "grades.csv")
    for grade in grades:
        print(f"{grade.submission}: {grade.total:g}/{sum(grade.possible.values()):g} ({grade.status})")
    print(f"grades of {len(grades)} submission(s) in {out.resolve()}")
    return 0


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    from ..book.editions import EDITIONS
    from ..profiles import PROFILES

    p = sub.add_parser("book", help="execute the book's chapters (papermill) and render them (jupyter-book)")
    book = p.add_subparsers(dest="book_command", required=True)
    q = book.add_parser("run", help="execute the chapters listed in book/_toc.yml that changed")
    q.add_argument("--profile", default="quick", choices=list(PROFILES))
    q.add_argument("--device", default="auto", help="auto (GPU when visible), cpu, cuda or cuda:N")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--only", nargs="+", metavar="CH", help="chapters to run: 01, 01_overview or book/01_overview.md")
    q.add_argument("--force", action="store_true", help="execute even when the outputs are current")
    q.add_argument("--cell-timeout", type=int, default=None, help="seconds a cell may run (default: no limit)")
    q.add_argument("--book-dir", type=Path, default=None, help="the book's folder (default ./book)")
    q.add_argument("--out", type=Path, default=None, help="where executed notebooks go (default book/_executed)")
    q.set_defaults(func=_cmd_book_run)
    q = book.add_parser("build", help="render the executed chapters to HTML with jupyter-book (strict, offline)")
    q.add_argument("--only", nargs="+", metavar="STEM", help="render only these chapters (default: all in _toc.yml)")
    q.add_argument("--book-dir", type=Path, default=None, help="the book's folder (default ./book)")
    q.add_argument("--executed", type=Path, default=None, help="executed notebooks (default book/_executed)")
    q.add_argument("--output", type=Path, default=None, help="output root; HTML goes to OUTPUT/_build/html "
                   "(default: book/, or book/_build/student for --edition student)")
    q.add_argument("--edition", default="complete", choices=list(EDITIONS),
                   help="complete (the default) or student: the same chapters with the solutions removed")
    q.set_defaults(func=_cmd_book_build)
    q = book.add_parser("assign", help="write the student bundle: the checked chapters as notebooks without "
                        "solutions, and their checks without the hidden ones (a folder and a zip)")
    q.add_argument("--out", type=Path, default=None, help="the bundle's folder (default book/_build/assignment); "
                   "the zip goes beside it")
    q.add_argument("--profile", default="smoke", choices=list(PROFILES), help="the notebooks' profile (default smoke)")
    q.add_argument("--only", nargs="+", metavar="CH", help="chapters to hand out (default: every chapter with checks)")
    q.add_argument("--book-dir", type=Path, default=None, help="the book's folder (default ./book)")
    q.set_defaults(func=_cmd_book_assign)
    q = book.add_parser("grade", help="grade a folder of submitted notebooks into a CSV of points per exercise")
    q.add_argument("submissions", type=Path, help="the folder of submitted notebooks (*.ipynb)")
    q.add_argument("--out", type=Path, default=None, help="the CSV (default SUBMISSIONS/grades.csv)")
    q.add_argument("--time-limit", type=float, default=300,
                   help="seconds one notebook may run before it scores 0 (default 300)")
    q.add_argument("--checks", type=Path, default=None, help="the teacher's checks (default book/checks)")
    q.add_argument("--book-dir", type=Path, default=None, help="the book's folder (default ./book)")
    q.set_defaults(func=_cmd_book_grade)
