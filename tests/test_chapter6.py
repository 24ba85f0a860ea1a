"""Chapter 6 ("How fast is FastFCN?"): the report functions it prints with, and its GPU-results branch.

The unit tests feed hand-made result dicts to the tables and figures of ``fastfcn.benchmark.report``.
The chapter test writes a small but real GPU run into ``<tmp>/gpu/`` as ``scripts/gpu_run.sh`` writes it
(``bench.json``, ``device.json``, ``bench_fast_path.json``: tiny in-process benchmarks relabelled as a GPU's)
and executes the chapter in the smoke profile with ``results_dir`` pointing at ``<tmp>``: that folder holds
no trained fast-path file and no int8 file, so the "not measured" branches of the trained-weights and int8
sections run too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fastfcn import benchmark as bench
from fastfcn import paper
from fastfcn.benchmark import report
from fastfcn.book import RESULTS_ENV
from fastfcn.utils.text import fit_lines

REPO = Path(__file__).resolve().parents[1]
BOOK_DIR = REPO / "book"
CHAPTER = BOOK_DIR / "06_how_fast.md"


def result(head: str = "encnet", upsampling: str = "jpu", backbone: str = "resnet50", **fields) -> dict:
    """A result row as ``run_benchmark`` returns it, with only the fields the report functions read."""
    r = {"kind": "fastfcn", "name": f"{head}/{upsampling}", "head": head, "backbone": backbone + "s",
         "upsampling": upsampling, "paper_backbone": backbone, "dilated_backbone": False, "mode": "inference",
         "size": 512, "latency_median_s": 0.5, "gmacs": 10.0, "fps": 2.0, "ratio": None, "paper_ratio": None,
         "official_cpu_latency_s": None, "peak_mem_bytes": None}
    r.update(fields)
    return r


# ------------------------------------------------------------------------------------------------
# the chapter's source


def test_chapter_source_uses_the_package_helpers() -> None:
    import jupytext

    text = CHAPTER.read_text()
    assert "myst_nb" not in text and "def note" not in text and "def row" not in text
    assert "from fastfcn.book import note, record" in text
    nb = jupytext.read(CHAPTER)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert "hide-input" not in params[0].metadata["tags"]
    lines = [ln.split("#")[0].strip() for ln in params[0].source.splitlines()]
    assert [ln for ln in lines if ln] == ['profile = "quick"', 'device = "auto"', "seed = 0", 'results_dir = "results"']
    assert 'Path("results")' not in text and "RESULTS = Path(results_dir)" in text
    hidden = [c for c in nb.cells if "hide-input" in c.metadata.get("tags", [])]
    assert len(hidden) >= 5 and all(any(helper in c.source for helper in ("plt.", "report.", "cost_check."))
                                    for c in hidden)


# ------------------------------------------------------------------------------------------------
# report functions on hand-made results


def test_find_row() -> None:
    plain = result("encnet", "jpu")
    rows = [result("deeplabv3", "none", kind="torchvision"), result("encnet", "jpu", dilated_backbone=True),
            result("encnet", "jpu", "resnet101"), plain, result("encnet", "jpu", mode="train")]
    assert report.find_row(rows, "encnet", "jpu") is plain
    assert report.find_row(rows, "encnet", "jpu", "resnet101") is rows[2]
    assert report.find_row(rows, "encnet", "jpu", mode="train") is rows[4]
    assert report.find_row(rows, "encnet", "none") is None
    assert report.find_row(rows, "deeplabv3", "none") is None  # torchvision rows are not Table 2 rows
    assert report.find_row(rows, "psp", "jpu", mode="train") is None


def test_describe_run() -> None:
    opts = bench.BenchOptions(device="cpu", size=64, runs=3, warmup=1, isolate=False)
    env = {"device_name": "Some CPU", "torch_threads": 2, "torch": "2.0", "torchvision": "0.15"}
    assert report.describe_run("smoke", opts, env, "resnet18") == (
        "profile 'smoke': Some CPU (cpu), 2 threads, torch 2.0, torchvision 0.15\n"
        "input 64x64, batch 1, fp32, median of 3 run(s) after 1 warm-up, timed in rounds (one call of every\n"
        "  model per round); in-process\n"
        "every Table 2 row is built on resnet18 here (smoke profile): the paper's columns are for\n"
        "  ResNet-50/101")
    opts.isolate = True
    text = report.describe_run("full", opts, env)
    assert text.endswith("; peak memory one fresh process per measurement") and len(text.splitlines()) == 3
    assert max(map(len, text.splitlines())) <= 100


RATIO_ROWS = [result("encnet", "none", ratio=1.0, paper_ratio=1.0),
              result("encnet", "jpu", ratio=1.5, paper_ratio=2.0),
              result("psp", "fpn", "resnet101", ratio=1.25, paper_ratio=1.25),
              result("aspp", "jpu", ratio=None, paper_ratio=1.5),  # the dilated baseline was not measured
              result("deeplabv3", "jpu", kind="torchvision", ratio=9.0, paper_ratio=1.0)]


def test_format_ratio_table() -> None:
    assert report.format_ratio_table(RATIO_ROWS).splitlines() == [
        "head    backbone   upsampling ours x dilated paper x dilated ours / paper",
        "encnet  resnet50   jpu                  1.50            2.00         0.75",
        "psp     resnet101  fpn                  1.25            1.25         1.00"]
    assert report.format_ratio_table([]).count("\n") == 0  # the header alone


def test_ratio_figures() -> None:
    rows = RATIO_ROWS + [result("encnet", "bilinear", ratio=1.23456, paper_ratio=1.6543)]
    assert report.ratio_figures(rows) == {
        "ratio_encnet_resnet50_jpu": 1.5, "paper_ratio_encnet_resnet50_jpu": 2.0,
        "ratio_psp_resnet101_fpn": 1.25, "paper_ratio_psp_resnet101_fpn": 1.25,
        "ratio_encnet_resnet50_bilinear": 1.235, "paper_ratio_encnet_resnet50_bilinear": 1.654}


def test_compare_with_paper() -> None:
    assert report.compare_with_paper(1.89, 2.0) == "smaller than"
    assert report.compare_with_paper(1.91, 2.0) == "about the same as"
    assert report.compare_with_paper(2.09, 2.0) == "about the same as"
    assert report.compare_with_paper(2.11, 2.0) == "larger than"


def test_speedup_figures() -> None:
    dilated = result("encnet", "none", latency_median_s=0.61234, gmacs=156.0)
    jpu = result("encnet", "jpu", latency_median_s=0.30049, gmacs=66.0, ratio=2.0378, paper_ratio=2.0011)
    assert report.speedup_figures(dilated, jpu) == {
        "dilated_latency_ms": 612.3, "latency_ms": 300.5, "gmacs_ratio": 2.36, "ratio": 2.0378,
        "paper_ratio": 2.0011, "versus_paper": "about the same as"}
    missing = report.speedup_figures(dilated, None)
    assert missing["versus_paper"] == "not measured against"
    assert all(math.isnan(missing[k]) for k in ("dilated_latency_ms", "latency_ms", "gmacs_ratio", "ratio",
                                                "paper_ratio"))


def test_official_comparison() -> None:
    rows = [result("encnet", "none", latency_median_s=1.8, official_cpu_latency_s=1.5),
            result("encnet", "jpu", latency_median_s=0.96, official_cpu_latency_s=0.96),
            result("psp", "jpu", latency_median_s=0.5),
            result("aspp", "jpu", latency_median_s=3.0, official_cpu_latency_s=1.0)]
    assert report.format_official_comparison(rows).splitlines() == [
        f"ours against the official implementation, timed on {paper.OFFICIAL_CPU_MACHINE} (fp32, batch 1, 512x512, "
        "aux head):",
        "  encnet/none    resnet50   ours 1.80 s, official 1.50 s (1.20x)",
        "  encnet/jpu     resnet50   ours 0.96 s, official 0.96 s (1.00x)",
        "  aspp/jpu       resnet50   ours 3.00 s, official 1.00 s (3.00x)"]
    assert report.official_latency_ratio(rows) == 1.2  # the median of 1.2, 1.0 and 3.0
    assert report.official_latency_ratio(rows[:2]) == 1.1
    assert report.official_latency_ratio(rows[2:3]) is None
    assert report.format_official_comparison(rows[2:3]).startswith("(the official implementation's CPU latencies")


def test_format_cost_per_gmac() -> None:
    rows = [result("encnet", "none", latency_median_s=0.5, gmacs=100.0),
            result("encnet", "jpu", latency_median_s=0.3, gmacs=50.0),
            result("fcn", "none", kind="torchvision", name="fcn_resnet50", backbone="resnet50",
                   latency_median_s=0.2, gmacs=80.0)]
    assert report.format_cost_per_gmac(rows, 5.4321).splitlines() == [
        "effective cost per model, ms per GMAC (the fit's slope is 5.43):",
        "  fcn_resnet50         resnet50s    2.50",
        "  encnet/none          resnet50s    5.00",
        "  encnet/jpu           resnet50s    6.00"]


def test_peak_memory_ratio_and_dilated_vs_jpu() -> None:
    mib = 2**20
    assert report.peak_memory_ratio({"peak_mem_bytes": 30 * mib}, {"peak_mem_bytes": 10 * mib}) == 3.0
    assert report.peak_memory_ratio({"peak_mem_bytes": None}, {"peak_mem_bytes": 10}) == 0.0
    assert report.peak_memory_ratio({"peak_mem_bytes": 10}, {"peak_mem_bytes": None}) == 10.0
    assert report.peak_memory_ratio({"peak_mem_bytes": 10}, {"peak_mem_bytes": 0}) == 10.0
    sweep = [result("encnet", "none", size=256, latency_median_s=0.4, peak_mem_bytes=40 * mib),
             result("encnet", "jpu", size=256, latency_median_s=0.2, peak_mem_bytes=16 * mib),
             result("encnet", "none", size=512, latency_median_s=1.5, peak_mem_bytes=None),
             result("encnet", "jpu", size=512, latency_median_s=0.5, peak_mem_bytes=64 * mib)]
    assert report.dilated_vs_jpu(sweep) == {
        256: {"latency_ratio": 2.0, "memory_ratio": 2.5, "dilated_peak_mib": 40.0, "jpu_peak_mib": 16.0},
        512: {"latency_ratio": 3.0, "memory_ratio": 0.0, "dilated_peak_mib": 0.0, "jpu_peak_mib": 64.0}}


def test_format_memory_fits() -> None:
    mib = 2**20
    fits = [{"name": "encnet/none", "backbone": "resnet50s", "per_image_bytes": 2200.4 * mib,
             "other_fixed_bytes": 12 * mib, "state_bytes": 420 * mib, "max_batch": 5},
            {"name": "encnet/jpu", "backbone": "resnet50s", "per_image_bytes": 990 * mib,
             "other_fixed_bytes": 0, "state_bytes": 500 * mib, "max_batch": 11}]
    assert report.format_memory_fits(fits, 512).splitlines() == [
        "bytes saved for backward at 512x512 (training mode), and the largest batch for 12 GB:",
        "  encnet/none  resnet50s      2200 MiB per image (+12 MiB fixed),",
        "    weights+grads+momentum 420 MiB -> at most 5 images",
        "  encnet/jpu   resnet50s       990 MiB per image (+0 MiB fixed),",
        "    weights+grads+momentum 500 MiB -> at most 11 images"]


def test_format_work_split() -> None:
    parts = [{"backbone": 150.04, "head": 5.0, "total": 156.04},
             {"backbone": 40.0, "upsample": 20.5, "head": 5.5, "total": 66.0}]
    trio = [result(latency_median_s=0.6), result(latency_median_s=0.3004)]
    assert report.format_work_split(["dilated, no JPU", "plain + JPU\n(FastFCN)"], parts, trio).splitlines() == [
        "dilated, no JPU        backbone  150.0  upsample   0.0  head   5.0  total  156.0 GMACs    600 ms",
        "plain + JPU (FastFCN)  backbone   40.0  upsample  20.5  head   5.5  total   66.0 GMACs    300 ms"]
    with pytest.raises(ValueError):
        report.format_work_split(["one label"], parts, trio)


def variant(name: str, dtype: str, latency: float, changed: float, on_boundary: float | None = None,
            early: bool = False) -> dict:
    return {"variant": name, "dtype": dtype, "early_fp32": early, "latency_median_s": latency,
            "speedup": 1.0 / latency, "changed_fraction": changed, "changed_on_boundary_fraction": on_boundary}


TRAINED = {"variants": [variant("fp32", "fp32", 1.0, 0.0), variant("channels_last", "fp32", 0.8, 0.0001),
                        variant("bf16", "bf16", 0.4, 0.002, 0.9), variant("bf16+early_fp32", "bf16", 0.5, 0.0005,
                                                                           0.95, early=True)],
           "best_variant": "bf16+early_fp32", "best_speedup": 2.0, "best_agreement": 0.9995,
           "input_rounding_changed_fraction": 0.00012, "boundary_fraction": 0.0345}


def test_trained_figures() -> None:
    assert report.trained_figures(TRAINED) == {
        "trained_best_speedup": (2.0, "x"), "trained_best_agreement_pct": (99.95, "%"),
        "trained_input_rounding_pct": (0.012, "%"), "trained_fp32_latency_ms": (1000.0, "ms"),
        "trained_bf16_max_changed_pct": (0.2, "%"), "trained_bf16_changed_on_boundary_pct": (90.0, "%"),
        "trained_boundary_pct": (3.45, "%"), "trained_exact_max_changed_pct": (0.01, "%"),
        "trained_bf16_min_changed_pct": (0.05, "%"), "trained_early_changed_pct": (0.05, "%"),
        "trained_exact_speedup": (1.25, "x"), "trained_fastest_speedup": (2.5, "x"),
        "trained_fastest_changed_pct": (0.2, "%")}
    exact_only = {**TRAINED, "variants": TRAINED["variants"][:2], "best_variant": "channels_last"}
    figures = report.trained_figures(exact_only)
    for key in ("bf16_max_changed_pct", "bf16_changed_on_boundary_pct", "bf16_min_changed_pct", "early_changed_pct"):
        assert math.isnan(figures[f"trained_{key}"][0]), key
    assert figures["trained_fastest_speedup"] == (1.25, "x")
    nothing = report.trained_figures(None)
    assert list(nothing) == list(figures) and all(math.isnan(v) for v, _ in nothing.values())


def test_trained_phrases() -> None:
    assert report.trained_phrases(TRAINED, {"cpu_flags": ["avx2", "avx512_bf16"]}) == {
        "trained_best_variant": "`bf16+early_fp32`", "trained_exact_variant": "`channels_last`",
        "trained_fastest_variant": "`bf16`",
        "trained_cpu_bf16": "the CPU it was measured on has AVX-512 BF16 instructions"}
    amx = report.trained_phrases(TRAINED, {"cpu_flags": ["avx512_bf16", "amx_bf16"]})["trained_cpu_bf16"]
    assert amx.startswith("the CPU it was measured on has AMX tiles")
    assert report.trained_phrases(TRAINED)["trained_cpu_bf16"] == "its CPU has no bf16 matrix instructions listed"
    assert set(report.trained_phrases(None).values()) == {"(not measured)"}


def test_format_gpu_comparison() -> None:
    gpu = [result("encnet", "none", ratio=1.0, paper_ratio=1.0, fps=20.0, fps_unsynchronised=25.0),
           result("encnet", "jpu", ratio=2.5, paper_ratio=2.0010655, fps=50.04),
           result("encnet", "jpu", mode="train", ratio=1.4, paper_ratio=2.0, fps=9.0),
           result("deeplabv3", "none", kind="torchvision", fps=30.0),
           result("encnet", "jpu", dilated_backbone=True, ratio=1.1, fps=22.0),
           result("psp", "jpu", "resnet101", ratio=3.0, paper_ratio=2.5, fps=10.0, fps_unsynchronised=123.45)]
    cpu = [result("encnet", "none", ratio=1.0), result("encnet", "jpu", ratio=1.8),
           result("psp", "jpu", "resnet101", mode="train", ratio=0.9)]  # a training row is not an inference one
    assert report.format_gpu_comparison(gpu, cpu).splitlines() == [
        "head    backbone   ups       CPU x dilated GPU x dilated paper x dilated  GPU FPS GPU FPS unsynced",
        "encnet  resnet50   none               1.00          1.00            1.00     20.0             25.0",
        "encnet  resnet50   jpu                1.80          2.50            2.00     50.0                -",
        "psp     resnet101  jpu                   -          3.00            2.50     10.0            123.5"]


# ------------------------------------------------------------------------------------------------
# the chapter, executed with a GPU results file


def _relabel(path: Path) -> dict:
    doc = json.loads(path.read_text())
    doc["environment"].update(device="cuda", device_name="Test GPU")
    doc["options"]["device"] = "cuda"
    for r in doc["results"]:
        r["device"] = "cuda"
    if doc.get("fast_path"):
        doc["fast_path"]["device"] = "cuda"
    path.write_text(json.dumps(doc, indent=1))
    return doc


def _gpu_results_file(folder: Path) -> tuple[Path, dict]:
    """A tiny real GPU run (in-process benchmarks on the CPU, relabelled as a GPU's) in ``folder/gpu``, the files
    ``scripts/gpu_run.sh`` writes: ``bench.json`` (official FPS too), ``device.json``, ``bench_fast_path.json``."""
    from fastfcn.benchmark import gpu_report

    gpu = folder / gpu_report.GPU_DIR
    opts = bench.BenchOptions(device="cpu", size=64, runs=1, warmup=0, isolate=False, official_fps=True)
    specs = bench.parse_rows(["encnet/resnet50/none", "encnet/resnet50/jpu"], substitute="resnet18")
    results = bench.run_benchmark(specs, opts, modes=("inference", "train"))
    path = bench.write_json(gpu / "bench.json", results, opts)
    fast = bench.fast_path(specs[1], opts, ["fp32", "channels_last"], images=1)
    bench.write_json(gpu / "bench_fast_path.json", [], opts, {"fast_path": fast})
    (gpu / "device.json").write_text(json.dumps({"name": "Test GPU", "driver": "1.0", "torch": "2.11.0",
                                                 "cuda": "13.0", "date": "2026-12-01T00:00:00+00:00",
                                                 "commit": "abc123def0123"}))
    _relabel(gpu / "bench_fast_path.json")
    return path, _relabel(path)


def _stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def _run_chapter(tmp_path, results_dir) -> list:
    """The chapter executed in the smoke profile with ``results_dir``: its code cells, none failed."""
    pytest.importorskip("papermill")
    jupytext = pytest.importorskip("jupytext")
    import papermill

    nb = jupytext.read(CHAPTER)
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    out = papermill.execute_notebook(
        nb, str(tmp_path / "out.ipynb"),
        parameters={"profile": "smoke", "device": "cpu", "seed": 0, "results_dir": str(results_dir)},
        kernel_name="python3", cwd=str(BOOK_DIR), progress_bar=False,
        extra_arguments=["--IPKernelApp.log_level=ERROR"])
    code = [c for c in out["cells"] if c["cell_type"] == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    return code


def _check_not_measured(code: list, figures: dict) -> None:
    """The trained fast-path and int8 sections without a stored measurement: they say how to make one, and
    their figures are NaN (null)."""
    trained_cell = next(c for c in code if "result_files(RESULTS)" in c["source"] and "gpu" not in c["source"])
    assert _stream_text(trained_cell).startswith("No book/results/fast_path_*.json")
    int8_cell = next(c for c in code if "int8_bench.result_files(RESULTS)" in c["source"])
    assert _stream_text(int8_cell).startswith("No book/results/int8_*.json: no int8 measurement yet.")
    assert figures["trained_fast_files"]["value"] == 0
    assert figures["trained_best_speedup"] == {"value": None, "unit": "x"}  # NaN: not measured
    assert figures["trained_best_variant"]["value"] == "(not measured)"
    assert figures["int8_ort_speedup"] == {"value": None, "unit": "x"}  # NaN: no int8 file in this results folder
    assert figures["int8_verdict"]["value"].startswith("int8 was not measured")


def test_chapter_shows_gpu_results(tmp_path, monkeypatch, one_thread) -> None:
    results_dir = tmp_path / "results"
    results_dir.mkdir()
    path, doc = _gpu_results_file(results_dir)
    figures_path = tmp_path / "figures.json"
    monkeypatch.setenv(RESULTS_ENV, str(figures_path))  # the kernel inherits it: record() writes there

    code = _run_chapter(tmp_path, results_dir)
    from fastfcn.benchmark import gpu_report

    gpu_cell = next(c for c in code if "load_gpu_run(RESULTS" in c["source"])
    text = _stream_text(gpu_cell)
    run = gpu_report.load_gpu_run(path.parent)
    gpu_rows = gpu_report.gpu_rows(run)
    assert text.startswith("Test GPU, driver 1.0, torch 2.11.0, CUDA 13.0, 2026-12-01,\n  commit abc123def0; 64x64")
    summary = fit_lines([gpu_report.gpu_summary(run, gpu_rows)])  # as the chapter prints it
    assert gpu_report.format_gpu_table(gpu_rows) in text and summary in text
    lines = text.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("head    backbone   ups       CPU x dilated"))
    rows = [ln.split() for ln in lines[header + 1:header + 3]]  # inference rows only: the training rows are skipped
    gpu = {r["upsampling"]: r for r in doc["results"] if r["mode"] == "inference"}
    assert [r[:3] for r in rows] == [["encnet", "resnet50", "none"], ["encnet", "resnet50", "jpu"]]
    assert rows[1][4:7] == [f"{gpu['jpu']['ratio']:.2f}", "2.00", f"{gpu['jpu']['fps']:.1f}"]
    assert rows[1][7] == f"{gpu['jpu']['fps_unsynchronised']:.1f}"  # the official FPS script's way
    assert lines[header + 3] == ""  # then the fast path, measured on the "GPU"
    assert bench.format_fast_path(run.fast_path) in text
    assert "fast inference path: encnet/jpu resnet18 at 64x64, batch 1, cuda" in text
    assert gpu_report.NO_GPU_RUN not in text

    figures = json.loads(figures_path.read_text())
    _check_not_measured(code, figures)
    assert figures["gpu_run_committed"] == {"value": True, "unit": None}
    assert figures["gpu_encnet_r50_ratio"] == {"value": round(gpu["jpu"]["ratio"], 2), "unit": "x"}
    assert figures["gpu_encnet_r50_paper_ratio"] == {"value": 2.0, "unit": "x"}
    assert figures["gpu_encnet_r101_ratio"] == {"value": None, "unit": "x"}  # not in this run: NaN, null
    from fastfcn.inference.fast_path import other_runtimes

    # the bare name; the installed runtimes run beside the smoke profile's variants
    assert figures["fast_best_variant"]["value"] in ("fp32", "channels_last", "fold_bn", *other_runtimes("cpu"))
    assert figures["bench_size"] == {"value": 64, "unit": "px"}
