"""Which image a downloaded file is: identified by its own header, never by ``Content-Type``, never decoded.

Only the raster formats the API produces are kept: PNG, JPEG and WebP. A file is identified by its magic
bytes, then its container is walked (:mod:`~airflow_provider_gptimage.outputs.containers`: truncation,
inconsistent sizes, bytes after the end), then the header is parsed:

* PNG and JPEG by Pillow's ``Image.open``, which reads the header chunks or markers and stops at the image
  data (Pillow gets at most :data:`~airflow_provider_gptimage.outputs.containers.HEADER_BYTES` of header,
  so memory stays bounded whatever the file holds before its pixels);
* WebP from its ``VP8X``/``VP8``/``VP8L`` header here, because Pillow's WebP plugin hands the whole file to
  libwebp (memory as large as the image).

A header claiming more than :data:`MAX_PIXELS` pixels is refused (a decompression bomb for whatever reads
the image next).
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from airflow_provider_gptimage.outputs.containers import (
    HEADER_BYTES,
    JPEG_START,
    PNG_SIGNATURE,
    ImageRejected,
    check_jpeg_end,
    png_header,
    webp_size,
)
from airflow_provider_gptimage.protocol import excerpt

#: The largest image kept, in pixels (8192 x 8192; a 4K image of the API has about 16.8 million).
MAX_PIXELS = 8192 * 8192
#: Bytes of a file's start needed to recognise its format (:func:`sniff`).
HEAD_BYTES = 16
#: Content type and file extension of each format kept.
FORMATS = {"png": ("image/png", "png"), "jpeg": ("image/jpeg", "jpg"), "webp": ("image/webp", "webp")}
_BOM = b"\xef\xbb\xbf"
_OTHER_IMAGES = (
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x00\x00\x01\x00", "an ICO image"),
)


@dataclass(frozen=True)
class ImageInfo:
    """What a file was identified as.

    :param format: ``png``, ``jpeg`` or ``webp``.
    :param width: pixels, as the header declares.
    :param height: pixels, as the header declares.
    """

    format: str
    width: int
    height: int

    @property
    def content_type(self) -> str:
        """``image/png``, ``image/jpeg`` or ``image/webp``."""
        return FORMATS[self.format][0]

    @property
    def extension(self) -> str:
        """``png``, ``jpg`` or ``webp``: the extension of the file's name."""
        return FORMATS[self.format][1]


def sniff(head: bytes) -> str | None:
    """Return ``png``, ``jpeg`` or ``webp`` when the first bytes are that format's magic, else ``None``.

    :param head: the first :data:`HEAD_BYTES` bytes (or fewer, for a tiny file).
    """
    if head.startswith(PNG_SIGNATURE):
        return "png"
    if head.startswith(JPEG_START):
        return "jpeg"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return None


def describe(head: bytes) -> str:
    """Say in a few words what a file that is not a kept image starts like (for error messages)."""
    if head[len(_BOM) :].lstrip().startswith(b"<") or head.lstrip().startswith(b"<"):
        bom = " after a UTF-8 byte-order mark" if head.startswith(_BOM) else ""
        return f"markup (HTML, XML or SVG){bom}"
    for magic, name in _OTHER_IMAGES:
        if head.startswith(magic):
            return name
    if head[4:12] in (b"ftypavif", b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "an AVIF/HEIF image"
    if head.startswith(b"RIFF"):
        return f"a RIFF {head[8:12]!r} file"
    if not head:
        return "nothing (0 bytes)"
    text = re.sub(rb"[^\x20-\x7e]", b".", head[:12]).decode()
    return f"bytes {head[:12].hex(' ')} ({text!r})"


def identify(reader: BinaryIO, size: int) -> ImageInfo:
    """Identify a whole downloaded file by its own header; read a few header bytes, decode nothing.

    :param reader: the file, readable and seekable (a temporary file or spool).
    :param size: its size in bytes.
    :raises ImageRejected: not PNG, JPEG or WebP, or a header that is inconsistent, truncated or too big.
    """
    reader.seek(0)
    head = reader.read(HEAD_BYTES)
    kind = sniff(head)
    if kind is None:
        raise ImageRejected(f"it is {describe(head)}, not a PNG, JPEG or WebP image")
    if kind == "png":
        header, width, height = png_header(reader, size)
        _check_pixels("PNG", width, height)
        width, height = _pillow_size(header, "PNG")
    elif kind == "jpeg":
        check_jpeg_end(reader, size)
        reader.seek(0)
        width, height = _pillow_size(reader.read(HEADER_BYTES), "JPEG", cut=size > HEADER_BYTES)
    else:
        width, height = webp_size(reader, size)
    _check_pixels(kind.upper(), width, height)
    return ImageInfo(kind, width, height)


def pixel_problem(width: int, height: int) -> str | None:
    """What is wrong with an image's declared size: empty, or more than :data:`MAX_PIXELS` (a bomb)."""
    if width < 1 or height < 1:
        return f"declares an empty image ({width} x {height} pixels)"
    if width * height > MAX_PIXELS:
        return (
            f"claims {width:,} x {height:,} pixels, over the limit of {MAX_PIXELS:,} "
            "(a decompression bomb, or not an image of this API)"
        )
    return None


def _check_pixels(kind: str, width: int, height: int) -> None:
    problem = pixel_problem(width, height)
    if problem is not None:
        raise ImageRejected(f"its {kind} header {problem}")


def _pillow_size(header: bytes, kind: str, *, cut: bool = False) -> tuple[int, int]:
    """Let Pillow parse a header (no pixel data is decoded) and return the size it declares.

    :param cut: ``header`` is the file's first :data:`HEADER_BYTES`, not all of it.
    """
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(header), formats=[kind]) as image:
                if not image.tile:
                    raise ImageRejected(f"its {kind} header ends before the image data")
                return image.size
    except Exception as exc:  # Pillow raises SyntaxError, OSError, struct.error... for broken headers
        raise _rejection(exc, kind, cut) from None


def _rejection(exc: Exception, kind: str, cut: bool) -> ImageRejected:
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, Image.DecompressionBombError):
        return ImageRejected(f"its {kind} header claims more than {MAX_PIXELS:,} pixels")
    if cut:
        return ImageRejected(
            f"its {kind} header is broken or does not reach the image data within its first {HEADER_BYTES:,} bytes"
        )
    if isinstance(exc, ImageRejected):
        return exc
    if isinstance(exc, UnidentifiedImageError):
        return ImageRejected(f"its {kind} header is broken (Pillow cannot read it)")
    return ImageRejected(f"its {kind} header is broken (Pillow: {excerpt(str(exc))[:100] or type(exc).__name__})")
