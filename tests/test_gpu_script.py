"""scripts/gpu_run.sh on the CPU in the smoke profile: every step runs (the CUDA tests are skipped), and what a
GPU run brings back -- at most 8 files -- is there and parses. Keeps the GPU run from rotting between GPU runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from fastfcn.benchmark import gpu_report

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_run.sh"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    pytest.importorskip("papermill")
    out = tmp_path_factory.mktemp("gpu-run")
    env = {k: v for k, v in os.environ.items() if k != "OUT"}  # --out decides, not a device tool's $OUT
    # one thread per process: the CI machines' 2 cores are shared, oversubscribed OpenMP threads crawl
    env.update(PYTHON=sys.executable, OMP_NUM_THREADS="1", FASTFCN_COMMIT="0123abcd")
    proc = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--profile", "smoke", "--out", str(out),
                           "--chapters", "03"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    return proc, out


def test_smoke_run_on_the_cpu(smoke_run) -> None:
    proc, out = smoke_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    names = sorted(p.name for p in out.iterdir())
    assert names == ["bench.json", "bench_fast_path.json", "book_notebooks.tar.gz", "book_results.tar.gz",
                     "device.json", "logs.tar.gz", "summary.json"] or names == sorted(
        ["bench.json", "bench_amp.json", "bench_fast_path.json", "book_notebooks.tar.gz", "book_results.tar.gz",
         "device.json", "logs.tar.gz", "summary.json"])
    assert len(names) <= 8 and all(p.is_file() for p in out.iterdir())  # what the device tool can return

    device = json.loads((out / "device.json").read_text())
    assert device["device"] == "cpu" and device["name"] and device["torch"] and device["commit"] == "0123abcd"

    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] and summary["profile"] == "smoke"
    status = {s["name"]: s["status"] for s in summary["steps"]}
    assert status["device"] == status["tests"] == status["bench"] == status["fast-path"] == "ok", status
    assert status["book-smoke-03"] == "ok" and status["amp"] in ("ok", "skipped")
    tests = summary["tests"]
    assert tests["tests"] > 0 and tests["tests"] == tests["skipped"]  # collected, and skipped without a GPU
    assert tests["failures"] == tests["errors"] == 0

    run = gpu_report.load_gpu_run(out)  # what chapter 6 reads once the files are in book/results/gpu/
    assert run is not None and run.fast_path is not None
    assert {r["upsampling"] for r in run.fp32["results"]} == {"none", "jpu"}
    assert all(r["fps"] > 0 and r["fps_unsynchronised"] > 0 for r in run.fp32["results"])
    assert run.fp32["options"]["official_fps"] and run.fp32["options"]["runs"] == 2
    rows = gpu_report.gpu_rows(run)
    assert "encnet/jpu" in gpu_report.format_gpu_table(rows)

    with tarfile.open(out / "book_results.tar.gz") as tar:
        (member,) = tar.getnames()
        assert member.startswith("gpu/03_") and member.endswith(".json")
        chapter = json.load(tar.extractfile(member))
    assert chapter["profile"] == "smoke" and chapter["device"] == "cpu" and chapter["figures"]
    assert chapter["environment"]["git_commit"]  # the checkout's, or FASTFCN_COMMIT where there is none
    with tarfile.open(out / "book_notebooks.tar.gz") as tar:
        assert [n for n in tar.getnames() if n.endswith(".ipynb")] == [member.replace(".json", ".ipynb")]
    with tarfile.open(out / "logs.tar.gz") as tar:
        logs = set(tar.getnames())
    assert {"logs/tests.log", "logs/bench.log", "logs/pytest_cuda.xml", "logs/steps.tsv"} <= logs


def test_bad_arguments_are_refused() -> None:
    for args, message in ((["--device", "tpu"], "--device is cuda"), (["--profile", "huge"], "--profile is"),
                          (["--budget", "soon"], "--budget is"), (["--out"], "--out needs a value"),
                          (["--frobnicate"], "unknown argument")):
        proc = subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
    help_text = subprocess.run(["bash", str(SCRIPT), "--help"], cwd=REPO, capture_output=True, text=True).stdout
    assert "--profile smoke|quick|full" in help_text and "book_results.tar.gz" in help_text
