"""Project-level consistency: the conda environment and pyproject agree; profiles are complete."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from fastfcn.profiles import PROFILES, get_profile
from fastfcn.utils import resolve_device

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    pip_lines = []
    in_pip = False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("- pip:"):
            in_pip = True
            continue
        if in_pip and stripped.startswith("- "):
            pip_lines.append(stripped[2:].strip())
    conda_reqs = {_name(r): r.replace(" ", "") for r in pip_lines if not r.startswith("-e")}
    py_reqs = {_name(r): r.replace(" ", "") for r in wanted}
    assert set(conda_reqs) == set(py_reqs), (set(conda_reqs) ^ set(py_reqs))
    for name, req in py_reqs.items():
        assert conda_reqs[name] == req, f"{name}: pyproject says {req}, environment.yml says {conda_reqs[name]}"


def test_profiles_define_the_same_settings() -> None:
    keys = {name: set(values) for name, values in PROFILES.items()}
    assert set(keys) == {"smoke", "quick", "full"}
    assert keys["smoke"] == keys["quick"] == keys["full"]
    assert get_profile("quick").input_size == PROFILES["quick"]["input_size"]


def test_bad_profile_and_device() -> None:
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        get_profile("fast")
    with pytest.raises(AttributeError, match="no setting"):
        get_profile("smoke").no_such_setting  # noqa: B018
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    assert resolve_device("cpu") == "cpu"


def test_exact_fp32_switches_tf32_off_and_restores_it() -> None:
    import torch

    from fastfcn.utils.device import exact_fp32

    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        with pytest.raises(RuntimeError, match="inside"), exact_fp32():
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
            raise RuntimeError("inside")  # an error inside still restores the settings
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old
