"""Configuration dataclasses: validation, derived paths, the epoch split of the step budget."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.config import PipelineConfig
from trainer_module.config import TrainerConfig
from trainer_module.features import ImageInput


def test_paths_derive_from_the_output_root():
    config = PipelineConfig(output_root="/x/out")
    assert config.pipeline_root == "/x/out/pipeline"
    assert config.metadata_path == "/x/out/metadata.sqlite"
    assert config.serving_dir == "/x/out/serving_model"
    assert config.data_dir == "/x/out/data/penguin"
    assert config.uses_default_data
    assert PipelineConfig(data_root="/mine").data_dir == "/mine"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("train_steps", 0, "train_steps must be positive, got 0"),
        ("eval_steps", -1, "eval_steps must be positive, got -1"),
        ("min_accuracy", 1.5, r"min_accuracy must be within \[0, 1\], got 1.5"),
        ("max_accuracy_drop", -0.1, "max_accuracy_drop must be >= 0, got -0.1"),
        # A time-zone offset is not read in the graph: refused before anything runs.
        (
            "dates",
            (("seen", "%Y-%m-%dT%H:%M:%S%z"),),
            r"column seen: date format '%Y-%m-%dT%H:%M:%S%z' has a directive that is not read in the graph "
            r"\(only %Y %m %d %H %M %S\): change the schema's time_domain.string_format or remove it",
        ),
    ],
)
def test_invalid_pipeline_values_name_the_field_and_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(PipelineConfig(), **{field: value})


@pytest.mark.parametrize(
    "field, value",
    [("hidden_units", ()), ("hidden_units", (8, 0)), ("batch_size", 0), ("learning_rate", 0.0)],
)
def test_invalid_trainer_values_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        TrainerConfig(**{field: value})


@pytest.mark.parametrize(
    "train_steps, steps_per_epoch, expected",
    [(300, 50, (6, 50)), (1, 50, (1, 1)), (120, 50, (3, 40)), (50, 50, (1, 50))],
)
def test_step_budget_is_split_into_whole_epochs(train_steps, steps_per_epoch, expected):
    epochs, per_epoch = TrainerConfig(steps_per_epoch=steps_per_epoch).epochs_for(train_steps)
    assert (epochs, per_epoch) == expected
    assert train_steps <= epochs * per_epoch < train_steps + epochs


def test_trainer_config_round_trips_through_custom_config():
    config = TrainerConfig(hidden_units=(4, 2), learning_rate=0.5)
    assert TrainerConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "model",
            "transformer",
            "unknown model 'transformer'; valid choices: mlp, quadratic_mlp, wide_and_deep",
        ),
        ("loss", "hinge", "unknown loss 'hinge'; valid choices: auto, sparse_categorical_crossentropy, mse"),
        ("optimizer", "adagrad", "unknown optimizer 'adagrad'; valid choices: adam, sgd, rmsprop"),
        ("loop", "estimator", "unknown loop 'estimator'; valid choices: fit, custom"),
        (
            "strategy",
            "tpu",
            "unknown strategy 'tpu'; valid choices: default, one_device, mirrored, multi_worker",
        ),
    ],
)
def test_unknown_names_fail_at_construction_listing_the_choices(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainerConfig(**{field: value})


# Hand-computed: errors 0.5, -3, 2 (mean square 13.25 / 3); Huber with threshold 2: 0.125, 2 * (3 - 1), 2;
# contrastive (margin 1): a similar pair at 0.5 -> 0.25, different pairs at 0.2 -> 0.64 and at 1.5 -> 0;
# crossentropy: -(ln 0.5 + ln 0.6) / 2.
REGRESSION_CASE = ([[0.0], [0.0], [0.0]], [[0.5], [-3.0], [2.0]])
LOSS_VALUES = {
    ("auto", "regression"): (REGRESSION_CASE, 13.25 / 3),
    ("mse", "regression"): (REGRESSION_CASE, 13.25 / 3),
    ("huber", "regression"): (REGRESSION_CASE, 6.125 / 3),
    ("huber_fn", "regression"): (REGRESSION_CASE, 6.125 / 3),
    ("rmse", "regression"): (REGRESSION_CASE, (13.25 / 3) ** 0.5),
    ("contrastive", "similarity"): (([1.0, 0.0, 0.0], [0.5, 0.2, 1.5]), 0.89 / 3),
    ("auto", "classification"): (([0, 2], [[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]), 0.6019864),
    ("sparse_categorical_crossentropy", "classification"): (
        ([0, 2], [[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]),
        0.6019864,
    ),
}


@pytest.mark.parametrize("name, task", list(LOSS_VALUES), ids=[f"{n}-{t}" for n, t in LOSS_VALUES])
def test_every_named_loss_gives_its_value_on_a_known_input(name, task):
    import tensorflow as tf

    from trainer_module.config import LOSSES
    from trainer_module.optimization import build_loss

    assert {n for n, _ in LOSS_VALUES} == set(LOSSES)
    loss = build_loss(TrainerConfig(loss=name, huber_threshold=2.0), task)
    (y_true, y_pred), expected = LOSS_VALUES[name, task]
    value = tf.reduce_mean(loss(tf.constant(y_true), tf.constant(y_pred)))
    assert float(value) == pytest.approx(expected, rel=1e-5)


# One step from w = 1 on the loss w^2 (gradient 2), learning rate 0.1: SGD 1 - 0.1 * 2; Adam's first step is
# the learning rate times the gradient's sign; RMSprop (rho 0.9): 1 - 0.1 * 2 / sqrt(0.1 * 2^2).
OPTIMIZER_STEPS = {"sgd": 0.8, "adam": 0.9, "rmsprop": 1 - 0.2 / 0.4**0.5}


@pytest.mark.parametrize("name", list(OPTIMIZER_STEPS))
def test_every_named_optimizer_takes_its_step(name):
    import tensorflow as tf

    from trainer_module.config import OPTIMIZERS
    from trainer_module.optimization import build_optimizer

    assert set(OPTIMIZER_STEPS) == set(OPTIMIZERS)
    optimizer = build_optimizer(TrainerConfig(optimizer=name, learning_rate=0.1))
    assert float(optimizer.learning_rate) == pytest.approx(0.1)
    w = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        loss = w * w
    optimizer.apply_gradients([(tape.gradient(loss, w), w)])
    assert float(w) == pytest.approx(OPTIMIZER_STEPS[name], rel=1e-5)


def test_a_model_the_pipeline_cannot_train_fails_at_construction():
    with pytest.raises(
        ValueError,
        match="model 'resnet' is not one the tabular pipeline trains; valid choices: mlp, quadratic",
    ):
        PipelineConfig(trainer=TrainerConfig(model="resnet"))
    images = ImageInput(resize=32)
    with pytest.raises(
        ValueError, match="model 'wide_and_deep' is not one the image pipeline trains; .*resnet"
    ):
        PipelineConfig(images=images, trainer=TrainerConfig(model="wide_and_deep"))
    pairs = ImageInput(pair_feature="other_image", pair_label="same")
    with pytest.raises(
        ValueError, match="model 'resnet' is not one the similarity pipeline trains; .*siamese"
    ):
        PipelineConfig(images=pairs, trainer=TrainerConfig(model="resnet"))
    config = PipelineConfig(images=pairs, trainer=TrainerConfig(model="siamese"), label_key="label")
    assert config.is_similarity and config.served_without == ["label", "same"]


def test_a_second_label_and_the_multi_output_model_go_together():
    with pytest.raises(ValueError, match="multi_output' and a second label go together"):
        PipelineConfig(second_label_key="body_mass_g")
    with pytest.raises(ValueError, match="multi_output' and a second label go together"):
        PipelineConfig(trainer=TrainerConfig(model="multi_output"))
    with pytest.raises(ValueError, match="must differ"):
        PipelineConfig(second_label_key="species", trainer=TrainerConfig(model="multi_output"))
    config = PipelineConfig(second_label_key="body_mass_g", trainer=TrainerConfig(model="multi_output"))
    assert config.labels == {"species": "classification", "body_mass_g": "regression"}
    assert list(config.labels) == ["species", "body_mass_g"]  # the main label first


@pytest.mark.parametrize("loss", ["rmse", "contrastive"])
def test_a_per_batch_loss_is_refused_where_it_would_train_wrong(loss):
    from trainer_module.config import TrainerConfig

    with pytest.raises(ValueError, match=f"loss '{loss}' gives one value per batch, not per example"):
        TrainerConfig(loss=loss, loop="custom")
    for strategy in ("mirrored", "multi_worker"):
        with pytest.raises(ValueError, match=f"under strategy '{strategy}' each replica"):
            TrainerConfig(loss=loss, strategy=strategy)
    assert TrainerConfig(loss=loss, loop="fit", strategy="one_device").loss == loss
