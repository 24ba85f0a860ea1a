"""A real Jupyter server for the tests: on 127.0.0.1, a free port, a token, stopped by its own process id.

The server gets its own configuration, runtime and data folders (a temporary directory), so a user's
``~/.jupyter`` settings or kernels can make no test pass or fail; the project's settings in the
environment's ``share/jupyter`` and ``etc/jupyter`` are the ones under test.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
INTERACTIVE_CHAPTER = "03_dilated_vs_stride_1d"  # fast in smoke, with exercises and solutions
START_SECONDS = 120  # a cold start on a busy 2-core machine takes 10-20 s
KERNEL_CELL_SECONDS = 150  # as tests/test_book.py allows a smoke chapter


@dataclass(frozen=True)
class Server:
    url: str          # http://127.0.0.1:PORT
    token: str
    pid: int
    log: Path
    started_in: float  # seconds until /api/status answered

    def get(self, path: str) -> tuple[int, str, bytes]:
        """``(status, content type, body)`` of a GET with the token."""
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()

    def get_json(self, path: str) -> Any:
        status, _, body = self.get(path)
        assert status == 200, f"GET {path}: HTTP {status}: {body[:500]!r}"
        return json.loads(body)


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel picks it; a race with another process is unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(tmp: Path) -> dict[str, str]:
    """The environment with Jupyter's per-user folders moved into ``tmp``."""
    env = dict(os.environ)
    for var, name in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                      ("JUPYTER_DATA_DIR", "data"), ("IPYTHONDIR", "ipython")):
        (tmp / name).mkdir(parents=True, exist_ok=True)
        env[var] = str(tmp / name)
    env.pop("FASTFCN_RESULTS", None)  # a chapter opened interactively records nothing
    return env


def server_arguments(port: int, token: str) -> list[str]:
    """What the tests add to a ``jupyter server``/``jupyter lab`` command line."""
    args = ["--ip=127.0.0.1", f"--port={port}", "--port-retries=0", "--no-browser",
            f"--IdentityProvider.token={token}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # CI runs as root, and Jupyter refuses to start as root without it
    return args


@contextmanager
def running_server(command: Sequence[str], cwd: Path, tmp: Path) -> Iterator[Server]:
    """Start ``command`` (e.g. ``[".venv/bin/jupyter", "server"]``) and yield it once it answers."""
    port, token = free_port(), secrets.token_hex(16)
    log = tmp / "server.log"
    env = isolated_env(tmp)
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen([*command, *server_arguments(port, token)], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        server = Server(f"http://127.0.0.1:{port}", token, proc.pid, log, 0.0)
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if server.get("/api/status")[0] == 200:
                    break
            except OSError:
                pass  # not listening yet
            if time.perf_counter() - start > START_SECONDS:
                raise AssertionError(f"the server did not answer within {START_SECONDS} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(server.url, token, proc.pid, log, time.perf_counter() - start)
    finally:
        proc.terminate()  # SIGTERM to this process id only: the server shuts its kernels down itself
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


def jupyter_command(subcommand: str) -> list[str]:
    """``.venv/bin/jupyter SUBCOMMAND``: the ``jupyter`` next to the interpreter running the tests."""
    import pytest

    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.is_file():
        pytest.skip(f"no {jupyter}: run the tests with the environment `make install` made")
    return [str(jupyter), subcommand]


def set_parameter(source: str, name: str, value: str) -> str:
    """A parameters cell's source with ``name = ...`` given ``value`` (a Python literal), as a person edits it."""
    new, n = re.subn(rf"^{name}\s*=\s*[^#\n]*?(\s*(#.*)?)$", rf"{name} = {value}\1", source, count=1, flags=re.M)
    assert n == 1, f"no `{name} = ...` line in the parameters cell:\n{source}"
    return new


def run_in_kernel(model_json: bytes, stem: str, out_dir: Path) -> dict[str, Any]:
    """Execute a contents-API notebook model with its ``profile`` set to smoke; ``{"path", "seconds", "notebook"}``."""
    import nbformat
    from nbclient import NotebookClient

    model = json.loads(model_json)
    nb = nbformat.from_dict(model["content"])
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "expected one cell tagged parameters"
    params[0].source = set_parameter(params[0].source, "profile", '"smoke"')
    start = time.perf_counter()
    client = NotebookClient(nb, kernel_name="python3", timeout=KERNEL_CELL_SECONDS,
                            resources={"metadata": {"path": str(BOOK)}},  # a notebook's kernel runs in its folder
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    client.execute(env=isolated_env(out_dir))
    seconds = time.perf_counter() - start
    path = out_dir / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return {"path": path, "seconds": seconds, "notebook": nb}
