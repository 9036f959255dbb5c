"""Which stored images a recorded result names: the pure lookup behind every plugin URL."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.ui.results import is_batch, recorded_images, safe_uri, sidecar_thumbnail

SHA = "a" * 64


def single(*outputs: dict) -> dict:
    return {"output_uris": [o["uri"] for o in outputs], "outputs": list(outputs), "result_urls": ["https://cdn/x"]}


def test_single_result_images_come_from_outputs_with_their_connection_type_and_digest():
    result = single(
        {"uri": "s3://b/p/sku-1.png", "conn_id": "aws_x", "content_type": "image/png", "size": 10, "sha256": SHA},
        {"uri": "s3://b/p/sku-2.jpg", "conn_id": "aws_x", "content_type": "image/jpeg", "size": 11, "sha256": "z"},
    )
    first, second = recorded_images(result)
    assert (first.image.uri, first.image.content_type, first.conn_id, first.size, first.sha256) == (
        "s3://b/p/sku-1.png",
        "image/png",
        "aws_x",
        10,
        SHA,
    )
    assert second.image.content_type == "image/jpeg"
    assert second.sha256 is None  # not a digest: no ETag made of it
    assert first.sidecar_uri == "s3://b/p/sku-1.json"
    assert first.name == "sku-1.png"


def test_output_uris_alone_are_read_when_outputs_are_missing():
    (found,) = recorded_images({"output_uris": ["file:///data/a.webp"]}, default_conn_id="c")
    assert (found.image.content_type, found.conn_id) == ("image/webp", "c")


def test_batch_items_are_numbered_in_order_with_the_default_connection():
    result = {
        "total": 3,
        "items": [
            {"key": "sku-1", "output_uris": ["s3://b/sku-1-1.png", "s3://b/sku-1-2.png"]},
            {"key": "sku-2", "output_uris": [], "state": "fail"},
            {"key": "sku-3", "output_uris": ["s3://b/sku-3.png"], "conn_id": "own"},
            "not an item",
        ],
    }
    assert is_batch(result)
    images = recorded_images(result, default_conn_id="aws_batch")
    assert [(i.key, i.name, i.conn_id) for i in images] == [
        ("sku-1", "sku-1-1.png", "aws_batch"),
        ("sku-1", "sku-1-2.png", "aws_batch"),
        ("sku-3", "sku-3.png", "own"),  # an item that records its connection keeps it
    ]


def test_thumbnails_pair_with_their_image_and_are_not_numbered():
    listed = recorded_images({"output_uris": ["s3://b/a.png", "s3://b/a.thumb.webp", "s3://b/c.png"]})
    assert [i.name for i in listed] == ["a.png", "c.png"]
    assert listed[0].thumbnail is not None
    assert (listed[0].thumbnail.uri, listed[0].thumbnail.content_type) == ("s3://b/a.thumb.webp", "image/webp")
    assert listed[1].thumbnail is None
    recorded = recorded_images(
        single(
            {"uri": "s3://b/a.png", "content_type": "image/png", "thumbnail_uri": "s3://b/small/a.jpg"},
            {"uri": "s3://b/b.png", "content_type": "image/png", "thumbnail": {"uri": "s3://b/b-t.png"}},
            {"uri": "s3://b/c.png", "content_type": "image/png"},
            {"uri": "s3://b/c.thumb.png", "content_type": "image/png"},
        )
    )
    assert [i.thumbnail.uri if i.thumbnail else None for i in recorded] == [
        "s3://b/small/a.jpg",
        "s3://b/b-t.png",
        "s3://b/c.thumb.png",
    ]


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",  # no image extension
        "file:///data/../etc/shadow.png",
        "file:///data/./a.png",
        "file://remote-host/data/a.png",
        "file:relative.png",
        "s3://bucket/../other/a.png",
        "s3://bucket/a.png?versionId=1",
        "s3://bucket/a.png#x",
        "s3://bucket/dir/",
        "https://cdn.example.com/a.png",
        "http://169.254.169.254/latest/meta-data.png",
        "ftp://host/a.png",
        "data:image/png;base64,AAAA",
        "javascript:alert(1)//.png",
        "/data/a.png",
        "s3://bucket/a\x00.png",
        "s3://bucket\\..\\a.png",
        "s3://bucket/a.svg",
        "s3://bucket/a.html",
    ],
)
def test_only_stored_images_under_destination_schemes_are_servable(uri):
    (found,) = recorded_images({"output_uris": [uri]}) or [None]
    assert found is None or not found.servable


def test_a_recorded_type_must_agree_with_the_file_name():
    (mismatch,) = recorded_images(single({"uri": "s3://b/a.png", "content_type": "text/html"}))
    assert not mismatch.servable
    (agreed,) = recorded_images(single({"uri": "s3://b/a.jpeg", "content_type": "image/jpeg; q=1"}))
    assert agreed.image.content_type == "image/jpeg"


@pytest.mark.parametrize("result", [None, "x", 3, [], {}, {"output_uris": "s3://b/a.png"}, {"items": "x"}])
def test_anything_else_names_no_image(result):
    assert recorded_images(result) == []


def test_safe_uri_accepts_what_the_provider_writes():
    for uri in ("file:///tmp/out/sku.png", "s3://bucket/prefix/sku-1.png", "gs://b/p/x.webp", "abfs://c/p/x.jpg"):
        assert safe_uri(uri) == uri


def test_a_sidecar_names_a_thumbnail_in_the_image_folder():
    (local,) = recorded_images({"output_uris": ["file:///data/catalog/SKU-1.png"]})
    found = sidecar_thumbnail(local, {"thumbnail": "_thumbs/SKU-1.jpg"})
    assert found is not None
    assert (found.uri, found.content_type) == ("file:///data/catalog/_thumbs/SKU-1.jpg", "image/jpeg")
    (remote,) = recorded_images({"output_uris": ["s3://b/catalog/SKU-2.png"]})
    assert sidecar_thumbnail(remote, {"thumbnail": "_thumbs/SKU-2.jpg"}).uri == "s3://b/catalog/_thumbs/SKU-2.jpg"


@pytest.mark.parametrize(
    "sidecar",
    [
        None,
        {},
        {"thumbnail": None},
        {"thumbnail": "../../etc/passwd.jpg"},
        {"thumbnail": "/etc/x.jpg"},
        {"thumbnail": "s3://other/x.jpg"},
        {"thumbnail": "file:///etc/x.jpg"},
        {"thumbnail": "_thumbs/.hidden.jpg"},
        {"thumbnail": "_thumbs/page.html"},
        {"thumbnail": "_thumbs/x.svg"},
        {"thumbnail": ["_thumbs/x.jpg"]},
    ],
)
def test_a_sidecar_cannot_name_anything_else(sidecar):
    (image,) = recorded_images({"output_uris": ["file:///data/catalog/SKU-1.png"]})
    assert sidecar_thumbnail(image, sidecar) is None
