# Two entry points for a fresh clone: `make book` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROFILE ?= quick
DEVICE ?= auto
# complete (solutions included, collapsed) or student (solutions removed): `make book EDITION=student`
EDITION ?= complete
ifeq ($(filter complete student,$(EDITION)),)
$(error EDITION=$(EDITION) is not an edition of the book: use EDITION=complete (the default) or EDITION=student)
endif

.PHONY: install test lint book book-run book-html clean gpu-run gpu-wheels

# scripts/install_venv.py installs with uv, given pip's configured indexes (about half pip's time), else with pip.
# Either way the venv is byte-compiled: these machines set PYTHONDONTWRITEBYTECODE, so without .pyc files every
# process compiles torch again (7 s of CPU instead of 4 per import; tried 2026-12-03). FASTFCN_INSTALLER=pip: pip.
$(STAMP): pyproject.toml scripts/install_venv.py
	$(PYTHON) scripts/install_venv.py $(VENV) -e '.[book,test,lab,deploy,teach]'
	touch $(STAMP)

# a double click on a chapter (.md) in `.venv/bin/jupyter lab` opens it as a notebook: jupytext's
# viewer as the default, in a settings file of the venv's JupyterLab that the project controls
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.d/fastfcn-book.json

$(LAB_SETTINGS): jupyter/fastfcn-book.json $(STAMP)
	mkdir -p $(dir $@)
	cp $< $@

install: $(STAMP) $(LAB_SETTINGS)

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) -m pytest -q

# Execute the chapters that changed (papermill), then render the HTML (jupyter-book, strict, offline).
book: install
	$(PY) -m fastfcn book run --profile $(PROFILE) --device $(DEVICE)
	$(PY) -m fastfcn book build --edition $(EDITION)

book-run: install
	$(PY) -m fastfcn book run --profile $(PROFILE) --device $(DEVICE)

book-html: install
	$(PY) -m fastfcn book build --edition $(EDITION)

# Every GPU figure of the book, on a machine with a GPU (scripts/gpu_run.sh --help): the venv's python when there
# is one, else python3 with the wheels of `make gpu-wheels`. GPU_RUN_ARGS: e.g. GPU_RUN_ARGS="--profile full".
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
gpu-run:
	bash scripts/gpu_run.sh --python $(GPU_PYTHON) $(GPU_RUN_ARGS)

# papermill, jupytext, ipykernel and their needs as python 3.12 wheels in .gpu-wheels/, for a GPU machine with no registry
gpu-wheels: install
	PYTHON=$(PY) bash scripts/gpu_wheels.sh

clean:
	rm -rf book/_build book/_executed
