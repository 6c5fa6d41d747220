"""How evaluation failures read in the run summary."""

from __future__ import annotations

from google.protobuf import text_format
from tensorflow_model_analysis.proto import config_pb2 as tfma_config
from tensorflow_model_analysis.proto import validation_result_pb2

from pipeline.results import _describe_failure


def failure(text: str):
    return text_format.Parse(text, validation_result_pb2.ValidationFailure())


def test_value_threshold_failure_names_metric_value_and_bound():
    described = _describe_failure(
        failure(
            """metric_key { name: "sparse_categorical_accuracy" }
               metric_threshold { value_threshold { lower_bound { value: 0.9 } } }
               metric_value { double_value { value: 0.41234 } }"""
        )
    )
    assert described == "sparse_categorical_accuracy = 0.4123, needs >= 0.9"


def test_change_threshold_failure_names_the_comparison_with_the_baseline():
    direction = tfma_config.MetricDirection.Name(tfma_config.MetricDirection.LOWER_IS_BETTER)
    described = _describe_failure(
        failure(
            f"""metric_key {{ name: "root_mean_squared_error" is_diff: true }}
               metric_threshold {{ change_threshold {{ direction: {direction} absolute {{ value: 25.0 }} }} }}
               metric_value {{ double_value {{ value: 40.5 }} }}"""
        )
    )
    assert described == "root_mean_squared_error change vs baseline +40.5000, needs <= +25.0000"
