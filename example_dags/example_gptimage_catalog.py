"""Nightly catalog: an image for every product, kept in object storage with provenance and a gallery.

Every night (``@daily``, ``catchup=False``) the DAG reads ``data/products.csv``, builds one prompt per
product, generates the images with dynamic task mapping, copies each to ``<root>/<night>/<sku>.png`` with a
JSON provenance sidecar, and writes ``<root>/<night>/index.html``, a contact sheet of the night's images.

* ``<root>`` is the Airflow Variable ``gptimage_catalog_root`` (default: ``./demo-output/catalog`` next
  to the repo). Set it to ``s3://my-bucket/catalog`` and the Variable ``gptimage_catalog_conn_id`` to an
  AWS connection id to keep the images in S3: nothing else changes.
* ``<night>`` is the run's logical date, or the date it was triggered for (``run_after``) when it has
  none: a run triggered from the CLI or the REST API without a logical date has no ``{{ ds }}``.
* Mapped tasks are labelled by SKU in the grid (``map_index_template``), not 0, 1, 2...
* Concurrency: at most ``GPTIMAGE_EXAMPLE_MAX_ACTIVE_JOBS`` (default 5, the account's active-task limit)
  generate tasks at once, across every run of this DAG, through ``max_active_tis_per_dag``, which counts
  deferred tasks (a deferred task still holds a running job on the service) from Airflow 3.2; on 3.0 and
  3.1 it counts only running ones, and the service's 409 answers are retried with backoff.
  The example deliberately uses no pool: a task in a pool that does not exist stays "scheduled" forever
  (only the scheduler log says why), and neither DAG code nor a task can create or read a pool in
  Airflow 3 (no metadata-DB access outside the scheduler and the API server). To share one account's
  limit between several DAGs, create a pool that counts deferred tasks, then pass ``pool="gptimage_api"``::

      airflow pools set gptimage_api 5 "GPT Image active-task limit" --include-deferred

* Re-running a night (retry, clear, backfill) creates no new job for an image that is already complete
  (skip-if-present, keyed by SKU), so it is never paid twice.
* The gallery task emits an event for the ``gptimage_catalog`` asset, so a downstream DAG can be
  scheduled on new catalog images (see ``example_gptimage_catalog_consumer``).
"""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Asset, task

from airflow_provider_gptimage.operators.gallery import GPTImageGalleryOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator

PRODUCTS = Path(__file__).resolve().parent / "data" / "products.csv"
DEFAULT_ROOT = (Path(__file__).resolve().parent.parent / "demo-output" / "catalog").as_uri()
ROOT = "{{ var.value.get('gptimage_catalog_root', '" + DEFAULT_ROOT + "') }}"
CONN_ID = "{{ var.value.get('gptimage_catalog_conn_id', '') }}"
#: The night: the logical date, or ``run_after`` for a run triggered without one (``ds`` is then undefined).
NIGHT = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
NIGHT_FOLDER = ROOT + "/" + NIGHT + "/"
#: Generate tasks in flight at once (deferred ones included, Airflow 3.2+): the account's active-task limit.
MAX_ACTIVE_JOBS = int(os.environ.get("GPTIMAGE_EXAMPLE_MAX_ACTIVE_JOBS", "5"))
#: Seconds before the second poll; the demo shortens it (a real image takes about a minute).
POLL_SECONDS = float(os.environ.get("GPTIMAGE_EXAMPLE_POLL_SECONDS", "10"))
PROMPT_TEMPLATE = (
    "Studio product photograph of {name} ({category}): {description}. Centered on a seamless light grey "
    "background, soft diffused lighting, high detail, e-commerce catalog style, no text."
)
CATALOG_ASSET = Asset(name="gptimage_catalog")

with DAG(
    dag_id="example_gptimage_catalog",
    description="Generate a catalog image for every product, nightly",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gptimage", "example"],
):

    @task
    def product_requests() -> list[dict[str, str]]:
        """One generate request per product row: the prompt, and the SKU as the image's name."""
        with PRODUCTS.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        return [{"prompt": PROMPT_TEMPLATE.format(**row), "filename": row["sku"]} for row in rows]

    images = GPTImageGenerateOperator.partial(
        task_id="generate",
        aspect_ratio="1:1",
        resolution="1K",
        destination=NIGHT_FOLDER,
        destination_conn_id=CONN_ID,
        max_active_tis_per_dag=MAX_ACTIVE_JOBS,
        map_index_template="{{ task.filename }}",  # the grid shows each mapped task's SKU
        poll_interval=POLL_SECONDS,
        max_poll_interval=max(POLL_SECONDS, 30.0),
        retries=2,
    ).expand_kwargs(product_requests())

    gallery = GPTImageGalleryOperator(
        task_id="gallery",
        folder=NIGHT_FOLDER,
        folder_conn_id=CONN_ID,
        title="Catalog images for " + NIGHT,
        trigger_rule="all_done",
        outlets=[CATALOG_ASSET],
    )
    images >> gallery


with DAG(
    dag_id="example_gptimage_catalog_consumer",
    description="Runs whenever the catalog DAG has published new images",
    schedule=[CATALOG_ASSET],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["gptimage", "example"],
):

    @task
    def announce(**context) -> None:
        """Print what the triggering asset events say was published."""
        for event in context["triggering_asset_events"].get(CATALOG_ASSET, []):
            print(f"new catalog gallery: {event.extra}")

    announce()
