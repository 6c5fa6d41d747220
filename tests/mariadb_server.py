"""A MariaDB server (Debian's mariadb-server, MySQL's protocol) for the shared metadata store tests: its own
data directory, on loopback at a free port, stopped by its PID."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

USER = "pipeline"
STARTUP_S = 60


def _binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if found is None:
        raise RuntimeError(f"{name} not found: install Debian's mariadb-server (make system-deps)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class MariaDB:
    port: int
    socket_path: Path
    password: str
    host: str = "127.0.0.1"

    def url(self, database: str, user: str = USER) -> str:
        return f"mysql://{user}@{self.host}:{self.port}/{database}"

    def sql(self, statement: str) -> str:
        """Runs `statement` as the server's root user (over its socket)."""
        done = subprocess.run(
            [
                _binary("mariadb"),
                "--no-defaults",
                f"--socket={self.socket_path}",
                "-uroot",
                "-N",
                "-e",
                statement,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout


@contextlib.contextmanager
def mariadb_server(root: Path, password: str) -> Iterator[MariaDB]:
    """A fresh server with a user `pipeline` (password `password`) that may create databases."""
    data = root / "data"
    subprocess.run(
        [
            _binary("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--skip-test-db",
        ],
        capture_output=True,
        check=True,
    )
    server = MariaDB(port=free_port(), socket_path=root / "mysqld.sock", password=password)
    process = subprocess.Popen(
        [
            _binary("mariadbd"),
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={server.socket_path}",
            f"--port={server.port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--pid-file={root / 'mysqld.pid'}",
            f"--log-error={root / 'error.log'}",
            "--innodb-buffer-pool-size=64M",
            "--max-connections=200",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                server.sql("SELECT 1")
                break
            except subprocess.CalledProcessError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (root / "error.log").read_text() if (root / "error.log").exists() else ""
                    raise RuntimeError(f"MariaDB did not start: {log[-2000:]}") from None
                time.sleep(0.2)
        server.sql(
            f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{password}'; "
            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1';"
        )
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
