#!/usr/bin/env bash
# Download the wheels that scripts/gpu_run.sh installs on a GPU machine with no registry (python 3.12,
# x86-64 Linux): papermill, jupytext, ipykernel and everything they need, at the versions of this
# checkout's .venv where it has them, so the GPU run executes the chapters with the stack the CPU tests use.
#
#   scripts/gpu_wheels.sh [DEST]        (default .gpu-wheels; PYTHON=... picks the pip that downloads)
set -euo pipefail

cd "$(dirname "$0")/.."
DEST=${1:-.gpu-wheels}
PYTHON=${PYTHON:-.venv/bin/python}
TARGET_PY=${GPU_PYTHON_VERSION:-3.12}
ABI="cp${TARGET_PY/./}"
# otter-grader and jupyterquiz: chapters 1, 2, 3 and 5 check their exercises (`grader.check`) and show a quiz
PACKAGES=(papermill jupytext ipykernel nbclient nbformat otter-grader jupyterquiz)

# pip matches manylinux_2_N tags exactly: list every glibc a 3.12 wheel is commonly built for
PLATFORMS=()
for n in 5 12 17 24 26 27 28 31 34 35 36 38 39; do PLATFORMS+=(--platform "manylinux_2_${n}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the .venv's versions as constraints (only those of packages the set needs apply)
"$PYTHON" -m pip freeze --exclude-editable 2>/dev/null | grep -E '^[A-Za-z0-9._-]+==' >"$tmp/constraints.txt" || true

"$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version "$TARGET_PY" --implementation cp --abi "$ABI" "${PLATFORMS[@]}" \
    -c "$tmp/constraints.txt" -d "$tmp/wheels" "${PACKAGES[@]}" 2>&1 |
    { grep -v "is ignored: it is neither a file nor a directory" || true; }  # noise of an index in pip's config

# a fresh folder: two versions of one package in it would stop the offline install
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$tmp"/wheels/*.whl "$DEST"/
printf '%s\n' "${PACKAGES[@]}" >"$DEST/requirements.txt"
# the offline install gpu_run.sh does there, resolved here for python 3.12 (--isolated: no index from pip's config)
"$PYTHON" -m pip install --isolated --quiet --dry-run --ignore-installed --no-index --find-links "$DEST" \
    --only-binary=:all: --python-version "$TARGET_PY" --implementation cp --abi "$ABI" "${PLATFORMS[@]}" \
    --target "$tmp/site" -r "$DEST/requirements.txt"
echo "$(ls "$DEST"/*.whl | wc -l) wheels for python $TARGET_PY in $DEST ($(du -sh "$DEST" | cut -f1))"
