"""What moved between the Airflow 3 releases this provider supports, in one place (import locations only).

Each helper tries the newest location first and falls back to the oldest supported release's
(Airflow 3.0.6, see ``pyproject.toml``). Behaviour that differs between releases is handled where it
matters: a retry resumed into the previous try's event in :mod:`.context`, ``dag.test()`` dropping defer
kwargs in :mod:`.deferral`.
"""

from __future__ import annotations

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


def path_conn_id(path: Any) -> str | None:
    """Return the connection id of an ``ObjectStoragePath`` (a property since Airflow 3.2; before, an option)."""
    try:
        return path.conn_id
    except AttributeError:  # Airflow 3.0 and 3.1 (universal-pathlib 0.2)
        return (getattr(path, "storage_options", None) or {}).get("conn_id")
