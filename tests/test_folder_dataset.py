"""Your own data: the folder dataset, Cityscapes, --init fine-tuning, and train/resume/eval/predict through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from folder_fixtures import EXPECTED_COLOURS, SMOKE, make_cityscapes, make_folder_dataset, run_fastfcn, scene
from official_fixtures import load_fixture, official_checkpoint
from PIL import Image

from fastfcn.checkpoint import save_checkpoint
from fastfcn.data import IGNORE_INDEX, build_dataset, palette
from fastfcn.data.check import check_dataset
from fastfcn.data.cityscapes import CITYSCAPES_CLASSES
from fastfcn.data.folder import read_classes
from fastfcn.models import build_model, load_official
from fastfcn.models.official import convert_official_state_dict
from fastfcn.training.warm_start import init_from_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def test_classes_txt_names_and_colours(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data")
    names, colours = read_classes(root / "classes.txt")
    assert names == ["sky", "road", "tree", "car", "traffic light"]
    defaults = palette(5)
    for k, expected in enumerate(EXPECTED_COLOURS):
        assert colours[k].tolist() == (expected if expected is not None else defaults[k].tolist())


def test_folder_pairs_masks_and_ignore_value(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data")
    train = build_dataset("folder", "train", root)
    assert len(train) == 4 and train.num_classes == 5
    assert [p.suffix for p in train.images] == [".png", ".jpg", ".png", ".jpg"]
    _, labels = scene(0)
    image, mask = train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert torch.equal(mask, torch.from_numpy(labels.astype(np.int64)))  # 255 stays the ignore id
    # another ignore value: 200 is ignored, 255 is then a value out of range (refused by the check)
    Image.fromarray(np.where(labels == 255, 200, labels).astype(np.uint8)).save(train.masks[0])
    other = build_dataset("folder", "train", root, ignore_value=200)
    assert torch.equal(other[0][1], torch.from_numpy(labels.astype(np.int64)))
    report = check_dataset(other)  # the other masks still mark their 4 corner pixels 255
    assert {p.path for p in report.problems} == set(other.masks[1:])
    assert all(p.detail.startswith("value 255 (4 px); allowed: 0..4, 200") for p in report.problems)
    with pytest.raises(ValueError, match="ignore value 3"):
        build_dataset("folder", "train", root, ignore_value=3)


def test_palette_png_masks_are_read_as_indices(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data", train=2, val=1)
    _, labels = scene(0)
    mask = Image.fromarray(labels)
    mask.putpalette(np.repeat(np.arange(256, dtype=np.uint8)[::-1, None], 3, axis=1).reshape(-1).tolist())
    assert mask.mode == "P"
    train = build_dataset("folder", "train", root)
    mask.save(train.masks[0])
    assert torch.equal(train[0][1], torch.from_numpy(labels.astype(np.int64)))


def test_seeded_split_without_val_folder(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data", train=8, val=2, val_folder=False)
    train, val = build_dataset("folder", "train", root), build_dataset("folder", "val", root)
    assert len(val) == 2 and len(train) == 8  # 0.2 of 10
    assert not set(train.images) & set(val.images)
    assert sorted(train.images + val.images) == sorted((root / "images" / "train").iterdir())
    assert build_dataset("folder", "val", root).images == val.images  # the same split every time
    assert len(build_dataset("folder", "val", root, val_fraction=0.5)) == 5
    (root / "splits").mkdir()
    (root / "splits" / "val.txt").write_text("train_003\ntrain_007.jpg\n")
    listed = build_dataset("folder", "val", root)
    assert [p.stem for p in listed.images] == ["train_003", "train_007"]


def test_cityscapes_fixture_keeps_the_train_ids(tmp_path: Path) -> None:
    labels = np.array([[0, 1, 2, 18], [255, 7, 11, 13], [5, 5, 255, 17]], dtype=np.uint8)
    images = make_cityscapes(tmp_path / "cityscapes", labels)
    dataset = build_dataset("cityscapes", "train", tmp_path / "cityscapes")
    assert dataset.classes == CITYSCAPES_CLASSES and dataset.num_classes == 19
    assert dataset.images == images
    assert torch.equal(dataset[0][1], torch.from_numpy(labels.astype(np.int64)))
    assert torch.equal(dataset[1][1], torch.from_numpy(labels[:, ::-1].astype(np.int64)))
    assert int(dataset[0][1][1, 0]) == IGNORE_INDEX


def _official_five_class_init(tmp_path: Path):
    meta, _ = load_fixture("encnet_jpu_r50")
    official = official_checkpoint(meta)
    path = tmp_path / "official.pth"
    torch.save(official, path)
    converted, _ = convert_official_state_dict(official["state_dict"], "encnet")
    torch.manual_seed(5)
    model = build_model("encnet", backbone="resnet50s", upsampling="jpu", num_classes=5)
    torch.manual_seed(5)
    fresh = build_model("encnet", backbone="resnet50s", upsampling="jpu", num_classes=5).state_dict()
    return path, converted, model, fresh


@pytest.mark.parametrize("form", ["official", "converted"])
def test_init_from_official_checkpoint_to_five_classes(tmp_path: Path, form: str) -> None:
    path, converted, model, fresh = _official_five_class_init(tmp_path)
    if form == "converted":  # what `fastfcn convert` writes: a fastfcn checkpoint of the 59-class model
        official = torch.load(path, map_location="cpu", weights_only=True)
        path = save_checkpoint(load_official(official, head="encnet", backbone="resnet50s"), tmp_path / "conv.pth")
    report = init_from_checkpoint(model, path)
    state = model.state_dict()
    classifiers = {"head.classifier.1.weight", "head.classifier.1.bias", "aux_head.4.weight", "aux_head.4.bias",
                   "head.context.se_classifier.weight", "head.context.se_classifier.bias"}
    assert set(report.not_loaded) == classifiers
    assert set(report.loaded) == set(state) - classifiers
    for key in state:
        if key.startswith(("backbone.", "upsample.")) or key in report.loaded:
            assert torch.equal(state[key], converted[key]), key
        else:
            assert torch.equal(state[key], fresh[key]), key  # the fresh initialisation, not the checkpoint's
    backbone_and_jpu = {k for k in state if k.startswith(("backbone.", "upsample."))}
    assert len(backbone_and_jpu) > 300 and backbone_and_jpu <= set(report.loaded)
    assert "shape 59x512x1x1 in the checkpoint, 5x512x1x1 here" in report.not_loaded["head.classifier.1.weight"]


def test_init_refuses_a_checkpoint_of_another_backbone(tmp_path: Path) -> None:
    path, _, _, _ = _official_five_class_init(tmp_path)
    small = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=5, jpu_width=16)
    with pytest.raises(ValueError, match=r"of the backbone's \d+ tensors do not fit this model.*--backbone resnet50s"):
        init_from_checkpoint(small, path)


def _log_epochs(out: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()]


def test_folder_dataset_trains_resumes_evaluates_and_predicts(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data")
    out = tmp_path / "run"
    first = run_fastfcn("train", "--dataset", "folder", "--root", str(root), *SMOKE, "--epochs", "2",
                        "--stop-after-epochs", "1", "--out-dir", str(out))
    assert first.returncode == 0, first.stderr
    assert _log_epochs(out) == [1]
    resumed = run_fastfcn("train", "--resume", "--out-dir", str(out), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert _log_epochs(out) == [1, 2]
    ckpt = torch.load(out / "last.pth", map_location="cpu", weights_only=True)
    assert ckpt["classes"] == ["sky", "road", "tree", "car", "traffic light"]
    colours = read_classes(root / "classes.txt")[1]
    assert ckpt["palette"] == colours.tolist()

    evaluated = run_fastfcn("eval", "--checkpoint", str(out / "last.pth"), "--runtime", "torch", "--no-progress",
                            "--out", str(tmp_path / "metrics.json"))
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["dataset"] == "folder" and metrics["images"] == 2
    for name in ("sky", "road", "tree", "car", "traffic light"):  # per class, by the dataset's names
        assert any(line.split()[:-1] == name.split() for line in evaluated.stdout.splitlines()), evaluated.stdout

    predicted = run_fastfcn("predict", str(root / "images" / "val"), "--checkpoint", str(out / "last.pth"),
                            "--out", str(tmp_path / "pred"), "--runtime", "torch", "--legend", "--no-progress")
    assert predicted.returncode == 0, predicted.stderr
    mask = Image.open(tmp_path / "pred" / "val" / "val_000.png_mask.png")
    assert mask.mode == "P"
    assert np.array_equal(np.array(mask.getpalette()[:15]).reshape(5, 3), colours)
    legend = Image.open(tmp_path / "pred" / "legend.png")
    assert legend.size[1] == 5 * 24
    assert tuple(np.asarray(legend.convert("RGB"))[12, 12]) == tuple(colours[0])  # row 0's swatch: sky's colour


def test_train_init_records_what_was_loaded(tmp_path: Path) -> None:
    root = make_folder_dataset(tmp_path / "data", train=2, val=1)
    base = tmp_path / "base"
    trained = run_fastfcn("train", "--dataset", "folder", "--root", str(root), *SMOKE, "--iterations", "1",
                          "--out-dir", str(base))
    assert trained.returncode == 0, trained.stderr
    three = make_folder_dataset(tmp_path / "three", train=2, val=1, classes=[("a", ""), ("b", ""), ("c", "")])
    out = tmp_path / "tuned"
    tuned = run_fastfcn("train", "--dataset", "folder", "--root", str(three), "--init", str(base / "last.pth"),
                        *SMOKE, "--iterations", "1", "--out-dir", str(out))
    assert tuned.returncode == 0, tuned.stderr
    record = json.loads((out / "config.json").read_text())["extra"]["init"]
    assert set(record["not_loaded"]) == {"head.classifier.1.weight", "head.classifier.1.bias", "aux_head.4.weight",
                                         "aux_head.4.bias", "head.context.se_classifier.weight",
                                         "head.context.se_classifier.bias"}
    # on stdout, before the run's "done" line: a notebook shows stderr apart, after all of stdout
    out_text = tuned.stdout
    assert "head.classifier.1.weight" in out_text and f"loaded {len(record['loaded'])} of" in out_text
    assert out_text.index("--init: --head") < out_text.index("loaded ") < out_text.index("done:")
