"""Transform reading its examples a batch at a time (components/transform.py) gives what TFX's Transform
gives on the same examples: the same vocabularies and, example for example, the same transformed values
(integers exactly; floats within float32 rounding: the analyzers' sums depend on the order batches arrive in,
as they do run to run in TFX's own Transform)."""

from __future__ import annotations

import glob
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from apache_beam.testing import util as beam_testing
from tfx.components import Transform as TfxTransform
from tfx.orchestration import metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

import pipeline.pipeline as pipeline_module
from components import transform
from pipeline.config import DEFAULT_SCHEMA
from pipeline.data import write_generated_penguins
from pipeline.local_runner import scratch_temp_dir
from pipeline.tasks import task_config

ROWS = 3000
FILES = 4


def run_data_stage(data_root: str, output_root: str) -> str:
    config = task_config("penguin_species", output_root=output_root, data_root=data_root)
    os.makedirs(output_root, exist_ok=True)
    connection = metadata.sqlite_metadata_connection_config(config.metadata_path)
    with scratch_temp_dir():
        LocalDagRunner().run(pipeline_module.create_pipeline(config, connection, data_only=True))
    (transform,) = glob.glob(os.path.join(output_root, "*", "Transform"))
    return transform


def transformed(transform_dir: str, split: str) -> list[dict[str, np.ndarray]]:
    files = glob.glob(os.path.join(transform_dir, "transformed_examples", "*", f"Split-{split}", "*"))
    rows = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        features = tf.train.Example.FromString(record).features.feature
        rows.append(
            {
                name: np.array(feature.int64_list.value or feature.float_list.value)
                for name, feature in features.items()
            }
        )
    # Row order is the writer's; the label and the rounded floats give each row a key.
    return sorted(rows, key=lambda row: tuple(np.round(row[name], 4).tolist() for name in sorted(row)))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("transform_reading")
    data_root = str(root / "data")
    for part in range(FILES):  # ExampleGen writes a file per input file and split: several to read
        write_generated_penguins(os.path.join(data_root, f"penguins-{part}.csv"), ROWS // FILES, seed=part)
    ours = run_data_stage(data_root, str(root / "ours"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline_module, "Transform", TfxTransform)
        theirs = run_data_stage(data_root, str(root / "tfx"))
    return ours, theirs


def test_the_project_transform_reads_many_files(both):
    ours, _ = both
    examples = glob.glob(
        os.path.join(os.path.dirname(ours), "CsvExampleGen", "examples", "*", "Split-train", "*")
    )
    assert len(examples) > 3


def test_the_same_vocabularies(both):
    ours, theirs = both
    for asset in glob.glob(os.path.join(theirs, "transform_graph", "*", "transform_fn", "assets", "*")):
        mine = glob.glob(
            os.path.join(ours, "transform_graph", "*", "transform_fn", "assets", os.path.basename(asset))
        )
        assert mine and open(mine[0], "rb").read() == open(asset, "rb").read()


@pytest.mark.parametrize("split", ["train", "eval"])
def test_the_same_transformed_examples(both, split):
    ours, theirs = both
    mine, tfx_rows = transformed(ours, split), transformed(theirs, split)
    assert len(mine) == len(tfx_rows) > ROWS / 5
    for a, b in zip(mine, tfx_rows, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            if a[name].dtype.kind == "i":
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)
            else:
                np.testing.assert_allclose(a[name], b[name], rtol=1e-6, atol=1e-6, err_msg=name)


def test_the_batch_source_reads_every_example_once_as_batches(both):
    """Through Beam, as Transform applies it: every example of every file once, in batches of at most
    BATCH_SIZE, with the projected columns; its projection keeps the batch reading."""
    ours, _ = both
    schema = tfdv.load_schema_text(str(DEFAULT_SCHEMA))
    pattern = os.path.join(os.path.dirname(ours), "CsvExampleGen", "examples", "*", "Split-*", "*")
    source = transform.BatchReadTFExampleRecord(file_pattern=pattern, schema=schema)
    projected = source.Project(["species", "body_mass_g"])
    assert isinstance(projected.projected, transform.BatchReadTFExampleRecord)  # what its source is

    def check(found):
        (batches,) = found
        assert sum(rows for rows, _ in batches) == ROWS
        assert max(rows for rows, _ in batches) <= transform.BATCH_SIZE
        assert {names for _, names in batches} == {("body_mass_g", "species")}

    with beam.Pipeline() as p:
        batches = (
            p
            | projected.BeamSource()
            | beam.Map(lambda batch: (batch.num_rows, tuple(sorted(batch.schema.names))))
        )
        beam_testing.assert_that(batches | beam.combiners.ToList(), check)
