"""The book's Table 1 trainings: one configuration per row, found by configuration, resumed, reused; the full
profile's data selection (Pascal Context + ImageNet weights, or a message naming what is missing)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from test_data import make_pcontext_raw

from fastfcn.book import trainings
from fastfcn.book.trainings import (
    FullRunInputsMissing,
    check_full_inputs,
    ensure_trained,
    find_run,
    gpu_hours,
)
from fastfcn.checkpoint import load_checkpoint
from fastfcn.data.pcontext_prepare import prepare_pcontext
from fastfcn.profiles import get_profile
from fastfcn.training.table1 import pretrain_config, table1_config, table1_rows

pytestmark = pytest.mark.usefixtures("one_thread")


def test_table1_has_eight_rows_in_the_papers_order() -> None:
    rows = table1_rows(["encnet", "aspp", "psp"])
    assert rows == [("encnet", "none"), ("encnet", "bilinear"), ("encnet", "fpn"), ("encnet", "jpu"),
                    ("aspp", "none"), ("aspp", "jpu"), ("psp", "none"), ("psp", "jpu")]
    assert table1_rows(["psp", "encnet"])[:4] == rows[:4]
    with pytest.raises(ValueError, match="unknown head 'fcn'"):
        table1_rows(["fcn"])


@pytest.mark.parametrize("name", ["smoke", "quick"])
def test_small_profiles_train_on_the_procedural_scenes(name: str) -> None:
    p = get_profile(name)
    c = table1_config(p, "psp", "jpu", 3)
    assert (c.dataset, c.image_size, c.num_images, c.weights_backbone) == \
        ("procedural", p.train_image_size, p.ablation_train_images, None)
    # float32 on every machine (bf16 is native on some CPUs only): every CPU trains the same networks
    assert (c.iterations, c.batch_size, c.seed, c.amp, c.channels_last) == \
        (p.ablation_iterations, p.ablation_batch_size, 3, False, True)
    # every row of a profile: the same recipe, only head and upsampling differ
    other = table1_config(p, "encnet", "none", 3).to_dict()
    diff = {k for k, v in c.to_dict().items() if other[k] != v}
    assert diff == {"head", "upsampling"}
    # the pretraining: a plain FCN on scenes no row sees, the same trunk and image size as the rows
    pre = pretrain_config(p, 0)
    assert (pre.split, pre.head, pre.upsampling, pre.backbone, pre.image_size, pre.iterations, pre.amp) == \
        ("pretrain", "fcn", "bilinear", c.backbone, c.image_size, p.pretrain_iterations, False)
    with pytest.raises(ValueError, match="ImageNet"):
        pretrain_config(get_profile("full"))


def test_rows_start_from_the_pretrained_trunk_and_know_it_by_its_pretraining(tmp_path: Path) -> None:
    """The trunk is pretrained once; every row loads it; a row's identity names the pretraining, not the path."""
    p = get_profile("smoke")
    runs = tmp_path / "runs"
    trunk = trainings.ensure_trunk(p, 0, runs, device="cpu")
    assert trunk.training.status == "trained" and trunk.path.is_file()
    again = trainings.ensure_trunk(p, 0, runs, device="cpu")
    assert again.training.status == "reused" and again.identity == trunk.identity
    other_layout = trainings.ensure_trunk(p, 0, runs, device="cpu", channels_last=False)
    assert other_layout.training.status == "reused" and other_layout.identity == trunk.identity
    state = torch.load(trunk.path, weights_only=True)
    pretrained = load_checkpoint(trunk.training.checkpoint)["state_dict"]
    assert state and all(torch.equal(v, pretrained[f"backbone.{k}"]) for k, v in state.items())

    row = replace(table1_config(p, "encnet", "none", 0, device="cpu", trunk=trunk), iterations=1,
                  stop_after_epochs=1)
    done = ensure_trained(row, runs)
    assert done.status == "trained"
    moved = tmp_path / "elsewhere.pth"
    trunk.path.rename(moved)                       # the same trunk found at another path: the same training
    assert find_run(replace(row, weights_backbone=str(moved)), runs) == (done.out_dir, True)
    other = replace(row, extra={**row.extra, "trunk": "another-pretraining"})
    assert find_run(other, runs) is None


def test_the_procedural_scenes_are_drawn_once_into_the_runs_folder(tmp_path: Path) -> None:
    from fastfcn.data.procedural import ProceduralScenes

    runs = tmp_path / "runs"
    done = ensure_trained(tiny(), runs)
    cached = sorted((runs / "scenes").glob("procedural-*.npz"))
    assert [f.name for f in cached] == [f"procedural-v{ProceduralScenes.version}-train-seed0-n4-32x32.npz"]
    drawn, kept = ProceduralScenes("train", 4, 32), ProceduralScenes("train", 4, 32, cache_dir=runs / "scenes")
    for i in range(4):
        for a, b in zip(drawn.generate(i), kept.generate(i), strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    # where the scenes are kept is not part of what the training is
    assert trainings.run_identity(done.config) == trainings.run_identity(tiny())


def test_row_layouts_are_measured_once_per_machine(tmp_path: Path, monkeypatch) -> None:
    from fastfcn.training import step_time

    calls = []

    def fake(config, num_classes, **kw):
        calls.append(config.upsampling)
        return {"channels_last": config.upsampling == "jpu", "seconds": {"fp32": 1.0, "fp32+channels_last": 0.5}}

    monkeypatch.setattr(step_time, "fastest_exact_layout", fake)
    configs = [tiny(), replace(tiny(), upsampling="none")]
    first = trainings.row_layouts(configs, 8, tmp_path, device="cpu")
    assert [v["channels_last"] for v in first.values()] == [True, False] and calls == ["jpu", "none"]
    assert trainings.row_layouts(configs, 8, tmp_path, device="cpu") == first and len(calls) == 2
    assert all(v["channels_last"] for v in trainings.row_layouts(configs, 8, tmp_path, device="cuda").values())


def test_full_profile_trains_on_pascal_context_from_imagenet_weights(tmp_path: Path, monkeypatch) -> None:
    p = get_profile("full")
    monkeypatch.delenv(trainings.IMAGENET_ENV, raising=False)
    monkeypatch.setattr(trainings, "_imagenet_reachable", lambda backbone: (False, "offline (test)"))
    # nothing there: both inputs are named, with the commands that get them
    with pytest.raises(FullRunInputsMissing) as err:
        check_full_inputs(tmp_path / "empty")
    text = str(err.value)
    assert "prepare_pcontext.py" in text and "VOC2010" in text and trainings.IMAGENET_ENV in text

    make_pcontext_raw(tmp_path)
    prepare_pcontext(tmp_path, progress=False)
    with pytest.raises(FullRunInputsMissing) as err:   # the data now, but still no weights
        check_full_inputs(tmp_path)
    assert "prepare_pcontext" not in str(err.value) and "ImageNet weights" in str(err.value)

    weights = tmp_path / "resnet50.pth"
    torch.save({}, weights)
    monkeypatch.setenv(trainings.IMAGENET_ENV, str(weights))
    assert check_full_inputs(tmp_path) == str(weights)
    monkeypatch.delenv(trainings.IMAGENET_ENV)
    monkeypatch.setattr(trainings, "_imagenet_reachable", lambda backbone: (True, "cache"))
    assert check_full_inputs(tmp_path) == "imagenet"

    c = table1_config(p, "encnet", "jpu", 0, root=tmp_path, weights=str(weights))
    r = c.resolved(num_classes=59)
    assert (r.dataset, r.root, r.backbone, r.weights_backbone, r.crop_size, r.base_size, r.batch_size) == \
        ("pcontext", str(tmp_path), "resnet50", str(weights), 480, 520, 16)
    assert r.jpu_width == 512 and r.iterations == 80 * (4998 // 16) and r.amp


def tiny(seed: int = 0, **kw) -> trainings.TrainConfig:
    p = get_profile("smoke")
    c = table1_config(p, "encnet", "jpu", seed, device="cpu")
    return replace(c, **{"image_size": 32, "num_images": 4, "batch_size": 2, "iterations": 4, "jpu_width": 8,
                         "amp": False, "channels_last": False, **kw})


def test_a_rerun_resumes_the_interrupted_training_and_reuses_the_finished_one(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = ensure_trained(tiny(stop_after_epochs=1), runs)       # "interrupted" after its first epoch
    assert first.status == "trained" and first.iterations == 2
    assert find_run(tiny(), runs) == (first.out_dir, False)

    resumed = ensure_trained(tiny(), runs)
    assert resumed.status == "resumed" and resumed.out_dir == first.out_dir and resumed.iterations == 4
    assert load_checkpoint(resumed.checkpoint)["iteration"] == 4

    # found by the configuration inside, not by the folder's name
    renamed = first.out_dir.rename(runs / "someone-renamed-it")
    again = ensure_trained(tiny(workers=0, log_every=7), runs)    # watching settings are not the identity
    assert again.status == "reused" and again.out_dir == renamed and again.iterations == 4
    # a chapter asking for the row in the other memory layout finds it too (chapter 7 picks the layout measured
    # fastest on the machine; chapters 8-10 must not train the row again when that pick was channels-first)
    assert ensure_trained(tiny(channels_last=True), runs).status == "reused"
    assert again.train_s > 0 and again.s_per_it == pytest.approx(again.train_s / 4)
    assert len(again.steps) >= 1 and "loss" in again.steps[0]

    other = ensure_trained(tiny(seed=1), runs)                    # another seed is another training
    assert other.status == "trained" and other.out_dir != renamed
    assert len(list(runs.glob("*/config.json"))) == 2


def test_a_started_run_without_a_checkpoint_is_trained_again_in_its_folder(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = ensure_trained(tiny(), runs)
    (done.out_dir / "last.pth").unlink()          # killed before its first checkpoint
    (done.out_dir / "log.jsonl").unlink()
    again = ensure_trained(tiny(), runs)
    assert again.status == "trained" and again.out_dir == done.out_dir and again.iterations == 4


def test_gpu_hours_from_measured_step_times_or_from_flops() -> None:
    rows = [("encnet", "none"), ("encnet", "jpu")]
    measured = gpu_hours(rows, 2, 3600, step_seconds={("encnet", "none"): 0.5, ("encnet", "jpu"): 0.25})
    assert measured["total_hours"] == pytest.approx(2 * (0.5 + 0.25))
    assert measured["all_measured"]
    mixed = gpu_hours(rows, 1, 1000, step_seconds={("encnet", "none"): 1.0}, step_flops={("encnet", "jpu"): 2e12},
                      sustained_flops=1e12)
    assert mixed["hours"][("encnet", "jpu")] == pytest.approx(2000 / 3600)
    assert mixed["basis"] == {("encnet", "none"): "measured", ("encnet", "jpu"): "estimated from FLOPs"}
    assert not mixed["all_measured"]
    with pytest.raises(ValueError, match="no step time"):
        gpu_hours(rows, 1, 10, step_seconds={})


def test_several_processes_train_through_torchrun(tmp_path: Path) -> None:
    """What happens with several GPUs visible, on the CPU: torchrun starts two gloo processes on the config."""
    out = ensure_trained(replace(tiny(), batch_size=4), tmp_path / "runs", processes=2)
    assert out.status == "trained" and out.iterations == 4
    ckpt = load_checkpoint(out.checkpoint)
    assert ckpt["iteration"] == 4 and len(ckpt["rng"]) == 2   # one RNG state per process


def test_chapter_7_in_full_stops_at_once_naming_what_is_missing(tmp_path: Path, monkeypatch) -> None:
    """A papermill run of chapter 7 in `full` on a machine without Pascal Context stops in its first cell,
    with the message that names the downloads and the preparation command (nothing trains)."""
    from fastfcn.book import runner
    from fastfcn.book.chapters import ChapterError

    monkeypatch.setenv("FASTFCN_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv(trainings.IMAGENET_ENV, str(tmp_path / "no-weights.pth"))
    book = Path(__file__).resolve().parents[1] / "book"
    with pytest.raises(ChapterError) as err:
        runner.run_book(book, tmp_path / "executed", profile="full", device="cpu", only=["07"], progress=False,
                        cell_timeout=120)
    text = str(err.value)
    assert "FullRunInputsMissing" in text and "prepare_pcontext.py" in text and "no-weights.pth" in text
    assert not list((tmp_path / "executed").glob("*.json"))


def test_runs_on_scenes_of_another_generator_version_are_not_reused(tmp_path: Path, monkeypatch) -> None:
    from fastfcn.data.procedural import ProceduralScenes

    runs = tmp_path / "runs"
    first = ensure_trained(tiny(), runs)
    assert first.config.extra["scene_version"] == ProceduralScenes.version
    monkeypatch.setattr(ProceduralScenes, "version", ProceduralScenes.version + 1)
    again = ensure_trained(replace(tiny(), extra={}), runs)     # stamped with the new version
    assert again.status == "trained" and again.out_dir != first.out_dir


def test_the_table1_bar_counts_only_what_trains(tmp_path: Path, monkeypatch, capsys) -> None:
    """Every run found: no bar at all (in an executed notebook each refresh of one stays as a line);
    otherwise the bar counts the trainings still to run."""
    from fastfcn.training.table1 import Trunk

    p = get_profile("smoke")
    monkeypatch.setattr(trainings, "row_layouts", lambda configs, *a, **k: {
        str(i): {"channels_last": True, "seconds": {}} for i in range(len(configs))})
    monkeypatch.setattr(trainings, "ensure_trunk", lambda *a, **k: Trunk(tmp_path / "trunk.pth", "t"))
    monkeypatch.setattr(trainings, "ensure_trained", lambda cfg, runs_dir=None: (cfg.head, cfg.upsampling))
    monkeypatch.setattr(trainings, "find_run", lambda cfg, runs_dir: (tmp_path, True))
    done = trainings.train_table1(p, 0, device="cpu", runs_dir=tmp_path)
    assert len(done) == len(table1_rows(p.ablation_heads)) * p.ablation_seeds
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(trainings, "find_run", lambda cfg, runs_dir: None if cfg.upsampling == "jpu" else
                        (tmp_path, True))
    trainings.train_table1(p, 0, device="cpu", runs_dir=tmp_path)
    jpu_rows = sum(u == "jpu" for _, u in table1_rows(p.ablation_heads)) * p.ablation_seeds
    assert f"{jpu_rows}/{jpu_rows}" in capsys.readouterr().err
