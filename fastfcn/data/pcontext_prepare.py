"""Convert VOC2010 + ``trainval_merged.json`` (PASCAL in Detail annotations) into Pascal Context label PNGs.

For every train/val image of the JSON, the class mask is painted from its ``annos_segmentation`` entries in file
order (later ones on top), each pixel holding the original label id (1..459; 0 = unlabelled). The standard
59-class subset is then kept: ids of :data:`PCONTEXT_LABEL_IDS` become 1..59, everything else 0 (background).
Output (next to ``JPEGImages``)::

    SegmentationClassContext/<id>.png          # uint8, 0 = background, 1..59 = PCONTEXT_CLASSES
    ImageSets/SegmentationContext/train.txt    # one image id per line (e.g. 2008_000002)
    ImageSets/SegmentationContext/val.txt

Run it as ``python data/prepare_pcontext.py --root <root>`` (or ``python -m fastfcn.data.pcontext_prepare``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import default_root, missing
from .pcontext import IMAGE_DIR, MASK_DIR, SPLIT_DIR, VOC_DIR
from .pcontext_classes import PCONTEXT_CLASSES, PCONTEXT_LABEL_IDS, label_lut
from .rle import decode_segmentation

__all__ = ["prepare_pcontext", "class_mask", "main"]

JSON_NAME = "trainval_merged.json"


def class_mask(image: dict[str, Any], annotations: Sequence[dict[str, Any]]) -> np.ndarray:
    """Original-label mask ``int32 [height, width]`` of one image from its segmentation annotations."""
    h, w = int(image["height"]), int(image["width"])
    mask = np.zeros((h, w), dtype=np.int32)
    for ann in annotations:
        mask[decode_segmentation(ann["segmentation"], h, w)] = int(ann["category_id"])
    return mask


def _check_names(categories: Sequence[dict[str, Any]]) -> list[str]:
    """Warnings where the JSON's category names disagree with our 59-class table."""
    names = {int(c["category_id"]): str(c.get("name", "")) for c in categories if "category_id" in c}
    warnings = []
    for cid, ours in zip(PCONTEXT_LABEL_IDS, PCONTEXT_CLASSES, strict=True):
        theirs = names.get(cid)
        if theirs is None:
            warnings.append(f"category id {cid} ({ours}) is not in the JSON's categories")
        elif theirs.replace(" ", "").lower() != ours.replace(" ", "").lower():
            warnings.append(f"category id {cid}: JSON name {theirs!r}, expected {ours!r}")
    return warnings


def prepare_pcontext(root: str | Path | None = None, annotation: str | Path | None = None,
                     overwrite: bool = False, limit: int | None = None, progress: bool = True) -> dict[str, int]:
    """Write the label PNGs and split lists; returns ``{"train": n, "val": n, "written": n, "skipped": n,
    "missing_images": n}``. ``limit`` converts only the first N images of each split (for a quick look)."""
    base = Path(root) if root is not None else default_root()
    voc = base if (base / IMAGE_DIR).is_dir() else base / VOC_DIR
    image_dir = voc / IMAGE_DIR
    if not image_dir.is_dir():
        raise missing("pcontext", "VOC2010 image folder", image_dir)
    json_path = Path(annotation) if annotation is not None else voc / JSON_NAME
    if not json_path.is_file():
        raise missing("pcontext", f"annotation file {JSON_NAME}", json_path)

    with open(json_path) as f:
        data = json.load(f)
    for key in ("images", "annos_segmentation"):
        if key not in data:
            raise ValueError(f"{json_path}: no {key!r} entry; is this the PASCAL in Detail trainval_merged.json?")
    for warning in _check_names(data.get("categories", [])):
        print(f"warning: {warning}", file=sys.stderr)

    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ann in data["annos_segmentation"]:
        by_image[ann["image_id"]].append(ann)

    lut = label_lut()
    out_dir, split_dir = voc / MASK_DIR, voc / SPLIT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    split_dir.mkdir(parents=True, exist_ok=True)
    stats = {"train": 0, "val": 0, "written": 0, "skipped": 0, "missing_images": 0}
    for phase in ("train", "val"):
        images = sorted((im for im in data["images"] if im.get("phase") == phase), key=lambda im: im["file_name"])
        if limit is not None:
            images = images[:limit]
        ids: list[str] = []
        iterator: Any = images
        if progress:
            from tqdm import tqdm

            iterator = tqdm(images, desc=f"pcontext {phase}", unit="img")
        for im in iterator:
            stem = Path(im["file_name"]).stem
            if not (image_dir / im["file_name"]).is_file():
                stats["missing_images"] += 1
                continue
            ids.append(stem)
            target = out_dir / f"{stem}.png"
            if target.is_file() and not overwrite:
                stats["skipped"] += 1
                continue
            raw = class_mask(im, by_image.get(im["image_id"], []))
            labels = np.where(raw < len(lut), lut[np.clip(raw, 0, len(lut) - 1)], 0).astype(np.uint8)
            Image.fromarray(labels).save(target)  # uint8 [H, W] -> mode L
            stats["written"] += 1
        (split_dir / f"{phase}.txt").write_text("".join(f"{i}\n" for i in ids))
        stats[phase] = len(ids)
    if stats["missing_images"]:
        print(f"warning: {stats['missing_images']} images of the JSON are not in {image_dir}; left out of the lists",
              file=sys.stderr)
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Make Pascal Context label PNGs (59 classes + background) and train/val lists from "
                    "VOC2010 and trainval_merged.json.")
    parser.add_argument("--root", default=None,
                        help="folder holding VOCdevkit/VOC2010 (default: $FASTFCN_DATA or the repository's data/)")
    parser.add_argument("--json", default=None, help=f"annotation file (default: <VOC2010>/{JSON_NAME})")
    parser.add_argument("--overwrite", action="store_true", help="rewrite label PNGs that already exist")
    parser.add_argument("--limit", type=int, default=None, help="convert only the first N images per split")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    stats = prepare_pcontext(args.root, args.json, overwrite=args.overwrite, limit=args.limit,
                             progress=not args.quiet)
    print(f"train: {stats['train']} images, val: {stats['val']} images "
          f"({stats['written']} label PNGs written, {stats['skipped']} already there)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
