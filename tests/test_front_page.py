"""The front page (book/intro.md): executed after the chapters, every number read from their results files.

The page runs in the ``smoke`` profile from a fixture results folder whose numbers appear nowhere
else, so what the page shows can only have come from the files; then from an empty folder, as when
it is opened before any chapter ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("papermill")
pytest.importorskip("jupytext")
pytest.importorskip("yaml")

from fastfcn.book import build as book_build  # noqa: E402
from fastfcn.book import chapters as book_chapters  # noqa: E402
from fastfcn.book import front_page  # noqa: E402
from fastfcn.book import runner as book_runner  # noqa: E402

BOOK = Path(__file__).resolve().parents[1] / "book"
SECONDS = 120

# distinctive values: none of them is a default or a paper's number
TRAINING = {"miou_none": 41.3, "miou_bilinear": 27.9, "miou_fpn": 38.6, "miou_jpu": 44.7,
            "latency_ms_none": 73.1, "latency_ms_bilinear": 21.9, "latency_ms_fpn": 30.4, "latency_ms_jpu": 33.3,
            "paper_miou_none": 49.91, "paper_miou_bilinear": 46.47, "paper_miou_fpn": 49.59, "paper_miou_jpu": 51.05,
            "paper_fps_none": 18.77, "paper_fps_bilinear": 45.67, "paper_fps_fpn": 37.87, "paper_fps_jpu": 37.56,
            "backbone": "resnet18", "iterations": 321, "image_size": 96, "val_images": 17,
            "ranking": "JPU > dilated (OS 8) > FPN > bilinear", "paper_ranking": "JPU > dilated (OS 8) > FPN > bilinear",
            "ranking_agrees": "the same order as the paper's",
            "diff_encnet_jpu_vs_none": 3.4,
            "verdict_encnet_jpu_vs_none": "larger than both the seed spread and the val-image interval"}
SPEED = {"ratio_encnet_r50_jpu": 1.87, "paper_ratio_encnet_r50_jpu": 2.001, "encnet_r50_gmacs_ratio": 2.36,
         "encnet_r50_none_latency_ms": 1613.0, "encnet_r50_jpu_latency_ms": 862.0, "bench_size": 512,
         "bench_threads": 2, "bench_device_name": "Fixture CPU 9000"}


def write_results(folder: Path, profile: str = "quick") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, figures in ((front_page.TRAINING, TRAINING), (front_page.SPEED, SPEED)):
        doc = {"chapter": stem, "profile": profile, "device": "cpu",
               "figures": {k: {"value": v, "unit": None} for k, v in figures.items()}}
        (folder / f"{stem}.json").write_text(json.dumps(doc))
    return folder


def test_front_page_is_the_toc_root_and_a_notebook():
    page = book_chapters.front_page(BOOK)
    assert page is not None and page.stem == "intro"
    book_chapters.read_chapter(page.path)  # exactly one parameters cell
    assert book_chapters.is_front_page("book/intro.md", page) and not book_chapters.is_front_page("07", page)


def test_headline_and_phrases_come_from_the_files(tmp_path):
    results = front_page.load_results(write_results(tmp_path))
    points = front_page.headline_points(results)
    assert [p.upsampling for p in points] == ["none", "bilinear", "fpn", "jpu"]
    assert [(p.miou, p.latency_ms) for p in points] == [(TRAINING[f"miou_{u}"], TRAINING[f"latency_ms_{u}"])
                                                         for u in ("none", "bilinear", "fpn", "jpu")]
    assert points[-1].paper_latency_ms == pytest.approx(1e3 / 37.56)
    words = front_page.phrases(results)
    assert "1.87 times" in words["front_speedup"] and "2.00 times" in words["front_speedup"]
    assert "862 ms" in words["front_cpu"] and "1613 ms" in words["front_cpu"] and "Fixture CPU 9000" in words["front_cpu"]
    assert "321 iterations" in words["front_caption"] and "96-pixel" in words["front_caption"]
    assert "+3.4 points, " + TRAINING["verdict_encnet_jpu_vs_none"] in words["front_reproduced"]
    assert front_page.missing(results) == []
    fig, drawn = front_page.draw_headline(results)
    assert drawn == points
    labels = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "44.7 %, 33.3 ms" in labels and "51.05 %" in labels


def test_the_speed_answer_says_which_networks_each_gmacs_ratio_counts(tmp_path):
    """Chapter 6 counts at the paper's JPU width; chapter 1's overview, at a narrower width, prints another ratio."""
    folder = write_results(tmp_path)
    overview = {"chapter": front_page.OVERVIEW, "profile": "quick", "device": "cpu",
                "figures": {"gmacs_ratio": {"value": 5.43, "unit": None}, "jpu_width": {"value": 48, "unit": None}}}
    (folder / f"{front_page.OVERVIEW}.json").write_text(json.dumps(overview))
    words = front_page.phrases(front_page.load_results(folder))["front_speedup"]
    assert "2.36 times the multiply-accumulates (EncNet at the paper's JPU width; " in words
    assert "5.4 times with the `quick` profile's narrower JPU, 48 wide" in words
    wide = {**overview, "figures": {**overview["figures"], "jpu_width": {"value": 512, "unit": None}}}
    (folder / f"{front_page.OVERVIEW}.json").write_text(json.dumps(wide))
    assert "chapter 1" not in front_page.phrases(front_page.load_results(folder))["front_speedup"]


def test_missing_results_name_the_command(tmp_path):
    results = front_page.load_results(tmp_path)
    gaps = front_page.missing(results)
    assert len(gaps) == 2 and "--only 06 intro" in gaps[0] and "--only 07 intro" in gaps[1]
    assert "has not run" in front_page.phrases(results)["front_speedup"]
    assert front_page.draw_headline(results)[1] == []


def _outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


def test_front_page_executes_in_smoke_from_a_results_folder(tmp_path):
    executed = write_results(tmp_path / "executed")
    package = tmp_path / "pkg"  # the cache key's package: the real one may change while the test runs
    package.mkdir()
    (package / "__init__.py").write_text("")

    def run():
        summary = book_runner.run_book(BOOK, executed, profile="smoke", device="cpu", only=["intro"],
                                       progress=False, cell_timeout=SECONDS, package_dir=package)
        return [(s["chapter"], s["status"]) for s in summary]

    assert run() == [("intro", "executed")]
    res = json.loads((executed / "intro.json").read_text())
    figures = {k: v["value"] for k, v in res["figures"].items()}
    assert [(p["upsampling"], p["miou"], p["latency_ms"], p["paper_miou"], p["paper_fps"])
            for p in figures["headline_points"]] == [
        (u, TRAINING[f"miou_{u}"], TRAINING[f"latency_ms_{u}"], TRAINING[f"paper_miou_{u}"], TRAINING[f"paper_fps_{u}"])
        for u in ("none", "bilinear", "fpn", "jpu")]
    assert "1.87 times" in figures["front_speedup"] and "Fixture CPU 9000" in figures["front_cpu"]
    nb = json.loads((executed / "intro.ipynb").read_text())
    assert any("image/png" in o.get("data", {}) for o in _outputs(nb)), "no headline figure"
    assert not [o for o in _outputs(nb) if o.get("output_type") == "error"]
    assert "Fixture CPU 9000" in json.dumps(nb)  # glued into the page

    # cached while the results files stay as they are, due again when one changes
    assert run() == [("intro", "cached")]
    assert not [n for n in book_runner.stale_chapters(BOOK, executed, package) if n.startswith("intro")]
    doc = json.loads((executed / f"{front_page.SPEED}.json").read_text())
    doc["figures"]["ratio_encnet_r50_jpu"]["value"] = 1.91
    (executed / f"{front_page.SPEED}.json").write_text(json.dumps(doc))
    assert any(n.startswith("intro was executed from an older") for n in book_runner.stale_chapters(BOOK, executed, package))
    inputs = [executed / f"{stem}.json" for stem in (front_page.SPEED, front_page.TRAINING)]
    digest = book_runner.content_hash(BOOK / "intro.md", package, profile="smoke", device="cpu", inputs=inputs)
    assert book_runner.needs_run("intro", executed, digest) == "changed"


def test_front_page_executes_before_any_chapter_ran(tmp_path):
    """Opened first (in Jupyter, or `book run --only intro` on a fresh clone): it runs and says what to run."""
    executed = tmp_path / "executed"
    book_runner.run_book(BOOK, executed, profile="smoke", device="cpu", only=["intro"], progress=False,
                         cell_timeout=SECONDS)
    text = (executed / "intro.ipynb").read_text()
    assert "Missing results" in text and "python -m fastfcn book run --only 07 intro" in text
    figures = json.loads((executed / "intro.json").read_text())["figures"]
    assert figures["headline_points"]["value"] == []


def test_stage_book_renders_the_executed_front_page(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: 01_a\n- file: 02_b\n")
    (book / "intro.md").write_text("# Front\n\n```{code-cell} ipython3\n:tags: [parameters]\n\nprofile = 'quick'\n```\n")
    for stem in ("01_a", "02_b"):
        (book / f"{stem}.md").write_text(f"# {stem}\n")
    executed = tmp_path / "executed"
    executed.mkdir()
    for stem in ("01_a", "02_b"):
        (executed / f"{stem}.ipynb").write_text('{"cells": []}')
    with pytest.raises(book_chapters.ChapterError, match="front page intro.md .* not executed"):
        book_build.stage_book(book, executed, tmp_path / "stage")
    (executed / "intro.ipynb").write_text('{"cells": [], "executed": true}')
    stage = book_build.stage_book(book, executed, tmp_path / "stage")
    assert json.loads((stage / "intro.ipynb").read_text())["executed"] and not (stage / "intro.md").exists()
    # a build of some chapters only: its links would not resolve, so a plain page stands in
    stage = book_build.stage_book(book, executed, tmp_path / "stage", stems=["01_a"])
    assert (stage / "intro.md").read_text().startswith("# Front") and not (stage / "intro.ipynb").exists()
