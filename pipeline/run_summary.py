"""What a pipeline run did, read back from ML Metadata: per-node outcome, blessing, push."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.storage.metadata import MetadataLocation, as_location

Execution = metadata_store_pb2.Execution
STATE_NAMES = {value: name for name, value in Execution.State.items()}


@dataclass
class Predictions:
    path: str
    rows: int
    model_version: int | None  # None: nothing was scored (see `note`)
    note: str | None = None

    def describe(self) -> str:
        if self.model_version is None:
            return self.note or "nothing was scored"
        return f"{self.rows} rows scored by version {self.model_version}: {self.path}"


@dataclass
class RunSummary:
    run_id: str
    node_states: dict[str, str] = field(default_factory=dict)  # node id -> COMPLETE, CACHED, FAILED...
    # node id -> seconds from the execution's registration to its last update (its outcome)
    seconds: dict[str, float] = field(default_factory=dict)
    blessed: bool | None = None  # None when the Evaluator did not run
    pushed_destination: str | None = None  # the version this run pushed
    already_served: str | None = None  # set when the blessed model was already the served version
    # node id -> output key -> artifact URI (cached nodes included: they point at the reused artifacts)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    span: int | None = None  # the newest span ExampleGen read (None: data without spans)
    # The Trainer's custom_config (labels, code fingerprint, spans, settings) when it ran or was cached
    trainer_config: dict | None = None
    report: str | None = None  # the run report's path, once written (pipeline/report/)
    # Batch inference: the predictions file, its rows and the version that scored them, or a note of why
    # nothing was scored (None: no inference data configured, or it did not run)
    predictions: Predictions | None = None
    # Rows ExampleGen left out for an empty label: (left out, rows read, label columns); None: not counted
    unlabelled: tuple[int, int, list[str]] | None = None

    @property
    def unlabelled_note(self) -> str | None:
        """ "8 of 406 rows have no mpg: not used for training or evaluation", or None when none were."""
        from components.csv_example_gen import unlabelled_note

        return unlabelled_note(*self.unlabelled) if self.unlabelled and self.unlabelled[0] else None

    @property
    def stopped_at(self) -> str | None:
        """The component that failed, if one did."""
        return next((node for node, state in self.node_states.items() if state == "FAILED"), None)

    def outcome(self, anomalies: int = 0) -> str:
        """The run's outcome in one sentence, as the terminal's summary and the report say it (`anomalies`:
        how many the data gate stopped on)."""
        import os

        stopped, nothing = self.stopped_at, "nothing was trained or pushed"
        if stopped == "DataGate" and not anomalies and self.unlabelled_note:
            return f"Stopped by the data gate: {self.unlabelled_note}, more than allowed; nothing was trained"
        if stopped == "DataGate":
            return (
                f"Stopped by the data gate: {anomalies} anomal{'y' if anomalies == 1 else 'ies'}; {nothing}"
            )
        if stopped == "DriftGate":
            return f"Stopped by the drift gate: the data moved from the previous span; {nothing}"
        if stopped == "ServingCheck":
            return (
                "Blessed by the Evaluator but stopped by the serving check: the model cannot serve; "
                "nothing was pushed"
            )
        if stopped:
            return f"Stopped: {stopped} failed; nothing was pushed (see the run's log)"
        if self.blessed and self.pushed_destination:
            version = os.path.basename(self.pushed_destination.rstrip("/"))
            return f"Blessed and pushed: {self.pushed_destination} (version {version})"
        if self.blessed and self.already_served:
            return f"Blessed; already served as {self.already_served} (not pushed again)"
        if self.blessed:
            return "Blessed; this same model's push was handled by an earlier run (cached)"
        if self.blessed is False:
            return "Not blessed: the model missed the gate; nothing was pushed, the served model is unchanged"
        return "The run did not reach evaluation"


def open_store(store: MetadataLocation | str) -> metadata_store.MetadataStore:
    """The store, read-only where the backend allows it (SQLite), from its location or a SQLite path."""
    return as_location(store).open(readonly=True)


def _custom_value(artifact, key):
    if key not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[key]
    return getattr(value, value.WhichOneof("value"))


def run_summaries(location: MetadataLocation | str, pipeline_name: str) -> list[RunSummary]:
    """Every run of `pipeline_name` in the store, oldest first."""
    from components.csv_example_gen import LABELS, ROWS_READ, UNLABELLED_ROWS

    store = open_store(location)
    node_of_execution = {}
    prefix = f"{pipeline_name}."
    for node in store.get_contexts_by_type("node"):
        if node.name.startswith(prefix):
            for execution in store.get_executions_by_context(node.id):
                node_of_execution[execution.id] = node.name[len(prefix) :]

    summaries = []
    for run in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id):
        executions = sorted(
            (e for e in store.get_executions_by_context(run.id) if e.id in node_of_execution),
            key=lambda e: e.id,
        )
        if not executions:
            continue
        summary = RunSummary(run_id=run.name)
        outputs = _output_artifacts(store, executions)
        for execution in executions:
            node = node_of_execution[execution.id]
            state = STATE_NAMES[execution.last_known_state]
            summary.node_states[node] = state
            summary.seconds[node] = (
                execution.last_update_time_since_epoch - execution.create_time_since_epoch
            ) / 1000
            if node == "Trainer" and "custom_config" in execution.custom_properties:
                summary.trainer_config = json.loads(execution.custom_properties["custom_config"].string_value)
            for key, artifact in outputs.get(execution.id, []):
                summary.outputs.setdefault(node, {})[key] = artifact.uri
                if node == "CsvExampleGen" and key == "examples" and _has_spans(execution):
                    summary.span = _custom_value(artifact, "span")
                if node == "CsvExampleGen" and key == "examples" and _custom_value(artifact, ROWS_READ):
                    summary.unlabelled = (
                        _custom_value(artifact, UNLABELLED_ROWS),
                        _custom_value(artifact, ROWS_READ),
                        json.loads(_custom_value(artifact, LABELS)),
                    )
                if node == "Evaluator" and _custom_value(artifact, "blessed") is not None:
                    summary.blessed = _custom_value(artifact, "blessed") == 1
                # A cached Pusher reports an earlier push; only a completed one acted in this run.
                if node == "Pusher" and state == "COMPLETE":
                    if _custom_value(artifact, "pushed") == 1:
                        summary.pushed_destination = _custom_value(artifact, "pushed_destination")
                    summary.already_served = _custom_value(artifact, "already_served")
                if node.startswith("BatchInference") and key == "predictions":
                    summary.predictions = Predictions(
                        path=f"{artifact.uri.rstrip('/')}/predictions.csv",
                        rows=_custom_value(artifact, "rows") or 0,
                        model_version=_custom_value(artifact, "model_version"),
                        note=_custom_value(artifact, "note"),
                    )
        summaries.append(summary)
    return summaries


def _output_artifacts(store, executions) -> dict[int, list]:
    """Execution id -> [(output key, artifact)]."""
    events = store.get_events_by_execution_ids([e.id for e in executions])
    outputs = [e for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in outputs])}
    by_execution: dict[int, list] = {}
    for event in outputs:
        key = event.path.steps[0].key if event.path.steps else ""
        by_execution.setdefault(event.execution_id, []).append((key, artifacts[event.artifact_id]))
    return by_execution


def _has_spans(execution) -> bool:
    """ExampleGen read a range of span directories, not one undivided dataset."""
    config = execution.custom_properties.get("range_config")
    return config is not None and bool(config.string_value)


def previous_span_statistics(
    location: MetadataLocation | str, pipeline_name: str, before_span: int
) -> str | None:
    """The statistics URI of the newest run that read a span older than `before_span`, if any."""
    if not as_location(location).exists():
        return None
    for summary in reversed(run_summaries(location, pipeline_name)):
        statistics = summary.outputs.get("StatisticsGen", {}).get("statistics")
        if summary.span is not None and summary.span < before_span and statistics:
            return statistics
    return None


def removed_artifacts(location: MetadataLocation | str, pipeline_name: str) -> list[str]:
    """Output directories of the latest run that no longer exist (deleted by hand, or a lost disk): the
    cache would hand them to the next components."""
    if not as_location(location).exists():
        return []
    summary = latest_run(location, pipeline_name)
    if summary is None:
        return []
    uris = {
        uri
        for node, outputs in summary.outputs.items()
        if summary.node_states.get(node) in ("COMPLETE", "CACHED")
        for uri in outputs.values()
    }
    from tfx.dsl.io import fileio

    return sorted(uri for uri in uris if uri and not fileio.exists(uri))


def execution_properties(location: MetadataLocation | str) -> dict[str, dict]:
    """The execution properties of each component class's first execution in the store, by the class's name
    (e.g. "Transform", "FileBasedExampleGen"), as ML Metadata holds them."""
    store = open_store(location)
    type_names = {t.id: t.name for t in store.get_execution_types()}
    properties = {}
    for execution in store.get_executions():
        component = type_names[execution.type_id].rsplit(".", 1)[-1]
        properties.setdefault(
            component, {name: _custom_value(execution, name) for name in execution.custom_properties}
        )
    return properties


def latest_run(location: MetadataLocation | str, pipeline_name: str) -> RunSummary | None:
    summaries = run_summaries(location, pipeline_name)
    return summaries[-1] if summaries else None


def node_execution(location: MetadataLocation | str, run_id: str, node_suffix: str):
    """(the execution of the run `run_id` whose component type ends with `node_suffix`, e.g. "Evaluator";
    its input artifacts by key; its output artifacts by key; its execution properties), the artifacts as
    TFX artifacts, for running a component's executor again on the same inputs."""
    from tfx.types import artifact_utils

    store = open_store(location)
    (context,) = [c for c in store.get_contexts_by_type("pipeline_run") if c.name == run_id]
    type_names = {t.id: t.name for t in store.get_execution_types()}
    (execution,) = [
        e for e in store.get_executions_by_context(context.id) if type_names[e.type_id].endswith(node_suffix)
    ]
    inputs, outputs = {}, {}
    for event in store.get_events_by_execution_ids([execution.id]):
        (artifact,) = store.get_artifacts_by_id([event.artifact_id])
        (artifact_type,) = store.get_artifact_types_by_id([artifact.type_id])
        side = inputs if event.type in (event.INPUT, event.DECLARED_INPUT) else outputs
        side.setdefault(event.path.steps[0].key, []).append(
            artifact_utils.deserialize_artifact(artifact_type, artifact)
        )
    properties = {
        name: getattr(value, value.WhichOneof("value"))
        for name, value in execution.custom_properties.items()
        if value.WhichOneof("value") in ("string_value", "int_value", "double_value")
    }
    return execution, inputs, outputs, properties
