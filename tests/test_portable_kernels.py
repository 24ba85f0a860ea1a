"""The portable CPU kernels (fastfcn.utils.kernels): pinned before the first tensor operation, said when they
cannot be, never over a user's own setting; and the book's trainings then run in one layout, unmeasured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fastfcn.book import trainings
from fastfcn.training import TrainConfig
from fastfcn.utils import kernels

needs_avx2 = pytest.mark.skipif(not kernels.portable_kernels_possible(), reason="needs an x86-64 CPU with AVX2")


def _run(code: str, **env: str) -> dict:
    """``code`` in a fresh interpreter (the pins only hold before a process's first tensor operation); it
    prints one JSON line."""
    clean = {k: v for k, v in os.environ.items() if k not in kernels.PORTABLE_KERNELS}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


PIN = """
import json, os, torch
from fastfcn.utils.kernels import PORTABLE_KERNELS, portable_kernels_active, use_portable_kernels
{before}
line = use_portable_kernels({enabled})
x = torch.randn(1, 4, 16, 16)
torch.nn.functional.conv2d(x, torch.randn(4, 4, 3, 3))
print(json.dumps({{"line": line, "active": portable_kernels_active(), "isa": torch.backends.cpu.get_cpu_capability(),
                  "env": {{k: os.environ.get(k) for k in PORTABLE_KERNELS}}}}))
"""


@needs_avx2
def test_pinned_before_the_first_operation() -> None:
    got = _run(PIN.format(before="", enabled=True))
    assert got["active"] and got["isa"] == "AVX2"
    assert got["env"] == kernels.PORTABLE_KERNELS
    assert got["line"].startswith("the portable CPU kernels")


@needs_avx2
def test_disabled_leaves_the_cpu_its_own_kernels() -> None:
    got = _run(PIN.format(before="", enabled=False))
    assert not got["active"] and all(v is None for v in got["env"].values())
    assert got["line"].startswith("this CPU's fastest kernels") and got["isa"] in got["line"]


@needs_avx2
def test_a_users_own_setting_is_kept_and_named() -> None:
    got = _run(PIN.format(before="", enabled=True), ONEDNN_MAX_CPU_ISA="AVX512_CORE")
    assert got["env"]["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE" and not got["active"]
    assert "ONEDNN_MAX_CPU_ISA=AVX512_CORE" in got["line"]


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() == "AVX2" or not kernels.portable_kernels_possible(),
                    reason="needs a CPU whose own kernels are not AVX2's (AVX-512)")
def test_too_late_says_so_and_how_to_start_again() -> None:
    got = _run(PIN.format(before="torch.randn(64, 64).exp()\ntorch.backends.cpu.get_cpu_capability()", enabled=True))
    assert not got["active"] and got["isa"] != "AVX2"
    assert "restart the kernel" in got["line"]


def test_other_cpus_keep_their_own_kernels(monkeypatch) -> None:
    monkeypatch.setattr(kernels.platform, "machine", lambda: "aarch64")
    for name in kernels.PORTABLE_KERNELS:
        monkeypatch.delenv(name, raising=False)
    line = kernels.use_portable_kernels()
    assert "need an x86-64 CPU with AVX2" in line and "aarch64" in line
    assert not any(name in os.environ for name in kernels.PORTABLE_KERNELS)


def test_portable_kernels_train_channels_last_unmeasured(tmp_path: Path, monkeypatch) -> None:
    from fastfcn.training import step_time

    def measured(*args, **kw):
        raise AssertionError("the layout was measured")

    monkeypatch.setattr(step_time, "fastest_exact_layout", measured)
    monkeypatch.setattr(kernels, "portable_kernels_active", lambda: True)
    config = TrainConfig(dataset="procedural", image_size=64, num_images=4, backbone="resnet18_w32", jpu_width=16,
                         iterations=1, batch_size=2)
    found = trainings.row_layouts([config, replace(config, upsampling="none")], 8, tmp_path, device="cpu")
    assert [v["channels_last"] for v in found.values()] == [True, True]
    assert not (tmp_path / "layouts.json").exists()


def test_a_gpu_run_pins_nothing_and_says_so(monkeypatch) -> None:
    for name in kernels.PORTABLE_KERNELS:
        monkeypatch.delenv(name, raising=False)
    line = kernels.use_portable_kernels(True, "cuda")
    assert line.startswith("on cuda: the GPU's own kernels")
    assert not any(name in os.environ for name in kernels.PORTABLE_KERNELS)
    assert kernels.kernels_in_use("cuda") == "the GPU's kernels"


def test_kernels_in_use_names_the_cpus_kernels(monkeypatch) -> None:
    monkeypatch.setattr(kernels, "portable_kernels_active", lambda: True)
    assert kernels.kernels_in_use("cpu") == "the portable AVX2 kernels"
    monkeypatch.setattr(kernels, "portable_kernels_active", lambda: False)
    assert kernels.kernels_in_use("cpu") == "this CPU's own kernels"
