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
    """Return the connection id of an ``ObjectStoragePath`` (a property since Airflow 3.1; before, an option)."""
    try:
        return path.conn_id
    except AttributeError:  # Airflow 3.0 with universal-pathlib 0.2
        return (getattr(path, "storage_options", None) or {}).get("conn_id")
