"""The end of a paid job at a catalog root: its images committed (or its job failed), its journal entry ended."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.catalog.journal import end_job
from airflow_provider_gptimage.catalog.records import CatalogEntry, ImageEntry, utc_now
from airflow_provider_gptimage.catalog.state import record_commit
from airflow_provider_gptimage.outputs.thumbnails import thumbnail_name

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.protocol import GenerationRequest


def image_entry(output: Mapping[str, Any]) -> ImageEntry:
    """The manifest's view of one output (an :class:`~airflow_provider_gptimage.outputs.OutputFile` dict)."""
    name = str(output["uri"]).rsplit("/", 1)[-1]
    return ImageEntry(
        name=name,
        uri=str(output["uri"]),
        sha256=output.get("sha256"),
        size=output.get("size"),
        format=output.get("format"),
        width=output.get("width"),
        height=output.get("height"),
        thumbnail=thumbnail_name(name) if output.get("thumbnail_uri") else None,
    )


def catalog_entry(
    key: str, request: GenerationRequest, fingerprint: str, job_id: str | None, outputs: Sequence[Mapping[str, Any]]
) -> CatalogEntry:
    """The manifest entry of a key whose images were just committed."""
    parameters = {k: v for k, v in request.body()["input"].items() if k != "prompt"}
    return CatalogEntry(
        key=key,
        fingerprint=fingerprint,
        job_id=job_id,
        written_at=utc_now(),
        prompt=request.prompt,
        parameters=parameters,
        images=tuple(image_entry(output) for output in outputs),
    )


def committed(
    root: ObjectStoragePath,
    key: str,
    request: GenerationRequest,
    fingerprint: str,
    job_id: str | None,
    outputs: Sequence[Mapping[str, Any]],
) -> None:
    """Record the key's new images for the next manifest, then end the job's journal entry."""
    if outputs:
        record_commit(root, catalog_entry(key, request, fingerprint, job_id, outputs))
    end_job(root, fingerprint, job_id)
