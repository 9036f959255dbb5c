"""`make demo`: run the example DAGs against the bundled simulator and leave the images in a folder.

Everything is local: a throw-away AIRFLOW_HOME with a SQLite metadata DB, the simulator in its own
process on a free loopback port, a fake API key. Nothing reaches the real service or spends credits.

Each catalog example runs two nights on one stable folder: night 1 generates every product of
``example_dags/data/products.csv``; night 2 reads ``products-next-night.csv`` (one description changed,
one product added) and must cost exactly two ``createTask`` requests, counted at the simulator. The
catalogs' folders (``<output>/catalog``, ``<output>/batch-catalog``) start empty on every demo, so night 1
always generates the whole catalog.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DAG_IDS = ("example_gptimage_quickstart", "example_gptimage_catalog", "example_gptimage_batch_catalog")
#: The catalog examples, each run for two nights: where each finds the night's plan counts and its gallery.
CATALOGS: dict[str, Callable[[Any], tuple[dict[str, Any], str | None]]] = {
    # plan -> generate (mapped) -> report: the plan's XCom "plan", the report's "gallery_uri".
    "example_gptimage_catalog": lambda run: (
        (xcom(run, "plan", "plan") or {}).get("counts", {}),
        (xcom(run, "report") or {}).get("gallery_uri"),
    ),
    # one batch task (its result's "catalog" is the night's report) -> gallery.
    "example_gptimage_batch_catalog": lambda run: (
        ((xcom(run, "generate_all") or {}).get("catalog") or {}).get("counts", {}),
        (xcom(run, "gallery") or {}).get("uri"),
    ),
}
#: The product list of each night (the Variable ``gptimage_catalog_products``), and night 2's expected cost.
NIGHTS = ("products.csv", "products-next-night.csv")
NIGHT_2_CREATES = 2
#: The simulated account's active-task limit (the catalog examples' default bound).
ACTIVE_TASK_LIMIT = 5


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    """One XCom value of ``dag_run``, deserialised (``None`` when absent)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key, map_indexes=-1)
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def plan_line(counts: dict[str, Any]) -> str:
    """``new=1 changed=1 unchanged=19 removed=0`` from a plan's counts."""
    return " ".join(f"{name}={counts.get(name, 0)}" for name in ("new", "changed", "unchanged", "removed"))


def run_nights(dag: Any, sim: Any) -> list[str]:
    """Run the catalog ``dag`` for two nights; print each night's plan and gallery; return what went wrong."""
    problems = []
    for night, products in enumerate(NIGHTS, start=1):
        os.environ["AIRFLOW_VAR_GPTIMAGE_CATALOG_PRODUCTS"] = products
        before = sim.stats().creates
        run = dag.test(logical_date=None)  # as `airflow dags trigger` does: no logical date
        creates = sim.stats().creates - before
        counts, gallery = CATALOGS[dag.dag_id](run)
        print(f"DAG {dag.dag_id}, night {night} ({products}): {run.state}")
        print(f"  plan: {plan_line(counts)}")
        print(f"  createTask requests: {creates}")
        print(f"  gallery: {gallery}")
        if run.state != "success":
            problems.append(f"{dag.dag_id} night {night}: {run.state}")
        if night == 2 and creates != NIGHT_2_CREATES:
            problems.append(f"{dag.dag_id} night 2 sent {creates} createTask requests, not {NIGHT_2_CREATES}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default="demo-output", help="folder for the generated images")
    parser.add_argument("--generation-seconds", type=float, default=1.0, help="simulated time per image")
    parser.add_argument("--dag", action="append", help="DAG id to run (default: every example)")
    args = parser.parse_args()
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    for catalog in ("catalog", "batch-catalog"):  # night 1 starts from an empty catalog every time
        shutil.rmtree(output / catalog, ignore_errors=True)

    home = Path(tempfile.mkdtemp(prefix="gptimage-demo-home-"))
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "example_dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW_VAR_GPTIMAGE_OUTPUT_ROOT=output.as_uri(),
        AIRFLOW_VAR_GPTIMAGE_CATALOG_ROOT=(output / "catalog").as_uri(),
        AIRFLOW_VAR_GPTIMAGE_BATCH_CATALOG_ROOT=(output / "batch-catalog").as_uri(),
        GPTIMAGE_EXAMPLE_POLL_SECONDS="0.5",
    )
    from airflow_provider_gptimage.simulator import GPTImageSimulator

    with GPTImageSimulator(
        subprocess=True, generation_seconds=args.generation_seconds, active_task_limit=ACTIVE_TASK_LIMIT
    ) as sim:
        print(f"Simulator running at {sim.url}")
        os.environ["AIRFLOW_CONN_GPTIMAGE_DEFAULT"] = json.dumps(
            {"conn_type": "gptimage", "host": sim.url, "password": "sk-demo-not-a-real-key"}
        )
        try:
            from airflow.dag_processing.dagbag import DagBag
        except ImportError:  # Airflow < 3.2
            from airflow.models.dagbag import DagBag  # type: ignore[no-redef,attr-defined]
        from airflow.utils.db import resetdb

        resetdb()
        bag = DagBag(dag_folder=str(REPO / "example_dags"))
        if bag.import_errors:
            print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
            return 1
        problems = []
        for dag_id in args.dag or DAG_IDS:
            dag = bag.get_dag(dag_id)
            if dag_id in CATALOGS:
                problems += run_nights(dag, sim)
                continue
            run = dag.test(logical_date=None)  # as `airflow dags trigger` does: no logical date
            print(f"DAG {dag_id}: {run.state}")
            if run.state != "success":
                problems.append(f"{dag_id}: {run.state}")
        stats = sim.stats()
    images = sorted(p for p in output.rglob("*") if p.suffix in {".png", ".jpg", ".webp"} and "_thumbs" not in p.parts)
    print(f"\nSimulator: {stats.creates} jobs created, {stats.polls} polls; {len(images)} images under {output}")
    for gallery in sorted(output.rglob("index.html")):
        print(f"Gallery: {gallery}")
    if problems or not images:
        print(f"Demo failed: {'; '.join(problems) or 'no images written'}", file=sys.stderr)
        return 1
    print(f"Night 2 of each catalog cost exactly {NIGHT_2_CREATES} createTask requests (one changed, one new).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
