"""Durable copies of result images in object storage (``file://``, ``s3://``, ``gs://``, ``abfs://``...).

Result URLs expire (about 24 hours), so once a job succeeds the worker (never the triggerer) streams each
image into a ``destination`` folder through Airflow's own object storage layer
(:class:`airflow.sdk.ObjectStoragePath`); no storage SDK is called directly.

The steps, in the order the operator calls them:

1. :func:`resolve_destination` turns the ``destination`` argument into a folder path (raises
   :class:`~airflow_provider_gptimage.exceptions.GPTImageValidationError` naming ``destination``);
2. :func:`validate_filename` and :func:`check_name_fits` check the base name, in bytes, against the
   destination's limits (with the temporary name of a copy added), and :func:`check_destination` proves
   that the folder is writable (a local folder is created and swept of temporary files that killed copies
   abandoned; an object store's bucket must exist and a small marker is written and deleted): all BEFORE
   a job is created and paid for;
3. :func:`find_existing` says whether a ``filename`` is already complete, so no job need be created;
4. :func:`copy_results` streams the images with bounded memory and an overall deadline per image,
   identifies each by its own header (PNG, JPEG or WebP only), publishes them atomically and writes a
   provenance sidecar (``<stem>.json``) after each image.

**Idempotency rule: skip if complete, otherwise (re)write.** When the user names the output
(``filename``, e.g. a product SKU), the name is the identity of the image: a re-run, a retry after a
later failure, or a backfill finds it with :func:`find_existing` and creates no new job. Every job costs
credits and cannot be cancelled, so regenerating on each run would bill again for an image that is
already kept; a user who wants a new image deletes the old one (or the operator offers an explicit
overwrite switch). "Complete" means every image of the set has its sidecar, and the object stored under
the image's name is exactly the one the sidecar describes (its size and storage stamp, else its SHA-256):
the sidecar is written after its image and is the single commit point, so a run killed between the two,
or two writers racing on one name, never leave a pair that counts as complete. :func:`copy_results`
itself always writes: once a job has been paid for, its images replace older files of the same names
(each replacement atomic; the stale sidecar is removed first). Without ``filename`` the names derive from
the job id and nothing can be found before the job exists; a retry that already knows its job id may
still call :func:`find_existing` with the id.

Names: ``<stem>.<ext>`` for a single image, ``<stem>-1.<ext>``, ``<stem>-2.<ext>``... for several; the
extension follows the format identified from the image itself: ``png``, ``jpg`` or ``webp``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_gptimage.outputs.catalog import OutputFile, find_existing, verify
    from airflow_provider_gptimage.outputs.copy import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_BYTES, copy_results
    from airflow_provider_gptimage.outputs.deadline import DEFAULT_DOWNLOAD_TIMEOUT, download_timeout_seconds
    from airflow_provider_gptimage.outputs.identify import ImageInfo, identify, sniff
    from airflow_provider_gptimage.outputs.names import (
        check_name_fits,
        output_name,
        output_names,
        sidecar_name,
        validate_filename,
    )
    from airflow_provider_gptimage.outputs.paths import check_destination, path_uri, resolve_destination, uses_rename
    from airflow_provider_gptimage.outputs.urls import check_source_url, redact

#: Where each name lives; imported on first use (PEP 562), so that importing one small module of this
#: package (e.g. the operators' ``deadline`` at DAG-parse time) does not import the whole copy machinery.
_HOMES = {
    "OutputFile": "catalog",
    "find_existing": "catalog",
    "verify": "catalog",
    "DEFAULT_CHUNK_SIZE": "copy",
    "DEFAULT_MAX_BYTES": "copy",
    "copy_results": "copy",
    "DEFAULT_DOWNLOAD_TIMEOUT": "deadline",
    "download_timeout_seconds": "deadline",
    "ImageInfo": "identify",
    "identify": "identify",
    "sniff": "identify",
    "check_name_fits": "names",
    "output_name": "names",
    "output_names": "names",
    "sidecar_name": "names",
    "validate_filename": "names",
    "check_destination": "paths",
    "path_uri": "paths",
    "resolve_destination": "paths",
    "uses_rename": "paths",
    "check_source_url": "urls",
    "redact": "urls",
}

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_MAX_BYTES",
    "ImageInfo",
    "OutputFile",
    "check_destination",
    "check_name_fits",
    "check_source_url",
    "copy_results",
    "download_timeout_seconds",
    "find_existing",
    "identify",
    "output_name",
    "output_names",
    "path_uri",
    "redact",
    "resolve_destination",
    "sidecar_name",
    "sniff",
    "uses_rename",
    "validate_filename",
    "verify",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
