"""DAGs of ``benchmarks/bench_distributed.py``: many jobs waiting at once in real triggerers.

Sizes come from ``dag_run.conf`` through an upstream task, so one parsed DAG serves the warm-up and the
measured runs: ``bench_dist_batches`` maps one batch task per chunk (``{"chunks": C, "size": S}``, one
``GPTImageBatchTrigger`` watching S jobs each); ``bench_dist_mapped`` maps one generate task per prompt
(``{"count": N}``, one ``GPTImageTaskTrigger`` per job). Polling uses the operators' defaults (5 s, growing
to 30 s), as a deployment would. ``bench_dist_warmup`` runs a small batch, and ``bench_dist_probe`` an
event-loop probe (until its run is ended), in each triggerer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator
from benchmarks.dist_probe import LoopLagProbeOperator

START = datetime(2026, 1, 1)
#: The largest chunk: each batch task's window holds its whole chunk, so every job waits at once.
MAX_CHUNK = 1000

with DAG("bench_dist_batches", schedule=None, start_date=START, catchup=False, tags=["bench"]):

    @task
    def chunks(**context: Any) -> list[list[dict[str, str]]]:
        """``chunks`` lists of ``size`` requests, prompts naming the run."""
        conf, run_id = context["dag_run"].conf, context["run_id"]
        return [
            [{"key": f"c{c:02d}-{i:05d}", "prompt": f"bench {run_id} chunk {c} item {i}"} for i in range(conf["size"])]
            for c in range(conf["chunks"])
        ]

    GPTImageBatchGenerateOperator.partial(task_id="wait", max_active_jobs=MAX_CHUNK).expand(requests=chunks())

with DAG("bench_dist_mapped", schedule=None, start_date=START, catchup=False, tags=["bench"]):

    @task
    def prompts(**context: Any) -> list[str]:
        """``count`` prompts naming the run."""
        conf, run_id = context["dag_run"].conf, context["run_id"]
        return [f"bench {run_id} single {i}" for i in range(conf["count"])]

    GPTImageGenerateOperator.partial(task_id="wait").expand(prompt=prompts())

with DAG("bench_dist_warmup", schedule=None, start_date=START, catchup=False, tags=["bench"]):
    # A small batch in each triggerer (its trigger queue), so both load this provider before the baseline.
    for name in ("triggerer-a", "triggerer-b"):
        GPTImageBatchGenerateOperator(
            task_id=f"warm_{name[-1]}",
            queue=f"probe-{name[-1]}",
            requests=[{"key": f"w{i}", "prompt": f"bench warm-up {name} {i} {{{{ run_id }}}}"} for i in range(5)],
            poll_interval=1.0,
            max_poll_interval=1.0,
        )

with DAG("bench_dist_probe", schedule=None, start_date=START, catchup=False, tags=["bench"]):
    # One probe per triggerer: each triggerer consumes the trigger queue named after it (queues_enabled), and
    # the Celery workers consume those task queues too.
    for name in ("triggerer-a", "triggerer-b"):
        LoopLagProbeOperator(task_id=f"probe_{name[-1]}", queue=f"probe-{name[-1]}")
