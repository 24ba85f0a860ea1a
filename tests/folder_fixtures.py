"""Tiny datasets on disk in the real layouts (folder, Cityscapes, Pascal Context, ADE20K), made by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CLASSES = [("sky", "70 130 180"), ("road", "#804080"), ("tree", ""), ("car", "0 0 142"), ("traffic light", "250 170 30")]
EXPECTED_COLOURS = [[70, 130, 180], [128, 64, 128], None, [0, 0, 142], [250, 170, 30]]  # None: the default palette


def scene(seed: int, size: int = 32, num_classes: int = 5, ignore: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """An image whose colour follows its label map (horizontal bands of classes, a few ignored pixels)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), dtype=np.uint8)
    bounds = np.sort(rng.choice(np.arange(1, size), num_classes - 1, replace=False))
    for k, top in enumerate([0, *bounds]):
        labels[top:] = k
    labels[:2, :2] = ignore
    table = np.array([[40 * k + 20, 255 - 45 * k, (90 * k) % 256] for k in range(num_classes)], dtype=np.uint8)
    image = table[np.minimum(labels, num_classes - 1)] + rng.integers(0, 12, (size, size, 3), dtype=np.uint8)
    return image, labels


def make_folder_dataset(root: Path, train: int = 4, val: int = 2, size: int = 32, val_folder: bool = True,
                        classes: list[tuple[str, str]] | None = None) -> Path:
    """DIR/classes.txt, DIR/images/{train,val}/NAME.png|jpg, DIR/masks/{train,val}/NAME.png (mode L)."""
    classes = CLASSES if classes is None else classes
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(f"{name} {colour}".rstrip() + "\n" for name, colour in classes))
    splits = {"train": train, "val": val} if val_folder else {"train": train + val}
    seed = 0
    for split, count in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image, labels = scene(seed, size, len(classes))
            seed += 1
            extension = "jpg" if i % 2 else "png"
            Image.fromarray(image).save(root / "images" / split / f"{split}_{i:03d}.{extension}")
            Image.fromarray(labels).save(root / "masks" / split / f"{split}_{i:03d}.png")
    return root


def run_fastfcn(*args: str, cwd: Path = REPO, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m fastfcn ARGS`` in a real process (one thread)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "fastfcn", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


# the smallest model and smoke-size crops: two 32 px images a batch, about a second an iteration on one thread
SMOKE = ["--backbone", "resnet18_w32", "--jpu-width", "16", "--batch-size", "2", "--crop-size", "32", "--base-size",
         "32", "--workers", "0", "--eval-every", "0", "--no-progress", "--lr", "0.01"]


def make_cityscapes(root: Path, labels: np.ndarray) -> list[Path]:
    """Two frames of aachen in leftImg8bit/train and their *_gtFine_labelTrainIds.png (``labels``, then its flip)."""
    images = []
    for frame, mask in enumerate((labels, labels[:, ::-1])):
        stem = f"aachen_000000_{frame:06d}"
        image_dir, label_dir = root / "leftImg8bit" / "train" / "aachen", root / "gtFine" / "train" / "aachen"
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((*mask.shape, 3), 60 * frame, np.uint8)).save(image_dir / f"{stem}_leftImg8bit.png")
        Image.fromarray(np.ascontiguousarray(mask)).save(label_dir / f"{stem}_gtFine_labelTrainIds.png")
        images.append(image_dir / f"{stem}_leftImg8bit.png")
    return images


def make_pcontext(root: Path, masks: list[np.ndarray]) -> Path:
    """The prepared Pascal Context layout with these label PNGs (16-bit where a value exceeds 255)."""
    voc = root / "VOCdevkit" / "VOC2010"
    for sub in ("JPEGImages", "SegmentationClassContext", "ImageSets/SegmentationContext"):
        (voc / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"2008_{i:06d}" for i in range(len(masks))]
    for name, mask in zip(ids, masks, strict=True):
        Image.fromarray(np.full((*mask.shape, 3), 128, np.uint8)).save(voc / "JPEGImages" / f"{name}.jpg")
        png = Image.fromarray(mask.astype(np.uint16)) if mask.max() > 255 else Image.fromarray(mask.astype(np.uint8))
        png.save(voc / "SegmentationClassContext" / f"{name}.png")
    for split in ("train", "val"):
        (voc / "ImageSets" / "SegmentationContext" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return voc / "SegmentationClassContext" / f"{ids[-1]}.png"


def make_ade20k(root: Path, masks: list[np.ndarray]) -> Path:
    """ADEChallengeData2016/{images,annotations}/{training,validation} with these annotations."""
    base = root / "ADEChallengeData2016"
    last = base
    for sub in ("training", "validation"):
        (base / "images" / sub).mkdir(parents=True, exist_ok=True)
        (base / "annotations" / sub).mkdir(parents=True, exist_ok=True)
        for i, mask in enumerate(masks):
            name = f"ADE_{sub[:5]}_{i:08d}"
            Image.fromarray(np.full((*mask.shape, 3), 90, np.uint8)).save(base / "images" / sub / f"{name}.jpg")
            last = base / "annotations" / sub / f"{name}.png"
            Image.fromarray(mask.astype(np.uint8)).save(last)
    return base / "annotations" / "training" / f"ADE_train_{len(masks) - 1:08d}.png"
