"""Keras models: the tabular baselines derived from the transformed features, and the catalogue."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from trainer_module.config import TrainerConfig
from trainer_module.features import REGRESSION
from trainer_module.layers import (
    Denormalize,
    SimpleDense,
    SimpleQuadratic,
    clipped_relu_layer,
    euclidean_distance_layer,
)
from trainer_module.losses import ContrastiveLoss
from trainer_module.metrics import F1Score, PairAccuracy
from trainer_module.optimization import build_loss, build_optimizer
from trainer_module.tracing import leave_libraries_unconverted

leave_libraries_unconverted()


def _encoded_inputs(numeric_features: list[str], categorical_features: dict[str, int]):
    """(inputs by name, numeric tensors, one-hot tensors) for the transformed features."""
    if not numeric_features and not categorical_features:
        raise ValueError("the model has no input features; check the schema and the label column")
    inputs, numeric, one_hots = {}, [], []
    for name in sorted(numeric_features):
        inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.float32)
        numeric.append(inputs[name])
    for name, cardinality in sorted(categorical_features.items()):
        inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.int64)
        one_hots.append(
            tf.keras.layers.CategoryEncoding(
                num_tokens=cardinality, output_mode="one_hot", name=f"{name}_one_hot"
            )(inputs[name])
        )
    return inputs, numeric, one_hots


def _concat(tensors: list, name: str):
    return tf.keras.layers.Concatenate(name=name)(tensors) if len(tensors) > 1 else tensors[0]


def _inputs_and_body(
    numeric_features: list[str], categorical_features: dict[str, int], config: TrainerConfig
) -> tuple[dict, tf.Tensor]:
    """Inputs for every feature, one-hot encoded categories, then the hidden layers.

    `quadratic_mlp` uses SimpleQuadratic hidden layers followed by the course's clipped relu (a Lambda).
    """
    inputs, numeric, one_hots = _encoded_inputs(numeric_features, categorical_features)
    return inputs, _hidden_layers(_concat(numeric + one_hots, "features"), config)


def _hidden_layers(x, config: TrainerConfig, dropout: bool = False):
    """`config.hidden_units` relu layers (each followed by Dropout with `dropout`): Dense, or for
    `quadratic_mlp` SimpleQuadratic layers followed by the course's clipped relu (a Lambda)."""
    hidden = SimpleQuadratic if config.model == "quadratic_mlp" else tf.keras.layers.Dense
    for i, units in enumerate(config.hidden_units):
        x = hidden(units, activation="relu", name=f"hidden_{i}")(x)
        if dropout:
            x = tf.keras.layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    if config.model == "quadratic_mlp":
        x = clipped_relu_layer(name="clipped_relu")(x)
    return x


def build_wide_and_deep_classifier(
    numeric_features: list[str],
    categorical_features: dict[str, int],
    num_classes: int,
    config: TrainerConfig,
) -> tf.keras.Model:
    """`WideAndDeep` over the transformed features: wide = the categories' one-hots, deep = the numbers.

    Outputs `probabilities` (the main head) and `auxiliary` (the deep path's head, weighted 0.3 in the loss).
    """
    inputs, numeric, one_hots = _encoded_inputs(numeric_features, categorical_features)
    deep = _concat(numeric or one_hots, "deep")
    wide = _concat(one_hots or numeric, "wide")
    main, auxiliary = WideAndDeep(
        units=config.units, output_units=num_classes, output_activation="softmax", name="wide_and_deep"
    )((wide, deep))
    outputs = {
        "probabilities": tf.keras.layers.Activation("linear", name="probabilities")(main),
        "auxiliary": tf.keras.layers.Activation("linear", name="auxiliary")(auxiliary),
    }
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    loss = build_loss(config, "classification")
    model.compile(
        optimizer=build_optimizer(config),
        loss={"probabilities": loss, "auxiliary": loss},
        loss_weights={"probabilities": 1.0, "auxiliary": 0.3},
        metrics={"probabilities": _classification_metrics(num_classes)},
    )
    return model


def _classification_metrics(num_classes: int) -> list:
    return [
        tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        F1Score(average="binary" if num_classes == 2 else "macro", num_classes=num_classes),
    ]


def build_classifier(
    numeric_features: list[str],
    categorical_features: dict[str, int],
    num_classes: int,
    config: TrainerConfig,
) -> tf.keras.Model:
    """A feed-forward classifier over z-scored numbers and one-hot categories.

    Args:
      numeric_features: names of float inputs of shape [batch, 1].
      categorical_features: name -> number of distinct indices (vocabulary plus out-of-vocabulary buckets)
        of int inputs of shape [batch, 1].
      num_classes: width of the softmax output.
      config: layer sizes and learning rate.
    """
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    inputs, x = _inputs_and_body(numeric_features, categorical_features, config)
    outputs = tf.keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=build_optimizer(config),
        loss=build_loss(config, "classification"),
        metrics=_classification_metrics(num_classes),
    )
    return model


def build_regressor(
    numeric_features: list[str],
    categorical_features: dict[str, int],
    label_mean: float,
    label_stddev: float,
    config: TrainerConfig,
) -> tf.keras.Model:
    """A feed-forward regressor whose output is in the label's units (see `Denormalize`)."""
    inputs, x = _inputs_and_body(numeric_features, categorical_features, config)
    standardized = SimpleDense(1, name="standardized_prediction")(x)
    outputs = Denormalize(label_mean, label_stddev, name="prediction")(standardized)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=build_optimizer(config),
        loss=build_loss(config, "regression"),
        metrics=[
            tf.keras.metrics.RootMeanSquaredError(name="rmse"),
            tf.keras.metrics.MeanAbsoluteError(name="mae"),
        ],
    )
    return model


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _momentum(value) -> float:
    if not 0 < value < 1:
        raise ValueError(f"momentum must be within (0, 1), got {value!r}")
    return float(value)


def _multi_output_trunk(x, units: int, branch_units: int):
    """The catalogue's multi-output topology: Dense -> Dense (head 1 reads it), a Dense branch (head 2)."""
    first = tf.keras.layers.Dense(_positive_int("units", units), activation="relu", name="dense_1")(x)
    second = tf.keras.layers.Dense(units, activation="relu", name="dense_2")(first)
    branch = tf.keras.layers.Dense(
        _positive_int("branch_units", branch_units), activation="relu", name="branch"
    )(second)
    return second, branch


def build_multi_output_model(
    input_dim: int,
    units: int = 128,
    branch_units: int = 64,
    output_names: tuple[str, str] = ("y1_output", "y2_output"),
    output_units: tuple[int, int] = (1, 1),
    output_activations: tuple = (None, None),
) -> tf.keras.Model:
    """Functional API with two named outputs: Input -> Dense -> Dense -> head 1; a Dense branch -> head 2.

    Compile it with one loss and metric per output name.
    """
    inputs = tf.keras.Input(shape=(_positive_int("input_dim", input_dim),), name="features")
    second, branch = _multi_output_trunk(inputs, units, branch_units)
    head_1 = tf.keras.layers.Dense(output_units[0], activation=output_activations[0], name=output_names[0])(
        second
    )
    head_2 = tf.keras.layers.Dense(output_units[1], activation=output_activations[1], name=output_names[1])(
        branch
    )
    return tf.keras.Model(inputs=inputs, outputs=[head_1, head_2], name="multi_output")


@dataclass(frozen=True)
class Head:
    """One output of a multi-output model: a class distribution or a value in the label's units."""

    name: str
    task: str
    num_classes: int | None = None  # classification
    label_mean: float = 0.0  # regression: the label's mean and spread (see Denormalize)
    label_stddev: float = 1.0


def build_multi_head_model(
    numeric_features: list[str],
    categorical_features: dict[str, int],
    heads: list[Head],
    config: TrainerConfig,
) -> tf.keras.Model:
    """The catalogue's multi-output model over the transformed features, one named output per label.

    The first head reads the shared trunk, the others its branch. Each output has its own loss and metrics:
    crossentropy, accuracy and F1 for classes; the configured regression loss, RMSE and MAE for values. A
    regression loss is weighted by 1 / stddev^2, which puts it on the scale of the standardized label, so
    that grams do not drown the crossentropy.
    """
    if len(heads) < 2:
        raise ValueError(f"a multi-output model needs at least 2 heads, got {len(heads)}")
    inputs, numeric, one_hots = _encoded_inputs(numeric_features, categorical_features)
    trunk, branch = _multi_output_trunk(_concat(numeric + one_hots, "features"), config.units, config.units)
    outputs, losses, weights, metrics = {}, {}, {}, {}
    for i, head in enumerate(heads):
        x = trunk if i == 0 else branch
        if head.task == REGRESSION:
            standardized = SimpleDense(1, name=f"{head.name}_standardized")(x)
            outputs[head.name] = Denormalize(head.label_mean, head.label_stddev, name=head.name)(standardized)
            losses[head.name] = build_loss(config, REGRESSION)
            weights[head.name] = 1.0 / head.label_stddev**2
            metrics[head.name] = [
                tf.keras.metrics.RootMeanSquaredError(name="rmse"),
                tf.keras.metrics.MeanAbsoluteError(name="mae"),
            ]
        else:
            outputs[head.name] = tf.keras.layers.Dense(
                head.num_classes, activation="softmax", name=head.name
            )(x)
            losses[head.name] = tf.keras.losses.SparseCategoricalCrossentropy()
            weights[head.name] = 1.0
            metrics[head.name] = _classification_metrics(head.num_classes)
    model = tf.keras.Model(inputs=inputs, outputs=outputs, name="multi_output")
    model.compile(optimizer=build_optimizer(config), loss=losses, loss_weights=weights, metrics=metrics)
    return model


@tf.keras.utils.register_keras_serializable(package="trainer_module")
class WideAndDeep(tf.keras.Model):
    """Wide inputs go straight to the head; deep inputs through `hidden_layers` Dense(`units`) first.

    Called with `(wide, deep)`; returns `(main, auxiliary)`: the main head sees wide and deep features, the
    auxiliary head only the deep path. The heads fit the task: `output_units` classes with softmax, or one
    linear unit for regression (`output_activation=None`).
    """

    def __init__(self, units: int = 30, hidden_layers: int = 2, output_units: int = 1, output_activation=None,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.hidden_layers = _positive_int("hidden_layers", hidden_layers)
        self.output_units = _positive_int("output_units", output_units)
        self.output_activation = output_activation
        self.hidden = [tf.keras.layers.Dense(units, activation="relu") for _ in range(hidden_layers)]
        self.concat = tf.keras.layers.Concatenate()
        self.main_output = tf.keras.layers.Dense(
            output_units, activation=output_activation, name="main_output"
        )
        self.aux_output = tf.keras.layers.Dense(output_units, activation=output_activation, name="aux_output")

    def call(self, inputs):
        wide, deep = inputs
        for layer in self.hidden:
            deep = layer(deep)
        return self.main_output(self.concat([wide, deep])), self.aux_output(deep)

    def get_config(self):
        return {
            "units": self.units,
            "hidden_layers": self.hidden_layers,
            "output_units": self.output_units,
            "output_activation": self.output_activation,
            "name": self.name,
        }


@tf.keras.utils.register_keras_serializable(package="trainer_module")
class IdentityBlock(tf.keras.Model):
    """conv -> BN -> relu -> conv -> BN -> add(input) -> relu; the input must have `filters` channels."""

    def __init__(self, filters: int, kernel_size: int = 3, momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.kernel_size = _positive_int("kernel_size", kernel_size)
        self.momentum = _momentum(momentum)
        self.conv1 = tf.keras.layers.Conv2D(filters, kernel_size, padding="same")
        self.bn1 = tf.keras.layers.BatchNormalization(momentum=momentum)
        self.conv2 = tf.keras.layers.Conv2D(filters, kernel_size, padding="same")
        self.bn2 = tf.keras.layers.BatchNormalization(momentum=momentum)
        self.act = tf.keras.layers.Activation("relu")
        self.add = tf.keras.layers.Add()

    def call(self, inputs, training=None):
        x = self.act(self.bn1(self.conv1(inputs), training=training))
        x = self.bn2(self.conv2(x), training=training)
        return self.act(self.add([x, inputs]))

    def get_config(self):
        return {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "momentum": self.momentum,
            "name": self.name,
        }


@tf.keras.utils.register_keras_serializable(package="trainer_module")
class ResNet(tf.keras.Model):
    """Conv 7x7 -> BN -> relu -> MaxPool 3 -> `blocks` IdentityBlocks -> global average pool -> softmax.

    `momentum` is the batch normalization's moving-average momentum: Keras' 0.99 needs thousands of steps
    before its moving statistics match the weights; a few hundred steps need about 0.9.
    """

    def __init__(self, num_classes: int, filters: int = 64, blocks: int = 2, kernel_size: int = 3,
                 momentum: float = 0.99, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.num_classes = _positive_int("num_classes", num_classes)
        self.filters = _positive_int("filters", filters)
        self.blocks = _positive_int("blocks", blocks)
        self.kernel_size = _positive_int("kernel_size", kernel_size)
        self.momentum = _momentum(momentum)
        self.conv = tf.keras.layers.Conv2D(filters, 7, padding="same")
        self.bn = tf.keras.layers.BatchNormalization(momentum=momentum)
        self.act = tf.keras.layers.Activation("relu")
        self.max_pool = tf.keras.layers.MaxPool2D((3, 3))
        self.identity_blocks = [IdentityBlock(filters, kernel_size, momentum) for _ in range(blocks)]
        self.global_pool = tf.keras.layers.GlobalAveragePooling2D()
        self.classifier = tf.keras.layers.Dense(num_classes, activation="softmax")

    def call(self, inputs, training=None):
        x = self.max_pool(self.act(self.bn(self.conv(inputs), training=training)))
        for block in self.identity_blocks:
            x = block(x, training=training)
        return self.classifier(self.global_pool(x))

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "filters": self.filters,
            "blocks": self.blocks,
            "kernel_size": self.kernel_size,
            "momentum": self.momentum,
            "name": self.name,
        }


@tf.keras.utils.register_keras_serializable(package="trainer_module")
class Block(tf.keras.Model):
    """VGG block: `repetitions` Conv2D(filters, kernel_size, relu, same), then MaxPool(pool_size, strides)."""

    def __init__(self, filters: int, kernel_size: int, repetitions: int, pool_size: int = 2, strides: int = 2,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.kernel_size = _positive_int("kernel_size", kernel_size)
        self.repetitions = _positive_int("repetitions", repetitions)
        self.pool_size = _positive_int("pool_size", pool_size)
        self.strides = _positive_int("strides", strides)
        self.convs = [
            tf.keras.layers.Conv2D(filters, kernel_size, activation="relu", padding="same")
            for _ in range(repetitions)
        ]
        self.max_pool = tf.keras.layers.MaxPool2D(pool_size, strides)

    def call(self, inputs):
        x = inputs
        for conv in self.convs:
            x = conv(x)
        return self.max_pool(x)

    def get_config(self):
        return {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "repetitions": self.repetitions,
            "pool_size": self.pool_size,
            "strides": self.strides,
            "name": self.name,
        }


VGG16_BLOCKS = ((64, 3, 2), (128, 3, 2), (256, 3, 3), (512, 3, 3), (512, 3, 3))


@tf.keras.utils.register_keras_serializable(package="trainer_module")
class VGG(tf.keras.Model):
    """VGG blocks `(filters, kernel_size, repetitions)` -> Flatten -> Dense(dense_units, relu) -> softmax.

    Each block halves the image; pass fewer blocks for small images (two for 8x8) so they do not pool away.
    """

    def __init__(self, num_classes: int, blocks=VGG16_BLOCKS, dense_units: int = 256, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = _positive_int("num_classes", num_classes)
        self.blocks = [tuple(int(v) for v in block) for block in blocks]
        if not self.blocks or any(len(block) != 3 for block in self.blocks):
            raise ValueError(
                f"blocks must be a non-empty list of (filters, kernel_size, repetitions), got {blocks!r}"
            )
        self.dense_units = _positive_int("dense_units", dense_units)
        self.vgg_blocks = [Block(f, k, r) for f, k, r in self.blocks]
        self.flatten = tf.keras.layers.Flatten()
        self.fc = tf.keras.layers.Dense(dense_units, activation="relu")
        self.classifier = tf.keras.layers.Dense(num_classes, activation="softmax")

    def call(self, inputs):
        x = inputs
        for block in self.vgg_blocks:
            x = block(x)
        return self.classifier(self.fc(self.flatten(x)))

    def get_config(self):
        return {
            "num_classes": self.num_classes,
            "blocks": [list(b) for b in self.blocks],
            "dense_units": self.dense_units,
            "name": self.name,
        }


def build_siamese_base(input_shape, units: int = 128, dropout: float = 0.1) -> tf.keras.Model:
    """Flatten -> [Dense(units, relu) -> Dropout] x 2 -> Dense(units, relu): the shared embedding network."""
    inputs = tf.keras.Input(shape=input_shape, name="base_input")
    x = tf.keras.layers.Flatten()(inputs)
    for i in range(2):
        x = tf.keras.layers.Dense(_positive_int("units", units), activation="relu", name=f"dense_{i}")(x)
        x = tf.keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    outputs = tf.keras.layers.Dense(units, activation="relu", name="embedding")(x)
    return tf.keras.Model(inputs, outputs, name="siamese_base")


def build_siamese_network(input_shape, units: int = 128, dropout: float = 0.1) -> tf.keras.Model:
    """Two inputs through one shared base; the output is their euclidean distance, shape [batch, 1]."""
    base = build_siamese_base(input_shape, units, dropout)
    left = tf.keras.Input(shape=input_shape, name="left")
    right = tf.keras.Input(shape=input_shape, name="right")
    distance = euclidean_distance_layer(name="distance")([base(left), base(right)])
    return tf.keras.Model([left, right], distance, name="siamese")


def build_catalogue_model(
    config: TrainerConfig, input_shape, num_classes: int | None = None
) -> tf.keras.Model:
    """The catalogue model named by `config.model`, sized by the configuration (uncompiled).

    `input_shape` is one example's shape (an image's (height, width, channels), or (features,)); for
    `wide_and_deep` it is the deep input's, and the wide input has the same width.
    """
    name = config.model
    if name in ("resnet", "vgg", "wide_and_deep") and not num_classes:
        raise ValueError(f"model {name!r} needs num_classes")
    if name == "resnet":
        return ResNet(num_classes, filters=config.filters, momentum=config.batch_norm_momentum)
    if name == "vgg":
        return VGG(num_classes, blocks=config.vgg_blocks, dense_units=config.units)
    if name == "siamese":
        return build_siamese_network(tuple(input_shape), units=config.units, dropout=config.dropout)
    if name == "multi_output":
        return build_multi_output_model(
            int(input_shape[-1]), units=config.units, branch_units=max(1, config.units // 2)
        )
    if name == "wide_and_deep":
        return WideAndDeep(units=config.units, output_units=num_classes, output_activation="softmax")
    raise ValueError(
        f"model {name!r} is built by build_classifier/build_regressor; catalogue models: "
        "resnet, vgg, siamese, multi_output, wide_and_deep"
    )


def build_image_classifier(
    image_input: str, image_shape, num_classes: int, config: TrainerConfig
) -> tf.keras.Model:
    """A classifier of the transformed image `image_input` ([batch, height, width, channels] in [0, 1]):
    the subclassed `ResNet` or `VGG`, or an MLP over the flattened pixels (`quadratic_mlp`: SimpleQuadratic
    hidden layers and the clipped relu; `mlp`: Dense). Outputs class `probabilities`."""
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    image = tf.keras.Input(shape=tuple(image_shape), name=image_input, dtype=tf.float32)
    if config.model in ("resnet", "vgg"):
        outputs = build_catalogue_model(config, image_shape, num_classes)(image)
    elif config.model in ("mlp", "quadratic_mlp"):
        x = _hidden_layers(tf.keras.layers.Flatten(name="pixels")(image), config, dropout=True)
        outputs = tf.keras.layers.Dense(num_classes, activation="softmax")(x)
    else:
        raise ValueError(
            f"model {config.model!r} does not classify images; valid choices: resnet, vgg, quadratic_mlp, mlp"
        )
    outputs = tf.keras.layers.Activation("linear", name="probabilities")(outputs)
    model = tf.keras.Model(inputs={image_input: image}, outputs=outputs)
    model.compile(
        optimizer=build_optimizer(config),
        loss=build_loss(config, "classification"),
        metrics=_classification_metrics(num_classes),
    )
    return model


SIAMESE_BASE = "siamese_base"


def build_image_siamese(
    left_input: str, right_input: str, image_shape, config: TrainerConfig
) -> tf.keras.Model:
    """The catalogue's siamese network over two transformed images (`left_input`, `right_input`): one
    shared base (`SIAMESE_BASE`, the embedding), their euclidean `distance`, the contrastive loss and
    `PairAccuracy` (a distance below SAME_CLASS_DISTANCE means "same class")."""
    base = build_siamese_base(tuple(image_shape), units=config.units, dropout=config.dropout)
    left = tf.keras.Input(shape=tuple(image_shape), name=left_input, dtype=tf.float32)
    right = tf.keras.Input(shape=tuple(image_shape), name=right_input, dtype=tf.float32)
    distance = euclidean_distance_layer(name="distance")([base(left), base(right)])
    model = tf.keras.Model(inputs={left_input: left, right_input: right}, outputs=distance, name="siamese")
    model.compile(
        optimizer=build_optimizer(config),
        loss=ContrastiveLoss(margin=config.contrastive_margin),
        metrics=[PairAccuracy()],
    )
    return model
