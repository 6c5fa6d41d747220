"""The SavedModel's signatures: what TF Serving calls and what the Evaluator calls."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from trainer_module.features import (
    REGRESSION,
    SAME_CLASS_DISTANCE,
    ImageInput,
    label_vocabulary,
    output_key,
    safe_name,
    transformed_name,
)
from trainer_module.models import SIAMESE_BASE


def serving_feature_spec(raw_spec: dict, labels) -> dict:
    """What a serving request holds: every raw feature but the labels."""
    return {k: v for k, v in raw_spec.items() if k not in labels}


# Beside the SavedModel (TF Serving ignores it): what `python -m pipeline predict` needs to turn rows into the
# serving signature's tf.Examples and its outputs into columns, so that a pushed version describes itself.
PREDICTION_SPEC = "assets.extra/prediction_spec.json"
_FEATURE_TYPES = {tf.int64: "int", tf.float32: "float", tf.string: "bytes"}
# Every signature takes a batch of serialized tf.Examples. Their Python branches only on the model's labels
# and outputs, so they are traced as written (`autograph=False`); the model's layers are converted by Keras.
EXAMPLES = [tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")]


def prediction_spec(
    tf_transform_output: tft.TFTransformOutput,
    labels: dict[str, str],
    image: ImageInput | None = None,
    schema=None,
) -> dict:
    """The request's features (name -> int, float or bytes; `required` when a request must hold it: the
    parser needs it, or the schema (a TFMD Schema) requires it in every example), the labels with their
    tasks and class names (in the order of the `probabilities` output), whether the model scores pairs, and
    the schema's date columns with their formats."""
    raw_spec = tf_transform_output.raw_feature_spec()
    excluded = [*labels, image.pair_label] if image is not None and image.pair_feature else list(labels)
    serving_spec = serving_feature_spec(raw_spec, excluded)
    always_present = {
        feature.name
        for feature in (schema.feature if schema is not None else [])
        if feature.presence.min_fraction >= 1.0 and "SERVING" not in feature.not_in_environment
    }
    main_label = next(iter(labels))
    return {
        "features": {name: _FEATURE_TYPES[spec.dtype] for name, spec in sorted(serving_spec.items())},
        "required": sorted(
            name
            for name, spec in serving_spec.items()
            if (isinstance(spec, tf.io.FixedLenFeature) and spec.default_value is None)
            or name in always_present
        ),
        "labels": [[label, task] for label, task in labels.items()],
        "classes": {
            label: [
                value.decode()
                for value in tf_transform_output.vocabulary_by_name(
                    label_vocabulary(label, label == main_label)
                )
            ]
            for label, task in labels.items()
            if task != REGRESSION
        },
        "pairs": bool(image is not None and image.pair_feature),
        # Date and time columns and their formats: `predict` checks every value before scoring.
        "dates": {
            feature.name: feature.time_domain.string_format
            for feature in (schema.feature if schema is not None else [])
            if feature.time_domain.string_format and feature.name in serving_spec
        },
        # Image models read TFRecords of PNG examples (what `images` writes), not CSV.
        "image": None
        if image is None
        else {
            "feature": image.feature,
            "pair_feature": image.pair_feature,
            "pair_label": image.pair_label,
            "shape": list(image.shape),
        },
    }


def make_serving_signatures(
    model: tf.keras.Model,
    tf_transform_output: tft.TFTransformOutput,
    labels: dict[str, str],
    image: ImageInput | None = None,
) -> dict:
    """Returns `serving_default` and `transform_features`, both taking serialized tf.Examples.

    `serving_default` parses the raw features (no label is expected) and applies the transform graph and
    the model. A classification head returns `probabilities`, the predicted `class_ids` and their names
    (`classes`); a regression head returns `predictions` in the label's units. With several heads
    (`labels`: label -> task, the main one first), each output is prefixed with its label, e.g.
    `species_classes` and `body_mass_g_predictions`.
    `transform_features` returns the transformed features, labels included, for TFMA's Evaluator.
    A similarity model (`image` with a pair) has its own signatures, see `similarity_signatures`.
    """
    # Attaching the layer to the model makes the SavedModel track the transform graph's resources.
    model.tft_layer = tf_transform_output.transform_features_layer()
    main_label = next(iter(labels))
    class_names = {
        label: tf.constant(
            tf_transform_output.vocabulary_by_name(label_vocabulary(label, label == main_label))
        )
        for label, task in labels.items()
        if task != REGRESSION
    }
    raw_spec = tf_transform_output.raw_feature_spec()
    if image is not None and image.pair_feature:
        return similarity_signatures(model, raw_spec, labels, image)
    serving_spec = serving_feature_spec(raw_spec, labels)

    def head_outputs(label: str, task: str, output) -> dict:
        key = lambda name: output_key(label, name, prefixed=len(labels) > 1)  # noqa: E731
        if task == REGRESSION:
            return {key("predictions"): output}
        class_ids = tf.argmax(output, axis=1)
        return {
            key("probabilities"): output,
            key("class_ids"): class_ids,
            key("classes"): tf.gather(class_names[label], class_ids),
        }

    @tf.function(input_signature=EXAMPLES, autograph=False)
    def serve_tf_examples(serialized):
        features = tf.io.parse_example(serialized, serving_spec)
        outputs = model(model.tft_layer(features))
        if len(labels) == 1:
            # A model with an auxiliary head returns a dict; serving answers with the main head.
            ((label, task),) = labels.items()
            main = outputs["probabilities"] if isinstance(outputs, dict) else outputs
            return head_outputs(label, task, main)
        served = {}
        for label, task in labels.items():
            served.update(head_outputs(label, task, outputs[safe_name(label)]))
        return served

    @tf.function(input_signature=EXAMPLES, autograph=False)
    def transform_features(serialized):
        features = tf.io.parse_example(serialized, raw_spec)
        return model.tft_layer(features)

    return {"serving_default": serve_tf_examples, "transform_features": transform_features}


def similarity_signatures(model: tf.keras.Model, raw_spec: dict, labels: dict, image: ImageInput) -> dict:
    """A siamese model's signatures, each taking serialized tf.Examples:

    - `serving_default`: examples holding two PNGs (`image.feature`, `image.pair_feature`) -> `distance`
      [batch, 1] and `same` (1 where the distance is below SAME_CLASS_DISTANCE);
    - `embedding`: examples holding one PNG -> `embedding` [batch, units], the shared base's output;
    - `transform_features`, as for every model, for the Evaluator.
    """
    serving_spec = serving_feature_spec(raw_spec, [*labels, image.pair_label])
    names = [transformed_name(f) for f in image.image_features]
    base = model.get_layer(SIAMESE_BASE)

    @tf.function(input_signature=EXAMPLES, autograph=False)
    def distance(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        result = model({name: transformed[name] for name in names})
        return {"distance": result, "same": tf.cast(result < SAME_CLASS_DISTANCE, tf.int64)}

    @tf.function(input_signature=EXAMPLES, autograph=False)
    def embedding(serialized):
        features = tf.io.parse_example(serialized, {image.feature: raw_spec[image.feature]})
        return {"embedding": base(model.tft_layer(features)[names[0]])}

    @tf.function(input_signature=EXAMPLES, autograph=False)
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    return {"serving_default": distance, "embedding": embedding, "transform_features": transform_features}
