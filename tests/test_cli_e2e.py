"""The command line end to end, in fresh processes: users' own CSVs through `schema` then `run`, and the
Beam orchestrator."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.datasets import write_breast_cancer, write_diabetes

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parent.parent


# TFX's log line when a Beam component packages TFX for remote workers (it does when given Beam arguments).
PACKAGING_TFX = "Attempting to infer TFX Python dependency for beam"


def cli(*argv, timeout=900, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *argv],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def query(output_root: Path, data_name: str, label: str) -> dict:
    served = sorted((output_root / "serving_model").iterdir())[-1]
    examples = output_root / "pipeline" / "CsvExampleGen" / "examples" / "*" / "Split-eval" / "*"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "serving_client.py"), str(served), str(examples), label],
        capture_output=True, text=True, cwd=output_root, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def schema_then_run(
    tmp_path: Path, writer, name: str, label: str
) -> tuple[subprocess.CompletedProcess, Path]:
    data = tmp_path / name
    writer(data)
    schema = tmp_path / f"{name}_schema.pbtxt"
    drafted = cli("schema", "--data-root", str(data), "--label", label, "--output", str(schema))
    assert drafted.returncode == 0, drafted.stderr[-3000:]
    assert f"Drafted {schema}" in drafted.stdout
    output_root = tmp_path / "out"
    result = cli("run", "--data-root", str(data), "--schema", str(schema), "--label", label,
                 "--output-root", str(output_root))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    return result, output_root


def assert_quiet_progress(stdout: str) -> None:
    """One line per component with its duration, the summary, and none of the raw TF/Beam logs."""
    for node in ("CsvExampleGen", "Transform", "Trainer", "Evaluator", "ServingCheck", "Pusher"):
        assert any(
            line.strip().startswith(node) and line.strip().endswith(" s") for line in stdout.splitlines()
        )
    assert "INFO:absl" not in stdout and "tensorflow/core" not in stdout and "Epoch 1/" not in stdout


def test_breast_cancer_binary_classification_from_a_drafted_schema(tmp_path):
    result, output_root = schema_then_run(tmp_path, write_breast_cancer, "cancer", "target")
    assert_quiet_progress(result.stdout)
    # Relative to the data: 357 of the 569 tumours are benign, so the gate is 0.6274 + 0.25 * 0.3726.
    assert "classification gate on 'target' (2 classes): accuracy >= 0.7206, AUC >= 0.8" in result.stdout
    assert "(always predicting the most frequent class, '1', scores 0.6274" in result.stdout
    assert "Examples:  eval" in result.stdout and "Anomalies: none" in result.stdout
    assert "auc[class 1]" in result.stdout
    assert "Blessed and pushed:" in result.stdout

    served = query(output_root, "cancer", "target")
    assert served["project_imported"] == []
    assert served["accuracy"] >= 0.9
    assert served["classes_seen"] == ["0", "1"]
    # The full log went to the file named at the start.
    log = next((output_root / "logs").glob("run-*.log"))
    assert "Component Trainer is running" in log.read_text()


def test_diabetes_regression_from_a_drafted_schema(tmp_path):
    import pandas as pd
    import tensorflow_transform as tft

    result, output_root = schema_then_run(tmp_path, write_diabetes, "diabetes", "progression")
    # 8 of the 442 rows have no label: left out of training and evaluation, and said so.
    drafted = (tmp_path / "diabetes_schema.pbtxt").read_text()
    assert "empty in 1.8% of rows (8 of 442): those rows are left out of training and evaluation" in drafted
    # The patient id is drafted as an identifier: no model input, but carried by predict.
    assert "# patient: BYTES, required; an identifier" in drafted
    assert (
        "Labels:    8 of 442 rows have no progression: not used for training or evaluation" in result.stdout
    )
    counts = re.findall(r"(\w+) (\d+)", result.stdout.split("Examples:  ")[1].splitlines()[0])
    assert sum(int(n) for _, n in counts) == 434
    assert "regression gate on 'progression': RMSE <= " in result.stdout
    assert "root_mean_squared_error" in result.stdout and "mean_absolute_error" in result.stdout
    assert "Blessed and pushed:" in result.stdout

    served = query(output_root, "diabetes", "progression")
    spread = pd.read_csv(tmp_path / "diabetes" / "diabetes.csv")["progression"].std(ddof=0)
    assert served["rmse"] < spread  # better than always predicting the mean, in the label's units
    low, high = served["prediction_range"]
    assert 0 < low < high < 400  # disease progression scores run from 25 to 346

    transform_graph = next((output_root / "pipeline" / "Transform" / "transform_graph").iterdir())
    inputs = tft.TFTransformOutput(str(transform_graph)).transformed_feature_spec()
    assert "bmi_xf" in inputs and "patient_xf" not in inputs
    scored = tmp_path / "scored.csv"
    predicted = cli("predict", "--data-root", str(tmp_path / "diabetes"), "--output", str(scored),
                    "--pipeline-name", "diabetes", "--output-root", str(output_root))  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    rows = pd.read_csv(scored)
    assert sorted(rows["patient"]) == [f"patient-{i:04d}" for i in range(442)]  # every row, labelled or not
    assert rows["predicted_progression"].notna().all()

    # Allowed fewer than 8 of 442 unlabelled rows, the same data stops at the data gate with one line.
    data, schema = tmp_path / "diabetes", tmp_path / "diabetes_schema.pbtxt"
    refused = cli("run", "--data-root", str(data), "--schema", str(schema), "--label", "progression",
                  "--output-root", str(output_root), "--max-unlabelled-share", "0.01")  # fmt: skip
    assert refused.returncode != 0
    last_line = refused.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: Data gate: 8 of 442 rows have no progression: not used for training")
    assert "(1.8% of the rows, over the 1% allowed)" in last_line
    assert len(sorted((output_root / "serving_model").iterdir())) == 1  # nothing new pushed


def test_beam_orchestrator_runs_the_bundled_task(tmp_path):
    temp = tmp_path / "temp"
    temp.mkdir()
    output_root = tmp_path / "out"
    result = cli(
        "run", "--orchestrator", "beam", "--output-root", str(output_root), env={"TMPDIR": str(temp)}
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "beam orchestrator" in result.stdout
    assert_quiet_progress(result.stdout)
    assert "Blessed and pushed:" in result.stdout
    assert query(output_root, "penguins", "species")["accuracy"] >= 0.9
    # Beam's defaults need no arguments, so no component packaged TFX, and the run left no temporary files.
    [log] = (output_root / "logs").glob("run-*.log")
    text = log.read_text()
    assert "node Transform is finished" in text and PACKAGING_TFX not in text
    assert list(temp.iterdir()) == []


def test_a_command_shows_its_own_lines_and_keeps_the_libraries_in_its_log(tmp_path):
    from pipeline.data import write_penguins_csv

    write_penguins_csv(tmp_path / "data")
    logs = tmp_path / "out" / "logs"
    drafted = cli(
        "schema", "--data-root", str(tmp_path / "data"), "--label", "species", "--output",
        str(tmp_path / "schema.pbtxt"), "--output-root", str(tmp_path / "out"),
    )  # fmt: skip
    assert drafted.returncode == 0, drafted.stderr
    assert drafted.stderr == ""
    assert drafted.stdout.startswith(
        f"Drafted {tmp_path / 'schema.pbtxt'} from 1 file(s). Review before use:"
    )
    [log] = logs.glob("schema-*.log")
    # What the terminal used to show, kept: TensorFlow's start-up line (both stacks print it).
    assert "oneDNN custom operations are on" in log.read_text()
    (tmp_path / "utf16").mkdir()
    (tmp_path / "utf16" / "rows.csv").write_bytes("\ufeffspecies,island\nAdelie,Dream\n".encode("utf-16-le"))
    refused = cli(
        "schema", "--data-root", str(tmp_path / "utf16"), "--label", "species", "--output-root",
        str(tmp_path / "out"),
    )  # fmt: skip
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"error: {tmp_path / 'utf16' / 'rows.csv'} is UTF-16 text; re-save it as UTF-8 (in Excel: CSV UTF-8)"
    ]
