"""What ExampleGen will read, as a value its cache key can see: for Kubeflow Pipelines.

KFP's cache key is a task's input parameters, input artifacts, image and command. ExampleGen's inputs are
parameters only (the data root, the split patterns), so on self-hosted Kubeflow Pipelines, which never runs
TFX's pre-cache driver, new files in the same data root, or a new span, would hit the cache: the whole DAG
would be reused and a scheduled run would never retrain. Vertex AI runs the driver, which computes the same
fingerprint before its cache check.

`DataFingerprint` is compiled with caching off and runs at the start of every run. It resolves the span the
way TFX's ExampleGen driver does (the newest, or the configured range) and fingerprints the files it holds
(names, sizes, modification times: TFX's own input fingerprint); ExampleGen takes the value as its
`data_fingerprint` parameter. Unchanged data gives the same value, so ExampleGen and everything after it come
from the cache; changed data gives a new one, so the run ingests and trains again.
"""

from typing import TypedDict

from tfx.dsl.component.experimental.annotations import Parameter
from tfx.dsl.component.experimental.decorators import component

# The ExampleGen execution parameter that carries the fingerprint (not one of TFX's own).
FINGERPRINT_PARAMETER = "data_fingerprint"


class Fingerprint(TypedDict):
    fingerprint: str


def input_fingerprint(input_base: str, input_config: str, range_config: str = "") -> str:
    """`span <N>: <TFX's fingerprint of the span's files>` for ExampleGen's split patterns and range."""
    from tfx.components.example_gen import input_processor
    from tfx.proto import example_gen_pb2, range_config_pb2
    from tfx.utils import proto_utils

    splits = proto_utils.json_to_proto(input_config, example_gen_pb2.Input()).splits
    ranges = proto_utils.json_to_proto(range_config, range_config_pb2.RangeConfig()) if range_config else None
    processor = input_processor.FileBasedInputProcessor(input_base, splits, ranges)
    span, version = processor.resolve_span_and_version()
    return f"span {span}: {processor.get_input_fingerprint(span, version)}"


@component
def DataFingerprint(  # noqa: N802 - a TFX component's name
    input_base: Parameter[str], input_config: Parameter[str], range_config: Parameter[str]
) -> Fingerprint:
    """The span ExampleGen will read and the fingerprint of its files (see the module docstring)."""
    return {"fingerprint": input_fingerprint(input_base, input_config, range_config)}
