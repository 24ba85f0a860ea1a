"""Execution profiles: the only thing that changes between a smoke test, a CPU run and the paper.

* ``smoke``: seconds per chapter; what the test suite runs.
* ``quick``: the default; meaningful results on a 2-core CPU, the whole book in minutes.
* ``full``:  the paper's settings (ResNet-50/101, 512x512 timing, 480 crops), for a GPU and real data.

Chapters read their sizes from ``get_profile(name)``; they never hard-code them. Every profile
defines the same keys (a test checks it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["PROFILES", "Profile", "get_profile"]

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "backbones": ["resnet18"],          # backbones the cost chapters measure
        "input_size": 64,                   # side of the square input for cost/timing measurements
        "timing_runs": 1,                   # timed repetitions (median reported)
        "timing_warmup": 0,
        "small_backbone": "resnet18_w32",   # backbone of the models that are trained in the book
        "jpu_width": 16,
        "train_image_size": 64,
        "train_steps": 3,
        "joint_upsampling_steps": 20,       # gradient-descent steps of the Eq. 1 worked example
        "joint_upsampling_size": 64,        # side of the high-resolution guidance image (chapter 4)
        "joint_upsampling_factor": 4,       # x_h -> x_l downsampling factor (C3 -> C5 in JPU)
        "joint_upsampling_channels": 8,     # feature channels of the Eq. 4 miniature
        "equivalence_trials": 2,            # random draws per case when checking Eq. 2 and 3 (chapter 3)
        "equivalence_sizes": [64, 72],      # input sides of the whole-backbone y_s = R(y_d) check
        # chapter 6 (fastfcn.benchmark): Table 2 timing
        "bench_rows": ["encnet/resnet50/none", "encnet/resnet50/jpu"],  # head/backbone/upsampling, or "all"
        "bench_substitute_backbone": "resnet18",  # build every timed row on this trunk (None: the paper's)
        "bench_torchvision": ["fcn_resnet50"],     # torchvision dilated models timed beside Table 2
        "bench_size": 64,                   # input side of the Table 2 timing (512 in the paper)
        "bench_runs": 1,                    # timed runs per model (median reported)
        "bench_warmup": 0,
        "bench_sizes": [32, 64],            # input sides of the latency/memory sweep (dilated vs JPU)
        "bench_sweep_runs": 1,
        "bench_train_rows": ["encnet/resnet50/none", "encnet/resnet50/jpu"],  # rows timed for a training step
        "bench_train_batch": 2,
        "bench_train_runs": 1,
        "bench_train_warmup": 0,
        "bench_fast_variants": ["fp32", "channels_last", "fold_bn"],  # fast-path candidates, or "auto"
        "bench_fast_images": 1,             # procedural val scenes on which the fast path's labels are compared
        "bench_predict_images": 1,  # images of the predict-cost measurement (chapter 6)
        "bench_predict_rounds": 1,
        "bench_isolate": False,             # one fresh process per measurement (needed for CPU peak memory)
        # chapter 7: the Table 1 ablation, trained on the procedural set (image side: train_image_size)
        "pretrain_iterations": 2,           # the shared trunk's pretraining (a plain FCN on the "pretrain" scenes)
        "pretrain_images": 8,
        "ablation_iterations": 3,           # SGD iterations per model (the same for every model)
        "ablation_batch_size": 2,
        "ablation_train_images": 16,        # procedural train images (the set repeats when iterations need more)
        "ablation_val_images": 4,           # procedural val images every model is evaluated on
        "ablation_seeds": 2,                # training seeds per model (seed, seed + 1, ...)
        "ablation_heads": ["encnet", "psp"],  # encnet: none/bilinear/fpn/jpu; aspp, psp: none/jpu (smoke: 12 runs)
        "ablation_workers": 0,              # DataLoader workers of the training runs
        # chapter 8: the context-free crop classifier (procedural scenes it learns from / is scored on)
        "context_train_images": 20,
        "context_val_images": 10,
        # chapter 9: regressing the dilated C5 from the plain C3-C5 (image side: train_image_size)
        "recovery_images": 8,               # procedural train images whose features the modules are fitted on
        "recovery_val_images": 4,           # val images of the errors and of the frozen-head mIoU
        "recovery_iterations": 4,           # Adam iterations per module (the same for every module)
        "recovery_batch_size": 2,
        "recovery_eval_points": 2,          # iterations (first and last included) where the val error is measured
        # chapter 10: a folder dataset built from procedural scenes (image side: train_image_size), fine-tuned on
        "own_data_train_images": 8,
        "own_data_val_images": 4,
        "own_data_iterations": 2,           # SGD iterations of each fine-tuning (from chapter 7's model, from scratch)
    },
    "quick": {
        "backbones": ["resnet50", "resnet101"],
        "input_size": 512,
        # the median of three runs leaves out a cold first run, whose set-up costs are a few ms of the 60-6000 ms
        # a stage takes at 512 px: a warm-up run would add a quarter to chapter 2 (12 s on a 2-core AVX2 CPU)
        "timing_runs": 3,
        "timing_warmup": 0,
        "small_backbone": "resnet18_w32",
        "jpu_width": 64,
        "train_image_size": 128,
        "train_steps": 300,
        "joint_upsampling_steps": 300,
        "joint_upsampling_size": 256,
        "joint_upsampling_factor": 4,
        "joint_upsampling_channels": 8,
        "equivalence_trials": 10,
        "equivalence_sizes": [128, 104],
        "bench_rows": "all",
        "bench_substitute_backbone": None,
        "bench_torchvision": ["deeplabv3_resnet50", "deeplabv3_resnet101", "fcn_resnet50"],
        "bench_size": 512,
        # the median of three timed runs. With one, EncNet R50's JPU/dilated ratio read 1.65x, 1.71x and 2.33x
        # in three builds on one 2-core AVX2 EPYC. There, in two processes, the JPU network's first call took
        # 1.06x and 1.29x the mean of its next two, the dilated network's 0.97x and 1.02x (2026-12-04).
        # No warm-up: the median already leaves a slow first call out. Three runs cost chapter 6 +95 s here
        # (Table 2 160 s instead of 84).
        "bench_runs": 3,
        "bench_warmup": 0,
        "bench_sizes": [256, 512, 768],     # 512 (bench_size) is read from Table 2's measurement, not run again
        "bench_sweep_runs": 1,
        "bench_train_rows": ["encnet/resnet50/none", "encnet/resnet50/jpu"],
        "bench_train_batch": 2,
        "bench_train_runs": 1,
        "bench_train_warmup": 0,            # a 512 px step takes 15-30 s on a 2-core CPU: set-up costs are noise
        # with the compiled exact path: its first call compiles in 8.6-18.3 s on a 2-core AVX2 EPYC (2026-12-04),
        # and chapter 6 says after how many calls that pays off
        "bench_fast_variants": ["fp32", "channels_last", "fold_bn", "channels_last+fold_bn", "bf16",
                                "channels_last+bf16", "channels_last+fold_bn+bf16",
                                "channels_last+fold_bn+bf16+early_fp32", "compile+channels_last+fold_bn"],
        # one 512 px scene (2.4 s per forward here): on random weights the label counts mostly show how
        # sensitive the weights are (chapter 6 says so)
        "bench_fast_images": 1,
        # predict's cost of one more image: five scenes less the first alone, over four (one scene would time
        # its reading and writing, which nothing overlaps in a folder); +35 s to chapter 6 on a 2-core AVX2 EPYC
        "bench_predict_images": 5,  # images of the predict-cost measurement (chapter 6)
        "bench_predict_rounds": 1,
        "bench_isolate": True,
        # the trunk pretrained once, then 16 fine-tunings (8 rows x 2 seeds), all in float32 (see chapter 7
        # and book/results/table1_designs_cpu.json for how these sizes were chosen)
        "pretrain_iterations": 600,
        "pretrain_images": 2000,
        "ablation_iterations": 50,
        "ablation_batch_size": 8,
        "ablation_train_images": 1000,
        "ablation_val_images": 100,
        "ablation_seeds": 2,
        "ablation_heads": ["encnet", "aspp", "psp"],
        "ablation_workers": 0,
        "context_train_images": 300,
        "context_val_images": 150,
        # chapter 9 in about 90 s on 2 cores: features of 80 images through four trunks (~20 s), six fits
        # (bilinear, FPN, JPU on trained and random weights; JPU ~0.3 s per iteration, the others ~0.06 s)
        "recovery_images": 48,
        "recovery_val_images": 32,
        "recovery_iterations": 60,
        "recovery_batch_size": 8,
        "recovery_eval_points": 7,
        "own_data_train_images": 160,
        "own_data_val_images": 40,
        "own_data_iterations": 40,
    },
    "full": {
        "backbones": ["resnet50", "resnet101"],
        "input_size": 512,
        "timing_runs": 20,
        "timing_warmup": 5,
        "small_backbone": "resnet50",
        "jpu_width": 512,
        "train_image_size": 480,
        "train_steps": 5000,
        "joint_upsampling_steps": 2000,
        "joint_upsampling_size": 512,
        "joint_upsampling_factor": 4,
        "joint_upsampling_channels": 16,
        "equivalence_trials": 50,
        "equivalence_sizes": [512, 520],
        "bench_rows": "all",
        "bench_substitute_backbone": None,
        "bench_torchvision": ["deeplabv3_resnet50", "deeplabv3_resnet101", "fcn_resnet50"],
        "bench_size": 512,
        "bench_runs": 100,
        "bench_warmup": 10,
        "bench_sizes": [256, 512, 768, 1024],
        "bench_sweep_runs": 20,
        "bench_train_rows": "all",
        "bench_train_batch": 4,
        "bench_train_runs": 20,
        "bench_train_warmup": 3,
        "bench_fast_variants": "auto",
        "bench_fast_images": 16,
        "bench_predict_images": 8,  # images of the predict-cost measurement (chapter 6)
        "bench_predict_rounds": 3,
        "bench_isolate": True,
        "pretrain_iterations": 0,           # none: the full profile starts from ImageNet weights
        "pretrain_images": 0,
        "ablation_iterations": 24960,       # the paper's 80 epochs of Pascal Context (4,998 images, batch 16)
        "ablation_batch_size": 16,
        "ablation_train_images": 5000,
        "ablation_val_images": 5105,        # all of Pascal Context's val images
        "ablation_seeds": 2,
        "ablation_heads": ["encnet", "aspp", "psp"],
        "ablation_workers": 8,
        "context_train_images": 1000,
        "context_val_images": 300,
        "recovery_images": 200,             # Pascal Context crops of 480: ~30 MB of dilated C5 (ResNet-50) each
        "recovery_val_images": 100,
        "recovery_iterations": 2000,
        "recovery_batch_size": 16,
        "recovery_eval_points": 11,
        "own_data_train_images": 800,
        "own_data_val_images": 200,
        "own_data_iterations": 1000,
    },
}


class Profile(Mapping):
    """Read-only view of one profile; keys are also attributes (``p.input_size``)."""

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        self.name = name
        self._values = dict(values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["_values"][key]
        except KeyError:
            raise AttributeError(f"profile {self.__dict__.get('name')!r} has no setting {key!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Profile({self.name!r}, {self._values!r})"


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return Profile(name, PROFILES[name])
