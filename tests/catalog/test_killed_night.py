"""A night SIGKILLed mid-batch, then run again as a NEW DAG run of the same night: nothing is paid twice.

The new run shares nothing with the killed one in Airflow (another run id, so another ``task_state_store``):
only the destination's journal can tell it which jobs were already paid for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_dag, xcom_value

pytestmark = pytest.mark.usefixtures("airflow_db", "gptimage_conn")

PRODUCTS = [{"key": f"SKU-{i:02d}", "prompt": f"catalog photo of product {i}"} for i in range(12)]
CHILD = """
import os
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag("gptimage_catalog_batch").test()
"""


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_night_run_again_pays_for_nothing_twice(simulator, monkeypatch, tmp_path: Path):
    simulator.configure(generation_seconds=4.0)  # the jobs are still running when the worker dies
    env = {
        **os.environ,
        "GPTIMAGE_CATALOG_ITEMS": json.dumps(PRODUCTS),
        "GPTIMAGE_CATALOG_ROOT": tmp_path.as_uri(),
        "GPTIMAGE_CATALOG_CONN_ID": "",
        "GPTIMAGE_CATALOG_MAX_NEW": "",
    }
    journal = tmp_path / "_catalog" / "journal"
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: journal.is_dir() and len(list(journal.iterdir())) >= 4)
        wait_for(lambda: simulator.stats().creates == len(list(journal.iterdir())), timeout=10)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(30)
    paid_before = simulator.stats().creates
    assert 4 <= paid_before < len(PRODUCTS)  # killed mid-batch, with jobs in flight

    for key, value in env.items():
        if key.startswith("GPTIMAGE_CATALOG_"):
            monkeypatch.setenv(key, value)
    again = run_dag("gptimage_catalog_batch", monkeypatch)
    assert again.state == "success"
    stats = simulator.stats()
    assert stats.prompt_creates == {p["prompt"]: 1 for p in PRODUCTS}  # one job per image, across both runs
    assert stats.creates == len(PRODUCTS)
    result = xcom_value(again, "generate")
    assert result["succeeded"] == len(PRODUCTS)
    assert all((tmp_path / f"{p['key']}.png").exists() for p in PRODUCTS)
    assert result["catalog"]["counts"]["new"] == len(PRODUCTS)
    assert not list(journal.iterdir())
