# One-command set-up. `make demo` runs the main job, `make test` runs the test suite;
# both create .venv on first use. TORCH_SPEC selects the torch build: the default pins
# the release that installs as a CPU wheel on the lab's CPU machines; on a GPU machine
# pass e.g. TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128".
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Vendor SDKs installed for the SDK conformance tests (tests/real/test_real_sdk_conformance.py):
# they import without hardware. flexivrdk has no wheel for Python 3.11 and is not among them.
SDK_EXTRAS ?= franka,ur

.PHONY: setup demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev,$(SDK_EXTRAS)]" || { echo "warning: the $(SDK_EXTRAS) SDKs did not \
	install; their conformance tests will skip"; $(PY) -m pip install -q -e ".[dev]"; }
	touch $@

setup: $(VENV)/.installed

# The quickstart on the embedded default: the simulated wipe comparison (RDP vs DP, random
# scenes, 10 paired seeds per perturbation mode, the RDP paper's timing), under 10 minutes on
# 2 CPU cores. `tactkit demo --help` lists the settings.
DEMO_ARGS ?=

demo: setup
	$(VENV)/bin/tactkit demo $(DEMO_ARGS)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check tactkit tests benchmarks

# Every benchmark with its published settings (hours); BENCH_ARGS=--quick for a smoke run.
bench: setup
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
