"""The gallery's pages: order, page names and links, and the cards' HTML (marks, thumbnails, lazy images)."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.outputs.gallery_documents import GalleryEntry, RunReport
from airflow_provider_gptimage.outputs.gallery_pages import (
    mark_entries,
    ordered,
    page_count,
    page_links,
    page_name,
    page_summary,
    paginate,
    render_gallery,
)


def entry(key: str, name: str | None = None, **extra) -> GalleryEntry:
    return GalleryEntry(name or f"{key}.png", key, "p", "j", {}, 1, "", **extra)


def test_marked_cards_come_first_new_then_changed():
    report = RunReport(new=frozenset({"D"}), changed=frozenset({"B", "E"}))
    cards = ordered(mark_entries([entry(k) for k in "EDCBA"], report))
    assert [(c.key, c.mark) for c in cards] == [
        ("D", "new"),
        ("B", "changed"),
        ("E", "changed"),
        ("A", None),
        ("C", None),
    ]


def test_no_report_marks_nothing_and_a_mark_already_set_stays():
    assert [c.mark for c in mark_entries([entry("A")], None)] == [None]
    kept = mark_entries([entry("A", mark="changed")], RunReport(new=frozenset({"A"})))
    assert kept[0].mark == "changed"


@pytest.mark.parametrize(
    ("total", "size", "pages"), [(0, 200, 1), (1, 200, 1), (200, 200, 1), (201, 200, 2), (10_000, 200, 50)]
)
def test_page_count(total, size, pages):
    assert page_count(total, size) == pages


def test_page_size_must_be_positive():
    with pytest.raises(ValueError, match="page_size"):
        page_count(3, 0)


def test_page_names():
    assert [page_name("index.html", n) for n in (1, 2, 10)] == ["index.html", "index-2.html", "index-10.html"]
    assert page_name("catalog.v2.html", 3) == "catalog.v2-3.html"
    assert page_name("gallery", 2) == "gallery-2"


def test_paginate_keeps_order_and_bounds():
    cards = [entry(f"K{i:03}") for i in range(450)]
    pages = paginate(cards, 200)
    assert [len(p) for p in pages] == [200, 200, 50]
    assert [c for p in pages for c in p] == cards
    assert paginate([], 200) == [[]]


def test_links_of_a_middle_page():
    links = dict(page_links("index.html", 5, 20))
    assert links["« First"] == "index.html"
    assert links["Previous"] == "index-4.html"
    assert links["Next"] == "index-6.html"
    assert links["Last (20) »"] == "index-20.html"
    assert links["5"] == ""  # the current page is shown, not linked
    assert [label for label in links if label.isdigit()] == [str(n) for n in range(2, 9)]


def test_links_of_the_ends():
    assert page_links("index.html", 1, 1) == []
    first = [label for label, _ in page_links("index.html", 1, 3)]
    assert first == ["1", "2", "3", "Next", "Last (3) »"]
    last = [label for label, _ in page_links("index.html", 3, 3)]
    assert last == ["« First", "Previous", "1", "2", "3"]


def test_summaries():
    assert page_summary(0, 1, 1, 200, None) == "No images yet."
    assert page_summary(1, 1, 1, 200, None) == "1 image"
    assert page_summary(450, 3, 3, 200, None) == "Images 401-450 of 450 (page 3 of 3)"
    report = RunReport(counts={"new": 1, "changed": 0})
    assert page_summary(2, 1, 1, 200, report) == "2 images. Last run: 1 new, 0 changed"


def test_cards_use_thumbnails_lazily_and_link_the_full_image():
    page = render_gallery([entry("SKU-1", thumbnail="_thumbs/SKU-1.jpg"), entry("SKU-2")])
    assert '<a href="SKU-1.png"><img src="_thumbs/SKU-1.jpg"' in page
    assert '<a href="SKU-2.png"><img src="SKU-2.png"' in page
    assert page.count('loading="lazy"') == 2


def test_marks_are_badges_and_classes():
    page = render_gallery([entry("A", mark="new"), entry("B", mark="changed"), entry("C", mark="<bogus>")])
    assert '<figure data-key="A" class="new">' in page
    assert '<span class="badge new">new</span>' in page
    assert '<figure data-key="B" class="changed">' in page
    assert '<figure data-key="C">' in page
    assert "bogus" not in page


def test_names_become_urls_and_everything_is_escaped():
    page = render_gallery(
        [GalleryEntry('x"#1.png', "<script>alert(1)</script>", "a & b <i>", "j", {"k": "<v>"}, 1, "")],
        title="<b>t</b>",
        pages=[("<1>", 'a"b.html'), ("2", "")],
    )
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="x%22%231.png"' in page
    assert "<b>t</b>" not in page and "&lt;v&gt;" in page
    assert '<a href="a&quot;b.html">&lt;1&gt;</a><span>2</span>' in page
