# NIE: the two commands are `make demo` and `make test`; the rest are their building blocks.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Re-install only when the project's dependencies change.
STAMP := $(VENV)/.installed-stamp
DATA ?= data/sample

.PHONY: venv demo test lint bench chromium sample photos clean help readme

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# pip prints one line per package it collects (a few minutes the first time); its full output
# goes to $(VENV)/install.log.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[make] installing NIE and its dependencies into $(VENV) (a few minutes the first time; log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -q --upgrade pip
	@# torch/torchvision resolve from this machine's local wheels (pip only; see README).
	@set -o pipefail; $(BIN)/python -m pip install -e '.[dev]' 2>&1 | tee $(VENV)/install.log \
		| awk '/^(Collecting|Installing collected|Successfully installed|ERROR)/ { print "  " substr($$0, 1, 100); fflush() }' \
		|| { echo "[make] pip install failed: see $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

venv: $(STAMP)  ## create/update the virtualenv in .venv

chromium:  ## install Debian's Chromium for the web-page tests (needs root + apt)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

sample: venv  ## build the bundled sample datasets (DIV2K + AVA layouts) in $(DATA)
	$(BIN)/nie data sample $(DATA)

photos: venv  ## the real-photograph set (scikit-image + Debian's lomiri-wallpapers) in data/photos
	@command -v apt-get >/dev/null 2>&1 && ! apt-cache show lomiri-wallpapers-16.04 >/dev/null 2>&1 \
		&& apt-get update -qq || true
	$(BIN)/nie data photos data/photos

demo: venv photos  ## set up, fine-tune the zoo EDSR (L2 and hybrid), sweep gamma, serve the page
	$(BIN)/nie demo

test: venv chromium  ## set up and run the whole test suite
	$(BIN)/python -m pytest

lint: venv  ## ruff check + format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: venv  ## run the benchmark suite (writes bench/results/*.json and *.md)
	$(BIN)/python -m bench.run_all

readme:  ## rewrite README.md's and bench/README.md's results blocks from the files commands wrote
	$(PYTHON) -m tools.readme_results

clean:  ## remove the virtualenv, caches and local runs
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
