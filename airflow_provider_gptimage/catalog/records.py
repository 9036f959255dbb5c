"""The catalog's persisted records, named, with explicit to/from primitives (pure: no I/O).

Readers are tolerant: a malformed record reads as ``None`` (or is skipped), never as an exception, because
every one of them can be rebuilt from the sidecars, which stay the truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_gptimage.protocol.catalog import sidecar_fingerprint

MANIFEST_SCHEMA = "gptimage-manifest/1"
JOURNAL_SCHEMA = "gptimage-journal/1"
REPORT_SCHEMA = "gptimage-run/1"


def utc_now() -> str:
    """Now, UTC, ISO 8601 to the second (``2026-12-02T10:00:00Z``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class ImageEntry:
    """One image of a key, as the manifest lists it.

    :param name: file name in the root (``sku.png``).
    :param uri: full URI, without a connection id (empty when a manifest did not say).
    :param sha256: hex digest of the bytes.
    :param size: bytes.
    :param format: ``png``, ``jpeg`` or ``webp``.
    :param width: pixels.
    :param height: pixels.
    :param thumbnail: the thumbnail's path relative to the root (``_thumbs/sku.jpg``), if one was made.
    """

    name: str
    uri: str
    sha256: str | None = None
    size: int | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    thumbnail: str | None = None

    def to_primitives(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "name": self.name,
            "uri": self.uri,
            "sha256": self.sha256,
            "size": self.size,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "thumbnail": self.thumbnail,
        }

    @classmethod
    def from_primitives(cls, value: object) -> ImageEntry | None:
        """Read :meth:`to_primitives` (or a sidecar, which has the same fields) back."""
        if not isinstance(value, Mapping) or not _str(value.get("name")):
            return None
        return cls(
            name=str(value["name"]),
            uri=_str(value.get("uri")) or "",
            sha256=_str(value.get("sha256")),
            size=_int(value.get("size")),
            format=_str(value.get("format")),
            width=_int(value.get("width")),
            height=_int(value.get("height")),
            thumbnail=_str(value.get("thumbnail")),
        )


@dataclass(frozen=True)
class CatalogEntry:
    """One key of the catalog: the request that made its current image(s), and the images.

    :param key: the product key (the images' base name).
    :param fingerprint: of the request (``None``: unknown; the key then counts as changed).
    :param job_id: the job that made the images.
    :param written_at: when they were committed (UTC, ISO 8601).
    :param prompt: the prompt.
    :param parameters: the other input fields.
    :param images: the images, in order.
    """

    key: str
    fingerprint: str | None
    job_id: str | None
    written_at: str
    prompt: str
    parameters: Mapping[str, Any]
    images: tuple[ImageEntry, ...]

    def to_primitives(self) -> dict[str, Any]:
        """JSON-serialisable form (the key is the manifest's, not repeated)."""
        return {
            "fingerprint": self.fingerprint,
            "job_id": self.job_id,
            "written_at": self.written_at,
            "prompt": self.prompt,
            "parameters": dict(self.parameters),
            "images": [image.to_primitives() for image in self.images],
        }

    @classmethod
    def from_primitives(cls, key: str, value: object) -> CatalogEntry | None:
        """Read :meth:`to_primitives` back."""
        if not isinstance(value, Mapping) or not isinstance(value.get("images"), list):
            return None
        images = tuple(i for i in (ImageEntry.from_primitives(v) for v in value["images"]) if i is not None)
        parameters = value.get("parameters")
        if not images:
            return None
        return cls(
            key=key,
            fingerprint=_str(value.get("fingerprint")),
            job_id=_str(value.get("job_id")),
            written_at=_str(value.get("written_at")) or "",
            prompt=_str(value.get("prompt")) or "",
            parameters=dict(parameters) if isinstance(parameters, Mapping) else {},
            images=images,
        )

    @classmethod
    def from_sidecars(cls, key: str, documents: Sequence[Mapping[str, Any]]) -> CatalogEntry | None:
        """The entry the sidecars of one key's images describe (in index order)."""
        if not documents:
            return None
        first = documents[0]
        images = tuple(i for i in (ImageEntry.from_primitives(d) for d in documents) if i is not None)
        if len(images) != len(documents):
            return None
        parameters = first.get("parameters")
        return cls(
            key=key,
            fingerprint=sidecar_fingerprint(first),
            job_id=_str(first.get("job_id")),
            written_at=_str(first.get("written_at")) or "",
            prompt=_str(first.get("prompt")) or "",
            parameters=dict(parameters) if isinstance(parameters, Mapping) else {},
            images=images,
        )


def manifest_document(entries: Mapping[str, CatalogEntry]) -> dict[str, Any]:
    """The manifest: every key's entry, sorted by key."""
    return {
        "schema": MANIFEST_SCHEMA,
        "written_at": utc_now(),
        "entries": {key: entries[key].to_primitives() for key in sorted(entries)},
    }


def parse_manifest(document: object) -> dict[str, CatalogEntry] | None:
    """The entries of a manifest (malformed entries skipped); ``None`` when it is not a manifest at all."""
    if not isinstance(document, Mapping) or document.get("schema") != MANIFEST_SCHEMA:
        return None
    raw = document.get("entries")
    if not isinstance(raw, Mapping):
        return None
    entries = {}
    for key, value in raw.items():
        entry = CatalogEntry.from_primitives(str(key), value)
        if entry is not None:
            entries[entry.key] = entry
    return entries


@dataclass(frozen=True)
class JournalEntry:
    """A job paid for and not yet committed: any run wanting the same request at this root re-attaches to it.

    :param fingerprint: of the request.
    :param key: the key it was created for.
    :param job_id: the service's job id.
    :param created_at: epoch seconds.
    """

    fingerprint: str
    key: str
    job_id: str
    created_at: float

    def to_primitives(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "schema": JOURNAL_SCHEMA,
            "fingerprint": self.fingerprint,
            "key": self.key,
            "job_id": self.job_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_primitives(cls, value: object) -> JournalEntry | None:
        """Read :meth:`to_primitives` back."""
        if not isinstance(value, Mapping) or value.get("schema") != JOURNAL_SCHEMA:
            return None
        fingerprint, key, job_id, created = (value.get(k) for k in ("fingerprint", "key", "job_id", "created_at"))
        if not (isinstance(fingerprint, str) and isinstance(key, str) and isinstance(job_id, str) and job_id):
            return None
        if isinstance(created, bool) or not isinstance(created, (int, float)):
            return None
        return cls(fingerprint, key, job_id, float(created))
