"""The images build: the stages of Dockerfile (TFX 1.16) and next/Dockerfile (TFX 1.21, Debian 13) run in
clean Debian roots made with debootstrap (no Docker engine here; tests/image_build.py), and each image's
Python runs the project.

Slow (a few minutes: a Debian root, a compiler, the locked dependencies from the package cache), so marked
and run by `make test` as the rest of the suite."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.image_build import Builder, BuildFailed
from tests.kfp_launcher import load_spec

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def uv_cache() -> str | None:
    uv = shutil.which("uv") or str(REPO_ROOT / ".tools" / "bin" / "uv")
    if not os.path.exists(uv):
        return None
    return subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()


@dataclasses.dataclass(frozen=True)
class Stack:
    dockerfile: str
    python: str
    tfdv: str
    tfx: str
    s3: bool  # TensorFlow's s3:// filesystem (tensorflow-io: no release for TensorFlow 2.21)


# Each stack's suite builds its own image: `make test` the first, `make test-next` the second.
STACKS = [
    stack
    for stack in (
        Stack("Dockerfile", "3.10", "1.16.1", "1.16.0", s3=True),
        Stack("next/Dockerfile", "3.11", "1.21.0", "1.21.0", s3=False),
    )
    if stack.python == f"{sys.version_info[0]}.{sys.version_info[1]}"
]


@pytest.fixture(scope="module", params=STACKS, ids=[s.dockerfile for s in STACKS])
def image(request, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("building in a chroot needs root")
    if shutil.which("debootstrap") is None:
        pytest.fail("debootstrap is missing: `make test` installs it (apt-get install debootstrap)")
    work = tmp_path_factory.mktemp("image")
    builder = Builder(REPO_ROOT, work, uv_cache=uv_cache())
    root = builder.build(REPO_ROOT / request.param.dockerfile)
    yield builder, root, request.param
    shutil.rmtree(work)  # several GB: two stages of the virtualenv


def test_the_image_runs_the_project_with_the_compiled_dependency(image):
    builder, root, stack = image
    out = builder.run(
        root,
        "python -c 'import farmhash, tensorflow_data_validation as tfdv, tfx, tensorflow as tf; "
        "import pipeline.cli, components.csv_example_gen, trainer_module.run; "
        'print("versions", farmhash.hash64("penguin"), tfdv.__version__, tfx.__version__, '
        "tf.keras.__name__)'",
    )
    (line,) = [line for line in out.splitlines() if line.startswith("versions ")]
    _, farm, tfdv_version, tfx_version, keras = line.split()
    assert int(farm) > 0
    assert (tfdv_version, tfx_version) == (stack.tfdv, stack.tfx)
    assert keras.startswith("tf_keras")  # TF_USE_LEGACY_KERAS=1 from the image's ENV


def test_every_python_process_of_the_image_gets_tensorflows_s3_filesystem(image):
    """The image's `.pth` hook: TensorFlow imported by any process (here not the project) registers s3://;
    on the newer stack, which has no such filesystem, an s3:// root is refused in one line instead."""
    builder, root, stack = image
    out = builder.run(
        root,
        "cd / && python -c 'import tensorflow as tf, sys; "
        'print("s3 registered", "tensorflow_io" in sys.modules)\'',
    )
    assert f"s3 registered {stack.s3}" in out
    if not stack.s3:
        with pytest.raises(BuildFailed, match=r"TensorFlow 2\.21\.\d+ has no s3:// filesystem here"):
            builder.run(root, "python -m pipeline compile --output-root s3://bucket/p --compiled-dir /tmp/c")


def test_the_compiler_stays_in_the_builder_stage(image):
    builder, root, stack = image
    assert not (root / "usr/bin/g++").exists()
    assert (builder.roots["builder"] / "usr/bin/g++").exists()
    # The project is installed in the virtualenv, not only present as files in the working directory.
    out = builder.run(root, "cd / && python -c 'import pipeline, sys; print(\"at\", pipeline.__file__)'")
    assert f"at /pipeline/.venv/lib/python{stack.python}/site-packages/pipeline/" in out


def test_the_image_compiles_the_pipeline_from_its_own_files(image):
    builder, root, _ = image
    builder.run(root, "python -m pipeline compile --output-root gs://bucket/p --compiled-dir /tmp/compiled")
    spec = load_spec(root / "tmp/compiled/penguin-species/pipeline.yaml")
    schema = spec["root"]["dag"]["tasks"]["ImportSchemaGen"]["inputs"]["parameters"]["schema_file"]
    path = schema["runtimeValue"]["constant"]
    assert path == "/pipeline/schemas/penguins/schema.pbtxt" and (root / path.lstrip("/")).is_file()
