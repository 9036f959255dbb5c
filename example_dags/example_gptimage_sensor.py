"""Wait for a job created elsewhere: a job started with the hook (or by another DAG, a script, the web app)
and collected by the deferrable sensor, which copies its image like the operator does.

Runs as shipped against the bundled simulator and against the real service once the ``gptimage_default``
connection holds a real key. Images land under the Airflow Variable ``gptimage_output_root``.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.sensors.gptimage import GPTImageTaskSensor

DEFAULT_ROOT = (Path(__file__).resolve().parent.parent / "demo-output").as_uri()
OUTPUT = "{{ var.value.get('gptimage_output_root', '" + DEFAULT_ROOT + "') }}/sensor/"
POLL_SECONDS = float(os.environ.get("GPTIMAGE_EXAMPLE_POLL_SECONDS", "5"))

with DAG(
    dag_id="example_gptimage_sensor",
    description="Start a job with the hook, collect it with the deferrable sensor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["gptimage", "example"],
):
    # [START howto_hook_create_task]
    @task
    def start_banner() -> str:
        """Create a job and return its id at once (nothing waits here; the sensor collects it)."""
        hook = GPTImageHook()  # the gptimage_default connection
        return hook.create_task("A wide banner of paper lanterns over a night market", aspect_ratio="21:9")

    # [END howto_hook_create_task]

    # [START howto_sensor_gptimage]
    GPTImageTaskSensor(
        task_id="wait_for_banner",
        job_id=start_banner(),  # templated: an XComArg, or "{{ ti.xcom_pull(...)['job_id'] }}"
        destination=OUTPUT,
        filename="banner",
        poll_interval=POLL_SECONDS,
    )
    # [END howto_sensor_gptimage]
