"""The Evaluator's metrics from TFMA's batches (components/batched_metrics.py) against TFX's own executor on
the same model, baseline and data (tests/evaluator_comparison.py): the same metric values (AUC with TFMA's
10,000 thresholds and every other metric, within 1e-6 relative), the same slices, the same validation and
blessing, for classification (blessed without a baseline, refused by its absolute and change thresholds
against a baseline), regression, the two-headed model and the siamese task. The binary classification's AUC
is compared on the taxi table's run (tests/test_users_data.py). The runs are the suite's own."""

from __future__ import annotations

import pytest

from components.evaluator import METRICS_FROM, without_empty_baseline
from tests.evaluator_comparison import compare, run_tfx_evaluator

pytestmark = pytest.mark.e2e

RUNS = [
    "first_run",  # classification, per-island slices, no baseline: blessed
    "crippled_run",  # a 1-step candidate against the blessed baseline: refused
    "body_mass_run",  # regression
    "crippled_body_mass_run",  # regression, refused by its change thresholds against the baseline
    "multi_run",  # the two-headed model: an accuracy and an RMSE gate
    "similarity_run",  # the siamese task's pair accuracy
]


@pytest.mark.parametrize("run_fixture", RUNS)
def test_the_same_metrics_slices_and_blessing_as_tfxs_evaluator(run_fixture, request, tmp_path):
    record = request.getfixturevalue(run_fixture)
    both = run_tfx_evaluator(record.config.metadata_store, record.summary.run_id, str(tmp_path))
    # The run's metrics came from TFMA's batches, not from TFMA's example-by-example path.
    assert both["ours"]["evaluation"].get_string_custom_property(METRICS_FROM) == "batches"
    metrics = compare(both)
    assert len(metrics) >= 1 and all(metrics.values())


_COLLECTED: list = []  # what a pipeline of _extracts gave (Beam pickles a step by reference to this module)


def _collect(extract) -> None:
    _COLLECTED.append(extract)


def _extracts(record, stages) -> list[dict]:
    """The run's eval split through TFMA's batched input and `stages(eval_config, models, adapter)`'s
    extractors, in one in-process Beam pipeline: one extract per batch, in order."""
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from tfx.components.util import tfxio_utils
    from tfx.utils import io_utils, path_utils, proto_utils
    from tfx_bsl.tfxio import tensor_adapter

    from pipeline.run_summary import node_execution

    _, inputs, _, properties = node_execution(
        record.config.metadata_store, record.summary.run_id, "Evaluator"
    )
    inputs = without_empty_baseline(inputs)
    config = proto_utils.json_to_proto(properties["eval_config"], tfma.EvalConfig())
    config = tfma.utils.update_eval_config_with_defaults(
        config, has_baseline=bool(inputs["baseline_model"]), rubber_stamp=True
    )
    models = [
        tfma.default_eval_shared_model(
            path_utils.serving_model_path(inputs["baseline_model" if spec.is_baseline else "model"][0].uri),
            model_name=spec.name,
            eval_config=config,
        )
        for spec in config.model_specs
    ]
    schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(inputs["schema"][0].uri))
    tfxio = tfxio_utils.get_tfxio_factory_from_artifact(
        inputs["examples"], [], schema=schema, raw_record_column_name=tfma.ARROW_INPUT_COLUMN
    )(io_utils.all_files_pattern(f"{inputs['examples'][0].uri}/Split-eval"))
    adapter = tensor_adapter.TensorAdapterConfig(tfxio.ArrowSchema(), tfxio.TensorRepresentations())
    _COLLECTED.clear()
    with beam.Pipeline() as pipeline:
        extracts = pipeline | tfxio.BeamSource(batch_size=64) | tfma.BatchedInputsToExtracts()
        for extractor in stages(config, models if len(models) > 1 else models[0], adapter):
            extracts |= extractor.stage_name >> extractor.ptransform
        _ = extracts | beam.Map(_collect)
    return list(_COLLECTED)


def _same(ours, theirs, path=()) -> None:
    import numpy as np

    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and sorted(ours) == sorted(theirs), path
        for key in theirs:
            _same(ours[key], theirs[key], (*path, key))
    elif hasattr(theirs, "_fields"):  # TFMA's VarLenTensorValue, SparseTensorValue
        assert type(ours) is type(theirs), path
        for field in theirs._fields:
            _same(getattr(ours, field), getattr(theirs, field), (*path, field))
    else:
        np.testing.assert_array_equal(ours, theirs, err_msg=str(path))
        assert np.asarray(ours).dtype == np.asarray(theirs).dtype, path


@pytest.mark.parametrize("run_fixture", ["first_run", "crippled_run"])
def test_the_models_outputs_are_tfmas_extractors_outputs(run_fixture, request):
    """components/batched_predictions.py in the place of TFMA's transformed-features and predictions
    extractors (one model; a candidate and its baseline): the same extracts, key by key and value by value."""
    from tensorflow_model_analysis.constants import (
        FEATURES_KEY,
        LABELS_KEY,
        PREDICTIONS_KEY,
        TRANSFORMED_FEATURES_KEY,
    )

    from components import batched_predictions

    def tfmas(config, models, adapter):
        found = batched_predictions.extractors(config, models, adapter, by_name=False)
        stages = [e.stage_name for e in found]
        # TFMA's own model steps
        assert {batched_predictions.TRANSFORMED_FEATURES_STAGE, batched_predictions.PREDICTIONS_STAGE} <= set(
            stages
        )
        return found

    def ours(config, models, adapter):
        assert batched_predictions.serves_examples(config, models if isinstance(models, list) else [models])
        return batched_predictions.extractors(config, models, adapter)

    record = request.getfixturevalue(run_fixture)
    found, expected_extracts = _extracts(record, ours), _extracts(record, tfmas)
    assert len(found) == len(expected_extracts) > 1
    for mine, expected in zip(found, expected_extracts, strict=True):
        assert sorted(mine) == sorted(expected)
        for key in (TRANSFORMED_FEATURES_KEY, PREDICTIONS_KEY, LABELS_KEY, FEATURES_KEY):
            _same(mine[key], expected[key], (key,))


def test_a_class_id_of_a_one_column_prediction_is_read_as_tfma_reads_it(similarity_run, tmp_path):
    """An AUC binarized by class id on the siamese model's one-column distance (no configuration of the
    pipeline makes one): computed from the batches, each example read as TFMA reads it, the same as TFX's."""
    import json

    from pipeline.run_summary import node_execution

    _, _, _, properties = node_execution(
        similarity_run.config.metadata_store, similarity_run.summary.run_id, "Evaluator"
    )
    config = json.loads(properties["eval_config"])
    config["metrics_specs"].append(
        {"metrics": [{"class_name": "AUC"}], "binarize": {"class_ids": {"values": [0]}}}
    )
    both = run_tfx_evaluator(
        similarity_run.config.metadata_store,
        similarity_run.summary.run_id,
        str(tmp_path),
        eval_config=json.dumps(config),
    )
    assert both["ours"]["evaluation"].get_string_custom_property(METRICS_FROM) == "batches"
    metrics = compare(both)
    assert any(b"auc" in key for values in metrics.values() for key in values)
