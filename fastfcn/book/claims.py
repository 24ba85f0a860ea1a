"""The paper's claims in prose, each beside our measurement with a status; what the book reproduces beyond the tables.

Used by the reproduction report (book/11_reproduction_report.md). Every measurement is a figure a
chapter recorded (read with :mod:`.results`); every threshold is the paper's own wording ("more than
three times" is > 3, "3 times faster" is >= 3). A status is computed from the numbers, never typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import paper
from ..training.table1 import HEAD_LABELS, UPSAMPLING_LABELS
from ..utils.text import signed
from .report import table1_measured
from .results import GpuBench, Run, chapter_stem, figures, number

__all__ = ["CONFIRMED", "NOT_CONFIRMED", "PARTLY", "NOT_MEASURED", "Measurement", "ClaimRow", "CLAIMS",
           "claim_rows", "claims_markdown", "gpu_measurements", "beyond", "beyond_markdown", "recovery_markdown"]

CONFIRMED, NOT_CONFIRMED, PARTLY, NOT_MEASURED = "confirmed", "not confirmed", "partly confirmed", "not measured"


@dataclass(frozen=True)
class Measurement:
    what: str            # the configuration measured
    text: str            # the value, in words ("2.35x")
    ok: bool | None      # does it meet the claim (None: not measured)
    where: str = ""      # the chapter that measured it
    note: str = ""       # a remark on the value ("the JPU model needed more memory")

    def __str__(self) -> str:
        return f"{self.what}{f' ({self.where})' if self.where else ''}: {self.text}{f' ({self.note})' if self.note else ''}"


@dataclass(frozen=True)
class ClaimRow:
    quote: str
    where: str
    run: str
    measured: str
    status: str
    kind: str


# what a ratio below 1 means, per quantity: said beside the value, so that "0.99x" is not read as a saving
WORSE = {"speed": "the JPU model was slower", "memory": "the JPU model needed more memory",
         "macs": "the JPU model needed more multiply-accumulates"}


def _ratio(what: str, value: Any, threshold: float, strict: bool, where: str = "", worse: str = "") -> Measurement:
    x = number(value)
    if x is None:
        return Measurement(what, "not measured", None, where)
    return Measurement(what, f"{x:.2f}x", x > threshold if strict else x >= threshold, where,
                       WORSE[worse] if x < 1 and worse else "")


def _complexity(run: Run) -> list[Measurement]:
    return [_ratio("EncNet, ResNet-50, GMACs dilated / JPU", run.value("encnet_r50_gmacs_ratio"), 3, True, "chapter 6",
                   "macs"),
            _ratio("DeepLabV3 (ASPP), ResNet-50, GMACs dilated / JPU", run.value("gmacs_ratio_dilated_over_jpu"), 3,
                   True, "chapter 5", "macs")]


def _speed(run: Run) -> list[Measurement]:
    return [_ratio(f"EncNet, {name}, FPS JPU / dilated", run.value(f"ratio_encnet_{b}_jpu"), 3, False, "chapter 6",
                   "speed")
            for b, name in (("resnet101", "ResNet-101"), ("resnet50", "ResNet-50"))]


def _memory(run: Run) -> list[Measurement]:
    size = run.value("sweep_max_size")
    at = f" at {size} px" if size is not None else ""
    return [_ratio(f"inference{at}, peak memory dilated / JPU", run.value("sweep_memory_ratio_max"), 3, True,
                   "chapter 6", "memory"),
            _ratio("a training step, peak memory dilated / JPU", run.value("train_peak_ratio"), 3, True, "chapter 6",
                   "memory"),
            _ratio("tensors saved for backward per image, dilated / JPU", run.value("saved_ratio"), 3, True,
                   "chapter 6", "memory")]


def _differences(run: Run, pairs: list[tuple[str, str, str]], strict: bool) -> list[Measurement]:
    """JPU minus another row of Table 1 (points of mIoU), against the seed range where several seeds ran."""
    ours, _ = table1_measured(run)
    hit = run.find("table1_rows") or run.find("miou_none")  # the chapter that trained Table 1
    where = f"chapter {int(hit[0][:2])}" if hit else ""
    out = []
    for head, a, b in pairs:
        what = f"{HEAD_LABELS[head]}: JPU − {'dilated' if b == 'none' else UPSAMPLING_LABELS[b]}, mIoU"
        if (head, a) not in ours or (head, b) not in ours:
            out.append(Measurement(what, "not measured", None, where))
            continue
        d = ours[head, a].value - ours[head, b].value
        noise = max(ours[head, a].spread, ours[head, b].spread)
        ok = d > noise if strict else d >= -noise
        out.append(Measurement(what, f"{signed(d)} points", ok, where, f"seed range {noise:.1f}" if noise else ""))
    return out


def _no_loss(run: Run) -> list[Measurement]:
    return _differences(run, [(h, "jpu", "none") for h in ("encnet", "aspp", "psp")], strict=False)


def _superior(run: Run) -> list[Measurement]:
    return _differences(run, [("encnet", "jpu", "fpn"), ("encnet", "jpu", "bilinear")], strict=True)


def _blocks(run: Run) -> list[Measurement]:
    out = []
    for stage, blocks, convs, factor in (("layer3", 23, 69, 4), ("layer4", 3, 9, 16)):
        got = [number(run.value(f"r101_{stage}_{k}")) for k in ("blocks", "blocks_exact", "convs", "convs_exact")]
        what = f"ResNet-101 {stage}, at exactly {factor}x"
        if any(g is None for g in got):
            out.append(Measurement(what, "not measured", None, "chapter 2"))
            continue
        nb, eb, nc, ec = (int(g) for g in got)
        ok = (nb, eb, nc, ec) == (blocks, blocks, convs, convs)
        out.append(Measurement(what, f"{eb} of {nb} blocks, {ec} of {nc} convolutions", ok, "chapter 2"))
    return out


# (the paper's words, where it says them, how we measure them, the chapter that measures them)
CLAIMS: list[tuple[str, str, Callable[[Run], list[Measurement]], str]] = [
    ("reduces the computation complexity by more than three times", "Abstract; Section 5", _complexity, "06"),
    ("running 3 times faster", "Abstract; Section 1", _speed, "06"),
    ("the computation time and memory footprint [...] can be reduced by a factor of more than 3",
     "Section 1, contribution (2)", _memory, "06"),
    ("without performance loss", "Abstract; Section 4.2 (Table 1)", _no_loss, "07"),
    ("JPU is superior to other upsampling modules", "Abstract; Section 4.2 (Table 1)", _superior, "07"),
    ("23 residual blocks (69 convolution layers) [...] take 4 times more computation resources and memory "
     "usages, and 3 residual blocks (9 convolution layers) need to take 16 times more", "Section 1; Section 3.2",
     _blocks, "02"),
]


def _status(ms: list[Measurement], chapter: str | None) -> tuple[str, str]:
    measured = [m for m in ms if m.ok is not None]
    if not measured:  # chapter None: a run made elsewhere, which this build cannot complete
        return (f"not measured yet: `python -m fastfcn book run --only {chapter}`" if chapter
                else "not measured in this run"), NOT_MEASURED
    failed = [m for m in measured if not m.ok]
    if not failed:
        return CONFIRMED, CONFIRMED
    def value(m: Measurement) -> str:
        return m.text + (f", {m.note}" if m.note else "")

    if len(failed) == len(measured):
        return f"{NOT_CONFIRMED}: ours is {value(failed[0])} ({failed[0].what})", NOT_CONFIRMED
    return f"{PARTLY}: not for " + "; ".join(f"{m.what} ({value(m)})" for m in failed), PARTLY


def _row(quote: str, where: str, label: str, ms: list[Measurement], chapter: str | None) -> ClaimRow:
    status, kind = _status(ms, chapter)
    measured = "; ".join(str(m) for m in ms)
    return ClaimRow(quote, where, label, measured, status, kind)


def gpu_measurements(gpu: GpuBench) -> dict[str, list[Measurement]]:
    """The speed and memory claims measured on the committed GPU benchmark's rows (fp32, batch 1)."""
    rows = {(r.get("mode", "inference"), r.get("paper_backbone"), r.get("upsampling")): r for r in gpu.rows
            if r.get("kind") == "fastfcn" and r.get("head") == "encnet" and not r.get("dilated_backbone")
            and r.get("dtype", "fp32") == "fp32" and not r.get("channels_last")}

    def ratio(mode: str, backbone: str, field: str, inverse: bool) -> float | None:
        a, b = rows.get((mode, backbone, "none"), {}), rows.get((mode, backbone, "jpu"), {})
        x, y = number(a.get(field)), number(b.get(field))
        return None if not x or not y else (y / x if inverse else x / y)

    speed = [_ratio(f"EncNet, {n}, FPS JPU / dilated", ratio("inference", b, "fps", True), 3, False, "GPU", "speed")
             for b, n in (("resnet101", "ResNet-101"), ("resnet50", "ResNet-50"))]
    memory = [_ratio(f"EncNet, ResNet-50, {m} peak memory dilated / JPU", ratio(m, "resnet50", "peak_mem_bytes", False),
                     3, True, "GPU", "memory") for m in ("inference", "train")]
    return {"speed": speed, "memory": memory}


def gpu_label(gpu: GpuBench) -> str:
    """The GPU benchmark as a run, short enough for a table column: the device and the file's name."""
    return f"GPU: {gpu.device_name}, {gpu.path.rsplit('/', 1)[-1]}"


def claim_rows(runs: dict[str, Run | None], gpu: GpuBench | None = None) -> list[ClaimRow]:
    """Every claim, measured in this build's run and in the ``full`` run (where one exists) and on the GPU."""
    out = []
    gpu_ms = gpu_measurements(gpu) if gpu is not None else {}
    for quote, where, measure, chapter in CLAIMS:
        for column, run in runs.items():
            if run is None and column == "full":
                continue  # said once, under the table
            label = f"{column} ({run.origin}, `{run.profile}`)" if run is not None else f"{column} (not run yet)"
            ours = run is None or run.origin == "this build"
            out.append(_row(quote, where, label, measure(run) if run is not None else measure(Run("none")),
                            chapter if ours else None))
        key = "speed" if measure is _speed else "memory" if measure is _memory else None
        if key and gpu_ms:
            out.append(_row(quote, where, gpu_label(gpu), gpu_ms[key], None))
    return out


def claims_markdown(rows: list[ClaimRow]) -> str:
    table = ["| the paper says | where | run | ours | status |", "|---|---|---|---|---|"]
    table += [f"| \"{r.quote}\" | {r.where} | {r.run} | {r.measured} | **{r.status}** |" for r in rows]
    own = f"The paper's own Table 2 gives {paper.table2_ratio('encnet', 'resnet101'):.2f}x (EncNet, ResNet-101) and " \
          f"{paper.table2_ratio('encnet', 'resnet50'):.2f}x (ResNet-50) for \"3 times faster\"."
    return "\n".join(table) + "\n\n" + own


def _summary_of_recovery(rows: Any) -> str | None:
    if not isinstance(rows, list) or not rows:
        return None
    ok = [r for r in rows if isinstance(r, dict) and number(r.get("rel_error")) is not None]
    if not ok:
        return None
    best = min(ok, key=lambda r: r["rel_error"])
    return (f"{len(ok)} modules regressed the dilated backbone's C5; the closest, {_module(best.get('module'))}, with "
            f"relative error {best['rel_error']:.3f}")


def _module(name: Any) -> str:
    """An upsampling module as the book names it (JPU, FPN, bilinear)."""
    return UPSAMPLING_LABELS.get(name, str(name)) if isinstance(name, str) else str(name)


def _sci(x: float) -> str:
    return "0 (exactly)" if x == 0 else f"{x:.1e}"


# (what, chapter number, what the chapter shows, a figure of it in words from the chapter's figures)
BEYOND: list[tuple[str, str, str, Callable[[dict[str, Any]], str | None]]] = [
    ("Fig. 3", "03", "dilated and stride convolution in 1D, redrawn from real tensors",
     lambda f: (f"largest error: dilated {_sci(f['fig3_dilated_error'])}, strided {_sci(f['fig3_strided_error'])}"
                if number(f.get("fig3_dilated_error")) is not None and number(f.get("fig3_strided_error")) is not None
                else None)),
    ("Eq. 2 and 3", "03", "every line checked in 1D and 2D, and y_s = R(y_d) on a whole ResNet",
     lambda f: (f"largest error {_sci(f['eq23_max_abs_error'])}; on the whole backbone, relative error "
                f"{_sci(f['backbone_R_relative_error_eval_bn'])}"
                if number(f.get("eq23_max_abs_error")) is not None
                and number(f.get("backbone_R_relative_error_eval_bn")) is not None else None)),
    ("Eq. 1 and 4", "04", "joint upsampling as an optimisation problem, solved by gradient descent",
     lambda f: (f"PSNR {f['eq4_psnr_joint']:.1f} dB against {f['eq4_psnr_bilinear']:.1f} dB for bilinear upsampling"
                if number(f.get("eq4_psnr_joint")) is not None and number(f.get("eq4_psnr_bilinear")) is not None
                else None)),
    ("Fig. 4 and Fig. 5", "05", "JPU built step by step from the package's network, and what each dilation rate reads",
     lambda f: (f"the step-by-step module matches the package's to {_sci(f['teaching_max_abs_diff'])}"
                if number(f.get("teaching_max_abs_diff")) is not None else None)),
    ("Section 3.3", "09", "does JPU recover the dilated backbone's feature map: the approximation measured",
     lambda f: _summary_of_recovery(f.get("recovery_rows"))),
]


def beyond(run: Run) -> list[tuple[str, str | None, str]]:
    """``(what, stem or None, in words)`` for each reproduction beyond the tables; stem None: not run in this build."""
    out = []
    for what, chapter, shows, summary in BEYOND:
        stem = chapter_stem(run.results, chapter)
        if stem is None:
            out.append((what, None, f"{shows}: chapter {int(chapter)} has not run in this build"))
            continue
        figure = summary(figures(run.results, stem))
        out.append((what, stem, shows + (f" ({figure})" if figure else "")))
    return out


def beyond_markdown(items: list[tuple[str, str | None, str]], link: Callable[[str], str]) -> str:
    """The list, present items first with a link to their chapter (``link(stem)``), then the missing ones."""
    lines = [f"- **{what}**, {link(stem)}: {words}" for what, stem, words in items if stem]
    lines += [f"- **{what}**: {words}" for what, stem, words in items if not stem]
    return "\n".join(lines)


def recovery_markdown(rows: Any) -> str | None:
    """Chapter 9's ``recovery_rows`` as a table (None when absent).

    The chapter records ``miou_frozen`` as the metric returns it, a fraction (0.306); the table prints
    percent (30.6), as chapter 9 does."""
    if not isinstance(rows, list) or not rows:
        return None

    def fmt(v: Any, spec: str, scale: float = 1.0) -> str:
        x = number(v)
        return "-" if x is None else format(scale * x, spec)

    out = ["| module | relative error | cosine similarity | mIoU %, frozen dilated head |", "|---|---|---|---|"]
    out += [f"| {_module(r.get('module'))} | {fmt(r.get('rel_error'), '.3f')} | {fmt(r.get('cosine'), '.3f')} | "
            f"{fmt(r.get('miou_frozen'), '.1f', 100.0)} |" for r in rows if isinstance(r, dict)]
    return "\n".join(out)
