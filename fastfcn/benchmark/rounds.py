"""Latencies of several models timed in rounds: one call of every model per round.

Timed one model after another, all runs of a model fall within the same few seconds. A slow stretch of the
machine (a virtual machine's neighbours, heat, a background job) then slows every run of one model and none
of another's, and no median can tell: on a 2-core AVX2 EPYC, EncNet R50's JPU/dilated ratio read 1.44x in
one build against 1.86-2.22x in three others, with all three runs of the JPU network slow. In rounds, every
model has one run in each stretch, so a slow stretch shorter than a round costs each model at most one run,
which the median of three leaves out.

The models are built and held together in one process (all of Table 2's ResNet-50/101 rows: a few GB),
in a fresh one when the options say ``isolate`` so that the memory goes when the timing is done. Peak memory
is not measured here: a process that holds every model cannot say what one of them needs
(:func:`fastfcn.benchmark.measure.run_benchmark` measures it one model per process).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import torch

from ..utils.device import autocast
from ..utils.threads import limited_threads
from ..utils.timing import time_calls
from .models import prepare_model
from .options import BenchOptions
from .specs import ModelSpec
from .worker import run_in_subprocess

__all__ = ["inference_call", "inference_step", "timing_words", "times_in_rounds", "times_in_rounds_isolated", "timed_in_rounds"]


def timed_in_rounds(models: int, opts: BenchOptions) -> bool:
    """Whether :func:`~fastfcn.benchmark.measure.run_benchmark` times ``models`` models' inference in rounds: on
    the CPU, with more than one model and more than one run, not compiled (CUDA rows keep their per-model
    timing: their cuDNN algorithm search and CUDA-event clock belong to one model's process)."""
    return opts.device == "cpu" and models > 1 and opts.runs > 1 and not opts.compile


def timing_words(opts: BenchOptions, models: int) -> str:
    """How ``models`` models' latencies are timed with these options, in words."""
    words = f"median of {opts.runs} run(s) after {opts.warmup} warm-up"
    if timed_in_rounds(models, opts):
        words += ", timed in rounds (one call of every model per round)"
    return words


def times_in_rounds(specs: Sequence[ModelSpec], opts: BenchOptions) -> list[list[float]]:
    """Seconds of each inference call of every model: ``opts.warmup`` untimed rounds, then ``opts.runs``
    timed ones, each round one call of every model in the order given (batch ``opts.batch``, eval mode, the
    options' precision and layout)."""
    opts = opts.validated()
    with limited_threads(opts.threads):
        steps = []
        for spec in specs:
            model, x = prepare_model(spec, opts, opts.batch)
            steps.append(inference_step(model, model, x, opts))
        times: list[list[float]] = [[] for _ in specs]
        for round_ in range(opts.warmup + opts.runs):
            for i, step in enumerate(steps):
                seconds = time_calls(step, 1, 0, opts.device)[0]
                if round_ >= opts.warmup:
                    times[i].append(seconds)
    return times


def inference_call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in inference mode (no autograd bookkeeping), as every timed forward runs."""
    with torch.inference_mode():
        return fn(*args)


def inference_step(model: torch.nn.Module, fn: Callable, x: torch.Tensor, opts: BenchOptions) -> Callable[[], Any]:
    """One timed call of inference mode: ``fn`` (the model, or its compiled form) on ``x`` in eval mode, at
    the options' precision; the main output."""
    model.eval()

    def step() -> Any:
        with torch.inference_mode(), autocast(opts.device, opts.dtype):
            return fn(x)["out"]

    return step


def times_in_rounds_isolated(specs: Sequence[ModelSpec], opts: BenchOptions) -> list[list[float]]:
    """:func:`times_in_rounds` in a fresh process when ``opts.isolate``, else in this one."""
    if not opts.isolate:
        return times_in_rounds(specs, opts)
    return run_in_subprocess("fastfcn.benchmark.rounds:_times_from_dicts",
                             {"specs": [asdict(s) for s in specs], "opts": asdict(opts)},
                             what=f"the {len(specs)} models timed in rounds")


def _times_from_dicts(specs: list[dict[str, Any]], opts: dict[str, Any]) -> list[list[float]]:
    return times_in_rounds([ModelSpec(**s) for s in specs], BenchOptions(**opts))
