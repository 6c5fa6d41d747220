"""Where ML Metadata lives: a SQLite file (one machine) or a MySQL database (shared; MariaDB speaks the same
protocol, and it is what Kubeflow's in-cluster store runs on).

`--metadata` takes a path or `mysql://USER@HOST[:PORT]/DATABASE`. The password is never part of the
configuration: it is read when connecting, from the file `password_file` names or from the environment
variable PASSWORD_ENV, and every description of the store (`str()`, error lines, the report) leaves it out.
While a run holds it, `redacted_logs` keeps it out of the logs, where TFX writes its connection config.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from dataclasses import dataclass

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

PASSWORD_ENV = "PIPELINE_METADATA_PASSWORD"
MYSQL_PORT = 3306
_MYSQL_URL = re.compile(
    r"^mysql://(?P<user>[^:@/]+)(?::(?P<password>[^@/]*))?@(?P<host>[^:/]+)(?::(?P<port>\d+))?/(?P<database>\w+)$"
)


class MetadataError(RuntimeError):
    """The metadata store cannot be used: one line naming it (without its password) and the fix."""


@dataclass(frozen=True)
class MetadataLocation:
    """A SQLite file (`sqlite_path`) or a MySQL database (`host`, `port`, `database`, `user`)."""

    sqlite_path: str | None = None
    host: str | None = None
    port: int = MYSQL_PORT
    database: str | None = None
    user: str | None = None
    password_file: str | None = None

    @classmethod
    def parse(cls, value: str, password_file: str | None = None) -> MetadataLocation:
        """A path, or mysql://USER@HOST[:PORT]/DATABASE (the password from `password_file` or
        PIPELINE_METADATA_PASSWORD: a password in the URL is refused, as it would show in the process list,
        the shell's history and the logs)."""
        if not value.startswith("mysql://"):
            if "://" in value:
                raise MetadataError(
                    f"--metadata {value}: expected a SQLite file path or mysql://USER@HOST:PORT/DATABASE"
                )
            if password_file:
                raise MetadataError("--metadata-password-file is for a mysql:// store, not a SQLite file")
            return cls(sqlite_path=value)
        found = _MYSQL_URL.match(value)
        if not found:
            raise MetadataError(
                f"--metadata {redact_url(value)}: expected mysql://USER@HOST:PORT/DATABASE "
                "(a database name of letters, digits and _)"
            )
        if found.group("password") is not None:
            raise MetadataError(
                f"--metadata {redact_url(value)}: the password does not go in the URL (it would show in the "
                f"process list and the logs); put it in {PASSWORD_ENV} or a file named by "
                "--metadata-password-file"
            )
        return cls(
            host=found.group("host"),
            port=int(found.group("port") or MYSQL_PORT),
            database=found.group("database"),
            user=found.group("user"),
            password_file=password_file,
        )

    @property
    def is_mysql(self) -> bool:
        return self.sqlite_path is None

    def __str__(self) -> str:
        if not self.is_mysql:
            return self.sqlite_path
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"

    def password(self) -> str:
        """The MySQL password: the file's first line, else PIPELINE_METADATA_PASSWORD, else empty."""
        if self.password_file:
            try:
                with open(self.password_file) as f:
                    return f.readline().rstrip("\r\n")
            except OSError as error:
                raise MetadataError(
                    f"the metadata store's password file {self.password_file}: {error.strerror}"
                ) from None
        return os.environ.get(PASSWORD_ENV, "")

    def connection_config(self, readonly: bool = False) -> metadata_store_pb2.ConnectionConfig:
        config = metadata_store_pb2.ConnectionConfig()
        if not self.is_mysql:
            config.sqlite.filename_uri = self.sqlite_path
            config.sqlite.connection_mode = (
                metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
                if readonly
                else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
            )
            return config
        config.mysql.host = self.host
        config.mysql.port = self.port
        config.mysql.database = self.database
        config.mysql.user = self.user
        config.mysql.password = self.password()
        return config

    def exists(self) -> bool:
        """Whether there is a store holding runs: the SQLite file exists; the MySQL database holds a
        pipeline (connecting to it: MetadataError when it cannot)."""
        if not self.is_mysql:
            return os.path.exists(self.sqlite_path)
        return bool(self.open().get_contexts_by_type("pipeline"))

    def open(self, readonly: bool = False) -> metadata_store.MetadataStore:
        """The store; MetadataError with one line when it cannot be reached or refuses the credentials."""
        if self.is_mysql:
            self.check_reachable()
        config = self.connection_config(readonly)
        try:
            with _quiet_stderr():  # MLMD's own error line (C++), which names no cause
                return metadata_store.MetadataStore(config)
        except RuntimeError as error:
            if not self.is_mysql:
                raise MetadataError(f"cannot open the metadata store {self}: {error}") from None
            raise MetadataError(
                f"the metadata store {self} refused the connection (server reached): wrong user or password, "
                f"or {self.user!r} may not use database {self.database!r} (the password comes from "
                f"--metadata-password-file or {PASSWORD_ENV})"
            ) from None

    def check_reachable(self, timeout_s: float = 5.0) -> None:
        try:
            socket.create_connection((self.host, self.port), timeout=timeout_s).close()
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
            raise MetadataError(
                f"cannot reach the metadata store {self}: {reason}; check the host and port, and that the "
                "MySQL server is running"
            ) from None


PIPELINE_CONTEXT = "pipeline"  # TFX's context type for a pipeline (one context per pipeline name)
ROOT_PROPERTY = "pipeline_root"


def bind_pipeline_root(location: MetadataLocation, pipeline_name: str, pipeline_root: str) -> None:
    """Records that `pipeline_name` writes its artifacts under `pipeline_root` in this store, or refuses
    (MetadataError) a store that has it writing elsewhere. On a shared store a pipeline is its name: TFX's
    cache, the baseline resolver and the run history are keyed by it, not by the output root, so a second
    root under the same name would be handed the first root's files as cached results."""
    store = location.open()
    try:
        store.put_context_type(metadata_store_pb2.ContextType(name=PIPELINE_CONTEXT))
    except Exception:  # noqa: BLE001 - an existing type with TFX's own definition: use it as it is
        pass
    for attempt in range(2):
        context = store.get_context_by_type_and_name(PIPELINE_CONTEXT, pipeline_name)
        if context is None:
            context = metadata_store_pb2.Context(name=pipeline_name, type_id=_type_id(store))
        properties = context.custom_properties
        recorded = properties[ROOT_PROPERTY].string_value if ROOT_PROPERTY in properties else ""
        if recorded and recorded != pipeline_root:
            raise MetadataError(
                f"pipeline {pipeline_name!r} in the metadata store {location} writes its artifacts to "
                f"{recorded}, not {pipeline_root}: on one store a pipeline has one output root (its cache "
                "would hand this run the other root's files); pass another --pipeline-name, or that "
                "--output-root"
            )
        if recorded:
            return
        context.custom_properties[ROOT_PROPERTY].string_value = pipeline_root
        try:
            store.put_contexts([context])
            return
        except Exception:  # noqa: BLE001 - created by another run at the same moment: read it again
            if attempt:
                raise


def _type_id(store) -> int:
    return store.get_context_type(PIPELINE_CONTEXT).id


def redact_url(value: str) -> str:
    """`value` with any password in a mysql:// URL replaced by ***."""
    return re.sub(r"^(mysql://[^:@/]+):[^@/]*@", r"\1:***@", value)


class _Redact(logging.Filter):
    def __init__(self, secret: str):
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "***"), None
        return True


@contextlib.contextmanager
def redacted_logs(location: MetadataLocation):
    """Replaces the store's password with *** in every log record while the block runs: TFX's local
    runners log the connection config they are given."""
    secret = location.password() if location.is_mysql else ""
    if not secret:
        yield
        return
    redact = _Redact(secret)
    # absl's logger (TFX logs through it) and every handler of the root logger (the records of any logger).
    targets = [logging.getLogger("absl"), *logging.getLogger().handlers]
    for target in targets:
        target.addFilter(redact)
    try:
        yield
    finally:
        for target in targets:
            target.removeFilter(redact)


@contextlib.contextmanager
def _quiet_stderr():
    """Silences file descriptor 2 for the block: ML Metadata's C++ code writes its own error lines there."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def as_location(store: MetadataLocation | str) -> MetadataLocation:
    """A location, from itself or from a SQLite file's path."""
    return store if isinstance(store, MetadataLocation) else MetadataLocation(sqlite_path=store)
