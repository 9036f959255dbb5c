"""Operator that generates a whole catalog of images in one task, within the account's limits, without
holding a worker slot while the service works (the machinery is :mod:`airflow_provider_gptimage.batch`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage.context import current_try, request_id_prefix, task_provenance
from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.links import GPTImageGalleryLink, GPTImageResultLink
from airflow_provider_gptimage.outputs.deadline import DEFAULT_DOWNLOAD_TIMEOUT, download_timeout_seconds
from airflow_provider_gptimage.protocol import events
from airflow_provider_gptimage.protocol.batch import build_batch

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_gptimage.batch.run import BatchRun
    from airflow_provider_gptimage.protocol.batch import BatchItem

FAILURE_POLICIES = ("fail_fast", "fail_at_end", "report")
#: The hook hands 409 and 429 back at once: the create window paces itself on them.
_CREATE_POLICY = protocol.RetryPolicy(no_retry_codes=frozenset({409, 429}))


class GPTImageBatchGenerateOperator(BaseOperator):
    """Generate one image per item of ``requests``, keeping at most ``max_active_jobs`` jobs in flight.

    The task creates a window of jobs, defers to ONE :class:`~.triggers.batch.GPTImageBatchTrigger` that
    polls all of them, resumes only to copy finished images and create the next window, and defers again.
    With ``deferrable=False`` it polls from the worker instead and refills the window the moment a job
    ends (one worker slot for the whole batch: worth it when images take seconds).
    A 409 shrinks the window (AIMD, see :mod:`~.protocol.window`), a 429 pauses creates for ``Retry-After``.
    Progress (each item's status, the job ids in flight) is kept in ``task_state_store`` and in the defer
    kwargs: a killed worker or a retry resumes without paying twice for any job whose id was stored (only
    the creates in flight at the crash can be lost, see ``max_concurrent_creates``), and items whose output
    is already complete in ``destination`` are not generated again. Failed items are retried by the next try.

    :param requests: items ``{"key", "prompt", "aspect_ratio"?, "resolution"?, "quality"?,
        "output_format"?}`` with unique keys; a list, an XComArg, or a template rendering to one (templated).
    :param max_active_jobs: the account's active-task limit: the initial and largest window.
    :param destination: folder to copy images into, named ``<key>.<ext>`` (templated). Each key must fit
        it in bytes (with the temporary name of a copy): checked for every item before any job is created.
        A folder or prefix that does not exist yet is an empty catalog.
    :param destination_conn_id: connection of the object store of ``destination`` (templated).
    :param gptimage_conn_id: the ``gptimage`` connection holding the API key.
    :param failure_policy: ``fail_fast`` (fail at the first failed item), ``fail_at_end`` (finish the rest,
        then fail with a summary; default) or ``report`` (succeed; failures are in the return value).
    :param deferrable: wait in the triggerer (default) rather than polling in the worker.
    :param poll_interval: seconds from a job's creation to its first poll; waits grow to ``max_poll_interval``.
    :param max_poll_interval: the longest wait between two polls of a job.
    :param timeout: the longest wait for each job from its creation (seconds or timedelta; ``None``: none).
    :param wake_fraction: share of the jobs in flight whose end is worth resuming the task for (once no
        other is about to end: see :class:`~airflow_provider_gptimage.protocol.window.WakePolicy`).
    :param wake_linger: seconds after the first job ends before resuming anyway (default ``poll_interval``).
    :param min_wake_delay: seconds after its trigger starts before the task may be woken (default
        ``poll_interval``): see :func:`~airflow_provider_gptimage.protocol.polling.event_hold`.
    :param max_worker_wait: seconds of 429/409 pauses slept in the worker per resume; longer ones defer.
    :param max_concurrent_creates: creates sent at once (a group, from a small thread pool) when the window
        has room for several. The group's job ids are stored in ONE state write once every create of the
        group has answered, before the next group is sent: a crash while a group is in flight can orphan at
        most that group's jobs, which a retry creates (and pays for) again. ``1`` sends and stores one create
        at a time (a crash orphans at most the job being created).
    :param persist_every: creates between two writes of the jobs in flight, counted in whole groups. ``1``
        (default) stores the ids after every group; ``n`` saves state writes but a crash may orphan up to
        ``max(n, max_concurrent_creates)`` jobs, which a retry creates (and pays for) again.
    :param download_timeout: seconds (or a timedelta) each image may take to download, retries included.
    :param max_new_images: spend guard, with ``destination``: the most jobs a try may pay for. The try plans
        first (new, changed, unchanged, removed keys, from the catalog manifest) and fails before any create,
        saying how many and why, when the plan needs more (``None``: no guard).
    :param dry_run: plan only: log and return the plan, create nothing.
    :param force: ``True`` generates every item again, even those whose kept image was made by the same
        request; a list of keys, e.g. ``["SKU-7"]``, generates those items again only.
    :param remove_missing: move keys the catalog holds but ``requests`` no longer lists to history (by
        default they are only reported).
    :param history: what becomes of a kept image a new one replaces: ``keep`` (moved to
        ``<destination>/_history/<key>/``) or ``drop`` (deleted).

    **An incremental catalog.** With a ``destination``, an item whose image there was made by the same
    request (the model and every input field, see :func:`~airflow_provider_gptimage.protocol.fingerprint`)
    is reused; a changed prompt or parameter makes a new image. Every job is journaled in the destination as
    soon as its id is known, so a later run of the same night re-attaches instead of paying again. At the
    end the manifest ``_catalog/manifest.json`` and the night's report ``_catalog/runs/`` are written; the
    return value gains ``catalog`` (new, changed, unchanged, removed, failed counts and the resolution mix).
    See :mod:`airflow_provider_gptimage.catalog`.
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
        deferrable: bool = True,
        poll_interval: float = protocol.DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = protocol.DEFAULT_MAX_POLL_INTERVAL,
        timeout: float | timedelta | None = timedelta(hours=1),
        wake_fraction: float = 0.25,
        wake_linger: float | None = None,
        min_wake_delay: float | None = None,
        max_worker_wait: float = 5.0,
        max_concurrent_creates: int = 8,
        persist_every: int = 1,
        download_timeout: float | timedelta = DEFAULT_DOWNLOAD_TIMEOUT,
        max_new_images: int | None = None,
        dry_run: bool = False,
        force: bool | Sequence[str] = False,
        remove_missing: bool = False,
        history: str = "keep",
        **kwargs: Any,
    ) -> None:
        from airflow_provider_gptimage.protocol.catalog import CatalogOptions

        super().__init__(**kwargs)
        self.catalog_options = CatalogOptions.of(
            max_new_images=max_new_images, force=force, remove_missing=remove_missing, history=history
        )
        self.plan_only = bool(dry_run)  # BaseOperator.dry_run is a method
        if failure_policy not in FAILURE_POLICIES:
            raise GPTImageValidationError(
                "failure_policy", f"must be one of {', '.join(FAILURE_POLICIES)}", value=failure_policy
            )
        if isinstance(max_active_jobs, bool) or not isinstance(max_active_jobs, int) or max_active_jobs < 1:
            raise GPTImageValidationError("max_active_jobs", "must be a positive integer", value=max_active_jobs)
        self.schedule = protocol.PollSchedule.of(poll_interval, max_poll_interval)
        self.requests = requests
        self.max_active_jobs = max_active_jobs
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.gptimage_conn_id = gptimage_conn_id
        self.failure_policy = failure_policy
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self.wake_fraction = wake_fraction
        self.wake_linger = poll_interval if wake_linger is None else wake_linger
        self.min_wake_delay = poll_interval if min_wake_delay is None else max(0.0, float(min_wake_delay))
        self.max_worker_wait = max_worker_wait
        self.max_concurrent_creates = max(1, int(max_concurrent_creates))
        self.persist_every = max(1, int(persist_every))
        self.download_timeout = download_timeout_seconds(download_timeout)
        if isinstance(requests, list):  # a literal list fails when the DAG is parsed, templates at execution
            self._batch()

    # ------------------------------------------------------------------------------------------ entry points
    def execute(self, context: Context) -> dict[str, Any]:
        """Validate every item (nothing is sent if one is bad), then start or resume the batch."""
        run = self._run(context, check=True)
        if self.plan_only:
            return self._dry_run(run)
        if not run.resumable:
            self.log.warning("No task_state_store (Airflow < 3.3): a retry cannot resume this batch's jobs.")
        run.begin_try(current_try(context) or 1)
        if not self.deferrable:
            return run.work_in_worker(context, self.outlets)
        return self._step(context, run, [])

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, state: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after the trigger fired: keep what ended, create the next window, defer again or finish."""
        if state is None and context.get("task_state_store") is None:  # type: ignore[call-overload]
            from airflow_provider_gptimage.deferral import lost_state

            state = lost_state(context)
        run = self._run(context, carried=state, check=False)
        run.begin_try(current_try(context) or 1)  # a retry resumed here (Airflow < 3.1.1, see context)
        ended = events.batch_jobs(event)
        seen_at = event.get("at") if isinstance(event, Mapping) else None  # when the trigger last polled
        return self._step(context, run, ended, float(seen_at) if isinstance(seen_at, (int, float)) else None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """Describe for OpenLineage the images written to ``destination`` (one dataset per image, or per folder
        for a large batch)."""
        from airflow_provider_gptimage.lineage import lineage_for, task_result

        return lineage_for(task_result(task_instance))

    # ------------------------------------------------------------------------------------------ the cycle
    def _step(
        self, context: Context, run: BatchRun, ended: Sequence[Mapping[str, Any]], seen_at: float | None = None
    ) -> dict[str, Any]:
        watched = len(run.progress.flight)
        run.absorb(ended)
        run.check_fail_fast(context)
        run.create(stale=len(run.progress.flight) != watched)
        run.log_progress()
        if run.done:
            return run.finish(context, self.outlets)
        from airflow_provider_gptimage.deferral import keep_defer_kwargs
        from airflow_provider_gptimage.triggers.batch import GPTImageBatchTrigger

        carried = {"state": run.store.to_kwargs(run.progress.open_segment)}
        if not run.resumable:
            keep_defer_kwargs(context, carried)  # dag.test() drops defer kwargs (see the deferral module)
        jobs = run.trigger_jobs()
        self.defer(
            trigger=GPTImageBatchTrigger(
                jobs=jobs,
                gptimage_conn_id=self.gptimage_conn_id,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                job_timeout=protocol.polling.seconds(self.timeout),
                wake_fraction=self.wake_fraction,
                wake_linger=self.wake_linger,
                min_event_delay=self.min_wake_delay,
                wake_at=run.progress.create_after if run.paused or not jobs else None,
                seen_at=seen_at,
                request_id_prefix=run.hook.request_id_prefix,
            ),
            method_name="execute_complete",
            kwargs=carried,
        )

    # ------------------------------------------------------------------------------------------ helpers
    def _dry_run(self, run: BatchRun) -> dict[str, Any]:
        from airflow_provider_gptimage.batch.catalog import log_plan

        if run.catalog is None:
            raise GPTImageValidationError("dry_run", "needs a destination (the catalog to plan against)", value=True)
        return log_plan(self.log, run.catalog.plan(run.items))

    def _batch(self, folder: ObjectStoragePath | None = None) -> list[BatchItem]:
        """Validate the items; with a destination each key is a file name (that fits ``folder``, if given)."""
        key_rule = None
        if self.destination:
            from airflow_provider_gptimage.outputs import check_name_fits, validate_filename

            def key_rule(key: str) -> str:
                stem = validate_filename(key)
                if folder is not None:
                    check_name_fits(stem, folder)
                return stem

        items, warnings = build_batch(self.requests, key_rule=key_rule)
        for warning in warnings[:10]:
            self.log.warning(warning)
        return items

    def _run(self, context: Context, *, carried: Mapping[str, Any] | None = None, check: bool) -> BatchRun:
        """The batch run of this try or resume: items validated, folder resolved (and checked), progress read."""
        from airflow_provider_gptimage.batch.run import BatchRun, BatchSettings
        from airflow_provider_gptimage.batch.store import BatchStore, Progress
        from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

        folder = None
        if self.destination:
            from airflow_provider_gptimage.outputs import check_destination, resolve_destination

            folder = resolve_destination(self.destination, self.destination_conn_id or None)
        items = self._batch(folder)  # every key checked against the folder before anything is written
        if folder is not None and check:
            check_destination(folder, download_timeout=self.download_timeout)
        store = BatchStore(context.get("task_state_store"), carried)  # type: ignore[call-overload]
        progress, notes = Progress.load(store, items, self.max_active_jobs)
        for note in notes:
            self.log.warning(note)
        settings = BatchSettings(
            failure_policy=self.failure_policy,
            schedule=self.schedule,
            job_timeout=protocol.polling.seconds(self.timeout),
            max_worker_wait=self.max_worker_wait,
            max_concurrent_creates=self.max_concurrent_creates,
            persist_every=self.persist_every,
            download_timeout=self.download_timeout,
        )
        hook = GPTImageHook(
            self.gptimage_conn_id, retry_policy=_CREATE_POLICY, request_id_prefix=request_id_prefix(context)
        )
        catalog = None
        if folder is not None:
            from airflow_provider_gptimage.batch.catalog import BatchCatalog

            catalog = BatchCatalog(folder, self.catalog_options, store, self.log)
        return BatchRun(
            items=items, folder=folder, store=store, progress=progress, hook=hook, settings=settings,
            log=self.log, provenance=task_provenance(context), catalog=catalog,
        )  # fmt: skip
