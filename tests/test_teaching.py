"""The book in a classroom: labelled exercises, the course page, the student edition without solutions,
and visible code that teaches (the bookkeeping of ``note``/``record`` kept out of the reader's way).

The edition test renders one chapter (executed in a kernel by the ``kernel_executed_chapter`` fixture
of ``conftest.py``, shared with tests/test_jupyter.py) in both editions, the two builds in parallel.
"""

from __future__ import annotations

import ast
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from jupyter_helpers import BOOK, INTERACTIVE_CHAPTER

from fastfcn.book import RESULTS_ENV, editions, notes
from fastfcn.book import chapters as book_chapters
from fastfcn.book.chapters import ChapterError
from fastfcn.book.exercises import KINDS, directive_blocks, list_exercises, parse_title, strip_solutions

pytest.importorskip("yaml")

COURSE = BOOK / "course.md"
# one exercise line of the course page: - {ref}`ex-label <ex-label>` (kind · N min): what it asks
COURSE_LINE = re.compile(r"^- \{ref\}`(?P<label>ex-[\w-]+) <(?P=label)>` \((?P<title>[^)]*)\)")
SESSION = re.compile(r"^### Session (?P<n>\d+): .*\((?P<minutes>\d+) min\)\s*$")


def book_exercises():
    return [e for c in book_chapters.list_chapters(BOOK) if c.exists
            for e in list_exercises(c.path.read_text(), c.stem)]


# ------------------------------------------------------------------------------------------------
# exercises: kind and effort


def test_every_exercise_has_a_label_a_kind_an_effort_and_a_solution():
    exercises = book_exercises()
    assert len(exercises) >= 20
    labels = [e.label for e in exercises]
    assert len(set(labels)) == len(labels), "exercise labels must be unique across the book"
    assert {e.kind for e in exercises} == set(KINDS), "every kind is used at least once"
    for chapter in book_chapters.list_chapters(BOOK):
        if not chapter.exists:
            continue
        blocks = directive_blocks(chapter.path.read_text())
        solved = {b.argument for b in blocks if b.name == "solution"}
        missing = [b.options.get("label") for b in blocks if b.name == "exercise" and b.options.get("label") not in solved]
        assert not missing, f"{chapter.stem}: exercises without a solution: {missing}"


def test_exercise_titles_are_checked_with_a_message_saying_how_to_fix_them():
    assert parse_title("modify the code · 15 min") == ("modify the code", 15)
    for bad in ("", "easy", "compute, 10 min", "guess · 10 min", "compute · 0 min"):
        with pytest.raises(ValueError, match="exercise"):
            parse_title(bad)
    text = "```{exercise} compute\n:label: ex-a\n\nWhat?\n```\n"
    with pytest.raises(ChapterError, match=r"chapter 09_x, line 1 \(ex-a\).*KIND · N min"):
        list_exercises(text, "09_x")
    with pytest.raises(ChapterError, match="no :label:"):
        list_exercises("```{exercise} read · 5 min\nWhat?\n```\n", "09_x")


# ------------------------------------------------------------------------------------------------
# the course page


def course_plan() -> list[dict]:
    """The sessions of the course page: number, minutes, and the exercises in class and at home."""
    sessions: list[dict] = []
    part = None
    for line in COURSE.read_text().splitlines():
        if (m := SESSION.match(line)) is not None:
            sessions.append({"n": int(m["n"]), "minutes": int(m["minutes"]), "in class": [], "at home": [],
                             "text": ""})
            part = None
            continue
        if line.startswith("## "):
            part = "outside"
        if not sessions or part == "outside":
            continue
        sessions[-1]["text"] += line + "\n"
        if line.startswith("**In class**"):
            part = "in class"
        elif line.startswith("**At home**"):
            part = "at home"
        elif (m := COURSE_LINE.match(line)) is not None:
            assert part in ("in class", "at home"), f"course page: {line!r} is under no In class / At home list"
            sessions[-1][part].append((m["label"], m["title"]))
    return sessions


def test_the_course_page_is_in_the_book_but_not_a_chapter():
    entries = book_chapters.toc_files(book_chapters.read_yaml(BOOK / "_toc.yml"))
    assert "course" in entries and COURSE.is_file()
    assert "course" not in [c.stem for c in book_chapters.list_chapters(BOOK)], "the course page is not executed"
    text = COURSE.read_text()
    for heading in ("## Learning goals", "## Prerequisites", "## Plan", "## Assessment"):
        assert heading in text, heading


def test_the_course_page_lists_every_exercise_once_with_the_chapters_label():
    exercises = {e.label: e for e in book_exercises()}
    listed = [item for s in course_plan() for part in ("in class", "at home") for item in s[part]]
    labels = [label for label, _ in listed]
    assert sorted(labels) == sorted(exercises), (set(labels) ^ set(exercises), "or listed twice")
    for label, title in listed:
        assert title == exercises[label].title, f"course page says {label} is {title!r}, its chapter {exercises[label].title!r}"


def _numbers(numbers: list[int]) -> str:
    """1, 3, 9 and 11, as the course page writes a list of chapters."""
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def test_the_course_page_names_the_chapters_with_quizzes_and_checks():
    """The chapters that have quizzes and the exercises that check themselves, computed from the chapters:
    the page once named a chapter without a quiz and left out one with."""
    text = " ".join(COURSE.read_text().split())  # the prose without its line breaks
    chapters = [c for c in book_chapters.list_chapters(BOOK) if c.exists]
    quizzes = [int(c.stem[:2]) for c in chapters if "display_quiz(" in c.path.read_text()]
    assert quizzes and f"The reading exercises of chapters {_numbers(quizzes)} end with a short quiz" in text
    checked = {c.stem: re.findall(r"""grader\.check\(\s*["'](ex-[\w-]+)["']""", c.path.read_text()) for c in chapters}
    numbers = [int(stem[:2]) for stem, labels in checked.items() if labels]
    listed = text.split("check themselves:", 1)[1].split(". Below such", 1)[0].replace(" and ", ", ")
    assert sorted(label.strip() for label in listed.split(",")) == sorted(x for v in checked.values() for x in v)
    assert f"The exercises of chapters {min(numbers)} to {max(numbers)} whose answer" in text


def test_the_course_pages_commands_fit_the_page():
    """The page's code blocks render at the theme's size, where about 88 characters fit: no line scrolls."""
    inside, long = False, []
    for line in COURSE.read_text().splitlines():
        if line.startswith("```"):
            inside = not inside
        elif inside and len(line) > 80:
            long.append(line)
    assert not long, long


def test_the_course_plan_has_four_to_six_sessions_that_fit():
    sessions = course_plan()
    assert 4 <= len(sessions) <= 6 and [s["n"] for s in sessions] == list(range(1, len(sessions) + 1))
    exercises = {e.label: e for e in book_exercises()}
    for s in sessions:
        in_class = sum(exercises[label].minutes for label, _ in s["in class"])
        assert 0 < in_class <= s["minutes"], f"session {s['n']}: {in_class} min of exercises in {s['minutes']} min"
        chapters = {exercises[label].chapter for part in ("in class", "at home") for label, _ in s[part]}
        for stem in chapters:
            assert f"{{doc}}`{stem}`" in s["text"], f"session {s['n']} has exercises of {stem} but does not link it"
    # the long chapters are started before their session
    for s in sessions:
        for stem in ("06_how_fast", "07_table1"):
            if f"{{doc}}`{stem}`" in s["text"]:
                assert "**Before the session**" in s["text"] and f"--only {stem[:2]}" in s["text"], (s["n"], stem)


def test_a_partial_build_leaves_the_course_page_out(tmp_path):
    from fastfcn.book.build import stage_book

    executed = tmp_path / "executed"
    executed.mkdir()
    stems = [c.stem for c in book_chapters.list_chapters(BOOK)]
    front = book_chapters.front_page(BOOK)  # an executed notebook too, when it has code
    for stem in stems + ([front.stem] if front is not None else []):
        (executed / f"{stem}.ipynb").write_text('{"cells": [], "metadata": {}}')
    whole = book_chapters.toc_files(book_chapters.read_yaml(stage_book(BOOK, executed, tmp_path / "a") / "_toc.yml"))
    part = book_chapters.toc_files(book_chapters.read_yaml(
        stage_book(BOOK, executed, tmp_path / "b", stems=stems[:1]) / "_toc.yml"))
    assert "course" in whole and "course" not in part and "bibliography" in part


# ------------------------------------------------------------------------------------------------
# the student edition


def test_strip_solutions_removes_whole_blocks_only():
    text = ("Intro\n\n```{exercise} read · 5 min\n:label: ex-a\n\nQ?\n```\n\n"
            "````{solution} ex-a\n:class: dropdown\n\nSECRET one\n\n```python\nprint(1)\n```\n````\n\n"
            "::::{admonition} Note\n:::{solution} ex-b\nSECRET two\n:::\nkept inside\n::::\n\n"
            "```python\n```{solution} not-a-directive-in-code\n```\n\nAfter\n")
    out, removed = strip_solutions(text)
    assert removed == 2 and "SECRET" not in out and "print(1)" not in out
    for kept in ("Intro", "Q?", "kept inside", "::::{admonition} Note", "not-a-directive-in-code", "After"):
        assert kept in out, kept
    assert [b.name for b in directive_blocks(out)] == ["exercise", "admonition"]
    with pytest.raises(ValueError, match="gated"):
        strip_solutions("```{solution-start} ex-a\n```\nbody\n```{solution-end}\n```\n")


def test_prepare_edition_strips_notebooks_pages_and_papermill_copies(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["x\n", "```{solution} ex-a\n", "S1\n", "```\n"]},
                    {"cell_type": "code", "metadata": {}, "source": "print('{not a solution}')", "outputs": []}],
          "metadata": {"papermill": {"input_path": "01_a.md"}}}
    (tmp_path / "01_a.ipynb").write_text(json.dumps(nb))
    (tmp_path / "course.md").write_text("# C\n\n```{solution} ex-z\nS2\n```\n")
    (tmp_path / "_config.yml").write_text("title: T\nsphinx:\n  config: {a: 1}\n")
    assert editions.prepare_edition(tmp_path, "complete") == 0
    assert "S2" in (tmp_path / "course.md").read_text()
    assert editions.prepare_edition(tmp_path, "student") == 2
    assert "S1" not in (tmp_path / "01_a.ipynb").read_text() and "S2" not in (tmp_path / "course.md").read_text()
    config = book_chapters.read_yaml(tmp_path / "_config.yml")
    assert config["title"] == "T (student edition)" and config["sphinx"]["config"] == {"a": 1, "hide_solutions": True}
    with pytest.raises(ValueError, match="unknown edition 'teacher'"):
        editions.check_edition("teacher")
    assert editions.default_output_dir(BOOK, "student") == BOOK / "_build" / "student"


def test_book_build_rejects_an_unknown_edition(capsys):
    from fastfcn.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["book", "build", "--edition", "teacher"])
    assert "invalid choice: 'teacher' (choose from 'complete', 'student')" in capsys.readouterr().err


def _mini_book(root: Path) -> Path:
    """The real configuration and bibliography, a one-line front page and the one chapter."""
    book = root / "book"
    book.mkdir()
    for name in ("_config.yml", "references.bib", "bibliography.md"):
        (book / name).write_text((BOOK / name).read_text())
    (book / "intro.md").write_text("# FastFCN, the book\n")
    (book / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nchapters:\n- file: {INTERACTIVE_CHAPTER}\n"
                                   "- file: bibliography\n")
    return book


def _solution_sentence(text: str) -> str:
    """A run of plain words from the chapter's first solution: found verbatim in any HTML that shows it."""
    first = next(b for b in directive_blocks(text) if b.name == "solution")
    elsewhere = strip_solutions(text)[0]
    runs = [run.strip(" ,") for line in text.splitlines()[first.start + 1:first.end]
            for run in re.findall(r"\b(?:[A-Za-z]+[ ,]+){5,}[A-Za-z]+\b", line)]
    runs = [run for run in runs if run not in elsewhere]  # only the solution says it
    assert runs, "the first solution has no plain sentence of its own to look for"
    return max(runs, key=len)


def test_student_edition_has_no_solutions_and_the_complete_one_has_them(kernel_executed_chapter, tmp_path):
    from fastfcn.book.build import build_book

    book = _mini_book(tmp_path)
    executed = Path(kernel_executed_chapter["path"]).parent
    with ThreadPoolExecutor(2) as pool:  # the two builds are independent: use both cores
        jobs = {ed: pool.submit(build_book, book, executed, tmp_path / ed, stems=[INTERACTIVE_CHAPTER], quiet=True,
                                edition=ed) for ed in editions.EDITIONS}
        html = {ed: job.result().parent for ed, job in jobs.items()}
    source = (BOOK / f"{INTERACTIVE_CHAPTER}.md").read_text()
    secret = _solution_sentence(source)
    exercise = list_exercises(source, INTERACTIVE_CHAPTER)[0]
    complete = (html["complete"] / f"{INTERACTIVE_CHAPTER}.html").read_text()
    student = (html["student"] / f"{INTERACTIVE_CHAPTER}.html").read_text()
    assert secret in complete and 'class="solution' in complete
    assert f"({exercise.title})" in complete and f"({exercise.title})" in student, "the exercise's label is shown"
    assert 'class="solution' not in student and "Solution to" not in student
    leaks = [p.relative_to(html["student"]).as_posix() for p in html["student"].rglob("*")
             if p.is_file() and "_static" not in p.parts and secret in p.read_text(errors="ignore")]
    assert not leaks, f"the student edition still holds {secret!r} in {leaks}"
    assert "(student edition)" in student and "(student edition)" not in complete  # the page titles say which
    # each page offers its executed notebook for download, and the reading exercise's quiz is on the page
    assert f"_sources/{INTERACTIVE_CHAPTER}.ipynb" in complete
    assert "why is the plain trunk's C4 no longer R" in complete and "display_quiz" not in complete


# ------------------------------------------------------------------------------------------------
# the visible code teaches: recording and glueing figures stays out of the reader's way

HIDDEN_TAGS = {"hide-input", "remove-input", "remove-cell"}   # cells whose code the rendered page does not show
BOOKKEEPING_CALLS = {"note", "notes", "record"}               # fastfcn.book's calls for the prose and results files
MAX_BOOKKEEPING_SHARE = 0.05
BOOKKEEPING_CALL = re.compile(r"\b(?:" + "|".join(sorted(BOOKKEEPING_CALLS)) + r")\(")


def _is_bookkeeping(statement: ast.stmt) -> bool:
    """A call of note/notes/record (its value may be assigned), or a block of nothing else (a loop, an if/else)."""
    if isinstance(statement, (ast.Expr, ast.Assign, ast.AnnAssign)) and isinstance(statement.value, ast.Call):
        return isinstance(statement.value.func, ast.Name) and statement.value.func.id in BOOKKEEPING_CALLS
    if isinstance(statement, (ast.For, ast.If, ast.With)):
        return all(_is_bookkeeping(s) for s in [*statement.body, *getattr(statement, "orelse", [])])
    return False


def bookkeeping_lines(source: str) -> set[int]:
    """The line numbers (from 1) of a cell's code spent on statements that only record or glue figures.

    A multi-line call counts with all its lines, a loop of notes with its header. Code that does not parse
    (a cell magic) falls back to the lines that call one of the functions.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {i for i, line in enumerate(source.splitlines(), 1) if BOOKKEEPING_CALL.search(line)}
    lines: set[int] = set()

    def walk(body: list[ast.stmt]) -> None:
        for statement in body:
            if _is_bookkeeping(statement):
                lines.update(range(statement.lineno, statement.end_lineno + 1))
                continue
            for block in ("body", "orelse", "finalbody"):
                walk(getattr(statement, block, []) or [])
            for handler in getattr(statement, "handlers", []) or []:
                walk(handler.body)

    walk(tree.body)
    return lines


def visible_code_counts(path: Path) -> tuple[int, int]:
    """(visible code lines, of which bookkeeping) of a page: non-blank lines of the code cells the reader sees."""
    import jupytext

    total = kept = 0
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "code" or HIDDEN_TAGS & set(cell.metadata.get("tags", [])):
            continue
        text = cell.source.splitlines()
        shown = {i for i, line in enumerate(text, 1) if line.strip()}
        total += len(shown)
        kept += len(shown & bookkeeping_lines(cell.source))
    return total, kept


def _computing_pages() -> list[book_chapters.Chapter]:
    pages = [c for c in book_chapters.list_chapters(BOOK) if c.exists]
    front = book_chapters.front_page(BOOK)
    return pages + ([front] if front is not None else [])


def test_bookkeeping_lines_counts_whole_statements_and_blocks_of_notes():
    source = (
        "x = compute()\n"
        "note(\"a\", x,\n"
        "     \"px\")\n"
        "y = note(\"b\", 2)\n"
        "for k in ks:\n"
        "    record(k, 1)\n"
        "if x:\n"
        "    print(x)\n"
        "    note(\"c\", 3)\n"
        "else:\n"
        "    notes({\"c\": 0})\n"
        "annotate(\"not a note\")\n"
    )
    assert bookkeeping_lines(source) == {2, 3, 4, 5, 6, 9, 11}
    assert bookkeeping_lines("%%time\nnote(\"a\", 1)\nx = 1\n") == {2}   # does not parse: line by line


def test_visible_code_counts_skip_hidden_cells(tmp_path):
    page = tmp_path / "01_x.md"
    page.write_text("---\njupytext: {text_representation: {extension: .md, format_name: myst}}\n---\n\n# X\n\n"
                    "```{code-cell} ipython3\nx = 1\n\nnote(\"x\", x)\n```\n\n"
                    "```{code-cell} ipython3\n:tags: [remove-cell]\n\nnote(\"y\", 2)\nnote(\"z\", 3)\n```\n\n"
                    "```{code-cell} ipython3\n:tags: [hide-input]\n\nrecord(\"w\", 4)\n```\n")
    assert visible_code_counts(page) == (2, 1)


@pytest.mark.parametrize("page", _computing_pages(), ids=lambda page: page.stem)
def test_bookkeeping_is_under_five_percent_of_the_visible_code(page):
    """A chapter shows the method it teaches: its note/record calls live in hidden "figures for the prose" cells."""
    pytest.importorskip("jupytext")
    total, kept = visible_code_counts(page.path)
    share = kept / total if total else 0.0
    assert share < MAX_BOOKKEEPING_SHARE, (
        f"{page.stem}: {kept} of its {total} visible code lines note or record figures ({100 * share:.1f} %, at most "
        f"{100 * MAX_BOOKKEEPING_SHARE:.0f} %): move them into a cell tagged remove-cell right after the cell that "
        "computes them (\"# figures for the prose\"), several figures in one notes({...}) call")


def test_notes_records_every_figure_with_one_unit(tmp_path, monkeypatch):
    results = tmp_path / "figures.json"
    monkeypatch.setenv(RESULTS_ENV, str(results))
    assert notes({"a": 1.5, "b": 2}, "px") is None
    notes({"c": "smaller than"}, markdown=True)
    assert json.loads(results.read_text()) == {"a": {"value": 1.5, "unit": "px"}, "b": {"value": 2, "unit": "px"},
                                               "c": {"value": "smaller than", "unit": None}}
