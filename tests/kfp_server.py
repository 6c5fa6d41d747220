"""A stand-in for the Kubeflow Pipelines API server: the v2beta1 REST endpoints kfp.Client calls, with
every request recorded (method, path, query, headers, body) for the tests to inspect.

With `token`, every request must carry `Authorization: Bearer <token>` (401 otherwise), as behind Kubeflow's
authentication; with `namespace`, pipelines, experiments and runs live in that namespace (a multi-user
Kubeflow profile): a request for another namespace is refused with 403, as KFP's authorization does.
"""

from __future__ import annotations

import json

from tests.recording_server import RecordingServer

API = "/apis/v2beta1"


class FakeKubeflow(RecordingServer):
    def __init__(self, token: str | None = None, namespace: str | None = None):
        super().__init__()
        self.token = token
        self.namespace = namespace
        self.pipelines: dict[str, str] = {}  # display name -> id
        self.versions: dict[str, list[str]] = {}  # pipeline id -> version ids
        self.experiments: dict[str, str] = {}
        self.recurring_runs: dict[str, dict] = {}  # id -> the recurring run as created

    def json_body(self, record) -> dict:
        return json.loads(record["body"] or b"{}")

    def _refusal(self, record) -> tuple[int, dict] | None:
        if self.token is not None and record["headers"].get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "Unauthenticated: invalid bearer token", "code": 16}
        if self.namespace is None:
            return None
        asked = record["query"].get("namespace", [None])[0]
        if record["method"] == "POST" and record["path"] == f"{API}/experiments":
            asked = self.json_body(record).get("namespace")
        listing = record["method"] == "GET" and record["path"] in (f"{API}/pipelines", f"{API}/experiments")
        creating = record["path"] in (f"{API}/pipelines/upload", f"{API}/experiments")
        if (listing or creating) and asked != self.namespace:
            return 403, {"error": f"PermissionDenied: no access to namespace {asked!r}", "code": 7}
        return None

    def respond(self, record) -> tuple[int, dict]:
        method, path = record["method"], record["path"]
        if path == f"{API}/healthz":
            return 200, {"multi_user": self.namespace is not None}
        refused = self._refusal(record)
        if refused:
            return refused
        if method == "GET" and path == f"{API}/pipelines":
            predicates = json.loads(record["query"].get("filter", ["{}"])[0]).get("predicates", [])
            names = {p["stringValue"] for p in predicates if p["key"] == "display_name"}
            listed = [{"pipeline_id": i, "display_name": n} for n, i in self.pipelines.items()]
            return 200, {"pipelines": [p for p in listed if not names or p["display_name"] in names]}
        if method == "POST" and path == f"{API}/pipelines/upload":
            name = record["query"]["name"][0]
            pipeline_id = self.pipelines[name] = f"pipeline-{len(self.pipelines) + 1}"
            self.versions[pipeline_id] = [f"version-{pipeline_id}-1"]
            return 200, {"pipeline_id": pipeline_id, "display_name": name}
        if method == "GET" and path.startswith(f"{API}/pipelines/") and path.endswith("/versions"):
            pipeline_id = path.split("/")[-2]
            return 200, {
                "pipeline_versions": [
                    {"pipeline_id": pipeline_id, "pipeline_version_id": v} for v in self.versions[pipeline_id]
                ]
            }
        if method == "POST" and path == f"{API}/pipelines/upload_version":
            pipeline_id = record["query"]["pipelineid"][0]
            version = f"version-{pipeline_id}-{len(self.versions[pipeline_id]) + 1}"
            self.versions[pipeline_id].append(version)
            return 200, {"pipeline_id": pipeline_id, "pipeline_version_id": version}
        if method == "GET" and path == f"{API}/experiments":
            return 200, {
                "experiments": [{"experiment_id": i, "display_name": n} for n, i in self.experiments.items()]
            }
        if method == "POST" and path == f"{API}/experiments":
            name = self.json_body(record)["display_name"]
            self.experiments[name] = f"experiment-{len(self.experiments) + 1}"
            return 200, {"experiment_id": self.experiments[name], "display_name": name}
        if method == "POST" and path == f"{API}/runs":
            return 200, {**self.json_body(record), "run_id": "run-1", "state": "PENDING"}
        if method == "POST" and path == f"{API}/recurringruns":
            body = self.json_body(record)
            reference = body.get("pipeline_version_reference") or {}
            if not reference.get("pipeline_id") and not body.get("pipeline_spec"):
                # The backend's validation (apiserver's server/recurring_run_server.go).
                return 400, {"error": "InvalidInputError: neither pipeline spec nor id is set", "code": 3}
            recurring_id = f"recurring-{len(self.recurring_runs) + 1}"
            created = {**body, "recurring_run_id": recurring_id, "status": "ENABLED"}
            self.recurring_runs[recurring_id] = created
            return 200, created
        if method == "GET" and path == f"{API}/recurringruns":
            experiment = record["query"].get("experiment_id", [None])[0]
            listed = [r for r in self.recurring_runs.values() if experiment in (None, r.get("experiment_id"))]
            return 200, {"recurringRuns": listed, "total_size": len(listed)}  # as the proto names it
        if method == "DELETE" and path.startswith(f"{API}/recurringruns/"):
            recurring_id = path.rsplit("/", 1)[1]
            if self.recurring_runs.pop(recurring_id, None) is None:
                return 404, {"error": f"recurring run {recurring_id} not found", "code": 5}
            return 200, {}
        return 404, {"error": f"no route for {method} {path}", "code": 5}

    def calls(self, method: str, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"] == f"{API}{path}"]


def uploaded_file(record) -> bytes:
    """The file of a multipart upload (the pipeline spec kfp.Client sends)."""
    from email.parser import BytesParser

    head = f"Content-Type: {record['headers']['content-type']}\r\n\r\n".encode()
    message = BytesParser().parsebytes(head + record["body"])
    (part,) = message.get_payload()
    return part.get_payload(decode=True)
