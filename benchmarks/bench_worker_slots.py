"""Benchmark 5: worker-slot seconds per image, deferrable operator versus a PythonOperator that sleeps.

Both DAGs of ``benchmarks/dags`` run through ``dag.test()`` against the simulator (a separate process) with a
fixed generation time: ``bench_worker_deferrable`` (``GPTImageGenerateOperator``, deferrable) and
``bench_worker_sleep`` (a ``PythonOperator`` creating the job with the hook and polling with ``time.sleep``,
what one would write without the provider's trigger), each with ``--images`` one-image tasks.

Worker time of a task instance = its duration (``end_date - start_date``, which for a deferred task spans
the deferral) minus the time it spent deferred. The deferred time is measured by the operator itself
(``TimedGenerateOperator`` in the DAG file records when ``execute`` ended by deferring and when
``execute_complete`` began); under ``dag.test()`` that is when the trigger ran inline, in a deployment
when the task held no worker slot. So worker time includes the task runner's own start and finish, twice
for the deferrable task (start, then resume). The first task of a process pays one-time imports, so the
median over the tasks is reported.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Check, Report, cpu_load, finish, gptimage_connection, median, parser

DAGS = {"deferrable operator": "bench_worker_deferrable", "PythonOperator + time.sleep": "bench_worker_sleep"}


def main() -> int:
    """Run both DAGs; print worker seconds per image for each."""
    args = parser(__doc__.splitlines()[0], repeats=1)
    args.add_argument("--images", type=int, default=3, help="one-image tasks per DAG")
    args.add_argument("--generation-seconds", type=float, default=2.0, help="fixed generation time")
    args.add_argument("--poll-interval", type=float, default=0.5, help="seconds between polls (both)")
    opts = args.parse_args()

    from benchmarks.common import prepare_dag_test, run_dag_test

    prepare_dag_test("gptimage-bench-worker-")
    from airflow_provider_gptimage.simulator import GPTImageSimulator

    timings = Path(tempfile.mkdtemp(prefix="gptimage-bench-timings-")) / "timings.jsonl"
    os.environ.update(
        {
            "BENCH_TIMINGS": str(timings),
            "BENCH_IMAGES": str(opts.images),
            "BENCH_POLL_INTERVAL": str(opts.poll_interval),
        }
    )
    g = opts.generation_seconds
    report = Report(
        f"Benchmark 5: worker-slot time per image (dag.test(), generation {g:g}s, polls every {opts.poll_interval:g}s)",
        ["variant", "images", "worker s/image", "deferred s/image", "wall s/image", "x deferrable"],
    )
    rows: dict[str, list[float]] = {}
    with GPTImageSimulator(subprocess=True, generation_seconds=g) as sim:
        os.environ["AIRFLOW_CONN_GPTIMAGE_DEFAULT"] = gptimage_connection(sim.url)
        for label, dag_id in DAGS.items():
            timings.write_text("")
            start = time.perf_counter()
            dag_run = run_dag_test(dag_id)
            wall = time.perf_counter() - start
            records = [json.loads(line) for line in timings.read_text().splitlines()]
            worker, deferred = [], []
            for ti in dag_run.get_task_instances():
                mine = {r["phase"]: r for r in records if r["task_id"] == ti.task_id}
                away = mine["execute_complete"]["start"] - mine["execute"]["end"] if "execute" in mine else 0.0
                total = (ti.end_date - ti.start_date).total_seconds()
                worker.append(total - away)
                deferred.append(away)
            states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
            report.checks.append(Check(f"{label}: DAG run succeeded", float(dag_run.state == "success"), ">=", 1))
            if dag_run.state != "success":
                report.notes.append(f"{label}: task states {states}")
            rows[label] = [median(worker), median(deferred), wall / opts.images]
    base = rows["deferrable operator"][0]
    for label, (worker, deferred, wall) in rows.items():
        report.rows.append([label, opts.images, worker, deferred, wall, worker / base])
    report.notes.append(
        "worker s = task duration minus time deferred (the task runner's start and finish included); "
        f"medians over the tasks; wall includes dag.test()'s own start; {cpu_load()}"
    )
    return finish(report, opts.json)


if __name__ == "__main__":
    sys.exit(main())
