"""The distributed stack's backends: a private PostgreSQL 15 cluster and a Redis broker, on loopback.

Both run in the foreground as :class:`~tests.e2e.processes.Service` processes (own session, output in the
stack's service logs), so the session-wide clean-up of the suite reaches them like any Airflow service.
PostgreSQL is also stopped properly first (``pg_ctl stop -m fast``), Redis with ``SHUTDOWN NOSAVE``.
The binaries come from Debian (``scripts/ensure-services.sh`` installs them when missing). ``initdb``
refuses to run as root: the cluster's files belong to the ``postgres`` user and its commands run through
``runuser``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.e2e.processes import Service, free_port, stop_all, wait_until

PG_BIN = Path(os.environ.get("GPTIMAGE_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"
#: The role and database Airflow uses (trust authentication, loopback only: a throwaway cluster).
DB_NAME = "airflow"
#: Test settings: durability is not wanted (``fsync=off``...), connections are (two workers' pools,
#: two triggerers, the scheduler, the api-server, the dag-processor, the Celery result backend).
PG_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "128MB",
}


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *argv]


class Postgres:
    """A PostgreSQL cluster in a temporary folder owned by ``postgres``, listening on 127.0.0.1:``port``.

    :param log_dir: folder of the server's output file (``postgres.log``).
    """

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.data_root = Path(tempfile.mkdtemp(prefix="gptimage-e2e-pg-"))
        self.data = self.data_root / "data"
        self.log_dir = log_dir
        settings = [arg for name, value in PG_SETTINGS.items() for arg in ("-c", f"{name}={value}")]
        argv = _as_postgres([str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port), *settings])
        self.service = Service("postgres", argv, dict(os.environ), log_dir)

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the Airflow database."""
        return f"postgresql+psycopg2://{DB_NAME}@127.0.0.1:{self.port}/{DB_NAME}"

    def start(self) -> Postgres:
        """``initdb``, start the server, create the database."""
        shutil.chown(self.data_root, PG_USER)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / "initdb.log").open("wb") as out:
            subprocess.run(
                _as_postgres(
                    [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", DB_NAME, "--auth=trust", "-E", "UTF8"]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
                timeout=120,
            )
        self.service.start()
        wait_until(self._ready, 60, 0.2, lambda: f"PostgreSQL on port {self.port}\n{self.service.tail()}")
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_NAME, DB_NAME],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self

    def _ready(self) -> bool:
        if not self.service.running():
            raise RuntimeError(f"PostgreSQL exited:\n{self.service.tail()}")
        probe = [str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        return subprocess.run(probe, check=False, timeout=30).returncode == 0

    def connect(self) -> Any:
        """A new ``psycopg2`` connection (autocommit) to the Airflow database."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=DB_NAME, dbname=DB_NAME)
        conn.autocommit = True
        return conn

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one query; ``sql`` uses ``%s`` placeholders."""
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params or None)  # no params: a literal % stays a %
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            conn.close()

    def dump(self, path: Path) -> Path:
        """``pg_dump`` of the Airflow database (plain SQL, every row) into ``path``."""
        argv = [str(PG_BIN / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", DB_NAME, "-f", str(path)]
        subprocess.run([*argv, DB_NAME], check=True, capture_output=True, timeout=300)
        return path

    def stop(self) -> None:
        """``pg_ctl stop -m fast``, then end whatever is left of the server's session; remove the cluster."""
        try:
            if self.service.running():
                with contextlib.suppress(subprocess.SubprocessError, OSError):
                    subprocess.run(
                        _as_postgres([str(PG_BIN / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"]),
                        capture_output=True,
                        timeout=30,
                    )
            stop_all([self.service])
        finally:
            shutil.rmtree(self.data_root, ignore_errors=True)


class Redis:
    """A Redis server on 127.0.0.1:``port`` holding nothing on disk (``--save ''``, no AOF).

    :param log_dir: folder of the server's output file (``redis.log``).
    """

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gptimage-e2e-redis-"))
        argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.dir), "--protected-mode", "yes"]
        self.service = Service("redis", argv, dict(os.environ), log_dir)

    @property
    def url(self) -> str:
        """The broker URL."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        """Start the server and wait until it answers PING."""
        self.service.start()
        wait_until(self._ready, 30, 0.1, lambda: f"Redis on port {self.port}\n{self.service.tail()}")
        return self

    def _ready(self) -> bool:
        if not self.service.running():
            raise RuntimeError(f"redis-server exited:\n{self.service.tail()}")
        probe = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "ping"]
        return subprocess.run(probe, capture_output=True, check=False, timeout=10).stdout.strip() == b"PONG"

    def client(self) -> Any:
        """A ``redis-py`` client."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10)

    def contents(self) -> dict[str, Any]:
        """Every key with its type, its value read by type, and its ``DUMP`` (base64)."""
        client = self.client()
        try:
            return {key.decode(errors="replace"): _read_key(client, key) for key in client.scan_iter(count=1000)}
        finally:
            client.close()

    def stop(self) -> None:
        """``SHUTDOWN NOSAVE``, then end whatever is left of the server's session."""
        try:
            if self.service.running():
                with contextlib.suppress(subprocess.SubprocessError, OSError):
                    argv = ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "shutdown", "nosave"]
                    subprocess.run(argv, capture_output=True, timeout=10)
            stop_all([self.service])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _read_key(client: Any, key: bytes) -> dict[str, Any]:
    kind = _text(client.type(key))
    values: list[Any] = []
    if kind == "string":
        values = [client.get(key)]
    elif kind == "list":
        values = client.lrange(key, 0, -1)
    elif kind == "hash":
        values = [item for pair in client.hgetall(key).items() for item in pair]
    elif kind == "set":
        values = sorted(client.smembers(key))
    elif kind == "zset":
        values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
    dumped = client.dump(key)
    return {
        "type": kind,
        "values": [_text(v) for v in values],
        "decoded": [d for v in values for d in _decoded_bodies(_text(v))],
        "dump_base64": base64.b64encode(dumped).decode() if dumped else None,
    }


def _decoded_bodies(text: str) -> Iterator[str]:
    """The bodies of the Celery messages in ``text`` (kombu sends them base64-encoded inside JSON)."""
    for start in (i for i, ch in enumerate(text) if ch in "[{"):
        with contextlib.suppress(ValueError):
            message = json.loads(text[start:])
            break
    else:
        return
    candidates = message if isinstance(message, list) else [message]
    for item in candidates:
        if isinstance(item, dict) and isinstance(item.get("body"), str):
            with contextlib.suppress(ValueError):
                yield base64.b64decode(item["body"]).decode(errors="replace")
