"""Durable copies of result images in object storage (``file://``, ``s3://``, ``gs://``, ``abfs://``...).

Result URLs expire (about 24 hours), so once a job succeeds the worker (never the triggerer) streams each
image into a ``destination`` folder through Airflow's own object storage layer
(:class:`airflow.sdk.ObjectStoragePath`); no storage SDK is called directly.

The steps, in the order the operator calls them:

1. :func:`resolve_destination` turns the ``destination`` argument into a folder path (raises
   :class:`~airflow_provider_gptimage.exceptions.GPTImageValidationError` naming ``destination``);
2. :func:`check_destination` proves, BEFORE a job is created and paid for, that the folder is writable
   (a local folder is created; an object store's bucket must exist and a small marker is written and
   deleted);
3. :func:`find_existing` says whether a ``filename`` is already complete, so no job need be created;
4. :func:`copy_results` streams the images with bounded memory, checks them, publishes them atomically
   and writes a provenance sidecar (``<stem>.json``) after each image.

**Idempotency rule: skip if complete, otherwise (re)write.** When the user names the output
(``filename``, e.g. a product SKU), the name is the identity of the image: a re-run, a retry after a
later failure, or a backfill finds it with :func:`find_existing` and creates no new job. Every job costs
credits and cannot be cancelled, so regenerating on each run would bill again for an image that is
already kept; a user who wants a new image deletes the old one (or the operator offers an explicit
overwrite switch). "Complete" means every image of the set has its sidecar and the size the sidecar
recorded: the sidecar is written after its image, so a run killed between the two is not complete and
is redone. :func:`copy_results` itself always writes: once a job has been paid for, its images replace
older files of the same names (each replacement atomic; the stale sidecar is removed first). Without
``filename`` the names derive from the job id and nothing can be found before the job exists; a retry
that already knows its job id may still call :func:`find_existing` with the id.

Names: ``<stem>.<ext>`` for a single image, ``<stem>-1.<ext>``, ``<stem>-2.<ext>``... for several; the
extension comes from the image (magic bytes, else ``Content-Type``): ``png``, ``jpg``, ``webp``.
"""

from __future__ import annotations

from airflow_provider_gptimage.outputs.copy import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_BYTES, copy_results
from airflow_provider_gptimage.outputs.fetch import sniff
from airflow_provider_gptimage.outputs.paths import (
    check_destination,
    output_name,
    output_names,
    path_uri,
    resolve_destination,
    sidecar_name,
    validate_filename,
)
from airflow_provider_gptimage.outputs.store import OutputFile, find_existing, uses_rename, verify
from airflow_provider_gptimage.outputs.urls import check_source_url, redact

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_MAX_BYTES",
    "OutputFile",
    "check_destination",
    "check_source_url",
    "copy_results",
    "find_existing",
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
