"""Which way to run the model on this machine, read off one fast-path measurement (chapter 6).

:func:`runtime_rows` picks, from a :func:`fastfcn.benchmark.variants.fast_path` result, the paths a user
chooses between: fp32 eager, our best exact variant, our best reduced-precision variant, ONNX Runtime,
OpenVINO with the f32 hint and at its default precision, and the int8 graph in either runtime.
:func:`runtime_phrases` words the choice, from the numbers only.
"""

from __future__ import annotations

from typing import Any

from .variants import AGREEMENT_THRESHOLD

__all__ = ["runtime_rows", "format_runtime_rows", "runtime_phrases"]


def _fastest(rows: list[dict[str, Any]], keep) -> dict[str, Any] | None:
    found = [r for r in rows if keep(r)]
    return min(found, key=lambda r: r["latency_median_s"]) if found else None


def runtime_rows(fp: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"path", "variant", "speedup", "latency_median_s", "changed_fraction", "exact", "counts"}]`` for
    each path that the measurement holds, in the order a user meets them."""
    rows = fp["variants"]
    chosen = [("ours, fp32 eager", _fastest(rows, lambda r: r["variant"] == "fp32")),
              ("ours, exact", _fastest(rows, lambda r: r["runtime"] == "torch" and r["exact"] and r["variant"] != "fp32")),
              ("ours, reduced precision", _fastest(rows, lambda r: r["runtime"] == "torch" and not r["exact"]
                                                   and r["counts"])
               or _fastest(rows, lambda r: r["runtime"] == "torch" and not r["exact"])),
              ("ONNX Runtime, fp32", _fastest(rows, lambda r: r["variant"] == "onnxruntime")),
              ("OpenVINO, f32 hint", _fastest(rows, lambda r: r["variant"] == "openvino+fp32")),
              ("OpenVINO, its default precision", _fastest(rows, lambda r: r["variant"] == "openvino")),
              ("ONNX Runtime, int8", _fastest(rows, lambda r: r["variant"] == "onnxruntime+int8")),
              ("OpenVINO, int8", _fastest(rows, lambda r: r["variant"] == "openvino+int8"))]
    keys = ("variant", "speedup", "latency_median_s", "changed_fraction", "exact", "counts")
    return [{"path": path, **{k: r[k] for k in keys}} for path, r in chosen if r is not None]


def format_runtime_rows(rows: list[dict[str, Any]]) -> str:
    """The paths as a terminal table."""
    pw = max([len("path"), *(len(r["path"]) for r in rows)])
    vw = max([len("variant"), *(len(r["variant"]) for r in rows)])
    lines = [f"{'path':<{pw}} {'variant':<{vw}} {'median ms':>9} {'speed-up':>8} {'labels changed':>14}"]
    for r in rows:
        lines.append(f"{r['path']:<{pw}} {r['variant']:<{vw}} {r['latency_median_s'] * 1e3:>9.0f} {r['speedup']:>8.2f} "
                     f"{100 * r['changed_fraction']:>13.3f}%")
    return "\n".join(lines)


def runtime_phrases(rows: list[dict[str, Any]], bf16_native: bool) -> dict[str, str]:
    """Sentences for the chapter's prose: which exact path is fastest here, how our exact path compares
    with ONNX Runtime, and what to pick for reduced precision."""
    by_path = {r["path"]: r for r in rows}
    exact = [r for r in rows if r["exact"] and r["counts"]]
    best = min(exact, key=lambda r: r["latency_median_s"])
    ours, ort = by_path.get("ours, exact"), by_path.get("ONNX Runtime, fp32")
    phrases = {"runtime_fastest_exact": f"{best['path']} (`{best['variant']}`), {best['speedup']:.2f} times fp32 eager"}
    if ours is not None and ort is not None:
        ratio = ort["speedup"] / ours["speedup"]
        if ratio > 1.0:
            phrases["runtime_ours_vs_ort"] = (
                f"ONNX Runtime was {ratio:.2f} times as fast as our exact path (`{ours['variant']}`): that is why "
                "`fastfcn predict` and `fastfcn eval` run ONNX Runtime by default (`--runtime auto`) when the "
                "`deploy` extra is installed, and our exact path when it is not")
        else:
            phrases["runtime_ours_vs_ort"] = (
                f"our exact path (`{ours['variant']}`) was {1 / ratio:.2f} times as fast as ONNX Runtime: on this "
                "machine `--runtime torch` is the better choice, although the default `--runtime auto` picks ONNX "
                "Runtime when it is installed")
    else:
        phrases["runtime_ours_vs_ort"] = "ONNX Runtime was not measured (install the `deploy` extra to compare it)"
    reduced = [r for r in rows if not r["exact"] and r["counts"]]
    if not bf16_native:
        int8 = [r for r in rows if r["variant"].endswith("+int8")]
        if int8:
            pick = min(int8, key=lambda r: r["latency_median_s"])
            tail = (f"int8 is what such CPUs compute natively: `{pick['variant']}` ran {pick['speedup']:.2f} times fp32 "
                    f"eager, changing {100 * pick['changed_fraction']:.2f} % of the labels on these weights (the "
                    "next section judges it on trained weights)")
        else:
            tail = "stay with an exact path, or use an int8 graph, which such CPUs compute natively (next section)"
        phrases["runtime_reduced"] = ("this CPU does not compute bf16 natively (no AVX-512 BF16 or AMX), so bf16 "
                                      f"is emulated and gains nothing here; {tail}")
    elif reduced:
        pick = min(reduced, key=lambda r: r["latency_median_s"])
        phrases["runtime_reduced"] = (f"the fastest path that keeps {100 * AGREEMENT_THRESHOLD:g} % of the labels in reduced precision was "
                                      f"{pick['path']} (`{pick['variant']}`, {pick['speedup']:.2f} times fp32 eager)")
    else:
        phrases["runtime_reduced"] = f"no reduced-precision path kept {100 * AGREEMENT_THRESHOLD:g} % of the labels on these weights"
    return phrases
