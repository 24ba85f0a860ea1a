"""Nothing wrong, nothing lost (issue 21, items 2, 3, 5, 6, 9 and 12's arguments): two `book run` into one
folder (real processes), `predict` onto a full disk and into a read-only folder (a real tmpfs), `eval` of
no images, and a 0..255 float image given to `predict_labels`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_train_robust import REPO, sigkill, spawn_paused

from fastfcn.checkpoint import save_checkpoint
from fastfcn.cli import main
from fastfcn.data.base import IGNORE_INDEX
from fastfcn.data.procedural import ProceduralScenes
from fastfcn.inference.evaluate import evaluate, predict_labels
from fastfcn.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny(num_classes: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("encnet", backbone="resnet18_w32", upsampling="jpu", num_classes=num_classes,
                       jpu_width=16).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(_tiny(), path, classes=None,
                    train_config={"dataset": "procedural", "image_size": 32, "base_size": 64, "crop_size": 64})
    return path


def _one_error_line(err: str, command: str, *needles: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"fastfcn {command}: error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- item 2: one `book run` per executed folder at a time ------------------------------------------------

def test_a_second_book_run_into_the_same_folder_fails_at_once_naming_the_first(tmp_path: Path) -> None:
    out, lock = tmp_path / "executed", "book_run.lock"
    args = ["book", "run", "--profile", "smoke", "--device", "cpu", "--only", "01", "--out", str(out)]
    first = spawn_paused(out, "book_run_locked", args, tmp_path)  # holds the lock, executes nothing yet
    try:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
        second = subprocess.run([sys.executable, "-m", "fastfcn", *args], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        _one_error_line(second.stderr, "book", str(out), "in use by another book run",
                        f"pid {first.pid} on host {socket.gethostname()}", "--out")
        assert sorted(p.name for p in out.iterdir()) == [lock]  # the second wrote nothing
    finally:
        sigkill(first)
    # the killed holder's lock does not block the next run: it is taken over, with a warning
    from fastfcn.book.runner import BOOK_LOCK_NAME
    from fastfcn.utils.lock import FolderLock

    assert BOOK_LOCK_NAME == lock
    with pytest.warns(UserWarning, match=f"took over the stale lock of pid {first.pid}"):
        with FolderLock(out, lock, holder="book run"):
            pass
    assert not (out / lock).exists()


# -- items 3 and 9: a full disk and a read-only folder (a real tmpfs) ------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted at ``tmp_path/disk`` (needs root; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _noise_photo(path: Path, side: int = 256) -> Path:
    """Noise: its overlay PNG does not compress (~200 KB), its mask of a few classes does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until about ``leave`` bytes are free."""
    stat = os.statvfs(folder)
    with open(folder / "filler", "wb") as f:
        f.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))


def test_predict_onto_a_full_disk_keeps_the_previous_mask_and_overlay(small_disk: Path, checkpoint: Path,
                                                                        tmp_path: Path, capsys) -> None:
    photo, out = _noise_photo(tmp_path / "in" / "photo.png"), small_disk / "out"
    cmd = ["predict", str(photo), "--checkpoint", str(checkpoint), "--out", str(out), "--runtime", "torch",
           "--device", "cpu", "--no-progress"]
    assert main(cmd) == 0
    mask, overlay = out / "photo.png_mask.png", out / "photo.png_overlay.png"
    before = {p: p.read_bytes() for p in (mask, overlay)}
    assert len(before[overlay]) > len(before[mask]) + 64 * 1024
    _fill(small_disk, leave=len(before[mask]) + 16 * 1024)  # room for a new mask, not for its overlay
    capsys.readouterr()
    assert main(cmd) == 1
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in before)  # no temporary left
    assert {p: p.read_bytes() for p in (mask, overlay)} == before  # the previous run's files, whole
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(mask) in err and "Traceback" not in err


def test_a_read_only_out_folder_is_refused_before_anything_is_segmented(small_disk: Path, checkpoint: Path,
                                                                         tmp_path: Path, capsys, monkeypatch) -> None:
    from fastfcn.inference.predict import Predictor

    photos = [_noise_photo(tmp_path / "in" / f"{i}.png", side=40) for i in range(2)]
    (small_disk / "existing").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    segmented: list[int] = []
    monkeypatch.setattr(Predictor, "labels", lambda self, rgb: segmented.append(1))
    monkeypatch.setattr(Predictor, "labels_later", lambda self, rgb: segmented.append(1))
    for out in (small_disk / "existing", small_disk / "new"):
        rc = main(["predict", *map(str, photos), "--checkpoint", str(checkpoint), "--out", str(out),
                   "--runtime", "torch", "--device", "cpu", "--no-progress"])
        assert rc == 2
        _one_error_line(capsys.readouterr().err, "predict", str(out), "Read-only file system", "--out")
    assert segmented == []


# -- item 5: eval of no images ----------------------------------------------------------------------------

def test_eval_limit_below_one_and_an_empty_split_are_one_line_without_nan(checkpoint: Path, tmp_path: Path,
                                                                           capsys) -> None:
    base = ["eval", "--checkpoint", str(checkpoint), "--device", "cpu", "--no-progress", "--runtime", "torch"]
    for flag, value in (("--limit", "0"), ("--limit", "-1"), ("--crop-size", "0"), ("--scales", "inf"),
                        ("--batch-size", "0")):
        with pytest.raises(SystemExit) as exit_:
            main([*base, flag, value])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {flag}" in err and "Traceback" not in err
    out = tmp_path / "metrics.json"
    assert main([*base, "--num-images", "0", "--out", str(out)]) == 1
    _one_error_line(capsys.readouterr().err, "eval", "has no images", "--num-images")
    assert not out.exists()
    with pytest.raises(ValueError, match="no images"):
        evaluate(_tiny(), [], device="cpu", progress=False)
    with pytest.raises(ValueError, match="at least 1"):
        evaluate(_tiny(), ProceduralScenes("val", num_images=1, image_size=32), limit=0, progress=False)


def test_eval_batch_size_scores_as_one_image_at_a_time(checkpoint: Path, tmp_path: Path) -> None:
    base = ["eval", "--checkpoint", str(checkpoint), "--device", "cpu", "--no-progress", "--runtime", "torch",
            "--num-images", "5"]
    scores = []
    for batch in ("1", "3"):
        out = tmp_path / f"batch{batch}.json"
        assert main([*base, "--batch-size", batch, "--out", str(out)]) == 0
        scores.append(json.loads(out.read_text()))
    assert scores[0]["images"] == scores[1]["images"] == 5
    assert scores[1]["mIoU"] == pytest.approx(scores[0]["mIoU"], abs=1e-4)
    assert scores[1]["pixAcc"] == pytest.approx(scores[0]["pixAcc"], abs=1e-4)


def test_metrics_of_no_labelled_pixel_are_null_in_the_json(checkpoint: Path, tmp_path: Path, monkeypatch,
                                                           capsys) -> None:
    labelled = ProceduralScenes.__getitem__
    monkeypatch.setattr(ProceduralScenes, "__getitem__",
                        lambda self, i: (labelled(self, i)[0], torch.full_like(labelled(self, i)[1], IGNORE_INDEX)))
    out = tmp_path / "metrics.json"
    assert main(["eval", "--checkpoint", str(checkpoint), "--device", "cpu", "--no-progress", "--runtime", "torch",
                 "--num-images", "2", "--out", str(out)]) == 0
    text = out.read_text()
    assert "NaN" not in text and json.loads(text)["pixAcc"] is None and json.loads(text)["mIoU"] is None


# -- item 6: a 0..255 float image ----------------------------------------------------------------------

def test_predict_labels_warns_about_an_unnormalised_float_image() -> None:
    from fastfcn.data.transforms import normalize

    model = _tiny()
    image = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (3, 40, 48), dtype=np.uint8))
    with pytest.warns(UserWarning, match=r"0\.\.255 .* image\.to\(torch\.uint8\)") as caught:
        predict_labels(model, image.float(), base_size=48, crop_size=48)
    from fastfcn.inference.evaluate import UnnormalisedImageWarning

    assert [w.category for w in caught] == [UnnormalisedImageWarning]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # uint8, normalised float and randn inputs are fine
        predict_labels(model, image, base_size=48, crop_size=48)
        predict_labels(model, normalize(image), base_size=48, crop_size=48)
        predict_labels(model, torch.randn(3, 40, 48), base_size=48, crop_size=48)


# -- item 11: damaged results files and a torn training log in the book --------------------------------

def test_damaged_results_files_are_named_and_executed_again(tmp_path: Path) -> None:
    from fastfcn.book.chapters import list_chapters
    from fastfcn.book.runner import needs_run, stale_chapters

    first, second, third = [c.stem for c in list_chapters(REPO / "book")[:3]]
    executed = tmp_path / "executed"
    executed.mkdir()
    (executed / f"{first}.json").write_text("null")
    (executed / f"{second}.json").write_text("[]")
    (executed / f"{third}.json").write_text('{"chapter": "' + third + '", "fig')  # truncated by a kill
    for stem in (first, second, third):
        (executed / f"{stem}.ipynb").write_text("{}")
        assert needs_run(stem, executed, "digest") == "unreadable results"
    notes = stale_chapters(REPO / "book", executed)
    for stem in (first, second, third):
        assert any(str(executed / f"{stem}.json") in n and "damaged" in n and f"--only {stem} --force" in n
                   for n in notes), notes


def test_a_torn_training_log_of_a_book_run_is_a_warning_naming_the_file(tmp_path: Path) -> None:
    from fastfcn.book.trainings import find_run
    from fastfcn.training import TrainConfig
    from fastfcn.training.table1 import stamp_scene_version

    config = TrainConfig(image_size=32, num_images=4, epochs=2, batch_size=2)
    folder = tmp_path / "runs" / "one"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(stamp_scene_version(config).resolved().to_dict()))
    (folder / "log.jsonl").write_text('{"epoch": 1, "iteration": 2}\n{"epoch": 2, "itera')  # killed mid-append
    with pytest.warns(UserWarning, match=f"{folder / 'log.jsonl'}: dropped its torn last line 2"):
        assert find_run(config, tmp_path / "runs") == (folder, False)


# -- item 10: the chapter line of a failing cell ---------------------------------------------------------

CALLS_A_HELPER = '''
```{code-cell} ipython3
def helper():
    x = 1
    raise ValueError("boom in a helper")
```

Prose between the cells.

```{code-cell} ipython3
y = 2
helper()
```
'''

BAD_SYNTAX = '''
```{code-cell} ipython3
a = 1
b = 1 +* 2
```
'''


@pytest.mark.parametrize("cells,failing,error", [(CALLS_A_HELPER, "helper()", "ValueError: boom in a helper"),
                                                (BAD_SYNTAX, "b = 1 +* 2", "SyntaxError")])
def test_a_failing_cell_is_reported_at_its_own_chapter_line(tmp_path: Path, cells: str, failing: str,
                                                            error: str) -> None:
    from test_book import fake_book, fake_chapter

    from fastfcn.book.chapters import ChapterError
    from fastfcn.book.runner import run_book

    text = fake_chapter("Bad", "z = 0") + cells
    book = fake_book(tmp_path, {"01_bad": text})
    line = text.splitlines().index(failing) + 1
    with pytest.raises(ChapterError) as caught:
        run_book(book, tmp_path / "out", profile="smoke", device="cpu", progress=False)
    message = str(caught.value)
    assert f"01_bad.md line {line})" in message and error in message, message
    assert message.splitlines()[1].strip() == failing, message


# -- item 12: a full disk under eval --out names the file --------------------------------------------

def test_eval_out_on_a_full_disk_names_the_file(small_disk: Path, checkpoint: Path, capsys) -> None:
    out = small_disk / "metrics.json"
    _fill(small_disk, leave=0)
    assert main(["eval", "--checkpoint", str(checkpoint), "--device", "cpu", "--no-progress", "--runtime", "torch",
                 "--num-images", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if "error" in ln]
    assert len(line) == 1 and str(out) in line[0] and "disk is full" in line[0] and "Traceback" not in err, err
    assert not out.exists() and [p.name for p in small_disk.iterdir()] == ["filler"]


# -- item 12: a multi-page file is said to be one ------------------------------------------------------

def test_a_multi_frame_image_is_read_with_a_warning(tmp_path: Path) -> None:
    from fastfcn.data.images import read_rgb

    pages = [Image.new("RGB", (8, 6), colour) for colour in ("red", "green", "blue")]
    for name in ("pages.tif", "animated.gif"):
        pages[0].save(tmp_path / name, save_all=True, append_images=pages[1:])
        with pytest.warns(UserWarning, match=f"{name} holds 3 frames .* only the first is read"):
            rgb = read_rgb(tmp_path / name)
        assert rgb.shape == (6, 8, 3) and rgb[0, 0, 0] > 200 and rgb[0, 0, 1] < 50  # the first page: red
    pages[0].save(tmp_path / "one.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_rgb(tmp_path / "one.tif")


# -- item 12: a batch of one image with a head that pools the whole image ------------------------------

@pytest.mark.parametrize("head", ["psp", "aspp"])
def test_a_batch_of_one_with_an_image_pooling_head_is_refused_before_training(head: str, tmp_path: Path,
                                                                              capsys) -> None:
    from test_train_robust import tiny_args

    assert main(tiny_args(tmp_path / "run", 1, "--head", head, "--batch-size", "1", "--no-progress")) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("fastfcn train: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert f"the {head} head pools the whole image" in errors[0] and "--batch-size 2 or more" in errors[0]
    assert not (tmp_path / "run" / "last.pth").exists()


# -- item 12: a batch whose pixels are all ignored is not called a learning-rate problem -----------------

def test_a_batch_of_ignored_pixels_is_named_as_such_not_as_the_learning_rate(tmp_path: Path, monkeypatch,
                                                                              capsys) -> None:
    from test_train_robust import tiny_args

    labelled = ProceduralScenes.__getitem__
    monkeypatch.setattr(ProceduralScenes, "__getitem__",
                        lambda self, i: (labelled(self, i)[0], torch.full_like(labelled(self, i)[1], IGNORE_INDEX)))
    assert main(tiny_args(tmp_path / "run", 1)) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("fastfcn train: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert f"Every pixel of this batch is labelled {IGNORE_INDEX} (ignored)" in errors[0], errors[0]
    assert "the learning rate is not the cause" in errors[0] and "Lower the learning rate" not in errors[0]


# -- item 11: a Table 1 run whose config.json is damaged ------------------------------------------------

def test_a_damaged_config_of_a_table1_run_is_named_with_what_to_do(tmp_path: Path) -> None:
    from test_trainings import tiny

    from fastfcn.book.trainings import ensure_trained

    done = ensure_trained(tiny(), tmp_path / "runs")
    config_file = done.out_dir / "config.json"
    config_file.write_text(config_file.read_text()[:40])  # torn by a full disk or an editor
    with pytest.raises(RuntimeError) as caught:
        ensure_trained(tiny(), tmp_path / "runs")
    message = str(caught.value)
    assert f"{config_file} is damaged" in message and f"delete the folder {done.out_dir}" in message, message
    assert "--overwrite" not in message and (done.out_dir / "last.pth").is_file()  # nothing removed
