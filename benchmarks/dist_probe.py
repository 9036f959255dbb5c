"""A trigger that measures the event loop of the triggerer it runs in (benchmark 7), and the operator deferring to it.

Every ``interval`` seconds it sleeps and notes how late it woke up (the loop's lag) and how much CPU the loop's
thread used meanwhile (``time.thread_time()``): a late wake-up during which the loop thread was busy means
something blocked the loop (a trigger, Airflow's runner, a garbage collection); one during which it was not
means the thread waited for a CPU or for the GIL (a busy machine, another thread). It also times this process's
garbage collections (``gc.callbacks``). It fires once, after ``duration`` seconds, with a summary.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator
from airflow.triggers.base import BaseTrigger, TriggerEvent


class LoopLagProbeTrigger(BaseTrigger):
    """Sample the event loop for ``duration`` seconds, every ``interval`` seconds; fire with a summary."""

    def __init__(self, duration: float, interval: float = 0.1) -> None:
        super().__init__()
        self.duration = float(duration)
        self.interval = float(interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"duration": self.duration, "interval": self.interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        pauses: list[tuple[int, float]] = []
        started: list[float] = []

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                pauses.append((int(info["generation"]), time.perf_counter() - started[0]))

        samples: list[tuple[float, float]] = []
        gc.callbacks.append(on_gc)
        try:
            end = time.monotonic() + self.duration
            while time.monotonic() < end:
                wall, cpu = time.perf_counter(), time.thread_time()
                await asyncio.sleep(self.interval)
                samples.append((time.perf_counter() - wall - self.interval, time.thread_time() - cpu))
        finally:
            gc.callbacks.remove(on_gc)
        lags = sorted(lag for lag, _ in samples)
        late = [(lag, cpu) for lag, cpu in samples if lag > 0.05]
        worst = max(samples, default=(0.0, 0.0))
        yield TriggerEvent(
            {
                "hostname": os.environ.get("GPTIMAGE_E2E_HOSTNAME", ""),
                "pid": os.getpid(),
                "samples": len(samples),
                "lag_p50_ms": 1000 * lags[len(lags) // 2] if lags else None,
                "lag_p99_ms": 1000 * lags[int(len(lags) * 0.99)] if lags else None,
                "lag_max_ms": 1000 * worst[0],
                "loop_cpu_during_max_ms": 1000 * worst[1],
                "late_over_50ms": len(late),
                "late_over_100ms": sum(1 for lag, _ in late if lag > 0.1),
                "late_over_50ms_loop_busy": sum(1 for lag, cpu in late if cpu >= 0.5 * (lag + self.interval)),
                "gc_collections": len(pauses),
                "gc_gen2": sum(1 for gen, _ in pauses if gen == 2),
                "gc_max_ms": 1000 * max((p for _, p in pauses), default=0.0),
            }
        )


class LoopLagProbeOperator(BaseOperator):
    """Defer to a :class:`LoopLagProbeTrigger` for ``dag_run.conf["probe_seconds"]`` seconds; return its summary."""

    def execute(self, context: Any) -> None:
        seconds = float(context["dag_run"].conf.get("probe_seconds", 60))
        self.defer(trigger=LoopLagProbeTrigger(duration=seconds), method_name="execute_complete")

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        return event
