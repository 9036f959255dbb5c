"""Keeping images: atomic publication, provenance sidecars, and finding outputs already complete.

Two ways to publish, chosen by protocol, so that no reader ever sees a truncated file under a final name:

* **Filesystems with a rename** (``file://`` and every protocol not listed in
  :data:`~airflow_provider_gptimage.outputs.paths.OBJECT_STORE_PROTOCOLS`): the download streams into
  ``.<stem>.part-<uuid>`` in the destination folder, which is renamed to the final name once checked
  (``os.rename`` locally: atomic, replaces an older file). Any error deletes the temporary file.
* **Object stores** (``s3``, ``gs``, ``abfs``...): there is no rename (a "move" is a copy plus a delete),
  but writing one object is atomic: readers see the old object or the new one, never half. The download
  streams into a :class:`tempfile.SpooledTemporaryFile` (a few MiB in memory, then on local disk), is
  checked in full, then uploaded with one put in bounded blocks. An upload that fails is discarded
  (multipart uploads aborted), and an object of the wrong size left under the final name is deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_gptimage._compat import path_conn_id
from airflow_provider_gptimage.exceptions import GPTImageResultError
from airflow_provider_gptimage.outputs.paths import (
    LOCAL_PROTOCOLS,
    OBJECT_STORE_PROTOCOLS,
    output_name,
    path_uri,
    sidecar_name,
    validate_filename,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

SIDECAR_SCHEMA = "gptimage-output/1"
#: Bytes a spool keeps in memory before it moves to a local temporary file.
SPOOL_MEMORY_BYTES = 4 * 1024 * 1024
#: Block size of uploads to object stores (S3 parts must be at least 5 MiB).
UPLOAD_BLOCK_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class OutputFile:
    """One image kept in the destination.

    :param uri: the image's URI, without a connection id (``s3://bucket/prefix/sku.png``).
    :param size: bytes.
    :param sha256: hex digest of the bytes.
    :param content_type: e.g. ``image/png``.
    :param source_url: the result URL it came from, without its query string (signatures stay out).
    :param conn_id: the connection of the destination, if any.
    :param sidecar_uri: the provenance JSON next to the image.
    :param job_id: the job that made it.
    :param skipped: ``True`` when found complete from an earlier run instead of copied now.
    """

    uri: str
    size: int
    sha256: str
    content_type: str
    source_url: str | None = None
    conn_id: str | None = None
    sidecar_uri: str | None = None
    job_id: str | None = None
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-serialisable primitives (for XCom)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputFile:
        """Rebuild from :meth:`to_dict` output."""
        return cls(**data)

    def to_path(self) -> ObjectStoragePath:
        """The image as an :class:`~airflow.sdk.ObjectStoragePath`, with its connection."""
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(self.uri, conn_id=self.conn_id)


def uses_rename(folder: ObjectStoragePath) -> bool:
    """Tell whether images reach ``folder`` by temporary name and rename (else: spool and one put)."""
    return folder.protocol in LOCAL_PROTOCOLS or folder.protocol not in OBJECT_STORE_PROTOCOLS


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
        self.temp: ObjectStoragePath | None = None
        self.file: Any = None

    def reset(self) -> BinaryIO:
        """Drop what an earlier attempt wrote and return an empty, writable file."""
        self.abort()
        if self.rename:
            if self.folder.protocol in LOCAL_PROTOCOLS:
                self.folder.mkdir(parents=True, exist_ok=True)
            self.temp = self.folder / f".{self.stem}.part-{uuid.uuid4().hex}"
            self.file = self.temp.open("wb")
        else:
            self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 (closed by abort)
        return self.file

    def commit(self, target: ObjectStoragePath, size: int) -> None:
        """Publish what was written under ``target`` (replacing it), then check its size."""
        if self.file is None:
            raise RuntimeError("nothing staged: call reset() first")
        try:
            if self.rename and self.temp is not None:
                self.file.flush()
                if self.fsync and self.folder.protocol in LOCAL_PROTOCOLS:
                    os.fsync(self.file.fileno())
                self.file.close()
                target.fs.mv(self.temp.path, target.path)
                self.temp = None
            else:
                self.file.seek(0)
                _put(self.file, target, self.chunk_size)
            written = target.stat().st_size
        except Exception:
            self._remove_if_truncated(target, size)
            raise
        finally:
            self.abort()
        if written != size:
            self._remove_if_truncated(target, size)
            raise GPTImageResultError(
                f"{path_uri(target)} holds {written:,} bytes after writing {size:,}; it was removed. Retry the task."
            )

    @staticmethod
    def _remove_if_truncated(target: ObjectStoragePath, size: int) -> None:
        with contextlib.suppress(Exception):
            if target.exists() and target.stat().st_size != size:
                target.unlink()

    def abort(self) -> None:
        """Close and delete whatever is staged; never raises."""
        if self.file is not None:
            with contextlib.suppress(Exception):
                self.file.close()
            self.file = None
        if self.temp is not None:
            with contextlib.suppress(Exception):
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


def write_sidecar(folder: ObjectStoragePath, image_name: str, document: Mapping[str, Any]) -> ObjectStoragePath:
    """Write the provenance JSON of ``image_name`` next to it; return its path."""
    path = folder / sidecar_name(image_name)
    write_bytes_atomic(path, json.dumps(document, indent=2, sort_keys=True, default=str).encode() + b"\n")
    return path


def remove_sidecar(folder: ObjectStoragePath, image_name: str) -> None:
    """Delete a stale sidecar before its image is replaced, so the pair is never mismatched."""
    path = folder / sidecar_name(image_name)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _read_sidecar(folder: ObjectStoragePath, name: str) -> dict[str, Any] | None:
    try:
        document = json.loads((folder / name).read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("schema") == SIDECAR_SCHEMA else None


def _complete(folder: ObjectStoragePath, document: Mapping[str, Any], stem: str, index: int) -> OutputFile | None:
    """The output a sidecar describes, when the image beside it is there with the recorded size."""
    count, name = document.get("count"), document.get("name")
    if not isinstance(count, int) or not isinstance(name, str) or document.get("index") != index:
        return None
    extension = name.rsplit(".", 1)[-1]
    if name != output_name(stem, index, count, extension):
        return None
    image = folder / name
    try:
        size = image.stat().st_size
    except FileNotFoundError:
        return None
    if size != document.get("size"):
        return None
    return OutputFile(
        uri=path_uri(image),
        size=size,
        sha256=str(document.get("sha256")),
        content_type=str(document.get("content_type")),
        source_url=document.get("source_url"),
        conn_id=path_conn_id(folder),
        sidecar_uri=path_uri(folder / sidecar_name(name)),
        job_id=document.get("job_id"),
        skipped=True,
    )


def find_existing(destination: ObjectStoragePath, filename: str) -> list[OutputFile] | None:
    """Return the outputs of ``filename`` when ALL its images are already complete, else ``None``.

    Complete means: the sidecar is there (it is written after its image), it names the image, and the
    image has the size the sidecar recorded. Digests are not recomputed (that would read every image on
    every run); :func:`verify` does it on demand.

    :param destination: the folder.
    :param filename: the base name (e.g. a SKU), as given to the operator.
    """
    stem = validate_filename(filename)
    for first, index in ((f"{stem}.json", 1), (f"{stem}-1.json", 1)):
        document = _read_sidecar(destination, first)
        if document is None:
            continue
        count = document.get("count")
        if not isinstance(count, int) or count < 1 or (count == 1) != (first == f"{stem}.json"):
            continue
        found: list[OutputFile] = []
        for i in range(index, count + 1):
            doc = document if i == 1 else _read_sidecar(destination, f"{stem}-{i}.json")
            output = _complete(destination, doc, stem, i) if doc and doc.get("count") == count else None
            if output is None:
                return None
            found.append(output)
        return found
    return None


def verify(output: OutputFile, *, chunk_size: int = 1024 * 1024) -> bool:
    """Read an output back and tell whether its size and SHA-256 match what was recorded."""
    import hashlib

    digest, size = hashlib.sha256(), 0
    with output.to_path().open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
    return size == output.size and digest.hexdigest() == output.sha256
