"""``torch.compile`` where this machine measured it to pay off: ``bench --fast-path`` records the compile time and
each compiled call's saving per network, and ``eval``/``predict`` in slide mode on the torch path compile by
themselves when the run has at least as many forwards as compiling needs; otherwise, and with --no-compile,
they do not."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fastfcn import benchmark as bench
from fastfcn.checkpoint import save_checkpoint
from fastfcn.cli import main
from fastfcn.inference import exact_path, fast_path
from fastfcn.inference.exact_path import compile_pays_off, network_key, record_compile, recorded_compile
from fastfcn.models import build_model

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = {"head": "encnet", "backbone": "resnet50s", "upsampling": "jpu", "num_classes": 59}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FASTFCN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _record(network: str = "encnet/resnet50s/jpu", compile_s: float = 10.0, compiled_s: float = 0.8,
            eager_s: float = 0.9, size: int = 512) -> None:
    assert record_compile(network, size, compile_s, compiled_s, eager_s, "channels_last+fold_bn", "cpu", "test")


def test_compiling_pays_off_after_the_measured_number_of_forwards(cache: Path) -> None:
    assert compile_pays_off(CONFIG, 10_000, 480) is None  # nothing measured: never assumed
    _record()  # 10 s once, 0.1 s saved per 512 px call
    assert compile_pays_off(CONFIG, 99, 512) is None
    reason = compile_pays_off(CONFIG, 100, 512)
    assert reason is not None and "after 100 forwards of 512 px" in reason and "about 100" in reason
    # at 480 px a call saves 0.1 * (480/512)^2 s: ceil(10 / 0.08789) = 114 calls
    assert compile_pays_off(CONFIG, 113, 480) is None
    assert "after 114 forwards of 480 px" in compile_pays_off(CONFIG, 114, 480)
    assert compile_pays_off({**CONFIG, "upsampling": "fpn"}, 10_000, 480) is None  # another network
    assert compile_pays_off(CONFIG, 10_000, 480, device="cuda") is None  # the record speaks for this CPU
    _record(compiled_s=0.95)  # compiled slower than eager: never
    assert compile_pays_off(CONFIG, 10**9, 512) is None
    record_file = cache / exact_path.COMPILE_RECORD_NAME
    record_file.write_text("{ damaged")
    assert recorded_compile("encnet/resnet50s/jpu") is None and compile_pays_off(CONFIG, 10**9, 512) is None


def test_auto_compile_only_for_torch_fp32_slide_on_the_cpu_with_a_compiler(cache: Path, monkeypatch) -> None:
    _record()
    monkeypatch.setattr(fast_path, "compiler_available", lambda: True)
    exact = "channels_last+fold_bn"
    assert "compiling the network" in fast_path.auto_compile(exact, CONFIG, "slide", 200, 480)
    assert fast_path.auto_compile(exact, CONFIG, "whole", 200, 480) is None  # sizes vary: it would recompile
    assert fast_path.auto_compile(exact, CONFIG, "slide", 50, 480) is None  # too few forwards
    assert fast_path.auto_compile("onnxruntime", CONFIG, "slide", 200, 480) is None  # optimises its own graph
    assert fast_path.auto_compile(f"compile+{exact}", CONFIG, "slide", 200, 480) is None  # compiled already
    assert fast_path.auto_compile(f"{exact}+bf16", CONFIG, "slide", 200, 480) is None  # measured in fp32 only
    monkeypatch.setattr(fast_path, "compiler_available", lambda: False)
    assert fast_path.auto_compile(exact, CONFIG, "slide", 200, 480) is None


def test_fast_path_records_what_compiling_cost_against_the_eager_exact_path(cache: Path) -> None:
    spec = bench.parse_rows(["encnet/resnet50/jpu"], substitute="resnet18")[0]
    opts = bench.BenchOptions(device="cpu", size=32, runs=1, warmup=0, isolate=False, threads=1)
    fp = bench.fast_path(spec, opts, ["channels_last+fold_bn", "compile+channels_last+fold_bn"], images=1)
    rows = {r["variant"]: r for r in fp["variants"]}
    entry = recorded_compile(network_key(fp))
    assert network_key(fp) == "encnet/resnet18/jpu" and fp["compile_recorded"] and entry is not None
    compiled, eager = rows["compile+channels_last+fold_bn"], rows["channels_last+fold_bn"]
    assert entry["compiled_s"] == pytest.approx(compiled["latency_median_s"])
    assert entry["eager_s"] == pytest.approx(eager["latency_median_s"])
    assert entry["compile_s"] == pytest.approx(max(compiled["first_call_s"] - compiled["latency_median_s"], 0.0))
    assert entry["size"] == 32 and entry["eager_variant"] == "channels_last+fold_bn"
    assert "recorded for this machine and encnet/resnet18/jpu" in bench.format_fast_path(fp)
    fp = bench.fast_path(spec, replace(opts, size=32), ["channels_last+fold_bn"], images=1)
    assert fp["compile_recorded"] is False  # nothing compiled in this run: the record stays as it was
    assert "recorded for this machine" not in bench.format_fast_path(fp)
    assert recorded_compile("encnet/resnet18/jpu") == entry


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=8, jpu_width=16)
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, 64, 64))
    path = tmp_path / "tiny.pth"
    save_checkpoint(model.eval(), path, classes=None, train_config={"base_size": 64, "crop_size": 48, "image_size": 64})
    return path


def test_eval_and_predict_compile_where_it_pays_off_and_not_with_no_compile(checkpoint: Path, cache: Path,
                                                                             tmp_path: Path, capsys) -> None:
    if not fast_path.compiler_available():
        pytest.skip("no C++ compiler: nothing compiles")
    record_compile("encnet/resnet18/jpu", 48, 0.5, 0.1, 1.0, "channels_last+fold_bn", "cpu", "test")  # pays at once
    metrics = {}
    for flag in ([], ["--no-compile"]):
        out = tmp_path / f"eval{len(flag)}.json"
        assert main(["eval", "--checkpoint", str(checkpoint), "--dataset", "procedural", "--num-images", "2",
                     "--device", "cpu", "--runtime", "torch", "--mode", "slide", "--no-progress", *flag,
                     "--out", str(out)]) == 0
        err = capsys.readouterr().err
        metrics[bool(flag)] = json.loads(out.read_text())
        assert ("fastfcn eval: compiling the network" in err) is not bool(flag), err
    assert metrics[False]["variant"] == "compile+channels_last+fold_bn"
    assert metrics[True]["variant"] == "channels_last+fold_bn"
    assert metrics[False]["pixAcc"] == pytest.approx(metrics[True]["pixAcc"], abs=1e-3)
    image = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(image)
    for mode, compiles in (("slide", True), ("whole", False)):
        assert main(["predict", str(image), "--checkpoint", str(checkpoint), "--out", str(tmp_path / mode),
                     "--runtime", "torch", "--mode", mode, "--no-progress"]) == 0
        err = capsys.readouterr().err
        assert ("fastfcn predict: compiling the network" in err) is compiles, err


def test_predict_decides_from_the_windows_of_every_image(checkpoint: Path, cache: Path, tmp_path: Path,
                                                         monkeypatch) -> None:
    from fastfcn.inference.predict import predict_files
    from fastfcn.inference.windows import slide_forwards

    asked = []
    monkeypatch.setattr(fast_path, "compile_pays_off", lambda config, forwards, *rest: asked.append(forwards))
    wide, square = tmp_path / "in" / "a_wide.png", tmp_path / "in" / "b_square.png"
    wide.parent.mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(wide)  # a wide image: one row of windows
    Image.fromarray(np.zeros((60, 60, 3), np.uint8)).save(square)  # a square one: two rows
    one = {"scales": (1.0,), "flip": False, "base_size": 64, "crop_size": 48}
    want = slide_forwards(20, 30, **one) + slide_forwards(60, 60, **one)
    assert want > 2 * slide_forwards(20, 30, **one)  # the first image alone would undercount the run
    result = predict_files([wide.parent], checkpoint, tmp_path / "out", device="cpu", progress=False,
                           mode="slide", runtime="torch", compile=None)
    assert asked == [want] and len(result.written) == 4 and not result.failed
    asked.clear()  # whole mode, or another runtime, decides nothing: no header is read for it
    predict_files([wide.parent], checkpoint, tmp_path / "whole", device="cpu", progress=False, mode="whole",
                  runtime="torch", compile=None)
    assert asked == []


def test_the_forwards_of_a_run_come_from_its_images(tmp_path: Path) -> None:
    from fastfcn.data.images import image_size
    from fastfcn.inference.windows import slide_forwards

    assert slide_forwards(512, 512, (1.0,), False, 520, 480) == 4  # the paper's sizes: four windows of 480
    assert slide_forwards(512, 512, (1.0,), True, 520, 480) == 8  # flipped: each window twice
    assert slide_forwards(512, 512, (0.5, 1.0), False, 520, 480) == 5  # at 260 px one crop holds it
    assert slide_forwards(375, 500, (1.0,), False, 520, 480) == 2  # 390 x 520: one row of two
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((30, 70, 3), np.uint8)).save(path)
    assert image_size(path) == (30, 70)
    (tmp_path / "not.png").write_bytes(b"no image")
    assert image_size(tmp_path / "not.png") is None and image_size(tmp_path / "absent.png") is None


class _FailingCompiled(torch.nn.Module):
    """What ``torch.compile`` gives where the C++ build fails: a module whose first call raises."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self._orig_mod = module

    def forward(self, *args, **kwargs):
        raise RuntimeError("C++ compile error: g++ failed\nthe rest of the log")


def test_a_failing_compilation_runs_the_network_uncompiled_with_a_warning(monkeypatch) -> None:
    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=5, jpu_width=16).eval()
    x = torch.randn(1, 3, 40, 48)
    monkeypatch.setattr(torch, "compile", _FailingCompiled)
    with torch.no_grad():
        want = model(x, with_aux=False)["out"]
        fast = fast_path.optimize(model, "compile+channels_last+fold_bn", example=x, compile_fallback=True)
        with pytest.warns(RuntimeWarning, match=r"compiling the network failed \(RuntimeError: C\+\+ compile error: "
                                                r"g\+\+ failed\); running it without compiling \(channels_last\+fold_bn\)"):
            got = fast(x)["out"]
        assert fast.variant == "channels_last+fold_bn" and not fast.compiled
        assert float((got - want).abs().max()) <= 1e-4
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # later calls run uncompiled without a word
            torch.testing.assert_close(fast(x)["out"], got)
        strict = fast_path.optimize(model, "compile+channels_last+fold_bn", example=x)  # the benchmark's: raise
        with pytest.raises(RuntimeError, match="C\\+\\+ compile error"):
            strict(x)
        broken = fast_path.optimize(model, "compile+channels_last+fold_bn", example=x, compile_fallback=True)
        with pytest.raises(ValueError, match="RGB images"):  # the network's own error, not the compiler's
            broken(torch.randn(1, 4, 40, 48))
