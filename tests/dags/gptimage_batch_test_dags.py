"""DAGs the batch operator tests run with dag.test(); their arguments come from environment variables.

``GPTIMAGE_BATCH_N`` items ``sku-0000``...; ``GPTIMAGE_BATCH_FAIL`` (comma-separated positions) get
``[sim:fail]`` in their prompt; ``GPTIMAGE_BATCH_EXTRA`` is JSON of extra items appended to the list.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator

ENV = os.environ.get


def catalog() -> list[dict]:
    """The requests of the run, built from the environment (as an upstream task would from a catalog)."""
    count = int(ENV("GPTIMAGE_BATCH_N", "10"))
    failing = {int(p) for p in ENV("GPTIMAGE_BATCH_FAIL", "").split(",") if p}
    items = [
        {"key": f"sku-{i:04d}", "prompt": f"product shot {i}" + (" [sim:fail]" if i in failing else "")}
        for i in range(count)
    ]
    for i, item in enumerate(items):
        if i % 3 == 1:
            item["aspect_ratio"] = "4:5"
    return items + json.loads(ENV("GPTIMAGE_BATCH_EXTRA", "[]"))


with DAG("gptimage_batch", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def plan() -> list[dict]:
        return catalog()

    GPTImageBatchGenerateOperator(
        task_id="generate",
        requests=plan(),
        max_active_jobs=int(ENV("GPTIMAGE_BATCH_MAX_ACTIVE", "5")),
        destination=ENV("GPTIMAGE_BATCH_DESTINATION") or None,
        destination_conn_id=ENV("GPTIMAGE_BATCH_DESTINATION_CONN_ID") or None,
        failure_policy=ENV("GPTIMAGE_BATCH_POLICY", "fail_at_end"),
        poll_interval=float(ENV("GPTIMAGE_BATCH_POLL", "0.05")),
        max_poll_interval=float(ENV("GPTIMAGE_BATCH_MAX_POLL", "0.2")),
        wake_linger=float(ENV("GPTIMAGE_BATCH_LINGER", "0.1")),
        timeout=float(ENV("GPTIMAGE_BATCH_TIMEOUT", "60")),
        persist_every=int(ENV("GPTIMAGE_BATCH_PERSIST_EVERY", "1")),
        deferrable=ENV("GPTIMAGE_BATCH_DEFERRABLE", "true") == "true",
        retries=int(ENV("GPTIMAGE_BATCH_RETRIES", "0")),
        retry_delay=timedelta(seconds=0),
    )

with DAG("gptimage_batch_templated", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def plan_text() -> list[dict]:
        return catalog()

    (
        GPTImageBatchGenerateOperator(
            task_id="generate",
            requests="{{ ti.xcom_pull(task_ids='plan_text') }}",
            max_active_jobs=int(ENV("GPTIMAGE_BATCH_MAX_ACTIVE", "5")),
            poll_interval=0.05,
            max_poll_interval=0.2,
            wake_linger=0.1,
        )
        << plan_text()
    )
