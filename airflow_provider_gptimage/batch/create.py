"""Creating a batch's jobs while its window has room: groups of concurrent POSTs, 409/429 pacing, and one
state write per group, so that a group's job ids are stored before the next group is sent."""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_provider_gptimage.batch.records import ItemStatus, JobInFlight, ResultRow
from airflow_provider_gptimage.exceptions import (
    GPTImageActiveTaskLimitError,
    GPTImageBadRequestError,
    GPTImageRateLimitError,
)
from airflow_provider_gptimage.protocol.window import pause_after

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from airflow_provider_gptimage.batch.run import BatchRun
    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
    from airflow_provider_gptimage.protocol.batch import BatchItem


class GroupSender:
    """Send a group of creates at once, each from its own thread, through the task's one hook (safe to share).

    Each create names its item in ``X-Request-ID`` (``<task>:<key>``), as an argument of the call. With
    ``width`` 1 the creates are sent one by one from the calling thread.

    :param hook: the task's hook (its ``request_id_prefix`` names the task instance).
    :param width: the most creates in flight at once (``max_concurrent_creates``).
    """

    def __init__(self, hook: GPTImageHook, width: int) -> None:
        self.hook, self.width = hook, max(1, int(width))
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, items: list[BatchItem]) -> list[tuple[str | Exception, float]]:
        """Create a job for each item; return, in order, its job id or the error, and when it was answered."""
        if len(items) > self.width:
            raise ValueError(f"a group of {len(items)} creates exceeds the width {self.width}")
        if len(items) == 1:
            return [self._send(items[0])]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.width, thread_name_prefix="gptimage-create")
        return [future.result() for future in [self._pool.submit(self._send, item) for item in items]]

    def _send(self, item: BatchItem) -> tuple[str | Exception, float]:
        try:
            return self.hook.submit(item.request, request_id=f"{self.hook.request_id_prefix}:{item.key}"), time.time()
        except Exception as exc:  # handed back: the caller decides per item, after storing the group's ids
            return exc, time.time()

    def close(self) -> None:
        """Wait for creates still in flight (their ids are lost if the caller stopped) and end the threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


@dataclass
class _Answers:
    """What one group of creates came back with."""

    retry: list[int] = field(default_factory=list)
    created: int = 0
    conflict: GPTImageActiveTaskLimitError | None = None
    rate_limited: GPTImageRateLimitError | None = None
    unexpected: BaseException | None = None


class CreatePass:
    """One pass of creates (a resume's, or a worker loop's turn), while the window has room.

    A 409 shrinks the window (and, with nothing of ours in flight, pauses creates); a 429 pauses creates
    for ``Retry-After`` with jitter. Pauses up to ``max_worker_wait`` are slept here; a longer one ends the
    pass (a deferring batch defers, and its trigger wakes the task when creates may resume).

    :param run: the batch run.
    """

    def __init__(self, run: BatchRun) -> None:
        self.run, self.progress = run, run.progress
        self.queue = deque(i for i in self.progress.pending() if run.items[i].key not in self.progress.flight)
        self.rows: list[ResultRow] = []
        self.created: list[tuple[str, JobInFlight]] = []
        self.rng, self.waited, self.limited = random.Random(), 0.0, 0

    def send(self, *, stale: bool) -> list[tuple[str, JobInFlight]]:
        """Create jobs while the window has room; return the ``(key, job)`` of each job created.

        :param stale: the stored live key still lists jobs that ended (write it even if nothing is created).
        """
        run, progress = self.run, self.progress
        saved, unsaved = progress.live_state(), 0
        sender = GroupSender(run.hook, run.settings.max_concurrent_creates)
        try:
            while self.queue and progress.window.room(len(progress.flight)) > 0 and self._paused_enough():
                size = min(len(self.queue), progress.window.room(len(progress.flight)), sender.width)
                answers = self._send_group(sender, [self.queue.popleft() for _ in range(size)])
                unsaved += answers.created
                if unsaved >= run.settings.persist_every:
                    saved = progress.save_live(run.store)  # the group's ids are durable before the next is sent
                    unsaved, stale = 0, False
                if answers.unexpected is not None:
                    raise answers.unexpected
                if not self._paced(answers):
                    break
        finally:
            sender.close()
            if self.rows:
                progress.save_results(run.store, self.rows)
            if stale or progress.live_state() != saved:
                progress.save_live(run.store)
        return self.created

    def _paused_enough(self) -> bool:
        """Sleep out a short create pause (409/429) here; ``False`` for one too long for the worker to wait."""
        pause = self.progress.create_after - time.time()
        if pause <= 0:
            return True
        if self.waited + pause > self.run.settings.max_worker_wait:
            return False  # a long pause: the trigger wakes the task at create_after
        self.run.hook.sleep(pause)
        self.waited += pause
        self.progress.create_after = 0.0
        return True

    def _send_group(self, sender: GroupSender, group: list[int]) -> _Answers:
        """Send one group; put the jobs created in flight and the items refused for good in the rows."""
        answers, items, progress = _Answers(), self.run.items, self.progress
        for index, (outcome, created_at) in zip(group, sender.submit([items[i] for i in group]), strict=True):
            if isinstance(outcome, str):
                job = JobInFlight(outcome, created_at, items[index].fingerprint)
                progress.flight[items[index].key] = job
                self.created.append((items[index].key, job))
                if self.run.catalog is not None:
                    self.run.catalog.journal(items[index], job)
                progress.window = progress.window.accepted()
                answers.created += 1
            elif isinstance(outcome, GPTImageActiveTaskLimitError):
                answers.conflict = outcome
                answers.retry.append(index)
            elif isinstance(outcome, GPTImageRateLimitError):
                answers.rate_limited = outcome
                answers.retry.append(index)
            elif isinstance(outcome, GPTImageBadRequestError):  # the service refuses this item alone
                self.rows.append(ResultRow(index, None, "rejected", (), str(outcome)))
                progress.statuses[index] = ItemStatus.FAILED
            else:
                answers.retry.append(index)
                answers.unexpected = answers.unexpected or outcome
        self.queue.extendleft(reversed(answers.retry))  # not sent or refused for now: first in line again
        return answers

    def _paced(self, answers: _Answers) -> bool:
        """Adapt to a 409 or 429 of the group; ``False`` when creates must stop until one of ours ends."""
        progress = self.progress
        if answers.conflict is not None:
            progress.window = progress.window.conflict(len(progress.flight))
            if progress.flight:
                return False  # wait for one of ours to end
            delay = pause_after(progress.window.conflicts, answers.conflict.retry_after, self.rng.random())
            progress.create_after = time.time() + delay
        elif answers.rate_limited is not None:
            self.limited += 1
            progress.create_after = time.time() + pause_after(
                self.limited, answers.rate_limited.retry_after, self.rng.random()
            )
        return True
