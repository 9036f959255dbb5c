"""The ``Image`` and ``Gallery`` extra links: their rules, and the values Airflow stores for the UI after a
real run (the plugin's URLs on Airflow 3.1+, where the UI's session cookie reaches the plugin)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from packaging.version import Version

from airflow_provider_gptimage.get_provider_info import get_provider_info
from airflow_provider_gptimage.links import (
    GPTImageGalleryLink,
    GPTImageResultLink,
    first_served_image,
    image_link,
    plugin_image_link,
)
from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator
from airflow_provider_gptimage.sensors.gptimage import GPTImageTaskSensor
from tests.conftest import AIRFLOW_VERSION, run_dag, xcom_value

LINK_XCOM_KEY = "_link_GPTImageResultLink"
GALLERY_XCOM_KEY = "_link_GPTImageGalleryLink"
#: Airflow 3.1+ UIs send their session cookie to the plugin, so the links point at it there.
PLUGIN_LINKS = Version("3.1") <= AIRFLOW_VERSION
TI_KEY = SimpleNamespace(dag_id="catalog", run_id="manual__2026-01-01T00:00:00+00:00", task_id="gen", map_index=-1)


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


def test_links_are_registered_on_operators_sensor_and_provider_info():
    for cls in (GPTImageGenerateOperator, GPTImageTaskSensor, GPTImageBatchGenerateOperator):
        assert [type(link) for link in cls.operator_extra_links] == [GPTImageResultLink, GPTImageGalleryLink]
    assert {
        "airflow_provider_gptimage.links.GPTImageResultLink",
        "airflow_provider_gptimage.links.GPTImageGalleryLink",
    } <= set(get_provider_info()["extra-links"])
    assert GPTImageResultLink().xcom_key == LINK_XCOM_KEY
    assert (GPTImageResultLink().name, GPTImageGalleryLink().name) == ("Image", "Gallery")


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("", "/gptimage/images/catalog/manual__2026-01-01T00%3A00%3A00%2B00%3A00/gen/-1/1"),
        ("https://airflow.example.com/", "https://airflow.example.com/gptimage/images/catalog/"),
        ("http://127.0.0.1:8080/team-a", "http://127.0.0.1:8080/team-a/gptimage/images/catalog/"),
    ],
)
def test_plugin_link_is_http_or_same_origin_and_names_the_first_served_image(base_url, expected):
    result = {"output_uris": ["https://cdn/expiring.png", "file:///data/sku.png"]}
    link = plugin_image_link(result, TI_KEY, base_url=base_url)  # type: ignore[arg-type]
    assert link.startswith(expected)
    assert link.endswith("/gen/-1/1")
    assert first_served_image(result) == 1
    assert plugin_image_link({"result_urls": ["https://cdn/x.png"]}, TI_KEY, base_url=base_url) == ""  # type: ignore[arg-type]


def test_plugin_link_reads_api_base_url(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    link = plugin_image_link({"output_uris": ["s3://b/sku.png"]}, TI_KEY)  # type: ignore[arg-type]
    assert link.startswith("https://airflow.example.com/gptimage/images/catalog/")


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


def test_a_deferral_stores_empty_links_without_asking_for_the_return_value(monkeypatch):
    from airflow.sdk.execution_time.xcom import XCom

    def get_value(**kwargs):
        raise AssertionError("a deferred task has no return value to read")

    monkeypatch.setattr(XCom, "get_value", get_value)
    op = GPTImageBatchGenerateOperator(task_id="generate", requests=[{"key": "a", "prompt": "p"}])
    deferred = SimpleNamespace(**vars(TI_KEY), state="deferred")
    assert GPTImageResultLink().get_link(op, ti_key=deferred) == ""  # type: ignore[arg-type]
    assert GPTImageGalleryLink().get_link(op, ti_key=deferred) == ""  # type: ignore[arg-type]


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_a_deferrable_run_logs_no_missing_return_value(simulator, monkeypatch, tmp_path, capfd):
    # The links are evaluated at each deferral as well as at the end; only the end has a result to read.
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=str(tmp_path))
    assert dr.state == "success"
    out, err = capfd.readouterr()
    assert "XCom not found" not in out + err
    assert xcom_value(dr, "generate", key=LINK_XCOM_KEY)  # the end still stores the link


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_after_a_run_the_ui_links_open_the_copy_in_destination(simulator, monkeypatch, tmp_path):
    # Airflow evaluates the links in the worker when the task ends and stores them for the UI as XComs.
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=str(tmp_path))
    assert dr.state == "success"
    result = xcom_value(dr, "generate")
    assert result["output_uris"]
    image, gallery = xcom_value(dr, "generate", key=LINK_XCOM_KEY), xcom_value(dr, "generate", key=GALLERY_XCOM_KEY)
    if PLUGIN_LINKS:  # [api] base_url is unset here: same-origin links, which the UI shows
        from airflow_provider_gptimage.ui import urls

        assert image == urls.image_path(dr.dag_id, dr.run_id, "generate", -1, 0)
        assert gallery == urls.run_path(dr.dag_id, dr.run_id)
    else:
        assert image == result["output_uris"][0]
        assert gallery == ""


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_after_a_run_without_destination_the_ui_link_is_the_result_url(simulator, monkeypatch):
    dr = run_dag("gptimage_fire_and_sense", monkeypatch)
    assert dr.state == "success"
    sensed = xcom_value(dr, "sense")
    assert xcom_value(dr, "sense", key=LINK_XCOM_KEY) == sensed["result_urls"][0]
    assert xcom_value(dr, "start", key=LINK_XCOM_KEY) == ""  # fire-and-forget: no image yet
    assert xcom_value(dr, "sense", key=GALLERY_XCOM_KEY) == ""  # no copy kept: nothing for the plugin to show
