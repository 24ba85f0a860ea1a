"""The book's front page: a headline figure and short answers, read from the chapters' results files.

The front page (``book/intro.md``) is executed by ``fastfcn book run`` after the chapters. It reads
the results files they wrote (``_executed/<stem>.json``: the figures each chapter recorded with
:func:`fastfcn.book.record` or :func:`fastfcn.book.note`) and nothing else, so every number on it
was computed by a chapter of this build; the paper's numbers on it are the ones the chapters put
beside their own. Where a chapter has not run yet, the page says which command produces it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..profiles import PROFILES
from ..training.table1 import TABLE1_UPSAMPLINGS, UPSAMPLING_COLOURS, UPSAMPLING_LABELS
from .evidence import holds_up_markdown
from .results import figures, load_results, number  # one reader of the results files, shared

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["SPEED", "TRAINING", "REPORT", "HeadlinePoint", "load_results", "figures", "run_command",
           "headline_points", "missing", "headline_table", "draw_headline", "phrases"]

SPEED, TRAINING = "06_how_fast", "07_table1"  # the chapters the front page summarises
REPORT = "11_reproduction_report"  # its per-claim statuses answer "does JPU hold up?"
OVERVIEW = "01_overview"  # its multiply-accumulate count uses the profile's JPU width, not the paper's
NOT_MEASURED = "not measured yet"


def run_command(*stems: str) -> str:
    """The command that executes these chapters (and then the front page)."""
    return "python -m fastfcn book run --only " + " ".join(s.split("_", 1)[0] for s in stems) + " intro"


@dataclass(frozen=True)
class HeadlinePoint:
    """One network of Table 1's EncNet rows: ours (chapter 7) and the paper's."""

    upsampling: str
    miou: float            # %, procedural val, this build
    latency_ms: float      # one image, this build's device
    paper_miou: float      # %, Table 1 (Pascal Context)
    paper_fps: float       # Table 2 (Titan-Xp, 512x512)

    @property
    def label(self) -> str:
        return UPSAMPLING_LABELS[self.upsampling]

    @property
    def paper_latency_ms(self) -> float:
        return 1e3 / self.paper_fps


def headline_points(results: dict[str, dict[str, Any]]) -> list[HeadlinePoint]:
    """Table 1's EncNet rows with every number the figure needs, from chapter 7's results (in Table 1's order)."""
    f = figures(results, TRAINING)
    points = []
    for u in TABLE1_UPSAMPLINGS["encnet"]:
        values = [number(f.get(k)) for k in (f"miou_{u}", f"latency_ms_{u}", f"paper_miou_{u}", f"paper_fps_{u}")]
        if all(v is not None for v in values):
            points.append(HeadlinePoint(u, *values))
    return points


def missing(results: dict[str, dict[str, Any]]) -> list[str]:
    """What the front page lacks, each with the command that produces it; empty when nothing is missing."""
    notes = [f"chapter {stem} has not run in this build: `{run_command(stem)}`"
             for stem in (SPEED, TRAINING) if stem not in results]
    if TRAINING in results and len(headline_points(results)) < len(TABLE1_UPSAMPLINGS["encnet"]):
        notes.append(f"chapter {TRAINING}'s results lack some of the figure's numbers (an older run?): "
                     f"`{run_command(TRAINING)} --force`")
    return notes


def headline_table(points: list[HeadlinePoint], device: str) -> str:
    """The figure's numbers as a Markdown table, ours beside the paper's."""
    rows = ["| EncNet with | mIoU % (ours) | ms per image (ours, " + device + ") | mIoU % (paper, Table 1) "
            "| FPS (paper, Table 2) |", "|---|---|---|---|---|"]
    rows += [f"| {p.label} | {p.miou:.1f} | {p.latency_ms:.1f} | {p.paper_miou:.2f} | {p.paper_fps:.2f} |"
             for p in points]
    return "\n".join(rows)


def _panel(ax: Any, points: list[HeadlinePoint], paper: bool) -> None:
    for p in points:
        x, y = (p.paper_latency_ms, p.paper_miou) if paper else (p.latency_ms, p.miou)
        ax.scatter(x, y, s=110 if p.upsampling == "jpu" else 60, marker="*" if p.upsampling == "jpu" else "o",
                   color=UPSAMPLING_COLOURS[p.upsampling], edgecolors="k", linewidths=0.5, zorder=3)
        ax.annotate(f"{p.label}\n{y:.{2 if paper else 1}f} %, {x:.1f} ms", (x, y), xytext=(6, -4),
                    textcoords="offset points", fontsize=8)
    ax.grid(alpha=0.3)
    ax.margins(x=0.35, y=0.25)


def draw_headline(results: dict[str, dict[str, Any]]) -> tuple[Figure, list[HeadlinePoint]]:
    """Accuracy against latency for Table 1's EncNet rows: this build (left) beside the paper (right).

    Returns the figure and the points drawn (empty, with a note on the figure, when chapter 7 has not run).
    """
    import matplotlib.pyplot as plt

    points = headline_points(results)
    run = results.get(TRAINING, {})
    device = run.get("device", "?")
    f = figures(results, TRAINING)
    fig, (ours, theirs) = plt.subplots(1, 2, figsize=(12, 4.2))
    if points:
        _panel(ours, points, paper=False)
    else:
        ours.text(0.5, 0.5, f"chapter 7 has not run in this build:\n{run_command(TRAINING)}", ha="center",
                  va="center", transform=ours.transAxes, fontsize=9)
    ours.set(xlabel=f"milliseconds per {f.get('image_size', '?')}-pixel image ({device}, this build)",
             ylabel="mIoU % (procedural val, this build)",
             title=f"ours: {f.get('backbone', '?')} from the book's trunk, {f.get('iterations', '?')} iterations "
                   f"({run.get('profile', '?')} profile)")
    _panel(theirs, points, paper=True)
    theirs.set(xlabel="1000 / FPS (ms, Titan-Xp, 512x512; the paper's Table 2)",
               ylabel="mIoU % (Pascal Context val; the paper's Table 1)",
               title="the paper (Tables 1 and 2): ResNet-50, ImageNet-pretrained")
    fig.suptitle("Table 1's EncNet models: accuracy against the time per image (up and left is better)",
                 fontsize=11)
    fig.tight_layout()
    return fig, points


def _fmt(value: Any, spec: str, unit: str = "") -> str:
    x = number(value)
    return f"{x:{spec}}{unit}" if x is not None else f"({NOT_MEASURED})"


def _speed_backbone(results: dict[str, dict[str, Any]]) -> str:
    profile = results.get(SPEED, {}).get("profile")
    substitute = PROFILES.get(profile, {}).get("bench_substitute_backbone")
    return (f"built on {substitute} instead of ResNet-50 (the `{profile}` profile)" if substitute
            else "on the official deep-stem ResNet-50")


def _gmacs_scope(results: dict[str, dict[str, Any]]) -> str:
    """Which networks chapter 6's multiply-accumulate ratio counts, and why chapter 1 prints another one.

    Chapter 6 builds its models with the paper's JPU width; chapter 1's overview with the profile's, which
    in the lighter profiles is narrower, so its FastFCN head reads fewer channels and its ratio is larger.
    """
    o = figures(results, OVERVIEW)
    ratio, width = number(o.get("gmacs_ratio")), number(o.get("jpu_width"))
    scope = "EncNet at the paper's JPU width"
    if ratio is not None and width is not None and width < PROFILES["full"]["jpu_width"]:
        scope += (f"; chapter 1's overview counts {ratio:.1f} times with the `{results[OVERVIEW].get('profile')}` "
                  f"profile's narrower JPU, {width:g} wide, whose output gives the head fewer channels to read")
    return f" ({scope})"


def phrases(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The Markdown the front page's prose quotes (``front_*``), each made from the results files only."""
    t, s = figures(results, TRAINING), figures(results, SPEED)
    run, speed = results.get(TRAINING, {}), results.get(SPEED, {})
    out = {}
    if run:
        out["front_caption"] = (
            f"Left, this build (chapter 7, `{run.get('profile')}` profile, {run.get('device')}): EncNet with each "
            f"upsampling, {t.get('backbone')} fine-tuned from the book's pretrained trunk for {t.get('iterations')} iterations on the "
            f"procedural scenes; mIoU on {t.get('val_images')} val images against the time one "
            f"{t.get('image_size')}-pixel image takes. Right, the paper: Table 1's mIoU on Pascal Context "
            "against 1000 / FPS of its Table 2 (Titan-Xp). The panels measure different tasks on different "
            "machines: compare their shapes, not their values.")
        out["front_reproduced"] = (
            f"In this build the four EncNet networks rank {t.get('ranking')} in mIoU, "
            f"{t.get('ranking_agrees')} ({t.get('paper_ranking')}, paper); JPU against the dilated EncNet: "
            f"{_fmt(t.get('diff_encnet_jpu_vs_none'), '+.1f', ' points')}, "
            f"{t.get('verdict_encnet_jpu_vs_none') or 'not compared in this build'}.")
    else:
        out["front_caption"] = f"Chapter 7 has not run in this build: `{run_command(TRAINING)}` draws the left panel."
        out["front_reproduced"] = f"Chapter 7 has not run in this build yet: `{run_command(TRAINING)}`."
    if speed:
        dil, jpu = number(t.get("latency_ms_none")), number(t.get("latency_ms_jpu"))
        small = (f" On chapter 7's small trained networks the dilated one took {dil / jpu:.2f} times the JPU "
                 "network's time per image." if dil and jpu else "")
        out["front_speedup"] = (
            f"In this build EncNet+JPU ran {_fmt(s.get('ratio_encnet_r50_jpu'), '.2f')} times as fast as the "
            f"dilated EncNet ({s.get('bench_size')} px, {_speed_backbone(results)}), against "
            f"{_fmt(s.get('paper_ratio_encnet_r50_jpu'), '.2f')} times on the paper's Titan-Xp; the dilated "
            f"model does {_fmt(s.get('encnet_r50_gmacs_ratio'), '.2f')} times the multiply-accumulates"
            f"{_gmacs_scope(results)}." + small)
        devices = sorted({r.get("device") for r in results.values() if r.get("device")})
        where = ("Yes: every chapter of this build ran on the CPU." if devices == ["cpu"]
                 else f"This build ran on {', '.join(devices)}; the `quick` profile is made for a CPU.")
        out["front_cpu"] = (
            f"{where} Chapter 6 timed every model on {s.get('bench_device_name')} ({speed.get('device')}, "
            f"{s.get('bench_threads')} threads): one {s.get('bench_size')}-pixel image took "
            f"{_fmt(s.get('encnet_r50_jpu_latency_ms'), '.0f', ' ms')} with EncNet+JPU and "
            f"{_fmt(s.get('encnet_r50_none_latency_ms'), '.0f', ' ms')} with the dilated EncNet, "
            f"{_speed_backbone(results)}.")
    else:
        out["front_speedup"] = out["front_cpu"] = f"Chapter 6 has not run in this build yet: `{run_command(SPEED)}`."
    holds = holds_up_markdown(figures(results, REPORT).get("evidence"))
    out["front_holds_up"] = holds or f"The reproduction report has not run in this build yet: `{run_command(REPORT)}`."
    profiles = sorted({r.get("profile") for r in results.values() if r.get("profile")})
    out["front_build"] = (f"the `{'`, `'.join(profiles)}` profile" + ("s" if len(profiles) > 1 else "")
                          if profiles else "no profile yet: no chapter has run")
    if "smoke" in profiles:
        out["front_build"] += " (the `smoke` profile's numbers only show that the code runs)"
    return out
