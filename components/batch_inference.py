"""The pipeline's batch inference (`PipelineConfig.inference_data`): unlabelled rows, ingested by their own
ExampleGen and described by their own StatisticsGen, checked against the schema's SERVING environment, then
scored by the model served when the run ends.

TFX 1.16's ExampleValidator ignores schema environments, so `InferenceGate` validates the statistics with
TFDV itself in the SERVING environment: the label absent is normal, any other anomaly, or a value of a date
column that is not a date (checked by the inference ExampleGen), stops inference with the data gate's one
line. TFX's BulkInferrer cannot score these models (tfx-bsl's predict post-processing
fails on the rank-1 string output `classes`, see pipeline/inference/scoring.py), so `BatchInference` scores
with the same Beam job as `python -m pipeline predict`: the pipeline's predictions and `predict`'s are the
same file for the same data and version.
"""

import json
import os

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleStatistics, InferenceResult, Schema

from components.data_gate import DataValidationError, check_dates, gate_message, pass_schema_on, split_files

PREDICTIONS_FILE = "predictions.csv"
NOT_SERVED = "no model is served yet: nothing was scored"


def serving_anomalies(statistics_uri: str, schema_path: str) -> dict[str, str]:
    """Feature -> what is wrong with it, validating every split's statistics in the SERVING environment."""
    import tensorflow_data_validation as tfdv

    from components.data_gate import anomaly_summary

    schema = tfdv.load_schema_text(schema_path)
    by_split = {
        split: tfdv.validate_statistics(tfdv.load_stats_binary(path), schema, environment="SERVING")
        for split, path in split_files(statistics_uri, "FeatureStats.pb").items()
    }
    return anomaly_summary(by_split)


@component
def InferenceGate(
    statistics: InputArtifact[ExampleStatistics],
    schema: InputArtifact[Schema],
    serving_schema: OutputArtifact[Schema],
) -> None:
    """Fails on any anomaly of the inference data in the SERVING environment, or on a value of a date column
    that is not a date; else passes the schema on."""
    summary = serving_anomalies(statistics.uri, os.path.join(schema.uri, "schema.pbtxt"))
    if summary:
        raise DataValidationError(gate_message(summary, "Inference data gate", "nothing was scored"))
    check_dates(statistics, "Inference data gate", "nothing was scored")
    pass_schema_on(schema, serving_schema)


@component
def BatchInference(
    serving_schema: InputArtifact[Schema],
    predictions: OutputArtifact[InferenceResult],
    serving_dir: Parameter[str],
    data_root: Parameter[str],
    beam_args: Parameter[str] = "[]",
    run_token: Parameter[str] = "",
) -> None:
    """Scores `data_root` with the version served from `serving_dir` now, into `predictions.csv` in its
    output; records the version and the number of rows (none served: says so, scores nothing). `run_token`
    differs at every run, so the served version is looked up each time instead of taken from the cache."""
    del serving_schema, run_token  # the gate's pass, and the cache key
    for name, value in score_served(serving_dir, data_root, predictions.uri, json.loads(beam_args)).items():
        if isinstance(value, int):
            predictions.set_int_custom_property(name, value)
        else:
            predictions.set_string_custom_property(name, value)


def score_served(serving_dir: str, data_root: str, output_dir: str, beam_args: list) -> dict:
    """Scores `data_root` into `output_dir/predictions.csv` with the version served now; returns what to
    record: `rows` and `model_version`, or `rows` 0 and a `note` when no model is served."""
    from absl import logging
    from tfx.dsl.io import fileio

    from components.pusher import serving_version
    from pipeline.inference.scoring import predict

    if serving_version(serving_dir) is None:
        logging.warning("Batch inference: %s", NOT_SERVED)
        return {"rows": 0, "note": NOT_SERVED}
    fileio.makedirs(output_dir)
    output = os.path.join(output_dir, PREDICTIONS_FILE)
    scored = predict(serving_dir, data_root, output, beam_args=tuple(beam_args))
    logging.info("Batch inference: %d rows scored by version %d into %s", scored.rows, scored.version, output)
    return {"rows": scored.rows, "model_version": scored.version}
