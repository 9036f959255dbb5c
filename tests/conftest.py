"""Test-session set-up: an isolated AIRFLOW_HOME, the bundled simulator, a fake connection.

The environment is set at import time, before anything imports airflow.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from importlib.metadata import version as distribution_version
from pathlib import Path

import pytest
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
_HOME = Path(tempfile.mkdtemp(prefix="gptimage-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "tests" / "dags")
# Two bundles: the tests' own DAGs (the dags folder) and the shipped examples, so dag.test() finds both.
_LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {"name": "dags-folder", "classpath": _LOCAL_BUNDLE, "kwargs": {}},
        {"name": "examples", "classpath": _LOCAL_BUNDLE, "kwargs": {"path": str(REPO / "example_dags")}},
    ]
)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

#: An obviously fake key; tests assert it never leaks.
FAKE_API_KEY = "sk-test-fake-key-do-not-leak"

#: The Airflow under test (``make test``: 3.3.x; ``make test-oldest``: the oldest release pyproject claims;
#: ``make test-matrix``: 3.1.8 and 3.2.2).
AIRFLOW_VERSION = Version(Version(distribution_version("apache-airflow-core")).base_version)

#: ``context["task_state_store"]`` (state that survives retries) exists from Airflow 3.3.
HAS_TASK_STATE_STORE = Version("3.3") <= AIRFLOW_VERSION

#: Airflow < 3.1.1 resumes a retry into ``execute_complete`` with the previous try's trigger event
#: (apache/airflow#56704). The operator detects that through its ``defer(kwargs=...)``, but ``dag.test()``
#: replaces those kwargs with the event, so there a retry after a deferral replays the old event.
needs_fresh_retry_after_deferral = pytest.mark.skipif(
    Version("3.1.1") > AIRFLOW_VERSION,
    reason=f"Airflow {AIRFLOW_VERSION}: dag.test() replays the first try's trigger event on a retry "
    "(apache/airflow#56704); "
    "the operator's own guard is unit-tested in tests/test_compat.py",
)

#: Airflow 3.0's ``dag.test()`` of a DAG read from a DagBag does not register its assets, and a task with
#: an ``Asset`` outlet then fails with AirflowInactiveAssetInInletOrOutletException (a scheduled DAG's
#: assets are registered by the DAG processor).
needs_dag_test_assets = pytest.mark.skipif(
    Version("3.1") > AIRFLOW_VERSION,
    reason=f"Airflow {AIRFLOW_VERSION}: dag.test() fails tasks with Asset outlets (assets not registered)",
)

#: For tests of re-attaching to a job across retries, which needs ``task_state_store``.
needs_task_state_store = pytest.mark.skipif(
    not HAS_TASK_STATE_STORE,
    reason=f"re-attach across retries needs task_state_store (Airflow 3.3+); this is Airflow {AIRFLOW_VERSION}",
)

#: A batch retried after it failed mid-way resumes its jobs from ``task_state_store`` (3.3+). Before 3.1.1
#: Airflow resumes the retry into the last deferral, kwargs (the batch's progress) included
#: (apache/airflow#56704), which resumes the batch too; from 3.1.1 to 3.2.x the retry starts it over.
BATCH_RETRY_STARTS_OVER = not HAS_TASK_STATE_STORE and Version("3.1.1") <= AIRFLOW_VERSION
needs_batch_resume_across_retries = pytest.mark.skipif(
    BATCH_RETRY_STARTS_OVER,
    reason=f"Airflow {AIRFLOW_VERSION}: a batch retry starts over (no task_state_store, no stale resume)",
)

#: The other side of ``needs_batch_resume_across_retries`` (3.1.1 to 3.2.x, run by ``make test-matrix``).
needs_batch_start_over_on_retry = pytest.mark.skipif(
    not BATCH_RETRY_STARTS_OVER,
    reason=f"Airflow {AIRFLOW_VERSION} resumes a batch retry (task_state_store, or apache/airflow#56704)",
)

from airflow_provider_gptimage.simulator import GPTImageSimulator  # noqa: E402

# ------------------------------------------------------------------ nothing beyond loopback, ever
#: Connections the guard refused during the running test (the autouse fixture fails the test on any).
REFUSED_CONNECTS: list[str] = []
_real_connect, _real_connect_ex, _real_getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
_LOCAL_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", socket.gethostname().lower()})


def _is_loopback(host: object) -> bool:
    try:
        ip = ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return str(host).lower() in _LOCAL_NAMES
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _guard(real):
    def connect(sock: socket.socket, address, *args):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            REFUSED_CONNECTS.append(repr(address))
            raise ConnectionRefusedError(f"test guard: refused to connect to {address!r}; tests stay on loopback")
        return real(sock, address, *args)

    return connect


def _guarded_getaddrinfo(host, *args, **kwargs):
    """Names other than this machine's resolve to nothing: no DNS query leaves the machine either."""
    if host is not None and not _is_loopback(host):
        try:
            ipaddress.ip_address(str(host).split("%", 1)[0])
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: {host!r} is not resolved in tests") from None
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guard(_real_connect)  # type: ignore[method-assign]
socket.socket.connect_ex = _guard(_real_connect_ex)  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def _stay_on_loopback() -> Iterator[None]:
    """Fail any test whose code tried to connect beyond loopback (the connection itself was refused)."""
    REFUSED_CONNECTS.clear()
    yield
    if REFUSED_CONNECTS:
        tried = ", ".join(REFUSED_CONNECTS)
        REFUSED_CONNECTS.clear()
        pytest.fail(f"the test tried to connect beyond loopback: {tried}")


@pytest.fixture(scope="session")
def simulator_server() -> Iterator[GPTImageSimulator]:
    """One in-process simulator for the session (fast jobs); tests reset it through ``simulator``."""
    with GPTImageSimulator(generation_seconds=0.3) as sim:
        yield sim


@pytest.fixture
def simulator(simulator_server: GPTImageSimulator) -> Iterator[GPTImageSimulator]:
    """The session simulator, reset to defaults (jobs, counters, faults, configuration) for this test."""
    simulator_server.reset()
    simulator_server.configure(
        generation_seconds=0.3,
        active_task_limit=None,
        rate_limit_per_second=None,
        credits=None,
        variations=False,
        errors_as_http_200=False,
        result_url_ttl_seconds=None,
        images_per_job=1,
        result_padding_bytes=0,
    )
    yield simulator_server
    simulator_server.clear_faults()


def connection_json(url: str, key: str | None = FAKE_API_KEY) -> str:
    """The ``AIRFLOW_CONN_*`` JSON of a gptimage connection to ``url``."""
    conn: dict[str, object] = {"conn_type": "gptimage", "host": url}
    if key is not None:
        conn["password"] = key
    return json.dumps(conn)


@pytest.fixture
def gptimage_conn(simulator: GPTImageSimulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``gptimage_default`` at the simulator (through the environment variable users set)."""
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url))
    return "gptimage_default"


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make the hook's retry waits instant; return the delays it asked for (frozen time, not sleeping)."""
    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

    delays: list[float] = []

    async def asleep(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(GPTImageHook, "sleep", staticmethod(delays.append))
    monkeypatch.setattr(GPTImageHook, "asleep", staticmethod(asleep))
    return delays


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A fresh metadata DB (SQLite in the session's AIRFLOW_HOME) for ``dag.test()``."""
    from airflow.utils.db import resetdb

    resetdb()
    _share_in_process_api_server()
    _filter_unconfigured_structlog()
    return _HOME / "airflow.db"


def _filter_unconfigured_structlog() -> None:
    """Drop DEBUG lines when Airflow left structlog unconfigured (3.0), as the configured level says.

    Airflow 3.0's ``dag.test()`` in-process supervisor (test-only code) logs every message it relays at
    DEBUG, a connection's password inside ``MaskSecret`` included; unconfigured structlog prints them all.
    """
    import logging

    import structlog

    if not structlog.is_configured():
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))


def _share_in_process_api_server() -> None:
    """Give ``dag.test()`` one in-process execution API for the session, as Airflow 3.3+ does itself.

    Airflow before 3.3 (no cache on 3.0.6, 3.1.8 or 3.2.2) builds a new API app, event-loop thread and
    lifespan for every task it runs; on 3.0.6 that took seconds each, and the threads are never stopped:
    a 50-item mapped test took over ten minutes.
    """
    import functools

    from airflow.sdk.execution_time import supervisor

    if not hasattr(supervisor.in_process_api_server, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(supervisor.in_process_api_server)


def dagbag_class() -> type:
    """Return Airflow's ``DagBag`` class (moved to ``airflow.dag_processing.dagbag`` in 3.2)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0 and 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag


def run_dag(dag_id: str, monkeypatch: pytest.MonkeyPatch, **env: str):
    """Parse ``tests/dags`` with ``env`` set (as a DagBag does) and run ``dag_id`` with ``dag.test()``."""
    DagBag = dagbag_class()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors, bag.import_errors
    return bag.get_dag(dag_id).test()


def xcom_value(dag_run, task_id: str, key: str = "return_value", map_index: int = -1):
    """Read one XCom value the run stored, deserialised."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key, map_indexes=map_index
            )
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def database_text(db_path: Path) -> str:
    """Every row of every table of the metadata DB, as SQL text (to search for leaked secrets)."""
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        return "\n".join(conn.iterdump())


# ------------------------------------------------------------------ a real S3-compatible server (moto)
S3_CONN_ID = "aws_test"


def aws_connection(endpoint_url: str, *, login: str = "testing", password: str = "testing") -> str:
    """The JSON of an Airflow AWS connection to an S3-compatible endpoint (for ``AIRFLOW_CONN_<ID>``)."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": login,
            "password": password,
            "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1"},
        }
    )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback for the whole session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_conn_id(moto_endpoint: str) -> Iterator[str]:
    """The id of an Airflow AWS connection (``aws_test``) pointing at the moto server, set via env var."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", aws_connection(moto_endpoint))
        # Never let boto fall back on the machine's own credentials or config.
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        yield S3_CONN_ID


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str):
    """A boto3 S3 client of the moto server (to create buckets and inspect what was written)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@pytest.fixture
def s3_bucket(s3_client) -> str:
    """A new, empty bucket on the moto server."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_destination(s3_bucket: str, s3_conn_id: str):
    """``s3://<new bucket>/prefix/`` through the ``aws_test`` connection."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(f"s3://{s3_bucket}/prefix/", conn_id=s3_conn_id)
