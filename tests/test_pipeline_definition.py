"""create_pipeline's wiring: what guards what, and what goes into the cache keys. No run needed."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return PipelineConfig(output_root=str(tmp_path_factory.mktemp("def")))


def nodes(config):
    return {node.id: node for node in create_pipeline(config).components}


def custom_config(node) -> dict:
    return json.loads(node.exec_properties["custom_config"])


def test_transform_and_trainer_only_see_the_schema_the_gates_let_through(config):
    components = nodes(config)
    assert components["DriftGate"].inputs["schema"].producer_component_id == "DataGate"
    assert components["Transform"].inputs["schema"].producer_component_id == "DriftGate"
    assert components["Trainer"].inputs["schema"].producer_component_id == "DriftGate"


def test_code_fingerprint_is_in_transform_and_trainer_cache_keys(config):
    edited = dataclasses.replace(config, code_fingerprint="edited")
    for node_id in ("Transform", "Trainer"):
        assert custom_config(nodes(config)[node_id])["code_fingerprint"] == config.code_fingerprint
        assert custom_config(nodes(edited)[node_id])["code_fingerprint"] == "edited"
    assert "custom_config" not in nodes(config)["StatisticsGen"].exec_properties


def test_schema_contents_are_in_the_import_cache_key(config, tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "a" type: FLOAT }\n')
    first = nodes(dataclasses.replace(config, schema_path=str(schema)))["ImportSchemaGen"]
    schema.write_text('feature { name: "a" type: INT }\n')
    second = nodes(dataclasses.replace(config, schema_path=str(schema)))["ImportSchemaGen"]
    assert first.exec_properties["schema_file"] == second.exec_properties["schema_file"]
    assert first.exec_properties["schema_fingerprint"] != second.exec_properties["schema_fingerprint"]


def test_evaluator_thresholds_come_from_the_config(config):
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2 as tfma_config

    strict = dataclasses.replace(config, min_accuracy=0.95, max_accuracy_drop=0.02)
    eval_config = json_format.Parse(
        nodes(strict)["Evaluator"].exec_properties["eval_config"], tfma_config.EvalConfig()
    )
    (gate,) = eval_config.metrics_specs[1].metrics[0].per_slice_thresholds
    assert [list(s.feature_keys) for s in gate.slicing_specs] == [[]]  # the overall slice only
    threshold = gate.threshold
    assert threshold.value_threshold.lower_bound.value == 0.95
    assert threshold.change_threshold.absolute.value == pytest.approx(-0.02)
    assert [list(s.feature_keys) for s in eval_config.slicing_specs] == [[], ["island"]]


def parsed_eval_config(config):
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2 as tfma_config

    return json_format.Parse(
        nodes(config)["Evaluator"].exec_properties["eval_config"], tfma_config.EvalConfig()
    )


def test_a_two_headed_model_is_evaluated_and_gated_per_output(tmp_path):
    from pipeline.tasks import task_config

    config = task_config("penguin_multi", output_root=str(tmp_path))
    evaluated = parsed_eval_config(config)
    (model_spec,) = evaluated.model_specs
    # TFMA reads each output's predictions from the serving output of that name.
    assert dict(model_spec.label_keys) == {
        "species_probabilities": "species_xf",  # the class index from the transform graph
        "body_mass_g_predictions": "body_mass_g",  # grams, as served
    }
    gates = {
        (spec.output_names[0], metric.class_name): metric.per_slice_thresholds[0].threshold
        for spec in evaluated.metrics_specs
        for metric in spec.metrics
        if metric.per_slice_thresholds
    }
    assert (
        gates[("species_probabilities", "SparseCategoricalAccuracy")].value_threshold.lower_bound.value == 0.9
    )
    rmse = gates[("body_mass_g_predictions", "RootMeanSquaredError")]
    assert rmse.value_threshold.upper_bound.value == 450
    assert rmse.change_threshold.absolute.value == pytest.approx(25)

    components = nodes(config)
    labels = [["species", "classification"], ["body_mass_g", "regression"]]
    assert custom_config(components["Transform"])["labels"] == labels
    assert custom_config(components["Trainer"])["labels"] == labels
    assert json.loads(components["ServingCheck"].exec_properties["label_keys"]) == ["species", "body_mass_g"]


def test_pusher_needs_both_blessings_and_uses_the_atomic_executor(config):
    pusher = nodes(config)["Pusher"]
    assert pusher.inputs["model_blessing"].producer_component_id == "Evaluator"
    assert pusher.inputs["infra_blessing"].producer_component_id == "ServingCheck"
    assert "model" not in pusher.inputs  # it pushes the serving check's copy, warm-up requests included
    assert pusher.executor_spec.executor_class.__module__ == "components.pusher"


def test_vertex_training_runs_the_trainer_as_a_multi_worker_custom_job(config):
    from pipeline.config import VertexTraining
    from trainer_module.config import TrainerConfig

    vertex = VertexTraining(project="p", region="europe-west4", image="registry/penguin:1", workers=3)
    with pytest.raises(ValueError, match="needs trainer.strategy='multi_worker'"):
        dataclasses.replace(config, vertex_training=vertex)
    on_vertex = dataclasses.replace(
        config, vertex_training=vertex, trainer=TrainerConfig(strategy="multi_worker")
    )
    trainer = nodes(on_vertex)["Trainer"]
    assert trainer.executor_spec.executor_class.__module__.startswith(
        "tfx.extensions.google_cloud_ai_platform"
    )
    settings = custom_config(trainer)
    assert settings["ai_platform_enable_vertex"] is True
    assert settings["ai_platform_vertex_region"] == "europe-west4"
    job_spec = settings["ai_platform_training_args"]["job_spec"]
    pools = job_spec["worker_pool_specs"]
    assert [p["replica_count"] for p in pools] == [1, 2]  # the chief, then the other workers
    assert {p["container_spec"]["image_uri"] for p in pools} == {"registry/penguin:1"}
    assert settings["trainer"]["strategy"] == "multi_worker"
    # Synchronous training restarts as a whole when Vertex restarts one of its workers.
    assert job_spec["scheduling"] == {"restart_job_on_worker_restart": True}


def test_image_tasks_read_tfrecords_and_the_similarity_task_is_gated_on_pairs(tmp_path):
    from pipeline.tasks import task_config

    digits = nodes(task_config("digits", output_root=str(tmp_path)))
    assert "ImportExampleGen" in digits and "CsvExampleGen" not in digits
    assert json.loads(digits["ImportExampleGen"].exec_properties["output_config"])["split_config"]
    transform_config = custom_config(digits["Transform"])["images"]
    assert transform_config == {
        "feature": "image", "shape": [8, 8, 1], "resize": 32, "pair_feature": None, "pair_label": None
    }  # fmt: skip
    assert json.loads(digits["ServingCheck"].exec_properties["label_keys"]) == ["label"]

    pairs_config = task_config("digits_similarity", output_root=str(tmp_path))
    pairs = nodes(pairs_config)
    input_config = json.loads(pairs["ImportExampleGen"].exec_properties["input_config"])
    assert [(s["name"], s["pattern"]) for s in input_config["splits"]] == [
        ("train", "train/*"),
        ("eval", "eval/*"),
    ]
    assert json.loads(pairs["ServingCheck"].exec_properties["label_keys"]) == ["label", "same"]
    pair_eval = parsed_eval_config(pairs_config)
    assert (pair_eval.model_specs[0].label_key, pair_eval.model_specs[0].prediction_key) == (
        "same",
        "distance",
    )
    gated = [m for spec in pair_eval.metrics_specs for m in spec.metrics if m.per_slice_thresholds]
    assert [(m.class_name, m.module) for m in gated] == [("PairAccuracy", "trainer_module.metrics")]
