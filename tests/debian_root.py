"""Clean Debian roots made with debootstrap from Debian's packages, holding a CPython in /usr/local the way
the python:X-slim images hold it (pyenv's build of the same version, copied without its site-packages; pip
from ensurepip), and commands run chrooted into them in a private mount namespace.

Two users: the image test (tests/image_build.py: Debian 12, CPython 3.10, the Dockerfile's base) and the
newer stack's root (tests/next_stack.py: Debian 13, CPython 3.11, where TFX 1.21's glibc 2.39 wheels install).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

# The runtime libraries CPython's extension modules link (python:X-slim's apt-get install), per release:
# Debian 13 renamed some for its 64-bit time_t transition.
RUNTIME_PACKAGES = {
    "bookworm": ("libncursesw6", "libreadline8", "libssl3"),
    "trixie": ("libncursesw6", "libreadline8t64", "libssl3t64"),
}
COMMON_PACKAGES = (
    "ca-certificates",
    "netbase",
    "tzdata",
    "libbz2-1.0",
    "libffi8",
    "liblzma5",
    "libsqlite3-0",
    "libuuid1",
    "zlib1g",
)
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class RootFailed(RuntimeError):
    pass


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
    raise RootFailed("no Debian mirror in /etc/apt: the root cannot be made")


def python_prefix(version: str) -> Path:
    """Where CPython `version` is installed: pyenv's build, or /usr/local when that holds this version (as
    in the newer stack's root, whose tests build the image from within it)."""
    if shutil.which("pyenv"):
        done = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True)
        if done.returncode == 0:
            return Path(done.stdout.strip())
    minor = ".".join(version.split(".")[:2])
    local = Path(f"/usr/local/bin/python{minor}")
    if local.exists():
        found = subprocess.run(
            [local, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True
        )
        if found.stdout.strip() == version:
            return local.parent.parent
    raise RootFailed(f"no Python {version} to copy into the root: pyenv install {version}")


def make_root(
    root: Path, release: str, python_version: str, log: Path, packages: tuple[str, ...] = ()
) -> Path:
    """Debian `release` (minbase, its runtime libraries and `packages`) with CPython `python_version` in
    /usr/local, `python` and `python3` naming it. Made beside `root` and renamed into place when complete."""
    made = root.with_name(root.name + ".partial")
    if made.exists():
        shutil.rmtree(made)
    included = ",".join((*COMMON_PACKAGES, *RUNTIME_PACKAGES[release], *packages))
    host(
        ["debootstrap", "--variant=minbase", f"--include={included}", release, str(made), debian_mirror()],
        log,
    )
    minor = ".".join(python_version.split(".")[:2])
    prefix = python_prefix(python_version)
    for part in ("bin", "include", "lib", "share"):
        if (prefix / part).exists():
            shutil.copytree(
                prefix / part,
                made / "usr" / "local" / part,
                symlinks=True,
                dirs_exist_ok=True,
                ignore=lambda d, names: ["site-packages"] if d.endswith(f"python{minor}") else [],
            )
    (made / f"usr/local/lib/python{minor}/site-packages").mkdir(exist_ok=True)
    shutil.copy(HOST_CA_BUNDLE, made / "etc/ssl/certs/ca-certificates.crt")
    shutil.copy("/etc/resolv.conf", made / "etc/resolv.conf")
    chroot(made, f"ldconfig && python{minor} -m ensurepip --default-pip", {}, "/", log)
    for name in ("python", "python3"):
        (made / "usr/local/bin" / name).unlink(missing_ok=True)
        (made / "usr/local/bin" / name).symlink_to(f"python{minor}")
    made.rename(root)
    return root


def host(argv: list[str], log: Path) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RootFailed(f"{' '.join(argv[:3])} ... exited {done.returncode}: {tail(log)}")


def chroot_argv(
    root: Path, command: str, env: dict, workdir: str, binds: dict[str, str] | None = None
) -> list:
    """The command line that runs `command` by `/bin/sh -c` chrooted into `root`, in `workdir`, in a private
    mount namespace, with an environment holding only `env`, HOME, PATH and this machine's CA bundle (its
    network reaches the package registries through it); `binds` maps host directories to directories inside
    the root."""
    variables = {
        "HOME": "/root",
        "PATH": BASE_PATH,
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
        **env,
    }
    # The root bound onto itself first: inside, "/" is then a mount point, as in a container, and tools that
    # change its propagation (unshare, as the Kubeflow harness uses it) work there.
    mounts = [f'mount --bind "{root}" "{root}"', f'mount -t proc proc "{root}/proc"']
    mounts.append(f'mount --rbind /dev "{root}/dev"')
    for source, inside in (binds or {}).items():
        target = root / inside.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        mounts.append(f'mount --bind "{source}" "{target}"')
    inner = f"cd {shlex.quote(workdir)} && {command}"
    script = (
        " && ".join(mounts)
        + f' && exec chroot "{root}" /usr/bin/env -i '
        + " ".join(shlex.quote(f"{k}={v}") for k, v in variables.items())
        + f" /bin/sh -c {shlex.quote(inner)}"
    )
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script]


def chroot(
    root: Path, command: str, env: dict, workdir: str, log: Path, binds: dict[str, str] | None = None
) -> str:
    """Runs `command` in `root` (chroot_argv), its output appended to `log` and returned."""
    with open(log, "a") as out:
        out.write(f"# {root.name}: {command}\n")
        out.flush()
        start = out.tell()
        done = subprocess.run(
            chroot_argv(root, command, env, workdir, binds), stdout=out, stderr=subprocess.STDOUT
        )
    output = log.read_bytes()[start:].decode(errors="replace")  # tell() counts bytes
    if done.returncode:
        raise RootFailed(f"RUN {command} exited {done.returncode} in {root.name}: {output[-3000:]}")
    return output


def tail(log: Path) -> str:
    return log.read_bytes()[-3000:].decode(errors="replace")
