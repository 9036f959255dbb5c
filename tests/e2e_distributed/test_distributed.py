"""Scenarios on Airflow's distributed engine: CeleryExecutor, Redis, PostgreSQL, two workers, two triggerers.

What LocalExecutor and SQLite hide, shown with real services: tasks spread over two workers and resumed on
another worker than the one that created the job, triggers adopted by another triggerer after a crash,
concurrent writes to ``task_state_store`` and to one destination folder, a broker holding task messages.
Every scenario asserts exactly one ``createTask`` per image at the simulator and every image in its
destination. They run in file order on one stack; the last one inspects what all the others left behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gptimage.simulator.client import SimulatorClient
from tests.e2e.helpers import batch_progress, new_run_id, wait_for_run
from tests.e2e_distributed.dags.gptimage_distributed_dags import (
    BATCH_COUNT,
    CATALOG_COUNT,
    batch_prompt,
    catalog_prompt,
)
from tests.e2e_distributed.helpers import (
    assert_one_create_each,
    assert_outputs,
    executions_by_worker,
)
from tests.e2e_distributed.stack import WORKERS, DistributedStack

pytestmark = pytest.mark.e2e

CATALOG = "gptimage_dist_catalog"
BATCH = "gptimage_dist_batch"
IN_WORKER = "gptimage_dist_in_worker"
KILLS = "gptimage_dist_batch_kills"
RUN_TIMEOUT = 420.0
#: Broker snapshots taken while scenario 1 runs, searched for the API key by the last scenario.
BROKER_SNAPSHOTS: list[dict[str, Any]] = []


# ---------------------------------------------------------------------------------------------- building blocks
def catalog_night(stack: DistributedStack, run_id: str, destination: Path) -> dict[str, str]:
    """Trigger one night of the mapped catalog into ``destination``; return its prompts by SKU.

    The building block of the catalog scenarios: issue 11's second night calls it twice on one folder.
    """
    stack.api.trigger(CATALOG, run_id, {"destination": str(destination)})
    return {f"sku-{i:02d}": catalog_prompt(i, run_id) for i in range(CATALOG_COUNT)}


def ti_ids(stack: DistributedStack, dag_id: str, run_id: str) -> set[str]:
    """Ids of every task instance of a run."""
    return {ti["id"] for ti in stack.api.task_instances(dag_id, run_id, limit=1000)}


@contextmanager
def broker_snapshots(stack: DistributedStack, every: float = 1.0) -> Iterator[list[dict[str, Any]]]:
    """Read the Redis broker's every key (by type, and its ``DUMP``) every ``every`` seconds while the block runs."""
    snapshots: list[dict[str, Any]] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            snapshots.append(stack.redis.contents())

    thread = threading.Thread(target=loop, name="broker-snapshots", daemon=True)
    thread.start()
    try:
        yield snapshots
    finally:
        stop.set()
        thread.join(30)
        snapshots.append(stack.redis.contents())


# ---------------------------------------------------------------------------------------------- scenarios
def test_1_catalog_and_batch_across_both_workers(stack: DistributedStack, sim: SimulatorClient) -> None:
    """A mapped catalog (40 products, ``expand_kwargs``) and a batch of 300 items at once: both workers run
    tasks, every image is created once and lands in its destination."""
    sim.configure(generation_seconds=5)
    catalog_run, batch_run = new_run_id("catalog"), new_run_id("batch")
    catalog_dest = stack.home / "outputs" / catalog_run
    batch_dest = stack.home / "outputs" / batch_run
    with broker_snapshots(stack) as snapshots:
        prompts = catalog_night(stack, catalog_run, catalog_dest)
        stack.api.trigger(BATCH, batch_run, {"destination": str(batch_dest)})
        batch_prompts = {f"item-{i:03d}": batch_prompt(i, batch_run) for i in range(BATCH_COUNT)}
        assert wait_for_run(stack, CATALOG, catalog_run, RUN_TIMEOUT) == "success"
        assert wait_for_run(stack, BATCH, batch_run, RUN_TIMEOUT) == "success"
    BROKER_SNAPSHOTS.extend(snapshots)

    assert_one_create_each(sim, {**prompts, **batch_prompts})
    assert_outputs(catalog_dest, prompts)
    assert_outputs(batch_dest, batch_prompts)
    catalog_tis = stack.api.task_instances(CATALOG, catalog_run, limit=1000)
    assert len(catalog_tis) == CATALOG_COUNT
    assert {ti["try_number"] for ti in catalog_tis} == {1}
    by_worker = executions_by_worker(stack, ti_ids(stack, CATALOG, catalog_run) | ti_ids(stack, BATCH, batch_run))
    batch_by_worker = executions_by_worker(stack, ti_ids(stack, BATCH, batch_run))
    print(f"\nexecutions per worker: {dict(by_worker)}; of the batch: {dict(batch_by_worker)}")
    assert set(by_worker) == set(WORKERS), f"not every worker ran tasks: {dict(by_worker)}"
    assert {ti["hostname"] for ti in catalog_tis} <= set(WORKERS)
    assert batch_progress(stack, BATCH, batch_run) == ("s" * BATCH_COUNT, {})
    assert any(snapshot for snapshot in BROKER_SNAPSHOTS), "the broker never held a key: nothing to search"
