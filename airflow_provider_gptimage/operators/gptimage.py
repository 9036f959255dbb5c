"""Operator that generates images with GPT Image 2 without holding a worker slot while they are made."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
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
from airflow_provider_gptimage.exceptions import GPTImageNotFoundError
from airflow_provider_gptimage.links import GPTImageGalleryLink, GPTImageResultLink
from airflow_provider_gptimage.outputs.deadline import DEFAULT_DOWNLOAD_TIMEOUT, download_timeout_seconds
from airflow_provider_gptimage.outputs.results import check_outputs, finish
from airflow_provider_gptimage.protocol import events
from airflow_provider_gptimage.protocol.polling import deadline_after, seconds

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

#: ``task_state_store`` key holding the job this task instance started (survives retries).
STATE_KEY = "gptimage_job"


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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
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
        """Validate, create (or re-attach to) the job, then defer, poll, or return at once."""
        request, warnings = protocol.build_request(**self._request_arguments())
        for warning in warnings:
            self.log.warning(warning)
        if self.destination:
            existing = self._existing_outputs()
            if existing is not None:
                self.log.info(
                    "Outputs of %r are already complete in %s; no job created", self.filename, self.destination
                )
                return self._done(events.existing_payload(existing), context)
        hook = self._hook(context)
        job_id, created_at, record = self._attach_or_create(hook, request, context)
        if record is not None and record.is_success:
            self.log.info("Job %s already succeeded in an earlier try; collecting its result", job_id)
            return self._finish(record, context)
        if not self.wait_for_completion:
            return events.result_payload(record or protocol.JobRecord(job_id=job_id, state="waiting"))
        deadline, limit = deadline_after(self.timeout, created_at), seconds(self.timeout)
        if not self.deferrable:
            schedule = protocol.PollSchedule.of(self.poll_interval, self.max_poll_interval)
            record = hook.wait_for_job(
                job_id, schedule=schedule, created_at=created_at, deadline=deadline, timeout=limit
            )
            return self._finish(record, context)
        from airflow_provider_gptimage.triggers.gptimage import GPTImageTaskTrigger

        self.log.info("Deferring while job %s is generated", job_id)
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
            kwargs={"deferred_in_try": current_try(context)},
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, deferred_in_try: int | None = None
    ) -> dict[str, Any]:
        """Resume after the trigger fired: raise the typed error of any outcome but success, else finish."""
        if is_stale_resume(context, deferred_in_try):
            self.log.warning("Resumed with try %s's trigger event (Airflow < 3.1.1); starting afresh", deferred_in_try)
            return self.execute(context)
        return self._finish(events.outcome(event), context)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """Describe for OpenLineage the images written to ``destination`` and the service's job id."""
        from airflow_provider_gptimage.lineage import lineage_for, task_result

        return lineage_for(task_result(task_instance))

    # ------------------------------------------------------------------------------------------ helpers
    def _existing_outputs(self) -> list[dict[str, Any]] | None:
        """Check the destination and ``filename`` before paying for a job; return outputs a previous run
        completed.

        Skip-if-present: with a ``filename``, a complete image (its sidecar names exactly the bytes stored)
        is the result of an earlier run of this task, and generating it again would be billed again.
        """
        from airflow_provider_gptimage.outputs import find_existing

        folder, stem = check_outputs(self.destination, self.destination_conn_id, self.filename, self.download_timeout)
        if stem is None:
            return None
        found = find_existing(folder, stem)
        return None if found is None else [item.to_dict() for item in found]

    def _done(self, payload: dict[str, Any], context: Context) -> dict[str, Any]:
        extra = {"job_id": payload.get("job_id"), "output_uris": payload.get("output_uris", [])}
        annotate_asset_events(context, self.outlets, extra)
        return payload

    def _finish(self, record: protocol.JobRecord, context: Context) -> dict[str, Any]:
        provenance = {"prompt": self.prompt, **task_provenance(context)}
        payload = finish(
            record,
            destination=self.destination,
            destination_conn_id=self.destination_conn_id,
            filename=self.filename,
            provenance=provenance,
            log=self.log,
            download_timeout=self.download_timeout,
        )
        return self._done(payload, context)

    def _attach_or_create(
        self, hook: GPTImageHook, request: protocol.GenerationRequest, context: Context
    ) -> tuple[str, float, protocol.JobRecord | None]:
        """Return (job id, creation time, record if known), re-attaching to this task's earlier job if any."""
        store = context.get("task_state_store")  # type: ignore[call-overload]
        fingerprint = protocol.fingerprint(request)
        if store is None:
            self.log.warning(
                "This Airflow has no task_state_store (Airflow < 3.3): a retry cannot re-attach to the job "
                "this try starts, and may pay for a second image."
            )
        else:
            saved = store.get(STATE_KEY)
            if isinstance(saved, dict) and _same_request(saved.get("fingerprint"), request) and saved.get("job_id"):
                record = self._saved_job(hook, str(saved["job_id"]))
                if record is not None:
                    created = saved.get("created_at")
                    return record.job_id, float(created) if isinstance(created, (int, float)) else time.time(), record
        job_id = hook.submit(request)
        created_at = time.time()
        if store is not None:
            store.set(STATE_KEY, {"job_id": job_id, "fingerprint": fingerprint, "created_at": created_at})
        return job_id, created_at, None

    def _saved_job(self, hook: GPTImageHook, job_id: str) -> protocol.JobRecord | None:
        """Return the earlier job's record when it can be reused (running or succeeded), else ``None``."""
        try:
            record = hook.get_task(job_id)
        except GPTImageNotFoundError:
            self.log.warning("Job %s from an earlier try is unknown to the service; creating a new one", job_id)
            return None
        if record.is_failed:
            self.log.warning("Job %s from an earlier try failed (%s); creating a new one", job_id, record.fail_message)
            return None
        self.log.info("Re-attaching to job %s from an earlier try (state %s)", job_id, record.state)
        return record


def _same_request(stored: object, request: protocol.GenerationRequest) -> bool:
    """Whether a stored fingerprint names ``request``: :func:`~.protocol.fingerprint`, or the digest 0.1.0
    stored (SHA-256 of the body as ``json.dumps(sort_keys=True)``), so a retry across the upgrade re-attaches."""
    legacy = hashlib.sha256(json.dumps(request.body(), sort_keys=True).encode()).hexdigest()
    return stored in (protocol.fingerprint(request), legacy)
