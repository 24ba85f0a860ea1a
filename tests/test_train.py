"""Training: schedule, parameter groups, loss, a real decrease, exact resume, NaN handling, torchrun/gloo."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fastfcn.checkpoint import load_checkpoint, model_from_checkpoint
from fastfcn.models import build_model
from fastfcn.training import NonFiniteLossError, TrainConfig, param_groups, poly_lr, set_lr, train
from fastfcn.training.losses import SegmentationLoss, class_presence, default_aux_weight

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(out_dir: Path, **kw) -> TrainConfig:
    base = dict(dataset="procedural", image_size=64, num_images=8, backbone="resnet18", jpu_width=16,
                batch_size=4, epochs=2, workers=0, eval_every=0, progress=False, out_dir=str(out_dir))
    base.update(kw)
    return TrainConfig(**base)


def test_poly_schedule_values() -> None:
    assert poly_lr(0.01, 0, 100) == 0.01
    assert poly_lr(0.01, 50, 100) == pytest.approx(0.01 * 0.5 ** 0.9)
    assert poly_lr(0.01, 99, 100) == pytest.approx(0.01 * 0.01 ** 0.9)
    assert poly_lr(0.01, 100, 100) == 0.0
    values = [poly_lr(1.0, i, 10) for i in range(11)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_param_groups_head_at_ten_times_lr() -> None:
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=4, jpu_width=16)
    groups = param_groups(model, 0.01)
    assert [g["name"] for g in groups] == ["backbone", "upsample", "head", "aux_head"]
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.1, 0.1, 0.1])
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {id(p) for p in model.backbone.parameters()} == {id(p) for p in groups[0]["params"]}
    opt = torch.optim.SGD(groups, lr=0.01, momentum=0.9)
    set_lr(opt, poly_lr(0.01, 5, 10))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5 ** 0.9)
    assert opt.param_groups[2]["lr"] == pytest.approx(0.1 * 0.5 ** 0.9)
    # bilinear upsampling has no parameters: its group is dropped, nothing is missed
    model = build_model("psp", backbone="resnet18", upsampling="bilinear", num_classes=4, jpu_width=16)
    names = [g["name"] for g in param_groups(model, 0.01)]
    assert "backbone" in names and "head" in names


def test_dataset_defaults() -> None:
    assert TrainConfig(dataset="pcontext").resolved().lr == pytest.approx(0.001)
    assert TrainConfig(dataset="ade20k", batch_size=8).resolved().lr == pytest.approx(0.005)
    c = TrainConfig(dataset="ade20k").resolved()
    assert (c.epochs, c.crop_size, c.base_size, c.backbone, c.jpu_width) == (120, 480, 520, "resnet50", 512)
    c = TrainConfig().resolved()
    assert c.dataset == "procedural" and c.crop_size == c.image_size == 128 and c.backbone == "resnet18"
    assert (c.aux_weight, c.se_weight) == (0.2, 0.2)
    c = TrainConfig(head="psp").resolved()
    assert (c.aux_weight, c.se_weight) == (0.4, 0.0)
    assert default_aux_weight("aspp") == 0.4
    with pytest.raises(ValueError, match="SE loss"):
        TrainConfig(head="aspp", se_weight=0.2).resolved()


def test_loss_terms() -> None:
    target = torch.tensor([[[0, 1], [255, 1]], [[2, 2], [2, 255]]])
    assert class_presence(target, 3).tolist() == [[1, 1, 0], [0, 0, 1]]
    logits = torch.zeros(2, 3, 2, 2)
    outputs = {"out": logits, "aux": logits, "se": torch.zeros(2, 3)}
    total, parts = SegmentationLoss(3, aux_weight=0.4, se_weight=0.2)(outputs, target)
    assert parts["ce"].item() == pytest.approx(math.log(3))
    assert parts["se"].item() == pytest.approx(math.log(2))
    assert total.item() == pytest.approx(1.4 * math.log(3) + 0.2 * math.log(2))


def test_loss_really_decreases() -> None:
    from fastfcn.data import EvalTransform, build_dataset

    torch.manual_seed(0)
    data = build_dataset("procedural", split="train", num_images=4, image_size=64, transform=EvalTransform())
    images = torch.stack([data[i][0] for i in range(4)])
    masks = torch.stack([data[i][1] for i in range(4)])
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=data.num_classes, jpu_width=16)
    criterion = SegmentationLoss(data.num_classes, aux_weight=0.2, se_weight=0.2)
    opt = torch.optim.SGD(param_groups(model, 0.01), lr=0.01, momentum=0.9, weight_decay=1e-4)
    model.train()
    losses = []
    for _ in range(10):
        loss, _ = criterion(model(images), masks)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert all(math.isfinite(v) for v in losses)
    assert last < 0.7 * first, losses


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ after resuming: {different[:5]}"


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_gives_exactly_the_same_weights(tmp_path: Path, workers: int) -> None:
    straight = train(tiny_config(tmp_path / "straight", workers=workers, eval_every=1, eval_limit=2))
    assert straight["epochs_done"] == 2 and straight["iterations"] == 4

    cut = tiny_config(tmp_path / "cut", workers=workers, eval_every=1, eval_limit=2, stop_after_epochs=1)
    first = train(cut)
    assert first["epochs_done"] == 1 and load_checkpoint(tmp_path / "cut" / "last.pth")["epoch"] == 1
    resumed = train(tiny_config(tmp_path / "cut", workers=workers, eval_every=1, eval_limit=2), resume=True)
    assert resumed["epochs_done"] == 2 and resumed["iterations"] == 4

    a = load_checkpoint(tmp_path / "straight" / "last.pth")
    b = load_checkpoint(tmp_path / "cut" / "last.pth")
    _assert_same_state(a["state_dict"], b["state_dict"])
    momentum_a = [s["momentum_buffer"] for s in a["optimizer"]["state"].values()]
    momentum_b = [s["momentum_buffer"] for s in b["optimizer"]["state"].values()]
    assert all(torch.equal(x, y) for x, y in zip(momentum_a, momentum_b, strict=True))
    log = [json.loads(line) for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert log[1]["loss"] == straight["history"][1]["loss"]
    assert 0.0 <= log[1]["val"]["mIoU"] <= 1.0
    steps = [(tmp_path / d / "steps.jsonl").read_text() for d in ("straight", "cut")]
    assert steps[0] == steps[1] and len(steps[0].splitlines()) == 2


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    train(tiny_config(tmp_path, epochs=1, num_images=4))
    with pytest.raises(ValueError, match="lr"):
        train(tiny_config(tmp_path, epochs=1, num_images=4, lr=0.5), resume=True)
    with pytest.raises(FileExistsError):
        train(tiny_config(tmp_path, epochs=1, num_images=4))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path, monkeypatch) -> None:
    original = SegmentationLoss.forward
    calls = {"n": 0}

    def poisoned(self, outputs, target):
        calls["n"] += 1
        total, parts = original(self, outputs, target)
        if calls["n"] == 3:  # the first iteration of epoch 2
            total = total * float("nan")
        return total, parts

    monkeypatch.setattr(SegmentationLoss, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"iteration 3 \(epoch 2") as info:
        train(tiny_config(tmp_path))
    assert "last.pth (epoch 1, iteration 2)" in str(info.value)
    ckpt = load_checkpoint(tmp_path / "last.pth")
    assert ckpt["epoch"] == 1 and ckpt["iteration"] == 2
    model, _ = model_from_checkpoint(tmp_path / "last.pth")
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 1


def test_cli_train_help_has_torchrun_commands() -> None:
    from fastfcn.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["train"].format_help()
    assert "torchrun --standalone --nproc_per_node" in text and "--rdzv_endpoint" in text
    args = parser.parse_args(["train"])
    assert {k for k in vars(args)} == {"command", "func", "resume", "summary"}  # no dataset: procedural


@pytest.mark.skipif(importlib.util.find_spec("torch.distributed.run") is None, reason="torchrun is missing")
def test_torchrun_two_processes_gloo(tmp_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "fastfcn", "train", "--image-size", "64", "--num-images", "8", "--jpu-width", "16",
           "--batch-size", "4", "--epochs", "1", "--workers", "0", "--eval-every", "1", "--eval-limit", "3",
           "--out-dir", str(tmp_path), "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SyncBatchNorm needs CUDA" in proc.stderr
    ckpt = load_checkpoint(tmp_path / "last.pth")
    assert ckpt["epoch"] == 1 and ckpt["iteration"] == 2  # 4 images per process, 2 per batch
    assert len(ckpt["rng"]) == 2
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and math.isfinite(log[0]["loss"]) and log[0]["val"]["images"] == 3


def test_cli_train_resume_and_eval(tmp_path: Path, capsys) -> None:
    from fastfcn.cli import main

    out = str(tmp_path / "run")
    args = ["train", "--image-size", "64", "--num-images", "8", "--jpu-width", "16", "--batch-size", "4",
            "--epochs", "2", "--workers", "0", "--eval-every", "0", "--out-dir", out, "--no-progress"]
    assert main([*args, "--stop-after-epochs", "1"]) == 0
    assert load_checkpoint(tmp_path / "run" / "last.pth")["epoch"] == 1
    assert main(["train", "--resume", "--out-dir", out, "--no-progress"]) == 0  # settings come from the checkpoint
    ckpt = load_checkpoint(tmp_path / "run" / "last.pth")
    assert ckpt["epoch"] == 2 and ckpt["iteration"] == 4 and ckpt["classes"][0] == "sky"
    assert main([*args]) == 2  # the folder holds a run: refuse to overwrite it
    assert "--overwrite" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", out + "/last.pth", "--limit", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "procedural val: 2 images" in printed and "mIoU" in printed


def test_mixed_precision_choice(monkeypatch) -> None:
    from fastfcn.training import precision

    assert precision.mixed_precision("cpu", None, None) == (None, None)  # off on the CPU unless asked
    assert precision.mixed_precision("cpu", False, "bf16") == (None, None)
    monkeypatch.setattr(precision, "bf16_supported", lambda device: True)
    assert precision.mixed_precision("cpu", True, None) == (torch.bfloat16, None)
    dtype, why = precision.mixed_precision("cpu", True, "fp16")
    assert dtype is None and "needs a GPU" in why
    monkeypatch.setattr(precision, "bf16_supported", lambda device: False)
    dtype, why = precision.mixed_precision("cpu", True, None)
    assert dtype is None and "emulated" in why
    with pytest.raises(ValueError, match="amp_dtype must be one of fp16, bf16"):
        TrainConfig(amp_dtype="int8")


@pytest.mark.parametrize("native", [True, False])
def test_bf16_channels_last_training_lowers_the_loss(tmp_path: Path, monkeypatch, native: bool) -> None:
    """A tiny model trained with bf16 autocast + channels_last: its loss falls; without native bf16 the run
    says so once and trains in float32 (the weights stay float32 either way)."""
    from fastfcn.training import precision

    monkeypatch.setattr(precision, "bf16_supported", lambda device: native)
    calls: list[torch.dtype] = []
    real_autocast = torch.autocast

    def spy(*args, **kw):
        if kw.get("enabled", True):
            calls.append(kw["dtype"])
        return real_autocast(*args, **kw)

    monkeypatch.setattr(torch, "autocast", spy)   # the trainer calls torch.autocast
    cfg = tiny_config(tmp_path / "run", amp=True, channels_last=True, iterations=12, epochs=None, num_images=4,
                      lr=0.01, log_every=1)
    if native:
        result = train(cfg)
    else:
        with pytest.warns(UserWarning, match="no native bfloat16"):
            result = train(cfg)
    assert calls == ([torch.bfloat16] * 12 if native else [])
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "steps.jsonl").read_text().splitlines()]
    assert len(losses) == 12 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses
    state = load_checkpoint(result["checkpoint"])["state_dict"]
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    # a resume may change the precision: it does not change what is learned
    resumed = train(tiny_config(tmp_path / "run", iterations=12, epochs=None, num_images=4, lr=0.01, log_every=1),
                    resume=True)
    assert resumed["iterations"] == 12


def test_default_loader_workers_never_exceed_the_usable_cpus(monkeypatch) -> None:
    """The GPU recipe's 8 loaders per process, on a 2-core machine, made DataLoader warn and oversubscribe."""
    import fastfcn.training.config as config_module

    monkeypatch.setattr(config_module, "usable_cpus", lambda: 2)
    assert TrainConfig(dataset="folder", root="x").resolved(num_classes=3).workers == 2
    assert TrainConfig(dataset="folder", root="x", workers=5).resolved(num_classes=3).workers == 5  # asked for
    monkeypatch.setattr(config_module, "usable_cpus", lambda: 16)
    assert TrainConfig(dataset="pcontext").resolved(num_classes=59).workers == 8
