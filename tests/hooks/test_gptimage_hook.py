"""GPTImageHook against the simulator over real HTTP: sync and async paths, faults, no leaked key."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_gptimage.exceptions import (
    GPTImageActiveTaskLimitError,
    GPTImageAuthError,
    GPTImageConfigurationError,
    GPTImageError,
    GPTImageInsufficientCreditsError,
    GPTImageInvalidResponseError,
    GPTImageNotFoundError,
    GPTImageRateLimitError,
    GPTImageServiceUnavailableError,
    GPTImageTransportError,
    GPTImageValidationError,
)
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol import RetryPolicy
from tests.conftest import FAKE_API_KEY, connection_json


def wait_success(hook: GPTImageHook, job_id: str, simulator) -> object:
    for _ in range(200):
        record = hook.get_task(job_id)
        if record.is_finished:
            return record
        time.sleep(0.05)  # the simulator's jobs take 0.3 s of its own clock
    raise AssertionError("job did not finish")


def test_create_and_poll_sync(gptimage_conn, simulator):
    hook = GPTImageHook(request_id_prefix="airflow:dag:run:task:try1")
    job_id = hook.create_task("a red bicycle", aspect_ratio="16:9", resolution="2K")
    record = wait_success(hook, job_id, simulator)
    assert record.is_success
    assert record.job_id == job_id
    assert record.result_urls and record.result_urls[0].startswith(simulator.url)
    assert record.params["input"]["aspect_ratio"] == "16:9"
    stats = simulator.stats()
    assert stats.creates == 1
    assert stats.request_ids["createTask"] == ["airflow:dag:run:task:try1:createTask"]
    assert all(rid.endswith(":recordInfo") for rid in stats.request_ids["recordInfo"])


async def test_aget_task_reuses_session(gptimage_conn, simulator):
    import aiohttp

    hook = GPTImageHook()
    job_id = hook.create_task("an async otter")
    async with aiohttp.ClientSession() as session:
        first = await hook.aget_task(job_id, session=session)
        second = await hook.aget_task(job_id, session=session)
    assert first.job_id == second.job_id == job_id
    assert first.state in {"waiting", "queuing", "generating", "success"}


async def test_aget_task_without_session(gptimage_conn, simulator):
    hook = GPTImageHook()
    job_id = hook.create_task("a lighthouse")
    record = await hook.aget_task(job_id)
    assert record.job_id == job_id


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 20_001}, "prompt"),
        ({"prompt": "ok", "resolution": "8K"}, "resolution"),
        ({"prompt": "ok", "aspect_ratio": "16/9"}, "aspect_ratio"),
        ({"prompt": "ok", "model": "dall-e"}, "model"),
    ],
)
def test_bad_input_sends_nothing(gptimage_conn, simulator, kwargs, parameter):
    prompt = kwargs.pop("prompt")
    with pytest.raises(GPTImageValidationError) as info:
        GPTImageHook().create_task(prompt, **kwargs)
    assert info.value.parameter == parameter
    assert simulator.stats().create_attempts == 0


def test_bad_key_is_auth_error_without_the_key(simulator, monkeypatch):
    bad = "sk-invalid-key-for-test"
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url, bad))
    with pytest.raises(GPTImageAuthError) as info:
        GPTImageHook().create_task("a cat")
    assert bad not in str(info.value)
    assert info.value.status == 401


def test_missing_password_is_configuration_error(simulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url, key=None))
    with pytest.raises(GPTImageConfigurationError, match="no API key"):
        GPTImageHook().create_task("a cat")
    assert simulator.stats().create_attempts == 0


def test_host_without_scheme_is_configuration_error(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_GPTIMAGE_DEFAULT",
        json.dumps({"conn_type": "gptimage", "host": "example.invalid", "password": FAKE_API_KEY}),
    )
    with pytest.raises(GPTImageConfigurationError, match="no scheme"):
        GPTImageHook().create_task("a cat")


def test_default_host_is_public_service(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", json.dumps({"conn_type": "gptimage", "password": "sk-x"}))
    hook = GPTImageHook()
    hook.get_conn()
    assert hook.base_url == "https://aigptimage.com"


def test_test_connection(gptimage_conn, simulator, monkeypatch):
    ok, message = GPTImageHook().test_connection()
    assert ok, message
    assert simulator.stats().creates == 0
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url, "sk-invalid-x"))
    ok, message = GPTImageHook().test_connection()
    assert not ok
    assert "rejected" in message


@pytest.mark.parametrize(
    ("fault", "options", "retries"),
    [
        ("http_429", {"retry_after": 2}, 2),
        ("http_429", {"retry_after": None}, 3),
        ("http_409", {}, 2),
        ("http_455", {}, 1),
        ("http_500", {}, 3),
        ("http_502", {}, 2),
        ("http_503", {}, 2),
        ("html_error", {}, 2),
        ("empty_body", {}, 1),
        ("invalid_json", {}, 1),
        ("body_code", {"code": 500}, 2),
    ],
)
def test_poll_recovers_from_transient_faults(gptimage_conn, simulator, no_sleep, fault, options, retries):
    hook = GPTImageHook()
    job_id = hook.create_task("a patient poll")
    simulator.inject("recordInfo", fault, times=retries, **options)
    record = hook.get_task(job_id)
    assert record.job_id == job_id
    assert len(no_sleep) == retries
    if options.get("retry_after"):
        assert all(d >= options["retry_after"] for d in no_sleep)


async def test_async_poll_recovers_from_transient_faults(gptimage_conn, simulator, no_sleep):
    hook = GPTImageHook()
    job_id = hook.create_task("an async patient poll")
    simulator.inject("recordInfo", "http_429", times=2, retry_after=1)
    simulator.inject("recordInfo", "http_503", times=1)
    record = await hook.aget_task(job_id)
    assert record.job_id == job_id
    assert len(no_sleep) == 3
    assert no_sleep[0] >= 1


@pytest.mark.parametrize(
    ("fault", "options", "error"),
    [
        ("body_code", {"code": 402}, GPTImageInsufficientCreditsError),
        ("body_code", {"code": 401}, GPTImageAuthError),
        ("body_code", {"code": 404}, GPTImageNotFoundError),
    ],
)
def test_final_errors_are_not_retried(gptimage_conn, simulator, no_sleep, fault, options, error):
    simulator.inject("createTask", fault, times=1, **options)
    with pytest.raises(error):
        GPTImageHook().create_task("a final answer")
    assert no_sleep == []


def test_insufficient_credits_message(gptimage_conn, simulator):
    simulator.configure(credits=0)
    with pytest.raises(GPTImageInsufficientCreditsError, match="insufficient credits"):
        GPTImageHook().create_task("a costly cat")


def test_create_retries_refusals_freely_but_ambiguous_faults_once(gptimage_conn, simulator, no_sleep, capsys):
    hook = GPTImageHook()
    simulator.inject("createTask", "http_409", times=2)
    simulator.inject("createTask", "http_429", times=1, retry_after=1)
    assert hook.create_task("a refused then accepted job")
    assert simulator.stats().creates == 1
    simulator.reset()
    simulator.inject("createTask", "http_500", times=5)
    with pytest.raises(GPTImageServiceUnavailableError):
        hook.create_task("an ambiguous job")
    # one retry after an answer that may mean the job exists, no more (it could pay twice)
    assert simulator.stats().create_attempts == 2
    assert "createTask attempt 1 failed" in capsys.readouterr().out


def test_exhausted_retries_raise_typed_error(gptimage_conn, simulator, no_sleep):
    hook = GPTImageHook(retry_policy=RetryPolicy(max_attempts=3))
    job_id = hook.create_task("a doomed poll")
    simulator.inject("recordInfo", "http_429", times=5, retry_after=1)
    with pytest.raises(GPTImageRateLimitError):
        hook.get_task(job_id)
    simulator.clear_faults()
    simulator.inject("recordInfo", "http_409", times=5)
    with pytest.raises(GPTImageActiveTaskLimitError):
        hook.get_task(job_id)


def test_garbage_is_reported_with_status_and_excerpt(gptimage_conn, simulator, no_sleep):
    hook = GPTImageHook(retry_policy=RetryPolicy(max_attempts=1))
    job_id = hook.create_task("a garbled answer")
    simulator.inject("recordInfo", "html_error", times=1)
    with pytest.raises(GPTImageServiceUnavailableError) as info:
        hook.get_task(job_id)
    assert "HTTP 502" in str(info.value)
    assert "not JSON" in str(info.value)
    simulator.inject("recordInfo", "invalid_json", times=1)
    with pytest.raises(GPTImageInvalidResponseError, match="HTTP 200"):
        hook.get_task(job_id)


def test_timeout_is_transport_error(gptimage_conn, simulator, no_sleep):
    hook = GPTImageHook(request_timeout=0.2, retry_policy=RetryPolicy(max_attempts=1))
    job_id = hook.create_task("a slow answer")
    simulator.inject("recordInfo", "slow", times=1, delay=1.0)
    with pytest.raises(GPTImageTransportError, match="no answer"):
        hook.get_task(job_id)


def test_connection_refused_is_not_ambiguous(monkeypatch, no_sleep):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(f"http://127.0.0.1:{port}"))
    hook = GPTImageHook(retry_policy=RetryPolicy(max_attempts=3))
    with pytest.raises(GPTImageTransportError) as info:
        hook.create_task("nobody listens")
    assert info.value.request_sent is False
    assert len(no_sleep) == 2  # refused connections are retried fully: nothing can have been paid


def test_unknown_job_is_not_found(gptimage_conn, simulator):
    with pytest.raises(GPTImageNotFoundError):
        GPTImageHook().get_task("no-such-job")


def test_variations_are_tolerated(gptimage_conn, simulator):
    simulator.configure(variations=True, errors_as_http_200=True, seed=7)
    hook = GPTImageHook()
    job_ids = [hook.create_task(f"variation {i}") for i in range(5)]
    for job_id in job_ids:
        record = wait_success(hook, job_id, simulator)
        assert record.is_success and record.result_urls
        assert record.fail_code is None and record.fail_message is None


def test_sync_session_keeps_tcp_connections_alive(gptimage_conn, simulator):
    from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

    hook = GPTImageHook()
    session = hook.get_conn()
    for url in (simulator.url, "https://aigptimage.com"):
        assert isinstance(session.get_adapter(url), TCPKeepAliveAdapter)  # the HTTP provider's default
    assert hook.get_task(hook.create_task("kept alive")).job_id


def test_test_connection_tries_once_and_says_what_it_reached(monkeypatch, no_sleep):
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json("http://127.0.0.1:1"))
    ok, message = GPTImageHook().test_connection()
    assert not ok
    assert message.startswith("Could not reach http://127.0.0.1:1 within 10s")
    assert no_sleep == []  # one try: no retry, no backoff


def test_test_connection_names_the_service_that_answered(gptimage_conn, simulator):
    ok, message = GPTImageHook().test_connection()
    assert ok
    assert simulator.url in message


@pytest.mark.parametrize("method", ["run", "run_and_check", "run_with_advanced_retry"])
def test_generic_http_calls_are_refused_clearly(gptimage_conn, simulator, method):
    with pytest.raises(GPTImageError, match="not supported: use create_task"):
        getattr(GPTImageHook(), method)("/api/v1/jobs/createTask", data={"prompt": "x"})
    assert simulator.stats().create_attempts == 0


def test_one_hook_is_shared_by_threads_without_mutation(gptimage_conn, simulator):
    from concurrent.futures import ThreadPoolExecutor

    hook = GPTImageHook(request_id_prefix="airflow:batch")
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: hook.create_task(f"shared {i}", request_id=f"airflow:batch:sku-{i}"), range(16)))
    assert len(set(ids)) == 16
    assert hook.request_id_prefix == "airflow:batch"
    sent = sorted(simulator.stats().request_ids["createTask"])
    assert sent == sorted(f"airflow:batch:sku-{i}:createTask" for i in range(16))
