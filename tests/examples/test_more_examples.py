"""The quickstart, sensor and custom-trigger examples (code the how-to pages include) run against the simulator."""

from __future__ import annotations

import pytest

from tests.conftest import REPO, dagbag_class

EXAMPLES = REPO / "example_dags"


def example_dag(monkeypatch: pytest.MonkeyPatch, dag_id: str, **env: str):
    for key, value in {"GPTIMAGE_EXAMPLE_POLL_SECONDS": "0.1", **env}.items():
        monkeypatch.setenv(key, value)
    bag = dagbag_class()(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_the_sensor_example_collects_the_job_the_hook_started(simulator, monkeypatch, tmp_path):
    dag = example_dag(monkeypatch, "example_gptimage_sensor", AIRFLOW_VAR_GPTIMAGE_OUTPUT_ROOT=tmp_path.as_uri())
    run = dag.test()
    assert run.state == "success"
    assert simulator.stats().creates == 1
    assert [p.name for p in (tmp_path / "sensor").glob("*.png")] == ["banner.png"]


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_the_custom_trigger_example_returns_the_result_urls(simulator, monkeypatch):
    from tests.conftest import xcom_value

    run = example_dag(monkeypatch, "example_gptimage_custom_trigger").test()
    assert run.state == "success"
    urls = xcom_value(run, "sketch")
    assert len(urls) == 1 and urls[0].startswith(simulator.url)


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_the_quickstart_runs_without_a_logical_date(simulator, monkeypatch, tmp_path):
    """A run triggered from the CLI or the REST API has no logical date: no task may need ``{{ ds }}``."""
    dag = example_dag(monkeypatch, "example_gptimage_quickstart", AIRFLOW_VAR_GPTIMAGE_OUTPUT_ROOT=tmp_path.as_uri())
    run = dag.test(logical_date=None)
    assert run.state == "success"
    assert run.logical_date is None
    assert simulator.stats().creates == 2
    day = tmp_path / "quickstart" / run.run_after.date().isoformat()
    assert sorted(p.name for p in day.glob("*.png")) == ["hero.png", "thumbnail.png"]
