"""Sizes and prompts shared by the distributed DAGs (``dags/``) and the scenarios that check them.

A module of its own so the scenarios can import them without defining the DAGs at collection; the DAG
file imports it too (the stack puts the repository on the services' ``PYTHONPATH``).
"""

from __future__ import annotations

#: Products of ``gptimage_dist_catalog`` (one mapped task each), keyed ``sku-00``...
CATALOG_COUNT = 40
#: Items of ``gptimage_dist_batch``, keyed ``item-000``...
BATCH_COUNT = 300
#: Items and window of ``gptimage_dist_batch_kills``, keyed ``sku-00``...
KILLS_COUNT = 30
KILLS_WINDOW = 5
#: Products of ``gptimage_dist_incremental_catalog``'s first night, keyed ``inc-00``...; its second night
#: changes the prompt of ``INCREMENTAL_CHANGED`` and adds ``INCREMENTAL_ADDED``.
INCREMENTAL_COUNT = 12
INCREMENTAL_CHANGED = "inc-03"
INCREMENTAL_ADDED = f"inc-{INCREMENTAL_COUNT:02d}"


def catalog_prompt(index: int, run_id: str) -> str:
    """The prompt of catalog product ``index`` in run ``run_id``."""
    return f"distributed catalog product {index:02d} of {run_id}"


def batch_prompt(index: int, run_id: str) -> str:
    """The prompt of batch item ``index`` in run ``run_id``."""
    return f"distributed batch item {index:03d} of {run_id}"


def incremental_products(night: int) -> list[dict[str, str]]:
    """The requests of night 1 or 2 of the incremental catalog (night 2: one prompt changed, one product added)."""
    products = {f"inc-{i:02d}": f"distributed incremental catalog product {i:02d}" for i in range(INCREMENTAL_COUNT)}
    if night == 2:
        products[INCREMENTAL_CHANGED] += ", now in charcoal"
        products[INCREMENTAL_ADDED] = f"distributed incremental catalog product {INCREMENTAL_COUNT:02d}"
    return [{"key": key, "prompt": prompt, "aspect_ratio": "1:1"} for key, prompt in products.items()]
