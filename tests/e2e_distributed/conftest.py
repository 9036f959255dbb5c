"""Session fixtures of the distributed suite: one CeleryExecutor stack (PostgreSQL, Redis, two workers, two
triggerers) and one simulator for every scenario, stopped however the session ends (see
:func:`tests.e2e.processes.stopped_on_exit`). ``GPTIMAGE_E2E_KEEP_HOME=1`` keeps the ``AIRFLOW_HOME``
(logs, the ``pg_dump`` and the Redis dump) for a post-mortem; its path is printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

from airflow_provider_gptimage.simulator.client import SimulatorClient
from tests.e2e.processes import stopped_on_exit
from tests.e2e_distributed.stack import DistributedStack

DAG_IDS = [
    "gptimage_dist_catalog",
    "gptimage_dist_batch",
    "gptimage_dist_in_worker",
    "gptimage_dist_batch_kills",
    "gptimage_dist_incremental_catalog",
]


@pytest.fixture(scope="session")
def stack() -> Iterator[DistributedStack]:
    """The running distributed stack and simulator, shared by every scenario."""
    distributed = DistributedStack(keep_home=os.environ.get("GPTIMAGE_E2E_KEEP_HOME") == "1")
    print(f"\ne2e-distributed AIRFLOW_HOME: {distributed.home}", file=sys.stderr)
    with stopped_on_exit(distributed.stop):
        distributed.start()
        distributed.wait_for_dags(DAG_IDS)
        yield distributed


@pytest.fixture(scope="session")
def sim(stack: DistributedStack) -> Iterator[SimulatorClient]:
    """Admin client of the stack's simulator."""
    client = SimulatorClient(stack.simulator_url)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _isolate_scenarios(stack: DistributedStack, sim: SimulatorClient) -> Iterator[None]:
    """Start each scenario with every service running and fresh simulator counters; after it, drop queued
    faults and end any DAG run it left running, so one failure does not cascade into the next scenarios."""
    for name, service in stack.services.items():
        if not service.running():
            stack.restart(name)
    sim.reset()
    yield
    sim.clear_faults()
    sim.configure(active_task_limit=None)
    for run in stack.api.running_dag_runs():
        stack.api.set_run_state(run["dag_id"], run["dag_run_id"], "failed")
