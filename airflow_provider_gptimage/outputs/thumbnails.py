"""Thumbnails of kept images (small JPEGs under ``_thumbs/``), for galleries of thousands of images."""

from __future__ import annotations

import io
from typing import BinaryIO

from airflow_provider_gptimage.exceptions import GPTImageResultError

THUMBS_DIR = "_thumbs"
THUMBNAIL_MAX_SIDE = 256


def thumbnail_name(image_name: str) -> str:
    """The thumbnail of ``image_name``, relative to its folder: ``_thumbs/<stem>.jpg``."""
    return f"{THUMBS_DIR}/{image_name.rsplit('.', 1)[0]}.jpg"


def make_thumbnail(source: BinaryIO, *, max_side: int = THUMBNAIL_MAX_SIDE) -> bytes:
    """JPEG bytes of the image in ``source``, its longest side at most ``max_side`` pixels."""
    from PIL import Image

    try:
        source.seek(0)
        with Image.open(source) as image:
            image.draft("RGB", (max_side, max_side))
            image.thumbnail((max_side, max_side))
            if image.mode != "RGB":
                image = image.convert("RGBA")
                flat = Image.new("RGB", image.size, "white")
                flat.paste(image, mask=image.getchannel("A"))
                image = flat
            out = io.BytesIO()
            image.save(out, "JPEG", quality=80)
            return out.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise GPTImageResultError(f"Could not make a thumbnail: {type(exc).__name__}: {exc}") from exc
    finally:
        source.seek(0)
