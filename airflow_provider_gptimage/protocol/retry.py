"""Retry decisions, as pure functions (no sleeping, no clock, no randomness of their own).

The sync loop (requests, in the worker) and the async loop (aiohttp, in the triggerer) both ask
:func:`decide_retry` what to do after a failed request; they only differ in how they sleep. (When to
poll a job is :mod:`.polling`'s decision; how to pace creates after 409/429 is :mod:`.window`'s.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airflow_provider_gptimage.exceptions import (
    GPTImageAPIError,
    GPTImageError,
    GPTImageInvalidResponseError,
    GPTImageServiceUnavailableError,
    GPTImageTransportError,
)

#: Seconds one HTTP request to the API may take in all before it counts as a (transient) timeout.
DEFAULT_REQUEST_TIMEOUT = 30.0

CREATE = "createTask"
POLL = "recordInfo"
DOWNLOAD = "download"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry one API request.

    :param max_attempts: tries in all, the first included.
    :param initial_delay: seconds before the first retry.
    :param max_delay: the cap of the exponential backoff.
    :param multiplier: growth of the backoff per attempt.
    :param jitter: fraction of the delay drawn at random (0 to 1), so many clients do not retry in step.
    :param max_retry_after: the longest ``Retry-After`` honoured; a longer one is capped to this.
    :param ambiguous_create_retries: how many times ``createTask`` is sent again after an answer that
        leaves open whether the job was created (timeout, reset, 5xx). The API has no idempotency key,
        so each such retry may pay for a second image: keep this small.
    :param no_retry_codes: error codes (e.g. 409, 429) handed straight back to the caller instead of being
        retried here, for a caller that paces itself on them (the batch operator's create window).
    """

    max_attempts: int = 6
    initial_delay: float = 1.0
    max_delay: float = 60.0
    multiplier: float = 2.0
    jitter: float = 0.25
    max_retry_after: float = 300.0
    ambiguous_create_retries: int = 1
    no_retry_codes: frozenset[int] = frozenset()


DEFAULT_POLICY = RetryPolicy()


def may_have_been_processed(error: GPTImageError) -> bool:
    """Tell whether a failed request may still have taken effect on the service.

    A refused connection never reached it, and 409/429/455 are refusals; a timeout, a reset, a 5xx or an
    unreadable answer leave it open.
    """
    if isinstance(error, GPTImageTransportError):
        return error.request_sent
    if isinstance(error, GPTImageInvalidResponseError):
        return True
    if isinstance(error, GPTImageServiceUnavailableError):
        return error.status != 455 and error.code != 455
    return False


def grown(start: float, factor: float, steps: int, cap: float) -> float:
    """Return ``min(cap, start * factor**steps)`` without overflowing for a large ``steps``."""
    try:
        value = start * factor**steps
    except OverflowError:
        return cap
    return min(cap, value)


def backoff_delay(policy: RetryPolicy, attempt: int, rand: float) -> float:
    """Capped exponential backoff with jitter.

    :param attempt: the number of the attempt that just failed (1 for the first).
    :param rand: a number in ``[0, 1)`` supplied by the caller.
    """
    return backoff(
        attempt, rand, initial=policy.initial_delay, cap=policy.max_delay, multiplier=policy.multiplier,
        jitter=policy.jitter,
    )  # fmt: skip


def backoff(
    attempt: int, rand: float, *, initial: float, cap: float, multiplier: float = 2.0, jitter: float = 0.25
) -> float:
    """Capped exponential backoff with jitter: ``initial * multiplier**(attempt - 1)``, at most ``cap``, of
    which the fraction ``jitter`` is drawn at random.

    :param attempt: the number of the attempt that just failed (1 for the first).
    :param rand: a number in ``[0, 1)`` supplied by the caller.
    """
    base = grown(initial, multiplier, max(0, attempt - 1), cap)
    return base * (1 - jitter) + base * jitter * rand


def decide_retry(
    policy: RetryPolicy,
    operation: str,
    failures: Sequence[GPTImageError],
    rand: float,
    *,
    remaining: float | None = None,
) -> float | None:
    """Decide whether to send a request again, and after how long.

    :param operation: :data:`CREATE`, :data:`POLL` or :data:`DOWNLOAD`.
    :param failures: every failure of this request so far, the latest last.
    :param rand: a number in ``[0, 1)`` supplied by the caller (for jitter).
    :param remaining: seconds left before an overall deadline, if there is one.
    :return: seconds to wait before the next try, or ``None`` to give up and raise the latest failure.
    """
    if not failures:
        raise ValueError("decide_retry needs at least one failure")
    error = failures[-1]
    if not error.retryable or len(failures) >= policy.max_attempts:
        return None
    if isinstance(error, GPTImageAPIError) and error.code in policy.no_retry_codes:
        return None
    if operation == CREATE:
        ambiguous = sum(1 for f in failures if may_have_been_processed(f))
        if ambiguous > policy.ambiguous_create_retries:
            return None
    delay = backoff_delay(policy, len(failures), rand)
    retry_after = error.retry_after if isinstance(error, GPTImageAPIError) else None
    if retry_after is not None:
        # Honour the service's word, plus a little jitter so a fleet does not come back in one instant.
        delay = min(retry_after, policy.max_retry_after) * (1 + 0.1 * rand)
    if remaining is not None and delay >= remaining:
        return None
    return delay
