"""Session fixtures of the end-to-end suite: one Airflow stack and one simulator for all scenarios.

The stack is started once, and every process it started is stopped: at the end of the session, when a
test fails, when start-up fails half-way, on SIGINT, SIGTERM or SIGHUP (the last two turned into
``KeyboardInterrupt``, which ends the session and still runs the finalizers) and, as a last resort,
from ``atexit``. Set ``GPTIMAGE_E2E_KEEP_HOME=1`` to keep the temporary ``AIRFLOW_HOME`` (logs,
SQLite DB) for a post-mortem; its path is printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from airflow_provider_gptimage.simulator.client import SimulatorClient
from tests.e2e.processes import stopped_on_exit
from tests.e2e.stack import AirflowStack

#: DAGs of ``tests/e2e/dags`` the scenarios run.
E2E_DAG_IDS = [
    "gptimage_e2e_deferred",
    "gptimage_e2e_in_worker",
    "gptimage_e2e_mapped",
    "gptimage_e2e_timeout",
    "gptimage_e2e_batch",
]


@pytest.fixture(scope="session")
def stack() -> Iterator[AirflowStack]:
    """The running Airflow services and simulator, shared by every scenario."""
    airflow_stack = AirflowStack(keep_home=os.environ.get("GPTIMAGE_E2E_KEEP_HOME") == "1")
    print(f"\ne2e AIRFLOW_HOME: {airflow_stack.home}", file=sys.stderr)
    with stopped_on_exit(airflow_stack.stop):
        airflow_stack.start()
        airflow_stack.wait_for_dags(E2E_DAG_IDS)
        yield airflow_stack


@pytest.fixture(scope="session")
def sim(stack: AirflowStack) -> Iterator[SimulatorClient]:
    """Admin client of the stack's simulator (running in its own process)."""
    client = SimulatorClient(stack.simulator_url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _isolate_scenarios(stack: AirflowStack, sim: SimulatorClient) -> Iterator[None]:
    """Start each scenario with a running triggerer; after it, drop queued faults and end any DAG run it
    left running (when it failed early), so one failure does not cascade into the next scenarios."""
    triggerer = stack.services["triggerer"]
    if not triggerer.running():
        stack.restart("triggerer")
    yield
    sim.clear_faults()
    for run in stack.api.running_dag_runs():
        stack.api.set_run_state(run["dag_id"], run["dag_run_id"], "failed")
