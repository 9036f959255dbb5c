"""DAGs the distributed end-to-end suite runs on CeleryExecutor; each run passes its destination in ``dag_run.conf``.

Prompts name the run (``{{ run_id }}``), so the simulator's per-prompt create counts tell runs apart; the
incremental catalog's do not (its nights share one folder, and the request decides what is paid for).
Short poll intervals keep the suite fast; the simulator's generation time is set per scenario.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.catalog import GPTImageCatalogPlanOperator, GPTImageCatalogReportOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator
from tests.e2e_distributed.names import (
    BATCH_COUNT,
    CATALOG_COUNT,
    INCREMENTAL_COUNT,
    KILLS_COUNT,
    KILLS_WINDOW,
    batch_prompt,
    catalog_prompt,
)

START = datetime(2026, 1, 1)
DESTINATION = "{{ dag_run.conf['destination'] }}"
POLL = 1.0
MAX_POLL = 2.0


with DAG("gptimage_dist_catalog", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # A nightly catalog as users write it: one mapped task per product (expand_kwargs), each deferring
    # to its own trigger and copying its image to the destination under the product's SKU.
    GPTImageGenerateOperator.partial(
        task_id="generate",
        destination=DESTINATION,
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
        retries=1,
        retry_delay=timedelta(seconds=1),
    ).expand_kwargs(
        [{"prompt": catalog_prompt(i, "{{ run_id }}"), "filename": f"sku-{i:02d}"} for i in range(CATALOG_COUNT)]
    )

with DAG("gptimage_dist_batch", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # A few hundred items in one batch task: each resume is a new Celery task, on whichever worker takes it.
    GPTImageBatchGenerateOperator(
        task_id="generate",
        requests=[{"key": f"item-{i:03d}", "prompt": batch_prompt(i, "{{ run_id }}")} for i in range(BATCH_COUNT)],
        max_active_jobs=60,
        destination=DESTINATION,
        retries=1,
        retry_delay=timedelta(seconds=1),
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
    )

with DAG("gptimage_dist_in_worker", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # Polls in the worker: killing that worker lands between create and completion; the retry runs on
    # the other worker and must re-attach to the job recorded in task_state_store.
    GPTImageGenerateOperator(
        task_id="generate",
        prompt="{{ dag_run.conf['prompt'] }}",
        destination=DESTINATION,
        deferrable=False,
        retries=1,
        retry_delay=timedelta(seconds=1),
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
    )

with DAG("gptimage_dist_batch_kills", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # Two worker kills (mid-copy, mid-create-group), hence two retries; see tests/e2e's batch scenario for
    # wake_fraction=1 and max_worker_wait.
    GPTImageBatchGenerateOperator(
        task_id="generate",
        requests=[{"key": f"sku-{i:02d}", "prompt": batch_prompt(i, "{{ run_id }}")} for i in range(KILLS_COUNT)],
        max_active_jobs=KILLS_WINDOW,
        destination=DESTINATION,
        retries=2,
        retry_delay=timedelta(seconds=1),
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
        wake_fraction=1.0,
        max_worker_wait=60.0,
    )

with DAG("gptimage_dist_incremental_catalog", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # Issue 11's nightly catalog on this topology: plan, one mapped task per new or changed product (labelled
    # by key), report. Each run passes its products (key, prompt) and the shared folder in ``dag_run.conf``.

    @task
    def products(**context) -> list[dict[str, str]]:
        """The night's requests, from the run's conf."""
        return list(context["dag_run"].conf["products"])

    plan = GPTImageCatalogPlanOperator(
        task_id="plan", requests=products(), destination=DESTINATION, max_new_images=INCREMENTAL_COUNT
    )
    images = GPTImageGenerateOperator.partial(
        task_id="generate",
        destination=DESTINATION,
        map_index_template="{{ task.filename }}",
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
        retries=1,
        retry_delay=timedelta(seconds=1),
    ).expand_kwargs(plan.output)
    images >> GPTImageCatalogReportOperator(task_id="report", destination=DESTINATION, trigger_rule="all_done")
