"""Runs a Dockerfile's build in clean Debian roots made with debootstrap, for the image test: there is no
Docker engine on these machines. A test harness, not a container builder: it knows the instructions the
project's Dockerfile uses (FROM ... [AS name], ENV, WORKDIR, COPY [--from=stage], RUN) and refuses others.

The base image, python:3.10.13-slim, is made the way its own Dockerfile makes it: Debian's release
(bookworm) with the runtime libraries CPython links, and CPython 3.10.13 in /usr/local (pyenv's build of the
same version, copied without its site-packages; pip from ensurepip). Each stage starts from a fresh copy of
that root. RUN executes `/bin/sh -c` chrooted into the stage's root, in a private mount namespace, with an
environment holding only the Dockerfile's ENV, HOME and PATH, plus what this machine's network needs to
reach the package registries (its CA bundle), as a build behind the same network would get.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

BASE_IMAGE = "python:3.10.13-slim"
DEBIAN_RELEASE = "bookworm"
# python:3.10-slim's runtime packages (its Dockerfile's apt-get install), and the libraries CPython's
# extension modules link.
BASE_PACKAGES = (
    "ca-certificates",
    "netbase",
    "tzdata",
    "libbz2-1.0",
    "libffi8",
    "liblzma5",
    "libncursesw6",
    "libreadline8",
    "libsqlite3-0",
    "libssl3",
    "libuuid1",
    "zlib1g",
)
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class BuildFailed(RuntimeError):
    pass


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


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (its deb822 or one-line sources)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in [*sorted(sources.glob("*.sources")), Path("/etc/apt/sources.list")]:
        if not path.exists():
            continue
        text = path.read_text()
        found = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s", text, re.MULTILINE
        )
        if found:
            return found.group(1)
    raise BuildFailed("no Debian mirror in /etc/apt: the base root cannot be made")


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

    def base_root(self) -> Path:
        base = self.work_dir / "base"
        if base.exists():
            return base
        made = base.with_name("base.partial")
        self._host(
            ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}"]
            + [DEBIAN_RELEASE, str(made), debian_mirror()]
        )
        prefix = Path(_pyenv_python()).parent.parent
        for part in ("bin", "include", "lib", "share"):
            if (prefix / part).exists():
                shutil.copytree(
                    prefix / part,
                    made / "usr" / "local" / part,
                    symlinks=True,
                    dirs_exist_ok=True,
                    ignore=lambda d, names: ["site-packages"] if d.endswith("python3.10") else [],
                )
        (made / "usr/local/lib/python3.10/site-packages").mkdir(exist_ok=True)
        shutil.copy(HOST_CA_BUNDLE, made / "etc/ssl/certs/ca-certificates.crt")
        shutil.copy("/etc/resolv.conf", made / "etc/resolv.conf")
        self._chroot(made, "ldconfig && python3.10 -m ensurepip --default-pip", {}, "/")
        for name in ("python", "python3"):
            (made / "usr/local/bin" / name).unlink(missing_ok=True)
            (made / "usr/local/bin" / name).symlink_to("python3.10")
        made.rename(base)
        return base

    def build(self, dockerfile: Path) -> Path:
        """Builds every stage; returns the last stage's root."""
        root = None
        for number, stage in enumerate(parse(dockerfile)):
            if stage.base != BASE_IMAGE:
                raise ValueError(f"the image test makes {BASE_IMAGE} only, not {stage.base}")
            root = self.work_dir / f"stage-{number}"
            self._host(["cp", "-a", str(self.base_root()), str(root)])
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

    def _host(self, argv: list[str]) -> None:
        with open(self.log, "a") as log:
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode:
            raise BuildFailed(f"{' '.join(argv[:3])} ... exited {done.returncode}: {self._tail()}")

    def _chroot(self, root: Path, command: str, env: dict, workdir: str) -> str:
        variables = {
            "HOME": "/root",
            "PATH": BASE_PATH,
            # The network of this machine: its registries are reached through this CA bundle.
            "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
            **env,
        }
        mounts = [f'mount -t proc proc "{root}/proc"', f'mount --rbind /dev "{root}/dev"']
        if self.uv_cache:
            cache = root / "root/.cache/uv"
            cache.mkdir(parents=True, exist_ok=True)
            mounts.append(f'mount --bind "{self.uv_cache}" "{cache}"')
        inner = f"cd {shlex.quote(workdir)} && {command}"
        script = (
            " && ".join(mounts)
            + f' && exec chroot "{root}" /usr/bin/env -i '
            + " ".join(shlex.quote(f"{k}={v}") for k, v in variables.items())
            + f" /bin/sh -c {shlex.quote(inner)}"
        )
        with open(self.log, "a") as log:
            log.write(f"# {root.name}: {command}\n")
            log.flush()
            start = log.tell()
            done = subprocess.run(
                ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        output = self.log.read_bytes()[start:].decode(errors="replace")  # tell() counts bytes
        if done.returncode:
            raise BuildFailed(f"RUN {command} exited {done.returncode} in {root.name}: {output[-3000:]}")
        return output

    def _tail(self) -> str:
        return self.log.read_bytes()[-3000:].decode(errors="replace")


def _pyenv_python() -> str:
    prefix = subprocess.run(["pyenv", "prefix", "3.10.13"], capture_output=True, text=True, check=True)
    return f"{prefix.stdout.strip()}/bin/python3.10"
