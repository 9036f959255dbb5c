"""GPTImageHook.wait_for_job, the worker-side wait (``deferrable=False``): the triggers' rule and timeout words."""

from __future__ import annotations

import time

import pytest

from airflow_provider_gptimage.exceptions import GPTImageTimeoutError
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol import PollSchedule

pytestmark = pytest.mark.usefixtures("gptimage_conn")


def test_worker_wait_returns_the_finished_record(simulator):
    hook = GPTImageHook()
    job_id = hook.create_task("a worker-side wait")
    record = hook.wait_for_job(job_id, schedule=PollSchedule(0.05, 0.1))
    assert record.is_success
    assert record.result_urls


def test_worker_wait_times_out_with_the_triggers_message(simulator):
    hook = GPTImageHook()
    job_id = hook.create_task("never done [sim:stuck]")
    with pytest.raises(GPTImageTimeoutError) as info:
        hook.wait_for_job(job_id, deadline=time.time() + 0.3, timeout=0.3, schedule=PollSchedule(0.05, 0.1))
    assert "did not finish before its deadline (0.3s from its creation) (last state: waiting)" in str(info.value)
    assert info.value.job_id == job_id
