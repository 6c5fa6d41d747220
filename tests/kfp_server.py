"""A stand-in for the Kubeflow Pipelines API server: the v2beta1 REST endpoints kfp.Client calls, with
every request recorded (method, path, query, body) for the tests to inspect."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/apis/v2beta1"


class FakeKubeflow:
    def __init__(self):
        self.requests: list[dict] = []
        self.pipelines: dict[str, str] = {}  # display name -> id
        self.experiments: dict[str, str] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                self._answer("POST")

            def _answer(self, method):
                url = urllib.parse.urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {
                    "method": method,
                    "path": url.path,
                    "query": urllib.parse.parse_qs(url.query),
                    "body": body,
                }
                server.requests.append(record)
                status, payload = server.respond(record)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def json_body(self, record) -> dict:
        return json.loads(record["body"] or b"{}")

    def respond(self, record) -> tuple[int, dict]:
        method, path = record["method"], record["path"]
        if path == f"{API}/healthz":
            return 200, {"multi_user": False}
        if method == "GET" and path == f"{API}/pipelines":
            return 200, {
                "pipelines": [{"pipeline_id": i, "display_name": n} for n, i in self.pipelines.items()]
            }
        if method == "POST" and path == f"{API}/pipelines/upload":
            name = record["query"]["name"][0]
            self.pipelines[name] = f"pipeline-{len(self.pipelines) + 1}"
            return 200, {"pipeline_id": self.pipelines[name], "display_name": name}
        if method == "POST" and path == f"{API}/pipelines/upload_version":
            pipeline_id = record["query"]["pipelineid"][0]
            return 200, {"pipeline_id": pipeline_id, "pipeline_version_id": f"version-{len(self.requests)}"}
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
            return 200, {**self.json_body(record), "recurring_run_id": "recurring-1", "status": "ENABLED"}
        return 404, {"error": f"no route for {method} {path}", "code": 5}

    def calls(self, method: str, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"] == f"{API}{path}"]
