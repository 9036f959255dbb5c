"""Worker-side steps of the batch operator: outputs already in the destination, the jobs that ended (copies
and failures), the sender of create groups, progress and the failure summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.exceptions import (
    GPTImageBatchFailedError,
    GPTImageError,
    GPTImageJobFailedError,
    GPTImageNotFoundError,
    GPTImageResultError,
    GPTImageTimeoutError,
)
from airflow_provider_gptimage.protocol import events
from airflow_provider_gptimage.protocol.batch import EXISTING, FAILED, PENDING, SUCCESS, result_row

if TYPE_CHECKING:
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
    from airflow_provider_gptimage.operators.batch_state import BatchStore, Progress
    from airflow_provider_gptimage.protocol import JobRecord
    from airflow_provider_gptimage.protocol.batch import BatchItem

#: Failed items named in the error message.
SHOWN_FAILURES = 5
#: Report state of an item whose job ended badly (a success without images is an ``error``).
_FAILED_STATES = {GPTImageJobFailedError: "fail", GPTImageTimeoutError: "timeout"}


def scan_existing(
    folder: ObjectStoragePath | None, items: list[BatchItem], progress: Progress, log: logging.Logger | Any
) -> list[list[Any]]:
    """Mark pending items whose outputs are complete in the destination; return their result rows.

    One listing of the folder finds the candidates (a sidecar named after the key); only those are
    checked with :func:`~airflow_provider_gptimage.outputs.find_existing`, so 10,000 keys cost one listing,
    not 10,000 reads. A folder or object-store prefix that does not exist yet (nothing written under it) is
    an empty catalog.
    """
    if folder is None:
        return []
    from airflow_provider_gptimage.outputs import find_existing, validate_filename

    try:
        names = {path.name for path in folder.iterdir()}
    except (FileNotFoundError, NotADirectoryError):  # a fresh prefix (no object yet) is an empty catalog
        return []
    rows = []
    for index, item in enumerate(items):
        if progress.status[index] != PENDING or item.key in progress.flight:
            continue
        stem = validate_filename(item.key)
        if f"{stem}.json" in names or f"{stem}-1.json" in names:
            found = find_existing(folder, item.key)
            if found:
                progress.status[index] = EXISTING
                rows.append(result_row(index, found[0].job_id, "existing", [o.uri for o in found]))
    if rows:
        log.info("%d item(s) are already complete in the destination; they will not be generated", len(rows))
    return rows


def keep_outputs(
    record: JobRecord,
    item: BatchItem,
    folder: ObjectStoragePath | None,
    http: Any,
    sleep: Callable[[float], None],
    extra: Mapping[str, Any],
    download_timeout: float,
) -> list[str]:
    """Copy a successful job's images to the destination, named by key; return their URIs.

    Without a destination the result URLs are returned (they expire in about a day). A copy already made
    from this very job (a resume after a crash between copy and bookkeeping) is not made again.
    """
    if folder is None:
        return list(record.result_urls)
    from airflow_provider_gptimage.outputs import copy_results, find_existing

    found = find_existing(folder, item.key)
    if found and all(output.job_id == record.job_id for output in found):
        return [output.uri for output in found]
    written = copy_results(
        record,
        folder,
        filename=item.key,
        session=http,
        provenance={**extra, "batch_key": item.key},
        sleep=sleep,
        download_timeout=download_timeout,
    )
    return [output.uri for output in written]


def absorb(
    hook: GPTImageHook,
    items: list[BatchItem],
    folder: ObjectStoragePath | None,
    store: BatchStore,
    progress: Progress,
    ended: list[Mapping[str, Any]],
    provenance: Mapping[str, Any],
    log: logging.Logger | Any,
    download_timeout: float,
) -> None:
    """Keep the jobs that ended: copy successes, note failures; persist even if a copy fails.

    :param ended: the trigger's entries (``key``, ``job_id`` and the job's event), see
        :func:`~airflow_provider_gptimage.protocol.events.batch_jobs`.
    :param provenance: facts about the task for the sidecars.
    :param download_timeout: seconds each image may take to download.
    """
    from airflow_provider_gptimage.outputs.session import download_session

    positions = {item.key: index for index, item in enumerate(items)}
    rows: list[list[Any]] = []
    http = download_session() if folder is not None and ended else None  # one for this resume's copies
    try:
        for entry in ended:
            key, job_id = str(entry["key"]), str(entry.get("job_id"))
            index = positions.get(key)
            if index is None or progress.flight.get(key, [None])[0] != job_id:
                continue  # not ours any more (a trigger that ran twice, or an edited batch)
            code, state, uris, error = SUCCESS, "success", [], None
            try:
                record = events.outcome(entry)
            except (GPTImageJobFailedError, GPTImageTimeoutError, GPTImageResultError) as exc:
                code, state, error = FAILED, _FAILED_STATES.get(type(exc), "error"), str(exc)
            except GPTImageNotFoundError:
                log.warning("Job %s of key %r is unknown to the service; creating it again", job_id, key)
                del progress.flight[key]
                continue
            except GPTImageError as exc:
                if not exc.retryable:
                    raise
                log.warning("Polling job %s of key %r keeps failing (%s); still watching it", job_id, key, exc)
                continue
            else:
                record = replace(record, params=items[index].request.body())
                uris = keep_outputs(record, items[index], folder, http, hook.sleep, provenance, download_timeout)
            rows.append(result_row(index, job_id, state, uris, error))
            progress.status[index] = code
            del progress.flight[key]
    finally:
        if http is not None:
            http.close()
        if rows:  # the live key is rewritten by the creates that follow (a stale one is safe: see load)
            progress.save_results(store, rows)


class GroupSender:
    """Send a group of creates at once, each from its own thread, through the task's one hook (safe to share).

    Each create names its item in ``X-Request-ID`` (``<task>:<key>``), as an argument of the call. With
    ``width`` 1 the creates are sent one by one from the calling thread.

    :param hook: the task's hook (its ``request_id_prefix`` names the task instance).
    :param width: the most creates in flight at once (``max_concurrent_creates``).
    """

    def __init__(self, hook: GPTImageHook, width: int) -> None:
        self.hook, self.width = hook, max(1, int(width))
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, items: list[BatchItem]) -> list[tuple[str | Exception, float]]:
        """Create a job for each item; return, in order, its job id or the error, and when it was answered."""
        if len(items) > self.width:
            raise ValueError(f"a group of {len(items)} creates exceeds the width {self.width}")
        if len(items) == 1:
            return [_send(self.hook, items[0])]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.width, thread_name_prefix="gptimage-create")
        return [future.result() for future in [self._pool.submit(_send, self.hook, item) for item in items]]

    def close(self) -> None:
        """Wait for creates still in flight (their ids are lost if the caller stopped) and end the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _send(hook: GPTImageHook, item: BatchItem) -> tuple[str | Exception, float]:
    try:
        return hook.submit(item.request, request_id=f"{hook.request_id_prefix}:{item.key}"), time.time()
    except Exception as exc:  # handed back: the caller decides per item, after storing the group's ids
        return exc, time.time()


def progress_line(progress: Progress, total: int) -> str:
    """The log line of one window: done, in flight, failed, remaining, the window and an ETA."""
    ended, flight = progress.ended, len(progress.flight)
    elapsed = time.time() - progress.try_started
    rate = (ended - progress.done_at_try_start) / elapsed if elapsed > 0 else 0.0
    eta = f"{(total - ended) / rate:.0f}s" if rate > 0 else "unknown"
    return (
        f"Batch: {ended}/{total} done ({progress.count(SUCCESS)} succeeded, {progress.count(EXISTING)} existing, "
        f"{progress.count(FAILED)} failed), {flight} in flight, {total - ended - flight} remaining; "
        f"window {progress.window.size}/{progress.window.maximum}; ETA {eta}"
    )


def failure_error(result: Mapping[str, Any], policy: str, *, resumable: bool = True) -> GPTImageBatchFailedError:
    """The error that fails the task for failed items (the report is pushed to XCom beforehand).

    :param resumable: whether a retry resumes this batch (``task_state_store``); without it a retry starts
        over, regenerating every item whose output is not already in the destination.
    """
    failed = [entry for entry in result["items"] if entry["state"] not in ("success", "existing", "not_started")]
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
