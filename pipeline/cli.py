"""`python -m pipeline run|schema`: the command line."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

from pipeline import settings
from pipeline.config import IDENTIFIER_SHARE, MODELS_HELP, PipelineConfig
from pipeline.configure import (
    ConfigError,
    ConfigRequest,
    build_config,
    data_files,
    gate_description,
    one_line,
    pipeline_name_of,
    registry_config,
    state_root,
)
from pipeline.kubeflow.compiler import default_image
from pipeline.storage.locations import KFP_S3_SECRET, S3Settings
from pipeline.storage.metadata import MetadataError
from pipeline.tasks import DEFAULT_TASK, TASKS
from trainer_module.config import LOOPS, STRATEGIES

OUTPUT_ROOT, S3_REGION = PipelineConfig.output_root, S3Settings.region


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class CommandError(Exception):
    """A command that could not do its work (bad data, a refusing server): one line, exit status 1."""


def add_metadata_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metadata",
        metavar="STORE",
        help="the ML Metadata store: a SQLite file, or mysql://USER@HOST:PORT/DATABASE (MySQL, MariaDB) "
        "to share one between machines (default: metadata.sqlite in the output root)",
    )
    parser.add_argument(
        "--metadata-password-file",
        metavar="FILE",
        help="the MySQL password's file (default: the PIPELINE_METADATA_PASSWORD variable; never on the "
        "command line)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Validate, transform, train, evaluate and push a model from CSV data with TFX.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="{run,retrain,schedule,models,rollback,report,predict,schema,images,compile,submit}",
    )

    # The options of a local run, shared by run, retrain and schedule.
    run = argparse.ArgumentParser(add_help=False)
    run.add_argument("--task", choices=TASKS, help=f"a bundled task (default: {DEFAULT_TASK})")
    run.add_argument(
        "--data-root",
        help="directory of CSV files with a header row, or of image TFRecords written by `images` "
        "(default: the task's bundled data)",
    )
    run.add_argument("--schema", help="curated schema.pbtxt (required with --data-root; see `schema`)")
    run.add_argument("--label", help="label column (default: the schema's feature absent from SERVING)")
    run.add_argument(
        "--output-root",
        default=OUTPUT_ROOT,
        help=f"where everything is written (default: {OUTPUT_ROOT})",
    )
    run.add_argument("--pipeline-name", help="name in ML Metadata (default: the data directory's name)")
    run.add_argument(
        "--local-root",
        help="with a gs:// or s3:// --output-root: where this machine keeps the metadata store, logs and "
        "reports (default: outputs/object-store/<scheme>/<bucket>/<path>)",
    )
    add_metadata_arguments(run)
    run.add_argument(
        "--inference-data",
        metavar="DIR",
        help="unlabelled CSV rows to score at the end of the run with the model served then; "
        "predictions.csv in the BatchInference output (images: the `predict` command)",
    )
    run.add_argument(
        "--train-steps",
        type=int,
        help=f"training step budget (default: the task's; {PipelineConfig.train_steps} for most)",
    )
    run.add_argument("--model", help=f"the Trainer's model: {MODELS_HELP} (default: the task's)")
    run.add_argument(
        "--eval-steps",
        type=int,
        help=f"validation batches per epoch (default: {PipelineConfig.eval_steps})",
    )
    run.add_argument(
        "--loop",
        choices=LOOPS,
        help="the Trainer's loop: Keras fit, or the custom GradientTape loop",
    )
    run.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="tf.distribute: one device, the first GPU, a replica per local GPU, or the workers in TF_CONFIG",
    )
    run.add_argument(
        "--orchestrator",
        choices=("local", "beam"),
        default="local",
        help="LocalDagRunner (default) or BeamDagRunner",
    )
    run.add_argument(
        "--beam-workers",
        type=int,
        default=1,
        metavar="N",
        help="Beam processes for the data stages: 1 (default) runs them in the run's own process "
        "(in_memory); N > 1 in N worker processes (multi_processing)",
    )
    run.add_argument(
        "--slice",
        action="append",
        dest="slices",
        metavar="FEATURE",
        help="also evaluate per value of FEATURE (repeatable)",
    )
    tuning = run.add_argument_group("hyperparameter search")
    tuning.add_argument(
        "--tune",
        action="store_true",
        default=None,
        help="search learning rate, layer width (and the Huber threshold) with the Tuner before training",
    )
    tuning.add_argument(
        "--tune-trials", type=int, help=f"models tried by the search ({PipelineConfig.tune_trials})"
    )
    tuning.add_argument(
        "--tune-steps", type=int, help=f"training steps per trial ({PipelineConfig.tune_steps})"
    )
    run.add_argument(
        "--max-vocabulary",
        type=int,
        metavar="N",
        help="a string feature keeps its N most frequent values; rarer ones share one out-of-vocabulary "
        f"bucket (default: {PipelineConfig.max_vocabulary})",
    )
    gates = run.add_argument_group("evaluation gates")
    gates.add_argument(
        "--max-unlabelled-share",
        type=float,
        metavar="SHARE",
        help="rows with an empty label cell are left out of training and evaluation; the data gate stops "
        "the run when more than this share of the rows has none "
        f"({PipelineConfig.max_unlabelled_share})",
    )
    gates.add_argument(
        "--min-accuracy",
        type=float,
        help=f"classification: lowest eval accuracy ({PipelineConfig.min_accuracy})",
    )
    gates.add_argument(
        "--max-accuracy-drop",
        type=float,
        help=f"classification: allowed drop vs the baseline ({PipelineConfig.max_accuracy_drop})",
    )
    gates.add_argument(
        "--min-auc", type=float, help=f"two classes: lowest eval AUC ({PipelineConfig.min_auc})"
    )
    gates.add_argument(
        "--max-rmse",
        type=float,
        help="regression: highest eval RMSE (default: the label's standard deviation)",
    )
    gates.add_argument(
        "--max-rmse-increase",
        type=float,
        help=f"regression: allowed RMSE rise vs the baseline ({PipelineConfig.max_rmse_increase})",
    )
    run.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when another run uses the output root, wait this long for it (default: refuse at once)",
    )
    run.add_argument(
        "--span-window",
        type=int,
        metavar="K",
        help="with span-<N> directories in the data root: train on the newest K spans "
        f"(default: {PipelineConfig.span_window})",
    )
    run.add_argument(
        "--warm-start",
        action="store_true",
        default=None,
        help="start training from the last blessed model's weights",
    )
    run.add_argument("--verbose", action="store_true", help="show the raw TFX/Beam/TensorFlow logs")
    by_name = run.add_argument_group(
        "settings by name (every field of the configuration: docs/configuration.md; lowest first: the "
        "task's preset, --config, the options above, --set)"
    )
    by_name.add_argument(
        "--config",
        dest="config_file",
        metavar="FILE",
        help="a YAML file of settings, e.g. trainer: {batch_size: 64}",
    )
    by_name.add_argument(
        "--set",
        action="append",
        dest="settings",
        metavar="NAME=VALUE",
        help="one setting, e.g. trainer.learning_rate=0.003 or trainer.hidden_units=[32,16] (repeatable)",
    )
    by_name.add_argument(
        "--show-config", action="store_true", help="print the effective configuration and stop"
    )
    run.add_argument(
        "--s3-endpoint",
        metavar="URL",
        help="an S3-compatible store for s3:// locations, e.g. http://minio-service.kubeflow:9000 (keys from "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    )
    run.add_argument("--s3-region", default=S3_REGION, help=f"the S3 store's region (default: {S3_REGION})")
    run.add_argument(
        "--beam-arg",
        action="append",
        dest="beam_args",
        metavar="ARG",
        help="a Beam pipeline argument for the data stages, e.g. --beam-arg=--runner=DataflowRunner "
        "(repeatable; instead of --beam-workers)",
    )

    commands.add_parser("run", parents=[run], help="run the pipeline (default: the bundled penguins task)")
    commands.add_parser(
        "retrain", parents=[run], help="run only if the data root holds a span newer than the last processed"
    )

    # The options of a Kubeflow compile, beyond the task, output root, data root and step budget.
    kubeflow = argparse.ArgumentParser(add_help=False)
    kubeflow.add_argument(
        "--image",
        help="container image of the project, pinned by digest or a tag per build "
        f"(default: {default_image()})",
    )
    kubeflow.add_argument(
        "--allow-mutable-image",
        action="store_true",
        help="accept an image tagged 'latest' or untagged (the cluster's cache may then reuse old results)",
    )
    kubeflow.add_argument(
        "--pipeline-root",
        help="where the cluster writes artifacts, e.g. gs://bucket/root (default: OUTPUT_ROOT/pipeline)",
    )
    kubeflow.add_argument(
        "--task-resources",
        action="append",
        metavar="TASK=cpu:N,memory:GIB[,gpus:N,gpu_type:TYPE,disk:GIB]",
        help="a task's CPUs, memory, GPUs and download disk on the cluster, e.g. "
        "Trainer=cpu:4,memory:16,gpus:1 (repeatable; default: 2 CPUs and 4 GiB for Transform, Trainer, "
        "Evaluator, 1 and 2 for the others, 2 GiB of disk each)",
    )
    kubeflow.add_argument(
        "--s3-secret",
        default=KFP_S3_SECRET,
        metavar="NAME",
        help="with an s3:// location: the Kubernetes secret the tasks take the store's keys from (keys "
        f"accesskey, secretkey; default: {KFP_S3_SECRET}, Kubeflow's MinIO; none: the cluster gives them)",
    )
    kubeflow.add_argument(
        "--compiled-dir", default="compiled", help="where the compiled files go (default: compiled/)"
    )
    kubeflow.add_argument("--experiment", default="Default", help="KFP experiment (default: Default)")
    kubeflow.add_argument(
        "--spans",
        action="store_true",
        help="the data root holds span-<N> directories: submit reads the newest (found now), a schedule "
        "the newest when each run starts",
    )
    kubeflow.add_argument("--namespace", help="the Kubeflow namespace (profile) of a multi-user cluster")
    kubeflow.add_argument(
        "--token-file",
        help="a file holding the bearer token for the Kubeflow Pipelines API (default: the file "
        "KF_PIPELINES_SA_TOKEN_PATH names, or Kubeflow's in-cluster token)",
    )
    commands.add_parser(
        "compile", parents=[run, kubeflow], help="compile for Kubeflow Pipelines (YAML) and Vertex AI (JSON)"
    )
    submit = commands.add_parser(
        "submit",
        parents=[run, kubeflow],
        help="compile, upload to Kubeflow Pipelines and start a run (--vertex: start it on Vertex AI)",
    )
    submit.add_argument("--host", help="Kubeflow Pipelines API, e.g. http://localhost:8080")
    vertex = submit.add_argument_group("Vertex AI Pipelines")
    vertex.add_argument("--vertex", action="store_true", help="create a Vertex AI PipelineJob instead")
    vertex.add_argument("--project", help="the Google Cloud project")
    vertex.add_argument("--region", help="the Vertex AI region, e.g. us-central1")
    vertex.add_argument("--service-account", help="the service account the job runs as")
    vertex.add_argument(
        "--job-label", action="append", dest="job_labels", metavar="KEY=VALUE", help="a label (repeatable)"
    )
    vertex.add_argument("--api-endpoint", help="the Vertex AI API endpoint (default: the region's)")
    schedule = commands.add_parser(
        "schedule",
        parents=[run, kubeflow],
        help="retrain on new spans every INTERVAL here (--every), or a recurring Kubeflow run (--host)",
    )
    schedule.add_argument(
        "--every", metavar="INTERVAL", help="check for a new span every 90s, 15m, 6h, 1d..."
    )
    schedule.add_argument("--max-checks", type=int, help="stop after this many checks (default: forever)")
    schedule.add_argument("--host", help="Kubeflow Pipelines API, e.g. http://localhost:8080")
    schedule.add_argument("--cron", help='with --host: six-field cron, seconds first ("0 0 3 * * *": 3 am)')

    # These commands take no training settings (--set, --config): they read what runs pushed and recorded.
    no_settings = " (no training settings: they are set on run, retrain, schedule, compile, submit)"
    models = commands.add_parser(
        "models",
        help="list the pushed model versions with their metrics and spans",
        description="List the pushed model versions with their metrics and spans." + no_settings,
    )
    report = commands.add_parser(
        "report", help="write a run's HTML report and model card (default: the latest run)"
    )
    report.add_argument("--run", help="the run id (printed by `run`; default: the latest run)")
    rollback = commands.add_parser(
        "rollback",
        help="serve an earlier pushed version (default: the previous)",
        description="Serve an earlier pushed version (default: the previous)." + no_settings,
    )
    predict = commands.add_parser(
        "predict",
        help="score CSV rows with a pushed model (default: the served version) into a CSV file",
        description="Score CSV rows with a pushed model (default: the served version) into a CSV file."
        + no_settings,
    )
    predict.add_argument(
        "--data-root", required=True, help="directory of CSV files to score (no label needed)"
    )
    predict.add_argument(
        "--output",
        required=True,
        help="the CSV file to write: the input columns, then the prediction columns",
    )
    predict.add_argument("--version", type=int, help="a pushed version (default: the one served)")
    predict.add_argument(
        "--beam-arg",
        action="append",
        dest="beam_args",
        metavar="ARG",
        help="a Beam pipeline argument for the scoring job, e.g. --beam-arg=--runner=DataflowRunner",
    )
    registries = (models, rollback, report, predict)
    for registry in registries:
        registry.add_argument("--task", choices=TASKS, help=f"a bundled task (default: {DEFAULT_TASK})")
        registry.add_argument(
            "--pipeline-name", help="the pipeline of a --data-root run (its directory's name)"
        )
        registry.add_argument(
            "--output-root",
            default=OUTPUT_ROOT,
            help=f"(default: {OUTPUT_ROOT}; a cluster's gs:// or s3:// root too)",
        )
        registry.add_argument("--s3-endpoint", metavar="URL", help="the S3-compatible store of an s3:// root")
        registry.add_argument("--s3-region", default=S3_REGION, help=f"its region (default: {S3_REGION})")
        add_metadata_arguments(registry)
    rollback.add_argument("version", nargs="?", type=int, help="the version to serve")

    images = commands.add_parser(
        "images", help="convert a directory of images, one folder per class, into data for `run`"
    )
    images.add_argument("--image-dir", required=True, help="a folder per class, each holding its images")
    images.add_argument("--output", required=True, help="the data root to write (images.tfrecord.gz)")
    images.add_argument("--size", type=int, help="resize every image to SIZE x SIZE pixels")
    images.add_argument(
        "--unlabelled",
        action="store_true",
        help="images to score with `predict`: every image under --image-dir, no class folders, no schema",
    )
    images.add_argument(
        "--channels", type=int, choices=(1, 3), default=3, help="1: grayscale, 3: colour (default)"
    )
    images.add_argument(
        "--schema-output", help="where to write its schema (default: schemas/<output dir name>/schema.pbtxt)"
    )

    schema = commands.add_parser(
        "schema",
        help="draft a schema from a CSV directory, for you to curate",
        description="Draft a schema from a CSV directory, for you to curate." + no_settings,
    )
    schema.add_argument("--data-root", required=True, help="directory of CSV files with a header row")
    schema.add_argument("--label", required=True, help="the label column (excluded from SERVING)")
    schema.add_argument("--output", help="where to write it (default: schemas/<data dir name>/schema.pbtxt)")
    schema.add_argument(
        "--identifier-share",
        type=float,
        default=IDENTIFIER_SHARE,
        metavar="SHARE",
        help="a string column in which at least this share of the rows holds a value seen only once is an "
        f"identifier, no model input (default: {IDENTIFIER_SHARE})",
    )
    for command in (schema, images):
        command.add_argument(
            "--output-root",
            default=OUTPUT_ROOT,
            help=f"where its log goes, in logs/ (default: {OUTPUT_ROOT})",
        )
    return parser


def request_from_args(args, cluster: bool = False) -> ConfigRequest:
    """The typed request behind a run, retrain, schedule, compile or submit command line."""
    from pipeline.config import TaskResources

    resources = []
    for text in getattr(args, "task_resources", None) or ():
        try:
            resources.append(TaskResources.parse(text))
        except ValueError as error:
            raise UsageError(str(error)) from error
    same_names = {
        f.name: getattr(args, f.name) for f in dataclasses.fields(ConfigRequest) if hasattr(args, f.name)
    }
    return ConfigRequest(
        **{
            **same_names,
            "slices": tuple(args.slices) if args.slices else None,
            "settings": tuple(args.settings or ()),
            "beam_args": tuple(args.beam_args or ()),
            "task_resources": tuple(resources),
            "cluster": cluster,
            "read_spans": cluster and args.spans,
            # A one-off run reads the newest spans now; a schedule, the newest when each run starts.
            "pin_spans": cluster and args.spans and args.command == "submit",
        }
    )


def config_from_args(args, cluster: bool = False):
    """The PipelineConfig the command line asks for, and one line describing the evaluation gate."""
    try:
        built = build_config(request_from_args(args, cluster))
    except ConfigError as error:
        raise UsageError(str(error)) from error
    return built.config, built.gate


GATED_METRICS = (
    "sparse_categorical_accuracy",
    "pair_accuracy",
    "f1_score",
    "auc[class 1]",
    "root_mean_squared_error",
    "mean_absolute_error",
)


def is_gated(metric: str) -> bool:
    """A metric the summary shows; a multi-output model's are named "<output>/<metric>"."""
    return metric.rsplit("/", 1)[-1] in GATED_METRICS


def print_summary(out, summary, config, durations: dict[str, float]) -> None:
    from pipeline import results

    out.write(f"\nRun {summary.run_id}\n")
    for node, state in summary.node_states.items():
        seconds = f"{durations[node]:6.1f} s" if node in durations else ""
        out.write(f"  {node:<32} {state:<9} {seconds}\n")
    outputs = summary.outputs
    if "statistics" in outputs.get("StatisticsGen", {}):
        counts = results.examples_per_split(outputs["StatisticsGen"]["statistics"])
        span = f" (span {summary.span})" if summary.span is not None else ""
        out.write("Examples:  " + ", ".join(f"{split} {n}" for split, n in counts.items()) + span + "\n")
    if summary.unlabelled_note:
        out.write(f"Labels:    {summary.unlabelled_note}\n")
    if "anomalies" in outputs.get("ExampleValidator", {}):
        found = results.anomalies(outputs["ExampleValidator"]["anomalies"])
        out.write(f"Anomalies: {len(found) or 'none'}\n")
    gates = gate_description(config).replace("\n", "\n           ")
    out.write(f"Gate:      {gates}\n")
    if "evaluation" in outputs.get("Evaluator", {}):
        evaluation = results.evaluation(outputs["Evaluator"]["evaluation"])
        gated = sorted(name for name in evaluation.candidate if is_gated(name))
        width = max((len(name) for name in gated), default=0)
        for name in gated:
            line = f"  {name:<{width}}  {evaluation.candidate[name]:.4f}"
            if name in evaluation.baseline:
                line += f"   baseline {evaluation.baseline[name]:.4f} (change {evaluation.diff[name]:+.4f})"
            out.write(line + "\n")
        for failure in evaluation.failures:
            out.write(f"  failed: {failure}\n")
    out.write(summary.outcome() + "\n")
    if summary.predictions is not None:
        out.write(f"Predictions:       {summary.predictions.describe()}\n")
    out.write(f"Serving directory: {config.serving_dir}\n")
    out.write(f"Metadata store:    {config.metadata_store}\n")
    if summary.report:
        out.write(f"Report:            {summary.report}\n")
        recorded = os.path.join(os.path.dirname(summary.report), settings.CONFIG_FILE)
        out.write(f"Configuration:     {recorded}\n")


def command_run(args) -> int:
    from pipeline.console import captured_output

    log_path = os.path.join(
        state_root(args.output_root, args.local_root), "logs", f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    )
    # Captured from the start: importing TensorFlow and TFX alone prints dozens of lines.
    with captured_output(log_path, quiet=not args.verbose) as (out, err, progress):
        try:
            config, gate = config_from_args(args)
        except UsageError as error:
            err.write(f"error: {error}\n")
            return 2
        if args.show_config:
            out.write(settings.to_yaml(config))
            return 0
        if args.command != "run":  # retrain, or a scheduled check
            from pipeline.retraining import pending_span

            span, why = pending_span(config)
            out.write(f"Retrain {config.pipeline_name!r}: {why}\n")
            if span is None:
                return 0
        out.write(
            f"Pipeline {config.pipeline_name!r}: data {config.data_dir}, {args.orchestrator} orchestrator\n"
        )
        out.write(f"Gate: {gate}\nFull log: {log_path}\n")
        from components.data_gate import DataValidationError
        from components.drift_gate import DriftError
        from components.serving_check import ServingCheckError
        from pipeline.csv_check import InputDataError
        from pipeline.images import ImageDataError
        from pipeline.local_runner import run_pipeline
        from pipeline.run_lock import RunLockedError

        try:
            summary = run_pipeline(
                config, args.orchestrator, wait_s=args.wait, notify=lambda line: out.write(line + "\n")
            )
        except (
            InputDataError,
            ImageDataError,
            DataValidationError,
            DriftError,
            ServingCheckError,
            RunLockedError,
            MetadataError,
        ) as error:
            err.write(f"error: {error}\n")
            _say_report(out, error)
            return 1
        except Exception as error:  # noqa: BLE001 - the traceback is in the log file
            where = f"component {', '.join(progress.unfinished)}" if progress.unfinished else "the pipeline"
            err.write(
                f"error: {where} failed: {type(error).__name__}: {one_line(error)}. Full log: {log_path}\n"
            )
            _say_report(out, error)
            return 1
        print_summary(out, summary, config, progress.durations)
    return 0


def _say_report(out, error: Exception) -> None:
    if getattr(error, "report", None):
        out.write(f"Report: {error.report}\n")


def command_report(args) -> int:
    from pipeline.report import MODEL_CARD_FILE, ReportError, find_run, write_reports

    config = registry_of(args)
    try:
        path = write_reports(config, find_run(config, args.run))
    except ReportError as error:
        raise UsageError(str(error)) from error
    print(f"Report:     {path}")
    print(f"Model card: {os.path.join(os.path.dirname(path), MODEL_CARD_FILE)}")
    return 0


def command_schema(args) -> int:
    from pipeline.csv_check import InputDataError
    from pipeline.schema_draft import draft_schema, review_notes, write_schema
    from pipeline.task import LabelError

    files = data_files(os.path.abspath(args.data_root))
    output = args.output or os.path.join("schemas", pipeline_name_of(args.data_root), "schema.pbtxt")
    if os.path.exists(output):
        raise UsageError(f"{output} already exists; pass --output NEW_FILE, or delete it to draft again")
    try:
        schema, stats = draft_schema(os.path.abspath(args.data_root), args.label, args.identifier_share)
    except InputDataError as error:  # checked as ExampleGen will read it
        raise CommandError(str(error)) from error
    except LabelError as error:
        raise UsageError(str(error)) from error
    notes = review_notes(schema, stats, args.label)
    write_schema(schema, output, notes)
    print(f"Drafted {output} from {len(files)} file(s). Review before use:")
    for note in notes:
        print(f"  - {note}")
    print(f"Then: python -m pipeline run --data-root {args.data_root} --schema {output} --label {args.label}")
    return 0


def command_images(args) -> int:
    import tensorflow_data_validation as tfdv

    from pipeline.images import RECORDS_FILE, ImageDataError, convert_image_directory, image_schema

    output = os.path.abspath(args.output)
    schema_path = args.schema_output or os.path.join("schemas", pipeline_name_of(output), "schema.pbtxt")
    for path in (os.path.join(output, RECORDS_FILE), *([] if args.unlabelled else [schema_path])):
        if os.path.exists(path):
            raise UsageError(f"{path} already exists; pass another --output / --schema-output, or delete it")
    try:
        path, image, classes = convert_image_directory(
            args.image_dir, output, args.size, args.channels, unlabelled=args.unlabelled
        )
    except ImageDataError as error:
        raise UsageError(str(error)) from error
    height, width, channels = image.shape
    if args.unlabelled:
        print(f"Wrote {path}: {width}x{height} PNGs with {channels} channel(s), unlabelled, for `predict`")
        print(
            f"Then: python -m pipeline predict --data-root {args.output} --output predictions.csv --task ..."
        )
        return 0
    os.makedirs(os.path.dirname(os.path.abspath(schema_path)), exist_ok=True)
    tfdv.write_schema_text(image_schema(image, classes), schema_path)
    print(
        f"Wrote {path}: {width}x{height} PNGs with {channels} channel(s), {len(classes)} classes: "
        f"{', '.join(classes)}"
    )
    print(f"Schema: {schema_path}")
    print(f"Then: python -m pipeline run --data-root {args.output} --schema {schema_path}")
    return 0


def command_kubeflow(args) -> int:
    """compile, submit, or schedule on Kubeflow Pipelines; submit --vertex on Vertex AI Pipelines."""
    from pipeline.kubeflow import compiler

    if args.command == "submit" and bool(args.host) == bool(args.vertex):
        raise UsageError("submit needs --host URL (Kubeflow Pipelines) or --vertex --project P --region R")

    config, _ = config_from_args(args, cluster=True)
    if args.show_config:
        print(settings.to_yaml(config), end="")
        return 0
    name = compiler.kubeflow_name(config.pipeline_name)
    try:
        written = compiler.compile_pipeline(
            config,
            os.path.join(args.compiled_dir, name),
            image=args.image,
            allow_mutable_image=args.allow_mutable_image,
        )
    except compiler.CompileError as error:
        raise UsageError(str(error)) from error
    print(
        f"Compiled {name}: {written['spec']} (Kubeflow Pipelines), {written['job']} (Vertex AI Pipelines); "
        f"its configuration: {written['config']}"
    )
    print(f"Pipeline root: {config.pipeline_root}")
    if args.command == "compile":
        return 0
    from pipeline.kubeflow import kfp_client, vertex
    from pipeline.pipeline import runtime_parameter_defaults

    arguments = runtime_parameter_defaults(config)
    try:
        if getattr(args, "vertex", False):
            target = vertex_target(args)
            job = vertex.submit(written["job"], target, arguments, config.pipeline_root, name)
            print(f"Started Vertex AI pipeline job {job}")
            return 0
        connection = kfp_client.Connection(args.host, args.namespace, kfp_client.read_token(args.token_file))
        if args.command == "submit":
            ids = kfp_client.submit(
                written["spec"], connection, name, args.experiment, arguments, config.pipeline_root
            )
            print(
                f"Uploaded pipeline {ids['pipeline_id']} version {ids['version_id']}; started run "
                f"{ids['run_id']} of that version on {args.host}"
            )
        else:
            ids = kfp_client.schedule(
                written["spec"], connection, name, args.experiment, args.cron, arguments, config.pipeline_root
            )
            replaced = f"; replaced {', '.join(ids['replaced'])}" if ids["replaced"] else ""
            print(
                f"Uploaded pipeline {ids['pipeline_id']} version {ids['version_id']}; recurring run "
                f"{ids['recurring_run_id']} of the pipeline's latest version on {args.cron!r} created on "
                f"{args.host}{replaced}"
            )
    except (kfp_client.KubeflowError, vertex.VertexError) as error:
        raise CommandError(str(error)) from error
    return 0


def vertex_target(args):
    from pipeline.kubeflow.vertex import VertexTarget

    if not (args.project and args.region):
        raise UsageError("--vertex needs --project PROJECT and --region REGION (e.g. us-central1)")
    labels = {}
    for item in args.job_labels or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--job-label {item!r}: expected KEY=VALUE")
        labels[key] = value
    return VertexTarget(args.project, args.region, args.service_account, labels, args.api_endpoint)


def command_schedule(args) -> int:
    """`--host URL --cron ...`: a recurring run on Kubeflow; `--every INTERVAL`: retrain checks here."""
    if args.host:
        if not args.cron:
            raise UsageError('--host needs --cron, e.g. --cron "0 0 3 * * *" for 03:00 every day')
        return command_kubeflow(args)
    if not args.every:
        raise UsageError("pass --every INTERVAL to retrain here, or --host URL --cron EXPR for Kubeflow")
    from pipeline.retraining import parse_interval, run_every

    try:
        interval = parse_interval(args.every)
    except ValueError as error:
        raise UsageError(str(error)) from error

    def check():
        status = command_run(args)
        if status:
            raise RuntimeError(f"the run ended with status {status}")

    print(f"Checking for new spans every {args.every}; stop with Ctrl-C")
    run_every(interval, check, max_checks=args.max_checks, report=lambda line: print(line, file=sys.stderr))
    return 0


def registry_of(args):
    """The registry's configuration, with TensorFlow set up for an s3:// store."""
    from pipeline.storage.filesystems import use_s3

    config = registry_config(
        args.task,
        args.pipeline_name,
        args.output_root,
        args.s3_endpoint,
        args.s3_region,
        args.metadata,
        args.metadata_password_file,
    )
    if config.s3:
        use_s3(config.s3)
    return config


def command_models(args) -> int:
    from pipeline.registry import list_versions

    config = registry_of(args)
    versions = list_versions(config.serving_dir, config.metadata_store, config.pipeline_name)
    if not versions:
        print(f"No model pushed to {config.serving_dir} yet")
        return 0
    print(f"Models of {config.pipeline_name!r} in {config.serving_dir}:")
    for v in versions:
        gated = ", ".join(
            f"{name} {value:.4f}" for name, value in sorted(v.metrics.items()) if is_gated(name)
        )
        span = f"span {v.span}" if v.span is not None else "no spans"
        code = f"code {v.code_fingerprint[:12]}" if v.code_fingerprint else "code unknown"
        print(f"  {v.version}  {v.state:<11}  pushed {v.pushed_at}  {span}  {code}  {gated or 'no metrics'}")
    return 0


def command_rollback(args) -> int:
    from pipeline.registry import RegistryError, rollback

    config = registry_of(args)
    try:
        before, now = rollback(config.serving_dir, args.version, model_name=config.pipeline_name)
    except RegistryError as error:
        raise CommandError(str(error)) from error
    print(f"Now serving version {now} (was {before}) from {config.serving_dir}")
    return 0


def command_predict(args) -> int:
    from pipeline.console import captured_output

    config = registry_of(args)
    output = os.path.abspath(args.output) if "://" not in args.output else args.output
    if os.path.isdir(output):
        raise UsageError(f"--output {args.output} is a directory; name the CSV file to write")
    if "://" not in output and not os.path.isdir(os.path.dirname(output)):
        raise UsageError(f"--output {args.output}: {os.path.dirname(output)} does not exist; create it first")
    log_path = os.path.join(config.state_root, "logs", f"predict-{time.strftime('%Y%m%d-%H%M%S')}.log")
    with captured_output(log_path) as (out, err, _):
        from pipeline.csv_check import InputDataError
        from pipeline.images import ImageDataError
        from pipeline.inference.scoring import predict
        from pipeline.inference.versions import VersionError

        try:
            scored = predict(
                config.serving_dir, args.data_root, output, args.version, tuple(args.beam_args or ())
            )
        except (InputDataError, ImageDataError, VersionError) as error:
            err.write(f"error: {error}\n")
            return 1
        except Exception as error:  # noqa: BLE001 - the traceback is in the log file
            err.write(
                f"error: scoring failed: {type(error).__name__}: {one_line(error)}. Full log: {log_path}\n"
            )
            return 1
        out.write(
            f"Scored {scored.rows} rows of {scored.files} file(s) with version {scored.version} of "
            f"{config.pipeline_name!r}: {scored.output}\n"
        )
    return 0


COMMANDS = {
    "run": command_run,
    "retrain": command_run,
    "schedule": command_schedule,
    "models": command_models,
    "rollback": command_rollback,
    "schema": command_schema,
    "images": command_images,
    "report": command_report,
    "predict": command_predict,
    "compile": command_kubeflow,
    "submit": command_kubeflow,
}


# These capture their own output: a run's log file, per run (a schedule's checks are runs).
CAPTURES_ITS_OWN_OUTPUT = ("run", "retrain", "schedule", "predict")


def main(argv=None) -> int:
    """`python -m pipeline`. Every command keeps the libraries' output (Python warnings, TensorFlow's
    start-up lines) out of the terminal: a run in its log file, any other command in
    `<output root>/logs/<command>-<time>.log`, so that the terminal shows the command's own lines. Called
    with `argv` (from Python: tests, notebooks), the caller keeps its own streams."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if argv is not None or args.command in CAPTURES_ITS_OWN_OUTPUT:
        return _run_command(args, sys.stderr)
    from contextlib import redirect_stdout

    from pipeline.console import captured_output

    root = state_root(getattr(args, "output_root", None) or OUTPUT_ROOT, getattr(args, "local_root", None))
    log_path = os.path.join(root, "logs", f"{args.command}-{time.strftime('%Y%m%d-%H%M%S')}.log")
    with captured_output(log_path) as (out, err, _), redirect_stdout(out):
        return _run_command(args, err, log_path)


def _run_command(args, err, log_path: str | None = None) -> int:
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ConfigError) as error:
        err.write(f"error: {error}\n")
        return 2
    except (CommandError, MetadataError) as error:  # MetadataError: the store is unreachable or refuses
        err.write(f"error: {error}\n")
        return 1
    except Exception as error:
        if log_path is None:
            raise
        import traceback

        traceback.print_exc()  # into the log
        err.write(f"error: {one_line(error)} (the traceback is in {log_path})\n")
        return 1
