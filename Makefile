# `make run` and `make test` set everything up on first use: uv (if missing), the locked virtualenv, then go.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# TFX 1.16 needs Keras 2; every process started from here gets it (the packages also set it on import).
export TF_USE_LEGACY_KERAS := 1

# The stack (docs/stacks.md): current (TFX 1.16, TensorFlow 2.16, Python 3.10: uv.lock) or next (TFX 1.21,
# TensorFlow 2.21, Python 3.11: next/uv.lock; glibc 2.39 or newer, else `make test-next` runs it in a Debian 13
# root). Each has its own virtualenv; `make run STACK=next` on a system new enough.
STACK ?= current
ifeq ($(STACK),next)
STACK_DIR := next
VENV := .venv-next
else ifeq ($(STACK),current)
STACK_DIR := .
VENV := .venv
else
$(error STACK=$(STACK): expected current or next)
endif
PYTHON_VERSION := $(shell cat $(STACK_DIR)/.python-version)
PYTHON_MINOR := $(shell echo $(PYTHON_VERSION) | cut -d. -f1,2)
# pyenv's interpreter when pyenv has it, else one of that version on PATH.
PYTHON := $(shell p=$$(pyenv prefix $(PYTHON_VERSION) 2>/dev/null) && echo $$p/bin/python$(PYTHON_MINOR) || command -v python$(PYTHON_MINOR))
PY := $(VENV)/bin/python
# A uv on PATH if it runs here (a pyenv shim for another Python does not), else one bootstrapped into .tools/.
UV := $(shell uv --version >/dev/null 2>&1 && echo uv || echo .tools/bin/uv)
OUTPUT_ROOT ?= outputs

KFP_OUTPUT_ROOT ?= gs://YOUR_BUCKET/penguin-tfx
# Empty: the project's image of this version (pipeline/kubeflow/compiler.py).
KFP_IMAGE ?=

.PHONY: help setup system-deps run test test-next test-next-ci test-fast lint docs clean bench bench-gpu compile report tensorboard

help:
	@echo "make run        run the whole pipeline locally on the bundled penguins data (into $(OUTPUT_ROOT)/)"
	@echo "make report     write the latest run's HTML report and model card again (TASK=penguin_species)"
	@echo "make tensorboard  TensorBoard on the Trainer's logs of every run in $(OUTPUT_ROOT)/ (PORT=6006)"
	@echo "make test       run the test suite (unit tests and end-to-end pipeline runs)"
	@echo "make test-fast  run the unit tests only"
	@echo "make test-next  the suite on the newer stack (TFX 1.21, Python 3.11) in a Debian 13 root (TESTS=...)"
	@echo "make lint       ruff over the whole tree"
	@echo "make docs       the documentation site into site/ (MkDocs, --strict)"
	@echo "make bench      benchmarks (local run and its floor, data stage and run floors, 10M rows, input pipeline, training, Kubeflow downloads) into bench/RESULTS.md"
	@echo "make bench-gpu  the training-throughput benchmark on this machine's GPU, into bench/RESULTS.md"
	@echo "make compile    compile for Kubeflow Pipelines / Vertex AI into compiled/ (KFP_OUTPUT_ROOT, KFP_IMAGE)"
	@echo "make clean      delete $(OUTPUT_ROOT)/ (pushed models, metadata, logs)"

.tools/bin/uv:
	@test -n "$(PYTHON)" || { echo "error: Python $(PYTHON_VERSION) not found; install it with 'pyenv install $(PYTHON_VERSION)'"; exit 1; }
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

$(VENV)/.synced: pyproject.toml uv.lock $(STACK_DIR)/pyproject.toml $(STACK_DIR)/uv.lock | $(if $(filter uv,$(UV)),,.tools/bin/uv)
	@test -n "$(PYTHON)" || { echo "error: Python $(PYTHON_VERSION) not found; install it with 'pyenv install $(PYTHON_VERSION)'"; exit 1; }
ifeq ($(STACK),next)
	@$(PYTHON) -c 'import os, sys; v = os.confstr("CS_GNU_LIBC_VERSION").split()[1]; sys.exit(tuple(map(int, v.split("."))) < (2, 39) and f"error: STACK=next needs glibc 2.39 or newer (its TFX 1.21 wheels are manylinux_2_39); this system has {v}: run it in a Debian 13 root with make test-next")'
	UV_PROJECT_ENVIRONMENT=$(abspath $(VENV)) $(UV) sync --locked --compile-bytecode --project next --python $(PYTHON)
	$(UV) pip install --python $(VENV)/bin/python --no-deps --editable .
else
	$(UV) sync --locked --compile-bytecode --python $(PYTHON)
endif
	$(VENV)/bin/python -m pipeline.storage.filesystems
	@touch $@

setup: $(VENV)/.synced

run: setup
	$(PY) -m pipeline run --output-root $(OUTPUT_ROOT)

test: setup system-deps
	$(PY) -m pytest

# The suite on the newer stack in a Debian 13 root (tests/next_stack.py); TESTS=... runs a selection (pytest's
# arguments). CI runs NEXT_CI_TESTS (docs/stacks.md): an end-to-end run, the catalogue's unit tests, what
# differs on that stack, the launcher-level test in Vertex's mode (both modes: make test-next), and the
# Evaluator's batched metrics, models' outputs and columns decoder against TFX's, TFMA's and tfx_bsl's own on
# that stack.
TESTS ?=
E2E := tests/test_pipeline_e2e.py
NEXT_CI_TESTS := $(E2E)::test_first_run_executes_every_component_and_pushes \
	$(E2E)::test_pushed_model_serves_serialized_examples_accurately $(E2E)::test_training_logs_show_the_catalogue_at_work \
	$(E2E)::test_second_run_reuses_cache_and_does_not_push_again \
	tests/test_layers.py tests/test_losses.py tests/test_metrics.py tests/test_models.py tests/test_callbacks.py \
	tests/test_training_loop.py tests/test_catalogue_models.py \
	tests/test_storage.py tests/test_kubeflow.py tests/test_stacks.py tests/test_lock.py tests/test_kubeflow_launcher.py \
	tests/test_evaluator.py::test_the_same_metrics_slices_and_blessing_as_tfxs_evaluator[first_run] \
	tests/test_evaluator.py::test_the_models_outputs_are_tfmas_extractors_outputs[first_run] \
	tests/test_batched_examples.py::test_columns_decoder_makes_tfx_bsls_record_batches

test-next: setup system-deps
	$(PY) -m tests.next_stack $(TESTS)

test-next-ci: setup system-deps
	LAUNCHER_MODES=vertex $(PY) -m tests.next_stack --without-system-packages $(NEXT_CI_TESTS)

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

# The documentation site (mkdocs.yml) into site/; --strict, as the suite builds it (tests/test_docs.py).
docs: setup
	$(PY) -m pipeline.settings > docs/configuration.md
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(OUTPUT_ROOT)

compile: setup
	$(PY) -m pipeline compile --output-root $(KFP_OUTPUT_ROOT) $(if $(KFP_IMAGE),--image $(KFP_IMAGE))

# About 105 minutes on 2 cores; each script rewrites its own section of bench/RESULTS.md.
bench: setup
	$(PY) -m bench.local_run --repeats 3
	$(PY) -m bench.cold_floor --repeats 3
	$(PY) -m bench.data_stage --rows 10000 100000 1000000 --workers 1 2
	$(PY) -m bench.floors --rows 1000000 --repeats 3
	$(PY) -m bench.large_run --rows 1000000 10000000
	$(PY) -m bench.run_floors --rows 1000000 --repeats 3
	$(PY) -m bench.input_pipeline --rows 100000 --repeats 3
	$(PY) -m bench.training_throughput --repeats 3
	$(PY) -m bench.batch_inference --rows 100000 1000000 --repeats 3
	$(PY) -m bench.kfp_downloads --rows 1000000

bench-gpu: setup
	@nvidia-smi --query-gpu=name --format=csv,noheader >/dev/null 2>&1 || { echo "error: no GPU here (nvidia-smi found none); make bench-gpu needs one"; exit 1; }
	@$(PY) -c "import tensorflow as tf, sys; sys.exit(not tf.config.list_physical_devices('GPU'))" 2>/dev/null || { echo "error: TensorFlow sees no GPU; add its CUDA libraries: $(UV) pip install --python $(PY) 'tensorflow[and-cuda]==2.16.2'"; exit 1; }
	$(PY) -m bench.training_throughput --repeats 3
