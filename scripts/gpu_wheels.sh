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

# Left out, so that the folder fits the device tool's 64 MiB per call (the full set is ~118 MB): what the GPU image's
# python already has (its package list in the device library's KINDS.md, read 2026-11-17), and otter-grader's
# PDF-export and container stack, which `otter.Notebook(...).check` never imports (playwright alone is 53 MB;
# checked by running chapters 1, 2, 3 and 5 with these modules made unimportable). gpu_run.sh installs the rest
# with --no-deps.
ON_GPU_IMAGE=(numpy pandas pyyaml pygments jinja2 markupsafe attrs packaging python-dateutil six tqdm requests
              urllib3 idna certifi charset-normalizer psutil typing-extensions click markdown-it-py mdurl wrapt)
NOT_IMPORTED=(playwright greenlet pyee sphinx sphinxcontrib-applehelp sphinxcontrib-devhelp sphinxcontrib-htmlhelp
              sphinxcontrib-jsmath sphinxcontrib-qthelp sphinxcontrib-serializinghtml alabaster babel imagesize
              snowballstemmer python-on-whales pydantic pydantic-core annotated-types typing-inspection)
for wheel in "$tmp"/wheels/*.whl; do
    name=$(basename "$wheel" | cut -d- -f1 | tr '_.A-Z' '--a-z')
    if [[ " ${ON_GPU_IMAGE[*]} ${NOT_IMPORTED[*]} " == *" $name "* ]]; then rm "$wheel"; fi
done

# a fresh folder: two versions of one package in it would stop the offline install
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$tmp"/wheels/*.whl "$DEST"/
# the offline install gpu_run.sh does there, tried here for python 3.12 (--isolated: no index from pip's config)
"$PYTHON" -m pip install --isolated --quiet --dry-run --ignore-installed --no-index --no-deps \
    --only-binary=:all: --python-version "$TARGET_PY" --implementation cp --abi "$ABI" "${PLATFORMS[@]}" \
    --target "$tmp/site" "$DEST"/*.whl
echo "$(ls "$DEST"/*.whl | wc -l) wheels for python $TARGET_PY in $DEST ($(du -sh "$DEST" | cut -f1))"
