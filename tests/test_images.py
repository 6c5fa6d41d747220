"""Image data: the bundled digits and digit pairs, a user's image directory converted, and the check that
names a bad example before any component runs."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pipeline import images
from pipeline.images import ImageDataError, ImageInput

PAIRS = ImageInput(pair_feature="other_image", pair_label="same")


def read_examples(path) -> list[tf.train.Example]:
    return [
        tf.train.Example.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")
    ]


def value(example, name):
    feature = example.features.feature[name]
    return (
        feature.bytes_list.value[0]
        if feature.WhichOneof("kind") == "bytes_list"
        else feature.int64_list.value[0]
    )


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("digits")
    images.write_digits(data)
    return data


def test_digits_are_written_as_png_examples_of_the_bundled_images(digits_dir):
    pixels, labels = images.digits_images()
    examples = read_examples(digits_dir / images.DIGITS_FILE)
    assert len(examples) == 1797 == len(labels)
    assert pixels.shape == (1797, 8, 8, 1) and pixels.max() == 255 and pixels.min() == 0
    for i in (0, 100, 1796):
        decoded = tf.io.decode_png(value(examples[i], "image"), channels=1).numpy()
        np.testing.assert_array_equal(decoded, pixels[i])
        assert value(examples[i], "label") == labels[i]
    assert sorted({value(e, "label") for e in examples}) == list(range(10))


def test_pairs_alternate_same_and_different_class():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 3])
    pairs = images.pair_indices(labels, seed=3)
    assert [i for i, _, _ in pairs] == list(range(10))
    for i, j, same in pairs:
        assert i != j
        assert same == (labels[i] == labels[j]) == (i % 2 == 0)
    assert pairs == images.pair_indices(labels, seed=3)  # seeded


def test_digit_pairs_hold_out_the_evaluation_images(tmp_path):
    images.write_digit_pairs(tmp_path)
    train = read_examples(tmp_path / "train" / images.DIGITS_FILE)
    evaluation = read_examples(tmp_path / "eval" / images.DIGITS_FILE)
    assert (len(train), len(evaluation)) == (1198, 599)
    assert all("other_image" not in e.features.feature for e in train)
    assert [value(e, "same") for e in evaluation[:6]] == [1, 0, 1, 0, 1, 0]
    assert sum(value(e, "same") for e in evaluation) == 300
    assert images.check_images(str(tmp_path), PAIRS) == 1797


def test_png_shape_reads_the_header():
    png = images.encode_png(np.zeros((5, 7, 3), np.uint8))
    assert images.png_shape(png) == (5, 7, 3)
    assert images.png_shape(b"GIF89a" + b"\0" * 40) is None


def write_one_bad(tmp_path, bad: bytes, at: int = 2):
    """Five good digits and, at index `at`, an example whose image bytes are `bad`."""
    pixels, labels = images.digits_images()
    records = [images.image_example(images.encode_png(pixels[i]), labels[i]) for i in range(5)]
    records[at] = images.image_example(bad, 4)
    return images.write_records(tmp_path / "data" / "part.tfrecord.gz", records)


@pytest.mark.parametrize(
    "bad, expected",
    [
        (b"GIF89a not a png at all", "feature 'image' is not a PNG image (it starts with b'GIF89a n')"),
        (
            images.encode_png(np.zeros((9, 8, 1), np.uint8)),
            "feature 'image' is a 8x9 image with 1 channel(s), expected 8x8 with 1",
        ),
        (
            images.encode_png(np.zeros((8, 8, 3), np.uint8)),
            "feature 'image' is a 8x8 image with 3 channel(s), expected 8x8 with 1",
        ),
        (images.encode_png(np.zeros((8, 8, 1), np.uint8))[:40], "feature 'image' is a damaged PNG"),
    ],
)
def test_a_bad_image_is_named_by_file_and_record(tmp_path, bad, expected):
    path = write_one_bad(tmp_path, bad, at=3)
    with pytest.raises(ImageDataError) as raised:
        images.check_images(str(tmp_path / "data"), ImageInput())
    message = str(raised.value)
    assert message.startswith(f"{path}, record 3: {expected}")
    assert "\n" not in message
    assert "python -m pipeline images" in message or "re-encode" in message


def test_an_example_without_its_image_or_not_an_example_is_refused(tmp_path):
    no_image = tf.train.Example()
    no_image.features.feature["label"].int64_list.value.append(1)
    images.write_records(tmp_path / "a" / "x.tfrecord.gz", [no_image.SerializeToString()])
    with pytest.raises(ImageDataError, match=r"x.tfrecord.gz, record 0 has no 'image' feature"):
        images.check_images(str(tmp_path / "a"), ImageInput())
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.tfrecord.gz").write_bytes(b"plain text, not gzip")
    with pytest.raises(ImageDataError, match=r"notes.tfrecord.gz is not a readable gzipped TFRecord file"):
        images.check_images(str(tmp_path / "b"), ImageInput())
    (tmp_path / "c").mkdir()
    with pytest.raises(ImageDataError, match=r"holds no files"):
        images.check_images(str(tmp_path / "c"), ImageInput())


def make_image_dir(root, sizes=((6, 9), (12, 10)), bad_file=None):
    """Class folders `cat/` and `dog/`, PNG and JPEG files of the given (height, width) sizes."""
    rng = np.random.default_rng(0)
    for label, (height, width) in zip(("cat", "dog"), sizes, strict=True):
        folder = root / label
        folder.mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            encoded = tf.io.encode_png(pixels) if i % 2 == 0 else tf.io.encode_jpeg(pixels)
            (folder / f"{label}{i}.{'png' if i % 2 == 0 else 'jpg'}").write_bytes(encoded.numpy())
    if bad_file:
        (root / "dog" / bad_file).write_bytes(b"this is no image")
    return root


def test_an_image_directory_is_converted_to_png_examples_of_one_size(tmp_path):
    source = make_image_dir(tmp_path / "photos")
    path, image, classes = images.convert_image_directory(source, tmp_path / "data", size=16, channels=1)
    assert classes == ["cat", "dog"] and image.shape == (16, 16, 1)
    examples = read_examples(path)
    assert [value(e, "label") for e in examples] == [b"cat"] * 3 + [b"dog"] * 3
    assert {images.png_shape(value(e, "image")) for e in examples} == {(16, 16, 1)}
    assert images.check_images(str(tmp_path / "data"), image) == 6

    schema = images.image_schema(image, classes)
    assert images.image_feature_of(schema) == "image"
    label = [f for f in schema.feature if f.name == "label"][0]
    assert list(label.string_domain.value) == ["cat", "dog"] and list(label.not_in_environment) == ["SERVING"]


def test_converting_images_of_different_sizes_needs_a_size(tmp_path):
    source = make_image_dir(tmp_path / "photos")
    with pytest.raises(
        ImageDataError, match=r"dog0.png is 10x12 pixels but .*cat0.png is 9x6; pass --size N"
    ):
        images.convert_image_directory(source, tmp_path / "data")
    assert not (tmp_path / "data" / images.RECORDS_FILE).exists()


def test_converting_refuses_unreadable_files_and_a_single_class(tmp_path):
    source = make_image_dir(tmp_path / "photos", sizes=((8, 8), (8, 8)), bad_file="broken.png")
    with pytest.raises(ImageDataError, match=r"broken.png is not a readable image .*; remove or re-save it"):
        images.convert_image_directory(source, tmp_path / "data")
    single = tmp_path / "one"
    (single / "only").mkdir(parents=True)
    with pytest.raises(ImageDataError, match=r"holds 1 class folder\(s\)"):
        images.convert_image_directory(single, tmp_path / "data")


def test_image_input_is_validated():
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ImageInput(shape=(8, 8, 2))
    with pytest.raises(ValueError, match="go together"):
        ImageInput(pair_feature="other_image")
    assert ImageInput(resize=32).model_shape == (32, 32, 1)
    assert ImageInput.from_dict(PAIRS.to_dict()) == PAIRS
