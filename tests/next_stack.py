"""`make test-next`: the test suite on the newer stack (TFX 1.21, TensorFlow 2.21, Python 3.11: next/uv.lock)
in a clean Debian 13 root, whose glibc (2.41) its wheels need (manylinux_2_39; this machine's may be older).

The root is made with debootstrap from Debian's packages (tests/debian_root.py: CPython 3.11 in /usr/local as
python:3.11-slim-trixie holds it, plus make, g++ for the one dependency without a wheel, git and uv) and kept
under ~/.cache/penguin-tfx/roots/, named by what it is made of. In it, with this checkout mounted at its own
path and uv's package cache shared, the project is installed and tested the way a user of that system does
it: `make test STACK=next` (its virtualenv in the root, the Debian packages the tests use installed into the
root by `make system-deps`), or, given pytest arguments, `make setup system-deps STACK=next` and pytest with
them.

    python -m tests.next_stack                          everything
    python -m tests.next_stack -m "not e2e" tests/x.py  a selection (pytest's arguments)
    python -m tests.next_stack --without-system-packages tests/x.py   one that needs no Debian package
"""

from __future__ import annotations

import hashlib
import inspect
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests import debian_root

REPO_ROOT = Path(__file__).resolve().parent.parent
RELEASE = "trixie"
PYTHON_VERSION = (REPO_ROOT / "next" / ".python-version").read_text().strip()
# git: the report names the checkout's commit, as on a user's system.
PACKAGES = ("make", "g++", "git")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "penguin-tfx" / "roots"
# Variables the tests read, passed into the root when set here.
PASSED_THROUGH = ("CI", "LAUNCHER_MODES")
# The virtualenv lives in the root, not in the checkout (whose .venv-next is this system's own, if any).
VENV = "/opt/penguin-tfx/venv-next"


def uv_binary() -> Path:
    found = shutil.which("uv")
    if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
        return Path(found)
    return REPO_ROOT / ".tools" / "bin" / "uv"


def root_path() -> Path:
    """The root's directory, named by its release, Python, packages and the code that makes it."""
    recipe = repr((RELEASE, PYTHON_VERSION, PACKAGES, inspect.getsource(debian_root))).encode()
    return CACHE / f"debian-{RELEASE}-python{PYTHON_VERSION}-{hashlib.sha256(recipe).hexdigest()[:12]}"


def ensure_root(log: Path) -> Path:
    root = root_path()
    if not root.exists():
        print(f"Making the Debian 13 root {root} (log: {log})", flush=True)
        for older in CACHE.glob(f"debian-{RELEASE}-*"):  # made by an earlier recipe: several GB each
            shutil.rmtree(older)
        debian_root.make_root(root, RELEASE, PYTHON_VERSION, log, PACKAGES)
    # uv itself, the version this checkout uses (a static binary: it runs on any glibc).
    shutil.copy(uv_binary(), root / "usr/local/bin/uv")
    return root


def command(pytest_args: list[str], system_packages: bool = True) -> str:
    if not pytest_args:
        return f"make test STACK=next VENV={VENV}"
    targets = "setup system-deps" if system_packages else "setup"
    return f"make {targets} STACK=next VENV={VENV} && {VENV}/bin/python -m pytest " + shlex.join(pytest_args)


def main(argv: list[str]) -> int:
    # --without-system-packages: a selection that needs none of the Debian packages `make system-deps`
    # installs into the root (CI's subset), so a fresh root is not given them.
    system_packages = "--without-system-packages" not in argv
    argv = [arg for arg in argv if arg != "--without-system-packages"]
    log = CACHE.parent / "next-root.log"
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        root = ensure_root(log)
    except debian_root.RootFailed as error:
        print(f"error: the Debian 13 root could not be made: {error}", file=sys.stderr)
        return 1
    cache = subprocess.run([uv_binary(), "cache", "dir"], capture_output=True, text=True, check=True).stdout
    binds = {str(REPO_ROOT): str(REPO_ROOT), cache.strip(): "/root/.cache/uv"}
    # The environment a user's shell there would give, and the test settings given here.
    env = {"LANG": "C.UTF-8", "UV_LINK_MODE": "copy"}
    env |= {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    inside = command(argv, system_packages)
    print(f"In {root}: {inside}", flush=True)
    argv_ = debian_root.chroot_argv(root, inside, env, str(REPO_ROOT), binds)
    return subprocess.run(argv_).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
