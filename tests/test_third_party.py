"""Third-party results (fastfcn.third_party): every row has a source, and every status is computed from the rows.

The statuses are checked on the stored data (exact ratios and differences) and on copies with one
number changed, which must flip the status: a typed status would not follow.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from fastfcn import paper, third_party
from fastfcn.book import front_page
from fastfcn.book.evidence import (
    evidence,
    evidence_markdown,
    holds_up_markdown,
    official_gmacs,
    results_markdown,
    sources_markdown,
)
from fastfcn.book.results import Run
from fastfcn.third_party import FAILS, HOLDS, NOT_REPORTED, PARTLY, RERUNS, RESULTS, SOURCES


def _status(claim: str, source: str, **kwargs) -> third_party.ClaimStatus:
    return next(s for s in third_party.claim_statuses(claim, **kwargs) if s.source == source)


def _index(source: str, head: str, variant: str, dataset: str, schedule: int) -> int:
    return next(i for i, r in enumerate(RESULTS) if (r.source, r.head, r.variant, r.dataset, r.schedule)
                == (source, head, variant, dataset, schedule))


def test_every_row_has_a_source_and_its_training_setting():
    for source in SOURCES.values():
        assert source.repository and source.where and source.read, source
        assert source.commit or source.where.startswith(("issue", "Tables")), f"{source.key}: no commit or issue"
    for r in RESULTS:
        assert r.source in SOURCES and r.source != "paper", r
        assert r.path and r.dataset and r.crop and r.schedule > 0 and r.batch > 0 and r.hardware, r
        assert r.variant in ("dilated", "jpu") and r.head in third_party.HEADS, r
        assert any(v is not None for v in (r.miou, r.fps, r.memory_gb)), f"a row without a number: {r}"
    for r in RERUNS:
        assert r.source in SOURCES and r.hardware and r.protocol, r
    assert {r.source for r in RESULTS} | {r.source for r in RERUNS} <= set(SOURCES)


def test_pairs_are_trained_alike():
    miou = third_party.pairs(RESULTS, "miou", same_schedule=True)
    assert len(miou) == 9  # mmsegmentation: ADE20K 80k and 160k, Cityscapes 80k, three heads each
    assert all((d.head, d.dataset, d.crop, d.schedule) == (j.head, j.dataset, j.crop, j.schedule) for d, j in miou)
    speed = third_party.pairs(RESULTS, "fps", same_schedule=False)
    assert len(speed) == 6 and all(d.variant == "dilated" and j.variant == "jpu" for d, j in speed)


def test_speed_status_is_computed_from_the_fps_and_flips_with_them():
    mmseg = _status("speed", "mmseg")
    pairs = third_party.pairs(RESULTS, "fps", same_schedule=False)
    assert [o.value for o in mmseg.outcomes] == [j.fps / d.fps for d, j in pairs]
    assert mmseg.status == PARTLY  # slower on ADE20K, a little faster on Cityscapes
    slower = RESULTS
    for head in ("psp", "aspp", "encnet"):  # every Cityscapes JPU model as slow as on ADE20K
        slower = third_party.with_value(slower, _index("mmseg", head, "jpu", "Cityscapes", 80000), fps=1.0)
    assert _status("speed", "mmseg", results=slower).status == FAILS
    faster = RESULTS
    for head in ("psp", "aspp", "encnet"):
        faster = third_party.with_value(faster, _index("mmseg", head, "jpu", "ADE20K", 80000), fps=99.0)
    assert _status("speed", "mmseg", results=faster).status == HOLDS


def test_miou_status_is_the_sign_of_each_pair():
    mmseg = _status("miou", "mmseg")
    pairs = third_party.pairs(RESULTS, "miou", same_schedule=True)
    assert [o.value for o in mmseg.outcomes] == [j.miou - d.miou for d, j in pairs]
    assert mmseg.status == PARTLY
    fixed = RESULTS
    for dataset, schedule in (("ADE20K", 80000), ("Cityscapes", 80000)):  # the two DeepLabV3 pairs that dropped
        i = _index("mmseg", "aspp", "dilated", dataset, schedule)
        fixed = third_party.with_value(fixed, i, miou=0.0)
    assert _status("miou", "mmseg", results=fixed).status == HOLDS
    # a source's own noise forgives a drop smaller than it
    noisy = {**SOURCES, "mmseg": replace(SOURCES["mmseg"], noise=0.6)}
    assert _status("miou", "mmseg", sources=noisy).status == HOLDS


def test_memory_and_reruns_and_the_silent_claims():
    assert _status("memory", "mmseg").status == HOLDS  # less memory, if by far less than 3 times
    assert _status("memory", "paddleseg").status == NOT_REPORTED  # nothing to pair its model with
    assert _status("gmacs", "mmseg").status == NOT_REPORTED
    issue2 = _status("reproduced", "issue2")
    assert issue2.outcomes[0].value == RERUNS[0].miou - paper.TABLE1[3].miou and issue2.status == FAILS
    closer = [replace(RERUNS[1], miou=RERUNS[1].paper_miou - 0.5)]
    assert _status("reproduced", "issue18", reruns=closer).status == HOLDS
    assert third_party.status_of([]) == NOT_REPORTED
    with pytest.raises(ValueError, match="unknown claim"):
        third_party.outcomes("faster", RESULTS)


def test_paper_statuses_come_from_its_tables():
    miou = _status("miou", "paper")
    assert [o.value for o in miou.outcomes] == [
        next(r.miou for r in paper.TABLE1 if (r.head, r.upsampling) == (h, "jpu"))
        - next(r.miou for r in paper.TABLE1 if (r.head, r.upsampling) == (h, "none")) for h in third_party.HEADS]
    assert miou.status == HOLDS and _status("speed", "paper").status == HOLDS
    assert [o.value for o in _status("speed", "paper").outcomes] == [
        paper.table2_ratio(r.head, r.backbone) for r in paper.TABLE2 if r.upsampling == "jpu"]


def _run(figures: dict[str, float]) -> Run:
    return Run("this build", {"06_how_fast": {"profile": "smoke", "figures": {k: {"value": v} for k, v in figures.items()}}})


def test_evidence_puts_this_books_runs_between_the_paper_and_the_third_parties():
    run = _run({"ratio_encnet_resnet50_jpu": 0.9, "ratio_psp_resnet50_jpu": 1.4, "encnet_r50_gmacs_ratio": 3.2,
                "train_peak_ratio": 2.5})
    items = {e.claim: e for e in evidence({"quick": run, "full": None})}
    assert list(items) == list(third_party.CLAIMS)
    speed = items["speed"].statuses
    assert [s.source for s in speed] == ["paper", "ours-quick", *[k for k in SOURCES if k != "paper"]]
    assert [o.value for o in speed[1].outcomes] == [0.9, 1.4] and speed[1].status == PARTLY
    assert items["gmacs"].statuses[1].status == HOLDS
    official = official_gmacs()
    assert official[0].ok is (paper.OFFICIAL_GMACS["encnet", "resnet50", "none"]
                              / paper.OFFICIAL_GMACS["encnet", "resnet50", "jpu"] > 3)
    assert items["memory"].statuses[1].status == HOLDS
    assert items["miou"].statuses[1].status == NOT_REPORTED  # no Table 1 in this run
    text = evidence_markdown(items["speed"])
    assert "| mmsegmentation | **holds in part** |" in text and "No numbers for this claim from:" in text


def test_the_front_page_answers_from_the_recorded_statuses():
    recorded = [e.as_dict() for e in evidence({"quick": _run({"ratio_encnet_resnet50_jpu": 0.9}), "full": None})]
    answer = holds_up_markdown(recorded)
    assert "*JPU is faster*: the paper (Tables 1 and 2): holds; this book, quick" in answer
    assert "mmsegmentation: holds in part" in answer
    results = {front_page.REPORT: {"figures": {"evidence": {"value": recorded}}}}
    assert front_page.phrases(results)["front_holds_up"] == answer
    assert "--only 11 intro" in front_page.phrases({})["front_holds_up"]


def test_the_report_tables_show_every_number_with_its_source():
    table, sources = results_markdown(), sources_markdown()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith(("| model |", "| source |"))]
    assert len(rows) == len(RESULTS) + len(RERUNS)
    for cells, r in zip(rows, RESULTS, strict=False):
        assert cells[6] == (f"{r.miou:g}" if r.miou is not None else "-"), cells
        assert cells[8] == (f"{r.fps:g}" if r.fps is not None else "-"), cells
        assert f"`{r.path}`; hardware: {r.hardware}" in table  # each file, with the hardware, under its table
    for cells, r in zip(rows[len(RESULTS):], RERUNS, strict=True):
        assert cells[0] == SOURCES[r.source].label and cells[-1] == f"{r.miou:g}"
    for key, source in SOURCES.items():
        assert (source.cite() in sources) is (key != "paper")


def test_the_report_tables_fit_the_page():
    """A table no wider than about 100 characters of unbreakable text per row: the rendered page wraps
    its cells instead of scrolling them off the side (the remarks and 13 columns once did); the long
    remarks are a list, which wraps."""
    for line in results_markdown().splitlines():
        if line.startswith("|"):
            cells = line.strip("|").split("|")
            widest = sum(max(len(word) for word in c.split()) for c in cells if c.strip())
            assert widest + 3 * len(cells) <= 100, line
    assert not any(line.startswith("|") for line in sources_markdown().splitlines())
    assert "'-'" not in results_markdown() + str(third_party.claim_statuses("speed"))  # smart quotes turn it


def test_each_claim_says_what_it_tests_and_where_the_papers_stronger_figure_is_judged():
    run = _run({"ratio_encnet_resnet50_jpu": 1.2, "sweep_memory_ratio_max": 1.05})
    items = {e.claim: e for e in evidence({"quick": run, "full": None})}
    speed, memory = evidence_markdown(items["speed"]), evidence_markdown(items["memory"])
    assert speed.startswith("**JPU is faster (frames per second, JPU / dilated > 1).**")
    assert "\"running 3 times faster\"" in speed and "claims in prose" in speed and "| **holds** |" in speed
    assert memory.startswith("**JPU needs less memory (peak memory, dilated / JPU > 1).**") and "in prose" in memory
    assert "in prose" not in evidence_markdown(items["gmacs"])  # tested at the paper's own threshold, 3
