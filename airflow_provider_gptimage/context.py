"""Facts about the running task instance the operators and the sensor need: its try, its names, its events.

None of these decides anything about the API (that is :mod:`airflow_provider_gptimage.protocol`'s job); they
read Airflow's task context.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_gptimage.protocol import request_id


def current_try(context: Mapping[str, Any]) -> int | None:
    """Return the running try's number (``None`` outside a task instance)."""
    ti = context.get("ti") or context.get("task_instance")
    number = getattr(ti, "try_number", None)
    return number if isinstance(number, int) else None


def is_stale_resume(context: Mapping[str, Any], deferred_in_try: int | None) -> bool:
    """Return whether a resume after deferral belongs to an earlier try than the running one.

    Airflow 3.0.x and 3.1.0 keep ``next_method`` when a task that failed after resuming is retried
    (apache/airflow#56704, fixed in 3.1.1), so the retry jumps straight to ``execute_complete`` with the
    previous try's trigger event instead of running ``execute``. The operator and sensor record the try
    they deferred in, and restart from ``execute`` when it is not the running one.

    :param context: the task's context.
    :param deferred_in_try: the ``try_number`` passed to ``defer(kwargs=...)``; ``None`` when the task
        deferred without it (e.g. a deferral from an earlier version of this provider).
    """
    current = current_try(context)
    return deferred_in_try is not None and current is not None and current != deferred_in_try


def request_id_prefix(context: Mapping[str, Any]) -> str:
    """Name the task instance and try in every ``X-Request-ID`` (dag, run, task, map index, try)."""
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return "airflow"
    map_index = getattr(ti, "map_index", -1)
    return request_id(
        "airflow",
        getattr(ti, "dag_id", None),
        getattr(ti, "run_id", None),
        getattr(ti, "task_id", None),
        f"map{map_index}" if map_index is not None and map_index >= 0 else None,
        f"try{getattr(ti, 'try_number', 0)}",
    )


def task_provenance(context: Mapping[str, Any]) -> dict[str, Any]:
    """The task instance that wrote an output (dag, run, task, map index), for the provenance sidecars."""
    ti = context.get("ti")
    return {name: getattr(ti, name, None) for name in ("dag_id", "run_id", "task_id", "map_index")}


def annotate_asset_events(context: Mapping[str, Any], outlets: Sequence[Any], extra: Mapping[str, Any]) -> None:
    """Describe what was written in the asset events the task emits for its ``Asset`` outlets.

    Airflow emits one event per outlet when the task succeeds; ``extra`` (e.g. the job id and the URIs of
    the copies) travels with it, so a DAG scheduled on the asset knows which images are new.
    """
    from airflow.sdk import Asset

    events = context.get("outlet_events")
    if events is None:
        return
    for outlet in outlets or ():
        if isinstance(outlet, Asset):
            events[outlet].extra.update(extra)
