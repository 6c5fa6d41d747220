"""Separate hosts on one machine: network namespaces (iproute2's `ip netns`) joined by a veth pair, each host
with its own address and its own disk.

A host's processes run in its namespace and in a private mount namespace where the checkout is bind-mounted
at the image's WORKDIR (as in the project image) and the host's own directory at `disk`, a path that is the
same on every host, as a container's file system is: the same command line on two hosts reads and writes two
different directories, and the hosts share no files. The test process sees every host's directory from
outside, as a cluster's console would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import venv_mount


@dataclasses.dataclass
class Host:
    namespace: str
    address: str
    disk: Path  # this host's files, seen from outside
    mount_point: Path  # where the host sees them

    def start(self, argv: list[str], env: dict[str, str], repo_root: Path, workdir: str, log: Path):
        """Starts `argv` on this host in `workdir` (the checkout); its output goes to `log`."""
        mounts = f'mount --bind "$0" "$2" && mount --bind "$1" "$3" && {venv_mount(workdir)}'
        wrapper = mounts + 'cd "$2" && shift 3 && exec "$@"'
        command = [
            *("ip", "netns", "exec", self.namespace),
            *("unshare", "-m", "--propagation", "private", "sh", "-c", wrapper),
            *(str(repo_root), str(self.disk), workdir, str(self.mount_point)),
            *argv,
        ]
        with open(log, "ab") as out:
            return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def two_hosts(root: Path) -> Iterator[list[Host]]:
    """Two hosts, 10.<a>.<b>.1 and .2 on a /24 of their own, each with `root/<host>` as its disk and
    `root/disk` as where it sees it; the namespaces and the link are removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    subnet = f"10.{200 + int(tag[:2], 16) % 50}.{int(tag[2:4], 16)}"
    mount_point = root / "disk"
    mount_point.mkdir(parents=True)
    hosts = []
    for index in (1, 2):
        disk = root / f"host{index}"
        disk.mkdir()
        hosts.append(Host(f"ptfx-{tag}-{index}", f"{subnet}.{index}", disk, mount_point))
    created = []
    try:
        for host in hosts:
            _ip("netns", "add", host.namespace)
            created.append(host.namespace)
            _ip("-n", host.namespace, "link", "set", "lo", "up")
        _ip("link", "add", f"pv{tag}a", "type", "veth", "peer", "name", f"pv{tag}b")
        for host, end in zip(hosts, "ab", strict=True):
            _ip("link", "set", f"pv{tag}{end}", "netns", host.namespace)
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", f"pv{tag}{end}")
            _ip("-n", host.namespace, "link", "set", f"pv{tag}{end}", "up")
        yield hosts
    finally:
        for namespace in created:  # removing a namespace removes its end of the link, and so the pair
            subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)
