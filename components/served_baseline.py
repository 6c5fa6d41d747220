"""The baseline for the Evaluator on Kubeflow: the model currently served, found in the push directory.

TFX's latest-blessed-model Resolver compiles (KubeflowV2DagRunner) into two `resolver` executors: artifact
queries against the metadata store, which Vertex AI Pipelines runs. The open-source Kubeflow Pipelines
backend runs `container` and `importer` executors only, so on a self-hosted cluster the pipeline resolves
its baseline with this component instead: a container like any other, reading the Pusher's destination.

When nothing is served yet the output holds no model, and the project's Evaluator executor
(components/evaluator.py) evaluates without a baseline: the first run of a pipeline, as with the Resolver.
"""

from tfx.dsl.component.experimental.annotations import OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import Model
from tfx.utils import io_utils, path_utils

from components.pusher import serving_version


@component
def ServedBaseline(model: OutputArtifact[Model], serving_dir: Parameter[str]) -> None:
    """Copies the served version under `serving_dir` into `model` (empty when none is served): the newest
    version, or on object storage the one `models.config` names."""
    version = serving_version(serving_dir)
    if version is not None:
        source = f"{serving_dir.rstrip('/')}/{version}"
        io_utils.copy_dir(source, path_utils.serving_model_dir(model.uri))
        model.set_string_custom_property("served_version", str(version))
