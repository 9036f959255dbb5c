"""Worker-side steps shared by the operator and the sensor: waiting without deferral, and finishing.

Decisions stay in :mod:`airflow_provider_gptimage.protocol`; this module only loops, sleeps and copies.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.protocol import JobRecord, request_id
from airflow_provider_gptimage.protocol.events import check_finished, result_payload

if TYPE_CHECKING:
    import logging

    from airflow.sdk import ObjectStoragePath


def seconds(value: float | timedelta | None) -> float | None:
    """Return a duration in seconds (``None`` stays ``None``)."""
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def deadline_after(timeout: float | timedelta | None, start: float | None = None) -> float | None:
    """Return the absolute deadline (epoch seconds) ``timeout`` after ``start`` (default: now)."""
    span = seconds(timeout)
    return None if span is None else (time.time() if start is None else start) + span


def request_id_prefix(context: Mapping[str, Any]) -> str:
    """Name the task instance and try in every ``X-Request-ID`` (dag, run, task, map index, try)."""
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return "airflow"
    map_index = getattr(ti, "map_index", -1)
    return request_id(
        "airflow",
        getattr(ti, "dag_id", None),
        getattr(ti, "run_id", None),
        getattr(ti, "task_id", None),
        f"map{map_index}" if map_index is not None and map_index >= 0 else None,
        f"try{getattr(ti, 'try_number', 0)}",
    )


def task_provenance(context: Mapping[str, Any]) -> dict[str, Any]:
    """The task instance that wrote an output (dag, run, task, map index), for the provenance sidecars."""
    ti = context.get("ti")
    return {name: getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id", "map_index")}


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


def finish(
    record: JobRecord,
    *,
    destination: Any,
    destination_conn_id: str | None,
    filename: str | None,
    provenance: Mapping[str, Any] | None,
    log: logging.Logger | Any,
    download_timeout: float | None = None,
) -> dict[str, Any]:
    """Copy the images to ``destination`` (if set) and return the task's JSON-serialisable result.

    :param download_timeout: seconds each image may take to download (default: the provider's).
    """
    record = check_finished(record)
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
        )
        outputs = [item.to_dict() for item in written]
        for item in outputs:
            log.info("Stored %s", item["uri"])
    return result_payload(record, outputs)


def annotate_asset_events(context: Mapping[str, Any], outlets: Sequence[Any], extra: Mapping[str, Any]) -> None:
    """Describe what was written in the asset events the task emits for its ``Asset`` outlets.

    Airflow emits one event per outlet when the task succeeds; ``extra`` (e.g. the job id and the URIs of
    the copies) travels with it, so a DAG scheduled on the asset knows which images are new.
    """
    from airflow.sdk import Asset

    events = context.get("outlet_events")
    if events is None:
        return
    for outlet in outlets or ():
        if isinstance(outlet, Asset):
            events[outlet].extra.update(extra)
