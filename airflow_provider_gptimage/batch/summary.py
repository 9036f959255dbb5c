"""What a batch tells its user: the report (its return value), the progress line, the failure summary."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.batch.records import ItemStatus, ResultRow
from airflow_provider_gptimage.exceptions import GPTImageBatchFailedError

if TYPE_CHECKING:
    from airflow_provider_gptimage.batch.store import Progress
    from airflow_provider_gptimage.protocol.batch import BatchItem

#: Failed items named in the error message.
SHOWN_FAILURES = 5
#: The report state of an item that has not been created yet.
NOT_STARTED = "not_started"
#: Output URIs listed at most in a batch's asset event (the report in XCom lists them all).
MAX_EVENT_URIS = 1000


def report(
    items: Sequence[BatchItem], statuses: Sequence[ItemStatus], rows: Sequence[ResultRow], *, uris_are_outputs: bool
) -> dict[str, Any]:
    """The batch's return value: one entry per key (in request order) and the totals.

    :param rows: result rows; a later row for an item replaces an earlier one.
    :param uris_are_outputs: the rows' URIs are copies in the destination (else the service's result URLs).
    """
    latest = {row.index: row for row in rows}
    entries = []
    for index, item in enumerate(items):
        row = latest.get(index) if statuses[index] is not ItemStatus.PENDING else None
        uris = list(row.uris) if row is not None else []
        entries.append(
            {
                "key": item.key,
                "job_id": row.job_id if row is not None else None,
                "state": row.state if row is not None else NOT_STARTED,
                "output_uris": uris if uris_are_outputs else [],
                "result_urls": [] if uris_are_outputs else uris,
                "error": row.error if row is not None else None,
            }
        )
    counts = {status: list(statuses).count(status) for status in ItemStatus}
    return {
        "total": len(items),
        "succeeded": counts[ItemStatus.SUCCEEDED],
        "existing": counts[ItemStatus.EXISTING],
        "failed": counts[ItemStatus.FAILED],
        "not_started": counts[ItemStatus.PENDING],
        "items": entries,
    }


def asset_extra(result: Mapping[str, Any], destination: str | None = None) -> dict[str, Any]:
    """The ``extra`` of the asset events a batch emits: its totals and the images it wrote in this run.

    :param result: the batch's :func:`report`.
    :param destination: the URI of the destination folder, if any.
    """
    written = [uri for item in result["items"] if item["state"] == "success" for uri in item["output_uris"]]
    extra: dict[str, Any] = {k: result[k] for k in ("total", "succeeded", "existing", "failed", "not_started")}
    extra["output_uris"] = written[:MAX_EVENT_URIS]
    if len(written) > MAX_EVENT_URIS:
        extra["output_uris_truncated"] = True
    if destination is not None:
        extra["destination"] = destination
    return extra


def progress_line(progress: Progress) -> str:
    """The log line of one window: done, in flight, failed, remaining, the window and an ETA."""
    total, ended, flight = len(progress.statuses), progress.ended, len(progress.flight)
    elapsed = time.time() - progress.try_started
    rate = (ended - progress.done_at_try_start) / elapsed if elapsed > 0 else 0.0
    eta = f"{(total - ended) / rate:.0f}s" if rate > 0 else "unknown"
    return (
        f"Batch: {ended}/{total} done ({progress.count(ItemStatus.SUCCEEDED)} succeeded, "
        f"{progress.count(ItemStatus.EXISTING)} existing, {progress.count(ItemStatus.FAILED)} failed), "
        f"{flight} in flight, {total - ended - flight} remaining; "
        f"window {progress.window.size}/{progress.window.maximum}; ETA {eta}"
    )


def failure_error(result: Mapping[str, Any], policy: str, *, resumable: bool = True) -> GPTImageBatchFailedError:
    """The error that fails the task for failed items (the report is pushed to XCom beforehand).

    :param resumable: whether a retry resumes this batch (``task_state_store``); without it a retry starts
        over, regenerating every item whose output is not already in the destination.
    """
    failed = [entry for entry in result["items"] if entry["state"] not in ("success", "existing", NOT_STARTED)]
    shown = "; ".join(f"{e['key']!r}: {e['state']} ({e['error']})" for e in failed[:SHOWN_FAILURES])
    more = f"; and {len(failed) - SHOWN_FAILURES} more" if len(failed) > SHOWN_FAILURES else ""
    retry = (
        "a retry generates only the failed and unfinished items."
        if resumable
        else "without task_state_store (Airflow 3.3+) a retry can start the batch over (it does on 3.1.1 to "
        "3.2.x): it regenerates every item whose image is not already in the destination."
    )
    return GPTImageBatchFailedError(
        f"{len(failed)} of {result['total']} batch items failed ({policy}): {shown}{more}. "
        f"{result['succeeded'] + result['existing']} are done and kept; jobs still in flight stay recorded. "
        f"The full report is in XCom 'batch_report'; {retry}",
        failed_keys=tuple(e["key"] for e in failed[:100]),
    )
