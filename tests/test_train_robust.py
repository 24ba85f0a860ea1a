"""Training against a hostile but realistic user: kills at chosen points, concurrent runs, torn logs, bad values.

The kill tests are real: ``python -m fastfcn train`` in a subprocess, paused by the test-only hook
(``FASTFCN_TEST_PAUSE_AT``, :func:`fastfcn.utils.io.pause_point`) at a chosen point, then SIGKILLed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fastfcn.checkpoint import load_checkpoint
from fastfcn.cli import main
from fastfcn.training import TrainConfig, train
from fastfcn.training.config import FLOAT_RANGE, INT_MINIMUM, ConfigError

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")

# 4 images of 32 px, batch 2: 2 iterations per epoch, about a second per epoch on one CPU thread
TINY = ["--image-size", "32", "--num-images", "4", "--jpu-width", "16", "--batch-size", "2", "--workers", "0",
        "--eval-every", "0", "--no-progress"]


def tiny_args(out: Path, epochs: int = 2, *extra: str) -> list[str]:
    return ["train", *TINY, "--epochs", str(epochs), "--out-dir", str(out), *extra]


def tiny_config(out: Path, **kw) -> TrainConfig:
    base = dict(image_size=32, num_images=4, jpu_width=16, batch_size=2, epochs=2, workers=0, eval_every=0,
                progress=False, out_dir=str(out))
    base.update(kw)
    return TrainConfig(**base)


def epochs_in_log(out: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()]


def error_line(err: str) -> str:
    """The one error line of a failed command; every line of stderr is the command's own (no traceback)."""
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("fastfcn train: ") for line in lines), err
    errors = [line for line in lines if line.startswith("fastfcn train: error: ")]
    assert len(errors) == 1, err
    return errors[0]


def spawn_paused(out: Path, point: str, args: list[str], tmp_path: Path) -> subprocess.Popen:
    """Start ``python -m fastfcn ARGS`` and return once it sits at the pause point ``point``."""
    marker = tmp_path / f"paused-{point.replace(':', '_').replace('@', '_')}"
    marker.unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), FASTFCN_TEST_PAUSE_AT=point,
               FASTFCN_TEST_PAUSE_MARKER=str(marker))
    proc = subprocess.Popen([sys.executable, "-m", "fastfcn", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not marker.exists():
        if proc.poll() is not None:
            out_text, err_text = proc.communicate()
            pytest.fail(f"the run ended (rc {proc.returncode}) without pausing at {point}:\n{err_text[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run did not reach {point} in time")
        time.sleep(0.05)
    assert int(marker.read_text()) == proc.pid
    return proc


def sigkill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


# -- item 1: --resume OLDER.pth into a folder whose last.pth is further along ---------------------------

def test_resume_of_an_older_checkpoint_refuses_to_replace_a_newer_last(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(out, 2, "--stop-after-epochs", "1")) == 0
    older = tmp_path / "epoch1.pth"
    shutil.copy(out / "last.pth", older)
    assert main(["train", "--resume", "--out-dir", str(out), "--no-progress"]) == 0
    capsys.readouterr()

    assert main(["train", "--resume", str(older), "--out-dir", str(out), "--no-progress"]) == 2
    line = error_line(capsys.readouterr().err)
    assert f"{out / 'last.pth'} (epoch 2, iteration 4)" in line and f"{older} (epoch 1, iteration 2)" in line
    assert "--overwrite" in line
    assert load_checkpoint(out / "last.pth")["epoch"] == 2 and epochs_in_log(out) == [1, 2]  # untouched

    # --overwrite: the user means it; the older run continues and the log follows its checkpoint
    assert main(["train", "--resume", str(older), "--out-dir", str(out), "--overwrite", "--no-progress"]) == 0
    assert load_checkpoint(out / "last.pth")["epoch"] == 2 and epochs_in_log(out) == [1, 2]
    # the same file (or an equally far one) is no conflict
    assert main(["train", "--resume", str(out / "last.pth"), "--no-progress"]) == 0


def test_resume_into_a_folder_of_another_run_is_refused(tmp_path: Path) -> None:
    train(tiny_config(tmp_path / "a", epochs=1))
    train(tiny_config(tmp_path / "b", epochs=1, lr=0.001))
    with pytest.raises(FileExistsError, match=r"holds another run \(lr"):
        train(tiny_config(tmp_path / "b", epochs=1), resume=tmp_path / "a" / "last.pth")


# -- item 2: kill -9 between the checkpoint's rename and the log's append --------------------------------

def test_kill_after_checkpoint_rename_then_resume_keeps_log_and_checkpoint_agreeing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    proc = spawn_paused(out, "after_checkpoint_rename@2", ["train", *TINY, "--epochs", "4", "--out-dir", str(out)],
                        tmp_path)
    sigkill(proc)
    assert load_checkpoint(out / "last.pth")["epoch"] == 2 and epochs_in_log(out) == [1]  # the crash's state

    assert main(["train", "--resume", "--out-dir", str(out), "--no-progress"]) == 0
    ckpt = load_checkpoint(out / "last.pth")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert ckpt["epoch"] == 4 and [r["epoch"] for r in log] == [1, 2, 3, 4]
    assert ckpt["epoch_log"] == log  # the log is derivable from the checkpoint
    steps = [json.loads(line)["iteration"] for line in (out / "steps.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]


# -- item 3: two runs into one folder at once ---------------------------------------------------------

def test_a_second_run_is_refused_while_the_first_holds_the_lock_then_a_dead_holders_lock_is_taken_over(
        tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(out, 3, "--stop-after-epochs", "1")) == 0
    proc = spawn_paused(out, "after_checkpoint_rename", ["train", "--resume", "--out-dir", str(out),
                                                         "--no-progress"], tmp_path)
    try:
        capsys.readouterr()
        assert main(["train", "--resume", "--out-dir", str(out), "--no-progress"]) == 2
        line = error_line(capsys.readouterr().err)
        assert "in use by another training run" in line and f"pid {proc.pid} on host {socket.gethostname()}" in line
        assert main(tiny_args(out, 3, "--overwrite")) == 2  # not even --overwrite runs beside it
        assert "in use by another training run" in error_line(capsys.readouterr().err)
        assert epochs_in_log(out) == [1]
    finally:
        sigkill(proc)
    assert (out / "train.lock").exists()  # the killed holder could not remove it

    # an error releases the lock too: the settings differ from the checkpoint's
    assert main(["train", "--resume", "--out-dir", str(out), "--lr", "0.5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"took over the stale lock of pid {proc.pid}" in err and "other settings" in error_line(err)
    assert not (out / "train.lock").exists()

    assert main(["train", "--resume", "--out-dir", str(out), "--no-progress"]) == 0
    assert "stale lock" not in capsys.readouterr().err
    assert not (out / "train.lock").exists() and epochs_in_log(out) == [1, 2, 3]


def test_a_lock_of_another_host_is_refused_naming_the_file(tmp_path: Path) -> None:
    tmp_path.joinpath("train.lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": 0}))
    with pytest.raises(RuntimeError, match="another host .*pid 1 on host elsewhere.*delete .*train.lock"):
        train(tiny_config(tmp_path))
    assert not (tmp_path / "last.pth").exists()


# -- item 4: a torn last line in steps.jsonl ------------------------------------------------------------

def test_a_torn_last_line_is_dropped_with_a_warning_and_a_bad_middle_line_is_named(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(out, 3, "--stop-after-epochs", "1")) == 0
    steps = out / "steps.jsonl"
    good = steps.read_text()
    steps.write_text(good + '{"iteration": 3, "epoch": 2, "lr": 0.00')  # a crash while appending
    capsys.readouterr()
    assert main(["train", "--resume", "--out-dir", str(out), "--stop-after-epochs", "1", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"{steps}: dropped its torn last line 2" in err
    assert [json.loads(line)["iteration"] for line in steps.read_text().splitlines()] == [2, 4]

    steps.write_text("garbage\n" + steps.read_text())  # someone edited the file: not ours to guess
    assert main(["train", "--resume", "--out-dir", str(out), "--no-progress"]) == 2
    line = error_line(capsys.readouterr().err)
    assert f"{steps}, line 1: not JSON" in line
    assert load_checkpoint(out / "last.pth")["epoch"] == 2


# -- item 5: a kill while the checkpoint is written ------------------------------------------------------

def test_the_temp_file_of_a_killed_checkpoint_write_is_removed_at_the_next_start(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    proc = spawn_paused(out, "before_rename:last.pth@2", tiny_args(out, 2), tmp_path)
    sigkill(proc)
    temps = list(out.glob(".last.pth.*.tmp"))
    assert len(temps) == 1 and temps[0].stat().st_size > 100_000  # a complete, never renamed checkpoint
    assert load_checkpoint(out / "last.pth")["epoch"] == 1

    capsys.readouterr()
    assert main(["train", "--resume", "--out-dir", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"removed {temps[0]}" in err and "interrupted" in err
    assert not list(out.glob(".*.tmp"))
    assert load_checkpoint(out / "last.pth")["epoch"] == 2 and epochs_in_log(out) == [1, 2]


# -- item 6 and 9: values checked at the start, the flag named ------------------------------------------

@pytest.mark.parametrize(("flag", "value", "allowed"), [
    ("--power", "-1", ">= 0"), ("--head-lr-mult", "-10", "> 0"), ("--aux-weight", "-1", ">= 0"),
    ("--se-weight", "nan", "finite"), ("--image-size", "0", ">= 8"), ("--crop-size", "0", ">= 8"),
    ("--base-size", "0", ">= 8"), ("--stop-after-epochs", "0", ">= 1"), ("--momentum", "1.5", "< 1"),
    ("--weight-decay", "-0.5", ">= 0"), ("--lr", "inf", "finite"), ("--epochs", "0", ">= 1"),
    ("--batch-size", "0", ">= 1"), ("--workers", "-1", ">= 0"), ("--seed", "-1", ">= 0"),
    ("--log-every", "0", ">= 1"), ("--eval-every", "-1", ">= 0"), ("--eval-limit", "0", ">= 1"),
    ("--num-images", "0", ">= 1"), ("--jpu-width", "0", ">= 1"), ("--iterations", "0", ">= 1"),
])
def test_bad_values_are_refused_before_anything_runs(tmp_path: Path, capsys, flag: str, value: str,
                                                     allowed: str) -> None:
    out = tmp_path / "run"
    args = ["train", "--image-size", "32", "--num-images", "2", "--jpu-width", "8", "--batch-size", "2",
            "--epochs", "1", "--workers", "0", "--eval-every", "0", "--no-progress", "--out-dir", str(out)]
    assert main([*args, flag, value]) == 2
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"fastfcn train: error: {flag} must be ") and allowed in line and value in line
    assert not out.exists()  # nothing was written: no lost epoch, no empty folder


def test_every_numeric_field_is_checked_by_the_config_itself(tmp_path: Path) -> None:
    numeric = [f.name for f in dataclasses.fields(TrainConfig) if f.name in INT_MINIMUM or f.name in FLOAT_RANGE]
    assert len(numeric) == len(INT_MINIMUM) + len(FLOAT_RANGE) == 24
    for name in INT_MINIMUM:
        for bad in (INT_MINIMUM[name] - 1, 2.5, True):
            with pytest.raises(ConfigError, match=f"^{name} must be an integer >= {INT_MINIMUM[name]}"):
                TrainConfig(**{name: bad})
    for name in FLOAT_RANGE:
        for bad in (float("nan"), float("inf"), -1.0, "1"):
            with pytest.raises(ConfigError, match=f"^{name} must be a finite number"):
                TrainConfig(**{name: bad})
    for bad in ((2.0, 1.0), (0.0, 1.0), (0.5, float("nan")), (1.0,)):
        with pytest.raises(ConfigError, match="scale_range"):
            TrainConfig(scale_range=bad)
    assert TrainConfig().resolved().image_size == 128  # None (not given) is the default; 0 is refused
    cfg = tiny_config(tmp_path / "run")
    cfg.power = -1  # assigned after construction: train() checks again before it touches the folder
    with pytest.raises(ValueError, match="power must be a finite number >= 0"):
        train(cfg)
    assert not (tmp_path / "run").exists()


# -- item 11: checkpoints with a config of another version -----------------------------------------------

@pytest.mark.parametrize("damage", ["extra option", "missing option", "missing epoch"])
def test_a_checkpoint_with_an_unknown_or_missing_key_is_one_line_naming_file_and_key(
        tmp_path: Path, capsys, damage: str) -> None:
    out = tmp_path / "run"
    assert main(tiny_args(out, 2, "--stop-after-epochs", "1")) == 0
    ckpt = load_checkpoint(out / "last.pth")
    key = {"extra option": "bogus", "missing option": "jpu_width", "missing epoch": "epoch"}[damage]
    if damage == "extra option":
        ckpt["train_config"][key] = 1
    elif damage == "missing option":
        del ckpt["train_config"][key]
    else:
        del ckpt[key]
    bad = tmp_path / "bad.pth"
    torch.save(ckpt, bad)
    capsys.readouterr()
    assert main(["train", "--resume", str(bad), "--out-dir", str(out), "--no-progress"]) == 2
    line = error_line(capsys.readouterr().err)
    assert str(bad) in line and repr(key) in line
    with pytest.raises(ValueError, match=repr(key)):
        train(tiny_config(tmp_path / "api"), resume=bad)


def test_a_checkpoint_without_epoch_records_resumes_from_log_jsonl(tmp_path: Path) -> None:
    """Checkpoints written before the epoch records were stored: log.jsonl is kept up to their iteration."""
    train(tiny_config(tmp_path, epochs=3, stop_after_epochs=2))
    ckpt = load_checkpoint(tmp_path / "last.pth")
    assert [r["epoch"] for r in ckpt.pop("epoch_log")] == [1, 2]
    ckpt["epoch"], ckpt["iteration"] = 1, 2  # pretend: the checkpoint of epoch 1, the log one epoch ahead
    torch.save(ckpt, tmp_path / "last.pth")
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"epoch": 3, "iter')  # and a torn last line
    with pytest.warns(UserWarning, match="log.jsonl: dropped its torn last line 3"):
        train(tiny_config(tmp_path, epochs=3, stop_after_epochs=1), resume=True)
    assert epochs_in_log(tmp_path) == [1, 2]
    assert [r["epoch"] for r in load_checkpoint(tmp_path / "last.pth")["epoch_log"]] == [1, 2]
