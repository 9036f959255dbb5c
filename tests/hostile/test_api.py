"""A hostile API through the hook, sync and async: every answer ends in a typed error or a clean record, never
a leaked key, a followed redirect, a bare RecursionError, an unbounded read or a forged log line."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_gptimage.exceptions import (
    GPTImageBadRequestError,
    GPTImageConfigurationError,
    GPTImageError,
    GPTImageInvalidResponseError,
    GPTImageResultError,
    GPTImageServiceUnavailableError,
    GPTImageTransportError,
    GPTImageValidationError,
)
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol import MAX_BODY_BYTES, GenerationRequest, RetryPolicy
from tests.conftest import FAKE_API_KEY, connection_json
from tests.hostile.api import CREATE, RECORD, Answer, HostileAPI, envelope, nested, record, repeated

MB = 1024 * 1024
JOB = "job-hostile-1"
METADATA = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"


@pytest.fixture
def api(monkeypatch, no_sleep):
    """The hostile API behind the ``gptimage_default`` connection (retry waits are instant)."""
    with HostileAPI() as server:
        monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(server.url))
        yield server


def hook(**kwargs) -> GPTImageHook:
    kwargs.setdefault("retry_policy", RetryPolicy(max_attempts=2))
    kwargs.setdefault("request_timeout", 5.0)
    return GPTImageHook(**kwargs)


def poll_both_ways(job_id: str = JOB):
    """Poll once sync and once async; return both outcomes (a record or the raised error)."""
    outcomes = []
    try:
        outcomes.append(hook().get_task(job_id))
    except GPTImageError as exc:
        outcomes.append(exc)
    try:
        outcomes.append(asyncio.run(hook().aget_task(job_id)))
    except GPTImageError as exc:
        outcomes.append(exc)
    return outcomes


def rec(**fields) -> Answer:
    return Answer(body=record(JOB, **fields))


# (case id, scripted recordInfo answers, the error class both paths must raise, words its message must hold)
POLL_ERRORS = [
    (
        "redirect to the metadata address",
        [Answer(302, headers={"Location": METADATA})],
        GPTImageConfigurationError,
        ["HTTP 302", "169.254.169.254", "do not follow redirects"],
    ),
    (
        "redirect to loopback is not followed either",
        [Answer(307, headers={"Location": f"http://127.0.0.1:9/{RECORD}"})],
        GPTImageConfigurationError,
        ["HTTP 307", "127.0.0.1"],
    ),
    ("redirect without Location", [Answer(301, body=b"moved")], GPTImageConfigurationError, ["without a usable"]),
    ("JSON nested 100,000 deep", [Answer(body=nested(100_000))], GPTImageInvalidResponseError, ["not a JSON object"]),
    ("JSON nested 500 deep", [Answer(body=nested(500))], GPTImageInvalidResponseError, ["32 levels"]),
    (
        "data nested 200 deep",
        [Answer(body=b'{"code": 200, "data": {"taskId": "x", "state": ' + nested(200) + b"}}")],
        GPTImageInvalidResponseError,
        ["32 levels"],
    ),
    (
        "resultJson nested 5,000 deep",
        [rec(resultJson=nested(5000).decode())],
        GPTImageInvalidResponseError,
        ["resultJson"],
    ),
    (
        "300 MB answer without a length",
        [Answer(chunks=repeated(b"x" * 65536, 300 * MB))],
        GPTImageInvalidResponseError,
        ["longer than"],
    ),
    (
        "300 MB declared length",
        [Answer(body=b"{}", headers={"Content-Length": str(300 * MB)})],
        GPTImageInvalidResponseError,
        ["longer than"],
    ),
    (
        "gzip bomb",
        [Answer(body=b'{"code":200,"data":{"x":"' + b"0" * (64 * MB) + b'"}}', gzip=True)],
        GPTImageInvalidResponseError,
        ["longer than"],
    ),
    (
        "10,000 result URLs",
        [rec(resultJson={"resultUrls": ["http://127.0.0.1/x.png"] * 10_000})],
        GPTImageResultError,
        ["10,000"],
    ),
    (
        "a result URL with a line break",
        [rec(resultJson={"resultUrls": ["http://127.0.0.1/x.png\nINFO - forged"]})],
        GPTImageResultError,
        ["control characters"],
    ),
    (
        "a 100 KB result URL",
        [rec(resultJson={"resultUrls": ["http://127.0.0.1/" + "a" * 100_000]})],
        GPTImageResultError,
        ["longer than"],
    ),
    ("bytes that are not UTF-8", [Answer(body=b"\xff\xfe\xfa" * 100)], GPTImageInvalidResponseError, ["not a JSON"]),
    ("a JSON list", [Answer(body=[1, 2, 3])], GPTImageInvalidResponseError, ["not a JSON object"]),
    (
        "the key echoed in an error message",
        [Answer(400, body=envelope(None, 400, f"bad key {FAKE_API_KEY}"))],
        GPTImageBadRequestError,
        ["***"],
    ),
    (
        "the key echoed in an HTML error page",
        [Answer(502, body=f"<html>upstream said Authorization: Bearer {FAKE_API_KEY}</html>".encode())],
        GPTImageServiceUnavailableError,
        ["***"],
    ),
    (
        "an escape sequence in the error message",
        [Answer(400, body=envelope(None, 400, "bad\x1b[2J\x1b[31m\nERROR - forged line"))],
        GPTImageBadRequestError,
        ["\\x1b[2J"],
    ),
    (
        "a code of 4,000 digits",
        [Answer(body=b'{"code": ' + b"9" * 4000 + b', "data": {}}')],
        GPTImageBadRequestError,
        ["unexpected error code"],
    ),
]


@pytest.mark.parametrize(("answers", "error", "words"), [c[1:] for c in POLL_ERRORS], ids=[c[0] for c in POLL_ERRORS])
def test_hostile_poll_answers_end_in_typed_errors(api, answers, error, words):
    api.answer(RECORD, *answers)
    for outcome in poll_both_ways():
        assert type(outcome) is error, outcome
        message = str(outcome)
        assert all(word in message for word in words), message
        assert FAKE_API_KEY not in message
        assert "\n" not in message and "\x1b" not in message
        assert len(message) < 1200
    # Every read stopped at the 1 MiB cap (what the server got out is that plus the sockets' buffers).
    assert api.bytes_sent < 8 * MB * api.requests[RECORD]
    assert api.requests.get("/latest/meta-data/iam/security-credentials/", 0) == 0


def test_a_dripping_answer_is_cut_at_the_request_timeout(api):
    body = json.dumps(record(JOB)).encode()
    api.answer(RECORD, Answer(body=body, drip_seconds=0.2))
    with pytest.raises(GPTImageTransportError, match="did not complete within 1s"):
        hook(request_timeout=1.0, retry_policy=RetryPolicy(max_attempts=1)).get_task(JOB)
    with pytest.raises(GPTImageTransportError):
        asyncio.run(hook(request_timeout=1.0, retry_policy=RetryPolicy(max_attempts=1)).aget_task(JOB))


# (case id, scripted recordInfo answer, check of the record both paths return)
POLL_RECORDS = [
    (
        "key echoed in failMsg",
        rec(state="fail", failMsg=f"quota of {FAKE_API_KEY} spent"),
        lambda r: r.fail_message == "quota of *** spent",
    ),
    (
        "key echoed in param",
        rec(param=json.dumps({"input": {"prompt": f"x {FAKE_API_KEY}"}})),
        lambda r: r.params == {"input": {"prompt": "x ***"}},
    ),
    (
        "key echoed in a result URL",
        rec(resultJson={"resultUrls": [f"http://127.0.0.1/x.png?k={FAKE_API_KEY}"]}),
        lambda r: r.result_urls == ("http://127.0.0.1/x.png?k=***",),
    ),
    (
        "ANSI escape in the state",
        rec(state="generating\x1b[2K"),
        lambda r: r.state == "generating\\x1b[2k" and not r.is_finished,
    ),
    (
        "forged log line in failMsg",
        rec(state="fail", failMsg="x\n2026-01-01 INFO - Task succeeded"),
        lambda r: "\n" not in r.fail_message,
    ),
    (
        "a 1 MB failMsg",
        Answer(body=record(JOB, state="fail", failMsg="y" * 900_000)),
        lambda r: len(r.fail_message) <= 500,
    ),
    ("state cancelled fails at once", rec(state="cancelled"), lambda r: r.is_failed and r.is_finished),
    ("an unknown state runs on", rec(state="frobnicating"), lambda r: r.is_unknown_state and not r.is_finished),
    ("a param nested 200 deep is dropped", rec(param=nested(200).decode()), lambda r: r.params == {}),
    ("another job's taskId is ignored", Answer(body=record("job-of-someone-else")), lambda r: r.job_id == JOB),
    (
        "costTime 1e999",
        Answer(body=b'{"code":200,"data":{"taskId":"x","state":"waiting","costTime":1e999}}'),
        lambda r: r.cost_time_ms is None,
    ),
]


@pytest.mark.parametrize(("answer", "check"), [c[1:] for c in POLL_RECORDS], ids=[c[0] for c in POLL_RECORDS])
def test_hostile_poll_answers_give_clean_records(api, answer, check):
    api.answer(RECORD, answer)
    for outcome in poll_both_ways():
        assert not isinstance(outcome, Exception), outcome
        assert check(outcome), outcome
        assert FAKE_API_KEY not in json.dumps(outcome.to_dict())


# (case id, scripted createTask answers, the error, how many createTask requests may be sent)
CREATE_ERRORS = [
    ("redirect to the metadata address", [Answer(302, headers={"Location": METADATA})], GPTImageConfigurationError, 1),
    (
        "an ANSI escape in the job id",
        [Answer(body=envelope({"taskId": "job\x1b[31m"}))],
        GPTImageInvalidResponseError,
        1,
    ),
    (
        "a line break in the job id",
        [Answer(body=envelope({"taskId": "job\nINFO forged"}))],
        GPTImageInvalidResponseError,
        1,
    ),
    ("a 10 KB job id", [Answer(body=envelope({"taskId": "j" * 10_000}))], GPTImageInvalidResponseError, 1),
    ("the key as the job id", [Answer(body=envelope({"taskId": FAKE_API_KEY}))], GPTImageInvalidResponseError, 1),
    ("a deeply nested answer", [Answer(body=nested(100_000))], GPTImageInvalidResponseError, 2),
]


@pytest.mark.parametrize(
    ("answers", "error", "creates"), [c[1:] for c in CREATE_ERRORS], ids=[c[0] for c in CREATE_ERRORS]
)
def test_hostile_create_answers_end_in_typed_errors(api, answers, error, creates):
    api.answer(CREATE, *answers)
    with pytest.raises(error) as caught:
        hook(retry_policy=RetryPolicy(max_attempts=4)).create_task("a calm lake")
    message = str(caught.value)
    assert FAKE_API_KEY not in message
    assert "\n" not in message and "\x1b" not in message
    assert api.creates == creates  # an unusable job id is never followed by a second, paid create


@pytest.mark.parametrize(
    "send",
    [
        pytest.param(lambda h: h.create_task("a lone \ud800 surrogate"), id="create_task prompt"),
        pytest.param(lambda h: h.create_task("ok", quality="hi\udfff"), id="create_task quality"),
        pytest.param(lambda h: h.submit(GenerationRequest(prompt="a lone \udc00 surrogate")), id="submit prompt"),
        pytest.param(lambda h: h.submit(GenerationRequest(prompt="")), id="submit empty prompt"),
    ],
)
def test_requests_made_any_way_are_validated_before_sending(api, send):
    with pytest.raises(GPTImageValidationError, match="Nothing was sent"):
        send(hook())
    assert api.creates == 0


def test_the_key_and_request_id_travel_only_to_the_api(api):
    hook().get_task(JOB)
    (headers,) = api.headers_seen
    assert headers["Authorization"] == f"Bearer {FAKE_API_KEY}"
    assert api.bytes_sent < MAX_BODY_BYTES
