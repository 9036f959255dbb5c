"""OpenLineage facets for what the operator and sensor wrote (when the OpenLineage provider is installed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_gptimage.lineage import dataset_name
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator
from airflow_provider_gptimage.sensors.gptimage import GPTImageTaskSensor
from tests.conftest import REPO, run_dag, xcom_value


@pytest.mark.parametrize(
    ("uri", "namespace", "name"),
    [
        ("s3://bucket/images/2026/a.png", "s3://bucket", "images/2026/a.png"),
        ("gs://bucket/a.png", "gs://bucket", "a.png"),
        ("file:///data/images/a.png", "file", "/data/images/a.png"),
        ("/data/images/a.png", "file", "/data/images/a.png"),
    ],
)
def test_dataset_names_follow_the_openlineage_naming_spec(uri, namespace, name):
    assert dataset_name(uri) == (namespace, name)


class FakeTaskInstance:
    """Answers ``xcom_pull`` of its own return value, as the OpenLineage listener's task instance does."""

    def __init__(self, value, task_id: str = "generate", map_index: int = -1) -> None:
        self.value, self.task_id, self.map_index = value, task_id, map_index
        self.pulled: list[dict] = []

    def xcom_pull(self, **kwargs):
        self.pulled.append(kwargs)
        return self.value


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_operator_facets_name_each_copy_and_the_job(simulator, monkeypatch, tmp_path):
    pytest.importorskip("airflow.providers.openlineage")
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=str(tmp_path))
    assert dr.state == "success"
    result = xcom_value(dr, "generate")
    ti = FakeTaskInstance(result)
    lineage = GPTImageGenerateOperator(task_id="generate", prompt="p").get_openlineage_facets_on_complete(ti)
    assert ti.pulled == [{"task_ids": "generate", "key": "return_value", "map_indexes": -1}]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [dataset_name(u) for u in result["output_uris"]]
    (output,) = lineage.outputs
    assert output.namespace == "file"
    assert Path(output.name).parent == tmp_path
    assert Path(output.name).is_file()
    assert lineage.inputs == []
    facet = lineage.run_facets["externalQuery"]
    assert (facet.externalQueryId, facet.source) == (result["job_id"], "gptimage")


def test_sensor_facets_without_destination_only_name_the_job():
    pytest.importorskip("airflow.providers.openlineage")
    result = {"job_id": "job-1", "state": "success", "result_urls": ["https://x/1.png"], "output_uris": []}
    sensor = GPTImageTaskSensor(task_id="sense", job_id="job-1")
    lineage = sensor.get_openlineage_facets_on_complete(FakeTaskInstance(result, task_id="sense"))
    assert lineage.outputs == []
    assert lineage.run_facets["externalQuery"].externalQueryId == "job-1"


def test_no_result_means_empty_lineage():
    pytest.importorskip("airflow.providers.openlineage")
    lineage = GPTImageGenerateOperator(task_id="t", prompt="p").get_openlineage_facets_on_complete(
        FakeTaskInstance(None)
    )
    assert (lineage.inputs, lineage.outputs, lineage.run_facets) == ([], [], {})


def test_the_provider_works_without_openlineage(tmp_path):
    # Hide what this provider's lineage code would import: every module Airflow loads from it still imports.
    hidden = ["openlineage", "airflow.providers.openlineage.extractors", "airflow.providers.common.compat.openlineage"]
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({hidden!r}))\n"
        "import airflow_provider_gptimage.operators.gptimage, airflow_provider_gptimage.sensors.gptimage\n"
        "import airflow_provider_gptimage.links, airflow_provider_gptimage.get_provider_info\n"
        "airflow_provider_gptimage.operators.gptimage.GPTImageGenerateOperator(task_id='t', prompt='p')\n"
        "print('ok')"
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def _batch_report(n: int) -> dict:
    items = [
        {"key": f"sku-{i}", "job_id": f"job-{i}", "state": "success", "output_uris": [f"s3://b/cat/sku-{i}.png"]}
        for i in range(n)
    ]
    return {"total": n, "succeeded": n, "existing": 0, "failed": 0, "not_started": 0, "items": items}


def test_batch_facets_name_each_image_or_the_folder_of_a_large_batch():
    pytest.importorskip("airflow.providers.openlineage")
    from airflow_provider_gptimage.lineage import MAX_DATASETS
    from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator

    op = GPTImageBatchGenerateOperator(task_id="b", requests=[{"key": "a", "prompt": "p"}])
    small = op.get_openlineage_facets_on_complete(FakeTaskInstance(_batch_report(3), task_id="b"))
    assert [(o.namespace, o.name) for o in small.outputs] == [("s3://b", f"cat/sku-{i}.png") for i in range(3)]
    large = op.get_openlineage_facets_on_complete(FakeTaskInstance(_batch_report(MAX_DATASETS + 1), task_id="b"))
    assert [(o.namespace, o.name) for o in large.outputs] == [("s3://b", "cat/")]


def test_batch_asset_extra_counts_and_lists_what_this_run_wrote():
    from airflow_provider_gptimage.protocol.batch import MAX_EVENT_URIS, batch_asset_extra

    report = _batch_report(2)
    report["items"][1]["state"] = "existing"
    extra = batch_asset_extra(report, "s3://b/cat/")
    assert extra == {
        "total": 2, "succeeded": 2, "existing": 0, "failed": 0, "not_started": 0,
        "output_uris": ["s3://b/cat/sku-0.png"], "destination": "s3://b/cat/",
    }  # fmt: skip
    big = batch_asset_extra(_batch_report(MAX_EVENT_URIS + 5))
    assert len(big["output_uris"]) == MAX_EVENT_URIS
    assert big["output_uris_truncated"] is True
