"""The scoring job: CSV files -> the model's `serving_default` through Beam's RunInference -> one CSV of the
input columns and the prediction columns, rows in input order.

Each block of a file (about a megabyte of rows) is one Beam element: its text columns, kept for the output,
and its serialized tf.Examples, sent to `serving_default` as one request, as a TF Serving client would send
them (Beam's RunInference with a model handler for the SavedModel's signature: it loads the model once per
worker and shares it between threads). tfx-bsl's RunInference, built on the same transform, cannot score
these models: its predict post-processing splits every output per example and fails on a rank-1 string
output such as `classes` (`AttributeError: 'bytes' object has no attribute 'dtype'`, tfx-bsl 1.16).

Each scored block is written as its own part file, named by file and block, so a retried bundle rewrites the
same part and no step gathers every row; the parts are then joined in order into a temporary file beside the
output, renamed to the output once complete. Nothing is left behind when anything fails.
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
import uuid

import apache_beam as beam
import pyarrow as pa
import pyarrow.csv as pcsv
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference

from pipeline.inference import columns, records, rows

SIGNATURE = "serving_default"


@dataclasses.dataclass
class Scored:
    output: str
    rows: int
    version: int
    files: int


class ServingDefault(ModelHandler):
    """Beam's model handler for a SavedModel's `serving_default`: a batch of serialized tf.Examples in, the
    signature's outputs (name -> numpy array) out. One element is one request (a block of rows)."""

    def __init__(self, model_dir: str):
        super().__init__()
        self.model_dir = model_dir

    def load_model(self):
        import tensorflow as tf

        # The loaded object, not only its signature: the signature's variables live as long as it does.
        return tf.saved_model.load(self.model_dir)

    def run_inference(self, batch, model, inference_args=None):
        import tensorflow as tf

        signature = model.signatures[SIGNATURE]
        for examples in batch:
            outputs = signature(examples=tf.constant(examples))
            yield PredictionResult(None, {name: value.numpy() for name, value in outputs.items()})

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}  # a block is already a request


class _WritePart(beam.DoFn):
    def __init__(self, spec: dict, parts_dir: str):
        self.spec, self.parts_dir = spec, parts_dir

    def process(self, element):
        from apache_beam.io.filesystems import FileSystems

        (file_index, block_index, batch), result = element
        table = pa.Table.from_batches([batch])
        for name, values in columns.prediction_columns(self.spec, result.inference).items():
            table = table.append_column(name, values)
        buffer = io.BytesIO()
        pcsv.write_csv(table, buffer, write_options=pcsv.WriteOptions(include_header=False))
        path = posixpath.join(self.parts_dir, f"part-{file_index:06d}-{block_index:08d}.csv")
        with FileSystems.create(path) as f:
            f.write(buffer.getvalue())


def predict(
    serving_dir: str, data_root: str, output: str, version: int | None = None, beam_args: tuple[str, ...] = ()
) -> Scored:
    """Scores the CSV files of `data_root` (for an image model: its TFRecords of PNG examples) with
    `version` (default: the served one) into `output`. Checks the version and every file first
    (VersionError, InputDataError, ImageDataError: one line each)."""
    from pipeline.inference.versions import load_spec, model_version

    number, model_dir = model_version(serving_dir, version)
    spec = load_spec(model_dir)
    check = records.check_records if spec.get("image") else rows.check_rows
    files, input_columns, count = check(data_root, spec)
    score(files, input_columns, model_dir, spec, output, beam_args)
    return Scored(output=output, rows=count, version=number, files=len(files))


def score(
    files: list[str],
    input_columns: list[str],
    model_dir: str,
    spec: dict,
    output: str,
    beam_args: tuple[str, ...] = (),
) -> None:
    """Scores `files` (checked, with the header `input_columns`) with the SavedModel at `model_dir` into
    `output`."""
    from apache_beam.options.pipeline_options import PipelineOptions

    parts_dir = f"{output}.parts-{uuid.uuid4().hex[:8]}"
    read = records.keyed_blocks if spec.get("image") else rows.keyed_blocks
    try:
        with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
            _ = (
                pipeline
                | "Files" >> beam.Create(list(enumerate(files)))
                | "Read" >> beam.FlatMap(read, input_columns, spec)
                | "Score" >> RunInference(KeyedModelHandler(ServingDefault(model_dir)))
                | "WriteParts" >> beam.ParDo(_WritePart(spec, parts_dir))
            )
        _join(parts_dir, [*input_columns, *columns.column_names(spec)], output)
    finally:
        _remove(parts_dir)


def _join(parts_dir: str, header: list[str], output: str) -> None:
    """Writes the header and the parts, in file and block order, to a temporary file, renamed to `output`
    once whole."""
    from tfx.dsl.io import fileio

    parts = sorted(fileio.glob(posixpath.join(parts_dir, "part-*.csv")))
    temporary = f"{output}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with fileio.open(temporary, "wb") as out:
            buffer = io.BytesIO()
            pcsv.write_csv(pa.table({name: pa.array([], pa.string()) for name in header}), buffer)
            out.write(buffer.getvalue())
            for part in parts:
                with fileio.open(part, "rb") as f:
                    out.write(f.read())
        fileio.rename(temporary, output, overwrite=True)
    finally:
        if fileio.exists(temporary):
            fileio.remove(temporary)


def _remove(path: str) -> None:
    from tfx.dsl.io import fileio

    if fileio.exists(path):
        fileio.rmtree(path)
