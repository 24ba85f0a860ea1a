"""The paper's configurations and reported numbers, as data (Wu et al., 2019, arXiv:1903.11816).

Chapters put our measurements beside these; every figure here is the paper's (or, where named,
the official implementation's) and is labelled so wherever it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Row", "TABLE1", "TABLE2", "TABLE3", "TABLE3_59", "TABLE4", "TABLE5", "TABLE5_RANK", "OFFICIAL_GMACS",
           "OFFICIAL_CPU_LATENCY", "configurations", "table2_ratio"]


@dataclass(frozen=True)
class Row:
    head: str            # our head name: encnet | aspp | psp
    backbone: str        # resnet50 | resnet101
    upsampling: str      # none | bilinear | fpn | jpu
    output_stride: int
    pixacc: float | None = None  # percent
    miou: float | None = None    # percent
    fps: float | None = None     # Titan-Xp, 512x512, mean of 100 runs


# Table 1: Pascal Context val, ResNet-50, single scale, 59 classes without background.
TABLE1: list[Row] = [
    Row("encnet", "resnet50", "none", 8, 78.39, 49.91),
    Row("encnet", "resnet50", "bilinear", 32, 76.10, 46.47),
    Row("encnet", "resnet50", "fpn", 32, 78.16, 49.59),
    Row("encnet", "resnet50", "jpu", 32, 78.98, 51.05),
    Row("aspp", "resnet50", "none", 8, 78.27, 49.19),
    Row("aspp", "resnet50", "jpu", 32, 78.79, 50.07),
    Row("psp", "resnet50", "none", 8, 78.60, 50.58),
    Row("psp", "resnet50", "jpu", 32, 78.91, 50.89),
]

# Table 2: FPS on a Titan-Xp GPU, 512x512 input, averaged over 100 runs.
TABLE2: list[Row] = [
    Row("encnet", "resnet50", "none", 8, fps=18.77),
    Row("encnet", "resnet50", "bilinear", 32, fps=45.67),
    Row("encnet", "resnet50", "fpn", 32, fps=37.87),
    Row("encnet", "resnet50", "jpu", 32, fps=37.56),
    Row("aspp", "resnet50", "none", 8, fps=15.99),
    Row("aspp", "resnet50", "jpu", 32, fps=20.67),
    Row("psp", "resnet50", "none", 8, fps=18.08),
    Row("psp", "resnet50", "jpu", 32, fps=28.48),
    Row("encnet", "resnet101", "none", 8, fps=10.51),
    Row("encnet", "resnet101", "bilinear", 32, fps=35.20),
    Row("encnet", "resnet101", "fpn", 32, fps=32.40),
    Row("encnet", "resnet101", "jpu", 32, fps=32.02),
    Row("aspp", "resnet101", "none", 8, fps=10.46),
    Row("aspp", "resnet101", "jpu", 32, fps=18.08),
    Row("psp", "resnet101", "none", 8, fps=11.36),
    Row("psp", "resnet101", "jpu", 32, fps=23.87),
]

# Table 3: Pascal Context val, multi-scale, 60 classes with background (mIoU %).
TABLE3 = {"EncNet+JPU ResNet-50": 51.2, "EncNet+JPU ResNet-101": 53.1, "EncNet ResNet-101": 51.7}
# Section 4.3: the same models on 59 classes without background, multi-scale (mIoU %).
TABLE3_59 = {"EncNet+JPU ResNet-50": 52.10, "EncNet+JPU ResNet-101": 54.03}

# Table 4: ADE20K val (pixAcc %, mIoU %).
TABLE4 = {
    "EncNet ResNet-50": (79.73, 41.11),
    "EncNet ResNet-101": (81.69, 44.65),
    "EncNet+JPU ResNet-50": (80.39, 42.75),
    "EncNet+JPU ResNet-101": (80.99, 44.34),
}

# Table 5: ADE20K test set, Final Score (the evaluation server's metric: the mean of pixAcc and mIoU, as a
# fraction). The first two are the 1st and 2nd entries of the COCO-Place challenge 2017, not single models
# (the paper's "Single Model" column marks them with a cross); the others are single models on the backbone
# named. "EncNet+JPU ResNet-101" is the paper's "Ours".
TABLE5 = {
    "CASIA_IVA_JD": 0.5547,
    "WinterIsComing": 0.5544,
    "PSPNet ResNet-269": 0.5538,
    "EncNet ResNet-101": 0.5567,
    "EncNet+JPU ResNet-101": 0.5584,
}
# the challenge ranks Table 5 prints (the others are listed unranked, "-")
TABLE5_RANK = {"CASIA_IVA_JD": 1, "WinterIsComing": 2}

# Not in the paper: GMACs of the official implementation at 512x512 with the aux head (deep-stem
# backbones), as measured by the project; used to check our counts.
OFFICIAL_GMACS = {
    ("encnet", "resnet50", "jpu"): 66.4,
    ("encnet", "resnet50", "none"): 156.3,
    ("encnet", "resnet101", "jpu"): 85.8,
    ("encnet", "resnet101", "none"): 233.9,
}

# Not in the paper: the official implementation's CPU latency (s, median of 5, 2 cores, fp32 eager,
# batch 1, 512x512, aux head, torch 2.13), the targets of our own benchmark.
OFFICIAL_CPU_LATENCY = {
    ("encnet", "resnet50"): {"jpu": 0.96, "none": 1.50},
    ("aspp", "resnet50"): {"jpu": 1.20, "none": 1.41},
    ("psp", "resnet50"): {"jpu": 1.25, "none": 1.46},
    ("encnet", "resnet101"): {"jpu": 1.09, "none": 1.91},
    ("aspp", "resnet101"): {"jpu": 1.22, "none": 1.96},
    ("psp", "resnet101"): {"jpu": 1.34, "none": 2.05},
}


def configurations(table: list[Row] = TABLE2) -> list[dict]:
    """``build_model`` keyword arguments for each row of a table."""
    return [{"head": r.head, "backbone": r.backbone, "upsampling": r.upsampling} for r in table]


def table2_ratio(head: str, backbone: str, upsampling: str = "jpu") -> float:
    """The paper's speed-up of ``upsampling`` over the dilated baseline (FPS ratio)."""
    fps = {(r.head, r.backbone, r.upsampling): r.fps for r in TABLE2}
    return fps[(head, backbone, upsampling)] / fps[(head, backbone, "none")]
