"""The end of a single job's task: its images copied to the destination, and the result it returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.protocol import JobRecord
from airflow_provider_gptimage.protocol.events import check_finished, result_payload

if TYPE_CHECKING:
    import logging


def finish(
    record: JobRecord,
    *,
    destination: Any,
    destination_conn_id: str | None,
    filename: str | None,
    provenance: Mapping[str, Any] | None,
    log: logging.Logger | Any,
) -> dict[str, Any]:
    """Copy the images to ``destination`` (if set) and return the task's JSON-serialisable result."""
    record = check_finished(record)
    outputs: list[dict[str, Any]] = []
    if destination:
        from airflow_provider_gptimage.outputs import copy_results, resolve_destination

        folder = resolve_destination(destination, destination_conn_id or None)
        from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

        # Waits between download retries go through the provider's one sleep (tests freeze it).
        written = copy_results(
            record, folder, filename=filename, provenance=provenance, sleep=lambda s: GPTImageHook.sleep(s)
        )
        outputs = [item.to_dict() for item in written]
        for item in outputs:
            log.info("Stored %s", item["uri"])
    return result_payload(record, outputs)
