# The image every Kubeflow task runs: Python 3.10, the locked dependencies, the project at /pipeline.
# Build and push, tagged per build (compile refuses `latest`: KFP caches tasks by the image string):
#   docker build -t REGISTRY/penguin-tfx:$(git rev-parse --short HEAD) . && docker push REGISTRY/penguin-tfx:...
# then compile against it:  python -m pipeline compile --image REGISTRY/penguin-tfx:... --output-root gs://...
# tests/test_image_build.py runs these steps in a clean Debian root (no Docker engine there).

# Builder: a C++ compiler for the locked dependencies without a Linux wheel (pyfarmhash, which TFDV needs),
# the virtualenv built at the path it keeps in the image.
FROM python:3.10.13-slim AS builder

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    DEBIAN_FRONTEND=noninteractive

RUN apt-get update && apt-get install -y --no-install-recommends g++ && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /pipeline
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock .python-version README.md ./
RUN uv sync --locked --no-dev --no-install-project --python /usr/local/bin/python3.10

COPY pipeline/ pipeline/
COPY components/ components/
COPY trainer_module/ trainer_module/
COPY schemas/ schemas/
COPY penguin_tfx_s3.py setup.py ./
RUN uv sync --locked --no-dev --no-editable --python /usr/local/bin/python3.10 \
    && /pipeline/.venv/bin/python -m pipeline.storage.filesystems

# The image: the same base without the compiler, the virtualenv and the project copied over.
FROM python:3.10.13-slim

ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/pipeline/.venv \
    PATH=/pipeline/.venv/bin:$PATH

WORKDIR /pipeline
COPY --from=builder /pipeline /pipeline

# TFX's KubeflowV2 tasks run `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor ...`
# with this image's PATH, so `python` is the virtualenv's.
