"""Executes a compiled KFP v2 pipeline spec the way Kubeflow Pipelines' v2 driver and launcher (mode "kfp")
or Vertex AI Pipelines (mode "vertex") do, one task at a time, each through the exact container command and
arguments in the spec. A test harness: the product runs on a real Kubeflow Pipelines or Vertex AI, never on
this. KFP's driver and launcher are Go programs whose module needs a newer Go than Debian 12 ships and
modules from outside the registries, so they cannot be built here; what they do was read from their source
(kubeflow/pipelines, `backend/src/v2/`, at the backend release tags 2.5.0 = d07cf1c7f9bd and 2.17.0 =
4a3592cb2dd0) and is reproduced field by field below, for both tags where they differ (BACKENDS).

Mode "kfp", self-hosted Kubeflow Pipelines:

| Field or step | What the driver or launcher does | Go file, function (2.5.0 / 2.17.0) |
|---|---|---|
| pipeline root | a root that is not gs://, s3:// or minio:// is refused ("unrecognized pipeline root format" for a path, "unsupported Cloud bucket" for another scheme) | objectstore/config.go, ParseBucketPathToConfig (both) |
| input parameters | run parameters (with the spec's defaults), `runtimeValue` constants, upstream output parameters | driver/driver.go resolveInputs / driver/resolve.go resolveInputs |
| input artifact `name` | the upstream artifact's ML Metadata id, a decimal string | metadata/converter.go, toRuntimeArtifact (both) |
| input artifact `type` | always `{"instanceSchema": ""}`: "TODO: figure out how to get schema" | metadata/client.go, GetOutputArtifactsByExecutionId + OutputArtifact.ToRuntimeArtifact (both) |
| input artifact `metadata` | ML Metadata's custom properties read back: numbers as doubles, booleans stored as 1/0, lists and structs stored wrapped as {"list": ...} / {"struct": ...} and never unwrapped, a null refused at record time; `display_name` (the output key) and `store_session_info` (the root driver's session: `{"Provider": ..., "Params": {...}}`, sorted keys; `{"fromEnv": "true"}` without providers) added where absent | metadata/converter.go StructValueToMLMDValue, propertiesToMetadata; metadata/client.go RecordArtifact (both) |
| output artifacts | `<root>/<pipeline>/<run id>/<task>/<uuid>/<key>`, typed as compiled; `name` empty (2.5.0) / the output key (2.15.0 and later) | driver/driver.go, provisionOutputs |
| `executor-logs` output | added to every task when logs are published (the default: `--publish_logs` "true", `PUBLISH_LOGS: "true"` in the API server's manifest), typed `system.Artifact`; the launcher writes the task's output to it and uploads it; the executor's copy is merged like any output's (2.5.0) / ignored (2.17.0: #13334), and the URI suffixed with the retry index, `executor-logs-0` (2.17.0) | driver/driver.go provisionOutputs; component/launcher_v2.go getLogWriter, uploadOutputArtifacts |
| `outputs.outputFile` | `/tmp/kfp_outputs/output_metadata.json` (2.5.0) / the task root's local path + `/output_metadata.json` (2.15.0 and later) | driver/driver.go, provisionOutputs |
| output parameter files | `/tmp/kfp/outputs/<key>` (both) | driver/driver.go, provisionOutputs |
| cache key | input artifact names, input parameter values, output artifact specs (name, type, metadata: `executor-logs` included), output parameter types, image, command and arguments; sha256 of Go's re-marshalled protojson | cacheutils/cache.go, GenerateCacheKey, GenerateFingerPrint (both) |
| the launcher's storage client | the `kfp-launcher` ConfigMap's `providers` (endpoint, region, forcePathStyle default true, disableSSL, credentials from a secret or the environment; with `fromEnv` 2.5.0 keeps none of them and takes the SDK's chain alone); without it the AWS SDK's environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), path-style only for an IP endpoint; never TensorFlow's S3_ENDPOINT | config/s3.go ProvideSessionInfo; objectstore/object_store.go OpenBucket, createS3BucketSession (2.5.0) / newS3Client (2.17.0) |
| downloads | before the command runs, every input artifact (2.5.0: the first of each input's list; 2.14.0 and later: all) under gs://, s3:// or minio:// is copied object by object to its local path (`/gcs/`, `/s3/`, `/minio/` + bucket and key): a key ending in `/` becomes an empty file and the next key under it fails (`not a directory`); keys that only share the prefix (`.../model_run` for `.../model`) are written beside it (2.5.0) or skipped, and a key with a `..` segment fails the task (2.17.0) | component/launcher_v2.go downloadArtifacts, LocalPathForURI; objectstore/object_store.go DownloadBlob, downloadFile (2.17.0: isBlobKeyUnderPrefix) |
| output folders | the parent directory of every output's and parameter file's local path | component/launcher_v2.go, prepareOutputFolders |
| output parameters | the ExecutorOutput's `parameterValues` win; a parameter missing there is read from its file as its type (TextToPbValue), and a missing file fails the task | component/launcher_v2.go, collectOutputParameters |
| output artifacts | the ExecutorOutput's URI and metadata merged over the provisioned artifact; a local path that exists is uploaded; each recorded in ML Metadata (metadata as above) | component/launcher_v2.go uploadOutputArtifacts, mergeRuntimeArtifacts; metadata/client.go RecordArtifact |
| `triggerPolicy.condition` | the CEL expressions TFX compiles, on the inputs; a false condition or a skipped upstream skips the task | driver/driver.go / driver/container.go (expression/expression.go) |
| `lifecycle.preCacheCheck` | never run (Vertex only) | (no reference in backend/) |
| `platforms.kubernetes` | the executor's `secretAsEnv` mapped into the container's environment (a missing secret or key keeps the pod from starting); `emptyDirMounts` mounted on the main container, where the launcher runs (here: the pod's own directories, their size recorded, not enforced) | driver/driver.go extendPodSpecPatch / driver/k8s.go extendPodSpecPatch |

Each task runs as in its pod: its own /tmp (where `/tmp/kfp_outputs` and `/tmp/kfp/outputs` are), its own
`/s3` (or `/gcs`, `/minio`) for the launcher's downloads and its output folders, the checkout at the image's
WORKDIR (/pipeline) and this test process's virtualenv at /pipeline/.venv, all in a private mount namespace
(`unshare -m`); `python` is that virtualenv's and the working directory /pipeline. What remains unexecuted:
the Argo workflow and pods themselves, ML Metadata's server (ids and properties are kept here), the API
server, retries, and the 2.17.0 workspace and PVC features, which the compiled pipeline does not use.

Mode "vertex" keeps what Vertex AI Pipelines does and documents: typed input artifacts with their metadata,
no `executor-logs`, `lifecycle.preCacheCheck` run before the cache check with the parameter values it
writes applied, and artifacts read through /gcs/ (gcsfuse) where the pipeline root is local here.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

import yaml

from tests.conftest import venv_mount

ARGO_TASK_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
IMAGE_WORKDIR = "/pipeline"
PEAK_MEMORY = Path(__file__).with_name("peak_memory.py")
EXECUTED, CACHED, SKIPPED = "EXECUTED", "CACHED", "SKIPPED"
EXECUTOR_LOGS = "executor-logs"
# component.LocalPathForURI: the scheme's local directory in the launcher's pod.
LOCAL_DIRS = {"gs": "/gcs", "s3": "/s3", "minio": "/minio"}
PARAMETER_FILES = "/tmp/kfp/outputs"  # provisionOutputs: /tmp/kfp/outputs/<key>


@dataclasses.dataclass(frozen=True)
class Backend:
    """What differs between the backend releases (the table above)."""

    tag: str
    outputs_named: bool  # output artifacts carry `name` = their key (2.15.0, #12256)
    output_file_in_task_root: bool  # outputs.outputFile under the task root's local path (2.15.0, #12256)
    logs_retry_suffix: bool  # executor-logs URI suffixed -<retry index> by the launcher (2.17.0, #13175)
    only_keys_under_prefix: bool  # DownloadBlob skips keys that merely share the prefix (2.17.0, #12928)
    downloads_every_artifact: bool  # every artifact of an input's list, not only the first (2.14.0, #11725)
    logs_merged: bool  # the executor's copy of executor-logs merged like any output (before #13334)
    structured_from_env: (
        bool  # providers' endpoint, region, path style kept with credentials.fromEnv (2.15.0)
    )


BACKENDS = {
    "2.5.0": Backend("2.5.0", False, False, False, False, False, True, False),
    "2.17.0": Backend("2.17.0", True, True, True, True, True, False, True),
}
LEGACY_OUTPUT_FILE = "/tmp/kfp_outputs/output_metadata.json"  # component.OutputMetadataFilepath


class TaskFailed(RuntimeError):
    pass


@dataclasses.dataclass
class TaskRecord:
    state: str
    outputs: dict = dataclasses.field(default_factory=dict)  # key -> RuntimeArtifact dict
    parameters: dict = dataclasses.field(default_factory=dict)  # output parameter values
    executor_input: dict | None = None
    fingerprint: str | None = None
    log: str = ""
    peak_mib: float = 0.0  # the task's peak resident memory
    downloaded_bytes: int = 0  # what the launcher copied to the pod's disk before the command
    download_s: float = 0.0
    disk_bytes: int = 0  # what the pod's download directory (/s3) held when the task ended


@dataclasses.dataclass
class RunRecord:
    run_id: str
    root: str
    tasks: dict[str, TaskRecord]

    def state(self, task: str) -> str:
        return self.tasks[task].state

    def artifact(self, task: str, key: str) -> dict:
        return self.tasks[task].outputs[key]


def load_spec(path: str | Path) -> dict:
    """The pipeline spec: the first document of the YAML file (a second one holds platform settings)."""
    return next(yaml.safe_load_all(Path(path).read_text()))


def platform_spec(path: str | Path) -> dict:
    """The `platforms.kubernetes` document of a compiled pipeline.yaml ({} without one)."""
    for document in list(yaml.safe_load_all(Path(path).read_text()))[1:]:
        if document and "platforms" in document:
            return document["platforms"].get("kubernetes", {})
    return {}


def argo_name_violations(spec: dict) -> list[str]:
    """Task names that KFP's Argo compiler could not use as Argo DAG task names (and their -driver tasks)."""
    names = []
    for component in [spec["root"], *spec["components"].values()]:
        names += list(component.get("dag", {}).get("tasks", {}))
    return sorted(name for name in names if not ARGO_TASK_NAME.match(name))


def cache_fingerprint(executor_input: dict, output_parameter_types: dict, container: dict) -> str:
    """KFP's cache key (cacheutils.GenerateCacheKey) hashed as GenerateFingerPrint does: protojson, then
    re-marshalled by Go's encoding/json (keys sorted, no spaces)."""
    inputs, outputs = executor_input["inputs"], executor_input["outputs"]
    key = {
        "inputArtifactNames": {
            name: {"artifactNames": [a["name"] for a in artifacts["artifacts"]]}
            for name, artifacts in inputs.get("artifacts", {}).items()
        },
        "inputParameterValues": inputs.get("parameterValues", {}),
        "outputArtifactsSpec": {
            name: {k: v for k, v in artifacts["artifacts"][0].items() if k in ("name", "type", "metadata")}
            for name, artifacts in outputs.get("artifacts", {}).items()
            if artifacts["artifacts"]
        },
        "outputParametersSpec": {
            name: output_parameter_types[name] for name in outputs.get("parameters", {})
        },
        "containerSpec": {"image": container["image"], "cmdArgs": container["command"] + container["args"]},
    }
    key = {k: v for k, v in key.items() if v}
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def text_to_value(text: str, kind: str):
    """metadata.TextToPbValue: a parameter file's text as its declared type."""
    booleans = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}
    try:
        if kind == "STRING":
            return text
        if kind == "NUMBER_INTEGER":
            return float(int(text.strip()))
        if kind == "NUMBER_DOUBLE":
            return float(text.strip())
        if kind == "BOOLEAN":
            return booleans[text.strip().lower()]
        if kind in ("LIST", "STRUCT"):
            return json.loads(text)
    except (ValueError, KeyError) as error:
        raise TaskFailed(f"failed to parse output parameter of type {kind}: {text[:100]!r}") from error
    raise TaskFailed(f"unknown output parameter type {kind}")


def to_store(metadata: dict) -> dict:
    """An artifact's metadata as ML Metadata custom properties (converter.StructValueToMLMDValue): each
    value a (kind, value) pair; a null refused as the launcher refuses it."""
    stored = {}
    for key, value in metadata.items():
        if value is None:
            raise TaskFailed(
                f"unable to produce MLMD artifact: metadata {key!r}: unknown/unsupported value type "
                "*structpb.Value_NullValue"
            )
        if isinstance(value, bool):
            stored[key] = ("int", int(value))
        elif isinstance(value, (int, float)):
            stored[key] = ("double", float(value))
        elif isinstance(value, str):
            stored[key] = ("string", value)
        elif isinstance(value, list):
            stored[key] = ("struct", {"list": value})
        else:
            stored[key] = ("struct", {"struct": value})
    return stored


def from_store(properties: dict) -> dict:
    """ML Metadata custom properties as the driver hands them on (converter.propertiesToMetadata)."""
    return {
        key: float(value) if kind in ("int", "double") else value for key, (kind, value) in properties.items()
    }


def record_artifact(artifact: dict, output_key: str, session_info: dict) -> dict:
    """metadata.RecordArtifact: the properties stored, with `display_name` and `store_session_info` added
    where absent."""
    properties = to_store(artifact.get("metadata", {}))
    properties.setdefault("display_name", ("string", output_key))
    properties.setdefault("store_session_info", ("string", json.dumps(session_info, separators=(",", ":"))))
    return properties


_ACCESSOR = re.compile(r"inputs\.artifacts\['([^']+)'\]\.artifacts\[(\d+)\]\.metadata\['([^']+)'\]")


def evaluate_condition(condition: str, artifacts: dict) -> bool:
    """The CEL conditions TFX compiles (`inputs.artifacts['k'].artifacts[0].metadata['p'] == 1.0`, joined
    with && / ||); anything else is refused rather than guessed."""
    values = []

    def lookup(match: re.Match) -> str:
        key, index, field = match.group(1), int(match.group(2)), match.group(3)
        values.append(artifacts[key][index].get("metadata", {}).get(field))
        return f"_v[{len(values) - 1}]"

    expression = _ACCESSOR.sub(lookup, condition).replace("&&", " and ").replace("||", " or ")
    expression = re.sub(r"!(?!=)", " not ", expression)
    if not re.fullmatch(r"[\s()_v\[\]\d.=<>!andortn'\"\w-]*", expression) or "__" in expression:
        raise ValueError(f"condition outside the supported CEL subset: {condition}")
    return bool(eval(expression, {"__builtins__": {}}, {"_v": values}))  # noqa: S307 - checked above


def upstream_of(tasks: dict, task: str) -> set[str]:
    """`task` and every task it depends on."""
    found, pending = set(), [task]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending += tasks[name].get("dependentTasks", [])
    return found


def topological(tasks: dict) -> list[str]:
    done, order = set(), []
    while len(order) < len(tasks):
        ready = sorted(
            n for n, t in tasks.items() if n not in done and set(t.get("dependentTasks", [])) <= done
        )
        if not ready:
            raise ValueError(f"cycle among {sorted(set(tasks) - done)}")
        order += ready
        done |= set(ready)
    return order


def object_uri(uri: str) -> tuple[str, str, str] | None:
    """(scheme, bucket, key) of a gs://, s3:// or minio:// URI; None for anything else."""
    found = re.match(r"^(gs|s3|minio)://([^/]+)/?(.*)$", uri)
    return (found.group(1), found.group(2), found.group(3)) if found else None


class LauncherStorage:
    """The launcher's own client for an s3:// (or minio://) pipeline root, configured as
    config/s3.go and objectstore/object_store.go configure it: the `kfp-launcher` ConfigMap's `providers`
    when it has one for the scheme, else the AWS SDK's environment of the task's container."""

    def __init__(
        self,
        scheme: str,
        providers: dict | None,
        secrets: dict,
        environment: dict,
        backend: Backend | None = None,
    ):
        backend = backend or BACKENDS["2.17.0"]
        provider = (providers or {}).get(scheme) or {}
        default = provider.get("default")
        if default is not None and (default.get("credentials") or {}).get("fromEnv"):
            if not backend.structured_from_env:
                default = None  # 2.5.0: createS3BucketSession returns nil with fromEnv: the SDK's chain alone
        # The root driver's ProvideSessionInfo, recorded with every artifact (store_session_info).
        self.session_info = {"Provider": scheme, "Params": {"fromEnv": "true"}}
        if default is not None:
            credentials = default.get("credentials") or {}
            if not credentials:
                raise TaskFailed("invalid provider config: missing default credentials")
            if credentials.get("fromEnv"):
                keys = self._environment_keys(environment)
            else:
                reference = credentials.get("secretRef") or {}
                secret = secrets.get(reference.get("secretName"), {})
                keys = (secret.get(reference.get("accessKeyKey")), secret.get(reference.get("secretKeyKey")))
                if not all(keys):
                    raise TaskFailed(
                        f"Failed to get Bucket credentials from secret name={reference.get('secretName')!r}: "
                        f"could not find specified keys {reference.get('accessKeyKey')!r} or "
                        f"{reference.get('secretKeyKey')!r}"
                    )
            endpoint = default.get("endpoint")
            params = {
                "endpoint": endpoint or "",
                "region": default.get("region") or "",
                "disableSSL": str(bool(default.get("disableSSL"))).lower(),
                "forcePathStyle": str(default.get("forcePathStyle", True)).lower(),
                "fromEnv": str(bool(credentials.get("fromEnv"))).lower(),
            }
            if not credentials.get("fromEnv"):
                reference = credentials.get("secretRef") or {}
                params.update(
                    secretName=reference.get("secretName", ""),
                    accessKeyKey=reference.get("accessKeyKey", ""),
                    secretKeyKey=reference.get("secretKeyKey", ""),
                )
            if backend.structured_from_env:
                params["maxRetries"] = "5"
            self.session_info["Params"] = dict(sorted(params.items()))
            if endpoint and "://" not in endpoint:
                endpoint = ("http://" if default.get("disableSSL") else "https://") + endpoint
            region = default.get("region")
            path_style = default.get("forcePathStyle", True)
        else:
            # fromEnv: the AWS SDK's default chain; nothing sets path-style, which the SDK's endpoint rules
            # use for an IP address only.
            keys = self._environment_keys(environment)
            endpoint = environment.get("AWS_ENDPOINT_URL_S3") or environment.get("AWS_ENDPOINT_URL")
            region = environment.get("AWS_REGION") or environment.get("AWS_DEFAULT_REGION")
            if not endpoint:
                raise TaskFailed(
                    "the launcher's S3 client has no endpoint: no kfp-launcher providers and no "
                    "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, so it would reach AWS S3 itself"
                )
            path_style = _is_ip(urllib.parse.urlparse(endpoint).hostname)
        if not region:
            raise TaskFailed("the launcher's S3 client has no region (AWS_REGION or providers' region)")
        import boto3
        from botocore.config import Config

        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=keys[0],
            aws_secret_access_key=keys[1],
            config=Config(
                s3={"addressing_style": "path" if path_style else "virtual"}, retries={"max_attempts": 1}
            ),
        )

    @staticmethod
    def _environment_keys(environment: dict) -> tuple[str, str]:
        keys = (
            environment.get("AWS_ACCESS_KEY_ID") or environment.get("AWS_ACCESS_KEY"),
            environment.get("AWS_SECRET_ACCESS_KEY") or environment.get("AWS_SECRET_KEY"),
        )
        if not all(keys):
            raise TaskFailed(
                "the launcher's S3 client found no credentials: no kfp-launcher providers credentials and no "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the task's environment"
            )
        return keys

    def download_blob(self, bucket: str, local_dir: str, blob_dir: str, backend: Backend) -> int:
        """objectstore.DownloadBlob: every key listed under the prefix `blob_dir`, written to `local_dir`
        plus its path relative to `blob_dir` (a key ending in `/` included, as an empty file); the bytes."""
        total = 0
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=blob_dir)
        for item in (item for page in pages for item in page.get("Contents", [])):
            key = item["Key"]
            if backend.only_keys_under_prefix and not (
                key == blob_dir or key.startswith(blob_dir.rstrip("/") + "/")
            ):
                continue
            if backend.only_keys_under_prefix and ".." in key.split("/"):
                raise TaskFailed(f"failed to download input artifact: path traversal detected in key {key}")
            local_file = os.path.normpath(os.path.join(local_dir, os.path.relpath(key, blob_dir)))
            parent = os.path.dirname(local_file)
            try:
                os.makedirs(parent, mode=0o755, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as error:
                raise TaskFailed(
                    f"failed to download input artifact: downloadFile(): failed to create local directory "
                    f"{parent!r}: mkdir {error.filename}: not a directory (key {key})"
                ) from error
            self.client.download_file(bucket, key, local_file)
            total += item["Size"]
        return total

    def upload_blob(self, bucket: str, local_path: str, key: str) -> None:
        """objectstore.UploadBlob: a file to `key`, a directory's files under it."""
        if os.path.isfile(local_path):
            self.client.upload_file(local_path, bucket, key)
            return
        for directory, _, files in os.walk(local_path):
            for name in files:
                path = os.path.join(directory, name)
                self.client.upload_file(path, bucket, f"{key}/{os.path.relpath(path, local_path)}")


def _is_ip(host: str | None) -> bool:
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


class Launcher:
    """Runs one compiled spec repeatedly, keeping KFP's cache (by fingerprint) and metadata-store ids."""

    def __init__(
        self,
        spec_path,
        mode: str,
        repo_root,
        work_dir,
        env=None,
        backend: str = "2.17.0",
        publish_logs: bool = True,
        providers: dict | None = None,
        secrets: dict | None = None,
        local_root_skips: str | None = None,
    ):
        """`spec_path`: the KFP pipeline spec (YAML) in mode "kfp", the Vertex PipelineJob (JSON) in mode
        "vertex"; the pipeline root is the one each names (`defaultPipelineRoot`, the job's
        `runtimeConfig.gcsOutputDirectory`), as a run started without one gets. In mode "kfp": `env`, what
        the cluster adds to every task's environment (keys from a secret); `providers` and `secrets`, the
        `kfp-launcher` ConfigMap's providers and the secrets it names; `local_root_skips`, the reason a
        test runs mode "kfp" on a local root, which the real driver refuses (the launcher's downloads and
        uploads are then skipped, as for any URI it does not recognise)."""
        if mode not in ("kfp", "vertex"):
            raise ValueError(f"mode must be kfp or vertex, got {mode!r}")
        self.mode = mode
        self.backend = BACKENDS[backend]
        self.publish_logs = publish_logs and mode == "kfp"
        self.job_parameters = {}
        if mode == "vertex":
            job = json.loads(Path(spec_path).read_text())
            self.spec = job["pipelineSpec"]
            self.pipeline_root = job["runtimeConfig"].get("gcsOutputDirectory")
            self.job_parameters = job["runtimeConfig"].get("parameterValues", {})
        else:
            self.spec = load_spec(spec_path)
            self.pipeline_root = self.spec.get("defaultPipelineRoot")
        if not self.pipeline_root:
            raise ValueError(f"{spec_path} names no pipeline root: the cluster's default would apply")
        self.platform = {}
        if mode == "kfp":
            self.platform = platform_spec(spec_path)
            found = object_uri(self.pipeline_root)
            if found is None and not local_root_skips:
                raise ValueError(
                    f"parse bucket config failed: unrecognized pipeline root format: {self.pipeline_root!r} "
                    "(KFP's launcher needs gs://, s3:// or minio://; pass local_root_skips to say what a local "
                    "root skips)"
                )
        self.providers, self.secrets = providers, secrets or {}
        self.repo_root = str(repo_root)
        self.work_dir = Path(work_dir)
        self.env = env or {}
        self.cache: dict[str, TaskRecord] = {}
        self.store_ids = {}  # ML Metadata: id -> stored custom properties
        self.runs: list[RunRecord] = []

    @property
    def pipeline_name(self) -> str:
        return self.spec["pipelineInfo"]["name"]

    def run(self, parameters: dict | None = None, until: str | None = None) -> RunRecord:
        """One run of the pipeline with `parameters`; with `until`, only that task and its upstream."""
        root = self.spec["root"]
        values = {
            name: definition["defaultValue"]
            for name, definition in root.get("inputDefinitions", {}).get("parameters", {}).items()
            if "defaultValue" in definition
        }
        values.update(self.job_parameters)
        values.update(parameters or {})
        run_id = str(uuid.uuid4())
        run_root = f"{self.pipeline_root.rstrip('/')}/{self.pipeline_name}/{run_id}"
        record = RunRecord(run_id, run_root, {})
        self.runs.append(record)
        tasks = root["dag"]["tasks"]
        wanted = upstream_of(tasks, until) if until else set(tasks)
        for name in topological(tasks):
            if name in wanted:
                record.tasks[name] = self._task(name, tasks[name], values, record)
        return record

    def input_artifact(self, recorded: dict) -> dict:
        """An upstream output as the next task's input: as the driver reads it back from ML Metadata in
        mode kfp (the id as its name, no type, the stored metadata), as recorded in mode vertex."""
        if self.mode == "vertex":
            return recorded
        return {
            "name": recorded["name"],
            "uri": recorded["uri"],
            "type": {"instanceSchema": ""},
            "metadata": from_store(self.store_ids[recorded["name"]]),
        }

    def task_environment(self, container: dict, label: str) -> dict:
        """The task container's environment as the cluster gives it: the compiled `env`, the cluster's, and
        in mode kfp the secrets the platform document maps to variables (driver/k8s.go, secretAsEnv; a
        missing secret or key keeps the pod from starting)."""
        values = {**{v["name"]: v["value"] for v in container.get("env", [])}, **self.env}
        for mapping in (
            self.platform.get("deploymentSpec", {}).get("executors", {}).get(label, {}).get("secretAsEnv", [])
        ):
            name = mapping.get("secretNameParameter", {}).get("runtimeValue", {}).get("constant")
            name = name or mapping.get("secretName")
            for pair in mapping.get("keyToEnv", []):
                if pair["secretKey"] not in self.secrets.get(name, {}):
                    raise TaskFailed(
                        f"CreateContainerConfigError: secret {name!r} has no key {pair['secretKey']!r}"
                    )
                values[pair["envVar"]] = self.secrets[name][pair["secretKey"]]
        return values

    def _task(self, name: str, task: dict, run_parameters: dict, run: RunRecord) -> TaskRecord:
        upstream = [run.tasks[d] for d in task.get("dependentTasks", [])]
        if any(t.state == SKIPPED for t in upstream):
            return TaskRecord(SKIPPED)
        component = self.spec["components"][task["componentRef"]["name"]]
        executor = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        inputs = task.get("inputs", {})
        parameter_values = {}
        for key, source in inputs.get("parameters", {}).items():
            if "componentInputParameter" in source:
                parameter_values[key] = run_parameters[source["componentInputParameter"]]
            elif "runtimeValue" in source:
                parameter_values[key] = source["runtimeValue"]["constant"]
            elif "taskOutputParameter" in source:
                producer = source["taskOutputParameter"]
                parameter_values[key] = run.tasks[producer["producerTask"]].parameters[
                    producer["outputParameterKey"]
                ]
            else:
                raise ValueError(f"{name}: unsupported parameter source {source}")
        artifacts = {}
        for key, source in inputs.get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            recorded = run.tasks[producer["producerTask"]].outputs[producer["outputArtifactKey"]]
            artifacts[key] = [self.input_artifact(recorded)]
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not evaluate_condition(condition, artifacts):
            return TaskRecord(SKIPPED)

        salt = str(uuid.uuid4())
        task_root = f"{run.root}/{name}/{salt}"
        pod = self.work_dir / "pods" / f"{name}-{salt[:8]}"  # the pod's own disk: /tmp and /s3 (/gcs, /minio)
        executor_input = self.executor_input(component, task_root, parameter_values, artifacts)
        log = ""
        if self.mode == "vertex" and "lifecycle" in executor and "preCacheCheck" in executor["lifecycle"]:
            label = component["executorLabel"]
            log += self._execute(name + " preCacheCheck", executor, executor_input, pod, label, check=True)[0]
            written = json.loads(
                Path(self.host_path(executor_input["outputs"]["outputFile"], pod)).read_text()
            )
            # Vertex updates the task's parameters and output artifacts with what the check wrote, then
            # looks the task up in its cache.
            parameter_values.update(written.get("parameterValues", {}))
            for key, artifacts_written in written.get("artifacts", {}).items():
                provisioned = executor_input["outputs"]["artifacts"][key]["artifacts"][0]
                provisioned["metadata"] = {
                    **provisioned.get("metadata", {}),
                    **artifacts_written["artifacts"][0]["metadata"],
                }

        outputs = component.get("outputDefinitions", {})
        fingerprint = None
        if task.get("cachingOptions", {}).get("enableCache"):
            types = {k: v["parameterType"] for k, v in outputs.get("parameters", {}).items()}
            fingerprint = cache_fingerprint(executor_input, types, executor)
            if fingerprint in self.cache:
                hit = self.cache[fingerprint]
                return TaskRecord(CACHED, hit.outputs, hit.parameters, executor_input, fingerprint)

        storage = None
        if self.mode == "kfp" and object_uri(self.pipeline_root):
            if object_uri(self.pipeline_root)[0] == "gs":
                raise TaskFailed(
                    "mode kfp executes on an s3:// root here (TensorFlow's gs:// has no local server)"
                )
            storage = LauncherStorage(
                object_uri(self.pipeline_root)[0],
                self.providers,
                self.secrets,
                self.task_environment(executor, component["executorLabel"]),
                self.backend,
            )
        if self.backend.logs_retry_suffix and EXECUTOR_LOGS in executor_input["outputs"]["artifacts"]:
            logs = executor_input["outputs"]["artifacts"][EXECUTOR_LOGS]["artifacts"][0]
            logs["uri"] += "-0"  # launcher_v2.go: the retry index, 0 on the first attempt
        downloaded, download_s = self._download_inputs(executor_input, pod, storage)
        self._prepare_output_folders(executor_input, pod)
        text, peak_mib = self._execute(name, executor, executor_input, pod, component["executorLabel"])
        log += text
        written = self._executor_output(executor_input, pod)
        parameters = self._collect_output_parameters(executor_input, written, outputs, pod)
        recorded = self._record_outputs(executor_input, written, pod, storage, text)
        disk = sum(
            f.stat().st_size for top in LOCAL_DIRS.values() for f in (pod / top[1:]).rglob("*") if f.is_file()
        )
        shutil.rmtree(pod, ignore_errors=True)
        result = TaskRecord(
            EXECUTED,
            recorded,
            parameters,
            executor_input,
            fingerprint,
            log,
            peak_mib,
            downloaded,
            download_s,
            disk,
        )
        if fingerprint:
            self.cache[fingerprint] = result
        return result

    def executor_input(
        self, component: dict, task_root: str, parameter_values: dict, artifacts: dict
    ) -> dict:
        """The ExecutorInput the driver provisions (provisionOutputs) for this backend release."""
        outputs = component.get("outputDefinitions", {})
        specs = dict(outputs.get("artifacts", {}))
        if self.publish_logs:
            specs[EXECUTOR_LOGS] = {"artifactType": {"schemaTitle": "system.Artifact"}}
        provisioned = {}
        for key, spec in specs.items():
            artifact = {"uri": f"{task_root}/{key}", "type": spec["artifactType"]}
            if self.mode == "vertex" or self.backend.outputs_named:
                artifact = {"name": key, **artifact}
            if "metadata" in spec:
                artifact["metadata"] = spec["metadata"]
            provisioned[key] = {"artifacts": [artifact]}
        if self.mode == "kfp":
            parameter_files = {key: f"{PARAMETER_FILES}/{key}" for key in outputs.get("parameters", {})}
            if self.backend.output_file_in_task_root and object_uri(task_root):
                output_file = f"{self.local_path(task_root)}/output_metadata.json"
            else:
                output_file = LEGACY_OUTPUT_FILE
        else:
            # Vertex: the task root through /gcs/ (here the local root itself).
            parameter_files = {
                key: f"{self.local_path(task_root)}/parameters/{key}" for key in outputs.get("parameters", {})
            }
            output_file = f"{self.local_path(task_root)}/output_metadata.json"
        return {
            "inputs": {
                "parameterValues": parameter_values,
                "artifacts": {k: {"artifacts": v} for k, v in artifacts.items()},
            },
            "outputs": {
                "artifacts": provisioned,
                "parameters": {key: {"outputFile": path} for key, path in parameter_files.items()},
                "outputFile": output_file,
            },
        }

    def local_path(self, uri: str) -> str:
        """component.LocalPathForURI: gs://b/x -> /gcs/b/x, s3://b/x -> /s3/b/x, minio://b/x -> /minio/b/x;
        in mode vertex (gcsfuse), a local root is itself."""
        found = object_uri(uri)
        if not found:
            return uri
        scheme, bucket, key = found
        return f"{LOCAL_DIRS[scheme]}/{bucket}/{key}".rstrip("/")

    def host_path(self, path: str, pod: Path) -> str:
        """Where a path of the task's pod lies on this machine: its /tmp and /s3 (/gcs, /minio) are the
        pod's own directories in mode kfp; everything else is shared."""
        if self.mode == "kfp":
            for top in ("/tmp", *LOCAL_DIRS.values()):
                if path == top or path.startswith(top + "/"):
                    return str(pod / top.lstrip("/") / os.path.relpath(path, top))
        return path

    def _download_inputs(self, executor_input: dict, pod: Path, storage) -> tuple[int, float]:
        """downloadArtifacts: every input artifact on the store copied to its local path first."""
        if storage is None:
            return 0, 0.0
        started, total = time.monotonic(), 0
        for artifacts in executor_input["inputs"]["artifacts"].values():
            for artifact in artifacts["artifacts"][: None if self.backend.downloads_every_artifact else 1]:
                found = object_uri(artifact["uri"])
                if found is None:
                    continue  # "does not have a recognized storage URI ... Skipping downloading"
                local = self.host_path(self.local_path(artifact["uri"]), pod)
                total += storage.download_blob(found[1], local, found[2], self.backend)
        return total, time.monotonic() - started

    def _prepare_output_folders(self, executor_input: dict, pod: Path) -> None:
        """prepareOutputFolders: the parent directory of every output's local path and parameter file."""
        outputs = executor_input["outputs"]
        for provisioned in outputs["artifacts"].values():
            local = self.local_path(provisioned["artifacts"][0]["uri"])
            Path(self.host_path(local, pod)).parent.mkdir(parents=True, exist_ok=True)
        for parameter in outputs["parameters"].values():
            Path(self.host_path(parameter["outputFile"], pod)).parent.mkdir(parents=True, exist_ok=True)
        Path(self.host_path(outputs["outputFile"], pod)).parent.mkdir(parents=True, exist_ok=True)

    def _executor_output(self, executor_input: dict, pod: Path) -> dict:
        """getExecutorOutputFile: the ExecutorOutput, empty when the command wrote none."""
        path = Path(self.host_path(executor_input["outputs"]["outputFile"], pod))
        return json.loads(path.read_text()) if path.exists() else {}

    def _collect_output_parameters(
        self, executor_input: dict, written: dict, outputs: dict, pod: Path
    ) -> dict:
        """collectOutputParameters: the ExecutorOutput's values, else the parameter's file (which must exist)."""
        values = dict(written.get("parameterValues", {}))
        for key, parameter in executor_input["outputs"]["parameters"].items():
            if key in values:
                continue
            path = Path(self.host_path(parameter["outputFile"], pod))
            if not path.exists():
                raise TaskFailed(
                    f"failed to read output parameter {key}: open {parameter['outputFile']}: no such file"
                )
            values[key] = text_to_value(path.read_text(), outputs["parameters"][key]["parameterType"])
        return values

    def _record_outputs(self, executor_input: dict, written: dict, pod: Path, storage, log: str) -> dict:
        """uploadOutputArtifacts: each output merged with the executor's copy (not executor-logs), its local
        path uploaded where it exists, then recorded in ML Metadata under a new id."""
        recorded = {}
        for key, provisioned in executor_input["outputs"]["artifacts"].items():
            artifact = copy.deepcopy(provisioned["artifacts"][0])
            if key != EXECUTOR_LOGS or self.backend.logs_merged:
                produced = written.get("artifacts", {}).get(key, {}).get("artifacts", [{}])[0]
                artifact["uri"] = produced.get("uri") or artifact["uri"]
                artifact["metadata"] = {**artifact.get("metadata", {}), **produced.get("metadata", {})}
            found = object_uri(artifact["uri"])
            local = self.host_path(self.local_path(artifact["uri"]), pod)
            if storage is not None and found and os.path.exists(local):
                storage.upload_blob(found[1], local, found[2])
            store_id = str(len(self.store_ids) + 1)
            session = storage.session_info if storage else {"Provider": "gs", "Params": {}}
            self.store_ids[store_id] = record_artifact(artifact, key, session)
            artifact["name"] = store_id  # the metadata store's id, as the driver names inputs
            recorded[key] = artifact
        return recorded

    def _execute(
        self,
        name: str,
        container: dict,
        executor_input: dict,
        pod: Path,
        label: str = "",
        check: bool = False,
    ) -> tuple[str, float]:
        """Runs the container's command (its preCacheCheck with `check`) with the container's environment;
        in mode kfp the task's output goes to its executor-logs file too, as the launcher's log writer does."""
        program = container["lifecycle"]["preCacheCheck"] if check else container
        command, args = program["command"], program["args"]
        serialized = json.dumps(executor_input)
        argv = [serialized if a == "{{$}}" else a for a in [*command, *args]]
        if any("{{$" in a for a in argv):
            raise ValueError(f"{name}: a placeholder other than {{{{$}}}} in {argv}")
        env = {
            **os.environ,
            **self.task_environment(container, label),
            "PATH": f"{IMAGE_WORKDIR}/.venv/bin:{os.environ['PATH']}",
            "VIRTUAL_ENV": f"{IMAGE_WORKDIR}/.venv",
            "TF_USE_LEGACY_KERAS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.work_dir / f"{name.replace(' ', '-')}-{uuid.uuid4().hex[:8]}.log"
        mounts = ""
        if self.mode == "kfp":
            # The pod's own /tmp and download directories.
            for top in (*LOCAL_DIRS.values(), "/tmp"):
                own = pod / top.lstrip("/")
                own.mkdir(parents=True, exist_ok=True)
                mounts += f"mount --bind {own} {top} && "
        wrapper = f'{mounts}mount --bind "$0" {IMAGE_WORKDIR} && {venv_mount(IMAGE_WORKDIR)}cd {IMAGE_WORKDIR} && exec "$@"'
        peak_path = log_path.with_suffix(".peak")
        with open(log_path, "w") as log:
            # unshare and sh exec the task's command in the same process, started from tests/peak_memory.py
            # (not from this process, whose memory it would be charged), which records its peak.
            returncode = subprocess.call(
                [
                    sys.executable,
                    str(PEAK_MEMORY),
                    str(peak_path),
                    "unshare",
                    "-m",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    wrapper,
                    self.repo_root,
                    *argv,
                ],  # fmt: skip
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        text = log_path.read_text()
        logs = executor_input["outputs"]["artifacts"].get(EXECUTOR_LOGS)
        if logs and not check:
            logs_path = Path(self.host_path(self.local_path(logs["artifacts"][0]["uri"]), pod))
            logs_path.write_text(text)
        if returncode != 0:
            raise TaskFailed(f"task {name} exited {returncode}: {text[-3000:]}")
        return text, int(peak_path.read_text()) / 1024  # MiB
