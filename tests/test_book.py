"""The book's runner and rendering: chapters execute (smoke profile), caching, failures, the HTML.

The caching and failure tests use tiny fake chapters in temporary directories. The chapter tests
run every chapter of ``book/_toc.yml`` in the ``smoke`` profile (a chapter not written yet is
skipped); the rendering tests build the book once per session from those outputs into a temporary
directory.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("papermill")
pytest.importorskip("jupytext")
pytest.importorskip("yaml")

from fastfcn.book import build as book_build  # noqa: E402
from fastfcn.book import chapters as book_chapters  # noqa: E402
from fastfcn.book import runner as book_runner  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
EXPECTED_CHAPTERS = ["01_overview", "02_price_of_dilation", "03_dilated_vs_stride_1d", "04_joint_upsampling",
                     "05_building_jpu", "06_how_fast", "07_table1", "08_where_they_differ", "09_recovering_dilated",
                     "10_your_own_data", "11_reproduction_report"]
SMOKE_SECONDS = 150  # "about a minute" per chapter, with slack for a busy 2-core machine
# chapter 7 trains 13 networks even in smoke (the trunk, 6 rows x 2 seeds) and measures their layouts: 100-155 s
# on a quiet 2-core AVX2 EPYC, 173 s beside another test run (2026-12-03)
SMOKE_SECONDS_FOR = {"07_table1": 240}
HEADER = """---
jupytext: {text_representation: {extension: .md, format_name: myst, format_version: 0.13}}
kernelspec: {display_name: Python 3 (ipykernel), language: python, name: python3}
---
"""


def _toc_stems() -> list[str]:
    try:
        return [c.stem for c in book_chapters.list_chapters(BOOK)]
    except Exception:  # a broken toc fails test_toc_lists_the_chapters, not collection
        return []


def _written(stems):
    return [s for s in stems if (BOOK / f"{s}.md").is_file()]


def fake_chapter(title: str, body: str, parameters: bool = True) -> str:
    tags = ":tags: [parameters]\n" if parameters else ""
    params = f"```{{code-cell}} ipython3\n{tags}\nprofile = \"quick\"\ndevice = \"auto\"\nseed = 0\n```\n"
    return f"{HEADER}\n# {title}\n\n{params}\n```{{code-cell}} ipython3\n{textwrap.dedent(body).strip()}\n```\n"


def fake_book(root: Path, chapters: dict[str, str]) -> Path:
    book = root / "book"
    book.mkdir(parents=True, exist_ok=True)
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n"
                                   + "".join(f"- file: {stem}\n" for stem in chapters))
    (book / "intro.md").write_text("# Intro\n")
    for stem, text in chapters.items():
        (book / f"{stem}.md").write_text(text)
    return book


def fake_package(root: Path) -> Path:
    pkg = root / "pkg"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("X = 1\n")
    (pkg / "sub").mkdir(exist_ok=True)
    (pkg / "sub" / "mod.py").write_text("Y = 2\n")
    return pkg


RECORDING = """
from fastfcn.book import record
record("answer", 6 * 7, "units")
record("profile_seen", profile)
print("ran", profile, device, seed)
"""


# ------------------------------------------------------------------------------------------------
# the table of contents


def test_toc_lists_the_chapters():
    stems = [c.stem for c in book_chapters.list_chapters(BOOK)]
    assert stems[:len(EXPECTED_CHAPTERS)] == EXPECTED_CHAPTERS  # later chapters may follow
    assert len(set(stems)) == len(stems)
    entries = book_chapters.toc_files(book_chapters.read_yaml(BOOK / "_toc.yml"))
    assert "bibliography" in entries
    assert (BOOK / "_config.yml").is_file() and (BOOK / "references.bib").is_file()


def test_select_chapters(tmp_path):
    book = fake_book(tmp_path, {"01_a": fake_chapter("A", "1"), "02_b": fake_chapter("B", "2")})
    chapters = book_chapters.list_chapters(book)
    assert [c.stem for c in book_chapters.select_chapters(chapters, None)] == ["01_a", "02_b"]
    for key in ("02", "2", "02_b", "book/02_b.md"):
        assert [c.stem for c in book_chapters.select_chapters(chapters, [key])] == ["02_b"]
    with pytest.raises(book_chapters.ChapterError, match="no chapter '07'"):
        book_chapters.select_chapters(chapters, ["07"])


# ------------------------------------------------------------------------------------------------
# every real chapter executes in the smoke profile


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("executed")


@pytest.mark.parametrize("stem", _toc_stems())
def test_chapter_executes_in_smoke(stem, smoke_dir):
    if not (BOOK / f"{stem}.md").is_file():
        pytest.skip(f"{stem}.md is not written yet")
    summary = book_runner.run_book(BOOK, smoke_dir, profile="smoke", device="cpu", only=[stem], progress=False,
                         cell_timeout=SMOKE_SECONDS)
    limit = SMOKE_SECONDS_FOR.get(stem, SMOKE_SECONDS)
    assert [s["chapter"] for s in summary] == [stem]
    res = json.loads((smoke_dir / f"{stem}.json").read_text())
    assert res["profile"] == "smoke" and res["device"] == "cpu" and res["chapter"] == stem
    assert res["total_seconds"] < limit, f"{stem} took {res['total_seconds']:.0f} s in the smoke profile"
    assert res["cells"] and all(c["seconds"] is not None for c in res["cells"])
    env = res["environment"]
    for key in ("python", "torch", "torchvision", "numpy", "fastfcn", "device_name"):
        assert env[key], key
    nb = json.loads((smoke_dir / f"{stem}.ipynb").read_text())
    errors = [o for cell in nb["cells"] if cell["cell_type"] == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


# ------------------------------------------------------------------------------------------------
# the parameters cell


def test_chapter_without_parameters_cell_fails_clearly(tmp_path):
    book = fake_book(tmp_path, {"01_noparams": fake_chapter("No parameters", "x = 1", parameters=False)})
    with pytest.raises(book_chapters.ChapterError, match=r"01_noparams.*exactly one code cell tagged 'parameters'.*none"):
        book_chapters.read_chapter(book / "01_noparams.md")
    with pytest.raises(book_chapters.ChapterError, match="01_noparams"):  # checked before anything is executed
        book_runner.run_book(book, tmp_path / "out", profile="smoke", device="cpu", progress=False)
    assert not (tmp_path / "out" / "01_noparams.ipynb").exists()


def test_chapter_with_two_parameters_cells_fails(tmp_path):
    text = fake_chapter("Twice", "x = 1") + "\n```{code-cell} ipython3\n:tags: [parameters]\n\nseed = 1\n```\n"
    book = fake_book(tmp_path, {"01_twice": text})
    with pytest.raises(book_chapters.ChapterError, match=r"01_twice.*found 2"):
        book_chapters.read_chapter(book / "01_twice.md")


def test_chapter_listed_but_missing(tmp_path):
    book = fake_book(tmp_path, {"01_a": fake_chapter("A", "1")})
    (book / "01_a.md").unlink()
    with pytest.raises(book_chapters.ChapterError, match="not written: 01_a"):
        book_runner.run_book(book, tmp_path / "out", profile="smoke", device="cpu", progress=False)


# ------------------------------------------------------------------------------------------------
# caching: the hash and the decision


def _fake_outputs(out: Path, stem: str, digest: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.ipynb").write_text("{}")
    (out / f"{stem}.json").write_text(json.dumps({"hash": digest}))


def test_content_hash_and_needs_run(tmp_path):
    book = fake_book(tmp_path, {"01_a": fake_chapter("A", "1"), "02_b": fake_chapter("B", "2")})
    pkg, out = fake_package(tmp_path), tmp_path / "out"
    a, b = book / "01_a.md", book / "02_b.md"

    def digest(path, **kw):
        return book_runner.content_hash(path, pkg, **{"profile": "smoke", "device": "cpu", "seed": 0, **kw})

    da, db = digest(a), digest(b)
    assert da == digest(a) and da != db
    assert book_runner.needs_run("01_a", out, da) == "no outputs yet"
    _fake_outputs(out, "01_a", da)
    _fake_outputs(out, "02_b", db)
    assert book_runner.needs_run("01_a", out, da) is None
    assert book_runner.needs_run("01_a", out, da, force=True) == "forced"

    # a changed chapter reruns; the other one does not
    a.write_text(a.read_text() + "\nmore prose\n")
    assert book_runner.needs_run("01_a", out, digest(a)) == "changed"
    assert book_runner.needs_run("02_b", out, digest(b)) is None

    # the profile, the device and the seed are part of the hash
    assert digest(b, profile="quick") != db
    assert digest(b, device="cuda") != db
    assert digest(b, seed=1) != db

    # a changed (or new) package file reruns every chapter
    _fake_outputs(out, "01_a", digest(a))
    (pkg / "sub" / "mod.py").write_text("Y = 3\n")
    assert book_runner.needs_run("01_a", out, digest(a)) == "changed"
    assert book_runner.needs_run("02_b", out, digest(b)) == "changed"
    _fake_outputs(out, "01_a", digest(a))
    _fake_outputs(out, "02_b", digest(b))
    (pkg / "new.py").write_text("")
    assert book_runner.needs_run("02_b", out, digest(b)) == "changed"
    # compiled files do not count
    _fake_outputs(out, "02_b", digest(b))
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert book_runner.needs_run("02_b", out, digest(b)) is None

    # missing outputs rerun
    (out / "02_b.ipynb").unlink()
    assert book_runner.needs_run("02_b", out, digest(b)) == "no outputs yet"


def test_stale_chapters(tmp_path):
    book = fake_book(tmp_path, {"01_a": fake_chapter("A", "1"), "02_b": fake_chapter("B", "2")})
    pkg, out = fake_package(tmp_path), tmp_path / "out"
    out.mkdir()
    for stem, profile in (("01_a", "smoke"), ("02_b", "quick")):
        digest = book_runner.content_hash(book / f"{stem}.md", pkg, profile=profile, device="cpu", seed=0)
        (out / f"{stem}.json").write_text(json.dumps({"hash": digest, "profile": profile, "device": "cpu", "seed": 0}))
    notes = book_runner.stale_chapters(book, out, pkg)
    assert len(notes) == 1 and "different profiles" in notes[0]
    (book / "01_a.md").write_text(fake_chapter("A", "3"))
    assert any(n.startswith("01_a was executed from an older version") for n in book_runner.stale_chapters(book, out, pkg))


def test_run_book_executes_records_and_caches(tmp_path):
    """End to end with two tiny chapters (one kernel start each run)."""
    book = fake_book(tmp_path, {"01_a": fake_chapter("A", RECORDING), "02_b": fake_chapter("B", "print(2)")})
    pkg, out = fake_package(tmp_path), tmp_path / "out"

    def run(**kw):
        summary = book_runner.run_book(book, out, profile="smoke", device="cpu", package_dir=pkg, progress=False, **kw)
        return {s["chapter"]: s["status"] for s in summary}

    assert run() == {"01_a": "executed", "02_b": "executed"}
    res = json.loads((out / "01_a.json").read_text())
    assert res["figures"] == {"answer": {"value": 42, "unit": "units"},
                              "profile_seen": {"value": "smoke", "unit": None}}
    assert res["profile"] == "smoke" and res["device"] == "cpu" and res["seed"] == 0
    assert res["hash"] == book_runner.content_hash(book / "01_a.md", pkg, profile="smoke", device="cpu", seed=0)
    assert res["total_seconds"] > 0 and len(res["cells"]) == 3  # parameters, injected parameters, body
    assert {"python", "torch", "torchvision", "numpy", "fastfcn", "device_name", "git_commit"} <= set(res["environment"])
    nb = json.loads((out / "01_a.ipynb").read_text())
    assert "ran smoke cpu 0" in json.dumps(nb)
    assert not list(out.glob(".*")), "temporary files left behind"

    assert run() == {"01_a": "cached", "02_b": "cached"}
    (book / "02_b.md").write_text(fake_chapter("B", "print(3)"))
    assert run() == {"01_a": "cached", "02_b": "executed"}
    (pkg / "__init__.py").write_text("X = 2\n")
    assert run(only=["01"]) == {"01_a": "executed"}
    assert run() == {"01_a": "cached", "02_b": "executed"}
    assert run(force=True, only=["02_b"]) == {"02_b": "executed"}


def test_failing_chapter_exits_nonzero_naming_it(tmp_path):
    body = """
    x = 1
    raise ValueError("boom in the fake chapter")
    """
    book = fake_book(tmp_path, {"01_bad": fake_chapter("Bad", body)})
    out = tmp_path / "out"
    _fake_outputs(out, "01_bad", "stale")
    proc = subprocess.run([sys.executable, "-m", "fastfcn", "book", "run", "--book-dir", str(book), "--out", str(out),
                           "--profile", "smoke", "--device", "cpu"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert proc.returncode != 0
    err = proc.stderr
    assert "chapter 01_bad failed" in err
    assert re.search(r"cell \d+ \(In \[\d+\], 01_bad\.md line \d+\)", err), err
    assert "ValueError: boom in the fake chapter" in err
    assert 'raise ValueError("boom' in err  # the failing line itself
    assert (out / "01_bad.failed.ipynb").is_file()
    assert not (out / "01_bad.json").exists() and not (out / "01_bad.ipynb").exists()  # stale outputs removed


# ------------------------------------------------------------------------------------------------
# staging (no jupyter-book)


def test_stage_book_replaces_sources_by_executed_notebooks(tmp_path):
    book = fake_book(tmp_path, {"01_a": fake_chapter("A", "1"), "02_b": fake_chapter("B", "2")})
    (book / "_config.yml").write_text("title: t\n")
    (book / "references.bib").write_text("")
    (book / "figures").mkdir()
    (book / "figures" / "x.svg").write_text("<svg/>")
    (book / "01_a.ipynb").write_text("{}")  # a stray notebook next to the sources is not staged
    (book / "_executed").mkdir()
    executed = tmp_path / "executed"
    executed.mkdir()
    (executed / "01_a.ipynb").write_text('{"executed": true}')
    with pytest.raises(book_chapters.ChapterError, match="not executed yet: 02_b"):
        book_build.stage_book(book, executed, tmp_path / "stage")
    stage = book_build.stage_book(book, executed, tmp_path / "stage", stems=["01_a"])
    names = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*"))
    assert names == ["01_a.ipynb", "_config.yml", "_toc.yml", "figures", "figures/x.svg", "intro.md",
                     "references.bib"]
    assert json.loads((stage / "01_a.ipynb").read_text()) == {"executed": True}
    assert book_chapters.toc_files(book_chapters.read_yaml(stage / "_toc.yml")) == ["intro", "01_a"]


def test_remote_scripts_detector(tmp_path):
    (tmp_path / "a.html").write_text('<script src="_static/x.js"></script><script src="https://cdn.example/x.js">'
                                     '</script><link rel="stylesheet" href="//fonts.example/f.css">')
    assert book_build.remote_scripts(tmp_path) == [("a.html", "https://cdn.example/x.js"), ("a.html", "//fonts.example/f.css")]


# ------------------------------------------------------------------------------------------------
# the rendered book


@pytest.fixture(scope="session")
def rendered(smoke_dir, tmp_path_factory):
    stems = _written(_toc_stems())
    if not stems:
        pytest.skip("no chapter written yet")
    # the chapters are cached when their tests ran first; the front page ("intro") runs after them
    book_runner.run_book(BOOK, smoke_dir, profile="smoke", device="cpu", only=[*stems, "intro"], progress=False,
               cell_timeout=SMOKE_SECONDS)
    out = tmp_path_factory.mktemp("rendered")
    index = book_build.build_book(BOOK, smoke_dir, out, stems=stems, quiet=True)
    return index.parent, stems


def test_book_has_one_page_per_chapter_with_figures(rendered):
    html, stems = rendered
    assert (html / "index.html").is_file()
    for stem in stems:
        page = html / f"{stem}.html"
        assert page.is_file(), stem
        assert "<img" in page.read_text(), f"{stem} shows no figure"


def test_front_page_shows_the_headline_figure(rendered):
    html, stems = rendered
    if set(stems) != set(_toc_stems()):
        pytest.skip("a build of some chapters only renders a plain front page")
    page = (html / "intro.html").read_text()
    assert "<img" in page and "Table 1 in miniature" in page and "What users asked" in page


def test_book_pages_show_no_errors(rendered):
    html, stems = rendered
    for stem in stems:
        text = (html / f"{stem}.html").read_text()
        assert "output traceback" not in text and "output error" not in text, stem
        assert "Traceback (most recent call last)" not in text, stem
        stderr = re.findall(r'<div class="output stderr[^"]*">(.*?)</div>', text, flags=re.S)
        assert not any("Error" in s for s in stderr), f"{stem}: {stderr}"


def test_book_works_offline(rendered):
    html, _ = rendered
    assert book_build.remote_scripts(html) == []
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    for page in html.glob("*.html"):
        for src in re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page.read_text()):
            assert src.startswith("_static/mathjax/"), (page.name, src)


def test_book_bibliography_and_hidden_solutions(rendered):
    html, stems = rendered
    bib = (html / "bibliography.html").read_text()
    assert "FastFCN" in bib and 'class="citation' in bib
    if "01_overview" in stems:
        page = (html / "01_overview.html").read_text()
        solutions = re.findall(r'<div class="solution([^"]*)"', page)
        assert solutions and all("dropdown" in s for s in solutions)
        assert 'href="bibliography.html#' in page  # citations link to the bibliography page


def test_book_pages_show_the_parameters_once(rendered):
    """papermill's injected copy of the parameters is merged into the chapter's own cell: one cell, the values used."""
    html, stems = rendered
    for stem in stems:
        text = (html / f"{stem}.html").read_text()
        assert text.count("tag_parameters") == 1, stem
        assert "tag_injected-parameters" not in text, stem
        cell = text[text.index("tag_parameters"):]
        cell = re.sub(r"<[^>]+>", "", cell[: cell.index("</pre>")])
        assert re.search(r'profile\s*=\s*(&quot;|")smoke(&quot;|")', cell), (stem, cell[:300])


def test_merge_injected_parameters_keeps_one_cell_with_the_values_used():
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# T"},
        {"cell_type": "code", "metadata": {"tags": ["parameters"]},
         "source": 'profile = "quick"  # smoke | quick | full\nresults_dir = "results"\nseed = 0'},
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
         "source": ["# Parameters\n", 'profile = "smoke"\n', "seed = 3\n", 'device = "cpu"\n']},
        {"cell_type": "code", "metadata": {}, "source": "print(profile)"},
    ]}
    out = book_build.merge_injected_parameters(nb)
    assert [c["source"] for c in out["cells"]] == [
        "# T", 'profile = "smoke"\nresults_dir = "results"\nseed = 3\ndevice = "cpu"', "print(profile)"]
    assert book_build.merge_injected_parameters({"cells": []}) == {"cells": []}


def test_fastfcn_command_echoes_and_checks_the_exit_status(tmp_path, capsys):
    """Chapter 10 runs the command line in its kernel: the command is printed, an unexpected status stops it."""
    from fastfcn.cli.in_process import fastfcn_command

    missing = tmp_path / "no such folder"
    with pytest.raises(RuntimeError, match="exited with status 2, expected 0"):
        fastfcn_command("data", "check", "--dataset", "folder", "--root", missing)
    out = capsys.readouterr()
    assert f"$ fastfcn data check --dataset folder --root '{missing}'" in out.out.replace(" \\\n    ", " ")
    assert "no such folder" in out.err


def test_a_long_command_is_echoed_over_lines_a_shell_takes_as_one() -> None:
    import shlex

    from fastfcn.cli.in_process import command_lines

    argv = ["train", "--dataset", "folder", "--root", "_build/own_data/scenes", "--iterations", "40",
            "--init", "_build/runs/encnet-jpu-seed0-c37a285d7220/last.pth", "--out", "_build/own_data/finetuned",
            "--classes", "sky", "grass", "round thing"]
    text = command_lines(argv, width=80)
    lines = text.splitlines()
    assert len(lines) == 3 and all(len(line) <= 80 for line in lines)
    assert all(line.endswith(" \\") for line in lines[:-1]) and all(line.startswith("    --") for line in lines[1:])
    assert lines[-1].endswith(" --classes sky grass 'round thing'")  # an option keeps its values
    assert shlex.split(text.replace("\\\n", "\n"))[2:] == argv  # what a shell runs: the same words
    assert command_lines(["data", "check"]) == "$ fastfcn data check"
