"""Benchmark 7: thousands of jobs waiting at once in two real triggerers (``make bench-distributed``).

The distributed stack of ``make e2e-distributed`` (CeleryExecutor, Redis, PostgreSQL, two Celery workers, two
triggerers; :class:`tests.e2e_distributed.stack.DistributedStack`) runs DAG runs whose jobs all wait at the
simulator (generation time one hour), then measures, per triggerer, over a steady window:

* RSS per waiting job: growth of the triggerer's processes (the supervisor and its trigger runner) from a
  baseline taken after a warm-up run (each triggerer has run triggers of this provider, so its imports
  are loaded), divided by the jobs it watches;
* CPU per poll: CPU time of both triggerers' processes over the window, divided by the ``recordInfo``
  requests the simulator received in it (only triggers poll then);
* event-loop lag: Airflow's triggerer samples its loop every 100 ms and logs "Triggerer's async thread was
  blocked for X seconds" above ``[triggerer] blocked_main_thread_warning_threshold``. The benchmark lowers
  that threshold to 0.12 s, so every lag above 20 ms is logged with its value; lines above 0.2 s (Airflow's
  default threshold, i.e. a lag above 100 ms) are the blocking warnings a deployment would see.

``--mode batches`` (default): ``--runs`` DAG runs of ``--chunks`` batch tasks of ``--size`` jobs each, one
``GPTImageBatchTrigger`` per task. ``--mode mapped``: ``--runs`` DAG runs of ``--count`` mapped generate tasks,
one ``GPTImageTaskTrigger`` per job (each task runs on a Celery worker first: about 1-2 tasks/s on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from airflow_provider_gptimage.simulator.client import SimulatorClient
from benchmarks.common import BENCH_DIR, Check, Report, cpu_load, finish
from tests.e2e.processes import Service, stopped_on_exit, wait_until
from tests.e2e_distributed.stack import TRIGGERERS, WORKERS, DistributedStack
from tests.memory import process_rss_kib

#: Logged lag samples: Airflow sleeps 0.1 s between samples and logs any sample longer than this.
SAMPLE_THRESHOLD = 0.12
#: Airflow's default threshold: a sample above it is a blocking warning (a lag above 100 ms).
DEFAULT_THRESHOLD = 0.2
BLOCKED = re.compile(r"async thread was blocked for ([0-9.]+) seconds")
TARGET_KIB_PER_JOB = 50.0


class BenchStack(DistributedStack):
    """The distributed stack with the benchmark's DAGs and the loop-lag sampling threshold lowered."""

    dags_folder = BENCH_DIR / "dags_distributed"

    def _airflow_env(self) -> dict[str, str]:
        env = super()._airflow_env()
        env["AIRFLOW__TRIGGERER__BLOCKED_MAIN_THREAD_WARNING_THRESHOLD"] = str(SAMPLE_THRESHOLD)
        env["AIRFLOW__TRIGGERER__CAPACITY"] = "5000"
        env["AIRFLOW__TRIGGERER__QUEUES_ENABLED"] = "True"  # one probe per triggerer (see bench_dist_probe)
        return env

    def _service(self, name: str) -> Service:
        service = super()._service(name)
        if name in WORKERS:
            service.argv = [*service.argv, "--queues", "default,probe-a,probe-b"]
        elif name in TRIGGERERS:
            service.argv = [*service.argv, "--queues", f"default,probe-{name[-1]}"]
        return service


# ------------------------------------------------------------------------------------------ process figures
def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def rss_kib(service: Service) -> int:
    """Resident memory of every process of a service's session, in KiB."""
    return sum(process_rss_kib(pid) or 0 for pid in service.members())


def cpu_seconds(service: Service) -> float:
    """User + system CPU time of every live process of a service's session."""
    ticks = 0
    for pid in service.members():
        fields = _stat(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def lag_samples(stack: DistributedStack, name: str, start: int = 0, end: int | None = None) -> list[float]:
    """The loop samples (seconds, 0.1 s expected) a triggerer logged between two offsets of its log."""
    data = stack.services[name].log_path.read_bytes()[start:end].decode(errors="replace")
    return [float(value) for value in BLOCKED.findall(data)]


def log_size(stack: DistributedStack, name: str) -> int:
    return stack.services[name].log_path.stat().st_size


def held(stack: DistributedStack) -> dict[str, int]:
    """This provider's trigger rows (not the probes') per triggerer hostname."""
    rows = stack.query(
        "SELECT coalesce(j.hostname, 'unassigned'), count(*) FROM trigger t "
        "LEFT JOIN job j ON j.id = t.triggerer_id WHERE t.classpath LIKE 'airflow_provider_gptimage.%' GROUP BY 1"
    )
    return {str(host): int(count) for host, count in rows}


def probe_phase(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The probe's report lines of one phase, summed up."""
    return {
        "samples": sum(line["samples"] for line in lines),
        "lag_max_ms": max((line["lag_max_ms"] for line in lines), default=float("nan")),
        "late_over_50ms": sum(line["late_over_50ms"] for line in lines),
        "late_over_100ms": sum(line["late_over_100ms"] for line in lines),
        "late_over_50ms_loop_busy": sum(line["late_over_50ms_loop_busy"] for line in lines),
        "gc_gen2": sum(line["gc_gen2"] for line in lines),
        "gc_max_ms": max((line["gc_max_ms"] for line in lines), default=0.0),
    }


def database_sizes(stack: DistributedStack) -> dict[str, str]:
    """What the waiting jobs cost the metadata DB: rows and sizes of ``task_state_store`` and ``trigger``."""
    ((tss_rows, tss_bytes, tss_max, trig_rows, trig_bytes, trig_max),) = stack.query(
        "SELECT (SELECT count(*) FROM task_state_store), pg_total_relation_size('task_state_store'), "
        "(SELECT coalesce(max(octet_length(value::text)), 0) FROM task_state_store), "
        "(SELECT count(*) FROM trigger), pg_total_relation_size('trigger'), "
        "(SELECT coalesce(max(octet_length(kwargs::text)), 0) FROM trigger)"
    )
    return {
        "task_state_store": f"{tss_rows} rows, {tss_bytes / 1024:.0f} KiB on disk, "
        f"largest value {tss_max / 1024:.0f} KiB",
        "trigger": f"{trig_rows} rows, {trig_bytes / 1024:.0f} KiB on disk, largest kwargs {trig_max / 1024:.0f} KiB",
    }


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# ------------------------------------------------------------------------------------------ the run
def trigger_runs(stack: DistributedStack, args: argparse.Namespace, label: str, conf: dict[str, Any]) -> list[str]:
    dag_id = "bench_dist_batches" if args.mode == "batches" else "bench_dist_mapped"
    run_ids = [f"bench-{label}-{uuid.uuid4().hex[:8]}" for _ in range(args.runs if label == "measured" else 1)]
    for run_id in run_ids:
        stack.api.trigger(dag_id, run_id, conf)
    return run_ids


def measure(args: argparse.Namespace) -> Report:
    stack = BenchStack(keep_home=args.keep_home)
    say(f"AIRFLOW_HOME {stack.home}; {cpu_load()}")
    report = Report(
        title=f"Benchmark 7: {args.mode}, jobs waiting in two real triggerers (CeleryExecutor, PostgreSQL, Redis)",
        columns=["triggerer", "triggers", "waiting jobs", "RSS growth MiB", "KiB per job", "CPU s in window"],
    )
    with stopped_on_exit(stack.stop):
        started = time.monotonic()
        stack.start()
        stack.wait_for_dags(["bench_dist_batches", "bench_dist_mapped", "bench_dist_warmup", "bench_dist_probe"])
        sim = SimulatorClient(stack.simulator_url)
        say(f"stack up in {time.monotonic() - started:.0f}s")

        # Warm-up: a small batch in each triggerer, so both have loaded this provider before the baseline.
        sim.configure(generation_seconds=2)
        warm_run = f"bench-warm-up-{uuid.uuid4().hex[:8]}"
        stack.api.trigger("bench_dist_warmup", warm_run)
        wait_until(lambda: stack.api.dag_run("bench_dist_warmup", warm_run)["state"] == "success", 600, 1.0, "warm-up")
        dag_id = "bench_dist_batches" if args.mode == "batches" else "bench_dist_mapped"
        probe_folder = stack.home / "probes"
        probe_folder.mkdir()
        probe_run = f"bench-probe-{uuid.uuid4().hex[:8]}"
        stack.api.trigger("bench_dist_probe", probe_run, {"folder": str(probe_folder)})
        wait_until(lambda: len(list(probe_folder.glob("probe-*.jsonl"))) == 2, 300, 1.0, "a probe in each triggerer")
        time.sleep(5)
        baseline = {name: rss_kib(stack.services[name]) for name in TRIGGERERS}
        idle0, idle_t0 = sum(cpu_seconds(stack.services[n]) for n in TRIGGERERS), time.monotonic()
        time.sleep(args.idle)  # what the two triggerers cost with nothing of this provider to run (the probes only)
        idle_rate = (sum(cpu_seconds(stack.services[n]) for n in TRIGGERERS) - idle0) / (time.monotonic() - idle_t0)
        say(f"warm-up done, probes reporting; baseline RSS KiB {baseline}")

        sim.reset()
        sim.configure(generation_seconds=args.generation)
        conf = {"chunks": args.chunks, "size": args.size} if args.mode == "batches" else {"count": args.count}
        jobs_per_trigger = args.size if args.mode == "batches" else 1
        triggers_total = args.runs * (args.chunks if args.mode == "batches" else args.count)
        jobs_total = triggers_total * jobs_per_trigger
        ramp_start, ramp_wall = time.monotonic(), time.time()
        offsets = {name: log_size(stack, name) for name in TRIGGERERS}
        run_ids = trigger_runs(stack, args, "measured", conf)

        def all_waiting() -> bool:
            counts = held(stack)
            return sum(v for k, v in counts.items() if k != "unassigned") == triggers_total

        last = [0.0]

        def progress() -> bool:
            if time.monotonic() - last[0] > 30:
                last[0] = time.monotonic()
                say(f"creates so far {sim.stats().creates}/{jobs_total}; triggers held {held(stack)}")
            return all_waiting()

        wait_until(progress, args.ramp_timeout, 2.0, "every job to wait in a triggerer")
        ramp = time.monotonic() - ramp_start
        say(f"all {jobs_total} jobs waiting in {triggers_total} triggers after {ramp:.0f}s: {held(stack)}")
        steady_wall = time.time()
        time.sleep(args.settle)

        polls0, cpu0 = sim.stats().polls, {n: cpu_seconds(stack.services[n]) for n in TRIGGERERS}
        window_offsets = {name: log_size(stack, name) for name in TRIGGERERS}
        t0, window_wall = time.monotonic(), time.time()
        time.sleep(args.window)
        polls1, cpu1 = sim.stats().polls, {n: cpu_seconds(stack.services[n]) for n in TRIGGERERS}
        elapsed = time.monotonic() - t0
        rss = {name: rss_kib(stack.services[name]) for name in TRIGGERERS}
        loads = held(stack)
        stats = sim.stats()
        say(f"window {elapsed:.0f}s: {polls1 - polls0} polls; RSS KiB {rss}; held {loads}")

        polls = polls1 - polls0
        cpu = {n: cpu1[n] - cpu0[n] for n in TRIGGERERS}
        per_job: list[float] = []
        probe_lags: list[float] = []
        for name in TRIGGERERS:
            jobs = loads.get(name, 0) * jobs_per_trigger
            growth = rss[name] - baseline[name]
            kib = growth / jobs if jobs else float("nan")
            if jobs:
                per_job.append(kib)
            report.rows.append([name, loads.get(name, 0), jobs, growth / 1024, kib, cpu[name]])
        whole = {n: lag_samples(stack, n, offsets[n], window_offsets[n]) for n in TRIGGERERS}
        steady = {n: lag_samples(stack, n, window_offsets[n], None) for n in TRIGGERERS}
        all_samples = [s for n in TRIGGERERS for s in steady[n]]
        max_lag_ms = (max(all_samples) - 0.1) * 1000 if all_samples else (SAMPLE_THRESHOLD - 0.1) * 1000
        blocking = sum(1 for s in all_samples if s > DEFAULT_THRESHOLD)
        ramp_blocking = sum(1 for n in TRIGGERERS for s in whole[n] if s > DEFAULT_THRESHOLD)
        cpu_ms_per_poll = 1000 * sum(cpu.values()) / polls if polls else float("nan")
        net_ms_per_poll = 1000 * (sum(cpu.values()) - idle_rate * elapsed) / polls if polls else float("nan")
        report.notes += [
            f"{jobs_total:,} jobs in {triggers_total:,} triggers ({args.runs} DAG runs); all waiting "
            f"{ramp:.0f}s after the runs were triggered; simulator: {stats.active_jobs:,} active jobs",
            f"window {elapsed:.0f}s after {args.settle:.0f}s settling: {polls:,} polls ({polls / elapsed:.0f}/s), "
            f"triggerers' CPU {sum(cpu.values()):.1f}s: {cpu_ms_per_poll:.3f} ms CPU per poll; idle, the two "
            f"triggerers use {idle_rate:.3f} s of CPU per second: {net_ms_per_poll:.3f} ms per poll above that",
            f"Airflow's watchdog, samples above {SAMPLE_THRESHOLD}s (lag > 20 ms) from the runs' start to the window "
            "(ramp and settling): "
            + ", ".join(f"{n}: {len(whole[n])} (max {max(whole[n], default=0):.2f}s)" for n in TRIGGERERS)
            + f"; {ramp_blocking} above {DEFAULT_THRESHOLD}s (blocking warnings at Airflow's default threshold)",
            "Airflow's watchdog in the steady window: "
            + ", ".join(f"{n}: {len(steady[n])} (max {max(steady[n], default=0):.2f}s)" for n in TRIGGERERS),
        ]
        report.checks += [
            Check(
                "RSS per waiting job (largest of the two triggerers)",
                max(per_job, default=float("nan")),
                "<=",
                TARGET_KIB_PER_JOB,
                " KiB",
            ),
            Check("blocking warnings in the steady window (watchdog sample > 0.2 s)", blocking, "<=", 0),
            Check("largest lag logged by Airflow's watchdog (steady window)", max_lag_ms, "<", 100.0, " ms"),
        ]
        end_wall = time.time()
        phases = {"ramp": (ramp_wall, steady_wall), "window": (window_wall, end_wall)}
        for name in TRIGGERERS:
            lines = [json.loads(line) for line in (probe_folder / f"probe-{name}.jsonl").read_text().splitlines()]
            for phase, (start, end) in phases.items():
                probe = probe_phase([line for line in lines if start < line["t"] <= end + 1])
                report.notes.append(f"probe in {name}, {phase}: " + ", ".join(f"{k} {v}" for k, v in probe.items()))
                if phase == "window":
                    probe_lags.append(float(probe["lag_max_ms"]))
        report.checks.append(
            Check(
                "largest loop lag seen by the probes (steady window)",
                max(probe_lags, default=float("nan")),
                "<",
                100.0,
                " ms",
            )
        )
        stack.api.set_run_state("bench_dist_probe", probe_run, "failed")
        report.notes.append("metadata DB: " + ", ".join(f"{k} {v}" for k, v in database_sizes(stack).items()))
        for run_id in run_ids:  # nothing more to learn: end them rather than wait an hour
            stack.api.set_run_state(dag_id, run_id, "failed")
        if args.keep_home:
            (stack.home / "bench-report.json").write_text(json.dumps(report.to_dict(), indent=1))
    return report


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--mode", choices=("batches", "mapped"), default="batches")
    cli.add_argument("--runs", type=int, default=2, help="DAG runs triggered together")
    cli.add_argument("--chunks", type=int, default=5, help="batch tasks per run (batches mode)")
    cli.add_argument("--size", type=int, default=1000, help="jobs per batch task, at most 1,000 (batches mode)")
    cli.add_argument("--count", type=int, default=250, help="mapped tasks per run (mapped mode)")
    cli.add_argument("--generation", type=float, default=3600.0, help="simulated generation time (s)")
    cli.add_argument("--settle", type=float, default=40.0, help="seconds between the ramp and the window")
    cli.add_argument("--window", type=float, default=120.0, help="seconds of the measurement window")
    cli.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measured before the runs")
    cli.add_argument("--ramp-timeout", type=float, default=1800.0)
    cli.add_argument("--keep-home", action="store_true", help="keep AIRFLOW_HOME (logs) for a post-mortem")
    cli.add_argument("--json", help="also write the report as JSON to this file")
    args = cli.parse_args(argv)
    return finish(measure(args), args.json)


if __name__ == "__main__":
    sys.exit(main())
