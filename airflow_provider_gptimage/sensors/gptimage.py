"""Sensor that waits for a GPT Image job created elsewhere (another DAG, a script, the web app)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage.context import current_try, is_stale_resume, request_id_prefix
from airflow_provider_gptimage.links import GPTImageGalleryLink, GPTImageResultLink
from airflow_provider_gptimage.outputs.deadline import DEFAULT_DOWNLOAD_TIMEOUT, download_timeout_seconds
from airflow_provider_gptimage.outputs.results import check_outputs, finish
from airflow_provider_gptimage.protocol import events
from airflow_provider_gptimage.protocol.polling import deadline_after
from airflow_provider_gptimage.protocol.text import is_plain_id

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context


class GPTImageTaskSensor(BaseSensorOperator):
    """Wait for a job id to end, then copy its images like :class:`GPTImageGenerateOperator` does.

    Deferrable by default: the wait happens in the triggerer. It never creates a job, so it can never
    pay for one.

    .. code-block:: python

        GPTImageTaskSensor(
            task_id="wait_for_banner",
            job_id="{{ ti.xcom_pull(task_ids='start_banner')['job_id'] }}",
            destination="file:///data/banners/",
        )

    :param job_id: the API's job id to wait for (templated).
    :param gptimage_conn_id: the ``gptimage`` connection holding the API key.
    :param deferrable: wait in the triggerer (default) rather than poking from the worker.
    :param poll_interval: seconds before the second poll when deferred (later waits grow up to
        ``max_poll_interval``); when not deferred, ``poke_interval`` applies.
    :param max_poll_interval: the longest wait between polls when deferred.
    :param destination: folder to copy the images into (templated); see the operator.
    :param destination_conn_id: connection for the object store of ``destination``.
    :param filename: base name of the copied image(s) (templated); checked, with ``destination``, before
        the wait starts.
    :param download_timeout: seconds (or a timedelta) each image may take to download, retries included.
    """

    template_fields: Sequence[str] = ("job_id", "destination", "destination_conn_id", "filename")
    ui_color = "#e8f0fe"
    operator_extra_links = (GPTImageResultLink(), GPTImageGalleryLink())

    def __init__(
        self,
        *,
        job_id: str,
        gptimage_conn_id: str = protocol.DEFAULT_CONN_ID,
        deferrable: bool = True,
        poll_interval: float = protocol.DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = protocol.DEFAULT_MAX_POLL_INTERVAL,
        destination: Any = None,
        destination_conn_id: str | None = None,
        filename: str | None = None,
        download_timeout: float | timedelta = DEFAULT_DOWNLOAD_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", timedelta(hours=2).total_seconds())
        super().__init__(**kwargs)
        self.job_id = job_id
        self.gptimage_conn_id = gptimage_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.filename = filename
        self.download_timeout = download_timeout_seconds(download_timeout)

    def _job_id(self) -> str:
        job_id = self.job_id.strip() if isinstance(self.job_id, str) else self.job_id
        if not isinstance(job_id, str) or not is_plain_id(job_id):
            from airflow_provider_gptimage.exceptions import GPTImageValidationError

            raise GPTImageValidationError(
                "job_id",
                "must be a job id: printable, without spaces, at most 256 characters",
                value=job_id,
            )
        return job_id

    def execute(self, context: Context) -> Any:
        """Defer to the trigger (default), or poke from the worker like any sensor."""
        job_id = self._job_id()
        if self.destination:  # everything that can fail the copy is checked before the wait
            check_outputs(self.destination, self.destination_conn_id, self.filename, self.download_timeout)
        if not self.deferrable:
            return super().execute(context)
        from airflow_provider_gptimage.triggers.gptimage import GPTImageTaskTrigger

        self.defer(
            trigger=GPTImageTaskTrigger(
                job_id=job_id,
                gptimage_conn_id=self.gptimage_conn_id,
                deadline=deadline_after(self.timeout, time.time()),
                poll_interval=self.poll_interval,
                max_poll_interval=self.max_poll_interval,
                request_id_prefix=request_id_prefix(context),
            ),
            method_name="execute_complete",
            kwargs={"deferred_in_try": current_try(context)},
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """One poll from the worker; done (with the result as XCom) once the job ends."""
        from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

        hook = GPTImageHook(self.gptimage_conn_id, request_id_prefix=request_id_prefix(context))
        record = hook.get_task(self._job_id())
        if not record.is_finished:
            self.log.info("Job %s is %s", record.job_id, record.state)
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._finish(record))

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, deferred_in_try: int | None = None
    ) -> Any:
        """Resume after the trigger fired: raise the typed error of any outcome but success, else finish."""
        if is_stale_resume(context, deferred_in_try):
            self.log.warning("Resumed with try %s's trigger event (Airflow < 3.1.1); starting afresh", deferred_in_try)
            return self.execute(context)
        return self._finish(events.outcome(event))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """Describe for OpenLineage the images written to ``destination`` and the service's job id."""
        from airflow_provider_gptimage.lineage import lineage_for, task_result

        return lineage_for(task_result(task_instance))

    def _finish(self, record: protocol.JobRecord) -> dict[str, Any]:
        return finish(
            record,
            destination=self.destination,
            destination_conn_id=self.destination_conn_id,
            filename=self.filename,
            provenance={"sensor_task_id": self.task_id},
            log=self.log,
            download_timeout=self.download_timeout,
        )
