"""A real ``airflow api-server`` for the plugin tests, on loopback and a free port, in a temporary
``AIRFLOW_HOME``, reading the metadata DB the test session's ``dag.test()`` runs wrote.

It runs :class:`tests.ui.auth_manager.DenyOneDagAuthManager` with two viewer users whose passwords the
test chooses; tokens come from ``POST /auth/token`` as for any API client.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import requests

from tests.e2e.processes import Service, free_port, stop_all, wait_until

REPO = Path(__file__).resolve().parents[2]
#: Users of the test api-server (``name: role``); see :mod:`tests.ui.auth_manager`.
USERS = {"reader": "viewer", "outsider": "viewer"}
STARTUP_TIMEOUT = 180.0


class APIServer:
    """``airflow api-server`` started in its own session, stopped with everything it started.

    :param database_url: the SQLAlchemy URL of the metadata DB to serve.
    :param env: extra environment (connections, AWS settings...).
    """

    def __init__(self, database_url: str, env: Mapping[str, str] = ()) -> None:  # type: ignore[assignment]
        self.home = Path(tempfile.mkdtemp(prefix="gptimage-ui-api-home-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.passwords = {name: secrets.token_urlsafe(12) for name in USERS}
        passwords_file = self.home / "passwords.json"
        passwords_file.write_text(json.dumps(self.passwords))
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        environment.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
                "AIRFLOW__CORE__AUTH_MANAGER": "tests.ui.auth_manager.DenyOneDagAuthManager",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{n}:{r}" for n, r in USERS.items()),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                # Airflow 3.0 signs without an issuer unless one is set, which PyJWT 2.10+ refuses.
                "AIRFLOW__API_AUTH__JWT_ISSUER": "gptimage-ui-tests",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                **dict(env),
            }
        )
        argv = [str(Path(sys.executable).with_name("airflow")), "api-server", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port)]
        self.service = Service("api-server", argv, environment, self.home / "logs")
        self.session = requests.Session()

    def start(self) -> APIServer:
        """Start the server and wait until its API answers."""
        self.service.start()
        return self.wait()

    def wait(self) -> APIServer:
        """Wait until the started server's API answers."""
        wait_until(self._ready, STARTUP_TIMEOUT, 0.5, lambda: f"the api-server\n{self.service.tail()}")
        return self

    def _ready(self) -> bool:
        if not self.service.running():
            raise RuntimeError(f"the api-server exited during start-up:\n{self.service.tail()}")
        try:
            return self.session.get(f"{self.url}/api/v2/monitor/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def token(self, user: str) -> str:
        """A JWT of ``user`` from ``POST /auth/token``."""
        response = self.session.post(
            f"{self.url}/auth/token", json={"username": user, "password": self.passwords[user]}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def get(self, path: str, token: str | None = None, **kwargs: object) -> requests.Response:
        """``GET`` a path of the server, with ``token`` as bearer if given."""
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.get(f"{self.url}{path}", headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Stop the server and every process it started; remove its home."""
        try:
            stop_all([self.service])
        finally:
            self.session.close()
            shutil.rmtree(self.home, ignore_errors=True)
