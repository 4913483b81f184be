# Two commands for a fresh machine: `make run` and `make test`.
VENV   ?= .venv
PYTHON ?= python3.11
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The pure packages: no Ray actors, no HTTP server; typed strictly.
TYPED  := cvplatform store tune_space serve_apps actors tui
# `make pytest` fails when the product packages' line coverage (see [tool.coverage] in
# pyproject.toml) falls below this. Running pytest by hand measures nothing.
COVERAGE_MIN := 80

.PHONY: run test lint typecheck contracts pytest install install-gpu clean

run: $(STAMP)
	$(BIN)/cvp up

test: $(STAMP) lint typecheck contracts pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(TYPED)

# The import contracts of pyproject.toml ([tool.importlinter]): design.md's layers and rules.
contracts: $(STAMP)
	$(BIN)/lint-imports --no-logo

# The in-process tests (unit, api, reports) run on every core; the ones with a live Ray
# (integration) after them, in one process, so that they share one Ray session; that run adds its
# coverage to the first's and reports the total. Last, the whole platforms of tests/e2e, started
# as a user starts them, without coverage: measuring every process of two platforms costs a
# minute or more and adds little (the CLI's own lines are covered in-process). Both live runs
# print their slowest tests, where the suite's time goes.
pytest: $(STAMP)
	rm -f .coverage .coverage.*
	$(BIN)/pytest tests/unit tests/api tests/reports -n auto --cov --cov-report=
	$(BIN)/pytest tests/integration --cov --cov-append --durations=10 \
		--cov-report=term:skip-covered --cov-fail-under=$(COVERAGE_MIN)
	$(BIN)/pytest tests/e2e --durations=5

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache .coverage .coverage.*
