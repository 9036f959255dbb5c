"""GPTImageGenerateOperator and GPTImageTaskSensor through Airflow's own dag.test() and the simulator."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator
from tests.conftest import (
    FAKE_API_KEY,
    database_text,
    needs_fresh_retry_after_deferral,
    needs_task_state_store,
    run_dag,
    xcom_value,
)

pytestmark = pytest.mark.usefixtures("airflow_db", "gptimage_conn")


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def test_deferrable_generate_returns_result(simulator, monkeypatch, airflow_db, capsys):
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_PROMPT="a lighthouse at dusk, {{ ds }}")
    assert dr.state == "success", states(dr)
    result = xcom_value(dr, "generate")
    assert result["state"] == "success"
    assert result["job_id"]
    assert result["result_urls"] and result["result_urls"][0].startswith(simulator.url)
    assert result["output_uris"] == []
    assert isinstance(result["cost_time_ms"], int)
    stats = simulator.stats()
    assert stats.creates == 1
    (rid,) = stats.request_ids["createTask"]
    assert rid.startswith("airflow:gptimage_generate:") and rid.endswith(":try1:createTask")
    out = capsys.readouterr()
    assert FAKE_API_KEY not in out.out + out.err
    assert FAKE_API_KEY not in database_text(airflow_db)  # XCom, rendered fields, trigger rows, logs in DB


def test_prompt_is_templated(simulator, monkeypatch):
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_PROMPT="poster for {{ dag.dag_id }}")
    assert dr.state == "success"
    assert simulator.stats().prompt_creates == {"poster for gptimage_generate": 1}


def test_non_deferrable_polls_in_worker(simulator, monkeypatch):
    dr = run_dag("gptimage_generate_sync", monkeypatch)
    assert dr.state == "success", states(dr)
    assert xcom_value(dr, "generate")["state"] == "success"
    assert simulator.stats().creates == 1


def test_fire_and_forget_then_sensor(simulator, monkeypatch):
    dr = run_dag("gptimage_fire_and_sense", monkeypatch)
    assert dr.state == "success", states(dr)
    started = xcom_value(dr, "start")
    sensed = xcom_value(dr, "sense")
    assert started["state"] in {"waiting", "queuing", "generating"}
    assert started["result_urls"] == []
    assert sensed["job_id"] == started["job_id"]
    assert sensed["state"] == "success"
    assert simulator.stats().creates == 1


@needs_task_state_store
def test_retry_reattaches_to_the_job_it_started(simulator, monkeypatch, no_sleep):
    # The first try's trigger gives up (a run of 5xx longer than it tolerates); the retry must not pay again.
    simulator.inject("recordInfo", "http_500", times=8)
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_RETRIES="1")
    assert dr.state == "success", states(dr)
    (ti,) = dr.get_task_instances()
    assert ti.try_number == 2
    stats = simulator.stats()
    assert stats.creates == 1
    assert stats.create_attempts == 1


@needs_fresh_retry_after_deferral
def test_retry_after_failed_job_creates_a_new_one(simulator, monkeypatch):
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_PROMPT="doomed [sim:fail]", GPTIMAGE_TEST_RETRIES="1")
    assert dr.state == "failed"
    assert simulator.stats().creates == 2  # the failed job cannot be reused; a new one is the only way


def test_templated_bad_prompt_fails_before_any_request(simulator, monkeypatch):
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_PROMPT="{{ '' }}")
    assert dr.state == "failed"
    assert simulator.stats().create_attempts == 0


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "ok", "resolution": "1k"}, "resolution"),
        ({"prompt": "ok", "aspect_ratio": "0:1"}, "aspect_ratio"),
        ({"prompt": "ok", "model": "gpt-image-1"}, "model"),
        ({"prompt": "ok", "quality": 3}, "quality"),
    ],
)
def test_static_bad_input_fails_at_parse_time(kwargs, parameter):
    with pytest.raises(GPTImageValidationError) as info:
        GPTImageGenerateOperator(task_id="t", **kwargs)
    assert info.value.parameter == parameter


def test_templated_arguments_wait_for_execution():
    op = GPTImageGenerateOperator(task_id="t", prompt="{{ params.p }}", resolution="{{ params.r }}")
    assert op.prompt == "{{ params.p }}"


def test_template_fields():
    assert set(GPTImageGenerateOperator.template_fields) >= {
        "prompt",
        "aspect_ratio",
        "resolution",
        "quality",
        "output_format",
        "destination",
    }
