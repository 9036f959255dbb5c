"""Quickstart: generate a blog post's images without holding a worker slot, and keep them.

Runs as shipped against the bundled simulator (``make demo``) and against the real service once the
``gptimage_default`` connection holds a real key. Images land in the folder named by the Airflow
Variable ``gptimage_output_root`` (any ``ObjectStoragePath`` URI: ``file://``, ``s3://``...).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG, task

from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator

DEFAULT_ROOT = (Path(__file__).resolve().parent.parent / "demo-output").as_uri()
#: A folder per day; ``run_after`` because a run triggered from the CLI or REST API has no logical date.
OUTPUT = "{{ var.value.get('gptimage_output_root', '" + DEFAULT_ROOT + "') }}/quickstart/{{ dag_run.run_after | ds }}/"

with DAG(
    dag_id="example_gptimage_quickstart",
    description="Generate a hero image and a thumbnail for a blog post",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["gptimage", "example"],
):
    # [START howto_operator_gptimage]
    hero = GPTImageGenerateOperator(
        task_id="hero_image",
        prompt="A watercolor illustration of a data pipeline as a river delta at sunrise, soft light",
        aspect_ratio="16:9",
        resolution="2K",
        destination=OUTPUT,
        filename="hero",
    )
    # [END howto_operator_gptimage]
    thumbnail = GPTImageGenerateOperator(
        task_id="thumbnail",
        prompt="A minimal flat icon of a river delta, teal and orange, white background",
        aspect_ratio="1:1",
        resolution="1K",
        destination=OUTPUT,
        filename="thumbnail",
    )

    @task
    def report(hero: dict, thumbnail: dict) -> list[str]:
        """Print where every image was written (the XCom ``return_value`` of each generate task)."""
        results = [hero, thumbnail]
        uris = [uri for result in results for uri in result["output_uris"]]
        for result in results:
            print(f"job {result['job_id']}: {result['state']} in {result['cost_time_ms']} ms")
        for uri in uris:
            print(f"image: {uri}")
        return uris

    report(hero.output, thumbnail.output)
