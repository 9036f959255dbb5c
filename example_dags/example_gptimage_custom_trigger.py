"""Your own deferrable operator on top of the provider's trigger: create a job, defer, read the event.

``GPTImageTaskTrigger`` polls one job from the triggerer (GETs only, one shared connection pool, an
absolute deadline) and fires one event; ``protocol.events.outcome`` turns it into the job's record or
raises the typed error it stands for. The operator below keeps its result URLs (they expire in about a
day); use ``GPTImageGenerateOperator`` to also copy the images, re-attach retries to their job and more.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, BaseOperator

from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol.events import outcome
from airflow_provider_gptimage.triggers.gptimage import GPTImageTaskTrigger

POLL_SECONDS = float(os.environ.get("GPTIMAGE_EXAMPLE_POLL_SECONDS", "5"))


# [START howto_trigger_gptimage]
class SketchOperator(BaseOperator):
    """Create one job, wait in the triggerer, return the result URLs."""

    template_fields = ("prompt",)

    def __init__(self, *, prompt: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prompt = prompt

    def execute(self, context: Any) -> None:
        job_id = GPTImageHook().create_task(self.prompt, resolution="1K")
        created_at = time.time()
        self.defer(
            trigger=GPTImageTaskTrigger(
                job_id=job_id,
                created_at=created_at,
                deadline=created_at + 3600,  # absolute: a triggerer restart does not restart the clock
                timeout=3600,
                poll_interval=POLL_SECONDS,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> list[str]:
        record = outcome(event)  # the job's record, or the typed error (failed, timed out...)
        return list(record.result_urls)


# [END howto_trigger_gptimage]

with DAG(
    dag_id="example_gptimage_custom_trigger",
    description="A custom deferrable operator on GPTImageTaskTrigger",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["gptimage", "example"],
):
    SketchOperator(task_id="sketch", prompt="A pencil sketch of a lighthouse in fog")
