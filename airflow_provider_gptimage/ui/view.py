"""The gallery of a DAG run: every stored image its tasks recorded, a page at a time, rendered by
:func:`~airflow_provider_gptimage.outputs.gallery_pages.render_gallery` (the same cards as the gallery operator's).

Cards link to the plugin's own image URLs, relative to the page (so the page works under any
``[api] base_url`` path and inside the UI's iframe); images are lazy-loaded thumbnails. Only the
sidecars of the page's images are read, a few at a time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from airflow_provider_gptimage.outputs.gallery import GalleryEntry, entry_from_sidecar, render_gallery
from airflow_provider_gptimage.ui import urls
from airflow_provider_gptimage.ui.records import images_of, run_results
from airflow_provider_gptimage.ui.storage import read_sidecar

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from airflow_provider_gptimage.ui.results import StoredImage

DEFAULT_PER_PAGE = 60
MAX_PER_PAGE = 500
#: Sidecars read at once while a page is built.
SIDECAR_READERS = 8


@dataclass(frozen=True)
class PlacedImage:
    """An image and the task instance and number it is served under.

    :param task_id: the task.
    :param map_index: its map index.
    :param number: its position in the task instance's recorded result (the URL's last segment).
    :param image: the image.
    """

    task_id: str
    map_index: int
    number: int
    image: StoredImage


def run_images(session: Session, dag_id: str, run_id: str) -> list[PlacedImage]:
    """Every servable image the task instances of a run recorded, by task, map index and number."""
    placed = []
    for result in run_results(session, dag_id, run_id):
        for number, image in enumerate(images_of(session, dag_id, run_id, result)):
            if image.servable:
                placed.append(PlacedImage(result.task_id, result.map_index, number, image))
    return placed


def _relative(path: str) -> str:
    """A plugin path relative to the run page (``<prefix>/runs/<dag>/<run>``)."""
    return "../../" + path.removeprefix(urls.URL_PREFIX + "/")


def _entry(dag_id: str, run_id: str, placed: PlacedImage, sidecar: dict | None) -> GalleryEntry:
    image = placed.image
    entry = None
    if sidecar is not None:
        try:
            entry = entry_from_sidecar(sidecar)
        except (TypeError, ValueError):
            entry = None
    if entry is None:
        key = image.key or image.name
        entry = GalleryEntry(image.name, key, "", "", {}, image.size or 0, "")
    ids = (dag_id, run_id, placed.task_id, placed.map_index, placed.number)
    return replace(entry, href=_relative(urls.image_path(*ids)), thumbnail=_relative(urls.thumbnail_path(*ids)))


def page_bounds(total: int, page: int, per_page: int) -> tuple[int, int, int]:
    """Return ``(first, stop, pages)`` of 1-based ``page``: slice indexes and the number of pages."""
    pages = max(1, math.ceil(total / per_page))
    first = (min(max(page, 1), pages) - 1) * per_page
    return first, min(first + per_page, total), pages


def _nav(page: int, pages: int, per_page: int) -> list[tuple[str, str]]:
    def link(number: int) -> str:
        return f"?page={number}&per_page={per_page}"

    nav = []
    if page > 1:
        nav += [("« First", link(1)), ("Previous", link(page - 1))]
    if page < pages:
        nav += [("Next", link(page + 1)), ("Last »", link(pages))]
    return nav


def render_run(
    dag_id: str, run_id: str, placed: Sequence[PlacedImage], *, page: int = 1, per_page: int = DEFAULT_PER_PAGE
) -> str:
    """The HTML of one page of a run's gallery (reads the sidecars of that page's images)."""
    per_page = min(max(per_page, 1), MAX_PER_PAGE)
    first, stop, pages = page_bounds(len(placed), page, per_page)
    shown = list(placed[first:stop])
    with ThreadPoolExecutor(max_workers=SIDECAR_READERS) as pool:
        sidecars = list(pool.map(lambda p: read_sidecar(p.image), shown))
    entries = [_entry(dag_id, run_id, p, sidecar) for p, sidecar in zip(shown, sidecars, strict=True)]
    if not placed:
        summary = "No stored images recorded for this run (yet): images appear once a task copied them."
    else:
        summary = f"Images {first + 1:,}-{stop:,} of {len(placed):,} (page {first // per_page + 1} of {pages})"
    current = first // per_page + 1
    return render_gallery(entries, title=f"{dag_id} / {run_id}", summary=summary, pages=_nav(current, pages, per_page))
