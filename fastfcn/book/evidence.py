"""Does JPU hold up? Each claim, with a status per source: the paper, this book's runs, each third party.

The report (book/11_reproduction_report.md) shows one section per claim of :data:`fastfcn.third_party.CLAIMS`;
the front page reads the statuses the report recorded. The third parties' numbers and the rules that
turn numbers into a status live in :mod:`fastfcn.third_party`; this module adds this book's own
measurements (the chapters' results files, read with :mod:`.results`) under the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import paper, third_party
from ..third_party import HEADS, MIOU_TOLERANCE, ClaimStatus, Outcome
from ..utils.text import signed
from .report import PAPER_DATA, table1_dataset, table1_measured
from .results import GpuBench, Run, number

__all__ = ["ClaimEvidence", "ours", "official_gmacs", "evidence", "evidence_heading", "evidence_markdown",
           "holds_up_markdown", "sources_markdown", "results_markdown"]


@dataclass(frozen=True)
class ClaimEvidence:
    """One claim: the sentence, the paper's words, and the status each source gives it."""

    claim: str
    sentence: str
    words: str
    statuses: list[ClaimStatus]
    test: str = ""          # what a status tests, in symbols (third_party.TESTS)
    stronger: bool = False  # the paper's words ask for more than the test: judged with the claims in prose

    def as_dict(self) -> dict[str, Any]:
        return {"claim": self.claim, "sentence": self.sentence, "statuses": [s.as_dict() for s in self.statuses]}


def _pair_miou(run: Run) -> list[Outcome]:
    measured, _ = table1_measured(run)
    out = []
    for head, name in HEADS.items():
        a, b = measured.get((head, "jpu")), measured.get((head, "none"))
        if a is None or b is None:
            continue
        d, noise = a.value - b.value, max(a.spread, b.spread)
        out.append(Outcome(name, f"{signed(d)} points", d >= -noise, f"seed range {noise:.1f}" if noise else "", d))
    return out


def _reproduced(run: Run) -> list[Outcome]:
    measured, _ = table1_measured(run)
    data, words = table1_dataset(run)
    rows = {(r.head, r.upsampling): r.miou for r in paper.TABLE1}
    out = []
    for head, name in HEADS.items():
        m = measured.get((head, "jpu"))
        if m is None:
            continue
        if data != PAPER_DATA[1]:  # another task: its mIoU is not the paper's quantity
            out.append(Outcome(f"{name}+JPU", f"{m.value:.1f}", None, f"trained on {words}, not the paper's data",
                               m.value))
            continue
        gap = m.value - rows[head, "jpu"]
        out.append(Outcome(f"{name}+JPU", f"{m.value:.1f} ({gap:+.1f} points)", abs(gap) <= MIOU_TOLERANCE, value=gap))
    return out


def _figures(run: Run, names: list[tuple[str, str]], threshold: float, unit: str = "x") -> list[Outcome]:
    out = []
    for name, what in names:
        x = number(run.value(name))
        if x is not None:
            out.append(Outcome(what, f"{x:.2f}{unit}", x > threshold, value=x))
    return out


def _speed(run: Run) -> list[Outcome]:
    names = [(f"ratio_{h}_{b}_jpu", f"{HEADS[h]}, {'ResNet-50' if b == 'resnet50' else 'ResNet-101'}, fps JPU / dilated")
             for b in ("resnet50", "resnet101") for h in HEADS]
    return _figures(run, names, 1.0)


def _gmacs(run: Run) -> list[Outcome]:
    return _figures(run, [("encnet_r50_gmacs_ratio", "EncNet, ResNet-50, dilated / JPU"),
                          ("gmacs_ratio_dilated_over_jpu", "DeepLabV3, ResNet-50, dilated / JPU")], 3.0)


def _memory(run: Run) -> list[Outcome]:
    return _figures(run, [("sweep_memory_ratio_max", "inference peak memory, dilated / JPU"),
                          ("train_peak_ratio", "a training step's peak memory, dilated / JPU"),
                          ("saved_ratio", "tensors saved for backward, dilated / JPU")], 1.0)


OURS = {"miou": _pair_miou, "reproduced": _reproduced, "speed": _speed, "gmacs": _gmacs, "memory": _memory}


def ours(claim: str, run: Run) -> list[Outcome]:
    """This book's outcomes for ``claim`` in one run, under the rules the third parties are judged by."""
    return OURS[claim](run)


def official_gmacs() -> list[Outcome]:
    """The official implementation's multiply-accumulates, counted by this project (:data:`paper.OFFICIAL_GMACS`)."""
    out = []
    for backbone in ("resnet50", "resnet101"):
        dil, jpu = paper.OFFICIAL_GMACS[("encnet", backbone, "none")], paper.OFFICIAL_GMACS[("encnet", backbone, "jpu")]
        out.append(Outcome(f"EncNet, {'ResNet-50' if backbone == 'resnet50' else 'ResNet-101'}, 512 px",
                           f"{dil / jpu:.2f}x ({dil:g} / {jpu:g} GMACs)", dil / jpu > 3, value=dil / jpu))
    return out


def _gpu(claim: str, gpu: GpuBench) -> list[Outcome]:
    rows = {(r.get("mode", "inference"), r.get("paper_backbone"), r.get("upsampling")): r for r in gpu.rows
            if r.get("kind") == "fastfcn" and r.get("head") == "encnet" and not r.get("dilated_backbone")
            and r.get("dtype", "fp32") == "fp32" and not r.get("channels_last")}
    field, modes = ("fps", ["inference"]) if claim == "speed" else ("peak_mem_bytes", ["inference", "train"])
    out = []
    for mode in modes:
        for backbone in ("resnet50", "resnet101"):
            x = number(rows.get((mode, backbone, "none"), {}).get(field))
            y = number(rows.get((mode, backbone, "jpu"), {}).get(field))
            if x and y:
                ratio = y / x if claim == "speed" else x / y
                what = "fps JPU / dilated" if claim == "speed" else f"{mode} peak memory, dilated / JPU"
                name = "ResNet-50" if backbone == "resnet50" else "ResNet-101"
                out.append(Outcome(f"EncNet, {name}, {what}", f"{ratio:.2f}x", ratio > 1, value=ratio))
    return out


def evidence(runs: dict[str, Run | None], gpu: GpuBench | None = None) -> list[ClaimEvidence]:
    """Every claim: the paper, this book's runs (one per report column that ran, the GPU benchmark), the third parties."""
    out = []
    for claim, (sentence, words) in third_party.CLAIMS.items():
        statuses = third_party.claim_statuses(claim)
        mine = [ClaimStatus(claim, f"ours-{column}", f"this book, {column} ({run.origin}, `{run.profile}`)",
                            ours(claim, run), run.origin) for column, run in runs.items() if run is not None]
        if claim == "gmacs":
            mine.append(ClaimStatus(claim, "ours-official", "this book, counting the official code",
                                    official_gmacs(), "fastfcn.paper.OFFICIAL_GMACS"))
        if gpu is not None and claim in ("speed", "memory"):
            mine.append(ClaimStatus(claim, "ours-gpu", f"this book, GPU ({gpu.device_name})", _gpu(claim, gpu),
                                    gpu.provenance()))
        out.append(ClaimEvidence(claim, sentence, words, statuses[:1] + mine + statuses[1:],
                                 third_party.TESTS.get(claim, ""), claim in third_party.STRONGER))
    return out


def evidence_heading(item: ClaimEvidence) -> str:
    """The claim as tested, in bold, and the paper's words; where those ask for more than the test (3x
    where the test is > 1), it says so, and where that stronger figure is judged."""
    test = f" ({item.test})" if item.test else ""
    lead = item.sentence[:1].upper() + item.sentence[1:]  # it starts a sentence here
    if item.stronger:
        return (f"**{lead}{test}.** The paper says more, {item.words}: that figure is judged against "
                "the paper's own threshold in the table of the paper's claims in prose above; here a status says "
                "only whether JPU gains at all.")
    return f"**{lead}{test}.** The paper: {item.words}."


def evidence_markdown(item: ClaimEvidence) -> str:
    """One claim's section: its heading, a table of the sources that report it, then the ones that do not."""
    lines = [evidence_heading(item), "", "| source | status | the numbers |", "|---|---|---|"]
    silent = []
    for s in item.statuses:
        if not s.outcomes:
            silent.append(s)
            continue
        lines.append(f"| {s.label} | **{s.status}** | {'; '.join(str(o) for o in s.outcomes)} |")
    if silent:
        lines += ["", "No numbers for this claim from: " + "; ".join(s.label for s in silent) + "."]
    return "\n".join(lines)


def holds_up_markdown(rows: Any) -> str | None:
    """The front page's answer, from the statuses the report recorded (``evidence`` dicts); None when absent."""
    if not isinstance(rows, list) or not rows:
        return None
    sentences = []  # one paragraph: the front page quotes it inline
    for item in rows:
        if not isinstance(item, dict):
            continue
        said = [f"{s.get('label')}: {s.get('status')}" for s in item.get("statuses", [])
                if isinstance(s, dict) and s.get("status") != third_party.NOT_REPORTED]
        sentences.append(f"*{item.get('sentence')}*: " + ("; ".join(said) if said else "nobody reports it") + ".")
    return " ".join(sentences) or None


def sources_markdown() -> str:
    """Every third-party source: where its numbers were read (repository, file or issue, commit, date), and a remark.

    A list, not a table: the remarks are long and hold long unbreakable names (file names, function
    calls) that would widen a table past the page."""
    return "\n".join(f"- **{s.label}**, read from {s.cite()}" + (f": {s.note}." if s.note else ".")
                     for k, s in third_party.SOURCES.items() if k != "paper")


def _variant(variant: str) -> str:
    return "JPU" if variant == "jpu" else variant


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


RESULT_COLUMNS = ("model", "variant", "dataset", "crop", "schedule", "batch", "mIoU", "mIoU ms", "fps", "memory GB")


def _result_table(rows: list[third_party.Result]) -> list[str]:
    """One source's trained models: the numbers in a table narrow enough to fit the page, then each file
    that prints them with its hardware, and the remarks on single rows, as a list under it."""
    lines = ["| " + " | ".join(RESULT_COLUMNS) + " |", "|" + "---|" * len(RESULT_COLUMNS)]
    lines += [f"| {HEADS[r.head]}, {r.backbone} | {_variant(r.variant)} | {r.dataset} | {r.crop} | {r.schedule} | {r.batch} | "
              f"{_fmt(r.miou)} | {_fmt(r.miou_ms)} | {_fmt(r.fps)} | {_fmt(r.memory_gb)} |" for r in rows]
    files: dict[tuple[str, str], list[str]] = {}
    notes: dict[str, list[str]] = {}
    for r in rows:
        model = f"{HEADS[r.head]} {_variant(r.variant)}"
        for group, key in ((files, (r.path, r.hardware)), (notes, r.note)):
            if key and model not in group.setdefault(key, []):
                group[key].append(model)
    lines.append("")
    lines += [f"- {', '.join(models)}: `{path}`; hardware: {hardware}" for (path, hardware), models in files.items()]
    lines += [f"- {', '.join(models)}: {note}" for note, models in notes.items()]
    return lines


def results_markdown() -> str:
    """Every third-party number, per source: the trained models with their training setting, the files
    that print them, then the users' re-runs of the paper's own setting."""
    lines: list[str] = []
    for key, source in third_party.SOURCES.items():
        rows = [r for r in third_party.RESULTS if r.source == key]
        if rows:
            lines += [f"**{source.label}**, trained models:", "", *_result_table(rows), ""]
    lines += ["**Re-runs of the paper's own setting** with the official code:", "",
              "| source | model | dataset | protocol | hardware | mIoU |", "|---|---|---|---|---|---|"]
    lines += [f"| {third_party.SOURCES[r.source].label} | {HEADS[r.head]}+JPU, {r.backbone} | {r.dataset} | "
              f"{r.protocol} | {r.hardware} | {_fmt(r.miou)} |" for r in third_party.RERUNS]
    return "\n".join(lines)
