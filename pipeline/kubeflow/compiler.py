"""Compiling `create_pipeline(config)` for Kubeflow Pipelines (KFP v2 spec, YAML) and Vertex AI Pipelines
(PipelineJob, JSON) with TFX's KubeflowV2DagRunner, and what TFX 1.16 leaves for a cluster to trip on:

- the pipeline root goes into the spec (`defaultPipelineRoot`) as well as into the PipelineJob (TFX writes
  only `runtimeConfig.gcsOutputDirectory`), so that a self-hosted cluster does not fall back to its default;
- caching is compiled on for every task (TFX has no per-node switch); the tasks that must look at the
  world anew every run (the served model, the data's fingerprint) are switched off in the spec;
- TFX names the producer of a dynamic execution parameter `<task>_task`, a task that does not exist; the
  reference is pointed at the task;
- every task name must be an Argo DAG task name (KFP's backend uses them as such);
- the image must be immutable: KFP's cache key holds the image string, so a rebuilt `:latest` would hand
  out results computed with the old code;
- every task asks for its CPUs, memory and GPUs, and runs the project's entrypoint (TFX's, with the
  ExecutorInput self-hosted KFP builds repaired and a true exit status after S3 use), with the S3 store's
  settings in its environment when a location is s3:// (TensorFlow's, Beam's and the KFP launcher's);
- every task gets a volume of its size for the input artifacts self-hosted KFP's launcher copies to the pod
  before the task starts, and on s3:// the store's keys from a secret (the `platforms.kubernetes` document
  of pipeline.yaml).
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import yaml

from pipeline import settings
from pipeline.config import REPO_ROOT, PipelineConfig
from pipeline.storage.locations import SECRET_KEYS

IMAGE_REPOSITORY = "ghcr.io/penguin-tfx/penguin-tfx"


def default_image() -> str:
    """The project's image tagged with this version (the Dockerfile builds it)."""
    from pipeline import version

    return f"{IMAGE_REPOSITORY}:{version()}"


# Where the Dockerfile puts the project inside the image.
IMAGE_PROJECT_DIR = PurePosixPath("/pipeline")
PIPELINE_SPEC_FILE = "pipeline.yaml"  # KFP v2 pipeline spec: what kfp.Client uploads
PIPELINE_JOB_FILE = "pipeline_job.json"  # PipelineJob: what Vertex AI Pipelines runs
# KFP's Argo compiler turns every task name into an Argo DAG task name (and `<name>-driver`).
ARGO_TASK_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
MUTABLE_TAGS = ("latest",)
# Where KFP's launcher copies a task's input artifacts (component.LocalPathForURI), by the root's scheme.
DOWNLOAD_DIRS = {"gs": "/gcs", "s3": "/s3"}
DOWNLOAD_VOLUME = "kfp-downloads"
# Every task's command: TFX's v2 entrypoint, wrapped for a true exit status (pipeline/kubeflow/entrypoint.py).
ENTRYPOINT = ["python", "-m", "pipeline.kubeflow.entrypoint"]


class CompileError(ValueError):
    """The pipeline cannot be compiled as asked: one line naming the problem and the fix."""


def kubeflow_name(name: str) -> str:
    """Kubeflow's pipeline names match [a-z0-9][a-z0-9-]{0,127}: penguin_species -> penguin-species."""
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:128] or "pipeline"


def image_path(path: str) -> str:
    """A file of this repository as the container sees it (the image holds the project at /pipeline); a
    URI is read by the container as it is."""
    if "://" in path:
        return path
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(REPO_ROOT):
        raise CompileError(
            f"{path} is outside the project, so the image does not hold it: put it under "
            f"{REPO_ROOT / 'schemas'} and rebuild the image, or pass its gs:// or s3:// location"
        )
    return str(IMAGE_PROJECT_DIR / resolved.relative_to(REPO_ROOT).as_posix())


def check_image(image: str, allow_mutable: bool = False) -> None:
    """An image pinned by digest or by a version tag; `latest` or no tag only when allowed."""
    if "@sha256:" in image or allow_mutable:
        return
    name = image.rsplit("/", 1)[-1]
    tag = name.split(":", 1)[1] if ":" in name else None
    if tag is None or tag in MUTABLE_TAGS:
        which = "no tag" if tag is None else f"the mutable tag {tag!r}"
        raise CompileError(
            f"image {image} has {which}: KFP caches a task by "
            "its image string, so after a rebuild the cluster would reuse results of the old code; pin it "
            "(REGISTRY/IMAGE@sha256:DIGEST, or a tag per build such as the git commit), or pass "
            "--allow-mutable-image to accept that"
        )


def compile_pipeline(
    config: PipelineConfig, output_dir: str, image: str | None = None, allow_mutable_image: bool = False
) -> dict[str, Path]:
    """Writes the KFP v2 pipeline spec (YAML) and the Vertex PipelineJob (JSON) into `output_dir`.

    Returns {"spec": yaml path, "job": json path, "config": the effective configuration's YAML}. The run's
    data root (`data_root`) and step budget
    (`train_args`, JSON) are runtime parameters defaulting to the configured values.
    """
    from tfx.orchestration.kubeflow.v2.kubeflow_v2_dag_runner import (
        KubeflowV2DagRunner,
        KubeflowV2DagRunnerConfig,
    )

    from pipeline.pipeline import (
        BATCH_INFERENCE,
        BATCH_INFERENCE_SERVED,
        DATA_FINGERPRINT,
        INFERENCE_EXAMPLE_GEN,
        SERVED_BASELINE,
        create_pipeline,
        runtime_parameter_defaults,
    )

    image = image or default_image()
    check_image(image, allow_mutable_image)
    schema_in_image = image_path(config.schema_path)
    pipeline = create_pipeline(
        config.replace(pipeline_name=kubeflow_name(config.pipeline_name)), kubeflow=True
    )
    for component in pipeline.components:
        if component.id == "ImportSchemaGen":
            # The schema's content hash was taken here; the container reads the same file from the image.
            component.exec_properties["schema_file"] = schema_in_image
    defaults = runtime_parameter_defaults(config)
    runner = KubeflowV2DagRunner(
        # Schema 2.1 is what the KFP 2 backend and SDK read.
        config=KubeflowV2DagRunnerConfig(
            default_image=image, default_commands=ENTRYPOINT, use_pipeline_spec_2_1=True
        )
    )
    job = runner.run(pipeline, parameter_values=defaults, write_out=False)
    spec = job["pipelineSpec"]
    # The pipeline spec carries the defaults too, so that a run started from the KFP UI needs no input.
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name, value in defaults.items():
        parameters[name]["defaultValue"] = value
    spec["defaultPipelineRoot"] = config.pipeline_root
    job["runtimeConfig"]["gcsOutputDirectory"] = config.pipeline_root
    tasks = spec["root"]["dag"]["tasks"]
    environment = (
        [{"name": k, "value": v} for k, v in sorted(config.s3.environment().items())] if config.s3 else []
    )
    for name, task in tasks.items():
        executor = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        container = spec["deploymentSpec"]["executors"][executor]["container"]
        container["resources"] = resources(config, name)
        if environment:
            # TensorFlow's S3 filesystem reads these; the keys come from the cluster (AWS_* variables).
            container["env"] = environment
    # Their outcome depends on what is served or arrived since, not on their inputs. (Self-hosted KFP's cache
    # key has no fingerprint of the input files: a cached InferenceExampleGen would miss new rows to score.)
    uncached = (
        SERVED_BASELINE,
        DATA_FINGERPRINT,
        INFERENCE_EXAMPLE_GEN,
        BATCH_INFERENCE,
        BATCH_INFERENCE_SERVED,
    )
    for name in uncached:
        if name in tasks:
            tasks[name]["cachingOptions"] = {"enableCache": False}
    _point_parameters_at_their_producers(tasks)
    bad = sorted(name for name in tasks if not ARGO_TASK_NAME.match(name))
    if bad:
        raise CompileError(
            f"task names {', '.join(bad)} are not Argo DAG task names ([a-zA-Z0-9][-a-zA-Z0-9]*)"
        )

    Path(output_dir).mkdir(parents=True, exist_ok=True)
    spec_path, job_path = Path(output_dir, PIPELINE_SPEC_FILE), Path(output_dir, PIPELINE_JOB_FILE)
    header = f"# PIPELINE DEFINITION\n# Name: {pipeline.pipeline_info.pipeline_name}\n"
    documents = [spec]
    platform = platform_settings(config, spec)
    if platform:
        documents.append({"platforms": {"kubernetes": platform}})
    spec_path.write_text(header + yaml.safe_dump_all(documents, sort_keys=True))
    job_path.write_text(json.dumps(job, indent=1, sort_keys=True))
    # The effective configuration, secrets redacted, beside the spec (not in it: no task's arguments, so no
    # cache key, change with it).
    config_path = Path(output_dir, settings.CONFIG_FILE)
    config_path.write_text(settings.to_yaml(config))
    return {"spec": spec_path, "job": job_path, "config": config_path}


def resources(config: PipelineConfig, task: str) -> dict:
    """A task's container resources in the spec's terms (PipelineContainerSpec.ResourceSpec). Set here for
    every task: TFX's `with_platform_config` is dropped for ExampleGen by its compiler."""
    from google.protobuf import json_format
    from kfp.pipeline_spec.pipeline_spec_pb2 import PipelineDeploymentConfig

    wanted = config.resources(task)
    spec = PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec(
        cpu_limit=wanted.cpu, memory_limit=wanted.memory_gb
    )
    if wanted.gpus:
        spec.accelerator.type = wanted.gpu_type
        spec.accelerator.count = wanted.gpus
    return json_format.MessageToDict(spec)


def platform_settings(config: PipelineConfig, spec: dict) -> dict:
    """The `platforms.kubernetes` settings of pipeline.yaml (kfp-kubernetes' KubernetesExecutorConfig, which
    KFP's driver applies to each task's pod: `backend/src/v2/driver/k8s.go`), for a root on object storage
    (nothing for a local root, which Kubeflow does not run):

    - an emptyDir of the task's `disk_gb` where the launcher copies its input artifacts (`/gcs`, `/s3`:
      component.LocalPathForURI). KFP's Argo compiler mounts an emptyDir there anyway (`s3-scratch`, of no
      set size); this one, mounted at the same path, replaces it with a size limit, past which the kubelet
      evicts the pod and says so, rather than the copies filling the node's disk unannounced. It holds the
      downloads, the task's logs and (backend 2.15 and later) TFX's temporary directory beside the output
      file.
    - for an s3:// root, the store's keys from the secret `config.s3.secret` as AWS_ACCESS_KEY_ID and
      AWS_SECRET_ACCESS_KEY, which TensorFlow, Beam and the launcher read.
    """
    scheme = config.pipeline_root.split("://", 1)[0] if "://" in config.pipeline_root else None
    if scheme not in DOWNLOAD_DIRS:
        return {}
    keys = []
    if scheme == "s3" and config.s3 and config.s3.secret:
        secret = config.s3.secret
        keys = [
            {
                # As kfp-kubernetes writes it: the parameter (read first by 2.5.0 and later), and the
                # deprecated name.
                "secretName": secret,
                "secretNameParameter": {"runtimeValue": {"constant": secret}},
                "keyToEnv": [{"secretKey": key, "envVar": variable} for key, variable in SECRET_KEYS.items()],
            }
        ]
    executors = {}
    for name, task in spec["root"]["dag"]["tasks"].items():
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        mebibytes = max(1, round(config.resources(name).disk_gb * 1024))
        volume = {
            "volumeName": DOWNLOAD_VOLUME,
            "mountPath": DOWNLOAD_DIRS[scheme],
            "sizeLimit": f"{mebibytes}Mi",
        }
        executors[label] = {"emptyDirMounts": [volume], **({"secretAsEnv": keys} if keys else {})}
    return {"deploymentSpec": {"executors": executors}}


def _point_parameters_at_their_producers(tasks: dict) -> None:
    """TFX 1.16 compiles a parameter taken from another task's output as produced by `<task>_task`."""
    for task in tasks.values():
        for parameter in task.get("inputs", {}).get("parameters", {}).values():
            producer = parameter.get("taskOutputParameter")
            if producer and producer["producerTask"] not in tasks:
                named = producer["producerTask"].removesuffix("_task")
                if named not in tasks:
                    raise CompileError(f"no task {producer['producerTask']!r} produces a parameter")
                producer["producerTask"] = named
