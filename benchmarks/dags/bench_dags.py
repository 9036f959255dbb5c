"""DAGs run by the benchmarks with ``dag.test()``; their sizes come from environment variables.

- ``bench_worker_deferrable`` / ``bench_worker_sleep`` (benchmark 5): ``BENCH_IMAGES`` one-image tasks, with
  the deferrable operator or with a ``PythonOperator`` that polls with ``time.sleep``; each records the
  time its code runs in the worker (``BENCH_TIMINGS``, one JSON line per execution).
- ``bench_batch`` (benchmark 2): one ``GPTImageBatchGenerateOperator`` over the ``BENCH_BATCH_N`` prompts an
  upstream task returns; deferrable unless ``BENCH_BATCH_DEFERRABLE`` is ``0``.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, task

from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator

ENV = os.environ.get
IMAGES = int(ENV("BENCH_IMAGES", "3"))
POLL = float(ENV("BENCH_POLL_INTERVAL", "0.5"))


def _record(task_id: str, phase: str, start: float, end: float) -> None:
    """Append one execution's time in the worker to ``BENCH_TIMINGS``."""
    path = ENV("BENCH_TIMINGS")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"task_id": task_id, "phase": phase, "start": start, "end": end}) + "\n")


class TimedGenerateOperator(GPTImageGenerateOperator):
    """The deferrable operator, recording how long each of its executions holds the worker."""

    def execute(self, context: Any) -> Any:
        start = time.time()
        try:
            return super().execute(context)
        finally:  # TaskDeferred ends the first execution
            _record(self.task_id, "execute", start, time.time())

    def execute_complete(self, context: Any, event: Any = None, deferred_in_try: int | None = None) -> Any:
        start = time.time()
        try:
            return super().execute_complete(context, event, deferred_in_try)
        finally:
            _record(self.task_id, "execute_complete", start, time.time())


def generate_with_sleep(prompt: str, task_id: str) -> dict[str, Any]:
    """What a user would write without the provider's deferral: create, then poll with time.sleep."""
    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

    start = time.time()
    try:
        hook = GPTImageHook("gptimage_default")
        job_id = hook.create_task(prompt)
        while True:
            time.sleep(POLL)
            record = hook.get_task(job_id)
            if record.is_finished:
                return {"job_id": job_id, "state": record.state, "result_urls": list(record.result_urls)}
    finally:
        _record(task_id, "python", start, time.time())


with DAG("bench_worker_deferrable", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    for i in range(IMAGES):
        TimedGenerateOperator(
            task_id=f"image_{i}", prompt=f"deferrable benchmark image {i}", poll_interval=POLL, max_poll_interval=POLL
        )

with DAG("bench_worker_sleep", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    for i in range(IMAGES):
        PythonOperator(
            task_id=f"image_{i}",
            python_callable=generate_with_sleep,
            op_kwargs={"prompt": f"sleeping benchmark image {i}", "task_id": f"image_{i}"},
        )

with DAG("bench_batch", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def catalog() -> list[dict[str, str]]:
        """The prompts, from an upstream task as a catalog would come (the operator pulls them from XCom)."""
        return [{"key": f"sku-{i:05d}", "prompt": f"catalog image {i}"} for i in range(int(ENV("BENCH_BATCH_N", "1")))]

    GPTImageBatchGenerateOperator(
        task_id="generate",
        requests=catalog(),
        max_active_jobs=int(ENV("BENCH_BATCH_K", "50")),
        failure_policy="report",
        deferrable=ENV("BENCH_BATCH_DEFERRABLE", "1") != "0",
        poll_interval=float(ENV("BENCH_BATCH_POLL", "0.5")),
        max_poll_interval=float(ENV("BENCH_BATCH_MAX_POLL", "0.5")),
        wake_linger=float(ENV("BENCH_BATCH_LINGER", "0.2")),
        wake_fraction=float(ENV("BENCH_BATCH_WAKE_FRACTION", "0.2")),
        timeout=120,
    )
