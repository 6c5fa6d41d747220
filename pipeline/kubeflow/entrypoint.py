"""The container command of every compiled task: TFX's Kubeflow v2 entrypoint
(`tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor`, same arguments), with:

- the ExecutorInput repaired before TFX parses it, for self-hosted Kubeflow Pipelines, whose v2 driver hands
  a task what TFX cannot read (README, "What was executed here, and what was only read"):
  - every input artifact's type comes back from `--json_serialized_inputs_spec_args` (the compiled
    component's input types): the driver builds inputs from ML Metadata with `type.instanceSchema` empty
    (`backend/src/v2/metadata/client.go`, `GetOutputArtifactsByExecutionId`: `Schema: ""`), on which TFX's
    `_retrieve_class_path` fails;
  - the `executor-logs` output, which the driver adds to every task when logs are published
    (`driver/driver.go`, `provisionOutputs`; typed `system.Artifact`, unknown to TFX), is kept from TFX: the
    launcher uploads the logs itself and ignores the executor's copy of that output;
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


def run(argv: list[str]) -> int:
    from absl import app
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_entrypoint

    register_s3()
    try:
        app.run(tfx_entrypoint.main, argv=[sys.argv[0], *argv], flags_parser=parse_flags)
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:  # noqa: BLE001 - the task failed: its traceback, then status 1
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    finish(run(sys.argv[1:]))
