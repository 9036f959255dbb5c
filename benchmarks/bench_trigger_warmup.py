"""Benchmark 8: how long the first trigger of a new triggerer blocks the event loop, with and without the warm-up.

Each measurement is a fresh interpreter, as a new triggerer is: it imports what a triggerer has (``airflow.sdk``,
``BaseTrigger``), imports the trigger module in the event loop (as the triggerer does), then runs one
``GPTImageTaskTrigger`` to its first event in an event loop in asyncio debug mode with
``slow_callback_duration = 0.05``: asyncio then logs every step of a coroutine that held the loop 50 ms or
more, with its duration. The first poll is refused (nothing listens on the connection's port): the
blocking steps measured are the imports and set-up before it. ``before`` marks the warm-up done without doing
it (``triggers.warmup._warm = True``), which is the code path of the release before the warm-up: the hook's
imports then run in the loop when the trigger builds its hook. ``after`` is the shipped code.
"""

from __future__ import annotations

import json
import sys
import textwrap

from benchmarks.common import Check, Report, cpu_load, finish, median, parser, run_child
from tests.e2e.processes import free_port

CHILD = textwrap.dedent(
    """
    import asyncio, json, logging, re, sys, time
    import airflow.sdk  # what a triggerer has imported
    from airflow.triggers.base import BaseTrigger

    blocks = []

    class Collect(logging.Handler):
        def emit(self, record):
            match = re.search(r"took ([0-9.]+) seconds", record.getMessage())
            if match:
                blocks.append(float(match.group(1)))

    logging.getLogger("asyncio").addHandler(Collect())
    logging.getLogger("asyncio").setLevel(logging.WARNING)

    async def main(variant):
        loop = asyncio.get_running_loop()
        loop.slow_callback_duration = 0.05
        started = time.perf_counter()
        from airflow_provider_gptimage.triggers import warmup
        from airflow_provider_gptimage.triggers.gptimage import GPTImageTaskTrigger
        if variant == "before":
            warmup._warm = True
        trigger = GPTImageTaskTrigger(job_id="job-1", first_poll_delay=0, max_transient_errors=1)
        run = trigger.run()
        event = await run.__anext__()
        await run.aclose()
        return time.perf_counter() - started, event.payload.get("status") or str(event.payload)[:40]

    elapsed, status = asyncio.run(main(sys.argv[1]), debug=True)
    print(json.dumps({"blocks": blocks, "elapsed": elapsed, "status": status}))
    """
)


def main(argv: list[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0], repeats=3).parse_args(argv)
    conn = json.dumps({"conn_type": "gptimage", "host": f"http://127.0.0.1:{free_port()}", "password": "sk-x"})
    env = {"AIRFLOW_CONN_GPTIMAGE_DEFAULT": conn, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    results: dict[str, list[dict]] = {"before": [], "after": []}
    for _ in range(args.repeats):
        for variant in results:
            results[variant].append(run_child(["-c", CHILD, variant], env=env))
    report = Report(
        title="Benchmark 8: event-loop blocking by the first trigger of a fresh triggerer (asyncio debug mode)",
        columns=["variant", "longest block s", "blocks >= 50 ms", "total blocked s", "first event after s"],
    )
    for variant, runs in results.items():
        report.rows.append(
            [
                variant,
                median(max(r["blocks"], default=0.0) for r in runs),
                median(len(r["blocks"]) for r in runs),
                median(sum(r["blocks"]) for r in runs),
                median(r["elapsed"] for r in runs),
            ]
        )
    report.notes.append(f"medians of {args.repeats} fresh interpreters per variant, in turns; {cpu_load()}")
    after_longest = report.rows[1][1]
    report.checks.append(Check("longest block of the first trigger, with the warm-up", after_longest, "<", 0.1, " s"))
    return finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
