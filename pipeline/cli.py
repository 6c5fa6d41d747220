"""`python -m pipeline run|schema`: the command line."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time

# Names only: importing pipeline.tasks would pull in TensorFlow before the output is captured.
TASKS = ("penguin_species", "penguin_body_mass", "penguin_multi", "digits", "digits_similarity")
DEFAULT_TASK = "penguin_species"


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Validate, transform, train, evaluate and push a model from CSV data with TFX.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="{run,retrain,schedule,models,rollback,report,schema,images,compile,submit}",
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
        "--output-root", default="outputs", help="where everything is written (default: outputs)"
    )
    run.add_argument("--pipeline-name", help="name in ML Metadata (default: the data directory's name)")
    run.add_argument(
        "--train-steps", type=int, help="training step budget (default: the task's; 300 for most)"
    )
    run.add_argument(
        "--model",
        help="the Trainer's model: tables mlp, quadratic_mlp, wide_and_deep; images resnet, vgg, "
        "quadratic_mlp, mlp (default: the task's)",
    )
    run.add_argument("--eval-steps", type=int, default=4, help="validation batches per epoch")
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
        help="search learning rate, layer width (and the Huber threshold) with the Tuner before training",
    )
    tuning.add_argument("--tune-trials", type=int, default=4, help="models tried by the search (4)")
    tuning.add_argument("--tune-steps", type=int, default=100, help="training steps per trial (100)")
    gates = run.add_argument_group("evaluation gates")
    gates.add_argument("--min-accuracy", type=float, help="classification: lowest eval accuracy (0.9)")
    gates.add_argument(
        "--max-accuracy-drop", type=float, help="classification: allowed drop vs the baseline (0)"
    )
    gates.add_argument("--min-auc", type=float, help="two classes: lowest eval AUC (0.8)")
    gates.add_argument(
        "--max-rmse",
        type=float,
        help="regression: highest eval RMSE (default: the label's standard deviation)",
    )
    gates.add_argument(
        "--max-rmse-increase", type=float, help="regression: allowed RMSE rise vs the baseline (0)"
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
        default=1,
        metavar="K",
        help="with span-<N> directories in the data root: train on the newest K spans (default: 1)",
    )
    run.add_argument(
        "--warm-start", action="store_true", help="start training from the last blessed model's weights"
    )
    run.add_argument("--verbose", action="store_true", help="show the raw TFX/Beam/TensorFlow logs")

    commands.add_parser("run", parents=[run], help="run the pipeline (default: the bundled penguins task)")
    commands.add_parser(
        "retrain", parents=[run], help="run only if the data root holds a span newer than the last processed"
    )

    # The options of a Kubeflow compile, beyond the task, output root, data root and step budget.
    kubeflow = argparse.ArgumentParser(add_help=False)
    kubeflow.add_argument("--image", help="container image of the project (default: the published one)")
    kubeflow.add_argument(
        "--beam-arg",
        action="append",
        dest="beam_args",
        metavar="ARG",
        help="Beam pipeline argument for the cluster, e.g. --beam-arg=--runner=DataflowRunner (repeatable)",
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
    commands.add_parser(
        "compile", parents=[run, kubeflow], help="compile for Kubeflow Pipelines (YAML) and Vertex AI (JSON)"
    )
    submit = commands.add_parser(
        "submit", parents=[run, kubeflow], help="compile, upload to Kubeflow Pipelines and start a run"
    )
    submit.add_argument("--host", required=True, help="Kubeflow Pipelines API, e.g. http://localhost:8080")
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

    models = commands.add_parser("models", help="list the pushed model versions with their metrics and spans")
    report = commands.add_parser(
        "report", help="write a run's HTML report and model card (default: the latest run)"
    )
    report.add_argument("--run", help="the run id (printed by `run`; default: the latest run)")
    rollback = commands.add_parser("rollback", help="serve an earlier pushed version (default: the previous)")
    for registry in (models, rollback, report):
        registry.add_argument("--task", choices=TASKS, help=f"a bundled task (default: {DEFAULT_TASK})")
        registry.add_argument(
            "--pipeline-name", help="the pipeline of a --data-root run (its directory's name)"
        )
        registry.add_argument("--output-root", default="outputs", help="(default: outputs)")
    rollback.add_argument("version", nargs="?", type=int, help="the version to serve")

    images = commands.add_parser(
        "images", help="convert a directory of images, one folder per class, into data for `run`"
    )
    images.add_argument("--image-dir", required=True, help="a folder per class, each holding its images")
    images.add_argument("--output", required=True, help="the data root to write (images.tfrecord.gz)")
    images.add_argument("--size", type=int, help="resize every image to SIZE x SIZE pixels")
    images.add_argument(
        "--channels", type=int, choices=(1, 3), default=3, help="1: grayscale, 3: colour (default)"
    )
    images.add_argument(
        "--schema-output", help="where to write its schema (default: schemas/<output dir name>/schema.pbtxt)"
    )

    schema = commands.add_parser("schema", help="draft a schema from a CSV directory, for you to curate")
    schema.add_argument("--data-root", required=True, help="directory of CSV files with a header row")
    schema.add_argument("--label", required=True, help="the label column (excluded from SERVING)")
    schema.add_argument("--output", help="where to write it (default: schemas/<data dir name>/schema.pbtxt)")
    return parser


def _data_files(data_root: str) -> list[str]:
    """The files a run reads: those of the data root, or of its newest span-<N> directory."""
    from pipeline.csv_check import data_files
    from pipeline.spans import latest_range

    if not os.path.isdir(data_root):
        raise UsageError(f"data root {data_root} is not a directory; pass a directory of CSV files")
    newest = latest_range(data_root)
    files = data_files(data_root, newest)
    if not files:
        where = os.path.join(data_root, f"span-{newest[1]}") if newest else data_root
        raise UsageError(f"data root {where} holds no files; put one or more CSV files with a header in it")
    return files


def _label_column(files: list[str], label: str):
    import pandas as pd

    columns = []
    for path in files:
        header = list(pd.read_csv(path, nrows=0).columns)
        if label not in header:
            raise UsageError(f"label column {label!r} is not in {path}; its columns are: {', '.join(header)}")
        columns.append(pd.read_csv(path, usecols=[label])[label])
    return pd.concat(columns)


def _load_schema(path: str):
    import tensorflow_data_validation as tfdv

    if not os.path.isfile(path):
        raise UsageError(f"schema file {path} does not exist; draft one with `python -m pipeline schema`")
    try:
        return tfdv.load_schema_text(path)
    except Exception as error:  # noqa: BLE001 - text_format raises several types
        raise UsageError(
            f"schema file {path} does not parse: {_one_line(error)}; fix it or draft a new one"
        ) from error


def _one_line(error: Exception, limit: int = 300) -> str:
    return " ".join(str(error).split())[:limit]


def _pipeline_name(data_root: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", os.path.basename(os.path.normpath(data_root)))
    return name or "pipeline"


def config_from_args(args):
    """The PipelineConfig a `run` asks for, and one line describing the evaluation gate."""
    from pipeline.config import PipelineConfig, local_beam_args
    from pipeline.images import image_feature_of
    from pipeline.task import LabelError, infer_task, serving_excluded_features
    from pipeline.tasks import task_config
    from trainer_module.features import CLASSIFICATION

    output_root = os.path.abspath(args.output_root)
    if args.data_root and args.task:
        raise UsageError("--task selects a bundled task; with --data-root pass --schema and --label instead")
    if args.data_root:
        defaults = PipelineConfig(output_root=output_root)
    else:
        defaults = task_config(args.task or DEFAULT_TASK, output_root=output_root)
    changes: dict = {}
    if args.data_root:
        if not args.schema:
            raise UsageError(
                "--schema is required with --data-root: draft one with `python -m pipeline schema "
                "--data-root DIR --label COLUMN`, review it, then pass --schema FILE"
            )
        data_root = os.path.abspath(args.data_root)
        changes.update(data_root=data_root, pipeline_name=_pipeline_name(data_root), slice_features=())
    if args.schema:
        changes["schema_path"] = os.path.abspath(args.schema)
    schema = _load_schema(changes.get("schema_path", defaults.schema_path))

    label = args.label
    if label is None and args.data_root:
        excluded = serving_excluded_features(schema)
        if len(excluded) != 1:
            raise UsageError(
                "pass --label COLUMN: the schema does not mark exactly one feature as absent in SERVING"
            )
        label = excluded[0]
    label = label or defaults.label_key
    changes["label_key"] = label

    image_feature = image_feature_of(schema) if args.data_root else None
    if image_feature:
        changes.update(_image_changes(changes["data_root"], schema, image_feature, label))
        files = None
    else:
        files = _data_files(changes.get("data_root", defaults.data_dir)) if args.data_root else None
    values = _label_column(files, label) if files else None
    try:
        distinct = int(values.nunique()) if values is not None else None
        task = infer_task(schema, label, distinct)
    except LabelError as error:
        raise UsageError(str(error)) from error
    changes["task"] = task
    if values is not None:
        changes["num_classes"] = distinct if task == CLASSIFICATION else None
    if "images" in changes and task != CLASSIFICATION:
        raise UsageError(f"label {label!r} of image data must name classes (a string or small integer)")

    for gate in ("min_accuracy", "max_accuracy_drop", "min_auc", "max_rmse", "max_rmse_increase"):
        if getattr(args, gate) is not None:
            changes[gate] = getattr(args, gate)
    rmse_note = ""
    if task != CLASSIFICATION and args.max_rmse is None and defaults.max_rmse is None:
        if values is None:
            raise UsageError("pass --max-rmse for a regression label of the bundled data")
        changes["max_rmse"] = float(values.std(ddof=0))
        rmse_note = " (the label's standard deviation: the model must beat always predicting the mean)"
    if args.slices:
        changes["slice_features"] = tuple(args.slices)
    if args.pipeline_name:
        changes["pipeline_name"] = args.pipeline_name
    if args.train_steps is not None:
        changes["train_steps"] = args.train_steps
    changes.update(
        eval_steps=args.eval_steps,
        tune=args.tune,
        tune_trials=args.tune_trials,
        tune_steps=args.tune_steps,
        span_window=args.span_window,
    )
    try:
        trainer = changes.pop("trainer", defaults.trainer)
        trainer = dataclasses.replace(trainer, warm_start=args.warm_start, model=args.model or trainer.model)
        changes["beam_pipeline_args"] = local_beam_args(args.beam_workers)
        config = dataclasses.replace(defaults, trainer=trainer, **changes)
    except ValueError as error:
        raise UsageError(f"invalid configuration: {error}") from error
    return config, gate_description(config) + rmse_note


def _image_changes(data_root: str, schema, feature: str, label: str) -> dict:
    """The configuration of a user's image data: classified by the digits task's ResNet (resized to 32x32
    when smaller), a slice per class, the size every image must have taken from the first one."""
    from pipeline.images import ImageDataError, first_image_shape
    from pipeline.tasks import task_config
    from trainer_module.features import ImageInput

    try:
        shape = first_image_shape(data_root, feature)
    except ImageDataError as error:
        raise UsageError(str(error)) from error
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


def gate_description(config) -> str:
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


def _head_gate(config, label: str, task: str, main: bool) -> str:
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
    if summary.blessed and summary.pushed_destination:
        out.write(f"Blessed and pushed: {summary.pushed_destination}\n")
    elif summary.blessed and summary.already_served:
        out.write(f"Blessed; already served as {summary.already_served} (not pushed again)\n")
    elif summary.blessed:
        out.write("Blessed; this same model's push was handled by an earlier run (cached)\n")
    else:
        out.write(
            "NOT blessed: the model missed the gate; nothing was pushed, the served model is unchanged\n"
        )
    out.write(f"Serving directory: {config.serving_dir}\n")
    out.write(f"Metadata store:    {config.metadata_path}\n")
    if summary.report:
        out.write(f"Report:            {summary.report}\n")


def command_run(args) -> int:
    from pipeline.console import captured_output

    log_path = os.path.join(
        os.path.abspath(args.output_root), "logs", f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    )
    # Captured from the start: importing TensorFlow and TFX alone prints dozens of lines.
    with captured_output(log_path, quiet=not args.verbose) as (out, err, progress):
        try:
            config, gate = config_from_args(args)
        except UsageError as error:
            err.write(f"error: {error}\n")
            return 2
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
        ) as error:
            err.write(f"error: {error}\n")
            _say_report(out, error)
            return 1
        except Exception as error:  # noqa: BLE001 - the traceback is in the log file
            where = f"component {', '.join(progress.unfinished)}" if progress.unfinished else "the pipeline"
            err.write(
                f"error: {where} failed: {type(error).__name__}: {_one_line(error)}. Full log: {log_path}\n"
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

    config = registry_config(args)
    try:
        path = write_reports(config, find_run(config, args.run))
    except ReportError as error:
        raise UsageError(str(error)) from error
    print(f"Report:     {path}")
    print(f"Model card: {os.path.join(os.path.dirname(path), MODEL_CARD_FILE)}")
    return 0


def command_schema(args) -> int:
    from pipeline.schema_draft import draft_schema, review_notes, write_schema

    files = _data_files(os.path.abspath(args.data_root))
    _label_column(files, args.label)
    output = args.output or os.path.join("schemas", _pipeline_name(args.data_root), "schema.pbtxt")
    if os.path.exists(output):
        raise UsageError(f"{output} already exists; pass --output NEW_FILE, or delete it to draft again")
    schema, stats = draft_schema(os.path.abspath(args.data_root), args.label)
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
    schema_path = args.schema_output or os.path.join("schemas", _pipeline_name(output), "schema.pbtxt")
    for path in (os.path.join(output, RECORDS_FILE), schema_path):
        if os.path.exists(path):
            raise UsageError(f"{path} already exists; pass another --output / --schema-output, or delete it")
    try:
        path, image, classes = convert_image_directory(args.image_dir, output, args.size, args.channels)
    except ImageDataError as error:
        raise UsageError(str(error)) from error
    os.makedirs(os.path.dirname(os.path.abspath(schema_path)), exist_ok=True)
    tfdv.write_schema_text(image_schema(image, classes), schema_path)
    height, width, channels = image.shape
    print(
        f"Wrote {path}: {width}x{height} PNGs with {channels} channel(s), {len(classes)} classes: "
        f"{', '.join(classes)}"
    )
    print(f"Schema: {schema_path}")
    print(f"Then: python -m pipeline run --data-root {args.output} --schema {schema_path}")
    return 0


def kubeflow_config(args):
    """The PipelineConfig a compile/submit/schedule asks for: a bundled task on the cluster's storage."""
    from pipeline.tasks import task_config

    changes = dict(output_root=args.output_root.rstrip("/"))
    if args.train_steps is not None:
        changes["train_steps"] = args.train_steps
    if args.data_root:
        changes["data_root"] = args.data_root
    if args.beam_args:
        changes["beam_pipeline_args"] = tuple(args.beam_args)
    try:
        if args.model:
            trainer = task_config(args.task or DEFAULT_TASK).trainer
            changes["trainer"] = dataclasses.replace(trainer, model=args.model)
        config = task_config(args.task or DEFAULT_TASK, read_spans=args.spans, **changes)
    except ValueError as error:
        raise UsageError(f"invalid configuration: {error}") from error
    if args.spans and args.command == "submit":
        from pipeline.spans import with_latest_spans

        config = with_latest_spans(config)
        if config.span_range is None:
            raise UsageError(f"--spans: no span-<N> directory in {config.data_dir}")
    return config


def command_kubeflow(args) -> int:
    """compile, submit or schedule."""
    from pipeline import kubeflow

    config = kubeflow_config(args)
    name = kubeflow.kubeflow_name(config.pipeline_name)
    compiled_dir = os.path.join(args.compiled_dir, name)
    written = kubeflow.compile_pipeline(config, compiled_dir, image=args.image or kubeflow.DEFAULT_IMAGE)
    print(f"Compiled {name}: {written['spec']} (Kubeflow Pipelines), {written['job']} (Vertex AI Pipelines)")
    if args.command == "compile":
        return 0
    from pipeline.pipeline import runtime_parameter_defaults

    arguments = runtime_parameter_defaults(config)
    try:
        if args.command == "submit":
            ids = kubeflow.submit(written["spec"], args.host, name, args.experiment, arguments)
            print(f"Uploaded pipeline {ids['pipeline_id']}; started run {ids['run_id']} on {args.host}")
        else:
            ids = kubeflow.schedule(written["spec"], args.host, name, args.experiment, args.cron, arguments)
            print(f"Recurring run {ids['recurring_run_id']} on {args.cron!r} created on {args.host}")
    except kubeflow.KubeflowError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


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


def registry_config(args):
    from pipeline.tasks import task_config

    config = task_config(args.task or DEFAULT_TASK, output_root=os.path.abspath(args.output_root))
    return config.replace(pipeline_name=args.pipeline_name) if args.pipeline_name else config


def command_models(args) -> int:
    from pipeline.registry import list_versions

    config = registry_config(args)
    versions = list_versions(config.serving_dir, config.metadata_path, config.pipeline_name)
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

    config = registry_config(args)
    try:
        before, now = rollback(config.serving_dir, args.version)
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Now serving version {now} (was {before}) from {config.serving_dir}")
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
    "compile": command_kubeflow,
    "submit": command_kubeflow,
}


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
