"""Reading recorded images and sidecars through ObjectStoragePath: bounds and magic bytes (local files)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage.ui import storage
from airflow_provider_gptimage.ui.results import StoredFile, StoredImage

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2000  # spans several chunks
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100


def png_file(tmp_path, name="a.png", data=PNG) -> StoredFile:
    path = tmp_path / name
    path.write_bytes(data)
    return StoredFile(path.as_uri(), "image/png" if name.endswith(".png") else "image/jpeg")


def test_an_image_streams_whole_in_chunks(tmp_path):
    opened = storage.open_image(png_file(tmp_path), None)
    chunks = list(opened.chunks)
    assert (opened.content_type, opened.size) == ("image/png", len(PNG))
    assert b"".join(chunks) == PNG
    assert len(chunks) > 1
    assert max(len(c) for c in chunks) <= storage.CHUNK_BYTES


def test_too_large_is_refused_before_reading(tmp_path):
    with pytest.raises(storage.Refused) as refused:
        storage.open_image(png_file(tmp_path), None, max_bytes=len(PNG) - 1)
    assert refused.value.status == 413


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.png", b"<!DOCTYPE html><script>alert(1)</script>"),  # markup named .png
        ("a.png", JPEG),  # an image, but not the recorded type
        ("a.png", b""),
        ("b.jpg", PNG),
    ],
)
def test_a_file_that_is_not_its_recorded_image_type_is_refused(tmp_path, name, data):
    with pytest.raises(storage.Refused) as refused:
        storage.open_image(png_file(tmp_path, name, data), None)
    assert refused.value.status == 404


def test_missing_files_and_folders_are_refused(tmp_path):
    (tmp_path / "dir.png").mkdir()
    for uri in ((tmp_path / "gone.png").as_uri(), (tmp_path / "dir.png").as_uri()):
        with pytest.raises(storage.Refused) as refused:
            storage.open_image(StoredFile(uri, "image/png"), None)
        assert refused.value.status == 404
    with pytest.raises(storage.Refused):
        storage.open_image(StoredFile((tmp_path / "x").as_uri(), None), None)  # not servable at all


def test_only_the_formats_the_provider_writes_are_recognised():
    assert storage.magic_type(JPEG) == "image/jpeg"
    assert storage.magic_type(b"\x00\x00\x00\x1cftypavif" + b"\x00" * 8) is None  # never written
    assert storage.magic_type(b"GIF89a" + b"\x00" * 10) is None
    assert storage.magic_type(b"<svg") is None


def test_a_sidecar_is_read_only_when_it_describes_its_image(tmp_path):
    image = StoredImage(png_file(tmp_path, "sku.png"))
    sidecar = tmp_path / "sku.json"
    assert storage.read_sidecar(image) is None  # missing
    sidecar.write_text(json.dumps({"schema": "gptimage-output/1", "name": "other.png"}))
    assert storage.read_sidecar(image) is None  # another image's
    sidecar.write_text(json.dumps({"schema": "gptimage-output/1", "name": "sku.png", "prompt": "p"}))
    assert storage.read_sidecar(image)["prompt"] == "p"
    sidecar.write_text(json.dumps({"schema": "gptimage-output/1", "name": "sku.png", "pad": "x" * 300_000}))
    assert storage.read_sidecar(image) is None  # larger than MAX_SIDECAR_BYTES
    sidecar.write_text("{not json")
    assert storage.read_sidecar(image) is None
