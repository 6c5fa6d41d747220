"""A local endpoint for Vertex AI's REST API, Google's OAuth token exchange and Cloud Storage's bucket
lookup: records the PipelineJob the client creates. Requests must carry the credentials of the service
account key it wrote (a fresh RSA key): either a JWT that key signed (what Google's clients send for a
service account) or the access token this server hands out for such a JWT at `token_uri`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.recording_server import RecordingServer

ACCESS_TOKEN = "ya29.local-test-token"


class FakeVertex(RecordingServer):
    def __init__(self):
        super().__init__()
        self.buckets: dict[str, dict] = {}
        self.public_key: bytes | None = None
        self.email: str | None = None

    def authorized(self, record) -> bool:
        from google.auth import jwt

        scheme, _, token = record["headers"].get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token or self.public_key is None:
            return False
        if token == ACCESS_TOKEN:
            record["identity"] = self.email
            return True
        try:
            claims = jwt.decode(token, certs=self.public_key, verify=True, audience=None)
        except ValueError:
            return False
        record["identity"] = claims.get("iss")
        return claims.get("iss") == self.email

    def respond(self, record) -> tuple[int, dict]:
        denied = 401, {"error": {"code": 401, "message": "Request had invalid authentication credentials."}}
        if record["path"] == "/token":
            return 200, {"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        if record["path"].startswith("/storage/v1/b"):
            return self.storage(record)
        if record["path"].endswith("/pipelineJobs"):
            if not self.authorized(record):
                return denied
            job = json.loads(record["body"])
            job_id = record["query"]["pipelineJobId"][0]
            return 200, {
                **job,
                "name": f"{record['path'][len('/v1/') :]}/{job_id}",
                "state": "PIPELINE_STATE_PENDING",
            }
        return 404, {"error": {"code": 404, "message": f"no route for {record['path']}"}}

    def storage(self, record) -> tuple[int, dict]:
        """Cloud Storage as the SDK uses it before creating a job: it looks the pipeline root's bucket up,
        creates it when missing and lets the job's service account read and write it."""
        parts = record["path"].split("/")[4:]  # /storage/v1/b/<bucket>[/iam]
        if record["method"] == "POST" and not parts:
            bucket = json.loads(record["body"])
            self.buckets[bucket["name"]] = {**bucket, "project": record["query"]["project"][0]}
            return 200, bucket
        if not parts or parts[0] not in self.buckets:
            return 404, {"error": {"code": 404, "message": "The specified bucket does not exist."}}
        if parts[1:] == ["iam"]:
            if record["method"] == "PUT":
                self.buckets[parts[0]]["iam"] = json.loads(record["body"])
            return 200, self.buckets[parts[0]].get("iam", {"bindings": [], "etag": "CAE="})
        return 200, self.buckets[parts[0]]

    def jobs(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/pipelineJobs")]

    def service_account_key(self, path: Path, email: str) -> Path:
        """A service account key file (a fresh RSA key) whose token exchange goes to this server."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.email = email
        self.public_key = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": email.split("@")[1].split(".")[0],
                    "private_key_id": "local",
                    "private_key": pem,
                    "client_email": email,
                    "client_id": "1",
                    "token_uri": f"{self.url}/token",
                }
            )
        )
        return path
