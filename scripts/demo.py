"""`make demo`: run the example DAGs against the bundled simulator and leave the images in a folder.

Everything is local: a throw-away AIRFLOW_HOME with a SQLite metadata DB, the simulator in its own
process on a free loopback port, a fake API key. Nothing reaches the real service or spends credits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAG_IDS = ("example_gptimage_quickstart", "example_gptimage_catalog", "example_gptimage_batch_catalog")
#: The simulated account's active-task limit (the catalog examples' default bound).
ACTIVE_TASK_LIMIT = 5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default="demo-output", help="folder for the generated images")
    parser.add_argument("--generation-seconds", type=float, default=1.0, help="simulated time per image")
    parser.add_argument("--dag", action="append", help="DAG id to run (default: every example)")
    args = parser.parse_args()
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)

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
        failed = []
        for dag_id in args.dag or DAG_IDS:
            run = bag.get_dag(dag_id).test(logical_date=None)  # as `airflow dags trigger` does
            print(f"DAG {dag_id}: {run.state}")
            if run.state != "success":
                failed.append(dag_id)
        stats = sim.stats()
    images = sorted(p for p in output.rglob("*") if p.suffix in {".png", ".jpg", ".webp"})
    print(f"\nSimulator: {stats.creates} jobs created, {stats.polls} polls. Images written:")
    for path in images:
        print(f"  {path}")
    for gallery in sorted(output.rglob("index.html")):
        print(f"\nGallery: {gallery}")
    if failed or not images:
        print(f"Demo failed: {failed or 'no images written'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
