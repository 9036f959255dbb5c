"""Scenarios against real Airflow services: deferral, triggerer and worker crashes (one job, a batch), pools,
timeouts, secrets.

Each scenario triggers DAG runs through the REST API and asserts on what the simulator (creates per
prompt, polls per ``X-Request-ID``) and Airflow (task instance states, process titles, the metadata DB,
log files) recorded. They run in file order; scenario 8 inspects what all the others left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import warnings

import pytest

from airflow_provider_gptimage.simulator.client import SimulatorClient
from tests.e2e.helpers import (
    TASK,
    batch_progress,
    busy_slots,
    new_run_id,
    polls_of,
    task_instance,
    task_runner_pid,
    trigger_rows,
    wait_for_run,
    wait_for_ti_state,
)
from tests.e2e.processes import iter_files, wait_until
from tests.e2e.stack import FAKE_API_KEY, REPO, AirflowStack

pytestmark = pytest.mark.e2e

DEFERRED = "gptimage_e2e_deferred"
IN_WORKER = "gptimage_e2e_in_worker"
MAPPED = "gptimage_e2e_mapped"
TIMEOUT = "gptimage_e2e_timeout"
BATCH = "gptimage_e2e_batch"
#: Same values as in ``dags/gptimage_e2e_dags.py`` (not imported: that would define DAGs at collection).
MAPPED_POOL = "gptimage_e2e_pool"
MAPPED_COUNT = 50
BATCH_COUNT = 30
#: The batch's ``max_active_jobs``, and the simulator's active-task limit during scenario 6.
BATCH_WINDOW = 5
#: Longer than the DAGs' ``max_poll_interval`` (2 s): a live trigger polls at least once in this time.
QUIET_PERIOD = 5.0
TRIGGER_CLASSPATH = "airflow_provider_gptimage.triggers.gptimage.GPTImageTaskTrigger"
#: The shipped example scenario 7 copies into the stack's second DAG bundle.
EXAMPLES = REPO / "example_dags"
EXAMPLE_CATALOG = "example_gptimage_catalog"


# ---------------------------------------------------------------------------------------------- scenarios
def test_1_deferred_job_holds_no_executor_slot(stack: AirflowStack, sim: SimulatorClient) -> None:
    """While the image is generated the task instance is ``deferred`` and no executor slot is busy."""
    sim.configure(generation_seconds=20)
    run_id = new_run_id("deferred")
    prompt = f"scenario 1: a lighthouse at dusk ({run_id})"
    stack.api.trigger(DEFERRED, run_id, {"prompt": prompt})

    wait_for_ti_state(stack, DEFERRED, run_id, "deferred")
    wait_until(lambda: not busy_slots(stack), 60, 0.5, lambda: f"executor slots to free up: {busy_slots(stack)}")
    for _ in range(3):  # several looks while the job is still being generated
        ti = task_instance(stack, DEFERRED, run_id)
        assert ti["state"] == "deferred"
        assert busy_slots(stack) == []
        pool = stack.api.call("GET", "pools/default_pool")
        assert (pool["running_slots"], pool["queued_slots"], pool["deferred_slots"]) == (0, 0, 1)
        time.sleep(1)
    wait_until(lambda: polls_of(sim, run_id) >= 1, 60, 0.5, "the trigger's first poll")

    rows = trigger_rows(stack, run_id)
    assert len(rows) == 1, rows
    _, classpath, kwargs, triggerer_id = rows[0]
    assert classpath == TRIGGER_CLASSPATH
    assert triggerer_id is not None, "no triggerer picked the trigger up"
    assert FAKE_API_KEY not in str(kwargs)

    assert wait_for_run(stack, DEFERRED, run_id) == "success"
    stats = sim.stats()
    assert stats.prompt_creates.get(prompt) == 1
    assert stats.requests_without_auth == 0


def test_2_triggerer_sigkill_and_restart(stack: AirflowStack, sim: SimulatorClient) -> None:
    """A triggerer SIGKILLed mid-wait and started again: the task succeeds with one ``createTask``."""
    sim.configure(generation_seconds=25)
    run_id = new_run_id("triggerer-kill")
    prompt = f"scenario 2: a storm over the sea ({run_id})"
    stack.api.trigger(DEFERRED, run_id, {"prompt": prompt})

    wait_for_ti_state(stack, DEFERRED, run_id, "deferred")
    wait_until(lambda: polls_of(sim, run_id) >= 1, 60, 0.5, "the trigger's first poll")
    triggerer = stack.services["triggerer"]
    assert len(triggerer.members()) >= 2, "expected the triggerer and its trigger-runner subprocess"
    triggerer.kill()  # SIGKILL to every process of its session at once
    try:
        polls_at_kill = polls_of(sim, run_id)
        time.sleep(QUIET_PERIOD)
        assert polls_of(sim, run_id) == polls_at_kill, "something kept polling after the triggerer was killed"
        assert task_instance(stack, DEFERRED, run_id)["state"] == "deferred"
    finally:
        stack.restart("triggerer")
    assert wait_for_run(stack, DEFERRED, run_id) == "success"
    assert polls_of(sim, run_id) > polls_at_kill, "the restarted triggerer never polled the job"
    assert sim.stats().prompt_creates.get(prompt) == 1
    assert task_instance(stack, DEFERRED, run_id)["try_number"] == 1


def test_3_worker_sigkill_after_create_reattaches(stack: AirflowStack, sim: SimulatorClient) -> None:
    """The task runner SIGKILLed after ``createTask``: the retry re-attaches, one ``createTask`` in all."""
    sim.configure(generation_seconds=20)
    run_id = new_run_id("worker-kill")
    prompt = f"scenario 3: a fox in the snow ({run_id})"
    stack.api.trigger(IN_WORKER, run_id, {"prompt": prompt})

    # The operator stores the job id in task_state_store right after createTask and only then polls:
    # a poll from try 1 proves both the create and the stored id (a kill between the two is the one
    # window a retry cannot cover; it is not what this scenario is about).
    wait_until(lambda: polls_of(sim, run_id, try_number=1) >= 1, 120, 0.2, "try 1's first poll")
    assert sim.stats().prompt_creates.get(prompt) == 1
    ti = task_instance(stack, IN_WORKER, run_id)
    assert (ti["state"], ti["try_number"]) == ("running", 1)
    os.kill(task_runner_pid(stack, ti), signal.SIGKILL)

    assert wait_for_run(stack, IN_WORKER, run_id) == "success"
    ti = task_instance(stack, IN_WORKER, run_id)
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    assert sim.stats().prompt_creates.get(prompt) == 1, "the retry paid for a second image"
    assert polls_of(sim, run_id, try_number=2) >= 1
    stored = stack.query(
        "SELECT value FROM task_state_store WHERE dag_id = ? AND run_id = ? AND key = 'gptimage_job'",
        (IN_WORKER, run_id),
    )
    assert len(stored) == 1
    log = stack.task_log(IN_WORKER, run_id, TASK, 2)
    assert "Re-attaching to job" in log, log[-3000:]
    assert str(stored[0][0]).split('"job_id": "')[1].split('"')[0] in log


def test_4_mapped_50_images_through_a_pool_of_5(stack: AirflowStack, sim: SimulatorClient) -> None:
    """50 mapped images, a pool of 5 counting deferred tasks, a service limit of 5 active jobs: all succeed."""
    sim.reset()
    # 5 s per image: long enough that a trigger never fires before the scheduler has processed the
    # deferral's executor event (a shorter job hits Airflow's race apache/airflow#72716).
    sim.configure(generation_seconds=5, active_task_limit=5)
    stack.api.create_pool(MAPPED_POOL, 5, include_deferred=True)
    sim.inject("createTask", "http_409", times=3)  # a few 409s anyway: they must be retried, not fail a task
    run_id = new_run_id("mapped")
    try:
        stack.api.trigger(MAPPED, run_id)
        occupied, deferred = [], []

        def finished() -> str | None:
            pool = stack.api.call("GET", f"pools/{MAPPED_POOL}")
            occupied.append(pool["occupied_slots"])
            deferred.append(pool["deferred_slots"])
            state = stack.api.dag_run(MAPPED, run_id)["state"]
            return state if state in ("success", "failed") else None

        state = wait_until(finished, 600, 1.0, "the mapped run to finish")
    finally:
        sim.configure(active_task_limit=None)

    tis = stack.api.task_instances(MAPPED, run_id)
    assert len(tis) == MAPPED_COUNT
    failed = sorted(ti["map_index"] for ti in tis if ti["state"] != "success")
    assert not failed, f"map indexes {failed} failed; Airflow state mismatches: {stack.state_mismatches(run_id)}"
    assert {ti["try_number"] for ti in tis} == {1}, "a task needed a retry"
    assert state == "success"

    stats = sim.stats()
    expected = {f"e2e mapped image {i:02d} of {run_id}" for i in range(MAPPED_COUNT)}
    assert stats.prompt_creates == dict.fromkeys(expected, 1)
    assert stats.creates == MAPPED_COUNT
    assert stats.max_active_jobs <= 5
    # Only the injected 409s happened: the pool kept a sixth job from ever being submitted.
    assert stats.responses_409 == 3
    assert max(occupied) <= 5
    assert max(deferred) >= 1, "no task was ever seen deferred in the pool"


def test_5_operator_timeout_ends_a_job_that_never_finishes(stack: AirflowStack, sim: SimulatorClient) -> None:
    """The operator's ``timeout`` fails the task with a clear error, and no trigger is left behind."""
    run_id = new_run_id("timeout")
    prompt = f"scenario 5: a job that never finishes ({run_id}) [sim:stuck]"
    stack.api.trigger(TIMEOUT, run_id, {"prompt": prompt})

    assert wait_for_run(stack, TIMEOUT, run_id) == "failed"
    ti = task_instance(stack, TIMEOUT, run_id)
    assert (ti["state"], ti["try_number"]) == ("failed", 1)
    log = stack.task_log(TIMEOUT, run_id, TASK, 1)
    assert "GPTImageTimeoutError" in log, log[-3000:]
    assert "did not finish before its deadline" in log

    wait_until(lambda: not trigger_rows(stack), 90, 0.5, lambda: f"trigger rows to go: {trigger_rows(stack)}")
    assert stack.query("SELECT trigger_id FROM task_instance WHERE run_id = ?", (run_id,)) == [(None,)]
    polls = polls_of(sim, run_id)
    time.sleep(QUIET_PERIOD)
    assert polls_of(sim, run_id) == polls, "a trigger is still polling the timed-out job"
    assert sim.stats().prompt_creates.get(prompt) == 1


def test_6_batch_resumes_after_triggerer_and_worker_kills(stack: AirflowStack, sim: SimulatorClient) -> None:
    """A batch of 30 through a triggerer SIGKILL and two task runner SIGKILLs: each item created once.

    Window 5 against a service limit of 5. The kills: (a) the triggerer while the batch trigger polls the
    first window; (b1) try 1's task runner while it copies that window (two images copied, the simulator
    holds the third download), before any of it was stored; (b2) try 2's task runner while it sleeps out
    an injected 429's ``Retry-After``, right after a group of creates. The one unsafe instant
    (``batch/store.py``: a group of creates sent, its ids not yet stored) is avoided by waiting
    for every job the service created to be in ``task_state_store``; should a kill land there anyway, the
    jobs it orphaned are measured and may be the only duplicates (at most one group).
    """
    sim.reset()
    # 10 s for the first window, so that its trigger is still polling when the triggerer is killed; 4 s
    # afterwards (not shorter: Airflow's race apache/airflow#72716, see scenario 4).
    sim.configure(generation_seconds=10, active_task_limit=BATCH_WINDOW)
    run_id = new_run_id("batch")
    destination = stack.home / "batch-output" / run_id  # under AIRFLOW_HOME: scenario 8 scans it
    prompts = {f"sku-{i:02d}": f"e2e batch item {i:02d} of {run_id}" for i in range(BATCH_COUNT)}

    def unrecorded() -> set[str]:
        """Keys whose job the service created but ``task_state_store`` holds neither in flight nor done.

        The store is read first: whatever the simulator had created by the time it answers, and the
        store does not list, is not stored (or not yet)."""
        status, flight = batch_progress(stack, BATCH, run_id)
        recorded = set(flight) | {key for key, code in zip(prompts, status, strict=False) if code != "."}
        counts = sim.stats().prompt_creates
        return {key for key, prompt in prompts.items() if counts.get(prompt)} - recorded

    def visible_files() -> set[str]:
        """The destination's images and sidecars (not the hidden temporary files, nor the catalog's own folders)."""
        if not destination.exists():
            return set()
        return {p.name for p in destination.iterdir() if p.is_file() and not p.name.startswith(".")}

    try:
        stack.api.trigger(BATCH, run_id, {"destination": str(destination)})

        # (a) The triggerer, while the batch trigger polls the first window.
        wait_for_ti_state(stack, BATCH, run_id, "deferred")
        wait_until(lambda: polls_of(sim, run_id) >= 1, 60, 0.2, "the batch trigger's first poll")
        assert sim.stats().creates == BATCH_WINDOW
        stack.services["triggerer"].kill()
        polls_at_kill = polls_of(sim, run_id)
        assert task_instance(stack, BATCH, run_id)["state"] == "deferred"
        sim.configure(generation_seconds=4)
        # (b1) Armed for the resume that follows: two downloads answer, the third is held for 30 s.
        sim.inject("result", "slow", times=2, delay=0)
        sim.inject("result", "slow", delay=30)
        stack.restart("triggerer")
        wait_until(lambda: not sim.stats().pending_faults.get("result"), 120, 0.2, "the third download of try 1")
        ti = task_instance(stack, BATCH, run_id)
        assert (ti["state"], ti["try_number"]) == ("running", 1)
        os.kill(task_runner_pid(stack, ti), signal.SIGKILL)
        assert polls_of(sim, run_id) > polls_at_kill, "the restarted triggerer never polled the batch"
        # Copied but not recorded: the retry must find these by their sidecars, not download them again.
        assert len(visible_files()) == 4, sorted(visible_files())
        status, flight = batch_progress(stack, BATCH, run_id)
        assert (status, len(flight)) == ("." * BATCH_COUNT, BATCH_WINDOW)
        assert unrecorded() == set(), "try 1 was killed with a create in flight"

        # (b2) Try 2's first creates meet a 429 whose Retry-After (30 s) it sleeps in the worker.
        sim.inject("createTask", "http_429", retry_after=30)

        def sleeping_after_creates() -> bool:
            # Every create answered is stored, for 3 s in a row (the rest of a group sent with the 429
            # reaches the service well within that).
            for _ in range(6):
                if sim.stats().responses_429 < 1 or unrecorded():
                    return False
                time.sleep(0.5)
            return True

        wait_until(sleeping_after_creates, 120, 0.2, "try 2 to sleep out the 429 with its creates stored")
        ti = task_instance(stack, BATCH, run_id)
        assert (ti["state"], ti["try_number"]) == ("running", 2)
        os.kill(task_runner_pid(stack, ti), signal.SIGKILL)
        time.sleep(1)  # let creates that were on their way (if any) reach the simulator
        orphans = unrecorded()
        assert len(orphans) <= BATCH_WINDOW, orphans  # at most one group, which the window bounds
        if orphans:
            warnings.warn(f"try 2 was killed with creates in flight: {sorted(orphans)} created twice", stacklevel=1)

        state = wait_for_run(stack, BATCH, run_id)
    finally:
        sim.configure(active_task_limit=None)

    ti = task_instance(stack, BATCH, run_id)
    assert state == "success", f"{ti}; Airflow state mismatches: {stack.state_mismatches(run_id)}"
    assert (ti["state"], ti["try_number"]) == ("success", 3)
    stats = sim.stats()
    # Each item was created once; only jobs orphaned by a kill inside a create group (none expected) twice.
    assert stats.prompt_creates == {p: 1 + (key in orphans) for key, p in prompts.items()}
    assert stats.creates == BATCH_COUNT + len(orphans)
    assert stats.max_active_jobs <= BATCH_WINDOW
    assert stats.responses_429 == 1
    if not orphans:  # an orphan is unknown to the window and can meet the service's limit
        assert stats.responses_409 == 0
    # Every image downloaded once, plus the download held when try 1 was killed.
    assert stats.result_downloads == BATCH_COUNT + 1
    assert stats.requests_without_auth == 0

    assert visible_files() == {f"{key}.{ext}" for key in prompts for ext in ("png", "json")}
    # The hidden temporary file of the download killed in (b1) stays (a SIGKILL cleans nothing up); it was
    # never published under a final name.
    leftovers = [p.name for p in destination.iterdir() if p.name.startswith(".")]
    assert len(leftovers) <= 1 and all(".part-" in name for name in leftovers), leftovers
    job_ids = set()
    for key, prompt in prompts.items():
        sidecar = json.loads((destination / f"{key}.json").read_text())
        assert (sidecar["prompt"], sidecar["provenance"]["batch_key"]) == (prompt, key)
        assert sidecar["size"] == (destination / f"{key}.png").stat().st_size
        job_ids.add(sidecar["job_id"])
    assert len(job_ids) == BATCH_COUNT
    assert batch_progress(stack, BATCH, run_id) == ("s" * BATCH_COUNT, {})
    wait_until(lambda: not trigger_rows(stack, run_id), 60, 0.5, "the batch's trigger row to go")


def test_7_the_shipped_catalog_example_second_night_costs_two_jobs(stack: AirflowStack, sim: SimulatorClient) -> None:
    """``example_gptimage_catalog`` as shipped, no pool created: night 1 is its own ``@daily`` run; night 2,
    triggered through the REST API without a logical date with one product changed and one added, costs
    exactly two ``createTask`` requests, its mapped tasks labelled by SKU, the replaced image in history."""
    sim.reset()
    sim.configure(generation_seconds=2, active_task_limit=5)
    root = stack.home / "example-catalog"  # under AIRFLOW_HOME: scenario 8 scans it
    stack.api.set_variable("gptimage_catalog_root", root.as_uri())
    stack.api.set_variable("gptimage_catalog_products", "products.csv")
    shutil.copytree(EXAMPLES / "data", stack.examples_folder / "data")
    shutil.copy(EXAMPLES / f"{EXAMPLE_CATALOG}.py", stack.examples_folder)  # unpaused at creation: it runs
    try:
        stack.wait_for_dags([EXAMPLE_CATALOG])
        first = wait_until(lambda: next(iter(stack.api.dag_runs(EXAMPLE_CATALOG)), None), 120, 1.0, "a scheduled run")
        assert first["run_type"] == "scheduled"
        assert wait_for_run(stack, EXAMPLE_CATALOG, first["dag_run_id"], 600) == "success"
        night_1 = sim.stats()
        assert night_1.creates == 20
        # No pool: max_active_tis_per_dag=5 counted the deferred tasks, so the service never refused one.
        assert night_1.max_active_jobs <= 5
        assert night_1.responses_409 == 0

        sim.reset()
        stack.api.set_variable("gptimage_catalog_products", "products-next-night.csv")
        second = new_run_id("example-night-2")
        stack.api.trigger(EXAMPLE_CATALOG, second)  # no logical date, as `airflow dags trigger` makes it
        assert wait_for_run(stack, EXAMPLE_CATALOG, second, 300) == "success"
        assert stack.api.dag_run(EXAMPLE_CATALOG, second)["logical_date"] is None
        assert sim.stats().creates == 2
        tis = stack.api.task_instances(EXAMPLE_CATALOG, second)
        assert sorted(ti["rendered_map_index"] for ti in tis if ti["task_id"] == "generate") == ["MUG-001", "TRY-045"]
        assert "charcoal" in json.loads((root / "MUG-001.json").read_text())["prompt"]
        old = [json.loads(p.read_text())["prompt"] for p in (root / "_history" / "MUG-001").rglob("*.json")]
        assert len(old) == 1 and "cream" in old[0]
        assert (root / "index.html").exists()
    finally:
        stack.api.call("PATCH", f"dags/{EXAMPLE_CATALOG}", json={"is_paused": True})
        sim.configure(active_task_limit=None)


def test_8_api_key_never_written_anywhere(stack: AirflowStack) -> None:
    """No file under ``AIRFLOW_HOME`` (logs, DB, the batch's images and sidecars), XCom, rendered template,
    task state or trigger row holds the API key."""
    key = FAKE_API_KEY.encode()
    files = list(iter_files(stack.home))
    task_logs = [p for p in files if p.name.startswith("attempt=")]
    assert task_logs, "no task log was written: the search below would prove nothing"
    assert any(f"dag_id={BATCH}" in str(p) for p in task_logs), "the batch scenario's task logs are missing"
    assert any(p.suffix == ".json" and "batch-output" in p.parts for p in files), "no batch sidecar to check"
    assert [str(p) for p in files if key in p.read_bytes()] == []

    dump = stack.database_dump()
    for table in ("xcom", "rendered_task_instance_fields", "task_state_store"):
        count = stack.query(f"SELECT count(*) FROM {table}")[0][0]
        assert count > 0, f"{table} is empty: the search below would prove nothing"
    assert "scenario 1: a lighthouse at dusk" in dump, "rendered prompts missing from the dump"
    assert "e2e batch item 00 of" in dump, "the batch's rendered requests missing from the dump"
    assert "gptimage_batch_live" in dump, "the batch's progress missing from the dump"
    assert FAKE_API_KEY not in dump
    assert all(FAKE_API_KEY not in str(row) for row in trigger_rows(stack))
