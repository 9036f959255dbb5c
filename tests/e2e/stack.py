"""The services under test: the simulator and Airflow's api-server, scheduler, dag-processor and triggerer.

Everything runs on loopback in a temporary ``AIRFLOW_HOME`` with SQLite and the LocalExecutor, each
service in its own session (see :mod:`tests.e2e.processes`), with intervals shortened so the suite is fast.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.e2e.airflow_api import AirflowAPI
from tests.e2e.processes import Service, free_port, stop_all, wait_until

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parent.parent
DAGS_FOLDER = E2E_DIR / "dags"
#: An obviously fake key; scenario 7 asserts it appears in no log, XCom, rendered field or trigger row.
FAKE_API_KEY = "sk-e2e-fake-key-never-leak"
#: The Airflow services, in start order.
AIRFLOW_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
#: Seconds allowed for the stack to come up (the API alone takes ~15 s on 2 cores).
STARTUP_TIMEOUT = 180.0
READY_PREFIX = "GPT Image simulator listening on "
_LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


def _bin(name: str) -> str:
    """A console script of the running interpreter's environment (the project venv)."""
    return str(Path(sys.executable).with_name(name))


class AirflowStack:
    """A temporary Airflow installation with its services and a simulator, started and stopped as one.

    :param keep_home: leave the ``AIRFLOW_HOME`` folder in place after :meth:`stop` (for debugging).
    """

    #: The Airflow services it starts, in start order (see :meth:`_service`).
    service_names: tuple[str, ...] = AIRFLOW_SERVICES
    #: Folder of the DAGs the scenarios run.
    dags_folder: Path = DAGS_FOLDER

    def __init__(self, keep_home: bool = False) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="gptimage-e2e-home-"))
        self.keep_home = keep_home
        self.service_log_dir = self.home / "logs" / "e2e-services"
        #: A second DAG bundle, empty at start: a scenario copies a shipped example DAG into it.
        self.examples_folder = self.home / "example_dags"
        self.examples_folder.mkdir()
        self.db_path = self.home / "airflow.db"
        self.api_port = free_port()
        self._before_env()
        self.simulator = Service(
            "simulator",
            [sys.executable, "-u", "-m", "airflow_provider_gptimage.simulator", "--port", "0"],
            self._base_env(),
            self.service_log_dir,
        )
        self.simulator_url = ""
        self.env = self._airflow_env()
        self.services: dict[str, Service] = {}
        self.api = AirflowAPI(f"http://127.0.0.1:{self.api_port}")

    # ------------------------------------------------------------------------------------------ set-up
    def _before_env(self) -> None:
        """Set what :meth:`_airflow_env` needs beyond the API port (a subclass's backends)."""

    @staticmethod
    def _base_env() -> dict[str, str]:
        """The current environment minus every Airflow setting (the unit-test conftest sets some)."""
        return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}

    def _airflow_env(self) -> dict[str, str]:
        env = self._base_env()
        execution_url = f"http://127.0.0.1:{self.api_port}/execution/"
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                    [
                        {"name": "dags-folder", "classpath": _LOCAL_BUNDLE, "kwargs": {}},
                        {"name": "examples", "classpath": _LOCAL_BUNDLE, "kwargs": {"path": str(self.examples_folder)}},
                    ]
                ),
                # The shipped examples poll every 10 s at first; 1 s keeps their scenarios short.
                "GPTIMAGE_EXAMPLE_POLL_SECONDS": "1",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": execution_url,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
                # Separate processes must share the secret that signs the workers' execution API tokens.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}/",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                # Fast loops: the defaults (5 s heartbeats, 300 s bundle refresh, 30 s triggerer
                # health threshold) would make each scenario wait for minutes.
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
                "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                # A task supervisor can notice its task process's exit up to this many seconds late
                # (default 5), delaying the executor's event of a deferral; the scheduler then may
                # process it after the resumed try started and fail it (apache/airflow#72716).
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            }
        )
        return env

    def _service(self, name: str) -> Service:
        argv = [_bin("airflow"), name]
        if name == "api-server":
            argv += ["--host", "127.0.0.1", "--port", str(self.api_port)]
        return Service(name, argv, self.env, self.service_log_dir)

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> AirflowStack:
        """Start the simulator, migrate the DB, start the Airflow services and wait until they work."""
        self._start_simulator()
        self.env["AIRFLOW_CONN_GPTIMAGE_DEFAULT"] = json.dumps(
            {"conn_type": "gptimage", "host": self.simulator_url, "password": FAKE_API_KEY}
        )
        self.service_log_dir.mkdir(parents=True, exist_ok=True)
        self._start_backends()
        with (self.service_log_dir / "db-migrate.log").open("wb") as out:
            subprocess.run(
                [_bin("airflow"), "db", "migrate"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=STARTUP_TIMEOUT,
            )
        for name in self.service_names:
            self.services[name] = self._service(name).start()
        wait_until(self._api_ready, STARTUP_TIMEOUT, 1.0, lambda: "the API server\n" + self._tails())
        return self

    def _start_backends(self) -> None:
        """Start what the Airflow services need before ``db migrate`` (nothing with SQLite)."""

    def _start_simulator(self) -> None:
        self.simulator.start()
        path = self.simulator.log_path

        def ready_url() -> str:
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith(READY_PREFIX):
                    return line[len(READY_PREFIX) :].strip()
            if not self.simulator.running():
                raise RuntimeError(f"the simulator exited:\n{self.simulator.tail()}")
            return ""

        self.simulator_url = wait_until(ready_url, 30, 0.1, "the simulator's ready line")

    def _api_ready(self) -> bool:
        for name, service in self.services.items():
            if not service.running():
                raise RuntimeError(f"airflow {name} exited during start-up:\n{service.tail()}")
        return self.api.healthy()

    def wait_for_dags(self, dag_ids: list[str], timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until the dag-processor has parsed ``dag_ids`` without import errors."""

        def parsed() -> bool:
            errors = self.api.import_errors()
            if errors:
                raise AssertionError(f"DAG import errors: {errors}")
            return all(self.api.dag_exists(dag_id) for dag_id in dag_ids)

        wait_until(parsed, timeout, 1.0, lambda: f"DAGs {dag_ids} to be parsed\n{self._tails()}")

    def restart(self, name: str) -> Service:
        """Start service ``name`` again (after :meth:`Service.kill`)."""
        return self.services[name].start()

    def stop(self) -> None:
        """Stop every process the stack started (idempotent; safe after a partial start)."""
        try:
            stop_all([*self.services.values(), self.simulator])
        finally:
            self.api.close()
            if not self.keep_home:
                shutil.rmtree(self.home, ignore_errors=True)

    def _tails(self) -> str:
        return "\n".join(f"--- {name}:\n{service.tail(15)}" for name, service in self.services.items())

    # ------------------------------------------------------------------------------------------ inspection
    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query on the metadata DB (SQLite)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as conn:
            return list(conn.execute(sql, params))

    def database_dump(self) -> str:
        """Every row of every table of the metadata DB, as SQL text."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as conn:
            return "\n".join(conn.iterdump())

    def state_mismatches(self, run_id: str) -> list[str]:
        """Scheduler log lines where it failed a task of ``run_id`` over a stale executor event.

        That is Airflow's race between a deferral's executor event and the resumed try
        (apache/airflow#71580, #72716), not a provider error; failures say so when it happens.
        """
        path = self.service_log_dir / "scheduler.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        marker = "but the task instance's state attribute is"
        return [line for line in text.splitlines() if marker in line and run_id in line]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        """The worker's log file of one try of a task instance ('' if not written yet)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        path = folder / f"attempt={try_number}.log"
        return path.read_text(errors="replace") if path.exists() else ""
