"""Building a PipelineConfig from what a user asks for: one place for every command (run, retrain, schedule,
compile, submit), with typed requests, so that the command line only parses and prints.

The domain decisions live here: the bundled task or the user's data, the label and the task it implies
(from the schema and, for integer labels, the data), the gates and their defaults, image data, spans, Beam
arguments, and for a cluster the pipeline root and per-task resources.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass

from pipeline.config import IDENTIFIER_TAG, PipelineConfig, TaskResources, local_beam_args
from pipeline.settings import apply
from pipeline.storage.filesystems import s3_unavailable
from pipeline.storage.locations import KFP_S3_SECRET, LocationError, S3Settings, check_location, scheme
from pipeline.storage.metadata import MetadataError, MetadataLocation
from pipeline.tasks import DEFAULT_TASK, task_config
from trainer_module.features import CLASSIFICATION

GATES = ("min_accuracy", "max_accuracy_drop", "min_auc", "max_rmse", "max_rmse_increase")


class ConfigError(ValueError):
    """The request cannot be turned into a configuration: one line naming the problem and the fix."""


@dataclass(frozen=True)
class ConfigRequest:
    """What a command asks for, in the user's terms. Unset (None) fields take the task's or data's default.

    `cluster`: the configuration is compiled for Kubeflow Pipelines / Vertex AI, so the output root and data
    root are locations the cluster reads (gs://..., s3://..., or paths inside the image), kept as given; the
    data is read here only when it is a local directory.
    """

    task: str | None = None
    data_root: str | None = None
    schema: str | None = None
    label: str | None = None
    output_root: str = PipelineConfig.output_root
    pipeline_name: str | None = None
    # Options that set a field of the configuration tree (pipeline/settings.py, `option_settings`); None:
    # not given, the preset's (or the file's) value stands.
    train_steps: int | None = None
    eval_steps: int | None = None
    model: str | None = None
    slices: tuple[str, ...] | None = None
    min_accuracy: float | None = None
    max_accuracy_drop: float | None = None
    max_unlabelled_share: float | None = None
    max_vocabulary: int | None = None
    min_auc: float | None = None
    max_rmse: float | None = None
    max_rmse_increase: float | None = None
    # A local run on a bucket (output root gs:// or s3://): where this machine keeps the metadata store,
    # logs, lock, temporary files and reports (default: outputs/object-store/<scheme>/<bucket>/<path>).
    local_root: str | None = None
    tune: bool | None = None
    tune_trials: int | None = None
    tune_steps: int | None = None
    span_window: int | None = None
    warm_start: bool | None = None
    # The Trainer's loop (fit, custom) and tf.distribute strategy; None: the task's.
    loop: str | None = None
    strategy: str | None = None
    beam_workers: int = 1
    beam_args: tuple[str, ...] = ()
    # A cluster's compile: see the class docstring.
    cluster: bool = False
    # Cluster: the data root holds span-<N> directories; `pin_spans` fixes the newest ones now (a one-off
    # run), otherwise ExampleGen takes the newest when each run starts (a schedule).
    read_spans: bool = False
    pin_spans: bool = False
    pipeline_root: str | None = None
    task_resources: tuple[tuple[str, TaskResources], ...] = ()
    # An S3-compatible store's endpoint (MinIO) and region, for s3:// locations; keys from AWS_* variables.
    s3_endpoint: str | None = None
    s3_region: str = S3Settings.region
    # Cluster: the Kubernetes secret holding the S3 keys ("none": the cluster gives them otherwise).
    s3_secret: str = KFP_S3_SECRET
    # The ML Metadata store: a SQLite path or mysql://USER@HOST:PORT/DATABASE (None: the output root's
    # metadata.sqlite); a MySQL password from this file, else PIPELINE_METADATA_PASSWORD.
    metadata: str | None = None
    metadata_password_file: str | None = None
    # Unlabelled data scored at the end of each run (batch inference).
    inference_data: str | None = None
    # Settings by name: a YAML file of them, and NAME=VALUE assignments (pipeline/settings.py).
    config_file: str | None = None
    settings: tuple[str, ...] = ()


# The option whose tree field has another name.
_OPTION_FIELDS = {"slices": "slice_features"}


def option_settings(request: ConfigRequest) -> dict:
    """The tree's fields the request's options set: setting name -> value (options not given are None)."""
    from pipeline.settings import settable

    names = settable()
    found = {}
    for option in dataclasses.fields(ConfigRequest):
        value = getattr(request, option.name)
        name = _OPTION_FIELDS.get(option.name, option.name)
        name = name if name in names else f"trainer.{name}"
        if value is not None and name in names:
            found[name] = value
    return found


def named_settings(request: ConfigRequest) -> dict:
    """The settings by name, in precedence order: the file's under the options', then `--set`'s; an option
    and a `--set` of the same field refused (ConfigError)."""
    from pipeline.settings import SettingError, load_file, parse_assignments

    try:
        from_file = load_file(request.config_file) if request.config_file else {}
        assigned = parse_assignments(request.settings)
    except SettingError as error:
        raise ConfigError(str(error)) from error
    options = option_settings(request)
    both = sorted(set(options) & set(assigned))
    if both:
        raise ConfigError(f"{both[0]} is set both by its option and by --set {both[0]}=...; give one of them")
    return from_file | options | assigned


@dataclass(frozen=True)
class BuiltConfig:
    config: PipelineConfig
    gate: str  # one line per model head: what the Evaluator requires


def build_config(request: ConfigRequest) -> BuiltConfig:
    """The PipelineConfig `request` asks for, and the description of its evaluation gate."""
    from pipeline.images import image_feature_of
    from pipeline.task import serving_excluded_features

    if request.data_root and request.task:
        raise ConfigError("--task selects a bundled task; with --data-root pass --schema and --label instead")
    for what, location in (
        ("--output-root", request.output_root),
        ("--data-root", request.data_root),
        ("--pipeline-root", request.pipeline_root),
        ("--inference-data", request.inference_data),
    ):
        if location:
            try:
                check_location(location, what)
            except LocationError as error:
                raise ConfigError(str(error)) from error
    if request.beam_args and request.beam_workers != 1:
        raise ConfigError(
            "--beam-workers sets up Beam's local runner; with --beam-arg give the runner's own options "
            "(e.g. --beam-arg=--direct_num_workers=2), not both"
        )
    if request.cluster and (request.metadata or request.metadata_password_file):
        raise ConfigError(
            "--metadata is for runs on this machine; on Kubeflow Pipelines and Vertex AI the cluster's own "
            "ML Metadata store records the runs"
        )
    check_beam_runner(request.beam_args, request.output_root, request.data_root)
    output_root = _location(request.output_root)
    changes: dict = {"metadata": metadata_location(request.metadata, request.metadata_password_file)}
    if not request.cluster and scheme(output_root):
        changes["local_root"] = state_root(output_root, request.local_root)
    if request.data_root:
        defaults = PipelineConfig(output_root=output_root)
    else:
        try:
            defaults = task_config(request.task or DEFAULT_TASK, output_root=output_root)
        except ValueError as error:
            raise ConfigError(str(error)) from error
    if request.data_root:
        if not request.schema:
            raise ConfigError(
                "--schema is required with --data-root: draft one with `python -m pipeline schema "
                "--data-root DIR --label COLUMN`, review it, then pass --schema FILE"
            )
        data_root = _location(request.data_root)
        changes.update(data_root=data_root, pipeline_name=pipeline_name_of(data_root), slice_features=())
    if request.schema:
        changes["schema_path"] = os.path.abspath(request.schema)
    schema = load_schema(changes.get("schema_path", defaults.schema_path))
    label = request.label
    if label is None and request.data_root:
        excluded = serving_excluded_features(schema)
        if len(excluded) != 1:
            raise ConfigError(
                "pass --label COLUMN: the schema does not mark exactly one feature as absent in SERVING"
            )
        label = excluded[0]
    label = label or defaults.label_key

    data_dir = changes.get("data_root", defaults.data_dir)
    readable = bool(request.data_root) and _is_local_dir(data_dir, request.cluster)
    image_feature = image_feature_of(schema) if request.data_root else None
    values = None
    if image_feature:
        if not readable:
            raise ConfigError(
                f"image data at {data_dir} must be a local directory (its images are checked here)"
            )
        changes.update(_image_changes(data_dir, schema, image_feature, label))
    elif readable:
        values = label_column(data_files(data_dir), label)
    named = named_settings(request)
    gates_given = {gate for gate in GATES if gate in named} | ({"max_rmse"} if defaults.max_rmse else set())
    decided = decide_from_data(
        schema, label, values, bool(request.data_root), "images" in changes, gates_given, data_dir
    )
    changes.update(decided.changes)
    if request.pipeline_root:
        changes["pipeline_root_uri"] = request.pipeline_root.rstrip("/")
    if request.inference_data:
        inference_data = _location(request.inference_data)
        if not request.cluster and "://" not in inference_data and not os.path.isdir(inference_data):
            raise ConfigError(
                f"--inference-data {request.inference_data} is not a directory; pass a directory of the "
                "files to score"
            )
        changes["inference_data"] = inference_data
    if request.task_resources:
        resources = dict(defaults.task_resources) | dict(request.task_resources)
        changes["task_resources"] = tuple(sorted(resources.items()))
    changes["read_spans"] = request.read_spans
    try:
        changes["beam_pipeline_args"] = tuple(request.beam_args) or local_beam_args(request.beam_workers)
        s3 = _s3_settings(request)
        if s3:
            changes.update(s3=s3, beam_pipeline_args=changes["beam_pipeline_args"] + s3.beam_args())
        config = apply(dataclasses.replace(defaults, **changes), named)
    except ValueError as error:
        raise ConfigError(f"invalid configuration: {error}") from error
    if config.trainer.strategy == "multi_worker" and not (request.cluster or os.environ.get("TF_CONFIG")):
        raise ConfigError(
            "--strategy multi_worker needs the cluster's workers in TF_CONFIG (set on each worker, e.g. "
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}); '
            "on one machine use mirrored"
        )
    if request.pin_spans:
        from pipeline.spans import with_latest_spans

        config = with_latest_spans(config)
        if config.span_range is None:
            raise ConfigError(f"--spans: no span-<N> directory in {config.data_dir}")
    return BuiltConfig(config, gate_description(config) + decided.gate_note)


@dataclass(frozen=True)
class DataDecisions:
    """What a schema and its data decide: configuration changes, and the gate's reason when the data set
    it."""

    changes: dict
    gate_note: str = ""


def decide_from_data(
    schema, label: str, values, users_data: bool, images: bool, gates_given: set[str], data_dir: str
) -> DataDecisions:
    """The label's task and classes, the columns the schema leaves out of the model (identifiers) or reads
    as dates, and, for a user's data, the gate relative to the data (the label's spread, or its most
    frequent class) unless `gates_given` names it: from the schema and the label's `values` (None: not read
    here). Pure: ConfigError where they cannot decide."""
    from pipeline.task import LabelError, infer_task

    changes = {
        "label_key": label,
        "identifiers": tuple(f.name for f in schema.feature if IDENTIFIER_TAG in f.annotation.tag),
        "dates": tuple(
            (f.name, f.time_domain.string_format) for f in schema.feature if f.time_domain.string_format
        ),
    }
    try:
        distinct = int(values.nunique()) if values is not None else None
        task = infer_task(schema, label, distinct)
    except LabelError as error:
        raise ConfigError(str(error)) from error
    changes["task"] = task
    if values is not None:
        changes["num_classes"] = distinct if task == CLASSIFICATION else None
    elif users_data and not images:
        changes["num_classes"] = _schema_classes(schema, label) if task == CLASSIFICATION else None
    if images and task != CLASSIFICATION:
        raise ConfigError(f"label {label!r} of image data must name classes (a string or small integer)")
    if task != CLASSIFICATION and "max_rmse" not in gates_given:
        if values is None:
            raise ConfigError(
                f"pass --max-rmse for the regression label {label!r}: its data ({data_dir}) is not read here"
            )
        changes["max_rmse"] = float(values.std(ddof=0))
        return DataDecisions(
            changes, " (the label's standard deviation: the model must beat always predicting the mean)"
        )
    if task == CLASSIFICATION and users_data and "min_accuracy" not in gates_given and values is not None:
        majority, share = majority_class(values)
        changes["min_accuracy"] = relative_min_accuracy(share)
        return DataDecisions(
            changes,
            f" (always predicting the most frequent class, {majority!r}, scores {share:.4g}: the model must "
            f"remove at least {MAJORITY_ERRORS_REMOVED:.0%} of its errors; --min-accuracy sets a bound)",
        )
    return DataDecisions(changes)


def _s3_settings(request: ConfigRequest) -> S3Settings | None:
    """The S3 store's settings when a location is s3:// (or an endpoint was given)."""
    locations = (request.output_root, request.data_root, request.pipeline_root)
    if not request.s3_endpoint and not any(loc and scheme(loc) == "s3" for loc in locations):
        return None
    unavailable = s3_unavailable()
    if unavailable:
        raise ConfigError(unavailable)
    try:
        secret = None if request.s3_secret == "none" else request.s3_secret
        return S3Settings(endpoint=request.s3_endpoint, region=request.s3_region, secret=secret)
    except LocationError as error:
        raise ConfigError(str(error)) from error


# Beam's runners that run in the run's own process or this machine's processes; any other runs elsewhere.
LOCAL_RUNNERS = ("direct", "bundlebaseddirect", "switchingdirect", "interactive")
# How a remote runner's workers get the project's code (its CSV ExampleGen executor, preprocessing_fn).
CODE_OPTIONS = ("setup_file", "sdk_container_image", "worker_harness_container_image", "environment_config")


def check_beam_runner(beam_args: tuple[str, ...], output_root: str, data_root: str | None) -> None:
    """Refuses (ConfigError) `--beam-arg`s naming a runner whose workers run elsewhere (Dataflow, Flink,
    Spark, a portable job server) with what those workers cannot use: local files, or no way to get the
    project's code."""
    if not beam_args:
        return
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(list(beam_args)).get_all_options(retain_unknown_options=True)
    runner = options.get("runner") or "DirectRunner"
    name = runner.lower().removesuffix("runner")
    if name in LOCAL_RUNNERS:
        return
    for what, location in (("output root", output_root), ("data root", data_root)):
        if location and scheme(location) is None:
            raise ConfigError(
                f"--beam-arg=--runner={runner} runs the data stages on workers elsewhere, which cannot read "
                f"the local {what} {location}: use a bucket they can read (--{what.replace(' ', '-')} "
                "gs://BUCKET/... or s3://BUCKET/...)"
            )
    if not any(options.get(option) for option in CODE_OPTIONS):
        raise ConfigError(
            f"--beam-arg=--runner={runner}: its workers need the project's code; add "
            "--beam-arg=--setup_file=./setup.py (installed on each worker) or the project image, "
            "--beam-arg=--sdk_container_image=IMAGE (Dataflow) or --beam-arg=--environment_config=... "
            "(Flink, Spark: see docs/scaling.md)"
        )
    setup_file = options.get("setup_file")
    if setup_file and (os.path.basename(setup_file) != "setup.py" or not os.path.isfile(setup_file)):
        raise ConfigError(
            f"--beam-arg=--setup_file={setup_file}: expected the path of the project's setup.py "
            "(--beam-arg=--setup_file=./setup.py from the checkout)"
        )


def registry_config(
    task: str | None,
    pipeline_name: str | None,
    output_root: str,
    s3_endpoint: str | None = None,
    s3_region: str = S3Settings.region,
    metadata: str | None = None,
    metadata_password_file: str | None = None,
) -> PipelineConfig:
    """The configuration naming a pipeline's store and serving directory, for models/rollback/report; the
    output root may be a cluster's (gs://, s3://: its serving directory is read there)."""
    try:
        check_location(output_root, "--output-root")
    except LocationError as error:
        raise ConfigError(str(error)) from error
    request = ConfigRequest(
        output_root=output_root, s3_endpoint=s3_endpoint, s3_region=s3_region, cluster=True
    )
    try:
        config = task_config(
            task or DEFAULT_TASK, output_root=_location(output_root), s3=_s3_settings(request)
        )
    except ValueError as error:
        raise ConfigError(str(error)) from error
    config = config.replace(metadata=metadata_location(metadata, metadata_password_file))
    return config.replace(pipeline_name=pipeline_name) if pipeline_name else config


def metadata_location(value: str | None, password_file: str | None) -> MetadataLocation | None:
    """The store `--metadata` names (None: the default SQLite file); a SQLite path made absolute."""
    if value is None:
        if password_file:
            raise ConfigError("--metadata-password-file goes with --metadata mysql://USER@HOST:PORT/DATABASE")
        return None
    try:
        location = MetadataLocation.parse(value, password_file)
    except MetadataError as error:
        raise ConfigError(str(error)) from error
    if not location.is_mysql:
        return MetadataLocation(sqlite_path=os.path.abspath(location.sqlite_path))
    return location


def _location(path: str) -> str:
    """A local path made absolute; a bucket (gs://, s3://) kept as given."""
    if "://" in path:
        return path.rstrip("/")
    return os.path.abspath(path)


def state_root(output_root: str, local_root: str | None = None) -> str:
    """Where a run on this machine keeps its metadata store, logs, lock and temporary files: `local_root`,
    else the output root when it is local, else outputs/object-store/<scheme>/<bucket>/<path>."""
    if local_root:
        return os.path.abspath(local_root)
    kind = scheme(output_root)
    if kind is None:
        return os.path.abspath(output_root)
    return os.path.abspath(
        os.path.join(PipelineConfig.output_root, "object-store", kind, output_root.split("://", 1)[1])
    )


def _is_local_dir(path: str, cluster: bool) -> bool:
    if "://" in path:
        return False
    if cluster:
        return os.path.isdir(path)
    if not os.path.isdir(path):
        raise ConfigError(f"data root {path} is not a directory; pass a directory of CSV files")
    return True


def pipeline_name_of(data_root: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", os.path.basename(os.path.normpath(data_root.split("://")[-1])))
    return name or "pipeline"


def data_files(data_root: str) -> list[str]:
    """The files a run reads: those of the data root, or of its newest span-<N> directory."""
    from pipeline.csv_check import data_files as files_of
    from pipeline.spans import latest_range

    if not os.path.isdir(data_root):
        raise ConfigError(f"data root {data_root} is not a directory; pass a directory of CSV files")
    newest = latest_range(data_root)
    files = files_of(data_root, newest)
    if not files:
        where = os.path.join(data_root, f"span-{newest[1]}") if newest else data_root
        raise ConfigError(f"data root {where} holds no files; put one or more CSV files with a header in it")
    return files


# A user's classification data: the default accuracy gate must beat always predicting the most frequent
# class by removing this share of that predictor's errors (the bundled tasks keep their curated gates).
MAJORITY_ERRORS_REMOVED = 0.25


def majority_class(values) -> tuple[str, float]:
    """The most frequent label value and its share of the labelled rows."""
    shares = values.value_counts(normalize=True)
    return str(shares.index[0]), float(shares.iloc[0])


def relative_min_accuracy(majority_share: float) -> float:
    return round(majority_share + MAJORITY_ERRORS_REMOVED * (1 - majority_share), 4)


def label_column(files: list[str], label: str):
    import pandas as pd

    columns = []
    for path in files:
        header = list(pd.read_csv(path, nrows=0).columns)
        if label not in header:
            raise ConfigError(
                f"label column {label!r} is not in {path}; its columns are: {', '.join(header)}"
            )
        columns.append(pd.read_csv(path, usecols=[label])[label])
    return pd.concat(columns)


def load_schema(path: str):
    import tensorflow_data_validation as tfdv

    if not os.path.isfile(path):
        raise ConfigError(f"schema file {path} does not exist; draft one with `python -m pipeline schema`")
    try:
        return tfdv.load_schema_text(path)
    except Exception as error:  # noqa: BLE001 - text_format raises several types
        raise ConfigError(
            f"schema file {path} does not parse: {one_line(error)}; fix it or draft a new one"
        ) from error


def one_line(error: Exception, limit: int = 300) -> str:
    return " ".join(str(error).split())[:limit]


def _schema_classes(schema, label: str) -> int | None:
    """The number of classes the schema names for `label` (a string domain or an integer range)."""
    from pipeline.task import label_feature

    feature = label_feature(schema, label)
    domain = next((d for d in schema.string_domain if d.name == feature.domain), None)
    if feature.HasField("string_domain"):
        return len(feature.string_domain.value) or None
    if domain is not None:
        return len(domain.value) or None
    if feature.HasField("int_domain") and feature.int_domain.HasField("max"):
        return int(feature.int_domain.max - feature.int_domain.min + 1)
    return None


def _image_changes(data_root: str, schema, feature: str, label: str) -> dict:
    """The configuration of a user's image data: classified by the digits task's ResNet (resized to 32x32
    when smaller), a slice per class, the size every image must have taken from the first one."""
    from pipeline.images import ImageDataError, first_image_shape
    from trainer_module.features import ImageInput

    try:
        shape = first_image_shape(data_root, feature)
    except ImageDataError as error:
        raise ConfigError(str(error)) from error
    digits = task_config("digits")
    label_feature = next((f for f in schema.feature if f.name == label), None)
    classes = label_feature.string_domain.value if label_feature is not None else []
    changes = dict(
        images=ImageInput(feature=feature, shape=shape, resize=max(32, shape[0], shape[1])),
        trainer=digits.trainer,
        slice_features=(label,),
        min_accuracy=digits.min_accuracy,
        max_accuracy_drop=digits.max_accuracy_drop,
    )
    if classes:
        changes["num_classes"] = len(classes)
    return changes


def gate_description(config: PipelineConfig) -> str:
    """One line per model head: what the Evaluator requires of it."""
    if config.is_similarity:
        from trainer_module.features import SAME_CLASS_DISTANCE

        return (
            f"pair gate on {config.images.pair_label!r}: pair accuracy (distance < {SAME_CLASS_DISTANCE:g} "
            f"means the same class) >= {config.min_accuracy:g}; at most {config.max_accuracy_drop:g} below "
            "the last blessed model's"
        )
    return "\n".join(
        _head_gate(config, label, task, main=label == config.label_key)
        for label, task in config.labels.items()
    )


def _head_gate(config: PipelineConfig, label: str, task: str, main: bool) -> str:
    from trainer_module.features import REGRESSION

    if task == REGRESSION:
        bound = f"RMSE <= {config.max_rmse:.4g}" if config.max_rmse is not None else "no absolute RMSE bound"
        return (
            f"regression gate on {label!r}: {bound}; RMSE at most {config.max_rmse_increase:g} "
            "above and mean absolute error no worse than the last blessed model's"
        )
    num_classes = config.num_classes if main else None
    classes = f"{num_classes} classes" if num_classes else "classes"
    auc = f", AUC >= {config.min_auc:g}" if num_classes == 2 else ""
    return (
        f"classification gate on {label!r} ({classes}): accuracy >= {config.min_accuracy:g}{auc}; "
        f"at most {config.max_accuracy_drop:g} below the last blessed model's accuracy"
    )
