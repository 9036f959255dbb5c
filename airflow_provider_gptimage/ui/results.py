"""Which stored images a task instance's recorded result names (pure: no I/O, no Airflow import).

The recorded result is the task's ``return_value`` XCom:

* the generate operator and the sensor (:func:`~..protocol.events.result_payload`): ``outputs``, each with
  ``uri``, ``conn_id``, ``content_type``, ``sha256``... (``output_uris`` alone is read when ``outputs`` is
  missing);
* the batch operator (:func:`~..protocol.batch.report`): ``items``, each with ``key`` and ``output_uris``
  (its connection is the task's rendered ``destination_conn_id``, passed as ``default_conn_id``).

Images are numbered from 0 in that order; a request names a number, never a path. Only URIs of the
schemes a destination can have (``file`` and the object stores) and only image types are served.

Thumbnails: an output may name one as ``thumbnail_uri`` (with ``thumbnail_content_type``) or as a
``thumbnail`` mapping with ``uri``; in a list of URIs, ``<stem>.thumb.<ext>`` is the thumbnail of
``<stem>.<ext>`` of the same folder and is not numbered as an image of its own. When the result records
none, the image's provenance sidecar may name one (``thumbnail``: ``_thumbs/<stem>.jpg``, relative to the
image's folder; :func:`sidecar_thumbnail`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_gptimage.outputs.names import plain_path
from airflow_provider_gptimage.outputs.paths import LOCAL_PROTOCOLS, OBJECT_STORE_PROTOCOLS

#: Content types served, by the extensions the provider writes (``outputs.identify.FORMATS``: PNG, JPEG, WebP).
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
#: Schemes served: the ones a destination can have; never ``http(s)`` (no fetching on a user's behalf).
SERVED_SCHEMES = LOCAL_PROTOCOLS | OBJECT_STORE_PROTOCOLS
THUMBNAIL_MARKER = ".thumb."
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class StoredFile:
    """One stored file named by a recorded result.

    :param uri: its URI, as recorded (``s3://bucket/prefix/sku.png``).
    :param content_type: the image type it is served as; ``None`` when it may not be served.
    """

    uri: str
    content_type: str | None


@dataclass(frozen=True)
class StoredImage:
    """One image of a task instance's recorded result.

    :param image: the image.
    :param conn_id: the connection of its object store (``None``: the store's default).
    :param key: the batch item's key, or ``None``.
    :param size: recorded bytes, if known.
    :param sha256: recorded digest, if known (an ``ETag``).
    :param thumbnail: its thumbnail, if the result records one.
    """

    image: StoredFile
    conn_id: str | None = None
    key: str | None = None
    size: int | None = None
    sha256: str | None = None
    thumbnail: StoredFile | None = None

    @property
    def servable(self) -> bool:
        """Whether the image may be served (a stored image type under a destination scheme)."""
        return self.image.content_type is not None

    @property
    def name(self) -> str:
        """The image's file name."""
        return posixpath.basename(self.image.uri)

    @property
    def sidecar_uri(self) -> str:
        """The provenance sidecar next to the image (``<stem>.json``), derived from the recorded URI only."""
        return self.image.uri.rsplit(".", 1)[0] + ".json"


def safe_uri(uri: object) -> str | None:
    """Return ``uri`` when it names a stored file the plugin may read, else ``None``.

    Accepted: a scheme in :data:`SERVED_SCHEMES`, no NUL or backslash, no ``.`` or ``..`` path segment,
    and for ``file://`` an absolute path on this host (``file:///...``).
    """
    if not isinstance(uri, str) or "\x00" in uri or "\\" in uri:
        return None
    match = _SCHEME.match(uri)
    if match is None or match.group(1).lower() not in SERVED_SCHEMES:
        return None
    rest = uri[match.end() :]
    if match.group(1).lower() in LOCAL_PROTOCOLS and not rest.startswith("/"):
        return None
    if any(segment in (".", "..") for segment in rest.split("/")) or "?" in rest or "#" in rest:
        return None
    if not rest.strip("/") or rest.endswith("/"):
        return None
    return uri


def image_type(uri: str, recorded: object = None) -> str | None:
    """The content type to serve ``uri`` as, or ``None``.

    The writer names each file after its magic bytes (``.png``, ``.jpg``...), so the URI's extension must
    be an image type's, and a recorded type must agree with it.
    """
    name = posixpath.basename(uri)
    kind = IMAGE_TYPES.get(name.rsplit(".", 1)[-1].lower()) if "." in name else None
    if kind is not None and isinstance(recorded, str) and recorded:
        return kind if recorded.split(";", 1)[0].strip().lower() == kind else None
    return kind


def _file(uri: object, recorded_type: object = None) -> StoredFile | None:
    if not isinstance(uri, str) or not uri:
        return None
    safe = safe_uri(uri)
    return StoredFile(uri=uri, content_type=image_type(safe, recorded_type) if safe else None)


def is_thumbnail(uri: str) -> bool:
    """Whether ``uri`` names a thumbnail (``<stem>.thumb.<ext>``)."""
    return THUMBNAIL_MARKER in posixpath.basename(uri)


def _thumbnail_of(output: Mapping[str, Any]) -> StoredFile | None:
    nested = output.get("thumbnail")
    if isinstance(nested, Mapping):
        return _file(nested.get("uri"), nested.get("content_type"))
    return _file(output.get("thumbnail_uri"), output.get("thumbnail_content_type"))


def sidecar_thumbnail(image: StoredImage, sidecar: Mapping[str, Any] | None) -> StoredFile | None:
    """The thumbnail ``image``'s sidecar names, in the image's folder; ``None`` when it names none we serve.

    :param image: the recorded image.
    :param sidecar: its provenance sidecar, as read (``None``: none).
    """
    relative = plain_path(sidecar.get("thumbnail")) if isinstance(sidecar, Mapping) else None
    if relative is None or "/" not in image.image.uri:
        return None
    found = _file(f"{image.image.uri.rsplit('/', 1)[0]}/{relative}")
    return found if found is not None and found.content_type is not None else None


def _from_uris(uris: Sequence[Any], conn_id: str | None, key: str | None) -> list[StoredImage]:
    """Images of a plain list of URIs, each paired with its ``<stem>.thumb.<ext>`` when listed."""
    strings = [uri for uri in uris if isinstance(uri, str)]
    thumbs = {uri.split(THUMBNAIL_MARKER, 1)[0]: uri for uri in strings if is_thumbnail(uri)}
    images = []
    for uri in strings:
        if is_thumbnail(uri):
            continue
        thumb = thumbs.get(uri.rsplit(".", 1)[0])
        image = _file(uri)
        if image is not None:
            images.append(StoredImage(image, conn_id, key, thumbnail=_file(thumb) if thumb else None))
    return images


def _from_output(output: Mapping[str, Any], default_conn_id: str | None) -> StoredImage | None:
    image = _file(output.get("uri"), output.get("content_type"))
    if image is None:
        return None
    conn_id = output.get("conn_id") if isinstance(output.get("conn_id"), str) else default_conn_id
    size, sha256 = output.get("size"), output.get("sha256")
    return StoredImage(
        image,
        conn_id or None,
        key=None,
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        sha256=sha256 if isinstance(sha256, str) and re.fullmatch(r"[0-9a-f]{64}", sha256) else None,
        thumbnail=_thumbnail_of(output),
    )


def is_batch(result: object) -> bool:
    """Whether ``result`` is a batch operator's report (its connection is not recorded per item)."""
    return isinstance(result, Mapping) and isinstance(result.get("items"), list)


def recorded_images(result: object, *, default_conn_id: str | None = None) -> list[StoredImage]:
    """Every stored image ``result`` names, numbered by position (see the module docstring).

    :param result: a task instance's ``return_value`` XCom, deserialised.
    :param default_conn_id: the connection of images whose entry records none (a batch's
        ``destination_conn_id``).
    """
    if not isinstance(result, Mapping):
        return []
    if is_batch(result):
        images: list[StoredImage] = []
        for item in result["items"]:
            if not isinstance(item, Mapping) or not isinstance(item.get("output_uris"), list):
                continue
            key = item.get("key") if isinstance(item.get("key"), str) else None
            conn_id = item.get("conn_id") if isinstance(item.get("conn_id"), str) else default_conn_id
            images.extend(_from_uris(item["output_uris"], conn_id or None, key))
        return images
    outputs = [o for o in result.get("outputs") or () if isinstance(o, Mapping) and isinstance(o.get("uri"), str)]
    if outputs:
        thumbs = {
            o["uri"].split(THUMBNAIL_MARKER, 1)[0]: _file(o["uri"], o.get("content_type"))
            for o in outputs
            if is_thumbnail(o["uri"])
        }
        found = []
        for output in outputs:
            image = None if is_thumbnail(output["uri"]) else _from_output(output, default_conn_id)
            if image is not None and image.thumbnail is None:
                image = replace(image, thumbnail=thumbs.get(output["uri"].rsplit(".", 1)[0]))
            if image is not None:
                found.append(image)
        return found
    uris = result.get("output_uris")
    return _from_uris(uris, default_conn_id or None, None) if isinstance(uris, list) else []
