# Two entry points: `make repro` (set up, then run the whole pipeline) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Stages run `python ...`: make that the project's environment.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro test bench clean-venv

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/activate

setup: $(BIN)/activate

repro: setup
	$(BIN)/dvc repro

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/engine_vs_dataloader.py

clean-venv:
	rm -rf $(VENV)
