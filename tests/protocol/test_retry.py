"""Retry decisions: :func:`decide_retry`, :func:`backoff`."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.exceptions import (
    GPTImageActiveTaskLimitError,
    GPTImageAuthError,
    GPTImageBadRequestError,
    GPTImageConfigurationError,
    GPTImageError,
    GPTImageInsufficientCreditsError,
    GPTImageInvalidResponseError,
    GPTImageJobFailedError,
    GPTImageNotFoundError,
    GPTImageRateLimitError,
    GPTImageResultError,
    GPTImageServiceUnavailableError,
    GPTImageTimeoutError,
    GPTImageTransportError,
    GPTImageUnsupportedError,
    GPTImageValidationError,
)
from airflow_provider_gptimage.protocol import (
    CREATE,
    DEFAULT_POLICY,
    DOWNLOAD,
    POLL,
    RetryPolicy,
    decide_retry,
    error_for,
)
from airflow_provider_gptimage.protocol.retry import backoff_delay, may_have_been_processed

OPERATIONS = [CREATE, POLL, DOWNLOAD]

NON_RETRYABLE = [
    pytest.param(error_for(400, status=400), id="400"),
    pytest.param(error_for(401, status=401), id="401"),
    pytest.param(error_for(402, status=402), id="402"),
    pytest.param(error_for(404, status=404), id="404"),
    pytest.param(error_for(422, status=200), id="422-body"),
    pytest.param(error_for(501, status=501), id="501"),
    pytest.param(error_for(505, status=200), id="505-body"),
    pytest.param(GPTImageValidationError("prompt", "must not be empty"), id="validation"),
    pytest.param(GPTImageConfigurationError("no key"), id="configuration"),
    pytest.param(GPTImageJobFailedError("f", job_id="j", fail_code="1", fail_message="m"), id="job-failed"),
    pytest.param(GPTImageTimeoutError("late"), id="timeout"),
    pytest.param(GPTImageResultError("gone"), id="result"),
    pytest.param(GPTImageError("base"), id="base"),
]

RETRYABLE = [
    pytest.param(error_for(409, status=409), id="409"),
    pytest.param(error_for(429, status=429), id="429"),
    pytest.param(error_for(455, status=200), id="455-body"),
    pytest.param(error_for(500, status=500), id="500"),
    pytest.param(error_for(502, status=502), id="502"),
    pytest.param(error_for(503, status=503), id="503"),
    pytest.param(GPTImageInvalidResponseError("html", status=200), id="invalid-response"),
    pytest.param(GPTImageTransportError("timed out"), id="transport-timeout"),
    pytest.param(GPTImageTransportError("refused", request_sent=False), id="transport-refused"),
]


def test_error_classes_and_retryable_flags_agree_with_the_tables():
    expected = {
        GPTImageBadRequestError: False,
        GPTImageAuthError: False,
        GPTImageInsufficientCreditsError: False,
        GPTImageNotFoundError: False,
        GPTImageUnsupportedError: False,
        GPTImageActiveTaskLimitError: True,
        GPTImageRateLimitError: True,
        GPTImageServiceUnavailableError: True,
        GPTImageInvalidResponseError: True,
        GPTImageTransportError: True,
    }
    assert {cls: cls.retryable for cls in expected} == expected


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("error", NON_RETRYABLE)
def test_non_retryable_errors_give_up(error, operation):
    assert decide_retry(DEFAULT_POLICY, operation, [error], 0.5) is None


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("error", RETRYABLE)
def test_retryable_errors_get_a_delay(error, operation):
    delay = decide_retry(DEFAULT_POLICY, operation, [error], 0.5)
    assert delay is not None
    assert 0 < delay <= DEFAULT_POLICY.max_delay


def test_needs_a_failure():
    with pytest.raises(ValueError, match="at least one failure"):
        decide_retry(DEFAULT_POLICY, POLL, [], 0.5)


def test_only_the_latest_failure_decides_retryability():
    failures = [error_for(401, status=401), error_for(429, status=429)]
    assert decide_retry(DEFAULT_POLICY, POLL, failures, 0.5) is not None
    assert decide_retry(DEFAULT_POLICY, POLL, failures[::-1], 0.5) is None


# --- attempts ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize(
    ("max_attempts", "failures", "retries"),
    [(1, 1, False), (3, 2, True), (3, 3, False), (6, 5, True), (6, 6, False), (6, 9, False)],
)
def test_max_attempts_counts_the_first_try(operation, max_attempts, failures, retries):
    policy = RetryPolicy(max_attempts=max_attempts)
    errors = [error_for(429, status=429)] * failures  # never ambiguous, so CREATE behaves like POLL
    assert (decide_retry(policy, operation, errors, 0.5) is not None) is retries


def test_a_poll_is_tried_max_attempts_times_in_all():
    policy = RetryPolicy(max_attempts=4)
    failures: list[GPTImageError] = []
    tries = 0
    while True:
        tries += 1
        failures.append(error_for(503, status=503))
        if decide_retry(policy, POLL, failures, 0.0) is None:
            break
    assert tries == 4


# --- backoff -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [
        # initial 1, multiplier 2, max 60, jitter 0.25: base * 0.75 + base * 0.25 * rand
        (1, 0.0, 0.75),
        (1, 0.999, 0.75 + 0.25 * 0.999),
        (2, 0.0, 1.5),
        (3, 0.0, 3.0),
        (4, 0.5, 8 * 0.875),
        (6, 0.0, 24.0),
        (7, 0.0, 45.0),  # base capped at 60
        (7, 0.999, 45.0 + 15 * 0.999),
        (50, 0.0, 45.0),
        (5_000, 0.999, 45.0 + 15 * 0.999),  # no overflow for a huge attempt number
        (0, 0.0, 0.75),
    ],
)
def test_backoff_delay(attempt, rand, expected):
    assert backoff_delay(DEFAULT_POLICY, attempt, rand) == pytest.approx(expected)


@pytest.mark.parametrize("rand", [0.0, 0.3, 0.999])
@pytest.mark.parametrize("attempts", range(1, 12))
def test_jitter_bounds(attempts, rand):
    policy = RetryPolicy(max_attempts=100)
    base = min(policy.max_delay, policy.initial_delay * policy.multiplier ** (attempts - 1))
    delay = decide_retry(policy, POLL, [error_for(500, status=500)] * attempts, rand)
    assert delay is not None
    assert base * (1 - policy.jitter) <= delay <= base
    assert delay <= policy.max_delay


def test_delays_grow_exponentially_until_the_cap():
    policy = RetryPolicy(max_attempts=100, jitter=0.0, initial_delay=2.0, multiplier=3.0, max_delay=100.0)
    delays = [decide_retry(policy, POLL, [error_for(503, status=503)] * n, 0.5) for n in range(1, 8)]
    assert delays == [2.0, 6.0, 18.0, 54.0, 100.0, 100.0, 100.0]


def test_no_jitter_policy_is_deterministic():
    policy = RetryPolicy(jitter=0.0)
    failures = [error_for(503, status=503)]
    assert decide_retry(policy, POLL, failures, 0.0) == decide_retry(policy, POLL, failures, 0.999) == 1.0


def test_huge_max_attempts_does_not_overflow():
    policy = RetryPolicy(max_attempts=10_000, multiplier=2)
    assert decide_retry(policy, POLL, [error_for(503, status=503)] * 5_000, 0.0) == pytest.approx(45.0)


# --- Retry-After -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999])
@pytest.mark.parametrize(
    ("retry_after", "floor"),
    [(0.0, 0.0), (0.5, 0.5), (7.0, 7.0), (120.0, 120.0), (300.0, 300.0), (3600.0, 300.0), (1e9, 300.0)],
)
@pytest.mark.parametrize("code", [429, 409, 455, 503])
def test_retry_after_is_honoured_and_capped(code, retry_after, floor, rand):
    error = error_for(code, status=code, retry_after=retry_after)
    delay = decide_retry(DEFAULT_POLICY, POLL, [error], rand)
    assert delay is not None
    assert delay >= floor
    assert delay >= min(retry_after, DEFAULT_POLICY.max_retry_after)
    # a little jitter above the service's word, never more than 10 %
    assert delay <= floor * 1.1 + 1e-9
    assert delay <= DEFAULT_POLICY.max_retry_after * 1.1


def test_retry_after_longer_than_backoff_wins():
    error = error_for(429, status=429, retry_after=30.0)
    assert decide_retry(DEFAULT_POLICY, POLL, [error], 0.0) == 30.0


def test_custom_max_retry_after():
    policy = RetryPolicy(max_retry_after=10.0)
    error = error_for(429, status=429, retry_after=60.0)
    assert decide_retry(policy, POLL, [error], 0.0) == 10.0


def test_retry_after_on_a_non_retryable_error_is_ignored():
    assert decide_retry(DEFAULT_POLICY, POLL, [error_for(401, status=401, retry_after=1.0)], 0.0) is None


# --- deadline ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("remaining", "retries"),
    [(None, True), (1000.0, True), (0.76, True), (0.75, False), (0.1, False), (0.0, False), (-5.0, False)],
)
def test_remaining_deadline(remaining, retries):
    # The first backoff with rand=0 is 0.75 s.
    delay = decide_retry(DEFAULT_POLICY, POLL, [error_for(503, status=503)], 0.0, remaining=remaining)
    assert (delay is not None) is retries
    if delay is not None and remaining is not None:
        assert delay < remaining


def test_remaining_deadline_shorter_than_retry_after_gives_up():
    error = error_for(429, status=429, retry_after=60.0)
    assert decide_retry(DEFAULT_POLICY, POLL, [error], 0.0, remaining=59.0) is None
    assert decide_retry(DEFAULT_POLICY, POLL, [error], 0.0, remaining=61.0) == 60.0


# --- createTask ambiguity budget ---------------------------------------------------------------------------
NOT_AMBIGUOUS = [
    pytest.param(error_for(429, status=429), id="429"),
    pytest.param(error_for(429, status=200), id="429-body"),
    pytest.param(error_for(409, status=409), id="409"),
    pytest.param(error_for(455, status=455), id="455"),
    pytest.param(error_for(455, status=200), id="455-body"),
    pytest.param(error_for(455, status=503), id="455-body-in-503"),
    pytest.param(GPTImageTransportError("connection refused", request_sent=False), id="refused"),
]

AMBIGUOUS = [
    pytest.param(GPTImageTransportError("read timed out"), id="timeout"),
    pytest.param(GPTImageTransportError("connection reset", request_sent=True), id="reset"),
    pytest.param(error_for(500, status=500), id="500"),
    pytest.param(error_for(502, status=502), id="502"),
    pytest.param(error_for(503, status=503), id="503"),
    pytest.param(error_for(500, status=200), id="500-body"),
    pytest.param(GPTImageInvalidResponseError("html page", status=200), id="invalid-response"),
]


@pytest.mark.parametrize("error", NOT_AMBIGUOUS)
def test_refusals_are_not_ambiguous(error):
    assert may_have_been_processed(error) is False


@pytest.mark.parametrize("error", AMBIGUOUS)
def test_maybe_processed_failures_are_ambiguous(error):
    assert may_have_been_processed(error) is True


@pytest.mark.parametrize("error", NON_RETRYABLE)
def test_final_errors_are_not_counted_as_ambiguous(error):
    assert may_have_been_processed(error) is False


@pytest.mark.parametrize("error", NOT_AMBIGUOUS)
def test_refusals_do_not_consume_the_create_budget(error):
    policy = RetryPolicy(max_attempts=10, ambiguous_create_retries=1)
    for n in range(1, 10):
        assert decide_retry(policy, CREATE, [error] * n, 0.5) is not None
    assert decide_retry(policy, CREATE, [error] * 10, 0.5) is None  # only max_attempts stops them


@pytest.mark.parametrize("error", AMBIGUOUS)
@pytest.mark.parametrize("budget", [0, 1, 2])
def test_ambiguous_create_failures_consume_the_budget(error, budget):
    policy = RetryPolicy(max_attempts=10, ambiguous_create_retries=budget)
    # `budget` resends are allowed after ambiguous failures; the next one gives up.
    for n in range(1, budget + 1):
        assert decide_retry(policy, CREATE, [error] * n, 0.5) is not None
    assert decide_retry(policy, CREATE, [error] * (budget + 1), 0.5) is None


@pytest.mark.parametrize("error", AMBIGUOUS)
def test_the_same_failures_keep_retrying_for_poll_and_download(error):
    policy = RetryPolicy(max_attempts=10, ambiguous_create_retries=0)
    for operation in (POLL, DOWNLOAD):
        for n in range(1, 10):
            assert decide_retry(policy, operation, [error] * n, 0.5) is not None
        assert decide_retry(policy, operation, [error] * 10, 0.5) is None


def test_default_policy_resends_create_once_after_a_timeout():
    timeout = GPTImageTransportError("read timed out")
    assert DEFAULT_POLICY.ambiguous_create_retries == 1
    assert decide_retry(DEFAULT_POLICY, CREATE, [timeout], 0.5) is not None
    assert decide_retry(DEFAULT_POLICY, CREATE, [timeout, timeout], 0.5) is None


def test_mixed_create_failures_count_only_the_ambiguous_ones():
    policy = RetryPolicy(max_attempts=10, ambiguous_create_retries=1)
    rate = error_for(429, status=429)
    refused = GPTImageTransportError("refused", request_sent=False)
    timeout = GPTImageTransportError("read timed out")
    assert decide_retry(policy, CREATE, [rate, refused, timeout, rate, refused], 0.5) is not None
    # a second ambiguous failure anywhere in the history exhausts the budget, even if the latest is a refusal
    assert decide_retry(policy, CREATE, [timeout, rate, error_for(502, status=502)], 0.5) is None
    assert decide_retry(policy, CREATE, [timeout, timeout, rate], 0.5) is None
