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


def catalog_prompt(index: int, run_id: str) -> str:
    """The prompt of catalog product ``index`` in run ``run_id``."""
    return f"distributed catalog product {index:02d} of {run_id}"


def batch_prompt(index: int, run_id: str) -> str:
    """The prompt of batch item ``index`` in run ``run_id``."""
    return f"distributed batch item {index:03d} of {run_id}"
