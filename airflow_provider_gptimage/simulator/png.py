"""Pure-Python PNG encoding for the simulator's result images, streamable and cheap.

Images are a vertical two-colour gradient derived from a seed string (the prompt), so
different prompts give visibly different images. An optional *padding* chunk (``paDd``: an
ancillary, private, safe-to-copy chunk that every decoder ignores) makes the file as large as a
test needs; it is generated block by block with an incremental CRC, so a 100 MB image never
sits in memory.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Chunk type of the padding chunk: lowercase 1st letter = ancillary (ignorable), lowercase 2nd =
#: private, uppercase 3rd = reserved bit clear, lowercase 4th = safe to copy.
PADDING_CHUNK_TYPE = b"paDd"
#: The PNG specification caps one chunk's data length at 2**31 - 1 bytes.
MAX_CHUNK_DATA = 2**31 - 1
_ASPECT_RE = re.compile(r"^([1-9][0-9]{0,4}):([1-9][0-9]{0,4})$")


def parse_aspect_ratio(value: str | None) -> tuple[int, int] | None:
    """Parse an ``aspect_ratio`` value into ``(width, height)`` ratio terms.

    :param value: ``None`` or ``"auto"`` (both mean 1:1) or ``"W:H"`` with positive integers.
    :return: the ratio terms, or ``None`` when the value is not a valid aspect ratio.
    """
    if value is None or value == "auto":
        return (1, 1)
    match = _ASPECT_RE.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def image_size(aspect_ratio: str | None, long_side: int) -> tuple[int, int]:
    """Pixel size of an image with the given aspect ratio and longest side.

    :param aspect_ratio: as accepted by :func:`parse_aspect_ratio`; invalid values mean 1:1.
    :param long_side: length of the longer side in pixels.
    :return: ``(width, height)``, each at least 1.
    """
    ratio_w, ratio_h = parse_aspect_ratio(aspect_ratio) or (1, 1)
    if ratio_w >= ratio_h:
        return long_side, max(1, round(long_side * ratio_h / ratio_w))
    return max(1, round(long_side * ratio_w / ratio_h)), long_side


def chunk(chunk_type: bytes, data: bytes) -> bytes:
    """Encode one complete PNG chunk (length, type, data, CRC).

    :param chunk_type: the four-byte chunk type.
    :param data: the chunk data.
    """
    crc = zlib.crc32(data, zlib.crc32(chunk_type))
    return struct.pack(">I", len(data)) + chunk_type + data + struct.pack(">I", crc)


def _colours(seed: str) -> tuple[bytes, bytes]:
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return digest[0:3], digest[3:6]


@functools.lru_cache(maxsize=64)
def _encoded(width: int, height: int, seed: str) -> tuple[bytes, bytes]:
    """Return ``(signature + IHDR, IDAT + IEND)`` for a gradient image; compressed row by row."""
    top, bottom = _colours(seed)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    compressor = zlib.compressobj(6)
    parts: list[bytes] = []
    for y in range(height):
        t = y / (height - 1) if height > 1 else 0.0
        pixel = bytes(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        parts.append(compressor.compress(b"\x00" + pixel * width))
    parts.append(compressor.flush())
    head = PNG_SIGNATURE + chunk(b"IHDR", ihdr)
    return head, chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


@dataclass(frozen=True)
class PngPlan:
    """A PNG file described well enough to know its size up front and stream it in blocks.

    :param width: image width in pixels.
    :param height: image height in pixels.
    :param seed: string the colours derive from (the prompt plus the image number).
    :param padding_bytes: data bytes of ignorable ``paDd`` padding placed between IHDR and IDAT.
    """

    width: int
    height: int
    seed: str
    padding_bytes: int = 0

    @property
    def _padding_chunks(self) -> list[int]:
        sizes: list[int] = []
        remaining = self.padding_bytes
        while remaining > 0:
            sizes.append(min(remaining, MAX_CHUNK_DATA))
            remaining -= sizes[-1]
        return sizes

    @property
    def size(self) -> int:
        """Total file size in bytes (what ``Content-Length`` announces)."""
        head, tail = _encoded(self.width, self.height, self.seed)
        return len(head) + len(tail) + sum(12 + n for n in self._padding_chunks)

    def iter_bytes(self, block_size: int = 1 << 20) -> Iterator[bytes]:
        """Yield the file in pieces of at most about ``block_size`` bytes.

        :param block_size: size of the generated padding blocks.
        """
        head, tail = _encoded(self.width, self.height, self.seed)
        yield head
        zeros = memoryview(bytes(min(block_size, max(self.padding_bytes, 1))))
        for length in self._padding_chunks:
            yield struct.pack(">I", length) + PADDING_CHUNK_TYPE
            crc = zlib.crc32(PADDING_CHUNK_TYPE)
            remaining = length
            while remaining > 0:
                block = zeros[: min(remaining, len(zeros))]
                crc = zlib.crc32(block, crc)
                remaining -= len(block)
                yield block.tobytes()
            yield struct.pack(">I", crc)
        yield tail

    def to_bytes(self) -> bytes:
        """The whole file in memory; meant for small images only."""
        return b"".join(self.iter_bytes())
