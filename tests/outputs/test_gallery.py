"""The gallery: built from the sidecars a folder holds, escaped, relative links, local and S3."""

from __future__ import annotations

import json

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
    assert 'src="x&quot;.png"' in page
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
