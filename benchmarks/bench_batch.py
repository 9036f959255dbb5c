"""Benchmark 2: makespan of a batch of prompts against an account with an active-task and a rate limit.

``GPTImageBatchGenerateOperator`` runs through Airflow's own ``dag.test()`` (the DAG ``bench_batch`` in
``benchmarks/dags``) against the simulator in a separate process, configured with an active-task limit K,
a rate limit shared by creates and polls, and a short, fixed generation time. ``dag.test()`` runs the real
cycle: ``execute`` creates a window of jobs, the task defers to one ``GPTImageBatchTrigger`` (serialized
through the metadata DB and run inline), resumes with the ended jobs through ``execute_complete``, keeps its
progress in ``task_state_store``, creates the next window and defers again. What it leaves out is the
scheduler's and triggerer's latency between a trigger event and the resume (a second or so per cycle in a
deployment; the operator's ``wake_fraction``/``wake_linger`` keep the number of cycles small).

Three rows (issue 10): deferrable at 3 s and at 6 s per image, and ``deferrable=False`` (the worker polls
and refills the window the moment a job ends) at 2 s.

Baseline: the ideal ``ceil(N / K) x generation time`` (K jobs always in flight, no gap between them).
Targets: makespan at most 1.15x the ideal (deferrable, 3 s; ``deferrable=False``, 2 s) and 1.25x
(deferrable, 6 s); in every run zero failed items, zero duplicate creates (the simulator's
``prompt_creates``), and never more than K jobs active at once.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

from benchmarks.common import Check, Report, cpu_load, finish, gptimage_connection, median, parser


@dataclass(frozen=True)
class Row:
    """One configuration of the batch and its target."""

    name: str
    deferrable: bool
    generation_seconds: float
    n: int
    max_ratio: float

    def ideal(self, k: int) -> float:
        """``ceil(N / K) x generation time``: K jobs always in flight, no gap between them."""
        return math.ceil(self.n / k) * self.generation_seconds


#: The rows and their targets (issue 10). N is chosen so that each run takes about 30-40 s: the ratio to the
#: ideal is what is judged, and the cost of a cycle is the same whatever the number of cycles.
ROWS = (
    Row("deferrable-3s", deferrable=True, generation_seconds=3.0, n=600, max_ratio=1.15),
    Row("deferrable-6s", deferrable=True, generation_seconds=6.0, n=300, max_ratio=1.25),
    Row("worker-2s", deferrable=False, generation_seconds=2.0, n=800, max_ratio=1.15),
)
COLUMNS = [
    "row",
    "deferrable",
    "N",
    "generation s",
    "run",
    "dag.test s",
    "makespan s",
    "ideal s",
    "x ideal",
    "succeeded",
    "failed",
    "creates",
    "dup creates",
    "max active",
    "409s",
    "429s",
    "polls",
]


def run_once(row: Row, k: int, rate_limit: float) -> tuple[Any, float, Any]:
    """One ``dag.test()`` of the batch against a fresh simulator: the DAG run, its wall time, the simulator's stats."""
    from airflow_provider_gptimage.simulator import GPTImageSimulator
    from benchmarks.common import run_dag_test

    with GPTImageSimulator(
        subprocess=True,
        generation_seconds=row.generation_seconds,
        active_task_limit=k,
        rate_limit_per_second=rate_limit,
    ) as sim:
        os.environ.update(
            {
                "AIRFLOW_CONN_GPTIMAGE_DEFAULT": gptimage_connection(sim.url),
                "BENCH_BATCH_N": str(row.n),
                "BENCH_BATCH_K": str(k),
                "BENCH_BATCH_DEFERRABLE": "1" if row.deferrable else "0",
                # Each job polled every 0.5 s of its life (on its own grid, so a job is seen done at once);
                # a deferred task is woken once a fifth of the window has ended, or 0.2 s after the first
                # job ended.
                "BENCH_BATCH_POLL": "0.5",
                "BENCH_BATCH_MAX_POLL": "0.5",
                "BENCH_BATCH_WAKE_FRACTION": "0.2",
                "BENCH_BATCH_LINGER": "0.2",
            }
        )
        start = time.perf_counter()
        dag_run = run_dag_test("bench_batch")
        whole = time.perf_counter() - start
        return dag_run, whole, sim.stats()


def batch_result(dag_run: Any) -> dict[str, Any]:
    """The batch task's return value (its XCom)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, dag_ids="bench_batch", task_ids="generate", key="return_value")
        ).first()
        return XComModel.deserialize_value(row) if row is not None else {}


def measure(report: Report, row: Row, k: int, rate_limit: float, repeats: int) -> None:
    """Run ``row`` ``repeats`` times; add its table rows and its checks to ``report``."""
    ideal = row.ideal(k)
    ratios = []
    for run in range(1, repeats + 1):
        dag_run, whole, stats = run_once(row, k, rate_limit)
        [ti] = [ti for ti in dag_run.get_task_instances() if ti.task_id == "generate"]
        makespan = (ti.end_date - ti.start_date).total_seconds() if ti.end_date and ti.start_date else whole
        result = batch_result(dag_run)
        succeeded, failed = result.get("succeeded", 0), result.get("failed", row.n)
        duplicates = sum(count - 1 for count in stats.prompt_creates.values() if count > 1)
        ratios.append(makespan / ideal)
        report.rows.append(
            [
                row.name,
                str(row.deferrable),
                row.n,
                row.generation_seconds,
                run,
                whole,
                makespan,
                ideal,
                makespan / ideal,
                succeeded,
                failed,
                stats.creates,
                duplicates,
                stats.max_active_jobs,
                stats.responses_409,
                stats.responses_429,
                stats.polls,
            ]
        )
        label = f"{row.name} run {run}"
        report.checks += [
            Check(f"{label}: DAG run succeeded", float(dag_run.state == "success"), ">=", 1),
            Check(f"{label}: items succeeded", succeeded, ">=", row.n),
            Check(f"{label}: failed items", failed, "<=", 0),
            Check(f"{label}: duplicate creates", duplicates, "<=", 0),
            Check(f"{label}: most jobs active at once", stats.max_active_jobs, "<=", k),
        ]
    report.checks.append(Check(f"{row.name}: makespan / ideal (median)", median(ratios), "<=", row.max_ratio, "x"))


def main() -> int:
    """Run each row (each run is long enough to average itself) and compare with the ideal."""
    args = parser(__doc__.splitlines()[0], repeats=1)
    args.add_argument("--rows", default=",".join(r.name for r in ROWS), help="comma-separated rows to run")
    args.add_argument("--n", type=int, help="prompts in every row (default: each row's own N)")
    args.add_argument("--k", type=int, default=50, help="the account's active-task limit (= max_active_jobs)")
    args.add_argument("--rate-limit", type=float, default=150.0, help="API requests per second (429 beyond)")
    opts = args.parse_args()
    chosen = opts.rows.split(",")
    rows = [r if opts.n is None else replace(r, n=opts.n) for r in ROWS if r.name in chosen]
    unknown = sorted(set(chosen) - {r.name for r in ROWS})
    if unknown:
        args.error(f"--rows: {unknown} not among {[r.name for r in ROWS]}")
    load = cpu_load()

    from benchmarks.common import prepare_dag_test

    prepare_dag_test("gptimage-bench-batch-")
    report = Report(
        f"Benchmark 2: batch makespan, K={opts.k}, rate limit {opts.rate_limit:g}/s "
        "(dag.test(), simulator in another process)",
        COLUMNS,
    )
    for row in rows:
        measure(report, row, opts.k, opts.rate_limit, opts.repeats)
    # The makespan targets first, then the per-run checks.
    report.checks.sort(key=lambda check: "makespan" not in check.name)
    report.notes.append(
        "makespan = the batch task's start to end (its deferrals included); dag.test s adds DAG parsing, the "
        "upstream task and the run's bookkeeping; ideal = ceil(N / K) x generation time; jobs polled every "
        f"0.5 s; {load}"
    )
    return finish(report, opts.json)


if __name__ == "__main__":
    sys.exit(main())
