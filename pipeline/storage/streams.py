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


def native_file(path: str):
    """The file at `path` as a pyarrow file that pyarrow reads without Python: a local path opened as it
    is; a remote one (gs://, s3://) first copied by TensorFlow, in C++ on the calling thread, to a local
    temporary file that is unlinked at once (the open file keeps it until closed). pyarrow reads a Python
    file object from its own I/O thread, and TensorFlow's s3:// read of a few MB made that way never
    returned (ExampleGen hung on a 1M-row CSV on S3)."""
    import os
    import tempfile

    import pyarrow as pa

    if "://" not in path:
        return pa.OSFile(path)
    from tfx.dsl.io import fileio

    handle, local = tempfile.mkstemp(suffix=".csv")
    os.close(handle)
    try:
        fileio.copy(path, local, overwrite=True)
        return pa.OSFile(local)
    finally:
        os.unlink(local)
