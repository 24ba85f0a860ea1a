"""What others measured: third-party results on the paper's claims, as data, each with its source.

Beside :mod:`fastfcn.paper` (the paper's own numbers), this module holds the numbers that other
people published for the same networks: the largest independent re-implementation (OpenMMLab's
mmsegmentation, ``configs/fastfcn/`` and the dilated baselines it points to), PaddleSeg's
``configs/fastfcn/``, and users' re-runs of the official code reported in wuhuikai/FastFCN's issues.
Every number was read by hand from the source named in its row (repository, path or issue, commit
or date read); none is derived. :func:`claim_statuses` turns them into a status per claim and source,
computed from the numbers, never typed.

The claims, in the words the report uses (:data:`CLAIMS`):

* ``miou``: JPU keeps or improves mIoU: the sign of JPU - dilated per pair trained alike (same
  source, dataset, head, crop and schedule), within the source's own noise where it gives one;
* ``reproduced``: the paper's JPU mIoU reproduces: a re-run of the paper's own setting within
  :data:`MIOU_TOLERANCE` points of the paper's number;
* ``speed``: JPU is faster: frames per second of JPU over those of the dilated model, > 1;
* ``gmacs``: the paper's "reduces the computation complexity by more than three times": the dilated
  model's multiply-accumulates over the JPU model's, > 3;
* ``memory``: JPU needs less memory: the dilated model's peak memory over the JPU model's, > 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from . import paper

__all__ = ["Source", "Result", "Rerun", "Outcome", "ClaimStatus", "SOURCES", "RESULTS", "RERUNS", "CLAIMS",
           "TESTS", "STRONGER", "HOLDS", "PARTLY", "FAILS", "NOT_REPORTED", "STATUSES", "MIOU_TOLERANCE", "status_of", "pairs",
           "outcomes", "paper_outcomes", "claim_statuses", "with_value"]

HOLDS, PARTLY, FAILS, NOT_REPORTED = "holds", "holds in part", "does not hold", "not reported"
STATUSES = (HOLDS, PARTLY, FAILS, NOT_REPORTED)
MIOU_TOLERANCE = 1.0  # points: a re-run this close to the paper's mIoU reproduces it (the report's own tolerance)
READ = "2026-12-03"   # the date every source below was read


@dataclass(frozen=True)
class Source:
    """Where a group of numbers was published: a repository path at a commit, or an issue thread."""

    key: str
    label: str          # how the report names it
    repository: str     # owner/name on GitHub
    where: str          # the path(s) in the repository, or "issue #N"
    commit: str         # the commit read ("" for an issue thread: see ``read``)
    read: str = READ    # the date the numbers were read
    noise: float | None = None  # the source's own run-to-run spread of mIoU (points), where it gives one
    note: str = ""

    def cite(self) -> str:
        at = f" at {self.commit[:10]}" if self.commit else ""
        return f"{self.repository} {self.where}{at} (read {self.read})"


@dataclass(frozen=True)
class Result:
    """One trained model of a source: what it is, how it was trained, and what the source reports for it."""

    source: str          # Source.key
    head: str            # encnet | aspp | psp (the package's head names)
    backbone: str        # as the source names it (R-50-D8, R-50-D32, ResNet50_vd)
    variant: str         # "dilated" (output stride 8) or "jpu"
    dataset: str
    crop: str
    schedule: int        # training iterations
    batch: int           # images per iteration (all GPUs)
    hardware: str
    path: str            # the file of the source that prints the row
    miou: float | None = None       # single scale, %
    miou_ms: float | None = None    # multi-scale + flip, %
    fps: float | None = None        # the source's inference speed column
    memory_gb: float | None = None  # the source's memory column (training, per GPU, for mmsegmentation)
    note: str = ""


@dataclass(frozen=True)
class Rerun:
    """A user's re-run of the paper's own setting with the official code, and the paper's number for it."""

    source: str
    head: str
    backbone: str
    dataset: str
    protocol: str
    hardware: str
    miou: float          # what the user got, %
    paper_miou: float    # the paper's number for the same setting, %
    note: str = ""


MMSEG_BASELINE_NOTE = ("the dilated baselines are in their own folders; the fastfcn README points to them "
                       "(\"can be found in each original repository\"). configs/fastfcn/metafile.yaml@94ebf0a04d: "
                       "batch sizes and 'Training Resources: V100'. docs/en/model_zoo.md@94f9cb4e1d: memory is "
                       "the largest torch.cuda.max_memory_allocated() of the 4 training GPUs; fps the mean of "
                       "tools/benchmark.py over 200 images, forward and post-processing, whole-image inference")
SOURCES: dict[str, Source] = {s.key: s for s in [
    Source("paper", "the paper (Tables 1 and 2)", "arXiv:1903.11816", "Tables 1 and 2", ""),
    Source("mmseg", "mmsegmentation", "open-mmlab/mmsegmentation",
           "configs/fastfcn/README.md (the other files at the commits named in each row and in the remark)",
           "1209a9199f6ebbe88ae126e6a5bbfcb95ba1f0bf", note=MMSEG_BASELINE_NOTE),
    Source("paddleseg", "PaddleSeg", "PaddlePaddle/PaddleSeg", "configs/fastfcn/README.md and "
           "fastfcn_resnet50_os8_ade20k_480x480_120k.yml", "a480fbcb6963acf57c9aeebc598f71118b51bae3",
           note="its FastFCN keeps a dilated backbone (output_stride: 8) under JPU, and it trains no model "
                "without JPU: nothing to pair"),
    Source("issue2", "wuhuikai/FastFCN issue #2", "wuhuikai/FastFCN", "issue #2 (2019-03-30)", "",
           note="the author answered that he got 51.05 in the same environment; the thread is labelled 'bug'"),
    Source("issue18", "wuhuikai/FastFCN issue #18", "wuhuikai/FastFCN", "issue #18 (2019-04-29)", "",
           note="the author answered that the training and testing are the same as his"),
    Source("issue106", "wuhuikai/FastFCN issue #106", "wuhuikai/FastFCN", "issue #106 (2021-09-30)", "",
           note="mmsegmentation's authors: 'we do not find obviously improvement about FPS in our "
                "implementation'; the author: 'the advantage is more significant when using ResNet101'"),
]}

# mmsegmentation: the files, with the commit each was read at (the README of each baseline folder)
_FASTFCN = "configs/fastfcn/README.md@1209a9199f"
_PSP, _ASPP, _ENC = ("configs/pspnet/README.md@02e04cc213", "configs/deeplabv3/README.md@94f9cb4e1d",
                     "configs/encnet/README.md@1caf1388a5")
_V100 = "V100 (metafile.yaml: 'Training Resources: V100')"
_V100_BASE = "V100 (docs/en/model_zoo.md: 'Tesla V100 (32G)'; the baseline's README names none)"
_SAME_NET = "the dilated model's fps and memory from its 40k row (its 80k row prints a dash)"


def _mmseg(head: str, variant: str, dataset: str, schedule: int, miou: float, miou_ms: float,
           fps: float | None = None, memory_gb: float | None = None, note: str = "") -> Result:
    ade = dataset == "ADE20K"
    path = _FASTFCN if variant == "jpu" else {"psp": _PSP, "aspp": _ASPP, "encnet": _ENC}[head]
    return Result("mmseg", head, "R-50-D32" if variant == "jpu" else "R-50-D8", variant, dataset,
                  "512x512" if ade else "512x1024", schedule, 16 if ade else 8,
                  _V100 if variant == "jpu" else _V100_BASE, path, miou, miou_ms, fps, memory_gb, note)


RESULTS: list[Result] = [
    # ADE20K, 80k iterations, 4 GPUs x 4 images
    _mmseg("psp", "dilated", "ADE20K", 80000, 41.13, 41.94, 23.53, 8.5),
    _mmseg("psp", "jpu", "ADE20K", 80000, 41.40, 42.12, 19.21, 8.02),
    _mmseg("aspp", "dilated", "ADE20K", 80000, 42.42, 43.28, 14.76, 8.9),
    _mmseg("aspp", "jpu", "ADE20K", 80000, 41.88, 42.91, 12.06, 8.46),
    _mmseg("encnet", "dilated", "ADE20K", 80000, 39.53, 41.17, 22.81, 10.1),
    _mmseg("encnet", "jpu", "ADE20K", 80000, 40.88, 42.36, 17.23, 9.67),
    # ADE20K, 160k iterations (no speed or memory printed)
    _mmseg("psp", "dilated", "ADE20K", 160000, 42.48, 43.44),
    _mmseg("psp", "jpu", "ADE20K", 160000, 42.63, 43.71),
    _mmseg("aspp", "dilated", "ADE20K", 160000, 42.66, 44.09),
    _mmseg("aspp", "jpu", "ADE20K", 160000, 43.58, 44.92),
    _mmseg("encnet", "dilated", "ADE20K", 160000, 40.10, 41.71),
    _mmseg("encnet", "jpu", "ADE20K", 160000, 42.50, 44.21),
    # Cityscapes, 80k iterations, 4 GPUs x 2 images; the dilated rows' speed and memory from their 40k rows
    _mmseg("psp", "dilated", "Cityscapes", 80000, 78.55, 79.79, 4.07, 6.1, _SAME_NET),
    _mmseg("psp", "jpu", "Cityscapes", 80000, 79.26, 80.86, 4.40, 5.67),
    _mmseg("aspp", "dilated", "Cityscapes", 80000, 79.32, 80.57, 2.57, 6.1, _SAME_NET),
    _mmseg("aspp", "jpu", "Cityscapes", 80000, 79.12, 80.58, 2.64, 5.67),
    _mmseg("encnet", "dilated", "Cityscapes", 80000, 77.94, 79.13, 4.58, 8.6, _SAME_NET),
    _mmseg("encnet", "jpu", "Cityscapes", 80000, 77.97, 79.92, 4.77, 8.15),
    # PaddleSeg: EncNet+JPU on a dilated ResNet50_vd, ADE20K; no model without JPU
    Result("paddleseg", "encnet", "ResNet50_vd (output_stride 8)", "jpu", "ADE20K", "480x480", 120000, 4,
           "not stated", "configs/fastfcn/README.md@a480fbcb69", 43.76, 44.48,
           note="mIoU (flip) 44.11; batch_size 4 per card, the number of cards not stated"),
]

RERUNS: list[Rerun] = [
    Rerun("issue2", "encnet", "ResNet-50", "Pascal Context (59 classes)", "single scale, the repository's script",
          "4x Titan Xp, CUDA 9.0, PyTorch 1.0", 47.85, paper.TABLE1[3].miou,
          note="multi-scale 48.98; pixAcc 77.47"),
    Rerun("issue18", "aspp", "ResNet-50", "Pascal Context (59 classes)", "single scale, the repository's script",
          "4x GeForce 1080, CUDA 9.0, PyTorch 1.0.0", 49.04, paper.TABLE1[5].miou, note="pixAcc 78.68"),
]


@dataclass(frozen=True)
class Outcome:
    """One comparison behind a status: what was compared, the value in words, and whether it meets the claim."""

    what: str
    text: str
    ok: bool | None  # None: not reported
    note: str = ""
    value: float | None = None  # the number compared (points, or a ratio)

    def __str__(self) -> str:
        return f"{self.what}: {self.text}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class ClaimStatus:
    """A claim as one source's numbers decide it."""

    claim: str
    source: str      # Source.key, or a label for this book's runs
    label: str
    outcomes: list[Outcome] = field(default_factory=list)
    cite: str = ""

    @property
    def status(self) -> str:
        return status_of(self.outcomes)

    def as_dict(self) -> dict[str, object]:
        return {"claim": self.claim, "source": self.source, "label": self.label, "status": self.status,
                "outcomes": [str(o) for o in self.outcomes], "cite": self.cite}


def status_of(outcomes: Sequence[Outcome]) -> str:
    """holds (every compared outcome meets the claim), holds in part, does not hold, or not reported."""
    judged = [o.ok for o in outcomes if o.ok is not None]
    if not judged:
        return NOT_REPORTED
    return HOLDS if all(judged) else FAILS if not any(judged) else PARTLY


# claim key -> (the sentence tested, the paper's words and where)
CLAIMS: dict[str, tuple[str, str]] = {
    "miou": ("JPU keeps or improves mIoU", "\"without performance loss\" (Abstract; Table 1)"),
    "reproduced": ("the paper's JPU mIoU reproduces", f"Table 1, within {MIOU_TOLERANCE:g} point"),
    "speed": ("JPU is faster", "\"running 3 times faster\" (Abstract; Table 2)"),
    "gmacs": ("JPU cuts the multiply-accumulates by more than 3 times",
              "\"reduces the computation complexity by more than three times\" (Abstract)"),
    "memory": ("JPU needs less memory", "\"memory footprint [...] reduced by a factor of more than 3\" (Section 1)"),
}
# claim key -> what a status here tests, in symbols; a claim in STRONGER is worded more strongly by the paper
# ("3 times") than the test (> 1): the report judges that figure with the paper's claims in prose
TESTS: dict[str, str] = {
    "miou": "JPU − dilated ≥ 0 points of mIoU, within the source's noise",
    "speed": "frames per second, JPU / dilated > 1",
    "gmacs": "multiply-accumulates, dilated / JPU > 3",
    "memory": "peak memory, dilated / JPU > 1",
}
STRONGER = frozenset({"speed", "memory"})
HEADS = {"encnet": "EncNet", "aspp": "DeepLabV3", "psp": "PSPNet"}


def pairs(results: Sequence[Result], field_name: str, same_schedule: bool) -> list[tuple[Result, Result]]:
    """``(dilated, jpu)`` of one source trained alike and both reporting ``field_name``.

    mIoU pairs need the same schedule; a speed or memory pair only the same network and input
    (the schedule does not change how fast a network runs)."""
    out = []
    for jpu in results:
        if jpu.variant != "jpu" or getattr(jpu, field_name) is None:
            continue
        for dil in results:
            alike = (dil.source, dil.head, dil.dataset, dil.crop) == (jpu.source, jpu.head, jpu.dataset, jpu.crop)
            if (dil.variant == "dilated" and alike and getattr(dil, field_name) is not None
                    and (dil.schedule == jpu.schedule or not same_schedule)):
                out.append((dil, jpu))
                break
    return out


def _label(r: Result, schedule: bool = True) -> str:
    return f"{HEADS[r.head]}, {r.dataset}" + (f" {r.schedule // 1000}k" if schedule else "")


def _miou(results: Sequence[Result], noise: float | None) -> list[Outcome]:
    out = []
    for dil, jpu in pairs(results, "miou", same_schedule=True):
        d = jpu.miou - dil.miou
        out.append(Outcome(_label(dil), f"{d:+.2f} points ({dil.miou:.2f} -> {jpu.miou:.2f})", d >= -(noise or 0.0),
                           f"within the source's noise of {noise:.1f}" if noise and d < 0 else "", d))
    return out


def _ratio(results: Sequence[Result], field_name: str, faster: bool, threshold: float) -> list[Outcome]:
    out = []
    for dil, jpu in pairs(results, field_name, same_schedule=False):
        a, b = getattr(dil, field_name), getattr(jpu, field_name)
        x = b / a if faster else a / b
        what = "fps JPU / dilated" if faster else "memory dilated / JPU"
        out.append(Outcome(_label(dil, schedule=False), f"{x:.2f}x ({what}: {b:g} / {a:g})" if faster else
                           f"{x:.2f}x ({what}: {a:g} / {b:g} GB)", x > threshold, dil.note or jpu.note, x))
    return out


def _reproduced(reruns: Sequence[Rerun]) -> list[Outcome]:
    return [Outcome(f"{HEADS[r.head]}+JPU, {r.backbone}, {r.dataset}",
                    f"{r.miou:.2f} against the paper's {r.paper_miou:.2f} ({r.miou - r.paper_miou:+.2f} points)",
                    abs(r.miou - r.paper_miou) <= MIOU_TOLERANCE, f"{r.hardware}; {r.note}" if r.note else r.hardware,
                    r.miou - r.paper_miou)
            for r in reruns]


def outcomes(claim: str, results: Sequence[Result], reruns: Sequence[Rerun] = (),
             noise: float | None = None) -> list[Outcome]:
    """The outcomes of one source's numbers for ``claim`` (see :data:`CLAIMS`); empty when it reports none."""
    measure: dict[str, Callable[[], list[Outcome]]] = {
        "miou": lambda: _miou(results, noise),
        "reproduced": lambda: _reproduced(reruns),
        "speed": lambda: _ratio(results, "fps", True, 1.0),
        "gmacs": lambda: [],  # no third party prints multiply-accumulates
        "memory": lambda: _ratio(results, "memory_gb", False, 1.0),
    }
    if claim not in measure:
        raise ValueError(f"unknown claim {claim!r}: use one of {', '.join(CLAIMS)}")
    return measure[claim]()


def paper_outcomes(claim: str) -> list[Outcome]:
    """The paper's own numbers for ``claim``: Table 1's JPU - dilated per head, Table 2's speed-ups."""
    if claim == "miou":
        rows = {(r.head, r.upsampling): r.miou for r in paper.TABLE1}
        return [Outcome(f"{HEADS[h]}, Pascal Context", f"{rows[h, 'jpu'] - rows[h, 'none']:+.2f} points "
                        f"({rows[h, 'none']:.2f} -> {rows[h, 'jpu']:.2f})", rows[h, "jpu"] >= rows[h, "none"],
                        value=rows[h, "jpu"] - rows[h, "none"])
                for h in HEADS]
    if claim == "speed":
        return [Outcome(f"{HEADS[r.head]}, {'ResNet-50' if r.backbone == 'resnet50' else 'ResNet-101'}, Titan Xp",
                        f"{paper.table2_ratio(r.head, r.backbone):.2f}x", paper.table2_ratio(r.head, r.backbone) > 1,
                        value=paper.table2_ratio(r.head, r.backbone))
                for r in paper.TABLE2 if r.upsampling == "jpu"]
    return []  # the paper prints no per-model GMACs, memory, or re-run of its own numbers


def claim_statuses(claim: str, results: Sequence[Result] = RESULTS, reruns: Sequence[Rerun] = RERUNS,
                   sources: dict[str, Source] = SOURCES) -> list[ClaimStatus]:
    """The paper's status for ``claim``, then each third-party source's, in :data:`SOURCES` order."""
    out = [ClaimStatus(claim, "paper", sources["paper"].label, paper_outcomes(claim), sources["paper"].cite())]
    for key, source in sources.items():
        if key == "paper":
            continue
        mine = outcomes(claim, [r for r in results if r.source == key], [r for r in reruns if r.source == key],
                        source.noise)
        out.append(ClaimStatus(claim, key, source.label, mine, source.cite()))
    return out


def with_value(results: Sequence[Result], index: int, **changes: float | None) -> list[Result]:
    """A copy of ``results`` with row ``index`` changed (what-if: which number decides a status)."""
    out = list(results)
    out[index] = replace(out[index], **changes)
    return out
