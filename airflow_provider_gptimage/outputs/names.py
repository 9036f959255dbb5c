"""The names of the files a copy writes: the base name's rules, and the byte limits of destinations.

``<stem>.<ext>`` for a single image, ``<stem>-1.<ext>``, ``<stem>-2.<ext>``... for several, each with its
sidecar ``<stem>[-N].json``; on filesystems with a rename, each is first written as
``.<stem>[-N].part-<32 hex digits>``.
"""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING

from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.outputs.paths import LOCAL_PROTOCOLS, path_uri, uses_rename
from airflow_provider_gptimage.protocol import MAX_RESULT_URLS

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

_IMAGE_SUFFIX = re.compile(r"\.(png|jpe?g|webp|gif|avif)$", re.IGNORECASE)
_SAFE_NAME = re.compile(r"[^\W][\w.+=@,-]*")
_UNSAFE_CHARS = re.compile(r"[^\w.+=@,-]", re.ASCII)
MAX_FILENAME_CHARS = 200
#: The longest relative path :func:`plain_path` accepts.
MAX_RELATIVE_CHARS = 1024
SIDECAR_SUFFIX = ".json"
#: The longest suffix of an image of a set: ``-16`` (a job returns at most ``MAX_RESULT_URLS`` images).
INDEX_SUFFIX = f"-{MAX_RESULT_URLS}"
#: Bytes a copy adds to a base name in the longest name it writes: the index suffix, then ``.part-`` and
#: 32 hex digits after a leading dot (the temporary name), which is longer than ``.webp`` or ``.json``.
TEMP_NAME_EXTRA_BYTES = len(INDEX_SUFFIX) + len("..part-") + 32
#: The same for object stores, which have no temporary name: the index suffix and ``.webp`` (or ``.json``).
OBJECT_NAME_EXTRA_BYTES = len(INDEX_SUFFIX) + len(".webp")
#: The longest file name (one path component) most file systems take, in bytes (NAME_MAX).
NAME_MAX_BYTES = 255
#: The longest object key of S3, GCS and Azure Blob Storage, in bytes.
OBJECT_KEY_MAX_BYTES = 1024
#: The base name checked for a destination when the images are named after the job id (not known before).
NOMINAL_JOB_STEM = "x" * 64


def validate_filename(filename: str) -> str:
    """Check a user-given base name (e.g. a product SKU) and return it without an image extension.

    Allowed: letters, digits and ``_ . + = @ , -``, not starting with a dot or a symbol, at most 200
    characters. A trailing ``.png``/``.jpg``/``.webp`` is dropped: the extension comes from the image.
    An empty or blank name, or ``"None"`` (what a template renders for a missing value), is refused: it
    would otherwise silently name the images after something else.

    :raises GPTImageValidationError: naming ``filename``: path separators, ``..``, NUL, hidden names...
    """
    if not isinstance(filename, str):
        raise GPTImageValidationError("filename", "must be a string", value=type(filename).__name__)
    if any(sep in filename for sep in ("/", "\\", "\x00")) or filename in (".", ".."):
        raise GPTImageValidationError(
            "filename", "must be a plain name: no path separators, '..' or NUL (path traversal)", value=filename
        )
    if not filename.strip() or filename.strip() == "None":
        raise GPTImageValidationError(
            "filename",
            "is empty, blank or 'None' (a template that rendered a missing value?); give a real name, or leave "
            "filename unset to name the images after the job id",
            value=filename,
        )
    stem = _IMAGE_SUFFIX.sub("", filename.strip())
    if not stem or len(stem) > MAX_FILENAME_CHARS:
        raise GPTImageValidationError("filename", f"must have 1 to {MAX_FILENAME_CHARS} characters", value=filename)
    if not _SAFE_NAME.fullmatch(stem):
        raise GPTImageValidationError(
            "filename",
            "may only hold letters, digits and _ . + = @ , - and must start with a letter, digit or _",
            value=filename,
        )
    return stem


def check_name_fits(stem: str, folder: ObjectStoragePath) -> None:
    """Check that every name a copy writes for ``stem`` fits the destination, in bytes (UTF-8).

    Local folders and other filesystems with a rename: the temporary name ``.<stem>-16.part-<32 hex>``
    must fit the file system's longest name (``NAME_MAX``, usually 255 bytes), and the whole path its
    longest path. Object stores: the whole key ``<prefix>/<stem>-16.webp`` must fit 1,024 bytes.

    :param stem: the base name, from :func:`validate_filename` (or a job id's).
    :param folder: the destination folder, from :func:`resolve_destination`.
    :raises GPTImageValidationError: naming ``filename`` and the number of bytes it may have.
    """
    size = len(stem.encode("utf-8"))
    if uses_rename(folder):
        limit, path_limit = _name_limits(folder)
        room = limit - TEMP_NAME_EXTRA_BYTES
        if size > room:
            raise GPTImageValidationError(
                "filename",
                f"is {size} bytes in UTF-8; with the temporary name of a copy ('.<name>-N.part-<32 hex digits>') "
                f"it needs {size + TEMP_NAME_EXTRA_BYTES} bytes, over the {limit}-byte name limit of the "
                f"destination's file system: use at most {room} bytes",
                value=stem,
            )
        longest = len(folder.path.rstrip("/").encode("utf-8")) + 1 + size + TEMP_NAME_EXTRA_BYTES
        if longest > path_limit:
            raise GPTImageValidationError(
                "filename",
                f"makes paths of {longest} bytes in {path_uri(folder)}, over the {path_limit}-byte path limit",
                value=stem,
            )
        return
    key = folder.path.rstrip("/").partition("/")[2]
    longest = len(key.encode("utf-8")) + (1 if key else 0) + size + OBJECT_NAME_EXTRA_BYTES
    if longest > OBJECT_KEY_MAX_BYTES:
        raise GPTImageValidationError(
            "filename",
            f"makes object keys of {longest} bytes in {path_uri(folder)} (with '-N.webp'), over the "
            f"{OBJECT_KEY_MAX_BYTES}-byte key limit of object stores",
            value=stem,
        )


def _name_limits(folder: ObjectStoragePath) -> tuple[int, int]:
    """(longest name, longest path) in bytes of a folder's file system; the usual values when unknown."""
    if folder.protocol not in LOCAL_PROTOCOLS:
        return NAME_MAX_BYTES, 4096
    return _local_limits(folder.path)


@functools.lru_cache(maxsize=64)
def _local_limits(path: str) -> tuple[int, int]:
    probe = path
    while probe not in ("", "/") and not os.path.isdir(probe):  # not created yet: ask its nearest parent
        probe = os.path.dirname(probe.rstrip("/"))
    try:
        return os.pathconf(probe or "/", "PC_NAME_MAX"), os.pathconf(probe or "/", "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        return NAME_MAX_BYTES, 4096


def default_stem(job_id: str) -> str:
    """The base name used without ``filename``: the job id, with characters other than ASCII letters,
    digits and ``_ . + = @ , -`` replaced (so it fits any file system's name limit)."""
    stem = _UNSAFE_CHARS.sub("_", job_id.strip()).lstrip(".")[:MAX_FILENAME_CHARS]
    return stem or "image"


def output_name(stem: str, index: int, count: int, extension: str) -> str:
    """Name of image ``index`` (1-based) of ``count``: ``stem.ext`` alone, ``stem-<index>.ext`` in a set."""
    if not re.fullmatch(r"[a-z0-9]{1,8}", extension):
        raise GPTImageValidationError("extension", "must be 1 to 8 lowercase letters or digits", value=extension)
    return f"{stem}.{extension}" if count == 1 else f"{stem}-{index}.{extension}"


def sidecar_name(image_name: str) -> str:
    """Name of the provenance sidecar of an image: ``sku-1.png`` -> ``sku-1.json``."""
    return image_name.rsplit(".", 1)[0] + SIDECAR_SUFFIX


def output_names(job_id: str, count: int, filename: str | None, extension: str) -> list[str]:
    """Names of every image of a job.

    :param job_id: the job id; the default base name.
    :param count: how many images the job returned.
    :param filename: a base name given by the user (templated in the operator), e.g. a SKU.
    :param extension: ``png``, ``jpg`` or ``webp``.
    """
    if count < 1:
        raise GPTImageValidationError("count", "must be at least 1", value=count)
    stem = validate_filename(filename) if filename is not None else default_stem(job_id)
    return [output_name(stem, i, count, extension) for i in range(1, count + 1)]


def plain_path(path: object) -> str | None:
    """``path`` when it is a plain relative path such as ``sku.png`` or ``_thumbs/sku.jpg``, else ``None``.

    Each ``/``-separated segment must be a plain name (no ``..``, no scheme, no hidden name).
    """
    if not isinstance(path, str) or not path or len(path) > MAX_RELATIVE_CHARS:
        return None
    return path if all(_SAFE_NAME.fullmatch(segment) for segment in path.split("/")) else None


def is_file_name(name: str) -> bool:
    """Whether ``name`` passes :func:`validate_filename` (a key that is safe as a path component)."""
    try:
        validate_filename(name)
    except GPTImageValidationError:
        return False
    return True
