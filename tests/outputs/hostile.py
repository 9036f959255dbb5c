"""Bodies a hostile or broken result host sends: files that only look like images, made here byte by byte.

Real images are made with Pillow; the broken ones are cut, padded or patched from them.
"""

from __future__ import annotations

import io
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pillow_image(fmt: str, size: tuple[int, int] = (24, 16), **options: object) -> bytes:
    """A real image of ``size`` in ``fmt`` (``PNG``, ``JPEG``, ``WEBP``, ``GIF``...), made by Pillow."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (180, 40, 20)).save(out, fmt, **options)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` while its data holds a single pixel (a bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00"))
        + chunk(b"IEND", b"")
    )


def same_size_pngs() -> tuple[bytes, bytes]:
    """Two valid, different PNGs of exactly the same size (stored uncompressed): a racing writer's pair."""
    rows = [b"".join(b"\x00" + bytes([seed, 7, 9]) * 8 for _ in range(8)) for seed in (1, 2)]
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
    first, second = (
        PNG_SIGNATURE + header + chunk(b"IDAT", zlib.compress(row, 0)) + chunk(b"IEND", b"") for row in rows
    )
    assert len(first) == len(second) and first != second
    return first, second


def jpeg_with_late_scan(header_mib: int = 3) -> bytes:
    """A real JPEG with ``header_mib`` MiB of APP15 segments before its image data (a header too big to read)."""
    jpeg = pillow_image("JPEG")
    segment = b"\xff\xef" + struct.pack(">H", 65535) + bytes(65533)
    return jpeg[:2] + segment * (header_mib * 16 + 1) + jpeg[2:]


PNG_OK = pillow_image("PNG")
JPEG_OK = pillow_image("JPEG", size=(30, 20))
WEBP_OK = pillow_image("WEBP", size=(20, 30))
BOM_HTML = b"\xef\xbb\xbf<!DOCTYPE html><html><body>Welcome to our CDN</body></html>"
PNG_GARBAGE = PNG_SIGNATURE + b"this is not a chunk at all, just bytes after a signature" * 4
PNG_IHDR_ONLY = PNG_OK[:33]
PNG_CUT_IDAT = PNG_OK[: PNG_OK.index(b"IDAT") + 12]
PNG_TRAILING = PNG_OK + b"<html><script>alert(1)</script></html>"
JPEG_NO_EOI = JPEG_OK[:-2]
WEBP_LYING = WEBP_OK[:4] + struct.pack("<I", len(WEBP_OK) + 4096) + WEBP_OK[8:]
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>'
GIF = pillow_image("GIF")
AVIF_HEAD = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64)
PNG_BOMB = png_claiming(100_000, 100_000)
JPEG_LATE_SCAN = jpeg_with_late_scan()
