"""ImportSchemaGen whose cache key includes the schema file's contents.

TFX's ImportSchemaGen has one execution property, the schema file's path, so after an edit to the curated
schema the cached import (the old schema) would be reused. This variant adds the file's fingerprint as a
second property; the executor is TFX's own.
"""

from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import base_component
from tfx.types import Channel, standard_artifacts
from tfx.types.component_spec import ExecutionParameter
from tfx.types.standard_component_specs import ImportSchemaGenSpec


class VersionedImportSchemaGenSpec(ImportSchemaGenSpec):
    PARAMETERS = {
        **ImportSchemaGenSpec.PARAMETERS,
        "schema_fingerprint": ExecutionParameter(type=str),
    }


class VersionedImportSchemaGen(ImportSchemaGen):
    """Copies `schema_file` into the pipeline; re-runs whenever `schema_fingerprint` changes."""

    SPEC_CLASS = VersionedImportSchemaGenSpec

    def __init__(self, schema_file: str, schema_fingerprint: str):
        spec = VersionedImportSchemaGenSpec(
            schema_file=schema_file,
            schema_fingerprint=schema_fingerprint,
            schema=Channel(type=standard_artifacts.Schema),
        )
        base_component.BaseComponent.__init__(self, spec=spec)
