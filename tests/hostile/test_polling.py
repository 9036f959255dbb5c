"""Hostile answers met while polling: triggers always end with an event, unknown states are reported after a
bounded number of polls, and nothing of the key reaches an event."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_gptimage.exceptions import (
    GPTImageError,
    GPTImageJobFailedError,
    GPTImageUnknownStateError,
)
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol import MAX_UNKNOWN_STATE_POLLS, PollSchedule
from airflow_provider_gptimage.protocol.events import batch_jobs, outcome
from airflow_provider_gptimage.triggers.batch import GPTImageBatchTrigger
from airflow_provider_gptimage.triggers.gptimage import GPTImageTaskTrigger
from tests.conftest import FAKE_API_KEY, connection_json
from tests.hostile.api import RECORD, Answer, HostileAPI, record

JOB = "job-hostile-2"


@pytest.fixture
def api(monkeypatch, no_sleep):
    with HostileAPI() as server:
        monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(server.url))
        yield server


async def first_event(trigger) -> dict:
    run = trigger.run()
    try:
        return (await asyncio.wait_for(run.__anext__(), timeout=30)).payload
    finally:
        await run.aclose()


def single(**kwargs) -> GPTImageTaskTrigger:
    return GPTImageTaskTrigger(job_id=JOB, poll_interval=0.01, max_poll_interval=0.01, min_event_delay=0, **kwargs)


def batch(**kwargs) -> GPTImageBatchTrigger:
    kwargs.setdefault("min_event_delay", 0)
    return GPTImageBatchTrigger(
        jobs=[["sku-1", JOB, 0.0]], poll_interval=0.01, max_poll_interval=0.01, wake_linger=0, **kwargs
    )


async def test_an_unknown_state_is_reported_after_a_bounded_number_of_polls(api):
    api.answer(RECORD, Answer(body=record(JOB, state="frobnicating")))
    event = await first_event(single())
    with pytest.raises(GPTImageUnknownStateError, match="'frobnicating'"):
        outcome(event)
    assert api.requests[RECORD] == MAX_UNKNOWN_STATE_POLLS


async def test_known_running_states_are_polled_until_they_end(api):
    running = [Answer(body=record(JOB, state=s)) for s in ("waiting", "queuing", "generating") * 5]
    api.answer(RECORD, *running, Answer(body=record(JOB, state="cancelled")))
    event = await first_event(single())
    with pytest.raises(GPTImageJobFailedError, match="cancelled"):
        outcome(event)
    assert api.requests[RECORD] == 16


async def test_an_unknown_state_in_a_batch_fails_that_item_only(api):
    api.answer(RECORD, Answer(body=record(JOB, state="frobnicating")))
    (entry,) = batch_jobs(await first_event(batch()))
    assert entry["key"] == "sku-1"
    with pytest.raises(GPTImageUnknownStateError):
        outcome(entry)


def test_the_worker_loop_reports_an_unknown_state_too(api, monkeypatch):
    api.answer(RECORD, Answer(body=record(JOB, state="frobnicating")))
    with pytest.raises(GPTImageUnknownStateError):
        GPTImageHook().wait_for_job(JOB, schedule=PollSchedule(0.01, 0.01))
    assert api.requests[RECORD] == MAX_UNKNOWN_STATE_POLLS


async def test_whatever_escapes_a_trigger_becomes_an_error_event(api, monkeypatch):
    async def explode(self, job_id, **kwargs):
        raise RuntimeError(f"bug while holding {FAKE_API_KEY}")

    monkeypatch.setattr(GPTImageHook, "aget_task", explode)
    event = await first_event(single())
    assert event["status"] == "error"
    assert "RuntimeError" in event["message"]
    assert FAKE_API_KEY not in json.dumps(event)
    with pytest.raises(GPTImageError, match="unexpected RuntimeError"):
        outcome(event)


async def test_whatever_escapes_a_batch_trigger_fails_the_resume_clearly(api, monkeypatch):
    def explode(self, *args, **kwargs):
        raise KeyError(f"bug near {FAKE_API_KEY}")

    monkeypatch.setattr(GPTImageBatchTrigger, "_settle", explode)
    event = await first_event(batch())
    assert event["running"] == 1 and event["jobs"] == []
    assert FAKE_API_KEY not in json.dumps(event)
    with pytest.raises(GPTImageError, match=r"unexpected KeyError.*re-attach"):
        batch_jobs(event)


async def test_a_trigger_cancelled_by_airflow_is_not_turned_into_an_event(api):
    api.answer(RECORD, Answer(body=record(JOB, state="waiting")))
    run = single().run()
    task = asyncio.ensure_future(run.__anext__())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
