"""The project's container entrypoint (pipeline/kubeflow/entrypoint.py) on ExecutorInputs shaped exactly as
self-hosted Kubeflow Pipelines' v2 driver shapes them (tests/kfp_launcher.py: untyped inputs read back from
ML Metadata, the `executor-logs` output, the output shapes of backend 2.5.0 and 2.17.0), parsed by TFX's own
entrypoint functions: what TFX fails on without the repair, and what survives it."""

from __future__ import annotations

import json

import pytest
import yaml

from pipeline.kubeflow import entrypoint
from tests.kfp_launcher import (
    BACKENDS,
    EXECUTOR_LOGS,
    LEGACY_OUTPUT_FILE,
    Launcher,
    from_store,
    record_artifact,
)

ROOT = "s3://bucket/root"
SESSION = {"Provider": "s3", "Params": {"endpoint": "http://minio:9000", "region": "us-east-1"}}
# What TFX's entrypoint writes as an Examples artifact's metadata (properties, and custom properties).
EXAMPLES = {
    "span": 3.0,
    "version": 0.0,
    "split_names": '["train", "eval"]',
    "input_fingerprint": "split:single_split,num_files:1,total_bytes:1,xor_checksum:1,sum_checksum:1",
    "tfx_version": "1.16.0",
    "file_format": "tfrecords_gzip",
    "is_external": 0.0,
    "state": "published",
}
MODEL = {"tfx_version": "1.16.0", "state": "published"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from pipeline.kubeflow.compiler import compile_pipeline
    from pipeline.tasks import task_config

    config = task_config("penguin_species", output_root="gs://bucket/root")
    written = compile_pipeline(config, str(tmp_path_factory.mktemp("compiled")), image="registry.local/p:1")
    spec = next(yaml.safe_load_all(written["spec"].read_text()))
    spec["defaultPipelineRoot"] = ROOT  # the driver's shapes do not depend on the scheme
    path = written["spec"].with_name("s3.yaml")
    path.write_text(yaml.safe_dump(spec))
    return path


def driver_input(compiled, tmp_path, backend: str, publish_logs: bool) -> tuple[list[str], dict]:
    """The Evaluator's arguments and ExecutorInput as the driver builds them at `backend`."""
    launcher = Launcher(compiled, "kfp", ".", tmp_path, backend=backend, publish_logs=publish_logs)
    component = launcher.spec["components"]["Evaluator"]
    stored = {"examples": ("7", EXAMPLES), "model": ("12", MODEL), "baseline_model": ("13", MODEL)}
    artifacts = {}
    for key, (store_id, metadata) in stored.items():
        recorded = record_artifact({"metadata": metadata}, key, SESSION)
        launcher.store_ids[store_id] = recorded
        artifacts[key] = [launcher.input_artifact({"name": store_id, "uri": f"{ROOT}/x/{key}"})]
    executor_input = launcher.executor_input(component, f"{ROOT}/p/run/Evaluator/salt", {}, artifacts)
    container = launcher.spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    serialized = json.dumps(executor_input)
    return [serialized if a == "{{$}}" else a for a in container["args"]], executor_input


def tfx_parse(executor_input: dict):
    """TFX's entrypoint's own parsing (kubeflow_v2_run_executor._run_executor's first steps)."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils

    parsed = json_format.Parse(json.dumps(executor_input), pipeline_spec_pb2.ExecutorInput())
    return (
        utils.parse_raw_artifact_dict(parsed.inputs.artifacts),
        utils.parse_raw_artifact_dict(parsed.outputs.artifacts),
    )


SHAPES = [(backend, logs) for backend in BACKENDS for logs in (True, False)]


@pytest.mark.parametrize(("backend", "publish_logs"), SHAPES)
def test_tfx_alone_fails_on_what_the_driver_builds(compiled, tmp_path, backend, publish_logs):
    _, executor_input = driver_input(compiled, tmp_path, backend, publish_logs)
    assert executor_input["inputs"]["artifacts"]["examples"]["artifacts"][0]["type"] == {"instanceSchema": ""}
    outputs = executor_input["outputs"]["artifacts"]
    assert (EXECUTOR_LOGS in outputs) == publish_logs
    if publish_logs:
        assert outputs[EXECUTOR_LOGS]["artifacts"][0]["type"] == {"schemaTitle": "system.Artifact"}
        with pytest.raises(ImportError, match="system.Artifact"):
            tfx_parse({"inputs": {}, "outputs": executor_input["outputs"]})
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'get'"):
        tfx_parse({"inputs": executor_input["inputs"], "outputs": {}})


@pytest.mark.parametrize(("backend", "publish_logs"), SHAPES)
def test_the_entrypoint_restores_input_types_and_keeps_executor_logs_from_tfx(
    compiled, tmp_path, backend, publish_logs
):
    from tfx.types import standard_artifacts

    argv, executor_input = driver_input(compiled, tmp_path, backend, publish_logs)
    args, beam_args = entrypoint.parse_flags(["entrypoint", *argv])
    repaired = json.loads(args.json_serialized_invocation_args)
    inputs, outputs = tfx_parse(repaired)

    (examples,) = inputs["examples"]
    assert type(examples) is standard_artifacts.Examples
    assert (examples.span, examples.version, examples.split_names) == (3, 0, '["train", "eval"]')
    assert examples.uri == f"{ROOT}/x/examples"
    # Custom properties, the ones the driver adds included, come through.
    assert examples.get_string_custom_property("input_fingerprint") == EXAMPLES["input_fingerprint"]
    assert examples.get_string_custom_property("display_name") == "examples"
    assert json.loads(examples.get_string_custom_property("store_session_info")) == SESSION
    assert examples.get_string_custom_property("file_format") == "tfrecords_gzip"
    assert type(inputs["model"][0]) is type(inputs["baseline_model"][0]) is standard_artifacts.Model
    # Outputs: TFX's, typed as compiled; the launcher's own output is not TFX's to write.
    assert set(outputs) == {"evaluation", "blessing"}
    assert type(outputs["blessing"][0]) is standard_artifacts.ModelBlessing
    assert EXECUTOR_LOGS not in repaired["outputs"]["artifacts"]
    # Nothing else changes: names (store ids), URIs, metadata, the output file where this backend puts it.
    assert repaired["outputs"]["outputFile"] == executor_input["outputs"]["outputFile"]
    legacy = not BACKENDS[backend].output_file_in_task_root
    assert (repaired["outputs"]["outputFile"] == LEGACY_OUTPUT_FILE) == legacy
    assert ("name" in repaired["outputs"]["artifacts"]["blessing"]["artifacts"][0]) == (not legacy)
    for key, artifacts in executor_input["inputs"]["artifacts"].items():
        (before,), (after,) = artifacts["artifacts"], repaired["inputs"]["artifacts"][key]["artifacts"]
        assert {k: v for k, v in after.items() if k != "type"} == {
            k: v for k, v in before.items() if k != "type"
        }
    assert args.executor_class_path == "components.evaluator.Executor" and isinstance(beam_args, list)


def test_metadata_round_trips_as_the_drivers_converter_does():
    stored = record_artifact(
        {"metadata": {"n": 3, "ok": True, "l": [1, 2], "d": {"a": 1}, "s": "x"}}, "out", SESSION
    )
    assert from_store(stored) == {
        "n": 3.0,
        "ok": 1.0,
        "l": {"list": [1, 2]},
        "d": {"struct": {"a": 1}},
        "s": "x",
        "display_name": "out",
        "store_session_info": json.dumps(SESSION, separators=(",", ":")),
    }
