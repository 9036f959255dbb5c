"""Large catalogs: thousands of product images in ONE task, paced to the account's limits, paying only for
new and changed products.

Dynamic task mapping (see ``example_gptimage_catalog``) gives each image a task instance and a trigger;
past a few hundred images use ``GPTImageBatchGenerateOperator`` instead: one task, one trigger per window,
at most ``max_active_jobs`` jobs in flight (shrinking on 409, waiting out 429). It plans from the catalog's
manifest itself (new, changed, unchanged, removed), creates jobs only for new and changed products, and
writes the manifest and the night's report at the end; ``gallery`` then draws the current catalog.

* The same stable layout as the mapped example: ``<root>/<sku>.png`` and its sidecar, ``_thumbs/``,
  ``_history/``, ``_catalog/`` (manifest, journal, reports); ``<root>`` is the Variable
  ``gptimage_batch_catalog_root``, the product list the Variable ``gptimage_catalog_products``.
* ``max_new_images`` is the spend guard: a night needing more jobs fails before any create.
* Progress is kept in ``task_state_store`` and jobs in the destination's journal, so neither a retry nor
  a new run of the same night pays twice.
"""

from __future__ import annotations

import csv
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gallery import GPTImageGalleryOperator

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_ROOT = (Path(__file__).resolve().parent.parent / "demo-output" / "batch-catalog").as_uri()
ROOT = "{{ var.value.get('gptimage_batch_catalog_root', '" + DEFAULT_ROOT + "') }}/"
PRODUCTS = "{{ var.value.get('gptimage_catalog_products', 'products.csv') }}"
#: The spend guard: the most new jobs one night may create (new + changed products).
MAX_NEW_IMAGES = 50
POLL_SECONDS = float(os.environ.get("GPTIMAGE_EXAMPLE_POLL_SECONDS", "10"))
PROMPT_TEMPLATE = (
    "Studio product photograph of {name} ({category}): {description}. Centered on a seamless light grey "
    "background, soft diffused lighting, high detail, e-commerce catalog style, no text."
)

with DAG(
    dag_id="example_gptimage_batch_catalog",
    description="Generate every new or changed product image in one batch task",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["gptimage", "example"],
):

    @task
    def catalog_requests(products: str) -> list[dict[str, str]]:
        """One item per product: the SKU is the key (and the image's file name)."""
        with (DATA / products).open(newline="", encoding="utf-8") as handle:  # an absolute path stays as is
            return [
                {"key": row["sku"], "prompt": PROMPT_TEMPLATE.format(**row), "aspect_ratio": "1:1"}
                for row in csv.DictReader(handle)
            ]

    # [START howto_batch_catalog]
    images = GPTImageBatchGenerateOperator(
        task_id="generate_all",
        requests=catalog_requests(PRODUCTS),
        max_active_jobs=5,  # the account's active-task limit
        destination=ROOT,  # <root>/<sku>.png, the same folder every night
        max_new_images=MAX_NEW_IMAGES,  # more new + changed products than this: fail before any create
        failure_policy="fail_at_end",
        poll_interval=POLL_SECONDS,
        max_poll_interval=max(POLL_SECONDS, 30.0),
        retries=2,
    )
    # [END howto_batch_catalog]
    # [START howto_gallery_catalog]
    gallery = GPTImageGalleryOperator(
        task_id="gallery",
        folder=ROOT,  # reads the catalog's manifest: fast at 10,000 products
        title="Batch catalog",
        page_size=200,
        trigger_rule="all_done",
    )
    # [END howto_gallery_catalog]
    images >> gallery
