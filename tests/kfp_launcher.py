"""Executes a compiled KFP v2 pipeline spec the way Kubeflow Pipelines' v2 driver and launcher do, one task
at a time, each through the exact container command and arguments in the spec. A test harness: the product
runs on a real Kubeflow Pipelines or Vertex AI, never on this.

What it does as KFP's backend does (`backend/src/v2/driver`, `cacheutils`, `metadata`, read at 2.17):
- input parameters from the run's parameters (`componentInputParameter`, with the spec's defaults),
  constants (`runtimeValue`) and upstream output parameters (`taskOutputParameter`);
- input artifacts from the producing task's recorded outputs, each named by its metadata-store id, with its
  URI, metadata and type;
- output artifacts provisioned at `<pipeline root>/<pipeline name>/<run id>/<task>/<salt>/<output key>`, the
  ExecutorOutput file under that task root, `{{$}}` replaced by the ExecutorInput JSON;
- `triggerPolicy.condition` (the CEL expressions TFX compiles) evaluated on the inputs; a task whose
  condition is false, or whose upstream did not run, is skipped;
- the cache: with `cachingOptions.enableCache`, the fingerprint of KFP's CacheKey (input artifact names,
  input parameter values, output artifact specs, output parameter types, image, command and arguments); a
  hit reuses the earlier execution's output artifacts (same ids) and parameters;
- mode "kfp" (self-hosted Kubeflow Pipelines) never runs `lifecycle.preCacheCheck`; mode "vertex" runs it
  before the cache check and applies the parameter values it writes, as Vertex AI Pipelines does.

Each task runs with the image's environment: the checkout bind-mounted at the image's WORKDIR (/pipeline) in
a private mount namespace (`unshare -m`), and this test process's virtualenv at the image's /pipeline/.venv
(the checkout's own .venv, or the newer stack's, mounted over it), `python` that virtualenv's, the working
directory /pipeline.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from tests.conftest import venv_mount

ARGO_TASK_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
IMAGE_WORKDIR = "/pipeline"
PEAK_MEMORY = Path(__file__).with_name("peak_memory.py")
EXECUTED, CACHED, SKIPPED = "EXECUTED", "CACHED", "SKIPPED"


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
    return yaml.safe_load(Path(path).read_text())


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


class Launcher:
    """Runs one compiled spec repeatedly, keeping KFP's cache (by fingerprint) and metadata-store ids."""

    def __init__(self, spec_path, mode: str, repo_root, work_dir, env=None):
        """`spec_path`: the KFP pipeline spec (YAML) in mode "kfp", the Vertex PipelineJob (JSON) in mode
        "vertex"; the pipeline root is the one each names (`defaultPipelineRoot`, the job's
        `runtimeConfig.gcsOutputDirectory`), as a run started without one gets."""
        if mode not in ("kfp", "vertex"):
            raise ValueError(f"mode must be kfp or vertex, got {mode!r}")
        self.mode = mode
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
        self.repo_root = str(repo_root)
        self.work_dir = Path(work_dir)
        self.env = env or {}
        self.cache: dict[str, TaskRecord] = {}
        self.next_id = 1
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
            artifacts[key] = [run.tasks[producer["producerTask"]].outputs[producer["outputArtifactKey"]]]
        condition = task.get("triggerPolicy", {}).get("condition")
        if condition and not evaluate_condition(condition, artifacts):
            return TaskRecord(SKIPPED)

        task_root = f"{run.root}/{name}/{uuid.uuid4()}"
        outputs = component.get("outputDefinitions", {})
        executor_input = {
            "inputs": {
                "parameterValues": parameter_values,
                "artifacts": {k: {"artifacts": v} for k, v in artifacts.items()},
            },
            "outputs": {
                "artifacts": {
                    key: {
                        "artifacts": [
                            {
                                "name": key,
                                "uri": f"{task_root}/{key}",
                                "type": spec["artifactType"],
                                **({"metadata": spec["metadata"]} if "metadata" in spec else {}),
                            }
                        ]
                    }
                    for key, spec in outputs.get("artifacts", {}).items()
                },
                "parameters": {
                    key: {"outputFile": f"{self.local_path(task_root)}/parameters/{key}"}
                    for key in outputs.get("parameters", {})
                },
                # The launcher keeps the executor's output file at the task root's local path.
                "outputFile": f"{self.local_path(task_root)}/output_metadata.json",
            },
        }
        # As the launcher's prepareOutputFolders: the parent directory of every output's local path.
        for provisioned in executor_input["outputs"]["artifacts"].values():
            Path(self.local_path(provisioned["artifacts"][0]["uri"])).parent.mkdir(
                parents=True, exist_ok=True
            )
        for parameter in executor_input["outputs"]["parameters"].values():
            Path(parameter["outputFile"]).parent.mkdir(parents=True, exist_ok=True)
        log = ""
        if self.mode == "vertex" and "lifecycle" in executor and "preCacheCheck" in executor["lifecycle"]:
            log += self._execute(name + " preCacheCheck", executor, executor_input, check=True)[0]
            written = json.loads(Path(executor_input["outputs"]["outputFile"]).read_text())
            # Vertex updates the task's parameters and output artifacts with what the check wrote, then
            # looks the task up in its cache.
            parameter_values.update(written.get("parameterValues", {}))
            for key, artifacts in written.get("artifacts", {}).items():
                provisioned = executor_input["outputs"]["artifacts"][key]["artifacts"][0]
                provisioned["metadata"] = {
                    **provisioned.get("metadata", {}),
                    **artifacts["artifacts"][0]["metadata"],
                }

        fingerprint = None
        if task.get("cachingOptions", {}).get("enableCache"):
            types = {k: v["parameterType"] for k, v in outputs.get("parameters", {}).items()}
            fingerprint = cache_fingerprint(executor_input, types, executor)
            if fingerprint in self.cache:
                hit = self.cache[fingerprint]
                return TaskRecord(CACHED, hit.outputs, hit.parameters, executor_input, fingerprint)

        text, peak_mib = self._execute(name, executor, executor_input)
        log += text
        written = json.loads(Path(executor_input["outputs"]["outputFile"]).read_text())
        recorded = {}
        for key, provisioned in executor_input["outputs"]["artifacts"].items():
            artifact = copy.deepcopy(provisioned["artifacts"][0])
            produced = written.get("artifacts", {}).get(key, {}).get("artifacts", [{}])[0]
            artifact["metadata"] = {**artifact.get("metadata", {}), **produced.get("metadata", {})}
            artifact["name"] = str(self.next_id)  # the metadata store's id, as the driver names inputs
            self.next_id += 1
            recorded[key] = artifact
        result = TaskRecord(
            EXECUTED, recorded, written.get("parameterValues", {}), executor_input, fingerprint, log, peak_mib
        )
        if fingerprint:
            self.cache[fingerprint] = result
        return result

    def local_path(self, uri: str) -> str:
        """The launcher's local path of a URI (component.LocalPathForURI: gs://b/x -> /gcs/b/x, s3://b/x ->
        /s3/b/x, minio://b/x -> /minio/b/x), here under the harness's directory; a local root is itself."""
        found = re.match(r"^(gs|s3|minio)://(.*)$", uri)
        if not found:
            return uri
        return str(
            self.work_dir / "local" / {"gs": "gcs"}.get(found.group(1), found.group(1)) / found.group(2)
        )

    def _execute(
        self, name: str, container: dict, executor_input: dict, check: bool = False
    ) -> tuple[str, float]:
        """Runs the container's command (its preCacheCheck with `check`) with the container's environment."""
        program = container["lifecycle"]["preCacheCheck"] if check else container
        command, args = program["command"], program["args"]
        serialized = json.dumps(executor_input)
        argv = [serialized if a == "{{$}}" else a for a in [*command, *args]]
        if any("{{$" in a for a in argv):
            raise ValueError(f"{name}: a placeholder other than {{{{$}}}} in {argv}")
        env = {
            **os.environ,
            **{variable["name"]: variable["value"] for variable in container.get("env", [])},
            **self.env,
            "PATH": f"{IMAGE_WORKDIR}/.venv/bin:{os.environ['PATH']}",
            "VIRTUAL_ENV": f"{IMAGE_WORKDIR}/.venv",
            "TF_USE_LEGACY_KERAS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.work_dir / f"{name.replace(' ', '-')}-{uuid.uuid4().hex[:8]}.log"
        wrapper = (
            f'mount --bind "$0" {IMAGE_WORKDIR} && {venv_mount(IMAGE_WORKDIR)}cd {IMAGE_WORKDIR} && exec "$@"'
        )
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
        if returncode != 0:
            raise TaskFailed(f"task {name} exited {returncode}: {text[-3000:]}")
        return text, int(peak_path.read_text()) / 1024  # MiB
