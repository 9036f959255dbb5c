"""The simulated API over real HTTP: contract, progression, validation, limits, directives, counters."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_gptimage.simulator import GPTImageSimulator, ManualClock

from .conftest import MODEL, Api, png_info


def test_create_then_poll_progresses_to_success(api: Api, clock: ManualClock) -> None:
    body = {"model": MODEL, "input": {"prompt": "a red fox", "aspect_ratio": "1:1", "resolution": "2K"}}
    created = api.create_raw(body)
    assert created.status_code == 200
    assert created.json()["code"] == 200
    assert created.json()["msg"] == "success"
    task_id = created.json()["data"]["taskId"]

    states = []
    for _ in range(4):
        states.append(api.record(task_id)["state"])
        clock.advance(1.0)
    assert states == ["waiting", "queuing", "generating", "success"]

    record = api.record(task_id)
    assert record["taskId"] == task_id
    assert record["model"] == MODEL
    assert json.loads(record["param"]) == body
    assert record["failCode"] is None
    assert record["failMsg"] is None
    assert record["costTime"] == 3000
    assert record["createTime"] == 1_777_000_000_000
    assert record["completeTime"] == 1_777_000_003_000
    urls = json.loads(record["resultJson"])["resultUrls"]
    assert urls == [f"{api.url}/results/{task_id}/1.png"]


def test_running_job_has_no_results_yet(api: Api) -> None:
    record = api.record(api.create_id())
    assert record["resultJson"] is None
    assert record["costTime"] is None
    assert record["completeTime"] is None


@pytest.mark.parametrize(
    ("aspect_ratio", "size"),
    [(None, (256, 256)), ("auto", (256, 256)), ("16:9", (256, 144)), ("9:16", (144, 256)), ("4:5", (205, 256))],
)
def test_result_is_a_png_with_the_requested_aspect_ratio(
    api: Api, clock: ManualClock, aspect_ratio: str | None, size: tuple[int, int]
) -> None:
    params = {} if aspect_ratio is None else {"aspect_ratio": aspect_ratio}
    task_id = api.create_id("an aspect test", **params)
    clock.advance(3)
    response = requests.get(api.urls(task_id)[0], timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert int(response.headers["Content-Length"]) == len(response.content)
    info = png_info(response.content)
    assert (info.width, info.height) == size
    assert [kind for kind, _ in info.chunks] == [b"IHDR", b"IDAT", b"IEND"]


def test_images_per_job(sim: GPTImageSimulator, api: Api, clock: ManualClock) -> None:
    sim.configure(images_per_job=3)
    task_id = api.create_id()
    clock.advance(3)
    urls = api.urls(task_id)
    assert [u.rsplit("/", 1)[1] for u in urls] == ["1.png", "2.png", "3.png"]
    bodies = [requests.get(u, timeout=10).content for u in urls]
    assert len(set(bodies)) == 3
    assert requests.get(f"{api.url}/results/{task_id}/4.png", timeout=10).status_code == 404


@pytest.mark.parametrize(
    ("key", "accepted"),
    [(None, False), ("", False), ("not-sk", False), ("sk-invalid-1", False), ("sk-ok", True)],
)
def test_authentication(api: Api, key: str | None, accepted: bool) -> None:
    response = api.create(key=key)
    assert response.status_code == (200 if accepted else 401)
    assert response.json()["code"] == response.status_code
    if not accepted:
        assert api.poll("whatever", key=key).status_code == 401


def test_rejected_keys_are_configurable(sim: GPTImageSimulator, api: Api) -> None:
    sim.configure(rejected_key_substrings=["revoked"])
    assert api.create(key="sk-invalid").status_code == 200
    assert api.create(key="sk-revoked-2").status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"model": "dall-e-3", "input": {"prompt": "x"}}, 422),
        ({"model": MODEL}, 422),
        ({"model": MODEL, "input": {}}, 422),
        ({"model": MODEL, "input": {"prompt": "   "}}, 422),
        ({"model": MODEL, "input": {"prompt": "x" * 20_001}}, 422),
        ({"model": MODEL, "input": {"prompt": "x", "resolution": "8K"}}, 422),
        ({"model": MODEL, "input": {"prompt": "x", "aspect_ratio": "wide"}}, 422),
        ({"model": MODEL, "input": {"prompt": "x", "aspect_ratio": "0:1"}}, 422),
        ([1, 2], 400),
    ],
)
def test_validation(api: Api, body: object, status: int) -> None:
    response = api.create_raw(body)
    assert response.status_code == status
    assert response.json()["code"] == status
    assert response.json()["msg"]


def test_longest_prompt_is_accepted(api: Api) -> None:
    assert api.create("x" * 20_000).status_code == 200


def test_unknown_task_is_404_and_missing_id_is_400(api: Api) -> None:
    assert api.poll("no-such-task").status_code == 404
    assert api.poll(None).status_code == 400


def test_credits_run_out_with_402(sim: GPTImageSimulator, api: Api) -> None:
    sim.configure(credits=2)
    assert [api.create().status_code for _ in range(3)] == [200, 200, 402]
    assert api.create().json()["msg"] == "insufficient credits"
    stats = sim.stats()
    assert stats.creates == 2
    assert stats.create_attempts == 4
    assert stats.credits_remaining == 0


def test_active_task_limit(sim: GPTImageSimulator, api: Api, clock: ManualClock) -> None:
    sim.configure(active_task_limit=2)
    assert [api.create(f"job {i}").status_code for i in range(3)] == [200, 200, 409]
    refused = api.create()
    assert refused.json() == {"code": 409, "msg": "active task limit exceeded"}
    clock.advance(3)
    assert api.create().status_code == 200
    stats = sim.stats()
    assert stats.max_active_jobs == 2
    assert stats.responses_409 == 2
    assert stats.active_jobs == 1


def test_rate_limit_with_retry_after(sim: GPTImageSimulator, api: Api, clock: ManualClock) -> None:
    sim.configure(rate_limit_per_second=0.5, rate_limit_burst=2)
    task_id = api.create_id()
    assert api.poll(task_id).status_code == 200
    limited = api.poll(task_id)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json()["code"] == 429
    clock.advance(2)
    assert api.poll(task_id).status_code == 200
    assert sim.stats().responses_429 == 1


def test_rate_limit_can_cover_only_creates(sim: GPTImageSimulator, api: Api) -> None:
    sim.configure(rate_limit_per_second=1, rate_limit_endpoints=["createTask"])
    task_id = api.create_id()
    assert api.create().status_code == 429
    assert all(api.poll(task_id).status_code == 200 for _ in range(5))


def test_result_urls_expire(sim: GPTImageSimulator, api: Api, clock: ManualClock) -> None:
    sim.configure(result_url_ttl_seconds=60)
    task_id = api.create_id()
    clock.advance(3)
    url = api.urls(task_id)[0]
    clock.advance(59)
    assert requests.get(url, timeout=10).status_code == 200
    clock.advance(1)
    expired = requests.get(url, timeout=10)
    assert expired.status_code == 403
    assert "expired" in expired.text
    assert expired.headers["Content-Type"].startswith("application/xml")


def test_result_of_unknown_or_running_job_is_404(api: Api) -> None:
    task_id = api.create_id()
    assert requests.get(f"{api.url}/results/{task_id}/1.png", timeout=10).status_code == 404
    assert requests.get(f"{api.url}/results/nope/1.png", timeout=10).status_code == 404


def test_directive_fail(api: Api, clock: ManualClock) -> None:
    task_id = api.create_id("a doomed job [sim:fail]")
    assert api.record(task_id)["state"] == "waiting"
    clock.advance(3)
    record = api.record(task_id)
    assert record["state"] == "fail"
    assert record["failCode"] == "501"
    assert record["failMsg"]
    assert record["resultJson"] is None


def test_directive_stuck_counts_as_active_forever(sim: GPTImageSimulator, api: Api, clock: ManualClock) -> None:
    task_id = api.create_id("never ends [sim:stuck]")
    clock.advance(10_000)
    assert api.record(task_id)["state"] == "waiting"
    assert sim.stats().active_jobs == 1


@pytest.mark.parametrize(("directive", "result"), [("no-urls", {}), ("zero-images", {"resultUrls": []})])
def test_directives_without_images(api: Api, clock: ManualClock, directive: str, result: object) -> None:
    task_id = api.create_id(f"empty [sim:{directive}]")
    clock.advance(3)
    record = api.record(task_id)
    assert record["state"] == "success"
    assert json.loads(record["resultJson"]) == result


def test_directive_expired(api: Api, clock: ManualClock) -> None:
    task_id = api.create_id("too late [sim:expired]")
    clock.advance(3)
    assert requests.get(api.urls(task_id)[0], timeout=10).status_code == 403


def test_variations(sim: GPTImageSimulator, api: Api, clock: ManualClock) -> None:
    sim.configure(variations=True, seed=7)
    task_id = api.create_id()
    clock.advance(3)
    bodies = [api.poll(task_id).json() for _ in range(30)]
    message_keys = {"msg" if "msg" in b else "message" for b in bodies}
    assert message_keys == {"msg", "message"}
    assert {type(b["data"]["resultJson"]) for b in bodies} == {str, dict}
    assert {b["data"]["failCode"] for b in bodies} == {None, ""}
    for body in bodies:
        result = body["data"]["resultJson"]
        decoded = json.loads(result) if isinstance(result, str) else result
        assert decoded["resultUrls"] == [f"{api.url}/results/{task_id}/1.png"]


def test_variations_are_reproducible_with_a_seed(clock: ManualClock) -> None:
    seen = []
    for _ in range(2):
        with GPTImageSimulator(clock=clock, variations=True, seed=3) as sim:
            api = Api(sim.url)
            seen.append(["msg" in api.poll("missing").json() for _ in range(10)])
    assert seen[0] == seen[1]


def test_errors_as_http_200(sim: GPTImageSimulator, api: Api) -> None:
    sim.configure(errors_as_http_200=True, active_task_limit=0)
    refused = api.create()
    assert refused.status_code == 200
    assert refused.json()["code"] == 409
    unknown = api.poll("missing")
    assert (unknown.status_code, unknown.json()["code"]) == (200, 404)
    assert sim.stats().responses_409 == 1


def test_counters_and_request_ids(sim: GPTImageSimulator, api: Api, clock: ManualClock) -> None:
    first = api.create_id("a cat", request_id="dag.task.1")
    api.create_id("a cat", request_id="dag.task.2")
    api.create_id("a dog")
    api.create(key=None, request_id="unauthenticated")
    api.poll(first, request_id="poll-1")
    clock.advance(3)
    requests.get(api.urls(first)[0], headers={"X-Request-ID": "dl-1"}, timeout=10)
    stats = sim.stats()
    assert stats.creates == 3
    assert stats.create_attempts == 4
    assert stats.polls == 2
    assert stats.result_downloads == 1
    assert stats.prompt_creates == {"a cat": 2, "a dog": 1}
    assert stats.request_ids["createTask"] == ["dag.task.1", "dag.task.2", "unauthenticated"]
    assert stats.request_ids["recordInfo"] == ["poll-1"]
    assert stats.request_ids["result"] == ["dl-1"]
    assert stats.requests_without_auth == 1
    assert stats.max_active_jobs == 3
    assert stats.status_counts[401] == 1
    assert "sk-test-key" not in repr(stats)


def test_reset_forgets_jobs_counters_and_faults(sim: GPTImageSimulator, api: Api) -> None:
    task_id = api.create_id()
    sim.inject("createTask", "http_500", times=3)
    sim.reset()
    assert api.poll(task_id).status_code == 404
    assert api.create().status_code == 200
    stats = sim.stats()
    assert (stats.creates, stats.polls) == (1, 1)


def test_configure_rejects_unknown_options(sim: GPTImageSimulator) -> None:
    with pytest.raises(ValueError, match="unknown simulator configuration"):
        sim.configure(colour="blue")
    with pytest.raises(ValueError, match="invalid"):
        sim.configure(generation_seconds=-1)
