"""DAGs the operator tests run with dag.test(); their arguments come from environment variables."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset

from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator
from airflow_provider_gptimage.sensors.gptimage import GPTImageTaskSensor

PROMPT = os.environ.get("GPTIMAGE_TEST_PROMPT", "a test image for {{ ds }}")
DESTINATION = os.environ.get("GPTIMAGE_TEST_DESTINATION") or None
DESTINATION_CONN_ID = os.environ.get("GPTIMAGE_TEST_DESTINATION_CONN_ID") or None
FILENAME = os.environ.get("GPTIMAGE_TEST_FILENAME") or None

with DAG("gptimage_generate", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    GPTImageGenerateOperator(
        task_id="generate",
        prompt=PROMPT,
        aspect_ratio="3:2",
        poll_interval=0.05,
        max_poll_interval=0.2,
        destination=DESTINATION,
        destination_conn_id=DESTINATION_CONN_ID,
        filename=FILENAME,
        retries=int(os.environ.get("GPTIMAGE_TEST_RETRIES", "0")),
        retry_delay=timedelta(seconds=0),
    )

with DAG("gptimage_generate_sync", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    GPTImageGenerateOperator(
        task_id="generate",
        prompt=PROMPT,
        deferrable=False,
        poll_interval=0.05,
        max_poll_interval=0.2,
        destination=DESTINATION,
    )

with DAG("gptimage_fire_and_sense", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    start = GPTImageGenerateOperator(task_id="start", prompt=PROMPT, wait_for_completion=False)
    (
        GPTImageTaskSensor(
            task_id="sense",
            job_id="{{ ti.xcom_pull(task_ids='start')['job_id'] }}",
            poll_interval=0.05,
            max_poll_interval=0.2,
            destination=DESTINATION,
        )
        << start
    )

with DAG("gptimage_generate_asset", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    GPTImageGenerateOperator(
        task_id="generate",
        prompt=PROMPT,
        poll_interval=0.05,
        max_poll_interval=0.2,
        destination=DESTINATION,
        filename=FILENAME,
        outlets=[Asset(name="gptimage_test_images")],
    )

# A filename as a template renders it (``{{ params.sku }}`` with no SKU renders "None", a missing key "").
NAME_TEMPLATE = os.environ.get("GPTIMAGE_TEST_FILENAME_TEMPLATE", "{{ params.sku }}")
NAME_PARAMS = {"sku": os.environ.get("GPTIMAGE_TEST_SKU")}

with DAG(
    "gptimage_generate_templated_name",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params=NAME_PARAMS,
):
    GPTImageGenerateOperator(
        task_id="generate",
        prompt=PROMPT,
        poll_interval=0.05,
        max_poll_interval=0.2,
        destination=DESTINATION,
        destination_conn_id=DESTINATION_CONN_ID,
        filename=NAME_TEMPLATE,
    )

with DAG(
    "gptimage_sense_templated_name",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params=NAME_PARAMS,
):
    started = GPTImageGenerateOperator(task_id="start", prompt=PROMPT, wait_for_completion=False)
    (
        GPTImageTaskSensor(
            task_id="sense",
            job_id="{{ ti.xcom_pull(task_ids='start')['job_id'] }}",
            poll_interval=0.05,
            max_poll_interval=0.2,
            destination=DESTINATION,
            filename=NAME_TEMPLATE,
        )
        << started
    )
