"""The pipeline's configuration: one frozen dataclass; runners differ only in the instance they build."""

from __future__ import annotations

import dataclasses
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.fingerprint import code_fingerprint, file_fingerprint
from pipeline.storage.locations import S3Settings
from pipeline.storage.metadata import MetadataLocation
from trainer_module.config import TrainerConfig
from trainer_module.features import CLASSIFICATION, REGRESSION, TASKS, ImageInput

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = REPO_ROOT / "schemas" / "penguins" / "schema.pbtxt"

# The catalogue models the Trainer (trainer_module/run.py) builds: for tables, for image classes, for pairs.
PIPELINE_MODELS = ("mlp", "quadratic_mlp", "wide_and_deep", "multi_output")
IMAGE_MODELS = ("resnet", "vgg", "quadratic_mlp", "mlp")
SIMILARITY_MODELS = ("siamese",)
MODELS_HELP = (
    f"tables {', '.join(PIPELINE_MODELS)}; images {', '.join(IMAGE_MODELS)}; "
    f"image pairs {', '.join(SIMILARITY_MODELS)}"
)


def local_beam_args(workers: int = 1) -> tuple[str, ...]:
    """Beam's DirectRunner in the run's own process (1 worker: Beam's default `in_memory` mode, so no
    arguments) or in `workers` processes (`multi_processing`). No arguments unless needed: TFX's Beam
    executors, given any, first package TFX itself for remote workers (2 s per component, unused here)."""
    if workers < 1:
        raise ValueError(f"Beam workers must be at least 1, got {workers!r}")
    if workers == 1:
        return ()
    return ("--direct_running_mode=multi_processing", f"--direct_num_workers={workers}")


# in_memory: on 2 cores and small data, multi_processing is 2-3x slower (worker start-up dominates).
LOCAL_BEAM_ARGS = local_beam_args(1)


# The schema's annotation tag of an identifier column, and the draft's rule: a string column in which at least
# this share of the rows holds a value seen only once (a name, an id) is drafted as one.
IDENTIFIER_TAG = "identifier"
IDENTIFIER_SHARE = 0.5


@dataclass(frozen=True)
class TaskResources:
    """What a task's container asks the cluster for: CPUs, memory (GiB) and GPUs of a type (e.g.
    NVIDIA_TESLA_T4 on Vertex; self-hosted Kubeflow schedules `nvidia.com/gpu`), and the disk (GiB) that
    self-hosted Kubeflow's launcher copies the task's input artifacts to before it starts (docs/kubeflow.md;
    bench/RESULTS.md measures it)."""

    cpu: float
    memory_gb: float
    gpus: int = 0
    gpu_type: str = "NVIDIA_TESLA_T4"
    disk_gb: float = 2.0

    def __post_init__(self):
        if self.cpu <= 0 or self.memory_gb <= 0 or self.gpus < 0 or self.disk_gb <= 0:
            raise ValueError(
                f"task resources need cpu > 0, memory > 0, gpus >= 0 and disk > 0, got cpu={self.cpu!r}, "
                f"memory={self.memory_gb!r}, gpus={self.gpus!r}, disk={self.disk_gb!r}"
            )

    @classmethod
    def parse(cls, text: str) -> tuple[str, TaskResources]:
        """`Trainer=cpu:4,memory:16,gpus:1,gpu_type:NVIDIA_L4,disk:20` -> ("Trainer", TaskResources(..))."""
        task, _, settings = text.partition("=")
        names = {
            "cpu": "cpu",
            "memory": "memory_gb",
            "gpus": "gpus",
            "gpu_type": "gpu_type",
            "disk": "disk_gb",
        }
        usage = f"task resources {text!r}: expected TASK=cpu:N,memory:GIB[,gpus:N,gpu_type:TYPE,disk:GIB]"
        values: dict = {}
        for item in filter(None, settings.split(",")):
            key, _, value = item.partition(":")
            if key not in names or not value:
                raise ValueError(usage)
            values[names[key]] = value if key == "gpu_type" else float(value)
        if not task or "cpu" not in values or "memory_gb" not in values:
            raise ValueError(usage)
        values["gpus"] = int(values.get("gpus", 0))
        return task, cls(**values)


# What each task of the bundled tasks needs on a cluster, with room: the launcher-level test measures every
# task's peak memory (tests/test_kubeflow_launcher.py) and checks it stays within these limits.
DEFAULT_TASK_RESOURCES = (
    ("Evaluator", TaskResources(cpu=2, memory_gb=4)),
    ("Trainer", TaskResources(cpu=2, memory_gb=4)),
    ("Transform", TaskResources(cpu=2, memory_gb=4)),
    ("Tuner", TaskResources(cpu=2, memory_gb=4)),
)
DEFAULT_RESOURCES = TaskResources(cpu=1, memory_gb=2)


@dataclass(frozen=True)
class VertexTraining:
    """Run the Trainer as a Vertex AI custom training job: a chief plus `workers - 1` workers of the
    project image; Vertex sets TF_CONFIG in each, so the trainer's `multi_worker` strategy spans them."""

    project: str
    region: str
    image: str
    workers: int = 2
    machine_type: str = "n1-standard-4"

    def custom_config(self) -> dict:
        """The Trainer's custom_config entries TFX's Vertex Trainer executor reads (its *_KEY constants)."""

        def pool(replicas: int) -> dict:
            return {
                "machine_spec": {"machine_type": self.machine_type},
                "replica_count": replicas,
                "container_spec": {"image_uri": self.image},
            }

        pools = [pool(1)] + ([pool(self.workers - 1)] if self.workers > 1 else [])
        # A CustomJob's job_spec. Synchronous training cannot go on without a worker: when Vertex restarts
        # one (preempted, out of memory), it restarts them all, and every worker resumes from the epoch
        # checkpoint all of them hold (trainer_module.training_loop.common_step).
        job_spec = {
            "worker_pool_specs": pools,
            "scheduling": {"restart_job_on_worker_restart": True},
        }
        return {
            "ai_platform_enable_vertex": True,
            "ai_platform_vertex_region": self.region,
            "ai_platform_training_args": {"project": self.project, "job_spec": job_spec},
        }


@dataclass(frozen=True)
class PipelineConfig:
    """Everything a run depends on. Change fields with `dataclasses.replace`.

    Output layout under `output_root` (the metadata store and logs under `local_root` when one is set):
      data/<pipeline>/    the bundled penguins data, written on first run (unless `data_root` is given)
      pipeline/           TFX artifacts, one directory per component
      metadata.sqlite     the ML Metadata store (executions, artifacts, lineage, the cache), unless
                          `metadata` names another SQLite file or a MySQL database
      serving_model/      pushed SavedModels, one numbered version directory each
      logs/               one log file per run
    """

    pipeline_name: str = "penguin"  # the pipeline's name in ML Metadata and on the cluster
    output_root: str = "outputs"
    # Where a local run keeps what only this machine uses (the metadata store, logs, the run lock,
    # temporary files, reports); None: the output root itself. Needed when the output root is a bucket.
    local_root: str | None = None
    # The ML Metadata store: None is the SQLite file `metadata.sqlite` under the local (or output) root.
    metadata: MetadataLocation | None = None
    data_root: str | None = None
    schema_path: str = str(DEFAULT_SCHEMA)
    label_key: str = "species"
    task: str = CLASSIFICATION
    num_classes: int | None = 3  # when known; 2 adds an AUC gate
    # Unlabelled CSV rows to score at the end of every run with the model served then: predictions.csv in
    # the BatchInference node's output (images: `python -m pipeline predict`).
    inference_data: str | None = None
    # A second label makes a two-headed model (trainer model `multi_output`), each head with its own loss,
    # metrics, serving outputs and Evaluator gate (the gate of its task below).
    second_label_key: str | None = None
    second_task: str = REGRESSION
    slice_features: tuple[str, ...] = ("island",)  # features the Evaluator also scores per value
    # Image data (TFRecords of PNG examples, read by ImportExampleGen) instead of CSV files; with a pair
    # feature, a similarity task: the Evaluator gates the pair accuracy (min_accuracy, max_accuracy_drop).
    images: ImageInput | None = None

    # Spans (data/<task>/span-<N>/): the static range ExampleGen reads, (first, last); None reads the data
    # directory as one dataset, or, when it holds span directories, the newest `span_window` of them.
    span_range: tuple[int, int] | None = None
    span_window: int = 1  # with span directories: train on the newest this many spans
    # Read span directories even without a range: ExampleGen then takes the newest span when it runs.
    read_spans: bool = False
    # The previous span's statistics (an ExampleStatistics artifact URI) for the drift gate; the runner
    # finds it in ML Metadata when the run is launched. None: nothing to compare with.
    drift_baseline: str | None = None

    train_steps: int = 300  # the Trainer's step budget
    eval_steps: int = 4  # validation batches after each epoch
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    # Hyperparameter search (TFX Tuner, KerasTuner random search) before training: `tune_trials` models of
    # `tune_steps` steps each; the Trainer then trains the best values for `train_steps`.
    tune: bool = False
    tune_trials: int = 4  # models the search tries
    tune_steps: int = 100  # training steps per trial

    # Evaluator gates. Classification: eval accuracy at least `min_accuracy` (and AUC at least `min_auc`
    # for two classes) and, once a blessed model exists, at most `max_accuracy_drop` below that baseline on
    # the same examples. Regression: RMSE at most `max_rmse` (None: no absolute bound) and at most
    # `max_rmse_increase` above the baseline's; mean absolute error no worse than the baseline's.
    min_accuracy: float = 0.9  # classification: the lowest evaluation accuracy
    max_accuracy_drop: float = 0.0  # classification: the allowed drop below the baseline
    # Rows whose label cell is empty are left out by ExampleGen (counted); the data gate stops the run when
    # more than this share of the rows read has none.
    max_unlabelled_share: float = 0.05  # the most rows without a label the data gate allows
    # Transform: a feature's vocabulary keeps its most frequent `max_vocabulary` values, the rest share an
    # out-of-vocabulary bucket (never the label's). The schema's identifier columns (IDENTIFIER_TAG, drafted
    # by `schema` past IDENTIFIER_SHARE) are no model input; `predict` still carries them.
    max_vocabulary: int = 10_000  # values a string feature's vocabulary keeps
    identifiers: tuple[str, ...] = ()
    # The schema's date and time columns, (name, format) as its time_domain.string_format records them:
    # ExampleGen checks every value, Transform derives calendar features (trainer_module/dates.py).
    dates: tuple[tuple[str, str], ...] = ()
    min_auc: float = 0.8  # two classes: the lowest evaluation AUC
    max_rmse: float | None = None  # regression: the highest evaluation RMSE (none: no bound)
    max_rmse_increase: float = 0.0  # regression: the allowed RMSE rise above the baseline

    # The Trainer's entry point, by dotted path of an installed module.
    run_fn: str = "trainer_module.run.run_fn"

    beam_pipeline_args: tuple[str, ...] = LOCAL_BEAM_ARGS
    # On a cluster: train on Vertex AI's training service (multi-worker); None trains in the Trainer's pod.
    vertex_training: VertexTraining | None = None
    enable_cache: bool = True  # reuse a component's earlier result for the same inputs
    # On a cluster: where TFX and KFP write artifacts (KFP's pipeline root); None: OUTPUT_ROOT/pipeline.
    pipeline_root_uri: str | None = None
    # How to reach an S3-compatible store (MinIO) when a location is s3://; None: no S3 location.
    s3: S3Settings | None = None
    # On a cluster: CPUs, memory and GPUs per task id; tasks not named get DEFAULT_RESOURCES.
    task_resources: tuple[tuple[str, TaskResources], ...] = DEFAULT_TASK_RESOURCES
    code_fingerprint: str = field(default_factory=code_fingerprint)

    def __post_init__(self):
        if self.train_steps <= 0:
            raise ValueError(f"train_steps must be positive, got {self.train_steps!r}")
        if self.dates:
            from trainer_module.dates import DateFormatError, date_pattern

            for name, fmt in self.dates:
                try:
                    date_pattern(fmt)
                except DateFormatError as error:
                    raise ValueError(f"column {name}: {error}") from None
        if self.max_vocabulary < 1:
            raise ValueError(f"max_vocabulary must be at least 1, got {self.max_vocabulary!r}")
        if not 0.0 <= self.max_unlabelled_share < 1.0:
            raise ValueError(f"max_unlabelled_share must be in [0, 1), got {self.max_unlabelled_share!r}")
        if self.span_range is not None and not 0 <= self.span_range[0] <= self.span_range[1]:
            raise ValueError(
                f"span_range must be (first, last) with 0 <= first <= last, got {self.span_range!r}"
            )
        for name in ("tune_trials", "tune_steps", "span_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.eval_steps <= 0:
            raise ValueError(f"eval_steps must be positive, got {self.eval_steps!r}")
        if not 0.0 <= self.min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy must be within [0, 1], got {self.min_accuracy!r}")
        if self.max_accuracy_drop < 0:
            raise ValueError(f"max_accuracy_drop must be >= 0, got {self.max_accuracy_drop!r}")
        if not 0.0 <= self.min_auc <= 1.0:
            raise ValueError(f"min_auc must be within [0, 1], got {self.min_auc!r}")
        if self.max_rmse is not None and self.max_rmse <= 0:
            raise ValueError(f"max_rmse must be positive, got {self.max_rmse!r}")
        if self.max_rmse_increase < 0:
            raise ValueError(f"max_rmse_increase must be >= 0, got {self.max_rmse_increase!r}")
        data, models = "tabular", PIPELINE_MODELS
        if self.images is not None:
            data, models = "image", IMAGE_MODELS
            if self.images.pair_feature:
                data, models = "similarity", SIMILARITY_MODELS
        if self.trainer.model not in models:
            raise ValueError(
                f"model {self.trainer.model!r} is not one the {data} pipeline trains; valid choices: "
                f"{', '.join(models)}"
            )
        if self.trainer.model == "wide_and_deep" and self.task != CLASSIFICATION:
            raise ValueError("model 'wide_and_deep' is wired for classification; use mlp or quadratic_mlp")
        for task in (self.task, self.second_task):
            if task not in TASKS:
                raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        if (self.second_label_key is not None) != (self.trainer.model == "multi_output"):
            raise ValueError(
                "model 'multi_output' and a second label go together: set both second_label_key and "
                "trainer.model='multi_output', or neither"
            )
        if (
            self.vertex_training
            and self.vertex_training.workers > 1
            and self.trainer.strategy != "multi_worker"
        ):
            raise ValueError(
                f"vertex_training with {self.vertex_training.workers} workers needs "
                "trainer.strategy='multi_worker'"
            )
        if self.second_label_key == self.label_key:
            raise ValueError(f"the second label must differ from the first, both are {self.label_key!r}")
        if self.num_classes is not None and self.num_classes < 2 and self.task == CLASSIFICATION:
            raise ValueError(f"a classification label needs at least 2 classes, got {self.num_classes!r}")

    @property
    def labels(self) -> dict[str, str]:
        """label -> task of each model head, the main label first."""
        labels = {self.label_key: self.task}
        if self.second_label_key is not None:
            labels[self.second_label_key] = self.second_task
        return labels

    @property
    def is_similarity(self) -> bool:
        return self.images is not None and self.images.pair_feature is not None

    @property
    def served_without(self) -> list[str]:
        """The features a serving request lacks: the labels (and a similarity task's pair label)."""
        return list(self.labels) + ([self.images.pair_label] if self.is_similarity else [])

    @property
    def is_regression(self) -> bool:
        return self.task == REGRESSION

    @property
    def is_binary(self) -> bool:
        return self.task == CLASSIFICATION and self.num_classes == 2

    @property
    def schema_fingerprint(self) -> str:
        """Content hash of the curated schema: an edit re-runs the import and everything after it."""
        return file_fingerprint(self.schema_path)

    @property
    def uses_default_data(self) -> bool:
        return self.data_root is None

    # Joined as strings: the output root may be a URI (gs://bucket/root on a cluster).
    @property
    def data_dir(self) -> str:
        return self.data_root or posixpath.join(self.output_root, "data", self.pipeline_name)

    @property
    def pipeline_root(self) -> str:
        return self.pipeline_root_uri or posixpath.join(self.output_root, "pipeline")

    @property
    def checkpoint_root(self) -> str:
        """The Trainer's resume checkpoints: outside any one run's artifacts, so that a retried or re-run
        Trainer finds them (on a cluster every run writes under its own directory)."""
        return posixpath.join(self.pipeline_root, "Trainer", "checkpoints")

    def resources(self, task_id: str) -> TaskResources:
        return dict(self.task_resources).get(task_id, DEFAULT_RESOURCES)

    @property
    def state_root(self) -> str:
        """This machine's part of the output: the local root, or the output root when that is local."""
        return self.local_root or self.output_root

    @property
    def metadata_path(self) -> str:
        """The default store's SQLite file (used when `metadata` is None)."""
        return posixpath.join(self.state_root, "metadata.sqlite")

    @property
    def metadata_store(self) -> MetadataLocation:
        return self.metadata or MetadataLocation(sqlite_path=self.metadata_path)

    @property
    def serving_dir(self) -> str:
        return posixpath.join(self.output_root, "serving_model")

    @property
    def logs_dir(self) -> str:
        return posixpath.join(self.state_root, "logs")

    def replace(self, **changes) -> PipelineConfig:
        return dataclasses.replace(self, **changes)
