"""The container command of every compiled task: TFX's Kubeflow v2 entrypoint
(`tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`, same arguments), with:

- the ExecutorInput repaired before TFX parses it, for self-hosted Kubeflow Pipelines, whose v2 driver hands
  a task what TFX cannot read (docs/kubeflow.md, "What was executed here, and what was only read"):
  - every input artifact's type comes back from `--json_serialized_inputs_spec_args` (the compiled
    component's input types): the driver builds inputs from ML Metadata with `type.instanceSchema` empty
    (`backend/src/v2/metadata/client.go`, `GetOutputArtifactsByExecutionId`: `Schema: ""`), on which TFX's
    `_retrieve_class_path` fails;
  - the `executor-logs` output, which the driver adds to every task when logs are published
    (`driver/driver.go`, `provisionOutputs`; typed `system.Artifact`, unknown to TFX), is kept from TFX: the
    launcher uploads the logs itself and ignores the executor's copy of that output;
- after the executor, the zero-byte "directory marker" objects (keys ending in `/`) that TensorFlow's gs://
  filesystem writes for every directory it makes (`GcsFileSystem::CreateDir`: a SavedModel's
  `Format-Serving/`, `variables/`, `assets/`) removed from the task's gs:// outputs: KFP's launcher
  downloads every input artifact object by object before the next task starts (`objectstore/object_store.go`,
  `DownloadBlob`), turns such a key into an empty file and then fails to make the directory of the keys
  under it; TensorFlow's s3:// (tensorflow-io) writes none, and object stores have no directories to lose;
- TensorFlow's s3:// filesystem registered, and the task's true exit status: tensorflow-io aborts the
  interpreter's teardown after any S3 access (status 134), which KFP would report as a failed task
  (pipeline/storage/filesystems.py).
"""

from __future__ import annotations

import json
import sys
import traceback

from pipeline.storage.filesystems import finish, register_s3

# The output the KFP driver provisions for the task's logs (backend/src/v2/component/constants.go).
EXECUTOR_LOGS = "executor-logs"


def repaired_executor_input(executor_input: dict, inputs_spec: dict | None) -> dict:
    """The ExecutorInput (JSON) as TFX reads it: each input artifact typed as the compiled spec types its
    input, and no `executor-logs` output. Everything else (names, URIs, metadata) is kept as it came."""
    repaired = json.loads(json.dumps(executor_input))
    types = {
        key: spec["artifactType"]
        for key, spec in (inputs_spec or {}).get("artifacts", {}).items()
        if "artifactType" in spec
    }
    for key, artifacts in repaired.get("inputs", {}).get("artifacts", {}).items():
        if key in types:
            for artifact in artifacts.get("artifacts", []):
                artifact["type"] = dict(types[key])
    repaired.get("outputs", {}).get("artifacts", {}).pop(EXECUTOR_LOGS, None)
    return repaired


def parse_flags(argv: list[str]):
    """TFX's own argument parsing, then the repair of the ExecutorInput it parsed."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint

    args, beam_args = tfx_entrypoint._parse_flags(argv)  # noqa: SLF001 - TFX's parser, its arguments
    inputs_spec = getattr(args, "json_serialized_inputs_spec_args", None)
    args.json_serialized_invocation_args = json.dumps(
        repaired_executor_input(
            json.loads(args.json_serialized_invocation_args), json.loads(inputs_spec) if inputs_spec else None
        )
    )
    return args, beam_args


def output_uris(executor_input: dict) -> list[str]:
    return [
        artifact["uri"]
        for artifacts in executor_input.get("outputs", {}).get("artifacts", {}).values()
        for artifact in artifacts.get("artifacts", [])
        if artifact.get("uri")
    ]


def remove_directory_markers(uris: list[str], client=None) -> list[str]:
    """Deletes the zero-byte objects whose names end in `/` at or under each gs:// URI; returns their
    gs:// names. `client`: a google.cloud.storage.Client (the default credentials' otherwise)."""
    removed = []
    for uri in uris:
        if not uri.startswith("gs://"):
            continue
        if client is None:
            from google.cloud import storage

            client = storage.Client()
        bucket_name, _, prefix = uri[len("gs://") :].partition("/")
        bucket = client.bucket(bucket_name)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        markers = [b for b in client.list_blobs(bucket, prefix=prefix) if b.name.endswith("/") and not b.size]
        for blob in markers:
            blob.delete()
            removed.append(f"gs://{bucket_name}/{blob.name}")
    return removed


def main(parsed) -> None:
    """TFX's entrypoint, then its gs:// outputs made downloadable by KFP's launcher."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint

    tfx_entrypoint.main(parsed)
    args, _ = parsed
    remove_directory_markers(output_uris(json.loads(args.json_serialized_invocation_args)))


def run(argv: list[str]) -> int:
    from absl import app

    register_s3()
    try:
        app.run(main, argv=[sys.argv[0], *argv], flags_parser=parse_flags)
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:  # noqa: BLE001 - the task failed: its traceback, then status 1
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    finish(run(sys.argv[1:]))
