"""Files of any location (a local path, gs://, s3://) as buffered binary streams, read a block at a time:
what reads a data file whole would hold it twice in memory (bytes and text) at 10M rows."""

from __future__ import annotations

import io


class RemoteFile(io.RawIOBase):
    """A file of TFX's filesystem layer (gs://, s3://) as a raw stream: its GFile lacks the `closed` and
    `readinto` that io.BufferedReader (and pyarrow) need."""

    def __init__(self, path: str):
        from tfx.dsl.io import fileio

        self._file = fileio.open(path, "rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._file.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def open_binary(path: str) -> io.BufferedReader:
    """The file at `path` as a buffered binary stream."""
    if "://" not in path:
        return open(path, "rb")  # noqa: SIM115 (the caller closes it)
    return io.BufferedReader(RemoteFile(path))
