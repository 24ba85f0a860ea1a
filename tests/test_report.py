"""The reproduction report (book/11_reproduction_report.md): every number from results files the test writes.

The fixtures are a build's results folder in the runner's exact format (``fastfcn.book.runner``) and a
``book/results``-style folder with a committed ``full`` run and a GPU benchmark, with values that
appear nowhere else; then empty folders, as when the report is opened before anything ran.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fastfcn import paper
from fastfcn.book import report as rp
from fastfcn.book.claims import (
    CONFIRMED,
    NOT_CONFIRMED,
    NOT_MEASURED,
    PARTLY,
    beyond_markdown,
    claims_markdown,
    recovery_markdown,
)
from fastfcn.book.record import RESULTS_ENV
from fastfcn.book.report_summary import REPORT_FIGURE, build_report, chapter_link
from fastfcn.book.results import Run, build_results_dir, find_figure, load_gpu_bench

BOOK = Path(__file__).resolve().parents[1] / "book"
STEM = "11_reproduction_report"
SECONDS = 150

SPEED = {"ratio_encnet_resnet50_jpu": 1.62, "ratio_encnet_resnet50_fpn": 1.93, "ratio_encnet_resnet50_bilinear": 2.61,
         "ratio_encnet_resnet101_jpu": 3.21, "ratio_encnet_resnet101_fpn": 3.02, "ratio_encnet_resnet101_bilinear": 3.4,
         "encnet_r50_gmacs_ratio": 2.35, "sweep_memory_ratio_max": 0.88, "sweep_max_size": 1024,
         "train_peak_ratio": 1.1, "saved_ratio": 3.4, "bench_size": 512}
ROWS = [("encnet", "none", 40.2), ("encnet", "bilinear", 31.7), ("encnet", "fpn", 38.3), ("encnet", "jpu", 41.9),
        ("aspp", "none", 39.4), ("aspp", "jpu", 37.2)]  # ASPP: JPU below the dilated model, unlike the paper


def table1_rows(rows, seeds: int = 2, spread: float = 0.6) -> list[dict]:
    return [{"head": h, "upsampling": u, "miou": m, "pixacc": 80.5, "miou_range": spread, "seeds": seeds,
             "s_per_it": 0.2, "boot_lo": m - 1, "boot_hi": m + 1} for h, u, m in rows]


def chapter_json(stem: str, values: dict, profile: str = "quick", device: str = "cpu",
                 device_name: str = "Fixture CPU 7", commit: str = "feedc0ffee1234567890", when: str = "2026-11-30") -> dict:
    """One chapter's results file, as ``fastfcn.book.runner.execute_chapter`` writes it."""
    return {"chapter": stem, "hash": "0" * 64, "profile": profile, "device": device, "device_requested": device,
            "seed": 0, "figures": {k: {"value": v, "unit": None} for k, v in values.items()},
            "cells": [{"index": 1, "seconds": 0.1, "source": "x = 1"}], "cells_seconds": 0.1, "total_seconds": 0.2,
            "executed_at": f"{when}T12:00:00+00:00",
            "environment": {"created": f"{when}T12:00:00+00:00", "device": device, "device_name": device_name,
                            "git_commit": commit, "python": "3.11.7", "torch": "2.14.1"}}


def write_build(folder: Path, profile: str = "quick") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    chapters = {
        "02_price_of_dilation": {"r101_layer3_blocks": 23, "r101_layer3_blocks_exact": 22, "r101_layer3_convs": 69,
                                 "r101_layer3_convs_exact": 68, "r101_layer4_blocks": 3, "r101_layer4_blocks_exact": 2,
                                 "r101_layer4_convs": 9, "r101_layer4_convs_exact": 8},
        "03_dilated_vs_stride_1d": {"fig3_dilated_error": 0.0, "fig3_strided_error": 0.0, "eq23_max_abs_error": 2.4e-7,
                                    "backbone_R_relative_error_eval_bn": 3.1e-6},
        "06_how_fast": SPEED,
        "07_table1": {"table1_rows": table1_rows(ROWS)},
        "09_recovering_dilated": {"recovery_rows": [
            # as chapter 9 records them: the package's module names, mIoU a fraction (the metric's)
            {"module": "bilinear", "rel_error": 0.713, "cosine": 0.61, "miou_frozen": 0.125},
            {"module": "jpu", "rel_error": 0.377, "cosine": 0.905, "miou_frozen": 0.333}]},
        # the report's own file from an earlier run: never read back
        STEM: {REPORT_FIGURE: {"reproduced": 99}, "table1_rows": table1_rows([("encnet", "jpu", 99.0)])},
    }
    for stem, values in chapters.items():
        (folder / f"{stem}.json").write_text(json.dumps(chapter_json(stem, values, profile)))
    return folder


def write_committed(folder: Path) -> Path:
    full = folder / "full"
    full.mkdir(parents=True)
    rows = table1_rows([("encnet", "none", 50.3), ("encnet", "bilinear", 46.0), ("encnet", "fpn", 48.1),
                        ("encnet", "jpu", 50.6)], seeds=1, spread=0.0)
    (full / "07_table1.json").write_text(json.dumps(chapter_json(
        "07_table1", {"table1_rows": rows}, "full", "cuda", "Fixture GPU X1", "abcdef0123456789-dirty", "2026-12-24")))
    gpu = folder / "gpu"
    gpu.mkdir()
    bench = [{"kind": "fastfcn", "head": "encnet", "backbone": f"{b}s", "paper_backbone": b, "upsampling": u,
              "dilated_backbone": False, "mode": mode, "dtype": "fp32", "channels_last": False, "fps": fps,
              "ratio": None, "peak_mem_bytes": mem}
             for b, u, mode, fps, mem in (("resnet50", "none", "inference", 40.0, 1e9), ("resnet50", "jpu", "inference", 88.0, 300e6),
                                          ("resnet101", "none", "inference", 25.0, 1e9), ("resnet101", "jpu", "inference", 70.0, 4e8),
                                          ("resnet50", "none", "train", 9.0, 8e9), ("resnet50", "jpu", "train", 20.0, 2e9))]
    for r in bench:
        base = next(x for x in bench if x["paper_backbone"] == r["paper_backbone"] and x["mode"] == r["mode"]
                    and x["upsampling"] == "none")
        r["ratio"] = r["fps"] / base["fps"]
    (gpu / "bench.json").write_text(json.dumps({"environment": {"device_name": "NVIDIA Fixture", "created": "2026-12-20"},
                                                "options": {}, "results": bench}))
    (gpu / "device.json").write_text(json.dumps({"name": "NVIDIA Fixture H9", "date": "2026-12-21T08:00:00",
                                                 "commit": "0badc0de99887766"}))
    return folder


@pytest.fixture
def filled(tmp_path):
    return build_report(write_build(tmp_path / "executed"), write_committed(tmp_path / "results"))


def cells(table: rp.Table, column: str) -> dict[str, rp.Cell]:
    return {row.label: row.cells[column] for row in table.rows}


# ------------------------------------------------------------------------------------------------
# the tables, from the files


def test_table1_orderings_and_values(filled):
    t1 = filled.tables[0]
    quick, full = cells(t1, "quick"), cells(t1, "full")
    jpu, aspp_jpu, psp = "EncNet, JPU", "ASPP, JPU", "PSP, JPU"
    assert quick[jpu].kind == rp.SAME and quick[jpu].words.startswith("same ordering (rank 1 of 4)")
    assert quick[jpu].text == "80.5 / 41.9 (seed range 0.6, 2 seeds)"
    assert quick[aspp_jpu].kind == rp.DIFFERENT and "rank 2 of 2, the paper's 1" in quick[aspp_jpu].words
    assert quick[psp].kind == rp.NOT_RUN and quick[psp].words == "not run in the `quick` profile"
    # quick is on the procedural scenes: ordering only, never a value compared with Pascal Context
    assert "points" not in quick[jpu].words and "procedural scenes" in t1.sources["quick"]
    # full: Pascal Context (the Table 1 chapter's `full` data), one seed: values compared too
    assert full[jpu].kind == rp.REPRODUCED and "0.4 points below the paper's" in full[jpu].words
    assert full["EncNet, dilated (OS 8)"].kind == rp.REPRODUCED  # same rank, 0.4 points above 49.91
    assert full["EncNet, FPN"].kind == rp.SAME and "1.5 points below" in full["EncNet, FPN"].words
    assert full[aspp_jpu].kind == rp.NOT_RUN and "needs Pascal Context" in full[aspp_jpu].words
    assert "Fixture GPU X1 (cuda), 2026-12-24, commit abcdef0123 (with local changes)" in t1.sources["full"]
    assert "99.0" not in t1.markdown()  # the report's own earlier file is not read


def test_table2_ratios_from_the_build_and_fps_from_the_gpu_benchmark(filled):
    t2 = filled.tables[1]
    quick, full = cells(t2, "quick"), cells(t2, "full")
    r50 = "ResNet-50, EncNet, "
    assert quick[r50 + "JPU"].text == "1.62x"
    # the paper: bilinear 2.43 > FPN 2.02 > JPU 2.00 > none; ours 2.61 > 1.93 > 1.62 > 1: the same ordering
    assert quick[r50 + "JPU"].kind == rp.SAME and "1.62x against the paper's 2.00x" in quick[r50 + "JPU"].words
    assert quick[r50 + "FPN"].kind == rp.REPRODUCED  # 1.93 within 10 % of 2.02
    assert quick[r50 + "dilated (OS 8)"].text == "1.00x (baseline)" and quick[r50 + "dilated (OS 8)"].kind == rp.SAME
    r101 = "ResNet-101, EncNet, "
    assert quick[r101 + "FPN"].kind == rp.DIFFERENT  # ours 3.02 < JPU 3.21, the paper's 3.08 > 3.05
    assert quick["ResNet-50, ASPP, JPU"].kind == rp.NOT_RUN
    assert full[r50 + "JPU"].text == "88.0 FPS (2.20x)" and full[r50 + "JPU"].kind == rp.REPRODUCED
    assert "NVIDIA Fixture H9, 2026-12-21, commit 0badc0de99" in t2.sources["full"]
    assert "chapter 06_how_fast, `quick` profile, Fixture CPU 7 (cpu), 2026-11-30, commit feedc0ffee" in t2.sources["quick"]


def test_tables_3_to_5_say_what_they_need_and_label_the_classes(filled):
    t3, t4, t5 = filled.tables[2:]
    assert "**60 classes** (background included)" in t3.protocol and "**59-class**" in t3.protocol
    assert "**59 classes** (background excluded)" in filled.tables[0].protocol
    labels = [r.label for r in t3.rows]
    assert labels == [f"{m} (60 classes)" for m in paper.TABLE3] + [f"{m} (59 classes)" for m in paper.TABLE3_59]
    assert [r.paper for r in t3.rows] == ["51.2", "53.1", "51.7", "52.10", "54.03"]  # as the paper prints them
    for t in (t3, t4, t5):
        for c in rp.COLUMNS:
            counted = [cell for cell in cells(t, c).values() if cell.kind != rp.CONTEXT]
            assert counted and all(cell.kind == rp.NOT_RUN and cell.text == "not run yet" for cell in counted)
    assert "needs ADE20K" in cells(t4, "full")["EncNet+JPU ResNet-50"].words
    context = [r.label for r in t5.rows if r.cells["quick"].kind == rp.CONTEXT]
    assert context == ["CASIA_IVA_JD", "WinterIsComing", "PSPNet ResNet-269"]
    assert [r.paper for r in t5.rows] == ["0.5547", "0.5544", "0.5538", "0.5567", "0.5584"]
    classes = filled.classes_markdown()
    assert "| the paper's Table 1 | Pascal Context val, single scale | 59: background excluded |" in classes
    assert "| the paper's Table 3 | Pascal Context val, multi-scale | 60: background included |" in classes
    assert "| ours, `quick` column, Table 1 | the procedural scenes | 8 classes (no background class) |" in classes
    assert "| ours, `full` column, Table 1 | Pascal Context | 59 classes (background excluded) |" in classes


def test_table5_in_the_paper_module():
    assert paper.TABLE5 == {"CASIA_IVA_JD": 0.5547, "WinterIsComing": 0.5544, "PSPNet ResNet-269": 0.5538,
                            "EncNet ResNet-101": 0.5567, "EncNet+JPU ResNet-101": 0.5584}
    assert paper.TABLE5_RANK == {"CASIA_IVA_JD": 1, "WinterIsComing": 2}


def test_status_counts_add_up(filled):
    counts = filled.counts()
    counted_rows = sum(len([r for r in t.rows if r.cells["quick"].kind != rp.CONTEXT]) for t in filled.tables)
    assert sum(counts.values()) == 2 * counted_rows == 2 * (8 + 16 + 5 + 4 + 2)
    assert counts[rp.DIFFERENT] >= 2 and counts[rp.REPRODUCED] >= 3
    t1 = filled.counts_by_table()["table1"]
    assert t1["quick"] == {rp.REPRODUCED: 0, rp.SAME: 4, rp.DIFFERENT: 2, rp.NOT_COMPARED: 0, rp.NOT_RUN: 2}
    assert f"{counts[rp.NOT_RUN]} not run." in filled.counts_sentence()


# ------------------------------------------------------------------------------------------------
# the claims, and what the book reproduces beyond the tables


def test_claims_get_a_status_computed_from_the_numbers(filled):
    by = {(r.quote.split()[0], r.run.split()[0]): r for r in filled.claims}
    assert by["reduces", "quick"].status.startswith(f"{NOT_CONFIRMED}: ours is 2.35x (EncNet, ResNet-50")
    speed = by["running", "quick"]
    assert speed.kind == PARTLY and "ResNet-50, FPS JPU / dilated (1.62x)" in speed.status and "3.21x" in speed.measured
    memory = by["the", "quick"]
    assert memory.kind == PARTLY and "0.88x" in memory.status and "the JPU model needed more memory" in memory.measured
    assert by["without", "quick"].kind == PARTLY and "ASPP: JPU − dilated, mIoU (-2.2 points, seed range 0.6)" in by["without", "quick"].status
    assert by["JPU", "quick"].kind == CONFIRMED  # JPU beats FPN by 3.6 and bilinear by 10.2 points, beyond the 0.6 range
    assert by["23", "quick"].kind == NOT_CONFIRMED and "22 of 23 blocks, 68 of 69 convolutions" in by["23", "quick"].measured
    assert by["without", "full"].kind == CONFIRMED  # 50.6 >= 50.3 in the committed full run
    assert by["reduces", "full"].status == "not measured in this run"  # a run made elsewhere: no command to run
    gpu = [r for r in filled.claims if r.run.startswith("GPU")]
    assert {r.run for r in gpu} == {"GPU: NVIDIA Fixture H9, bench.json"}  # short: the full path is in the run list
    assert [r.kind for r in gpu] == [NOT_CONFIRMED, CONFIRMED]  # FPS 2.80x (R101), 2.20x (R50); memory 3.33x, 4x
    assert "3.05x (EncNet, ResNet-101)" in claims_markdown(filled.claims)  # the paper's own Table 2, labelled


def test_beyond_the_tables_links_the_chapters_that_ran(filled):
    text = beyond_markdown(filled.beyond, chapter_link)
    assert "**Fig. 3**, [chapter 3](03_dilated_vs_stride_1d.html): " in text and "0 (exactly)" in text
    assert "[chapter 9](09_recovering_dilated.html)" in text and "JPU, with relative error 0.377" in text
    assert "- **Eq. 1 and 4**: joint upsampling" in text and "chapter 4 has not run in this build" in text
    assert filled.recovery_rows()[1]["module"] == "jpu"


def test_the_section_3_3_table_prints_percent_and_the_books_module_names(filled):
    """Chapter 9 records the frozen head's mIoU as a fraction: the table's column says % (once it read 0.3)."""
    table = recovery_markdown(filled.recovery)
    assert "| bilinear | 0.713 | 0.610 | 12.5 |" in table and "| JPU | 0.377 | 0.905 | 33.3 |" in table


def test_unused_committed_files_are_named_one_by_one(tmp_path):
    committed = write_committed(tmp_path / "results")
    (committed / "gpu" / "02_price_of_dilation.json").write_text(json.dumps(chapter_json(
        "02_price_of_dilation", {"r101_layer3_blocks": 23}, "quick", "cuda")))
    rep = build_report(write_build(tmp_path / "executed"), committed)
    text = rep.runs_markdown()
    assert "not used by a column: book/results/gpu/02_price_of_dilation.json." in text
    assert not text.rstrip(".").endswith("/gpu")  # the folder, whose bench.json fills Table 2, is not named


def test_table3_says_what_each_class_count_needs(filled):
    t3 = cells(filled.tables[2], "full")
    assert "Pascal Context (with background)" in t3["EncNet+JPU ResNet-50 (60 classes)"].words
    needs59 = t3["EncNet+JPU ResNet-50 (59 classes)"].words
    assert "background excluded" in needs59 and "with background" not in needs59


# ------------------------------------------------------------------------------------------------
# nothing run yet


def test_the_report_renders_before_anything_ran(tmp_path):
    empty = build_report(tmp_path / "executed", tmp_path / "results")
    assert empty.runs == {"quick": None, "full": None} and empty.gpu is None
    counts = empty.counts()
    assert counts[rp.NOT_RUN] == sum(counts.values()) > 0
    t1 = cells(empty.tables[0], "quick")
    assert t1["EncNet, JPU"].words == "not run yet in this build: `python -m fastfcn book run --only 07`"
    assert cells(empty.tables[1], "quick")["ResNet-50, EncNet, JPU"].words.endswith("--only 06`")
    assert {r.kind for r in empty.claims} == {NOT_MEASURED}
    assert all(stem is None for _, stem, _ in empty.beyond)
    assert "No chapter has run in this build." in empty.runs_markdown()
    for t in empty.tables:
        assert "not run yet" in t.markdown()


def test_a_full_build_fills_the_full_column(tmp_path):
    build = write_build(tmp_path / "executed", profile="full")
    rep = build_report(build, tmp_path / "none")
    assert rep.runs["quick"] is None and rep.runs["full"] is not None and rep.runs["full"].origin == "this build"
    jpu = cells(rep.tables[0], "full")["EncNet, JPU"]
    assert jpu.kind == rp.SAME and "9.1 points below the paper's" in jpu.words  # full: Pascal Context, values compared


def test_compare_orders_within_groups():
    paper_values = {"a": 3.0, "b": 2.0, "c": 1.0}
    same = rp.compare(paper_values, {k: rp.Measured(v, str(v), False) for k, v in (("a", 9), ("b", 5), ("c", 1))},
                      lambda k: 0)
    assert {k: c.kind for k, c in same.items()} == {"a": rp.SAME, "b": rp.SAME, "c": rp.SAME}
    swapped = rp.compare(paper_values, {"a": rp.Measured(1, "1", False), "b": rp.Measured(2, "2", False)}, lambda k: 0)
    assert swapped["a"].kind == rp.DIFFERENT and swapped["a"].words == "different ordering: rank 2 of 2, the paper's 1"
    alone = rp.compare(paper_values, {"a": rp.Measured(3.05, "x", True)}, lambda k: 0, relative=True)
    assert alone["a"].kind == rp.REPRODUCED
    noisy = rp.compare(paper_values, {"a": rp.Measured(2.2, "", False, 0.5), "b": rp.Measured(2.0, "", False, 0.5)},
                       lambda k: 0)
    assert "within the seed range of 1 other row" in noisy["a"].words


def test_the_build_folder_is_the_runners(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "out" / ".10_x.figures.json"))
    assert build_results_dir() == tmp_path / "out" and build_results_dir("elsewhere") == Path("elsewhere")
    monkeypatch.delenv(RESULTS_ENV)
    assert build_results_dir() == Path("_executed")
    results = {"06_a": {"figures": {"x": {"value": None}}}, "07_b": {"figures": {"x": {"value": 2}}}}
    assert find_figure(results, "x") == ("07_b", 2) and Run("r", results).value("missing") is None
    (tmp_path / "gpu").mkdir()
    (tmp_path / "gpu" / "bench.json").write_text(json.dumps({"results": [{"fps": 1.0}]}))
    bench = load_gpu_bench(tmp_path)
    assert bench is not None and bench.device_name == "device not recorded" and bench.commit is None


# ------------------------------------------------------------------------------------------------
# the chapter: executed through papermill, read from the fixture folders, and last in the book


def test_the_report_is_the_last_chapter_and_runs_after_the_ones_it_reads():
    pytest.importorskip("yaml")
    from fastfcn.book.chapters import list_chapters

    stems = [c.stem for c in list_chapters(BOOK)]
    assert stems[-1] == STEM, "the report reads the other chapters' results: it must run after all of them"
    assert [s[:2] for s in stems] == sorted(s[:2] for s in stems)


def _outputs(nb: dict) -> list[dict]:
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("filled_folders", [True, False], ids=["with-results", "nothing-run"])
def test_the_chapter_executes_in_smoke_from_the_files(tmp_path, filled_folders):
    pytest.importorskip("papermill")
    pytest.importorskip("jupytext")
    from fastfcn.book.chapters import Chapter
    from fastfcn.book.runner import ExecutionOptions, execute_chapter

    executed = write_build(tmp_path / "executed") if filled_folders else tmp_path / "executed"
    committed = write_committed(tmp_path / "results") if filled_folders else tmp_path / "results"
    options = ExecutionOptions("smoke", "cpu", cwd=BOOK, cell_timeout=SECONDS)
    res = execute_chapter(Chapter(STEM, BOOK / f"{STEM}.md"), executed, options,
                          parameters={"results_dir": str(committed)})
    nb = json.loads((executed / f"{STEM}.ipynb").read_text())
    assert not [o for o in _outputs(nb) if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in _outputs(nb)), "no status figure"
    figures = {k: v["value"] for k, v in res["figures"].items()}
    expected = build_report(executed, committed)  # its own new results file is left out again
    assert figures[REPORT_FIGURE] == expected.counts()
    assert figures["evidence"] == [item.as_dict() for item in expected.evidence]  # what the front page reads
    text = json.dumps(nb)
    if filled_folders:
        assert "Fixture GPU X1" in text and "NVIDIA Fixture H9" in text and "2.35x" in text
        assert figures["cells_reproduced"] == expected.counts()[rp.REPRODUCED] > 0
    else:
        assert "not run yet" in text and figures[REPORT_FIGURE][rp.NOT_RUN] == sum(figures[REPORT_FIGURE].values())


def test_note_glues_numpy_and_torch_scalars_as_python_numbers(tmp_path, monkeypatch) -> None:
    """glue shows a value's repr: a numpy float printed 'np.float64(6.3) points' in chapter 7's prose."""
    import types

    import numpy as np
    import torch

    from fastfcn.book import note

    glued = {}
    monkeypatch.setitem(sys.modules, "myst_nb", types.SimpleNamespace(glue=lambda name, value, display: glued.update(
        {name: value})))
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "results.json"))
    assert note("gain", np.round(np.float64(6.34), 1), "points") == 6.3
    note("count", torch.tensor(3))
    note("size", 512)
    assert glued == {"gain": 6.3, "count": 3, "size": 512}
    assert type(glued["gain"]) is float and type(glued["count"]) is int
    assert json.loads((tmp_path / "results.json").read_text())["gain"] == {"value": 6.3, "unit": "points"}
