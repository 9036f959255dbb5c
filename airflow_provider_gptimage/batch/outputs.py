"""A batch's images in the destination: those already complete (no job for them), and the copies of new ones."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.batch.records import ItemStatus, ResultRow
from airflow_provider_gptimage.protocol.catalog import is_forced

if TYPE_CHECKING:
    import requests
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.batch.store import Progress
    from airflow_provider_gptimage.protocol import JobRecord
    from airflow_provider_gptimage.protocol.batch import BatchItem
    from airflow_provider_gptimage.protocol.catalog import Force


def listed_names(folder: ObjectStoragePath) -> set[str]:
    """The names in ``folder``; an empty or missing folder (a new object-store prefix, which exists only once
    something is under it) is an empty catalog on every store."""
    try:
        return {path.name for path in folder.iterdir()}
    except (FileNotFoundError, NotADirectoryError):
        return set()


def scan_existing(
    folder: ObjectStoragePath, items: Sequence[BatchItem], progress: Progress, *, force: Force = False
) -> list[ResultRow]:
    """Mark pending items whose outputs are complete in the destination, made by the same request, as
    existing; return their rows.

    One listing of the folder finds the candidates (a sidecar named after the key); only those are checked
    with :func:`~airflow_provider_gptimage.outputs.find_existing`, so 10,000 keys cost one listing, not
    10,000 reads. Nothing is reused for the keys ``force`` names (every key when it is ``True``).
    """
    from airflow_provider_gptimage.outputs import find_existing, validate_filename

    if force is True:
        return []
    names = listed_names(folder)
    rows = []
    for index, item in enumerate(items):
        if progress.statuses[index] is not ItemStatus.PENDING or item.key in progress.flight:
            continue
        if is_forced(force, item.key):
            continue
        stem = validate_filename(item.key)
        if f"{stem}.json" in names or f"{stem}-1.json" in names:
            found = find_existing(folder, item.key, item.fingerprint)
            if found:
                progress.statuses[index] = ItemStatus.EXISTING
                rows.append(ResultRow(index, found[0].job_id, "existing", tuple(o.uri for o in found)))
    return rows


def keep_outputs(
    record: JobRecord,
    item: BatchItem,
    folder: ObjectStoragePath | None,
    http: requests.Session | None,
    sleep: Callable[[float], None],
    provenance: Mapping[str, Any],
    download_timeout: float,
    history: str = "keep",
) -> tuple[list[str], list[dict[str, Any]]]:
    """Copy a successful job's images to the destination, named by key; return their URIs and outputs.

    Without a destination the result URLs are returned (they expire in about a day), and no outputs. A copy
    already made from this very job (a resume after a crash between copy and bookkeeping) is not made again.
    """
    if folder is None:
        return list(record.result_urls), []
    from airflow_provider_gptimage.outputs import copy_results, find_existing

    found = find_existing(folder, item.key, item.fingerprint)
    if found and all(output.job_id == record.job_id for output in found):
        return [output.uri for output in found], [output.to_dict() for output in found]
    written = copy_results(
        record,
        folder,
        filename=item.key,
        session=http,
        provenance={**provenance, "batch_key": item.key},
        sleep=sleep,
        download_timeout=download_timeout,
        fingerprint=item.fingerprint,
        history=history,
    )
    return [output.uri for output in written], [output.to_dict() for output in written]
