"""Command line: ``python -m airflow_provider_gptimage.simulator --port 8765``.

Prints ``GPT Image simulator listening on <url>`` once ready and exits cleanly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys
from collections.abc import Sequence
from typing import Any

from airflow_provider_gptimage.simulator.config import SimulatorConfig
from airflow_provider_gptimage.simulator.jobs import ManualClock
from airflow_provider_gptimage.simulator.runner import READY_PREFIX, format_url, start_server, stop_server
from airflow_provider_gptimage.simulator.state import SimulatorState

#: CLI flag destination -> configuration field.
_FLAGS = {
    "generation_seconds": "generation_seconds",
    "active_task_limit": "active_task_limit",
    "rate_limit": "rate_limit_per_second",
    "result_url_ttl": "result_url_ttl_seconds",
    "seed": "seed",
    "credits": "credits",
    "images_per_job": "images_per_job",
    "image_long_side": "image_long_side",
    "result_padding_bytes": "result_padding_bytes",
}


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_gptimage.simulator",
        description="Local simulator of the GPT Image 2 job API (offline demos and tests).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    add("--port", type=int, default=8765, help="port to bind; 0 = a free port (default 8765)")
    add("--generation-seconds", type=float, help="seconds a job takes (default 3.0)")
    add("--active-task-limit", type=int, help="maximum unfinished jobs (409 beyond)")
    add("--rate-limit", type=float, help="API requests per second (429 with Retry-After beyond)")
    add("--result-url-ttl", type=float, help="seconds after completion before result URLs expire")
    add("--credits", type=int, help="jobs that can be created before 402")
    add("--images-per-job", type=int, help="result images per job (default 1)")
    add("--image-long-side", type=int, help="longest side of result images in px (default 256)")
    add("--result-padding-bytes", type=int, help="ignorable padding added to each result PNG")
    add("--variations", action="store_true", help="randomly use the response variations seen in the wild")
    add("--errors-as-http-200", action="store_true", help="send API errors as HTTP 200 + body code")
    add("--seed", type=int, help="seed of the variations' random generator (default 0)")
    add("--tls-cert", help="certificate (PEM) to serve HTTPS")
    add("--tls-key", help="private key (PEM) for --tls-cert")
    add("--manual-clock", action="store_true", help="freeze time; advance with POST /_sim/advance")
    add("--config-json", help="JSON object of configuration fields (flags override it)")
    return parser


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Build the configuration from parsed arguments."""
    values: dict[str, Any] = json.loads(args.config_json) if args.config_json else {}
    values.update({field: getattr(args, flag) for flag, field in _FLAGS.items() if getattr(args, flag) is not None})
    if args.variations:
        values["variations"] = True
    if args.errors_as_http_200:
        values["errors_as_http_200"] = True
    return SimulatorConfig(**values)


async def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM or SIGINT."""
    ssl_context = None
    if args.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    state = SimulatorState(config_from_args(args), ManualClock() if args.manual_clock else None)
    runner, port = await start_server(state, args.host, args.port, ssl_context)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"{READY_PREFIX}{format_url(args.host, port, ssl_context is not None)}", flush=True)
    try:
        await stop.wait()
    finally:
        await stop_server(runner)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        print("--tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    try:
        config_from_args(args)
    except (ValueError, TypeError) as exc:
        print(f"invalid configuration: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
