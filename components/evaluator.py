"""The Evaluator's executor, minus a baseline that holds no model (see components/served_baseline.py) or
that is the candidate itself.

The second run after a model is blessed finds that model as the latest blessed one while its Trainer is
cached: candidate and baseline are the same artifact. Comparing a model with itself can only pass and
doubles TFMA's work, so it is evaluated once, on the absolute thresholds it passed before.
"""

from absl import logging
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import path_utils

BASELINE = standard_component_specs.BASELINE_MODEL_KEY


def holds_model(model) -> bool:
    return fileio.exists(f"{path_utils.serving_model_path(model.uri)}/saved_model.pb")


class Executor(evaluator_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):
        candidate = input_dict[standard_component_specs.MODEL_KEY][0].uri
        baselines = [m for m in input_dict.get(BASELINE, []) if holds_model(m) and m.uri != candidate]
        if input_dict.get(BASELINE) and not baselines:
            logging.info("No other blessed model to compare with: evaluating without a baseline")
        input_dict = {**input_dict, BASELINE: baselines}
        super().Do(input_dict, output_dict, exec_properties)


class Evaluator(evaluator_component.Evaluator):
    """TFX's Evaluator with the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
