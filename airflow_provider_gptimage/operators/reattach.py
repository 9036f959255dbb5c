"""Never twice for the same image: a task finds the job it (or any run before it) already paid for.

Two memories, checked in this order before a job is created:

1. the task instance's ``task_state_store`` (Airflow 3.3+): the job this task instance started in an
   earlier try, if it was made for the same request;
2. the destination's journal (:mod:`~airflow_provider_gptimage.catalog.journal`): a job any run started for
   the same request at the same destination and did not commit yet: what a cleared task, a new DAG run of
   the same night, a backfill or a replaced ``dag.test()`` run would otherwise pay for again.

A job is reused while it runs or once it succeeded; a failed job, one the service no longer knows, or one
whose result images are gone (expired URLs, :func:`forget_job`) is forgotten and a new one created. A new
job's id is written to both memories as soon as it is known.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage.exceptions import GPTImageNotFoundError

if TYPE_CHECKING:
    import logging

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

#: ``task_state_store`` key holding the job this task instance started (survives retries).
STATE_KEY = "gptimage_job"


@dataclass(frozen=True)
class Attached:
    """The job a task waits for.

    :param job_id: the service's job id.
    :param created_at: when it was created (epoch seconds).
    :param record: its record, when it was polled to decide (``None`` for a job just created).
    """

    job_id: str
    created_at: float
    record: protocol.JobRecord | None = None


def same_request(stored: object, request: protocol.GenerationRequest) -> bool:
    """Whether a stored fingerprint names ``request``: :func:`~.protocol.fingerprint`, or the digest 0.1.0
    stored (SHA-256 of the body as ``json.dumps(sort_keys=True)``), so a retry across the upgrade re-attaches."""
    legacy = hashlib.sha256(json.dumps(request.body(), sort_keys=True).encode()).hexdigest()
    return stored in (protocol.fingerprint(request), legacy)


def reusable(hook: GPTImageHook, job_id: str, where: str, log: logging.Logger | Any) -> protocol.JobRecord | None:
    """The record of an earlier job when it can be reused (running or succeeded), else ``None``."""
    try:
        record = hook.get_task(job_id)
    except GPTImageNotFoundError:
        log.warning("Job %s from %s is unknown to the service; creating a new one", job_id, where)
        return None
    if record.is_failed:
        log.warning("Job %s from %s failed (%s); creating a new one", job_id, where, record.fail_message)
        return None
    log.info("Re-attaching to job %s from %s (state %s)", job_id, where, record.state)
    return record


def attach_or_create(
    hook: GPTImageHook,
    request: protocol.GenerationRequest,
    store: Any,
    *,
    folder: ObjectStoragePath | None,
    key: str | None,
    log: logging.Logger | Any,
) -> Attached:
    """Re-attach to the job an earlier try or run paid for (see the module docstring), or create one.

    :param store: the task's ``task_state_store`` (``None`` before Airflow 3.3).
    :param folder: the destination (``None``: no journal).
    :param key: the images' base name (``None``: named after the job; no journal).
    """
    from airflow_provider_gptimage.catalog.journal import end_job, find_job, record_job
    from airflow_provider_gptimage.catalog.records import JournalEntry

    fingerprint = protocol.fingerprint(request)
    if store is None:
        log.warning(
            "This Airflow has no task_state_store (Airflow < 3.3): a retry re-attaches to its job only "
            "through the destination's journal, when there is one."
        )
    else:
        saved = store.get(STATE_KEY)
        if isinstance(saved, dict) and same_request(saved.get("fingerprint"), request) and saved.get("job_id"):
            record = reusable(hook, str(saved["job_id"]), "an earlier try", log)
            if record is not None:
                created = saved.get("created_at")
                when = float(created) if isinstance(created, (int, float)) else time.time()
                return Attached(record.job_id, when, record)
    journal = folder if key is not None else None  # the journal of a named output's destination
    if journal is not None:
        entry = find_job(journal, fingerprint)
        if entry is not None:
            record = reusable(hook, entry.job_id, "the destination's journal", log)
            if record is not None:
                _remember(store, entry.job_id, fingerprint, entry.created_at)
                return Attached(entry.job_id, entry.created_at, record)
            end_job(journal, fingerprint, entry.job_id)
    job_id = hook.submit(request)
    created_at = time.time()
    _remember(store, job_id, fingerprint, created_at)
    if journal is not None:
        record_job(journal, JournalEntry(fingerprint, str(key), job_id, created_at))
    return Attached(job_id, created_at)


def _remember(store: Any, job_id: str, fingerprint: str, created_at: float) -> None:
    if store is not None:
        store.set(STATE_KEY, {"job_id": job_id, "fingerprint": fingerprint, "created_at": created_at})


def forget_job(store: Any, folder: ObjectStoragePath | None, fingerprint: str, job_id: str) -> None:
    """Forget ``job_id`` (only where it is still the job remembered), so the next try or run creates a new job
    rather than re-attach to it: a job that failed, timed out or whose images are gone.

    :param store: the task's ``task_state_store`` to clear too (``None``: keep it, as for a job that timed out
        and may still run, or before Airflow 3.3).
    :param folder: the destination whose journal may hold the job (``None``: no journal).
    """
    from airflow_provider_gptimage.catalog.journal import end_job

    if store is not None:
        saved = store.get(STATE_KEY)
        if isinstance(saved, dict) and saved.get("job_id") == job_id:
            store.delete(STATE_KEY)
    if folder is not None:
        end_job(folder, fingerprint, job_id)
