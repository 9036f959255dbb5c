"""A hostile API under Airflow's own dag.test(): whatever the service sends back, the key reaches no log line,
XCom row, trigger row, sidecar or exception, and no answer forges a log line."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import FAKE_API_KEY, connection_json, database_text, run_dag, xcom_value
from tests.hostile.api import RECORD, Answer, HostileAPI, record

pytestmark = pytest.mark.usefixtures("airflow_db")

FORGED = "2026-01-01T00:00:00Z [info     ] Task succeeded, all images kept"


@pytest.fixture
def api(monkeypatch):
    with HostileAPI() as server:
        monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(server.url))
        yield server


def echo_of_everything(query: dict) -> bytes:
    """A record of the job asked for that echoes the key in every field it can, and forges a log line."""
    job_id = query["taskId"][0]
    return json.dumps(
        record(
            job_id,
            state="fail",
            failCode=f"E-{FAKE_API_KEY}",
            failMsg=f"key {FAKE_API_KEY} rejected\n{FORGED}\x1b[2K",
            param=json.dumps({"model": "gpt-image-2-text-to-image", "input": {"prompt": FAKE_API_KEY}}),
            model=FAKE_API_KEY,
        )
    ).encode()


def assert_no_leak(text: str) -> None:
    assert FAKE_API_KEY not in text
    assert not re.search(r"^" + re.escape(FORGED), text, re.MULTILINE), "a forged line reached the log"
    assert "\x1b[2K" not in text


def test_a_failed_job_echoing_the_key_leaks_it_nowhere(api, monkeypatch, airflow_db, capfd, tmp_path):
    api.answer(RECORD, Answer(body=echo_of_everything))
    dr = run_dag(
        "gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=str(tmp_path), GPTIMAGE_TEST_FILENAME="hero"
    )
    assert dr.state == "failed"
    (ti,) = dr.get_task_instances()
    assert ti.state == "failed"
    out = capfd.readouterr()
    assert "failed on the service" in out.out + out.err
    assert_no_leak(out.out + out.err)
    assert_no_leak(database_text(airflow_db))  # XCom, trigger rows, rendered fields
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no image, no sidecar, no journal entry left
    assert api.creates == 1


def test_a_successful_job_echoing_the_key_keeps_clean_records(api, monkeypatch, airflow_db, capfd, tmp_path):
    def success(query: dict) -> bytes:
        return json.dumps(
            record(
                query["taskId"][0],
                param=json.dumps({"input": {"prompt": f"echo {FAKE_API_KEY}", "aspect_ratio": "3:2"}}),
                resultJson=json.dumps({"resultUrls": [f"{api.image_url()}?sig={FAKE_API_KEY}"]}),
                model=f"gpt-image-2 {FAKE_API_KEY}",
            )
        ).encode()

    api.answer(RECORD, Answer(body=success))
    dr = run_dag(
        "gptimage_generate", monkeypatch, GPTIMAGE_TEST_DESTINATION=str(tmp_path), GPTIMAGE_TEST_FILENAME="hero"
    )
    assert dr.state == "success"
    result = xcom_value(dr, "generate")
    assert result["output_uris"] == [f"file://{tmp_path}/hero.png"]
    assert result["result_urls"] == [f"{api.image_url()}?sig=***"]
    sidecar = (tmp_path / "hero.json").read_text()
    assert "echo ***" in sidecar
    assert_no_leak(sidecar)
    out = capfd.readouterr()
    assert_no_leak(out.out + out.err)
    assert_no_leak(database_text(airflow_db))


def test_a_batch_item_echoing_the_key_leaks_it_nowhere(api, monkeypatch, airflow_db, capfd, tmp_path):
    api.answer(RECORD, Answer(body=echo_of_everything))
    dr = run_dag(
        "gptimage_batch",
        monkeypatch,
        GPTIMAGE_BATCH_N="3",
        GPTIMAGE_BATCH_DESTINATION=str(tmp_path),
        GPTIMAGE_BATCH_POLICY="report",
    )
    assert dr.state == "success"
    report = xcom_value(dr, "generate")
    assert report["failed"] == 3
    assert all("failed on the service" in item["error"] for item in report["items"])
    out = capfd.readouterr()
    assert_no_leak(out.out + out.err)
    assert_no_leak(database_text(airflow_db))
    assert api.creates == 3
