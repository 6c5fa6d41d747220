"""The locked dependencies install in the image: every package this environment installed from its stack's
lock (uv.lock on Python 3.10, next/uv.lock on 3.11) has a wheel for Linux x86-64 and this CPython, or an
sdist the image's build handles (pure Python, or compiled by the builder stage's g++). A new sdist-only
dependency fails here, naming itself, before an image build does. The build itself is
tests/test_image_build.py."""

from __future__ import annotations

import re
import sys
from importlib import metadata

import tomli

from tests.conftest import REPO_ROOT

# This interpreter's stack: its lock and its image (docs/stacks.md).
STACK_DIR = REPO_ROOT / "next" if sys.version_info[:2] == (3, 11) else REPO_ROOT
CPYTHON = f"cp3{sys.version_info[1]}"

# sdist-only packages whose build needs nothing but Python (crcmod falls back to pure Python without a
# compiler; the builder has one, so it gets its C extension).
PURE_PYTHON_SDISTS = {
    "crcmod",
    "dill",
    "docopt",
    "google-apitools",
    "hdfs",
    "kfp",
    "kfp-server-api",
    "rouge-score",
}
# sdist-only packages that must be compiled: C++.
COMPILED_SDISTS = {"pyfarmhash"}


def _compatible(wheel: str) -> bool:
    """A wheel file name's tags admit this CPython on manylinux x86-64."""
    python, abi, platform = wheel.removesuffix(".whl").split("-")[-3:]
    platform_ok = platform == "any" or any(
        ("manylinux" in tag or tag.startswith("linux")) and tag.endswith("x86_64")
        for tag in platform.split(".")
    )
    versions = [int(m.group(1)) for m in re.finditer(r"cp3(\d+)", python)]
    python_ok = any(tag.startswith("py3") or tag == CPYTHON for tag in python.split(".")) or (
        abi == "abi3" and any(v <= sys.version_info[1] for v in versions)
    )
    return platform_ok and python_ok and abi in ("none", "abi3", CPYTHON)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_installed_locked_package_has_a_linux_wheel_or_a_buildable_sdist():
    lock = tomli.loads((STACK_DIR / "uv.lock").read_text())
    installed = {_normalized(d.metadata["Name"]) for d in metadata.distributions()}
    without_wheel = {
        _normalized(package["name"])
        for package in lock["package"]
        if "registry" in package.get("source", {})
        and _normalized(package["name"]) in installed
        and not any(_compatible(w["url"].rsplit("/", 1)[-1]) for w in package.get("wheels", []))
    }
    unknown = without_wheel - PURE_PYTHON_SDISTS - COMPILED_SDISTS
    assert not unknown, f"locked without a Linux wheel, not known to build in the image: {sorted(unknown)}"
    assert COMPILED_SDISTS <= without_wheel, "a compiled sdist now ships a wheel: drop it from the list"


def test_the_builder_stage_installs_the_compiler_the_compiled_sdists_need():
    dockerfile = (STACK_DIR / "Dockerfile").read_text()
    builder = dockerfile.split("FROM ", 2)[1]
    assert "AS builder" in builder and re.search(r"apt-get install[^\n]*\bg\+\+", builder)
    assert "COPY --from=builder" in dockerfile.split("FROM ", 2)[2]
