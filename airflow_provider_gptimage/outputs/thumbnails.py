"""Thumbnails: small JPEG copies of kept images, for galleries that must open quickly at 10,000 products.

A thumbnail of ``<stem>.<ext>`` lives at ``_thumbs/<stem>.jpg`` inside the catalog folder
(:func:`thumbnail_name`); :func:`make_thumbnail` makes its bytes with Pillow. Decoding is bounded: a JPEG
is decoded at the smallest scale that still covers the thumbnail (``Image.draft``), and an image whose
header declares more pixels than the provider keeps
(:data:`~airflow_provider_gptimage.outputs.identify.MAX_PIXELS`, below Pillow's own ``MAX_IMAGE_PIXELS``)
is refused before any pixel is decoded.
"""

from __future__ import annotations

import io
import posixpath
from typing import TYPE_CHECKING, Any, BinaryIO

from airflow_provider_gptimage.exceptions import GPTImageResultError
from airflow_provider_gptimage.outputs.identify import pixel_problem

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

#: The folder, inside the catalog folder, that holds the thumbnails.
THUMBS_DIR = "_thumbs"
#: The longest side of a thumbnail, in pixels.
THUMBNAIL_MAX_SIDE = 256
#: JPEG quality of thumbnails.
THUMBNAIL_QUALITY = 80
#: Formats decoded (the ones the provider keeps: ``outputs.identify.FORMATS``).
DECODED_FORMATS = ("PNG", "JPEG", "WEBP")
#: The colour thumbnails of transparent images are flattened on.
BACKGROUND = (255, 255, 255)
#: Modes scaled as decoded; any other (palette, CMYK, 16-bit...) is converted to RGB(A) first.
_RESIZED_MODES = ("RGB", "RGBA", "L", "LA")


def thumbnail_name(image_name: str) -> str:
    """The thumbnail's path relative to the catalog folder: ``sku-1.png`` gives ``_thumbs/sku-1.jpg``.

    :param image_name: the image's file name (a path's last segment is used).
    """
    base = posixpath.basename(image_name)
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    return f"{THUMBS_DIR}/{stem}.jpg"


def _refuse(message: str) -> GPTImageResultError:
    return GPTImageResultError(f"No thumbnail could be made: {message}.")


def _check_size(image: PILImage) -> None:
    """Refuse, before decoding, an image whose header declares too many pixels (a decompression bomb)."""
    problem = pixel_problem(*image.size)
    if problem is not None:
        raise _refuse(f"the image {problem}")


def _transparent(image: PILImage) -> bool:
    """Whether the image has an alpha channel or a transparent colour (palette or ``tRNS``)."""
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _flatten(image: PILImage) -> PILImage:
    """The image in RGB, its transparent parts (RGBA, LA, P or L with transparency) laid on white."""
    from PIL import Image

    if _transparent(image):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image if image.mode == "RGB" else image.convert("RGB")


def _render(source: BinaryIO, max_side: int) -> bytes:
    from PIL import Image

    # No warnings filter here (it would be process-wide, and thumbnails are made in threads): Pillow warns
    # above its MAX_IMAGE_PIXELS and raises above twice that; _check_size refuses anything above MAX_PIXELS,
    # which is lower, before a pixel is decoded.
    with Image.open(source, formats=DECODED_FORMATS) as opened:
        _check_size(opened)
        if opened.format == "JPEG":
            opened.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale when that suffices
        image = opened if opened.mode in _RESIZED_MODES else opened.convert("RGBA" if _transparent(opened) else "RGB")
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        _flatten(image).save(out, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()


def _describe(exc: Exception) -> str:
    from PIL import Image, UnidentifiedImageError

    if isinstance(exc, Image.DecompressionBombError):
        return f"Pillow refused it as a decompression bomb ({exc})"
    if isinstance(exc, UnidentifiedImageError):
        return "the file is not a PNG, JPEG or WebP image Pillow can read"
    detail: Any = str(exc).strip() or type(exc).__name__
    return f"Pillow could not decode the image ({str(detail)[:200]})"


def make_thumbnail(source: BinaryIO, *, max_side: int = THUMBNAIL_MAX_SIDE) -> bytes:
    """Return JPEG bytes of ``source`` scaled so that its longest side is at most ``max_side`` (aspect kept).

    Smaller images keep their size. Transparent images are laid on white. The source is read from its
    start and left at position 0.

    :param source: a seekable binary file holding a PNG, JPEG or WebP image.
    :param max_side: the thumbnail's longest side, in pixels (at least 1).
    :raises ValueError: ``max_side`` is below 1.
    :raises GPTImageResultError: the file is not an image Pillow can decode, is truncated, or declares more
        pixels than :data:`~airflow_provider_gptimage.outputs.identify.MAX_PIXELS`.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1 pixel, not {max_side}")
    source.seek(0)
    try:
        return _render(source, max_side)
    except GPTImageResultError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, struct.error... for bad files
        raise _refuse(_describe(exc)) from exc
    finally:
        source.seek(0)
