"""Reading a recorded image (or its sidecar) through ``ObjectStoragePath``, bounded and checked.

The URI and connection come from a task instance's recorded result (:mod:`.results`), never from a
request. Before a byte is sent, the file must be no larger than the bound and start with the magic bytes
of the image type it was recorded as: a result forged to name ``/etc/passwd`` or an HTML page serves
nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from airflow_provider_gptimage.outputs import DEFAULT_MAX_BYTES
from airflow_provider_gptimage.outputs.catalog import SIDECAR_SCHEMA
from airflow_provider_gptimage.outputs.identify import FORMATS, sniff
from airflow_provider_gptimage.ui.results import StoredFile, StoredImage

log = logging.getLogger(__name__)

#: The largest image served: the largest the provider writes (``outputs.DEFAULT_MAX_BYTES``).
MAX_IMAGE_BYTES = DEFAULT_MAX_BYTES
#: The largest provenance sidecar read for the gallery.
MAX_SIDECAR_BYTES = 256 * 1024
#: Bytes read (and sent) at a time.
CHUNK_BYTES = 256 * 1024


class Refused(Exception):
    """The stored file is not served; ``status`` is the HTTP status to answer with.

    :param status: e.g. 404 (gone, or not an image of the recorded type) or 413 (too large).
    :param message: what to tell the client (never a URI: the client may not know where images live).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class OpenedImage:
    """A stored image checked and ready to stream.

    :param content_type: its recorded (and checked) image type.
    :param size: bytes it holds.
    :param chunks: the bytes, :data:`CHUNK_BYTES` at a time; the file is closed once they are consumed
        or when :meth:`close` is called.
    """

    content_type: str
    size: int
    chunks: Iterator[bytes]

    def close(self) -> None:
        """Close the file without reading it to the end."""
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


def magic_type(head: bytes) -> str | None:
    """The image type the first bytes of a file prove, or ``None`` (an image type alone proves nothing)."""
    found = sniff(head)
    return FORMATS[found][0] if found is not None else None


def _stream(handle: BinaryIO, head: bytes, size: int) -> Iterator[bytes]:
    try:
        sent = len(head)
        yield head
        while sent < size:
            chunk = handle.read(min(CHUNK_BYTES, size - sent))
            if not chunk:
                break
            sent += len(chunk)
            yield chunk
    finally:
        with contextlib.suppress(Exception):
            handle.close()


def open_image(file: StoredFile, conn_id: str | None, *, max_bytes: int = MAX_IMAGE_BYTES) -> OpenedImage:
    """Open a recorded image for streaming after checking its size and magic bytes.

    :param file: the image (or thumbnail) as recorded.
    :param conn_id: the connection of its store.
    :param max_bytes: the largest file served.
    :raises Refused: 404 when it is gone or not an image of its recorded type, 413 when too large.
    """
    from airflow.sdk import ObjectStoragePath

    if file.content_type is None:
        raise Refused(404, "This entry of the task's result is not a stored image the plugin serves.")
    path = ObjectStoragePath(file.uri, conn_id=conn_id)
    try:
        size = int(path.stat().st_size)
        if size > max_bytes:
            raise Refused(413, f"The image holds {size:,} bytes; the plugin serves at most {max_bytes:,}.")
        handle = path.open("rb")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise Refused(404, "The image is no longer in storage.") from exc
    try:
        head = handle.read(min(CHUNK_BYTES, size))
        if magic_type(head) != file.content_type:
            raise Refused(404, f"The stored file is not the {file.content_type} the task recorded.")
    except BaseException:
        handle.close()
        raise
    return OpenedImage(file.content_type, size, _stream(handle, head, size))


def read_sidecar(image: StoredImage) -> dict[str, Any] | None:
    """The provenance sidecar of ``image`` (``None`` when missing, too large, or not this image's)."""
    from airflow.sdk import ObjectStoragePath

    try:
        with ObjectStoragePath(image.sidecar_uri, conn_id=image.conn_id).open("rb") as handle:
            data = handle.read(MAX_SIDECAR_BYTES + 1)
        document = json.loads(data) if len(data) <= MAX_SIDECAR_BYTES else None
    except Exception as exc:  # a missing or unreadable sidecar only leaves its caption empty
        log.debug("No sidecar for %s: %s", image.image.uri, exc)
        return None
    if not isinstance(document, dict) or document.get("schema") != SIDECAR_SCHEMA:
        return None
    return document if document.get("name") == image.name else None
