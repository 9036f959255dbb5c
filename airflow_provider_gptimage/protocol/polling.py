"""When to poll a job, when to give up on it, and what to say then (pure: callers pass ``now``).

Every loop that waits for jobs, the worker's (:meth:`~.hooks.gptimage.GPTImageHook.wait_for_job`), the
single-job trigger's and the batch trigger's, asks :func:`poll_step` what to do next and says
:func:`timeout_message` when a job outlives its deadline; none of them orders the deadline check and the
poll its own way.

**The schedule.** Polls of a job fall on its own clock: the first ``initial`` seconds after its creation
(a job just created is never done), then after waits growing by ``factor`` up to ``maximum``
(:func:`poll_delay`). Deriving the times from the job's age, not from a count kept in memory, lets a new
poller (the next batch window, a triggerer restart) take over old and new jobs without polling them all
at once or starting the schedule over.

**The deadline.** A job whose deadline has passed gets one last poll at or after the deadline (it may have
ended meanwhile, e.g. while the triggerer was down), then times out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from airflow_provider_gptimage.protocol.retry import grown

#: Seconds from a job's creation to its first poll (and the first wait's length).
DEFAULT_POLL_INTERVAL = 5.0
#: The longest wait between two polls of a job.
DEFAULT_MAX_POLL_INTERVAL = 30.0
#: Transient failures in a row tolerated while polling one job before it is reported with its error.
DEFAULT_MAX_TRANSIENT_ERRORS = 8


def seconds(value: float | timedelta | None) -> float | None:
    """A duration in seconds (``None`` stays ``None``)."""
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def deadline_after(timeout: float | timedelta | None, start: float) -> float | None:
    """The absolute deadline (epoch seconds) ``timeout`` after ``start`` (``None``: no deadline)."""
    span = seconds(timeout)
    return None if span is None else start + span


POLL = "poll"
WAIT = "wait"
TIMEOUT = "timeout"


@dataclass(frozen=True)
class PollSchedule:
    """Adaptive polling: a few seconds first, backing off to a cap (most jobs take 15-90 s).

    :param initial: seconds from a job's creation to its first poll.
    :param maximum: the longest wait between two polls.
    :param factor: growth of the wait per poll.
    """

    initial: float = DEFAULT_POLL_INTERVAL
    maximum: float = DEFAULT_MAX_POLL_INTERVAL
    factor: float = 1.5

    def __post_init__(self) -> None:
        finite = all(math.isfinite(v) for v in (self.initial, self.maximum, self.factor))
        if not finite or self.initial <= 0 or self.maximum < self.initial or self.factor < 1:
            raise ValueError(
                "poll schedule needs finite values with 0 < initial <= maximum and factor >= 1, "
                f"got initial={self.initial}, maximum={self.maximum}, factor={self.factor}"
            )

    @classmethod
    def of(cls, poll_interval: float, max_poll_interval: float) -> PollSchedule:
        """The schedule of an operator's or trigger's ``poll_interval`` and ``max_poll_interval`` (a maximum
        below the interval is raised to it)."""
        return cls(initial=float(poll_interval), maximum=max(float(poll_interval), float(max_poll_interval)))


def poll_delay(schedule: PollSchedule, polls_done: int) -> float:
    """Seconds between poll ``polls_done`` and the next one (``polls_done = 0``: from the job's creation)."""
    return grown(schedule.initial, schedule.factor, polls_done, schedule.maximum)


def next_poll_at(schedule: PollSchedule, created_at: float, after: float) -> float:
    """The first poll time strictly after ``after`` on the schedule of a job created at ``created_at``."""
    at, polls = created_at + poll_delay(schedule, 0), 1
    while at <= after:
        delay = poll_delay(schedule, polls)
        if delay >= schedule.maximum:
            return at + (math.floor((after - at) / schedule.maximum) + 1) * schedule.maximum
        at, polls = at + delay, polls + 1
    return at


@dataclass(frozen=True)
class PollStep:
    """What a polling loop does now for one job.

    :param action: :data:`POLL` (now), :data:`WAIT` (``seconds``, then ask again) or :data:`TIMEOUT`.
    :param seconds: how long to wait (for :data:`WAIT`).
    """

    action: str
    seconds: float = 0.0


def poll_due_at(
    schedule: PollSchedule, *, created_at: float, last_poll_at: float | None, deadline: float | None
) -> float:
    """When a job's next poll falls due: its schedule's next turn after its last poll, at the latest its deadline.

    :param created_at: when the job was created (or, when unknown, when the waiting started).
    :param last_poll_at: when it was last polled (``None``: never, by this poller or its predecessor).
    :param deadline: when to give up (epoch seconds; ``None``: never).
    """
    due = next_poll_at(schedule, created_at, created_at if last_poll_at is None else last_poll_at)
    return due if deadline is None else min(due, deadline)


def poll_step(
    schedule: PollSchedule, *, created_at: float, last_poll_at: float | None, now: float, deadline: float | None
) -> PollStep:
    """Decide whether to poll a job now, wait, or time out.

    :param created_at: when the job was created (or, when unknown, when the waiting started).
    :param last_poll_at: when it was last polled (``None``: never, by this poller or its predecessor).
    :param now: the current time (epoch seconds).
    :param deadline: when to give up (epoch seconds; ``None``: never).
    """
    if deadline is not None and now >= deadline:
        return PollStep(TIMEOUT) if last_poll_at is not None and last_poll_at >= deadline else PollStep(POLL)
    due = poll_due_at(schedule, created_at=created_at, last_poll_at=last_poll_at, deadline=deadline)
    return PollStep(POLL) if due <= now else PollStep(WAIT, due - now)


def timeout_message(job_id: str, last_state: str | None, timeout: float | None = None) -> str:
    """What to tell the user when a job outlives its deadline (the same words in every loop).

    :param timeout: the limit in seconds from the job's creation, when known (said in the message).
    """
    limit = f" ({timeout:g}s from its creation)" if timeout is not None else ""
    return (
        f"Job {job_id} did not finish before its deadline{limit} (last state: {last_state or 'unknown'}). The "
        "service may still finish and bill it; poll it with GPTImageTaskSensor to collect the image."
    )


def event_hold(started_at: float, min_event_delay: float) -> float:
    """The earliest time a trigger started at ``started_at`` may fire its event (the one guard against
    Airflow's fast-trigger race, apache/airflow#72716: an event that reaches the scheduler before the
    executor's report of the task's deferral can fail the resumed task). A trigger keeps polling meanwhile."""
    return started_at + max(0.0, min_event_delay)
