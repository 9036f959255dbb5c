"""Helpers of the end-to-end scenarios: run ids, waits on DAG runs and task instances, the simulator's view
of a run, executor slots, task runner processes and trigger rows."""

from __future__ import annotations

import json
import uuid
from typing import Any

from airflow_provider_gptimage.simulator.client import SimulatorClient
from tests.e2e.processes import processes_titled, wait_until
from tests.e2e.stack import AirflowStack

#: The task id of every e2e DAG.
TASK = "generate"
#: Generous bound for one DAG run on a loaded 2-core machine (not an assertion on speed).
RUN_TIMEOUT = 240.0


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


def batch_progress(stack: AirflowStack, dag_id: str, run_id: str) -> tuple[str, dict[str, list[Any]]]:
    """What a batch task stored in ``task_state_store``: one status character per item (``.`` pending,
    ``s`` succeeded...) and the jobs in flight (``key -> {job_id, created_at, fingerprint}``); see
    :mod:`airflow_provider_gptimage.batch.records`."""
    rows = stack.query(
        "SELECT key, value FROM task_state_store WHERE dag_id = ? AND run_id = ? "
        "AND key IN ('gptimage_batch', 'gptimage_batch_live')",
        (dag_id, run_id),
    )
    values = {key: json.loads(value) for key, value in rows}
    status = str(values.get("gptimage_batch", {}).get("statuses", ""))
    return status, dict(values.get("gptimage_batch_live", {}).get("jobs") or {})
