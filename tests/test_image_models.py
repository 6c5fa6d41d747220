"""The image parts of the trainer module: PNG decoding in Transform, the image classifiers, the siamese
network, training pairs formed from single images, and the pair accuracy metric."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.config import TrainerConfig
from trainer_module.features import ImageInput
from trainer_module.metrics import PairAccuracy
from trainer_module.models import SIAMESE_BASE, build_image_classifier, build_image_siamese
from trainer_module.preprocessing import decode_images
from trainer_module.run import evaluation_pairs, training_pairs

PAIRS = ImageInput(pair_feature="other_image", pair_label="same")


def png(pixels) -> bytes:
    return tf.io.encode_png(np.asarray(pixels, np.uint8)).numpy()


def test_decoding_scales_pixels_to_unit_range_and_resizes():
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8, 1) * 4
    decoded = decode_images(tf.constant([png(pixels), png(255 - pixels)]), ImageInput()).numpy()
    assert decoded.shape == (2, 8, 8, 1) and decoded.dtype == np.float32
    np.testing.assert_allclose(decoded[0], pixels / 255.0, atol=1e-6)
    np.testing.assert_allclose(decoded[1], (255 - pixels) / 255.0, atol=1e-6)
    resized = decode_images(tf.constant([png(np.full((8, 8, 1), 51))]), ImageInput(resize=32)).numpy()
    assert resized.shape == (1, 32, 32, 1)
    np.testing.assert_allclose(resized, 0.2, atol=1e-6)


def test_an_absent_pair_image_decodes_as_blank():
    present = png(np.full((8, 8, 1), 255))
    sparse = tf.SparseTensor(indices=[[1, 0]], values=[present], dense_shape=[2, 1])
    decoded = decode_images(sparse, PAIRS).numpy()
    assert decoded[0].max() == 0.0 and decoded[1].min() == 1.0


@pytest.mark.parametrize("model", ["resnet", "vgg", "quadratic_mlp", "mlp"])
def test_image_classifiers_output_class_probabilities(model):
    config = TrainerConfig(model=model, hidden_units=(8,), vgg_blocks=((4, 3, 1), (8, 3, 1)), filters=4)
    classifier = build_image_classifier("image_xf", (16, 16, 1), 10, config)
    probabilities = classifier({"image_xf": tf.random.uniform([3, 16, 16, 1])}).numpy()
    assert probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        build_image_classifier("image_xf", (16, 16, 1), 1, config)


def test_an_image_classifier_refuses_a_tabular_model():
    with pytest.raises(ValueError, match="does not classify images"):
        build_image_classifier("image_xf", (8, 8, 1), 10, TrainerConfig(model="wide_and_deep"))


def test_resnet_batch_norm_momentum_is_configured_and_saved():
    config = TrainerConfig(model="resnet", filters=4, batch_norm_momentum=0.9)
    classifier = build_image_classifier("image_xf", (16, 16, 1), 3, config)
    norms = [
        layer for layer in classifier.submodules if isinstance(layer, tf.keras.layers.BatchNormalization)
    ]
    assert len(norms) == 5 and {n.momentum for n in norms} == {0.9}
    resnet = [layer for layer in classifier.layers if layer.__class__.__name__ == "ResNet"][0]
    assert resnet.get_config()["momentum"] == 0.9
    with pytest.raises(ValueError, match="batch_norm_momentum must be within"):
        TrainerConfig(batch_norm_momentum=1.0)


def test_siamese_network_is_symmetric_with_zero_distance_for_one_image():
    model = build_image_siamese(
        "image_xf", "other_image_xf", (8, 8, 1), TrainerConfig(model="siamese", units=8)
    )
    a, b = tf.random.uniform([4, 8, 8, 1], seed=1), tf.random.uniform([4, 8, 8, 1], seed=2)
    ab = model({"image_xf": a, "other_image_xf": b}, training=False).numpy()
    ba = model({"image_xf": b, "other_image_xf": a}, training=False).numpy()
    aa = model({"image_xf": a, "other_image_xf": a}, training=False).numpy()
    assert ab.shape == (4, 1)
    np.testing.assert_allclose(ab, ba, rtol=1e-5)
    np.testing.assert_allclose(aa, np.sqrt(tf.keras.backend.epsilon()), rtol=1e-3)
    assert model.get_layer(SIAMESE_BASE).output_shape == (None, 8)
    assert model.loss.name == "contrastive"


def test_training_pairs_alternate_classes_and_label_them_by_class():
    classes = tf.constant([0, 1, 2, 0, 1, 2, 0, 1, 2, 3] * 4, tf.int64)
    # Each image holds its index, so the pair's partner can be read back.
    images = tf.reshape(tf.range(40, dtype=tf.float32), [40, 1, 1, 1]) * tf.ones([40, 8, 8, 1])
    features, same = training_pairs(PAIRS)({"image_xf": images}, classes)
    left = features["image_xf"][:, 0, 0, 0].numpy().astype(int)
    right = features["other_image_xf"][:, 0, 0, 0].numpy().astype(int)
    assert same.shape == (40, 1) and list(left) == list(range(40))
    c = classes.numpy()
    np.testing.assert_array_equal(same.numpy()[:, 0], (c[left] == c[right]).astype(np.float32))
    even, odd = same.numpy()[0::2, 0], same.numpy()[1::2, 0]
    assert even.all() and not odd.any()
    assert (left[0::2] != right[0::2]).all()  # a same-class partner is another image


def test_evaluation_pairs_keep_both_images_and_the_pair_label():
    features = {
        "image_xf": tf.zeros([3, 8, 8, 1]),
        "other_image_xf": tf.ones([3, 8, 8, 1]),
        "same_xf": tf.constant([[1.0], [0.0], [1.0]]),
    }
    inputs, same = evaluation_pairs(PAIRS)(features, tf.constant([1, 2, 3]))
    assert sorted(inputs) == ["image_xf", "other_image_xf"]
    np.testing.assert_array_equal(same.numpy(), [[1.0], [0.0], [1.0]])


def test_pair_accuracy_thresholds_the_distance():
    metric = PairAccuracy()
    metric.update_state([[1], [1], [0], [0]], [[0.1], [0.7], [0.9], [0.2]])
    assert metric.result().numpy() == pytest.approx(0.5)
    metric.update_state([1, 0], [0.49, 0.51])
    assert metric.result().numpy() == pytest.approx(4 / 6)
    assert PairAccuracy.from_config(PairAccuracy(threshold=0.3).get_config()).threshold == 0.3
