"""The container structure of PNG, JPEG and WebP files, read from a seekable file without decoding anything.

Each function reads only headers (a few bytes per chunk or marker) and raises :class:`ImageRejected`, saying
what was found, when the structure is inconsistent or the file ends early. The pixel data is never read.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The whole IEND chunk: length 0, type, CRC. A PNG ends with exactly these 12 bytes.
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_START = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
#: Bytes of a file's headers that may be handed to Pillow (memory stays bounded by this).
HEADER_BYTES = 2 * 1024 * 1024
#: Chunks a PNG or WebP may have (a 200 MB PNG written with 8 KiB IDAT chunks has about 25,000).
MAX_CHUNKS = 200_000
_PNG_MAX_LENGTH = 2**31 - 1
_WEBP_IMAGE_CHUNKS = frozenset({b"VP8 ", b"VP8L", b"ANMF"})


class ImageRejected(ValueError):
    """A file is not an image this provider keeps; the message says what was found."""


def _read_at(reader: BinaryIO, offset: int, count: int) -> bytes:
    reader.seek(offset)
    return reader.read(count)


def png_header(reader: BinaryIO, size: int) -> tuple[bytes, int, int]:
    """Walk every chunk of a PNG (headers only) and return what Pillow needs to read its header.

    Checked: IHDR first, every chunk type made of letters, every chunk inside the file, image data
    (IDAT) present, the file ending with exactly one IEND chunk (nothing after it).

    :param reader: the file, seekable.
    :param size: its size in bytes.
    :return: ``(header, width, height)``: the signature, the chunks before the first IDAT (ancillary ones
        past :data:`HEADER_BYTES` left out) and that IDAT's 8-byte chunk header; the size IHDR declares.
    :raises ImageRejected: the structure is broken or truncated.
    """
    view, budget, position, seen_data = [PNG_SIGNATURE], HEADER_BYTES, len(PNG_SIGNATURE), False
    width = height = 0
    for count in range(MAX_CHUNKS):
        head = _read_at(reader, position, 8)
        if len(head) < 8:
            raise ImageRejected(f"the PNG is truncated: it ends at byte {size:,} without its IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        if not (kind.isascii() and kind.isalpha()):
            raise ImageRejected(f"the PNG is broken: bytes {kind!r} at offset {position + 4:,} are not a chunk type")
        end = position + 12 + length
        if length > _PNG_MAX_LENGTH or end > size:
            raise ImageRejected(
                f"the PNG is truncated: its {kind.decode()} chunk at offset {position:,} needs {length:,} bytes "
                f"but the file ends at byte {size:,}"
            )
        if count == 0:
            if kind != b"IHDR" or length != 13:
                raise ImageRejected(f"the PNG starts with a {kind.decode()} chunk, not its IHDR header")
            width, height = struct.unpack(">II", _read_at(reader, position + 8, 8))
        if kind == b"IEND":
            if not seen_data:
                raise ImageRejected("the PNG holds no image data (no IDAT chunk before IEND)")
            if end != size:
                raise ImageRejected(f"the PNG has {size - end:,} bytes after its end (IEND chunk)")
            if _read_at(reader, position, 12) != PNG_END:
                raise ImageRejected("the PNG's end (IEND chunk) is malformed")
            return b"".join(view), width, height
        if kind == b"IDAT":
            if not seen_data:
                view.append(head)
            seen_data = True
        elif not seen_data:
            if length <= budget:
                view.append(_read_at(reader, position, length + 12))
                budget -= length
            elif kind[:1].isupper():  # a critical chunk cannot be left out
                raise ImageRejected(f"the PNG's {kind.decode()} chunk before the image data is {length:,} bytes")
        position = end
    raise ImageRejected(f"the PNG has more than {MAX_CHUNKS:,} chunks")


def check_jpeg_end(reader: BinaryIO, size: int) -> None:
    """Refuse a JPEG that does not end with its end-of-image marker (a cut download ends elsewhere).

    :raises ImageRejected: naming the last bytes found instead.
    """
    tail = _read_at(reader, max(size - 2, 0), 2)
    if tail != JPEG_END:
        raise ImageRejected(f"the JPEG is truncated: it ends with bytes {tail.hex()} instead of the end marker ffd9")


def webp_size(reader: BinaryIO, size: int) -> tuple[int, int]:
    """Walk the RIFF chunks of a WebP (headers only) and return the size its first chunk declares.

    Checked: the RIFF size equals the file size, the chunks fill the file exactly, the first chunk is
    ``VP8X``, ``VP8 `` or ``VP8L`` with a valid header, and some chunk holds image data.

    :raises ImageRejected: the structure is broken or truncated.
    """
    head = _read_at(reader, 0, 12)
    declared = struct.unpack("<I", head[4:8])[0] + 8
    if declared != size:
        raise ImageRejected(f"the WebP's RIFF header says {declared:,} bytes but the file has {size:,}")
    position, dimensions, has_image = 12, None, False
    for _ in range(MAX_CHUNKS):
        if position == size:
            break
        chunk = _read_at(reader, position, 8)
        if len(chunk) < 8:
            raise ImageRejected(f"the WebP is truncated: a chunk header at offset {position:,} is cut")
        kind, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        end = position + 8 + length + (length & 1)
        if end > size:
            raise ImageRejected(
                f"the WebP is truncated: its {kind!r} chunk at offset {position:,} needs {length:,} bytes "
                f"but the file ends at byte {size:,}"
            )
        if dimensions is None:
            dimensions = _webp_first_chunk(kind, _read_at(reader, position + 8, min(length, 10)))
        has_image = has_image or kind in _WEBP_IMAGE_CHUNKS
        position = end
    else:
        raise ImageRejected(f"the WebP has more than {MAX_CHUNKS:,} chunks")
    if dimensions is None or not has_image:
        raise ImageRejected("the WebP holds no image data")
    return dimensions


def _webp_first_chunk(kind: bytes, data: bytes) -> tuple[int, int]:
    """Width and height from the first chunk of a WebP (VP8X canvas, VP8 key frame or VP8L header)."""
    if kind == b"VP8X" and len(data) >= 10:
        return int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1
    if kind == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a" and not data[0] & 1:
        width, height = struct.unpack("<HH", data[6:10])
        if width & 0x3FFF and height & 0x3FFF:
            return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = int.from_bytes(data[1:5], "little")
        if not bits >> 29:
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise ImageRejected(f"the WebP's first chunk {kind!r} is not a valid VP8X, VP8 or VP8L header")
