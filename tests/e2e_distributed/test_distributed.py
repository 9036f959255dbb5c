"""Scenarios on Airflow's distributed engine: CeleryExecutor, Redis, PostgreSQL, two workers, two triggerers.

What LocalExecutor and SQLite hide, shown with real services: tasks spread over two workers and resumed on
another worker than the one that created the job, triggers adopted by another triggerer after a crash,
concurrent writes to ``task_state_store`` and to one destination folder, a broker holding task messages.
Every scenario asserts exactly one ``createTask`` per image at the simulator and every image in its
destination. They run in file order on one stack; the last one inspects what all the others left behind.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gptimage.simulator.client import SimulatorClient
from tests.e2e.helpers import batch_progress, new_run_id, polls_of, task_instance, wait_for_run, wait_for_ti_state
from tests.e2e.processes import iter_files, wait_until
from tests.e2e.stack import FAKE_API_KEY
from tests.e2e_distributed.helpers import (
    assert_one_create_each,
    assert_outputs,
    destination_files,
    executions_by_worker,
    trigger_holders,
    triggers_by_triggerer,
    worker_running,
)
from tests.e2e_distributed.names import (
    BATCH_COUNT,
    CATALOG_COUNT,
    INCREMENTAL_ADDED,
    INCREMENTAL_CHANGED,
    KILLS_COUNT,
    KILLS_WINDOW,
    batch_prompt,
    catalog_prompt,
    incremental_products,
)
from tests.e2e_distributed.stack import TRIGGERERS, WORKERS, DistributedStack

pytestmark = pytest.mark.e2e

CATALOG = "gptimage_dist_catalog"
BATCH = "gptimage_dist_batch"
IN_WORKER = "gptimage_dist_in_worker"
KILLS = "gptimage_dist_batch_kills"
INCREMENTAL = "gptimage_dist_incremental_catalog"
RUN_TIMEOUT = 420.0
#: Broker snapshots taken while scenario 1 runs, searched for the API key by the last scenario.
BROKER_SNAPSHOTS: list[dict[str, Any]] = []


# ---------------------------------------------------------------------------------------------- building blocks
def catalog_night(stack: DistributedStack, run_id: str, destination: Path) -> dict[str, str]:
    """Trigger one night of the mapped catalog into ``destination``; return its prompts by SKU.

    The building block of scenarios 1 and 2 (prompts naming the run: every night pays for every product);
    scenario 5 runs the incremental catalog instead.
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


def test_2_triggerer_sigkill_the_other_adopts_its_triggers(stack: DistributedStack, sim: SimulatorClient) -> None:
    """The triggerer holding the most triggers is SIGKILLed mid-wait: the other adopts them, every run succeeds
    with one ``createTask`` per image and no retry."""
    # Long enough that every task has deferred (8 worker slots for 40 tasks) well before its job ends.
    sim.configure(generation_seconds=60)
    run_id = new_run_id("failover")
    destination = stack.home / "outputs" / run_id
    prompts = catalog_night(stack, run_id, destination)

    def all_waiting() -> bool:
        states = [ti["state"] for ti in stack.api.task_instances(CATALOG, run_id, limit=1000)]
        holders = trigger_holders(stack)
        deferred = states.count("deferred")
        return set(states) <= {"deferred", "success"} and deferred > 0 and sum(map(bool, holders.values())) == deferred

    wait_until(all_waiting, 240, 0.5, lambda: f"every task deferred and held: {triggers_by_triggerer(stack)}")
    wait_until(lambda: polls_of(sim, run_id) >= CATALOG_COUNT, 60, 0.5, "the triggers' first polls")
    loads = triggers_by_triggerer(stack)
    victim = max(TRIGGERERS, key=lambda name: loads.get(name, 0))
    (survivor,) = set(TRIGGERERS) - {victim}
    orphaned = {trigger_id for trigger_id, host in trigger_holders(stack).items() if host == victim}
    print(f"\ntriggers per triggerer before the kill: {dict(loads)}; killing {victim}")
    stack.services[victim].kill()
    killed_at, polls_at_kill = time.monotonic(), polls_of(sim, run_id)

    def adoption_done() -> bool:
        """No trigger of the victim is left with it or unheld (those that fired meanwhile are gone)."""
        holders = trigger_holders(stack)
        return all(holders.get(trigger_id, survivor) == survivor for trigger_id in orphaned)

    wait_until(
        adoption_done, 60, 0.2, lambda: f"{survivor} to adopt {victim}'s triggers: {triggers_by_triggerer(stack)}"
    )
    took = time.monotonic() - killed_at
    holders = trigger_holders(stack)
    taken = {trigger_id for trigger_id in orphaned if holders.get(trigger_id) == survivor}
    print(f"{survivor} adopted {len(taken)} of the {len(orphaned)} triggers of {victim} {took:.1f}s after the kill")
    assert taken, "every orphaned trigger fired before it could be adopted: the scenario showed nothing"

    assert wait_for_run(stack, CATALOG, run_id, RUN_TIMEOUT) == "success"
    assert polls_of(sim, run_id) > polls_at_kill, "nothing polled after the kill"
    tis = stack.api.task_instances(CATALOG, run_id, limit=1000)
    assert {ti["try_number"] for ti in tis} == {1}, "a task needed a retry"
    assert_one_create_each(sim, prompts)
    assert_outputs(destination, prompts)


def test_3_worker_sigkill_retry_on_the_other_worker_reattaches(stack: DistributedStack, sim: SimulatorClient) -> None:
    """The worker polling a job is SIGKILLed (every process of it): the retry runs on the other worker and
    re-attaches to the job stored in ``task_state_store``; one ``createTask`` in all."""
    sim.configure(generation_seconds=20)
    run_id = new_run_id("worker-kill")
    destination = stack.home / "outputs" / run_id
    prompt = f"distributed: a fox in the snow ({run_id})"
    stack.api.trigger(IN_WORKER, run_id, {"prompt": prompt, "destination": str(destination)})

    # A poll of try 1 proves the create and the stored job id (see tests/e2e scenario 3).
    wait_until(lambda: polls_of(sim, run_id, try_number=1) >= 1, 120, 0.2, "try 1's first poll")
    ti = task_instance(stack, IN_WORKER, run_id)
    assert (ti["state"], ti["try_number"]) == ("running", 1)
    first = worker_running(stack, ti)
    stack.services[first].kill()

    assert wait_for_run(stack, IN_WORKER, run_id, RUN_TIMEOUT) == "success"
    ti = task_instance(stack, IN_WORKER, run_id)
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    assert ti["hostname"] != first and ti["hostname"] in WORKERS, ti["hostname"]
    assert_one_create_each(sim, {"image": prompt})
    log = stack.task_log(IN_WORKER, run_id, "generate", 2)
    assert "Re-attaching to job" in log, log[-3000:]
    assert len(list(destination.glob("*.png"))) == 1


def test_4_batch_worker_sigkills_mid_copy_and_mid_create_group(stack: DistributedStack, sim: SimulatorClient) -> None:
    """A batch of 30 (window 5) through two worker SIGKILLs: (b1) while try 1 copies the first window,
    (b2) while try 2 sleeps out a 429 right after a group of creates. Each try runs on the worker left alive;
    each item is created once (tests/e2e scenario 6 explains the one unsafe instant and the orphans)."""
    sim.configure(generation_seconds=10, active_task_limit=KILLS_WINDOW)
    run_id = new_run_id("batch-kills")
    destination = stack.home / "outputs" / run_id
    prompts = {f"sku-{i:02d}": batch_prompt(i, run_id) for i in range(KILLS_COUNT)}

    def unrecorded() -> set[str]:
        """Keys whose job the service created but ``task_state_store`` holds neither in flight nor done."""
        status, flight = batch_progress(stack, KILLS, run_id)
        recorded = set(flight) | {key for key, code in zip(prompts, status, strict=False) if code != "."}
        counts = sim.stats().prompt_creates
        return {key for key, prompt in prompts.items() if counts.get(prompt)} - recorded

    stack.api.trigger(KILLS, run_id, {"destination": str(destination)})
    wait_for_ti_state(stack, KILLS, run_id, "deferred", 180)
    wait_until(lambda: polls_of(sim, run_id) >= 1, 60, 0.2, "the batch trigger's first poll")
    assert sim.stats().creates == KILLS_WINDOW
    sim.configure(generation_seconds=4)
    # (b1) Two downloads answer, the third is held for 30 s: the resume is killed while it copies.
    sim.inject("result", "slow", times=2, delay=0)
    sim.inject("result", "slow", delay=30)
    wait_until(lambda: not sim.stats().pending_faults.get("result"), 120, 0.2, "the third download of try 1")
    ti = task_instance(stack, KILLS, run_id)
    assert (ti["state"], ti["try_number"]) == ("running", 1)
    first = worker_running(stack, ti)
    stack.services[first].kill()
    assert len(destination_files(destination)) == 4, sorted(destination_files(destination))
    status, flight = batch_progress(stack, KILLS, run_id)
    assert (status, len(flight)) == ("." * KILLS_COUNT, KILLS_WINDOW)
    assert unrecorded() == set(), "try 1 was killed with a create in flight"

    # (b2) Try 2 (on the other worker, once the scheduler has failed try 1 for its missing heartbeat) meets
    # a 429 whose Retry-After (30 s) it sleeps in the worker, with its creates stored.
    sim.inject("createTask", "http_429", retry_after=30)

    def sleeping_after_creates() -> bool:
        for _ in range(6):
            if sim.stats().responses_429 < 1 or unrecorded():
                return False
            time.sleep(0.5)
        return True

    wait_until(sleeping_after_creates, 180, 0.2, "try 2 to sleep out the 429 with its creates stored")
    ti = task_instance(stack, KILLS, run_id)
    assert (ti["state"], ti["try_number"]) == ("running", 2)
    second = worker_running(stack, ti)
    assert second != first
    stack.restart(first)  # try 3 needs a worker
    stack.services[second].kill()
    time.sleep(1)  # let creates that were on their way (if any) reach the simulator
    orphans = unrecorded()
    assert len(orphans) <= KILLS_WINDOW, orphans
    if orphans:
        warnings.warn(f"try 2 was killed with creates in flight: {sorted(orphans)} created twice", stacklevel=1)

    state = wait_for_run(stack, KILLS, run_id, RUN_TIMEOUT)
    ti = task_instance(stack, KILLS, run_id)
    assert state == "success", f"{ti}; Airflow state mismatches: {stack.state_mismatches(run_id)}"
    assert (ti["state"], ti["try_number"], ti["hostname"]) == ("success", 3, first)
    stats = sim.stats()
    assert stats.prompt_creates == {p: 1 + (key in orphans) for key, p in prompts.items()}
    assert stats.creates == KILLS_COUNT + len(orphans)
    assert stats.max_active_jobs <= KILLS_WINDOW
    assert stats.responses_429 == 1
    assert stats.result_downloads == KILLS_COUNT + 1  # every image once, plus the download held in (b1)
    assert_outputs(destination, prompts)
    assert batch_progress(stack, KILLS, run_id) == ("s" * KILLS_COUNT, {})


def test_5_incremental_catalog_second_night(stack: DistributedStack, sim: SimulatorClient) -> None:
    """Issue 11's second night on this topology: one product changed and one added cost exactly two creates,
    the replaced image moves to ``_history``, and the mapped tasks are labelled by key."""
    sim.configure(generation_seconds=2)
    folder = stack.home / "outputs" / "incremental-catalog"
    nights = {night: incremental_products(night) for night in (1, 2)}
    prompts = {night: {item["key"]: item["prompt"] for item in items} for night, items in nights.items()}

    first = new_run_id("night-1")
    stack.api.trigger(INCREMENTAL, first, {"destination": str(folder), "products": nights[1]})
    assert wait_for_run(stack, INCREMENTAL, first, RUN_TIMEOUT) == "success"
    assert_one_create_each(sim, prompts[1])
    assert_outputs(folder, prompts[1])

    sim.reset()
    second = new_run_id("night-2")
    stack.api.trigger(INCREMENTAL, second, {"destination": str(folder), "products": nights[2]})
    assert wait_for_run(stack, INCREMENTAL, second, RUN_TIMEOUT) == "success"
    paid = {key: prompts[2][key] for key in (INCREMENTAL_CHANGED, INCREMENTAL_ADDED)}
    assert_one_create_each(sim, paid)  # exactly two createTask requests
    assert_outputs(folder, prompts[2])
    generate = [ti for ti in stack.api.task_instances(INCREMENTAL, second, limit=100) if ti["task_id"] == "generate"]
    assert sorted(ti["rendered_map_index"] for ti in generate) == sorted(paid)
    replaced = [p for p in (folder / "_history" / INCREMENTAL_CHANGED).rglob("*.json")]
    assert [json.loads(p.read_text())["prompt"] for p in replaced] == [prompts[1][INCREMENTAL_CHANGED]]


def test_6_api_key_absent_from_logs_database_and_broker(stack: DistributedStack) -> None:
    """After every scenario: the fake API key is in no file under ``AIRFLOW_HOME`` (every service's and every
    task's log, the images and sidecars), not in a ``pg_dump`` of the metadata DB, not in the Redis broker."""
    key = FAKE_API_KEY.encode()
    BROKER_SNAPSHOTS.append(stack.redis.contents())
    broker_file = stack.service_log_dir / "redis-broker.json"
    broker_file.write_text(json.dumps(BROKER_SNAPSHOTS, indent=1))
    dump = stack.database_dump()  # also written to e2e-services/metadata.sql, scanned below

    files = list(iter_files(stack.home))
    task_logs = [p for p in files if p.name.startswith("attempt=")]
    assert any(f"dag_id={KILLS}" in str(p) for p in task_logs), "the batch-kills scenario's task logs are missing"
    service_logs = {p.stem for p in files if p.parent == stack.service_log_dir and p.suffix == ".log"}
    assert service_logs >= {*WORKERS, *TRIGGERERS, "scheduler", "api-server", "postgres", "redis"}, service_logs
    assert [str(p) for p in files if key in p.read_bytes()] == []

    for table in ("xcom", "rendered_task_instance_fields", "task_state_store", "job"):
        assert f"COPY public.{table} " in dump, f"{table} missing from the dump"
    assert "distributed catalog product 00 of" in dump, "rendered prompts missing from the dump"
    assert "gptimage_batch_live" in dump, "the batches' progress missing from the dump"
    assert FAKE_API_KEY not in dump

    # Kombu keeps each message base64-encoded in JSON; the snapshots hold them decoded too.
    messages = [body for snapshot in BROKER_SNAPSHOTS for entry in snapshot.values() for body in entry["decoded"]]
    # A task message's body holds the workload as JSON text inside JSON (its quotes escaped).
    assert any("dag_rel_path" in body for body in messages), "no task message seen in the broker: nothing to search"
    assert FAKE_API_KEY not in broker_file.read_text()
    assert all(FAKE_API_KEY not in body for body in messages)
