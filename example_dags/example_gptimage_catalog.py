"""Nightly catalog: an image for every product, paying only for new and changed products.

Every night (``@daily``, ``catchup=False``) the DAG reads the product list, builds one request per product,
and plans before paying: ``plan`` compares the requests with the catalog's manifest and hands only the new
and changed products to the mapped ``generate`` task; ``report`` folds the night into the manifest, writes
the night's report and the gallery. The second night of an unchanged catalog creates no job at all; one
product changed and one added cost exactly two.

* The layout is stable: ``<root>/<sku>.png`` is each product's current image, ``<root>/<sku>.json`` its
  provenance sidecar (with the request's fingerprint), ``<root>/_thumbs/`` the gallery's thumbnails,
  ``<root>/_history/`` the images a changed product replaced, ``<root>/_catalog/`` the manifest, the
  journal of jobs in flight and the nightly reports, ``<root>/index.html`` the gallery.
* ``<root>`` is the Airflow Variable ``gptimage_catalog_root`` (default: ``./demo-output/catalog`` next
  to the repo). Set it to ``s3://my-bucket/catalog`` and the Variable ``gptimage_catalog_conn_id`` to an
  AWS connection id to keep the images in S3: nothing else changes.
* The product list is ``data/products.csv``, or the file the Variable ``gptimage_catalog_products`` names
  (a name in ``data/``, or an absolute path): ``make demo`` runs a second night on
  ``data/products-next-night.csv``, with one description changed and one product added.
* Spend guard: a night that needs more than ``MAX_NEW_IMAGES`` new jobs fails in ``plan``, before any job
  is created, saying how many and why (a broken template that changes every prompt must not buy the whole
  catalog again). Raise it for the first night of a big catalog.
* Never twice for the same image: a job is journaled under ``<root>/_catalog/journal/`` as soon as its id
  is known, so a retry, a cleared task, a new run of the same night or a backfill re-attaches to it.
* No logical date needed: nothing here renders ``{{ ds }}``, so a run triggered from the CLI or the REST
  API without one works.
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

* The report task emits an event for the ``gptimage_catalog`` asset, so a downstream DAG can be
  scheduled on new catalog images (see ``example_gptimage_catalog_consumer``).
"""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, Asset, task

from airflow_provider_gptimage.operators.catalog import GPTImageCatalogPlanOperator, GPTImageCatalogReportOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_ROOT = (Path(__file__).resolve().parent.parent / "demo-output" / "catalog").as_uri()
ROOT = "{{ var.value.get('gptimage_catalog_root', '" + DEFAULT_ROOT + "') }}/"
CONN_ID = "{{ var.value.get('gptimage_catalog_conn_id', '') }}"
PRODUCTS = "{{ var.value.get('gptimage_catalog_products', 'products.csv') }}"
#: The spend guard: the most new jobs one night may create (new + changed products).
MAX_NEW_IMAGES = 50
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
    description="Generate a catalog image for every new or changed product, nightly",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gptimage", "example"],
):
    # [START howto_catalog_requests]
    @task
    def product_requests(products: str) -> list[dict[str, str]]:
        """One request per product row: the SKU is the key (and the image's file name)."""
        with (DATA / products).open(newline="", encoding="utf-8") as handle:  # an absolute path stays as is
            rows = list(csv.DictReader(handle))
        return [
            {"key": row["sku"], "prompt": PROMPT_TEMPLATE.format(**row), "aspect_ratio": "1:1", "resolution": "1K"}
            for row in rows
        ]

    # [END howto_catalog_requests]

    # [START howto_catalog_mapped]
    plan = GPTImageCatalogPlanOperator(
        task_id="plan",
        requests=product_requests(PRODUCTS),
        destination=ROOT,
        destination_conn_id=CONN_ID,
        max_new_images=MAX_NEW_IMAGES,  # more new + changed products than this: fail before any create
    )
    images = GPTImageGenerateOperator.partial(
        task_id="generate",
        destination=ROOT,
        destination_conn_id=CONN_ID,
        max_active_tis_per_dag=MAX_ACTIVE_JOBS,  # counts deferred tasks (Airflow 3.2+)
        map_index_template="{{ task.filename }}",  # the grid shows each mapped task's SKU
        poll_interval=POLL_SECONDS,
        max_poll_interval=max(POLL_SECONDS, 30.0),
        retries=2,
    ).expand_kwargs(plan.output)  # only the new and changed products
    report = GPTImageCatalogReportOperator(
        task_id="report",
        destination=ROOT,
        destination_conn_id=CONN_ID,
        title="Product catalog",
        trigger_rule="all_done",  # fold in what succeeded even when some images failed
        outlets=[CATALOG_ASSET],
    )
    images >> report
    # [END howto_catalog_mapped]


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
            print(f"new catalog: {event.extra}")

    announce()
