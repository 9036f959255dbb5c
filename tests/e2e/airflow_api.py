"""A small client of Airflow 3's public REST API (``/api/v2``), authenticated with a JWT from ``/auth/token``.

The stack runs the simple auth manager with ``simple_auth_manager_all_admins``, under which
``GET /auth/token`` hands out an admin token without credentials.
"""

from __future__ import annotations

import time
from typing import Any

import requests

#: Task instance states after which a try will not change any more.
FINISHED_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})

#: How many times :meth:`AirflowAPI.call` sends a request the API server answered with a database error.
DB_ERROR_TRIES = 5


def _locked(response: requests.Response) -> bool:
    """Whether the API server failed on its metadata DB (SQLite locked), not on the request itself."""
    return response.status_code == 500 and "Database error" in response.text


class AirflowAPI:
    """Call the API server at ``url``.

    :param url: base URL of the api-server, e.g. ``http://127.0.0.1:8080``.
    :param timeout: seconds per request.
    """

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._token: str | None = None

    def close(self) -> None:
        """Release the HTTP session."""
        self._session.close()

    def _authenticate(self) -> None:
        response = self._session.get(f"{self.url}/auth/token", timeout=self.timeout)
        response.raise_for_status()
        self._token = response.json()["access_token"]
        self._session.headers["Authorization"] = f"Bearer {self._token}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request to ``/api/v2/<path>``; return the decoded JSON.

        A 401 gets a new token. A 500 whose body says ``Database error`` is tried again (up to
        :data:`DB_ERROR_TRIES` times in all): the stack's metadata DB is one SQLite file that the
        scheduler, triggerer and dag-processor write too, and a request that finds it locked past
        SQLite's busy timeout is rolled back whole, so sending it again is safe.
        """
        if self._token is None:
            self._authenticate()
        refreshed = False
        for attempt in range(1, DB_ERROR_TRIES + 1):
            response = self._session.request(method, f"{self.url}/api/v2/{path}", timeout=self.timeout, **kwargs)
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self._authenticate()
                response = self._session.request(method, f"{self.url}/api/v2/{path}", timeout=self.timeout, **kwargs)
            if _locked(response) and attempt < DB_ERROR_TRIES:
                time.sleep(attempt)  # a real server's lock: waiting is the only way past it
                continue
            if response.status_code >= 400:
                raise RuntimeError(f"{method} /api/v2/{path} -> {response.status_code}: {response.text[:500]}")
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------------------------------ health, DAGs
    def healthy(self) -> bool:
        """Whether the API answers and reports a healthy metadata DB and scheduler."""
        try:
            response = self._session.get(f"{self.url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return False
        if response.status_code != 200:
            return False
        health = response.json()
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))

    def dag_exists(self, dag_id: str) -> bool:
        """Whether the DAG has been parsed and stored."""
        try:
            self.call("GET", f"dags/{dag_id}")
        except RuntimeError as exc:
            if "-> 404" in str(exc):
                return False
            raise
        return True

    def import_errors(self) -> list[dict[str, Any]]:
        """The DAG import errors recorded by the dag-processor."""
        return list(self.call("GET", "importErrors")["import_errors"])

    def create_pool(self, name: str, slots: int, include_deferred: bool) -> dict[str, Any]:
        """Create a pool."""
        body = {"name": name, "slots": slots, "include_deferred": include_deferred, "description": "e2e"}
        return dict(self.call("POST", "pools", json=body))

    def set_variable(self, key: str, value: str) -> None:
        """Create or replace an Airflow Variable."""
        try:
            self.call("DELETE", f"variables/{key}")
        except RuntimeError as exc:
            if "-> 404" not in str(exc):
                raise
        self.call("POST", "variables", json={"key": key, "value": value})

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of a DAG."""
        return list(self.call("GET", f"dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"])

    # ------------------------------------------------------------------------------------------ runs
    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create a manual DAG run with id ``run_id``."""
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        return dict(self.call("POST", f"dags/{dag_id}/dagRuns", json=body))

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run."""
        return dict(self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}"))

    def set_run_state(self, dag_id: str, run_id: str, state: str) -> None:
        """Mark a DAG run ``success``, ``failed`` or ``queued``."""
        self.call("PATCH", f"dags/{dag_id}/dagRuns/{run_id}", json={"state": state})

    def running_dag_runs(self) -> list[dict[str, Any]]:
        """Every queued or running DAG run of any DAG."""
        runs = self.call("GET", "dags/~/dagRuns", params={"state": ["queued", "running"], "limit": 100})
        return list(runs["dag_runs"])

    def task_instances(self, dag_id: str = "~", run_id: str = "~", **params: Any) -> list[dict[str, Any]]:
        """Task instances of a run (``~`` = any), filtered by ``params`` (e.g. ``state=["running"]``)."""
        params.setdefault("limit", 100)
        result = self.call("GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", params=params)
        return list(result["task_instances"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance (its current try)."""
        path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        return dict(self.call("GET", path))
