"""Copy the images of a finished job into the destination, each with its provenance sidecar."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage._compat import path_conn_id
from airflow_provider_gptimage.catalog.history import drop_leftovers, set_aside
from airflow_provider_gptimage.exceptions import GPTImageResultError, GPTImageValidationError
from airflow_provider_gptimage.outputs.catalog import SIDECAR_SCHEMA, OutputFile, remove_sidecar, write_sidecar
from airflow_provider_gptimage.outputs.deadline import DEFAULT_DOWNLOAD_TIMEOUT, download_timeout_seconds
from airflow_provider_gptimage.outputs.fetch import Downloaded, FetchSettings, download
from airflow_provider_gptimage.outputs.names import default_stem, output_name, validate_filename
from airflow_provider_gptimage.outputs.paths import path_uri
from airflow_provider_gptimage.outputs.store import Staging, write_bytes_atomic
from airflow_provider_gptimage.outputs.thumbnails import make_thumbnail, thumbnail_name
from airflow_provider_gptimage.outputs.urls import redact
from airflow_provider_gptimage.protocol import DEFAULT_POLICY, RetryPolicy
from airflow_provider_gptimage.protocol.catalog import check_history
from airflow_provider_gptimage.protocol.events import check_finished

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from datetime import timedelta

    import requests
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.protocol import JobRecord

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 1024 * 1024
#: Thumbnails are made only of images up to this many bytes and pixels (a 4K image is 16.8 Mpx): decoding
#: costs memory in proportion, and a copy's memory stays bounded whatever the image.
THUMBNAIL_MAX_BYTES = 32 * 1024 * 1024
THUMBNAIL_MAX_PIXELS = 4096 * 4096 * 2
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
    got: Downloaded,
    stamp: Mapping[str, str],
    provenance: Mapping[str, Any] | None,
    written_at: datetime | None = None,
    fingerprint: str | None = None,
    thumbnail: str | None = None,
) -> dict[str, Any]:
    """The provenance JSON of one image: the job, its parameters, the exact bytes, and the caller's extras.

    :param got: the download: size, SHA-256, and the format and size identified from the image's header.
    :param stamp: the storage stamp of the object published under ``name`` (see
        :mod:`~airflow_provider_gptimage.outputs.stamps`).
    """
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
        "size": got.size,
        "sha256": got.sha256,
        "content_type": got.image.content_type,
        "format": got.image.format,
        "width": got.image.width,
        "height": got.image.height,
        "stamp": dict(stamp),
        "fingerprint": fingerprint,
        "thumbnail": thumbnail,
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
    download_timeout: float | timedelta = DEFAULT_DOWNLOAD_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    clock: Callable[[], float] = time.monotonic,
    fsync: bool = False,
    fingerprint: str | None = None,
    history: str = "keep",
    thumbnails: bool = True,
) -> list[OutputFile]:
    """Stream every image of a successful job into ``destination``, each followed by its sidecar.

    Runs in the worker (blocking I/O). Each image is checked (not empty, at most ``max_bytes``, as long as
    ``Content-Length`` said, and a PNG, JPEG or WebP whose own header is consistent and complete, see
    :mod:`~airflow_provider_gptimage.outputs.identify`), published atomically (see
    :mod:`~airflow_provider_gptimage.outputs.store`), then described by ``<stem>.json``, which records the
    storage stamp of exactly the object published. Existing files of the same names are replaced: by the
    time this runs the job has been paid for, so its images win.

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
    :param timeout: ``requests`` (connect, read) timeout of each socket operation, cut to the time left.
    :param download_timeout: seconds (or a timedelta) each image may take in all, every attempt and every
        wait between attempts included; a host sending too slowly is cut off when it passes.
    :param sleep: waits between retries (tests pass a recorder).
    :param rand: jitter source in ``[0, 1)``.
    :param clock: monotonic seconds, for the deadlines (tests pass a fake clock).
    :param fsync: flush each local file to disk before publishing it (survives a power loss; slower).
    :param fingerprint: the request's :func:`~airflow_provider_gptimage.protocol.fingerprint`, recorded in
        each sidecar (a later run reuses the images only for the same request).
    :param history: what becomes of the images of another job that these replace (same ``filename``):
        ``keep`` copies them to ``_history/<filename>/<when>-<job>/``, ``drop`` deletes them (see
        :mod:`~airflow_provider_gptimage.catalog.history`).
    :param thumbnails: also write a small JPEG of each image to ``_thumbs/<name>.jpg``.
    :return: one :class:`OutputFile` per image, in the order of the result URLs.
    :raises GPTImageDownloadTimeoutError: an image did not arrive within ``download_timeout``.
    :raises GPTImageResultError: an image could not be fetched or kept; the message names the job.
    :raises GPTImageValidationError: a bad ``filename``, ``max_bytes``, ``chunk_size`` or ``download_timeout``.
    """
    from airflow_provider_gptimage.outputs.session import download_session

    check_finished(record)
    stem = validate_filename(filename) if filename is not None else default_stem(record.job_id)
    if max_bytes < 1:
        raise GPTImageValidationError("max_bytes", "must be a positive number of bytes", value=max_bytes)
    if chunk_size < 1:
        raise GPTImageValidationError("chunk_size", "must be a positive number of bytes", value=chunk_size)
    settings = FetchSettings(
        max_bytes=max_bytes,
        chunk_size=chunk_size,
        timeout=timeout,
        download_timeout=download_timeout_seconds(download_timeout),
        policy=policy,
        sleep=sleep,
        rand=rand,
        clock=clock,
    )
    copier = _Copier(
        record=record,
        destination=destination,
        stem=stem,
        provenance=provenance,
        settings=settings,
        fsync=fsync,
        fingerprint=fingerprint,
        thumbnails=thumbnails,
        keep_history=check_history(history) == "keep",
        named=filename is not None,
    )
    own_session = session is None
    copier.http = session or download_session()
    try:
        written = [copier.copy_one(index, url) for index, url in enumerate(record.result_urls, start=1)]
    finally:
        if own_session:
            copier.http.close()
    drop_leftovers(destination, copier.old_names or (), [output.uri.rsplit("/", 1)[-1] for output in written])
    return written


@dataclass
class _Copier:
    """The copies of one job's images into one folder (see :func:`copy_results`)."""

    record: JobRecord
    destination: ObjectStoragePath
    stem: str
    provenance: Mapping[str, Any] | None
    settings: FetchSettings
    fsync: bool
    fingerprint: str | None
    thumbnails: bool
    keep_history: bool
    named: bool
    http: Any = None
    #: The names of the images this set replaces (set aside before the first commit).
    old_names: list[str] | None = None

    def copy_one(self, index: int, url: str) -> OutputFile:
        """Copy image ``index`` of the job, then write its thumbnail and its sidecar."""
        record, count = self.record, len(self.record.result_urls)
        staging = Staging(
            self.destination,
            self.stem if count == 1 else f"{self.stem}-{index}",
            chunk_size=self.settings.chunk_size,
            fsync=self.fsync,
        )
        try:
            got = download(self.http, url, staging, job_id=record.job_id, settings=self.settings)
            return self._publish(staging, got, index, url)
        except GPTImageResultError:
            raise
        except Exception as exc:
            raise GPTImageResultError(
                f"Could not write image {index} of job {record.job_id} into {path_uri(self.destination)}: "
                f"{type(exc).__name__}: {exc}. Check the destination, then retry the task while the result "
                "URLs are valid (about 24 h).",
                job_id=record.job_id,
            ) from exc
        finally:
            staging.abort()

    def _publish(self, staging: Staging, got: Downloaded, index: int, url: str) -> OutputFile:
        """Set the replaced set aside (once), publish the image, its thumbnail, then its sidecar (the commit)."""
        record, destination, count = self.record, self.destination, len(self.record.result_urls)
        name = output_name(self.stem, index, count, got.image.extension)
        target = destination / name
        thumbnail = self._thumbnail(staging, name, got)
        if self.old_names is None:
            keep = self.keep_history
            self.old_names = set_aside(destination, self.stem, job_id=record.job_id, keep=keep) if self.named else []
        remove_sidecar(destination, name)
        stamp = staging.commit(target, got.size)
        if thumbnail is not None:
            write_bytes_atomic(destination / thumbnail_name(name), thumbnail)
        source = redact(url)
        document = sidecar_document(
            record, name=name, uri=path_uri(target), stem=self.stem, index=index, count=count, source_url=source,
            got=got, stamp=stamp, provenance=self.provenance, fingerprint=self.fingerprint,
            thumbnail=None if thumbnail is None else thumbnail_name(name),
        )  # fmt: skip
        sidecar = write_sidecar(destination, name, document)
        return OutputFile(
            uri=path_uri(target),
            size=got.size,
            sha256=got.sha256,
            content_type=got.image.content_type,
            source_url=source,
            conn_id=path_conn_id(destination),
            sidecar_uri=path_uri(sidecar),
            job_id=record.job_id,
            format=got.image.format,
            width=got.image.width,
            height=got.image.height,
            fingerprint=self.fingerprint,
            thumbnail_uri=None if thumbnail is None else path_uri(destination / thumbnail_name(name)),
        )

    def _thumbnail(self, staging: Staging, name: str, got: Downloaded) -> bytes | None:
        """The image's thumbnail: ``None`` when off, for an image too large to decode within the copy's memory
        bound (see :data:`THUMBNAIL_MAX_BYTES`), or when it cannot be made (the image itself is fine)."""
        pixels = (got.image.width or 0) * (got.image.height or 0)
        if not self.thumbnails or got.size > THUMBNAIL_MAX_BYTES or pixels > THUMBNAIL_MAX_PIXELS:
            return None
        try:
            return make_thumbnail(staging.contents())
        except GPTImageResultError as exc:
            log.warning("No thumbnail for %s: %s", name, exc)
            return None
