# Two entry points: `make repro` (set up, then run the whole pipeline) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Stages run `python ...`: make that the project's environment.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro test bench paper clean-venv browser docs sweep

# TORCH=cpu: install the CPU builds of the pinned torch and torchvision (versions read from pyproject.toml) from
# PyTorch's CPU wheel index first, leaving out about 4 GB of CUDA libraries; the project's install then keeps them.
# It applies when .venv is created: on an existing one, `make clean-venv` first. Default: the plain PyPI install.
TORCH ?= default
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PINS := $(shell grep -oE '"torch(vision)?==[^"]+"' pyproject.toml | tr -d '"')
ifeq ($(filter $(TORCH),default cpu),)
$(error TORCH=$(TORCH) is not a choice: use TORCH=cpu for the CPU builds, or leave it unset)
endif

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(if $(filter cpu,$(TORCH)),$(BIN)/pip install --quiet --index-url $(TORCH_CPU_INDEX) $(TORCH_PINS))
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/activate

setup: $(BIN)/activate

# After the run, the README's results and cost box and the docs' tables follow the new metrics (`make docs`).
repro: setup
	$(BIN)/dvc repro
	$(BIN)/python -m latentspace.docs

# The report's test opens the HTML in headless Chromium. Install Debian's package when it is missing and we
# may (root with apt-get); otherwise that test skips with the reason, or fails where CI is set.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (Debian package) for the report's browser test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "warning: could not install chromium; the report's browser test will skip (fail under CI)"; \
	else \
		echo "note: chromium is missing and cannot be installed here (needs root and apt-get);" \
			"the report's browser test will skip (fail under CI)"; \
	fi

test: setup browser
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmarks/engine_vs_dataloader.py

# Paper scale: every override in paper_scale.yaml as one DVC experiment named paper-scale (meant for a GPU).
# `make paper PAPER_ARGS=--queue` queues it instead of running it now.
paper: setup
	$(BIN)/python -c "import json, subprocess, sys, yaml; \
	o = yaml.safe_load(open('paper_scale.yaml')); \
	s = [a for k, v in o.items() for a in ('-S', f'{k}={json.dumps(v)}')]; \
	sys.exit(subprocess.call(['dvc', 'exp', 'run', '-n', 'paper-scale', *s, *sys.argv[1:]]))" $(PAPER_ARGS)

# The generated parts of README.md and docs/ (results at a glance, cost box, parameter tables) from the tracked
# metrics, docs/costs.yaml and the parameter schema; tests/test_docs.py fails when they are stale.
docs: setup
	$(BIN)/python -m latentspace.docs

# The delta sweep (sweep.yaml): Study A once per delta as DVC experiments on the queue, then reports/sweep.md and
# reports/sweep.html. Rerunning resumes (finished deltas are kept); `make sweep SWEEP_ARGS=--report-only` only
# rewrites the report from the finished experiments.
sweep: setup
	$(BIN)/python -m latentspace.sweep $(SWEEP_ARGS)

clean-venv:
	rm -rf $(VENV)
