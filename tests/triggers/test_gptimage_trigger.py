"""GPTImageTaskTrigger: serialization of primitives only, real polling against the simulator."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_gptimage.hooks import settings
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol import PollSchedule
from airflow_provider_gptimage.protocol.events import outcome
from airflow_provider_gptimage.triggers import session as shared
from airflow_provider_gptimage.triggers.gptimage import GPTImageTaskTrigger
from tests.conftest import FAKE_API_KEY, connection_json
from tests.hooks import test_settings
from tests.hooks.test_settings import REVOKED_KEY


def make_trigger(job_id: str, **kwargs) -> GPTImageTaskTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("max_poll_interval", 0.2)
    kwargs.setdefault("min_event_delay", 0)
    return GPTImageTaskTrigger(job_id=job_id, **kwargs)


async def first_event(trigger: GPTImageTaskTrigger) -> dict:
    run = trigger.run()
    try:
        return (await asyncio.wait_for(run.__anext__(), timeout=30)).payload
    finally:
        await run.aclose()


def test_serialize_round_trip_has_only_primitives():
    trigger = GPTImageTaskTrigger(
        job_id="job-1",
        gptimage_conn_id="conn",
        deadline=1.5e9,
        poll_interval=3,
        max_poll_interval=20,
        max_transient_errors=4,
        request_id_prefix="airflow:x",
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_gptimage.triggers.gptimage.GPTImageTaskTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert all(isinstance(v, (str, int, float, type(None))) for v in kwargs.values())
    again = GPTImageTaskTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert FAKE_API_KEY not in json.dumps(kwargs)


def test_max_poll_interval_never_below_poll_interval():
    assert GPTImageTaskTrigger(job_id="j", poll_interval=10, max_poll_interval=1).max_poll_interval == 10


async def test_success_event(gptimage_conn, simulator):
    job_id = GPTImageHook().create_task("a trigger success")
    payload = await first_event(make_trigger(job_id))
    assert payload["status"] == "success"
    assert payload["job_id"] == job_id
    record = outcome(payload)
    assert record.result_urls
    stats = simulator.stats()
    assert stats.creates == 1  # the trigger never POSTs
    assert stats.create_attempts == 1
    assert stats.polls >= 2


async def test_fail_event_carries_fail_code(gptimage_conn, simulator):
    from airflow_provider_gptimage.exceptions import GPTImageJobFailedError

    job_id = GPTImageHook().create_task("this one breaks [sim:fail]")
    payload = await first_event(make_trigger(job_id))
    assert payload["status"] == "fail"
    with pytest.raises(GPTImageJobFailedError) as info:
        outcome(payload)
    assert info.value.fail_code and info.value.fail_message
    assert job_id in str(info.value)


async def test_deadline_gives_timeout_event(gptimage_conn, simulator):
    job_id = GPTImageHook().create_task("this one never ends [sim:stuck]")
    payload = await first_event(make_trigger(job_id, deadline=time.time() + 0.3))
    assert payload["status"] == "timeout"
    assert payload["last_state"] == "waiting"
    assert "did not finish" in payload["message"]


async def test_past_deadline_polls_once_then_times_out(gptimage_conn, simulator):
    job_id = GPTImageHook().create_task("restarted after its deadline [sim:stuck]")
    payload = await first_event(make_trigger(job_id, deadline=time.time() - 1, timeout=60))
    assert payload["status"] == "timeout"
    assert payload["last_state"] == "waiting"
    assert "(60s from its creation)" in payload["message"]
    assert simulator.stats().polls == 1  # one last look: it might have ended while nobody watched


async def test_past_deadline_reports_a_job_that_ended_meanwhile(gptimage_conn, simulator):
    hook = GPTImageHook()
    job_id = hook.create_task("ended while the triggerer was down")
    hook.wait_for_job(job_id, schedule=PollSchedule(0.05, 0.1))
    payload = await first_event(make_trigger(job_id, deadline=time.time() - 1))
    assert payload["status"] == "success"


async def test_transient_faults_are_tolerated(gptimage_conn, simulator, no_sleep):
    job_id = GPTImageHook().create_task("a bumpy ride")
    for fault in ("http_503", "http_429", "html_error", "invalid_json", "reset"):
        simulator.inject("recordInfo", fault, times=1)
    payload = await first_event(make_trigger(job_id))
    assert payload["status"] == "success"
    assert len(no_sleep) == 5


async def test_bounded_transient_failures_give_error_event(gptimage_conn, simulator, no_sleep):
    job_id = GPTImageHook().create_task("a broken service")
    simulator.inject("recordInfo", "http_500", times=50)
    payload = await first_event(make_trigger(job_id, max_transient_errors=3))
    assert payload["status"] == "error"
    assert payload["error_type"] == "GPTImageServiceUnavailableError"
    assert len(no_sleep) == 2
    assert json.loads(json.dumps(payload)) == payload


async def test_unknown_job_gives_error_event(gptimage_conn, simulator):
    payload = await first_event(make_trigger("no-such-job"))
    assert payload["status"] == "error"
    assert payload["error_type"] == "GPTImageNotFoundError"


async def test_many_triggers_share_one_session_and_close_it(gptimage_conn, simulator):
    hook = GPTImageHook()
    jobs = [hook.create_task(f"shared pool {i}") for i in range(20)]
    payloads = await asyncio.gather(*(first_event(make_trigger(j)) for j in jobs))
    assert {p["status"] for p in payloads} == {"success"}
    assert shared._pools.get(asyncio.get_running_loop()) is None  # closed after the last trigger


async def test_cancelled_trigger_releases_the_session(gptimage_conn, simulator):
    job_id = GPTImageHook().create_task("cancelled wait [sim:stuck]")
    task = asyncio.ensure_future(first_event(make_trigger(job_id)))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert shared._pools.get(asyncio.get_running_loop()) is None


async def test_key_never_in_trigger_logs(gptimage_conn, simulator, capsys):
    job_id = GPTImageHook().create_task("a quiet trigger")
    await first_event(make_trigger(job_id))
    captured = capsys.readouterr()
    assert FAKE_API_KEY not in captured.out + captured.err


def test_unknown_kwargs_from_a_newer_provider_are_ignored():
    trigger = GPTImageTaskTrigger(job_id="j", some_future_option=3)
    assert "some_future_option" not in trigger.serialize()[1]


async def test_first_poll_falls_one_interval_after_creation(gptimage_conn, simulator):
    job_id = GPTImageHook().create_task("a patient first poll")
    run = make_trigger(job_id, poll_interval=0.4, created_at=time.time()).run()
    task = asyncio.ensure_future(run.__anext__())
    await asyncio.sleep(0.2)
    assert simulator.stats().polls == 0  # a job just created is never done: nothing sent yet
    event = await asyncio.wait_for(task, timeout=30)
    await run.aclose()
    assert event.payload["status"] == "success"


async def test_an_old_job_is_polled_at_once_but_its_event_is_held(gptimage_conn, simulator):
    """A trigger taking over a job created long ago (a triggerer restart) polls it at once, and still holds
    its event min_event_delay after it started (apache/airflow#72716)."""
    hook = GPTImageHook()
    job_id = hook.create_task("ended long ago")
    hook.wait_for_job(job_id, schedule=PollSchedule(0.05, 0.1))
    polls_before = simulator.stats().polls
    run = make_trigger(job_id, poll_interval=10, created_at=time.time() - 3600, min_event_delay=0.5).run()
    task = asyncio.ensure_future(run.__anext__())
    await asyncio.sleep(0.3)
    assert simulator.stats().polls == polls_before + 1  # polled at once: the job's first poll was long due
    assert not task.done()  # held
    event = await asyncio.wait_for(task, timeout=30)
    await run.aclose()
    assert event.payload["status"] == "success"


# --- a connection fetch shared by the triggers starting together (hooks/settings.py) --------------------
clock = test_settings.clock  # the fixtures: a frozen clock for the sharing window, the fetches counted
fetches = test_settings.fetches


async def test_triggers_starting_together_fetch_their_connection_once(gptimage_conn, simulator, clock, fetches):
    hook = GPTImageHook()
    jobs = [hook.create_task(f"started together {i}") for i in range(10)]
    payloads = await asyncio.gather(*(first_event(make_trigger(j)) for j in jobs))
    assert [p["status"] for p in payloads] == ["success"] * 10
    assert [p["job_id"] for p in payloads] == jobs
    assert fetches == ["gptimage_default"]


async def test_a_trigger_started_after_the_window_uses_a_rotated_key(simulator, clock, fetches, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url))
    job_id = GPTImageHook().create_task("outlives a key rotation")
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url, REVOKED_KEY))
    first = await first_event(make_trigger(job_id))
    assert first["error_type"] == "GPTImageAuthError"
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url))  # the key is rotated
    within = await first_event(make_trigger(job_id))
    assert within["error_type"] == "GPTImageAuthError"  # started within the window: the fetch before
    clock.now += settings.SHARE_SECONDS
    after = await first_event(make_trigger(job_id))
    assert after["status"] == "success"
    assert len(fetches) == 2


async def test_a_failing_connection_fetch_gives_each_trigger_its_error_event(simulator, clock, fetches, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url))
    jobs = [GPTImageHook().create_task(f"bad connection {i}") for i in range(5)]
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url, key=None))
    payloads = await asyncio.gather(*(first_event(make_trigger(j)) for j in jobs))
    assert [p["status"] for p in payloads] == ["error"] * 5
    assert [p["job_id"] for p in payloads] == jobs
    assert {p["error_type"] for p in payloads} == {"GPTImageConfigurationError"}
    assert all("no API key" in p["message"] for p in payloads)
    assert fetches == ["gptimage_default"]
    assert simulator.stats().polls == 0
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url))
    fixed = await first_event(make_trigger(jobs[0]))  # the clock has not moved: the failure was not kept
    assert fixed["status"] == "success"
    assert len(fetches) == 2
