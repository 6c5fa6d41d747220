"""AutoGraph leaves tf_keras's own code as written.

TensorFlow's AutoGraph rewrites the Python of every function a `tf.function` calls, unless a rule names its
package. Its rules name `keras` (Keras 2 before it left TensorFlow), whose code needs no rewriting, but not
`tf_keras`, the same Keras 2 under the package TFX 1.16 needs. Without the rule every training, evaluation
and serving function traced through tf_keras (`train_step`, the compiled losses and metrics, the optimizer,
`Layer.__call__`) is parsed and rewritten first: 14 of a default Trainer's 20 seconds (py-spy; bench/
RESULTS.md). With it tf_keras runs unconverted, as Keras did inside TensorFlow: the project's own layers,
losses and metrics are still converted, by Keras itself. Later TensorFlow releases carry the same rule (the
next stack's TensorFlow 2.21 does), where this adds nothing.
"""

from __future__ import annotations

from tensorflow.python.autograph.core import config as autograph_config

KERAS_PACKAGE = "tf_keras"


def leave_keras_unconverted() -> None:
    """Adds AutoGraph's rule for tf_keras, unless a rule for it is there already (idempotent)."""
    rules = autograph_config.CONVERSION_RULES
    if not any(rule.matches(KERAS_PACKAGE) for rule in rules):
        autograph_config.CONVERSION_RULES = (autograph_config.DoNotConvert(KERAS_PACKAGE), *rules)
