"""Starting the compiled pipeline on Vertex AI Pipelines: a PipelineJob created through
google-cloud-aiplatform, with the project, region, service account, pipeline root and labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class VertexError(RuntimeError):
    """Vertex AI could not be reached, refused the job, or no credentials were found."""


@dataclass(frozen=True)
class VertexTarget:
    project: str
    region: str
    service_account: str | None = None
    labels: dict = field(default_factory=dict)
    # The regional endpoint unless set (e.g. a private endpoint, or a local one in the tests).
    api_endpoint: str | None = None


def credentials():
    """Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud's, or the machine's."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        found, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError as error:
        raise VertexError(
            "no Google Cloud credentials found: run `gcloud auth application-default login`, or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service account's key file"
        ) from error
    return found


def submit(
    job_path: Path, target: VertexTarget, arguments: dict, pipeline_root: str, display_name: str
) -> str:
    """Creates the PipelineJob from the compiled `pipeline_job.json`; returns the job's resource name."""
    from google.cloud import aiplatform

    creds = credentials()
    aiplatform.init(
        project=target.project,
        location=target.region,
        credentials=creds,
        api_endpoint=target.api_endpoint,
        # REST rather than gRPC: the same API, and an endpoint URL may name its scheme.
        api_transport="rest",
    )
    job = aiplatform.PipelineJob(
        display_name=display_name,
        template_path=str(job_path),
        pipeline_root=pipeline_root,
        parameter_values=arguments,
        labels=dict(target.labels),
        project=target.project,
        location=target.region,
        credentials=creds,
    )
    try:
        job.submit(service_account=target.service_account)
    except Exception as error:  # noqa: BLE001 - google.api_core raises many kinds
        message = " ".join(str(error).split())[:300]
        raise VertexError(
            f"Vertex AI refused the pipeline job in {target.project}/{target.region}: {message}"
        ) from error
    return job.resource_name
