"""TFMA's metrics on whole batches: the Evaluator's cost brought to the models' inference plus the metrics.

TFMA (0.47 here, 0.48 on the newer stack) runs the models on batches, then splits every batch back into one
Python dict per example (`UnbatchExtractor`) and adds examples to its metric combiners one at a time: at a
million rows that is most of the Evaluator's time (bench/RESULTS.md). This module keeps TFMA's own pieces
and removes only that: TFMA's batched extractors (features, the `transform_features` preprocessing, labels,
both models' predictions) run as TFMA runs them, without the unbatching; then, per batch and per slice,
each of TFMA's own metric computations (`metric_specs.to_computations`, the same MetricKeys) gets its
accumulator filled from the batch's arrays at once (`_filler`), and everything after that is TFMA's:
its combiners' merge and extract_output, its derived metrics (AUC from the confusion matrices), the
candidate-baseline diffs, the removal of private metrics (`_AddDerivedCrossSliceAndDiffMetrics` and the
other steps of TFMA's `_ComputeMetricsAndPlots`), its validator (`metrics_validator.validate_metrics`) and
its writers, so `tfma.load_metrics` and `tfma.load_validation_result` read the results as before.

Filled from a batch: TFMA's example count; Keras metrics (`_CompilableMetricsCombiner`: each metric
reset and updated once with the batch's labels, predictions and weights, its weights added to the
accumulator, as TFMA does for each batch it collects; the reset and update traced once per metric into a
TensorFlow function, `_metric_weights`); the calibration histogram under AUC and the confusion-matrix metrics
(bucketed as TFMA buckets, vectorised); mean absolute and squared error. Each batch's first example is also
read the way TFMA reads every example (`metric_util.to_label_prediction_example_weight`) and must match the
batch's arrays, so a mismatch in shapes or selection fails rather than computing something else. An
evaluation with anything else (other combiners, example weights, confidence intervals, top-k or
aggregated classes, cross slices, a minimum slice size) goes through TFMA's own evaluator unchanged
(`supported`).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.api import types
from tensorflow_model_analysis.evaluators import metrics_plots_and_validations_evaluator as tfma_evaluator
from tensorflow_model_analysis.evaluators import metrics_validator
from tensorflow_model_analysis.metrics import (
    calibration_histogram,
    example_count,
    mean_regression_error,
    metric_specs,
    metric_types,
    metric_util,
    tf_metric_wrapper,
)
from tensorflow_model_analysis.slicer import slicer_lib
from tensorflow_model_analysis.utils import model_util, util

# TFMA's default extractors that turn batches into examples: left out here.
UNBATCHING_STAGES = ("ExtractUnbatchedInputs", "ExtractSliceKeys")
_KERAS = tf_metric_wrapper._CompilableMetricsCombiner
_HISTOGRAM = calibration_histogram._CalibrationHistogramCombiner
_COUNT = example_count._ExampleCountCombiner
_ERRORS = {
    mean_regression_error._MeanAbsoluteErrorCombiner: lambda label, prediction: np.abs(label - prediction),
    mean_regression_error._MeanSquaredErrorCombiner: lambda label, prediction: (label - prediction) ** 2,
}


def computations(eval_config) -> Any:
    """TFMA's metric computations for `eval_config`, separated as its evaluator separates them."""
    return tfma_evaluator._filter_and_separate_computations(
        metric_specs.to_computations(eval_config.metrics_specs, eval_config=eval_config)
    )


def _combiner_supported(combiner) -> bool:
    if getattr(combiner, "_example_weighted", False):
        return False
    if isinstance(combiner, _KERAS):
        return not (combiner._aggregation_type or combiner._class_weights or combiner._sub_key)
    if isinstance(combiner, _HISTOGRAM):
        sub_key = combiner._key.sub_key
        plain = sub_key is None or (
            sub_key.class_id is not None and sub_key.top_k is None and sub_key.k is None
        )
        return plain and not combiner._aggregation_type and not combiner._class_weights
    if type(combiner) in _ERRORS:
        return combiner._metric_key.sub_key is None and not combiner._aggregation_type
    return isinstance(combiner, _COUNT)


def supported(eval_config) -> bool:
    """Whether every metric of `eval_config` can be filled from batches (else TFMA's own evaluator runs)."""
    separated = computations(eval_config)
    options = eval_config.options
    return (
        not eval_config.cross_slicing_specs
        and not separated.cross_slice_computations
        and not separated.ci_derived_computations
        and not options.compute_confidence_intervals.value
        and options.min_slice_size.value <= 1
        and not any(spec.example_weight_key or spec.example_weight_keys for spec in eval_config.model_specs)
        and all(
            c.combiner is not None
            # TFMA's standard preprocessor only selects the extracts a combiner reads.
            and all(type(p) is metric_types.StandardMetricInputsPreprocessor for p in c.preprocessors or ())
            and _combiner_supported(c.combiner)
            for c in separated.non_derived_computations
        )
    )


def raw_columns(eval_config) -> set[str]:
    """The examples' columns an evaluation can read as features besides the models' inputs: the slices',
    the labels', the example weights' and predictions' (a model spec without a model reads them)."""
    columns = {c for spec in eval_config.slicing_specs for c in (*spec.feature_keys, *spec.feature_values)}
    for spec in eval_config.model_specs:
        for name in ("label", "example_weight", "prediction"):
            columns |= {getattr(spec, f"{name}_key"), *getattr(spec, f"{name}_keys").values()}
    return columns - {""}


# ---- reading a batch ----------------------------------------------------------------------------------


def _select(value, model_name: str, output_name: str, model_names: list[str]):
    """The part of a batched extract's labels or predictions for one model and output, as TFMA selects it."""
    if isinstance(value, dict) and model_name in value and len(model_names) > 1:
        value = value[model_name]
    if isinstance(value, dict) and output_name:
        value = value[output_name]
    return value


def _first_example(extract: dict) -> dict:
    """The first example of a batched extract, as TFMA's UnbatchExtractor makes it (for the per-batch check),
    without splitting the rest of the batch."""

    def pick(value):
        if isinstance(value, dict):
            return {k: pick(v) for k, v in value.items()}
        if isinstance(value, types.VarLenTensorValue):
            return util.to_tensor_value(next(iter(value.dense_rows())))
        if isinstance(value, types.SparseTensorValue):  # as util._split_sparse_batch makes its first element
            indices = np.asarray(value.indices)
            first = indices[:, 0] == 0
            return types.SparseTensorValue(
                values=np.asarray(value.values)[first],
                indices=indices[first, 1:],
                dense_shape=np.asarray(value.dense_shape)[1:],
            )
        if isinstance(value, np.ndarray | list) and len(value):
            return value[0]
        return value

    return {k: pick(v) for k, v in _without_record_batch(extract).items()}


def _without_record_batch(extract: dict) -> dict:
    return {k: v for k, v in extract.items() if k != constants.ARROW_RECORD_BATCH_KEY}


def _variable_length(value) -> bool:
    """Whether a batched extract's value is TFMA's VarLenTensorValue or SparseTensorValue (a feature with
    no fixed shape in the schema)."""
    return hasattr(value, "indices") and hasattr(value, "values")


def _one_each(value) -> np.ndarray | None:
    """A variable-length value with exactly one value per example as an array of one column; else None."""
    indices, values = np.asarray(value.indices), np.asarray(value.values)
    rows = int(np.asarray(value.dense_shape)[0])
    if len(values) != rows or not np.array_equal(indices[:, 0], np.arange(rows)) or indices[:, 1:].any():
        return None
    return values.reshape(rows, 1)


def _dense(value) -> np.ndarray:
    """A batched extract's label or prediction as an array, one row per example: a variable-length one where
    every example has exactly one value, as TFMA reads such a value of each example."""
    if not _variable_length(value):
        return np.asarray(value)
    found = _one_each(value)
    if found is None:
        raise ValueError("batched metrics: a label or prediction with other than one value per example")
    return found


def _arrays(extract: dict, eval_config, model_name: str, output_name: str, model_names: list[str]):
    """(labels, predictions) of a batched extract for one model and output, one row per example."""
    labels = _dense(_select(extract[constants.LABELS_KEY], model_name, output_name, model_names))
    predictions = _select(extract[constants.PREDICTIONS_KEY], model_name, output_name, model_names)
    spec = model_util.get_model_spec(eval_config, model_name)
    if isinstance(predictions, dict) and not output_name and spec is not None and spec.prediction_key:
        predictions = predictions[spec.prediction_key]
    return labels, _dense(predictions)


def _as_tfma_reads(example: dict, eval_config, model_name, output_name, sub_key, flatten) -> list:
    """One example's (label, prediction, example weight)s as TFMA reads each example."""
    inputs = metric_types.StandardMetricInputs(example)
    return list(
        metric_util.to_label_prediction_example_weight(
            inputs,
            eval_config=eval_config,
            model_name=model_name,
            output_name=output_name,
            sub_key=sub_key,
            flatten=flatten,
            example_weighted=False,
        )
    )


def _same(expected, got, model_name, output_name) -> None:
    expected = np.asarray(expected, np.float64)
    got = np.asarray(got, np.float64)
    if expected.shape != got.shape or not np.array_equal(expected, got, equal_nan=True):
        raise ValueError(
            f"batched metrics: the first example of a batch reads as {expected.tolist()} for model "
            f"{model_name!r} output {output_name!r}, the batch's arrays as {got.tolist()}"
        )


# ---- one batch's accumulators ---------------------------------------------------------------------------
# Each reads the batch once (and checks its first example) and returns a function of the rows of one slice.


def _metric_weights(metric):
    """A function (labels, predictions, weights) -> the Keras metric's weights after `reset_state` and
    one `update_state` on them, as TFMA calls the metric on a batch, traced once for any number of rows:
    run eagerly, each call of a metric's update dispatches its ops one by one (about 5 ms for the F1
    metric, bench/RESULTS.md)."""

    def update(labels, predictions, sample_weight):
        metric.reset_state()
        metric.update_state(labels, predictions, sample_weight)
        return [tf.identity(weight) for weight in metric.weights]

    traced = {}

    def weights(*arrays):
        key = tuple((array.dtype.str, array.shape[1:]) for array in arrays)
        if key not in traced:
            signature = [tf.TensorSpec((None, *array.shape[1:]), array.dtype) for array in arrays]
            traced[key] = tf.function(update, input_signature=signature, autograph=False)
        return [value.numpy() for value in traced[key](*arrays)]

    return weights


def _keras_filler(combiner, extract, eval_config, model_names, updates: dict):
    combiner.setup()
    model_name = combiner._model_name
    inputs = []
    for output_name in combiner._output_names:
        labels, predictions = _arrays(extract, eval_config, model_name, output_name, model_names)
        # Shaped as TFMA stacks the examples it reads: (examples, *one example's shape).
        ((label, prediction, weight),) = _as_tfma_reads(
            _first_example(extract), eval_config, model_name, output_name, None, False
        )
        labels = labels.reshape((len(labels), *np.shape(label)))
        predictions = predictions.reshape((len(predictions), *np.shape(prediction)))
        _same(
            np.concatenate([np.ravel(label), np.ravel(prediction)]),
            np.concatenate([np.ravel(labels[0]), np.ravel(predictions[0])]),
            model_name,
            output_name,
        )
        inputs.append((output_name, labels, predictions, weight))

    def fill(rows):
        accumulator = combiner.create_accumulator()
        for output_index, (output_name, labels, predictions, weight) in enumerate(inputs):
            # The whole batch, the examples outside the slice weighted 0 (a Keras metric adds weighted values
            # and weights, so they add nothing): one input shape per batch size, so the metrics' update
            # functions are not traced again for every slice's number of rows.
            weights = np.zeros((len(labels), *np.shape(weight)), np.float32)
            weights[rows] = np.asarray(weight, np.float32)
            for metric_index, metric in enumerate(combiner._metrics[output_name]):
                if metric not in updates:
                    updates[metric] = _metric_weights(metric)
                found = updates[metric](labels, predictions, weights)
                accumulator.add_weights(output_index, metric_index, found)
        return accumulator

    return fill


def _flat(extract, eval_config, key, model_names):
    """Per-element labels and predictions as TFMA's flattening reads them (a class id: that class's)."""
    labels, predictions = _arrays(extract, eval_config, key.model_name, key.output_name, model_names)
    predictions = predictions.reshape(len(predictions), -1)
    if key.sub_key is not None and key.sub_key.class_id is not None and predictions.shape[1] == 1:
        # A class id of a one-column prediction: the batch split into examples and each read as TFMA splits
        # and reads them (no configuration of the pipeline makes one; TFMA's own pace, for this metric).
        found = [
            (float(label), float(prediction))
            for example in util.split_extracts(_without_record_batch(extract))
            for label, prediction, _ in _as_tfma_reads(
                example, eval_config, key.model_name, key.output_name, key.sub_key, True
            )
        ]
        if len(found) != len(predictions):
            raise ValueError(f"batched metrics: {len(found)} values of {len(predictions)} examples")
        return tuple(np.asarray(column, np.float64) for column in zip(*found, strict=True))
    if key.sub_key is not None and key.sub_key.class_id is not None:
        class_id = key.sub_key.class_id
        label = (labels.reshape(len(labels), -1)[:, 0] == class_id).astype(np.float64)
        prediction = predictions[:, class_id].astype(np.float64)
    else:
        label = labels.reshape(-1).astype(np.float64)
        prediction = predictions.reshape(-1).astype(np.float64)
    first = _first_example(extract)
    found = _as_tfma_reads(first, eval_config, key.model_name, key.output_name, key.sub_key, True)
    _same(
        [[float(lbl), float(pred)] for lbl, pred, _ in found],
        np.stack([label[: len(found)], prediction[: len(found)]], axis=1),
        key.model_name,
        key.output_name,
    )
    return label, prediction


def _histogram_filler(combiner, extract, eval_config, model_names):
    label, prediction = _flat(extract, eval_config, combiner._key, model_names)
    based_on = prediction if combiner._prediction_based_bucketing else label
    # TFMA's _bucket_index, element by element: (value - left) / range * buckets + 1, truncated, clipped.
    index = (based_on - combiner._left) / combiner._range * combiner._num_buckets + 1
    index = np.where(
        index < 0, 0, np.where(index >= combiner._num_buckets + 1, combiner._num_buckets + 1, index)
    ).astype(np.int64)
    size = combiner._num_buckets + 2

    def fill(rows):
        chosen = index[rows]
        labels = np.bincount(chosen, weights=label[rows], minlength=size)
        predictions = np.bincount(chosen, weights=prediction[rows], minlength=size)
        examples = np.bincount(chosen, minlength=size).astype(np.float64)
        return {
            int(bucket): calibration_histogram.Bucket(
                int(bucket), float(labels[bucket]), float(predictions[bucket]), float(examples[bucket])
            )
            for bucket in np.nonzero(examples)[0]
        }

    return fill


def _error_filler(combiner, extract, eval_config, model_names):
    errors = _ERRORS[type(combiner)](*_flat(extract, eval_config, combiner._metric_key, model_names))

    def fill(rows):
        # As TFMA: an example whose error is NaN adds neither error nor weight.
        kept = errors[rows][~np.isnan(errors[rows])]
        accumulator = combiner.create_accumulator()
        accumulator.total_regression_error += float(np.sum(kept))
        accumulator.total_example_weights += float(len(kept))
        return accumulator

    return fill


def _filler(computation, extract, eval_config, model_names, updates: dict):
    """A function of a slice's rows of a batched extract -> the accumulator of `computation`'s combiner for
    them; the batch read once."""
    combiner = computation.combiner
    if isinstance(combiner, _KERAS):
        return _keras_filler(combiner, extract, eval_config, model_names, updates)
    if isinstance(combiner, _HISTOGRAM):
        return _histogram_filler(combiner, extract, eval_config, model_names)
    if type(combiner) in _ERRORS:
        return _error_filler(combiner, extract, eval_config, model_names)
    return lambda rows: float(len(rows))  # example count, unweighted


# ---- slices ---------------------------------------------------------------------------------------------


def _feature_dicts(extract: dict, eval_config) -> tuple[list[dict], dict]:
    """(the transformed features' dicts, per model, searched first; the raw features), as TFMA's
    SliceKeyExtractor searches them."""
    transformed = extract.get(constants.TRANSFORMED_FEATURES_KEY)
    dicts = []
    if transformed:
        names = [spec.name for spec in eval_config.model_specs]
        if all(isinstance(transformed.get(name), dict) for name in names if name in transformed) and any(
            name in transformed for name in names
        ):
            dicts = [transformed[name] for name in names if name in transformed]
        else:
            dicts = [transformed]
    return dicts, extract.get(constants.FEATURES_KEY) or {}


def _column(value, size: int) -> tuple[np.ndarray, list]:
    """A sliced column of a batch: (each row's group id, each group's values), rows with the same values in
    one group. Dense one-value columns are grouped by numpy; sparse ones (TFMA's SparseTensorValue, for a
    column with missing values) row by row; a variable-length column of one value per row is dense."""
    if _variable_length(value) and (found := _one_each(value)) is not None:
        value = found
    if _variable_length(value):
        rows: list[list] = [[] for _ in range(size)]
        for index, found in zip(np.asarray(value.indices), np.asarray(value.values), strict=True):
            rows[int(index[0])].append(found)
        keys = [tuple(r) for r in rows]
        distinct = {key: number for number, key in enumerate(dict.fromkeys(keys))}
        return np.asarray([distinct[key] for key in keys]), [np.asarray(key) for key in distinct]
    array = np.asarray(value)
    if array.ndim == 2 and array.shape[1] == 1:
        distinct, groups = np.unique(array[:, 0], return_inverse=True)
        return groups.reshape(-1), [np.asarray([v]) for v in distinct]
    keys = [tuple(np.ravel(array[row]).tolist()) for row in range(size)]
    distinct = {key: number for number, key in enumerate(dict.fromkeys(keys))}
    return np.asarray([distinct[key] for key in keys]), [np.asarray(key) for key in distinct]


def slice_rows(extract: dict, slice_specs: list, eval_config) -> dict[tuple, np.ndarray]:
    """Slice key -> the rows of a batched extract in that slice, the keys made by TFMA's slicer: each
    distinct combination of the sliced columns' values is sliced once, by TFMA, from its values."""
    transformed, raw = _feature_dicts(extract, eval_config)
    columns = sorted(
        {c for spec in slice_specs for c in spec._columns}
        | {c for spec in slice_specs for c, _ in spec._features}
    )
    size = util.batch_size(extract)
    sources = [*transformed, raw]
    grouped = [
        (position, column, _column(source[column], size))
        for position, source in enumerate(sources)
        for column in columns
        if column in source
    ]
    if grouped:
        combined = np.stack([groups for _, _, (groups, _) in grouped], axis=1)
        signatures, inverse = np.unique(combined, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
    else:
        signatures, inverse = np.zeros((1, 0), np.int64), np.zeros(size, np.int64)
    found: dict[tuple, list[np.ndarray]] = {}
    for number, signature in enumerate(signatures):
        dicts = [{} for _ in sources]
        for (position, column, (_, values)), group in zip(grouped, signature, strict=True):
            dicts[position][column] = values[group]
        rows = np.nonzero(inverse == number)[0]
        for key in slicer_lib.get_slices_for_features_dicts(dicts[:-1], dicts[-1], slice_specs):
            found.setdefault(key, []).append(rows)
    return {key: np.concatenate(parts) for key, parts in found.items()}


class _SlicePartials(beam.DoFn):
    """A batched extract -> (slice key, one accumulator per computation) for each of its slices."""

    def __init__(self, eval_config, model_names):
        self._eval_config = eval_config
        self._model_names = model_names

    def setup(self):
        self._computations = computations(self._eval_config).non_derived_computations
        self._updates = {}  # Keras metric -> its traced update (_metric_weights)
        self._slice_specs = [slicer_lib.SingleSliceSpec(spec=s) for s in self._eval_config.slicing_specs]

    def process(self, extract):
        config, names = self._eval_config, self._model_names
        fillers = [_filler(c, extract, config, names, self._updates) for c in self._computations]
        for key, rows in slice_rows(extract, self._slice_specs, self._eval_config).items():
            yield key, tuple(fill(rows) for fill in fillers)


class _MergePartials(beam.CombineFn):
    """TFMA's combiners, merging the batches' accumulators and extracting their metrics."""

    def __init__(self, eval_config):
        self._eval_config = eval_config

    def setup(self):
        self._combiners = [c.combiner for c in computations(self._eval_config).non_derived_computations]
        for combiner in self._combiners:
            combiner.setup()

    def create_accumulator(self):
        return None

    def add_input(self, accumulator, partials):
        if accumulator is None:
            return partials
        return self.merge_accumulators([accumulator, partials])

    def merge_accumulators(self, accumulators):
        found = [a for a in accumulators if a is not None]
        if not found:
            return None
        # An iterator, as Beam passes them: some of TFMA's combiners (mean regression errors) take the first
        # with next() and then merge the rest by iterating the same argument.
        return tuple(
            combiner.merge_accumulators(iter([a[index] for a in found]))
            for index, combiner in enumerate(self._combiners)
        )

    def extract_output(self, accumulator):
        result = {}
        for index, combiner in enumerate(self._combiners):
            result.update(combiner.extract_output(accumulator[index]))
        return result


@beam.ptransform_fn
def _ComputeMetricsFromBatches(extracts, eval_config, model_names):  # noqa: N802 (Beam's style)
    """TFMA's _ComputeMetricsAndPlots with its per-example preprocessing, fan-out and combining replaced by
    batched accumulation; the rest is TFMA's."""
    separated = computations(eval_config)
    baseline = model_util.get_baseline_model_spec(eval_config)
    sliced = (
        extracts
        | "SlicePartials" >> beam.ParDo(_SlicePartials(eval_config, model_names))
        | "CombineMetricsPerSlice" >> beam.CombinePerKey(_MergePartials(eval_config))
        | "AddDerivedCrossSliceAndDiffMetrics"
        >> tfma_evaluator._AddDerivedCrossSliceAndDiffMetrics(
            separated.derived_computations, [], [], baseline.name if baseline else None
        )
        | "RemovePrivateMetrics" >> beam.MapTuple(tfma_evaluator._remove_private_metrics)
    )
    metrics = sliced | "FilterByMetrics" >> beam.Map(
        tfma_evaluator._filter_by_key_type, metric_types.MetricKey
    )
    plots = sliced | "FilterByPlots" >> beam.Map(tfma_evaluator._filter_by_key_type, metric_types.PlotKey)
    attributions = sliced | "FilterByAttributions" >> beam.Map(
        tfma_evaluator._filter_by_key_type, metric_types.AttributionsKey
    )
    validations = metrics | "ValidateMetrics" >> beam.Map(metrics_validator.validate_metrics, eval_config)
    return {
        constants.METRICS_KEY: metrics,
        constants.PLOTS_KEY: plots,
        constants.ATTRIBUTIONS_KEY: attributions,
        constants.VALIDATIONS_KEY: validations,
    }


def batched_evaluator(eval_config, model_names: list[str], run_after: str):
    """A TFMA Evaluator computing `eval_config`'s metrics from batched extracts, after the extractor
    `run_after`."""
    from tensorflow_model_analysis.evaluators import evaluator

    return evaluator.Evaluator(
        stage_name="EvaluateMetricsPlotsAndValidations",
        run_after=run_after,
        ptransform=_ComputeMetricsFromBatches(eval_config, model_names),
    )
