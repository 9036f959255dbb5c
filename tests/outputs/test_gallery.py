"""The gallery: built from the catalog manifest (one read) or the sidecars a folder holds; marked, paged,
thumbnails, relative links; local folders and a real S3-compatible server."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from airflow_provider_gptimage.outputs.gallery import GalleryEntry, gallery_entries, render_gallery, write_gallery

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def sidecar(name: str, key: str, prompt: str) -> dict:
    return {
        "schema": "gptimage-output/1",
        "name": name,
        "filename": key,
        "job_id": f"job-{key}",
        "prompt": prompt,
        "parameters": {"aspect_ratio": "1:1"},
        "size": len(PNG),
        "written_at": "2026-11-24T00:00:00Z",
    }


def test_entries_come_from_complete_sidecars_only(tmp_path):
    from airflow.sdk import ObjectStoragePath

    (tmp_path / "B.png").write_bytes(PNG)
    (tmp_path / "B.json").write_text(json.dumps(sidecar("B.png", "B", "second")))
    (tmp_path / "A.png").write_bytes(PNG)
    (tmp_path / "A.json").write_text(json.dumps(sidecar("A.png", "A", "first")))
    (tmp_path / "ghost.json").write_text(json.dumps(sidecar("ghost.png", "ghost", "no image")))
    (tmp_path / "other.json").write_text(json.dumps({"not": "a sidecar"}))
    (tmp_path / "broken.json").write_text("{")
    entries = gallery_entries(ObjectStoragePath(tmp_path.as_uri()))
    assert [e.key for e in entries] == ["A", "B"]
    assert entries[0].prompt == "first"


def test_render_escapes_everything():
    entry = GalleryEntry(
        name='x".png',
        key="<script>alert(1)</script>",
        prompt="a & b <i>",
        job_id="j",
        parameters={},
        size=1,
        written_at="",
    )
    page = render_gallery([entry], title="<b>t</b>")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert 'src="x%22.png"' in page
    assert "<b>t</b>" not in page


def test_write_gallery_to_s3(s3_destination, s3_client, s3_bucket):
    (s3_destination / "K1.png").write_bytes(PNG)
    (s3_destination / "K1.json").write_text(json.dumps(sidecar("K1.png", "K1", "kettle")))
    uri, count = write_gallery(s3_destination, title="S3 gallery")
    assert count == 1
    assert uri == f"s3://{s3_bucket}/prefix/index.html"
    page = s3_client.get_object(Bucket=s3_bucket, Key="prefix/index.html")["Body"].read().decode()
    assert 'src="K1.png"' in page
    assert "kettle" in page


def write_json(path, document) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


def catalog(keys, *, thumbnails: bool = True) -> dict:
    """A catalog manifest of one image per key (nothing else need exist: the gallery reads only this)."""
    entries = {
        key: {
            "fingerprint": "f" * 64,
            "job_id": f"job-{key}",
            "written_at": "2026-12-02T09:00:00Z",
            "prompt": f"a photo of {key}",
            "parameters": {"aspect_ratio": "1:1"},
            "images": [
                {
                    "name": f"{key}.png",
                    "uri": f"file:///catalog/{key}.png",
                    "sha256": "ab" * 32,
                    "size": 100,
                    "format": "png",
                    "width": 1024,
                    "height": 1024,
                    "thumbnail": f"_thumbs/{key}.jpg" if thumbnails else None,
                }
            ],
        }
        for key in keys
    }
    return {"schema": "gptimage-manifest/1", "written_at": "2026-12-02T10:00:00Z", "entries": entries}


def report(new=(), changed=(), unchanged=0) -> dict:
    return {
        "schema": "gptimage-run/1",
        "run_id": "scheduled__2026-12-02",
        "written_at": "2026-12-02T10:00:00Z",
        "counts": {"new": len(new), "changed": len(changed), "unchanged": unchanged, "removed": 0, "failed": 0},
        "new": list(new),
        "changed": list(changed),
        "removed": [],
        "failed": [],
        "resolutions": {"1K": len(new) + len(changed)},
    }


class Cards(HTMLParser):
    """The cards, thumbnails and page links of a gallery page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.keys: list[str] = []
        self.marks: list[str | None] = []
        self.sources: list[str] = []
        self.lazy = 0
        self.links: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "figure":
            self.keys.append(values["data-key"])
            self.marks.append(values.get("class"))
        elif tag == "img":
            self.sources.append(values["src"])
            self.lazy += values.get("loading") == "lazy"
        elif tag == "a" and str(values.get("href", "")).startswith("index"):
            self.links.append(values["href"])


def pages_of(folder: Path) -> list[str]:
    return sorted((p.name for p in folder.glob("index*.html")), key=lambda n: (len(n), n))


def test_the_manifest_is_the_source_when_there_is_one(tmp_path):
    from airflow.sdk import ObjectStoragePath

    (tmp_path / "OLD.png").write_bytes(PNG)  # a sidecar the manifest does not list: not shown
    (tmp_path / "OLD.json").write_text(json.dumps(sidecar("OLD.png", "OLD", "old")))
    write_json(tmp_path / "_catalog" / "manifest.json", catalog(["SKU-2", "SKU-1", "SKU-3"]))
    write_json(tmp_path / "_catalog" / "runs" / "latest.json", report(new=["SKU-3"], changed=["SKU-2"], unchanged=1))
    uri, count = write_gallery(ObjectStoragePath(tmp_path.as_uri()), title="Catalog")
    assert (uri, count) == ((tmp_path / "index.html").as_uri(), 3)
    text = (tmp_path / "index.html").read_text()
    cards = Cards(text)
    assert cards.keys == ["SKU-3", "SKU-2", "SKU-1"]  # new, changed, then the rest
    assert cards.marks == ["new", "changed", None]
    assert cards.sources == ["_thumbs/SKU-3.jpg", "_thumbs/SKU-2.jpg", "_thumbs/SKU-1.jpg"]
    assert cards.lazy == 3
    assert 'href="SKU-3.png"' in text
    assert "Last run: 1 new, 1 changed, 1 unchanged, 0 removed, 0 failed" in text
    assert pages_of(tmp_path) == ["index.html"]


def test_sidecars_are_the_source_without_a_readable_manifest(tmp_path):
    from airflow.sdk import ObjectStoragePath

    (tmp_path / "A.png").write_bytes(PNG)
    (tmp_path / "A.json").write_text(json.dumps({**sidecar("A.png", "A", "first"), "thumbnail": "_thumbs/A.jpg"}))
    (tmp_path / "_catalog").mkdir()
    (tmp_path / "_catalog" / "manifest.json").write_text("{not json")
    write_json(tmp_path / "_catalog" / "runs" / "latest.json", report(changed=["A"]))
    _, count = write_gallery(ObjectStoragePath(tmp_path.as_uri()))
    cards = Cards((tmp_path / "index.html").read_text())
    assert count == 1
    assert (cards.keys, cards.marks, cards.sources) == (["A"], ["changed"], ["_thumbs/A.jpg"])


def test_pages_and_their_links_then_a_shorter_gallery_removes_stale_pages(tmp_path):
    from airflow.sdk import ObjectStoragePath

    folder = ObjectStoragePath(tmp_path.as_uri())
    keys = [f"K{i:03}" for i in range(45)]
    write_json(tmp_path / "_catalog" / "manifest.json", catalog(keys))
    assert write_gallery(folder, page_size=10) == ((tmp_path / "index.html").as_uri(), 45)
    assert pages_of(tmp_path) == ["index.html", "index-2.html", "index-3.html", "index-4.html", "index-5.html"]
    shown = [Cards((tmp_path / name).read_text()) for name in pages_of(tmp_path)]
    assert [len(page.keys) for page in shown] == [10, 10, 10, 10, 5]
    assert [k for page in shown for k in page.keys] == keys
    assert "index-2.html" in shown[0].links and "index.html" not in shown[0].links  # the current page: text
    assert {"index.html", "index-2.html", "index-4.html", "index-5.html"} <= set(shown[2].links)
    assert "Images 41-45 of 45 (page 5 of 5)" in (tmp_path / "index-5.html").read_text()

    write_json(tmp_path / "_catalog" / "manifest.json", catalog(keys[:15]))
    assert write_gallery(folder, page_size=10)[1] == 15
    assert pages_of(tmp_path) == ["index.html", "index-2.html"]
    assert Cards((tmp_path / "index-2.html").read_text()).keys == keys[10:15]


def test_an_empty_catalog_has_one_page(tmp_path):
    from airflow.sdk import ObjectStoragePath

    write_json(tmp_path / "_catalog" / "manifest.json", catalog([]))
    assert write_gallery(ObjectStoragePath(tmp_path.as_uri()))[1] == 0
    assert "No images yet." in (tmp_path / "index.html").read_text()


def test_ten_thousand_products_stay_usable(tmp_path):
    """10,000 manifest entries: 50 pages of at most 200 lazily loaded thumbnails, each page small."""
    from airflow.sdk import ObjectStoragePath

    keys = [f"SKU-{i:05}" for i in range(10_000)]
    write_json(tmp_path / "_catalog" / "manifest.json", catalog(keys))
    write_json(tmp_path / "_catalog" / "runs" / "latest.json", report(new=["SKU-09999"], changed=["SKU-05000"]))
    _, count = write_gallery(ObjectStoragePath(tmp_path.as_uri()))
    assert count == 10_000
    names = pages_of(tmp_path)
    assert len(names) == 50
    seen: list[str] = []
    for name in names:
        text = (tmp_path / name).read_text()
        cards = Cards(text)
        assert len(cards.keys) <= 200
        assert cards.lazy == len(cards.sources) == len(cards.keys)
        assert all(src.startswith("_thumbs/") for src in cards.sources)
        assert len(text.encode()) < 200 * 1024  # a page stays small, whatever the catalog's size
        assert len(cards.links) <= 2 * 11  # above and below: first, previous, 7 nearby, next, last
        seen += cards.keys
    assert sorted(seen) == keys and len(set(seen)) == 10_000
    assert seen[:2] == ["SKU-09999", "SKU-05000"]


def test_page_size_must_be_positive(tmp_path):
    from airflow.sdk import ObjectStoragePath

    with pytest.raises(ValueError, match="page_size"):
        write_gallery(ObjectStoragePath(tmp_path.as_uri()), page_size=0)


def test_paged_gallery_from_a_manifest_on_s3(s3_destination, s3_client, s3_bucket):
    keys = [f"S{i}" for i in range(5)]
    (s3_destination / "_catalog" / "manifest.json").write_text(json.dumps(catalog(keys)))
    (s3_destination / "_catalog" / "runs" / "latest.json").write_text(json.dumps(report(new=["S4"])))
    uri, count = write_gallery(s3_destination, page_size=2)
    assert (uri, count) == (f"s3://{s3_bucket}/prefix/index.html", 5)

    def page(key: str) -> str:
        return s3_client.get_object(Bucket=s3_bucket, Key=f"prefix/{key}")["Body"].read().decode()

    def listed() -> list[str]:
        contents = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="prefix/index")["Contents"]
        return sorted(o["Key"] for o in contents)

    assert listed() == ["prefix/index-2.html", "prefix/index-3.html", "prefix/index.html"]
    first = Cards(page("index.html"))
    assert (first.keys, first.marks[0], first.sources[0]) == (["S4", "S0"], "new", "_thumbs/S4.jpg")
    assert Cards(page("index-3.html")).keys == ["S3"]

    (s3_destination / "_catalog" / "manifest.json").write_text(json.dumps(catalog(keys[:2])))
    assert write_gallery(s3_destination, page_size=2)[1] == 2
    assert listed() == ["prefix/index.html"]
