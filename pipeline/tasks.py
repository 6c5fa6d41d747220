"""The bundled tasks on the penguins table, each a label, a curated schema, a model and its gate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pipeline.config import REPO_ROOT, PipelineConfig
from trainer_module.config import TrainerConfig
from trainer_module.features import CLASSIFICATION, REGRESSION, ImageInput


@dataclass(frozen=True)
class Task:
    description: str
    config: dict = field(default_factory=dict)  # PipelineConfig fields


TASKS = {
    "penguin_species": Task(
        "species (3 classes) from measurements, island, sex, year; WideAndDeep (wide: the one-hot "
        "categories, deep: the numbers) with an auxiliary head, macro F1, DetectOverfitting",
        dict(
            pipeline_name="penguin_species",
            schema_path=str(REPO_ROOT / "schemas" / "penguins" / "schema.pbtxt"),
            label_key="species",
            task=CLASSIFICATION,
            num_classes=3,
            slice_features=("island",),
            trainer=TrainerConfig(
                model="wide_and_deep",
                callbacks=("tensorboard", "early_stopping", "detect_overfitting", "batch_timing"),
            ),
        ),
    ),
    "penguin_body_mass": Task(
        "body mass in grams from species, measurements, island, sex, year; SimpleQuadratic layers, the "
        "course's clipped relu (a Lambda layer), a SimpleDense head, the Huber loss; served in grams",
        dict(
            pipeline_name="penguin_body_mass",
            schema_path=str(REPO_ROOT / "schemas" / "penguin_body_mass" / "schema.pbtxt"),
            label_key="body_mass_g",
            task=REGRESSION,
            num_classes=None,
            slice_features=("species",),
            max_rmse=450.0,  # grams; the label's standard deviation is about 800
            max_rmse_increase=25.0,
            trainer=TrainerConfig(
                model="quadratic_mlp",
                hidden_units=(32, 16),
                loss="huber",
                huber_threshold=250.0,  # grams: quadratic for small errors, linear beyond
                callbacks=("tensorboard", "early_stopping", "reduce_lr_on_plateau", "csv_logger"),
                reduce_lr_min_lr=0.0005,
            ),
        ),
    ),
    "penguin_multi": Task(
        "species and body mass from one functional model with two named heads (species: softmax, "
        "crossentropy, accuracy, F1; body_mass_g: grams, Huber loss, RMSE, MAE), each gated by the Evaluator",
        dict(
            pipeline_name="penguin_multi",
            schema_path=str(REPO_ROOT / "schemas" / "penguin_multi" / "schema.pbtxt"),
            label_key="species",
            task=CLASSIFICATION,
            num_classes=3,
            second_label_key="body_mass_g",
            second_task=REGRESSION,
            slice_features=("island",),
            max_rmse=450.0,
            max_rmse_increase=25.0,
            trainer=TrainerConfig(
                model="multi_output",
                units=32,
                loss="huber",
                huber_threshold=250.0,
                callbacks=("tensorboard", "early_stopping"),
            ),
        ),
    ),
    "digits": Task(
        "handwritten digits (scikit-learn's 1,797 8x8 images, PNG-encoded) into 10 classes; Transform "
        "decodes and resizes them to 32x32; the subclassed ResNet (or --model vgg, quadratic_mlp); a slice "
        "per digit",
        dict(
            pipeline_name="digits",
            schema_path=str(REPO_ROOT / "schemas" / "digits" / "schema.pbtxt"),
            label_key="label",
            task=CLASSIFICATION,
            num_classes=10,
            slice_features=("label",),
            images=ImageInput(shape=(8, 8, 1), resize=32),
            min_accuracy=0.9,
            max_accuracy_drop=0.01,
            trainer=TrainerConfig(
                model="resnet",
                filters=32,
                batch_norm_momentum=0.9,
                hidden_units=(64,),  # quadratic_mlp, mlp
                learning_rate=0.003,
                # Halving the rate every epoch settles the weights, and with them the moving statistics
                # that batch normalization uses at inference.
                callbacks=("tensorboard", "early_stopping", "lr_step_decay"),
                lr_decay_drop=0.5,
            ),
        ),
    ),
    "digits_similarity": Task(
        "whether two handwritten digits are the same: the siamese network (a shared embedding, the "
        "euclidean distance) with the contrastive loss; evaluated on held-out pairs, gated on pair accuracy",
        dict(
            pipeline_name="digits_similarity",
            schema_path=str(REPO_ROOT / "schemas" / "digits_similarity" / "schema.pbtxt"),
            label_key="label",
            task=CLASSIFICATION,
            num_classes=10,
            slice_features=("label",),
            images=ImageInput(shape=(8, 8, 1), pair_feature="other_image", pair_label="same"),
            min_accuracy=0.9,
            max_accuracy_drop=0.01,
            train_steps=1000,  # 3 ms each: pairs of 8x8 images through a small dense network
            trainer=TrainerConfig(
                model="siamese",
                units=64,
                loss="contrastive",
                optimizer="rmsprop",
                learning_rate=0.003,
                callbacks=("tensorboard", "early_stopping"),
            ),
        ),
    ),
}
DEFAULT_TASK = "penguin_species"


def task_config(name: str, **changes) -> PipelineConfig:
    """The PipelineConfig of bundled task `name`, with `changes` applied."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid choices: {', '.join(TASKS)}")
    return dataclasses.replace(PipelineConfig(**TASKS[name].config), **changes)
