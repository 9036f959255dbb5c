"""Thumbnails: real images (made by Pillow and by the simulator's PNG maker) in, small JPEGs out."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from airflow_provider_gptimage.exceptions import GPTImageResultError
from airflow_provider_gptimage.outputs.thumbnails import (
    THUMBNAIL_MAX_SIDE,
    THUMBS_DIR,
    make_thumbnail,
    thumbnail_name,
)
from airflow_provider_gptimage.simulator.png import PNG_SIGNATURE, PngPlan, chunk


def encoded(image: Image.Image, fmt: str, **options) -> io.BytesIO:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    out.seek(0)
    return out


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sku-1.png", "_thumbs/sku-1.jpg"),
        ("SKU.2.webp", "_thumbs/SKU.2.jpg"),
        ("photo.jpg", "_thumbs/photo.jpg"),
        ("noext", "_thumbs/noext.jpg"),
        ("folder/sku.png", "_thumbs/sku.jpg"),
    ],
)
def test_thumbnail_name(name, expected):
    assert thumbnail_name(name) == expected
    assert expected.startswith(THUMBS_DIR + "/")


@pytest.mark.parametrize(
    ("size", "expected"),
    [((1024, 1024), (256, 256)), ((1536, 1024), (256, 171)), ((1024, 1536), (171, 256)), ((100, 60), (100, 60))],
)
def test_simulator_png_becomes_a_jpeg_within_bounds_aspect_kept(size, expected):
    source = io.BytesIO(PngPlan(size[0], size[1], seed="a red kettle").to_bytes())
    source.seek(37)
    data = make_thumbnail(source)
    assert source.tell() == 0
    thumb = opened(data)
    assert thumb.format == "JPEG"
    assert thumb.mode == "RGB"
    assert thumb.size == expected
    assert max(thumb.size) <= THUMBNAIL_MAX_SIDE


def test_simulator_colours_survive():
    plan = PngPlan(64, 64, seed="a blue teapot")
    original = opened(plan.to_bytes()).convert("RGB").getpixel((0, 0))
    thumb = opened(make_thumbnail(io.BytesIO(plan.to_bytes()), max_side=32))
    assert thumb.size == (32, 32)
    assert all(abs(a - b) <= 12 for a, b in zip(thumb.getpixel((0, 0)), original, strict=True))


def test_large_jpeg_is_drafted_and_scaled():
    source = encoded(Image.new("RGB", (4096, 2304), (10, 200, 30)), "JPEG", quality=90)
    thumb = opened(make_thumbnail(source, max_side=128))
    assert thumb.size == (128, 72)
    assert all(abs(a - b) <= 12 for a, b in zip(thumb.getpixel((64, 36)), (10, 200, 30), strict=True))


def test_webp_is_read():
    source = encoded(Image.new("RGB", (800, 400), (0, 0, 255)), "WEBP")
    assert opened(make_thumbnail(source)).size == (256, 128)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_laid_on_white(mode):
    image = Image.new("RGBA", (300, 300), (255, 0, 0, 0))  # fully transparent red
    if mode == "LA":
        image = Image.new("LA", (300, 300), (0, 0))
    elif mode == "P":
        image = image.convert("P")
        image.info["transparency"] = 0
    thumb = opened(make_thumbnail(encoded(image, "PNG")))
    assert thumb.mode == "RGB"
    assert all(channel >= 245 for channel in thumb.getpixel((150, 150)))


def test_grayscale_and_palette_become_rgb():
    for image in (Image.new("L", (50, 20), 128), Image.new("RGB", (50, 20), (1, 2, 3)).convert("P")):
        thumb = opened(make_thumbnail(encoded(image, "PNG")))
        assert (thumb.mode, thumb.size) == ("RGB", (50, 20))


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` pixels (its data is a single empty row)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("size", [(8_500, 8_500), (10_000, 10_000), (200_000, 200_000), (2**31 - 1, 2**31 - 1)])
def test_a_decompression_bomb_is_a_typed_error_not_a_hang(size):
    source = io.BytesIO(bomb_png(*size))
    with pytest.raises(GPTImageResultError, match="pixels"):
        make_thumbnail(source)
    assert source.tell() == 0


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "not a PNG, JPEG or WebP"),
        (b"<html>not an image</html>", "not a PNG, JPEG or WebP"),
        (b"GIF89a" + b"\x00" * 40, "not a PNG, JPEG or WebP"),
    ],
)
def test_what_pillow_cannot_decode_is_a_typed_error(data, match):
    with pytest.raises(GPTImageResultError, match=match):
        make_thumbnail(io.BytesIO(data))


def test_a_truncated_image_is_a_typed_error():
    whole = encoded(Image.effect_noise((512, 512), 64).convert("RGB"), "PNG").getvalue()
    source = io.BytesIO(whole[: len(whole) // 2])
    with pytest.raises(GPTImageResultError, match="could not decode"):
        make_thumbnail(source)
    assert source.tell() == 0


def test_max_side_must_be_positive():
    with pytest.raises(ValueError, match="max_side"):
        make_thumbnail(io.BytesIO(PngPlan(4, 4, seed="x").to_bytes()), max_side=0)


def test_a_real_file_on_disk(tmp_path):
    path = tmp_path / "sku.png"
    path.write_bytes(PngPlan(640, 480, seed="lamp").to_bytes())
    with path.open("rb") as handle:
        thumb = opened(make_thumbnail(handle))
        assert handle.tell() == 0
    assert thumb.size == (256, 192)
