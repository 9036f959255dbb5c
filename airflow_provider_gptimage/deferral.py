"""``dag.test()`` resumes a deferred task without the kwargs it passed to ``defer()``: the operators keep a copy.

``dag.test()`` (Airflow 3.0.6 through at least 3.3.2) resumes a deferred task with the trigger's event alone:
``_run_task`` sets ``next_kwargs = {"event": ...}`` (fixed upstream by apache/airflow#69942); a real
triggerer adds the event to the kwargs instead. The batch operator carries its progress in those kwargs
when there is no ``task_state_store`` (Airflow < 3.3), and the generate operator its job's creation time and
its try's start, so under ``dag.test()`` only they also push them to an XCom of the task (one write per
deferral), where the resume finds them. An XCom lives exactly as long as the kwargs should: Airflow keeps a
task's XComs across a resume from deferral and clears them when a new try starts.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

#: XCom key of the copy of a deferral's kwargs kept for :func:`resumed_defer_kwargs`.
DEFER_KWARGS_XCOM_KEY = "gptimage_defer_kwargs"


def dag_test_drops_defer_kwargs() -> bool:
    """Whether the running task is in ``dag.test()``: recognised by the in-process supervisor channel it
    installs for its task runs (the class name checked on 3.0.6, 3.1.8, 3.2.2 and 3.3.2)."""
    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return type(comms).__name__ == "InProcessSupervisorComms"


def keep_defer_kwargs(context: Mapping[str, Any], kwargs: Mapping[str, Any]) -> None:
    """Under ``dag.test()``, also push a deferral's kwargs to an XCom of the task; elsewhere do nothing.

    :param context: the task's context.
    :param kwargs: the ``kwargs`` passed to ``defer()`` (JSON values).
    """
    ti = context.get("ti")
    if ti is not None and dag_test_drops_defer_kwargs():
        ti.xcom_push(key=DEFER_KWARGS_XCOM_KEY, value=dict(kwargs))


def resumed_defer_kwargs(context: Mapping[str, Any]) -> dict[str, Any]:
    """Return the kwargs :func:`keep_defer_kwargs` kept at the deferral the task resumes from (``{}`` if none).

    :param context: the task's context.
    """
    ti = context.get("ti")
    if ti is None or not dag_test_drops_defer_kwargs():
        return {}
    value = ti.xcom_pull(task_ids=ti.task_id, key=DEFER_KWARGS_XCOM_KEY, map_indexes=ti.map_index)
    return dict(value) if isinstance(value, Mapping) else {}


def lost_state(context: Mapping[str, Any]) -> Mapping[str, Any]:
    """The progress a resume without ``task_state_store`` must get from its defer kwargs, or a clear error:
    starting over would create (and pay for) every job in flight again, at every resume."""
    from airflow_provider_gptimage.exceptions import GPTImageError

    state = resumed_defer_kwargs(context).get("state")
    if not isinstance(state, Mapping):
        raise GPTImageError(
            "The batch resumed without its progress: the `state` passed to defer() is missing and this "
            "Airflow has no task_state_store (3.3+). Refusing to start the batch over, which would create "
            "and pay for its jobs in flight again; clear the task to restart it."
        )
    return state
