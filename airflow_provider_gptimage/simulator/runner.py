"""Run the simulator: in a background thread with its own event loop, or in a subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import socket
import ssl
import subprocess as sp
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from airflow_provider_gptimage.simulator.app import create_app
from airflow_provider_gptimage.simulator.client import SimulatorClient
from airflow_provider_gptimage.simulator.config import SimulatorConfig
from airflow_provider_gptimage.simulator.jobs import ManualClock, SimulatorStats
from airflow_provider_gptimage.simulator.state import SimulatorState

READY_PREFIX = "GPT Image simulator listening on "


async def start_server(
    state: SimulatorState, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve ``state`` on ``host:port`` (0 = a free port) in the running loop.

    :return: the runner (call ``cleanup()`` to stop) and the bound port.
    """
    runner = web.AppRunner(create_app(state), access_log=None, handle_signals=False, shutdown_timeout=0.25)
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    await web.SockSite(runner, sock, ssl_context=ssl_context).start()
    return runner, int(sock.getsockname()[1])


async def stop_server(runner: web.AppRunner) -> None:
    """Stop serving at once: abort open connections (TLS ones would wait for the peer), then clean up."""
    if runner.server is not None:
        for handler in runner.server.connections:
            if handler.transport is not None:
                handler.transport.abort()
    await runner.cleanup()


def format_url(host: str, port: int, tls: bool) -> str:
    """Base URL of a simulator bound to ``host:port``."""
    return f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{port}"


class GPTImageSimulator:
    """A running GPT Image API simulator; use as a context manager.

    ``with GPTImageSimulator(generation_seconds=0.2) as sim: ... sim.url ... sim.stats()``

    :param config: any :class:`~airflow_provider_gptimage.simulator.config.SimulatorConfig` field.
    :param host: interface to bind.
    :param port: port to bind; 0 picks a free one.
    :param ssl_context: serve HTTPS with this server context (thread mode only).
    :param clock: time source in epoch seconds, e.g. a
        :class:`~airflow_provider_gptimage.simulator.jobs.ManualClock` (thread mode only).
    :param subprocess: run in a separate Python process, controlled over the admin endpoints.
    :param tls_cert: certificate file for HTTPS in subprocess mode.
    :param tls_key: private key file for HTTPS in subprocess mode.
    :param manual_clock: subprocess mode: run on a manual clock moved with :meth:`advance`.
    :param verify: TLS verification for the admin client (a CA bundle path for HTTPS).
    :param startup_timeout: seconds to wait for the server to come up.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] | None = None,
        subprocess: bool = False,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        manual_clock: bool = False,
        verify: bool | str = True,
        startup_timeout: float = 15.0,
        **config: Any,
    ) -> None:
        if subprocess and (ssl_context is not None or clock is not None):
            raise ValueError("subprocess mode takes tls_cert/tls_key and manual_clock, not ssl_context/clock")
        if not subprocess and (tls_cert or tls_key):
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(str(tls_cert), tls_key)
        self._config = SimulatorConfig(**config)
        self._host, self._port, self._ssl_context = host, port, ssl_context
        self._subprocess, self._tls_files = subprocess, (tls_cert, tls_key)
        self._verify, self._startup_timeout = verify, startup_timeout
        clock = clock or (ManualClock() if manual_clock and not subprocess else None)
        self._manual_clock = manual_clock
        self.state: SimulatorState | None = None if subprocess else SimulatorState(self._config, clock)
        self.process: sp.Popen[str] | None = None
        self.url = ""
        self._client: SimulatorClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> GPTImageSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> GPTImageSimulator:
        """Start serving; returns ``self``. ``url`` is set once this returns."""
        if self._subprocess:
            self._start_process()
        else:
            self._start_thread()
        return self

    def _start_thread(self) -> None:
        state, ready, failure = self.state, threading.Event(), []
        assert state is not None
        loop = self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                runner, port = loop.run_until_complete(start_server(state, self._host, self._port, self._ssl_context))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self.url = format_url(self._host, port, self._ssl_context is not None)
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(stop_server(runner))
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()

        self._thread = threading.Thread(target=run, name="gptimage-simulator", daemon=True)
        self._thread.start()
        if not ready.wait(self._startup_timeout) or failure:
            raise RuntimeError(f"GPT Image simulator failed to start: {failure[0] if failure else 'timeout'}")

    def _start_process(self) -> None:
        cert, key = self._tls_files
        cmd = [sys.executable, "-u", "-m", "airflow_provider_gptimage.simulator"]
        cmd += ["--host", self._host, "--port", str(self._port), "--config-json", json.dumps(self._config.to_dict())]
        if cert and key:
            cmd += ["--tls-cert", cert, "--tls-key", key]
        if self._manual_clock:
            cmd.append("--manual-clock")
        self.process = sp.Popen(cmd, stdout=sp.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = _read_line(self.process, self._startup_timeout)
        if not line.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"GPT Image simulator subprocess failed to start (said {line!r})")
        self.url = line[len(READY_PREFIX) :].strip()
        self._client = SimulatorClient(self.url, verify=self._verify)

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._loop is not None and self._thread is not None:
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = self._thread = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except sp.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- control ------------------------------------------------------------------------------

    @property
    def client(self) -> SimulatorClient:
        """An admin client for this simulator (works in both modes)."""
        if self._client is None:
            self._client = SimulatorClient(self.url, verify=self._verify)
        return self._client

    @property
    def pid(self) -> int:
        """Process id serving the simulator (this process in thread mode)."""
        return self.process.pid if self.process is not None else os.getpid()

    def stats(self) -> SimulatorStats:
        """Snapshot of the counters."""
        return self.state.stats() if self.state is not None else self.client.stats()

    def inject(self, endpoint: str, fault: str, times: int = 1, **options: Any) -> None:
        """Queue ``fault`` for the next ``times`` requests to ``endpoint``; see ``faults.FAULTS``."""
        if self.state is not None:
            self.state.inject(endpoint, fault, times, **options)
        else:
            self.client.inject(endpoint, fault, times, **options)

    def configure(self, **changes: Any) -> None:
        """Change the configuration live."""
        if self.state is not None:
            self.state.configure(**changes)
        else:
            self.client.configure(**changes)

    def reset(self) -> None:
        """Forget jobs, counters and queued faults; keep the configuration."""
        if self.state is not None:
            self.state.reset()
        else:
            self.client.reset()

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        if self.state is not None:
            self.state.clear_faults()
        else:
            self.client.clear_faults()

    def advance(self, seconds: float) -> None:
        """Move a manual clock forward (``clock=ManualClock()`` or ``manual_clock=True``)."""
        if self.state is None:
            self.client.advance(seconds)
        elif isinstance(self.state.clock, ManualClock):
            self.state.clock.advance(seconds)
        else:
            raise RuntimeError("the simulator does not run on a manual clock")

    def faults_pending(self) -> dict[str, list[dict[str, Any]]]:
        """Injected faults not consumed yet, per endpoint."""
        return self.stats().pending_faults


def _read_line(process: sp.Popen[str], timeout: float) -> str:
    """Read one stdout line from ``process`` within ``timeout`` seconds ('' on timeout or exit)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                return process.stdout.readline()
            if process.poll() is not None:
                return ""
    return ""


__all__ = ["READY_PREFIX", "GPTImageSimulator", "format_url", "start_server"]
