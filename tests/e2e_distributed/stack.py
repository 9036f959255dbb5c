"""The distributed stack: Airflow on CeleryExecutor with a Redis broker and PostgreSQL, every service on loopback.

Processes (each in its own session, see :mod:`tests.e2e.processes`): the simulator, PostgreSQL, Redis, the
api-server (``--host 127.0.0.1``), the scheduler, the dag-processor, two triggerers and two Celery workers.
The workers and triggerers have distinct hostnames (``[core] hostname_callable``, see :mod:`.hostname`)
and skip their log servers (each would bind the same port on all interfaces); they share the
``AIRFLOW_HOME``, so every task log is a local file. All processes share the Fernet key, the JWT secret
and the API secret key. It builds on :class:`tests.e2e.stack.AirflowStack`: same simulator, API client,
start-up checks and clean-up.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any

from tests.e2e.processes import Service, stop_all
from tests.e2e.stack import REPO, AirflowStack, _bin
from tests.e2e_distributed.backends import Postgres, Redis

DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
WORKERS = ("worker-a", "worker-b")
TRIGGERERS = ("triggerer-a", "triggerer-b")
#: Task processes per Celery worker.
WORKER_CONCURRENCY = 4
#: Failover settings (measured: a dead triggerer's triggers are adopted in about 3-6 s with these).
TRIGGERER_HEALTH_CHECK_THRESHOLD = 5
JOB_HEARTBEAT_SEC = 1
#: A task whose worker died is failed (and retried) after this many seconds without a heartbeat.
TASK_HEARTBEAT_TIMEOUT = 15


class DistributedStack(AirflowStack):
    """Airflow's distributed engine on one machine, with the simulator; started and stopped as one."""

    service_names = ("api-server", "scheduler", "dag-processor", *TRIGGERERS, *WORKERS)
    dags_folder = DAGS_FOLDER

    def _before_env(self) -> None:
        self.postgres = Postgres(self.service_log_dir)
        self.redis = Redis(self.service_log_dir)

    def _airflow_env(self) -> dict[str, str]:
        env = super()._airflow_env()
        env.pop("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT")  # no log servers: --skip-serve-logs
        env.pop("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT")
        env.update(
            {
                # The hostname callable (tests.e2e_distributed.hostname) lives in this repository.
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.e2e_distributed.hostname.get_hostname",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(4 * WORKER_CONCURRENCY),
                "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.postgres.url.replace("+psycopg2", ""),
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_CHECK_THRESHOLD),
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": str(JOB_HEARTBEAT_SEC),
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": str(JOB_HEARTBEAT_SEC),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            }
        )
        return env

    def _service(self, name: str) -> Service:
        env = {**self.env, "GPTIMAGE_E2E_HOSTNAME": name}
        if name in WORKERS:
            argv = [_bin("airflow"), "celery", "worker", "--skip-serve-logs"]
            argv += ["--concurrency", str(WORKER_CONCURRENCY), "--celery-hostname", f"{name}@%h"]
        elif name in TRIGGERERS:
            argv = [_bin("airflow"), "triggerer", "--skip-serve-logs"]
        else:
            return Service(name, [*super()._service(name).argv], env, self.service_log_dir)
        return Service(name, argv, env, self.service_log_dir)

    def _start_backends(self) -> None:
        self.postgres.start()
        self.redis.start()

    def stop(self) -> None:
        """Stop the Airflow services and the simulator, then PostgreSQL and Redis (idempotent)."""
        try:
            stop_all([*self.services.values(), self.simulator])
        finally:
            try:
                self.postgres.stop()
            finally:
                self.redis.stop()
                super().stop()

    # ------------------------------------------------------------------------------------------ inspection
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a query on the metadata DB; ``?`` placeholders, as in :meth:`AirflowStack.query`."""
        return self.postgres.query(sql.replace("?", "%s"), params)

    def database_dump(self) -> str:
        """``pg_dump`` of the metadata DB (also kept as ``e2e-services/metadata.sql``)."""
        return self.postgres.dump(self.service_log_dir / "metadata.sql").read_text(errors="replace")
