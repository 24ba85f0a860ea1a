"""A hostile but realistic user: corrupt and malicious checkpoints, huge images, NaN inputs, odd folders,
full disks. Every mistake gets one line that names the file and the fix, and one bad input never stops
the others."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from official_fixtures import load_fixture, official_checkpoint
from PIL import Image

from fastfcn.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from fastfcn.cli import main
from fastfcn.data.images import DEFAULT_MAX_PIXELS
from fastfcn.inference.checks import UnnormalisedImageWarning
from fastfcn.inference.evaluate import (
    MS_SCALES,
    NonFiniteWarning,
    evaluate,
    predict_labels,
    predict_probs,
)
from fastfcn.inference.metrics import SegmentationMetric
from fastfcn.inference.predict import Predictor, collect_inputs, predict_files
from fastfcn.inference.resize import BilinearRows
from fastfcn.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = {"base_size": 64, "crop_size": 64}


def _tiny(num_classes: int = 3, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=num_classes, jpu_width=16).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(_tiny(), path, classes=["a", "b", "c"], train_config=TRAIN)
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    """Files that are not checkpoints: empty, truncated, random bytes, text, and two malicious pickles."""
    d = tmp_path_factory.mktemp("bad")
    good = d / "good.pth"
    save_checkpoint(_tiny(), good, classes=None)
    data = good.read_bytes()
    files = {"empty": d / "empty.pth", "truncated": d / "truncated.pth", "random": d / "random.pth",
             "text": d / "text.pth", "evil_pickle": d / "evil_pickle.pth", "evil_torch": d / "evil_torch.pth"}
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    files["text"].write_text("model weights will be uploaded later\n" * 20)
    marker = d / "PWNED"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    files["evil_pickle"].write_bytes(pickle.dumps({"state_dict": Evil()}))
    torch.save({"format": "fastfcn", "config": Evil()}, files["evil_torch"])
    files["marker"] = marker
    return files


def _one_line_error(err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0], err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def _png(path: Path, size: tuple[int, int] = (40, 56), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


# --- 1, 10: convert ---------------------------------------------------------------------------------


def test_convert_refuses_to_overwrite_and_names_bad_sources(tmp_path: Path, bad_files, checkpoint, capsys,
                                                            monkeypatch) -> None:
    meta, _ = load_fixture("deeplab_dilated_r50")
    src = tmp_path / "model_best.pth.tar"
    torch.save(official_checkpoint(meta), src)
    load = meta["load"]
    opts = ["--head", load["head"], "--backbone", load["backbone"], "--upsampling", load["upsampling"],
            "--num-classes", str(load["num_classes"])]
    out = tmp_path / "converted.pth"
    out.write_bytes(b"precious")
    assert main(["convert", str(src), str(out), *opts]) == 2
    _one_line_error(capsys.readouterr().err, str(out), "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    assert main(["convert", str(src), str(out), *opts, "--overwrite"]) == 0
    capsys.readouterr()
    assert model_from_checkpoint(out)[1]["config"]["head"] == load["head"]

    # an existing folder, or a folder that is a file, as the output
    (tmp_path / "folder").mkdir()
    assert main(["convert", str(src), str(tmp_path / "folder"), *opts]) == 2
    _one_line_error(capsys.readouterr().err, "is a folder")
    assert main(["convert", str(src), str(out / "x.pth"), *opts, "--overwrite"]) == 2
    _one_line_error(capsys.readouterr().err, "is a file")

    # disk full while writing: one line naming the file, the previous file untouched
    before = out.read_bytes()

    def dev_full(prefix="", suffix="", dir=None):
        return os.open("/dev/full", os.O_WRONLY), os.path.join(dir, f"{prefix}devfull{suffix}")

    if os.path.exists("/dev/full"):
        with monkeypatch.context() as patch:
            patch.setattr(tempfile, "mkstemp", dev_full)
            assert main(["convert", str(src), str(out), *opts, "--overwrite"]) == 2
        _one_line_error(capsys.readouterr().err, str(out), "No space left", "disk is full")
        assert out.read_bytes() == before

    # corrupt files are "not readable", never "pass --trusted"
    for name in ("empty", "truncated", "random", "text", "evil_pickle"):
        assert main(["convert", str(bad_files[name]), str(tmp_path / f"{name}.pth"), *opts]) == 2
        err = capsys.readouterr().err
        _one_line_error(err, str(bad_files[name]), "not a readable checkpoint")
        assert "--trusted" not in err
    # a pickle that would run a command: refused, not suggested for --trusted, never executed
    assert main(["convert", str(bad_files["evil_torch"]), str(tmp_path / "e.pth"), *opts]) == 2
    err = capsys.readouterr().err
    _one_line_error(err, str(bad_files["evil_torch"]), "posix.system", "not unpickled")
    assert "--trusted" not in err and not bad_files["marker"].exists()
    # a real checkpoint with other objects (numpy's best_pred): there --trusted is the right hint
    numpy_src = tmp_path / "numpy_best_pred.pth.tar"
    torch.save({**official_checkpoint(meta), "best_pred": np.float64(0.5)}, numpy_src)
    assert main(["convert", str(numpy_src), str(tmp_path / "n.pth"), *opts]) == 2
    _one_line_error(capsys.readouterr().err, "objects besides tensors", "--trusted")
    # one of ours: already converted
    assert main(["convert", str(checkpoint), str(tmp_path / "again.pth"), *opts]) == 2
    _one_line_error(capsys.readouterr().err, str(checkpoint), "already a fastfcn checkpoint", "predict")


# --- 11: eval / predict / resume on bad checkpoints, bad outputs, bad dtypes -------------------------


@pytest.mark.parametrize("name", ["empty", "truncated", "random", "text", "evil_pickle", "evil_torch"])
def test_bad_checkpoints_give_one_line(name: str, bad_files, tmp_path: Path, capsys) -> None:
    bad = bad_files[name]
    image = _png(tmp_path / "photo.png")
    assert main(["predict", str(image), "--checkpoint", str(bad), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 2
    _one_line_error(capsys.readouterr().err, str(bad))
    assert main(["eval", "--checkpoint", str(bad), "--dataset", "procedural", "--device", "cpu"]) == 2
    _one_line_error(capsys.readouterr().err, str(bad))
    with pytest.raises(ValueError, match=str(bad)):  # resume goes through load_checkpoint
        load_checkpoint(bad)
    assert not bad_files["marker"].exists()


def test_edited_checkpoints_give_one_line(tmp_path: Path, capsys) -> None:
    model = _tiny()
    cases = {}
    for name, change in {"extra_key": lambda c: c.update(dropout=0.3),
                         "missing_head": lambda c: c.pop("head"),
                         "wrong_width": lambda c: c.update(jpu_width=32),
                         "bad_value": lambda c: c.update(num_classes=-1)}.items():
        path = tmp_path / f"{name}.pth"
        save_checkpoint(model, path)
        ckpt = torch.load(path, weights_only=True)
        change(ckpt["config"])
        torch.save(ckpt, path)
        cases[name] = path
    no_state = tmp_path / "no_state.pth"
    torch.save({"format": "fastfcn", "version": 1, "config": dict(model.config)}, no_state)
    cases["no_state"] = no_state
    expected = {"extra_key": "'dropout'", "missing_head": "'head' is missing", "wrong_width": "do not fit",
                "bad_value": "num_classes", "no_state": "no state_dict"}
    image = _png(tmp_path / "photo.png")
    for name, path in cases.items():
        with pytest.raises(ValueError, match=expected[name]):
            model_from_checkpoint(path)
        assert main(["predict", str(image), "--checkpoint", str(path), "--out", str(tmp_path / "o")]) == 2
        _one_line_error(capsys.readouterr().err, str(path), expected[name])


def test_outputs_that_cannot_be_written(tmp_path: Path, checkpoint: Path, capsys) -> None:
    image = _png(tmp_path / "photo.png")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    for out in (a_file, a_file / "sub"):
        assert main(["predict", str(image), "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
        _one_line_error(capsys.readouterr().err, str(a_file))
    (tmp_path / "metrics").mkdir()
    for out, needle in ((tmp_path / "metrics", "is a folder"), (a_file / "m.json", "is a file")):
        assert main(["eval", "--checkpoint", str(checkpoint), "--dataset", "procedural", "--out", str(out),
                     "--device", "cpu", "--no-progress"]) == 2
        _one_line_error(capsys.readouterr().err, str(out), needle)


def test_predict_disk_full_names_the_file_and_continues(tmp_path: Path, checkpoint: Path, capsys, monkeypatch) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    a, b = _png(tmp_path / "a.png"), _png(tmp_path / "b.png", seed=1)
    real = tempfile.mkstemp

    def full_for_a(prefix="", suffix="", dir=None):
        if prefix.startswith(".a.png_"):
            return os.open("/dev/full", os.O_WRONLY), os.path.join(dir, f"{prefix}devfull{suffix}")
        return real(prefix=prefix, suffix=suffix, dir=dir)

    monkeypatch.setattr(tempfile, "mkstemp", full_for_a)
    out = tmp_path / "out"
    rc = main(["predict", str(a), str(b), "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "a.png" in err and "No space left on device" in err and "a.png_mask.png" in err
    assert sorted(p.name for p in out.iterdir()) == ["b.png_mask.png", "b.png_overlay.png"]


def test_float16_and_float64_inputs(tmp_path: Path) -> None:
    model = _tiny()
    x = torch.randn(1, 3, 32, 32)
    for dtype in (torch.float16, torch.float64):
        with pytest.raises(TypeError, match=rf"the input is {dtype} but the model's weights are torch.float32"):
            model(x.to(dtype))
    image = torch.randn(3, 30, 41)
    ref = predict_probs(model, image, base_size=48, crop_size=48)
    assert torch.allclose(predict_probs(model, image.double(), base_size=48, crop_size=48), ref)
    assert predict_probs(model, image.half(), base_size=48, crop_size=48).shape == ref.shape
    with pytest.raises(ValueError, match="uint8"):
        predict_probs(model, torch.zeros(3, 8, 8, dtype=torch.int64))


# --- 8: NaN / inf -----------------------------------------------------------------------------------


def test_non_finite_inputs_and_outputs_are_reported(tmp_path: Path, capsys) -> None:
    model = _tiny()
    image = torch.zeros(3, 40, 40)
    image[0, 5, 5] = float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_labels(model, image, base_size=48, crop_size=48)
    messages = [str(w.message) for w in caught if issubclass(w.category, NonFiniteWarning)]
    assert any("input image holds 1 non-finite" in m for m in messages), messages
    assert any("class scores hold" in m for m in messages), messages
    image[0, 5, 5] = 1e30  # finite, but EncNet's logits become NaN everywhere
    with (pytest.warns(NonFiniteWarning, match="class scores hold .* non-finite"),
          pytest.warns(UnnormalisedImageWarning, match=r"reach 1e\+30")):  # both said, neither leaks
        predict_probs(model, image, base_size=48, crop_size=48)

    class Data:
        name, classes, num_classes = "procedural", ["a", "b", "c"], 3

        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int):
            x = torch.zeros(3, 20, 24)
            if i == 1:
                x[1, 2, 3] = float("inf")
            return x, torch.zeros(20, 24, dtype=torch.int64)

    with pytest.warns(NonFiniteWarning, match=r"1 of 3 evaluated images .*first: image 1"):
        evaluate(model, Data(), base_size=32, crop_size=32, progress=False)

    # predict from files: a model whose weights hold NaN warns with the image's name
    broken = _tiny()
    with torch.no_grad():
        broken.head.classifier[-1].bias[0] = float("nan")
    ckpt = tmp_path / "nan.pth"
    save_checkpoint(broken, ckpt, train_config=TRAIN)
    photo = _png(tmp_path / "photo.png")
    rc = main(["predict", str(photo), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0 and "Traceback" not in err
    assert f"{photo}: warning: the class scores hold" in err


# --- 7: memory, labels, limits, one failure does not stop the others --------------------------------


@pytest.mark.parametrize("size", [(37, 51), (64, 33), (90, 120)])
def test_predict_labels_equal_argmax_of_probs(size: tuple[int, int]) -> None:
    model = _tiny(num_classes=5)
    image = torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    for scales, flip in (((1.0,), False), (MS_SCALES, True)):
        ref = predict_probs(model, image, scales, flip, 48, 40).argmax(0)
        labels = predict_labels(model, image, scales, flip, 48, 40)
        assert labels.dtype == torch.uint8 and torch.equal(labels.long(), ref)
        # the banded path (what a large photo takes) agrees to float rounding: at most a near-tie flips
        banded = predict_labels(model, image, scales, flip, 48, 40, max_bytes=0)
        assert (banded.long() == ref).float().mean() >= 0.995


def test_banded_resize_matches_interpolate() -> None:
    g = torch.Generator().manual_seed(0)
    for (h, w), (H, W), step in [((5, 7), (61, 33), 4), ((40, 31), (40, 31), 7), ((33, 52), (9, 4), 2),
                                 ((1, 9), (17, 1), 5)]:
        x = torch.rand(4, h, w, generator=g)
        ref = F.interpolate(x[None], (H, W), mode="bilinear", align_corners=True)[0]
        resizer = BilinearRows((h, w), (H, W))
        out = torch.cat([resizer(x, s, min(H, s + step)) for s in range(0, H, step)], dim=1)
        assert torch.allclose(out, ref, atol=1e-6, rtol=0)


def test_evaluate_uses_labels_with_the_same_metrics() -> None:
    model = _tiny()
    g = torch.Generator().manual_seed(1)

    class Data:
        name, classes, num_classes, ignore_index = "pcontext60", ["background", "cat", "sky"], 3, 255
        items = [(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g),
                  torch.randint(0, 3, (h, w), generator=g)) for h, w in [(33, 47), (50, 31)]]

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i: int):
            return self.items[i]

    data = Data()
    ref = SegmentationMetric(3, data.classes, background=0)
    for image, mask in data.items:
        ref.update(predict_probs(model, image, MS_SCALES, True, 48, 40), mask)
    got = evaluate(model, data, MS_SCALES, True, 48, 40, progress=False)
    want = ref.compute()
    assert got["iou"] == want["iou"] and got["without_background"]["iou"] == want["without_background"]["iou"]


def _peak_memory(tmp_path: Path, image: Path, checkpoint: Path) -> dict[str, float]:
    """Run ``fastfcn predict`` in a fresh process; its peak RSS (VmHWM) before and after the image."""
    code = """
import json, sys
from fastfcn.checkpoint import model_from_checkpoint
from fastfcn.cli import main
def hwm():
    line = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
    return int(line.split()[1]) / 1024
model_from_checkpoint(sys.argv[2])
base = hwm()
rc = main(["predict", sys.argv[1], "--checkpoint", sys.argv[2], "--out", sys.argv[3], "--device", "cpu",
           "--no-progress"])
print(json.dumps({"rc": rc, "base": base, "peak": hwm()}))
"""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", code, str(image), str(checkpoint), str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0, proc.stderr
    return result


def _blocks(side: int) -> Image.Image:
    im = Image.new("RGB", (side, side), (30, 60, 90))
    for k, colour in enumerate([(200, 10, 10), (10, 200, 10), (10, 10, 200), (250, 250, 0)]):
        im.paste(colour, (k * side // 5, k * side // 7, k * side // 5 + side // 4, k * side // 7 + side // 3))
    return im


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_predict_memory_of_a_large_image(tmp_path: Path, checkpoint: Path) -> None:
    """8000 x 8000 (64 M pixels, a 200 KB PNG), 3 classes: the old code peaked at 3872 MiB (about 3.2 GiB above
    the ~680 MiB of an imported fastfcn with the model loaded); this one, on a Zen 4 EPYC on 2026-12-04, 1045 MiB
    above with glibc's malloc defaults and 1062-1081 above with fastfcn.utils.allocator's settings; 870-897 above
    on an AVX-512 Xeon on 2026-12-05, once the overlay was encoded a band at a time (no whole RGB image)."""
    image = tmp_path / "big.png"
    _blocks(8000).save(image)
    mem = _peak_memory(tmp_path, image, checkpoint)
    assert mem["peak"] - mem["base"] < 1100, mem  # MiB; 64 M pixels x ~17 bytes
    with Image.open(tmp_path / "out" / "big.png_mask.png") as mask:
        assert mask.size == (8000, 8000) and mask.mode == "P"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_predict_memory_does_not_grow_with_classes(tmp_path: Path) -> None:
    """2000 x 2000 with 150 classes: one full-resolution probability stack alone is 2.3 GiB; the old pipeline
    peaked at 5452 MiB, this one at about 920 MiB (~240 MiB above the baseline)."""
    ckpt = tmp_path / "c150.pth"
    save_checkpoint(_tiny(num_classes=150), ckpt, train_config=TRAIN)
    image = tmp_path / "mid.png"
    _blocks(2000).save(image)
    mem = _peak_memory(tmp_path, image, ckpt)
    assert mem["peak"] - mem["base"] < 600, mem  # MiB, against 2300 for the stack alone


def test_max_pixels_refuses_and_later_files_still_run(tmp_path: Path, checkpoint: Path, capsys,
                                                      monkeypatch) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("RGB", (300, 200)).save(folder / "a_big.png")  # 60000 pixels
    _png(folder / "b_fails.png", size=(41, 57), seed=1)
    _png(folder / "c_fine.png", seed=2)
    labels, labels_later = Predictor.labels, Predictor.labels_later

    def out_of_memory(self, rgb, halves=False):
        if rgb.shape[:2] == (41, 57):
            raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 15000000000 bytes.")
        return labels_later(self, rgb) if halves else labels(self, rgb)

    monkeypatch.setattr(Predictor, "labels", out_of_memory)
    monkeypatch.setattr(Predictor, "labels_later", lambda self, rgb: out_of_memory(self, rgb, halves=True))
    out = tmp_path / "out"
    rc = main(["predict", str(folder), "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress",
               "--max-pixels", "50000"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    big = [line for line in err.splitlines() if "a_big.png" in line and "skipped" in line]
    assert big and "300 x 200" in big[0] and "--max-pixels" in big[0] and str(DEFAULT_MAX_PIXELS) in big[0]
    oom = [line for line in err.splitlines() if "b_fails.png" in line and "skipped" in line]
    assert oom and "not enough memory" in oom[0]
    assert sorted(p.name for p in (out / "in").iterdir()) == ["c_fine.png_mask.png", "c_fine.png_overlay.png"]


def test_predict_help_and_arguments(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"default {DEFAULT_MAX_PIXELS}" in text and "photo.jpg_mask.png" in text
    for alpha in ("5", "-0.1", "half"):
        with pytest.raises(SystemExit) as info:
            main(["predict", "x.png", "--checkpoint", "c.pth", "--out", "o", "--alpha", alpha])
        assert info.value.code == 2 and "--alpha" in capsys.readouterr().err
    with pytest.raises(ValueError, match="alpha"):
        predict_files(["x.png"], "c.pth", "o", alpha=5)


# --- 12: folders -------------------------------------------------------------------------------------


def test_folder_walk_names_what_it_skips(tmp_path: Path, checkpoint: Path, capsys, monkeypatch) -> None:
    folder = tmp_path / "in"
    (folder / "locked").mkdir(parents=True)
    _png(folder / "a.png")
    _png(folder / "a.jpg", seed=1)
    _png(folder / "locked" / "inside.png", seed=2)
    (folder / "gone.png").symlink_to(tmp_path / "deleted.png")
    os.mkfifo(folder / "pipe.png")
    (folder / "notes.txt").write_text("ignored")
    scandir = os.scandir

    def locked_scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", locked_scandir)
    out = folder / "masks"  # inside the input folder
    argv = ["predict", str(folder), "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "gone.png: broken symbolic link" in err
    assert "pipe.png: not a regular file" in err
    assert "locked: cannot read this folder (Permission denied)" in err
    assert "3 input(s) failed" in err
    written = sorted(p.name for p in (out / "in").iterdir())
    assert written == ["a.jpg_mask.png", "a.jpg_overlay.png", "a.png_mask.png", "a.png_overlay.png"]
    # a second run does not segment the first run's masks
    assert main(argv) == 1
    capsys.readouterr()
    assert sorted(p.name for p in (out / "in").iterdir()) == written
    assert not (out / "in" / "masks").exists()


def test_output_names_keep_the_extension(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for p in ("x/a.png", "x/a.jpg", "y/a.png"):
        _png(tmp_path / p)
    files, problems, skipped = collect_inputs([tmp_path / "x/a.png", tmp_path / "x/a.jpg", tmp_path / "y/a.png",
                                               tmp_path / "x"])
    names = [str(n) for _, n in files]
    assert names == ["a.png", "a.jpg", "a.png_2", "x/a.jpg", "x/a.png"] and not problems and not skipped


def test_torch_write_failure_names_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """torch's zip writer reports a full disk as "[enforce fail at inline_container.cc:...]"."""
    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 2")

    monkeypatch.setattr(torch, "save", failing_save)
    path = tmp_path / "model.pth"
    with pytest.raises(OSError, match=r"cannot write checkpoint .*model\.pth.*disk full") as info:
        save_checkpoint(_tiny(), path)
    assert "\n" not in str(info.value) and not path.exists() and not list(tmp_path.iterdir())
