"""A contact sheet (``index.html`` and its further pages) of the images kept in a catalog folder.

Where the cards come from:

* the catalog manifest (``_catalog/manifest.json``) when the folder has one: one read for the whole
  catalog, however many products it holds (no image or sidecar is read);
* otherwise each image's provenance sidecar (``<stem>.json``) whose image is there, as for any folder the
  provider wrote (one read per sidecar).

The latest run's report (``_catalog/runs/latest.json``), when there is one, marks the cards it added or
changed (they come first) and gives the counts line. Cards show each image's thumbnail
(``_thumbs/<stem>.jpg``, see :mod:`~airflow_provider_gptimage.outputs.thumbnails`) when it has one, else
the image itself, lazily loaded; they link to the full image. The documents are read by
:mod:`~airflow_provider_gptimage.outputs.gallery_documents`, the pages built by
:mod:`~airflow_provider_gptimage.outputs.gallery_pages` (both pure).

Links are relative, so the pages can be opened from the folder itself (a local path, a synced bucket, or
an object store served as a static site). Each page is written atomically; pages of an earlier, longer
gallery beyond the new last page are deleted.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from airflow_provider_gptimage.catalog.records import parse_manifest
from airflow_provider_gptimage.catalog.state import SMALL_DOCUMENT_BYTES, read_json
from airflow_provider_gptimage.outputs.gallery_documents import (
    LATEST_RUN_PATH,
    MANIFEST_PATH,
    GalleryEntry,
    RunReport,
    entries_from_manifest,
    entry_from_sidecar,
    manifest_cards,
    run_report,
)
from airflow_provider_gptimage.outputs.gallery_pages import (
    DEFAULT_PAGE_SIZE,
    mark_entries,
    ordered,
    page_links,
    page_name,
    page_summary,
    paginate,
    render_gallery,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "GalleryEntry",
    "entries_from_manifest",
    "entry_from_sidecar",
    "gallery_entries",
    "latest_report",
    "manifest_entries",
    "render_gallery",
    "write_gallery",
]

log = logging.getLogger(__name__)


def gallery_entries(folder: ObjectStoragePath) -> list[GalleryEntry]:
    """Read every provenance sidecar in ``folder`` whose image is there, sorted by key then name."""
    entries = []
    for path in folder.iterdir():
        if not path.name.endswith(".json") or path.name.startswith("."):
            continue
        document = read_json(path, SMALL_DOCUMENT_BYTES)
        entry = entry_from_sidecar(document) if isinstance(document, dict) else None
        if entry is not None and (folder / entry.name).exists():
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.key, e.name))


def manifest_entries(folder: ObjectStoragePath) -> list[GalleryEntry] | None:
    """The cards of the folder's catalog manifest (one read), or ``None`` when it has no readable manifest."""
    entries = parse_manifest(read_json(folder / MANIFEST_PATH))
    return None if entries is None else manifest_cards(entries)


def latest_report(folder: ObjectStoragePath) -> RunReport | None:
    """The report of the catalog's latest run, or ``None`` when there is none (or it is unreadable)."""
    return run_report(read_json(folder / LATEST_RUN_PATH))


def _remove_stale_pages(folder: ObjectStoragePath, name: str, pages: int) -> int:
    """Delete the pages an earlier, longer gallery left after page ``pages``; return how many.

    Pages are written without gaps, so the first missing number ends the search (one ``exists`` call when
    there is nothing to delete).
    """
    removed = 0
    while (stale := folder / page_name(name, pages + removed + 1)).exists():
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
        removed += 1
    return removed


def write_gallery(
    folder: ObjectStoragePath,
    *,
    title: str = "Generated images",
    name: str = "index.html",
    page_size: int = DEFAULT_PAGE_SIZE,
) -> tuple[str, int]:
    """Write the gallery's pages (each atomically) into ``folder`` for the images it holds.

    Page 1 is ``name`` and is written last, so its links never point at a page not written yet.

    :param folder: the catalog folder (images, sidecars, and maybe ``_catalog/`` and ``_thumbs/``).
    :param title: the pages' title.
    :param name: the first page's file name; further pages are ``<stem>-2.<ext>``, ``<stem>-3.<ext>``...
    :param page_size: cards per page (at least 1).
    :return: the first page's URI and the number of images the gallery shows.
    :raises ValueError: ``page_size`` is below 1.
    """
    from airflow_provider_gptimage.outputs.paths import path_uri
    from airflow_provider_gptimage.outputs.store import write_bytes_atomic

    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size}")
    entries = manifest_entries(folder)
    if entries is None:
        entries = gallery_entries(folder)
    report = latest_report(folder)
    cards = ordered(mark_entries(entries, report))
    pages = paginate(cards, page_size)
    for number in range(len(pages), 0, -1):
        page = render_gallery(
            pages[number - 1],
            title=title,
            summary=page_summary(len(cards), number, len(pages), page_size, report),
            pages=page_links(name, number, len(pages)),
        )
        write_bytes_atomic(folder / page_name(name, number), page.encode("utf-8"))
    removed = _remove_stale_pages(folder, name, len(pages))
    log.info("Gallery of %d images in %d page(s); %d stale page(s) removed", len(cards), len(pages), removed)
    return path_uri(folder / name), len(cards)
