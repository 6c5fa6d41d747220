"""Sending the compiled pipeline to a Kubeflow Pipelines API with the kfp client: a pipeline version per
upload, runs of that version and one recurring run of the pipeline's latest version, in the user's namespace,
with credentials."""

from __future__ import annotations

import os
import socket
import time
import urllib.parse
from dataclasses import dataclass
from functools import partial
from pathlib import Path

CONNECT_TIMEOUT_S = 10
# Where Kubeflow mounts a pod's token for the Pipelines API (KFP's ServiceAccountTokenVolumeCredentials).
TOKEN_PATH_VARIABLE = "KF_PIPELINES_SA_TOKEN_PATH"
IN_CLUSTER_TOKEN = "/var/run/secrets/kubeflow/pipelines/token"


class KubeflowError(RuntimeError):
    """The Kubeflow Pipelines host could not be reached or refused a request."""


@dataclass(frozen=True)
class Connection:
    """Where and as whom: the API's URL, the user's namespace (multi-user Kubeflow), a bearer token."""

    host: str
    namespace: str | None = None
    token: str | None = None


def read_token(token_file: str | None = None) -> str | None:
    """The bearer token: from `token_file`, else the file KF_PIPELINES_SA_TOKEN_PATH names, else Kubeflow's
    in-cluster token when it exists; None without one (a cluster without authentication)."""
    path = token_file or os.environ.get(TOKEN_PATH_VARIABLE)
    if path is None and os.path.exists(IN_CLUSTER_TOKEN):
        path = IN_CLUSTER_TOKEN
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as error:
        raise KubeflowError(
            f"cannot read the token file {path} ({error.strerror}); pass --token-file FILE"
        ) from error
    if not token:
        raise KubeflowError(f"the token file {path} is empty; pass --token-file FILE holding a bearer token")
    return token


def _client(connection: Connection):
    """A kfp.Client, after checking that something listens there (the client itself retries for half a
    minute and then fails with a stack trace)."""
    host = connection.host
    parsed = urllib.parse.urlparse(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise KubeflowError(f"--host {host!r} is not a URL; pass e.g. http://localhost:8080")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise KubeflowError(
            f"cannot reach Kubeflow Pipelines at {host} ({error.strerror or error}); check the URL, or "
            "port-forward the UI: kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80"
        ) from error
    import kfp

    return kfp.Client(
        host=host, namespace=connection.namespace or "kubeflow", existing_token=connection.token or None
    )


def _call(what: str, connection: Connection, request):
    try:
        return request()
    except KubeflowError:
        raise
    except Exception as error:  # noqa: BLE001 - kfp_server_api raises ApiException and urllib3 errors
        status = getattr(error, "status", None)
        if status in (401, 403):
            raise KubeflowError(
                f"Kubeflow Pipelines at {connection.host} refused the credentials (HTTP {status}) to {what}"
                f"{f' in namespace {connection.namespace}' if connection.namespace else ''}; pass a valid "
                f"token with --token-file or {TOKEN_PATH_VARIABLE}, and a namespace you may use (--namespace)"
            ) from error
        message = " ".join(str(error).split())[:300]
        raise KubeflowError(
            f"Kubeflow Pipelines at {connection.host} refused to {what}: {message}"
        ) from error


def upload(client, connection: Connection, spec_path: Path, pipeline_name: str) -> tuple[str, str]:
    """Uploads the pipeline, or a new version of it when one of that name exists; returns the pipeline's
    id and the version's."""
    namespace = connection.namespace
    pipeline_id = _call("list pipelines", connection, lambda: _pipeline_id(client, pipeline_name, namespace))
    if pipeline_id is None:
        pipeline = _call(
            "upload the pipeline",
            connection,
            lambda: client.upload_pipeline(str(spec_path), pipeline_name=pipeline_name, namespace=namespace),
        )
        pipeline_id = pipeline.pipeline_id
        versions = _call(
            "list the pipeline's versions", connection, lambda: client.list_pipeline_versions(pipeline_id)
        )
        return pipeline_id, versions.pipeline_versions[0].pipeline_version_id
    version = f"{pipeline_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    uploaded = _call(
        "upload a pipeline version",
        connection,
        lambda: client.upload_pipeline_version(
            str(spec_path), pipeline_version_name=version, pipeline_id=pipeline_id
        ),
    )
    return pipeline_id, uploaded.pipeline_version_id


def _pipeline_id(client, name: str, namespace: str | None) -> str | None:
    """get_pipeline_id lists shared pipelines only; a namespaced one is listed in its namespace."""
    import json

    predicate = {"operation": "EQUALS", "key": "display_name", "stringValue": name}
    found = client.list_pipelines(filter=json.dumps({"predicates": [predicate]}), namespace=namespace)
    return found.pipelines[0].pipeline_id if found.pipelines else None


def _publish(spec_path: Path, connection: Connection, pipeline_name: str, experiment: str):
    """Connects, uploads the pipeline (a new version) and finds or creates the experiment: the client and
    the ids of the pipeline, the version and the experiment."""
    client = _client(connection)
    pipeline_id, version_id = upload(client, connection, spec_path, pipeline_name)
    experiment_id = _call(
        "create the experiment",
        connection,
        lambda: client.create_experiment(name=experiment, namespace=connection.namespace).experiment_id,
    )
    return client, pipeline_id, version_id, experiment_id


def submit(
    spec_path: Path,
    connection: Connection,
    pipeline_name: str,
    experiment: str,
    arguments: dict,
    pipeline_root: str,
) -> dict:
    """Uploads the compiled pipeline (a new version), and starts a run of that version; returns the ids."""
    client, pipeline_id, version_id, experiment_id = _publish(
        spec_path, connection, pipeline_name, experiment
    )
    run = _call(
        "start a run",
        connection,
        lambda: client.run_pipeline(
            experiment_id=experiment_id,
            job_name=f"{pipeline_name} {time.strftime('%Y-%m-%d %H:%M:%S')}",
            pipeline_id=pipeline_id,
            version_id=version_id,
            params=arguments,
            pipeline_root=pipeline_root,
        ),
    )
    return {"pipeline_id": pipeline_id, "version_id": version_id, "run_id": run.run_id}


def schedule(
    spec_path: Path,
    connection: Connection,
    pipeline_name: str,
    experiment: str,
    cron: str,
    arguments: dict,
    pipeline_root: str,
) -> dict:
    """Uploads the compiled pipeline (a new version) and makes the pipeline's one recurring run on `cron`
    (six fields, seconds first, as KFP reads it); returns the ids, with those of the recurring runs it
    replaced.

    The recurring run names the pipeline, not a version: KFP's backend (2.5 and later) then runs the
    pipeline's latest version at each trigger, so a later `submit` of new code is what the schedule runs
    next, rather than the code of the day it was scheduled. A repeated `schedule` replaces the pipeline's
    recurring runs in the experiment: the new one is created first, then the old ones are deleted, so the
    pipeline is never left unscheduled and never scheduled twice once this returns.
    """
    import kfp_server_api

    client, pipeline_id, version_id, experiment_id = _publish(
        spec_path, connection, pipeline_name, experiment
    )
    previous = _call(
        "list the recurring runs",
        connection,
        lambda: _recurring_runs_of(client, pipeline_id, experiment_id, connection.namespace),
    )
    body = kfp_server_api.V2beta1RecurringRun(
        experiment_id=experiment_id,
        display_name=f"{pipeline_name} on {cron}",
        mode=kfp_server_api.RecurringRunMode.ENABLE,
        trigger=kfp_server_api.V2beta1Trigger(cron_schedule=kfp_server_api.V2beta1CronSchedule(cron=cron)),
        # One run at a time: two runs of a schedule never push over each other.
        max_concurrency=1,
        # No version: the latest at each trigger.
        pipeline_version_reference=kfp_server_api.V2beta1PipelineVersionReference(pipeline_id=pipeline_id),
        runtime_config=kfp_server_api.V2beta1RuntimeConfig(pipeline_root=pipeline_root, parameters=arguments),
    )
    recurring = _call("create the recurring run", connection, lambda: _create_recurring_run(client, body))
    for old in previous:
        _call(f"delete the recurring run {old}", connection, partial(client.delete_recurring_run, old))
    return {
        "pipeline_id": pipeline_id,
        "version_id": version_id,
        "experiment_id": experiment_id,
        "recurring_run_id": recurring.recurring_run_id,
        "replaced": previous,
    }


def _recurring_runs_of(client, pipeline_id: str, experiment_id: str, namespace: str | None) -> list[str]:
    """The ids of the experiment's recurring runs of the pipeline (of any of its versions)."""
    found, token = [], ""
    while True:
        page = client.list_recurring_runs(
            page_token=token, page_size=100, experiment_id=experiment_id, namespace=namespace
        )
        for recurring in page.recurring_runs or ():
            reference = recurring.pipeline_version_reference
            if reference is not None and reference.pipeline_id == pipeline_id:
                found.append(recurring.recurring_run_id)
        token = page.next_page_token
        if not token:
            return found


def _create_recurring_run(client, body):
    """The generated API's create call (kfp.Client's own requires a version): its name in kfp-server-api
    2.0 and in 2.1 and later."""
    service = client.recurring_runs
    create = getattr(service, "recurring_run_service_create_recurring_run", None)
    return (create or service.create_recurring_run)(body)
