"""Operator that generates images with GPT Image 2 without holding a worker slot while they are made."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage.context import (
    annotate_asset_events,
    current_try,
    is_stale_resume,
    request_id_prefix,
    task_provenance,
)
from airflow_provider_gptimage.exceptions import GPTImageError, GPTImageResultExpiredError, GPTImageValidationError
from airflow_provider_gptimage.links import GPTImageGalleryLink, GPTImageResultLink
from airflow_provider_gptimage.operators.reattach import STATE_KEY, attach_or_create, forget_job
from airflow_provider_gptimage.outputs.deadline import DEFAULT_DOWNLOAD_TIMEOUT, download_timeout_seconds
from airflow_provider_gptimage.outputs.results import check_outputs, finish, reusable_outputs
from airflow_provider_gptimage.protocol import events
from airflow_provider_gptimage.protocol.polling import deadline_after, seconds

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

__all__ = ["STATE_KEY", "GPTImageGenerateOperator"]


class GPTImageGenerateOperator(BaseOperator):
    """Generate an image from a prompt, deferring while the service makes it.

    The job is created in the worker; the task then defers to :class:`GPTImageTaskTrigger`, which polls
    from the triggerer, so no worker slot is held for the minute or so an image takes. The job id is
    kept in the task instance's ``task_state_store``: a retry re-attaches to the job it already started
    (or collects its result) instead of paying for a new one.

    .. code-block:: python

        GPTImageGenerateOperator(
            task_id="hero_image",
            prompt="A watercolor fox in a snowy forest, {{ ds }}",
            aspect_ratio="16:9",
            resolution="2K",
            destination="s3://my-bucket/images/{{ ds }}/",
            destination_conn_id="aws_default",
        )

    :param prompt: the description of the image, at most 20,000 characters (templated).
    :param aspect_ratio: ``auto`` or ``W:H``, e.g. ``16:9`` (templated).
    :param resolution: ``1K``, ``2K`` or ``4K`` (templated).
    :param quality: passed through to the image backend (templated).
    :param output_format: passed through to the image backend (templated).
    :param model: the model; only ``gpt-image-2-text-to-image`` exists.
    :param gptimage_conn_id: the ``gptimage`` connection holding the API key.
    :param wait_for_completion: wait for the image; ``False`` returns right after the job is created.
    :param deferrable: wait in the triggerer (default) rather than polling in the worker.
    :param poll_interval: seconds before the second poll; waits then grow by half up to ``max_poll_interval``.
    :param max_poll_interval: the longest wait between polls.
    :param timeout: the longest wait for the job, from its creation (seconds or timedelta; ``None``: no limit).
    :param destination: folder to copy the images into: a URI string or an ``ObjectStoragePath``
        (``file://``, ``s3://``, ``gs://``...) (templated). Result URLs expire within about a day.
    :param destination_conn_id: connection for the object store of ``destination``; empty means none (templated).
    :param filename: base name of the copied image(s), e.g. a SKU; default: the job id (templated). A name
        that renders empty, blank or ``"None"``, or too long in bytes for the destination, fails the task
        before any job is created.
    :param download_timeout: seconds (or a timedelta) each image may take to download, retries included
        (default 300): a result host sending too slowly is cut off.
    :param force: with ``destination`` and ``filename``, generate a new image even when the one kept was made
        by the same request (by default it is reused: the request decides, see below).
    :param history: what becomes of a kept image that a new one replaces: ``keep`` (moved to
        ``<destination>/_history/<filename>/``) or ``drop`` (deleted).

    **Reuse: the request decides, not the name.** With ``destination`` and ``filename``, an image already
    complete there is reused, and no job created, only when its sidecar records the fingerprint of this very
    request (the model and every input field): a changed prompt or parameter makes a new image, and the old
    one goes to history. A job once created is recorded at once in ``<destination>/_catalog/journal/``:
    any later run wanting the same request there (a retry, a cleared task, a new DAG run, a backfill)
    re-attaches to it instead of paying again, unless its images are gone by then (expired result URLs):
    then a new job is created, once.
    """

    template_fields: Sequence[str] = (
        "prompt",
        "aspect_ratio",
        "resolution",
        "quality",
        "output_format",
        "destination",
        "destination_conn_id",
        "filename",
    )
    ui_color = "#e8f0fe"
    operator_extra_links = (GPTImageResultLink(), GPTImageGalleryLink())

    def __init__(
        self,
        *,
        prompt: str,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        quality: str | None = None,
        output_format: str | None = None,
        model: str = protocol.MODEL,
        gptimage_conn_id: str = protocol.DEFAULT_CONN_ID,
        wait_for_completion: bool = True,
        deferrable: bool = True,
        poll_interval: float = protocol.DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = protocol.DEFAULT_MAX_POLL_INTERVAL,
        timeout: float | timedelta | None = timedelta(hours=1),
        destination: Any = None,
        destination_conn_id: str | None = None,
        filename: str | None = None,
        download_timeout: float | timedelta = DEFAULT_DOWNLOAD_TIMEOUT,
        force: bool = False,
        history: str = "keep",
        **kwargs: Any,
    ) -> None:
        from airflow_provider_gptimage.protocol.catalog import check_history

        super().__init__(**kwargs)
        if not isinstance(force, bool):  # a list of keys belongs to the catalog plan or batch operator
            raise GPTImageValidationError("force", "must be True or False for one image", value=force)
        self.force = force
        self.history = check_history(history)
        self.prompt = prompt
        self.aspect_ratio = aspect_ratio
        self.resolution = resolution
        self.quality = quality
        self.output_format = output_format
        self.model = model
        self.gptimage_conn_id = gptimage_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.filename = filename
        self.download_timeout = download_timeout_seconds(download_timeout)
        # Static arguments fail when the DAG is parsed; templated ones are checked at execution.
        for warning in protocol.validate_static_arguments(self._request_arguments()):
            self.log.warning(warning)
        protocol.PollSchedule.of(poll_interval, max_poll_interval)  # a bad schedule fails at parse time

    def _request_arguments(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "aspect_ratio": self.aspect_ratio,
            "resolution": self.resolution,
            "quality": self.quality,
            "output_format": self.output_format,
            "model": self.model,
        }

    def _hook(self, context: Context) -> GPTImageHook:
        from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

        return GPTImageHook(self.gptimage_conn_id, request_id_prefix=request_id_prefix(context))

    # ------------------------------------------------------------------------------------------ execute
    def execute(self, context: Context) -> dict[str, Any]:
        """Validate, reuse a complete image or create (or re-attach to) the job, then defer, poll, or return."""
        return self._run(context, try_started=time.time())

    def _run(self, context: Context, try_started: float | None) -> dict[str, Any]:
        """:meth:`execute`; ``try_started`` is ``None`` once this try paid again for a job whose images were gone."""
        request, warnings = protocol.build_request(**self._request_arguments())
        for warning in warnings:
            self.log.warning(warning)
        folder, stem = self._outputs()
        if folder is not None and stem is not None and not self.force:
            existing = reusable_outputs(folder, stem, protocol.fingerprint(request), self.log)
            if existing is not None:
                return self._done(events.existing_payload(existing), context)
        hook = self._hook(context)
        store = context.get("task_state_store")  # type: ignore[call-overload]
        job = attach_or_create(hook, request, store, folder=folder, key=stem, log=self.log)
        job_id, created_at, record = job.job_id, job.created_at, job.record
        if record is not None and record.is_success:
            self.log.info("Job %s already succeeded; collecting its result", job_id)
            return self._collect(record, created_at, try_started, context)
        if not self.wait_for_completion:
            return events.result_payload(record or protocol.JobRecord(job_id=job_id, state="waiting"))
        deadline, limit = deadline_after(self.timeout, created_at), seconds(self.timeout)
        if not self.deferrable:
            schedule = protocol.PollSchedule.of(self.poll_interval, self.max_poll_interval)
            with self._ending(job_id, context):
                record = hook.wait_for_job(
                    job_id, schedule=schedule, created_at=created_at, deadline=deadline, timeout=limit
                )
            return self._collect(record, created_at, try_started, context)
        from airflow_provider_gptimage.deferral import keep_defer_kwargs
        from airflow_provider_gptimage.triggers.gptimage import GPTImageTaskTrigger

        self.log.info("Deferring while job %s is generated", job_id)
        kwargs = {"deferred_in_try": current_try(context), "created_at": created_at, "try_started": try_started}
        keep_defer_kwargs(context, kwargs)  # dag.test() drops them (see airflow_provider_gptimage.deferral)
        self.defer(
            trigger=GPTImageTaskTrigger(
                job_id=job_id,
                gptimage_conn_id=self.gptimage_conn_id,
                deadline=deadline,
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                request_id_prefix=hook.request_id_prefix,
                created_at=created_at,
                timeout=limit,
            ),
            method_name="execute_complete",
            kwargs=kwargs,
        )

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        deferred_in_try: int | None = None,
        created_at: float = 0.0,
        try_started: float | None = None,
    ) -> dict[str, Any]:
        """Resume after the trigger fired: raise the typed error of any outcome but success, else finish."""
        if is_stale_resume(context, deferred_in_try):
            self.log.warning("Resumed with try %s's trigger event (Airflow < 3.1.1); starting afresh", deferred_in_try)
            return self.execute(context)
        with self._ending(str((event or {}).get("job_id") or ""), context):
            record = events.outcome(event)
        from airflow_provider_gptimage.deferral import resumed_defer_kwargs

        kept = resumed_defer_kwargs(context)  # under dag.test() only
        created_at, try_started = kept.get("created_at", created_at), kept.get("try_started", try_started)
        return self._collect(record, created_at, try_started, context)

    def _collect(
        self, record: protocol.JobRecord, created_at: float, try_started: float | None, context: Context
    ) -> dict[str, Any]:
        """Keep a succeeded job's images; if they are gone and the job was made before this try
        (:func:`~.protocol.events.pay_again_now`), create one new job (the stored and journaled ones are forgotten)."""
        try:
            with self._ending(record.job_id, context):
                return self._finish(record, context)
        except GPTImageResultExpiredError as exc:
            if try_started is None or not events.pay_again_now(exc, created_at, try_started):
                raise
            self.log.warning("The images of job %s are gone; creating a new job for them", record.job_id)
            return self._run(context, try_started=None)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """Describe for OpenLineage the images written to ``destination`` and the service's job id."""
        from airflow_provider_gptimage.lineage import lineage_for, task_result

        return lineage_for(task_result(task_instance))

    # ------------------------------------------------------------------------------------------ helpers
    def _outputs(self, *, check: bool = True) -> tuple[ObjectStoragePath | None, str | None]:
        """The folder and the base name; ``check`` (before paying for a job) also proves them usable."""
        if not self.destination:
            return None, None
        if check:
            return check_outputs(self.destination, self.destination_conn_id, self.filename, self.download_timeout)
        from airflow_provider_gptimage.outputs import resolve_destination, validate_filename

        folder = resolve_destination(self.destination, self.destination_conn_id or None)
        return folder, None if self.filename is None else validate_filename(self.filename)

    @contextlib.contextmanager
    def _ending(self, job_id: str, context: Context) -> Iterator[None]:
        """Forget a job that can never give its image (:func:`~.protocol.events.job_is_spent`): its journal
        entry ends, and the task's stored job too when :func:`~.protocol.events.retry_forgets` says so."""
        try:
            yield
        except GPTImageError as exc:
            if job_id and events.job_is_spent(exc):
                folder, stem = self._outputs(check=False)
                request, _ = protocol.build_request(**self._request_arguments())
                store = context.get("task_state_store")  # type: ignore[call-overload]
                forget_job(
                    store if events.retry_forgets(exc) else None,
                    folder if stem is not None else None,
                    protocol.fingerprint(request),
                    job_id,
                )
            raise

    def _done(self, payload: dict[str, Any], context: Context) -> dict[str, Any]:
        extra = {"job_id": payload.get("job_id"), "output_uris": payload.get("output_uris", [])}
        annotate_asset_events(context, self.outlets, extra)
        return payload

    def _finish(self, record: protocol.JobRecord, context: Context) -> dict[str, Any]:
        request, _ = protocol.build_request(**self._request_arguments())
        provenance = {"prompt": self.prompt, **task_provenance(context)}
        payload = finish(
            record,
            destination=self.destination,
            destination_conn_id=self.destination_conn_id,
            filename=self.filename,
            provenance=provenance,
            log=self.log,
            download_timeout=self.download_timeout,
            history=self.history,
            request=request,
        )
        return self._done(payload, context)
