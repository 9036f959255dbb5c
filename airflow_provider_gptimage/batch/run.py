"""One run of a batch (a try, or one resume of it): everything it works with in one object, in small steps.

:class:`BatchRun` holds the validated items, the destination folder, the stored progress, the hook, the
settings and the log; the operator calls its steps in order: :meth:`~BatchRun.begin_try`,
:meth:`~BatchRun.absorb` (the jobs that ended), :meth:`~BatchRun.create` (the next window), then either
:meth:`~BatchRun.trigger_kwargs` (defer) or :meth:`~BatchRun.finish`. With ``deferrable=False``,
:meth:`~BatchRun.work_in_worker` loops over the same steps, polling from the worker.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_gptimage.batch.create import CreatePass
from airflow_provider_gptimage.batch.outputs import keep_outputs, scan_existing
from airflow_provider_gptimage.batch.records import ItemStatus, ResultRow
from airflow_provider_gptimage.batch.summary import asset_extra, failure_error, progress_line, report
from airflow_provider_gptimage.exceptions import (
    GPTImageError,
    GPTImageJobFailedError,
    GPTImageNotFoundError,
    GPTImageResultError,
    GPTImageResultExpiredError,
    GPTImageTimeoutError,
)
from airflow_provider_gptimage.outputs.deadline import DEFAULT_DOWNLOAD_TIMEOUT
from airflow_provider_gptimage.protocol import events
from airflow_provider_gptimage.protocol.watch import Watch

if TYPE_CHECKING:
    import logging

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.batch.catalog import BatchCatalog
    from airflow_provider_gptimage.batch.store import BatchStore, Progress
    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
    from airflow_provider_gptimage.protocol import PollSchedule
    from airflow_provider_gptimage.protocol.batch import BatchItem

FAILURE_POLICIES = ("fail_fast", "fail_at_end", "report")


@dataclass(frozen=True)
class BatchSettings:
    """The operator's arguments a run works with.

    :param failure_policy: ``fail_fast``, ``fail_at_end`` or ``report``.
    :param schedule: when to poll each job.
    :param job_timeout: seconds from a job's creation to its deadline (``None``: none).
    :param max_worker_wait: seconds of 409/429 pauses slept in the worker per pass of creates.
    :param max_concurrent_creates: creates sent at once.
    :param persist_every: creates between two writes of the jobs in flight, counted in whole groups.
    :param download_timeout: seconds each image may take to download, retries included.
    :param max_transient_errors: failed polls in a row after which a job is reported (worker polling).
    """

    failure_policy: str
    schedule: PollSchedule
    job_timeout: float | None
    max_worker_wait: float
    max_concurrent_creates: int
    persist_every: int
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
    max_transient_errors: int = 8


class BatchRun:
    """One run of a batch; see the module docstring for its steps.

    :param items: the validated items, in request order.
    :param folder: the destination folder (``None``: the result URLs are kept, which expire).
    :param store: where progress is kept.
    :param progress: the progress read from it.
    :param hook: the task's hook.
    :param settings: the operator's arguments.
    :param log: the task's logger.
    :param provenance: facts about the task for the sidecars.
    :param catalog: the catalog duties at the destination (``None`` without one).
    """

    def __init__(
        self,
        *,
        items: list[BatchItem],
        folder: ObjectStoragePath | None,
        store: BatchStore,
        progress: Progress,
        hook: GPTImageHook,
        settings: BatchSettings,
        log: logging.Logger | Any,
        provenance: Mapping[str, Any],
        catalog: BatchCatalog | None = None,
    ) -> None:
        self.items, self.folder, self.store, self.progress = items, folder, store, progress
        self.hook, self.settings, self.log, self.provenance = hook, settings, log, provenance
        self.catalog = catalog
        self.positions = {item.key: index for index, item in enumerate(items)}

    @property
    def resumable(self) -> bool:
        """Whether a retry resumes this batch (``task_state_store``)."""
        return self.store.backend is not None

    @property
    def done(self) -> bool:
        """Nothing in flight and nothing left to create."""
        return not self.progress.flight and not self.progress.pending()

    # ------------------------------------------------------------------------------------------ steps
    def begin_try(self, try_number: int) -> None:
        """On a new try, make failed items pending again, mark those already complete in the destination and
        re-attach those whose job the destination's journal holds; the new try is stored at once (a resume of
        it must not take its pending items for failed ones, nor forget a re-attached job)."""
        if not self.progress.start_try(try_number):
            return
        watched = set(self.progress.flight)
        rows = self.catalog.begin(self.items, self.progress) if self.catalog is not None else []
        if set(self.progress.flight) != watched:  # jobs re-attached from the journal: stored before anything else
            self.progress.save_live(self.store)
        if self.folder is not None:
            force = self.catalog.options.force if self.catalog is not None else False
            rows += scan_existing(self.folder, self.items, self.progress, force=force)
        if rows:
            self.log.info("%d item(s) are already complete in the destination: no job for them", len(rows))
        self.progress.save_results(self.store, rows)

    def absorb(self, ended: Sequence[Mapping[str, Any]]) -> None:
        """Keep the jobs that ended: copy successes, note failures; persist even if a copy fails.

        :param ended: job events tagged with their key (:func:`~.protocol.events.batch_jobs`).
        """
        from airflow_provider_gptimage.outputs.session import download_session

        rows: list[ResultRow] = []
        http = download_session() if self.folder is not None and ended else None  # one for this resume's copies
        try:
            for entry in ended:
                row = self._absorb_one(entry, http)
                if row is not None:
                    rows.append(row)
        finally:
            if http is not None:
                http.close()
            if rows:  # the live key is rewritten by the creates that follow (a stale one is safe: see load)
                self.progress.save_results(self.store, rows)

    def _absorb_one(self, entry: Mapping[str, Any], http: Any) -> ResultRow | None:
        key, job_id = str(entry["key"]), str(entry.get("job_id"))
        index, job = self.positions.get(key), self.progress.flight.get(key)
        if index is None or job is None or job.job_id != job_id:
            return None  # not ours any more (a trigger that ran twice, or an edited batch)
        try:
            record = events.outcome(entry)
        except (GPTImageJobFailedError, GPTImageTimeoutError, GPTImageResultError) as exc:
            state = {GPTImageJobFailedError: "fail", GPTImageTimeoutError: "timeout"}.get(type(exc), "error")
            if self.catalog is not None and events.job_is_spent(exc):
                self.catalog.failed(self.items[index], job_id)
            return self._ended(index, ResultRow(index, job_id, state, (), str(exc)), ItemStatus.FAILED)
        except GPTImageNotFoundError:
            self.log.warning("Job %s of key %r is unknown to the service; creating it again", job_id, key)
            del self.progress.flight[key]
            return None
        except GPTImageError as exc:
            if not exc.retryable:
                raise
            self.log.warning("Polling job %s of key %r keeps failing (%s); still watching it", job_id, key, exc)
            return None
        record = replace(record, params=self.items[index].request.body())
        item = self.items[index]
        history = self.catalog.options.history if self.catalog is not None else "keep"
        try:
            uris, outputs = keep_outputs(
                record, item, self.folder, http, self.hook.sleep, self.provenance, self.settings.download_timeout,
                history,
            )  # fmt: skip
        except GPTImageResultExpiredError as exc:  # the images are gone: only a new job helps
            if self.catalog is not None:
                self.catalog.failed(item, job_id)
            if events.pay_again_now(exc, job.created_at, self.progress.try_started):
                self.log.warning("The images of job %s (key %r) are gone; creating a new job for it", job_id, key)
                del self.progress.flight[key]  # pending again: the next create pass makes its job
                return None
            return self._ended(index, ResultRow(index, job_id, "error", (), str(exc)), ItemStatus.FAILED)
        if self.catalog is not None:
            self.catalog.committed(item, job_id, outputs)
        return self._ended(index, ResultRow(index, job_id, "success", tuple(uris)), ItemStatus.SUCCEEDED)

    def _ended(self, index: int, row: ResultRow, status: ItemStatus) -> ResultRow:
        self.progress.statuses[index] = status
        del self.progress.flight[self.items[index].key]
        return row

    def create(self, *, stale: bool) -> list[tuple[str, Any]]:
        """Create jobs while the window has room (see :class:`~.create.CreatePass`); return those created."""
        return CreatePass(self).send(stale=stale)

    def check_fail_fast(self, context: Mapping[str, Any]) -> None:
        """With ``fail_fast``, fail the task at the first failed item."""
        if self.settings.failure_policy == "fail_fast" and self.progress.count(ItemStatus.FAILED):
            self.fail(context)

    def log_progress(self) -> None:
        """One log line: done, in flight, failed, remaining, the window and an ETA."""
        self.log.info("%s", progress_line(self.progress))

    # ------------------------------------------------------------------------------------------ ending
    def report(self) -> dict[str, Any]:
        """The batch's return value (see :func:`~.summary.report`)."""
        rows = self.progress.rows(self.store)
        return report(self.items, self.progress.statuses, rows, uris_are_outputs=self.folder is not None)

    def fail(self, context: Mapping[str, Any]) -> NoReturn:
        """Push the report to XCom ``batch_report`` and fail with a summary of the failed items."""
        result = self.report()
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="batch_report", value=result)
        raise failure_error(result, self.settings.failure_policy, resumable=self.resumable)

    def finish(self, context: Mapping[str, Any], outlets: Any) -> dict[str, Any]:
        """End the batch: fold the night into the catalog, fail for failed items (unless ``report``), else annotate
        the asset events and report."""
        night = None
        if self.catalog is not None:
            night = self.catalog.close(str(context.get("run_id") or "run"))
            self.log.info("Catalog: %s", night["counts"])
        if self.progress.count(ItemStatus.FAILED) and self.settings.failure_policy != "report":
            self.fail(context)
        result = self.report()
        if night is not None:
            result["catalog"] = night
        from airflow_provider_gptimage.context import annotate_asset_events

        destination = None
        if self.folder is not None:
            from airflow_provider_gptimage.outputs import path_uri

            destination = path_uri(self.folder)
        annotate_asset_events(context, outlets, asset_extra(result, destination))
        return result

    # ------------------------------------------------------------------------------------------ waiting
    def trigger_jobs(self) -> list[list[Any]]:
        """The jobs in flight as the batch trigger takes them: ``[key, job_id, created_at]``."""
        return [[key, job.job_id, job.created_at] for key, job in self.progress.flight.items()]

    @property
    def paused(self) -> bool:
        """Creates wait for a 409/429 pause to end while the window has room."""
        progress = self.progress
        return progress.window.room(len(progress.flight)) > 0 and progress.create_after > time.time()

    def work_in_worker(self, context: Mapping[str, Any], outlets: Any) -> dict[str, Any]:
        """``deferrable=False``: poll from the worker and refill the window the moment a job ends."""
        watch = Watch(
            [(key, job.job_id, job.created_at) for key, job in self.progress.flight.items()],
            schedule=self.settings.schedule,
            job_timeout=self.settings.job_timeout,
            max_transient_errors=self.settings.max_transient_errors,
        )
        rng, stale = random.Random(), False
        while True:
            for key, job in self.create(stale=stale):
                watch.add(key, job.job_id, job.created_at)
            self.log_progress()
            if self.done:
                return self.finish(context, outlets)
            due, next_due = watch.due(time.time())
            for job in due:
                watch.settle(job, self._poll(job.job_id), time.time(), rng.random())
            ended = watch.take_ended()
            watched = len(self.progress.flight)
            self.absorb(ended)
            self.check_fail_fast(context)
            stale = len(self.progress.flight) != watched
            for key, job in self.progress.flight.items():  # still in flight after a poll gave up: keep watching
                if job.job_id not in watch.running:
                    watch.add(key, job.job_id, job.created_at)
            if not due and not ended:
                wake = [t for t in (next_due, self.progress.create_after if self.paused else None) if t is not None]
                self.hook.sleep(max(0.0, min(wake, default=time.time() + 1.0) - time.time()))

    def _poll(self, job_id: str) -> Any:
        try:
            return self.hook.get_task(job_id)
        except GPTImageError as exc:
            return exc
