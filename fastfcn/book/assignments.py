"""The teacher's side of the exercises: hand out the student notebooks, grade the ones that come back.

The checks are otter-grader test files, one per checked exercise, in ``book/checks/<label>.py``; a chapter
runs them with ``grader.check("<label>")`` after the exercise's answer cell. A test case marked
``hidden=True`` needs the answer to decide (a number, a list): it stays in the teacher's copy and runs
only when a submission is graded. :func:`build_assignment` writes the student bundle (the chapters
that have checks, as notebooks without their solutions, in the ``smoke`` profile, and the checks without
their hidden cases); :func:`grade_submissions` grades a folder of submitted notebooks with otter, each in a
fresh kernel of its own process under a time limit, into a CSV of points per exercise.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..utils.io import atomic_write
from .chapters import ChapterError, list_chapters, read_chapter, select_chapters
from .exercises import strip_solutions

__all__ = ["CHECKS_DIR", "Grade", "checked_labels", "student_check_source", "build_assignment",
           "grade_submissions", "write_grades"]

CHECKS_DIR = "checks"  # next to the chapters, and next to the notebooks in the bundle
_CHECK_CALL = re.compile(r"""grader\.check\(\s*["'](?P<label>[\w-]+)["']\s*\)""")
_PROFILE_LINE = re.compile(r"^profile\s*=.*$", re.MULTILINE)


def checked_labels(checks_dir: Path) -> list[str]:
    """The labels of the exercises that have checks: the test files of ``checks_dir``, sorted."""
    return sorted(path.stem for path in Path(checks_dir).glob("ex-*.py"))


def _is_hidden_case(node: ast.stmt) -> bool:
    if not isinstance(node, ast.FunctionDef):
        return False
    return any(isinstance(d, ast.Call) and any(k.arg == "hidden" and isinstance(k.value, ast.Constant)
                                                and k.value.value is True for k in d.keywords)
               for d in node.decorator_list)


def student_check_source(source: str) -> str:
    """An otter test file without its ``hidden=True`` test cases (decorator, body and the blank lines after)."""
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()
    for node in ast.parse(source).body:
        if _is_hidden_case(node):
            start = min(d.lineno for d in node.decorator_list) - 1
            end = node.end_lineno
            while end < len(lines) and not lines[end].strip():
                end += 1
            drop.update(range(start, end))
    return "".join(line for i, line in enumerate(lines) if i not in drop).rstrip("\n") + "\n"


def _student_notebook(path: Path, profile: str):
    """The chapter as a notebook: solutions cut from its Markdown, the parameters cell set to ``profile``."""
    nb = read_chapter(path)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source, _ = strip_solutions(cell.source)
        elif "parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = _PROFILE_LINE.sub(f'profile = "{profile}"', cell.source, count=1)
    return nb


def build_assignment(book_dir: Path, out_dir: Path, *, profile: str = "smoke",
                     only: Iterable[str] | None = None) -> Path:
    """Write the student bundle to ``out_dir`` (notebooks and ``checks/``) and ``out_dir``.zip; returns the zip.

    The chapters are those of ``only`` (default: every chapter with a check). ``out_dir`` is replaced.
    """
    import nbformat

    book_dir, out_dir = Path(book_dir), Path(out_dir)
    chapters = [c for c in select_chapters(list_chapters(book_dir), only)
                if _CHECK_CALL.search(c.path.read_text())]
    if not chapters:
        raise ChapterError(f"no chapter with checks ({'--only ' + ' '.join(only) if only else 'in _toc.yml'}): "
                           f"checked chapters call grader.check(...) after an exercise")
    labels = sorted({m.group("label") for c in chapters for m in _CHECK_CALL.finditer(c.path.read_text())})
    missing = [label for label in labels if not (book_dir / CHECKS_DIR / f"{label}.py").is_file()]
    if missing:
        raise ChapterError(f"no check file for {', '.join(missing)}: add {book_dir / CHECKS_DIR}/<label>.py")
    if out_dir.exists() and not (out_dir / CHECKS_DIR).is_dir():
        raise ChapterError(f"{out_dir}: exists and is not a student bundle; give a new folder to write it to")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # built beside out_dir and moved into place, so that a failure leaves no half-written bundle
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    stage.chmod(out_dir.parent.stat().st_mode & 0o777)  # mkdtemp's 0700 would keep the bundle from the class
    try:
        (stage / CHECKS_DIR).mkdir()
        for chapter in chapters:
            (stage / f"{chapter.stem}.ipynb").write_text(nbformat.writes(_student_notebook(chapter.path, profile)))
        for label in labels:
            source = (book_dir / CHECKS_DIR / f"{label}.py").read_text()
            (stage / CHECKS_DIR / f"{label}.py").write_text(student_check_source(source))
        shutil.rmtree(out_dir, ignore_errors=True)
        stage.replace(out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

    def write_zip(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in out_dir.rglob("*") if p.is_file()):
                archive.write(path, path.relative_to(out_dir.parent))

    return atomic_write(out_dir.with_suffix(".zip"), write_zip)


@dataclass(frozen=True)
class Grade:
    """One submission's grade: points per exercise label, and ``status`` ("graded" or why it scored 0)."""

    submission: str
    status: str
    points: dict[str, float]
    possible: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.points.values())


def _possible_points(checks_dir: Path, labels: Sequence[str]) -> dict[str, float]:
    from otter.test_files.exception_test import ExceptionTestFile

    return {label: float(ExceptionTestFile.from_file(str(checks_dir / f"{label}.py")).possible) for label in labels}


def _grade_one(notebook: Path, checks_dir: Path, labels: Sequence[str], time_limit: float) -> tuple[str, dict]:
    """Grade one notebook in a child process (its own kernel); ``(status, points)``, points empty on failure."""
    with tempfile.TemporaryDirectory(prefix="fastfcn-grade-") as tmp:
        work = Path(tmp)
        shutil.copy2(notebook, work / notebook.name)
        shutil.copytree(checks_dir, work / CHECKS_DIR)
        result = work / "result.json"
        command = [sys.executable, "-m", "fastfcn.book.assignments", str(work / notebook.name),
                   str(work / CHECKS_DIR), str(result), *labels]
        try:
            # the kernel is started by the child and exits when its parent does (ipykernel's parent poller)
            done = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=time_limit)
        except subprocess.TimeoutExpired:
            return f"ran past the time limit of {time_limit:g} s", {}
        if done.returncode != 0 or not result.is_file():
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            return f"could not be graded: {lines[-1] if lines else f'exit status {done.returncode}'}", {}
        return "graded", json.loads(result.read_text())


def grade_submissions(submissions_dir: Path, checks_dir: Path, *, time_limit: float = 300) -> list[Grade]:
    """Grade every ``*.ipynb`` of ``submissions_dir`` against the (teacher's) checks of ``checks_dir``.

    A submission that is not a notebook, raises everywhere or runs past ``time_limit`` seconds scores 0
    with the reason in its status; the others are graded regardless.
    """
    submissions_dir, checks_dir = Path(submissions_dir), Path(checks_dir)
    if not submissions_dir.is_dir():
        raise ChapterError(f"{submissions_dir}: not a folder; give the folder of submitted notebooks")
    labels = checked_labels(checks_dir)
    if not labels:
        raise ChapterError(f"{checks_dir}: no checks (ex-*.py); give the book's checks folder (book/{CHECKS_DIR})")
    notebooks = sorted(submissions_dir.glob("*.ipynb"))
    if not notebooks:
        raise ChapterError(f"{submissions_dir}: no submitted notebooks (*.ipynb)")
    possible = _possible_points(checks_dir, labels)
    grades = []
    for notebook in notebooks:
        status, points = _grade_one(notebook, checks_dir, labels, time_limit)
        grades.append(Grade(notebook.name, status, {label: float(points.get(label, 0)) for label in labels},
                            possible))
    return grades


def write_grades(grades: Sequence[Grade], path: Path) -> Path:
    """The grades as a CSV: a row per submission, a column per exercise, then total, possible and status."""
    labels = list(grades[0].possible) if grades else []
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["submission", *labels, "total", "possible", "status"])
    for grade in grades:
        writer.writerow([grade.submission, *(f"{grade.points[label]:g}" for label in labels),
                         f"{grade.total:g}", f"{sum(grade.possible.values()):g}", grade.status])
    return atomic_write(path, lambda f: f.write(text.getvalue().encode()))


def _grade_in_this_process(notebook: str, checks_dir: str, result: str, labels: Sequence[str]) -> None:
    """The child of :func:`_grade_one`: run the notebook in a fresh kernel with otter, write points per label."""
    from otter.execute import grade_notebook

    results = grade_notebook(notebook, tests_glob=[str(Path(checks_dir) / f"{label}.py") for label in labels],
                             test_dir=checks_dir, cwd=str(Path(notebook).parent))
    if results.catastrophic_error is not None:
        raise RuntimeError(f"the notebook could not be run: {results.catastrophic_error}")
    Path(result).write_text(json.dumps({label: results.get_score(label) for label in labels}))


if __name__ == "__main__":
    _grade_in_this_process(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
