# Bootstrap a virtual environment on a fresh machine, then run the demo or the test suite.
PYTHON ?= python3
VENV   := .venv
UV     := $(VENV)/bin/uv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.synced

.PHONY: setup demo test lint typecheck unit bench clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.8

$(STAMP): $(UV) pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --extra agent --quiet --compile-bytecode
	$(BIN)/python -m compileall -q src  # bytecode as an installed netfence has it
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	@$(BIN)/python scripts/demo.py

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -q

test: lint typecheck unit

bench: setup
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/generate.py
	$(BIN)/python benchmarks/agent.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
