"""Trigger events: their shape, and what :func:`outcome` makes of each one."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage import exceptions
from airflow_provider_gptimage.exceptions import (
    GPTImageAPIError,
    GPTImageAuthError,
    GPTImageError,
    GPTImageInsufficientCreditsError,
    GPTImageInvalidResponseError,
    GPTImageJobFailedError,
    GPTImageNotFoundError,
    GPTImageRateLimitError,
    GPTImageResultError,
    GPTImageResultExpiredError,
    GPTImageServiceUnavailableError,
    GPTImageTimeoutError,
    GPTImageTransportError,
    GPTImageValidationError,
)
from airflow_provider_gptimage.protocol import JobRecord, error_for
from airflow_provider_gptimage.protocol.events import (
    STATUSES,
    error_event,
    job_is_spent,
    outcome,
    pay_again_now,
    record_event,
    result_payload,
    retry_forgets,
    timeout_event,
)

URL = "https://cdn.example.com/1.png"
SUCCESS = JobRecord(
    job_id="job-1",
    state="success",
    result_urls=(URL,),
    cost_time_ms=59699,
    create_time_ms=1,
    complete_time_ms=2,
    model="gpt-image-2-text-to-image",
    params={"input": {"prompt": "a cat"}},
)
FAILED = JobRecord(job_id="job-2", state="fail", fail_code="400", fail_message="content policy")
EMPTY_SUCCESS = JobRecord(job_id="job-3", state="success")

PRIMITIVES = (str, int, float, bool, type(None))


def _assert_primitives(value: object) -> None:
    if isinstance(value, dict):
        assert all(isinstance(k, str) for k in value)
        for item in value.values():
            _assert_primitives(item)
    elif isinstance(value, list):
        for item in value:
            _assert_primitives(item)
    else:
        assert isinstance(value, PRIMITIVES), f"{value!r} is not a JSON primitive"


# --- shapes --------------------------------------------------------------------------------------------------
EVENTS = [
    pytest.param(record_event(SUCCESS), "success", id="success"),
    pytest.param(record_event(FAILED), "fail", id="fail"),
    pytest.param(record_event(EMPTY_SUCCESS), "success", id="success-no-urls"),
    pytest.param(error_event("job-1", error_for(401, status=401)), "error", id="error"),
    pytest.param(timeout_event("job-1", "generating", 600.0), "timeout", id="timeout"),
    pytest.param(timeout_event("job-1", None), "timeout", id="timeout-no-state"),
]


@pytest.mark.parametrize(("event", "status"), EVENTS)
def test_events_are_json_primitives(event, status):
    assert event["status"] == status
    assert status in STATUSES
    _assert_primitives(event)
    assert json.loads(json.dumps(event)) == event


@pytest.mark.parametrize(("event", "status"), EVENTS)
def test_outcome_survives_a_json_round_trip(event, status):
    reloaded = json.loads(json.dumps(event))
    if status == "success" and event["record"]["result_urls"]:
        assert outcome(reloaded) == outcome(event)
        return
    with pytest.raises(GPTImageError) as original:
        outcome(event)
    with pytest.raises(GPTImageError) as after:
        outcome(reloaded)
    assert type(after.value) is type(original.value)
    assert str(after.value) == str(original.value)


def test_record_event_shape():
    assert record_event(SUCCESS) == {"status": "success", "job_id": "job-1", "record": SUCCESS.to_dict()}
    assert record_event(FAILED) == {"status": "fail", "job_id": "job-2", "record": FAILED.to_dict()}


def test_error_event_shape_carries_no_traceback():
    try:
        raise error_for(429, status=429, message="slow down")
    except GPTImageError as exc:
        event = error_event("job-1", exc)
    assert set(event) == {"status", "job_id", "error_type", "message"}
    assert event["status"] == "error"
    assert event["error_type"] == "GPTImageRateLimitError"
    assert "slow down" in event["message"]
    assert "Traceback" not in event["message"]


def test_timeout_event_shape():
    assert timeout_event("job-1", "queuing", 600) == {
        "status": "timeout",
        "job_id": "job-1",
        "last_state": "queuing",
        "message": "Job job-1 did not finish before its deadline (600s from its creation) (last state: queuing). "
        "The service may still finish and bill it; poll it with GPTImageTaskSensor to collect the image.",
    }


# --- outcome -----------------------------------------------------------------------------------------------
def test_success_returns_the_record():
    assert outcome(record_event(SUCCESS)) == SUCCESS


def test_fail_raises_job_failed_with_the_reasons():
    with pytest.raises(GPTImageJobFailedError) as info:
        outcome(record_event(FAILED))
    error = info.value
    assert (error.job_id, error.fail_code, error.fail_message) == ("job-2", "400", "content policy")
    assert "content policy" in str(error)
    assert "400" in str(error)
    assert not error.retryable


def test_fail_without_reasons():
    with pytest.raises(GPTImageJobFailedError) as info:
        outcome(record_event(JobRecord(job_id="j", state="fail")))
    assert (info.value.fail_code, info.value.fail_message) == (None, None)


def test_success_without_urls_is_a_result_error():
    with pytest.raises(GPTImageResultError, match="no result URLs") as info:
        outcome(record_event(EMPTY_SUCCESS))
    assert info.value.job_id == "job-3"


def test_a_record_still_running_is_not_a_success():
    with pytest.raises(GPTImageInvalidResponseError, match="still 'generating'"):
        outcome(record_event(JobRecord(job_id="j", state="generating")))


def test_the_record_decides_not_the_status_label():
    event = {"status": "success", "job_id": "j", "record": FAILED.to_dict()}
    with pytest.raises(GPTImageJobFailedError):
        outcome(event)


def test_timeout_raises_timeout_error():
    with pytest.raises(GPTImageTimeoutError, match=r"\(600s from its creation\)") as info:
        outcome(timeout_event("job-9", "generating", 600.0))
    assert info.value.job_id == "job-9"


ERRORS = [
    pytest.param(error_for(401, status=401), id="auth"),
    pytest.param(error_for(402, status=200), id="credits"),
    pytest.param(error_for(404, status=404), id="not-found"),
    pytest.param(error_for(429, status=429, retry_after=5.0), id="rate-limit"),
    pytest.param(error_for(503, status=503), id="unavailable"),
    pytest.param(GPTImageInvalidResponseError("html page", status=200), id="invalid-response"),
    pytest.param(GPTImageTransportError("timed out"), id="transport"),
    pytest.param(GPTImageValidationError("prompt", "must not be empty"), id="validation"),
    pytest.param(GPTImageJobFailedError("f", job_id="j", fail_code="1", fail_message="m"), id="job-failed"),
    pytest.param(GPTImageError("base"), id="base"),
]


@pytest.mark.parametrize("error", ERRORS)
def test_error_event_raises_the_named_class(error):
    with pytest.raises(GPTImageError) as info:
        outcome(error_event("job-5", error))
    raised = info.value
    assert type(raised) is type(error)
    assert str(raised) == str(error)
    assert raised.job_id == "job-5"
    assert raised.retryable is error.retryable


@pytest.mark.parametrize(
    ("error", "attributes"),
    [
        pytest.param(error_for(429, status=429), ("status", "code", "retry_after"), id="api-error"),
        pytest.param(GPTImageValidationError("prompt", "x"), ("parameter", "rule"), id="validation"),
        pytest.param(GPTImageTransportError("t"), ("request_sent",), id="transport"),
        pytest.param(
            GPTImageJobFailedError("f", job_id="j", fail_code="1", fail_message="m"), ("fail_code",), id="job"
        ),
    ],
)
def test_rebuilt_errors_keep_readable_attributes(error, attributes):
    # Callers catch the class and may read its attributes (e.g. the retry policy reads retry_after).
    with pytest.raises(GPTImageError) as info:
        outcome(error_event("job-5", error))
    for name in attributes:
        getattr(info.value, name)  # must not raise AttributeError


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        pytest.param("GPTImageAuthError", GPTImageAuthError, id="auth"),
        pytest.param("GPTImageInsufficientCreditsError", GPTImageInsufficientCreditsError, id="credits"),
        pytest.param("GPTImageNotFoundError", GPTImageNotFoundError, id="not-found"),
        pytest.param("GPTImageRateLimitError", GPTImageRateLimitError, id="rate-limit"),
        pytest.param("GPTImageServiceUnavailableError", GPTImageServiceUnavailableError, id="unavailable"),
        pytest.param("GPTImageAPIError", GPTImageAPIError, id="api-base"),
        pytest.param("GPTImageError", GPTImageError, id="base"),
        # unknown or hostile names fall back to the base class, never to something else
        pytest.param("os.system", GPTImageError, id="dotted-path"),
        pytest.param("SystemExit", GPTImageError, id="system-exit"),
        pytest.param("KeyboardInterrupt", GPTImageError, id="keyboard-interrupt"),
        pytest.param("ValueError", GPTImageError, id="builtin"),
        pytest.param("Any", GPTImageError, id="module-import"),
        pytest.param("_rebuild", GPTImageError, id="module-function"),
        pytest.param("_short_repr", GPTImageError, id="private-function"),
        pytest.param("__class__", GPTImageError, id="dunder"),
        pytest.param("__builtins__", GPTImageError, id="builtins"),
        pytest.param("GPTImageNoSuchError", GPTImageError, id="unknown"),
        pytest.param("", GPTImageError, id="empty"),
        pytest.param(None, GPTImageError, id="none"),
        pytest.param(["GPTImageAuthError"], GPTImageError, id="list"),
    ],
)
def test_error_type_lookup(name, cls):
    event = {"status": "error", "job_id": "job-5", "error_type": name, "message": "boom"}
    with pytest.raises(GPTImageError, match=r"^boom$") as info:
        outcome(event)
    assert type(info.value) is cls
    assert str(info.value) == "boom"
    assert info.value.job_id == "job-5"


def test_error_event_without_message_or_job_id():
    with pytest.raises(GPTImageAuthError) as info:
        outcome({"status": "error", "error_type": "GPTImageAuthError"})
    assert info.value.job_id is None


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(None, id="none"),
        pytest.param({}, id="empty"),
        pytest.param({"job_id": "j"}, id="missing-status"),
        pytest.param({"status": None, "job_id": "j"}, id="null-status"),
        pytest.param({"status": "done", "job_id": "j"}, id="unknown-status"),
        pytest.param({"status": "SUCCESS", "job_id": "j"}, id="uppercase-status"),
        pytest.param({"status": ["success"]}, id="list-status"),
        pytest.param("success", id="string"),
        pytest.param(["success"], id="list"),
        pytest.param(42, id="number"),
    ],
)
def test_malformed_events(event):
    with pytest.raises(GPTImageError, match="Unexpected trigger event") as info:
        outcome(event)
    assert type(info.value) is GPTImageError


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({"status": "success", "job_id": "j"}, id="missing-record"),
        pytest.param({"status": "success", "job_id": "j", "record": None}, id="null-record"),
        pytest.param({"status": "fail", "job_id": "j", "record": "oops"}, id="string-record"),
        pytest.param({"status": "success", "job_id": "j", "record": {}}, id="empty-record"),
        pytest.param({"status": "success", "job_id": "j", "record": {"job_id": "j"}}, id="record-without-state"),
        pytest.param(
            {"status": "success", "job_id": "j", "record": {**SUCCESS.to_dict(), "surprise": 1}},
            id="record-with-unknown-field",
        ),
    ],
)
def test_malformed_records(event):
    with pytest.raises(GPTImageError, match="Malformed") as info:
        outcome(event)
    assert type(info.value) is GPTImageError


def test_every_exception_class_is_reachable_by_name():
    # Every public error class of the module can be named by an error event.
    classes = [
        obj
        for name, obj in vars(exceptions).items()
        if isinstance(obj, type) and issubclass(obj, GPTImageError) and not name.startswith("_")
    ]
    assert len(classes) >= 14
    for cls in classes:
        with pytest.raises(cls) as info:
            outcome({"status": "error", "job_id": "j", "error_type": cls.__name__, "message": "m"})
        assert type(info.value) is cls


# --- result_payload (the task's XCom return value) ---------------------------------------------------------
@pytest.mark.parametrize(
    ("outputs", "uris"),
    [
        pytest.param(None, [], id="no-outputs"),
        pytest.param([], [], id="empty-outputs"),
        pytest.param(
            [{"uri": "s3://bucket/a.png", "bytes": 12}, {"uri": "file:///tmp/b.png"}],
            ["s3://bucket/a.png", "file:///tmp/b.png"],
            id="two-outputs",
        ),
    ],
)
def test_result_payload_is_json_primitives(outputs, uris):
    payload = result_payload(SUCCESS, outputs)
    _assert_primitives(payload)
    assert json.loads(json.dumps(payload)) == payload
    assert payload["job_id"] == "job-1"
    assert payload["state"] == "success"
    assert payload["result_urls"] == [URL]
    assert payload["output_uris"] == uris
    assert payload["outputs"] == list(outputs or [])
    assert payload["cost_time_ms"] == 59699
    assert (payload["fail_code"], payload["fail_message"]) == (None, None)


def test_result_payload_of_a_failed_record_keeps_the_reasons():
    payload = result_payload(FAILED)
    assert (payload["fail_code"], payload["fail_message"]) == ("400", "content policy")
    assert payload["result_urls"] == []


@pytest.mark.parametrize(
    ("error", "spent", "forgotten_by_retry"),
    [
        (GPTImageJobFailedError("failed", job_id="j", fail_code="500", fail_message="m"), True, False),
        (GPTImageTimeoutError("too long", job_id="j"), True, False),  # it may still run: a retry re-attaches
        (GPTImageResultExpiredError("gone", job_id="j"), True, True),  # nothing to collect: a retry pays again
        (GPTImageResultError("no URLs", job_id="j"), False, False),  # a paid job: the next run tries again
        (GPTImageTransportError("reset", job_id="j"), False, False),
        (GPTImageNotFoundError("unknown", job_id="j"), False, False),  # forgotten when re-attaching instead
    ],
)
def test_which_outcomes_forget_the_job(error, spent, forgotten_by_retry):
    assert job_is_spent(error) is spent
    assert retry_forgets(error) is forgotten_by_retry


@pytest.mark.parametrize(
    ("error", "created_at", "again"),
    [
        (GPTImageResultExpiredError("gone", job_id="j"), 99.0, True),  # re-attached from before the try: once more
        (GPTImageResultExpiredError("gone", job_id="j"), 100.0, False),  # this try's own job: the next try's turn
        (GPTImageResultExpiredError("gone", job_id="j"), 150.0, False),
        (GPTImageJobFailedError("failed", job_id="j", fail_code="500", fail_message="m"), 99.0, False),
        (GPTImageTimeoutError("too long", job_id="j"), 99.0, False),
    ],
)
def test_only_expired_images_of_a_job_from_before_the_try_pay_again_in_the_try(error, created_at, again):
    assert pay_again_now(error, created_at, try_started=100.0) is again
