# `make run` and `make test` set everything up on first use: uv (if missing), the locked virtualenv, then go.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# TFX 1.16 needs Keras 2; every process started from here gets it (the packages also set it on import).
export TF_USE_LEGACY_KERAS := 1

PYTHON_VERSION := $(shell cat .python-version)
# pyenv's interpreter when pyenv has it, else a python3.10 on PATH.
PYTHON := $(shell p=$$(pyenv prefix $(PYTHON_VERSION) 2>/dev/null) && echo $$p/bin/python3.10 || command -v python3.10)
VENV := .venv
PY := $(VENV)/bin/python
# A uv on PATH if it runs here (a pyenv shim for another Python does not), else one bootstrapped into .tools/.
UV := $(shell uv --version >/dev/null 2>&1 && echo uv || echo .tools/bin/uv)
OUTPUT_ROOT ?= outputs

KFP_OUTPUT_ROOT ?= gs://YOUR_BUCKET/penguin-tfx
KFP_IMAGE ?= ghcr.io/penguin-tfx/penguin-tfx:0.1.0

.PHONY: help setup system-deps run test test-fast lint clean bench bench-gpu compile report tensorboard

help:
	@echo "make run        run the whole pipeline locally on the bundled penguins data (into $(OUTPUT_ROOT)/)"
	@echo "make report     write the latest run's HTML report and model card again (TASK=penguin_species)"
	@echo "make tensorboard  TensorBoard on the Trainer's logs of every run in $(OUTPUT_ROOT)/ (PORT=6006)"
	@echo "make test       run the test suite (unit tests and end-to-end pipeline runs)"
	@echo "make test-fast  run the unit tests only"
	@echo "make lint       ruff over the whole tree"
	@echo "make bench      benchmarks (local run, data stage scaling, input pipeline, training) into bench/RESULTS.md"
	@echo "make bench-gpu  the training-throughput benchmark on this machine's GPU, into bench/RESULTS.md"
	@echo "make compile    compile for Kubeflow Pipelines / Vertex AI into compiled/ (KFP_OUTPUT_ROOT, KFP_IMAGE)"
	@echo "make clean      delete $(OUTPUT_ROOT)/ (pushed models, metadata, logs)"

.tools/bin/uv:
	@test -n "$(PYTHON)" || { echo "error: Python $(PYTHON_VERSION) not found; install it with 'pyenv install $(PYTHON_VERSION)'"; exit 1; }
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

$(VENV)/.synced: pyproject.toml uv.lock | $(if $(filter uv,$(UV)),,.tools/bin/uv)
	@test -n "$(PYTHON)" || { echo "error: Python $(PYTHON_VERSION) not found; install it with 'pyenv install $(PYTHON_VERSION)'"; exit 1; }
	$(UV) sync --locked --compile-bytecode --python $(PYTHON)
	$(VENV)/bin/python -m pipeline.storage.filesystems
	@touch $@

setup: $(VENV)/.synced

run: setup
	$(PY) -m pipeline run --output-root $(OUTPUT_ROOT)

test: setup system-deps
	$(PY) -m pytest

# Debian's packages the tests use, installed when missing and this user may (root with apt-get), else the
# tests that need them say what is missing: debootstrap (a clean root for the image's install steps),
# mariadb-server (a MySQL-protocol metadata store, started by the tests on loopback), iproute2 (network
# namespaces as the hosts of the multi-worker test), chromium (the report's headless browser test).
SYSTEM_PACKAGES = debootstrap:debootstrap mariadb-server:mariadbd iproute2:ip chromium:chromium

system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
		command -v "$${entry#*:}" >/dev/null || [ -x "/usr/sbin/$${entry#*:}" ] || missing="$$missing $${entry%%:*}"; \
	done; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } || \
		echo "note: not installed:$$missing (apt-get install$$missing); the tests that need them fail"; }

TASK ?= penguin_species
PORT ?= 6006

report: setup
	$(PY) -m pipeline report --task $(TASK) --output-root $(OUTPUT_ROOT)

# One run per numbered directory: each Trainer execution's train/ and validation/ curves.
tensorboard: setup
	@test -d $(OUTPUT_ROOT)/pipeline/Trainer/model_run || { echo "error: no training logs in $(OUTPUT_ROOT)/pipeline/Trainer/model_run; run 'make run' first"; exit 1; }
	$(VENV)/bin/tensorboard --logdir $(OUTPUT_ROOT)/pipeline/Trainer/model_run --port $(PORT)

test-fast: setup
	$(PY) -m pytest -m "not e2e"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(OUTPUT_ROOT)

compile: setup
	$(PY) -m pipeline compile --output-root $(KFP_OUTPUT_ROOT) --image $(KFP_IMAGE)

# About 45 minutes on 2 cores; each script rewrites its own section of bench/RESULTS.md.
bench: setup
	$(PY) -m bench.local_run --repeats 3
	$(PY) -m bench.data_stage --rows 10000 100000 1000000 --workers 1 2
	$(PY) -m bench.input_pipeline --rows 100000 --repeats 3
	$(PY) -m bench.training_throughput --repeats 3
	$(PY) -m bench.batch_inference --rows 100000 1000000 --repeats 3

bench-gpu: setup
	@nvidia-smi --query-gpu=name --format=csv,noheader >/dev/null 2>&1 || { echo "error: no GPU here (nvidia-smi found none); make bench-gpu needs one"; exit 1; }
	@$(PY) -c "import tensorflow as tf, sys; sys.exit(not tf.config.list_physical_devices('GPU'))" 2>/dev/null || { echo "error: TensorFlow sees no GPU; add its CUDA libraries: $(UV) pip install --python $(PY) 'tensorflow[and-cuda]==2.16.2'"; exit 1; }
	$(PY) -m bench.training_throughput --repeats 3
