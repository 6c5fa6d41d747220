"""The examples an image model scores: gzipped TFRecords of PNG tf.Examples, as `images` writes them
(`images --unlabelled` for a folder of images to score), checked before anything runs and sent as they are."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pyarrow as pa

from pipeline.images import ImageDataError, _records, check_images, record_files
from trainer_module.features import ImageInput

BLOCK_RECORDS = 512
# The output's first columns: where each example came from.
SOURCE_COLUMNS = ["source_file", "record"]


def image_input(spec: dict) -> ImageInput:
    image = spec["image"]
    return ImageInput(
        feature=image["feature"],
        shape=tuple(image["shape"]),
        pair_feature=image["pair_feature"],
        pair_label=image["pair_label"],
    )


def check_records(data_dir: str, spec: dict) -> tuple[list[str], list[str], int]:
    """`check_examples` for the model that `spec` (its prediction spec) describes."""
    return check_examples(data_dir, image_input(spec), [label for label, _ in spec["labels"]])


def check_examples(data_dir: str, image: ImageInput, labels) -> tuple[list[str], list[str], int]:
    """(the record files, the output's input columns, the number of examples) once every example holds its
    image(s) as one PNG of `image`'s shape that decodes, both of a pair for a similarity model
    (ImageDataError otherwise: one line naming the file, the record and the fix). The input columns: the
    source file and record, then the examples' other features (an unlabelled image's `file`), the `labels`
    left out."""
    import tensorflow as tf

    files = record_files(data_dir)
    if not files:
        raise ImageDataError(
            f"no data files in {data_dir}; convert the images to score with `python -m pipeline images "
            "--unlabelled --image-dir DIR --output DATA_ROOT` and pass that data root"
        )
    count = check_images(data_dir, image)
    skipped = {*image.image_features, *labels, image.pair_label}
    extra = set()
    for path in files:
        for index, record in enumerate(_records(path)):
            features = tf.train.Example.FromString(record).features.feature
            if image.pair_feature and image.pair_feature not in features:
                raise ImageDataError(
                    f"{path}, record {index} has no {image.pair_feature!r} feature; the similarity model "
                    "scores pairs: every example needs both images"
                )
            extra |= set(features) - skipped
    return files, [*SOURCE_COLUMNS, *sorted(extra)], count


def _text(feature) -> str:
    kind = feature.WhichOneof("kind")
    values = getattr(feature, kind).value if kind else []
    return ";".join(v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in values)


def keyed_blocks(
    indexed: tuple[int, str], names: list[str], spec: dict
) -> Iterator[tuple[tuple, list[bytes]]]:
    """((file index, block index, text columns), serialized examples) per block of one record file."""
    import tensorflow as tf

    index, path = indexed
    extra = names[len(SOURCE_COLUMNS) :]
    block, columns = [], {name: [] for name in names}
    blocks_written = 0
    for number, record in enumerate(_records(path)):
        features = tf.train.Example.FromString(record).features.feature
        columns["source_file"].append(os.path.basename(path))
        columns["record"].append(str(number))
        for name in extra:
            columns[name].append(_text(features[name]) if name in features else None)
        block.append(record)
        if len(block) == BLOCK_RECORDS:
            yield (index, blocks_written, _batch(columns)), block
            block, columns = [], {name: [] for name in names}
            blocks_written += 1
    if block:
        yield (index, blocks_written, _batch(columns)), block


def _batch(columns: dict[str, list]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {name: pa.array(values, pa.string()) for name, values in columns.items()}
    )
