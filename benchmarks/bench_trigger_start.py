"""Benchmark 6: the triggerer's CPU cost of starting ``GPTImageTaskTrigger``s, up to their first poll.

A triggerer that restarts with thousands of waiting jobs starts all their triggers at once. N triggers are
created and run in one event loop (their jobs created ``poll_interval`` ago, so polled at once) against the
simulator in a separate process, polling jobs that never finish (``[sim:stuck]``); the client process
measures its own CPU time
(``time.process_time()``: every thread, the ``to_thread`` workers included) from the creation of the first
trigger until every trigger's first poll has been answered. The interval after the first poll is long, so
no second poll falls in the measurement.

Side by side in the same process, in turns: ``floor``, N coroutines doing the same single GET (same
headers, one kept-alive session with the provider's pool settings) and parsing the JSON: what one poll costs
without any trigger. ``start overhead`` = ours minus the floor: the connection fetch, the hook, the trigger
and the task. ``--tls`` serves HTTPS and names the local CA in the connection's ``verify`` extra (the path
that loads a CA bundle in a thread); ``--profile`` adds the top of a cProfile of one round of ours.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    FAKE_API_KEY,
    Check,
    Report,
    cpu_load,
    create_stuck_jobs,
    finish,
    make_local_ca,
    median,
    parser,
    run_child,
    trust_env,
    use_airflow_home,
)

VARIANTS = ("floor", "gptimage")
#: Distinct stuck jobs created (creating one costs the simulator O(jobs)); triggers beyond share them.
DISTINCT_JOBS = 1000
#: Triggers started (and stopped) before the measurement: imports and one-time set-up are not counted.
WARM_UP = 50
#: Seconds after the first poll before a second one (longer than any measurement).
QUIET_SECONDS = 3600.0
#: The longest one round may take.
MAX_ROUND_SECONDS = 600.0
RECORD_PATH = "/api/v1/jobs/recordInfo"
CONN_ID = "gptimage_default"


# ------------------------------------------------------------------------------------------ client side
class Round:
    """One round of one variant: how many first polls are answered, and an event when all are."""

    def __init__(self, n: int) -> None:
        self.n, self.answered, self.failed = n, 0, 0
        self.first_problem = ""
        self.all_answered = asyncio.Event()

    def answer(self) -> None:
        """Count one first poll answered."""
        self.answered += 1
        if self.answered + self.failed >= self.n:
            self.all_answered.set()

    def fail(self, problem: str) -> None:
        """Count one poller that ended before its first poll was answered."""
        self.failed += 1
        self.first_problem = self.first_problem or problem
        if self.answered + self.failed >= self.n:
            self.all_answered.set()


_current: list[Round] = []


def _count_polls() -> None:
    """Make the hook call a trigger makes once per poll count an answered poll in the current round."""
    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

    original = GPTImageHook.aget_task

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        record = await original(self, *args, **kwargs)
        _current[-1].answer()
        return record

    GPTImageHook.aget_task = counted  # type: ignore[method-assign]


async def _trigger(round_: Round, trigger: Any) -> None:
    async for event in trigger.run():  # the jobs never finish: any event is a trigger that failed to start
        round_.fail(str(event.payload)[:300])
        return


async def _floor(round_: Round, session: Any, url: str, job_id: str) -> None:
    import aiohttp

    headers = {
        "Authorization": f"Bearer {FAKE_API_KEY}",
        "X-Request-ID": f"floor:{job_id}",
        "Accept": "application/json",
    }
    try:
        async with session.get(url, params={"taskId": job_id}, headers=headers, timeout=aiohttp.ClientTimeout(30)) as r:
            body = await r.read()
        json.loads(body)["data"]["state"]
    except Exception as exc:  # counted and reported
        round_.fail(repr(exc))
        return
    round_.answer()


async def _round(mode: str, url: str, ids: list[str], ssl: Any) -> tuple[float, float, Round]:
    """Start ``len(ids)`` pollers of ``mode`` at once; return CPU and wall seconds until every first poll is
    answered, and the round."""
    import aiohttp

    from airflow_provider_gptimage.triggers.gptimage import GPTImageTaskTrigger

    round_ = Round(len(ids))
    _current.append(round_)
    session = None
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if mode == "floor":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=60, ssl=ssl))
        tasks = [asyncio.create_task(_floor(round_, session, url + RECORD_PATH, job_id)) for job_id in ids]
    else:
        tasks = [
            asyncio.create_task(
                _trigger(
                    round_,
                    GPTImageTaskTrigger(
                        job_id=job_id,
                        gptimage_conn_id=CONN_ID,
                        created_at=time.time() - QUIET_SECONDS,  # an old job: its first poll is due at once
                        poll_interval=QUIET_SECONDS,
                        max_poll_interval=QUIET_SECONDS,
                    ),
                )
            )
            for job_id in ids
        ]
    await asyncio.wait_for(round_.all_answered.wait(), MAX_ROUND_SECONDS)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if session is not None:
        await session.close()
    await asyncio.sleep(0.2)  # pools closed by the last trigger are torn down before the next round
    return cpu, wall, round_


async def _client(url: str, ids: list[str], rounds: int, profile: bool, ssl: Any) -> dict[str, Any]:
    _count_polls()
    for mode in VARIANTS:  # warm-up: imports, the first connection fetch, the pools
        await _round(mode, url, ids[:WARM_UP], ssl)
    result: dict[str, Any] = {mode: {"cpu_us": [], "wall_s": [], "failed": 0, "first_problem": ""} for mode in VARIANTS}
    for index in range(rounds):
        for mode in VARIANTS[index % 2 :] + VARIANTS[: index % 2]:  # alternate the order
            cpu, wall, round_ = await _round(mode, url, ids, ssl)
            entry = result[mode]
            entry["cpu_us"].append(cpu / len(ids) * 1e6)
            entry["wall_s"].append(wall)
            entry["failed"] += round_.failed
            entry["first_problem"] = entry["first_problem"] or round_.first_problem
    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        await _round("gptimage", url, ids, ssl)
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        result["profile"] = out.getvalue()
    return result


def child_main(argv: list[str]) -> None:
    """Entry point of the client process: ``--child URL IDS_FILE N ROUNDS PROFILE CA_PEM``."""
    url, ids_file, n, rounds, profile, ca_pem = argv
    use_airflow_home("gptimage-bench-start-")
    ids = json.loads(Path(ids_file).read_text())
    ids = [ids[i % len(ids)] for i in range(int(n))]
    ssl: Any = True
    if ca_pem:
        import ssl as ssl_module

        ssl = ssl_module.create_default_context(cafile=ca_pem)
    result = asyncio.run(_client(url, ids, int(rounds), profile == "1", ssl))
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------ parent side
def main() -> int:
    """Start N triggers at each size; print CPU per trigger start beside the floor."""
    args = parser(__doc__.splitlines()[0], repeats=3)
    args.add_argument("--sizes", default="2000,10000", help="comma-separated N (triggers started at once)")
    args.add_argument("--tls", action="store_true", help="HTTPS, with the CA bundle named in the `verify` extra")
    args.add_argument("--profile", action="store_true", help="also print a cProfile of one round at each N")
    opts = args.parse_args()
    sizes = [int(s) for s in opts.sizes.split(",")]

    from airflow_provider_gptimage.simulator import GPTImageSimulator

    folder = Path(tempfile.mkdtemp(prefix="gptimage-bench-start-"))
    ca = make_local_ca(folder) if opts.tls else None
    tls: dict[str, Any] = {"tls_cert": ca.cert_pem, "tls_key": ca.key_pem, "verify": ca.ca_pem} if ca else {}
    report = Report(
        "Benchmark 6: CPU to start GPTImageTaskTriggers, until each has had its first poll answered"
        f" ({'HTTPS, CA bundle in `verify`' if ca else 'HTTP'}; simulator in another process)",
        ["variant", "N", "CPU us/trigger", "start overhead us", "x floor", "wall s"],
    )
    profiles: list[str] = []
    with GPTImageSimulator(subprocess=True, generation_seconds=QUIET_SECONDS, **tls) as sim:
        ids = asyncio.run(create_stuck_jobs(sim.url, ca.ca_pem if ca else None, min(max(sizes), DISTINCT_JOBS)))
        ids_file = folder / "ids.json"
        ids_file.write_text(json.dumps(ids))
        conn: dict[str, Any] = {"conn_type": "gptimage", "host": sim.url, "password": FAKE_API_KEY}
        if ca:
            conn["extra"] = {"verify": ca.ca_pem}
        env = {"AIRFLOW_CONN_GPTIMAGE_DEFAULT": json.dumps(conn), **(trust_env(ca) if ca else {})}
        for n in sizes:
            argv = [sim.url, str(ids_file), str(n), str(opts.repeats), "1" if opts.profile else "0"]
            argv.append(ca.ca_pem if ca else "")
            result = run_child(["-m", "benchmarks.bench_trigger_start", "--child", *argv], env=env, timeout=3600)
            floor = median(result["floor"]["cpu_us"])
            for mode in VARIANTS:
                cpu = median(result[mode]["cpu_us"])
                report.rows.append([mode, n, cpu, cpu - floor, cpu / floor, median(result[mode]["wall_s"])])
            report.checks.append(
                Check(f"N={n} triggers that failed to reach their first poll", result["gptimage"]["failed"], "<=", 0)
            )
            if result["gptimage"]["failed"]:
                report.notes.append(f"N={n}: first problem: {result['gptimage']['first_problem']}")
            if "profile" in result:
                profiles.append(f"--- cProfile of one round of GPTImageTaskTrigger, N={n} ---\n{result['profile']}")
    report.notes.append(
        f"CPU of the client process (all threads) from creating the first poller to the last first poll "
        f"answered; medians of {opts.repeats} rounds per variant, alternating, after a {WARM_UP}-poller warm-up; "
        f"{DISTINCT_JOBS} distinct stuck jobs shared by the pollers; {cpu_load()}"
    )
    for text in profiles:
        print(text)
    return finish(report, opts.json)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        sys.exit(main())
