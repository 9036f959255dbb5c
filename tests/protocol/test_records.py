"""Job records: :func:`parse_record` and :class:`JobRecord`."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage.exceptions import GPTImageInvalidResponseError
from airflow_provider_gptimage.protocol import MODEL, JobRecord, parse_envelope, parse_record

URL = "https://cdn.example.com/1.png"
PARAM = {"model": MODEL, "input": {"prompt": "a cat", "aspect_ratio": "1:1", "resolution": "1K"}}

# The documented example answer of recordInfo.
DOC_RECORD = {
    "taskId": "3ebe82c2-0000",
    "model": MODEL,
    "state": "success",
    "param": json.dumps(PARAM),
    "resultJson": json.dumps({"resultUrls": [URL]}),
    "failCode": None,
    "failMsg": None,
    "costTime": 59699,
    "completeTime": 1777467267840,
    "createTime": 1777467208141,
}


def _record(**overrides: object) -> dict[str, object]:
    data = dict(DOC_RECORD)
    data.update(overrides)
    return data


def test_documented_answer():
    data = parse_envelope(200, json.dumps({"code": 200, "msg": "success", "data": DOC_RECORD}).encode())
    record = parse_record(data)
    assert record == JobRecord(
        job_id="3ebe82c2-0000",
        state="success",
        result_urls=(URL,),
        fail_code=None,
        fail_message=None,
        cost_time_ms=59699,
        create_time_ms=1777467208141,
        complete_time_ms=1777467267840,
        model=MODEL,
        params=PARAM,
    )
    assert (record.is_success, record.is_finished, record.is_failed) == (True, True, False)


# --- resultJson variations -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("result_json", "urls"),
    [
        pytest.param(json.dumps({"resultUrls": [URL]}), (URL,), id="string"),
        pytest.param({"resultUrls": [URL]}, (URL,), id="object"),
        pytest.param(json.dumps({"resultUrls": [URL, URL + "?2"]}), (URL, URL + "?2"), id="two-urls"),
        pytest.param("", (), id="empty-string"),
        pytest.param("   ", (), id="blank-string"),
        pytest.param(None, (), id="null"),
        pytest.param(json.dumps({}), (), id="without-resultUrls"),
        pytest.param(json.dumps({"resultUrls": None}), (), id="resultUrls-null"),
        pytest.param(json.dumps({"resultUrls": URL}), (), id="resultUrls-string-not-list"),
        pytest.param(json.dumps({"resultUrls": [URL, None, "", 7]}), (URL,), id="junk-entries-dropped"),
        pytest.param(json.dumps([URL]), (), id="json-list"),
        pytest.param(["x"], (), id="list-object"),
        pytest.param(12, (), id="number"),
    ],
)
def test_result_json(result_json, urls):
    record = parse_record(_record(resultJson=result_json))
    assert record.result_urls == urls
    assert isinstance(record.result_urls, tuple)


def test_missing_result_json():
    data = _record()
    del data["resultJson"]
    assert parse_record(data).result_urls == ()


# --- failCode / failMsg ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fail_code", "fail_msg", "expected_code", "expected_msg"),
    [
        pytest.param(None, None, None, None, id="null"),
        pytest.param("", "", None, None, id="empty-strings"),
        pytest.param("", None, None, None, id="mixed"),
        pytest.param("500", "content policy", "500", "content policy", id="strings"),
        pytest.param(500, "content policy", "500", "content policy", id="int-code-as-string"),
    ],
)
def test_fail_fields(fail_code, fail_msg, expected_code, expected_msg):
    record = parse_record(_record(state="fail", failCode=fail_code, failMsg=fail_msg, resultJson=""))
    assert (record.fail_code, record.fail_message) == (expected_code, expected_msg)
    assert (record.is_failed, record.is_finished, record.is_success) == (True, True, False)


# --- states ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "normalised", "finished", "success", "failed"),
    [
        pytest.param("waiting", "waiting", False, False, False, id="waiting"),
        pytest.param("queuing", "queuing", False, False, False, id="queuing"),
        pytest.param("generating", "generating", False, False, False, id="generating"),
        pytest.param("rendering-v2", "rendering-v2", False, False, False, id="unknown"),
        pytest.param("", "unknown", False, False, False, id="empty"),
        pytest.param(None, "unknown", False, False, False, id="null"),
        pytest.param("success", "success", True, True, False, id="success"),
        pytest.param("SUCCESS", "success", True, True, False, id="SUCCESS-uppercase"),
        pytest.param(" Success ", "success", True, True, False, id="padded"),
        pytest.param("fail", "fail", True, False, True, id="fail"),
        pytest.param("FAIL", "fail", True, False, True, id="FAIL-uppercase"),
        pytest.param("failed", "failed", True, False, True, id="failed-is-a-failure-word"),
        pytest.param("cancelled", "cancelled", True, False, True, id="cancelled"),
        pytest.param("CANCELED", "canceled", True, False, True, id="canceled-us"),
        pytest.param("timed_out", "timed_out", True, False, True, id="timed-out"),
        pytest.param("generation-failed", "generation-failed", True, False, True, id="word-in-a-compound"),
        pytest.param("failover_pending", "failover_pending", False, False, False, id="not-a-failure-word"),
    ],
)
def test_states(state, normalised, finished, success, failed):
    record = parse_record(_record(state=state))
    assert record.state == normalised
    assert (record.is_finished, record.is_success, record.is_failed) == (finished, success, failed)


def test_missing_state_counts_as_running():
    data = _record()
    del data["state"]
    record = parse_record(data)
    assert not record.is_finished


# --- param and numbers ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("param", "expected"),
    [
        pytest.param(json.dumps(PARAM), PARAM, id="json-string"),
        pytest.param(PARAM, PARAM, id="object"),
        pytest.param("", {}, id="empty"),
        pytest.param(None, {}, id="null"),
        pytest.param("{broken", {}, id="invalid-json"),
        pytest.param(json.dumps(["a"]), {}, id="json-list"),
        pytest.param(42, {}, id="number"),
    ],
)
def test_param_decoding(param, expected):
    assert parse_record(_record(param=param)).params == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(59699, 59699, id="int"),
        pytest.param("59699", 59699, id="numeric-string"),
        pytest.param(59699.9, 59699, id="float"),
        pytest.param(None, None, id="null"),
        pytest.param("", None, id="empty"),
        pytest.param("soon", None, id="garbage"),
        pytest.param([1], None, id="list"),
        pytest.param(float("inf"), None, id="infinity"),
        pytest.param(float("nan"), None, id="nan"),
    ],
)
def test_times(value, expected):
    record = parse_record(_record(costTime=value, createTime=value, completeTime=value))
    assert record.cost_time_ms == record.create_time_ms == record.complete_time_ms == expected


def test_json_infinity_in_a_raw_answer_does_not_crash():
    raw = b'{"code": 200, "data": {"taskId": "t", "state": "waiting", "costTime": Infinity}}'
    assert parse_record(parse_envelope(200, raw)).cost_time_ms is None


@pytest.mark.parametrize(("model", "expected"), [(MODEL, MODEL), ("", None), (None, None)])
def test_model(model, expected):
    assert parse_record(_record(model=model)).model == expected


# --- task id ---------------------------------------------------------------------------------------------
def test_task_id_falls_back_to_the_polled_id():
    data = _record()
    del data["taskId"]
    assert parse_record(data, job_id="polled").job_id == "polled"


@pytest.mark.parametrize("task_id", [None, "", 12])
def test_without_any_task_id(task_id):
    with pytest.raises(GPTImageInvalidResponseError, match="taskId"):
        parse_record(_record(taskId=task_id))


def test_minimal_record():
    record = parse_record({"taskId": "t"})
    assert record == JobRecord(job_id="t", state="unknown")
    assert record.params == {}
    assert not record.is_finished


# --- JobRecord -------------------------------------------------------------------------------------------
RECORDS = [
    pytest.param(parse_record(DOC_RECORD), id="documented"),
    pytest.param(JobRecord(job_id="t", state="waiting"), id="defaults"),
    pytest.param(
        parse_record(_record(state="fail", failCode="400", failMsg="nsfw", resultJson=None)),
        id="failed",
    ),
]


@pytest.mark.parametrize("record", RECORDS)
def test_to_dict_is_json_primitives_and_round_trips(record):
    data = record.to_dict()
    text = json.dumps(data)  # raises if anything is not JSON-serialisable
    loaded = json.loads(text)
    assert loaded == data
    assert isinstance(data["result_urls"], list)
    assert isinstance(data["params"], dict)
    assert JobRecord.from_dict(loaded) == record
    assert JobRecord.from_dict(data) == record


def test_to_dict_keys():
    assert set(JobRecord(job_id="t", state="waiting").to_dict()) == {
        "job_id",
        "state",
        "result_urls",
        "fail_code",
        "fail_message",
        "cost_time_ms",
        "create_time_ms",
        "complete_time_ms",
        "model",
        "params",
    }


def test_from_dict_tolerates_null_collections():
    record = JobRecord.from_dict({"job_id": "t", "state": "success", "result_urls": None, "params": None})
    assert record.result_urls == ()
    assert record.params == {}


def test_to_dict_does_not_share_state_with_the_record():
    record = parse_record(DOC_RECORD)
    data = record.to_dict()
    data["params"]["input"]["prompt"] = "changed"
    data["result_urls"].append("https://evil.example/x.png")
    assert record.params["input"]["prompt"] == "a cat"
    assert record.result_urls == (URL,)


def test_record_is_frozen_and_hashable():
    record = parse_record(DOC_RECORD)
    with pytest.raises(AttributeError):
        record.state = "fail"  # type: ignore[misc]
    assert hash(record) == hash(parse_record(DOC_RECORD))


def test_from_dict_does_not_share_state_with_its_input():
    data = parse_record(DOC_RECORD).to_dict()
    record = JobRecord.from_dict(data)
    data["params"]["input"]["prompt"] = "changed"
    assert record.params["input"]["prompt"] == "a cat"


def test_to_dict_of_a_read_only_mapping_of_params():
    from types import MappingProxyType

    record = JobRecord(job_id="t", state="waiting", params=MappingProxyType({"input": {"prompt": "p"}}))
    assert json.loads(json.dumps(record.to_dict()))["params"] == {"input": {"prompt": "p"}}


@pytest.mark.parametrize("bad", ["{not json", "[" * 5000 + "]" * 5000])
def test_unreadable_result_json_of_a_success_is_a_retryable_invalid_response(bad):
    deep = {"resultUrls": [URL]}
    for _ in range(40):
        deep = {"x": deep}
    for result_json in (bad, json.dumps(deep)):
        with pytest.raises(GPTImageInvalidResponseError) as caught:
            parse_record(_record(resultJson=result_json))
        assert caught.value.retryable


def test_unreadable_result_json_of_a_running_job_is_ignored():
    record = parse_record(_record(state="generating", resultJson="{not json"))
    assert record.result_urls == ()
