# Two entry points for a fresh clone: `make book` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PROFILE ?= quick
DEVICE ?= auto

.PHONY: install test lint book book-run book-html clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[book,test]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) -m pytest -q

# Execute the chapters that changed (papermill), then render the HTML (jupyter-book, strict, offline).
book: install
	$(PY) -m fastfcn book run --profile $(PROFILE) --device $(DEVICE)
	$(PY) -m fastfcn book build
	@echo "The book is at $(CURDIR)/book/_build/html/index.html"

book-run: install
	$(PY) -m fastfcn book run --profile $(PROFILE) --device $(DEVICE)

book-html: install
	$(PY) -m fastfcn book build

clean:
	rm -rf book/_build book/_executed
