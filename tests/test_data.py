"""fastfcn.data: procedural scenes, ADE20K / Pascal Context loaders on tiny fixtures, the Pascal Context
preparation, RLE, transforms (alignment, crop, flip, determinism), palette."""

from __future__ import annotations

import json
import runpy
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from fastfcn.data import (
    ADE20K_CLASSES,
    IGNORE_INDEX,
    PCONTEXT60_CLASSES,
    PCONTEXT_CLASSES,
    DatasetNotFoundError,
    EvalTransform,
    ProceduralScenes,
    TrainTransform,
    build_dataset,
    colorize,
    denormalize,
    palette,
    rle,
)
from fastfcn.data.check import check_dataset
from fastfcn.data.pcontext_prepare import prepare_pcontext
from fastfcn.data.scene import BALL, BALLOON, GRASS, POLE, SKY, WALL
from fastfcn.data.transforms import MEAN_UINT8, normalize

REPO = Path(__file__).resolve().parents[1]


def erode(mask: torch.Tensor, k: int) -> torch.Tensor:
    """Binary erosion of a bool [H, W] mask by a k x k square (pixels outside count as set)."""
    x = (~mask).float()[None, None]
    return F.max_pool2d(F.pad(x, [k // 2] * 4, value=0.0), k, stride=1)[0, 0] == 0


def dilate(mask: torch.Tensor, k: int) -> torch.Tensor:
    return F.max_pool2d(mask.float()[None, None], k, stride=1, padding=k // 2)[0, 0] > 0


# ---------------------------------------------------------------------------------------------- procedural


def test_procedural_is_deterministic_and_varied():
    a = ProceduralScenes("train", num_images=4, image_size=96, seed=0)
    b = ProceduralScenes("train", num_images=4, image_size=96, seed=0)
    for i in range(4):
        (ia, ma), (ib, mb) = a[i], b[i]
        assert torch.equal(ia, ib) and torch.equal(ma, mb)
    assert not torch.equal(a[0][0], a[1][0])
    assert not torch.equal(a[0][0], ProceduralScenes("train", 4, 96, seed=1)[0][0])
    assert not torch.equal(a[0][0], ProceduralScenes("val", 4, 96, seed=0)[0][0])
    # an image does not depend on the length of the dataset or on what was generated before
    assert torch.equal(ProceduralScenes("train", 100, 96)[3][0], a[3][0])
    assert torch.equal(a[-1][0], a[3][0])
    with pytest.raises(IndexError):
        a[4]


def test_procedural_split_drawn_in_parallel_is_the_split_drawn_one_by_one(tmp_path, monkeypatch):
    import fastfcn.data.procedural as procedural

    # 5 scenes, 2 per process: the parallel path with a short last chunk
    monkeypatch.setattr(procedural, "PARALLEL_DRAW_MIN", 2)
    monkeypatch.setattr(procedural, "DRAW_CHUNK", 2)
    monkeypatch.setattr(procedural, "usable_cpus", lambda: 2)
    kept = ProceduralScenes("val", 5, 40, seed=3, cache_dir=tmp_path)
    drawn = ProceduralScenes("val", 5, 40, seed=3)
    for i in range(5):
        for a, b in zip(kept.generate(i), drawn.generate(i), strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    assert kept.cache_file.is_file()


@pytest.mark.parametrize("size", [64, (97, 131), (33, 200), (150, 41)])
def test_procedural_sizes_and_types(size):
    ds = ProceduralScenes("val", num_images=2, image_size=size)
    h, w = (size, size) if isinstance(size, int) else size
    image, mask = ds[1]
    assert image.dtype == torch.uint8 and image.shape == (3, h, w)
    assert mask.dtype == torch.int64 and mask.shape == (h, w)
    assert 0 <= int(mask.min()) and int(mask.max()) < ds.num_classes
    assert ds.num_classes == len(ds.classes) == 8 and ds.ignore_index == IGNORE_INDEX == 255
    assert ds.name == "procedural"


def test_procedural_all_classes_appear_and_images_are_textured():
    ds = ProceduralScenes("train", num_images=50, image_size=80)
    present = torch.zeros(ds.num_classes, dtype=torch.long)
    for i in range(len(ds)):
        image, mask = ds[i]
        present += torch.bincount(mask.flatten(), minlength=ds.num_classes) > 0
        # not flat colour: every stuff region has texture and noise
        for cls in (SKY, GRASS):
            pixels = image.permute(1, 2, 0)[mask == cls].float()
            if len(pixels) > 50:
                assert pixels.std(0).max() > 3.0
    assert (present >= 5).all(), dict(zip(ds.classes, present.tolist(), strict=True))
    assert present[SKY] == present[GRASS] == 50


def test_thin_structures_are_3_to_6_px_wide_at_128_and_scale_with_size():
    def survival(size: int, k: int) -> float:
        ds = ProceduralScenes("train", num_images=12, image_size=size, seed=3)
        kept = total = 0
        for i in range(len(ds)):
            pole = ds[i][1] == POLE
            total += int(pole.sum())
            kept += int(erode(pole, k).sum())
        assert total > 0
        return kept / total

    assert survival(128, 3) > 0.25  # at least 3 px wide: the centre line survives a 3x3 erosion
    assert survival(128, 9) < 0.03  # at most ~6 px: (almost) nothing survives a 9x9 erosion (crossings aside)
    # twice the image, twice the width: a 5x5 erosion at 256 px removes what a 3x3 one removes at 128 px
    assert abs(survival(256, 5) - survival(128, 3)) < 0.1


def test_ball_and_balloon_differ_only_by_context():
    ds = ProceduralScenes("train", num_images=40, image_size=128, seed=5)
    around = {BALL: torch.zeros(3), BALLOON: torch.zeros(3)}  # counts of sky / grass / wall around each class
    colour = {BALL: [], BALLOON: []}
    for i in range(len(ds)):
        image, mask = ds[i]
        for cls in (BALL, BALLOON):
            inside = mask == cls
            if inside.any():
                ring = dilate(inside, 5) & ~inside
                around[cls] += torch.stack([(mask[ring] == c).sum() for c in (SKY, GRASS, WALL)]).float()
                colour[cls].append(image.permute(1, 2, 0)[inside].float().mean(0))
    sky_fraction = {c: float(v[0] / v.sum()) for c, v in around.items()}
    assert sky_fraction[BALLOON] > 0.97 and sky_fraction[BALL] < 0.03, sky_fraction
    # the same appearance: mean colours drawn from the same distribution
    m_ball, m_balloon = torch.stack(colour[BALL]).mean(0), torch.stack(colour[BALLOON]).mean(0)
    assert (m_ball - m_balloon).abs().max() < 40, (m_ball, m_balloon)


def test_procedural_generation_is_fast():
    ds = ProceduralScenes("train", num_images=40, image_size=128)
    ds[0]
    start = time.process_time()
    for i in range(len(ds)):
        ds[i]
    per_image = (time.process_time() - start) / len(ds)
    assert per_image < 0.03, f"{per_image * 1e3:.1f} ms CPU per 128x128 image"  # about 3 ms when unloaded


# ----------------------------------------------------------------------------------------- build_dataset


def test_build_dataset_names_and_kwargs():
    ds = build_dataset("procedural", "val", num_images=3, image_size=32, transform=EvalTransform())
    image, mask = ds[0]
    assert image.dtype == torch.float32 and image.shape == (3, 32, 32) and mask.dtype == torch.int64
    assert len(build_dataset("procedural")) > 0
    with pytest.raises(ValueError) as err:
        build_dataset("mapillary")
    for choice in ("procedural", "pcontext", "pcontext60", "ade20k", "cityscapes", "folder"):
        assert choice in str(err.value)


# ---------------------------------------------------------------------------------------------- ADE20K


def write_jpg(path: Path, h: int, w: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, quality=90)


def write_png(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint8)).save(path)


def make_ade20k(root: Path) -> dict[str, np.ndarray]:
    base = root / "ADEChallengeData2016"
    raws = {}
    for sub, prefix, n in (("training", "ADE_train", 3), ("validation", "ADE_val", 2)):
        for i in range(n):
            stem = f"{prefix}_{i + 1:08d}"
            h, w = 12 + i, 17 + 2 * i
            raw = np.random.default_rng(i).integers(0, 151, (h, w))
            raw[0, 0], raw[0, 1], raw[0, 2] = 0, 1, 150
            write_jpg(base / "images" / sub / f"{stem}.jpg", h, w, i)
            write_png(base / "annotations" / sub / f"{stem}.png", raw)
            raws[stem] = raw
    return raws


def test_ade20k_loader_maps_labels(tmp_path):
    raws = make_ade20k(tmp_path)
    for root in (tmp_path, tmp_path / "ADEChallengeData2016"):  # the data root or the dataset folder itself
        ds = build_dataset("ade20k", "train", root=str(root))
        assert len(ds) == 3 and ds.num_classes == 150 and ds.classes == ADE20K_CLASSES
        assert ds.name == "ade20k" and ds.ignore_index == 255
    val = build_dataset("ade20k", "val", root=tmp_path)
    assert len(val) == 2
    image, mask = val[1]
    raw = raws["ADE_val_00000002"]
    assert image.dtype == torch.uint8 and image.shape == (3, *raw.shape)
    assert mask.dtype == torch.int64 and mask.shape == raw.shape
    expected = np.where(raw == 0, 255, raw - 1)
    assert np.array_equal(mask.numpy(), expected)
    assert mask[0, 0] == 255 and mask[0, 1] == 0 and mask[0, 2] == 149
    assert len(build_dataset("ade20k", "trainval", root=tmp_path)) == 5
    assert len(build_dataset("ade20k", "train", root=tmp_path, max_images=2)) == 2
    x, m = build_dataset("ade20k", "train", root=tmp_path, transform=TrainTransform(8))[0]
    assert x.shape == (3, 8, 8) and m.shape == (8, 8)


def test_ade20k_missing_gives_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("ade20k", "train", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "ADEChallengeData2016") in msg and "ADEChallengeData2016.zip" in msg
    assert "http://data.csail.mit.edu" in msg

    make_ade20k(tmp_path)
    missing_dir = tmp_path / "ADEChallengeData2016" / "annotations" / "validation"
    for p in missing_dir.iterdir():
        p.unlink()
    missing_dir.rmdir()
    with pytest.raises(FileNotFoundError) as err:  # DatasetNotFoundError is a FileNotFoundError
        build_dataset("ade20k", "val", root=tmp_path)
    assert str(missing_dir) in str(err.value) and "annotation folder" in str(err.value)

    # an image without its annotation is left out, and named by the up-front check (exit 1 before a run)
    (tmp_path / "ADEChallengeData2016" / "annotations" / "training" / "ADE_train_00000002.png").unlink()
    train = build_dataset("ade20k", "train", root=tmp_path)
    image = tmp_path / "ADEChallengeData2016" / "images" / "training" / "ADE_train_00000002.jpg"
    assert image not in train.images and [p for _, p, _ in train.listing_problems] == [image]
    assert "ADE_train_00000002.png" in check_dataset(train).describe()


# ------------------------------------------------------------------------------------- RLE and Pascal Context


def test_rle_matches_the_coco_format():
    # reference encodings made with pycocotools.mask.encode (not a dependency; the vectors are facts)
    m = np.zeros((6, 7), dtype=bool)
    m[1:4, 2:6] = True
    m[5, :] = True
    assert rle.encode(m) == {"size": [6, 7], "counts": "5150L20N020N020N020N40"}
    assert np.array_equal(rle.decode({"size": [6, 7], "counts": "5150L20N020N020N020N40"}), m)
    big = np.zeros((40, 50), dtype=bool)
    big[3:37, 5:45] = True
    big[10:20, 20:30] = False
    ref = "[6R160000000000000000000000000000UO4:LF4:LF4:LF4:LF4:LF4:LF4:LF4:LF4:LF4:La00000000000000000000000000000U6"
    assert rle.encode(big)["counts"] == ref
    assert np.array_equal(rle.decode({"size": [40, 50], "counts": ref}), big)
    rng = np.random.default_rng(0)
    for _ in range(50):
        h, w = rng.integers(1, 25, 2)
        mask = rng.random((h, w)) < rng.random()
        for compressed in (True, False):
            assert np.array_equal(rle.decode(rle.encode(mask, compressed)), mask)
    with pytest.raises(ValueError):
        rle.decode({"size": [3, 3], "counts": [4, 4]})


IMAGES = [  # (file stem, phase, height, width)
    ("2008_000002", "train", 10, 14),
    ("2008_000003", "train", 9, 11),
    ("2008_000007", "val", 12, 8),
]


def make_pcontext_raw(root: Path) -> dict[str, np.ndarray]:
    """VOC2010 JPEGs + a tiny trainval_merged.json in the Detail structure; returns the expected PNG values."""
    voc = root / "VOCdevkit" / "VOC2010"
    images, annos, expected = [], [], {}
    ann_id = 0
    for k, (stem, phase, h, w) in enumerate(IMAGES):
        write_jpg(voc / "JPEGImages" / f"{stem}.jpg", h, w, k)
        image_id = int(stem.replace("_", ""))
        images.append({"image_id": image_id, "file_name": f"{stem}.jpg", "height": h, "width": w, "phase": phase})
        out = np.zeros((h, w), dtype=np.uint8)
        regions = [  # (category id, region, form): later annotations paint over earlier ones
            (360, (slice(0, h // 2), slice(None)), "compressed"),   # sky -> 47
            (1, (slice(h // 2, None), slice(0, w // 2)), "list"),    # accordion: not in the 59 -> background 0
            (2, (slice(2, 5), slice(3, 7)), "compressed"),           # aeroplane -> 1, over the sky
            (458, (slice(h - 3, None), slice(w - 4, None)), "polygon"),  # wood -> 59
        ]
        for cid, region, form in regions:
            m = np.zeros((h, w), dtype=bool)
            m[region] = True
            if form == "polygon":
                ys, xs = np.nonzero(m)
                x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
                seg = [[float(x0), float(y0), float(x1), float(y0), float(x1), float(y1), float(x0), float(y1)]]
            else:
                seg = rle.encode(m, compressed=form == "compressed")
            annos.append({"id": ann_id, "image_id": image_id, "category_id": cid, "segmentation": seg})
            ann_id += 1
            out[m] = {360: 47, 1: 0, 2: 1, 458: 59}[cid]
        expected[stem] = out
    categories = [{"category_id": cid, "name": name}
                  for cid, name in [(1, "accordion"), (2, "aeroplane"), (360, "sky"), (458, "wood")]]
    data = {"info": {}, "images": images, "annos_segmentation": annos, "categories": categories, "parts": [],
            "annos_occlusion": [], "annos_boundary": [], "annos_joints": []}
    (voc / "trainval_merged.json").write_text(json.dumps(data))
    return expected


def test_pcontext_class_tables():
    assert len(PCONTEXT_CLASSES) == 59 and len(PCONTEXT60_CLASSES) == 60
    assert PCONTEXT60_CLASSES[0] == "background" and PCONTEXT60_CLASSES[1:] == PCONTEXT_CLASSES
    assert PCONTEXT_CLASSES[0] == "aeroplane" and PCONTEXT_CLASSES[46] == "sky" and PCONTEXT_CLASSES[58] == "wood"


def test_prepare_pcontext_script_and_loaders(tmp_path, capsys):
    expected = make_pcontext_raw(tmp_path)
    # run the script itself (in this process: a fresh interpreter would spend seconds importing torch)
    argv = sys.argv
    try:
        sys.argv = ["prepare_pcontext.py", "--root", str(tmp_path), "--quiet"]
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(REPO / "data" / "prepare_pcontext.py"), run_name="__main__")
    finally:
        sys.argv = argv
    assert done.value.code == 0
    assert "train: 2 images, val: 1 images" in capsys.readouterr().out
    voc = tmp_path / "VOCdevkit" / "VOC2010"
    assert (voc / "ImageSets" / "SegmentationContext" / "train.txt").read_text().split() == \
        ["2008_000002", "2008_000003"]
    assert (voc / "ImageSets" / "SegmentationContext" / "val.txt").read_text().split() == ["2008_000007"]
    for stem, values in expected.items():
        with Image.open(voc / "SegmentationClassContext" / f"{stem}.png") as im:
            assert im.mode == "L"
            assert np.array_equal(np.asarray(im), values), stem

    # a second run skips what is there; the function form reports it
    stats = prepare_pcontext(tmp_path, progress=False)
    assert stats == {"train": 2, "val": 1, "written": 0, "skipped": 3, "missing_images": 0}

    p59 = build_dataset("pcontext", "train", root=tmp_path)
    p60 = build_dataset("pcontext60", "train", root=str(tmp_path))
    assert (p59.name, p59.num_classes, p60.name, p60.num_classes) == ("pcontext", 59, "pcontext60", 60)
    assert len(p59) == len(p60) == 2 and p59.ignore_index == p60.ignore_index == 255
    for i, stem in enumerate(["2008_000002", "2008_000003"]):
        raw = torch.from_numpy(expected[stem].astype(np.int64))
        image59, mask59 = p59[i]
        image60, mask60 = p60[i]
        assert image59.dtype == torch.uint8 and image59.shape == (3, *raw.shape) and torch.equal(image59, image60)
        assert mask59.dtype == mask60.dtype == torch.int64
        assert torch.equal(mask60, raw)  # 60 classes: background kept as class 0
        assert torch.equal(mask59, torch.where(raw == 0, 255, raw - 1))  # 59: background ignored, k -> k-1
        assert p60.classes[int(raw[0, 0])] == "sky" and p59.classes[int(mask59[0, 0])] == "sky"
    val = build_dataset("pcontext", "val", root=voc)  # root may be the VOC2010 folder itself
    assert len(val) == 1 and val[0][1].shape == (12, 8)
    assert len(build_dataset("pcontext60", "trainval", root=tmp_path)) == 3


def test_pcontext_missing_gives_clear_error(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("pcontext", "train", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "VOCdevkit" / "VOC2010" / "JPEGImages") in msg
    assert "VOCtrainval_03-May-2010.tar" in msg and "trainval_merged.json" in msg and "prepare_pcontext.py" in msg

    make_pcontext_raw(tmp_path)  # images and JSON, but not prepared yet
    with pytest.raises(DatasetNotFoundError) as err:
        build_dataset("pcontext60", "val", root=tmp_path)
    assert "SegmentationClassContext" in str(err.value) and "prepare_pcontext.py" in str(err.value)

    (tmp_path / "VOCdevkit" / "VOC2010" / "trainval_merged.json").unlink()
    with pytest.raises(DatasetNotFoundError, match="trainval_merged.json"):
        prepare_pcontext(tmp_path, progress=False)


# ------------------------------------------------------------------------------------------------ transforms

COLOURS = torch.tensor(palette(8).astype(np.int64))


def coded_pair(h: int = 60, w: int = 84, cell: int = 12, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Blocks of random labels; each pixel's colour is its label's palette colour."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 8, (h // cell + 1, w // cell + 1), generator=g)
    mask = labels.repeat_interleave(cell, 0).repeat_interleave(cell, 1)[:h, :w]
    mask[:3, :5] = IGNORE_INDEX  # an ignored corner must stay ignored
    image = COLOURS[mask.clamp(max=7)].permute(2, 0, 1).to(torch.uint8)
    return image, mask


@pytest.mark.parametrize("base_size", [None, 100])
def test_train_transform_keeps_image_and_mask_aligned(base_size):
    image, mask = coded_pair()
    transform = TrainTransform(crop_size=48, base_size=base_size)
    saw_padding = False
    for seed in range(25):
        torch.manual_seed(seed)
        x, m = transform(image, mask)
        assert x.dtype == torch.float32 and x.shape == (3, 48, 48)
        assert m.dtype == torch.int64 and m.shape == (48, 48)
        assert type(x) is torch.Tensor and type(m) is torch.Tensor
        assert set(m.unique().tolist()) <= set(range(8)) | {IGNORE_INDEX}
        rgb = denormalize(x).long()
        # pixels whose 5x5 neighbourhood has one label: the colour is that label's colour (the crop's 2-px
        # border is left out: its neighbours outside the crop are unknown)
        labelled = m != IGNORE_INDEX
        uniform = F.max_pool2d(m[None, None].float(), 5, 1, 2) == -F.max_pool2d(-m[None, None].float(), 5, 1, 2)
        uniform[..., :2, :] = uniform[..., -2:, :] = uniform[..., :2] = uniform[..., -2:] = False
        check = uniform[0, 0] & labelled
        assert check.sum() > 100
        diff = (rgb.permute(1, 2, 0)[check] - COLOURS[m[check]]).abs().max()
        assert diff <= 12, f"seed {seed}: colour/label mismatch {diff}"
        # ignored pixels: padding (the mean colour, i.e. zero after normalisation) or the ignored corner
        ignored = ~labelled & uniform[0, 0]
        if ignored.any():
            grey = rgb.permute(1, 2, 0)[ignored]
            to_mean = (grey - torch.tensor(MEAN_UINT8)).abs().max(1).values
            saw_padding = saw_padding or bool((to_mean <= 2).any())
            to_corner = (grey - COLOURS[7]).abs().max(1).values
            assert (torch.minimum(to_mean, to_corner) <= 12).all()
    assert saw_padding


def test_train_transform_is_deterministic_and_honours_crop_size():
    image, mask = coded_pair(37, 53)
    for crop in (16, 64, (24, 40), (80, 20)):
        t = TrainTransform(crop)
        torch.manual_seed(3)
        a = t(image, mask)
        torch.manual_seed(3)
        b = t(image, mask)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        ch, cw = (crop, crop) if isinstance(crop, int) else crop
        assert a[0].shape == (3, ch, cw) and a[1].shape == (ch, cw)
    g = torch.Generator().manual_seed(0)
    t = TrainTransform(32, generator=g)
    outs = [t(image, mask)[1] for _ in range(5)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])  # random crops/scales differ
    with pytest.raises(ValueError):
        TrainTransform(0)
    with pytest.raises(ValueError):
        TrainTransform(32, scale_range=(2.0, 1.0))


def test_train_transform_flip():
    image, mask = coded_pair(24, 36, cell=6)
    expected_x = normalize(image)
    flips = plain = 0
    for seed in range(20):
        torch.manual_seed(seed)
        x, m = TrainTransform((24, 36), scale_range=(1.0, 1.0), flip=True)(image, mask)
        if torch.equal(m, mask):
            plain += 1
            assert torch.allclose(x, expected_x)
        else:
            flips += 1
            assert torch.equal(m, mask.flip(-1)) and torch.allclose(x, expected_x.flip(-1))
    assert flips > 3 and plain > 3
    for seed in range(5):
        torch.manual_seed(seed)
        _, m = TrainTransform((24, 36), scale_range=(1.0, 1.0), flip=False)(image, mask)
        assert torch.equal(m, mask)


def test_train_transform_scale_range():
    image, mask = coded_pair(40, 60)
    t = TrainTransform(crop_size=200, scale_range=(0.5, 2.0), base_size=100, flip=False)
    long_sides = []
    for seed in range(30):
        torch.manual_seed(seed)
        _, m = t(image, mask)
        rows, cols = (m != IGNORE_INDEX).nonzero(as_tuple=True)
        long_sides.append(int(cols.max()) + 1)  # padding is right/bottom: the image is the top-left block
    assert 50 <= min(long_sides) < 75 and 175 < max(long_sides) <= 200


def test_eval_transform_and_denormalize():
    image, mask = coded_pair(30, 50)
    x, m = EvalTransform()(image, mask)
    assert x.dtype == torch.float32 and x.shape == (3, 30, 50) and torch.equal(m, mask)
    assert abs(float(normalize(torch.tensor(MEAN_UINT8, dtype=torch.uint8).view(3, 1, 1)).abs().max())) < 0.01
    assert (denormalize(x).long() - image.long()).abs().max() <= 1
    batch = torch.stack([x, x])
    assert denormalize(batch).shape == (2, 3, 30, 50)


def test_palette_and_colorize():
    p = palette(150)
    assert p.dtype == np.uint8 and p.shape == (150, 3)
    assert len({tuple(c) for c in p.tolist()}) == 150 and (p.sum(1) > 0).all()
    assert p[0].tolist() == [128, 0, 0]
    mask = torch.tensor([[0, 1], [255, 2]])
    rgb = colorize(mask)
    assert isinstance(rgb, torch.Tensor) and rgb.dtype == torch.uint8 and rgb.shape == (2, 2, 3)
    assert rgb[1, 0].tolist() == [0, 0, 0] and rgb[0, 0].tolist() == p[0].tolist()
    assert isinstance(colorize(mask.numpy()), np.ndarray)
    ds = ProceduralScenes("val", 1, 16)
    assert colorize(ds[0][1], colours=ds.colours).shape == (16, 16, 3)
    assert colorize(torch.zeros(2, 4, 5, dtype=torch.long)).shape == (2, 4, 5, 3)
