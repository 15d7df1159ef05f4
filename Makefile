# The single entry point: CI calls `make test`, a new user `make demo`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LINT_PATHS := functions tests infrastructure layers bench events

.PHONY: install test test-artifact lint typecheck browser unit demo bench bench-full openapi synth layers layers-check clean

# Two installs: the demo and the local stack need the runtime dependencies and moto only;
# `make test` adds CDK, linters and test tools (several hundred MB more) on top. uv installs
# in parallel and several times faster than pip, which is most of a first `make demo`.
RUNTIME := $(VENV)/.runtime
UV      := $(BIN)/uv pip install --python $(BIN)/python
PIP_ARGS := install --quiet --disable-pip-version-check uv
# The venv gets no pip of its own: installing pip into it costs more than the one install pip
# does here (uv). pip runs from the wheel Python bundles for ensurepip; where a distribution
# removed that wheel, ensurepip puts pip into the venv as `python -m venv` would.
PIP_WHEEL = $(shell $(PYTHON) -c 'import ensurepip, pathlib; print(next(pathlib.Path(ensurepip.__file__).parent.glob("_bundled/pip-*.whl"), ""))' 2>/dev/null)

$(BIN)/uv:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (set PYTHON=...)")'
	@echo "== [1/3] creating $(VENV) (first run only)"
	$(PYTHON) -m venv --without-pip $(VENV)
	@echo "== [2/3] installing uv into it with pip"
	@if [ -n "$(PIP_WHEEL)" ]; then $(BIN)/python $(PIP_WHEEL)/pip $(PIP_ARGS); \
	else $(BIN)/python -m ensurepip --default-pip >/dev/null && $(BIN)/python -m pip $(PIP_ARGS); fi

$(RUNTIME): pyproject.toml | $(BIN)/uv
	@echo "== [3/3] installing the runtime dependencies and moto with uv (first run only)"
	$(UV) -e '.[local]'
	@touch $(RUNTIME)

# pip too: layers/build.py cross-installs the layers' wheels with the venv's pip.
$(STAMP): pyproject.toml $(RUNTIME)
	@echo "== installing the development tools (first run only)"
	$(UV) -e '.[dev]' pip
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(BIN)/mypy

# The report pages are checked in headless Chromium (tests/e2e/test_report_pages.py): installed
# from the distribution once, a no-op when it is on PATH. Under CI=true the tests fail without it.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing chromium for the report page tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# pytest exits 5 when it collects nothing; make treats any non-zero exit as failure.
test: lint typecheck browser
	$(BIN)/pytest -q

# The artifact tier: builds the code asset and layers for this machine, then runs every function
# from them as Lambda would (python3.12 -I -S, read-only, the SDK apart) against a moto server.
# Not part of `make test` (pyproject.toml ignores tests/artifact unless named): it downloads wheels.
test-artifact: $(STAMP)
	$(BIN)/python layers/build.py --arch host --runtime
	$(BIN)/pytest -q tests/artifact

demo: $(RUNTIME)
	$(BIN)/mlops demo

# The serving figures come from the artifacts built for this machine (and the runtime's SDK).
bench: $(STAMP)
	$(BIN)/python layers/build.py --arch host --runtime
	$(BIN)/python bench/run_all.py

# One monitor run at full scale (no scale factor): about 10 minutes and 6 GB of memory.
bench-full: $(STAMP)
	$(BIN)/python bench/monitor_full_scale.py

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
