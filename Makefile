# Two entry points: `make repro` (set up, then run the whole pipeline) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Stages run `python ...`: make that the project's environment.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro test bench quick paper clean-venv browser docs sweep lock

# Every dependency is installed at the exact version requirements.lock pins (a pip constraints file: the versions the
# committed run used), so a fresh machine computes with the same numpy, scipy, umap-learn, numba, scikit-learn and
# dvc; pyproject.toml keeps the ranges the code supports. `make lock` rewrites the lock (below).
LOCK := requirements.lock

# TORCH=cpu: install the CPU builds of the pinned torch and torchvision (versions read from pyproject.toml) from
# PyTorch's CPU wheel index first (without their dependencies, which then come at the locked versions), leaving out
# about 4 GB of CUDA libraries; the project's install then keeps them.
# It applies when .venv is created: on an existing one, `make clean-venv` first. Default: the plain PyPI install.
TORCH ?= default
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_PINS := $(shell grep -oE '"torch(vision)?==[^"]+"' pyproject.toml | tr -d '"')
ifeq ($(filter $(TORCH),default cpu),)
$(error TORCH=$(TORCH) is not a choice: use TORCH=cpu for the CPU builds, or leave it unset)
endif

$(BIN)/activate: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(if $(filter cpu,$(TORCH)),$(BIN)/pip install --quiet --no-deps --index-url $(TORCH_CPU_INDEX) $(TORCH_PINS))
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(BIN)/activate

setup: $(BIN)/activate

# After the run, the README's results and cost box and the docs' tables follow the new metrics (`make docs`).
# It ends with the list of git-tracked files the run and `make docs` rewrote (dvc.lock, metrics, report.md, and the
# generated parts of README.md and docs/), so nothing changes in the tree unannounced.
TRACKED_SUMS = git ls-files -z 2>/dev/null | xargs -0 -r sha1sum 2>/dev/null
repro: setup
	@$(TRACKED_SUMS) > $(VENV)/.tracked-before
	$(BIN)/dvc repro
	$(BIN)/python -m latentspace.docs
	@$(TRACKED_SUMS) | diff $(VENV)/.tracked-before - | sed -n 's/^> [0-9a-f]*  //p' > $(VENV)/.tracked-changed; \
	if [ -s $(VENV)/.tracked-changed ]; then \
		echo "make repro rewrote $$(wc -l < $(VENV)/.tracked-changed) git-tracked file(s) (git diff shows how):"; \
		sed 's/^/  /' $(VENV)/.tracked-changed; \
	else echo "make repro rewrote no git-tracked file"; fi; rm -f $(VENV)/.tracked-before $(VENV)/.tracked-changed

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

# One pytest worker per core (pytest-xdist); worksteal balances the long end-to-end tests across them (those that
# share the tiny pipeline build it once for all workers: tests/conftest.py).
test: setup browser
	$(BIN)/python -m pytest -n auto --dist worksteal

bench: setup
	$(BIN)/python benchmarks/engine_vs_dataloader.py

# Profiles: every override of the file as one DVC experiment (params.yaml untouched), each override checked first.
# `make quick`: every stage in about 10 minutes on 2 cores, to try the pipeline out (quick.yaml).
# `make paper`: the original sizes and schedules, meant for a GPU (paper_scale.yaml).
# PROFILE_ARGS go to `dvc exp run`, e.g. `make paper PROFILE_ARGS=--queue` queues it instead of running it now.
PROFILE_ARGS ?= $(PAPER_ARGS)
quick: setup
	$(BIN)/python -m latentspace.core.profile quick.yaml $(PROFILE_ARGS)

paper: setup
	$(BIN)/python -m latentspace.core.profile paper_scale.yaml --name paper-scale $(PROFILE_ARGS)

# The generated parts of README.md and docs/ (results at a glance, cost box, parameter tables) from the tracked
# metrics, docs/costs.yaml and the parameter schema; tests/docs/test_docs.py fails when they are stale.
docs: setup
	$(BIN)/python -m latentspace.docs

# The delta sweep (sweep.yaml): Study A once per delta as DVC experiments on the queue, then reports/sweep.md and
# reports/sweep.html. Rerunning resumes (finished deltas are kept); `make sweep SWEEP_ARGS=--report-only` only
# rewrites the report from the finished experiments.
sweep: setup
	$(BIN)/python -m latentspace.sweep.run $(SWEEP_ARGS)

# Rewrite requirements.lock from what .venv holds: after a change of dependencies in pyproject.toml, or after an
# upgrade (`.venv/bin/pip install -U numpy`); `make lock UPGRADE=1` first upgrades every dependency to the newest
# release pyproject.toml allows. The local build label of torch (2.14.1+cpu) is dropped: the lock serves both builds.
# Commit the new lock with the run made on it (the report's appendix lists the versions it ran with).
lock:
	@test -x $(BIN)/pip || { echo "error: no $(VENV) yet; run make setup first" >&2; exit 2; }
	$(if $(UPGRADE),$(BIN)/pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev]')
	$(BIN)/pip check
	{ echo "# Exact versions of every dependency (pip constraints): \`make setup\` installs with them, \`make lock\` rewrites"; \
	  echo "# this file from .venv (Makefile). Python $$($(BIN)/python -c 'import platform; print(platform.python_version())')."; \
	  $(BIN)/pip freeze --all --exclude-editable --exclude latentspace --exclude pip | sed -E 's/^(torch[a-z]*==[^+]+)\+.*/\1/' | LC_ALL=C sort -f; \
	} > $(LOCK).tmp && mv $(LOCK).tmp $(LOCK)
	@echo "wrote $(LOCK) ($$(grep -c '==' $(LOCK)) packages)"

clean-venv:
	rm -rf $(VENV)
