"""The schema-driven tf.Transform `preprocessing_fn`.

Every raw feature is handled by its type, so a new column in the schema needs no code:
- numeric (float or int): z-score; a missing value becomes 0, the training mean;
- string: a vocabulary index; a missing value (the empty string, which tf.Transform keeps out of
  vocabularies), a value unseen in training and, past the `max_vocabulary` most frequent values, the rarer
  ones share the one out-of-vocabulary bucket;
- a date or time column (`dates`: name -> its schema's time_domain.string_format): read in the graph
  (trainer_module/dates.py) into the year, z-scored, and cyclic pairs (sine, cosine) of the month, the day
  of the year, the weekday and the hour, those its format carries; a missing value has the mean year and no
  season (0, 0), a value that is not a date fails (the data gates refuse it first);
- an identifier column (`identifiers`: a name, an id, drafted as such from its values) is no model input:
  no transformed feature, so the model never memorises it (serving still parses it, and `predict` carries it);
- an image (a PNG, see `ImageInput`): decoded, resized and scaled to [0, 1], [batch, height, width,
  channels]; an optional image (the second of a pair) that is absent becomes a blank image;
- a similarity task's pair label: 0 or 1 as a float;
- each label (see `label_tasks`): for classification an index into its vocabulary (`label` for the main
  label; integer labels are treated as their decimal strings); for regression the value as a float.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from trainer_module.dates import date_features
from trainer_module.features import (
    REGRESSION,
    ImageInput,
    image_input,
    label_tasks,
    label_vocabulary,
    transformed_name,
    vocabulary_name,
)


def _to_dense(x, default_value):
    """A [batch, 1] dense tensor; absent values of a sparse (optional) feature get `default_value`."""
    if isinstance(x, tf.sparse.SparseTensor):
        batch = tf.shape(x, out_type=tf.int64)[0]
        x = tf.sparse.to_dense(tf.SparseTensor(x.indices, x.values, [batch, 1]), default_value=default_value)
    return tf.reshape(x, [-1, 1])


def _is_numeric(x) -> bool:
    return x.dtype in (tf.float32, tf.float64, tf.int64, tf.int32)


def decode_images(x, image: ImageInput):
    """PNG bytes ([batch] or [batch, 1], or sparse with absent values) -> float pixels in [0, 1] of
    `image.model_shape`."""
    height, width, channels = image.shape
    blank = tf.io.encode_png(tf.zeros(image.shape, tf.uint8))
    pngs = tf.reshape(_to_dense(x, blank), [-1])
    pixels = tf.map_fn(
        lambda png: tf.reshape(tf.io.decode_png(png, channels=channels), image.shape),
        pngs,
        fn_output_signature=tf.TensorSpec(image.shape, tf.uint8),
    )
    pixels = tf.cast(pixels, tf.float32) / 255.0
    if image.resize:
        pixels = tf.image.resize(pixels, [image.resize, image.resize])
    return tf.reshape(pixels, [-1, *image.model_shape])


def _z_score(x, present=None):
    """z-scored over the values present (the mean and deviation of those), a missing value 0: the mean."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32), x.dense_shape)
    elif present is not None:
        x = tf.reshape(tf.cast(x, tf.float32), [-1, 1])
        indices = tf.where(tf.reshape(present, [-1, 1]))
        x = tf.SparseTensor(indices, tf.gather_nd(x, indices), tf.shape(x, out_type=tf.int64))
    else:
        x = tf.cast(x, tf.float32)
    # Scaling first, on the values present, makes the fill value 0 equal the mean.
    return _to_dense(tft.scale_to_z_score(x), 0.0)


def calendar_features(key: str, x, fmt: str) -> dict:
    """The transformed calendar features of date column `key` of format `fmt` (trainer_module/dates.py)."""
    features, present = date_features(tf.reshape(_to_dense(x, ""), [-1]), fmt)
    year = features.pop("year")
    outputs = {transformed_name(f"{key}_year"): _z_score(year, present)}
    for name, value in features.items():
        outputs[transformed_name(f"{key}_{name}")] = tf.reshape(value, [-1, 1])
    return outputs


def preprocessing_fn(inputs: dict, custom_config: dict) -> dict:
    labels = label_tasks(custom_config)
    main_label = next(iter(labels))
    image = image_input(custom_config)
    identifiers = set(custom_config.get("identifiers", ())) - set(labels)
    dates = custom_config.get("dates", {})
    outputs = {}
    for key, x in inputs.items():
        if key in identifiers:
            continue
        if key in dates and key not in labels:
            outputs.update(calendar_features(key, x, dates[key]))
            continue
        if image and key in image.image_features:
            outputs[transformed_name(key)] = decode_images(x, image)
        elif labels.get(key) == REGRESSION or (image and key == image.pair_label):
            outputs[transformed_name(key)] = tf.cast(_to_dense(x, 0), tf.float32)
        elif key in labels:
            label = _to_dense(x, "" if x.dtype == tf.string else 0)
            if label.dtype != tf.string:
                label = tf.strings.as_string(label)
            outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
                label, vocab_filename=label_vocabulary(key, main=key == main_label)
            )
        elif _is_numeric(x):
            outputs[transformed_name(key)] = _z_score(x)
        else:
            outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
                _to_dense(x, ""),
                top_k=custom_config.get("max_vocabulary"),
                num_oov_buckets=1,
                vocab_filename=vocabulary_name(key),
            )
    return outputs
