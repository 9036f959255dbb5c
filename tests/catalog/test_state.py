"""What a catalog keeps besides its images: manifest, commits, journal; every one tolerant and rebuildable."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_gptimage.catalog import journal
from airflow_provider_gptimage.catalog.records import CatalogEntry, ImageEntry, JournalEntry, parse_manifest
from airflow_provider_gptimage.catalog.state import load_state, read_json, record_commit

FP = "a" * 64


@pytest.fixture
def root(tmp_path: Path) -> ObjectStoragePath:
    return ObjectStoragePath(tmp_path.as_uri())


def sidecar(tmp_path: Path, key: str, *, index: int = 1, count: int = 1, fingerprint: str = FP) -> None:
    name = f"{key}.png" if count == 1 else f"{key}-{index}.png"
    (tmp_path / name).write_bytes(b"image")
    document = {"schema": "gptimage-output/1", "name": name, "uri": (tmp_path / name).as_uri(), "filename": key,
                "index": index, "count": count, "job_id": f"job-{key}", "fingerprint": fingerprint,
                "prompt": f"photo of {key}", "parameters": {}, "size": 5, "sha256": "00"}  # fmt: skip
    (tmp_path / name).with_suffix(".json").write_text(json.dumps(document))


def entry(key: str, fingerprint: str = FP) -> CatalogEntry:
    image = ImageEntry(name=f"{key}.png", uri=f"file:///x/{key}.png")
    return CatalogEntry(key, fingerprint, "job", "2026-12-02T00:00:00Z", "p", {}, (image,))


def test_a_missing_manifest_is_rebuilt_from_complete_sets_of_sidecars_only(root, tmp_path):
    sidecar(tmp_path, "A")
    sidecar(tmp_path, "B", index=1, count=2)
    sidecar(tmp_path, "B", index=2, count=2)
    sidecar(tmp_path, "C", index=1, count=2)  # its second image never arrived
    sidecar(tmp_path, "D")
    (tmp_path / "D.png").unlink()  # a sidecar whose image is gone
    (tmp_path / "notes.json").write_text('{"anything": 1}')
    state = load_state(root)
    assert state.rebuilt
    assert sorted(state.entries) == ["A", "B"]
    assert [image.name for image in state.entries["B"].images] == ["B-1.png", "B-2.png"]


def test_commits_are_folded_into_the_manifest_then_dropped(root, tmp_path):
    sidecar(tmp_path, "A")
    load_state(root).save()
    record_commit(root, entry("N", "b" * 64))
    state = load_state(root)
    assert not state.rebuilt and state.entries["N"].fingerprint == "b" * 64
    state.save()
    assert not list((tmp_path / "_catalog" / "commits").iterdir())
    again = load_state(root)
    assert sorted(again.entries) == ["A", "N"] and not again.folded


@pytest.mark.parametrize(
    "document",
    [b"not json", b"[]", b'{"schema": "gptimage-manifest/9", "entries": {}}', b'{"schema": "gptimage-manifest/1"}'],
)
def test_an_unreadable_manifest_counts_as_missing(root, tmp_path, document):
    sidecar(tmp_path, "A")
    (tmp_path / "_catalog").mkdir()
    (tmp_path / "_catalog" / "manifest.json").write_bytes(document)
    state = load_state(root)
    assert state.rebuilt and sorted(state.entries) == ["A"]


def test_malformed_manifest_entries_are_skipped():
    document = {"schema": "gptimage-manifest/1", "entries": {"ok": entry("ok").to_primitives(), "bad": {"images": 3},
                "empty": {"images": []}, "junk": "x"}}  # fmt: skip
    assert list(parse_manifest(document) or {}) == ["ok"]


def test_the_journal_lists_in_flight_requests_and_forgets_old_or_foreign_entries(root, tmp_path):
    journal.record_job(root, JournalEntry(FP, "A", "job-1", time.time()))
    assert load_state(root).in_flight == {FP}
    assert journal.find_job(root, FP).job_id == "job-1"  # type: ignore[union-attr]
    journal.end_job(root, FP, "job-other")  # another job's end does not end this one
    assert journal.find_job(root, FP) is not None
    assert journal.find_job(root, FP, now=time.time() + journal.MAX_AGE_SECONDS + 1) is None  # too old: dropped
    assert not (tmp_path / "_catalog" / "journal" / f"{FP}.json").exists()
    (tmp_path / "_catalog" / "journal" / f"{FP}.json").write_text('{"schema": "gptimage-journal/1", "job_id": 3}')
    assert journal.find_job(root, FP) is None
    with pytest.raises(ValueError, match="not a fingerprint"):
        journal.find_job(root, "../../etc/passwd")


def test_on_s3_the_manifest_is_read_and_empty_or_broken_objects_count_as_missing(s3_destination, s3_client):
    bucket, prefix = s3_destination.path.split("/", 1)
    prefix = prefix.rstrip("/")
    for key in ("A", "B"):
        uri = f"s3://{bucket}/{prefix}/{key}.png"
        document = {"schema": "gptimage-output/1", "name": f"{key}.png", "uri": uri, "filename": key, "index": 1,
                    "count": 1, "fingerprint": FP, "prompt": "p", "parameters": {}}  # fmt: skip
        s3_client.put_object(Bucket=bucket, Key=f"{prefix}/{key}.png", Body=b"image")
        s3_client.put_object(Bucket=bucket, Key=f"{prefix}/{key}.json", Body=json.dumps(document).encode())
    for body in (b"", b"not json"):  # an empty object has no byte range: it still reads as no manifest
        s3_client.put_object(Bucket=bucket, Key=f"{prefix}/_catalog/manifest.json", Body=body)
        state = load_state(s3_destination)
        assert state.rebuilt and sorted(state.entries) == ["A", "B"]
    state.save()
    again = load_state(s3_destination)
    assert not again.rebuilt and sorted(again.entries) == ["A", "B"]
    assert read_json(s3_destination / "missing.json") is None
    assert read_json(s3_destination / "A.json", max_bytes=10) is None  # too large


def test_a_tampered_manifest_key_never_becomes_a_path_to_delete(root, tmp_path):
    from airflow_provider_gptimage.catalog.records import manifest_document
    from airflow_provider_gptimage.catalog.run import close_run

    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "victim.json").write_text(json.dumps({"schema": "gptimage-output/1", "name": "victim.png", "count": 1}))
    (outside / "victim.png").write_bytes(b"keep me")
    (tmp_path / "_catalog").mkdir()
    evil = f"../{outside.name}/victim"
    (tmp_path / "_catalog" / "manifest.json").write_text(json.dumps(manifest_document({evil: entry(evil)})))
    planned = {"schema": "gptimage-plan/1", "removed": [evil], "counts": {}}
    report = close_run(root, planned, run_id="r", remove_missing=True)
    assert report["archived"] == []
    assert (outside / "victim.png").read_bytes() == b"keep me" and (outside / "victim.json").exists()


def test_a_forced_key_counts_as_made_only_once_a_new_job_replaced_its_image(root, tmp_path, caplog):
    from airflow_provider_gptimage.catalog.run import close_run, plan_run

    sidecar(tmp_path, "A")
    sidecar(tmp_path, "B")
    with caplog.at_level("WARNING", logger="airflow_provider_gptimage.catalog.run"):
        planned = plan_run(root, [("A", FP), ("B", FP)], force=frozenset({"B", "typo"}))
    assert "force names 1 key(s) not in tonight's input, ignored: typo" in caplog.text
    assert (planned.plan.changed, planned.plan.unchanged) == (("B",), ("A",))
    primitives = planned.to_primitives()
    assert primitives["replacing"] == {"B": "job-B"}  # same request: only a new job tells B was made again

    report = close_run(root, primitives, run_id="no-new-job")
    assert report["failed"] == ["B"]  # its generate task never replaced the image
    record_commit(root, entry("B"))  # a new job ("job") committed B's new image
    report = close_run(root, primitives, run_id="new-job")
    assert report["failed"] == [] and report["counts"]["changed"] == 1
