"""Helpful 'dataset not found' messages: what is missing, where to download it, which script prepares it."""

from __future__ import annotations

import os
from pathlib import Path

from .base import DatasetNotFoundError

__all__ = ["ADE20K_URL", "VOC2010_URL", "PCONTEXT_JSON_URL", "PCONTEXT_SITE", "missing", "default_root"]

ADE20K_URL = "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip"
ADE20K_SITE = "http://sceneparsing.csail.mit.edu/"
VOC2010_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2010/VOCtrainval_03-May-2010.tar"
PCONTEXT_JSON_URL = "https://codalabuser.blob.core.windows.net/public/trainval_merged.json"
PCONTEXT_SITE = "https://cs.stanford.edu/~roozbeh/pascal-context/"

_HOWTO = {
    "ade20k": (
        f"Download ADEChallengeData2016.zip (MIT Scene Parsing benchmark, {ADE20K_SITE}):\n"
        f"    {ADE20K_URL}\n"
        "and unzip it into the data root, so that <root>/ADEChallengeData2016/{images,annotations}/"
        "{training,validation}/ exist. No preparation script is needed. See data/README.md."
    ),
    "pcontext": (
        "Pascal Context needs two downloads:\n"
        f"    PASCAL VOC 2010 train/val images: {VOC2010_URL}\n"
        f"    the Pascal Context (PASCAL in Detail) annotations trainval_merged.json: {PCONTEXT_JSON_URL}\n"
        f"    (project page: {PCONTEXT_SITE})\n"
        "Extract the tar into the data root (giving <root>/VOCdevkit/VOC2010/JPEGImages), put trainval_merged.json"
        " into <root>/VOCdevkit/VOC2010/, then run\n"
        "    python data/prepare_pcontext.py --root <root>\n"
        "which writes the label PNGs and the train/val lists. See data/README.md."
    ),
}


def default_root() -> Path:
    """``$FASTFCN_DATA`` if set, else ``data/`` under the current folder (the repository's, from its root)."""
    env = os.environ.get("FASTFCN_DATA")
    return Path(env) if env else Path("data")


def missing(dataset: str, what: str, path: Path | str) -> DatasetNotFoundError:
    """The error to raise when ``path`` (``what``: e.g. 'image folder') of ``dataset`` is not on disk."""
    key = "pcontext" if dataset.startswith("pcontext") else dataset
    return DatasetNotFoundError(f"{dataset}: {what} not found: {path}\n{_HOWTO[key]}")
