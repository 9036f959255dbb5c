"""Batch pacing as pure functions: the adaptive create window (AIMD), pauses after refusals, the wake-up rule.

Nothing here sleeps, reads a clock or draws a random number: callers pass ``now`` and ``rand``.

**The create window.** The account has an active-task limit (the service answers 409 past it); the batch
keeps at most ``size`` of its jobs in flight. It starts at the user's ``max_active_jobs`` and:

* grows by one after ``size`` creates in a row were accepted (additive increase, one step per "round"),
  never past ``maximum``;
* on a 409 shrinks multiplicatively (``size * decrease``), but never below the number of jobs the service
  has just proved it holds (those in flight): shrinking under them would only idle the account once they
  finish. A 409 with nothing in flight (the account is busy with other clients' jobs) waits with capped
  exponential backoff before the next try.

A 429 (rate limit) does not touch the window (it limits requests, not jobs): creates pause for
``Retry-After`` plus jitter (:func:`pause_after`, which also paces creates after a 409 with nothing in
flight, and a job's polls after they fail).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from airflow_provider_gptimage.protocol.retry import DEFAULT_POLICY, backoff

#: Reasons a batch trigger wakes the task, in :meth:`WakePolicy.reason`'s order of precedence.
WAKE_ALL = "all"
WAKE_TIMER = "timer"
WAKE_FRACTION = "fraction"
WAKE_LINGER = "linger"


@dataclass(frozen=True)
class CreateWindow:
    """How many jobs of a batch may be in flight at once, adapted to the service's answers (immutable).

    :param size: jobs allowed in flight now.
    :param maximum: the ceiling (the account's active-task limit as the user states it).
    :param minimum: the floor of a decrease.
    :param decrease: the multiplicative decrease on a 409 (``0 < decrease < 1``).
    :param credit: creates accepted since the last increase (an increase needs ``size`` of them).
    :param conflicts: 409s in a row without an accepted create (drives the backoff with nothing in flight).
    """

    size: int
    maximum: int
    minimum: int = 1
    decrease: float = 0.5
    credit: int = 0
    conflicts: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.size <= self.maximum:
            raise ValueError(
                f"create window needs 1 <= minimum <= size <= maximum, got minimum={self.minimum}, "
                f"size={self.size}, maximum={self.maximum}"
            )
        if not 0 < self.decrease < 1:
            raise ValueError(f"create window decrease must be between 0 and 1, got {self.decrease}")

    @classmethod
    def start(cls, maximum: int, *, minimum: int = 1, decrease: float = 0.5) -> CreateWindow:
        """A window opened at its maximum (the user's ``max_active_jobs``)."""
        return cls(size=maximum, maximum=maximum, minimum=min(minimum, maximum), decrease=decrease)

    def room(self, in_flight: int) -> int:
        """How many more jobs may be created while ``in_flight`` are running."""
        return max(0, self.size - in_flight)

    def accepted(self) -> CreateWindow:
        """A create was accepted: count it; after a full window of them, grow by one (additive increase)."""
        credit = self.credit + 1
        if credit >= self.size and self.size < self.maximum:
            return replace(self, size=self.size + 1, credit=0, conflicts=0)
        return replace(self, credit=credit, conflicts=0)

    def conflict(self, in_flight: int) -> CreateWindow:
        """A create got 409 while ``in_flight`` jobs run: shrink (multiplicative decrease, floored)."""
        shrunk = max(math.floor(self.size * self.decrease), in_flight)
        size = max(self.minimum, min(self.size, shrunk))
        return replace(self, size=size, credit=0, conflicts=self.conflicts + 1)

    def to_primitives(self) -> dict[str, int]:
        """Named primitives for persisted state."""
        return {"size": self.size, "maximum": self.maximum, "credit": self.credit, "conflicts": self.conflicts}

    @classmethod
    def from_primitives(cls, data: object, maximum: int) -> CreateWindow | None:
        """Rebuild from :meth:`to_primitives` (or 0.1.0's ``[size, maximum, credit, conflicts]``); ``None`` when
        missing, unreadable or stale (another ``maximum``): the window then restarts."""
        if isinstance(data, list) and len(data) == 4:
            data = dict(zip(("size", "maximum", "credit", "conflicts"), data, strict=True))
        if not isinstance(data, dict):
            return None
        size, stored_max, credit, conflicts = (data.get(k) for k in ("size", "maximum", "credit", "conflicts"))
        if not all(isinstance(v, int) for v in (size, stored_max, credit, conflicts)) or stored_max != maximum:
            return None
        if not (1 <= size <= maximum and credit >= 0 and conflicts >= 0):  # type: ignore[operator]
            return None
        return cls(size=size, maximum=maximum, credit=credit, conflicts=conflicts)  # type: ignore[arg-type]


@dataclass(frozen=True)
class WakePolicy:
    """When a batch trigger stops polling and wakes the task (a resume costs a worker start, so batch them).

    The trigger fires when every job it watches has ended; or when ``fraction`` of them have (enough to
    refill a good part of the window at once) and no other is about to end; or ``linger`` seconds after the
    first one ended (so a lone early job neither waits for the slowest nor wakes the task on its own); or at
    ``wake_at``, a time the task asked for (the end of a 429 pause, a 409 backoff), finished jobs or not.
    Jobs created together end together: waking the task for the first part of such a group would leave the
    rest of it idle for a whole cycle (a hold and a resume), so the fraction waits while jobs are about to
    end (``ending``, see :meth:`~.watch.Watch.ending_within`), and the linger is cut short when no running
    job can end within it: none is as old as the youngest age at which a job was seen to end (waiting for
    the next group would only idle the ended slots).
    No reason counts before ``not_before`` (the trigger's start plus its minimum delay): an event that
    reaches the scheduler before the executor's report of the deferral can fail the resumed task (an Airflow
    race, apache/airflow#72716); the trigger keeps polling meanwhile, and fires then with all that ended.

    :param fraction: share of the watched jobs whose end is worth a resume (0 < fraction <= 1).
    :param linger: seconds to wait after the first ended job for others to join it.
    """

    fraction: float = 0.25
    linger: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1 or not math.isfinite(self.linger) or self.linger < 0:
            raise ValueError(f"wake policy needs 0 < fraction <= 1 and linger >= 0, got {self.fraction}, {self.linger}")

    def threshold(self, total: int) -> int:
        """How many ended jobs among ``total`` are enough to wake the task."""
        return max(1, math.ceil(self.fraction * total))

    def reason(
        self,
        *,
        total: int,
        ended: int,
        first_ended_at: float | None,
        now: float,
        wake_at: float | None,
        next_end_at: float | None = None,
        not_before: float | None = None,
        ending: int = 0,
    ) -> str | None:
        """The reason to wake now, or ``None`` to keep polling.

        :param total: jobs the trigger watches.
        :param ended: of those, how many ended (success, fail, final error or timeout).
        :param first_ended_at: when the first one ended, if any did.
        :param now: the current time (epoch seconds).
        :param wake_at: a time the task asked to be woken at, if any.
        :param next_end_at: the earliest time a running job may end (its creation plus the shortest run
            seen), if known; ``None`` (unknown) lingers the whole ``linger``.
        :param not_before: no reason counts before this time (``None``: no hold).
        :param ending: running jobs about to end (within the linger from ``now``): the fraction waits for them.
        """
        if not_before is not None and now < not_before:
            return None
        if total > 0 and ended >= total:
            return WAKE_ALL
        if (wake_at is not None and now >= wake_at) or (total == 0 and wake_at is None):
            return WAKE_TIMER
        if ended and ended >= self.threshold(total) and not ending:
            return WAKE_FRACTION
        if ended and first_ended_at is not None:
            if now - first_ended_at >= self.linger:
                return WAKE_LINGER
            if next_end_at is not None and next_end_at > first_ended_at + self.linger:
                return WAKE_LINGER  # nothing else can end while lingering
        return None

    def next_check(
        self,
        *,
        first_ended_at: float | None,
        wake_at: float | None,
        now: float | None = None,
        not_before: float | None = None,
    ) -> float | None:
        """The next time :meth:`reason` may change without a poll result: the linger's end, ``wake_at``, or
        the end of the hold (``not_before``, when it is after ``now``; no time before it counts)."""
        times = [
            t for t in (wake_at, None if first_ended_at is None else first_ended_at + self.linger) if t is not None
        ]
        if not_before is not None and (now is None or not_before > now):
            times = [max(t, not_before) for t in times] + [not_before]
        return min(times) if times else None


def pause_after(refusals: int, retry_after: float | None, rand: float, *, cap: float = 60.0) -> float:
    """Seconds to pause creates (or a job's polls) after ``refusals`` refusals in a row (409, 429, a failed poll).

    The service's ``Retry-After`` wins (capped at :attr:`~.retry.RetryPolicy.max_retry_after`, plus up to 10 %
    jitter so a fleet does not come back in one instant); without it, capped exponential backoff from 1 s.

    :param refusals: refusals in a row so far, this one included (1 for the first).
    :param retry_after: the service's ``Retry-After`` in seconds, if it sent one.
    :param rand: a number in ``[0, 1)`` supplied by the caller.
    :param cap: the longest backoff without ``Retry-After``.
    """
    if retry_after is not None:
        return min(retry_after, DEFAULT_POLICY.max_retry_after) * (1 + 0.1 * rand)
    return backoff(max(1, refusals), rand, initial=1.0, cap=cap)
