"""Image data: tf.Examples holding a PNG-encoded image and its label, in gzipped TFRecord files.

- `write_digits` / `write_digit_pairs`: scikit-learn's handwritten digits (1,797 images, 8x8, 10 classes) as
  the bundled image datasets of the `digits` and `digits_similarity` tasks;
- `convert_image_directory`: a user's directory of images, one folder per class, into the same format
  (`python -m pipeline images`);
- `check_images`: every example ExampleGen will read has a PNG of the expected size, else one line naming
  the file and the record, before any component runs.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from pipeline.csv_check import data_files
from trainer_module.features import ImageInput

IMAGE_FEATURE = ImageInput.feature
FILE_FEATURE = "file"  # an unlabelled image's path, relative to the converted directory
LABEL_FEATURE = "label"
# digits_similarity: the second image of an evaluation pair, and 1 when both show the same class.
PAIR_IMAGE_FEATURE = "other_image"
PAIR_LABEL_FEATURE = "same"

RECORDS_FILE = "images.tfrecord.gz"
DIGITS_FILE = "digits.tfrecord.gz"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> channels (grayscale, RGB, palette, grayscale + alpha, RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


FIX = "write image data with `python -m pipeline images`"


class ImageDataError(ValueError):
    """An image example ExampleGen would read is not usable; the message names it and the fix."""


# ---- writing ----------------------------------------------------------------------------------------


def _bytes_feature(value: bytes):
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int_feature(value: int):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def image_example(png: bytes, label, **extra) -> bytes:
    """A serialized tf.Example: `image` (PNG bytes), `label` (int, or a class name; None: no label) and
    `extra` features (bytes or int values)."""
    import tensorflow as tf

    features = {IMAGE_FEATURE: _bytes_feature(png)}
    if label is not None:
        extra[LABEL_FEATURE] = label.encode() if isinstance(label, str) else label
    for name, value in extra.items():
        features[name] = _bytes_feature(value) if isinstance(value, bytes) else _int_feature(value)
    example = tf.train.Example(features=tf.train.Features(feature=features))
    return example.SerializeToString(deterministic=True)


def write_records(path: str | Path, records) -> Path:
    """Writes serialized examples as one gzipped TFRecord file, renamed into place when complete."""
    import tensorflow as tf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tf.io.TFRecordWriter(str(tmp), options="GZIP") as writer:
        for record in records:
            writer.write(record)
    tmp.replace(path)
    return path


def digits_images():
    """(images [n, 8, 8, 1] uint8 with 0-255 ink, labels [n]) of scikit-learn's bundled digits."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, digits.target.astype(np.int64)


def encode_png(image) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(image).numpy()


def write_digits(data_dir: str | Path) -> Path:
    """The digits as `digits.tfrecord.gz` in `data_dir` (if not there yet): 1,797 examples."""
    path = Path(data_dir) / DIGITS_FILE
    if path.exists():
        return path
    images, labels = digits_images()
    return write_records(path, (image_example(encode_png(x), y) for x, y in zip(images, labels, strict=True)))


def pair_indices(labels, seed: int = 0) -> list[tuple[int, int, int]]:
    """(i, j, same) for every index i of `labels`: alternately a j of the same class (same = 1) and of
    another class (same = 0), drawn with `seed`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    pairs = []
    for i, label in enumerate(labels):
        want_same = i % 2 == 0
        candidates = np.flatnonzero((labels == label) == want_same)
        candidates = candidates[candidates != i]
        j = int(rng.choice(candidates))
        pairs.append((i, j, int(labels[j] == label)))
    return pairs


def write_digit_pairs(data_dir: str | Path, seed: int = 0, eval_fraction: float = 1 / 3) -> Path:
    """The digits split (seeded) into `train/`, single images, and `eval/`, pairs of the held-out images
    (alternately same and different class). Returns `data_dir`."""
    import numpy as np

    data_dir = Path(data_dir)
    eval_path = data_dir / "eval" / DIGITS_FILE
    if eval_path.exists():
        return data_dir
    images, labels = digits_images()
    order = np.random.default_rng(seed).permutation(len(labels))
    held_out = int(len(labels) * eval_fraction)
    train, evaluation = order[held_out:], order[:held_out]
    write_records(
        data_dir / "train" / DIGITS_FILE, (image_example(encode_png(images[i]), labels[i]) for i in train)
    )
    pngs = [encode_png(images[i]) for i in evaluation]
    eval_labels = labels[evaluation]
    records = (
        image_example(pngs[i], eval_labels[i], **{PAIR_IMAGE_FEATURE: pngs[j], PAIR_LABEL_FEATURE: same})
        for i, j, same in pair_indices(eval_labels, seed)
    )
    write_records(eval_path, records)
    return data_dir


# ---- a user's image directory -------------------------------------------------------------------------


def _class_images(image_dir: Path) -> list[tuple[Path, str]]:
    classes = sorted(p for p in image_dir.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise ImageDataError(
            f"{image_dir} holds {len(classes)} class folder(s); put each class's images in a folder of its "
            "own (e.g. cats/, dogs/), at least two"
        )
    files = []
    for folder in classes:
        images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not images:
            kinds = ", ".join(IMAGE_EXTENSIONS)
            raise ImageDataError(f"class folder {folder} holds no image ({kinds}); add some or remove it")
        files.extend((path, folder.name) for path in images)
    return files


def _unlabelled_images(image_dir: Path) -> list[tuple[Path, None]]:
    images = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        kinds = ", ".join(IMAGE_EXTENSIONS)
        raise ImageDataError(f"{image_dir} holds no image ({kinds}); put the images to score there")
    return [(path, None) for path in images]


def convert_image_directory(
    image_dir: str | Path,
    output_dir: str | Path,
    size: int | None = None,
    channels: int = 3,
    unlabelled: bool = False,
) -> tuple[Path, ImageInput, list[str]]:
    """Writes every image under `image_dir/<class>/` as a PNG example labelled with its folder's name into
    `output_dir/images.tfrecord.gz`: resized to `size` x `size` when given (else every image must have the
    first one's size), with `channels` (1 or 3). Returns (the file, its ImageInput, the class names).
    `unlabelled`: every image under `image_dir`, to be scored (`predict`), each example with its path
    relative to `image_dir` as the `file` feature and no label."""
    import tensorflow as tf

    if channels not in (1, 3):
        raise ImageDataError(f"channels must be 1 (grayscale) or 3 (colour), got {channels}")
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise ImageDataError(f"{image_dir} is not a directory; pass a directory with one folder per class")
    files = _unlabelled_images(image_dir) if unlabelled else _class_images(image_dir)
    shape = None
    records = []
    for path, label in files:
        try:
            image = tf.io.decode_image(path.read_bytes(), channels=channels, expand_animations=False)
        except tf.errors.InvalidArgumentError as error:
            raise ImageDataError(
                f"{path} is not a readable image ({error.message.splitlines()[0]}); remove or re-save it"
            ) from None
        if size:
            image = tf.cast(tf.round(tf.image.resize(image, [size, size])), tf.uint8)
        image_shape = tuple(int(d) for d in image.shape)
        if shape is None:
            shape = image_shape
        elif image_shape != shape:
            raise ImageDataError(
                f"{path} is {image_shape[1]}x{image_shape[0]} pixels but {files[0][0]} is "
                f"{shape[1]}x{shape[0]}; pass --size N to resize every image to N x N"
            )
        extra = {FILE_FEATURE: str(path.relative_to(image_dir)).encode()} if unlabelled else {}
        records.append(image_example(tf.io.encode_png(image).numpy(), label, **extra))
    path = write_records(Path(output_dir) / RECORDS_FILE, records)
    return path, ImageInput(shape=shape), sorted({label for _, label in files if label is not None})


def image_schema(image: ImageInput, classes: list[str] | None = None):
    """A schema for examples of `image`: the PNG feature (an image domain) and a class label absent in
    SERVING, its values `classes` when given."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = schema_pb2.Schema()
    feature = schema.feature.add(name=image.feature, type=schema_pb2.BYTES)
    feature.presence.min_fraction = 1.0
    feature.presence.min_count = 1
    feature.value_count.min = feature.value_count.max = 1
    feature.image_domain.SetInParent()
    label = schema.feature.add(name=LABEL_FEATURE, type=schema_pb2.BYTES)
    label.presence.min_fraction = 1.0
    label.presence.min_count = 1
    label.value_count.min = label.value_count.max = 1
    label.not_in_environment.append("SERVING")
    if classes:
        label.string_domain.name = LABEL_FEATURE
        label.string_domain.value.extend(classes)
    schema.default_environment.extend(["TRAINING", "SERVING"])
    return schema


def image_feature_of(schema) -> str | None:
    """The schema's image feature (one with an image domain), if any."""
    names = [f.name for f in schema.feature if f.HasField("image_domain")]
    return names[0] if names else None


# ---- checking -----------------------------------------------------------------------------------------


def record_files(data_dir: str, span_range: tuple[int, int] | None = None) -> list[str]:
    """The files ExampleGen reads: every file of the data directory (with `train/` and `eval/` directories:
    theirs), or of the spans in `span_range`."""
    if span_range is None and os.path.isdir(os.path.join(data_dir, "train")):
        return data_files(os.path.join(data_dir, "train")) + data_files(os.path.join(data_dir, "eval"))
    return data_files(data_dir, span_range)


def png_shape(data: bytes) -> tuple[int, int, int] | None:
    """(height, width, channels) from a PNG's header; None when `data` is not a PNG."""
    if len(data) < 29 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return height, width, _PNG_CHANNELS.get(data[25], 0)


def _records(path: str) -> Iterator[bytes]:
    import tensorflow as tf

    compression = "GZIP" if path.endswith(".gz") else ""
    try:
        for record in tf.data.TFRecordDataset(path, compression_type=compression):
            yield record.numpy()
    except tf.errors.DataLossError as error:
        raise ImageDataError(
            f"{path} is not a readable {'gzipped ' if compression else ''}TFRecord file "
            f"({error.message.splitlines()[0]}); {FIX}"
        ) from None


def check_images(data_dir: str, image: ImageInput, span_range=None) -> int:
    """Checks that every example of the data has each image feature as one PNG of `image.shape` that
    decodes; returns how many examples. Raises ImageDataError naming the file, the record and the fix."""
    import tensorflow as tf

    files = record_files(data_dir, span_range)
    if not files:
        raise ImageDataError(f"data root {data_dir} holds no files; {FIX}")
    height, width, channels = image.shape
    count = 0
    for path in files:
        for index, record in enumerate(_records(path)):
            where = f"{path}, record {index}"
            try:
                example = tf.train.Example.FromString(record)
            except Exception:  # noqa: BLE001 - protobuf's DecodeError
                raise ImageDataError(f"{where} is not a tf.Example; {FIX}") from None
            features = example.features.feature
            for name in image.image_features:
                if name not in features:
                    if name == image.pair_feature:
                        continue  # single images (a similarity task's training split) have no pair
                    raise ImageDataError(f"{where} has no {name!r} feature; every example needs its image")
                values = features[name].bytes_list.value
                if len(values) != 1:
                    raise ImageDataError(
                        f"{where}: feature {name!r} must hold one PNG, it holds {len(values)} values; {FIX}"
                    )
                found = png_shape(values[0])
                if found is None:
                    raise ImageDataError(
                        f"{where}: feature {name!r} is not a PNG image (it starts with {values[0][:8]!r}); "
                        "convert images with `python -m pipeline images`"
                    )
                if found[:2] != (height, width) or found[2] != channels:
                    raise ImageDataError(
                        f"{where}: feature {name!r} is a {found[1]}x{found[0]} image with {found[2]} "
                        f"channel(s), expected {width}x{height} with {channels}; resize it (`python -m "
                        "pipeline images --size N` converts a directory to one size)"
                    )
                try:
                    tf.io.decode_png(values[0], channels=channels)
                except tf.errors.InvalidArgumentError as error:
                    raise ImageDataError(
                        f"{where}: feature {name!r} is a damaged PNG ({error.message.splitlines()[0]}); "
                        "re-encode or remove it"
                    ) from None
            count += 1
    return count


def first_image_shape(data_dir: str, feature: str) -> tuple[int, int, int]:
    """The (height, width, channels) of the first example's image: what a user's data is checked against."""
    import tensorflow as tf

    for path in record_files(data_dir):
        for record in _records(path):
            values = tf.train.Example.FromString(record).features.feature[feature].bytes_list.value
            found = png_shape(values[0]) if values else None
            if found is None or found[2] not in (1, 3):
                raise ImageDataError(
                    f"{path}, record 0: feature {feature!r} is not a grayscale or RGB PNG; convert images "
                    "with `python -m pipeline images`"
                )
            return found
    raise ImageDataError(f"data root {data_dir} holds no examples; {FIX}")
