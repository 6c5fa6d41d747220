# The image every Kubeflow task runs: Python 3.10, the locked dependencies, the project at /pipeline.
# Build and push:  docker build -t REGISTRY/penguin-tfx:TAG . && docker push REGISTRY/penguin-tfx:TAG
# then compile against it:  python -m pipeline compile --image REGISTRY/penguin-tfx:TAG --output-root gs://...
FROM python:3.10.13-slim

ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    VIRTUAL_ENV=/pipeline/.venv \
    PATH=/pipeline/.venv/bin:$PATH

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /pipeline
# Dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock .python-version ./
RUN uv sync --locked --no-dev --no-install-project --python /usr/local/bin/python3.10

COPY pipeline/ pipeline/
COPY components/ components/
COPY trainer_module/ trainer_module/
COPY schemas/ schemas/
RUN uv sync --locked --no-dev --no-editable --python /usr/local/bin/python3.10

# TFX's KubeflowV2 tasks run `python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor ...`
# with this image's PATH, so `python` is the virtualenv's.
