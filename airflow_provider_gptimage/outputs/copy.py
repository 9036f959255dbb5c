"""Copy the images of a finished job into the destination, each with its provenance sidecar."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage._compat import path_conn_id
from airflow_provider_gptimage.exceptions import GPTImageResultError, GPTImageValidationError
from airflow_provider_gptimage.outputs.fetch import download
from airflow_provider_gptimage.outputs.paths import default_stem, output_name, path_uri, validate_filename
from airflow_provider_gptimage.outputs.store import (
    SIDECAR_SCHEMA,
    OutputFile,
    Staging,
    remove_sidecar,
    write_sidecar,
)
from airflow_provider_gptimage.outputs.urls import redact
from airflow_provider_gptimage.protocol import DEFAULT_POLICY, RetryPolicy
from airflow_provider_gptimage.protocol.events import check_finished

if TYPE_CHECKING:
    import requests
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.protocol import JobRecord

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 1024 * 1024
#: (connect, read) timeouts of one download request, in seconds.
DEFAULT_TIMEOUT = (10.0, 60.0)


def sidecar_document(
    record: JobRecord,
    *,
    name: str,
    uri: str,
    stem: str,
    index: int,
    count: int,
    source_url: str,
    size: int,
    sha256: str,
    content_type: str,
    provenance: Mapping[str, Any] | None,
    written_at: datetime | None = None,
) -> dict[str, Any]:
    """The provenance JSON of one image: the job, its parameters, the bytes, and the caller's extras."""
    params = dict(record.params or {})
    raw_inputs = params.get("input")
    inputs: dict[str, Any] = dict(raw_inputs) if isinstance(raw_inputs, Mapping) else {}
    parameters = {k: v for k, v in inputs.items() if k != "prompt"}
    when = written_at or datetime.now(timezone.utc)
    return {
        "schema": SIDECAR_SCHEMA,
        "name": name,
        "uri": uri,
        "filename": stem,
        "index": index,
        "count": count,
        "job_id": record.job_id,
        "model": record.model or params.get("model"),
        "prompt": inputs.get("prompt"),
        "parameters": parameters,
        "cost_time_ms": record.cost_time_ms,
        "create_time_ms": record.create_time_ms,
        "complete_time_ms": record.complete_time_ms,
        "source_url": source_url,
        "size": size,
        "sha256": sha256,
        "content_type": content_type,
        "written_at": when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "provenance": dict(provenance or {}),
    }


def copy_results(
    record: JobRecord,
    destination: ObjectStoragePath,
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    session: requests.Session | None = None,
    provenance: Mapping[str, Any] | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    timeout: Any = DEFAULT_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    fsync: bool = False,
) -> list[OutputFile]:
    """Stream every image of a successful job into ``destination``, each followed by its sidecar.

    Runs in the worker (blocking I/O). Each image is checked (an image type, not empty, at most
    ``max_bytes``, as long as ``Content-Length`` said), published atomically (see
    :mod:`airflow_provider_gptimage.outputs.store`), then described by ``<stem>.json``. Existing files of
    the same names are replaced: by the time this runs the job has been paid for, so its images win.

    :param record: the finished job (``state == "success"``, with result URLs).
    :param destination: the folder, from :func:`~airflow_provider_gptimage.outputs.resolve_destination`.
    :param filename: base name of the images (templated in the operator), e.g. a SKU; default: the job id.
    :param max_bytes: the largest image accepted.
    :param chunk_size: bytes read and written at a time (the memory one download holds).
    :param session: a ``requests`` session to reuse, best made by
        :func:`~airflow_provider_gptimage.outputs.session.download_session` (it checks the address of every
        connection); one such session is made (and closed) when ``None``.
    :param provenance: extra JSON-serialisable facts for the sidecars (dag_id, run_id, task_id...).
    :param policy: retry policy of transient download failures (the protocol's ``DOWNLOAD`` decision).
    :param timeout: ``requests`` timeout of each request.
    :param sleep: waits between retries (tests pass a recorder).
    :param rand: jitter source in ``[0, 1)``.
    :param fsync: flush each local file to disk before publishing it (survives a power loss; slower).
    :return: one :class:`OutputFile` per image, in the order of the result URLs.
    :raises GPTImageResultError: an image could not be fetched or kept; the message names the job.
    :raises GPTImageValidationError: a bad ``filename``, ``max_bytes`` or ``chunk_size``.
    """
    from airflow_provider_gptimage.outputs.session import download_session

    check_finished(record)
    stem = validate_filename(filename) if filename is not None else default_stem(record.job_id)
    if max_bytes < 1:
        raise GPTImageValidationError("max_bytes", "must be a positive number of bytes", value=max_bytes)
    if chunk_size < 1:
        raise GPTImageValidationError("chunk_size", "must be a positive number of bytes", value=chunk_size)
    fetch_options: dict[str, Any] = {
        "max_bytes": max_bytes,
        "chunk_size": chunk_size,
        "timeout": timeout,
        "policy": policy,
        "sleep": sleep,
        "rand": rand,
        "fsync": fsync,
    }
    own_session = session is None
    http = session or download_session()
    try:
        return [
            _copy_one(record, index, url, destination, stem, http, provenance, fetch_options)
            for index, url in enumerate(record.result_urls, start=1)
        ]
    finally:
        if own_session:
            http.close()


def _copy_one(
    record: JobRecord,
    index: int,
    url: str,
    destination: ObjectStoragePath,
    stem: str,
    http: requests.Session,
    provenance: Mapping[str, Any] | None,
    fetch_options: dict[str, Any],
) -> OutputFile:
    """Copy image ``index`` of ``record``, then write its sidecar."""
    count = len(record.result_urls)
    staging = Staging(
        destination,
        stem if count == 1 else f"{stem}-{index}",
        chunk_size=fetch_options["chunk_size"],
        fsync=fetch_options["fsync"],
    )
    try:
        options = {k: v for k, v in fetch_options.items() if k != "fsync"}
        got = download(http, url, staging, job_id=record.job_id, **options)
        name = output_name(stem, index, count, got.extension)
        target = destination / name
        remove_sidecar(destination, name)
        staging.commit(target, got.size)
        source = redact(url)
        document = sidecar_document(
            record,
            name=name,
            uri=path_uri(target),
            stem=stem,
            index=index,
            count=count,
            source_url=source,
            size=got.size,
            sha256=got.sha256,
            content_type=got.content_type,
            provenance=provenance,
        )
        sidecar = write_sidecar(destination, name, document)
    except GPTImageResultError:
        raise
    except Exception as exc:
        raise GPTImageResultError(
            f"Could not write image {index} of job {record.job_id} into {path_uri(destination)}: "
            f"{type(exc).__name__}: {exc}. Check the destination, then retry the task while the result URLs "
            "are valid (about 24 h).",
            job_id=record.job_id,
        ) from exc
    finally:
        staging.abort()
    return OutputFile(
        uri=path_uri(target),
        size=got.size,
        sha256=got.sha256,
        content_type=got.content_type,
        source_url=source,
        conn_id=path_conn_id(destination),
        sidecar_uri=path_uri(sidecar),
        job_id=record.job_id,
    )
