"""Every catalogue model: output shapes, learning on tiny data, config and SavedModel round trips."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.constructor_config import assert_config_holds_the_constructor_arguments
from trainer_module.losses import ContrastiveLoss
from trainer_module.models import (
    VGG,
    Block,
    IdentityBlock,
    ResNet,
    WideAndDeep,
    build_multi_output_model,
    build_siamese_network,
)

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(32, 8, 8, 1)).astype("float32")
IMAGE_LABELS = (IMAGES.mean(axis=(1, 2, 3)) > 0).astype("int64")  # brighter than average or not
TABLE = RNG.normal(size=(64, 4)).astype("float32")


def image_pairs():
    left, right = IMAGES[:16], IMAGES[16:]
    same = (IMAGE_LABELS[:16] == IMAGE_LABELS[16:]).astype("float32")
    return [left, right], same


CASES = {
    "multi_output": dict(
        build=lambda: build_multi_output_model(4, units=16, branch_units=8),
        compile=dict(loss={"y1_output": "mse", "y2_output": "mse"}),
        x=TABLE,
        y={"y1_output": TABLE.sum(axis=1, keepdims=True), "y2_output": TABLE[:, :1] * 2},
        shapes=[(64, 1), (64, 1)],
    ),
    "wide_and_deep_classifier": dict(
        build=lambda: WideAndDeep(units=16, output_units=3, output_activation="softmax"),
        compile=dict(loss=["sparse_categorical_crossentropy"] * 2),
        x=(TABLE[:, :2], TABLE[:, 2:]),
        y=[np.argmax(TABLE[:, :3], axis=1)] * 2,
        shapes=[(64, 3), (64, 3)],
    ),
    "wide_and_deep_regressor": dict(
        build=lambda: WideAndDeep(units=16),
        compile=dict(loss=["mse", "mse"]),
        x=(TABLE[:, :2], TABLE[:, 2:]),
        y=[TABLE.sum(axis=1, keepdims=True)] * 2,
        shapes=[(64, 1), (64, 1)],
    ),
    "resnet": dict(
        build=lambda: ResNet(num_classes=2, filters=8, blocks=2),
        compile=dict(loss="sparse_categorical_crossentropy"),
        x=IMAGES,
        y=IMAGE_LABELS,
        shapes=[(32, 2)],
    ),
    "vgg": dict(
        build=lambda: VGG(num_classes=2, blocks=((8, 3, 2), (16, 3, 2)), dense_units=16),
        compile=dict(loss="sparse_categorical_crossentropy"),
        x=IMAGES,
        y=IMAGE_LABELS,
        shapes=[(32, 2)],
    ),
    "siamese": dict(
        build=lambda: build_siamese_network((8, 8, 1), units=16, dropout=0.0),
        compile=dict(loss=ContrastiveLoss(margin=1.0)),
        x=image_pairs()[0],
        y=image_pairs()[1],
        shapes=[(16, 1)],
    ),
}


def as_list(outputs):
    return [o.numpy() for o in outputs] if isinstance(outputs, list | tuple) else [outputs.numpy()]


@pytest.fixture(scope="module", params=list(CASES))
def trained(request):
    case = CASES[request.param]
    tf.keras.utils.set_random_seed(1)
    model = case["build"]()
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), **case["compile"])
    initial = model.evaluate(case["x"], case["y"], verbose=0, return_dict=True)["loss"]
    model.fit(case["x"], case["y"], epochs=40, batch_size=16, verbose=0)
    final = model.evaluate(case["x"], case["y"], verbose=0, return_dict=True)["loss"]
    return request.param, case, model, initial, final


def test_training_halves_the_loss(trained):
    name, _, _, initial, final = trained
    assert final <= initial / 2, f"{name}: {initial:.4f} -> {final:.4f}"


def test_output_shapes(trained):
    _, case, model, _, _ = trained
    assert [o.shape for o in as_list(model(case["x"]))] == case["shapes"]


def test_saved_model_round_trip_gives_equal_outputs(trained, tmp_path):
    _, case, model, _, _ = trained
    model.save(tmp_path / "model", save_format="tf")
    loaded = tf.keras.models.load_model(tmp_path / "model")
    for before, after in zip(as_list(model(case["x"])), as_list(loaded(case["x"])), strict=True):
        np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "cls, arguments",
    [(WideAndDeep, {"units": 7, "hidden_layers": 3, "output_units": 2, "output_activation": "softmax"}),
     (IdentityBlock, {"filters": 4, "kernel_size": 5, "momentum": 0.9}),
     (ResNet, {"num_classes": 5, "filters": 8, "blocks": 3, "kernel_size": 5, "momentum": 0.9}),
     (Block, {"filters": 8, "kernel_size": 5, "repetitions": 3, "pool_size": 3, "strides": 1}),
     (VGG, {"num_classes": 4, "blocks": ((8, 3, 1),), "dense_units": 8})],
    ids=["WideAndDeep", "IdentityBlock", "ResNet", "Block", "VGG"],
)  # fmt: skip
def test_subclassed_config_holds_every_constructor_argument(cls, arguments):
    assert_config_holds_the_constructor_arguments(cls, **arguments)


def test_identity_block_keeps_the_shape():
    assert IdentityBlock(filters=4)(tf.zeros((2, 6, 6, 4))).shape == (2, 6, 6, 4)


def test_vgg_block_count_is_configurable_for_small_images():
    x = tf.zeros((1, 8, 8, 1))
    assert VGG(num_classes=3, blocks=((4, 3, 1), (4, 3, 1)), dense_units=4)(x).shape == (1, 3)
    assert Block(4, 3, 2)(x).shape == (1, 4, 4, 4)


def test_siamese_branches_share_one_base():
    model = build_siamese_network((8, 8, 1), units=4)
    base = model.get_layer("siamese_base")
    distance = model([IMAGES[:3], IMAGES[:3]]).numpy()
    np.testing.assert_allclose(distance, np.sqrt(tf.keras.backend.epsilon()), rtol=1e-3)  # same image: ~0
    # One base called on both inputs: two calls of one layer, and its weights are all the model has (two
    # bases would double them).
    assert len(base.inbound_nodes) == 2
    assert [w.ref() for w in model.trainable_weights] == [w.ref() for w in base.trainable_weights]


@pytest.mark.parametrize(
    "factory, message",
    [(lambda: ResNet(num_classes=0), "num_classes must be a positive integer, got 0"),
     (lambda: VGG(num_classes=3, blocks=[(8, 3)]), r"blocks must be a non-empty list of \(filters"),
     (lambda: WideAndDeep(units=-1), "units must be a positive integer, got -1")],
)  # fmt: skip
def test_sizes_are_validated(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize(
    "name, input_shape, x, output_shapes",
    [
        ("resnet", (8, 8, 1), IMAGES[:2], [(2, 4)]),
        ("vgg", (8, 8, 1), IMAGES[:2], [(2, 4)]),
        ("siamese", (8, 8, 1), [IMAGES[:2], IMAGES[2:4]], [(2, 1)]),
        ("multi_output", (4,), TABLE[:2], [(2, 1), (2, 1)]),
        ("wide_and_deep", (4,), (TABLE[:2], TABLE[:2]), [(2, 4), (2, 4)]),
    ],
)
def test_catalogue_models_are_sized_by_the_trainer_config(name, input_shape, x, output_shapes):
    from trainer_module.config import TrainerConfig
    from trainer_module.models import build_catalogue_model

    config = TrainerConfig(model=name, units=12, filters=6, vgg_blocks=((4, 3, 1), (8, 3, 1)), dropout=0.0)
    model = build_catalogue_model(config, input_shape, num_classes=4)
    assert [o.shape for o in as_list(model(x))] == output_shapes
    sizes = {"resnet": lambda m: m.filters == 6, "vgg": lambda m: m.blocks == [(4, 3, 1), (8, 3, 1)],
             "wide_and_deep": lambda m: m.units == 12,
             "siamese": lambda m: m.get_layer("siamese_base").get_layer("embedding").units == 12,
             "multi_output": lambda m: m.get_layer("dense_1").units == 12}  # fmt: skip
    assert sizes[name](model)
