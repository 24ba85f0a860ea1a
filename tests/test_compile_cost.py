"""When compiling pays off (fastfcn.benchmark.compile_cost), from fast-path rows."""

from __future__ import annotations

import pytest

from fastfcn import benchmark as bench


def _row(variant: str, runtime: str, seconds: float, first: float, compiled: bool = False, exact: bool = True,
         counts: bool = True) -> dict:
    return {"variant": variant, "runtime": runtime, "latency_median_s": seconds, "first_call_s": first,
            "compile": compiled, "exact": exact, "counts": counts}


def test_payoff_against_eager_and_other_runtime() -> None:
    # seconds that binary floats hold exactly, so that the break-even counts are exact
    rows = [_row("fp32", "torch", 1.25, 1.5), _row("channels_last+fold_bn", "torch", 1.0, 1.0),
            _row("compile+channels_last+fold_bn", "torch", 0.75, 15.75, compiled=True),
            _row("compile+bf16", "torch", 0.25, 20.0, compiled=True, exact=False),  # not exact: not a candidate
            _row("onnxruntime", "onnxruntime", 0.875, 0.875), _row("openvino", "openvino", 0.5, 0.5, exact=False)]
    p = bench.compile_payoff({"variants": rows})
    assert p["variant"] == "compile+channels_last+fold_bn" and p["compile_s"] == pytest.approx(15.0)
    eager, other = p["against"]
    assert eager["variant"] == "channels_last+fold_bn" and eager["ratio"] == pytest.approx(1.0 / 0.75)
    assert eager["calls_to_pay_off"] == 60  # 15 s / 0.25 s saved per call
    assert other["variant"] == "onnxruntime" and other["calls_to_pay_off"] == 120  # 15 s / 0.125 s
    text = bench.format_compile_payoff(p)
    assert "compiling took 15.0 s once" in text and "pays off after 60 calls" in text
    words = bench.compile_payoff_words(p)
    assert "pays for itself after 60 images" in words and "after 120 images" in words
    assert "slide evaluation" not in words  # no size given: nothing said about eval's crops
    # at 512 px: crops of 480 save 0.25 * (480/512)^2 = 0.2197 s per call: ceil(15 / 0.2197) = 69 forwards
    words = bench.compile_payoff_words(bench.compile_payoff({"variants": rows, "size": 512}))
    assert "crops of 480 px" in words and "from 69 forwards on" in words and "from 18 images of 512 x 512" in words


def test_payoff_when_compiling_is_not_faster_or_absent() -> None:
    rows = [_row("channels_last+fold_bn", "torch", 0.80, 0.9),
            _row("compile+channels_last+fold_bn", "torch", 0.85, 10.0, compiled=True)]
    p = bench.compile_payoff({"variants": rows})
    assert p["against"][0]["calls_to_pay_off"] is None and len(p["against"]) == 1  # no other runtime measured
    assert "never pays off" in bench.format_compile_payoff(p) and "never pays off" in bench.compile_payoff_words(p)
    words = bench.compile_payoff_words(bench.compile_payoff({"variants": rows, "size": 512}))
    assert "it never compiles by itself" in words
    assert bench.compile_payoff({"variants": rows[:1]}) is None
    assert bench.format_compile_payoff(None) == "no compiled variant was timed in this run"
