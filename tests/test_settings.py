"""Settings by name (pipeline/settings.py): read by each field's type from `--set` and a YAML file, in a
stated precedence, shown and recorded with secrets redacted, listed in the generated reference; and the
components' execution properties (the cache keys) unchanged by the route a value takes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from pipeline import settings
from pipeline.cli import main
from pipeline.config import PipelineConfig
from pipeline.configure import ConfigError, ConfigRequest, build_config
from tests.conftest import REPO_ROOT
from trainer_module.config import TrainerConfig


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_values_are_read_by_the_fields_type_never_by_yamls_guesses(tmp_path):
    file = write(
        tmp_path / "settings.yaml",
        "pipeline_name: no\ntrain_steps: 120\ntrainer:\n  learning_rate: 1e-3\n  hidden_units: [32, 16]\n"
        "  early_stopping_baseline: none\n  jit_compile: true\n  vgg_blocks: [[8, 3, 1]]\n",
    )
    values = settings.load_file(file)
    assert values == {
        "pipeline_name": "no",  # a text field: YAML 1.1's boolean `no` stays text
        "train_steps": 120,
        "trainer.learning_rate": 0.001,  # PyYAML would read 1e-3 as the text "1e-3"
        "trainer.hidden_units": (32, 16),
        "trainer.early_stopping_baseline": None,
        "trainer.jit_compile": True,
        "trainer.vgg_blocks": ((8, 3, 1),),
    }
    assigned = settings.parse_assignments(["trainer.hidden_units=[64,32,16]", "max_rmse=none", "tune=false"])
    assert assigned == {"trainer.hidden_units": (64, 32, 16), "max_rmse": None, "tune": False}


@pytest.mark.parametrize(
    "text, message",
    [
        ("trainer.learning_rate=fast", "trainer.learning_rate takes a number, got 'fast'"),
        ("trainer.batch_size=3.5", "trainer.batch_size takes an integer, got '3.5'"),
        ("trainer.hidden_units=32", r"trainer.hidden_units takes a list of integers, e.g. \[1,2\], got '32'"),
        ("tune=no", "tune takes true or false, got 'no'"),
        ("trainer.optimizer=adamw", "trainer.optimizer takes one of adam, sgd, rmsprop, got 'adamw'"),
        ("trainer.callbacks=[tensorboard,nope]", "trainer.callbacks takes one of tensorboard, .*got 'nope'"),
        ("trainer.learnin_rate=0.1", "no setting trainer.learnin_rate; did you mean trainer.learning_rate?"),
        ("label_key=species", "label_key is not set by name: it comes from --label"),
        ("output_root=/x", "output_root is not set by name: it comes from --output-root"),
        ("learning_rate", "--set learning_rate: expected NAME=VALUE"),
    ],
)
def test_a_wrong_name_or_value_is_one_line_naming_the_field_and_what_it_accepts(text, message):
    with pytest.raises(settings.SettingError, match=message) as refused:
        settings.parse_assignments([text])
    assert "\n" not in str(refused.value)


def test_precedence_preset_then_file_then_options_then_set(tmp_path):
    file = write(
        tmp_path / "s.yaml",
        "train_steps: 77\neval_steps: 3\ntrainer:\n  learning_rate: 0.002\n  batch_size: 16\n",
    )
    preset = build_config(ConfigRequest(task="penguin_body_mass")).config
    assert (preset.trainer.model, preset.trainer.huber_threshold) == ("quadratic_mlp", 250.0)
    config = build_config(
        ConfigRequest(
            task="penguin_body_mass",
            config_file=file,
            train_steps=55,
            settings=("trainer.learning_rate=0.003", "trainer.units=8"),
        )
    ).config
    assert config.trainer.model == "quadratic_mlp" and config.trainer.huber_threshold == 250.0  # the preset's
    assert (config.eval_steps, config.trainer.batch_size) == (3, 16)  # the file's
    assert config.train_steps == 55  # the option's, over the file's
    assert (config.trainer.learning_rate, config.trainer.units) == (0.003, 8)  # --set's, over the file's
    with pytest.raises(ConfigError, match=r"^train_steps is set both by its option and by --set train_steps"):
        build_config(ConfigRequest(train_steps=5, settings=("train_steps=6",)))
    with pytest.raises(ConfigError, match="invalid configuration: learning_rate must be positive, got -1.0"):
        build_config(ConfigRequest(settings=("trainer.learning_rate=-1",)))
    with pytest.raises(ConfigError, match=r"--config .*s.yaml: trainer.batch_size takes an integer"):
        build_config(ConfigRequest(config_file=write(tmp_path / "s.yaml", "trainer: {batch_size: big}\n")))


def test_a_gate_set_by_name_replaces_the_one_inferred_from_the_data(tmp_path):
    (tmp_path / "data").mkdir()
    rows = "".join(f"{i % 7},{'ab'[i % 3 == 0]}\n" for i in range(60))
    (tmp_path / "data" / "d.csv").write_text("x,y\n" + rows)
    schema = tmp_path / "schema.pbtxt"
    assert main(["schema", "--data-root", str(tmp_path / "data"), "--label", "y", "--output", str(schema),
                 "--output-root", str(tmp_path / "out")]) == 0  # fmt: skip
    request = ConfigRequest(data_root=str(tmp_path / "data"), schema=str(schema), label="y")
    inferred = build_config(request)
    assert "always predicting the most frequent class" in inferred.gate
    named = build_config(dataclasses.replace(request, settings=("min_accuracy=0.95",)))
    assert named.config.min_accuracy == 0.95 and "most frequent" not in named.gate and "0.95" in named.gate


def test_unchanged_settings_give_the_same_execution_properties_whatever_their_route(tmp_path):
    """The cache keys (components' execution properties, the Trainer's custom_config among them) are the
    same for the preset alone and for the same values restated in a file and by --set; the recorded tree is
    in none of them."""
    from pipeline.pipeline import create_pipeline

    def properties(config):
        return {
            c.id: json.dumps(c.exec_properties, sort_keys=True, default=str)
            for c in create_pipeline(config).components
        }

    preset = build_config(ConfigRequest(task="penguin_species")).config
    restated = build_config(
        ConfigRequest(
            task="penguin_species",
            config_file=write(tmp_path / "same.yaml", yaml.safe_dump({"train_steps": 300, "eval_steps": 4})),
            settings=("trainer.model=wide_and_deep", "trainer.learning_rate=0.01"),
        )
    ).config
    assert restated == preset
    assert properties(restated) == properties(preset)
    trainer = properties(preset)["Trainer"]
    assert "learning_rate" in trainer and "output_root" not in trainer and "beam_pipeline_args" not in trainer


def test_the_tree_is_shown_and_recorded_with_secrets_redacted(tmp_path, capfd):
    config = PipelineConfig(
        beam_pipeline_args=("--runner=DirectRunner", "--aws_secret_access_key=AKIAFAKE", "--token=abc"),
    )
    shown = settings.to_yaml(config)
    assert "AKIAFAKE" not in shown and "abc" not in shown.split("token")[1][:20]
    tree = yaml.safe_load(shown)
    assert tree["beam_pipeline_args"] == [
        "--runner=DirectRunner",
        "--aws_secret_access_key=<redacted>",
        "--token=<redacted>",
    ]
    assert tree["label_key"] == "species" and tree["trainer"]["learning_rate"] == 0.01
    assert (
        main(["run", "--set", "trainer.batch_size=64", "--show-config", "--output-root", str(tmp_path)]) == 0
    )
    printed = yaml.safe_load(capfd.readouterr().out)
    assert printed["trainer"]["batch_size"] == 64 and printed["trainer"]["model"] == "wide_and_deep"
    assert not (tmp_path / "pipeline").exists()  # shown, nothing run


def test_a_trainer_option_added_to_the_dataclass_is_settable_everywhere(tmp_path, monkeypatch):
    """A new TrainerConfig field needs no other change: --set, a file, the compiled Trainer's custom_config,
    the recorded tree and the reference all take it."""
    from pipeline.kubeflow.compiler import compile_pipeline

    @dataclasses.dataclass(frozen=True)
    class Extended(TrainerConfig):
        label_smoothing: float = 0.0  # how much of each label's probability goes to the other classes

    monkeypatch.setitem(settings._TREES, "trainer.", Extended)
    config = PipelineConfig(trainer=Extended())
    by_set = settings.apply(config, settings.parse_assignments(["trainer.label_smoothing=0.1"]))
    by_file = settings.apply(
        config, settings.load_file(write(tmp_path / "s.yaml", "trainer:\n  label_smoothing: 0.2\n"))
    )
    assert (by_set.trainer.label_smoothing, by_file.trainer.label_smoothing) == (0.1, 0.2)
    written = compile_pipeline(by_set, str(tmp_path / "compiled"), image="registry.example.com/p:1")
    assert '"label_smoothing": 0.1' in written["spec"].read_text()  # the Trainer's custom_config
    assert yaml.safe_load(written["config"].read_text())["trainer"]["label_smoothing"] == 0.1
    assert "| `trainer.label_smoothing` | a number | `0.0` | how much of each label's probability" in (
        settings.reference()
    )


def test_the_configuration_reference_is_generated_from_the_tree():
    reference = (REPO_ROOT / "docs" / "configuration.md").read_text()
    assert reference == settings.reference(), (
        "regenerate: python -m pipeline.settings > docs/configuration.md"
    )
    for name in settings.settable():
        assert f"| `{name}` |" in reference
    rows = [line for line in reference.splitlines() if line.startswith("| `")]
    assert all(not line.endswith("|  |") for line in rows), "every setting has one line of meaning"
