"""DAGs the catalog tests run with dag.test(); their arguments come from environment variables.

``GPTIMAGE_CATALOG_ITEMS`` (JSON list of items ``{"key", "prompt", ...}``), ``GPTIMAGE_CATALOG_ROOT`` (the
catalog's folder), ``GPTIMAGE_CATALOG_CONN_ID``, ``GPTIMAGE_CATALOG_MAX_NEW`` (the spend guard, empty:
none), ``GPTIMAGE_CATALOG_DRY_RUN``, ``GPTIMAGE_CATALOG_REMOVE`` and ``GPTIMAGE_CATALOG_FORCE`` (``1``: on; a
JSON list: those keys).
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.catalog import GPTImageCatalogPlanOperator, GPTImageCatalogReportOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator

ENV = os.environ.get
ROOT = ENV("GPTIMAGE_CATALOG_ROOT", "file:///tmp/gptimage-catalog-test")
CONN_ID = ENV("GPTIMAGE_CATALOG_CONN_ID", "")
MAX_NEW = int(ENV("GPTIMAGE_CATALOG_MAX_NEW") or -1)
GUARD = None if MAX_NEW < 0 else MAX_NEW
DRY_RUN = ENV("GPTIMAGE_CATALOG_DRY_RUN") == "1"
REMOVE = ENV("GPTIMAGE_CATALOG_REMOVE") == "1"
FORCE_TEXT = ENV("GPTIMAGE_CATALOG_FORCE") or ""
FORCE = json.loads(FORCE_TEXT) if FORCE_TEXT.startswith("[") else FORCE_TEXT == "1"  # a list: those keys


def items() -> list[dict]:
    return json.loads(ENV("GPTIMAGE_CATALOG_ITEMS", "[]"))


with DAG("gptimage_catalog_mapped", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def product_requests() -> list[dict]:
        return items()

    plan = GPTImageCatalogPlanOperator(
        task_id="plan",
        requests=product_requests(),
        destination=ROOT,
        destination_conn_id=CONN_ID,
        max_new_images=GUARD,
        dry_run=DRY_RUN,
        force=FORCE,
    )
    images = GPTImageGenerateOperator.partial(
        task_id="generate",
        destination=ROOT,
        destination_conn_id=CONN_ID,
        poll_interval=0.2,
        max_poll_interval=0.5,
        map_index_template="{{ task.filename }}",
        **({"force": FORCE} if isinstance(FORCE, bool) else {}),  # a list: the plan gives force to its keys
    ).expand_kwargs(plan.output)
    report = GPTImageCatalogReportOperator(
        task_id="report",
        destination=ROOT,
        destination_conn_id=CONN_ID,
        remove_missing=REMOVE,
        trigger_rule="all_done",
    )
    plan >> images >> report


with DAG("gptimage_catalog_batch", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):

    @task
    def batch_requests() -> list[dict]:
        return items()

    GPTImageBatchGenerateOperator(
        task_id="generate",
        requests=batch_requests(),
        destination=ROOT,
        destination_conn_id=CONN_ID,
        max_active_jobs=4,
        poll_interval=0.2,
        max_poll_interval=0.5,
        max_new_images=GUARD,
        dry_run=DRY_RUN,
        remove_missing=REMOVE,
        force=FORCE,
    )
