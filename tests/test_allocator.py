"""Keeping freed memory (fastfcn.utils.allocator): set by `import fastfcn`, refused on request, and what it does:
a block of tens of megabytes freed and allocated again costs no new pages."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from fastfcn.benchmark.allocator_effect import allocator_effect, format_allocator_effect
from fastfcn.utils.allocator import OPT_OUT, keep_freed_memory, keeps_freed_memory

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")

# in a fresh interpreter: import fastfcn, then allocate, touch and free a 48 MB tensor sixteen times; the minor page
# faults of the last four rounds (the first ones may take new pages either way while the heap settles: two to six
# rounds on a 2-core EPYC, 2026-12-05)
FAULTS = """
import json, resource, torch, fastfcn
from fastfcn.utils.allocator import keeps_freed_memory
faults = []
for _ in range(16):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(12 << 20)
    del x
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": keeps_freed_memory(), "faults": sum(faults[12:])}))
"""


def _fresh(opt_out: str) -> dict:
    env = {**os.environ, OPT_OUT: opt_out}
    done = subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_keeps_freed_memory() -> None:
    assert keeps_freed_memory()
    assert keep_freed_memory()  # a second call changes nothing and says it is in force


def test_freed_blocks_are_reused_and_the_opt_out_keeps_glibc_defaults() -> None:
    kept, system = _fresh("0"), _fresh("1")
    assert kept["kept"] and not system["kept"]
    # 48 MB is 12,288 pages of 4 KiB: glibc's defaults give them back and fault them in again every round
    assert system["faults"] > 4 * 10_000, system  # four rounds
    assert kept["faults"] < 100, kept


def test_allocator_effect_measures_both_settings() -> None:
    result = allocator_effect("forward", "encnet/resnet50/jpu", "fp32", size=64, runs=1, rounds=1,
                              substitute="resnet18")
    assert list(result["settings"]) == ["glibc defaults", "freed memory kept"]
    assert all(s["seconds"] > 0 and len(s["rounds"]) == 1 for s in result["settings"].values())
    assert [r["kept"] for s in result["settings"].values() for r in s["rounds"]] == [False, True]
    assert "speed-up of keeping freed memory" in format_allocator_effect(result)
    with pytest.raises(ValueError, match="forward or training"):
        allocator_effect("inference")
