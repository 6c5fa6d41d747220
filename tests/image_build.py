"""Runs a Dockerfile's build in clean Debian roots made with debootstrap, for the image test: there is no
Docker engine on these machines. A test harness, not a container builder: it knows the instructions the
project's Dockerfile uses (FROM ... [AS name], ENV, WORKDIR, COPY [--from=stage], RUN) and refuses others.

The base images (python:3.10.13-slim, python:3.11-slim-trixie) are made the way their own Dockerfiles make
them (tests/debian_root.py): Debian's release with the runtime libraries CPython links, and that CPython in
/usr/local. Each stage starts from a fresh copy of its base's root.
RUN executes `/bin/sh -c` chrooted into the stage's root, in a private mount namespace, with an
environment holding only the Dockerfile's ENV, HOME and PATH, plus what this machine's network needs to
reach the package registries (its CA bundle), as a build behind the same network would get.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
from pathlib import Path

from tests.debian_root import BASE_PATH, RootFailed, chroot, host, make_root

# The base images the project's Dockerfiles use: the Debian release and the CPython each holds.
BASE_IMAGES = {
    "python:3.10.13-slim": ("bookworm", "3.10.13"),  # Dockerfile: the TFX 1.16 stack
    # next/Dockerfile, the TFX 1.21 stack: the 3.11 line, made with the CPython 3.11 that next/ pins.
    "python:3.11-slim-trixie": ("trixie", "3.11.7"),
}

BuildFailed = RootFailed


@dataclasses.dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def parse(dockerfile: Path) -> list[Stage]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition(" ")
        kind, rest = kind.upper(), rest.strip()
        if kind == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            stages.append(Stage(match.group(1), match.group(2)))
        elif kind in ("ENV", "WORKDIR", "COPY", "RUN"):
            stages[-1].instructions.append((kind, rest))
        else:
            raise ValueError(f"the image test does not know the instruction {kind}")
    return stages


def parse_env(rest: str, env: dict) -> dict:
    """`ENV A=1 B=$A:x`, expanded against the environment so far, as Docker does."""
    values = {}
    for item in shlex.split(rest):
        key, _, value = item.partition("=")
        values[key] = re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda m: {**env, **values}.get(m[1] or m[2], ""), value)
    return values


class Builder:
    def __init__(self, context: Path, work_dir: Path, uv_cache: Path | None = None):
        self.context = context
        self.work_dir = work_dir
        self.uv_cache = uv_cache
        self.roots: dict[str, Path] = {}
        self.environments: dict[Path, tuple[dict, str]] = {}  # root -> the stage's ENV and WORKDIR
        self.log = work_dir / "build.log"

    def base_root(self, image: str) -> Path:
        if image not in BASE_IMAGES:
            raise ValueError(f"the image test makes {', '.join(BASE_IMAGES)} only, not {image}")
        release, python = BASE_IMAGES[image]
        base = self.work_dir / f"base-{release}-{python}"
        return base if base.exists() else make_root(base, release, python, self.log)

    def build(self, dockerfile: Path) -> Path:
        """Builds every stage; returns the last stage's root."""
        root = None
        for number, stage in enumerate(parse(dockerfile)):
            root = self.work_dir / f"stage-{number}"
            host(["cp", "-a", str(self.base_root(stage.base)), str(root)], self.log)
            env, workdir = {"PATH": BASE_PATH, "LANG": "C.UTF-8"}, "/"
            for kind, rest in stage.instructions:
                if kind == "ENV":
                    env.update(parse_env(rest, env))
                elif kind == "WORKDIR":
                    workdir = rest
                    (root / rest.lstrip("/")).mkdir(parents=True, exist_ok=True)
                elif kind == "COPY":
                    self._copy(root, workdir, rest)
                elif kind == "RUN":
                    self._chroot(root, rest, env, workdir)
            self.roots[stage.name or str(number)] = root
            self.environments[root] = (env, workdir)
        return root

    def run(self, root: Path, command: str) -> str:
        """`command` as a container of that stage runs it: its ENV, in its WORKDIR."""
        env, workdir = self.environments[root]
        return self._chroot(root, command, env, workdir)

    def _copy(self, root: Path, workdir: str, rest: str) -> None:
        words = shlex.split(rest)
        source_root = self.context
        if words[0].startswith("--from="):
            source_root = self.roots[words.pop(0).split("=", 1)[1]]
        *sources, destination = words
        target = root / os.path.join(workdir, destination).lstrip("/")
        for source in sources:
            path = source_root / source.lstrip("/")
            if path.is_dir():  # its contents, as Docker copies a directory
                shutil.copytree(
                    path,
                    target,
                    symlinks=True,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"),
                )
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)

    def _chroot(self, root: Path, command: str, env: dict, workdir: str) -> str:
        binds = {self.uv_cache: "/root/.cache/uv"} if self.uv_cache else None
        return chroot(root, command, env, workdir, self.log, binds)
