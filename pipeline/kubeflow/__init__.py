"""Kubeflow Pipelines and Vertex AI Pipelines: compiling the pipeline (compiler), sending it to a Kubeflow
Pipelines API (kfp_client) or to Vertex AI (vertex), and the command every compiled task runs (entrypoint)."""
