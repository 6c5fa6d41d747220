"""For Apache Beam's `--setup_file` (Dataflow, Flink and Spark workers build and install the project from it:
`--beam-arg=--setup_file=./setup.py`). The project's metadata and dependencies are in pyproject.toml."""

from setuptools import setup

setup()
