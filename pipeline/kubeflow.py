"""Kubeflow Pipelines: compile `create_pipeline(config)` with TFX's KubeflowV2DagRunner, upload and run it,
or schedule it, with the kfp client."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.parse
from pathlib import Path, PurePosixPath

import yaml

from pipeline.config import REPO_ROOT, PipelineConfig

DEFAULT_IMAGE = "ghcr.io/penguin-tfx/penguin-tfx:latest"
# Where the Dockerfile puts the project inside the image.
IMAGE_PROJECT_DIR = PurePosixPath("/pipeline")
PIPELINE_SPEC_FILE = "pipeline.yaml"  # KFP v2 pipeline spec: what kfp.Client uploads
PIPELINE_JOB_FILE = "pipeline_job.json"  # PipelineJob: what Vertex AI Pipelines runs
CONNECT_TIMEOUT_S = 10


class KubeflowError(RuntimeError):
    """The Kubeflow Pipelines host could not be reached or refused a request."""


def kubeflow_name(name: str) -> str:
    """Kubeflow's pipeline names match [a-z0-9][a-z0-9-]{0,127}: penguin_species -> penguin-species."""
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:128] or "pipeline"


def image_path(path: str) -> str:
    """A file of this repository as the container sees it (the image holds the project at /pipeline)."""
    resolved = Path(path).resolve()
    if resolved.is_relative_to(REPO_ROOT):
        return str(IMAGE_PROJECT_DIR / resolved.relative_to(REPO_ROOT).as_posix())
    return path


def compile_pipeline(config: PipelineConfig, output_dir: str, image: str = DEFAULT_IMAGE) -> dict[str, Path]:
    """Writes the KFP v2 pipeline spec (YAML) and the Vertex PipelineJob (JSON) into `output_dir`.

    Returns {"spec": yaml path, "job": json path}. The run's data root (`data_root`) and step budget
    (`train_args`, JSON) are runtime parameters defaulting to the configured values.
    """
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import (
        KubeflowV2DagRunner,
        KubeflowV2DagRunnerConfig,
    )

    from pipeline.pipeline import create_pipeline, runtime_parameter_defaults

    pipeline = create_pipeline(
        config.replace(pipeline_name=kubeflow_name(config.pipeline_name)), kubeflow=True
    )
    for component in pipeline.components:
        if component.id == "ImportSchemaGen":
            # The schema's content hash was taken here; the container reads the same file from the image.
            component.exec_properties["schema_file"] = image_path(config.schema_path)
    defaults = runtime_parameter_defaults(config)
    runner = KubeflowV2DagRunner(
        # Schema 2.1 is what the KFP 2 backend and SDK read.
        config=KubeflowV2DagRunnerConfig(default_image=image, use_pipeline_spec_2_1=True)
    )
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    # The pipeline spec carries the defaults too, so that a run started from the KFP UI needs no input.
    parameters = job["pipelineSpec"]["root"]["inputDefinitions"]["parameters"]
    for name, value in defaults.items():
        parameters[name]["defaultValue"] = value

    Path(output_dir).mkdir(parents=True, exist_ok=True)
    spec_path, job_path = Path(output_dir, PIPELINE_SPEC_FILE), Path(output_dir, PIPELINE_JOB_FILE)
    header = f"# PIPELINE DEFINITION\n# Name: {pipeline.pipeline_info.pipeline_name}\n"
    spec_path.write_text(header + yaml.safe_dump(job["pipelineSpec"], sort_keys=True))
    job_path.write_text(json.dumps(job, indent=1, sort_keys=True))
    return {"spec": spec_path, "job": job_path}


def _client(host: str):
    """A kfp.Client for `host`, after checking that something listens there (the client itself retries
    for half a minute and then fails with a stack trace)."""
    parsed = urllib.parse.urlparse(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise KubeflowError(f"--host {host!r} is not a URL; pass e.g. http://localhost:8080")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise KubeflowError(
            f"cannot reach Kubeflow Pipelines at {host} ({error.strerror or error}); check the URL, or "
            "port-forward the UI: kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80"
        ) from error
    import kfp

    return kfp.Client(host=host)


def _call(what: str, host: str, request):
    try:
        return request()
    except KubeflowError:
        raise
    except Exception as error:  # noqa: BLE001 - kfp_server_api raises ApiException and urllib3 errors
        message = " ".join(str(error).split())[:300]
        raise KubeflowError(f"Kubeflow Pipelines at {host} refused to {what}: {message}") from error


def upload(client, host: str, spec_path: Path, pipeline_name: str) -> str:
    """Uploads the pipeline, or a new version of it when one of that name exists; returns its id."""
    pipeline_id = _call("list pipelines", host, lambda: client.get_pipeline_id(pipeline_name))
    if pipeline_id is None:
        return _call(
            "upload the pipeline",
            host,
            lambda: client.upload_pipeline(str(spec_path), pipeline_name=pipeline_name).pipeline_id,
        )
    version = f"{pipeline_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    _call(
        "upload a pipeline version",
        host,
        lambda: client.upload_pipeline_version(
            str(spec_path), pipeline_version_name=version, pipeline_id=pipeline_id
        ),
    )
    return pipeline_id


def submit(spec_path: Path, host: str, pipeline_name: str, experiment: str, arguments: dict) -> dict:
    """Uploads the compiled pipeline and starts a run of it; returns the ids the server gave."""
    client = _client(host)
    pipeline_id = upload(client, host, spec_path, pipeline_name)
    run = _call(
        "start a run",
        host,
        lambda: client.create_run_from_pipeline_package(
            str(spec_path), arguments=arguments, experiment_name=experiment, run_name=pipeline_name
        ),
    )
    return {"pipeline_id": pipeline_id, "run_id": run.run_id}


def schedule(
    spec_path: Path, host: str, pipeline_name: str, experiment: str, cron: str, arguments: dict
) -> dict:
    """Creates a recurring run of the compiled pipeline on `cron` (six fields, seconds first, as KFP reads
    it); returns the ids the server gave."""
    client = _client(host)
    experiment_id = _call(
        "create the experiment", host, lambda: client.create_experiment(name=experiment).experiment_id
    )
    recurring = _call(
        "create the recurring run",
        host,
        lambda: client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=f"{pipeline_name} on {cron}",
            cron_expression=cron,
            pipeline_package_path=str(spec_path),
            params=arguments,
        ),
    )
    return {"experiment_id": experiment_id, "recurring_run_id": recurring.recurring_run_id}
