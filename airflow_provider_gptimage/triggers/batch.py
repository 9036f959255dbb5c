"""Trigger that polls every in-flight job of a batch and wakes the task when resuming is worthwhile.

One trigger watches a whole window of jobs, so a batch of thousands of images costs the triggerer one
trigger, not one per image. It only ever sends GETs (a trigger may run twice; a POST here could pay
twice), polls with bounded concurrency over the connection pool shared by all of this provider's triggers
(:mod:`~airflow_provider_gptimage.triggers.session`), and keeps a few small fields per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_gptimage.exceptions import GPTImageError, GPTImageRateLimitError
from airflow_provider_gptimage.protocol import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_MAX_TRANSIENT_ERRORS,
    DEFAULT_POLL_INTERVAL,
    MAX_UNKNOWN_STATE_POLLS,
    PollSchedule,
    RetryPolicy,
    poll_step,
    unknown_state_error,
)
from airflow_provider_gptimage.protocol.events import (
    batch_crash_event,
    batch_event,
    batch_job_event,
    error_event,
    record_event,
    timeout_event,
)
from airflow_provider_gptimage.protocol.polling import TIMEOUT, event_hold
from airflow_provider_gptimage.protocol.window import WakePolicy, pause_after
from airflow_provider_gptimage.triggers.session import shared_client_session

#: Polls in flight at once per trigger (the shared pool holds 64 connections per event loop).
DEFAULT_MAX_CONCURRENT_POLLS = 16


class _Job:
    """What the trigger keeps per watched job (a few fields; thousands fit in little memory)."""

    __slots__ = ("created_at", "errors", "job_id", "key", "last_poll_at", "retry_at", "state", "unknown")

    def __init__(self, key: str, job_id: str, created_at: float, last_poll_at: float | None) -> None:
        self.key, self.job_id, self.created_at, self.last_poll_at = key, job_id, created_at, last_poll_at
        self.errors = 0  # failed polls in a row
        self.retry_at = 0.0  # no poll before this time (after a failed poll)
        self.state: str | None = None
        self.unknown = 0  # polls in a row that reported an unknown state


class GPTImageBatchTrigger(BaseTrigger):
    """Poll ``recordInfo`` for many jobs and fire one ``batch`` event (see :func:`~.events.batch_event`).

    Each ended job is reported as a single-job event tagged with its key: ``success``/``fail`` with the
    record (without the echoed request, which the task already knows), ``error`` when polling gave up
    (a final error such as 404, or ``max_transient_errors`` failures in a row), ``timeout`` when the job
    outlived ``job_timeout``. When to fire is :class:`~.protocol.window.WakePolicy`'s decision.

    :param jobs: ``[key, job_id, created_at]`` triples (``created_at`` in epoch seconds).
    :param gptimage_conn_id: the ``gptimage`` connection; the key is fetched in the triggerer, never stored.
    :param poll_interval: seconds from a job's creation to its first poll; later waits grow by half.
    :param max_poll_interval: the longest wait between two polls of a job.
    :param job_timeout: seconds from a job's creation after which it is reported as timed out (``None``: never).
    :param wake_fraction: share of the watched jobs whose end wakes the task.
    :param wake_linger: seconds after the first ended job before the task is woken anyway.
    :param wake_at: epoch seconds at which to wake the task even if no job ended (``None``: no timer).
    :param seen_at: when the previous trigger of this batch last polled (its event's ``at``): a job whose
        poll fell due since then (while the task ran) is polled at once instead of at its next turn.
    :param max_concurrent_polls: polls in flight at once.
    :param max_transient_errors: failed polls in a row before a job is reported with its error.
    :param request_id_prefix: the start of the ``X-Request-ID`` of each poll (names the task instance).
    :param min_event_delay: seconds after the trigger starts before it may fire (default ``poll_interval``);
        it keeps polling meanwhile. An event that reaches the scheduler before the executor's report of the
        task's deferral can fail the resumed task (an Airflow race, apache/airflow#72716), and a batch
        resumed with jobs that already ended, or with a pause about to end, would otherwise fire at once.
    :param kwargs: arguments a newer release of this provider may add; ignored with a warning, so a
        triggerer running this release can still load the trigger during a rolling upgrade.
    """

    def __init__(
        self,
        jobs: Sequence[Sequence[Any]],
        gptimage_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL,
        job_timeout: float | None = None,
        wake_fraction: float = 0.25,
        wake_linger: float = DEFAULT_POLL_INTERVAL,
        wake_at: float | None = None,
        seen_at: float | None = None,
        max_concurrent_polls: int = DEFAULT_MAX_CONCURRENT_POLLS,
        max_transient_errors: int = DEFAULT_MAX_TRANSIENT_ERRORS,
        request_id_prefix: str | None = None,
        min_event_delay: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if kwargs:
            self.log.warning("Ignoring unknown trigger arguments %s (written by a newer provider?)", sorted(kwargs))
        self.jobs: list[tuple[str, str, float]] = [(str(k), str(j), float(c)) for k, j, c in jobs]
        self.gptimage_conn_id = gptimage_conn_id
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = max(float(max_poll_interval), self.poll_interval)
        self.job_timeout = None if job_timeout is None else float(job_timeout)
        self.wake = WakePolicy(fraction=float(wake_fraction), linger=float(wake_linger))
        self.wake_at = None if wake_at is None else float(wake_at)
        self.seen_at = None if seen_at is None else float(seen_at)
        self.max_concurrent_polls = max(1, int(max_concurrent_polls))
        self.max_transient_errors = max(1, int(max_transient_errors))
        self.request_id_prefix = request_id_prefix
        self.min_event_delay = self.poll_interval if min_event_delay is None else max(0.0, float(min_event_delay))

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the dotted path and primitive kwargs (never a secret)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "jobs": [list(job) for job in self.jobs],
                "gptimage_conn_id": self.gptimage_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "job_timeout": self.job_timeout,
                "wake_fraction": self.wake.fraction,
                "wake_linger": self.wake.linger,
                "wake_at": self.wake_at,
                "seen_at": self.seen_at,
                "max_concurrent_polls": self.max_concurrent_polls,
                "max_transient_errors": self.max_transient_errors,
                "request_id_prefix": self.request_id_prefix,
                "min_event_delay": self.min_event_delay,
            },
        )

    def _hook(self) -> Any:
        from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

        # One attempt per poll: a failed poll is simply tried again at the job's next turn, and a 429
        # pauses every poll of this trigger (they share the key's rate limit).
        return GPTImageHook(
            self.gptimage_conn_id, retry_policy=RetryPolicy(max_attempts=1), request_id_prefix=self.request_id_prefix
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the wake-up policy says resume; yield exactly one ``batch`` event, whatever happens."""
        hook = self._hook()
        try:
            async with contextlib.aclosing(self._watch(hook)) as events:
                async for event in events:
                    yield event
                    return
        except Exception as exc:  # the safety net: a trigger ends with an event, never a traceback
            self.log.exception("Watching a batch stopped on an unexpected error")
            yield TriggerEvent(batch_crash_event(exc, len(self.jobs), hook.secrets()))

    async def _watch(self, hook: Any) -> AsyncGenerator[TriggerEvent, None]:
        schedule = PollSchedule.of(self.poll_interval, self.max_poll_interval)
        start = time.time()
        seen = None if self.seen_at is None else min(self.seen_at, start)
        not_before = event_hold(start, self.min_event_delay)  # no event sooner (see WakePolicy)
        running = {j: _Job(k, j, c, seen) for k, j, c in self.jobs}
        ended: list[dict[str, Any]] = []
        first_ended_at: float | None = None
        shortest: float | None = None  # the youngest age at which a job was seen ended
        paused_until = 0.0
        rng = random.Random()
        semaphore = asyncio.Semaphore(self.max_concurrent_polls)
        self.log.info("Watching %d job(s) of a batch", len(running))
        with contextlib.suppress(GPTImageError):  # a bad connection: every poll reports it, ending each job
            await hook.aconfigure()  # the connection's TLS settings choose the shared pool
        async with shared_client_session(hook.aiohttp_ssl) as session:
            while True:
                now = time.time()
                due, next_due = self._due(running, ended, schedule, now, paused_until)
                if ended and first_ended_at is None:
                    first_ended_at = now
                next_end_at = (
                    min(job.created_at for job in running.values()) + shortest
                    if shortest is not None and running
                    else None
                )
                reason = self.wake.reason(
                    total=len(self.jobs),
                    ended=len(ended),
                    first_ended_at=first_ended_at,
                    now=now,
                    wake_at=self.wake_at,
                    next_end_at=next_end_at,
                    not_before=not_before,
                )
                if reason is not None:
                    self.log.info("Waking the task (%s): %d job(s) ended, %d running", reason, len(ended), len(running))
                    yield TriggerEvent({**batch_event(reason, ended, len(running)), "at": now})
                    return
                if due:
                    outcomes = await asyncio.gather(*(self._poll(hook, session, semaphore, job) for job in due))
                    now = time.time()
                    for job, result in zip(due, outcomes, strict=True):
                        paused_until = max(paused_until, self._settle(job, result, running, ended, now, rng))
                        if job.job_id not in running and not isinstance(result, BaseException):
                            age = now - job.created_at  # seen ended: it ran at most this long
                            shortest = age if shortest is None else min(shortest, age)
                    continue
                wake = self.wake.next_check(
                    first_ended_at=first_ended_at, wake_at=self.wake_at, now=now, not_before=not_before
                )
                times = [t for t in (next_due, wake) if t is not None]
                await asyncio.sleep(max(0.0, min(times, default=now + self.max_poll_interval) - now))

    def _due(
        self,
        running: dict[str, _Job],
        ended: list[dict[str, Any]],
        schedule: PollSchedule,
        now: float,
        paused_until: float,
    ) -> tuple[list[_Job], float | None]:
        """Ask :func:`~.protocol.polling.poll_step` about every running job: end those past their deadline,
        return those to poll now and the earliest time another one falls due."""
        due: list[_Job] = []
        next_due: float | None = None
        for job in list(running.values()):
            deadline = None if self.job_timeout is None else job.created_at + self.job_timeout
            step = poll_step(
                schedule, created_at=job.created_at, last_poll_at=job.last_poll_at, now=now, deadline=deadline
            )
            if step.action == TIMEOUT:
                del running[job.job_id]
                ended.append(batch_job_event(job.key, timeout_event(job.job_id, job.state, self.job_timeout)))
                continue
            ready_at = max(now + step.seconds, job.retry_at, paused_until)
            if ready_at <= now:
                due.append(job)
            else:
                next_due = ready_at if next_due is None else min(next_due, ready_at)
        return due, next_due

    async def _poll(self, hook: Any, session: Any, semaphore: asyncio.Semaphore, job: _Job) -> Any:
        async with semaphore:
            try:
                return await hook.aget_task(job.job_id, session=session)
            except GPTImageError as exc:
                return exc

    def _settle(
        self, job: _Job, result: Any, running: dict[str, _Job], ended: list[dict[str, Any]], now: float, rng: Any
    ) -> float:
        """Record one poll's result; return the time until which every poll pauses (429), else 0."""
        if isinstance(result, GPTImageRateLimitError):  # the key's rate limit: every poll of this trigger waits
            return now + pause_after(1, result.retry_after, rng.random(), cap=self.max_poll_interval)
        if isinstance(result, GPTImageError):
            job.errors += 1
            if not result.retryable or job.errors >= self.max_transient_errors:
                self.log.warning("Polling job %s (%s) gave up: %s", job.job_id, job.key, result)
                del running[job.job_id]
                ended.append(batch_job_event(job.key, error_event(job.job_id, result)))
            else:  # the poll does not count: it is tried again after a backoff
                retry_after = getattr(result, "retry_after", None)
                job.retry_at = now + pause_after(job.errors, retry_after, rng.random(), cap=self.max_poll_interval)
            return 0.0
        job.errors, job.last_poll_at, job.state = 0, now, result.state
        job.unknown = job.unknown + 1 if result.is_unknown_state else 0
        if result.is_finished:
            del running[job.job_id]
            ended.append(batch_job_event(job.key, record_event(dataclasses.replace(result, params={}))))
        elif job.unknown >= MAX_UNKNOWN_STATE_POLLS:
            del running[job.job_id]
            error = unknown_state_error(job.job_id, result.state, job.unknown)
            ended.append(batch_job_event(job.key, error_event(job.job_id, error)))
        return 0.0
