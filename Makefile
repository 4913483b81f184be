# Two commands for a fresh machine: `make run` and `make test`.
VENV   ?= .venv
PYTHON ?= python3.11
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The pure packages: no Ray actors, no HTTP server; typed strictly.
TYPED  := cvplatform store tune_space serve_apps actors tui

.PHONY: run test lint typecheck pytest install install-gpu clean

run: $(STAMP)
	$(BIN)/cvp up

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(TYPED)

pytest: $(STAMP)
	$(BIN)/pytest

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,tensorflow]'
	touch $@

# On a CUDA host: swap the CPU build of ONNX Runtime for the GPU one, add TensorRT and NVML.
install-gpu: $(STAMP)
	$(BIN)/pip uninstall --yes onnxruntime
	$(BIN)/pip install --quiet -e '.[dev,tensorflow,gpu]'

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
