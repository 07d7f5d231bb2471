# Two commands matter: `make demo` and `make test`. Both create .venv if missing and install into it.
# A second run reuses the environment (the stamp file changes only when pyproject.toml does).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint clean-cache

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first and pinned: a later resolver step then finds torch==2.13.0 satisfied and pulls no CUDA wheels.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/modelpress demo

test: setup
	$(VENV)/bin/ruff check modelpress tests benchmarks
	HF_HUB_OFFLINE=1 $(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check modelpress tests benchmarks

clean-cache:
	rm -rf $${MODELPRESS_CACHE:-$$HOME/.cache/modelpress}
