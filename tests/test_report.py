"""The run report and model card of real runs: a blessed one, one refused by the Evaluator, one stopped by
the data gate (tests/test_pipeline_e2e.py) and a span with drift (tests/test_retraining_e2e.py); every
figure checked against what TFDV, TFMA and the Trainer stored; the page rendered in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pipeline import results

pytestmark = pytest.mark.e2e


class Page(HTMLParser):
    """The tables (rows of cell texts), the visible text and the image sources of an HTML page."""

    def __init__(self, source: str):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None
        self._skip = 0
        self.feed(source)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
        elif tag == "a":
            self.links.append(attrs.get("href", ""))
        elif tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, first_header: str) -> dict[str, list[str]]:
        """The table whose first header cell is `first_header`, as first cell -> the other cells."""
        for table in self.tables:
            if table and table[0] and table[0][0] == first_header:
                return {row[0]: row[1:] for row in table[1:]}
        raise AssertionError(f"no table headed {first_header!r}")

    def pairs(self) -> dict[str, str]:
        """Every two-cell row of every table, name -> value."""
        return {row[0]: row[1] for table in self.tables for row in table if len(row) == 2}

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def read_page(path: str) -> Page:
    return Page(Path(path).read_text())


def model_card(report_path: str) -> Page:
    return read_page(os.path.join(os.path.dirname(report_path), "model_card.html"))


def assert_self_contained(path: str) -> None:
    source = Path(path).read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", source), "the page loads from the network"
    page = Page(source)
    assert all(src.startswith("data:image/png;base64,") for src in page.images)


def assert_data_matches_tfdv(page: Page, summary) -> None:
    from components.drift_gate import load_split_statistics

    statistics = summary.outputs["StatisticsGen"]["statistics"]
    splits = page.table("split")
    assert {split: int(n[0]) for split, n in splits.items()} == results.examples_per_split(statistics)
    features = page.table("feature")
    train = load_split_statistics(statistics).datasets[0]
    empty = examples_without_value(summary.outputs["CsvExampleGen"]["examples"], "train")
    checked = 0
    for stats in train.features:
        name = ".".join(stats.path.step)
        row = features[name]
        if stats.WhichOneof("stats") == "num_stats":
            n = stats.num_stats
            assert row[2] == f"min {n.min:.4g} · mean {n.mean:.4g} · max {n.max:.4g}"
            # Counted in the examples themselves: an empty CSV cell is an empty value list.
            assert row[1] == f"{100 * empty[name] / train.num_examples:.1f}%"
            checked += 1
    assert checked >= 4


def examples_without_value(examples_uri: str, split: str) -> Counter:
    """Feature -> how many of the split's tf.Examples hold no value for it (absent, or an empty list)."""
    import tensorflow as tf

    counts = Counter()
    for path in Path(examples_uri, f"Split-{split}").glob("*.gz"):
        for record in tf.data.TFRecordDataset(str(path), compression_type="GZIP"):
            features = tf.train.Example.FromString(record.numpy()).features.feature
            for name, feature in features.items():
                kind = feature.WhichOneof("kind")
                counts[name] += not (kind and len(getattr(feature, kind).value))
    return counts


def overall_metrics(page: Page) -> dict[str, list[str]]:
    return page.table("metric (overall)")


def test_a_blessed_run_reports_what_it_saw_trained_decided_and_pushed(first_run):
    path = first_run.summary.report
    assert path and path.startswith(os.path.join(first_run.config.output_root, "reports"))
    assert_self_contained(path)
    page = read_page(path)
    pushed = first_run.summary.pushed_destination
    assert f"Blessed and pushed: {pushed} (version {os.path.basename(pushed)})." in page.all_text
    assert_data_matches_tfdv(page, first_run.summary)
    assert "Anomalies: none" in page.all_text

    # Evaluation: the overall figures and each island's are TFMA's.
    evaluation_uri = first_run.summary.outputs["Evaluator"]["evaluation"]
    evaluation = results.evaluation(evaluation_uri)
    overall = overall_metrics(page)
    accuracy = evaluation.candidate["sparse_categorical_accuracy"]
    assert overall["sparse_categorical_accuracy"][0] == f"{accuracy:.4f}"
    assert overall["example_count"][0] == str(int(evaluation.candidate["example_count"]))
    slices = page.table("slice")
    assert sorted(slices) == ["island = Biscoe", "island = Dream", "island = Torgersen"]
    # Without a baseline TFMA applies (and stores) the value threshold alone.
    assert "sparse_categorical_accuracy (overall): >= 0.9 " in page.all_text
    assert "No baseline: no model of this pipeline was blessed before." in page.all_text

    # Training: the configuration, the curves, and the last epoch as TensorBoard recorded it.
    pairs = page.pairs()
    assert pairs["model"] == "wide_and_deep"
    assert pairs["steps"].startswith("300 = 6 epochs x 50, batch 32;")
    assert "callbacks" in pairs and "detect_overfitting" in pairs["callbacks"]
    assert len(page.images) == 2  # the training curves and the per-slice chart
    last = page.table("metric at the last epoch")
    assert last["val_loss"][0] == f"{tensorboard_last(first_run, 'validation', 'epoch_loss'):.4f}"

    # Deployment and lineage.
    assert f"Pushed: version {os.path.basename(pushed)} at {pushed}" in page.all_text
    assert pairs["run id"] == first_run.summary.run_id
    assert pairs["code fingerprint"] == first_run.config.code_fingerprint
    assert re.match(r"[0-9a-f]{12}", pairs["code version"])
    from importlib.metadata import version  # the stack's TFX: 1.16 or 1.21 (docs/stacks.md)

    assert f"tfx {version('tfx')}" in pairs["packages"] and "tensorflow-model-analysis" in pairs["packages"]


def tensorboard_last(record, split: str, tag: str) -> float:
    import tensorflow as tf

    run_dir = record.summary.outputs["Trainer"]["model_run"]
    values = []
    for path in sorted(tf.io.gfile.glob(os.path.join(run_dir, split, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            values += [
                (event.step, float(tf.make_ndarray(v.tensor))) for v in event.summary.value if v.tag == tag
            ]
    return max(values)[1]


def test_the_model_card_describes_use_data_metrics_per_slice_and_limits(first_run):
    card = model_card(first_run.summary.report)
    text = card.all_text
    assert "Bundled task penguin_species: species (3 classes) from measurements" in text
    assert card.pairs()["model"] == "wide_and_deep"
    metrics = card.table("slice")
    evaluation = results.evaluation(first_run.summary.outputs["Evaluator"]["evaluation"])
    header = [t for t in card.tables if t[0][0] == "slice"][0][0]
    column = header.index("sparse_categorical_accuracy") - 1
    assert metrics["overall"][column] == f"{evaluation.candidate['sparse_categorical_accuracy']:.4f}"
    assert "island = Torgersen" in metrics
    assert "Slices with fewer than 50 evaluation examples give rough estimates" in text
    assert "report.html" in card.links


def test_a_refused_candidate_reports_why_beside_the_baseline(crippled_run):
    page = read_page(crippled_run.summary.report)
    assert "Not blessed: the model missed the gate; nothing was pushed" in page.all_text
    evaluation = results.evaluation(crippled_run.summary.outputs["Evaluator"]["evaluation"])
    assert evaluation.failures and all(failure in page.all_text for failure in evaluation.failures)
    overall = overall_metrics(page)
    candidate, baseline, change = overall["sparse_categorical_accuracy"]
    assert candidate == f"{evaluation.candidate['sparse_categorical_accuracy']:.4f}"
    assert baseline == f"{evaluation.baseline['sparse_categorical_accuracy']:.4f}"
    assert float(change) < 0
    assert "sparse_categorical_accuracy (overall): >= 0.9, at most 0 below the baseline's" in page.all_text
    assert "Not pushed: the served model is unchanged." in page.all_text
    assert "This model was not blessed and is not served." in model_card(crippled_run.summary.report).all_text


def assert_stopped_by_the_data_gate(report_path: str, summary) -> None:
    """For tests/test_pipeline_e2e.py's broken-data run."""
    page = read_page(report_path)
    text = page.all_text
    found = results.anomalies(summary.outputs["ExampleValidator"]["anomalies"])
    assert f"Stopped by the data gate: {len(found)} anomalies; nothing was trained or pushed." in text
    anomalies = page.table("feature")  # the features table comes first, then the anomalies
    anomaly_rows = {row[0]: row[1] for t in page.tables if t[0] == ["feature", "anomaly"] for row in t[1:]}
    assert anomaly_rows == found
    assert set(found) <= set(anomalies)
    assert "Nothing was trained: the run stopped before the Trainer." in text
    assert "No evaluation: the run stopped before the Evaluator." in text
    assert_data_matches_tfdv(page, summary)


def test_report_command_rewrites_a_run_and_names_unknown_ones(first_run):
    from tests.test_cli_e2e import cli

    root = first_run.config.output_root
    result = cli("report", "--output-root", root, "--run", first_run.summary.run_id)
    assert result.returncode == 0, result.stderr
    assert f"Report:     {first_run.summary.report}" in result.stdout
    latest = cli("report", "--output-root", root)
    assert latest.returncode == 0 and "Report:" in latest.stdout
    unknown = cli("report", "--output-root", root, "--run", "no-such-run")
    assert unknown.returncode == 2
    latest_ids = ", ".join(run_ids(first_run)[-5:])
    expected = f"error: no run 'no-such-run' of 'penguin_species'; the latest are: {latest_ids}"
    assert unknown.stderr.strip() == expected


def run_ids(record) -> list[str]:
    from pipeline.run_summary import run_summaries

    return [r.run_id for r in run_summaries(record.config.metadata_path, record.config.pipeline_name)]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium (`make test` installs it with the other system packages)."""
    path = shutil.which("chromium")
    assert path, "chromium is not installed: `make system-deps` installs it (apt-get install chromium)"
    return path


def headless(chromium: str, profile: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *argv,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_the_console_check_catches_a_page_error(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><p>x</p><script>missingFunction();</script></body></html>")
    result = headless(chromium, tmp_path / "profile", "--dump-dom", page.as_uri())
    assert any("missingFunction is not defined" in line for line in console_messages(result.stderr))


def test_the_report_renders_in_headless_chromium(first_run, chromium, tmp_path):
    url = Path(first_run.summary.report).as_uri()
    screenshot = tmp_path / "report.png"
    shot = headless(chromium, tmp_path / "p1", f"--screenshot={screenshot}", "--window-size=1200,3000", url)
    assert screenshot.exists() and screenshot.read_bytes().startswith(b"\x89PNG")
    assert screenshot.stat().st_size > 50_000  # tables, text and two plots, not a blank page
    assert console_messages(shot.stderr) == []
    dom = headless(chromium, tmp_path / "p2", "--dump-dom", url)
    assert console_messages(dom.stderr) == []
    rendered = Page(dom.stdout).all_text
    evaluation = results.evaluation(first_run.summary.outputs["Evaluator"]["evaluation"])
    counts = results.examples_per_split(first_run.summary.outputs["StatisticsGen"]["statistics"])
    for figure in (
        f"{evaluation.candidate['sparse_categorical_accuracy']:.4f}",
        f"(version {os.path.basename(first_run.summary.pushed_destination)})",
        str(counts["train"]),
        str(counts["eval"]),
    ):
        assert figure in rendered
