"""`--metadata`: which stores are accepted, where the password comes from, and that it stays out of logs."""

from __future__ import annotations

import logging

import pytest

from pipeline.configure import ConfigError, ConfigRequest, build_config
from pipeline.storage.metadata import PASSWORD_ENV, MetadataError, MetadataLocation, redacted_logs


def test_a_mysql_url_names_the_server_and_database_and_never_holds_the_password():
    location = MetadataLocation.parse("mysql://ml@db.internal:3307/pipelines")
    assert (location.host, location.port, location.database, location.user) == (
        "db.internal",
        3307,
        "pipelines",
        "ml",
    )
    assert MetadataLocation.parse("mysql://ml@db/pipelines").port == 3306
    with pytest.raises(MetadataError) as refused:
        MetadataLocation.parse("mysql://ml:hunter2@db:3306/pipelines")
    assert "hunter2" not in str(refused.value)
    assert str(refused.value) == (
        "--metadata mysql://ml:***@db:3306/pipelines: the password does not go in the URL (it would show in "
        f"the process list and the logs); put it in {PASSWORD_ENV} or a file named by "
        "--metadata-password-file"
    )


@pytest.mark.parametrize(
    "value, message",
    [
        ("postgresql://ml@db/p", "expected a SQLite file path or mysql://USER@HOST:PORT/DATABASE"),
        ("mysql://db:3306/pipelines", "expected mysql://USER@HOST:PORT/DATABASE"),
        ("mysql://ml@db:3306/pipe-lines", "a database name of letters, digits and _"),
    ],
)
def test_a_malformed_store_is_one_line(value, message):
    with pytest.raises(MetadataError, match=message):
        MetadataLocation.parse(value)


def test_the_password_comes_from_a_file_else_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    location = MetadataLocation.parse("mysql://ml@db/p")
    assert location.connection_config().mysql.password == "from-env"
    (tmp_path / "pw").write_text("from-file\n")
    with_file = MetadataLocation.parse("mysql://ml@db/p", str(tmp_path / "pw"))
    assert with_file.connection_config().mysql.password == "from-file"
    assert "from-file" not in str(with_file) and "from-file" not in repr(with_file)
    missing = MetadataLocation.parse("mysql://ml@db/p", str(tmp_path / "absent"))
    with pytest.raises(MetadataError, match=r"password file .*absent: No such file or directory"):
        missing.password()


def test_the_cli_request_builds_the_store_and_a_sqlite_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = build_config(ConfigRequest(output_root=str(tmp_path / "out"), metadata="shared/m.sqlite"))
    assert built.config.metadata_store.sqlite_path == str(tmp_path / "shared" / "m.sqlite")
    assert build_config(ConfigRequest(output_root="out")).config.metadata_store.sqlite_path == str(
        tmp_path / "out" / "metadata.sqlite"
    )
    mysql = build_config(ConfigRequest(output_root="out", metadata="mysql://ml@db:3306/p")).config
    assert str(mysql.metadata_store) == "mysql://ml@db:3306/p"
    with pytest.raises(ConfigError, match="--metadata-password-file goes with --metadata mysql://"):
        build_config(ConfigRequest(output_root="out", metadata_password_file="pw"))


def test_the_password_is_replaced_in_every_log_record_while_a_run_holds_it(monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    keep = Keep()
    logging.getLogger().addHandler(keep)
    try:
        with redacted_logs(MetadataLocation.parse("mysql://ml@db/p")):
            logging.getLogger("tfx.some.module").warning("config: password: %r", "s3cret")
            logging.getLogger("absl").warning("password: s3cret")
        logging.getLogger("after").warning("s3cret")
    finally:
        logging.getLogger().removeHandler(keep)
    assert records == ["config: password: '***'", "password: ***", "s3cret"]
