"""Typed errors: hierarchy, messages and pickling (Airflow may pickle exceptions across processes)."""

from __future__ import annotations

import copy
import pickle

import pytest

from airflow_provider_gptimage.exceptions import (
    GPTImageActiveTaskLimitError,
    GPTImageAPIError,
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
    GPTImageTLSError,
    GPTImageTransportError,
    GPTImageUnsupportedError,
    GPTImageValidationError,
)

API_CLASSES = [
    GPTImageAPIError,
    GPTImageBadRequestError,
    GPTImageAuthError,
    GPTImageInsufficientCreditsError,
    GPTImageNotFoundError,
    GPTImageActiveTaskLimitError,
    GPTImageRateLimitError,
    GPTImageServiceUnavailableError,
    GPTImageUnsupportedError,
    GPTImageInvalidResponseError,
]

INSTANCES = [
    pytest.param(GPTImageError("base", job_id="j"), {"message": "base", "job_id": "j"}, id="base"),
    pytest.param(GPTImageError("no job"), {"message": "no job", "job_id": None}, id="base-no-job"),
    pytest.param(GPTImageConfigurationError("no key"), {"message": "no key"}, id="configuration"),
    pytest.param(GPTImageTimeoutError("late", job_id="j"), {"job_id": "j"}, id="timeout"),
    pytest.param(GPTImageResultError("gone", job_id="j"), {"job_id": "j"}, id="result"),
    pytest.param(
        GPTImageValidationError("prompt", "must not be empty", value=""),
        {"parameter": "prompt", "rule": "must not be empty"},
        id="validation",
    ),
    *[
        pytest.param(
            cls("api said no", status=429, code=409, retry_after=2.5, job_id="j"),
            {"message": "api said no", "status": 429, "code": 409, "retry_after": 2.5, "job_id": "j"},
            id=cls.__name__,
        )
        for cls in API_CLASSES
    ],
    pytest.param(
        GPTImageTransportError("refused", request_sent=False, job_id="j"),
        {"request_sent": False, "job_id": "j"},
        id="transport-refused",
    ),
    pytest.param(GPTImageTransportError("timed out"), {"request_sent": True}, id="transport-timeout"),
    pytest.param(GPTImageTLSError("untrusted", job_id="j"), {"request_sent": False, "job_id": "j"}, id="tls"),
    pytest.param(
        GPTImageJobFailedError("failed", job_id="j", fail_code="501", fail_message="nsfw"),
        {"job_id": "j", "fail_code": "501", "fail_message": "nsfw"},
        id="job-failed",
    ),
]


@pytest.mark.parametrize(("error", "attributes"), INSTANCES)
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_pickle_round_trip_keeps_attributes(error, attributes, protocol):
    clone = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert clone.args == error.args
    assert clone.retryable is error.retryable
    for name, value in attributes.items():
        assert getattr(clone, name) == value
    assert vars(clone) == vars(error)


@pytest.mark.parametrize(("error", "attributes"), INSTANCES)
def test_copy_keeps_attributes(error, attributes):
    for clone in (copy.copy(error), copy.deepcopy(error)):
        assert type(clone) is type(error)
        for name, value in attributes.items():
            assert getattr(clone, name) == value


@pytest.mark.parametrize(("error", "attributes"), INSTANCES)
def test_every_error_is_a_provider_error(error, attributes):
    assert isinstance(error, GPTImageError)
    assert isinstance(error, Exception)
    assert str(error) == error.message


def test_hierarchy():
    for cls in API_CLASSES:
        assert issubclass(cls, GPTImageAPIError)
    assert issubclass(GPTImageValidationError, ValueError)
    assert issubclass(GPTImageTLSError, GPTImageTransportError)
    for cls in (
        GPTImageConfigurationError,
        GPTImageTransportError,
        GPTImageJobFailedError,
        GPTImageTimeoutError,
        GPTImageResultError,
        GPTImageValidationError,
    ):
        assert issubclass(cls, GPTImageError)
        assert not issubclass(cls, GPTImageAPIError)


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (GPTImageError, False),
        (GPTImageValidationError, False),
        (GPTImageConfigurationError, False),
        (GPTImageAPIError, False),
        (GPTImageBadRequestError, False),
        (GPTImageAuthError, False),
        (GPTImageInsufficientCreditsError, False),
        (GPTImageNotFoundError, False),
        (GPTImageUnsupportedError, False),
        (GPTImageActiveTaskLimitError, True),
        (GPTImageRateLimitError, True),
        (GPTImageServiceUnavailableError, True),
        (GPTImageInvalidResponseError, True),
        (GPTImageTransportError, True),
        (GPTImageTLSError, False),
        (GPTImageJobFailedError, False),
        (GPTImageTimeoutError, False),
        (GPTImageResultError, False),
    ],
)
def test_retryable_flag(cls, retryable):
    assert cls.retryable is retryable


def test_api_error_defaults():
    error = GPTImageAPIError("m")
    assert (error.status, error.code, error.retry_after, error.job_id) == (None, None, None, None)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param(None, None, id="none-not-shown"),
        pytest.param("8K", "(got '8K')", id="string"),
        pytest.param(0, "(got 0)", id="zero"),
        pytest.param("", "(got '')", id="empty"),
    ],
)
def test_validation_error_message(value, shown):
    error = GPTImageValidationError("resolution", "must be one of 1K, 2K, 4K", value=value)
    message = str(error)
    assert message.startswith("Invalid `resolution`: must be one of 1K, 2K, 4K")
    assert message.endswith("Nothing was sent to the API.")
    if shown is None:
        assert "(got" not in message
    else:
        assert shown in message


def test_validation_error_shortens_a_long_value():
    error = GPTImageValidationError("model", "must be exactly 'x'", value="m" * 1_000)
    assert "m" * 100 not in str(error)
    assert "...)" in str(error)
