"""A trigger that measures the event loop of the triggerer it runs in (benchmark 7), and the operator deferring to it.

Every ``interval`` seconds it sleeps and notes how late it woke up (the loop's lag) and how much CPU the loop's
thread used meanwhile (``time.thread_time()``): a late wake-up during which the loop thread was busy means
something blocked the loop (a trigger, Airflow's runner, a garbage collection); one during which it was not
means the thread waited for a CPU or for the GIL (a busy machine, another thread). It also times this process's
garbage collections (``gc.callbacks``). Every ``report_every`` seconds it appends a summary line to
``<folder>/probe-<hostname>.jsonl``; it runs until its task is ended.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent


def summary(samples: list[tuple[float, float]], pauses: list[tuple[int, float]], interval: float) -> dict[str, Any]:
    """One report line: lags (ms) of ``samples`` (lag s, loop-thread CPU s) and the collections in ``pauses``."""
    late = [(lag, cpu) for lag, cpu in samples if lag > 0.05]
    return {
        "t": time.time(),
        "samples": len(samples),
        "lag_max_ms": round(1000 * max((lag for lag, _ in samples), default=0.0), 1),
        "late_over_50ms": len(late),
        "late_over_100ms": sum(1 for lag, _ in late if lag > 0.1),
        "late_over_50ms_loop_busy": sum(1 for lag, cpu in late if cpu >= 0.5 * (lag + interval)),
        "gc_gen2": sum(1 for gen, _ in pauses if gen == 2),
        "gc_max_ms": round(1000 * max((p for _, p in pauses), default=0.0), 1),
    }


class LoopLagProbeTrigger(BaseTrigger):
    """Sample the event loop every ``interval`` seconds; report to ``folder`` every ``report_every`` seconds."""

    def __init__(self, folder: str, interval: float = 0.1, report_every: float = 5.0) -> None:
        super().__init__()
        self.folder, self.interval, self.report_every = folder, float(interval), float(report_every)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs = {"folder": self.folder, "interval": self.interval, "report_every": self.report_every}
        return (f"{type(self).__module__}.{type(self).__qualname__}", kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        pauses: list[tuple[int, float]] = []
        started: list[float] = []

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                pauses.append((int(info["generation"]), time.perf_counter() - started[0]))

        out = Path(self.folder) / f"probe-{os.environ.get('GPTIMAGE_E2E_HOSTNAME', os.getpid())}.jsonl"
        samples: list[tuple[float, float]] = []
        gc.callbacks.append(on_gc)
        try:
            next_report = time.monotonic() + self.report_every
            while True:
                wall, cpu = time.perf_counter(), time.thread_time()
                await asyncio.sleep(self.interval)
                samples.append((time.perf_counter() - wall - self.interval, time.thread_time() - cpu))
                if time.monotonic() >= next_report:
                    line = json.dumps(summary(samples, pauses, self.interval)) + "\n"
                    samples, pauses[:] = [], []
                    await asyncio.to_thread(_append, out, line)
                    next_report += self.report_every
        finally:
            gc.callbacks.remove(on_gc)
        yield TriggerEvent({})  # never reached: the probe runs until its task is ended


def _append(path: Path, line: str) -> None:
    with path.open("a") as handle:
        handle.write(line)


class LoopLagProbeOperator(BaseOperator):
    """Defer to a :class:`LoopLagProbeTrigger` reporting to ``dag_run.conf["folder"]``."""

    def execute(self, context: Any) -> None:
        folder = str(context["dag_run"].conf["folder"])
        self.defer(trigger=LoopLagProbeTrigger(folder=folder), method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> None:
        return None
