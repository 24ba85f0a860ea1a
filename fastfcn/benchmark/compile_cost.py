"""When compiling pays off: ``torch.compile``'s one-time cost against what each later call saves.

The first call of a compiled fast-path variant compiles the network (Inductor, weights frozen), and
:func:`fastfcn.benchmark.fast_path` times that call apart (``first_call_s``). Its cost is what the first call
takes beyond an ordinary compiled call; every later call then saves the difference to the variant it
replaces. Both come from the same run as the other variants, so the break-even count is a ratio measured in
one run: on a 2-core AVX2 EPYC (torch 2.14.1, EncNet+JPU R50s at 512x512) compiling took 8.6-18.3 s in three
runs and a call 791-826 ms, against 855-949 ms eager on the same exact path and 812-916 ms in ONNX Runtime
(2026-12-04). The benchmark records it (:func:`fastfcn.inference.exact_path.record_compile`), and ``eval`` and
``predict`` decide by it whether to compile (:func:`fastfcn.inference.fast_path.auto_compile`).
"""

from __future__ import annotations

import math
from typing import Any

from ..inference.exact_path import calls_to_pay_off

__all__ = ["compile_payoff", "format_compile_payoff", "compile_payoff_words"]


def _exact(row: dict[str, Any]) -> bool:
    return bool(row.get("exact") and row.get("counts"))


def compile_payoff(fp: dict[str, Any]) -> dict[str, Any] | None:
    """The fastest exact compiled variant of a :func:`~fastfcn.benchmark.fast_path` result against the fastest
    exact eager torch variant and the fastest exact other runtime (those measured): ``compile_s``, and per
    competitor the speed ratio and the calls after which compiling has paid for itself (None: never, the
    compiled variant is not faster). None when no compiled variant was timed."""
    rows = fp["variants"]
    compiled = [r for r in rows if r["compile"] and _exact(r)]
    if not compiled:
        return None
    best = min(compiled, key=lambda r: r["latency_median_s"])
    compile_s = max(best["first_call_s"] - best["latency_median_s"], 0.0)
    groups = ([r for r in rows if _exact(r) and r["runtime"] == "torch" and not r["compile"]],
              [r for r in rows if _exact(r) and r["runtime"] != "torch"])
    against = []
    for group in groups:
        if not group:
            continue
        other = min(group, key=lambda r: r["latency_median_s"])
        saving = other["latency_median_s"] - best["latency_median_s"]
        against.append({"variant": other["variant"], "runtime": other["runtime"],
                        "latency_s": other["latency_median_s"], "ratio": other["latency_median_s"] / best["latency_median_s"],
                        "saving_s": saving, "calls_to_pay_off": calls_to_pay_off(
                            compile_s, best["latency_median_s"], other["latency_median_s"], 1, 1)})
    return {"variant": best["variant"], "latency_s": best["latency_median_s"], "compile_s": compile_s,
            "size": fp.get("size"), "against": against}


def format_compile_payoff(payoff: dict[str, Any] | None) -> str:
    """:func:`compile_payoff` as lines of text."""
    if payoff is None:
        return "no compiled variant was timed in this run"
    lines = [f"{payoff['variant']}: compiling took {payoff['compile_s']:.1f} s once\n"
             f"  (what its first call took beyond a later call), "
             f"then {payoff['latency_s'] * 1e3:.0f} ms per call"]
    for a in payoff["against"]:
        kind = "eager, " if a["runtime"] == "torch" else ""
        pays = (f"pays off after {a['calls_to_pay_off']} calls" if a["calls_to_pay_off"] is not None
                else "never pays off")
        lines.append(f"  against {a['variant']} ({kind}{a['latency_s'] * 1e3:.0f} ms): the compiled call is "
                     f"{a['ratio']:.2f}x as fast;\n    compiling {pays}")
    return "\n".join(lines)


def compile_payoff_words(payoff: dict[str, Any] | None) -> str:
    """:func:`compile_payoff` as a paragraph of Markdown (chapter 6)."""
    if payoff is None:
        return "No compiled variant was timed in this run, so nothing is said here about what compiling costs."
    parts = [f"Compiling (`{payoff['variant']}`) cost {payoff['compile_s']:.1f} s once, in its first call; after "
             f"that a call took {payoff['latency_s'] * 1e3:.0f} ms."]
    for a in payoff["against"]:
        what = (f"the fastest eager exact path (`{a['variant']}`" if a["runtime"] == "torch"
                else f"the fastest other runtime (`{a['variant']}`")
        if a["calls_to_pay_off"] is None:
            parts.append(f"Against {what}, {a['latency_s'] * 1e3:.0f} ms) the compiled call is not faster "
                         f"({a['ratio']:.2f} times as fast): compiling never pays off there.")
        else:
            parts.append(f"Against {what}, {a['latency_s'] * 1e3:.0f} ms) it is {a['ratio']:.2f} times as fast, so "
                         f"compiling pays for itself after {a['calls_to_pay_off']} images of this size.")
    parts.append("A folder of a few photos is done sooner without compiling, a validation set of thousands sooner "
                 "with it. Every new input size compiles again, so `fastfcn eval` and `fastfcn predict` on the torch "
                 "path compile by themselves only in `slide` mode (every forward one crop size), and only where this "
                 "measurement, recorded for this machine and this network, says compiling pays for itself within "
                 "the run's forwards (`--compile` and `--no-compile` let you decide); compiling needs a C++ "
                 "compiler on the machine.")
    parts.append(_slide_words(payoff))
    return " ".join(p for p in parts if p)


def _slide_words(payoff: dict[str, Any]) -> str:
    """What the measurement means for ``eval --mode slide`` at the paper's crop, scaled to the measured size."""
    eager = [a for a in payoff["against"] if a["runtime"] == "torch"]
    if not payoff.get("size") or not eager:
        return ""
    size = int(payoff["size"])
    crop = round(size * 480 / 512)  # the paper's 480 px crops of its 512 px images, at this size
    calls = calls_to_pay_off(payoff["compile_s"], payoff["latency_s"], eager[0]["latency_s"], size, crop)
    if calls is None:
        return "Here, then, it never compiles by itself."
    return (f"Here, with this measurement, a slide evaluation in crops of {crop} px (the paper's 480 at this image "
            f"size) compiles by itself from {calls} forwards on, that is from {math.ceil(calls / 4)} images of "
            f"{size} x {size} at four windows each.")
