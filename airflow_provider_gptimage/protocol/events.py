"""Trigger events: their strict shape, and what each one means for the task (pure, no I/O).

A trigger emits exactly one of four events; :func:`outcome` turns any of them into a finished
:class:`~airflow_provider_gptimage.protocol.JobRecord` or raises the typed error it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_gptimage import exceptions
from airflow_provider_gptimage.exceptions import (
    GPTImageError,
    GPTImageInvalidResponseError,
    GPTImageJobFailedError,
    GPTImageResultError,
    GPTImageResultExpiredError,
    GPTImageTimeoutError,
)
from airflow_provider_gptimage.protocol.polling import timeout_message
from airflow_provider_gptimage.protocol.records import JobRecord
from airflow_provider_gptimage.protocol.responses import excerpt

SUCCESS = "success"
FAIL = "fail"
ERROR = "error"
TIMEOUT = "timeout"
STATUSES = (SUCCESS, FAIL, ERROR, TIMEOUT)


def record_event(record: JobRecord) -> dict[str, Any]:
    """The event for a job that ended (``success`` or ``fail``)."""
    status = SUCCESS if record.is_success else FAIL
    return {"status": status, "job_id": record.job_id, "record": record.to_dict()}


def error_event(job_id: str, error: GPTImageError) -> dict[str, Any]:
    """The event for a poll that gave up: the error's class name and message, never a traceback."""
    return {"status": ERROR, "job_id": job_id, "error_type": type(error).__name__, "message": str(error)}


def crash_event(job_id: str, exc: BaseException, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``error`` event of a trigger that met an exception it does not handle: a trigger ends with an event,
    never with a traceback (which would fail the task with nothing to act on)."""
    error = GPTImageError(
        f"Polling job {job_id} stopped on an unexpected {type(exc).__name__}: {excerpt(str(exc), secrets=secrets)!r}. "
        "The job itself is unaffected: retry the task to re-attach to it.",
        job_id=job_id,
    )
    return error_event(job_id, error)


def timeout_event(job_id: str, last_state: str | None, timeout: float | None = None) -> dict[str, Any]:
    """The event for a job that did not end before its deadline (``timeout``: the limit, when known)."""
    message = timeout_message(job_id, last_state, timeout)
    return {"status": TIMEOUT, "job_id": job_id, "last_state": last_state, "message": message}


def check_finished(record: JobRecord) -> JobRecord:
    """Return a successful record with at least one image; raise the typed error otherwise."""
    if record.is_failed:
        raise GPTImageJobFailedError(
            f"Job {record.job_id} failed on the service (state {record.state!r}): failCode={record.fail_code!r}, "
            f"failMsg={record.fail_message!r}. Change the prompt or parameters, or retry later.",
            job_id=record.job_id,
            fail_code=record.fail_code,
            fail_message=record.fail_message,
        )
    if not record.is_success:
        raise GPTImageInvalidResponseError(f"Job {record.job_id} is still {record.state!r}.", job_id=record.job_id)
    if not record.result_urls:
        raise GPTImageResultError(
            f"Job {record.job_id} succeeded but returned no result URLs; nothing can be copied. "
            "Regenerate the image (the service may bill this job anyway).",
            job_id=record.job_id,
        )
    return record


def job_is_spent(error: BaseException) -> bool:
    """Whether a job can never give its image any more: it failed, timed out, or its result images are gone.
    Its journal entry ends, so a later run creates a new job instead of re-attaching to it."""
    return isinstance(error, (GPTImageJobFailedError, GPTImageTimeoutError, GPTImageResultExpiredError))


def retry_forgets(error: BaseException) -> bool:
    """Whether the task's own retry must not re-attach to the job either (its images are gone). A job that
    timed out keeps its place in the task's state: it may still be running, and a retry re-attaches to it."""
    return isinstance(error, GPTImageResultExpiredError)


def pay_again_now(error: BaseException, created_at: float, try_started: float) -> bool:
    """Whether a job's item gets a new job within the same try: only when the job's images are gone
    (:func:`retry_forgets`) and the job was created before the try started (re-attached from an earlier try or
    from a journal). A job the try made itself and lost is left to the next try, so a try pays at most once more
    for an item whose images expire.

    :param created_at: when the job was created (epoch seconds).
    :param try_started: when the try started (epoch seconds).
    """
    return retry_forgets(error) and created_at < try_started


def _error_class(name: object) -> type[GPTImageError]:
    cls = getattr(exceptions, str(name), None)
    if isinstance(cls, type) and issubclass(cls, GPTImageError):
        return cls
    return GPTImageError


def outcome(event: Mapping[str, Any] | None) -> JobRecord:
    """Interpret a trigger event: return the successful record, or raise the typed error it carries.

    :raises GPTImageJobFailedError: the job failed (with ``failCode`` / ``failMsg``).
    :raises GPTImageTimeoutError: the deadline passed first.
    :raises GPTImageError: a subclass named by an ``error`` event, or for an event of the wrong shape.
    """
    if not isinstance(event, Mapping) or event.get("status") not in STATUSES:
        raise GPTImageError(f"Unexpected trigger event {event!r}: expected a status in {STATUSES}.")
    status, job_id = event["status"], event.get("job_id")
    if status in (SUCCESS, FAIL):
        try:
            record = JobRecord.from_dict(event["record"])
        except (KeyError, TypeError, ValueError) as exc:
            raise GPTImageError(
                f"Malformed {status!r} trigger event for job {job_id!r}: its `record` is missing or invalid ({exc})."
            ) from exc
        return check_finished(record)
    if status == TIMEOUT:
        raise GPTImageTimeoutError(str(event.get("message")), job_id=job_id)
    cls = _error_class(event.get("error_type"))
    error = cls.__new__(cls)
    GPTImageError.__init__(error, str(event.get("message")), job_id=job_id)
    raise error


def result_payload(record: JobRecord, outputs: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The task's return value (XCom ``return_value``): JSON-serialisable, never a secret.

    :param record: the job's final record.
    :param outputs: the copies written to ``destination`` (each with at least ``uri``), if any.
    """
    outputs = list(outputs or [])
    return {
        "job_id": record.job_id,
        "state": record.state,
        "result_urls": list(record.result_urls),
        "output_uris": [str(o["uri"]) for o in outputs],
        "outputs": outputs,
        "cost_time_ms": record.cost_time_ms,
        "create_time_ms": record.create_time_ms,
        "complete_time_ms": record.complete_time_ms,
        "model": record.model,
        "fail_code": record.fail_code,
        "fail_message": record.fail_message,
    }


def existing_payload(outputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The task's return value when its outputs were found complete and no job was created."""
    first = outputs[0] if outputs else {}
    return {
        "job_id": first.get("job_id"),
        "state": "success",
        "result_urls": [],
        "output_uris": [str(o["uri"]) for o in outputs],
        "outputs": list(outputs),
        "cost_time_ms": None,
        "create_time_ms": None,
        "complete_time_ms": None,
        "model": None,
        "fail_code": None,
        "fail_message": None,
        "skipped": True,
    }


# ------------------------------------------------------------------------------------------------- batch
#: The status of a batch trigger's event: several jobs, each described by one of the single-job events.
BATCH = "batch"


def batch_job_event(key: str, job_event: Mapping[str, Any]) -> dict[str, Any]:
    """One job of a batch event: a single-job event (:func:`record_event`, :func:`error_event`,
    :func:`timeout_event`) tagged with the item's key; :func:`outcome` reads it like any job event."""
    return {**job_event, "key": key}


def batch_event(reason: str, jobs: Sequence[Mapping[str, Any]], running: int) -> dict[str, Any]:
    """The event of a batch trigger: why it woke the task, the jobs that ended, how many still run.

    :param reason: the wake-up reason (see :mod:`airflow_provider_gptimage.protocol.window`).
    :param jobs: :func:`batch_job_event` entries of the jobs that ended (or whose polling gave up).
    :param running: jobs still running, which the task keeps watching.
    """
    return {"status": BATCH, "reason": reason, "jobs": list(jobs), "running": running}


#: The wake-up reason of a batch trigger that stopped on an exception it does not handle.
CRASHED = "crashed"


def batch_crash_event(exc: BaseException, running: int, secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """The event of a batch trigger that met an exception it does not handle: no job ended, and the task
    fails with the error (its retry re-attaches to every job in flight, which are kept in its progress)."""
    message = (
        f"Watching the batch's jobs stopped on an unexpected {type(exc).__name__}: "
        f"{excerpt(str(exc), secrets=secrets)!r}. The jobs are unaffected: retry the task to re-attach to them."
    )
    return {**batch_event(CRASHED, [], running), "message": message}


def batch_jobs(event: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """Return the job entries of a batch event, each with a ``key`` and a ``job_id``.

    :raises GPTImageError: for an event of another shape, or from a trigger that crashed (its message).
    """
    if not isinstance(event, Mapping) or event.get("status") != BATCH or not isinstance(event.get("jobs"), list):
        raise GPTImageError(f"Unexpected batch trigger event {event!r}: expected status {BATCH!r} with `jobs`.")
    if event.get("reason") == CRASHED:
        raise GPTImageError(str(event.get("message")))
    jobs = event["jobs"]
    for job in jobs:
        if not isinstance(job, Mapping) or not isinstance(job.get("key"), str) or job.get("status") not in STATUSES:
            raise GPTImageError(f"Malformed job entry {job!r} in a batch trigger event.")
    return jobs
