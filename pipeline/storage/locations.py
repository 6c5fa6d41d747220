"""Locations of data, artifacts and models: a local path, gs://BUCKET/... or s3://BUCKET/....

Every layer that touches storage reads these: TensorFlow's `tf.io.gfile` (TFX's fileio, the Trainer, the
SavedModel, the Pusher: gs:// is built in, s3:// comes from tensorflow-io, see filesystems.py) and Beam's
FileSystems (ExampleGen, StatisticsGen, Transform, Evaluator: apache-beam[gcp] and [aws]). Kubeflow's own name
for its MinIO store, minio://, is neither's: it is refused with the s3:// equivalent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OBJECT_STORES = ("gs", "s3")
# The Kubernetes secret a cluster's tasks take the S3 keys from: Kubeflow Pipelines' own, for its MinIO. Its
# keys are named as KFP names them (SECRET_KEYS).
KFP_S3_SECRET = "mlpipeline-minio-artifact"
SECRET_KEYS = {"accesskey": "AWS_ACCESS_KEY_ID", "secretkey": "AWS_SECRET_ACCESS_KEY"}


class LocationError(ValueError):
    """A location no layer of the pipeline can read: one line with the fix."""


def scheme(location: str) -> str | None:
    found = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", location)
    return found.group(1).lower() if found else None


def check_location(location: str, what: str = "location") -> str:
    """`location` when TensorFlow and Beam can both read it; else a LocationError naming the fix."""
    kind = scheme(location)
    if kind is None or kind in OBJECT_STORES:
        return location
    if kind == "minio":
        rest = location.split("://", 1)[1]
        raise LocationError(
            f"{what} {location}: minio:// is Kubeflow Pipelines' name for its MinIO store, which neither "
            f"TensorFlow nor Beam reads; use s3://{rest} with --s3-endpoint "
            "http://minio-service.kubeflow:9000 (the in-cluster MinIO) and the store's keys in "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    raise LocationError(f"{what} {location}: {kind}:// is not supported; use a local path, gs:// or s3://")


@dataclass(frozen=True)
class S3Settings:
    """How to reach an S3-compatible store: its endpoint (MinIO, or another S3 service; None: AWS) and its
    region. Keys come from the usual AWS variables (AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY), never from the configuration, so they stay out of compiled specs: on a cluster
    each task takes them from the Kubernetes secret `secret` (keys `accesskey`, `secretkey`; None: the
    cluster gives them otherwise, e.g. a role bound to the service account)."""

    endpoint: str | None = None
    region: str = "us-east-1"
    secret: str | None = KFP_S3_SECRET

    def __post_init__(self):
        if self.endpoint is not None and scheme(self.endpoint) not in ("http", "https"):
            raise LocationError(
                f"--s3-endpoint {self.endpoint}: expected http://HOST:PORT or https://HOST:PORT"
            )

    def environment(self) -> dict[str, str]:
        """What TensorFlow's S3 filesystem (tensorflow-io: S3_ENDPOINT, S3_USE_HTTPS) and the AWS SDKs
        (AWS_ENDPOINT_URL_S3: Kubeflow Pipelines' launcher without a `kfp-launcher` providers entry, boto3)
        read; both read AWS_REGION."""
        values = {"AWS_REGION": self.region}
        if self.endpoint:
            values["S3_ENDPOINT"] = self.endpoint
            values["S3_USE_HTTPS"] = "1" if self.endpoint.startswith("https://") else "0"
            values["AWS_ENDPOINT_URL_S3"] = self.endpoint
        return values

    def beam_args(self) -> tuple[str, ...]:
        """What Beam's S3 filesystem (apache-beam[aws], boto3) reads; keys from boto3's usual chain."""
        args = [f"--s3_region_name={self.region}"]
        if self.endpoint:
            args.append(f"--s3_endpoint_url={self.endpoint}")
        return tuple(args)
