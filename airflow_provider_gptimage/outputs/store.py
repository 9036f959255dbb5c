"""Keeping images: atomic publication, so that no reader ever sees a truncated file under a final name.

Two ways to publish, chosen by protocol:

* **Filesystems with a rename** (``file://`` and every protocol not listed in
  :data:`~airflow_provider_gptimage.outputs.paths.OBJECT_STORE_PROTOCOLS`): the download streams into
  ``.<stem>.part-<uuid>`` in the destination folder, which is renamed to the final name once checked
  (``os.replace`` locally: atomic, replaces an older file). Any error deletes the temporary file. A local
  temporary file is locked (``flock``) while its writer lives, so a sweep of abandoned ones
  (:mod:`~airflow_provider_gptimage.outputs.leftovers`) never deletes it.
* **Object stores** (``s3``, ``gs``, ``abfs``...): there is no rename (a "move" is a copy plus a delete),
  but writing one object is atomic: readers see the old object or the new one, never half. The download
  streams into a :class:`tempfile.SpooledTemporaryFile` (a few MiB in memory, then on local disk), is
  checked in full, then uploaded with one put in bounded blocks. An upload that fails is discarded
  (multipart uploads aborted), and an object of the wrong size left under the final name is deleted.

:meth:`Staging.commit` returns the storage stamp of exactly what it published
(:mod:`~airflow_provider_gptimage.outputs.stamps`): locally the stat of the writer's own file before the
rename (which keeps it), elsewhere the ``info()`` read right after the upload.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_gptimage.exceptions import GPTImageResultError
from airflow_provider_gptimage.outputs.paths import LOCAL_PROTOCOLS, path_uri, uses_rename
from airflow_provider_gptimage.outputs.stamps import local_stamp, read_stamp

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Bytes a spool keeps in memory before it moves to a local temporary file.
SPOOL_MEMORY_BYTES = 4 * 1024 * 1024
#: Block size of uploads to object stores (S3 parts must be at least 5 MiB).
UPLOAD_BLOCK_BYTES = 5 * 1024 * 1024


def temp_name(stem: str) -> str:
    """The temporary name of a file on its way to ``<stem>.<ext>``: ``.<stem>.part-<32 hex digits>``."""
    return f".{stem}.part-{uuid.uuid4().hex}"


def _lock(handle: Any) -> None:
    """Mark a local temporary file as owned by a live writer (released when the writer closes or dies)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover (not POSIX): the sweep then relies on the file's age alone
        return
    with contextlib.suppress(OSError):
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _discard_writer(writer: Any) -> None:
    """Abandon a half-written store file without committing it (fsspec commits on ``close``)."""
    inner = getattr(writer, "_obj", writer)
    with contextlib.suppress(Exception):
        inner.discard()  # s3fs: abort the multipart upload
    with contextlib.suppress(Exception):
        inner.closed = True  # fsspec buffered files: neither close() nor __del__ may commit it now
    with contextlib.suppress(Exception):
        inner.close()


def _put(source: BinaryIO, target: ObjectStoragePath, chunk_size: int) -> None:
    """Upload ``source`` to ``target`` as one object, one block in memory at a time."""
    writer = target.open("wb", block_size=UPLOAD_BLOCK_BYTES)
    try:
        while chunk := source.read(chunk_size):
            writer.write(chunk)
    except BaseException:
        _discard_writer(writer)
        raise
    writer.close()


class Staging:
    """One file on its way into a destination folder; see the module docstring for the two ways.

    :param folder: the destination folder.
    :param stem: base name of the file, used in the temporary name.
    :param chunk_size: bytes per read when uploading a spool.
    :param fsync: flush a local file to disk before it is renamed into place, so that it survives a power
        loss as well as a crash (off by default: the rename alone guarantees that no reader ever sees a
        truncated file after an interrupted copy, and the flush costs about a third of a local copy's time).
    """

    def __init__(
        self, folder: ObjectStoragePath, stem: str, *, chunk_size: int = 1024 * 1024, fsync: bool = False
    ) -> None:
        self.folder = folder
        self.stem = stem
        self.chunk_size = chunk_size
        self.fsync = fsync
        self.rename = uses_rename(folder)
        self.local = folder.protocol in LOCAL_PROTOCOLS
        self.temp: ObjectStoragePath | None = None
        self.file: Any = None
        self.reader: Any = None

    def reset(self) -> BinaryIO:
        """Drop what an earlier attempt wrote and return an empty, writable file."""
        self.abort()
        if self.rename:
            self.temp = self.folder / temp_name(self.stem)
            if self.local:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.file = open(self.temp.path, "xb")  # noqa: SIM115 (closed by commit or abort)
                _lock(self.file)
            else:
                self.file = self.temp.open("wb")
        else:
            self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 (closed by abort)
        return self.file

    def contents(self) -> BinaryIO:
        """What was written so far, readable and seekable (the file itself, or a reader of it)."""
        if self.file is None:
            raise RuntimeError("nothing staged: call reset() first")
        if not self.rename:
            self.file.flush()
            self.file.seek(0)
            return self.file
        if self.reader is None:
            if self.local:
                self.file.flush()
                self.reader = open(self.temp.path, "rb")  # type: ignore[union-attr]  # noqa: SIM115
            else:
                self.file.close()  # other filesystems may only store a file when it is closed
                self.reader = self.temp.open("rb")  # type: ignore[union-attr]
        return self.reader

    def commit(self, target: ObjectStoragePath, size: int) -> dict[str, str]:
        """Publish what was written under ``target`` (replacing it), check its size, return its stamp."""
        if self.file is None:
            raise RuntimeError("nothing staged: call reset() first")
        try:
            if self.rename and self.local and self.temp is not None:
                return self._rename_local(target, size)
            if self.rename and self.temp is not None:
                if not self.file.closed:
                    self.file.close()
                target.fs.mv(self.temp.path, target.path)
                self.temp = None
            else:
                self.file.seek(0)
                _put(self.file, target, self.chunk_size)
            with contextlib.suppress(Exception):
                target.fs.invalidate_cache(target.path)
            written, stamp = read_stamp(target)
        except Exception:
            if not self.local:  # a local target is only ever replaced whole, by the rename
                self._remove_if_truncated(target, size)
            raise
        finally:
            self.abort()
        if written != size:
            self._remove_if_truncated(target, size)
            raise GPTImageResultError(
                f"{path_uri(target)} holds {written:,} bytes after writing {size:,}; it was removed. Retry the task."
            )
        return stamp

    def _rename_local(self, target: ObjectStoragePath, size: int) -> dict[str, str]:
        """Flush, check and stat the writer's own file, then rename it while it is still open (and locked)."""
        self.file.flush()
        if self.fsync:
            os.fsync(self.file.fileno())
        result = os.fstat(self.file.fileno())
        if result.st_size != size:
            raise GPTImageResultError(
                f"The temporary file of {path_uri(target)} holds {result.st_size:,} bytes after writing {size:,}; "
                "nothing was published. Retry the task."
            )
        os.replace(self.temp.path, target.path)  # type: ignore[union-attr]
        self.temp = None
        return local_stamp(result)

    @staticmethod
    def _remove_if_truncated(target: ObjectStoragePath, size: int) -> None:
        with contextlib.suppress(Exception):
            if target.exists() and target.stat().st_size != size:
                target.unlink()

    def abort(self) -> None:
        """Close and delete whatever is staged; never raises."""
        for handle in (self.reader, self.file):
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.close()
        self.reader = self.file = None
        if self.temp is not None:
            with contextlib.suppress(Exception):
                if self.local:
                    os.unlink(self.temp.path)
                else:
                    self.temp.unlink(missing_ok=True)
            self.temp = None


def write_bytes_atomic(target: ObjectStoragePath, data: bytes) -> None:
    """Write a small file so that readers see all of it or nothing (same two ways as images)."""
    staging = Staging(target.parent, target.name.rsplit(".", 1)[0])
    try:
        staging.reset().write(data)
        staging.commit(target, len(data))
    finally:
        staging.abort()
