"""The gallery's pages (pure: no I/O): card order, paging, navigation, and the HTML of one page.

Order: cards the latest run marked come first, ``new`` then ``changed``, then every other card; within
each group by key, then file name. Tonight's work therefore opens page 1.

Paging: ``index.html`` is page 1, then ``index-2.html``, ``index-3.html``... (:func:`page_name`), each with
at most ``page_size`` cards, and links to the first, previous, nearby, next and last pages. Images are
``loading="lazy"`` thumbnails, so a page of 200 cards loads only what the browser shows.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from urllib.parse import quote

from airflow_provider_gptimage.outputs.gallery_documents import MARKS, GalleryEntry, RunReport

#: Cards per page written by :func:`~airflow_provider_gptimage.outputs.gallery.write_gallery`.
DEFAULT_PAGE_SIZE = 200
#: Page numbers linked on each side of the current page.
NEARBY_PAGES = 3

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;background:#fafafa;color:#222}
h1{font-size:1.4rem}.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:1rem}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:8px;padding:.6rem}
img{width:100%;height:200px;object-fit:contain;background:#eee;border-radius:4px}
figcaption{font-size:.8rem;line-height:1.3}.key{font-weight:600;font-size:.95rem}
.prompt{color:#444;margin:.3rem 0}.meta{color:#888;font-family:monospace;font-size:.7rem;word-break:break-all}
nav{margin:.8rem 0}nav a,nav span{margin-right:.8rem}nav span{font-weight:600}
figure.new{border:2px solid #2a7d2a}figure.changed{border:2px solid #b26b00}
.badge{display:inline-block;margin-left:.4rem;padding:0 .45rem;border-radius:999px;color:#fff;font-size:.7rem}
.badge.new{background:#2a7d2a}.badge.changed{background:#b26b00}
"""


def mark_entries(entries: Iterable[GalleryEntry], report: RunReport | None) -> list[GalleryEntry]:
    """The entries, each marked ``new`` or ``changed`` as ``report`` says (marks already set are kept)."""
    if report is None:
        return list(entries)
    return [entry if entry.mark else replace(entry, mark=report.mark(entry.key)) for entry in entries]


def ordered(entries: Iterable[GalleryEntry]) -> list[GalleryEntry]:
    """The cards in gallery order: ``new``, then ``changed``, then the rest; each by key, then name."""

    def rank(entry: GalleryEntry) -> tuple[int, str, str]:
        mark = MARKS.index(entry.mark) if entry.mark in MARKS else len(MARKS)
        return mark, entry.key, entry.name

    return sorted(entries, key=rank)


def page_count(total: int, page_size: int) -> int:
    """How many pages ``total`` cards fill, ``page_size`` a page (at least 1: an empty gallery has a page)."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size}")
    return max(1, math.ceil(total / page_size))


def page_name(name: str, number: int) -> str:
    """The file of page ``number`` (1-based): ``index.html``, then ``index-2.html``, ``index-3.html``..."""
    if number <= 1:
        return name
    stem, dot, extension = name.rpartition(".")
    return f"{stem}-{number}.{extension}" if dot and stem else f"{name}-{number}"


def paginate(entries: Sequence[GalleryEntry], page_size: int) -> list[Sequence[GalleryEntry]]:
    """The cards of each page, in order (one empty page when there is no card)."""
    pages = page_count(len(entries), page_size)
    return [entries[i * page_size : (i + 1) * page_size] for i in range(pages)]


def page_links(name: str, number: int, pages: int) -> list[tuple[str, str]]:
    """``(label, href)`` links of page ``number``; the current page's href is ``""`` (shown, not linked)."""
    if pages <= 1:
        return []

    def link(label: str, target: int) -> tuple[str, str]:
        return label, "" if target == number else quote(page_name(name, target))

    links = []
    if number > 1:
        links += [link("« First", 1), link("Previous", number - 1)]
    low, high = max(1, number - NEARBY_PAGES), min(pages, number + NEARBY_PAGES)
    links += [link(str(target), target) for target in range(low, high + 1)]
    if number < pages:
        links += [link("Next", number + 1), link(f"Last ({pages}) »", pages)]
    return links


def page_summary(total: int, number: int, pages: int, page_size: int, report: RunReport | None) -> str:
    """The line under a page's title: which cards it shows, and the latest run's counts."""
    if total == 0:
        line = "No images yet."
    elif pages == 1:
        line = f"{total:,} image{'s' if total != 1 else ''}"
    else:
        first = (number - 1) * page_size + 1
        line = f"Images {first:,}-{min(number * page_size, total):,} of {total:,} (page {number} of {pages})"
    return f"{line}. {report.line()}" if report is not None else line


def _card(entry: GalleryEntry) -> str:
    esc = html.escape
    params = ", ".join(f"{k}={v}" for k, v in sorted(entry.parameters.items()))
    href = entry.href or quote(entry.name, safe="/+=@,")
    mark = entry.mark if entry.mark in MARKS else None
    badge = f'<span class="badge {mark}">{mark}</span>' if mark else ""
    marked = f' class="{mark}"' if mark else ""
    return (
        f'<figure data-key="{esc(entry.key)}"{marked}>'
        f'<a href="{esc(href)}"><img src="{esc(entry.thumbnail or href)}" alt="{esc(entry.key)}" loading="lazy" '
        f'decoding="async"></a><figcaption><div class="key">{esc(entry.key)}{badge}</div>'
        f'<div class="prompt">{esc(entry.prompt)}</div>'
        f'<div class="meta">job {esc(entry.job_id)}<br>{esc(params)}<br>{entry.size:,} bytes, '
        f"{esc(entry.written_at)}</div></figcaption></figure>"
    )


def render_gallery(
    entries: Iterable[GalleryEntry],
    *,
    title: str = "Generated images",
    summary: str | None = None,
    pages: Sequence[tuple[str, str]] = (),
) -> str:
    """Return the HTML of one page of the contact sheet (every value escaped; links relative by default).

    :param entries: the cards, in order.
    :param title: the page's title.
    :param summary: the line under the title (default: the number of cards).
    :param pages: ``(label, href)`` links shown above and below the cards (e.g. paging); an empty href is
        shown as text (the current page).
    """
    esc = html.escape
    cards = [_card(entry) for entry in entries]
    count = len(cards)
    line = summary if summary is not None else f"{count} image{'s' if count != 1 else ''}"
    nav = "".join(
        f'<a href="{esc(href)}">{esc(label)}</a>' if href else f"<span>{esc(label)}</span>" for label, href in pages
    )
    nav = f"<nav>{nav}</nav>" if nav else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>"
        f'<p>{esc(line)}</p>{nav}<div class="grid">{"".join(cards)}</div>{nav}</body></html>\n'
    )
