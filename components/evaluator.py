"""The Evaluator's executor: TFX's, its metrics computed from TFMA's batches (components/batched_metrics.py),
minus a baseline that holds no model (see components/served_baseline.py) or that is the candidate itself.

TFX's executor reads the examples, loads the models, runs `tfma.ExtractEvaluateAndWriteResults` and blesses
from the validation result TFMA wrote; `Do` runs it with that transform given TFMA's batched extractors (the
models' steps by components/batched_predictions.py) and the batched metrics evaluator, and with TFX's
examples reader reading by the batch (components/batched_examples.py: 10,000 examples a batch, and, given
the schema, only the columns the evaluation slices by or reads as labels, the models taking the serialized
examples); executors run one at a time in a process. Everything else, the blessing and its custom
properties included, is TFX's own. An evaluation the batched evaluator does not cover runs on TFMA's own
evaluator, reading by the batch all the same.

The second run after a model is blessed finds that model as the latest blessed one while its Trainer is
cached: candidate and baseline are the same artifact. Comparing a model with itself can only pass and
doubles TFMA's work, so it is evaluated once, on the absolute thresholds it passed before.
"""

import functools
from unittest import mock

import tensorflow_model_analysis as tfma
from absl import logging
from tensorflow_model_analysis.api import model_eval_lib
from tensorflow_model_analysis.utils import model_util
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import path_utils, proto_utils

from components import batched_metrics, batched_predictions
from components.batched_examples import batched

BASELINE = standard_component_specs.BASELINE_MODEL_KEY
_EXTRACT_EVALUATE_AND_WRITE = tfma.ExtractEvaluateAndWriteResults
_TFXIO_UTILS = evaluator_executor.tfxio_utils
_TFXIO_FACTORY = _TFXIO_UTILS.get_tfxio_factory_from_artifact


# The evaluation's custom property: "batches" when its metrics were computed from TFMA's batches, "examples"
# when TFMA computed them example by example (an evaluation the batched evaluator does not cover).
METRICS_FROM = "metrics_computed_from"


def batched_extract_evaluate_and_write(
    eval_shared_model=None, eval_config=None, extractors=None, decided=None, **kwargs
):
    """tfma.ExtractEvaluateAndWriteResults with TFMA's extractors left batched and the batched metrics
    evaluator, where it covers `eval_config`; what it chose is appended to `decided`. Batched, the models run
    by components/batched_predictions.py where their signatures take serialized examples."""
    chose = "examples"
    if extractors is None and eval_config is not None and not kwargs.get("evaluators"):
        eval_config = model_eval_lib._update_eval_config_with_defaults(eval_config, eval_shared_model)
        if batched_metrics.supported(eval_config):
            models = model_util.verify_and_update_eval_shared_models(eval_shared_model)
            adapter = kwargs.get("tensor_adapter_config")
            by_name = batched_predictions.serves_examples(eval_config, models)
            extractors = batched_predictions.extractors(eval_config, eval_shared_model, adapter, by_name)
            names = [m.model_name for m in models]
            evaluator = batched_metrics.batched_evaluator(eval_config, names, extractors[-1].stage_name)
            kwargs["evaluators"] = [evaluator]
            chose = "batches"
        else:
            logging.info("Evaluator: metrics TFMA computes example by example")
    if decided is not None:
        decided.append(chose)
    return _EXTRACT_EVALUATE_AND_WRITE(
        eval_shared_model=eval_shared_model, eval_config=eval_config, extractors=extractors, **kwargs
    )


def batched_tfxio_factory(*args, columns: set[str] | None = None, **kwargs):
    """tfxio_utils.get_tfxio_factory_from_artifact, its TFXIOs reading by the batch (TensorFlow's reader,
    components/batched_examples.py) in batches of batched_predictions.BATCH_ROWS examples, and decoding
    only `columns` of the examples where given (the models take the serialized examples), by TensorFlow's
    parser (batched_examples.ColumnsDecoder)."""
    factory = _TFXIO_FACTORY(*args, **kwargs)

    def tfxio(pattern):
        found = batched(factory(pattern), batch_size=batched_predictions.BATCH_ROWS, parse_columns=True)
        if columns is None:
            return found
        return found.Project(sorted(columns & set(found.TensorRepresentations())))

    return tfxio


def columns_read(input_dict: dict, exec_properties: dict) -> set[str] | None:
    """The examples' columns the batched evaluation reads besides the models' inputs; None where TFMA's own
    evaluator runs. The evaluation config as TFX's executor completes it."""
    text = exec_properties.get(standard_component_specs.EVAL_CONFIG_KEY)
    if not text:
        return None
    config = proto_utils.json_to_proto(text, tfma.EvalConfig())
    config = tfma.utils.update_eval_config_with_defaults(
        config, has_baseline=bool(input_dict.get(BASELINE)), rubber_stamp=True
    )
    return batched_metrics.raw_columns(config) if batched_metrics.supported(config) else None


def holds_model(model) -> bool:
    return fileio.exists(f"{path_utils.serving_model_path(model.uri)}/saved_model.pb")


def without_empty_baseline(input_dict: dict) -> dict:
    """The Evaluator's inputs without a baseline that holds no model or is the candidate itself."""
    candidate = input_dict[standard_component_specs.MODEL_KEY][0].uri
    baselines = [m for m in input_dict.get(BASELINE, []) if holds_model(m) and m.uri != candidate]
    if input_dict.get(BASELINE) and not baselines:
        logging.info("No other blessed model to compare with: evaluating without a baseline")
    return {**input_dict, BASELINE: baselines}


class Executor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):
        input_dict = without_empty_baseline(input_dict)
        decided = []
        transform = functools.partial(batched_extract_evaluate_and_write, decided=decided)
        factory = functools.partial(batched_tfxio_factory, columns=columns_read(input_dict, exec_properties))
        with (
            mock.patch.object(tfma, "ExtractEvaluateAndWriteResults", transform),
            mock.patch.object(_TFXIO_UTILS, "get_tfxio_factory_from_artifact", factory),
        ):
            super().Do(input_dict, output_dict, exec_properties)
        evaluation = output_dict[standard_component_specs.EVALUATION_KEY][0]
        evaluation.set_string_custom_property(METRICS_FROM, decided[0] if decided else "examples")


class Evaluator(evaluator_component.Evaluator):
    """TFX's Evaluator with the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
