"""Trigger that polls a GPT Image job from the triggerer until it ends.

Built for thousands of jobs in one triggerer: it only ever sends GETs (a trigger may run twice, and a
POST here could pay twice), shares one keep-alive connection pool with every other trigger of this
provider in the same event loop that has the same TLS settings, shares one fetch of its connection with
the triggers of the event loop starting within a few seconds of it (:mod:`~.hooks.settings`: a triggerer
restarting with thousands of jobs reads each connection once, not once per job), does no blocking I/O in
the event loop (a CA bundle is checked in a thread, once per fetch, never per poll), and serializes only
primitives: the conn id, the job id, the poll settings and an absolute deadline (a triggerer restart does
not restart the clock).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_gptimage.exceptions import GPTImageError
from airflow_provider_gptimage.protocol import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_MAX_TRANSIENT_ERRORS,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_REQUEST_TIMEOUT,
    MAX_UNKNOWN_STATE_POLLS,
    PollSchedule,
    RetryPolicy,
    poll_step,
    unknown_state_error,
)
from airflow_provider_gptimage.protocol.events import crash_event, error_event, record_event, timeout_event
from airflow_provider_gptimage.protocol.polling import TIMEOUT, WAIT, event_hold
from airflow_provider_gptimage.triggers.session import shared_client_session
from airflow_provider_gptimage.triggers.warmup import awarm_up

if TYPE_CHECKING:
    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook


class GPTImageTaskTrigger(BaseTrigger):
    """Poll ``recordInfo`` for one job and fire one event when it ends, fails, errs or times out.

    Events (see :mod:`airflow_provider_gptimage.protocol.events`): ``success`` and ``fail`` carry the
    job record; ``error`` carries the error class name and message; ``timeout`` the last state seen.

    :param job_id: the API's job id (``taskId``).
    :param gptimage_conn_id: the ``gptimage`` connection; the key is fetched in the triggerer, never stored.
    :param deadline: epoch seconds after which the trigger gives up with a ``timeout`` event (after one last
        poll); ``None`` waits forever.
    :param poll_interval: seconds from the job's creation to its first poll; later waits grow by half.
    :param max_poll_interval: the longest wait between polls.
    :param max_transient_errors: transient failures in a row (429, 5xx, timeouts...) tolerated per poll.
    :param request_id_prefix: the start of the ``X-Request-ID`` of each poll (names the task instance).
    :param request_timeout: seconds one poll may take before it counts as a (transient) timeout.
    :param created_at: when the job was created (epoch seconds; polls follow its age, see
        :mod:`~airflow_provider_gptimage.protocol.polling`); ``None``: when the trigger starts.
    :param timeout: the limit the deadline stands for, in seconds from creation (said in the timeout message).
    :param min_event_delay: seconds after the trigger starts before it may fire (default ``poll_interval``):
        see :func:`~airflow_provider_gptimage.protocol.polling.event_hold`.
    :param kwargs: arguments a newer release of this provider may add; ignored with a warning, so a
        triggerer not yet upgraded can still run a trigger serialized by an upgraded worker.
    """

    def __init__(
        self,
        job_id: str,
        gptimage_conn_id: str = DEFAULT_CONN_ID,
        deadline: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        max_transient_errors: int = DEFAULT_MAX_TRANSIENT_ERRORS,
        request_id_prefix: str | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        created_at: float | None = None,
        timeout: float | None = None,
        min_event_delay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if kwargs:
            self.log.warning("Ignoring unknown trigger arguments %s (written by a newer provider?)", sorted(kwargs))
        self.job_id = job_id
        self.gptimage_conn_id = gptimage_conn_id
        self.deadline = deadline
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = max(float(max_poll_interval), self.poll_interval)
        self.max_transient_errors = int(max_transient_errors)
        self.request_id_prefix = request_id_prefix
        self.request_timeout = float(request_timeout)
        self.created_at = None if created_at is None else float(created_at)
        self.timeout = None if timeout is None else float(timeout)
        self.min_event_delay = self.poll_interval if min_event_delay is None else max(0.0, float(min_event_delay))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the dotted path and primitive kwargs (never a secret)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "gptimage_conn_id": self.gptimage_conn_id,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "max_transient_errors": self.max_transient_errors,
                "request_id_prefix": self.request_id_prefix,
                "request_timeout": self.request_timeout,
                "created_at": self.created_at,
                "timeout": self.timeout,
                "min_event_delay": self.min_event_delay,
            },
        )

    def _hook(self) -> GPTImageHook:
        from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

        return GPTImageHook(
            self.gptimage_conn_id,
            retry_policy=RetryPolicy(max_attempts=self.max_transient_errors),
            request_id_prefix=self.request_id_prefix,
            request_timeout=self.request_timeout,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job ends or the deadline passes; yield exactly one event, whatever happens."""
        start = time.time()
        await awarm_up()  # the hook's imports, in a thread: not in the triggerer's event loop
        hook = self._hook()
        try:
            event = await self._poll(hook, start)
        except Exception as exc:  # the safety net: a trigger ends with an event, never a traceback
            self.log.exception("Polling job %s stopped on an unexpected error", self.job_id)
            event = crash_event(self.job_id, exc, hook.secrets())
        await asyncio.sleep(max(0.0, event_hold(start, self.min_event_delay) - time.time()))
        yield TriggerEvent(event)

    async def _poll(self, hook: GPTImageHook, start: float) -> dict[str, Any]:
        """Poll until the job ends, fails for good or outlives its deadline; return the event's payload."""
        schedule = PollSchedule.of(self.poll_interval, self.max_poll_interval)
        created_at = self.created_at or start
        polls, unknown, last_state, last_poll_at = 0, 0, None, None
        try:
            await hook.aconfigure()  # the connection, and its TLS settings, which choose the shared pool
        except GPTImageError as exc:
            self.log.error("Polling job %s cannot start: %s", self.job_id, exc)
            return error_event(self.job_id, exc)
        async with shared_client_session(hook.aiohttp_ssl) as session:
            while True:
                step = poll_step(
                    schedule, created_at=created_at, last_poll_at=last_poll_at, now=time.time(), deadline=self.deadline
                )
                if step.action == WAIT:
                    await asyncio.sleep(step.seconds)
                    continue
                if step.action == TIMEOUT:
                    return timeout_event(self.job_id, last_state, self.timeout)
                last_poll_at = time.time()
                try:
                    record = await hook.aget_task(self.job_id, session=session, deadline=self.deadline)
                except GPTImageError as exc:
                    self.log.error("Polling job %s gave up: %s", self.job_id, exc)
                    return error_event(self.job_id, exc)
                polls += 1
                if record.is_finished:
                    self.log.info("Job %s ended in state %s after %d polls", self.job_id, record.state, polls)
                    return record_event(record)
                unknown = unknown + 1 if record.is_unknown_state else 0
                if unknown >= MAX_UNKNOWN_STATE_POLLS:
                    return error_event(self.job_id, unknown_state_error(self.job_id, record.state, unknown))
                if record.state != last_state:
                    self.log.info("Job %s is %s", self.job_id, record.state)
                    last_state = record.state
