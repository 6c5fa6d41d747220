"""The SavedModel's signatures: what TF Serving calls and what the Evaluator calls."""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from trainer_module.features import CLASSIFICATION, LABEL_VOCABULARY, REGRESSION


def make_serving_signatures(
    model: tf.keras.Model,
    tf_transform_output: tft.TFTransformOutput,
    label_key: str,
    task: str = CLASSIFICATION,
) -> dict:
    """Returns `serving_default` and `transform_features`, both taking serialized tf.Examples.

    `serving_default` parses the raw features (the label is not expected) and applies the transform graph
    and the model. A classifier returns `probabilities`, the predicted `class_ids` and their names
    (`classes`); a regressor returns `predictions` in the label's units.
    `transform_features` returns the transformed features, label included, for TFMA's Evaluator.
    """
    # Attaching the layer to the model makes the SavedModel track the transform graph's resources.
    model.tft_layer = tf_transform_output.transform_features_layer()
    if task != REGRESSION:
        class_names = tf.constant(tf_transform_output.vocabulary_by_name(LABEL_VOCABULARY))

    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != label_key}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples(serialized):
        features = tf.io.parse_example(serialized, serving_spec)
        transformed = model.tft_layer(features)
        outputs = model(transformed)
        if task == REGRESSION:
            return {"predictions": outputs}
        # A model with an auxiliary head returns a dict; serving answers with the main head.
        probabilities = outputs["probabilities"] if isinstance(outputs, dict) else outputs
        class_ids = tf.argmax(probabilities, axis=1)
        return {
            "probabilities": probabilities,
            "class_ids": class_ids,
            "classes": tf.gather(class_names, class_ids),
        }

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(serialized):
        features = tf.io.parse_example(serialized, raw_spec)
        return model.tft_layer(features)

    return {"serving_default": serve_tf_examples, "transform_features": transform_features}
