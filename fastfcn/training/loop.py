"""Training FastFCN: the official recipe (SGD, poly schedule, 10x head learning rate, aux + SE losses).

``train(TrainConfig(...))`` is the API; ``fastfcn train`` the command line. What it does:

* SGD (momentum 0.9, weight decay 1e-4) with two learning rates: the backbone at ``lr``, the
  upsampling module (JPU/FPN), the head and the auxiliary head at ``10 * lr``, as the official trainer
  (:mod:`fastfcn.training.schedule`).
* The "poly" schedule, updated every iteration: ``lr_it = lr * (1 - it / max_it) ** 0.9``.
* The loss of :mod:`fastfcn.training.losses` (CE + 0.2/0.4 aux + 0.2 SE for EncNet).
* Mixed precision (``amp``): on a GPU by default, ``torch.autocast`` float16 + ``GradScaler``; on the CPU
  when asked, bfloat16 autocast (no scaler: bf16 has float32's range) where the CPU computes bf16
  natively, float32 with a message where it would emulate it (slower than float32).
  ``channels_last`` keeps activations NHWC (faster convolutions on CPUs). The loss is always float32.
* Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set): one process per GPU with NCCL, SyncBatchNorm and
  ``DistributedDataParallel``; on CPU-only machines gloo without SyncBatchNorm (gloo has no
  SyncBatchNorm kernel: each process keeps its own BN statistics). ``batch_size`` is the global batch,
  split evenly over the processes. Only rank 0 writes logs and checkpoints.
* Every ``log_every`` iterations (rank 0): the loss of that batch in ``out_dir/steps.jsonl``.
* Every epoch (rank 0): an atomically written ``out_dir/last.pth`` (model in the :mod:`fastfcn.checkpoint`
  format plus optimizer, scaler, epoch, iteration, the RNG states of every process, the config and the
  epoch records so far), then that epoch's JSON line in ``out_dir/log.jsonl``: a resume rewrites
  log.jsonl from the checkpoint, so the two always agree (:mod:`fastfcn.training.runlog`).
  ``resume=True`` continues from it; on
  the CPU with a fixed seed a resumed run ends with exactly the weights of an uninterrupted one (the
  data order of an epoch depends only on ``(seed, epoch)``, the augmentation on ``(seed, epoch, rank)``
  or on the restored RNG states).
* A non-finite loss stops the run with :class:`NonFiniteLossError` naming the iteration; the last
  checkpoint (of the last finished epoch) is left as it was.
* One run per ``out_dir`` at a time (rank 0 holds ``out_dir/train.lock``, :mod:`fastfcn.training.lock`);
  at the start the temporary files of a killed checkpoint write are removed. A resume refuses to
  replace a newer ``out_dir/last.pth`` (:mod:`fastfcn.training.resume`) unless ``overwrite``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..data.base import IGNORE_INDEX
from ..utils.io import atomic_write_text, pause_point
from .config import DATASET_DEFAULTS, RUNTIME_FIELDS, TrainConfig
from .datasets import checked_datasets, training_datasets
from .distributed import DistContext, setup_distributed
from .lock import RunLock, remove_stale_temp_files
from .losses import unlabelled_batch
from .precision import mixed_precision
from .resume import checkpoint_to_resume, refuse_other_settings
from .rng import epoch_seed, rng_state, seed_all, seed_worker, set_rng_state
from .runlog import JsonLog, read_json_lines
from .schedule import param_groups, poly_lr, set_lr

__all__ = ["TrainConfig", "train", "NonFiniteLossError", "poly_lr", "param_groups", "set_lr", "DATASET_DEFAULTS",
           "RUNTIME_FIELDS"]


# what a run writes into out_dir (atomically, except the appended logs)
STATE_FILES = ("last.pth", "log.jsonl", "steps.jsonl", "config.json")


class NonFiniteLossError(RuntimeError):
    """The loss (or the weights) became NaN or infinite; the message says where."""


@contextmanager
def _progress_bar(enabled: bool, total: int, desc: str) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="it", dynamic_ncols=True, leave=False)
    try:
        yield bar
    finally:
        bar.close()


def _message(text: str, enabled: bool) -> None:
    if enabled:
        from tqdm.auto import tqdm

        tqdm.write(text)


class _Run:
    """One invocation of :func:`train`: set-up in ``__init__``, then :meth:`run`."""

    def __init__(self, config: TrainConfig, resume: bool | str | Path, ctx: DistContext, device: str,
                 datasets: tuple[Any, Any] | None = None) -> None:
        self.ctx, self.device = ctx, device
        self._choose_precision(config)
        pre = config.resolved()
        self.out_dir = Path(pre.out_dir)
        self.ckpt_path = self.out_dir / "last.pth"
        ckpt, resume_path = checkpoint_to_resume(resume, self.ckpt_path, config.overwrite, ctx.is_main)
        seed_all(pre.seed)  # the same initial weights in every process
        self.train_set, self.val_set = datasets or training_datasets(pre, with_val=pre.eval_every > 0)
        self.cfg = pre.resolved(num_classes=self.train_set.num_classes)
        if ckpt is not None:
            refuse_other_settings(ckpt, self.cfg.to_dict(), resume_path)
        self._build_model()
        if self.cfg.init and ckpt is None:  # a resumed run continues its own weights
            self._warm_start()
        self._plan_iterations()
        self.start_epoch, self.iteration = 0, 0
        seed_all(self.cfg.seed + ctx.rank)  # per-process augmentation and dropout
        if ckpt is not None:
            self._restore(ckpt)
        self.net: nn.Module = self.model
        if ctx.enabled:
            self.net = nn.parallel.DistributedDataParallel(self.model,
                                                           device_ids=[ctx.local_rank] if self.cuda else None)
        self.classes = list(getattr(self.train_set, "classes", []) or []) or None
        colours = getattr(self.train_set, "colours", None)  # predict draws the dataset's own colours
        self.palette = [[int(v) for v in rgb] for rgb in colours] if colours is not None else None
        self._open_logs(ckpt)
        self._announce(resumed=ckpt is not None)

    def _choose_precision(self, config: TrainConfig) -> None:
        """Autocast dtype, memory format and cuDNN autotuning for this device (a message where amp falls back)."""
        self.cuda = self.device.startswith("cuda")
        self.autocast_dtype, fallback = mixed_precision(self.device, config.amp, config.amp_dtype)
        self.amp = self.autocast_dtype is not None
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        if self.cuda:
            torch.backends.cudnn.benchmark = True
        self.show = config.progress and self.ctx.is_main
        if fallback and self.ctx.is_main:
            warnings.warn(fallback, stacklevel=4)

    def _build_model(self) -> None:
        """The network (SyncBatchNorm under NCCL), the loss, SGD with its two learning rates, the grad scaler."""
        from ..models import build_model
        from .losses import SegmentationLoss

        cfg, ctx = self.cfg, self.ctx
        model = build_model(cfg.head, backbone=cfg.backbone, upsampling=cfg.upsampling, num_classes=cfg.num_classes,
                            aux_loss=cfg.aux_weight > 0, se_loss=cfg.head == "encnet" and cfg.se_weight > 0,
                            weights_backbone=cfg.weights_backbone, jpu_width=cfg.jpu_width)
        if ctx.enabled and self.cuda:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif ctx.enabled and ctx.is_main:
            warnings.warn("distributed training on the CPU (gloo): SyncBatchNorm needs CUDA, so each process "
                          "keeps its own BatchNorm statistics", stacklevel=4)
        self.model = model.to(self.device, memory_format=self.memory_format)
        self.criterion = SegmentationLoss(cfg.num_classes, aux_weight=cfg.aux_weight, se_weight=cfg.se_weight,
                                          ignore_index=getattr(self.train_set, "ignore_index", IGNORE_INDEX))
        self.optimizer = torch.optim.SGD(param_groups(model, cfg.lr, cfg.head_lr_mult), lr=cfg.lr,
                                         momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        # loss scaling guards fp16's narrow range; bf16 has float32's exponent and needs none
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast_dtype == torch.float16 and self.cuda)

    def _warm_start(self) -> None:
        """``--init``: the checkpoint's tensors where they fit; which did and which did not is printed (stdout, in
        order with "done: ...") and kept in config.json (``extra.init``) and the checkpoints' train_config."""
        from .warm_start import init_from_checkpoint

        report = init_from_checkpoint(self.model, self.cfg.init)
        self.cfg.extra["init"] = report.to_json()
        if self.ctx.is_main:
            print(report.describe(), flush=True)

    def _plan_iterations(self) -> None:
        """The sampler, the batch per process, and the run's length in epochs and iterations."""
        from torch.utils.data import DistributedSampler

        cfg, ctx = self.cfg, self.ctx
        if cfg.batch_size % ctx.world_size:
            raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {ctx.world_size} processes")
        self.per_rank_batch = cfg.batch_size // ctx.world_size
        if self.per_rank_batch < 2 and cfg.head in ("psp", "aspp"):  # found here, not as torch's error in step 1
            raise ValueError(f"batch_size {cfg.batch_size} gives one image per process, but the {cfg.head} head pools the "
                             "whole image to one value per channel before a BatchNorm, which cannot normalise a single "
                             f"value in training: use --batch-size {2 * ctx.world_size} or more")
        # the data order of an epoch is a function of (seed, epoch): set_epoch reseeds the sampler
        self.sampler = DistributedSampler(self.train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                          seed=cfg.seed, drop_last=False)
        self.iters_per_epoch = len(self.sampler) // self.per_rank_batch
        if self.iters_per_epoch < 1:
            raise ValueError(f"{len(self.train_set)} training images give no full batch of {self.per_rank_batch} "
                             f"per process")
        if cfg.iterations is not None:
            self.max_iter = cfg.iterations
            self.epochs = math.ceil(self.max_iter / self.iters_per_epoch)
        else:
            self.epochs = cfg.epochs
            self.max_iter = self.epochs * self.iters_per_epoch

    def _open_logs(self, ckpt: dict[str, Any] | None) -> None:
        """Rank 0: log.jsonl and steps.jsonl (rewritten from the checkpoint on a resume) and config.json."""
        self.log = self.step_log = None
        # the epoch records so far: saved in every checkpoint, log.jsonl is rewritten from them on resume
        self.records: list[dict[str, Any]] | None = [] if ckpt is None else ckpt.get("epoch_log")
        if not self.ctx.is_main:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.out_dir / "log.jsonl"
        if ckpt is None and self.ckpt_path.exists():
            self.ckpt_path.unlink()  # --overwrite: an old run's checkpoint must not pass for this run's
        if self.records is None:  # a checkpoint of an older version: keep log.jsonl up to its iteration
            self.records = [r for r in (read_json_lines(log_path) if log_path.exists() else [])
                            if r.get("iteration", 0) <= self.iteration]
        self.log = JsonLog(log_path, records=self.records if ckpt is not None else None)
        self.step_log = JsonLog(self.out_dir / "steps.jsonl",
                                keep_until_iteration=self.iteration if ckpt is not None else None)
        atomic_write_text(self.out_dir / "config.json", json.dumps(self.cfg.to_dict(), indent=2) + "\n")

    def _announce(self, resumed: bool) -> None:
        """The run's one-line summary (with the progress bar on), and the last good checkpoint so far."""
        cfg, ctx = self.cfg, self.ctx
        self.last_good = (f"{self.ckpt_path} (epoch {self.start_epoch}, iteration {self.iteration})"
                          if resumed else "none (no epoch had finished)")
        precision = (f", {str(self.autocast_dtype).removeprefix('torch.')} autocast" if self.amp else "") + (
            ", channels_last" if cfg.channels_last else "")
        _message(f"training {cfg.head}+{cfg.upsampling} ({cfg.backbone}) on {cfg.dataset} ({len(self.train_set)} "
                 f"images, {cfg.num_classes} classes) on {self.device}"
                 f"{' x' + str(ctx.world_size) if ctx.enabled else ''}{precision}: {self.epochs} "
                 f"epochs, {self.max_iter} iterations, batch {cfg.batch_size}, lr {cfg.lr:g}"
                 f"{f', resuming at epoch {self.start_epoch + 1}' if resumed else ''}", self.show)

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["state_dict"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch, self.iteration = int(ckpt["epoch"]), int(ckpt["iteration"])
        states = ckpt.get("rng") or []
        if len(states) == self.ctx.world_size:
            set_rng_state(states[self.ctx.rank])
        else:
            seed_all(self.cfg.seed + 7919 * self.start_epoch + self.ctx.rank)
            if self.ctx.is_main:
                warnings.warn(f"the checkpoint holds RNG states for {len(states)} processes, not "
                              f"{self.ctx.world_size}: the run continues but not bit-identically", stacklevel=3)

    def _loader(self, epoch: int):
        from torch.utils.data import DataLoader

        self.sampler.set_epoch(epoch)
        # workers' seeds come from this generator: augmentation is a function of (seed, epoch, rank)
        generator = torch.Generator().manual_seed(epoch_seed(self.cfg.seed, epoch, self.ctx.rank))
        return DataLoader(self.train_set, batch_size=self.per_rank_batch, sampler=self.sampler,
                          num_workers=self.cfg.workers, pin_memory=self.cuda, drop_last=True,
                          worker_init_fn=seed_worker, generator=generator)

    def _step(self, images: torch.Tensor, masks: torch.Tensor, epoch: int, step: int, steps: int
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor], float]:
        lr = poly_lr(self.cfg.lr, self.iteration, self.max_iter, self.cfg.power)
        set_lr(self.optimizer, lr)
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        masks = masks.to(self.device, non_blocking=True)
        with torch.autocast(device_type="cuda" if self.cuda else "cpu", dtype=self.autocast_dtype or torch.float16,
                            enabled=self.amp):
            outputs = self.net(images)
        # the loss (a log-softmax over classes) in float32, whatever precision the network ran in
        loss, parts = self.criterion({k: v.float() for k, v in outputs.items()}, masks)
        finite = torch.isfinite(loss.detach()).float()
        if self.ctx.enabled:  # every process must stop together
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        if finite.item() < 1:  # a batch without a labelled pixel gives NaN whatever the learning rate
            raise NonFiniteLossError(
                f"the loss became {loss.item()} at iteration {self.iteration + 1} (epoch {epoch + 1}, step "
                f"{step + 1} of {steps}; lr {lr:.3g}); training stopped. The last good checkpoint is kept: {self.last_good}. "
                f"{unlabelled_batch(masks, self.criterion.ignore_index) or 'Lower the learning rate (--lr) or check the data.'}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.iteration += 1
        return loss.detach(), parts, lr

    def _train_epoch(self, epoch: int) -> tuple[dict[str, float], int]:
        self.net.train()
        steps = min(self.iters_per_epoch, self.max_iter - self.iteration)
        sums: dict[str, float] = {}
        count = 0
        with _progress_bar(self.show, steps, f"epoch {epoch + 1}/{self.epochs}") as bar:
            for step, (images, masks) in enumerate(self._loader(epoch)):
                if step >= steps:
                    break
                loss, parts, lr = self._step(images, masks, epoch, step, steps)
                count += 1
                values = {"loss": float(loss), **{k: float(v) for k, v in parts.items()}}
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                if self.step_log is not None and (count % self.cfg.log_every == 0 or count == steps):
                    self.step_log.write({"iteration": self.iteration, "epoch": epoch + 1, "lr": lr, **values})
                    if bar is not None:
                        bar.set_postfix(loss=f"{sums['loss'] / count:.4f}", lr=f"{lr:.2e}")
                if bar is not None:
                    bar.update(1)
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise NonFiniteLossError(
                f"the weights became NaN/inf during epoch {epoch + 1} (by iteration {self.iteration}); training "
                f"stopped without saving this epoch. The last good checkpoint is kept: {self.last_good}.")
        return sums, count

    def _epoch_record(self, epoch: int, sums: dict[str, float], count: int, seconds: float) -> dict[str, Any]:
        from ..inference.evaluate import evaluate

        cfg = self.cfg
        keys = sorted(sums)
        means = torch.tensor([sums[k] / max(count, 1) for k in keys], dtype=torch.float64)
        if self.ctx.enabled:  # the mean over all processes
            means = means.to(self.device)
            dist.all_reduce(means)
            means = means.cpu() / self.ctx.world_size
        record: dict[str, Any] = {"epoch": epoch + 1, "iteration": self.iteration,
                                  "lr": poly_lr(cfg.lr, self.iteration, self.max_iter, cfg.power)}
        record.update({k: float(v) for k, v in zip(keys, means.tolist(), strict=True)})
        record["train_time_s"] = seconds
        record["images_per_s"] = count * cfg.batch_size / seconds if seconds > 0 else None
        last = self.iteration >= self.max_iter or epoch + 1 == self.epochs
        if self.val_set is not None and cfg.eval_every and ((epoch + 1) % cfg.eval_every == 0 or last):
            val = evaluate(self.model, self.val_set, base_size=cfg.base_size, crop_size=cfg.crop_size,
                           device=self.device, limit=cfg.eval_limit, progress=self.show)
            record["val"] = {k: val[k] for k in ("pixAcc", "mIoU", "iou", "images", "time_s")}
            if "without_background" in val:
                record["val"]["without_background"] = val["without_background"]
        return record

    def _save(self, epoch: int, record: dict[str, Any]) -> None:
        from ..checkpoint import save_checkpoint

        states = self.ctx.all_gather(rng_state())  # every process's RNG (collective: all ranks call it)
        if self.ctx.is_main:
            records = [*(self.records or []), record]
            save_checkpoint(self.model, self.ckpt_path, classes=self.classes, optimizer=self.optimizer.state_dict(),
                            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None, epoch=epoch + 1,
                            iteration=self.iteration, max_iterations=self.max_iter, rng=states,
                            train_config=self.cfg.to_dict(), dataset=self.cfg.dataset, metrics=record,
                            epoch_log=records, palette=self.palette)
            self.records = records
            pause_point("after_checkpoint_rename")  # test-only: a kill here must not lose the epoch's record
            assert self.log is not None
            self.log.write(record)
        self.last_good = f"{self.ckpt_path} (epoch {epoch + 1}, iteration {self.iteration})"

    def run(self) -> dict[str, Any]:
        history: list[dict[str, Any]] = []
        start = time.perf_counter()
        done = 0
        for epoch in range(self.start_epoch, self.epochs):
            if self.iteration >= self.max_iter:
                break
            if self.cfg.stop_after_epochs is not None and done >= self.cfg.stop_after_epochs:
                break
            t0 = time.perf_counter()
            sums, count = self._train_epoch(epoch)
            record = self._epoch_record(epoch, sums, count, time.perf_counter() - t0)
            record["elapsed_s"] = time.perf_counter() - start
            self._save(epoch, record)
            val = f", val mIoU {record['val']['mIoU']:.4f}" if "val" in record else ""
            _message(f"epoch {epoch + 1}/{self.epochs}: loss {record['loss']:.4f}{val} "
                     f"({record['train_time_s']:.0f} s, {record['images_per_s']:.1f} img/s)", self.show)
            history.append(record)
            done += 1
            self.ctx.barrier()
        return {"out_dir": str(self.out_dir), "checkpoint": str(self.ckpt_path), "log": str(self.out_dir / "log.jsonl"),
                "epochs": self.epochs, "epochs_done": self.start_epoch + done, "iterations": self.iteration,
                "max_iterations": self.max_iter, "history": history,
                # a resume with nothing left to do: the checkpoint's last epoch record
                "final": history[-1] if history else (self.records or [None])[-1],
                "time_s": time.perf_counter() - start, "world_size": self.ctx.world_size, "device": self.device,
                "config": self.cfg.to_dict()}


def train(config: TrainConfig | None = None, resume: bool | str | Path = False) -> dict[str, Any]:
    """Train one model; returns a summary (``out_dir``, ``checkpoint``, ``history`` of epoch records, ...).

    ``resume=True`` continues ``config.out_dir/last.pth``; a path continues that checkpoint. The stored
    configuration must match ``config`` except for the runtime fields (``RUNTIME_FIELDS``).
    """
    config = config or TrainConfig()
    config.resolved()  # the settings' ranges, before anything touches the folder
    ctx, device = setup_distributed(config.device)
    lock = None
    try:
        # a dataset with bad pairs stops the run here, before the lock or anything else is written
        datasets = checked_datasets(config.resolved(), ctx.is_main)
        if ctx.is_main:
            lock = RunLock(config.out_dir)
            lock.acquire()
            remove_stale_temp_files(config.out_dir, STATE_FILES)
        return _Run(config, resume, ctx, device, datasets).run()
    finally:
        if lock is not None:
            lock.release()
        ctx.close()
