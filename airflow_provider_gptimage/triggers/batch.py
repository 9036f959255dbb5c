"""Trigger that polls every in-flight job of a batch and wakes the task when resuming is worthwhile.

One trigger watches a whole window of jobs, so a batch of thousands of images costs the triggerer one
trigger, not one per image. It only ever sends GETs (a trigger may run twice; a POST here could pay
twice), polls with bounded concurrency over the connection pool shared by all of this provider's triggers
(:mod:`~airflow_provider_gptimage.triggers.session`), and keeps a few small fields per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_gptimage.exceptions import GPTImageError
from airflow_provider_gptimage.protocol import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_MAX_TRANSIENT_ERRORS,
    DEFAULT_POLL_INTERVAL,
    PollSchedule,
    RetryPolicy,
)
from airflow_provider_gptimage.protocol.events import (
    batch_crash_event,
    batch_event,
)
from airflow_provider_gptimage.protocol.polling import event_hold
from airflow_provider_gptimage.protocol.watch import Watch, WatchedJob
from airflow_provider_gptimage.protocol.window import WakePolicy
from airflow_provider_gptimage.triggers.session import shared_client_session
from airflow_provider_gptimage.triggers.warmup import awarm_up

#: Polls in flight at once per trigger (the shared pool holds 64 connections per event loop).
DEFAULT_MAX_CONCURRENT_POLLS = 16


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
        await awarm_up()  # the hook's imports, in a thread: not in the triggerer's event loop
        hook = self._hook()
        try:
            event = await self._watch(hook)
        except Exception as exc:  # the safety net: a trigger ends with an event, never a traceback
            self.log.exception("Watching a batch stopped on an unexpected error")
            event = batch_crash_event(exc, len(self.jobs), hook.secrets())
        yield TriggerEvent(event)

    async def _watch(self, hook: Any) -> dict[str, Any]:
        """Poll the jobs until the wake-up policy says resume; return the event's payload."""
        start = time.time()
        not_before = event_hold(start, self.min_event_delay)  # no event sooner (see WakePolicy)
        watch = Watch(
            self.jobs,
            schedule=PollSchedule.of(self.poll_interval, self.max_poll_interval),
            job_timeout=self.job_timeout,
            max_transient_errors=self.max_transient_errors,
            seen_at=None if self.seen_at is None else min(self.seen_at, start),
        )
        rng = random.Random()
        semaphore = asyncio.Semaphore(self.max_concurrent_polls)
        self.log.info("Watching %d job(s) of a batch", len(watch.running))
        with contextlib.suppress(GPTImageError):  # a bad connection: every poll reports it, ending each job
            await hook.aconfigure()  # the connection's TLS settings choose the shared pool
        async with shared_client_session(hook.aiohttp_ssl) as session:
            while True:
                now = time.time()
                due, next_due = watch.due(now)
                # Counted only when the fraction is reached (one pass over the watched jobs otherwise saved).
                enough = len(watch.ended) >= self.wake.threshold(len(self.jobs))
                reason = self.wake.reason(
                    total=len(self.jobs),
                    ended=len(watch.ended),
                    first_ended_at=watch.first_ended_at,
                    now=now,
                    wake_at=self.wake_at,
                    next_end_at=watch.next_end_at,
                    not_before=not_before,
                    ending=watch.ending_within(now + self.wake.linger) if enough else 0,
                )
                if reason is not None:
                    ended, running = watch.take_ended(), len(watch.running)
                    self.log.info("Waking the task (%s): %d job(s) ended, %d running", reason, len(ended), running)
                    return {**batch_event(reason, ended, running), "at": now}
                if due:
                    results = await asyncio.gather(*(self._poll(hook, session, semaphore, job) for job in due))
                    now = time.time()
                    for job, result in zip(due, results, strict=True):
                        watch.settle(job, result, now, rng.random())
                    continue
                wake = self.wake.next_check(
                    first_ended_at=watch.first_ended_at, wake_at=self.wake_at, now=now, not_before=not_before
                )
                times = [t for t in (next_due, wake) if t is not None]
                await asyncio.sleep(max(0.0, min(times, default=now + self.max_poll_interval) - now))

    async def _poll(self, hook: Any, session: Any, semaphore: asyncio.Semaphore, job: WatchedJob) -> Any:
        async with semaphore:
            try:
                return await hook.aget_task(job.job_id, session=session)
            except GPTImageError as exc:
                if not exc.retryable:
                    self.log.warning("Polling job %s (%s) gave up: %s", job.job_id, job.key, exc)
                return exc
