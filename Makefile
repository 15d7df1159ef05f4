# The single entry point: CI calls `make test`, a new user `make demo`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LINT_PATHS := functions tests infrastructure layers bench events

.PHONY: install test test-artifact lint typecheck unit demo bench openapi synth layers layers-check clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects nothing; make treats any non-zero exit as failure.
test: lint typecheck
	$(BIN)/pytest -q

# The artifact tier: builds the code asset and layers for this machine, then runs every function
# from them as Lambda would (python3.12 -I -S, read-only, the SDK apart) against a moto server.
# Not part of `make test` (pyproject.toml ignores tests/artifact unless named): it downloads wheels.
test-artifact: $(STAMP)
	$(BIN)/python layers/build.py --arch host --runtime
	$(BIN)/pytest -q tests/artifact

demo: $(STAMP)
	$(BIN)/mlops demo

# The serving figures come from the artifacts built for this machine (and the runtime's SDK).
bench: $(STAMP)
	$(BIN)/python layers/build.py --arch host --runtime
	$(BIN)/python bench/run_all.py

# Rewrite the committed OpenAPI document from the handlers (a test fails when they differ).
openapi: $(STAMP)
	$(BIN)/python -m mlops.handlers.openapi

# Builds the code asset (with Python 3.12 bytecode) and cross-installs the layers' wheels with pip
# (no Docker); a layer is rebuilt only when its pins change. ARCH=x86_64 (or host) builds the same
# pins for another architecture into layers/build/<arch>; the stack deploys arm64.
ARCH ?= arm64
layers: $(STAMP)
	$(BIN)/python layers/build.py --arch $(ARCH)

# Fails if a function plus its layers leaves less than 15% of Lambda's unzipped limit.
layers-check: $(STAMP)
	$(BIN)/python layers/build.py --check

# The template of one stage into cdk.out, e.g. make synth CONTEXT="-c stage=prod -c alarmEmail=ops@example.com"
CONTEXT ?=
synth: layers
	$(BIN)/python -m infrastructure.synth $(CONTEXT)

clean:
	rm -rf $(VENV) cdk.out layers/build .pytest_cache .mypy_cache .ruff_cache
