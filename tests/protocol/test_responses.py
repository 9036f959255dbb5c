"""Answers of the API: envelope parsing, typed errors by code, ``Retry-After``, excerpts, request ids."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage.exceptions import (
    GPTImageActiveTaskLimitError,
    GPTImageAPIError,
    GPTImageAuthError,
    GPTImageBadRequestError,
    GPTImageError,
    GPTImageInsufficientCreditsError,
    GPTImageInvalidResponseError,
    GPTImageNotFoundError,
    GPTImageRateLimitError,
    GPTImageServiceUnavailableError,
    GPTImageUnsupportedError,
)
from airflow_provider_gptimage.protocol import (
    error_for,
    excerpt,
    parse_create,
    parse_envelope,
    parse_retry_after,
    request_id,
)

SECRET = "sk-test-SECRET"

# code -> (class, retryable)
ERROR_TABLE = {
    400: (GPTImageBadRequestError, False),
    401: (GPTImageAuthError, False),
    402: (GPTImageInsufficientCreditsError, False),
    404: (GPTImageNotFoundError, False),
    409: (GPTImageActiveTaskLimitError, True),
    422: (GPTImageBadRequestError, False),
    429: (GPTImageRateLimitError, True),
    455: (GPTImageServiceUnavailableError, True),
    500: (GPTImageServiceUnavailableError, True),
    501: (GPTImageUnsupportedError, False),
    502: (GPTImageServiceUnavailableError, True),
    503: (GPTImageServiceUnavailableError, True),
    505: (GPTImageUnsupportedError, False),
}
CODES = sorted(ERROR_TABLE)


def _json(body: object) -> bytes:
    return json.dumps(body).encode()


# --- success -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"code": 200, "msg": "success", "data": {"taskId": "t-1"}}, id="int-code"),
        pytest.param({"code": "200", "msg": "success", "data": {"taskId": "t-1"}}, id="string-code"),
        pytest.param({"code": 200, "message": "success", "data": {"taskId": "t-1"}}, id="message-field"),
        pytest.param({"data": {"taskId": "t-1"}}, id="no-code"),
    ],
)
def test_success_returns_data(body):
    data = parse_envelope(200, _json(body))
    assert data == {"taskId": "t-1"}
    assert parse_create(data) == "t-1"


def test_success_tolerates_surrounding_whitespace():
    assert parse_envelope(200, b"\n  " + _json({"code": 200, "data": {}}) + b"\n") == {}


# --- every documented error code, as HTTP status and as a body code in an HTTP 200 ----------------------
@pytest.mark.parametrize("code", CODES)
def test_error_as_http_status(code):
    cls, retryable = ERROR_TABLE[code]
    body = _json({"code": code, "msg": "nope"})
    with pytest.raises(GPTImageAPIError) as info:
        parse_envelope(code, body, operation="createTask")
    error = info.value
    assert type(error) is cls
    assert error.status == code
    assert error.code == code
    assert error.retryable is retryable
    assert f"HTTP {code}" in str(error)
    assert str(error).startswith("createTask failed")
    assert "'nope'" in str(error)


@pytest.mark.parametrize("code", CODES)
def test_error_as_body_code_in_http_200(code):
    cls, retryable = ERROR_TABLE[code]
    with pytest.raises(GPTImageAPIError) as info:
        parse_envelope(200, _json({"code": code, "msg": "nope", "data": {"taskId": "t-1"}}), job_id="job-7")
    error = info.value
    assert type(error) is cls
    assert error.status == 200
    assert error.code == code
    assert error.retryable is retryable
    assert error.job_id == "job-7"
    assert f"HTTP 200, code {code}" in str(error)


@pytest.mark.parametrize("code", CODES)
def test_error_as_string_body_code(code):
    cls, _ = ERROR_TABLE[code]
    with pytest.raises(cls) as info:
        parse_envelope(200, _json({"code": str(code), "msg": "nope"}))
    assert info.value.code == code


@pytest.mark.parametrize("code", CODES)
def test_error_as_http_status_without_a_body_code(code):
    cls, _ = ERROR_TABLE[code]
    with pytest.raises(cls) as info:
        parse_envelope(code, _json({"msg": "nope"}))
    assert (info.value.status, info.value.code) == (code, code)


@pytest.mark.parametrize("code", CODES)
def test_error_for_maps_the_code(code):
    cls, retryable = ERROR_TABLE[code]
    error = error_for(code, status=code, message="m", retry_after=3.0, job_id="j")
    assert type(error) is cls
    assert error.retryable is retryable
    assert (error.status, error.code, error.retry_after, error.job_id) == (code, code, 3.0, "j")


@pytest.mark.parametrize(
    ("code", "cls", "retryable"),
    [
        (403, GPTImageBadRequestError, False),
        (418, GPTImageBadRequestError, False),
        (504, GPTImageServiceUnavailableError, True),
        (599, GPTImageServiceUnavailableError, True),
    ],
)
def test_unlisted_codes_fall_back_by_range(code, cls, retryable):
    with pytest.raises(cls) as info:
        parse_envelope(code, _json({"code": code}))
    assert info.value.retryable is retryable


def test_http_error_with_body_code_200_uses_the_http_status():
    with pytest.raises(GPTImageServiceUnavailableError) as info:
        parse_envelope(503, _json({"code": 200, "msg": "success", "data": {}}))
    assert (info.value.status, info.value.code) == (503, 503)


def test_body_code_wins_over_http_error_status():
    with pytest.raises(GPTImageInsufficientCreditsError) as info:
        parse_envelope(400, _json({"code": 402, "msg": "no credits"}))
    assert (info.value.status, info.value.code) == (400, 402)


@pytest.mark.parametrize("status", [402, 200])
def test_402_says_insufficient_credits_plainly(status):
    with pytest.raises(GPTImageInsufficientCreditsError, match="insufficient credits"):
        parse_envelope(status, _json({"code": 402, "msg": "balance low"}))


@pytest.mark.parametrize(
    ("body", "shown", "hidden"),
    [
        pytest.param({"code": 429, "msg": "slow down"}, "slow down", None, id="msg"),
        pytest.param({"code": 429, "message": "slow down"}, "slow down", None, id="message"),
        pytest.param({"code": 429, "msg": "", "message": "slow down"}, "slow down", None, id="empty-msg"),
        pytest.param({"code": 429, "msg": None, "message": "slow down"}, "slow down", None, id="null-msg"),
        pytest.param(
            {"code": 429, "msg": "from msg", "message": "from message"}, "from msg", "from message", id="both"
        ),
        pytest.param({"code": 429, "msg": "line1\n\n   line2"}, "line1 line2", "\n", id="single-line"),
    ],
)
def test_service_message_is_quoted(body, shown, hidden):
    with pytest.raises(GPTImageRateLimitError) as info:
        parse_envelope(200, _json(body))
    assert "The service said" in str(info.value)
    assert shown in str(info.value)
    if hidden is not None:
        assert hidden not in str(info.value)


def test_no_service_message_no_quote():
    with pytest.raises(GPTImageRateLimitError) as info:
        parse_envelope(429, _json({"code": 429}))
    assert "The service said" not in str(info.value)


def test_a_long_service_message_is_shortened():
    with pytest.raises(GPTImageBadRequestError) as info:
        parse_envelope(400, _json({"code": 400, "msg": "x" * 10_000}))
    assert len(str(info.value)) < 500


# --- bodies that are not a JSON object --------------------------------------------------------------------
HTML = b"<html><head><title>502 Bad Gateway</title></head>\n<body><h1>502 Bad Gateway</h1></body></html>"


@pytest.mark.parametrize(
    ("status", "raw", "cls", "needle"),
    [
        pytest.param(502, HTML, GPTImageServiceUnavailableError, "502 Bad Gateway", id="html-502"),
        pytest.param(503, b"", GPTImageServiceUnavailableError, "HTTP 503", id="empty-503"),
        pytest.param(429, b"Too Many Requests", GPTImageRateLimitError, "Too Many Requests", id="text-429"),
        pytest.param(401, b"<h1>Unauthorized</h1>", GPTImageAuthError, "Unauthorized", id="html-401"),
        pytest.param(200, b"", GPTImageInvalidResponseError, "<empty>", id="empty-200"),
        pytest.param(200, b"   \n ", GPTImageInvalidResponseError, "<empty>", id="blank-200"),
        pytest.param(200, b"garbage{{{", GPTImageInvalidResponseError, "garbage{{{", id="garbage-200"),
        pytest.param(200, b"\xff\xfe\x00bad", GPTImageInvalidResponseError, "bad", id="bad-utf8-200"),
        pytest.param(200, HTML, GPTImageInvalidResponseError, "502 Bad Gateway", id="html-200"),
        pytest.param(200, b"[1, 2, 3]", GPTImageInvalidResponseError, "[1, 2, 3]", id="json-list-200"),
        pytest.param(200, b'"success"', GPTImageInvalidResponseError, "success", id="json-string-200"),
        pytest.param(200, b"null", GPTImageInvalidResponseError, "null", id="json-null-200"),
        pytest.param(200, b"200", GPTImageInvalidResponseError, "200", id="json-number-200"),
    ],
)
def test_non_object_body_names_status_and_excerpt(status, raw, cls, needle):
    with pytest.raises(cls) as info:
        parse_envelope(status, raw, operation="recordInfo")
    message = str(info.value)
    assert type(info.value) is cls
    assert f"HTTP {status}" in message
    assert needle in message
    assert message.startswith("recordInfo failed")
    assert info.value.status == status
    assert info.value.retryable is cls.retryable


def test_huge_html_body_is_cut_to_a_short_excerpt():
    raw = b"<html>" + b"<p>filler</p>" * 5_000 + b"</html>"
    with pytest.raises(GPTImageServiceUnavailableError) as info:
        parse_envelope(502, raw)
    assert len(str(info.value)) < 500
    assert "..." in str(info.value)
    assert "\n" not in str(info.value)


def test_invalid_response_is_retryable_and_has_no_body_code():
    with pytest.raises(GPTImageInvalidResponseError) as info:
        parse_envelope(200, b"oops")
    assert info.value.retryable is True
    assert info.value.code is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"code": 200, "msg": "success"}, id="missing"),
        pytest.param({"code": 200, "data": None}, id="null"),
        pytest.param({"code": 200, "data": "t-1"}, id="string"),
        pytest.param({"code": 200, "data": ["t-1"]}, id="list"),
    ],
)
def test_missing_data_object_is_an_invalid_response(body):
    with pytest.raises(GPTImageInvalidResponseError, match="`data`") as info:
        parse_envelope(200, _json(body), job_id="j-1")
    assert info.value.status == 200
    assert info.value.job_id == "j-1"


# --- Retry-After --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"Retry-After": "7"}, 7.0, id="seconds"),
        pytest.param({"retry-after": "7"}, 7.0, id="lowercase-name"),
        pytest.param({"RETRY-AFTER": "2.5"}, 2.5, id="uppercase-name-fraction"),
        pytest.param({"Retry-After": " 3 "}, 3.0, id="padded"),
        pytest.param({"Retry-After": "0"}, 0.0, id="zero"),
        pytest.param({"Retry-After": "-5"}, None, id="negative"),
        pytest.param({"Retry-After": "soon"}, None, id="garbage"),
        pytest.param({"Retry-After": ""}, None, id="empty"),
        pytest.param({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None, id="http-date-ignored"),
        pytest.param({"Retry-After": "nan"}, None, id="nan"),
        pytest.param({"Retry-After": "inf"}, None, id="inf"),
        pytest.param({"Retry-After": "1e999"}, None, id="overflow"),
        pytest.param({"Content-Type": "text/html"}, None, id="missing"),
        pytest.param({}, None, id="no-headers"),
        pytest.param(None, None, id="none"),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers) == expected


@pytest.mark.parametrize(
    ("status", "raw"),
    [
        pytest.param(429, _json({"code": 429}), id="json-error"),
        pytest.param(200, _json({"code": 429}), id="body-code"),
        pytest.param(503, b"<html>busy</html>", id="html-error"),
    ],
)
def test_retry_after_is_carried_by_the_error(status, raw):
    with pytest.raises(GPTImageAPIError) as info:
        parse_envelope(status, raw, {"Retry-After": "12"})
    assert info.value.retry_after == 12.0


def test_retry_after_is_carried_by_an_invalid_response():
    with pytest.raises(GPTImageInvalidResponseError) as info:
        parse_envelope(200, b"nope", {"Retry-After": "4"})
    assert info.value.retry_after == 4.0


# --- secrets --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "raw"),
    [
        pytest.param(401, _json({"code": 401, "msg": f"invalid key {SECRET}"}), id="msg-401"),
        pytest.param(200, _json({"code": 401, "message": f"Bearer {SECRET} rejected"}), id="message-body-code"),
        pytest.param(200, _json({"code": 200, "msg": f"ok {SECRET}"}), id="missing-data-excerpt"),
        pytest.param(502, f"<html>Authorization: Bearer {SECRET}</html>".encode(), id="html-error"),
        pytest.param(200, f"not json {SECRET}".encode(), id="garbage-200"),
        pytest.param(200, f'["{SECRET}"]'.encode(), id="json-list"),
        pytest.param(500, ("x" * 190 + SECRET).encode(), id="secret-at-the-cut"),
    ],
)
def test_secrets_never_appear_in_messages(status, raw):
    with pytest.raises(GPTImageError) as info:
        parse_envelope(status, raw, secrets=(SECRET,))
    message = str(info.value)
    assert SECRET not in message
    assert "SECRET" not in message
    assert SECRET not in repr(info.value)
    assert SECRET not in " ".join(map(str, info.value.args))


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        pytest.param("key sk-abc here", ("sk-abc",), "key *** here", id="scrubbed"),
        pytest.param("sk-abc and sk-abc", ("sk-abc",), "*** and ***", id="every-occurrence"),
        pytest.param("sk-abc", ("",), "sk-abc", id="empty-secret-ignored"),
        pytest.param("key sk-abc-long", ("sk-abc", "sk-abc-long"), "key ***", id="longest-first"),
        pytest.param("key sk-abc-long", ("sk-abc-long", "sk-abc"), "key ***", id="longest-first-any-order"),
        pytest.param(b"a\n\tb   c", (), "a b c", id="bytes-one-line"),
        pytest.param(b"\xffok", (), "\ufffdok", id="bad-utf8-replaced"),
        pytest.param("x" * 200, (), "x" * 200, id="at-limit"),
        pytest.param("x" * 201, (), "x" * 200 + "...", id="over-limit"),
    ],
)
def test_excerpt(text, secrets, expected):
    assert excerpt(text, secrets=secrets) == expected


# --- parse_create ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        pytest.param({}, id="missing"),
        pytest.param({"taskId": None}, id="null"),
        pytest.param({"taskId": ""}, id="empty"),
        pytest.param({"taskId": "   "}, id="blank"),
        pytest.param({"taskId": 123}, id="number"),
        pytest.param({"task_id": "t-1"}, id="wrong-name"),
    ],
)
def test_parse_create_without_task_id(data):
    with pytest.raises(GPTImageInvalidResponseError, match="taskId") as info:
        parse_create(data)
    assert info.value.retryable


# --- request_id -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        pytest.param(("dag", "run", "task", 0, 1, "createTask"), "dag:run:task:0:1:createTask", id="plain"),
        pytest.param(("dag", None, "", "task"), "dag:task", id="empty-parts-skipped"),
        pytest.param(("my dag", "run\r\nX-Evil: 1"), "my_dag:run__X-Evil:_1", id="header-safe"),
        pytest.param(("manual__2024-01-01T00:00:00+00:00",), "manual__2024-01-01T00:00:00+00:00", id="run-id"),
        pytest.param(("é",), "_", id="non-ascii"),
    ],
)
def test_request_id(parts, expected):
    assert request_id(*parts) == expected


def test_request_id_is_limited_and_stable():
    parts = ("d" * 300, "run", "task")
    assert len(request_id(*parts)) == 200
    assert len(request_id(*parts, limit=20)) == 20
    assert request_id(*parts) == request_id(*parts)
