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
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_gptimage.exceptions import GPTImageError
from airflow_provider_gptimage.protocol import (
    MAX_UNKNOWN_STATE_POLLS,
    PollSchedule,
    RetryPolicy,
    poll_delay,
    unknown_state_error,
)
from airflow_provider_gptimage.protocol.events import (
    crash_event,
    error_event,
    record_event,
    timeout_event,
    timeout_message,
)
from airflow_provider_gptimage.triggers.session import shared_client_session

DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_MAX_POLL_INTERVAL = 30.0
DEFAULT_MAX_TRANSIENT_ERRORS = 8
#: Seconds one poll may take (the hook's default).
DEFAULT_REQUEST_TIMEOUT = 30.0


class GPTImageTaskTrigger(BaseTrigger):
    """Poll ``recordInfo`` for one job and fire one event when it ends, fails, errs or times out.

    Events (see :mod:`airflow_provider_gptimage.protocol.events`): ``success`` and ``fail`` carry the
    job record; ``error`` carries the error class name and message; ``timeout`` the last state seen.

    :param job_id: the API's job id (``taskId``).
    :param gptimage_conn_id: the ``gptimage`` connection; the key is fetched in the triggerer, never stored.
    :param deadline: epoch seconds after which the trigger gives up with a ``timeout`` event; ``None``
        waits forever.
    :param poll_interval: seconds before the second poll; later waits grow by half each time.
    :param max_poll_interval: the longest wait between polls.
    :param max_transient_errors: transient failures in a row (429, 5xx, timeouts...) tolerated per poll.
    :param request_id_prefix: the start of the ``X-Request-ID`` of each poll (names the task instance).
    :param request_timeout: seconds one poll may take before it counts as a (transient) timeout.
    :param first_poll_delay: seconds before the first poll (default ``poll_interval``): a job just created
        is never done at once, and a trigger that fires within a second of the deferral meets an Airflow
        race (apache/airflow#72716) that can fail the resumed task.
    :param kwargs: arguments a newer release of this provider may add; ignored with a warning, so a
        triggerer not yet upgraded can still run a trigger serialized by an upgraded worker.
    """

    def __init__(
        self,
        job_id: str,
        gptimage_conn_id: str = "gptimage_default",
        deadline: float | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        max_transient_errors: int = DEFAULT_MAX_TRANSIENT_ERRORS,
        request_id_prefix: str | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        first_poll_delay: float | None = None,
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
        self.first_poll_delay = self.poll_interval if first_poll_delay is None else max(0.0, float(first_poll_delay))

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
                "first_poll_delay": self.first_poll_delay,
            },
        )

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    def _hook(self) -> Any:
        from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

        return GPTImageHook(
            self.gptimage_conn_id,
            retry_policy=RetryPolicy(max_attempts=self.max_transient_errors),
            request_id_prefix=self.request_id_prefix,
            request_timeout=self.request_timeout,
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the job ends or the deadline passes; yield exactly one event, whatever happens."""
        hook = self._hook()
        try:
            async with contextlib.aclosing(self._poll(hook)) as events:
                async for event in events:
                    yield event
                    return
        except Exception as exc:  # the safety net: a trigger ends with an event, never a traceback
            self.log.exception("Polling job %s stopped on an unexpected error", self.job_id)
            yield TriggerEvent(crash_event(self.job_id, exc, hook.secrets()))

    async def _poll(self, hook: Any) -> AsyncGenerator[TriggerEvent, None]:
        schedule = PollSchedule(initial=self.poll_interval, maximum=self.max_poll_interval)
        polls, unknown, last_state = 0, 0, None
        remaining = self._remaining()
        first_wait = self.first_poll_delay if remaining is None else min(self.first_poll_delay, remaining)
        await asyncio.sleep(max(0.0, first_wait))
        try:
            await hook.aconfigure()  # the connection, and its TLS settings, which choose the shared pool
        except GPTImageError as exc:
            self.log.error("Polling job %s cannot start: %s", self.job_id, exc)
            yield TriggerEvent(error_event(self.job_id, exc))
            return
        async with shared_client_session(hook.aiohttp_ssl) as session:
            while True:
                remaining = self._remaining()
                if remaining is not None and remaining <= 0:
                    yield TriggerEvent(timeout_event(self.job_id, last_state, timeout_message(self.job_id, last_state)))
                    return
                try:
                    record = await hook.aget_task(self.job_id, session=session, deadline=self.deadline)
                except GPTImageError as exc:
                    self.log.error("Polling job %s gave up: %s", self.job_id, exc)
                    yield TriggerEvent(error_event(self.job_id, exc))
                    return
                polls += 1
                if record.is_finished:
                    self.log.info("Job %s ended in state %s after %d polls", self.job_id, record.state, polls)
                    yield TriggerEvent(record_event(record))
                    return
                unknown = unknown + 1 if record.is_unknown_state else 0
                if unknown >= MAX_UNKNOWN_STATE_POLLS:
                    error = unknown_state_error(self.job_id, record.state, unknown)
                    yield TriggerEvent(error_event(self.job_id, error))
                    return
                if record.state != last_state:
                    self.log.info("Job %s is %s", self.job_id, record.state)
                    last_state = record.state
                await asyncio.sleep(poll_delay(schedule, polls, remaining=self._remaining()))
