"""What moved between the Airflow 3 releases this provider supports, in one place.

Each helper tries the newest location first and falls back to the oldest supported release's
(Airflow 3.0.6, see ``pyproject.toml``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def has_fs(scheme: str) -> bool:
    """Return whether Airflow's object storage has a filesystem registered for ``scheme``."""
    try:
        from airflow.sdk.io import has_fs as _has_fs
    except ImportError:  # Airflow 3.0: the registry is still in airflow.io
        from airflow.io import has_fs as _has_fs  # type: ignore[no-redef,attr-defined]
    return _has_fs(scheme)


def mask_secret(secret: str) -> None:
    """Register ``secret`` with Airflow's secrets masker (and, in a task, the supervisor's): logs show ``***``."""
    try:
        from airflow.sdk.log import mask_secret as _mask_secret
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import mask_secret as _mask_secret  # type: ignore[no-redef]
    _mask_secret(secret)


async def amask_secret(secret: str) -> None:
    """:func:`mask_secret` from a coroutine (the triggerer): never blocks the event loop on the supervisor."""
    try:
        from airflow.sdk.log import amask_secret as _amask_secret
    except ImportError:  # before 3.2: this process's masker only (the trigger's own log lines are masked there)
        try:
            from airflow.sdk.execution_time.secrets_masker import _secrets_masker
        except ImportError:
            from airflow.sdk._shared.secrets_masker import _secrets_masker  # type: ignore[no-redef]
        _secrets_masker().add_mask(secret)
        return
    await _amask_secret(secret)


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


def path_conn_id(path: Any) -> str | None:
    """Return the connection id of an ``ObjectStoragePath`` (a property since Airflow 3.2; before, an option)."""
    try:
        return path.conn_id
    except AttributeError:  # Airflow 3.0 and 3.1 (universal-pathlib 0.2)
        return (getattr(path, "storage_options", None) or {}).get("conn_id")


#: XCom key of the copy of a deferral's kwargs kept for :func:`resumed_defer_kwargs`.
DEFER_KWARGS_XCOM_KEY = "gptimage_defer_kwargs"


def dag_test_drops_defer_kwargs() -> bool:
    """Return whether the running task is in ``dag.test()``, which resumes a deferred task with the trigger's
    event alone: the kwargs it passed to ``defer()`` are dropped (Airflow 3.0.6 through at least 3.3.2:
    ``_run_task`` sets ``next_kwargs = {"event": ...}``; fixed upstream by apache/airflow#69942). A real
    triggerer adds the event to those kwargs instead, so only ``dag.test()`` needs the copy.

    Recognised by the in-process supervisor channel ``dag.test()`` installs for its task runs (the class name
    checked on 3.0.6, 3.1.8, 3.2.2 and 3.3.2).
    """
    import sys

    task_runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    return type(comms).__name__ == "InProcessSupervisorComms"


def keep_defer_kwargs(context: Mapping[str, Any], kwargs: Mapping[str, Any]) -> None:
    """Under ``dag.test()``, also push a deferral's kwargs to an XCom of the task (one write per deferral),
    where :func:`resumed_defer_kwargs` finds them; elsewhere do nothing.

    An XCom lives exactly as long as the kwargs should: Airflow keeps a task's XComs across a resume from
    deferral and clears them when a new try starts.

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
