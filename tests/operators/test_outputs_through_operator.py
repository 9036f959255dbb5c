"""The operator's `destination`: local folder and a real S3-compatible server, idempotent re-runs, bad
destinations refused before any job is created, interrupted copies leaving nothing behind."""

from __future__ import annotations

import json

import pytest

from tests.conftest import needs_dag_test_assets, needs_task_state_store, run_dag, xcom_value

pytestmark = pytest.mark.usefixtures("airflow_db", "gptimage_conn")

PNG = b"\x89PNG\r\n\x1a\n"


def test_local_destination_with_filename_and_sidecar(simulator, monkeypatch, tmp_path):
    dr = run_dag(
        "gptimage_generate",
        monkeypatch,
        GPTIMAGE_TEST_PROMPT="a teapot, studio light",
        GPTIMAGE_TEST_DESTINATION=tmp_path.as_uri(),
        GPTIMAGE_TEST_FILENAME="TEA-001",
    )
    assert dr.state == "success"
    result = xcom_value(dr, "generate")
    assert result["output_uris"] == [(tmp_path / "TEA-001.png").as_uri()]
    assert (tmp_path / "TEA-001.png").read_bytes().startswith(PNG)
    sidecar = json.loads((tmp_path / "TEA-001.json").read_text())
    assert sidecar["job_id"] == result["job_id"]
    assert sidecar["prompt"] == "a teapot, studio light"
    assert sidecar["parameters"]["aspect_ratio"] == "3:2"
    assert sidecar["size"] == (tmp_path / "TEA-001.png").stat().st_size
    assert sidecar["provenance"]["dag_id"] == "gptimage_generate"


def test_rerun_creates_no_job_and_no_duplicate(simulator, monkeypatch, tmp_path):
    env = {"GPTIMAGE_TEST_DESTINATION": tmp_path.as_uri(), "GPTIMAGE_TEST_FILENAME": "SKU-9"}
    assert run_dag("gptimage_generate", monkeypatch, **env).state == "success"
    assert simulator.stats().creates == 1
    second = run_dag("gptimage_generate", monkeypatch, **env)
    assert second.state == "success"
    assert simulator.stats().create_attempts == 1  # zero new createTask requests
    assert xcom_value(second, "generate")["skipped"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SKU-9.json", "SKU-9.png", "_catalog", "_thumbs"]


def test_s3_destination_through_airflow_connection(simulator, monkeypatch, s3_bucket, s3_conn_id, s3_client):
    dr = run_dag(
        "gptimage_generate",
        monkeypatch,
        GPTIMAGE_TEST_DESTINATION=f"s3://{s3_bucket}/catalog/",
        GPTIMAGE_TEST_DESTINATION_CONN_ID=s3_conn_id,
        GPTIMAGE_TEST_FILENAME="BAG-120",
    )
    assert dr.state == "success"
    assert xcom_value(dr, "generate")["output_uris"] == [f"s3://{s3_bucket}/catalog/BAG-120.png"]
    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"])
    assert keys == [
        "catalog/BAG-120.json",
        "catalog/BAG-120.png",
        "catalog/_catalog/commits/BAG-120.json",  # for the next manifest; the journal entry has ended
        "catalog/_thumbs/BAG-120.jpg",
    ]
    body = s3_client.get_object(Bucket=s3_bucket, Key="catalog/BAG-120.png")["Body"].read()
    assert body.startswith(PNG)


@pytest.mark.parametrize(
    "destination",
    ["nosuchscheme://bucket/x/", "relative/folder", "s3://no-such-bucket-gptimage/x/"],
)
def test_bad_destination_fails_before_any_job(simulator, monkeypatch, s3_conn_id, destination):
    dr = run_dag(
        "gptimage_generate",
        monkeypatch,
        GPTIMAGE_TEST_DESTINATION=destination,
        GPTIMAGE_TEST_DESTINATION_CONN_ID=s3_conn_id,
    )
    assert dr.state == "failed"
    assert simulator.stats().create_attempts == 0


def test_interrupted_copy_leaves_no_file(simulator, monkeypatch, tmp_path, no_sleep):
    simulator.inject("result", "truncate", times=20)
    dr = run_dag(
        "gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=tmp_path.as_uri(), GPTIMAGE_TEST_FILENAME="CUT"
    )
    assert dr.state == "failed"
    assert [p.name for p in tmp_path.iterdir()] == ["_catalog"]  # no image, no sidecar...
    [entry] = (tmp_path / "_catalog" / "journal").iterdir()  # ...but the paid job, for the next run to collect
    assert json.loads(entry.read_text())["key"] == "CUT"


def test_expired_result_url_names_the_job(simulator, monkeypatch, tmp_path, capsys):
    dr = run_dag(
        "gptimage_generate",
        monkeypatch,
        GPTIMAGE_TEST_PROMPT="late pickup [sim:expired]",
        GPTIMAGE_TEST_DESTINATION=tmp_path.as_uri(),
    )
    assert dr.state == "failed"
    out = capsys.readouterr().out
    assert "regenerate" in out.lower()
    assert list(tmp_path.glob("*.png")) == []


EXPIRED = {"GPTIMAGE_TEST_PROMPT": "gone by morning [sim:expired]", "GPTIMAGE_TEST_FILENAME": "LATE-1"}


def test_an_expired_result_is_forgotten_so_the_next_run_pays_for_a_new_job(simulator, monkeypatch, tmp_path, capsys):
    # Re-attaching to a job whose images are gone can never give the image: the journal entry ends with it.
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=tmp_path.as_uri(), **EXPIRED)
    assert dr.state == "failed"
    assert "GPTImageResultExpiredError" in capsys.readouterr().out
    assert list((tmp_path / "_catalog" / "journal").glob("*.json")) == []
    run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=tmp_path.as_uri(), **EXPIRED)
    assert simulator.stats().prompt_creates[EXPIRED["GPTIMAGE_TEST_PROMPT"]] == 2  # a new job, not the gone one


def test_a_later_run_replaces_a_journaled_job_whose_images_are_gone(simulator, monkeypatch, tmp_path, no_sleep):
    env = {"GPTIMAGE_TEST_DESTINATION": tmp_path.as_uri(), "GPTIMAGE_TEST_FILENAME": "MUG-7",
           "GPTIMAGE_TEST_PROMPT": "a speckled mug"}  # fmt: skip
    # Night 1: the job is paid for, but its copy fails (a 502 at every try): the journal keeps the job.
    simulator.inject("result", "html_error", times=6, status=502)
    assert run_dag("gptimage_generate", monkeypatch, **env).state == "failed"
    [entry] = (tmp_path / "_catalog" / "journal").glob("*.json")
    first_job = json.loads(entry.read_text())["job_id"]
    # Night 2: it re-attaches to that job, whose URL has expired by now (403): one new job, and the image.
    simulator.inject("result", "html_error", times=1, status=403)
    dr = run_dag("gptimage_generate", monkeypatch, **env)
    assert dr.state == "success"
    assert simulator.stats().prompt_creates["a speckled mug"] == 2
    kept = json.loads((tmp_path / "MUG-7.json").read_text())["job_id"]
    assert kept == xcom_value(dr, "generate")["job_id"] != first_job
    assert (tmp_path / "MUG-7.png").read_bytes().startswith(PNG)
    assert list((tmp_path / "_catalog" / "journal").glob("*.json")) == []


@needs_task_state_store
def test_a_retry_after_an_expired_result_creates_a_new_job(simulator, monkeypatch, tmp_path):
    dr = run_dag(
        "gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=tmp_path.as_uri(), GPTIMAGE_TEST_RETRIES="1",
        **EXPIRED,
    )  # fmt: skip
    assert dr.state == "failed"  # [sim:expired]: every job's images are gone
    assert simulator.stats().prompt_creates[EXPIRED["GPTIMAGE_TEST_PROMPT"]] == 2  # try 2 did not re-attach


def test_success_without_images_is_a_clear_error(simulator, monkeypatch, capsys):
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_PROMPT="nothing back [sim:zero-images]")
    assert dr.state == "failed"
    assert "returned no result URLs" in capsys.readouterr().out


@needs_dag_test_assets
def test_asset_event_describes_what_was_written(simulator, monkeypatch, tmp_path):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dr = run_dag(
        "gptimage_generate_asset", monkeypatch, GPTIMAGE_TEST_DESTINATION=tmp_path.as_uri(), GPTIMAGE_TEST_FILENAME="A1"
    )
    assert dr.state == "success"
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "gptimage_test_images", AssetEvent.source_run_id == dr.run_id)
        ).all()
        extras = [event.extra for event in events]
    assert len(extras) == 1
    assert extras[0]["output_uris"] == [(tmp_path / "A1.png").as_uri()]
    assert extras[0]["job_id"] == xcom_value(dr, "generate")["job_id"]
