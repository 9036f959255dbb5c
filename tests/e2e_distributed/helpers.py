"""Helpers of the distributed scenarios: who ran what (workers, triggerers), and what reached the destination."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from airflow_provider_gptimage.simulator.client import SimulatorClient
from tests.e2e.processes import processes_titled
from tests.e2e_distributed.stack import WORKERS, DistributedStack


def triggers_by_triggerer(stack: DistributedStack) -> Counter[str]:
    """Trigger rows per triggerer hostname (``None`` for triggers no triggerer holds)."""
    rows = stack.query(
        "SELECT j.hostname, count(t.id) FROM trigger t LEFT JOIN job j ON j.id = t.triggerer_id GROUP BY j.hostname"
    )
    return Counter({str(host): int(count) for host, count in rows})


def trigger_holders(stack: DistributedStack) -> dict[int, str | None]:
    """Every trigger row's id and the hostname of the triggerer holding it (``None``: none does)."""
    rows = stack.query("SELECT t.id, j.hostname FROM trigger t LEFT JOIN job j ON j.id = t.triggerer_id")
    return {int(trigger_id): None if host is None else str(host) for trigger_id, host in rows}


def worker_running(stack: DistributedStack, ti: dict[str, Any]) -> str:
    """The worker whose session holds the task runner of a running task instance.

    The task SDK's runner retitles itself ``airflow worker -- <task instance uuid>``; it must be found in
    exactly one worker's session, and agree with the hostname the task instance reports.
    """
    title = f"airflow worker -- {ti['id']}"
    pids = {pid for pid, t in processes_titled(title).items() if t == title}
    holders = [name for name in WORKERS if pids & set(stack.services[name].members())]
    assert len(holders) == 1, f"task runner {title!r} found in workers {holders} (pids {pids})"
    assert ti["hostname"] == holders[0], f"the API says {ti['hostname']}, the processes say {holders[0]}"
    return holders[0]


def executions_by_worker(stack: DistributedStack, ti_ids: set[str]) -> Counter[str]:
    """How many times each worker started a task instance of ``ti_ids`` (every try and every resume).

    Read from the workers' own logs: the Celery provider logs each workload it executes, naming the task
    instance's id.
    """
    counts: Counter[str] = Counter()
    for name in WORKERS:
        log = stack.services[name].log_path.read_text(errors="replace")
        for line in log.splitlines():
            if "Executing workload" in line and any(ti_id in line for ti_id in ti_ids):
                counts[name] += 1
    return counts


def destination_files(folder: Path) -> set[str]:
    """Visible file names in a destination folder (images and sidecars; not the catalog's own folders)."""
    return (
        {p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")} if folder.exists() else set()
    )


def assert_outputs(folder: Path, prompts: dict[str, str]) -> None:
    """Every key's image and sidecar are in ``folder``, the sidecar naming its prompt, each from its own job."""
    assert destination_files(folder) >= {f"{key}.{ext}" for key in prompts for ext in ("png", "json")}
    jobs = set()
    for key, prompt in prompts.items():
        sidecar = json.loads((folder / f"{key}.json").read_text())
        assert sidecar["prompt"] == prompt
        assert sidecar["size"] == (folder / f"{key}.png").stat().st_size
        jobs.add(sidecar["job_id"])
    assert len(jobs) == len(prompts)


def assert_one_create_each(sim: SimulatorClient, prompts: dict[str, str]) -> None:
    """The simulator received exactly one ``createTask`` per prompt, and none for anything else."""
    stats = sim.stats()
    assert stats.prompt_creates == dict.fromkeys(prompts.values(), 1)
    assert stats.creates == len(prompts)
    assert stats.requests_without_auth == 0
