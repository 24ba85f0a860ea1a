"""Install the project into a virtual environment, with uv where it can be had, else with pip.

``make install`` runs this with the machine's ``python3``. uv installs the same packages as pip in about half the
time (downloads in parallel, wheels unpacked on every core, bytecode compiled on every core: ~100 s against ~190 s
for pip plus compileall on a 2-core machine, 2026-12-03), but it does not read pip's configuration. So the indexes,
find-links folders and constraint files that pip is configured with (``pip config list``: its files and ``PIP_*``
variables) are handed to uv, and uv may take a release from whichever of them has it (``unsafe-best-match``: the
pinned torch wheels lie in a local index, the rest comes from PyPI). If uv cannot be installed or fails, pip does the
install as before; the venv ends the same either way.

Usage: ``python3 scripts/install_venv.py VENV SPEC`` (SPEC as pip takes it, e.g. ``-e '.[book,test]'``).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

# pip option -> uv option; each value may hold several entries separated by white space
PIP_TO_UV = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
             "constraint": "--constraint"}


def pip_settings(pip: Path) -> dict[str, list[str]]:
    """pip's configured indexes, find-links and constraints (files and ``PIP_*`` variables; variables win)."""
    listed = subprocess.run([str(pip), "config", "list"], capture_output=True, text=True, check=False).stdout
    found: dict[str, dict[str, list[str]]] = {}
    for line in listed.splitlines():
        match = re.fullmatch(r"(:env:|[\w-]+)\.([\w-]+)='(.*)'", line.strip())
        if match and match[2] in PIP_TO_UV:
            found.setdefault(match[2], {})["env" if match[1] == ":env:" else "file"] = match[3].split()
    return {key: where.get("env", where.get("file", [])) for key, where in found.items()}


def uv_arguments(settings: dict[str, list[str]]) -> list[str]:
    args = ["--index-strategy", "unsafe-best-match"]
    for key, values in settings.items():
        for value in values:
            args += [PIP_TO_UV[key], value]
    return args


def run(cmd: list[str], **kwargs) -> int:
    return subprocess.run(cmd, check=False, **kwargs).returncode


def install_with_uv(venv: Path, spec: list[str]) -> bool:
    python, pip = venv / "bin" / "python", venv / "bin" / "pip"
    if run([str(pip), "install", "--quiet", "--disable-pip-version-check", "uv"]):
        return False
    env = dict(os.environ)
    cert = os.environ.get("PIP_CERT")
    if cert and "SSL_CERT_FILE" not in env:  # a mirror behind the machine's own certificate authority
        env["SSL_CERT_FILE"] = cert
    cmd = [str(venv / "bin" / "uv"), "pip", "install", "--quiet", "--python", str(python), "--compile-bytecode",
           *uv_arguments(pip_settings(pip)), *spec]
    print("install:", shlex.join(cmd), flush=True)
    return run(cmd, env=env) == 0


def install_with_pip(venv: Path, spec: list[str]) -> None:
    python = str(venv / "bin" / "python")
    # without byte-compiling, then compileall on every core (pip compiles on one)
    if run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile", *spec]):
        sys.exit("install: pip could not install the project (its messages are above)")
    # the exit status is ignored: some packages ship files for other Python versions that do not compile
    run([python, "-m", "compileall", "-q", "-j", "0", str(next((venv / "lib").glob("python3*")))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: python3 scripts/install_venv.py VENV SPEC... (e.g. .venv -e '.[book,test]')")
    venv, spec = Path(argv[0]), argv[1:]
    if not (venv / "bin" / "python").exists():
        if run([sys.executable, "-m", "venv", str(venv)]):
            sys.exit(f"install: could not create the virtual environment {venv}")
    if os.environ.get("FASTFCN_INSTALLER", "uv") == "uv" and install_with_uv(venv, spec):
        return
    print("install: uv was not available or failed; installing with pip", flush=True)
    install_with_pip(venv, spec)


if __name__ == "__main__":
    main(sys.argv[1:])
