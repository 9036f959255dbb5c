"""Operator that generates a whole catalog of images in one task, within the account's limits, without
holding a worker slot while the service works."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage._compat import current_try, keep_defer_kwargs, resumed_defer_kwargs
from airflow_provider_gptimage.exceptions import GPTImageError, GPTImageValidationError
from airflow_provider_gptimage.links import GPTImageGalleryLink, GPTImageResultLink
from airflow_provider_gptimage.operators.batch_create import CreateSettings, create_jobs
from airflow_provider_gptimage.operators.batch_state import BatchStore, Progress
from airflow_provider_gptimage.operators.batch_steps import absorb, failure_error, progress_line, scan_existing
from airflow_provider_gptimage.protocol import events
from airflow_provider_gptimage.protocol.batch import FAILED, batch_asset_extra, build_batch
from airflow_provider_gptimage.protocol.batch import report as build_report
from airflow_provider_gptimage.runtime import annotate_asset_events, request_id_prefix, seconds, task_provenance

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
    from airflow_provider_gptimage.protocol.batch import BatchItem

FAILURE_POLICIES = ("fail_fast", "fail_at_end", "report")
#: The hook hands 409 and 429 back at once: the create window paces itself on them.
_CREATE_POLICY = protocol.RetryPolicy(no_retry_codes=frozenset({409, 429}))


class GPTImageBatchGenerateOperator(BaseOperator):
    """Generate one image per item of ``requests``, keeping at most ``max_active_jobs`` jobs in flight.

    The task creates a window of jobs, defers to ONE :class:`~.triggers.batch.GPTImageBatchTrigger` that
    polls all of them, resumes only to copy finished images and create the next window, and defers again.
    A 409 shrinks the window (AIMD, see :mod:`~.protocol.window`), a 429 pauses creates for ``Retry-After``.
    Progress (each item's status, the job ids in flight) is kept in ``task_state_store`` and in the defer
    kwargs: a killed worker or a retry resumes without paying twice for any job whose id was stored (only
    the creates in flight at the crash can be lost, see ``max_concurrent_creates``), and items whose output
    is already complete in ``destination`` are not generated again. Failed items are retried by the next task try.

    :param requests: items ``{"key", "prompt", "aspect_ratio"?, "resolution"?, "quality"?,
        "output_format"?}`` with unique keys; a list, an XComArg, or a template rendering to one (templated).
    :param max_active_jobs: the account's active-task limit: the initial and largest window.
    :param destination: folder to copy images into, named ``<key>.<ext>`` (templated).
    :param destination_conn_id: connection of the object store of ``destination`` (templated).
    :param gptimage_conn_id: the ``gptimage`` connection holding the API key.
    :param failure_policy: ``fail_fast`` (fail at the first failed item), ``fail_at_end`` (finish the rest,
        then fail with a summary; default) or ``report`` (succeed; failures are in the return value).
    :param poll_interval: seconds from a job's creation to its first poll; waits grow to ``max_poll_interval``.
    :param max_poll_interval: the longest wait between two polls of a job.
    :param timeout: the longest wait for each job from its creation (seconds or timedelta; ``None``: none).
    :param wake_fraction: share of the jobs in flight whose end is worth resuming the task for.
    :param wake_linger: seconds after the first job ends before resuming anyway (default ``poll_interval``).
    :param min_wake_delay: seconds after deferring before the task may be woken (default ``poll_interval``):
        a trigger event that reaches the scheduler before the executor's report of the deferral can fail the
        resumed task (apache/airflow#72716). ``dag.test()`` runs triggers inline and has no such race.
    :param max_worker_wait: seconds of 429/409 pauses slept in the worker per resume; longer ones defer.
    :param max_concurrent_creates: creates sent at once (a group, from a small thread pool) when the window
        has room for several. The group's job ids are stored in ONE state write once every create of the
        group has answered, before the next group is sent: a crash while a group is in flight can orphan at
        most that group's jobs, which a retry creates (and pays for) again. ``1`` sends and stores one create
        at a time (a crash orphans at most the job being created).
    :param persist_every: creates between two writes of the jobs in flight, counted in whole groups. ``1``
        (default) stores the ids after every group; ``n`` saves state writes but a crash may orphan up to
        ``max(n, max_concurrent_creates)`` jobs, which a retry creates (and pays for) again.
    """

    template_fields: Sequence[str] = ("requests", "destination", "destination_conn_id")
    ui_color = "#e8f0fe"
    operator_extra_links = (GPTImageResultLink(), GPTImageGalleryLink())

    def __init__(
        self,
        *,
        requests: Any,
        max_active_jobs: int = 5,
        destination: Any = None,
        destination_conn_id: str | None = None,
        gptimage_conn_id: str = protocol.DEFAULT_CONN_ID,
        failure_policy: str = "fail_at_end",
        poll_interval: float = protocol.DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = protocol.DEFAULT_MAX_POLL_INTERVAL,
        timeout: float | timedelta | None = timedelta(hours=1),
        wake_fraction: float = 0.25,
        wake_linger: float | None = None,
        min_wake_delay: float | None = None,
        max_worker_wait: float = 5.0,
        max_concurrent_creates: int = 8,
        persist_every: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if failure_policy not in FAILURE_POLICIES:
            raise GPTImageValidationError(
                "failure_policy", f"must be one of {', '.join(FAILURE_POLICIES)}", value=failure_policy
            )
        if isinstance(max_active_jobs, bool) or not isinstance(max_active_jobs, int) or max_active_jobs < 1:
            raise GPTImageValidationError("max_active_jobs", "must be a positive integer", value=max_active_jobs)
        protocol.PollSchedule.of(poll_interval, max_poll_interval)
        self.requests = requests
        self.max_active_jobs = max_active_jobs
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.gptimage_conn_id = gptimage_conn_id
        self.failure_policy = failure_policy
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self.wake_fraction = wake_fraction
        self.wake_linger = poll_interval if wake_linger is None else wake_linger
        self.min_wake_delay = poll_interval if min_wake_delay is None else max(0.0, float(min_wake_delay))
        self.max_worker_wait = max_worker_wait
        self.max_concurrent_creates = max(1, int(max_concurrent_creates))
        self.persist_every = max(1, int(persist_every))
        if isinstance(requests, list):  # a literal list fails when the DAG is parsed, templates at execution
            self._batch()

    # ------------------------------------------------------------------------------------------ entry points
    def execute(self, context: Context) -> dict[str, Any]:
        """Validate every item (nothing is sent if one is bad), then start or resume the batch."""
        items = self._batch()
        folder = self._folder(check=True)
        store = BatchStore(context.get("task_state_store"))  # type: ignore[call-overload]
        if store.backend is None:
            self.log.warning("No task_state_store (Airflow < 3.3): a retry cannot resume this batch's jobs.")
        progress = self._load(store, items)
        if progress.start_try(current_try(context) or 1):
            progress.save_results(store, scan_existing(folder, items, progress, self.log))
        return self._step(context, items, folder, store, progress, [])

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, state: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after the trigger fired: keep what ended, create the next window, defer again or finish."""
        items = self._batch()
        if state is None and context.get("task_state_store") is None:  # type: ignore[call-overload]
            state = self._lost_state(context)
        store = BatchStore(context.get("task_state_store"), state)  # type: ignore[call-overload]
        progress = self._load(store, items)
        if progress.start_try(current_try(context) or 1):  # a retry resumed here (Airflow < 3.1.1, see _compat)
            progress.save_results(store, scan_existing(self._folder(check=True), items, progress, self.log))
        ended = events.batch_jobs(event)
        seen_at = event.get("at") if isinstance(event, Mapping) else None  # when the trigger last polled
        seen = float(seen_at) if isinstance(seen_at, (int, float)) else None
        return self._step(context, items, self._folder(check=False), store, progress, ended, seen)

    # ------------------------------------------------------------------------------------------ the cycle
    def _step(
        self,
        context: Context,
        items: list[BatchItem],
        folder: ObjectStoragePath | None,
        store: BatchStore,
        progress: Progress,
        ended: list[Mapping[str, Any]],
        seen_at: float | None = None,
    ) -> dict[str, Any]:
        hook = self._hook(context)
        watched = len(progress.flight)
        absorb(hook, items, folder, store, progress, ended, task_provenance(context), self.log)
        if self.failure_policy == "fail_fast" and progress.count(FAILED):
            self._fail(context, items, folder, store, progress)
        settings = CreateSettings(self.max_concurrent_creates, self.persist_every, self.max_worker_wait)
        create_jobs(hook, items, store, progress, settings, stale=len(progress.flight) != watched)
        self.log.info("%s", progress_line(progress, len(items)))
        if not progress.flight and not progress.pending():
            return self._finish(context, items, folder, store, progress)
        from airflow_provider_gptimage.triggers.batch import GPTImageBatchTrigger

        paused = progress.window.room(len(progress.flight)) > 0 and progress.create_after > time.time()
        flight = [[key, job[0], job[1]] for key, job in progress.flight.items()]
        carried = {"state": store.to_kwargs(progress.open_segment)}
        if store.backend is None:
            keep_defer_kwargs(context, carried)  # dag.test() drops defer kwargs (see _compat)
        self.defer(
            trigger=GPTImageBatchTrigger(
                jobs=flight,
                gptimage_conn_id=self.gptimage_conn_id,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                job_timeout=seconds(self.timeout),
                wake_fraction=self.wake_fraction,
                wake_linger=self.wake_linger,
                min_event_delay=self.min_wake_delay,
                wake_at=progress.create_after if paused or not flight else None,
                seen_at=seen_at,
                request_id_prefix=hook.request_id_prefix,
            ),
            method_name="execute_complete",
            kwargs=carried,
        )

    # ------------------------------------------------------------------------------------------ helpers
    def _batch(self) -> list[BatchItem]:
        key_rule = None
        if self.destination:
            from airflow_provider_gptimage.outputs import validate_filename

            key_rule = validate_filename
        items, warnings = build_batch(self.requests, key_rule=key_rule)
        for warning in warnings[:10]:
            self.log.warning(warning)
        return items

    def _folder(self, *, check: bool) -> ObjectStoragePath | None:
        if not self.destination:
            return None
        from airflow_provider_gptimage.outputs import check_destination, resolve_destination

        folder = resolve_destination(self.destination, self.destination_conn_id or None)
        if check:
            check_destination(folder)
        return folder

    def _hook(self, context: Context) -> GPTImageHook:
        from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

        return GPTImageHook(
            self.gptimage_conn_id, retry_policy=_CREATE_POLICY, request_id_prefix=request_id_prefix(context)
        )

    def _lost_state(self, context: Context) -> Mapping[str, Any]:
        """The progress a resume without ``task_state_store`` must get from its defer kwargs, or a clear
        error: starting over would create (and pay for) every job in flight again, at every resume."""
        state = resumed_defer_kwargs(context).get("state")
        if not isinstance(state, Mapping):
            raise GPTImageError(
                "The batch resumed without its progress: the `state` passed to defer() is missing and this "
                "Airflow has no task_state_store (3.3+). Refusing to start the batch over, which would create "
                "and pay for its jobs in flight again; clear the task to restart it."
            )
        return state

    def _load(self, store: BatchStore, items: list[BatchItem]) -> Progress:
        progress, notes = Progress.load(store, items, self.max_active_jobs)
        for note in notes:
            self.log.warning(note)
        return progress

    def _fail(
        self, context: Context, items: list[BatchItem], folder: Any, store: BatchStore, progress: Progress
    ) -> None:
        result = self._report(items, folder, store, progress)
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key="batch_report", value=result)
        raise failure_error(result, self.failure_policy, resumable=store.backend is not None)

    def _report(self, items: list[BatchItem], folder: Any, store: BatchStore, progress: Progress) -> dict[str, Any]:
        return build_report(items, "".join(progress.status), progress.rows(store), uris_are_outputs=folder is not None)

    def _finish(
        self, context: Context, items: list[BatchItem], folder: Any, store: BatchStore, progress: Progress
    ) -> dict[str, Any]:
        if progress.count(FAILED) and self.failure_policy != "report":
            self._fail(context, items, folder, store, progress)
        report = self._report(items, folder, store, progress)
        destination = None
        if folder is not None:
            from airflow_provider_gptimage.outputs import path_uri

            destination = path_uri(folder)
        annotate_asset_events(context, self.outlets, batch_asset_extra(report, destination))
        return report

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """Describe for OpenLineage the images written to ``destination`` (one dataset per image, or per folder
        for a large batch)."""
        from airflow_provider_gptimage.lineage import lineage_for, task_result

        return lineage_for(task_result(task_instance))
