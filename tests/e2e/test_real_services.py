"""Scenarios against real Airflow services: deferral, triggerer and worker crashes, pools, timeouts, secrets.

Each scenario triggers DAG runs through the REST API and asserts on what the simulator (creates per
prompt, polls per ``X-Request-ID``) and Airflow (task instance states, process titles, the metadata DB,
log files) recorded. They run in file order; scenario 6 inspects what all the others left behind.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import pytest

from airflow_provider_gptimage.simulator.client import SimulatorClient
from tests.e2e.processes import iter_files, processes_titled, wait_until
from tests.e2e.stack import FAKE_API_KEY, AirflowStack

pytestmark = pytest.mark.e2e

DEFERRED = "gptimage_e2e_deferred"
IN_WORKER = "gptimage_e2e_in_worker"
MAPPED = "gptimage_e2e_mapped"
TIMEOUT = "gptimage_e2e_timeout"
TASK = "generate"
#: Same values as in ``dags/gptimage_e2e_dags.py`` (not imported: that would define DAGs at collection).
MAPPED_POOL = "gptimage_e2e_pool"
MAPPED_COUNT = 50
#: Generous bound for one DAG run on a loaded 2-core machine (not an assertion on speed).
RUN_TIMEOUT = 240.0
#: Longer than the DAGs' ``max_poll_interval`` (2 s): a live trigger polls at least once in this time.
QUIET_PERIOD = 5.0
TRIGGER_CLASSPATH = "airflow_provider_gptimage.triggers.gptimage.GPTImageTaskTrigger"


# ---------------------------------------------------------------------------------------------- helpers
def new_run_id(label: str) -> str:
    """A unique, readable run id (it also appears in every ``X-Request-ID`` of the run's tasks)."""
    return f"e2e-{label}-{uuid.uuid4().hex[:8]}"


def wait_for_run(stack: AirflowStack, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
    """Wait until a DAG run ends; return ``success`` or ``failed``."""

    def finished() -> str | None:
        state = stack.api.dag_run(dag_id, run_id)["state"]
        return state if state in ("success", "failed") else None

    return wait_until(finished, timeout, 1.0, f"DAG run {dag_id}/{run_id} to finish")


def task_instance(stack: AirflowStack, dag_id: str, run_id: str, map_index: int = -1) -> dict[str, Any]:
    """The ``generate`` task instance of a run."""
    return stack.api.task_instance(dag_id, run_id, TASK, map_index)


def wait_for_ti_state(
    stack: AirflowStack, dag_id: str, run_id: str, state: str, timeout: float = 120.0
) -> dict[str, Any]:
    """Wait until the run's ``generate`` task instance is in ``state``; return it."""

    def reached() -> dict[str, Any] | None:
        ti = task_instance(stack, dag_id, run_id)
        if ti["state"] in ("success", "failed") and state not in ("success", "failed"):
            raise AssertionError(f"task instance ended ({ti['state']}) before reaching {state}")
        return ti if ti["state"] == state else None

    return wait_until(reached, timeout, 0.5, f"{dag_id}/{run_id} to be {state}")


def polls_of(sim: SimulatorClient, run_id: str, try_number: int | None = None) -> int:
    """``recordInfo`` requests the simulator received from a run's tasks (optionally one try only).

    The provider names the task instance and try in every ``X-Request-ID``:
    ``airflow:<dag>:<run>:<task>[:map<i>]:try<n>:recordInfo``.
    """
    ids = sim.stats().request_ids.get("recordInfo", [])
    wanted = f":{run_id}:"
    return sum(1 for rid in ids if wanted in rid and (try_number is None or f":try{try_number}:" in rid))


def busy_slots(stack: AirflowStack) -> list[str]:
    """What holds an executor slot right now; ``[]`` when nothing does.

    Checks the API (no running or queued task instance anywhere) and the processes of the scheduler's
    session, where the LocalExecutor's workers and the task supervisors/runners they fork live: every
    worker must be titled ``... LocalExecutor: <idle>`` and no ``airflow worker -- <ti id>`` task
    runner (nor ``airflow supervisor: ...``) may exist.
    """
    busy = [
        f"{ti['state']} task instance {ti['dag_id']}/{ti['dag_run_id']}/{ti['task_id']}"
        for ti in stack.api.task_instances(state=["running", "queued"])
    ]
    members = set(stack.services["scheduler"].members())
    for prefix in ("airflow worker -- ", "airflow supervisor:"):
        for pid, title in processes_titled(prefix).items():
            if pid not in members:
                continue
            if title.startswith("airflow worker -- LocalExecutor:") and title.endswith("<idle>"):
                continue
            busy.append(f"process {pid}: {title}")
    return busy


def task_runner_pid(stack: AirflowStack, ti: dict[str, Any]) -> int:
    """The pid of the process running a task instance's ``execute()``.

    The task SDK's runner retitles itself ``airflow worker -- <task instance uuid>`` (``setproctitle``),
    and the supervisor reports the same pid to the API server (``pid`` of the task instance); the two
    sources must agree, and the process must belong to the scheduler's session (forked by the
    LocalExecutor), so nothing else on the machine can be hit.
    """
    title = f"airflow worker -- {ti['id']}"
    members = set(stack.services["scheduler"].members())
    found = [pid for pid, t in processes_titled(title).items() if t == title and pid in members]
    assert len(found) == 1, f"expected one task runner titled {title!r}, found {found}"
    assert found[0] == ti["pid"], f"process title says pid {found[0]}, the API says {ti['pid']}"
    return found[0]


def trigger_rows(stack: AirflowStack, run_id: str | None = None) -> list[tuple[Any, ...]]:
    """Rows of the ``trigger`` table: all, or those a task instance of ``run_id`` waits on."""
    if run_id is None:
        return stack.query("SELECT id, classpath, kwargs, triggerer_id FROM trigger")
    return stack.query(
        "SELECT t.id, t.classpath, t.kwargs, t.triggerer_id FROM trigger t "
        "JOIN task_instance ti ON ti.trigger_id = t.id WHERE ti.run_id = ?",
        (run_id,),
    )


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


def test_6_api_key_never_written_anywhere(stack: AirflowStack) -> None:
    """No file under ``AIRFLOW_HOME`` (logs, DB), XCom, rendered template or trigger row holds the API key."""
    key = FAKE_API_KEY.encode()
    files = list(iter_files(stack.home))
    task_logs = [p for p in files if p.name.startswith("attempt=")]
    assert task_logs, "no task log was written: the search below would prove nothing"
    assert [str(p) for p in files if key in p.read_bytes()] == []

    dump = stack.database_dump()
    for table in ("xcom", "rendered_task_instance_fields", "task_state_store"):
        count = stack.query(f"SELECT count(*) FROM {table}")[0][0]
        assert count > 0, f"{table} is empty: the search below would prove nothing"
    assert "scenario 1: a lighthouse at dusk" in dump, "rendered prompts missing from the dump"
    assert FAKE_API_KEY not in dump
    assert all(FAKE_API_KEY not in str(row) for row in trigger_rows(stack))
