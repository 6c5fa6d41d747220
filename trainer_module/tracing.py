"""AutoGraph leaves tf_keras's and tf.Transform's own code as written.

TensorFlow's AutoGraph rewrites the Python of every function a `tf.function` calls, unless a rule names its
package. Its rules name `keras` (Keras 2 before it left TensorFlow), whose code needs no rewriting, but not
`tf_keras`, the same Keras 2 under the package TFX 1.16 needs. Without the rule every training, evaluation
and serving function traced through tf_keras (`train_step`, the compiled losses and metrics, the optimizer,
`Layer.__call__`) is parsed and rewritten first: 14 of a default Trainer's 20 seconds (py-spy; bench/
RESULTS.md). With it tf_keras runs unconverted, as Keras did inside TensorFlow: the project's own layers,
losses and metrics are still converted, by Keras itself. Later TensorFlow releases carry the same rule (the
next stack's TensorFlow 2.21 does), where this adds nothing for tf_keras.

tf.Transform's code is written to be traced unconverted (it traces its own functions with
`autograph=False`, and runs under TensorFlow 1's graph mode, which has no AutoGraph), but its Keras layer,
`TFTransformOutput.transform_features_layer()`, called from the model's serving signatures, is rewritten
with them: another second of a default Trainer.
"""

from __future__ import annotations

from tensorflow.python.autograph.core import config as autograph_config

UNCONVERTED_PACKAGES = ("tf_keras", "tensorflow_transform")


def leave_libraries_unconverted() -> None:
    """Adds AutoGraph's rule for each of UNCONVERTED_PACKAGES that no rule names yet (idempotent)."""
    rules = autograph_config.CONVERSION_RULES
    missing = [
        package for package in UNCONVERTED_PACKAGES if not any(rule.matches(package) for rule in rules)
    ]
    autograph_config.CONVERSION_RULES = (*(autograph_config.DoNotConvert(p) for p in missing), *rules)
