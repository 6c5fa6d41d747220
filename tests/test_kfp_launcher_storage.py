"""The launcher harness's storage steps (tests/kfp_launcher.py) against an S3 server on loopback: its own S3
client configured as KFP's launcher configures it, and `DownloadBlob`'s semantics at both backend releases,
the directory-marker failure the field reported (kubeflow/pipelines#13476) included; and the entrypoint's
removal of such markers from gs:// outputs, on fake-gcs-server."""

from __future__ import annotations

import pytest

from pipeline.kubeflow.entrypoint import remove_directory_markers
from pipeline.storage.locations import KFP_S3_SECRET
from tests.conftest import requires_s3
from tests.kfp_launcher import BACKENDS, Launcher, LauncherStorage, TaskFailed
from tests.object_store import gcs_server, s3_server, secret_of, tensorflow_gcs

BUCKET = "artifacts"
MODEL = "root/p/run/Trainer/salt/model"
OBJECTS = {
    f"{MODEL}/Format-Serving/saved_model.pb": b"graph",
    f"{MODEL}/Format-Serving/variables/variables.index": b"index",
    f"{MODEL}/Format-Serving/fingerprint.pb": b"fp",
    f"{MODEL}_run/train/events": b"logs",  # the Trainer's other output: its key only shares the prefix
}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        for key, body in OBJECTS.items():
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
        yield server


def environment(s3, **overrides) -> dict:
    """A task's environment as the compiled spec and the cluster's secret give it."""
    values = {**s3.keys, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": s3.endpoint}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


@pytest.mark.parametrize("backend", BACKENDS)
def test_download_copies_every_object_under_the_artifact(s3, tmp_path, backend):
    storage = LauncherStorage("s3", None, {}, environment(s3))
    local = tmp_path / "s3" / BUCKET / MODEL
    copied = storage.download_blob(BUCKET, str(local), MODEL, BACKENDS[backend])
    assert (local / "Format-Serving" / "saved_model.pb").read_bytes() == b"graph"
    assert (local / "Format-Serving" / "variables" / "variables.index").read_bytes() == b"index"
    sibling = local.with_name("model_run") / "train" / "events"
    # 2.5.0 lists by the bare prefix and writes model_run's keys beside the model; 2.17.0 skips them.
    only_under = BACKENDS[backend].only_keys_under_prefix
    assert sibling.exists() == (not only_under)
    assert copied == sum(len(b) for k, b in OBJECTS.items() if not only_under or k.startswith(MODEL + "/"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_directory_marker_fails_the_download_as_in_the_field(s3, tmp_path, backend):
    client = s3.client()
    marked = "root/p/run/Trainer/marked/model"
    client.put_object(Bucket=BUCKET, Key=f"{marked}/Format-Serving/", Body=b"")
    client.put_object(Bucket=BUCKET, Key=f"{marked}/Format-Serving/saved_model.pb", Body=b"graph")
    storage = LauncherStorage("s3", None, {}, environment(s3))
    with pytest.raises(
        TaskFailed, match="failed to create local directory .*Format-Serving.*not a directory"
    ):
        storage.download_blob(BUCKET, str(tmp_path / "model"), marked, BACKENDS[backend])
    assert (tmp_path / "model" / "Format-Serving").is_file()  # the marker became an empty file


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("AWS_ENDPOINT_URL_S3", "no endpoint: no kfp-launcher providers and no AWS_ENDPOINT_URL_S3"),
        ("AWS_ACCESS_KEY_ID", "found no credentials"),
        ("AWS_REGION", "no region"),
    ],
)
def test_the_launcher_client_needs_the_endpoint_keys_and_region_from_the_environment(s3, missing, message):
    """Without a kfp-launcher providers entry, the AWS SDK's environment; TensorFlow's S3_ENDPOINT is not
    read."""
    with pytest.raises(TaskFailed, match=message):
        LauncherStorage("s3", None, {}, environment(s3, **{missing: None}, S3_ENDPOINT=s3.endpoint))


def test_the_kfp_launcher_providers_config_with_a_secret(s3, tmp_path):
    host = s3.endpoint.removeprefix("http://")
    providers = {
        "s3": {
            "default": {
                "endpoint": host,
                "region": "us-east-1",
                "disableSSL": True,
                "credentials": {
                    "fromEnv": False,
                    "secretRef": {"secretName": "minio", "accessKeyKey": "access", "secretKeyKey": "secret"},
                },
            }
        }
    }
    keys = {"access": s3.keys["AWS_ACCESS_KEY_ID"], "secret": s3.keys["AWS_SECRET_ACCESS_KEY"]}
    storage = LauncherStorage("s3", providers, {"minio": keys}, {})  # nothing in the environment
    storage.download_blob(BUCKET, str(tmp_path / "model"), MODEL, BACKENDS["2.17.0"])
    assert (tmp_path / "model" / "Format-Serving" / "fingerprint.pb").read_bytes() == b"fp"
    with pytest.raises(TaskFailed, match="could not find specified keys 'access' or 'secret'"):
        LauncherStorage("s3", providers, {}, {})


def test_the_entrypoint_removes_directory_markers_from_gs_outputs(tmp_path):
    """TensorFlow's gs:// writes a zero-byte `dir/` object for every directory it makes (GcsFileSystem::
    CreateDir); the entrypoint deletes them under the task's outputs, and nothing else."""
    with gcs_server(tmp_path / "gcs.log") as gcs:
        client = gcs.client()
        bucket = client.create_bucket("artifacts")
        for name, body in (
            (f"{MODEL}/", b""),
            (f"{MODEL}/Format-Serving/", b""),
            (f"{MODEL}/Format-Serving/saved_model.pb", b"graph"),
            (f"{MODEL}/Format-Serving/variables/", b""),
            (f"{MODEL}/Format-Serving/variables/variables.index", b"index"),
            (f"{MODEL}/Format-Serving/assets/", b""),  # an empty directory: nothing under it either way
            (f"{MODEL}_run/", b""),  # another output's marker
        ):
            bucket.blob(name).upload_from_string(body)
        removed = remove_directory_markers([f"gs://artifacts/{MODEL}", "s3://other/x"], client)
        assert sorted(removed) == sorted(
            f"gs://artifacts/{MODEL}/{d}"
            for d in ("", "Format-Serving/", "Format-Serving/variables/", "Format-Serving/assets/")
        )
        assert sorted(b.name for b in client.list_blobs("artifacts")) == [
            f"{MODEL}/Format-Serving/saved_model.pb",
            f"{MODEL}/Format-Serving/variables/variables.index",
            f"{MODEL}_run/",
        ]


TENSORFLOW_SAVES = """
import sys
import tensorflow as tf

class Scale(tf.Module):
    def __init__(self):
        self.weights = tf.Variable([1.0, 2.0])

    @tf.function(input_signature=[tf.TensorSpec([2], tf.float32)])
    def __call__(self, x):
        return x * self.weights

tf.saved_model.save(Scale(), sys.argv[1])
print(tf.saved_model.load(sys.argv[1])(tf.constant([3.0, 4.0])).numpy().tolist())
"""
TENSORFLOW_LOADS = """
import sys
import tensorflow as tf

print(tf.saved_model.load(sys.argv[1])(tf.constant([1.0, 1.0])).numpy().tolist())
"""


def test_tensorflows_gs_filesystem_writes_markers_that_the_entrypoint_removes(tmp_path):
    """TensorFlow's own gs:// (through tests/gcs_proxy.py to fake-gcs-server) saving a SavedModel where the
    Trainer saves one: the markers the launcher's download fails on appear; after the entrypoint's removal
    none remain and the model loads from what is left."""
    import os
    import subprocess
    import sys

    with tensorflow_gcs(tmp_path) as (gcs, tensorflow_environment):
        client = gcs.client()
        client.create_bucket("artifacts")
        environment = {**os.environ, **tensorflow_environment}
        model = f"gs://artifacts/{MODEL}/Format-Serving"
        saved = subprocess.run(
            [sys.executable, "-c", TENSORFLOW_SAVES, model], env=environment, capture_output=True, text=True
        )
        assert saved.returncode == 0, saved.stderr[-3000:]
        assert saved.stdout.strip().endswith("[3.0, 8.0]")
        names = {blob.name: blob.size for blob in client.list_blobs("artifacts")}
        assert {f"{MODEL}/Format-Serving/", f"{MODEL}/Format-Serving/variables/"} <= set(names)
        assert all(size == 0 for name, size in names.items() if name.endswith("/"))

        removed = remove_directory_markers([f"gs://artifacts/{MODEL}"], client)
        assert sorted(removed) == sorted(
            f"gs://artifacts/{name}" for name in names if name.endswith("/") and name.startswith(MODEL)
        )
        left = [blob.name for blob in client.list_blobs("artifacts")]
        assert f"{MODEL}/Format-Serving/saved_model.pb" in left
        assert not [name for name in left if name.startswith(MODEL) and name.endswith("/")]
        loaded = subprocess.run(
            [
                sys.executable,
                "-c",
                TENSORFLOW_LOADS,
                model,
            ],
            env=environment,
            capture_output=True,
            text=True,
        )
        assert loaded.returncode == 0 and loaded.stdout.strip().endswith("[1.0, 2.0]"), loaded.stderr[-3000:]


def test_with_from_env_credentials_only_2_17_keeps_the_providers_endpoint(s3, tmp_path):
    """config/s3.go + object_store.go: 2.5.0's createS3BucketSession returns nil with fromEnv, so the
    provider's endpoint is lost and the SDK's environment decides; 2.17.0 keeps it."""
    providers = {
        "s3": {"default": {"endpoint": s3.endpoint, "region": "us-east-1", "credentials": {"fromEnv": True}}}
    }
    keys_only = environment(s3, AWS_ENDPOINT_URL_S3=None)
    storage = LauncherStorage("s3", providers, {}, keys_only, BACKENDS["2.17.0"])
    storage.download_blob(BUCKET, str(tmp_path / "model"), MODEL, BACKENDS["2.17.0"])
    assert storage.session_info == {
        "Provider": "s3",
        "Params": {
            "disableSSL": "false",
            "endpoint": s3.endpoint,
            "forcePathStyle": "true",
            "fromEnv": "true",
            "maxRetries": "5",
            "region": "us-east-1",
        },
    }
    with pytest.raises(TaskFailed, match="no endpoint"):
        LauncherStorage("s3", providers, {}, keys_only, BACKENDS["2.5.0"])
    assert LauncherStorage("s3", None, {}, environment(s3)).session_info == {
        "Provider": "s3",
        "Params": {"fromEnv": "true"},
    }


@requires_s3
def test_the_tasks_take_the_store_keys_from_the_secret_the_compiled_spec_names(s3, tmp_path):
    from pipeline.cli import main

    argv = ["compile", "--output-root", f"s3://{BUCKET}/root", "--s3-endpoint", s3.endpoint]
    assert main([*argv, "--compiled-dir", str(tmp_path), "--image", "registry.local/p:1"]) == 0
    launcher = Launcher(tmp_path / "penguin-species" / "pipeline.yaml", "kfp", ".", tmp_path / "work")
    container = launcher.spec["deploymentSpec"]["executors"]["Trainer_executor"]["container"]
    with pytest.raises(TaskFailed, match="secret 'mlpipeline-minio-artifact' has no key 'accesskey'"):
        launcher.task_environment(container, "Trainer_executor")
    launcher.secrets = {KFP_S3_SECRET: secret_of(s3)}
    task_environment = launcher.task_environment(container, "Trainer_executor")
    assert task_environment["AWS_ACCESS_KEY_ID"] == s3.keys["AWS_ACCESS_KEY_ID"]
    # With the compiled environment and the secret alone, the launcher's client reaches the store.
    storage = LauncherStorage("s3", None, {}, task_environment)
    assert storage.download_blob(BUCKET, str(tmp_path / "model"), MODEL, BACKENDS["2.17.0"]) > 0
