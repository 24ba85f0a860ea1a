"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest


@pytest.fixture(scope="session", autouse=True)
def book_runs(tmp_path_factory) -> Iterator[None]:
    """The chapters' Table 1 trainings go to one temporary folder for the whole session: chapters 7-9
    share them (as in a real build), and the repository's book/_build/runs is never touched."""
    import os

    from fastfcn.book.trainings import RUNS_ENV

    before = os.environ.get(RUNS_ENV)
    os.environ[RUNS_ENV] = str(tmp_path_factory.mktemp("book-runs"))
    yield
    if before is None:
        os.environ.pop(RUNS_ENV, None)
    else:
        os.environ[RUNS_ENV] = before


@pytest.fixture(scope="module")
def calibrated_encnet_jpu():
    """EncNet+JPU on ResNet-18 (5 classes, width 16) in eval mode, its BatchNorm statistics those of real
    activations (clear class margins): the inference tests' network, built once per test module."""
    import torch

    from fastfcn.models import build_model

    torch.manual_seed(0)
    net = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=5, jpu_width=16)
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(2, 3, 64, 64))
    return net.eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint of EncNet+JPU on ResNet-18 (3 classes "a", "b", "c", width 16, random weights) whose sizes
    (long side 64, crops of 64) keep predict's tests fast."""
    import torch

    from fastfcn.checkpoint import save_checkpoint
    from fastfcn.models import build_model

    torch.manual_seed(0)
    model = build_model("encnet", backbone="resnet18", upsampling="jpu", num_classes=3, jpu_width=16).eval()
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(model, path, classes=["a", "b", "c"], train_config={"base_size": 64, "crop_size": 64})
    return path


@pytest.fixture(scope="session", autouse=True)
def package_cache(tmp_path_factory) -> Iterator[None]:
    """The package's cache folder (exported graphs, the exact path measured on this machine) is a temporary one:
    a record left by the developer's own benchmarks must not change what the tests run, nor the tests theirs."""
    import os

    before = os.environ.get("FASTFCN_CACHE")
    os.environ["FASTFCN_CACHE"] = str(tmp_path_factory.mktemp("fastfcn-cache"))
    yield
    if before is None:
        os.environ.pop("FASTFCN_CACHE", None)
    else:
        os.environ["FASTFCN_CACHE"] = before


@pytest.fixture
def one_thread() -> Iterator[None]:
    """The CI/dev machines have 2 shared cores: one thread per test process is faster and steadier."""
    from fastfcn.utils.threads import limited_threads

    with limited_threads(1):
        yield


# ------------------------------------------------------------------------------------------------
# the book in Jupyter (tests/test_jupyter.py, tests/test_teaching.py): one `jupyter server` serves a
# chapter, one kernel executes it in the smoke profile, and both editions are built from that run

@pytest.fixture(scope="session")
def served_chapter(tmp_path_factory) -> dict:
    """A chapter as `.venv/bin/jupyter server` serves it through the contents API; the server is stopped after."""
    pytest.importorskip("jupyter_server")
    pytest.importorskip("jupytext")
    from jupyter_helpers import INTERACTIVE_CHAPTER, REPO, jupyter_command, running_server

    command = jupyter_command("server")
    with running_server(command, REPO, tmp_path_factory.mktemp("jupyter-server")) as server:
        return {"command": command, "pid": server.pid, "started_in": server.started_in,
                "chapter": server.get(f"/api/contents/book/{INTERACTIVE_CHAPTER}.md?type=notebook&content=1")}


@pytest.fixture(scope="session")
def kernel_executed_chapter(served_chapter, tmp_path_factory) -> dict:
    """The served chapter with its parameters cell set to ``profile = "smoke"``, run top to bottom in a
    ``python3`` kernel started in ``book/`` (what *Restart Kernel and Run All Cells* does); the
    executed notebook is written to ``<tmp>/<chapter>.ipynb``."""
    from jupyter_helpers import INTERACTIVE_CHAPTER, run_in_kernel

    status, _, body = served_chapter["chapter"]
    assert status == 200, body[:500]
    return run_in_kernel(body, INTERACTIVE_CHAPTER, tmp_path_factory.mktemp("kernel"))


@pytest.fixture
def plt() -> Iterator[ModuleType]:
    """pyplot on the non-interactive backend; every figure is closed afterwards."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    yield pyplot
    pyplot.close("all")
