"""`create_pipeline(config)`: builds the components and wires their channels; nothing else."""

from __future__ import annotations

import json
import time

from google.protobuf.wrappers_pb2 import BoolValue
from tensorflow_model_analysis import constants as tfma_constants
from tensorflow_model_analysis.proto import config_pb2 as tfma_config
from tfx.components import (
    ExampleValidator,
    FileBasedExampleGen,
    ImportExampleGen,
    Pusher,
    Trainer,
    Tuner,
)
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.experimental.conditionals.conditional import Cond
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.data_types import RuntimeParameter
from tfx.proto import example_gen_pb2, pusher_pb2, range_config_pb2, trainer_pb2
from tfx.types import Channel
from tfx.types.standard_artifacts import Model, ModelBlessing
from tfx.utils import proto_utils

from components import csv_example_gen
from components import pusher as atomic_pusher
from components.batch_inference import BatchInference, InferenceGate
from components.data_fingerprint import FINGERPRINT_PARAMETER, DataFingerprint
from components.data_gate import DataGate
from components.drift_gate import DriftGate
from components.evaluator import Evaluator as BaselineAwareEvaluator
from components.schema_importer import VersionedImportSchemaGen
from components.served_baseline import ServedBaseline
from components.serving_check import ServingCheck
from components.statistics_gen import StatisticsGen
from components.transform import Transform
from pipeline.config import PipelineConfig
from pipeline.spans import SPAN_PATTERN
from trainer_module.features import (
    REGRESSION,
    SAME_CLASS_DISTANCE,
    output_key,
    prediction_name,
    transformed_name,
)

PREPROCESSING_FN = "trainer_module.preprocessing.preprocessing_fn"
# Kubeflow-only tasks (ids are Argo DAG task names there: letters, digits, hyphens).
SERVED_BASELINE = "ServedBaseline"
DATA_FINGERPRINT = "DataFingerprint"
BATCH_INFERENCE = "BatchInference"  # after a push
INFERENCE_EXAMPLE_GEN = "InferenceExampleGen"
BATCH_INFERENCE_SERVED = "BatchInferenceServed"  # after a refused candidate: the served version scores
TUNER_FN = "trainer_module.tuning.tuner_fn"


def _overall(**threshold) -> list[tfma_config.PerSliceMetricThreshold]:
    """A threshold on the overall slice only: per-slice metrics (a few dozen examples each) are reported,
    not gated."""
    return [
        tfma_config.PerSliceMetricThreshold(
            slicing_specs=[tfma_config.SlicingSpec()], threshold=tfma_config.MetricThreshold(**threshold)
        )
    ]


def _change(direction, allowed: float) -> tfma_config.GenericChangeThreshold:
    """Compared with the baseline model (ignored while none is blessed): at most `allowed` worse."""
    if direction == tfma_config.MetricDirection.HIGHER_IS_BETTER:
        return tfma_config.GenericChangeThreshold(direction=direction, absolute={"value": -allowed - 1e-10})
    return tfma_config.GenericChangeThreshold(direction=direction, absolute={"value": allowed + 1e-10})


def classification_metrics(config: PipelineConfig, num_classes: int | None) -> list[tfma_config.MetricsSpec]:
    higher = tfma_config.MetricDirection.HIGHER_IS_BETTER
    accuracy = tfma_config.MetricConfig(
        class_name="SparseCategoricalAccuracy",
        per_slice_thresholds=_overall(
            value_threshold=tfma_config.GenericValueThreshold(lower_bound={"value": config.min_accuracy}),
            change_threshold=_change(higher, config.max_accuracy_drop),
        ),
    )
    metrics = [accuracy]
    if num_classes:
        # The project's own Keras metric, computed by TFMA on the served outputs.
        average = "binary" if num_classes == 2 else "macro"
        metrics.append(
            tfma_config.MetricConfig(
                class_name="ClassF1Score",
                module="trainer_module.metrics",
                config=json.dumps({"average": average, "num_classes": num_classes, "name": "f1_score"}),
            )
        )
    specs = [tfma_config.MetricsSpec(metrics=metrics)]
    if num_classes == 2:
        # The model outputs one probability per class; AUC is that of class index 1 against the rest.
        auc = tfma_config.MetricConfig(
            class_name="AUC",
            per_slice_thresholds=_overall(
                value_threshold=tfma_config.GenericValueThreshold(lower_bound={"value": config.min_auc})
            ),
        )
        specs.append(
            tfma_config.MetricsSpec(
                metrics=[auc], binarize=tfma_config.BinarizationOptions(class_ids={"values": [1]})
            )
        )
    return specs


def regression_metrics(config: PipelineConfig) -> list[tfma_config.MetricsSpec]:
    lower = tfma_config.MetricDirection.LOWER_IS_BETTER
    rmse_bound = {}
    if config.max_rmse is not None:
        rmse_bound["value_threshold"] = tfma_config.GenericValueThreshold(
            upper_bound={"value": config.max_rmse}
        )
    rmse_threshold = _overall(change_threshold=_change(lower, config.max_rmse_increase), **rmse_bound)
    return [
        tfma_config.MetricsSpec(
            metrics=[
                tfma_config.MetricConfig(
                    class_name="RootMeanSquaredError", per_slice_thresholds=rmse_threshold
                ),
                tfma_config.MetricConfig(
                    class_name="MeanAbsoluteError",
                    per_slice_thresholds=_overall(change_threshold=_change(lower, 0.0)),
                ),
            ]
        )
    ]


def pair_metrics(config: PipelineConfig) -> list[tfma_config.MetricsSpec]:
    """A similarity model's pairs: the project's PairAccuracy (distance below SAME_CLASS_DISTANCE means
    "same class") at least `min_accuracy` and at most `max_accuracy_drop` below the baseline's."""
    higher = tfma_config.MetricDirection.HIGHER_IS_BETTER
    pair_accuracy = tfma_config.MetricConfig(
        class_name="PairAccuracy",
        module="trainer_module.metrics",
        config=json.dumps({"threshold": SAME_CLASS_DISTANCE, "name": "pair_accuracy"}),
        per_slice_thresholds=_overall(
            value_threshold=tfma_config.GenericValueThreshold(lower_bound={"value": config.min_accuracy}),
            change_threshold=_change(higher, config.max_accuracy_drop),
        ),
    )
    return [tfma_config.MetricsSpec(metrics=[pair_accuracy])]


def _head_metrics(
    config: PipelineConfig, task: str, num_classes: int | None
) -> list[tfma_config.MetricsSpec]:
    if task == REGRESSION:
        return regression_metrics(config)
    return classification_metrics(config, num_classes)


def eval_config(config: PipelineConfig) -> tfma_config.EvalConfig:
    """Each head's metrics overall and per slice; the thresholds gate the overall slice.

    A classification head is scored on the transformed label (the class index); a regression head on the
    raw label, in its own units. With several heads, each output has its label, prediction and metrics.
    """
    if config.is_similarity:
        # The serving signature takes pair examples and answers with their distance.
        model_spec = dict(label_key=config.images.pair_label, prediction_key="distance")
        metrics_specs = pair_metrics(config)
    elif len(config.labels) == 1:
        label, task = config.label_key, config.task
        model_spec = dict(
            label_key=label if task == REGRESSION else transformed_name(label),
            prediction_key=prediction_name(task),
        )
        metrics_specs = _head_metrics(config, task, config.num_classes)
    else:
        # TFMA finds each output's predictions under its output name: the serving output scored.
        label_keys, metrics_specs = {}, []
        for label, task in config.labels.items():
            output = output_key(label, prediction_name(task), prefixed=True)
            label_keys[output] = label if task == REGRESSION else transformed_name(label)
            num_classes = config.num_classes if label == config.label_key else None
            for spec in _head_metrics(config, task, num_classes):
                spec.output_names.append(output)
                metrics_specs.append(spec)
        model_spec = dict(label_keys=label_keys)
    return tfma_config.EvalConfig(
        model_specs=[
            tfma_config.ModelSpec(
                signature_name="serving_default",
                preprocessing_function_names=["transform_features"],
                # Called through its signatures only: TFMA, told nothing, loads each model with Keras first
                # to find out whether it is one (tfma.utils.get_model_type), a second load of every model.
                model_type=tfma_constants.TF_GENERIC,
                **model_spec,
            )
        ],
        slicing_specs=[tfma_config.SlicingSpec()]
        + [tfma_config.SlicingSpec(feature_keys=[feature]) for feature in config.slice_features],
        metrics_specs=[tfma_config.MetricsSpec(metrics=[tfma_config.MetricConfig(class_name="ExampleCount")])]
        + metrics_specs,
        # Only the metrics above: the model's compiled metrics may refer to training-only outputs.
        options=tfma_config.Options(include_default_metrics=BoolValue(value=False)),
    )


def _image_example_gen(config: PipelineConfig, data_root) -> ImportExampleGen:
    """TFRecords of PNG examples. A similarity task's data root holds `train/` (single images) and `eval/`
    (pairs); other image data is split 2:1 by hash, as CSV data is."""
    if config.is_similarity:
        splits = dict(
            input_config=example_gen_pb2.Input(
                splits=[
                    example_gen_pb2.Input.Split(name="train", pattern="train/*"),
                    example_gen_pb2.Input.Split(name="eval", pattern="eval/*"),
                ]
            )
        )
    else:
        splits = dict(output_config=_two_to_one())
    return ImportExampleGen(input_base=data_root, **splits)


def _two_to_one() -> example_gen_pb2.Output:
    return example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=2),
                example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1),
            ]
        )
    )


def _example_gen(config: PipelineConfig, data_root) -> FileBasedExampleGen:
    """Every CSV of the data root, or the configured span range (`span-{SPAN}/*`), split 2:1 by hash.

    TFX's CsvExampleGen with its executor swapped for one that parses and encodes in C++ (the same examples
    in the same splits, components/csv_example_gen.py)."""
    spans = {}
    if config.span_range is not None or config.read_spans:
        spans["input_config"] = example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="spans", pattern=SPAN_PATTERN)]
        )
    if config.span_range is not None:
        first, last = config.span_range
        spans["range_config"] = range_config_pb2.RangeConfig(
            static_range=range_config_pb2.StaticRange(start_span_number=first, end_span_number=last)
        )
    return FileBasedExampleGen(
        input_base=data_root,
        custom_executor_spec=executor_spec.BeamExecutorSpec(csv_example_gen.Executor),
        **spans,
        output_config=_two_to_one(),
        # Rows with an empty label cell are left out, counted; dates checked (components/csv_example_gen.py).
        custom_config=csv_example_gen.example_gen_config(config.labels, dict(config.dates)),
    ).with_id("CsvExampleGen")


def _inference_data_nodes(config: PipelineConfig, schema) -> list:
    """The inference data's own ExampleGen (one split), its statistics and the SERVING-environment gate.

    Image data (TFRecords of PNG examples, as `images --unlabelled` writes them) is described by the schema's
    features alone: its other features (the `file` each image came from) are carried into the predictions as
    columns, as `predict` does, not validated."""
    one_split = example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[example_gen_pb2.SplitConfig.Split(name="inference", hash_buckets=1)]
        )
    )
    if config.images is not None:
        import tensorflow_data_validation as tfdv

        example_gen = ImportExampleGen(input_base=config.inference_data, output_config=one_split)
        described = [feature.name for feature in tfdv.load_schema_text(config.schema_path).feature]
        options = {"stats_options": tfdv.StatsOptions(feature_allowlist=described)}
    else:
        example_gen = FileBasedExampleGen(
            input_base=config.inference_data,
            custom_executor_spec=executor_spec.BeamExecutorSpec(csv_example_gen.Executor),
            output_config=one_split,
            # Every row kept, labelled or not; the dates checked for the inference gate.
            custom_config=csv_example_gen.example_gen_config(dates=dict(config.dates)),
        )
        options = {}
    example_gen = example_gen.with_id(INFERENCE_EXAMPLE_GEN)
    statistics = StatisticsGen(examples=example_gen.outputs["examples"], **options).with_id(
        "InferenceStatisticsGen"
    )
    gate = InferenceGate(statistics=statistics.outputs["statistics"], schema=schema).with_id("InferenceGate")
    return [example_gen, statistics, gate]


def _scoring(config: PipelineConfig, gate, node_id: str, kubeflow: bool) -> BatchInference:
    """Scoring the inference data with the version served when the node runs."""
    return BatchInference(
        serving_schema=gate.outputs["serving_schema"],
        serving_dir=config.serving_dir,
        data_root=config.inference_data,
        beam_args=json.dumps(list(config.beam_pipeline_args)),
        # A local run's cache must not answer for the served version, which a run may change; on Kubeflow the
        # compiler turns the task's cache off.
        run_token="" if kubeflow else str(time.time_ns()),
    ).with_id(node_id)


def runtime_parameter_defaults(config: PipelineConfig) -> dict[str, str]:
    """The Kubeflow runtime parameters' values the configuration implies: the data root and the Trainer's
    TrainArgs as JSON."""
    return {"data_root": config.data_dir, "train_args": json.dumps({"num_steps": config.train_steps})}


def create_pipeline(
    config: PipelineConfig, metadata_connection_config=None, kubeflow: bool = False, data_only: bool = False
) -> tfx_pipeline.Pipeline:
    """The pipeline of `config`; with `data_only`, its data stage alone (ingestion to Transform).

    With `kubeflow` (compiling for Kubeflow Pipelines): the data root and the Trainer's step budget become
    parameters of each run, defaulting to the configured values; the Evaluator's baseline comes from
    `ServedBaseline` instead of the latest-blessed-model Resolver, which self-hosted KFP cannot run.
    """
    data_root = config.data_dir
    train_args = trainer_pb2.TrainArgs(num_steps=config.train_steps)
    if kubeflow:
        defaults = runtime_parameter_defaults(config)
        data_root = RuntimeParameter(name="data_root", ptype=str, default=defaults["data_root"])
        train_args = RuntimeParameter(name="train_args", ptype=str, default=defaults["train_args"])
    if config.images is not None:
        example_gen = _image_example_gen(config, data_root)
    else:
        example_gen = _example_gen(config, data_root)
    fingerprint = _data_fingerprint(example_gen, data_root) if kubeflow else None
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = VersionedImportSchemaGen(
        schema_file=config.schema_path, schema_fingerprint=config.schema_fingerprint
    ).with_id("ImportSchemaGen")
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    data_gate = DataGate(
        anomalies=example_validator.outputs["anomalies"],
        schema=schema_gen.outputs["schema"],
        statistics=statistics_gen.outputs["statistics"],
        max_unlabelled_share=config.max_unlabelled_share,
    )
    drift_gate = DriftGate(
        statistics=statistics_gen.outputs["statistics"],
        schema=data_gate.outputs["validated_schema"],
        previous_statistics_uri=config.drift_baseline or "",
    )
    validated_schema = drift_gate.outputs["checked_schema"]

    code_config = {
        "labels": list(config.labels.items()),
        "code_fingerprint": config.code_fingerprint,
        # Recorded with the Trainer's execution: which spans a model learned from.
        "spans": list(config.span_range) if config.span_range else None,
        # Image data: what Transform decodes and the Trainer builds the model for.
        **({"images": config.images.to_dict()} if config.images else {}),
        # Transform: the columns that are no model input, and the vocabularies' size.
        "identifiers": list(config.identifiers),
        "max_vocabulary": config.max_vocabulary,
        # Transform: the date columns' formats, read in the graph into calendar features.
        **({"dates": dict(config.dates)} if config.dates else {}),
    }
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=validated_schema,
        preprocessing_fn=PREPROCESSING_FN,
        custom_config=code_config,
        # StatisticsGen has described the data already; Transform's own pre- and post-transform TFDV passes
        # would read the data twice more (15 of Transform's 100 s at 1M rows, bench/data_stage.py).
        disable_statistics=True,
        # No run reads an analyzer cache back (its `analyzer_cache` input is not wired), and producing one
        # costs a quarter of Transform's time on a small dataset (bench/RESULTS.md).
        disable_analyzer_cache=True,
    )
    data_stage = [
        *([fingerprint] if fingerprint else []),
        example_gen,
        statistics_gen,
        schema_gen,
        example_validator,
        data_gate,
        drift_gate,
        transform,
    ]
    if data_only:
        return _pipeline(config, data_stage, metadata_connection_config)
    if kubeflow:
        baseline = ServedBaseline(serving_dir=config.serving_dir).with_id(SERVED_BASELINE)
    else:
        baseline = Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=Model),
            model_blessing=Channel(type=ModelBlessing),
        ).with_id("latest_blessed_model_resolver")
    trainer_config = {
        **code_config,
        "trainer": config.trainer.to_dict(),
        "checkpoint_root": config.checkpoint_root,
    }
    tuner = None
    if config.tune:
        tuner = Tuner(
            tuner_fn=TUNER_FN,
            examples=transform.outputs["transformed_examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=validated_schema,
            train_args=trainer_pb2.TrainArgs(num_steps=config.tune_steps),
            eval_args=trainer_pb2.EvalArgs(num_steps=config.eval_steps),
            custom_config={**trainer_config, "tune_trials": config.tune_trials},
        )
    trainer_class = Trainer
    if config.vertex_training:
        # TFX 1.16 launches multi-worker training only through Vertex AI's training service.
        from tfx.extensions.google_cloud_ai_platform.trainer.component import Trainer as VertexTrainer

        trainer_class = VertexTrainer
        trainer_config = {**trainer_config, **config.vertex_training.custom_config()}
    trainer = trainer_class(
        run_fn=config.run_fn,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=validated_schema,
        # The Tuner's best values override the configured ones (see trainer_module.run.trainer_config).
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        base_model=baseline.outputs["model"] if config.trainer.warm_start else None,
        train_args=train_args,
        eval_args=trainer_pb2.EvalArgs(num_steps=config.eval_steps),
        custom_config=trainer_config,
    )

    # TFX's Evaluator, minus a baseline that holds no model (nothing served yet). With the schema, it decodes
    # only the columns it slices by and the labels it reads untransformed (components/evaluator.py).
    evaluator = BaselineAwareEvaluator(
        examples=example_gen.outputs["examples"],
        schema=validated_schema,
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(config),
    ).with_id("Evaluator")
    inference = _inference_data_nodes(config, schema_gen.outputs["schema"]) if config.inference_data else []
    blessed = evaluator.outputs["blessing"].future()[0].custom_property("blessed")
    with Cond(blessed == 1):
        serving_check = ServingCheck(
            model=trainer.outputs["model"],
            examples=example_gen.outputs["examples"],
            label_keys=json.dumps(config.served_without),
        )
        pusher = Pusher(
            # The serving check's copy of the model, with TF Serving warm-up requests added.
            infra_blessing=serving_check.outputs["blessing"],
            # Checked again by the Pusher itself: a model reaches serving only with both blessings.
            model_blessing=evaluator.outputs["blessing"],
            push_destination=pusher_pb2.PushDestination(
                filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=config.serving_dir)
            ),
            custom_executor_spec=executor_spec.ExecutorClassSpec(atomic_pusher.Executor),
            # The name TF Serving's models.config gives the model on object storage (components/pusher.py).
            custom_config={atomic_pusher.MODEL_NAME_KEY: config.pipeline_name},
        )
        if inference:
            # After the push: the new candidate is served (or was already).
            inference.append(_scoring(config, inference[2], BATCH_INFERENCE, kubeflow))
            inference[-1].add_upstream_node(pusher)
    if inference:
        # Refused: the version already served scores. Two conditional nodes rather than one after the
        # Pusher: KFP's Argo compiler starts a task only when its upstream tasks succeeded (`depends:
        # X.Succeeded`, backend/src/v2/compiler/argocompiler/dag.go), not when they were skipped.
        with Cond(blessed != 1):
            inference.append(_scoring(config, inference[2], BATCH_INFERENCE_SERVED, kubeflow))

    components = [
        *data_stage,
        *([tuner] if tuner else []),
        trainer,
        baseline,
        evaluator,
        serving_check,
        pusher,
    ]
    components += inference
    return _pipeline(config, components, metadata_connection_config)


def _data_fingerprint(example_gen, data_root) -> DataFingerprint:
    """Kubeflow: the fingerprint of what `example_gen` will read, computed at the start of every run (its
    task is compiled uncached) and passed to ExampleGen as a parameter, so that KFP's cache key of ExampleGen
    changes exactly when the data does (components/data_fingerprint.py)."""
    properties = example_gen.exec_properties

    def as_json(value) -> str:
        return value if isinstance(value, str) or value is None else proto_utils.proto_to_json(value)

    fingerprint = DataFingerprint(
        input_base=data_root,
        input_config=as_json(properties["input_config"]),
        range_config=as_json(properties.get("range_config")) or "",
    ).with_id(DATA_FINGERPRINT)
    properties[FINGERPRINT_PARAMETER] = fingerprint.outputs["fingerprint"].future()[0].value
    example_gen.add_upstream_node(fingerprint)
    return fingerprint


def _pipeline(config: PipelineConfig, components: list, metadata_connection_config) -> tfx_pipeline.Pipeline:
    return tfx_pipeline.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )
