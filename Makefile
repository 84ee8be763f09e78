# Two entry points: `make repro` (set up, then run the whole pipeline) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Stages run `python ...`: make that the project's environment.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro test bench paper clean-venv browser

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/activate

setup: $(BIN)/activate

repro: setup
	$(BIN)/dvc repro

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

clean-venv:
	rm -rf $(VENV)
