"""The journal of jobs in flight, kept in the destination itself: what Airflow forgets, the catalog remembers.

A job is paid for the moment ``createTask`` answers. Its id is written at once to
``<root>/_catalog/journal/<fingerprint>.json`` (besides the task's ``task_state_store``), so that any later
run wanting the same request at the same root (a retry, a cleared task, a new DAG run of the same night, a
backfill, a ``dag.test()`` that replaced its run) re-attaches to it while the service still knows it, or
collects its result, instead of paying again. The entry ends when the image is committed, or when its
job failed or is unknown to the service.

One object per fingerprint, so concurrent writers never rewrite each other's entries; a stale entry (its
job long gone) costs one ``recordInfo`` and is dropped.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from typing import TYPE_CHECKING

from airflow_provider_gptimage.catalog.layout import journal_dir
from airflow_provider_gptimage.catalog.records import JournalEntry
from airflow_provider_gptimage.catalog.state import SMALL_DOCUMENT_BYTES, read_json, write_json
from airflow_provider_gptimage.outputs.paths import path_uri

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")
#: Entries older than this are not re-attached (result URLs and job records are long gone by then).
MAX_AGE_SECONDS = 7 * 24 * 3600.0


def _path(root: ObjectStoragePath, fingerprint: str) -> ObjectStoragePath:
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise ValueError(f"not a fingerprint: {fingerprint!r}")
    return journal_dir(root) / f"{fingerprint}.json"


def record_job(root: ObjectStoragePath, entry: JournalEntry) -> None:
    """Write the job's entry (replacing an older one of the same request). A failure is logged, not raised:
    the job is paid for already, and the task's own state still knows it."""
    try:
        write_json(_path(root, entry.fingerprint), entry.to_primitives())
    except Exception as exc:
        log.warning("Could not journal job %s in %s: %s", entry.job_id, path_uri(root), exc)


def find_job(root: ObjectStoragePath, fingerprint: str, now: float | None = None) -> JournalEntry | None:
    """The job in flight for this request at this root, if one was journaled (and is not too old)."""
    entry = JournalEntry.from_primitives(read_json(_path(root, fingerprint), SMALL_DOCUMENT_BYTES))
    if entry is None or entry.fingerprint != fingerprint:
        return None
    if (now if now is not None else time.time()) - entry.created_at > MAX_AGE_SECONDS:
        end_job(root, fingerprint, entry.job_id)
        return None
    return entry


def end_job(root: ObjectStoragePath, fingerprint: str, job_id: str | None = None) -> None:
    """End the entry of ``fingerprint`` (only if it still names ``job_id``, when given); never raises."""
    path = _path(root, fingerprint)
    try:
        if job_id is not None:
            entry = JournalEntry.from_primitives(read_json(path, SMALL_DOCUMENT_BYTES))
            if entry is None or entry.job_id != job_id:
                return
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    except Exception as exc:
        log.warning("Could not end the journal entry of job %s in %s: %s", job_id, path_uri(root), exc)
