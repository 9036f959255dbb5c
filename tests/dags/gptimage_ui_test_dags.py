"""DAGs whose results the plugin tests (tests/ui) serve from a real api-server; run with dag.test().

Destinations come from environment variables (unset: the tasks keep no copy). ``forged`` returns a
result naming files no task wrote, as a hostile DAG author could: the plugin must serve none of them.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import DAG, task

from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator

ENV = os.environ.get
START = datetime(2026, 1, 1)
FAST = {"poll_interval": 0.05, "max_poll_interval": 0.2}
#: Keys of the batch task's items.
BATCH_KEYS = [f"sku-{i:03d}" for i in range(4)]

with DAG("gptimage_ui_images", schedule=None, start_date=START, catchup=False):
    GPTImageGenerateOperator(
        task_id="local",
        prompt="a lighthouse for the plugin test, {{ run_id }}",
        destination=ENV("GPTIMAGE_UI_LOCAL") or None,
        filename="hero",
        **FAST,
    )
    GPTImageGenerateOperator(
        task_id="s3",
        prompt="a kettle on S3 for the plugin test",
        destination=ENV("GPTIMAGE_UI_S3") or None,
        destination_conn_id=ENV("GPTIMAGE_UI_S3_CONN") or None,
        filename="kettle",
        **FAST,
    )
    GPTImageBatchGenerateOperator(
        task_id="batch",
        requests=[{"key": key, "prompt": f"catalog shot of {key}"} for key in BATCH_KEYS],
        destination=ENV("GPTIMAGE_UI_BATCH") or None,
        destination_conn_id=ENV("GPTIMAGE_UI_S3_CONN") or None,
        wake_linger=0.1,
        **FAST,
    )
    GPTImageGenerateOperator(task_id="no_copy", prompt="kept nowhere", **FAST)

    @task
    def forged() -> dict:
        """A result naming files that are not images this DAG kept."""
        decoy = ENV("GPTIMAGE_UI_DECOY") or "/nonexistent/decoy.png"
        uris = [
            "file:///etc/passwd",
            "file:///etc/../etc/passwd",
            "file://localhost/etc/hostname",
            "http://127.0.0.1:9/image.png",
            "ftp://127.0.0.1/image.png",
            "s3://bucket/../../secret.png",
            f"file://{decoy}",
        ]
        return {
            "output_uris": uris,
            "outputs": [{"uri": uri, "content_type": "image/png", "conn_id": None} for uri in uris],
        }

    forged()

with DAG("gptimage_ui_secret", schedule=None, start_date=START, catchup=False):
    GPTImageGenerateOperator(
        task_id="local",
        prompt="an image only some users may see",
        destination=ENV("GPTIMAGE_UI_SECRET") or None,
        filename="secret",
        **FAST,
    )
