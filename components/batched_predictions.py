"""The Evaluator's inference: each model loaded once and called by its input's name, on larger batches.

TFX's Evaluator reads the evaluation split as Arrow record batches of at most 1,000 rows (tfx_bsl's
`batch_util._BATCH_SIZE_CAP`), and TFMA's default extractors run each model in two steps: its
TransformedFeaturesExtractor and its PredictionsExtractor (`model_util.ModelSignaturesDoFn`, each loading
the model) call a signature positionally, `signature(tf.constant(examples))`. A SavedModel's signature takes
keyword arguments only, so TensorFlow first tries to bind the call to the structured signature and fails,
formatting the whole batch as text for the error it then discards, before falling back to the flat
signature: in a 1M-row run's Evaluator with a baseline, a quarter of its time (bench/RESULTS.md).

Here the examples come in batches of `BATCH_ROWS` (components/evaluator.py reads them so), and one
extractor in the place of TFMA's transformed-features extractor loads each model once and calls its
preprocessing functions and its serving signature with the serialized examples as the signature's one named
input (`_ModelOutputs`). Its outputs are TFMA's: the same densification (`model_util._to_dense_outputs`),
keys and per-model nesting as the two extractors it replaces, so TFMA's labels extractor, slicing and
metrics read them unchanged. Models whose signatures take anything but one string tensor, or other model
types, keep TFMA's extractors (`serves_examples`).
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow.core.framework import types_pb2
from tensorflow.python.saved_model import loader_impl
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import extractor
from tensorflow_model_analysis.utils import model_util, util

from components.batched_metrics import UNBATCHING_STAGES

# Rows per batch of the evaluation: large enough that the per-call costs (a signature's dispatch, a Keras
# metric's update) are small against the work on the rows, small enough to stay a few MiB.
BATCH_ROWS = 10_000
# TFMA's stages that this module's extractor replaces.
TRANSFORMED_FEATURES_STAGE = "ExtractTransformedFeatures"
PREDICTIONS_STAGE = "ExtractPredictions"
STAGE = "ExtractTransformedFeaturesAndPredictions"


def _signature_names(spec, model_path: str) -> list[str]:
    return [*spec.preprocessing_function_names, spec.signature_name or _default_signature(model_path)]


def _default_signature(model_path: str) -> str:
    return model_util.get_default_signature_name_from_model_path(model_path)


def _model_for(spec, eval_shared_models: list):
    """The shared model of a model spec: the only one, else the one of the spec's name (None if none)."""
    if len(eval_shared_models) == 1:
        return eval_shared_models[0]
    return next((m for m in eval_shared_models if m.model_name == spec.name), None)


def serves_examples(eval_config, eval_shared_models: list) -> bool:
    """Whether every model is a TensorFlow SavedModel whose preprocessing functions (named, as the
    pipeline's ModelSpec names them) and serving signature each take one string tensor: the serialized
    examples."""
    for spec in eval_config.model_specs:
        model = _model_for(spec, eval_shared_models)
        if model is None or model.model_type not in (constants.TF_KERAS, constants.TF_GENERIC):
            return False
        names = list(spec.preprocessing_function_names)
        if not names or any("@" in name for name in names):
            return False
        proto = loader_impl.parse_saved_model(model.model_path)
        for name in _signature_names(spec, model.model_path):
            try:
                inputs = model_util.get_signature_def_from_saved_model_proto(name, proto).inputs
            except ValueError:
                return False
            if len(inputs) != 1 or next(iter(inputs.values())).dtype != types_pb2.DT_STRING:
                return False
    return True


def extractors(eval_config, eval_shared_model, tensor_adapter_config, by_name: bool = True) -> list:
    """TFMA's default extractors without its unbatching and per-example slicing; `by_name`: with its two
    model steps replaced by `_ModelOutputs` (for models that `serves_examples`)."""
    found = []
    for e in tfma.default_extractors(
        eval_shared_model=eval_shared_model,
        eval_config=eval_config,
        tensor_adapter_config=tensor_adapter_config,
    ):
        if by_name and e.stage_name == TRANSFORMED_FEATURES_STAGE:
            found.append(model_outputs_extractor(eval_config, eval_shared_model))
        elif not (by_name and e.stage_name == PREDICTIONS_STAGE) and e.stage_name not in UNBATCHING_STAGES:
            found.append(e)
    return found


def model_outputs_extractor(eval_config, eval_shared_model) -> extractor.Extractor:
    models = model_util.verify_and_update_eval_shared_models(eval_shared_model)
    return extractor.Extractor(
        stage_name=STAGE,
        ptransform=beam.ParDo(_ModelOutputs(eval_config, models)),
    )


def _call(signature, examples: tf.Tensor, batch_size: int, name: str) -> dict:
    """The signature on the serialized examples by its one input's name; outputs as TFMA densifies them."""
    (input_name,) = signature.structured_input_signature[1]
    return model_util._to_dense_outputs(signature(**{input_name: examples}), batch_size, name)


class _ModelOutputs(beam.DoFn):
    """Per batch and model: the preprocessing functions' outputs under tfma.TRANSFORMED_FEATURES_KEY (as
    TFMA's TransformedFeaturesExtractor: always a dict) and the serving signature's under
    tfma.PREDICTIONS_KEY (as its PredictionsExtractor: one output unwrapped); several models nested by
    name, one not (as ModelSignaturesDoFn names them). Each model is loaded as a SavedModel, as TF Serving
    loads it (TFMA loads a Keras model with Keras, reviving its layers, which takes about twice as long,
    and uses only its signatures)."""

    def __init__(self, eval_config, eval_shared_models: list):
        self._models = []
        for spec in eval_config.model_specs:
            model = _model_for(spec, eval_shared_models)
            name = spec.name if len(eval_config.model_specs) > 1 else ""
            tags = model.model_loader.tags
            self._models.append((name, model.model_path, tags, _signature_names(spec, model.model_path)))

    def setup(self):
        self._loaded = {name: tf.saved_model.load(path, tags=tags) for name, path, tags, _ in self._models}

    def process(self, extract):
        size = util.batch_size(extract)
        examples = tf.constant(np.asarray(extract[constants.INPUT_KEY]).reshape(-1), tf.string)
        transformed, predictions = {}, {}
        for name, _, _, (*preprocessing, serving) in self._models:
            signatures = self._loaded[name].signatures
            transformed[name] = {}
            for function in preprocessing:
                transformed[name].update(_call(signatures[function], examples, size, function))
            outputs = _call(signatures[serving], examples, size, serving)
            predictions[name] = next(iter(outputs.values())) if len(outputs) == 1 else outputs
        if "" in transformed:
            transformed, predictions = transformed[""], predictions[""]
        extract = util.copy_and_set_by_keys(extract, [constants.TRANSFORMED_FEATURES_KEY], transformed)
        yield util.copy_and_set_by_keys(extract, [constants.PREDICTIONS_KEY], predictions)
