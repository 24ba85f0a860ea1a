"""The package installed as a user gets it (not editable), used from another folder.

Default output folders come from the current directory or an argument, never from the package's own
location: after these commands the installed package's folder holds exactly the files it had.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install --no-deps`` of the working tree into a folder of its own (a wheel is built).

    The sources are copied first, so that the build's ``build/`` folder does not land in the checkout.
    """
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "fastfcn", source / "fastfcn", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path_factory.mktemp("site")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, env=env, timeout=600)
    assert (target / "fastfcn" / "models" / "fastfcn.py").is_file()
    assert not (target / "fastfcn" / "book" / "_toc.yml").exists()
    return target


def run_installed(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run([sys.executable, "-m", "fastfcn", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_the_installed_package_is_the_one_imported(installed: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    out = subprocess.run([sys.executable, "-c", "import fastfcn; print(fastfcn.__file__)"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out).resolve().is_relative_to(installed.resolve())


def test_predict_and_bench_help_from_another_folder(installed: Path, tmp_path: Path) -> None:
    from fastfcn import build_model
    from fastfcn.checkpoint import save_checkpoint

    before = files_under(installed)
    work = tmp_path / "work"
    work.mkdir()
    torch.manual_seed(0)
    save_checkpoint(build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=3, jpu_width=16).eval(),
                    work / "model.pth", classes=["a", "b", "c"], train_config={"base_size": 64, "crop_size": 64})
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(work / "photo.png")

    proc = run_installed(installed, work, "predict", "photo.png", "--checkpoint", "model.pth", "--out", "masks",
                         "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (work / "masks").iterdir()) == ["photo.png_mask.png", "photo.png_overlay.png"]
    with Image.open(work / "masks" / "photo.png_mask.png") as mask:
        assert mask.size == (56, 40)

    proc = run_installed(installed, work, "bench", "--help")
    assert proc.returncode == 0 and "--out-dir" in proc.stdout, proc.stderr

    # outside a checkout there is no book: the book commands say so in one line
    proc = run_installed(installed, work, "book", "run", "--profile", "smoke")
    assert proc.returncode == 2 and "no book at" in proc.stderr and "--book-dir" in proc.stderr
    assert "Traceback" not in proc.stderr

    assert files_under(installed) == before, "the installed package's folder changed"


def load_installer():
    import importlib.util

    spec = importlib.util.spec_from_file_location("install_venv", REPO / "scripts" / "install_venv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_installer_hands_pips_indexes_find_links_and_constraints_to_uv(tmp_path: Path) -> None:
    """uv reads no pip configuration: what ``pip config list`` shows must reach uv (variables over files)."""
    fake_pip = tmp_path / "pip"
    fake_pip.write_text("#!/bin/sh\ncat <<'END'\n:env:.find-links='/opt/wheels'\n:env:.default-timeout='180'\n"
                        "global.find-links='/elsewhere'\nglobal.constraint='/etc/xdg/pip/constraints.txt'\n"
                        "global.extra-index-url='file:///a/simple file:///b/simple'\nglobal.cert='/x.pem'\nEND\n")
    fake_pip.chmod(0o755)
    installer = load_installer()
    args = installer.uv_arguments(installer.pip_settings(fake_pip))
    pairs = list(zip(args[::2], args[1::2], strict=True))
    assert pairs[0] == ("--index-strategy", "unsafe-best-match")
    assert sorted(pairs[1:]) == [("--constraint", "/etc/xdg/pip/constraints.txt"),
                                 ("--extra-index-url", "file:///a/simple"), ("--extra-index-url", "file:///b/simple"),
                                 ("--find-links", "/opt/wheels")]


def test_the_installer_says_how_it_is_used() -> None:
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "install_venv.py")], capture_output=True,
                          text=True)
    assert done.returncode != 0 and done.stderr.strip().startswith("usage: python3 scripts/install_venv.py VENV")
