"""Arguments that would only fail after a job is created (and billed) are refused before it, through
dag.test() against the simulator: blank or rendered-"None" file names, names too long in bytes for the
destination, a bad download deadline; on the operator, the batch operator and the sensor."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator
from airflow_provider_gptimage.sensors.gptimage import GPTImageTaskSensor
from tests.conftest import run_dag, xcom_value

dagtest = pytest.mark.usefixtures("airflow_db", "gptimage_conn")

LONG_UTF8 = "商品" * 40  # 80 characters, 240 bytes: too long once ".<name>-N.part-<32 hex>" is added


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


@dagtest
@pytest.mark.parametrize(
    ("template", "sku", "said"),
    [
        ("{{ params.sku }}", None, "empty, blank or 'None'"),  # a missing value renders "None"
        ("{{ params.get('nothing', '') }}", None, "empty, blank or 'None'"),
        ("{{ params.sku }}", "   ", "empty, blank or 'None'"),
        ("{{ params.sku }}", LONG_UTF8, "240 bytes in UTF-8"),
    ],
    ids=["renders-None", "renders-empty", "renders-blank", "too-long-in-bytes"],
)
def test_the_operator_refuses_a_bad_name_before_any_create(
    simulator, monkeypatch, tmp_path, capsys, template, sku, said
):
    env = {"GPTIMAGE_TEST_FILENAME_TEMPLATE": template, "GPTIMAGE_TEST_DESTINATION": tmp_path.as_uri()}
    if sku is not None:
        env["GPTIMAGE_TEST_SKU"] = sku
    dr = run_dag("gptimage_generate_templated_name", monkeypatch, **env)
    assert dr.state == "failed"
    assert simulator.stats().create_attempts == 0  # refused before paying
    out = capsys.readouterr()
    assert said in out.out + out.err
    assert list(tmp_path.iterdir()) == []


@dagtest
def test_the_operator_refuses_an_object_key_too_long_before_any_create(
    simulator, monkeypatch, s3_bucket, s3_conn_id, s3_client, capsys
):
    dr = run_dag(
        "gptimage_generate_templated_name",
        monkeypatch,
        GPTIMAGE_TEST_FILENAME_TEMPLATE="{{ params.sku }}",
        GPTIMAGE_TEST_SKU="é" * 60,
        GPTIMAGE_TEST_DESTINATION=f"s3://{s3_bucket}/{'deep' * 225}/",
        GPTIMAGE_TEST_DESTINATION_CONN_ID=s3_conn_id,
    )
    assert dr.state == "failed"
    assert simulator.stats().create_attempts == 0
    assert "1024-byte key limit" in "".join(capsys.readouterr())
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []


@dagtest
def test_a_rendered_name_that_is_fine_is_used(simulator, monkeypatch, tmp_path):
    dr = run_dag(
        "gptimage_generate_templated_name",
        monkeypatch,
        GPTIMAGE_TEST_SKU="SKU-7",
        GPTIMAGE_TEST_DESTINATION=tmp_path.as_uri(),
    )
    assert dr.state == "success", states(dr)
    [output] = xcom_value(dr, "generate")["outputs"]
    assert output["uri"] == (tmp_path / "SKU-7.png").as_uri()
    sidecar = json.loads((tmp_path / "SKU-7.json").read_text())
    assert (output["format"], output["width"], output["height"]) == ("png", sidecar["width"], sidecar["height"])
    assert output["content_type"] == "image/png" and output["width"] > 0 and output["height"] > 0


@dagtest
def test_the_sensor_refuses_a_bad_name_before_it_waits(simulator, monkeypatch, tmp_path, capsys):
    dr = run_dag(
        "gptimage_sense_templated_name",
        monkeypatch,
        GPTIMAGE_TEST_FILENAME_TEMPLATE="{{ params.sku }}",
        GPTIMAGE_TEST_DESTINATION=tmp_path.as_uri(),
    )
    assert states(dr) == {"start": "success", "sense": "failed"}
    stats = simulator.stats()
    assert (stats.creates, stats.polls) == (1, 0)  # the upstream job only; the sensor never polled
    assert "empty, blank or 'None'" in "".join(capsys.readouterr())


@dagtest
def test_the_batch_refuses_a_key_too_long_in_bytes_before_any_create(simulator, monkeypatch, tmp_path, capsys):
    extra = [{"key": "é" * 107, "prompt": "a long key"}]  # 214 bytes + 43 of the temporary name > 255
    dr = run_dag(
        "gptimage_batch",
        monkeypatch,
        GPTIMAGE_BATCH_N="3",
        GPTIMAGE_BATCH_EXTRA=json.dumps(extra),
        GPTIMAGE_BATCH_DESTINATION=str(tmp_path),
    )
    assert dr.state == "failed"
    assert simulator.stats().create_attempts == 0
    text = "".join(capsys.readouterr())
    assert "1 of 4 items are invalid" in text and "item 3" in text and "214 bytes in UTF-8" in text


@pytest.mark.parametrize(
    ("make", "kwargs"),
    [
        (GPTImageGenerateOperator, {"prompt": "x"}),
        (GPTImageTaskSensor, {"job_id": "job-1"}),
        (GPTImageBatchGenerateOperator, {"requests": [{"key": "a", "prompt": "x"}]}),
    ],
)
@pytest.mark.parametrize("bad", [0, -5, "soon"])
def test_a_bad_download_timeout_fails_when_the_dag_is_parsed(make, kwargs, bad):
    with pytest.raises(GPTImageValidationError, match="download_timeout"):
        make(task_id="t", download_timeout=bad, **kwargs)


@pytest.mark.parametrize(
    ("make", "kwargs", "bad"),
    [
        (GPTImageGenerateOperator, {"prompt": "x"}, ["SKU-7"]),  # one image: a list of keys means nothing here
        (GPTImageGenerateOperator, {"prompt": "x"}, "yes"),
        (GPTImageBatchGenerateOperator, {"requests": [{"key": "a", "prompt": "x"}]}, "SKU-7"),
        (GPTImageBatchGenerateOperator, {"requests": [{"key": "a", "prompt": "x"}]}, 1),
    ],
)
def test_a_bad_force_fails_when_the_dag_is_parsed(make, kwargs, bad):
    with pytest.raises(GPTImageValidationError, match="force"):
        make(task_id="t", force=bad, **kwargs)
