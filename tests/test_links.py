"""The ``Image`` extra link: its rule, and the value Airflow stores for the UI after a real run."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.get_provider_info import get_provider_info
from airflow_provider_gptimage.links import GPTImageResultLink, image_link
from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator
from airflow_provider_gptimage.sensors.gptimage import GPTImageTaskSensor
from tests.conftest import run_dag, xcom_value

LINK_XCOM_KEY = "_link_GPTImageResultLink"


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"output_uris": ["s3://b/a.png", "s3://b/b.png"], "result_urls": ["https://x/1.png"]}, "s3://b/a.png"),
        ({"output_uris": [], "result_urls": ["https://x/1.png"]}, "https://x/1.png"),
        ({"output_uris": [], "result_urls": []}, ""),
        ({"state": "waiting"}, ""),
        (None, ""),
        ("not a mapping", ""),
        ({"items": [{"output_uris": []}, {"output_uris": ["s3://b/k2.png"]}]}, "s3://b/k2.png"),
        ({"items": [{"output_uris": [], "result_urls": ["https://x/k1.png"]}]}, "https://x/k1.png"),
        ({"items": []}, ""),
    ],
)
def test_image_link_prefers_the_copy_then_the_result_url(result, expected):
    assert image_link(result) == expected


def test_link_is_registered_on_operator_sensor_and_provider_info():
    assert any(isinstance(link, GPTImageResultLink) for link in GPTImageGenerateOperator.operator_extra_links)
    assert any(isinstance(link, GPTImageResultLink) for link in GPTImageTaskSensor.operator_extra_links)
    assert any(isinstance(link, GPTImageResultLink) for link in GPTImageBatchGenerateOperator.operator_extra_links)
    assert "airflow_provider_gptimage.links.GPTImageResultLink" in get_provider_info()["extra-links"]
    assert GPTImageResultLink().xcom_key == LINK_XCOM_KEY
    assert GPTImageResultLink().name == "Image"


def test_get_link_reads_the_return_value_of_the_task_instance(monkeypatch):
    from airflow.sdk.execution_time.xcom import XCom

    asked = {}

    def get_value(*, ti_key, key):
        asked.update(ti_key=ti_key, key=key)
        return {"output_uris": [], "result_urls": ["https://sim/result.png"]}

    monkeypatch.setattr(XCom, "get_value", get_value)
    op = GPTImageGenerateOperator(task_id="generate", prompt="p")
    assert GPTImageResultLink().get_link(op, ti_key="the-key") == "https://sim/result.png"  # type: ignore[arg-type]
    assert asked == {"ti_key": "the-key", "key": "return_value"}


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_after_a_run_the_ui_link_is_the_copy_in_destination(simulator, monkeypatch, tmp_path):
    # Airflow evaluates the link in the worker when the task ends and stores it for the UI as an XCom.
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=str(tmp_path))
    assert dr.state == "success"
    result = xcom_value(dr, "generate")
    assert result["output_uris"]
    assert xcom_value(dr, "generate", key=LINK_XCOM_KEY) == result["output_uris"][0]


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_after_a_run_without_destination_the_ui_link_is_the_result_url(simulator, monkeypatch):
    dr = run_dag("gptimage_fire_and_sense", monkeypatch)
    assert dr.state == "success"
    sensed = xcom_value(dr, "sense")
    assert xcom_value(dr, "sense", key=LINK_XCOM_KEY) == sensed["result_urls"][0]
    assert xcom_value(dr, "start", key=LINK_XCOM_KEY) == ""  # fire-and-forget: no image yet
