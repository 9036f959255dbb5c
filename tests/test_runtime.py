"""The worker-side wait (``deferrable=False``): the trigger's schedule and the trigger's timeout words."""

from __future__ import annotations

import logging
import time

import pytest

from airflow_provider_gptimage.exceptions import GPTImageTimeoutError
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol import PollSchedule
from airflow_provider_gptimage.runtime import wait_in_worker

pytestmark = pytest.mark.usefixtures("gptimage_conn")
LOG = logging.getLogger(__name__)


def test_worker_wait_returns_the_finished_record(simulator):
    hook = GPTImageHook()
    job_id = hook.create_task("a worker-side wait")
    record = wait_in_worker(hook, job_id, deadline=None, schedule=PollSchedule(0.05, 0.1), log=LOG)
    assert record.is_success
    assert record.result_urls


def test_worker_wait_times_out_with_the_triggers_message(simulator):
    hook = GPTImageHook()
    job_id = hook.create_task("never done [sim:stuck]")
    with pytest.raises(GPTImageTimeoutError) as info:
        wait_in_worker(hook, job_id, deadline=time.time() + 0.3, schedule=PollSchedule(0.05, 0.1), log=LOG)
    assert "did not finish before its deadline (last state: waiting)" in str(info.value)
    assert info.value.job_id == job_id
