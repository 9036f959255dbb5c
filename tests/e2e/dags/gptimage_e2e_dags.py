"""DAGs the end-to-end suite runs on real Airflow services; each run passes its prompt in ``dag_run.conf``.

Short poll intervals keep the suite fast; the simulator's generation time is set per scenario.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator

START = datetime(2026, 1, 1)
PROMPT = "{{ dag_run.conf['prompt'] }}"
#: The pool scenario 4 creates (5 slots, deferred tasks included) before it triggers ``gptimage_e2e_mapped``.
MAPPED_POOL = "gptimage_e2e_pool"
MAPPED_COUNT = 50
#: Items of ``gptimage_e2e_batch`` (scenario 6), keyed ``sku-00``...; prompts name the run.
BATCH_COUNT = 30
POLL = 1.0
MAX_POLL = 2.0

with DAG("gptimage_e2e_deferred", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # Scenarios 1 and 2: waits in the triggerer.
    GPTImageGenerateOperator(task_id="generate", prompt=PROMPT, poll_interval=POLL, max_poll_interval=MAX_POLL)

with DAG("gptimage_e2e_in_worker", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # Scenario 3: polls in the worker, so killing the worker lands between create and completion.
    GPTImageGenerateOperator(
        task_id="generate",
        prompt=PROMPT,
        deferrable=False,
        retries=1,
        retry_delay=timedelta(seconds=1),
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
    )

with DAG("gptimage_e2e_mapped", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # Scenario 4: 50 images through a pool of 5 that counts deferred tasks.
    GPTImageGenerateOperator.partial(
        task_id="generate", pool=MAPPED_POOL, poll_interval=POLL, max_poll_interval=MAX_POLL
    ).expand(prompt=[f"e2e mapped image {i:02d} of {{{{ run_id }}}}" for i in range(MAPPED_COUNT)])

with DAG("gptimage_e2e_timeout", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # Scenario 5: a job that never finishes, ended by the operator's own timeout.
    GPTImageGenerateOperator(
        task_id="generate",
        prompt=PROMPT,
        timeout=timedelta(seconds=6),
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
    )

with DAG("gptimage_e2e_batch", schedule=None, start_date=START, catchup=False, tags=["e2e"]):
    # Scenario 6: one batch task through a triggerer kill and two worker kills (hence two retries); the
    # run passes its destination folder in ``dag_run.conf``. ``wake_fraction=1`` wakes the task once per
    # window of jobs created together (the default 0.25 may split one between two resumes, whichever of its
    # jobs the trigger's first round of polls saw ended), so the scenario knows which resume copies what.
    # ``max_worker_wait`` lets the injected 429's Retry-After be slept in the worker, where the scenario
    # kills it right after a group of creates.
    GPTImageBatchGenerateOperator(
        task_id="generate",
        requests=[
            {"key": f"sku-{i:02d}", "prompt": f"e2e batch item {i:02d} of {{{{ run_id }}}}"} for i in range(BATCH_COUNT)
        ],
        max_active_jobs=5,
        destination="{{ dag_run.conf['destination'] }}",
        retries=2,
        retry_delay=timedelta(seconds=1),
        poll_interval=POLL,
        max_poll_interval=MAX_POLL,
        wake_fraction=1.0,
        max_worker_wait=60.0,
    )
