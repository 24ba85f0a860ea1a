"""Run one measurement in a fresh Python process and bring its result back.

A fresh process is what makes the CPU peak-memory counters mean "this measurement" (see
:mod:`fastfcn.benchmark.memory`), and it keeps one measurement's compiled kernels, allocator
pages and thread settings from leaking into the next. The task names its function as
``"module:function"``; its keyword arguments and its result travel as JSON.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["run_in_subprocess", "worker_main"]

RESULT_MARK = "FASTFCN_BENCH_RESULT "


def run_in_subprocess(target: str, kwargs: dict[str, Any], what: str = "", timeout: float | None = None) -> Any:
    """``target(**kwargs)`` in a new interpreter (the same one as this process); returns its result."""
    env = dict(os.environ)
    # the child imports fastfcn from where this process did (a checkout that is not installed, too)
    where = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = where + os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else where
    task = json.dumps({"target": target, "kwargs": kwargs})
    proc = subprocess.run([sys.executable, "-m", "fastfcn.benchmark.worker"], input=task, capture_output=True,
                          text=True, env=env, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker failed (exit {proc.returncode}) for {what or target}:\n"
                           f"{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_MARK):])


def worker_main() -> None:
    """Read a task from stdin, run it, print its result on one marked line."""
    task = json.loads(sys.stdin.read())
    module, _, name = task["target"].partition(":")
    result = getattr(importlib.import_module(module), name)(**task["kwargs"])
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    worker_main()
