"""What a gallery shows, read from documents a catalog folder holds (pure: no I/O).

* a provenance sidecar (``<stem>.json``, :data:`~airflow_provider_gptimage.outputs.catalog.SIDECAR_SCHEMA`):
  one card, :func:`entry_from_sidecar`;
* the catalog manifest (``_catalog/manifest.json``, read by
  :func:`~airflow_provider_gptimage.catalog.records.parse_manifest`): one card per image of every key,
  :func:`entries_from_manifest`; one read for the whole catalog;
* the latest run's report (``_catalog/runs/latest.json``, :data:`RUN_SCHEMA`): which keys that run added
  or changed, and its counts, :func:`run_report`.

Every reader is tolerant: a malformed part (a card without a plain file name, a size that is not a
number...) is skipped or left empty, never raised. File names become links only when they are plain names
(letters, digits and ``_ . + = @ , -``, as :func:`~airflow_provider_gptimage.outputs.names.validate_filename`
allows, not starting with a dot), so a forged document cannot point a card outside its folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from airflow_provider_gptimage.catalog.layout import CATALOG_DIR, LATEST_REPORT, MANIFEST_NAME, RUNS_DIR
from airflow_provider_gptimage.catalog.records import REPORT_SCHEMA as RUN_SCHEMA
from airflow_provider_gptimage.catalog.records import CatalogEntry, parse_manifest
from airflow_provider_gptimage.outputs.catalog import SIDECAR_SCHEMA
from airflow_provider_gptimage.outputs.names import plain_path

#: The catalog manifest, relative to the catalog folder.
MANIFEST_PATH = f"{CATALOG_DIR}/{MANIFEST_NAME}"
#: The report of the latest run, relative to the catalog folder.
LATEST_RUN_PATH = f"{CATALOG_DIR}/{RUNS_DIR}/{LATEST_REPORT}"
#: The marks a card can carry, in the order marked cards are shown.
MARKS = ("new", "changed")
#: The counts of a run report, in the order they are shown.
COUNTS = ("new", "changed", "unchanged", "removed", "failed")


@dataclass(frozen=True)
class GalleryEntry:
    """One image of the gallery.

    :param name: the image's file name, relative to the folder.
    :param key: the name it was given (``filename``, e.g. a SKU), or the job id.
    :param prompt: the prompt that made it.
    :param job_id: the API's job id.
    :param parameters: aspect ratio, resolution and the other options.
    :param size: bytes.
    :param written_at: when the copy was made (UTC, ISO 8601).
    :param href: where the card links to, a URL (default: ``name``, relative to the folder).
    :param thumbnail: the card's image source, a URL (default: ``href``), e.g. ``_thumbs/sku.jpg``.
    :param mark: ``"new"`` or ``"changed"`` when the latest run made it so (a badge and a CSS class).
    """

    name: str
    key: str
    prompt: str
    job_id: str
    parameters: dict[str, Any]
    size: int
    written_at: str
    href: str | None = None
    thumbnail: str | None = None
    mark: str | None = None


def relative_url(path: object) -> str | None:
    """The relative URL of a :func:`plain_path` (percent-encoded), or ``None`` when it is not one."""
    plain = plain_path(path)
    return quote(plain, safe="/+=@,") if plain is not None else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _parameters(value: object) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def entry_from_sidecar(document: Mapping[str, Any]) -> GalleryEntry | None:
    """The gallery entry a provenance sidecar describes (``None`` for any other JSON document).

    Its optional ``thumbnail`` (``_thumbs/<stem>.jpg``, relative to the folder) becomes the card's image.
    """
    if not isinstance(document, Mapping) or document.get("schema") != SIDECAR_SCHEMA:
        return None
    name = document.get("name")
    if not isinstance(name, str) or not name:
        return None
    key = document.get("filename") or document.get("job_id") or name
    return GalleryEntry(
        name=name,
        key=str(key),
        prompt=_text(document.get("prompt")),
        job_id=str(document.get("job_id") or ""),
        parameters=_parameters(document.get("parameters")),
        size=_count(document.get("size")),
        written_at=_text(document.get("written_at")),
        thumbnail=relative_url(document.get("thumbnail")),
    )


def entries_from_manifest(document: Mapping[str, Any]) -> list[GalleryEntry]:
    """One card per image of every key of a catalog manifest (read by
    :func:`~airflow_provider_gptimage.catalog.records.parse_manifest`), in the manifest's order.

    Malformed parts (an entry that is not one, an image without a plain file name...) are skipped; a
    document that is not a manifest gives no card.
    """
    return manifest_cards(parse_manifest(document) or {})


def manifest_cards(entries: Mapping[str, CatalogEntry]) -> list[GalleryEntry]:
    """One card per image of every manifest entry with a plain file name."""
    cards = []
    for key, entry in entries.items():
        shared = GalleryEntry(
            name="",
            key=key,
            prompt=entry.prompt,
            job_id=entry.job_id or "",
            parameters=_parameters(entry.parameters),
            size=0,
            written_at=entry.written_at,
        )
        for image in entry.images:
            name = plain_path(image.name)
            if key and name is not None and "/" not in name:
                cards.append(replace(shared, name=name, size=image.size or 0, thumbnail=relative_url(image.thumbnail)))
    return cards


@dataclass(frozen=True)
class RunReport:
    """What the latest run of a catalog did, as its report (``_catalog/runs/latest.json``) says.

    :param run_id: the run.
    :param written_at: when the report was written (UTC, ISO 8601).
    :param counts: images ``new``, ``changed``, ``unchanged``, ``removed`` and ``failed`` (those present).
    :param new: the keys it added.
    :param changed: the keys it regenerated because their request changed.
    :param resolutions: jobs by resolution (``{"1K": 2}``: what drives credits).
    """

    run_id: str = ""
    written_at: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    new: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    resolutions: dict[str, int] = field(default_factory=dict)

    def mark(self, key: str) -> str | None:
        """``"new"``, ``"changed"`` or ``None`` for ``key``."""
        return "new" if key in self.new else "changed" if key in self.changed else None

    def line(self) -> str:
        """One line for the gallery: ``Last run: 1 new, 1 changed, 18 unchanged... (run ..., at ...)``."""
        counts = ", ".join(f"{self.counts[name]:,} {name}" for name in COUNTS if name in self.counts)
        parts = [f"Last run: {counts or 'no counts'}"]
        if self.resolutions:
            parts.append("jobs by resolution: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.resolutions.items())))
        where = ", ".join(part for part in (self.run_id and f"run {self.run_id}", self.written_at) if part)
        return "; ".join(parts) + (f" ({where})" if where else "")


def _keys(value: object) -> frozenset[str]:
    return frozenset(k for k in value if isinstance(k, str)) if isinstance(value, list) else frozenset()


def _counts(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}


def run_report(document: object) -> RunReport | None:
    """The run report ``document`` holds, or ``None`` when it is not one (malformed fields are left empty)."""
    if not isinstance(document, Mapping) or document.get("schema") != RUN_SCHEMA:
        return None
    return RunReport(
        run_id=_text(document.get("run_id")),
        written_at=_text(document.get("written_at")),
        counts={k: v for k, v in _counts(document.get("counts")).items() if k in COUNTS},
        new=_keys(document.get("new")),
        changed=_keys(document.get("changed")),
        resolutions=_counts(document.get("resolutions")),
    )
