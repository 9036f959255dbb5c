"""A single job's images: every check before the job is created, then the copies and the task's result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.protocol import GenerationRequest, JobRecord
from airflow_provider_gptimage.protocol import fingerprint as request_fingerprint
from airflow_provider_gptimage.protocol.events import check_finished, result_payload

if TYPE_CHECKING:
    import logging

    from airflow.sdk import ObjectStoragePath


def check_outputs(
    destination: Any, destination_conn_id: str | None, filename: str | None, download_timeout: float
) -> tuple[ObjectStoragePath, str | None]:
    """Every check of where the images will go that can run before a job is created (and paid for).

    The folder resolves and is writable (abandoned temporary files swept), ``filename`` is a real name
    (not empty, blank or a rendered ``"None"``), and every name a copy writes fits the destination in bytes
    (a job-id-sized name when ``filename`` is ``None``).

    :return: the folder and the checked base name (``None``: the images will be named after the job id).
    :raises GPTImageValidationError: naming ``destination`` or ``filename``.
    :raises GPTImageConfigurationError: the destination cannot be written.
    """
    from airflow_provider_gptimage.outputs import (
        check_destination,
        check_name_fits,
        resolve_destination,
        validate_filename,
    )
    from airflow_provider_gptimage.outputs.names import NOMINAL_JOB_STEM

    folder = resolve_destination(destination, destination_conn_id or None)
    stem = None if filename is None else validate_filename(filename)
    check_name_fits(stem or NOMINAL_JOB_STEM, folder)
    check_destination(folder, download_timeout=download_timeout)
    return folder, stem


def reusable_outputs(
    folder: ObjectStoragePath, filename: str, fingerprint: str, log: logging.Logger | Any
) -> list[dict[str, Any]] | None:
    """The outputs an earlier run completed in ``folder`` for this very request (see
    :func:`~airflow_provider_gptimage.outputs.find_existing`), logged; ``None`` when there are none."""
    from airflow_provider_gptimage.outputs import find_existing, path_uri

    found = find_existing(folder, filename, fingerprint)
    if found is None:
        return None
    log.info("%r is already complete in %s for this request; no job created", filename, path_uri(folder))
    return [item.to_dict() for item in found]


def finish(
    record: JobRecord,
    *,
    destination: Any,
    destination_conn_id: str | None,
    filename: str | None,
    provenance: Mapping[str, Any] | None,
    log: logging.Logger | Any,
    download_timeout: float | None = None,
    history: str = "keep",
    request: GenerationRequest | None = None,
) -> dict[str, Any]:
    """Copy the images to ``destination`` (if set) and return the task's JSON-serialisable result.

    :param download_timeout: seconds each image may take to download (default: the provider's).
    :param history: ``keep`` or ``drop`` the images of another job these replace.
    :param request: the request the job was made for (``None``: unknown, as to a sensor): its fingerprint is
        recorded in each sidecar and, with ``filename``, the images are committed to the destination's catalog.
    """
    record = check_finished(record)
    fingerprint = None if request is None else request_fingerprint(request)
    outputs: list[dict[str, Any]] = []
    if destination:
        from airflow_provider_gptimage.outputs import DEFAULT_DOWNLOAD_TIMEOUT, copy_results, resolve_destination

        folder = resolve_destination(destination, destination_conn_id or None)
        from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

        # Waits between download retries go through the provider's one sleep (tests freeze it).
        written = copy_results(
            record,
            folder,
            filename=filename,
            provenance=provenance,
            sleep=lambda s: GPTImageHook.sleep(s),
            download_timeout=DEFAULT_DOWNLOAD_TIMEOUT if download_timeout is None else download_timeout,
            history=history,
            fingerprint=fingerprint,
        )
        outputs = [item.to_dict() for item in written]
        for item in outputs:
            log.info("Stored %s", item["uri"])
        if request is not None and fingerprint is not None and filename is not None:
            from airflow_provider_gptimage.catalog.commit import committed
            from airflow_provider_gptimage.outputs import validate_filename

            committed(folder, validate_filename(filename), request, fingerprint, record.job_id, outputs)
    return result_payload(record, outputs)
