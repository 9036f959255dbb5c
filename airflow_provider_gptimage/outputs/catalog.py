"""The catalog of kept images: provenance sidecars, and finding outputs that are already complete.

The sidecar (``<stem>.json``) is the single commit point of an image: it is written after the image and
names the exact bytes it describes, by size, SHA-256 and the storage stamp of the stored object
(:mod:`~airflow_provider_gptimage.outputs.stamps`). An image and a sidecar of two writers racing on one
name therefore never count as a pair: the image's stamp is not the one the sidecar recorded, and its bytes
are not the ones it hashed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage._compat import path_conn_id
from airflow_provider_gptimage.outputs.names import output_name, plain_path, sidecar_name, validate_filename
from airflow_provider_gptimage.outputs.paths import LOCAL_PROTOCOLS, path_uri
from airflow_provider_gptimage.outputs.stamps import read_stamp, same_object
from airflow_provider_gptimage.outputs.store import write_bytes_atomic

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

SIDECAR_SCHEMA = "gptimage-output/1"


@dataclass(frozen=True)
class OutputFile:
    """One image kept in the destination.

    :param uri: the image's URI, without a connection id (``s3://bucket/prefix/sku.png``).
    :param size: bytes.
    :param sha256: hex digest of the bytes.
    :param content_type: ``image/png``, ``image/jpeg`` or ``image/webp``.
    :param source_url: the result URL it came from, without its query string (signatures stay out).
    :param conn_id: the connection of the destination, if any.
    :param sidecar_uri: the provenance JSON next to the image.
    :param job_id: the job that made it.
    :param skipped: ``True`` when found complete from an earlier run instead of copied now.
    :param format: ``png``, ``jpeg`` or ``webp``, as identified from the image's own header.
    :param width: pixels, from the header.
    :param height: pixels, from the header.
    :param fingerprint: of the request that made it (:func:`~airflow_provider_gptimage.protocol.fingerprint`).
    :param thumbnail_uri: its thumbnail (a small JPEG for galleries), if one was made.
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
    format: str | None = None
    width: int | None = None
    height: int | None = None
    fingerprint: str | None = None
    thumbnail_uri: str | None = None

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


def write_sidecar(folder: ObjectStoragePath, image_name: str, document: Mapping[str, Any]) -> ObjectStoragePath:
    """Write the provenance JSON of ``image_name`` next to it (atomically); return its path."""
    path = folder / sidecar_name(image_name)
    write_bytes_atomic(path, json.dumps(document, indent=2, sort_keys=True, default=str).encode() + b"\n")
    return path


def remove_sidecar(folder: ObjectStoragePath, image_name: str) -> None:
    """Delete a stale sidecar before its image is replaced (a copy that fails midway leaves no pair)."""
    path = folder / sidecar_name(image_name)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _read_sidecar(folder: ObjectStoragePath, name: str) -> dict[str, Any] | None:
    """The sidecar ``name`` (one ranged ``GET`` on object stores, at most 1 MiB); ``None`` if it is not one."""
    from airflow_provider_gptimage.catalog.state import SMALL_DOCUMENT_BYTES, read_json

    document = read_json(folder / name, SMALL_DOCUMENT_BYTES)
    return document if isinstance(document, dict) and document.get("schema") == SIDECAR_SCHEMA else None


def _digest(path: ObjectStoragePath, chunk_size: int = 1024 * 1024) -> tuple[int, str]:
    """Size and SHA-256 of what ``path`` holds, read in chunks."""
    digest, size = hashlib.sha256(), 0
    opened = open(path.path, "rb") if path.protocol in LOCAL_PROTOCOLS else path.open("rb")  # noqa: SIM115
    with opened as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _same_bytes(
    folder: ObjectStoragePath, document: Mapping[str, Any], image: ObjectStoragePath, stamp: dict[str, str]
) -> bool:
    """The slow check, for an image whose stamp differs from the sidecar's (another writer, a copied folder,
    or a sidecar without a stamp): compare its SHA-256. When it matches and the image did not change while
    it was read (``stamp`` was taken before), record the stamp so that the next check is a ``stat`` again."""
    try:
        size, sha256 = _digest(image)
        after = read_stamp(image)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if (size, sha256) != (document.get("size"), document.get("sha256")):
        return False
    if after == (size, stamp) and stamp:
        try:
            write_sidecar(folder, image.name, {**document, "stamp": stamp})
        except Exception as exc:  # a read-only catalog still answers; it is only slower next time
            log.warning("Could not record the storage stamp of %s: %s", path_uri(image), exc)
    return True


def _complete(folder: ObjectStoragePath, document: Mapping[str, Any], stem: str, index: int) -> OutputFile | None:
    """The output a sidecar describes, when the object stored beside it is exactly the one it recorded."""
    count, name = document.get("count"), document.get("name")
    if not isinstance(count, int) or not isinstance(name, str) or document.get("index") != index:
        return None
    extension = name.rsplit(".", 1)[-1]
    if name != output_name(stem, index, count, extension):
        return None
    image = folder / name
    try:
        size, stamp = read_stamp(image)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if size != document.get("size"):
        return None
    recorded = document.get("stamp")
    if not (isinstance(recorded, Mapping) and same_object(recorded, stamp)) and not _same_bytes(
        folder, document, image, stamp
    ):
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
        format=document.get("format"),
        width=document.get("width"),
        height=document.get("height"),
        fingerprint=document.get("fingerprint"),
        thumbnail_uri=_thumbnail_uri(folder, document.get("thumbnail")),
    )


def _thumbnail_uri(folder: ObjectStoragePath, thumbnail: object) -> str | None:
    """The URI of a sidecar's thumbnail (a name relative to the folder, never leaving it)."""
    relative = plain_path(thumbnail)
    return None if relative is None else path_uri(folder / relative)


def current_sidecars(folder: ObjectStoragePath, stem: str) -> list[dict[str, Any]]:
    """The readable sidecars of the set of images named ``stem`` (``stem.json``, or ``stem-1.json`` to
    ``stem-<count>.json``), in index order; a set with a sidecar missing is returned as far as it goes."""
    for first, single in ((f"{stem}.json", True), (f"{stem}-1.json", False)):
        document = _read_sidecar(folder, first)
        count = None if document is None else document.get("count")
        if document is None or not isinstance(count, int) or count < 1 or (count == 1) != single:
            continue
        found = [document]
        for i in range(2, count + 1):
            doc = _read_sidecar(folder, f"{stem}-{i}.json")
            if doc is None or doc.get("count") != count:
                break
            found.append(doc)
        return found
    return []


def find_existing(
    destination: ObjectStoragePath, filename: str, fingerprint: str | None = None
) -> list[OutputFile] | None:
    """Return the outputs of ``filename`` when ALL its images are already complete, else ``None``.

    Complete means: the sidecar is there (it is written after its image), it names the image, and the
    object stored under that name has the size and the storage stamp the sidecar recorded: one ``stat``
    (or ``HEAD``) per image, no read. Only when the stamp differs (another writer's image, a folder copied
    elsewhere, a sidecar from a version that recorded none) is the image read and its SHA-256 compared; a
    match records the new stamp in the sidecar. :func:`verify` rechecks digests on demand.

    :param destination: the folder.
    :param filename: the base name (e.g. a SKU), as given to the operator.
    :param fingerprint: the current request's :func:`~airflow_provider_gptimage.protocol.fingerprint`: images
        made by another request (another prompt or parameter) are not complete for it.
    """
    from airflow_provider_gptimage.protocol.catalog import sidecar_fingerprint

    stem = validate_filename(filename)
    documents = current_sidecars(destination, stem)
    if not documents or len(documents) != documents[0].get("count"):
        return None
    if fingerprint is not None and sidecar_fingerprint(documents[0]) != fingerprint:
        return None
    found: list[OutputFile] = []
    for index, document in enumerate(documents, start=1):
        output = _complete(destination, document, stem, index)
        if output is None:
            return None
        found.append(output)
    return found


def verify(output: OutputFile, *, chunk_size: int = 1024 * 1024) -> bool:
    """Read an output back and tell whether its size and SHA-256 match what was recorded."""
    return _digest(output.to_path(), chunk_size) == (output.size, output.sha256)
