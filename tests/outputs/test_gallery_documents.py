"""Reading the gallery's documents: sidecars, the catalog manifest and the run report, malformed parts skipped."""

from __future__ import annotations

import copy

import pytest

from airflow_provider_gptimage.outputs.gallery_documents import (
    entries_from_manifest,
    entry_from_sidecar,
    relative_url,
    run_report,
)


def manifest_image(name: str, thumbnail: str | None = None) -> dict:
    return {
        "name": name,
        "uri": f"file:///catalog/{name}",
        "sha256": "ab" * 32,
        "size": 1234,
        "format": "png",
        "width": 1024,
        "height": 1024,
        "thumbnail": thumbnail,
    }


def manifest(entries: dict) -> dict:
    return {"schema": "gptimage-manifest/1", "written_at": "2026-12-02T10:00:00Z", "entries": entries}


def manifest_entry(key: str, *images: dict, prompt: str = "a kettle") -> dict:
    return {
        "fingerprint": "f" * 64,
        "job_id": f"job-{key}",
        "written_at": "2026-12-02T09:00:00Z",
        "prompt": prompt,
        "parameters": {"aspect_ratio": "1:1", "resolution": "1K"},
        "images": list(images),
    }


DOCUMENT = manifest(
    {
        "SKU-1": manifest_entry("SKU-1", manifest_image("SKU-1.png", "_thumbs/SKU-1.jpg")),
        "SKU-2": manifest_entry("SKU-2", manifest_image("SKU-2-1.png"), manifest_image("SKU-2-2.png")),
    }
)


def test_one_card_per_image_with_its_key_and_thumbnail():
    cards = entries_from_manifest(DOCUMENT)
    assert [(c.key, c.name, c.thumbnail) for c in cards] == [
        ("SKU-1", "SKU-1.png", "_thumbs/SKU-1.jpg"),
        ("SKU-2", "SKU-2-1.png", None),
        ("SKU-2", "SKU-2-2.png", None),
    ]
    first = cards[0]
    assert (first.prompt, first.job_id, first.size, first.written_at) == (
        "a kettle",
        "job-SKU-1",
        1234,
        "2026-12-02T09:00:00Z",
    )
    assert first.parameters == {"aspect_ratio": "1:1", "resolution": "1K"}
    assert first.mark is None and first.href is None


@pytest.mark.parametrize(
    "document",
    [
        {},
        [],
        "manifest",
        None,
        {"schema": "gptimage-manifest/2", "entries": DOCUMENT["entries"]},
        {"schema": "gptimage-output/1", "entries": DOCUMENT["entries"]},
        {"schema": "gptimage-manifest/1"},
        {"schema": "gptimage-manifest/1", "entries": ["SKU-1"]},
        {"schema": "gptimage-manifest/1", "entries": None},
    ],
)
def test_what_is_not_a_manifest_gives_no_card(document):
    assert entries_from_manifest(document) == []


def test_malformed_parts_are_skipped_never_raised():
    document = copy.deepcopy(DOCUMENT)
    entries = document["entries"]
    entries["NOT-A-MAPPING"] = ["x"]
    entries[""] = manifest_entry("", manifest_image("empty-key.png"))
    entries["NO-IMAGES"] = {"prompt": "p"}
    entries["IMAGES-NOT-A-LIST"] = {"images": {"name": "x.png"}}
    entries["BAD"] = {
        "prompt": 7,
        "job_id": None,
        "parameters": "1:1",
        "written_at": ["x"],
        "images": [
            None,
            "x.png",
            {"name": None},
            {"name": "../etc/passwd"},
            {"name": "javascript:alert(1)"},
            {"name": ".hidden.png"},
            {"name": "sub/dir.png"},
            {"name": "ok.png", "size": "big", "thumbnail": "../../x.jpg"},
            {"name": "ok2.png", "size": True, "thumbnail": "https://evil.example/x.jpg"},
            {"name": "ok3.png", "size": -5, "thumbnail": 42},
        ],
    }
    cards = entries_from_manifest(document)
    bad = [c for c in cards if c.key == "BAD"]
    assert [c.name for c in bad] == ["ok.png", "ok2.png", "ok3.png"]
    assert all(
        (c.size, c.thumbnail, c.prompt, c.job_id, c.parameters, c.written_at) == (0, None, "", "", {}, "") for c in bad
    )
    assert {c.key for c in cards} == {"SKU-1", "SKU-2", "BAD"}


def test_relative_urls_are_plain_paths_only():
    assert relative_url("_thumbs/SKU-1.jpg") == "_thumbs/SKU-1.jpg"
    assert relative_url("a+b=c@d,e.png") == "a+b=c@d,e.png"
    assert relative_url("caf\u00e9.jpg") == "caf%C3%A9.jpg"
    for bad in (
        "",
        "/abs.jpg",
        "a//b.jpg",
        "../x.jpg",
        "./x.jpg",
        "x/../y.jpg",
        "s3://b/x.jpg",
        "a b.jpg",
        "x#y",
        "x?y",
        "\\x",
        None,
        3,
    ):
        assert relative_url(bad) is None, bad


def sidecar(**extra) -> dict:
    return {"schema": "gptimage-output/1", "name": "K.png", "filename": "K", "job_id": "j", "size": 9, **extra}


def test_a_sidecar_names_its_thumbnail():
    assert entry_from_sidecar(sidecar(thumbnail="_thumbs/K.jpg")).thumbnail == "_thumbs/K.jpg"
    assert entry_from_sidecar(sidecar()).thumbnail is None
    assert entry_from_sidecar(sidecar(thumbnail="../K.jpg")).thumbnail is None


def test_a_malformed_sidecar_does_not_raise():
    entry = entry_from_sidecar(sidecar(size="nine", parameters=["x"], prompt=None, written_at=5))
    assert entry is not None
    assert (entry.size, entry.parameters, entry.prompt, entry.written_at) == (0, {}, "", "")
    assert entry_from_sidecar(sidecar(name=None)) is None
    assert entry_from_sidecar({"schema": "other"}) is None
    assert entry_from_sidecar(sidecar(filename=None)).key == "j"


REPORT = {
    "schema": "gptimage-run/1",
    "run_id": "scheduled__2026-12-02",
    "written_at": "2026-12-02T10:00:00Z",
    "counts": {"new": 1, "changed": 1, "unchanged": 18, "removed": 0, "failed": 0},
    "new": ["SKU-1"],
    "changed": ["SKU-2"],
    "removed": [],
    "failed": [],
    "resolutions": {"1K": 2},
}


def test_the_run_report_marks_and_counts():
    report = run_report(REPORT)
    assert report is not None
    assert (report.mark("SKU-1"), report.mark("SKU-2"), report.mark("SKU-3")) == ("new", "changed", None)
    line = report.line()
    assert line.startswith("Last run: 1 new, 1 changed, 18 unchanged, 0 removed, 0 failed")
    assert "1K 2" in line
    assert "run scheduled__2026-12-02" in line


@pytest.mark.parametrize("document", [None, {}, {"schema": "gptimage-run/2"}, [REPORT], "x"])
def test_what_is_not_a_run_report_is_none(document):
    assert run_report(document) is None


def test_a_malformed_run_report_is_read_as_far_as_it_goes():
    report = run_report(
        {
            "schema": "gptimage-run/1",
            "counts": {"new": "1", "changed": 2, "other": 3, "failed": -1},
            "new": "SKU-1",
            "changed": ["SKU-2", 3],
            "resolutions": ["1K"],
        }
    )
    assert report is not None
    assert report.counts == {"changed": 2}
    assert report.new == frozenset() and report.changed == frozenset({"SKU-2"})
    assert report.line() == "Last run: 2 changed"
