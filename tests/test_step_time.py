"""Training-step timing per path (fp32, channels_last, bf16 where native), the fastest exact layout, and the
Table 1 benchmark that prints them as ratios (``fastfcn bench --table1-steps``)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from fastfcn.benchmark.table1_steps import format_table1_steps, table1_steps
from fastfcn.cli import main
from fastfcn.profiles import get_profile
from fastfcn.training import step_time
from fastfcn.training.table1 import table1_config

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(upsampling: str = "jpu"):
    return replace(table1_config(get_profile("smoke"), "encnet", upsampling, 0, device="cpu"), image_size=32,
                   batch_size=2)


def test_a_timed_step_trains_the_network_it_times() -> None:
    step = step_time.step_function(tiny_config(), 8, "fp32+channels_last")
    losses = [step() for _ in range(6)]           # the same batch again and again: the loss must fall
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="unknown training path 'int8'"):
        step_time.step_function(tiny_config(), 8, "int8")


def test_layouts_compute_the_same_step() -> None:
    """channels_last is exact: one step from the same weights and batch gives the same loss either way."""
    losses = []
    for path in step_time.EXACT_PATHS:
        torch.manual_seed(0)                 # the same initial weights
        step = step_time.step_function(tiny_config(), 8, path)
        torch.manual_seed(1)                 # the same dropout masks
        losses.append(step())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_paths_are_timed_interleaved_and_bf16_only_where_native(monkeypatch) -> None:
    configs = [tiny_config("jpu"), tiny_config("none")]
    monkeypatch.setattr(step_time, "bf16_supported", lambda device: False)
    seconds = step_time.time_paths(configs, 8, list(step_time.TRAINING_PATHS), runs=1, warmup=0)
    assert set(seconds) == {(i, p) for i in (0, 1) for p in step_time.EXACT_PATHS}
    assert all(s > 0 for s in seconds.values())
    best = step_time.fastest_exact_layout(configs[0], 8, runs=1, warmup=0)
    assert set(best["seconds"]) == set(step_time.EXACT_PATHS)
    assert best["channels_last"] == (best["seconds"]["fp32+channels_last"] < best["seconds"]["fp32"])


def test_the_table1_benchmark_prints_every_row_as_ratios(tmp_path, capsys) -> None:
    result = table1_steps("smoke", ("fp32", "fp32+channels_last"), runs=1, warmup=0)
    names = [r["row"] for r in result["rows"]]
    assert names[0] == "pretrain" and "encnet+none" in names and "psp+jpu" in names
    for r in result["rows"]:
        assert r["speedup"]["fp32"] == 1.0 and r["speedup"]["fp32+channels_last"] > 0
    dilated = next(r for r in result["rows"] if r["row"] == "encnet+none")
    assert dilated["x_dilated"] == 1.0
    text = format_table1_steps(result)
    assert "fp32+channels_last x" in text and "x dilated" in text and "encnet+jpu" in text
    with pytest.raises(ValueError, match="full profile"):
        table1_steps("full")

    assert main(["bench", "--table1-steps", "smoke", "--runs", "1", "--warmup", "0", "--out-dir", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "table1_steps_cpu.json").read_text())
    assert doc["profile"] == "smoke" and [r["row"] for r in doc["rows"]] == names
    assert "encnet+jpu" in capsys.readouterr().out
