"""The jobs of a batch being watched, and what each poll result means (pure: callers pass ``now`` and ``rand``).

The batch trigger (polling from the triggerer) and the batch operator with ``deferrable=False`` (polling from
the worker) keep a :class:`Watch` each and differ only in how they send polls and sleep. Every job follows
:func:`~.polling.poll_step` (its own schedule, one last poll at its deadline); a failed poll is tried again
after :func:`~.window.pause_after`; a 429 pauses every poll; a job that ends, fails for good or keeps an
unknown state leaves the watch as a single-job event tagged with its key (:func:`~.events.batch_job_event`).

The jobs wait in a queue ordered by when each falls due, so finding the jobs to poll costs a few steps per
poll, not a pass over every watched job: a trigger watching 1,000 jobs wakes hundreds of times a minute.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Sequence
from typing import Any

from airflow_provider_gptimage.exceptions import GPTImageError, GPTImageRateLimitError
from airflow_provider_gptimage.protocol.events import batch_job_event, error_event, record_event, timeout_event
from airflow_provider_gptimage.protocol.polling import TIMEOUT, WAIT, PollSchedule, poll_due_at, poll_step
from airflow_provider_gptimage.protocol.records import MAX_UNKNOWN_STATE_POLLS, JobRecord, unknown_state_error
from airflow_provider_gptimage.protocol.window import pause_after


class WatchedJob:
    """What is kept per watched job (a few fields; thousands fit in little memory)."""

    __slots__ = ("created_at", "errors", "job_id", "key", "last_poll_at", "queued_at", "retry_at", "state", "unknown")

    def __init__(self, key: str, job_id: str, created_at: float, last_poll_at: float | None) -> None:
        self.key, self.job_id, self.created_at, self.last_poll_at = key, job_id, created_at, last_poll_at
        self.errors = 0  # failed polls in a row
        self.retry_at = 0.0  # no poll before this time (after a failed poll)
        self.state: str | None = None
        self.unknown = 0  # polls in a row that reported an unknown state
        self.queued_at: float | None = None  # its place in the watch's queue (None: handed out to be polled)


class Watch:
    """The running jobs of a batch poller, and the events of those that left it.

    :param jobs: ``(key, job_id, created_at)`` of each job (``created_at`` in epoch seconds).
    :param schedule: when to poll each job.
    :param job_timeout: seconds from a job's creation after which it times out (``None``: never).
    :param max_transient_errors: failed polls in a row after which a job is reported with its error.
    :param seen_at: when a previous poller of these jobs last polled them (a job whose poll fell due since
        is polled at once, not at its next turn).
    """

    def __init__(
        self,
        jobs: Sequence[tuple[str, str, float]],
        *,
        schedule: PollSchedule,
        job_timeout: float | None,
        max_transient_errors: int,
        seen_at: float | None = None,
    ) -> None:
        self.schedule, self.job_timeout, self.max_transient_errors = schedule, job_timeout, max_transient_errors
        self.running: dict[str, WatchedJob] = {}
        self.ended: list[dict[str, Any]] = []
        self.first_ended_at: float | None = None
        self.shortest: float | None = None  # the youngest age at which a job was seen ended
        self.paused_until = 0.0
        self._queue: list[tuple[float, int, str]] = []  # (due at, order, job id); stale entries are skipped
        self._order = itertools.count()
        for key, job_id, created in jobs:
            self._watch(WatchedJob(key, job_id, created, seen_at))

    def add(self, key: str, job_id: str, created_at: float) -> None:
        """Watch one more job (a poller in the worker adds the jobs it creates)."""
        self._watch(WatchedJob(key, job_id, created_at, None))

    def _watch(self, job: WatchedJob) -> None:
        self.running[job.job_id] = job
        self._enqueue(job)

    def _deadline(self, job: WatchedJob) -> float | None:
        return None if self.job_timeout is None else job.created_at + self.job_timeout

    def _enqueue(self, job: WatchedJob) -> None:
        """Queue a job for its next poll (:func:`~.polling.poll_due_at`, not before a failed poll's backoff)."""
        due = poll_due_at(
            self.schedule, created_at=job.created_at, last_poll_at=job.last_poll_at, deadline=self._deadline(job)
        )
        job.queued_at = max(due, job.retry_at)
        heapq.heappush(self._queue, (job.queued_at, next(self._order), job.job_id))

    def _queued(self, entry: tuple[float, int, str]) -> WatchedJob | None:
        """The job an entry of the queue stands for, unless the entry is stale (the job left or moved)."""
        job = self.running.get(entry[2])
        return job if job is not None and job.queued_at == entry[0] else None

    def due(self, now: float) -> tuple[list[WatchedJob], float | None]:
        """End the jobs past their deadline; return the jobs to poll now and when the next one falls due.

        A job handed out here leaves the queue until :meth:`settle` records its poll. During a 429 pause
        nothing is handed out, and a job past its deadline is ended when the pause is over.
        """
        due: list[WatchedJob] = []
        while self._queue and self._queue[0][0] <= now and self.paused_until <= now:
            job = self._queued(heapq.heappop(self._queue))
            if job is None:
                continue
            job.queued_at = None
            step = poll_step(
                self.schedule, created_at=job.created_at, last_poll_at=job.last_poll_at, now=now,
                deadline=self._deadline(job),
            )  # fmt: skip
            if step.action == TIMEOUT:
                self._end(job, timeout_event(job.job_id, job.state, self.job_timeout), now)
            elif step.action == WAIT:  # not reached: a queued time is never before the schedule's
                self._enqueue(job)
            else:
                due.append(job)
        while self._queue and self._queued(self._queue[0]) is None:
            heapq.heappop(self._queue)
        next_due = max(self._queue[0][0], self.paused_until) if self._queue else None
        return due, next_due

    def settle(self, job: WatchedJob, result: JobRecord | GPTImageError, now: float, rand: float) -> None:
        """Record one poll's result (a record, or the error the poll raised); a job still running is queued
        for its next poll."""
        self._record(job, result, now, rand)
        if self.running.get(job.job_id) is job:
            self._enqueue(job)

    def _record(self, job: WatchedJob, result: JobRecord | GPTImageError, now: float, rand: float) -> None:
        if isinstance(result, GPTImageRateLimitError):  # the key's rate limit: every poll waits
            pause = pause_after(1, result.retry_after, rand, cap=self.schedule.maximum)
            self.paused_until = max(self.paused_until, now + pause)
            return
        if isinstance(result, GPTImageError):
            job.errors += 1
            if not result.retryable or job.errors >= self.max_transient_errors:
                self._end(job, error_event(job.job_id, result), now)
            else:  # the poll does not count: it is tried again after a backoff
                retry_after = getattr(result, "retry_after", None)
                job.retry_at = now + pause_after(job.errors, retry_after, rand, cap=self.schedule.maximum)
            return
        job.errors, job.last_poll_at, job.state = 0, now, result.state
        job.unknown = job.unknown + 1 if result.is_unknown_state else 0
        if result.is_finished:
            age = now - job.created_at  # seen ended: it ran at most this long
            self.shortest = age if self.shortest is None else min(self.shortest, age)
            self._end(job, record_event(dataclasses.replace(result, params={})), now)
        elif job.unknown >= MAX_UNKNOWN_STATE_POLLS:
            self._end(job, error_event(job.job_id, unknown_state_error(job.job_id, result.state, job.unknown)), now)

    def _end(self, job: WatchedJob, event: dict[str, Any], now: float) -> None:
        del self.running[job.job_id]
        self.ended.append(batch_job_event(job.key, event))
        if self.first_ended_at is None:
            self.first_ended_at = now

    def take_ended(self) -> list[dict[str, Any]]:
        """Hand over the events of the jobs that left the watch since the last call."""
        ended, self.ended = self.ended, []
        return ended

    def ending_within(self, horizon: float) -> int:
        """How many running jobs are about to end: not yet polled at the youngest age at which a job was seen
        ended, and reaching that age by ``horizon`` (epoch seconds). Jobs polled past that age and still running
        are simply slower, and are not counted.
        """
        if self.shortest is None:
            return 0
        shortest = self.shortest
        return sum(
            1
            for job in self.running.values()
            if job.created_at + shortest <= horizon
            and (job.last_poll_at is None or job.last_poll_at - job.created_at < shortest)
        )

    @property
    def next_end_at(self) -> float | None:
        """The earliest time a running job may end: the oldest one's creation plus the shortest run seen."""
        if self.shortest is None or not self.running:
            return None
        return min(job.created_at for job in self.running.values()) + self.shortest
