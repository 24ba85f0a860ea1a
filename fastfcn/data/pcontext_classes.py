"""The 59-class subset of Pascal Context: its names and its ids among the 459 original (Detail) labels."""

from __future__ import annotations

import numpy as np

__all__ = ["PCONTEXT_CLASSES", "PCONTEXT_LABEL_IDS", "PCONTEXT60_CLASSES", "label_lut"]

# (original label id, name) for the 59 most frequent classes; the ids are the Pascal Context labels.txt ids
# that the standard 59-class protocol keeps. Their order (ascending id = alphabetical) gives classes 1..59.
_SUBSET = [
    (2, "aeroplane"), (9, "bag"), (18, "bed"), (19, "bedclothes"), (22, "bench"), (23, "bicycle"),
    (25, "bird"), (31, "boat"), (33, "book"), (34, "bottle"), (44, "building"), (45, "bus"),
    (46, "cabinet"), (59, "car"), (65, "cat"), (68, "ceiling"), (72, "chair"), (80, "cloth"),
    (85, "computer"), (98, "cow"), (104, "cup"), (105, "curtain"), (113, "dog"), (115, "door"),
    (144, "fence"), (158, "floor"), (159, "flower"), (162, "food"), (187, "grass"), (189, "ground"),
    (207, "horse"), (220, "keyboard"), (232, "light"), (258, "motorbike"), (259, "mountain"),
    (260, "mouse"), (284, "person"), (295, "plant"), (296, "platform"), (308, "pottedplant"),
    (324, "road"), (326, "rock"), (347, "sheep"), (349, "shelves"), (354, "sidewalk"), (355, "sign"),
    (360, "sky"), (366, "snow"), (368, "sofa"), (397, "table"), (415, "track"), (416, "train"),
    (420, "tree"), (424, "truck"), (427, "tvmonitor"), (440, "wall"), (445, "water"), (454, "window"),
    (458, "wood"),
]
assert len(_SUBSET) == 59 and [i for i, _ in _SUBSET] == sorted(i for i, _ in _SUBSET)

PCONTEXT_LABEL_IDS = [i for i, _ in _SUBSET]
PCONTEXT_CLASSES = [n for _, n in _SUBSET]          # "pcontext": 59 classes, background ignored
PCONTEXT60_CLASSES = ["background"] + PCONTEXT_CLASSES  # "pcontext60": background is class 0


def label_lut(max_id: int = 459) -> np.ndarray:
    """``uint8 [max_id + 1]``: original label id -> prepared PNG value (0 background/other, 1..59 the subset)."""
    lut = np.zeros(max(max_id, max(PCONTEXT_LABEL_IDS)) + 1, dtype=np.uint8)
    lut[PCONTEXT_LABEL_IDS] = np.arange(1, 60, dtype=np.uint8)
    return lut
