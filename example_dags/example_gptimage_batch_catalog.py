"""Large catalogs: thousands of product images in ONE task, paced to the account's limits.

Dynamic task mapping (see ``example_gptimage_catalog``) gives each image a task instance and a trigger;
past a few hundred images use ``GPTImageBatchGenerateOperator`` instead: one task, one trigger per window,
at most ``max_active_jobs`` jobs in flight (shrinking on 409, waiting out 429), progress kept in
``task_state_store`` so a retry neither pays twice nor regenerates what ``destination`` already holds.
"""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gallery import GPTImageGalleryOperator

PRODUCTS = Path(__file__).resolve().parent / "data" / "products.csv"
DEFAULT_ROOT = (Path(__file__).resolve().parent.parent / "demo-output" / "batch-catalog").as_uri()
#: The night: the logical date, or ``run_after`` for a run triggered without one (``ds`` is then undefined).
NIGHT = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
NIGHT_FOLDER = "{{ var.value.get('gptimage_batch_catalog_root', '" + DEFAULT_ROOT + "') }}/" + NIGHT + "/"
POLL_SECONDS = float(os.environ.get("GPTIMAGE_EXAMPLE_POLL_SECONDS", "10"))
PROMPT_TEMPLATE = (
    "Studio product photograph of {name} ({category}): {description}. Centered on a seamless light grey "
    "background, soft diffused lighting, high detail, e-commerce catalog style, no text."
)

with DAG(
    dag_id="example_gptimage_batch_catalog",
    description="Generate every product image in one batch task",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gptimage", "example"],
):

    @task
    def catalog_requests() -> list[dict[str, str]]:
        """One item per product: the SKU is the key (and the image's file name)."""
        with PRODUCTS.open(newline="", encoding="utf-8") as handle:
            return [
                {"key": row["sku"], "prompt": PROMPT_TEMPLATE.format(**row), "aspect_ratio": "1:1"}
                for row in csv.DictReader(handle)
            ]

    images = GPTImageBatchGenerateOperator(
        task_id="generate_all",
        requests=catalog_requests(),
        max_active_jobs=5,
        destination=NIGHT_FOLDER,
        failure_policy="fail_at_end",
        poll_interval=POLL_SECONDS,
        max_poll_interval=max(POLL_SECONDS, 30.0),
        retries=2,
    )
    images >> GPTImageGalleryOperator(
        task_id="gallery", folder=NIGHT_FOLDER, title="Batch catalog " + NIGHT, trigger_rule="all_done"
    )
