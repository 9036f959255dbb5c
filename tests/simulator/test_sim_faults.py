"""Every injected fault, delivered over real HTTP, then normal behaviour resumes."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_gptimage.simulator import FAULTS, GPTImageSimulator

from .conftest import Api, png_info


@pytest.mark.parametrize("status", [409, 455, 500, 502, 503])
@pytest.mark.parametrize("endpoint", ["createTask", "recordInfo"])
def test_http_status_faults(sim: GPTImageSimulator, api: Api, endpoint: str, status: int) -> None:
    task_id = api.create_id()
    sim.inject(endpoint, f"http_{status}", times=2)
    call = (lambda: api.create()) if endpoint == "createTask" else (lambda: api.poll(task_id))
    first, second, third = call(), call(), call()
    assert (first.status_code, second.status_code, third.status_code) == (status, status, 200)
    assert first.json()["code"] == status
    assert sim.stats().creates == (2 if endpoint == "createTask" else 1)


def test_http_429_with_and_without_retry_after(sim: GPTImageSimulator, api: Api) -> None:
    sim.inject("createTask", "http_429", retry_after=7)
    sim.inject("createTask", "http_429", retry_after=None)
    with_header, without_header = api.create(), api.create()
    assert (with_header.status_code, with_header.headers["Retry-After"]) == (429, "7")
    assert without_header.status_code == 429
    assert "Retry-After" not in without_header.headers
    assert api.create().status_code == 200
    assert sim.stats().responses_429 == 2


def test_html_error(sim: GPTImageSimulator, api: Api) -> None:
    sim.inject("recordInfo", "html_error")
    response = api.poll("anything")
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text
    with pytest.raises(ValueError):  # noqa: PT011 - requests' JSONDecodeError subclasses ValueError
        response.json()


def test_empty_body_and_invalid_json(sim: GPTImageSimulator, api: Api) -> None:
    sim.inject("createTask", "empty_body")
    sim.inject("createTask", "invalid_json")
    empty, garbage = api.create(), api.create()
    assert (empty.status_code, empty.content) == (200, b"")
    assert garbage.status_code == 200
    with pytest.raises(ValueError):  # noqa: PT011
        json.loads(garbage.content)
    assert sim.stats().creates == 0


def test_body_code(sim: GPTImageSimulator, api: Api) -> None:
    sim.inject("createTask", "body_code", code=455, msg="maintenance")
    response = api.create()
    assert response.status_code == 200
    assert response.json() == {"code": 455, "msg": "maintenance"}


def test_slow_answers_normally_after_the_delay(sim: GPTImageSimulator, api: Api) -> None:
    sim.inject("createTask", "slow", delay=2.0)
    with pytest.raises(requests.Timeout):
        api.session.post(f"{api.url}/api/v1/jobs/createTask", json={}, headers=api.headers(), timeout=0.2)
    sim.inject("recordInfo", "slow", delay=0.05)
    assert api.poll("missing").status_code == 404


@pytest.mark.parametrize("before_headers", [False, True])
def test_reset(sim: GPTImageSimulator, api: Api, before_headers: bool) -> None:
    sim.inject("createTask", "reset", before_headers=before_headers)
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        api.create()
    assert sim.stats().creates == 0
    assert api.create().status_code == 200


def test_process_option_creates_the_job_then_loses_the_response(sim: GPTImageSimulator, api: Api) -> None:
    sim.inject("createTask", "http_502", process=True)
    assert api.create("billed but unseen").status_code == 502
    assert sim.stats().creates == 1
    assert sim.stats().prompt_creates == {"billed but unseen": 1}


def test_truncate_api_response(sim: GPTImageSimulator, api: Api) -> None:
    sim.inject("recordInfo", "truncate")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.poll("missing")


@pytest.mark.parametrize("fault", ["truncate", "reset"])
def test_result_cut_mid_download(sim: GPTImageSimulator, api: Api, finished: str, fault: str) -> None:
    url = api.urls(finished)[0]
    sim.inject("result", fault)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.get(url, timeout=10)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert png_info(response.content).width == 256


def test_truncate_announces_the_full_length(sim: GPTImageSimulator, api: Api, finished: str) -> None:
    url = api.urls(finished)[0]
    full = requests.get(url, timeout=10)
    sim.inject("result", "truncate")
    received = bytearray()

    def read_all(response: requests.Response) -> None:
        for block in response.iter_content(64):
            received.extend(block)

    with requests.get(url, stream=True, timeout=10) as response:
        assert response.headers["Content-Length"] == full.headers["Content-Length"]
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            read_all(response)
    assert 0 < len(received) < len(full.content)
    assert full.content.startswith(bytes(received))


@pytest.mark.parametrize("fault", ["http_503", "html_error", "body_code", "empty_body"])
def test_result_faults(sim: GPTImageSimulator, api: Api, finished: str, fault: str) -> None:
    url = api.urls(finished)[0]
    sim.inject("result", fault)
    assert requests.get(url, timeout=10).headers["Content-Type"] != "image/png"
    assert requests.get(url, timeout=10).headers["Content-Type"] == "image/png"


def test_faults_queue_in_order_and_report_pending(sim: GPTImageSimulator, api: Api) -> None:
    sim.inject("createTask", "http_500")
    sim.inject("createTask", "http_503", times=2)
    pending = sim.stats().pending_faults["createTask"]
    assert [(f["fault"], f["times"]) for f in pending] == [("http_500", 1), ("http_503", 2)]
    assert [api.create().status_code for _ in range(4)] == [500, 503, 503, 200]
    assert sim.stats().pending_faults["createTask"] == []


def test_clear_faults(sim: GPTImageSimulator, api: Api) -> None:
    sim.inject("createTask", "http_500", times=5)
    sim.clear_faults()
    assert api.create().status_code == 200


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        (("jobs", "http_500"), {}, "unknown endpoint"),
        (("createTask", "explode"), {}, "unknown fault"),
        (("createTask", "http_500"), {"delay": 1}, "does not accept"),
        (("createTask", "http_500", 0), {}, "times"),
    ],
)
def test_invalid_injections(sim: GPTImageSimulator, args: tuple, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sim.inject(*args, **options)


def test_fault_catalogue() -> None:
    assert set(FAULTS) == {
        "http_429",
        "http_409",
        "http_455",
        "http_500",
        "http_502",
        "http_503",
        "html_error",
        "empty_body",
        "invalid_json",
        "body_code",
        "slow",
        "reset",
        "truncate",
    }
