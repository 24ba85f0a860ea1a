"""What a resume checks before it touches the run folder: a complete training checkpoint, and no newer run.

* :func:`load_resume_checkpoint` -- the checkpoint to continue, with every key a resume needs; a
  missing key, or training settings of another fastfcn version, is one line naming the file and the key.
* :func:`refuse_replacing_another_run` -- ``--resume OLDER.pth --out-dir D`` writes ``D/last.pth`` (and
  rewrites ``D/log.jsonl`` from OLDER's records); when ``D/last.pth`` is further along or is another
  run, that would destroy it: refused unless ``overwrite``.
* :func:`checkpoint_to_resume` -- the two above for one ``train(resume=...)`` call, and a new run's refusal
  to replace a folder that already holds a run; :func:`refuse_other_settings` -- a resume continues with
  the settings it was trained with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checkpoint import load_checkpoint
from .config import check_stored_config, config_differences

__all__ = ["load_resume_checkpoint", "refuse_replacing_another_run", "checkpoint_to_resume", "refuse_other_settings",
           "describe"]

TRAINING_KEYS = ("state_dict", "optimizer", "epoch", "iteration", "train_config")


def describe(path: Path, ckpt: dict[str, Any]) -> str:
    return f"{path} (epoch {ckpt.get('epoch')}, iteration {ckpt.get('iteration')})"


def load_resume_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist")
    ckpt = load_checkpoint(path)
    if "train_config" not in ckpt or "optimizer" not in ckpt:
        raise ValueError(f"{path} is a model checkpoint without training state; cannot resume")
    missing = [k for k in TRAINING_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path} lacks {missing[0]!r}, which a resume needs: it is not a complete training "
                         f"checkpoint of this fastfcn version; start a new run")
    check_stored_config(ckpt["train_config"], path)
    return ckpt


def refuse_replacing_another_run(source: Path, ckpt: dict[str, Any], target: Path, overwrite: bool) -> None:
    """Raise ``FileExistsError`` if resuming ``source`` would replace a newer or different ``target``."""
    if overwrite or not target.is_file() or source.resolve() == target.resolve():
        return
    try:
        other = load_checkpoint(target)
    except ValueError:
        raise FileExistsError(f"{target} is not a fastfcn checkpoint; resuming {source} would replace it: "
                              f"choose another --out-dir or pass --overwrite") from None
    folder = target.parent
    if int(other.get("iteration") or 0) > int(ckpt["iteration"]):
        raise FileExistsError(
            f"{describe(target, other)} is newer than {describe(source, ckpt)}: resuming the older one into "
            f"{folder} would replace it and drop its later epochs from log.jsonl; resume {target} instead "
            f"(--resume without a path), choose another --out-dir, or pass --overwrite")
    stored = other.get("train_config")
    diffs = config_differences(stored, ckpt["train_config"]) if isinstance(stored, dict) else ["train_config"]
    if diffs:
        key = diffs[0].split(":")[0]
        theirs = f"{key} {stored.get(key)!r} vs {ckpt['train_config'].get(key)!r}" if isinstance(stored, dict) \
            else "no training settings"
        raise FileExistsError(
            f"{target} holds another run ({theirs} in {source}); resuming {source} into {folder} would replace "
            f"it: choose another --out-dir or pass --overwrite")


def checkpoint_to_resume(resume: bool | str | Path, ckpt_path: Path, overwrite: bool, is_main: bool
                         ) -> tuple[dict[str, Any] | None, Path | None]:
    """``(checkpoint, its path)`` to continue into ``ckpt_path`` (``resume=True``: ``ckpt_path`` itself), or
    ``(None, None)`` for a new run, which the main process refuses where ``ckpt_path`` exists, unless
    ``overwrite``."""
    if not resume:
        if is_main and ckpt_path.exists() and not overwrite:
            raise FileExistsError(f"{ckpt_path.parent} already holds a run ({ckpt_path.name}); resume it "
                                  f"(--resume), choose another --out-dir or pass --overwrite")
        return None, None
    path = Path(resume) if isinstance(resume, str | Path) else ckpt_path
    ckpt = load_resume_checkpoint(path)
    if is_main:
        refuse_replacing_another_run(path, ckpt, ckpt_path, overwrite)
    return ckpt, path


def refuse_other_settings(ckpt: dict[str, Any], settings: dict[str, Any], path: Path) -> None:
    """Raise ``ValueError`` if the run's ``settings`` differ from the checkpoint's beyond the runtime fields."""
    diffs = config_differences(ckpt["train_config"], settings)
    if diffs:
        raise ValueError(f"{path} was trained with other settings ({'; '.join(diffs)}); pass the same "
                         f"values or start a new run in another --out-dir")
