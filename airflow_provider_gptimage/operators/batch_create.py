"""Creating a batch's jobs while its window has room: groups of concurrent POSTs, 409/429 pacing, and one
state write per group, so that a group's job ids are stored before the next group is sent."""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.exceptions import (
    GPTImageActiveTaskLimitError,
    GPTImageBadRequestError,
    GPTImageRateLimitError,
)
from airflow_provider_gptimage.operators.batch_steps import GroupSender
from airflow_provider_gptimage.protocol.batch import FAILED, result_row
from airflow_provider_gptimage.protocol.window import pause_after

if TYPE_CHECKING:
    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
    from airflow_provider_gptimage.operators.batch_state import BatchStore, Progress
    from airflow_provider_gptimage.protocol.batch import BatchItem


@dataclass(frozen=True)
class CreateSettings:
    """How the creates of one resume are sent.

    :param width: creates sent at once (``max_concurrent_creates``).
    :param persist_every: creates between two writes of the jobs in flight, counted in whole groups.
    :param max_worker_wait: seconds of 429/409 pauses slept in the worker per resume; longer ones defer.
    """

    width: int
    persist_every: int
    max_worker_wait: float


@dataclass
class _Group:
    """What one group of creates came back with."""

    retry: list[int]
    created: int = 0
    conflict: GPTImageActiveTaskLimitError | None = None
    rate_limited: GPTImageRateLimitError | None = None
    unexpected: BaseException | None = None


def create_jobs(
    hook: GPTImageHook,
    items: list[BatchItem],
    store: BatchStore,
    progress: Progress,
    settings: CreateSettings,
    *,
    stale: bool,
) -> None:
    """Create jobs while the window has room, a group of ``settings.width`` POSTs at a time; the group's
    job ids are stored (one state write) before the next group is sent.

    A 409 shrinks the window (and, with nothing of ours in flight, pauses creates); a 429 pauses creates
    for ``Retry-After`` with jitter. Pauses up to ``settings.max_worker_wait`` are slept here; a longer one
    ends the loop (the caller defers, and the trigger wakes the task when creates may resume).

    :param stale: the stored live key still lists jobs that ended (write it even if nothing is created).
    """
    queue = deque(i for i in progress.pending() if items[i].key not in progress.flight)
    rng, waited, limited, unsaved = random.Random(), 0.0, 0, 0
    rows: list[list[Any]] = []
    saved = progress.live_state()
    sender = GroupSender(hook, settings.width)
    try:
        while queue and progress.window.room(len(progress.flight)) > 0:
            pause = progress.create_after - time.time()
            if pause > 0:
                if waited + pause > settings.max_worker_wait:
                    break  # a long pause: defer (the trigger wakes the task at create_after)
                hook.sleep(pause)
                waited += pause
                progress.create_after = 0.0
            size = min(len(queue), progress.window.room(len(progress.flight)), sender.width)
            group = [queue.popleft() for _ in range(size)]
            answered = _send_group(sender, items, group, progress, rows)
            unsaved += answered.created
            queue.extendleft(reversed(answered.retry))  # not sent or refused for now: first in line again
            if unsaved >= settings.persist_every:
                saved = progress.save_live(store)  # the group's ids are durable before the next group is sent
                unsaved, stale = 0, False
            if answered.unexpected is not None:
                raise answered.unexpected
            if answered.conflict is not None:
                progress.window = progress.window.conflict(len(progress.flight))
                if progress.flight:
                    break  # wait for one of ours to end
                delay = pause_after(progress.window.conflicts, answered.conflict.retry_after, rng.random())
                progress.create_after = time.time() + delay
            elif answered.rate_limited is not None:
                limited += 1
                delay = pause_after(limited, answered.rate_limited.retry_after, rng.random())
                progress.create_after = time.time() + delay
    finally:
        sender.close()
        if rows:
            progress.save_results(store, rows)
        if stale or progress.live_state() != saved:
            progress.save_live(store)


def _send_group(
    sender: GroupSender, items: list[BatchItem], group: list[int], progress: Progress, rows: list[list[Any]]
) -> _Group:
    """Send one group; put the jobs created in flight and the items refused for good in ``rows``."""
    answered = _Group(retry=[])
    for index, (outcome, created_at) in zip(group, sender.submit([items[i] for i in group]), strict=True):
        if isinstance(outcome, str):
            item = items[index]
            progress.flight[item.key] = [outcome, created_at, item.digest]
            progress.window = progress.window.accepted()
            answered.created += 1
        elif isinstance(outcome, GPTImageActiveTaskLimitError):
            answered.conflict = outcome
            answered.retry.append(index)
        elif isinstance(outcome, GPTImageRateLimitError):
            answered.rate_limited = outcome
            answered.retry.append(index)
        elif isinstance(outcome, GPTImageBadRequestError):  # the service refuses this item alone
            rows.append(result_row(index, None, "rejected", (), str(outcome)))
            progress.status[index] = FAILED
        else:
            answered.retry.append(index)
            answered.unexpected = answered.unexpected or outcome
    return answered
