"""Several models' latencies timed in rounds (fastfcn.benchmark.rounds): the order of the calls, what
run_benchmark keeps from each measurement, and when it times in rounds."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from fastfcn import benchmark as bench
from fastfcn.benchmark import rounds

TINY = bench.BenchOptions(device="cpu", size=32, runs=3, warmup=1, isolate=False, threads=1)
ROWS = ["encnet/resnet50/none", "encnet/resnet50/jpu"]


class _Logged(nn.Module):
    """A stand-in network that writes its name into ``log`` on every call."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name, self.log = name, log

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.log.append(self.name)
        return {"out": x}


def test_one_call_of_every_model_per_round(monkeypatch) -> None:
    log: list[str] = []
    monkeypatch.setattr(rounds, "prepare_model",
                        lambda spec, opts, batch: (_Logged(spec.upsampling, log), torch.zeros(batch, 3, 4, 4)))
    specs = bench.parse_rows(ROWS, substitute="resnet18")
    times = rounds.times_in_rounds(specs, TINY)
    assert log == ["none", "jpu"] * (TINY.warmup + TINY.runs)  # warm-up round first, then the timed rounds
    assert [len(t) for t in times] == [TINY.runs, TINY.runs] and all(s > 0 for t in times for s in t)


def test_run_benchmark_times_cpu_inference_in_rounds() -> None:
    specs = bench.parse_rows(ROWS, substitute="resnet18")
    results = bench.run_benchmark(specs, TINY, modes=("inference", "train"))
    inference = [r for r in results if r["mode"] == "inference"]
    train = [r for r in results if r["mode"] == "train"]
    for r in inference:  # latency from the rounds, memory and the rest from a measurement of one call
        assert r["timing"] == "rounds" and len(r["times_s"]) == TINY.runs and r["runs"] == TINY.runs
        assert r["latency_median_s"] == sorted(r["times_s"])[1] and r["fps"] == 1 / r["latency_median_s"]
        assert r["warmup"] == TINY.warmup and r["peak_mem_bytes"] is not None
    assert inference[1]["ratio"] == inference[1]["fps"] / inference[0]["fps"]
    assert all(r["timing"] == "consecutive" and len(r["times_s"]) == TINY.runs for r in train)


def test_official_fps_from_the_rounds() -> None:
    specs = bench.parse_rows(ROWS, substitute="resnet18")
    for r in bench.run_benchmark(specs, replace(TINY, official_fps=True)):
        assert r["fps_unsynchronised"] == len(r["times_s"]) / sum(r["times_s"])


def test_when_rounds_are_used() -> None:
    assert rounds.timed_in_rounds(2, TINY)
    assert not rounds.timed_in_rounds(1, TINY)  # one model: nothing to interleave
    assert not rounds.timed_in_rounds(2, replace(TINY, runs=1))  # one run: no median to protect
    assert not rounds.timed_in_rounds(2, replace(TINY, compile=True))
    spec = bench.parse_rows(ROWS[:1], substitute="resnet18")
    (alone,) = bench.run_benchmark(spec, TINY)
    assert alone["timing"] == "consecutive" and len(alone["times_s"]) == TINY.runs
    assert bench.timing_words(TINY, 1) == "median of 3 run(s) after 1 warm-up"
    assert bench.timing_words(TINY, 2).endswith(", timed in rounds (one call of every model per round)")


def test_rounds_in_a_fresh_process() -> None:
    specs = bench.parse_rows(ROWS, substitute="resnet18")
    times = rounds.times_in_rounds_isolated(specs, replace(TINY, isolate=True, runs=2, warmup=0))
    assert [len(t) for t in times] == [2, 2] and all(s > 0 for t in times for s in t)
