"""GPTImageBatchTrigger: primitives only, GETs only, one event per wake-up, against the simulator."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_gptimage.exceptions import GPTImageJobFailedError
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol.events import BATCH, batch_jobs, outcome
from airflow_provider_gptimage.triggers.batch import GPTImageBatchTrigger
from tests.conftest import FAKE_API_KEY


def make_trigger(jobs, **kwargs) -> GPTImageBatchTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("max_poll_interval", 0.1)
    kwargs.setdefault("wake_linger", 0.05)
    return GPTImageBatchTrigger(jobs=jobs, **kwargs)


async def first_event(trigger: GPTImageBatchTrigger) -> dict:
    event = await asyncio.wait_for(trigger.run().__anext__(), timeout=30)
    return event.payload


def create(prompts: list[str]) -> list[list]:
    hook = GPTImageHook()
    return [[f"k{i}", hook.create_task(p), time.time()] for i, p in enumerate(prompts)]


def test_serialize_round_trip_has_only_primitives():
    trigger = GPTImageBatchTrigger(
        jobs=[["sku-1", "job-1", 1.7e9], ["sku-2", "job-2", 1.7e9 + 1]],
        gptimage_conn_id="conn",
        poll_interval=3,
        max_poll_interval=20,
        job_timeout=600,
        wake_fraction=0.5,
        wake_linger=2,
        wake_at=1.8e9,
        max_concurrent_polls=4,
        request_id_prefix="airflow:x",
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_gptimage.triggers.batch.GPTImageBatchTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert GPTImageBatchTrigger(**kwargs).serialize() == (path, kwargs)
    assert FAKE_API_KEY not in json.dumps(kwargs)


async def test_all_jobs_end_in_one_event_and_the_trigger_never_posts(gptimage_conn, simulator):
    jobs = create([f"batch trigger {i}" for i in range(6)])
    payload = await first_event(make_trigger(jobs, wake_fraction=1.0, wake_linger=30))
    assert payload["status"] == BATCH
    assert payload["reason"] == "all"
    assert payload["running"] == 0
    entries = batch_jobs(payload)
    assert sorted(e["key"] for e in entries) == [f"k{i}" for i in range(6)]
    for entry in entries:
        record = outcome(entry)
        assert record.result_urls
        assert record.params == {}  # the task knows the request: events stay small
    stats = simulator.stats()
    assert stats.creates == stats.create_attempts == 6  # no POST from the trigger
    assert stats.polls <= 6 * 8


async def test_fraction_wakes_before_the_slowest_job(gptimage_conn, simulator):
    jobs = create(["quick 1", "quick 2", "quick 3", "never ends [sim:stuck]"])
    payload = await first_event(make_trigger(jobs, wake_fraction=0.5, wake_linger=30))
    assert payload["reason"] in ("fraction", "all")
    assert payload["running"] >= 1
    assert "k3" not in {e["key"] for e in payload["jobs"]}


async def test_a_group_created_together_wakes_the_task_once_not_at_its_first_fraction(gptimage_conn, simulator):
    # Six jobs created one after another end in the same order, spread over about 0.1 s: the fraction (2 of 6)
    # is reached while the others are about to end; waking then would leave them idle for a whole cycle.
    simulator.configure(generation_seconds=0.4)
    hook, jobs = GPTImageHook(), []
    for i in range(6):
        jobs.append([f"k{i}", hook.create_task(f"group {i}"), time.time()])
        await asyncio.sleep(0.02)
    payload = await first_event(make_trigger(jobs, wake_fraction=0.25, wake_linger=30, min_event_delay=0))
    assert payload["reason"] == "all"
    assert len(batch_jobs(payload)) == 6


async def test_linger_wakes_for_a_lone_finished_job(gptimage_conn, simulator):
    jobs = create(["quick", "stuck a [sim:stuck]", "stuck b [sim:stuck]", "stuck c [sim:stuck]", "stuck d [sim:stuck]"])
    payload = await first_event(make_trigger(jobs, wake_fraction=1.0, wake_linger=0.1))
    assert payload["reason"] == "linger"
    assert [e["key"] for e in payload["jobs"]] == ["k0"]
    assert payload["running"] == 4


async def test_failed_job_and_timeout_are_reported_per_key(gptimage_conn, simulator):
    jobs = create(["breaks [sim:fail]", "hangs [sim:stuck]"])
    payload = await first_event(make_trigger(jobs, job_timeout=0.4, wake_fraction=1.0, wake_linger=30))
    by_key = {e["key"]: e for e in payload["jobs"]}
    assert by_key["k0"]["status"] == "fail"
    with pytest.raises(GPTImageJobFailedError):
        outcome(by_key["k0"])
    assert by_key["k1"]["status"] == "timeout"
    assert f"Job {jobs[1][1]} did not finish before its deadline (0.4s from its creation)" in by_key["k1"]["message"]


async def test_unknown_job_is_a_final_error_entry(gptimage_conn, simulator):
    jobs = [*create(["real one"]), ["ghost", "no-such-job", time.time()]]
    payload = await first_event(make_trigger(jobs, wake_fraction=1.0, wake_linger=30))
    by_key = {e["key"]: e for e in payload["jobs"]}
    assert by_key["ghost"]["status"] == "error"
    assert by_key["ghost"]["error_type"] == "GPTImageNotFoundError"
    assert by_key["k0"]["status"] == "success"


async def test_transient_poll_errors_are_retried_and_429_pauses_all_polls(gptimage_conn, simulator):
    jobs = create([f"flaky {i}" for i in range(3)])
    simulator.inject("recordInfo", "http_500", times=3)
    simulator.inject("recordInfo", "http_429", times=2, retry_after=0.2)
    payload = await first_event(make_trigger(jobs, wake_fraction=1.0, wake_linger=30))
    assert payload["reason"] == "all"
    assert all(e["status"] == "success" for e in payload["jobs"])
    assert simulator.stats().status_counts.get(429) == 2


async def test_too_many_transient_errors_report_the_job_without_failing_others(gptimage_conn, simulator):
    jobs = create(["unlucky"])
    simulator.inject("recordInfo", "http_503", times=50)
    payload = await first_event(make_trigger(jobs, max_transient_errors=2, wake_fraction=1.0, wake_linger=30))
    (entry,) = payload["jobs"]
    assert entry["status"] == "error"
    assert entry["error_type"] == "GPTImageServiceUnavailableError"
    simulator.clear_faults()


async def test_timer_wakes_with_no_jobs(gptimage_conn, simulator):
    payload = await first_event(make_trigger([], wake_at=time.time() + 0.1))
    seen_at = payload.pop("at")
    assert payload == {"status": BATCH, "reason": "timer", "jobs": [], "running": 0}
    assert abs(seen_at - time.time()) < 5  # when it last polled: the next trigger's ``seen_at``
    assert simulator.stats().polls == 0


async def test_timer_wakes_while_jobs_still_run(gptimage_conn, simulator):
    jobs = create(["stuck [sim:stuck]"])
    payload = await first_event(make_trigger(jobs, wake_at=time.time() + 0.2))
    assert payload["reason"] == "timer"
    assert payload["running"] == 1


async def test_many_jobs_share_one_session_with_bounded_concurrency(gptimage_conn, simulator):
    simulator.configure(generation_seconds=0.2)
    jobs = create([f"crowd {i}" for i in range(40)])
    payload = await first_event(make_trigger(jobs, wake_fraction=1.0, wake_linger=30, max_concurrent_polls=4))
    assert len(payload["jobs"]) == 40
    assert simulator.stats().creates == 40


async def test_a_poll_missed_while_the_task_ran_is_made_at_once(gptimage_conn, simulator):
    simulator.configure(generation_seconds=0.05)
    created = time.time()
    [[key, job_id, _]] = create(["missed poll"])
    await asyncio.sleep(0.3)  # the job ended while "the task ran": its 0.2 s poll fell between two triggers
    jobs = [[key, job_id, created - 10]]  # on a 10 s grid, the next turn would be seconds away
    start = time.time()
    trigger = make_trigger(
        jobs, poll_interval=10, max_poll_interval=10, seen_at=created - 0.5, wake_linger=0, min_event_delay=0
    )
    # Its next turn on the 10 s grid is at least 9 s away: an event within 5 s means the missed poll was made.
    run = trigger.run()
    payload = (await asyncio.wait_for(run.__anext__(), timeout=5)).payload
    await run.aclose()
    assert payload["reason"] == "all" and payload["at"] < start + 5
    assert simulator.stats().polls == 1


async def test_ended_jobs_are_held_until_the_minimum_event_delay(gptimage_conn, simulator):
    simulator.configure(generation_seconds=0)
    jobs = create([f"already done {i}" for i in range(3)])
    trigger = make_trigger(jobs, wake_fraction=0.1, wake_linger=0, min_event_delay=0.4, seen_at=0.0)
    started = time.time()
    payload = await first_event(trigger)
    assert payload["at"] - started >= 0.4  # the trigger's own clock: it did not fire before the hold ended
    assert sorted(entry["key"] for entry in batch_jobs(payload)) == ["k0", "k1", "k2"]  # it kept polling meanwhile
    assert simulator.stats().polls >= 3


async def test_no_hold_when_told_so_and_unknown_arguments_are_ignored(gptimage_conn, simulator):
    simulator.configure(generation_seconds=0)
    jobs = create(["done at once"])
    trigger = make_trigger(jobs, wake_fraction=0.1, wake_linger=0, min_event_delay=0, seen_at=0.0, newer_arg=1)
    assert "newer_arg" not in trigger.serialize()[1]
    assert trigger.serialize()[1]["min_event_delay"] == 0
    payload = await first_event(trigger)
    assert [entry["key"] for entry in batch_jobs(payload)] == ["k0"]


def test_the_minimum_event_delay_defaults_to_the_poll_interval():
    trigger = GPTImageBatchTrigger(jobs=[["k", "j", 1.0]], poll_interval=7)
    assert trigger.min_event_delay == 7
    assert GPTImageBatchTrigger(**trigger.serialize()[1]).min_event_delay == 7
