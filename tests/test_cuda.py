"""The CUDA paths, on a GPU: mixed-precision training and its resume, evaluation and prediction agreeing with the
CPU on the same weights, official checkpoints, and the benchmark's three timings.

Every test is marked ``cuda`` and skipped where no GPU is visible, so CI collects and skips them;
``scripts/gpu_run.sh`` runs them on a GPU machine (``pytest -m cuda tests/test_cuda.py``).
``FASTFCN_CUDA_TESTS_DEVICE=cpu`` runs them on the CPU instead, a dry run of their code (the CPU is then
compared with itself, and the checks that only a GPU can pass -- fp16 autocast, the GradScaler -- are left out).
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from official_fixtures import fixture_names, load_fixture, official_checkpoint, reference_input, subsample
from PIL import Image

import fastfcn
from fastfcn import benchmark as bench
from fastfcn.checkpoint import load_checkpoint, model_from_checkpoint
from fastfcn.data import EvalTransform, build_dataset
from fastfcn.data.procedural import ProceduralScenes
from fastfcn.inference.evaluate import MS_SCALES, evaluate, predict_labels
from fastfcn.inference.predict import predict_files
from fastfcn.training import TrainConfig, train
from fastfcn.utils.device import exact_fp32

DEVICE = os.environ.get("FASTFCN_CUDA_TESTS_DEVICE", "cuda")
CUDA = DEVICE.startswith("cuda")
AGREEMENT = 0.999  # labels equal on at least 99.9 % of the pixels (the fast path's rule)
IMAGE = 64

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(CUDA and not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def config(out_dir: Path, **kw) -> TrainConfig:
    base = dict(dataset="procedural", image_size=IMAGE, num_images=8, backbone="resnet18", jpu_width=16,
                batch_size=4, epochs=2, workers=0, eval_every=0, progress=False, out_dir=str(out_dir), device=DEVICE,
                lr=0.01, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def _losses(out_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (out_dir / "steps.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """A tiny EncNet+JPU trained on the device for 30 iterations, with the autocast calls it made."""
    from fastfcn.training import loop

    out = tmp_path_factory.mktemp("cuda-train") / "run"
    calls: list[torch.dtype] = []
    real = torch.autocast

    def spy(*args, **kw):
        if kw.get("enabled", True):
            calls.append(kw.get("dtype"))
        return real(*args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop.torch, "autocast", spy)
        result = train(config(out, epochs=None, iterations=30, num_images=16))
    return {"result": result, "out": out, "calls": calls, "checkpoint": Path(result["checkpoint"])}


def test_amp_training_lowers_the_loss(trained: dict) -> None:
    losses = _losses(trained["out"])
    assert len(losses) == 30 and all(math.isfinite(v) for v in losses), losses
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    ckpt = load_checkpoint(trained["checkpoint"])
    assert all(v.dtype == torch.float32 for v in ckpt["state_dict"].values() if v.is_floating_point())
    if CUDA:  # float16 autocast with the GradScaler: the default on a GPU
        assert trained["calls"] == [torch.float16] * 30
        assert ckpt["scaler"] and ckpt["scaler"]["scale"] > 0


def _relative_difference(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).norm() / (a[k].double().norm() + 1e-12))
               for k in a if a[k].is_floating_point())


def test_resume_on_the_device(tmp_path: Path) -> None:
    straight = train(config(tmp_path / "straight"))
    first = train(config(tmp_path / "cut", stop_after_epochs=1))
    assert first["epochs_done"] == 1
    saved = load_checkpoint(tmp_path / "cut" / "last.pth")
    resumed = train(config(tmp_path / "cut"), resume=True)
    assert resumed["epochs_done"] == 2 and resumed["iterations"] == straight["iterations"] == 4
    a = load_checkpoint(tmp_path / "straight" / "last.pth")
    b = load_checkpoint(tmp_path / "cut" / "last.pth")
    # cuDNN picks its algorithms per run (benchmark mode) and some backward kernels add atomically: the two
    # runs agree to rounding, not bit for bit as on the CPU
    assert _relative_difference(a["state_dict"], b["state_dict"]) < 1e-2
    assert _losses(tmp_path / "cut") == pytest.approx(_losses(tmp_path / "straight"), rel=1e-2)
    if CUDA:
        assert saved["scaler"] and b["scaler"]["scale"] > 0  # the scaler's state travels through the resume


def test_run_started_on_the_cpu_resumes_on_the_device(tmp_path: Path) -> None:
    train(config(tmp_path / "run", device="cpu", stop_after_epochs=1))
    resumed = train(config(tmp_path / "run"), resume=True)
    assert resumed["epochs_done"] == 2 and all(math.isfinite(v) for v in _losses(tmp_path / "run"))


def _agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.cpu() == b.cpu()).double().mean())


@pytest.mark.parametrize("multi_scale", [False, True], ids=["single-scale", "multi-scale"])
@pytest.mark.parametrize("mode", ["slide", "whole"])
def test_eval_on_the_device_agrees_with_the_cpu(trained: dict, multi_scale: bool, mode: str) -> None:
    cpu_model, _ = model_from_checkpoint(trained["checkpoint"])
    dev_model = copy.deepcopy(cpu_model).to(DEVICE)
    # fewer images multi-scale: the CPU's reference is the slow half (6 scales, flipped, in windows)
    data = build_dataset("procedural", split="val", num_images=3 if multi_scale else 6, image_size=IMAGE,
                         transform=EvalTransform())
    scales, flip = (MS_SCALES, True) if multi_scale else ((1.0,), False)
    same = total = 0
    with torch.no_grad():
        for i in range(len(data)):
            image, _ = data[i]
            kw = dict(scales=scales, flip=flip, base_size=IMAGE, crop_size=IMAGE - 16, mode=mode)
            ours, ref = predict_labels(dev_model, image.to(DEVICE), **kw), predict_labels(cpu_model, image, **kw)
            same += int((ours.cpu() == ref).sum())
            total += ref.numel()
    print(f"eval {mode} {'multi' if multi_scale else 'single'}-scale on {DEVICE}: labels equal to the CPU's on "
          f"{100 * same / total:.4f}% of {total} pixels")
    assert same / total >= AGREEMENT
    kw = dict(scales=scales, flip=flip, base_size=IMAGE, crop_size=IMAGE - 16, mode=mode, limit=2, progress=False)
    on_device = evaluate(dev_model, data, device=DEVICE, **kw)
    on_cpu = evaluate(cpu_model, data, device="cpu", **kw)
    assert abs(on_device["mIoU"] - on_cpu["mIoU"]) <= 0.01 and abs(on_device["pixAcc"] - on_cpu["pixAcc"]) <= 0.01


def test_predict_a_folder_on_the_device(trained: dict, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    scenes = ProceduralScenes("val", num_images=3, image_size=(72, 96), seed=5)
    for i in range(3):
        Image.fromarray(scenes.generate(i)[0]).save(folder / f"scene{i}.png")
    Image.fromarray(scenes.generate(0)[0][:40, :50]).save(folder / "small.jpg")  # another size, lossy
    result = predict_files([folder], trained["checkpoint"], tmp_path / "out", device=DEVICE, progress=False)
    assert not result.failed and len(result.written) == 8, result
    reference = predict_files([folder], trained["checkpoint"], tmp_path / "cpu", device="cpu", runtime="torch",
                              progress=False)
    assert not reference.failed
    for mask in sorted((tmp_path / "cpu").glob("*_mask.png")):
        ours, ref = np.array(Image.open(tmp_path / "out" / mask.name)), np.array(Image.open(mask))
        assert ours.shape == ref.shape
        assert (ours == ref).mean() >= AGREEMENT, mask.name


@pytest.mark.parametrize("name", fixture_names())
def test_load_official_on_the_device_matches_the_cpu(name: str, tmp_path: Path) -> None:
    meta, ref = load_fixture(name)
    path = tmp_path / "model_best.pth.tar"
    torch.save(official_checkpoint(meta), path)
    model = fastfcn.load_official(path, **meta["load"])
    with torch.no_grad(), exact_fp32():
        on_cpu = subsample(model(reference_input()))
        on_device = {k: v.cpu() for k, v in subsample(model.to(DEVICE)(reference_input().to(DEVICE))).items()}
    assert set(on_device) == set(on_cpu) == set(ref)
    diffs = {k: float((on_device[k] - on_cpu[k]).abs().max()) for k in ref}
    print(f"{name}: max abs difference, {DEVICE} against the CPU: {diffs}")
    assert max(diffs.values()) <= 1e-3, diffs
    assert max(float((on_device[k] - ref[k]).abs().max()) for k in ref) <= 1e-3  # and the official outputs


@pytest.mark.parametrize(("dtype", "channels_last"), [("fp32", False), ("bf16", True)])
def test_bench_times_three_ways_on_the_device(dtype: str, channels_last: bool) -> None:
    if dtype == "bf16" and not CUDA:
        pytest.skip("bf16 is emulated on most CPUs (slow); the GPU computes it natively")
    opts = bench.BenchOptions(device=DEVICE, dtype=dtype, channels_last=channels_last, size=IMAGE, runs=3, warmup=1,
                              isolate=False, official_fps=True)
    specs = bench.parse_rows(["encnet/resnet50/none", "encnet/resnet50/jpu"], substitute="resnet18")
    results = bench.run_benchmark(specs, opts)
    for r in results:
        assert r["device"] == DEVICE and r["fps"] > 0 and r["fps_unsynchronised"] > 0
        assert (r["fps_cuda_events"] > 0) if CUDA else r["fps_cuda_events"] is None
        assert r["peak_mem_bytes"] is not None and r["peak_mem_bytes"] > 0
    assert results[1]["ratio"] > 0 and results[1]["paper_ratio"] == pytest.approx(2.0, abs=0.01)
