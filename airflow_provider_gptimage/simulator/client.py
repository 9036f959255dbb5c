"""``SimulatorClient``: a small synchronous wrapper of a simulator's ``/_sim/`` admin endpoints."""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_gptimage.simulator.jobs import SimulatorStats


class SimulatorClient:
    """Control a simulator, possibly running in another process, over HTTP.

    :param url: the simulator's base URL, e.g. ``http://127.0.0.1:8765``.
    :param verify: passed to ``requests`` (a CA bundle path for an HTTPS simulator).
    :param timeout: seconds per admin request.
    """

    def __init__(self, url: str, verify: bool | str = True, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._session = requests.Session()
        self._verify = verify  # per request: REQUESTS_CA_BUNDLE would override a session setting
        self._timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._session.request(
            method, f"{self.url}/_sim/{path}", json=body, timeout=self._timeout, verify=self._verify
        )
        if response.status_code >= 400:
            raise ValueError(f"simulator admin call {path} failed ({response.status_code}): {response.text}")
        return response.json()

    def health(self) -> bool:
        """Whether the simulator answers its health check."""
        try:
            return bool(self._call("GET", "health").get("status") == "ok")
        except (requests.RequestException, ValueError):
            return False

    def stats(self) -> SimulatorStats:
        """Snapshot of the counters."""
        return SimulatorStats.from_dict(self._call("GET", "stats"))

    def config(self) -> dict[str, Any]:
        """The current configuration."""
        result: dict[str, Any] = self._call("GET", "config")
        return result

    def inject(self, endpoint: str, fault: str, times: int = 1, **options: Any) -> None:
        """Queue ``fault`` for the next ``times`` requests to ``endpoint``.

        :param endpoint: ``createTask``, ``recordInfo`` or ``result``.
        :param fault: a fault name, see :data:`~airflow_provider_gptimage.simulator.faults.FAULTS`.
        :param times: how many consecutive requests get the fault.
        :param options: fault options.
        """
        self._call("POST", "inject", {"endpoint": endpoint, "fault": fault, "times": times, "options": options})

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change the configuration live; returns the new configuration."""
        result: dict[str, Any] = self._call("POST", "configure", changes)
        return result

    def reset(self) -> None:
        """Forget jobs, counters and queued faults."""
        self._call("POST", "reset")

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self._call("POST", "clear-faults")

    def advance(self, seconds: float) -> None:
        """Move a manual-clock simulator's clock forward."""
        self._call("POST", "advance", {"seconds": seconds})

    def close(self) -> None:
        """Release the HTTP session."""
        self._session.close()
