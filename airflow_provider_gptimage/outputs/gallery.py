"""A contact sheet (``index.html``) of the images kept in a folder, built from their provenance sidecars.

The gallery reads only what the folder holds (each image's ``<stem>.json`` sidecar), so it works the
same for a local folder and an object store, and for images written by any number of tasks or runs.
Links are relative, so the page can be opened from the folder itself (a local path, a synced bucket, or
an object store served as a static site).
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.outputs.catalog import SIDECAR_SCHEMA

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


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
    :param href: where the card links to (default: ``name``, relative to the folder).
    :param thumbnail: the card's image source (default: ``href``).
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


def entry_from_sidecar(document: dict[str, Any]) -> GalleryEntry | None:
    """The gallery entry a provenance sidecar describes (``None`` for any other JSON document)."""
    if document.get("schema") != SIDECAR_SCHEMA or not document.get("name"):
        return None
    return GalleryEntry(
        name=str(document["name"]),
        key=str(document.get("filename") or document.get("job_id") or document["name"]),
        prompt=str(document.get("prompt") or ""),
        job_id=str(document.get("job_id") or ""),
        parameters=dict(document.get("parameters") or {}),
        size=int(document.get("size") or 0),
        written_at=str(document.get("written_at") or ""),
    )


def gallery_entries(folder: ObjectStoragePath) -> list[GalleryEntry]:
    """Read every provenance sidecar in ``folder`` whose image is there, sorted by key then name."""
    entries = []
    for path in folder.iterdir():
        if not path.name.endswith(".json") or path.name.startswith("."):
            continue
        try:
            document = json.loads(path.read_text())
        except (ValueError, OSError):
            continue
        entry = entry_from_sidecar(document) if isinstance(document, dict) else None
        if entry is not None and (folder / entry.name).exists():
            entries.append(entry)
    return sorted(entries, key=lambda e: (e.key, e.name))


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;background:#fafafa;color:#222}
h1{font-size:1.4rem}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:1rem}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:8px;padding:.6rem}
img{width:100%;height:200px;object-fit:contain;background:#eee;border-radius:4px}
figcaption{font-size:.8rem;line-height:1.3}.key{font-weight:600;font-size:.95rem}
.prompt{color:#444;margin:.3rem 0}.meta{color:#888;font-family:monospace;font-size:.7rem;word-break:break-all}
nav a{margin-right:.8rem}
"""


def render_gallery(
    entries: Iterable[GalleryEntry],
    *,
    title: str = "Generated images",
    summary: str | None = None,
    pages: Sequence[tuple[str, str]] = (),
) -> str:
    """Return the HTML of the contact sheet (every value escaped; links relative to the folder by default).

    :param entries: the cards, in order.
    :param title: the page's title.
    :param summary: the line under the title (default: the number of cards).
    :param pages: ``(label, href)`` links shown above and below the cards (e.g. paging).
    """
    esc = html.escape
    cards = []
    for entry in entries:
        params = ", ".join(f"{k}={v}" for k, v in sorted(entry.parameters.items()))
        href = entry.href or entry.name
        cards.append(
            f'<figure data-key="{esc(entry.key)}"><a href="{esc(href)}">'
            f'<img src="{esc(entry.thumbnail or href)}" alt="{esc(entry.key)}" loading="lazy" decoding="async"></a>'
            f'<figcaption><div class="key">{esc(entry.key)}</div>'
            f'<div class="prompt">{esc(entry.prompt)}</div>'
            f'<div class="meta">job {esc(entry.job_id)}<br>{esc(params)}<br>{entry.size:,} bytes, '
            f"{esc(entry.written_at)}</div></figcaption></figure>"
        )
    count = len(cards)
    line = summary if summary is not None else f"{count} image{'s' if count != 1 else ''}"
    nav = "".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in pages)
    nav = f"<nav>{nav}</nav>" if nav else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>"
        f'<p>{esc(line)}</p>{nav}<div class="grid">{"".join(cards)}</div>{nav}</body></html>\n'
    )


def write_gallery(
    folder: ObjectStoragePath, *, title: str = "Generated images", name: str = "index.html"
) -> tuple[str, int]:
    """Write ``index.html`` (atomically) into ``folder`` for the images it holds.

    :return: the page's URI and the number of images it shows.
    """
    from airflow_provider_gptimage.outputs import path_uri
    from airflow_provider_gptimage.outputs.store import write_bytes_atomic

    entries = gallery_entries(folder)
    target = folder / name
    write_bytes_atomic(target, render_gallery(entries, title=title).encode("utf-8"))
    return path_uri(target), len(entries)
