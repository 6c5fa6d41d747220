"""`run_fn`: the Trainer's entry point, the only TFX-aware code in the trainer module."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx_bsl.tfxio import dataset_util

from trainer_module.callbacks import (
    BatchTimingCallback,
    BestEpochCheckpoint,
    DetectOverfittingCallback,
    build_callbacks,
)
from trainer_module.config import TrainerConfig
from trainer_module.distribution import build_strategy, is_chief, task_name, weights_digest
from trainer_module.features import (
    LABEL_VOCABULARY,
    REGRESSION,
    ImageInput,
    image_input,
    label_tasks,
    label_vocabulary,
    safe_name,
    transformed_name,
    vocabulary_name,
)
from trainer_module.models import (
    Head,
    build_classifier,
    build_image_classifier,
    build_image_siamese,
    build_multi_head_model,
    build_regressor,
    build_wide_and_deep_classifier,
)
from trainer_module.serving import PREDICTION_SPEC, make_serving_signatures, prediction_spec
from trainer_module.training_loop import train

# Categorical features get one out-of-vocabulary bucket in preprocessing.
_OOV_BUCKETS = 1
# Batches read to estimate a regression label's mean and spread.
_LABEL_STATS_BATCHES = 50
# The input pipeline's shuffle: windows of this many examples (at most this many bytes parsed), permuted
# with this seed.
_WINDOW_EXAMPLES = 8192
_WINDOW_BYTES = 64 << 20
_SHUFFLE_SEED = 0


def input_fn(
    file_pattern: list[str],
    tf_transform_output: tft.TFTransformOutput,
    labels: list[str],
    batch_size: int,
) -> tf.data.Dataset:
    """Endlessly repeating batches of (transformed features, label); with several labels, the label is a
    dict by head name (the label's safe name), as a multi-output model takes it.

    Records are read file after file (the files in a new order each pass), parsed a window at a time
    (`window_size`), each window permuted (the shuffle) and cut into batches, which run on across windows
    and passes: per record, tf.data does nothing but read. A record-by-record shuffle buffer and TFXIO's
    interleaved reading held input to about twice what training consumes (bench/RESULTS.md, "Input
    pipeline vs training")."""
    feature_spec = tf_transform_output.transformed_feature_spec()
    label_heads = {transformed_name(label): safe_name(label) for label in labels}
    files = sorted(path for pattern in file_pattern for path in tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"no transformed examples match {file_pattern}: Transform wrote none; rerun it")
    compression = dataset_util.detect_compression_type(tf.constant(files))

    def parse_window(index, records):
        features = tf.io.parse_example(records, feature_spec)
        # The same permutations on every worker of a cluster, so sharding by data splits the batches
        # between them rather than handing each its own random stream.
        order = tf.random.experimental.stateless_shuffle(
            tf.range(tf.shape(records)[0]), seed=tf.stack([tf.constant(_SHUFFLE_SEED, tf.int64), index])
        )
        features = {name: tf.gather(value, order) for name, value in features.items()}
        targets = {head: features.pop(name) for name, head in label_heads.items()}
        return features, targets if len(targets) > 1 else next(iter(targets.values()))

    dataset = (
        tf.data.Dataset.from_tensor_slices(files)
        .shuffle(len(files), seed=_SHUFFLE_SEED)
        .flat_map(lambda path: tf.data.TFRecordDataset(path, compression))
        # Windows within one pass over the files: a pass smaller than a window is one window, permuted
        # whole, so each pass over a small dataset is a permutation of it. Batches run on across windows.
        .batch(window_size(feature_spec, batch_size))
        .repeat()
        .enumerate()
        .map(parse_window, num_parallel_calls=tf.data.AUTOTUNE)
        .rebatch(batch_size, drop_remainder=True)
    )
    # Each worker of a multi-worker cluster trains on its share of the batches. By element, not by file:
    # Transform may write one file per split, and sharding by file needs a file per worker.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    # Reading and parsing the next batches overlaps the training step on this one.
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def window_size(feature_spec: dict, batch_size: int) -> int:
    """Examples parsed and shuffled together: about `_WINDOW_EXAMPLES`, fewer where their parsed
    fixed-length values would pass `_WINDOW_BYTES` (images), a whole number of batches, at least one."""
    example_bytes = sum(
        max(spec.dtype.size, 1) * int(np.prod(spec.shape))
        for spec in feature_spec.values()
        if isinstance(spec, tf.io.FixedLenFeature)
    )
    examples = min(_WINDOW_EXAMPLES, _WINDOW_BYTES // max(example_bytes, 1))
    return max(1, examples // batch_size) * batch_size


def model_inputs(
    tf_transform_output: tft.TFTransformOutput, labels: list[str]
) -> tuple[list[str], dict[str, int]]:
    """(numeric input names, categorical input name -> cardinality) of the transformed features."""
    numeric, categorical = [], {}
    raw_names = {transformed_name(k): k for k in tf_transform_output.raw_feature_spec()}
    label_names = {transformed_name(label) for label in labels}
    for name, spec in tf_transform_output.transformed_feature_spec().items():
        if name in label_names:
            continue
        if spec.dtype == tf.float32:
            numeric.append(name)
        else:
            vocabulary = vocabulary_name(raw_names[name])
            categorical[name] = tf_transform_output.vocabulary_size_by_name(vocabulary) + _OOV_BUCKETS
    return numeric, categorical


def label_statistics(
    dataset: tf.data.Dataset, head: str | None = None, batches: int = _LABEL_STATS_BATCHES
) -> tuple[float, float]:
    """Mean and standard deviation of the label (of output `head`) over the first `batches` batches."""
    labels = tf.concat([tf.reshape(y[head] if head else y, [-1]) for _, y in dataset.take(batches)], axis=0)
    mean = float(tf.reduce_mean(labels))
    stddev = float(tf.math.reduce_std(labels))
    return mean, stddev if stddev > 0 else 1.0


def build_model(
    tf_transform_output,
    train_dataset,
    config: TrainerConfig,
    labels: dict[str, str],
    image: ImageInput | None = None,
):
    """The configured model for `labels` (label -> task, the main one first), of `image` when given."""
    if image is not None:
        names = [transformed_name(f) for f in image.image_features]
        if image.pair_feature:
            logging.info("Siamese network over %s, images %s", names, image.model_shape)
            return build_image_siamese(*names, image.model_shape, config)
        num_classes = tf_transform_output.vocabulary_size_by_name(LABEL_VOCABULARY)
        logging.info("Image classification into %d classes with the %s model", num_classes, config.model)
        return build_image_classifier(names[0], image.model_shape, num_classes, config)
    numeric, categorical = model_inputs(tf_transform_output, list(labels))
    if config.model == "multi_output":
        heads = []
        for i, (label, task) in enumerate(labels.items()):
            name = safe_name(label)
            if task == REGRESSION:
                mean, stddev = label_statistics(train_dataset, name)
                head = Head(name, task, label_mean=mean, label_stddev=stddev)
            else:
                vocabulary = label_vocabulary(label, main=i == 0)
                head = Head(name, task, num_classes=tf_transform_output.vocabulary_size_by_name(vocabulary))
            logging.info("Output %s: %s", head.name, head)
            heads.append(head)
        return build_multi_head_model(numeric, categorical, heads, config)
    if len(labels) != 1:
        raise ValueError(f"model {config.model!r} has one output; use multi_output for labels {list(labels)}")
    task = next(iter(labels.values()))
    if task == REGRESSION:
        mean, stddev = label_statistics(train_dataset)
        logging.info("Regression label mean %.4g, standard deviation %.4g", mean, stddev)
        return build_regressor(numeric, categorical, mean, stddev, config)
    num_classes = tf_transform_output.vocabulary_size_by_name(LABEL_VOCABULARY)
    logging.info("Classification into %d classes with the %s model", num_classes, config.model)
    if config.model == "wide_and_deep":
        return build_wide_and_deep_classifier(numeric, categorical, num_classes, config)
    return build_classifier(numeric, categorical, num_classes, config)


def training_pairs(image: ImageInput):
    """Maps a batch of (transformed single images, class index) to a batch of pairs and their label (1.0:
    same class): each image is paired with another of the batch, alternately of its class and of another
    class, drawn anew every time (an image with no partner of its class is paired with itself)."""
    left_name, right_name = (transformed_name(f) for f in image.image_features)

    def pairs(features, label):
        images, classes = features[left_name], tf.reshape(label, [-1])
        n = tf.shape(classes)[0]
        same_class = tf.equal(classes[:, None], classes[None, :])
        others = same_class & ~tf.eye(n, dtype=tf.bool)
        noise = tf.random.uniform([n, n])
        positive = tf.argmax(tf.where(others, noise, -1.0), axis=1)
        positive = tf.where(tf.reduce_any(others, axis=1), positive, tf.range(n, dtype=tf.int64))
        negative = tf.argmax(tf.where(same_class, -1.0, noise), axis=1)
        partner = tf.where(tf.range(n) % 2 == 0, positive, negative)
        same = tf.cast(tf.equal(classes, tf.gather(classes, partner)), tf.float32)
        return {left_name: images, right_name: tf.gather(images, partner)}, tf.reshape(same, [-1, 1])

    return pairs


def evaluation_pairs(image: ImageInput):
    """Maps a batch of transformed evaluation pair examples to (both images, pair label [batch, 1])."""
    names = [transformed_name(f) for f in image.image_features]
    pair_label = transformed_name(image.pair_label)

    def pairs(features, _label):
        return {name: features[name] for name in names}, tf.reshape(features[pair_label], [-1, 1])

    return pairs


def with_label_per_output(dataset: tf.data.Dataset, model: tf.keras.Model) -> tf.data.Dataset:
    """A model with several named outputs of the same label gets the label once per output."""
    if len(model.output_names) == 1 or isinstance(dataset.element_spec[1], dict):
        return dataset
    return dataset.map(lambda features, label: (features, {name: label for name in model.output_names}))


def warm_start(model: tf.keras.Model, base_model_dir: str, run_dir: str) -> list[str]:
    """Copies the weights of every layer of the SavedModel at `base_model_dir` whose name and weight shapes
    match a layer of `model`; records them in `<run_dir>/warm_start.json`. Returns the layers copied."""
    if not tf.saved_model.contains_saved_model(base_model_dir):
        logging.info("Warm start: no model at %s yet (nothing served); starting from scratch", base_model_dir)
        return []
    base = tf.keras.models.load_model(base_model_dir, compile=False)
    base_layers = {layer.name: layer for layer in base.layers}
    copied = []
    for layer in model.layers:
        source = base_layers.get(layer.name)
        weights = source.get_weights() if source is not None else []
        if weights and [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
            copied.append(layer.name)
    logging.info(
        "Warm start from %s: %d of %d layers copied: %s",
        base_model_dir,
        len(copied),
        len(model.layers),
        copied,
    )
    tf.io.gfile.makedirs(run_dir)
    with tf.io.gfile.GFile(f"{run_dir}/warm_start.json", "w") as f:
        f.write(json.dumps({"base_model": base_model_dir, "layers": copied}))
    return copied


def datasets(
    fn_args: FnArgs, tf_transform_output, labels: dict[str, str], config: TrainerConfig, replicas: int = 1
):
    """The (train, eval) datasets of a Trainer or Tuner execution, in global batches (per-replica batch size
    x replicas)."""
    return tuple(
        input_fn(files, tf_transform_output, list(labels), batch_size * replicas)
        for files, batch_size in (
            (fn_args.train_files, config.batch_size),
            (fn_args.eval_files, config.eval_batch_size),
        )
    )


def trainer_config(fn_args: FnArgs) -> TrainerConfig:
    """The configured hyperparameters, with the Tuner's best values where a Tuner ran."""
    config = TrainerConfig.from_dict(fn_args.custom_config["trainer"])
    if fn_args.hyperparameters:
        # A keras_tuner.HyperParameters config: {"space": [...], "values": {name: value}}.
        values = fn_args.hyperparameters["values"]
        logging.info("Hyperparameters from the Tuner: %s", values)
        config = config.with_hyperparameters(values)
    return config


def checkpoint_directory(fn_args: FnArgs) -> str:
    """`<checkpoint root>/<key>` (the pipeline's `checkpoint_root`, else `<pipeline root>/Trainer/
    checkpoints`): the same for every execution of the Trainer on the same inputs, configuration, code and
    budget (its run directory is new each time, and on a cluster lies under the run), so a retried or re-run
    Trainer resumes."""
    key = json.dumps(
        [
            fn_args.train_files,
            fn_args.eval_files,
            fn_args.transform_graph_path,
            fn_args.custom_config,
            fn_args.hyperparameters,
            fn_args.train_steps,
            fn_args.eval_steps,
        ],
        sort_keys=True,
    )
    root = (fn_args.custom_config or {}).get("checkpoint_root")
    if not root:
        trainer_root = os.path.dirname(os.path.dirname(fn_args.model_run_dir.rstrip("/")))
        root = os.path.join(trainer_root, "checkpoints")
    return os.path.join(root, hashlib.sha256(key.encode()).hexdigest()[:16])


TRAINING_RECORD = "training.json"


def tfdv_schema(schema_path: str):
    """The curated schema the run validated its data with (a TFMD Schema)."""
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils

    return io_utils.parse_pbtxt_file(schema_path, schema_pb2.Schema())


def callback_records(callbacks) -> dict:
    """What the callbacks kept for training.json: the per-epoch batch timings, the epoch whose weights the
    checkpoint gave back to the model."""
    records = {}
    for callback in callbacks:
        if isinstance(callback, BatchTimingCallback):
            records["batch_timing"] = callback.per_epoch()
        if isinstance(callback, BestEpochCheckpoint):
            records["best_epoch"] = callback.best_epoch
    return records


def stopped_by(callbacks) -> dict[str, int]:
    """Callback name -> the (1-based) epoch after which it stopped training (EarlyStopping,
    DetectOverfitting)."""
    stopped = {}
    for callback in callbacks:
        if isinstance(callback, tf.keras.callbacks.EarlyStopping) and callback.stopped_epoch:
            stopped["EarlyStopping"] = callback.stopped_epoch + 1
        if isinstance(callback, DetectOverfittingCallback) and callback.stopped_epoch is not None:
            stopped["DetectOverfitting"] = callback.stopped_epoch + 1
    return stopped


def write_training_record(run_dir: str, record: dict) -> str:
    """`<model_run>/training.json`: what the Trainer did (configuration, epochs, what stopped it, the
    per-epoch metrics), read by the run report."""
    tf.io.gfile.makedirs(run_dir)
    path = os.path.join(run_dir, TRAINING_RECORD)
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(record, indent=1))
    return path


def run_fn(fn_args: FnArgs) -> None:
    config = trainer_config(fn_args)
    labels = label_tasks(fn_args.custom_config)
    image = image_input(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    strategy = build_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    train_dataset, eval_dataset = datasets(fn_args, tf_transform_output, labels, config, replicas)
    if image is not None and image.pair_feature:
        # Training pairs are formed from single images as they are read; evaluation pairs are examples.
        train_dataset = train_dataset.map(training_pairs(image))
        eval_dataset = eval_dataset.map(evaluation_pairs(image))

    # Model and optimizer variables are created in the strategy's scope: mirrored across replicas.
    with strategy.scope():
        model = build_model(tf_transform_output, train_dataset, config, labels, image)
    if config.warm_start and fn_args.base_model:
        warm_start(model, fn_args.base_model, fn_args.model_run_dir)

    epochs, steps_per_epoch = config.epochs_for(fn_args.train_steps)
    started = time.monotonic()
    logging.info(
        "Training with %s, %d epochs x %d steps (budget %d steps), strategy %s with %d replica(s), global "
        "batch %d, inputs %s",
        "the custom loop" if config.loop == "custom" else "fit",
        epochs,
        steps_per_epoch,
        fn_args.train_steps,
        config.strategy,
        replicas,
        config.batch_size * replicas,
        sorted(model.input_names),
    )
    chief = is_chief()
    # model_run_dir is where TFX expects TensorBoard logs and other records of this Trainer execution; the
    # other workers of a cluster write theirs to a scratch directory (on a shared file system the run
    # directory is the chief's).
    scratch = tempfile.TemporaryDirectory(prefix="worker-run-")
    callbacks = build_callbacks(config, fn_args.model_run_dir if chief else scratch.name)
    checkpoints = None
    if config.resume:
        checkpoints = checkpoint_directory(fn_args)
        if config.strategy == "multi_worker":
            # Every worker saves its own copy of the (identical) variables and restores its own.
            checkpoints = os.path.join(checkpoints, task_name())
    history, resumed_step = train(
        model,
        with_label_per_output(train_dataset, model),
        with_label_per_output(eval_dataset, model),
        config,
        epochs,
        steps_per_epoch,
        fn_args.eval_steps,
        callbacks,
        strategy,
        checkpoints,
    )
    stopped = stopped_by(callbacks)
    for name, epoch in stopped.items():
        logging.info("%s stopped training after epoch %d of %d", name, epoch, epochs)
    logging.info("Final epoch metrics: %s", {k: v[-1] for k, v in history.history.items()})
    logging.info(
        "Trained weights on %s after %d steps: sha256 %s",
        task_name(),
        int(model.optimizer.iterations.numpy()),
        weights_digest(model),
    )
    if chief:
        write_training_record(
            fn_args.model_run_dir,
            {
                "model": config.model,
                "loss": config.loss,
                "optimizer": config.optimizer,
                "learning_rate": config.learning_rate,
                "batch_size": config.batch_size,
                "loop": config.loop,
                "strategy": config.strategy,
                "replicas": replicas,
                "train_steps": fn_args.train_steps,
                "resumed_from_step": resumed_step,
                "eval_steps": fn_args.eval_steps,
                "epochs_planned": epochs,
                "steps_per_epoch": steps_per_epoch,
                "callbacks": list(config.callbacks),
                "stopped_by": stopped,
                **callback_records(callbacks),
                "seconds": round(time.monotonic() - started, 1),
                "history": {k: [float(v) for v in values] for k, values in history.history.items()},
            },
        )

    signatures = make_serving_signatures(model, tf_transform_output, labels, image)
    # Every worker saves (the save is collective); only the chief's copy is the model. TFX's executor fails
    # on a worker whose serving model directory does not exist, which it does not on a worker's own disk.
    if chief:
        model.save(fn_args.serving_model_dir, save_format="tf", signatures=signatures)
        spec_path = os.path.join(fn_args.serving_model_dir, PREDICTION_SPEC)
        tf.io.gfile.makedirs(os.path.dirname(spec_path))
        with tf.io.gfile.GFile(spec_path, "w") as f:
            schema = tfdv_schema(fn_args.schema_path) if fn_args.schema_path else None
            f.write(json.dumps(prediction_spec(tf_transform_output, labels, image, schema), indent=1))
    else:
        model.save(os.path.join(scratch.name, "model"), save_format="tf", signatures=signatures)
        tf.io.gfile.makedirs(fn_args.serving_model_dir)
    scratch.cleanup()
    if checkpoints:
        tf.io.gfile.rmtree(checkpoints)  # trained to the end: a re-execution starts afresh
