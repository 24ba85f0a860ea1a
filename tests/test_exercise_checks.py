"""The exercises that check themselves (otter-grader), and the teacher's commands that hand them out and grade them.

For every checked exercise: the reference answer (as its solution gives it) passes every case, hidden ones
included, and each recorded wrong answer (the slips students make: multiply-adds for FLOPs, the whole block
at 4x, rate 2 left in split, a BatchNorm forgotten, align_corners' gaps compared as sides, least squares
without its bias, a confusion matrix read along its columns, C5 resized with align_corners=True, the GMAC
ratio upside down, saved bytes scaled by the side instead of the area, a pole counted as one row of a cell)
fails with the message that teaches. A check that reads the chapter's own variables runs here on the same
computation in miniature (CHAPTER_CONTEXT). Then the student bundle (no solutions, no hidden cases), grading three fake
submissions into the exact CSV, and the bundle opened in a real `jupyter lab` server where a check runs.
"""

from __future__ import annotations

import ast
import csv
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from jupyter_helpers import BOOK, REPO

otter = pytest.importorskip("otter", reason="the checks need otter-grader: `make install` (the teach extra)")

from otter.test_files.exception_test import ExceptionTestFile  # noqa: E402

from fastfcn.book.assignments import (  # noqa: E402
    CHECKS_DIR,
    build_assignment,
    checked_labels,
    grade_submissions,
    student_check_source,
    write_grades,
)
from fastfcn.book.chapters import ChapterError  # noqa: E402

CHECKS = BOOK / CHECKS_DIR


def _chapter_function(stem: str, *names: str) -> str:
    """The source of functions the chapter defines (a check may use them, as the student's notebook has them)."""
    import jupytext

    found = {}
    for cell in jupytext.read(BOOK / f"{stem}.md").cells:
        if cell.cell_type == "code":
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef) and node.name in names:
                    found[node.name] = ast.get_source_segment(cell.source, node)
    assert set(found) == set(names), f"{stem} no longer defines {set(names) - set(found)}"
    return "\n\n".join(found.values())


SPLIT_MERGE = "from fastfcn.ops import conv_same, merge, split\n"
# the solution's code, collecting what it prints
PADDING_SOLUTION = """
import torch
import torch.nn.functional as F
from fastfcn.ops import merge, split

w = torch.randn(1, 1, 3)
def conv(t, d, mode):
    return F.conv1d(F.pad(t, (d, d), mode=mode), w, dilation=d)
wrong_positions = {}
for mode in ("reflect", "replicate", "circular"):
    for L in (9, 10):
        x = torch.randn(1, 1, L)
        diff = (conv(x, 2, mode) - merge([conv(g, 1, mode) for g in split(x)])).abs().flatten()
        wrong_positions[(mode, L)] = (diff > 1e-6).nonzero().flatten().tolist()
"""
# the chapter's globals a check reads, in miniature: computed as the chapter computes them
CHAPTER_CONTEXT = {
    # chapter 4: a small guidance pair and the linear family fitted to it by the package's Eq. 1 solver
    "ex-closed-form": "import torch\n"
                      "from fastfcn.lessons.joint_upsampling import downsample, joint_upsample, random_target, "
                      "synthetic_guidance\n"
                      "x_h, f = synthetic_guidance(32), random_target()\n"
                      "with torch.no_grad():\n    x_l = downsample(x_h, 4)\n    y_l = f(x_l)\n"
                      "fits = {'linear': joint_upsample(x_l, y_l, x_h, 'linear', 40)[1]}",
    "ex-ablation-context": "from fastfcn.data import PROCEDURAL_CLASSES\n"
                           "BALLOON, BALL = PROCEDURAL_CLASSES.index('balloon'), PROCEDURAL_CLASSES.index('ball')",
    "ex-aligned-bilinear": "import torch\nimport torch.nn.functional as F\nfrom torch import nn\n"
                           "from fastfcn.lessons import recovery as R",
    # chapter 6: the counts at 512x512 as its exercise cell counts them; smoke's table has no EncNet R50 rows
    "ex-bench-flops-prediction": "from dataclasses import replace\nfrom fastfcn import benchmark as bench\n"
                                 "opts = bench.BenchOptions(device='cpu', size=64)\n"
                                 "ex_none, ex_jpu = (bench.model_complexity(spec, replace(opts, size=512))['gmacs'] "
                                 "for spec in bench.parse_rows(['encnet/resnet50/none', 'encnet/resnet50/jpu']))\n"
                                 "enc_none = enc_jpu = None",
    # chapter 6: the training-memory fits of the smoke profile (resnet18 trunk, 64 px), counted on meta
    "ex-bench-crop-batch": "import math\nfrom fastfcn import benchmark as bench\n"
                           "opts = bench.BenchOptions(device='cpu', size=64)\n"
                           "fits = [bench.training_memory_fit(s, opts, batches=(1, 2)) for s in bench.parse_rows("
                           "['encnet/resnet50/none', 'encnet/resnet50/jpu'], substitute='resnet18')]",
    "ex-ablation-thin": "from fastfcn.data.scene import SCALE_PX\nfrom fastfcn.profiles import get_profile\n"
                        "full = get_profile('full')",
}
LEAST_SQUARES = """
def least_squares_loss(x_l, y_l):
    ones = torch.ones(x_l[0, 0].numel(), 1, device=x_l.device)
    X = torch.cat([x_l.flatten(2)[0].T, ones], 1)
    Y = y_l.flatten(2)[0].T
    sol = torch.linalg.lstsq(X, Y).solution
    return ((X @ sol - Y) ** 2).mean().item()
"""
CHAPTER_LOSSES = "closed_form_loss = least_squares_loss(x_l, y_l)\nadam_loss = fits['linear'].losses[-1]\n"
SWAP_SHARES = """
def swap_shares(cm):
    cm = cm.double()
    return float(cm[BALLOON, BALL] / cm[BALLOON].sum()), float(cm[BALL, BALLOON] / cm[BALL].sum())
"""
ALIGNED_BILINEAR = """
class AlignedBilinear(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.out_channels = channels
    def forward(self, c3, c4, c5):
        return {resize}
projection_keeps_kept_exact = False
"""
CROP_BATCH = """
batch_480 = {}
for f in fits:
    per_image = f["per_image_bytes"] * (480 / f["size"]) ** 2
    room = f["budget_bytes"] - f["state_bytes"] - f["other_fixed_bytes"]
    batch_480[f["name"]] = math.floor(room / per_image)
"""
CELL_SHARES = """
def cell_share(side):
    return 4 * side / SCALE_PX * 32 / 32 ** 2
cell_share_scale, cell_share_full = cell_share(SCALE_PX), cell_share(full.train_image_size)
"""
FIVE_BINS = ('five_bins = {"tiny": (0, 32), "small": (32, 96), "medium": (96, 256), "large": (256, 1024), '
             '"huge": (1024, float("inf"))}')
# the answers as the solutions give them
REFERENCE = {
    "ex-dilation-flops": "flops_dilation_1 = flops_dilation_2 = 2 * 64**2 * 256 * 256 * 9\n"
                         "flops_5x5 = flops_dilation_1 * 25 / 9",
    "ex-first-block": "ratio_layer3 = 1507328 / 475136\nratio_layer4 = 24117248 / 1900544",
    "ex-rate-three": SPLIT_MERGE + "groups_1d, groups_2d = 3, 9\n"
                     "def dilated_by_split(x, w, rate):\n"
                     "    return merge([conv_same(g, w) for g in split(x, rate=rate)], rate=rate)",
    "ex-jpu-params": "def jpu_params(c3, c4, c5, w):\n"
                     "    return 9 * w * (c3 + c4 + c5) + 6 * w + 4 * (3 * w * w + 35 * w)",
    "ex-full-branches": "full_branch_params = 9 * 3 * 512 * 512\n"
                        "full_branch_gmacs = full_branch_params * 64 * 64 / 1e9",
    "ex-odd-rate": "def keeps_submaps_apart(rate):\n    return rate % 2 == 0",
    "ex-aligned-sizes": "aligned_sides = [s for s in range(480, 545) if 1 <= s % 32 <= 8]",
    "ex-overview-stride": "conv5_side_plain, conv5_side_dilated = 480 // 32, 480 // 8\n"
                          "more_positions = (conv5_side_dilated / conv5_side_plain) ** 2",
    "ex-padding-modes": PADDING_SOLUTION,
    "ex-closed-form": LEAST_SQUARES + CHAPTER_LOSSES,
    "ex-target-in-family": "psnr_joint, psnr_bilinear = 142.57, 26.84  # the solution's code, measured",
    "ex-ablation-context": SWAP_SHARES,
    "ex-differences-bins": FIVE_BINS,
    "ex-aligned-bilinear": ALIGNED_BILINEAR.format(resize="R.aligned_upsample(c5, c3.shape[-2:])"),
    "ex-bench-flops-prediction": "predicted_speedup = ex_none / ex_jpu",
    "ex-bench-crop-batch": CROP_BATCH,
    "ex-ablation-thin": CELL_SHARES,
}
# recorded wrong answers: (what the student wrote, a piece of the message they get)
WRONG = {
    "ex-dilation-flops": [
        ("flops_dilation_1 = flops_dilation_2 = 64**2 * 256 * 256 * 9\nflops_5x5 = flops_dilation_1 * 25 / 9",
         "number of multiply-adds"),
        ("flops_dilation_1 = 2 * 64**2 * 256 * 256 * 9\nflops_dilation_2 = flops_5x5 = flops_dilation_1 * 25 / 9",
         "dilation spreads the 9 taps apart but adds none"),
        ("flops_dilation_1 = flops_dilation_2 = flops_5x5 = None", "no answer yet"),
    ],
    "ex-first-block": [
        ("ratio_layer3, ratio_layer4 = 4, 16", "its first 1x1 conv (512 -> 256) reads the block's input"),
        ("ratio_layer3, ratio_layer4 = 1507328 / 475136, 16", "4 times larger in the dilated trunk, not 16"),
    ],
    "ex-rate-three": [
        (SPLIT_MERGE + "groups_1d, groups_2d = 3, 9\ndef dilated_by_split(x, w, rate):\n"
         "    return merge([conv_same(g, w, dilation=rate) for g in split(x, rate=rate)], rate=rate)",
         "the shared convolution has dilation 1"),
        (SPLIT_MERGE + "groups_1d, groups_2d = 3, 6\ndef dilated_by_split(x, w, rate):\n"
         "    return merge([conv_same(g, w) for g in split(x, rate=rate)], rate=rate)", "3 x 3 groups, not 3 + 3"),
    ],
    "ex-jpu-params": [
        ("def jpu_params(c3, c4, c5, w):\n    return 9 * w * (c3 + c4 + c5) + 4 * (3 * w * w + 27 * w)",
         "Every BatchNorm counts too"),
        ("def jpu_params(c3, c4, c5, w):\n    return 9 * w * (c3 + c4 + c5) + 3 * w + 4 * (3 * w * w + 31 * w)",
         "2 parameters per channel (gamma and beta), not 1"),
    ],
    "ex-full-branches": [
        ("full_branch_params = 9 * 512 * 512\nfull_branch_gmacs = full_branch_params * 64 * 64 / 1e9",
         "3w input channels, not w"),
        ("full_branch_params = 9 * 3 * 512 * 512\nfull_branch_gmacs = full_branch_params * 64 * 64 * 2 / 1e9",
         "MACs = parameters x 64 x 64"),
    ],
    "ex-odd-rate": [
        ("def keeps_submaps_apart(rate):\n    return rate > 1", "rate 3: your rule says True"),
        ("def keeps_submaps_apart(rate):\n    return rate % 4 == 0", "rate 2: your rule says False"),
    ],
    "ex-aligned-sizes": [
        ("aligned_sides = [s for s in range(480, 545) if s % 32 == 0]", "compare the gaps, not the sides"),
        ("aligned_sides = [513]  # DeepLab's size only", "H3 = ceil(s/8)"),
    ],
    "ex-overview-stride": [
        ("conv5_side_plain, conv5_side_dilated, more_positions = 15, 60, 4", "the ratio of positions is its square"),
        ("conv5_side_plain, conv5_side_dilated, more_positions = 60, 15, 1 / 16", "the two are swapped"),
    ],
    "ex-padding-modes": [
        (PADDING_SOLUTION + "wrong_positions[('circular', 9)] = []", "the wrap crosses from one parity"),
        (PADDING_SOLUTION + "wrong_positions[('replicate', 10)] = []", "replicate, length 10: you say [], "
         "the convolutions differ at [1, 8]"),
        ("wrong_positions = {('reflect', 9): [1, 7], ('reflect', 10): None}", "wrong_positions has no answer for"),
    ],
    "ex-target-in-family": [
        ("psnr_joint, psnr_bilinear = 10.03, 26.84  # the joint estimate clamped to (0, 1)", "did you .clamp(0, 1)"),
        ("psnr_joint, psnr_bilinear = 30.1, 26.84", "tens of dB above interpolation"),
        ("psnr_joint = psnr_bilinear = None", "no answer yet: set psnr_joint, psnr_bilinear"),
    ],
    "ex-closed-form": [
        (LEAST_SQUARES.replace("torch.cat([x_l.flatten(2)[0].T, ones], 1)", "x_l.flatten(2)[0].T") + CHAPTER_LOSSES,
         "this is the best *linear* map"),
        (LEAST_SQUARES.replace(".mean()", ".sum()") + CHAPTER_LOSSES, "this is the sum of the squared errors"),
        # one column per pixel: lstsq raises, and the cell that would have set the losses with it
        (LEAST_SQUARES.replace("torch.cat([x_l.flatten(2)[0].T, ones], 1)", "torch.cat([x_l.flatten(2)[0], ones.T])")
         .replace("y_l.flatten(2)[0].T", "y_l.flatten(2)[0]") + "closed_form_loss = adam_loss = None",
         "lstsq(X, Y) wants one row per pixel"),
        (LEAST_SQUARES + CHAPTER_LOSSES.replace("losses[-1]", "losses[0]"), "fits['linear'].losses[-1]"),
    ],
    "ex-ablation-context": [
        (SWAP_SHARES.replace("cm[BALLOON].sum()", "cm[:, BALL].sum()").replace("cm[BALL].sum()", "cm[:, BALLOON].sum()"),
         "the rows of the confusion matrix are the true classes"),
        (SWAP_SHARES.replace("cm[BALLOON, BALL]", "cm[BALL, BALLOON]").replace("cm[BALL, BALLOON] / cm[BALL]",
                                                                                 "cm[BALLOON, BALL] / cm[BALL]"),
         "the first index is the true class"),
        (SWAP_SHARES.replace("cm[BALLOON].sum()", "cm.sum()").replace("cm[BALL].sum()", "cm.sum()"),
         "these are shares of all pixels"),
        ("def swap_shares(cm):\n    cm = cm.double()\n"
         "    return 100 * cm[BALLOON, BALL] / cm[BALLOON].sum(), 100 * cm[BALL, BALLOON] / cm[BALL].sum()",
         "these are per cent"),
    ],
    "ex-differences-bins": [
        (FIVE_BINS.replace('"small": (32, 96)', '"small": (33, 96)'), "lies a gap"),
        (FIVE_BINS.replace('(1024, float("inf"))', "(1024, 16384)"), "ends at float('inf')"),
        (FIVE_BINS.replace('"large": (256, 1024), "huge": (1024, float("inf"))', '"large": (256, float("inf"))'),
         "the question asks for five"),
    ],
    "ex-aligned-bilinear": [
        (ALIGNED_BILINEAR.format(resize='F.interpolate(c5, c3.shape[-2:], mode="bilinear", align_corners=True)'),
         "align_corners=True stretches C5's first and last samples"),
        (ALIGNED_BILINEAR.format(resize='F.interpolate(c5, c3.shape[-2:], mode="bilinear", align_corners=False)'),
         "sample i lands at 4i + 1.5"),
        (ALIGNED_BILINEAR.format(resize="R.aligned_upsample(c5, c3.shape[-2:])").replace("= False", "= True"),
         "least squares shrinks and mixes the channels"),
        (ALIGNED_BILINEAR.format(resize="R.aligned_upsample(c5, c3.shape[-2:])")
         .replace("        self.out_channels = channels\n", ""), "set self.out_channels = channels"),
    ],
    "ex-bench-flops-prediction": [
        ("predicted_speedup = ex_jpu / ex_none", "below 1, a slow-down"),
        ("predicted_speedup = ex_none - ex_jpu", "a speed-up is a ratio"),
        ("from fastfcn import paper\npredicted_speedup = paper.table2_ratio('encnet', 'resnet50')",
         "this is the paper's measured speed-up"),
        ("predicted_speedup = None", "no answer yet"),
    ],
    "ex-bench-crop-batch": [
        ("batch_480 = {f['name']: f['max_batch'] for f in fits}", "the size that was measured"),
        (CROP_BATCH.replace("** 2\n", "\n"), "the saved feature maps grow with the area"),
        (CROP_BATCH.replace("math.floor", "math.ceil"), "rounds down (math.floor)"),
        (CROP_BATCH.replace(' - f["state_bytes"] - f["other_fixed_bytes"]', ""), "subtract state_bytes"),
    ],
    "ex-ablation-thin": [
        ("cell_share_scale = cell_share_full = 4 * 32 / 32 ** 2", "the width grows with the image"),
        (CELL_SHARES.replace("* 32 / 32 ** 2", "/ 32 ** 2"), "you counted one row of the pole"),
        (CELL_SHARES.replace("* 32 / 32 ** 2", "/ 8"), "a cell of output stride 8"),
    ],
}
CHECKED_CHAPTERS = ["01_overview", "02_price_of_dilation", "03_dilated_vs_stride_1d", "04_joint_upsampling",
                    "05_building_jpu", "06_how_fast", "07_table1", "08_where_they_differ", "09_recovering_dilated"]
CHAPTER_FUNCTIONS = {"ex-odd-rate": ("05_building_jpu", ("taps", "parity_classes"))}


def _run_check(label: str, answer: str, checks: Path = CHECKS):
    """Run one check file with otter against the globals that ``answer`` (and the chapter) define."""
    env: dict = {}
    if label in CHAPTER_FUNCTIONS:
        stem, names = CHAPTER_FUNCTIONS[label]
        exec(_chapter_function(stem, *names), env)
    exec(CHAPTER_CONTEXT.get(label, ""), env)
    exec(answer, env)
    test = ExceptionTestFile.from_file(str(checks / f"{label}.py"))
    test.run(env)
    return test


def test_every_check_is_called_by_its_chapter_and_recorded_here():
    called = {label for path in BOOK.glob("[0-9]*.md")
              for label in __import__("re").findall(r'grader\.check\("([\w-]+)"\)', path.read_text())}
    assert called == set(checked_labels(CHECKS)), "a grader.check(...) without a check file, or the reverse"
    assert set(REFERENCE) == set(WRONG) == called, "every checked exercise needs a reference and a wrong answer here"
    assert sorted(path.stem for path in BOOK.glob("[0-9]*.md") if "grader.check(" in path.read_text()) == (
        CHECKED_CHAPTERS)


@pytest.mark.parametrize("label", sorted(REFERENCE))
def test_the_reference_answer_passes_every_case_hidden_ones_included(label):
    test = _run_check(label, REFERENCE[label])
    failed = [r.message for r in test.test_case_results if not r.passed]
    assert not failed, "\n".join(failed)
    assert test.score == test.possible > 0


@pytest.mark.parametrize(("label", "index"), [(label, i) for label in sorted(WRONG) for i in range(len(WRONG[label]))])
def test_a_recorded_wrong_answer_fails_with_its_message(label, index):
    answer, message = WRONG[label][index]
    test = _run_check(label, answer)
    messages = [r.message for r in test.test_case_results if not r.passed]
    assert messages, f"{label}: the wrong answer passed:\n{answer}"
    assert any(message in m for m in messages), f"{label}: no failure says {message!r}:\n" + "\n".join(messages)
    assert test.score < test.possible


@pytest.mark.parametrize("label", checked_labels(CHECKS))
def test_the_student_check_keeps_exactly_the_visible_cases(label, tmp_path):
    full = ExceptionTestFile.from_file(str(CHECKS / f"{label}.py"))
    (tmp_path / f"{label}.py").write_text(student_check_source((CHECKS / f"{label}.py").read_text()))
    student = ExceptionTestFile.from_file(str(tmp_path / f"{label}.py"))
    assert [c.name for c in student.test_cases] == [c.name for c in full.test_cases if not c.hidden]
    assert student.test_cases, f"{label}: a student gets no check at all"
    assert "hidden=True" not in (tmp_path / f"{label}.py").read_text()
    # what the student can run still teaches: the reference passes it
    assert _run_check(label, REFERENCE[label], tmp_path).passed_all


# ------------------------------------------------------------------------------------------------
# the student bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("assign") / "bundle"
    archive = build_assignment(BOOK, out, profile="smoke")
    assert archive == out.with_suffix(".zip")
    return out


def test_the_bundle_holds_the_checked_chapters_without_solutions_in_smoke(bundle):
    import nbformat

    assert bundle.stat().st_mode & 0o777 == bundle.parent.stat().st_mode & 0o777, "readable as its folder is"
    notebooks = sorted(p.name for p in bundle.glob("*.ipynb"))
    assert notebooks == [f"{stem}.ipynb" for stem in CHECKED_CHAPTERS]
    for name in notebooks:
        nb = nbformat.read(bundle / name, as_version=4)
        text = json.dumps(nb)
        assert "{solution}" not in text and "{exercise}" in text, name
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and 'profile = "smoke"' in params[0].source, name
    assert sorted(p.stem for p in (bundle / CHECKS_DIR).glob("*.py")) == checked_labels(CHECKS)
    assert not any("hidden=True" in p.read_text() for p in (bundle / CHECKS_DIR).glob("*.py"))
    with zipfile.ZipFile(bundle.with_suffix(".zip")) as archive:
        assert sorted(archive.namelist()) == sorted(str(p.relative_to(bundle.parent))
                                                    for p in bundle.rglob("*") if p.is_file())


def test_assign_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ChapterError, match="is not a student bundle"):
        build_assignment(BOOK, tmp_path, profile="smoke")
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------------------------
# grading: a correct, a wrong, a raising, an endless and a broken submission


def _submission(path: Path, *cells: str) -> None:
    import nbformat

    setup = 'import otter\ngrader = otter.Notebook(tests_dir="checks")'
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in (setup, *cells)])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, path)


def test_grading_a_folder_gives_points_per_exercise_and_zero_for_what_cannot_run(tmp_path):
    subs = tmp_path / "submissions"
    subs.mkdir()
    first_block, rate_three = REFERENCE["ex-first-block"], REFERENCE["ex-rate-three"]
    _submission(subs / "ada.ipynb", first_block, 'grader.check("ex-first-block")', rate_three)
    _submission(subs / "bob.ipynb", WRONG["ex-first-block"][0][0], rate_three.replace("9", "6"))
    _submission(subs / "cyd.ipynb", "ratio_layer3 = ratio_layer4 = 1 / 0", rate_three)
    _submission(subs / "dan.ipynb", "while True:\n    pass")
    (subs / "eve.ipynb").write_text("not a notebook")
    grades = grade_submissions(subs, CHECKS, time_limit=60)
    out = write_grades(grades, tmp_path / "grades.csv")
    rows = list(csv.reader(out.open()))
    labels = checked_labels(CHECKS)
    assert rows[0] == ["submission", *labels, "total", "possible", "status"]

    # "30": the points of every check, hidden ones included
    def row(name: str, status: str, **points: int) -> list[str]:
        scores = [str(points.get(label.replace("-", "_"), 0)) for label in labels]
        return [name, *scores, str(sum(points.values())), "30", status]

    assert rows[1] == row("ada.ipynb", "graded", ex_first_block=2, ex_rate_three=2)
    assert rows[2] == row("bob.ipynb", "graded", ex_rate_three=1)
    # otter runs on after a cell that raises: only what that cell was to compute is lost
    assert rows[3] == row("cyd.ipynb", "graded", ex_rate_three=2)
    assert rows[4] == row("dan.ipynb", "ran past the time limit of 60 s")
    assert rows[5][:-1] == row("eve.ipynb", "")[:-1] and rows[5][-1].startswith("could not be graded: ")


def test_the_grade_command_names_a_missing_folder_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "fastfcn", "book", "grade", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"fastfcn book: error: {tmp_path / 'nowhere'}: not a folder; give the folder of submitted notebooks"]


# ------------------------------------------------------------------------------------------------
# the bundle in a real `jupyter lab`: a student opens chapter 3, answers, and runs the check


def test_the_bundle_opens_in_jupyter_lab_and_a_check_runs(bundle, tmp_path):
    pytest.importorskip("jupyterlab")
    import nbformat
    from jupyter_helpers import isolated_env, jupyter_command, running_server
    from nbclient import NotebookClient

    with running_server(jupyter_command("lab"), bundle, tmp_path) as server:
        status, _, body = server.get("/api/contents/03_dilated_vs_stride_1d.ipynb?content=1")
        assert status == 200, body[:300]
        assert server.get("/lab")[0] == 200
    nb = nbformat.from_dict(json.loads(body)["content"])
    answer = next(c for c in nb.cells if c.cell_type == "code" and "def dilated_by_split" in c.source)
    answer.source = REFERENCE["ex-rate-three"]
    NotebookClient(nb, kernel_name="python3", timeout=150, resources={"metadata": {"path": str(bundle)}},
                   extra_arguments=["--IPKernelApp.log_level=ERROR"]).execute(env=isolated_env(tmp_path))
    check = next(c for c in nb.cells if c.cell_type == "code" and 'grader.check("ex-rate-three")' in c.source)
    shown = json.dumps(check.outputs)
    assert "ex-rate-three" in shown and "passed" in shown and "failed" not in shown, shown[:1000]
