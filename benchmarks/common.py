"""Shared helpers of the benchmark scripts: environment, local CA, simulator, child processes, tables.

Every benchmark measures its subject and its baseline side by side in the same run, repeats each
measurement a few times, prints a table of medians with the ratio to the baseline, and says PASS or FAIL
against the target of issue 4. A script exits 1 when a target is missed; ``--json PATH`` also writes its
rows and checks for :mod:`benchmarks.run_all`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"
#: An obviously fake API key accepted by the simulator.
FAKE_API_KEY = "sk-bench-fake-key"
MIB = 1024 * 1024


# ------------------------------------------------------------------------------------------ statistics
def median(values: Iterable[float]) -> float:
    """Median of ``values`` (``nan`` when empty)."""
    data = list(values)
    return statistics.median(data) if data else float("nan")


@dataclass
class Check:
    """One target of the issue: ``measured`` compared with ``limit`` by ``op`` (``<=`` or ``>=``)."""

    name: str
    measured: float
    op: str
    limit: float
    unit: str = ""

    @property
    def ok(self) -> bool:
        """Whether the target is met."""
        if self.measured != self.measured:  # nan: nothing measured
            return False
        return {"<=": self.measured <= self.limit, "<": self.measured < self.limit, ">=": self.measured >= self.limit}[
            self.op
        ]

    def line(self) -> str:
        """``PASS  name: 1.12 <= 1.3 x`` style text."""
        verdict = "PASS" if self.ok else "FAIL"
        return f"{verdict}  {self.name}: {fmt(self.measured)} {self.op} {fmt(self.limit)}{self.unit}"


@dataclass
class Report:
    """What a benchmark prints and hands to ``run_all``: a table of medians and its checks."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(check.ok for check in self.checks)

    def render(self) -> str:
        """The table, the notes and the verdicts as plain text."""
        out = [f"== {self.title} ==", *table(self.columns, self.rows)]
        out += [f"   note: {note}" for note in self.notes]
        out += [check.line() for check in self.checks]
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (for ``run_all``)."""
        data = asdict(self)
        data["checks"] = [{**asdict(c), "ok": c.ok} for c in self.checks]
        data["ok"] = self.ok
        return data


def fmt(value: Any) -> str:
    """Numbers with 3 significant digits (thousands grouped), anything else as ``str``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if value != value:
        return "n/a"
    if isinstance(value, int) or (abs(value) >= 1000 and float(value).is_integer()):
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> list[str]:
    """Lines of a plain-text table; the first ``left`` columns are aligned left, the others right."""
    cells = [list(columns)] + [[fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def finish(report: Report, json_path: str | None) -> int:
    """Print ``report``, write it to ``json_path`` if given; return the exit code (1 if a target is missed)."""
    print(report.render(), flush=True)
    if json_path:
        Path(json_path).write_text(json.dumps(report.to_dict()))
    return 0 if report.ok else 1


def parser(description: str, repeats: int = 3) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes (``--json``, ``--repeats``)."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument("--json", help="also write the report as JSON to this file (used by run_all)")
    result.add_argument("--repeats", type=int, default=repeats, help="measurements per variant (median reported)")
    return result


# ------------------------------------------------------------------------------------------ environment
def airflow_env(home: Path, dags_folder: Path | None = None) -> dict[str, str]:
    """Environment variables of an isolated Airflow home (SQLite DB, no examples)."""
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or home / "dags"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
    }
    return env


def use_airflow_home(prefix: str, dags_folder: Path | None = None) -> Path:
    """Point this process at a fresh temporary Airflow home (call before importing airflow)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.update(airflow_env(home, dags_folder))
    return home


def gptimage_connection(url: str, key: str = FAKE_API_KEY) -> str:
    """``AIRFLOW_CONN_*`` JSON of a ``gptimage`` connection to ``url``."""
    return json.dumps({"conn_type": "gptimage", "host": url, "password": key})


def aws_connection(endpoint_url: str) -> str:
    """``AIRFLOW_CONN_*`` JSON of an AWS connection to an S3-compatible endpoint (moto)."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1"},
        }
    )


@dataclass(frozen=True)
class LocalCA:
    """A throwaway certificate authority and a server certificate for 127.0.0.1 (PEM files)."""

    ca_pem: str
    cert_pem: str
    key_pem: str


def make_local_ca(folder: Path) -> LocalCA:
    """Create a CA with ``trustme`` and issue a server certificate for ``127.0.0.1`` / ``localhost``."""
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    paths = LocalCA(str(folder / "ca.pem"), str(folder / "server.pem"), str(folder / "server.key"))
    ca.cert_pem.write_to_path(paths.ca_pem)
    server.cert_chain_pems[0].write_to_path(paths.cert_pem)
    for blob in server.cert_chain_pems[1:]:
        blob.write_to_path(paths.cert_pem, append=True)
    server.private_key_pem.write_to_path(paths.key_pem)
    return paths


def trust_env(ca: LocalCA) -> dict[str, str]:
    """Environment that makes a child process trust ``ca``: OpenSSL's default paths (aiohttp's default
    context, read when aiohttp is imported) and ``requests``."""
    return {"SSL_CERT_FILE": ca.ca_pem, "REQUESTS_CA_BUNDLE": ca.ca_pem}


# ------------------------------------------------------------------------------------------ processes
def run_child(args: Sequence[str], env: dict[str, str] | None = None, timeout: float = 240) -> dict[str, Any]:
    """Run ``python ARGS`` in a fresh process and return the JSON object on its last stdout line.

    :raises RuntimeError: the child failed (its stderr tail is in the message).
    """
    with tempfile.TemporaryFile("w+") as err:
        done = subprocess.run(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd=REPO,
            check=False,
        )
        err.seek(0)
        tail = err.read()[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"child {args} exited {done.returncode}:\n{done.stdout[-2000:]}\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def cpu_load() -> str:
    """The 1-minute load average and core count, to note the conditions of a run."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return f"{os.cpu_count()} cores"
    return f"{os.cpu_count()} cores, load average {load:.2f} at start"


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds`` (wall clock, monotonic)."""

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start


# ------------------------------------------------------------------------------------------ dag.test()
BENCH_DAGS = BENCH_DIR / "dags"


def prepare_dag_test(prefix: str) -> Path:
    """Point this process at a fresh Airflow home whose dags folder is ``benchmarks/dags`` and migrate its
    metadata DB (SQLite, about 4 s). Call before anything imports airflow; returns the home."""
    home = use_airflow_home(prefix, BENCH_DAGS)
    from airflow.utils.db import resetdb

    resetdb()
    return home


def run_dag_test(dag_id: str) -> Any:
    """Parse ``benchmarks/dags`` (as a DagBag does, with the current environment) and ``dag.test()`` one DAG."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    bag = DagBag(dag_folder=str(BENCH_DAGS))
    if bag.import_errors:
        raise RuntimeError(f"benchmark DAGs failed to import: {bag.import_errors}")
    return bag.get_dag(dag_id).test()


async def create_stuck_jobs(url: str, ca_pem: str | None, count: int) -> list[str]:
    """Create ``count`` jobs that never finish (``[sim:stuck]``) on the simulator at ``url``; return their ids.

    :param ca_pem: the local CA to trust when the simulator serves HTTPS (``None``: plain HTTP).
    """
    import asyncio
    import ssl

    import aiohttp

    from airflow_provider_gptimage.protocol import build_request

    context: Any = ssl.create_default_context(cafile=ca_pem) if ca_pem else True
    headers = {"Authorization": f"Bearer {FAKE_API_KEY}"}
    ids: list[str] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context, limit=16)) as session:

        async def create(i: int) -> None:
            body = build_request(f"benchmark job {i} [sim:stuck]")[0].body()
            async with session.post(url + "/api/v1/jobs/createTask", json=body, headers=headers) as response:
                ids.append((await response.json())["data"]["taskId"])

        for start in range(0, count, 500):
            await asyncio.gather(*(create(i) for i in range(start, min(count, start + 500))))
    return ids
