"""The up-front dataset check: bad pairs stop train/eval before anything is written (exit 1, files named);
--skip-bad goes on without them; `fastfcn data check` reports class pixels and image sizes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from folder_fixtures import SMOKE, make_ade20k, make_folder_dataset, make_pcontext, run_fastfcn
from PIL import Image

from fastfcn.checkpoint import save_checkpoint
from fastfcn.cli import main
from fastfcn.data import build_dataset
from fastfcn.data.check import check_dataset
from fastfcn.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _mask(root: Path, split: str, i: int) -> Path:
    return root / "masks" / split / f"{split}_{i:03d}.png"


def _image(root: Path, split: str, i: int) -> Path:
    return next((root / "images" / split).glob(f"{split}_{i:03d}.*"))


def _no_mask(root: Path) -> Path:
    _mask(root, "train", 1).unlink()
    return _image(root, "train", 1)


def _no_image(root: Path) -> Path:
    extra = root / "masks" / "train" / "stray.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(extra)
    return extra


def _wrong_size(root: Path) -> Path:
    Image.fromarray(np.zeros((16, 24), np.uint8)).save(_mask(root, "train", 2))
    return _mask(root, "train", 2)


def _out_of_range(root: Path) -> Path:
    labels = np.asarray(Image.open(_mask(root, "train", 3))).copy()
    labels[5, :7] = 7  # seven pixels of a class that classes.txt does not have
    Image.fromarray(labels).save(_mask(root, "train", 3))
    return _mask(root, "train", 3)


def _garbage_image(root: Path) -> Path:
    _image(root, "train", 0).write_bytes(b"this is not an image at all" * 10)
    return _image(root, "train", 0)


def _truncated_image(root: Path) -> Path:
    path = _image(root, "train", 2)  # a PNG, cut in the middle of its pixel data
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _truncated_jpeg(root: Path) -> Path:
    path = _image(root, "train", 1)  # a JPEG without its end: the header alone would pass
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    return path


def _rgb_mask(root: Path) -> Path:
    Image.new("RGB", (32, 32), (1, 1, 1)).save(_mask(root, "train", 0))
    return _mask(root, "train", 0)


def _empty_split(root: Path) -> Path:
    for folder in (root / "images" / "train", root / "masks" / "train"):
        for path in folder.iterdir():
            path.unlink()
    return root


CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "image without a mask": (_no_mask, "image without a mask"),
    "mask without an image": (_no_image, "mask without an image"),
    "size mismatch": (_wrong_size, "mask 24x16, image 32x32"),
    "labels out of range": (_out_of_range, "value 7 (7 px)"),
    "unreadable image": (_garbage_image, "unreadable image"),
    "truncated image": (_truncated_image, "unreadable image"),
    "truncated jpeg": (_truncated_jpeg, "unreadable image"),
    "mask not single-channel": (_rgb_mask, "got mode RGB"),
    "empty split": (_empty_split, "empty split"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_dataset_stops_training_before_anything_is_written(case: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture) -> None:
    root = make_folder_dataset(tmp_path / "data")
    spoil, words = CASES[case]
    bad = spoil(root)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--root", str(root), *SMOKE, "--iterations", "1",
                 "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fastfcn train: error: folder train split")
    assert str(bad) in err and words in err
    assert "Nothing was trained or written" in err and "Traceback" not in err
    assert not out.exists()


def test_a_real_process_exits_1_with_the_report(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data")
    bad = _out_of_range(root)
    out = tmp_path / "run"
    proc = run_fastfcn("train", "--dataset", "folder", "--root", str(root), *SMOKE, "--out-dir", str(out))
    assert proc.returncode == 1, proc.stderr
    assert _reported(proc.stderr, bad, "value 7 (7 px); allowed: 0..4, 255") and "Traceback" not in proc.stderr
    assert not out.exists()


def test_skip_bad_trains_without_the_bad_pairs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = make_folder_dataset(tmp_path / "data")
    bad = _wrong_size(root)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--root", str(root), *SMOKE, "--iterations", "1",
                 "--out-dir", str(out), "--skip-bad"]) == 0
    err = capsys.readouterr().err
    assert "--skip-bad: going on without 1 pair(s) of the train split (3 left)" in err and str(bad) in err
    assert (out / "last.pth").is_file()


def _checkpoint(tmp_path: Path) -> Path:
    model = build_model("fcn", backbone="resnet18_w32", upsampling="none", num_classes=5, aux_loss=False)
    return save_checkpoint(model, tmp_path / "model.pth", classes=["sky", "road", "tree", "car", "traffic light"])


def test_bad_val_pair_stops_eval_and_skip_bad_scores_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = make_folder_dataset(tmp_path / "data")
    Image.fromarray(np.full((32, 32), 9, np.uint8)).save(_mask(root, "val", 1))
    args = ["eval", "--checkpoint", str(_checkpoint(tmp_path)), "--dataset", "folder", "--root", str(root),
            "--runtime", "torch", "--no-progress", "--crop-size", "32", "--base-size", "32",
            "--out", str(tmp_path / "metrics.json")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert _reported(err, _mask(root, 'val', 1), "value 9 (1024 px)") and "Nothing was evaluated" in err
    assert not (tmp_path / "metrics.json").exists()
    assert main([*args, "--skip-bad"]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["images"] == 1


def test_pcontext_raw_ids_are_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    good = np.arange(64, dtype=np.int64).reshape(8, 8) % 60
    raw = good.copy()
    raw[0, :3] = 300  # a raw Pascal Context id (the 459-class annotation), not a prepared label
    bad = make_pcontext(tmp_path / "pc", [good, raw])
    assert main(["train", "--dataset", "pcontext", "--root", str(tmp_path / "pc"), "--out-dir",
                 str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert _reported(err, bad, "value 300 (3 px); allowed: 0..59")
    assert not (tmp_path / "run").exists()


def test_ade20k_out_of_range_labels_are_refused_before_training(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    mask = np.full((8, 8), 151, np.uint8)
    bad = make_ade20k(tmp_path / "ade", [np.zeros((8, 8), np.uint8), mask])
    assert main(["train", "--dataset", "ade20k", "--root", str(tmp_path / "ade"), "--out-dir",
                 str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert _reported(err, bad, "value 151 (64 px); allowed: 0..150")
    assert not (tmp_path / "run").exists()


def test_data_check_counts_class_pixels_and_sizes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = make_folder_dataset(tmp_path / "data")
    Image.new("RGB", (40, 24)).save(_image(root, "val", 0))
    Image.fromarray(np.full((24, 40), 2, np.uint8)).save(_mask(root, "val", 0))
    report_path = tmp_path / "report" / "check.json"
    assert main(["data", "check", "--dataset", "folder", "--root", str(root), "--json", str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "folder train: 4 image/mask pairs, no problems" in out
    record = json.loads(report_path.read_text())
    for split in ("train", "val"):
        masks = [np.asarray(Image.open(p)) for p in sorted((root / "masks" / split).glob("*.png"))]
        counts = np.bincount(np.concatenate([m.ravel() for m in masks]), minlength=256)
        expected = dict(zip(["sky", "road", "tree", "car", "traffic light"], counts[:5].tolist(), strict=True))
        assert record["splits"][split]["class_pixels"] == expected
        assert record["splits"][split]["ignored_pixels"] == int(counts[255])
    sizes = record["splits"]["val"]["image_sizes"]
    assert sizes["distinct_sizes"] == 2 and sizes["width"]["max"] == 40 and sizes["height"]["min"] == 24


def test_data_check_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = make_folder_dataset(tmp_path / "data")
    missing, stray = _no_mask(root), _no_image(root)
    assert main(["data", "check", "--dataset", "folder", "--root", str(root), "--split", "train",
                 "--json", str(tmp_path / "check.json")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and str(stray) in err
    problems = json.loads((tmp_path / "check.json").read_text())["splits"]["train"]["problems"]
    assert sorted(p["path"] for p in problems) == sorted([str(missing), str(stray)])


def test_check_reports_the_first_files_and_the_count(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data", train=6)
    for i in range(5):
        _mask(root, "train", i).unlink()
    report = check_dataset(build_dataset("folder", "train", root))
    text = report.describe()
    assert "\n  image without a mask (5):\n    " in text and text.endswith("\n    ... and 2 more")
    assert text.count("images/train/") == 3


def test_an_image_named_after_another_format_is_read(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data")
    jpeg = _image(root, "train", 1)
    jpeg.rename(jpeg.with_suffix(".png"))  # JPEG bytes under a .png name: still an image, still checked
    report = check_dataset(build_dataset("folder", "train", root))
    assert report.ok and len(report.sizes) == 4


def test_pcontext_pair_missing_from_the_split_list_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    masks = [np.full((8, 8), k, np.uint8) for k in (1, 2, 3)]
    last = make_pcontext(tmp_path / "pc", masks)
    last.unlink()  # listed in train.txt, never prepared
    assert main(["train", "--dataset", "pcontext", "--root", str(tmp_path / "pc"), "--out-dir",
                 str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "missing mask (1):\n" in err and _reported(err, last, "listed in the split file") and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def _reported(err: str, path: Path, detail: str) -> bool:
    """Whether the report names ``path`` with details starting ``detail``: on its line, or on the next where both
    would not fit a page."""
    return re.search(re.escape(f"    {path}:") + "( |\n      )" + re.escape(detail), err) is not None


def test_a_long_path_puts_its_details_on_the_next_line() -> None:
    from fastfcn.data.check import DataProblem, DataReport
    from fastfcn.utils.text import PRINT_WIDTH

    short, long = Path("masks/val/a.png"), Path("own_data/" + "x" * 60 + "/masks/val/scene0160.png")
    detail = "value 6 (846 px), value 7 (312 px); allowed: 0..5, 255"
    report = DataReport("folder", "val", "data", pairs=2,
                        problems=[DataProblem("labels out of range", short, detail, 0),
                                  DataProblem("labels out of range", long, detail, 1)])
    text = report.describe()
    assert f"    {short}: {detail}\n" in text and text.endswith(f"    {long}:\n      {detail}")
    assert max(len(line) for line in text.splitlines()) <= PRINT_WIDTH
    assert _reported(text, short, detail) and _reported(text, long, detail)
