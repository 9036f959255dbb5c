"""Headless Chromium (Debian's ``chromium``, see ``scripts/install-chromium.sh``) driven over the Chrome
DevTools protocol with aiohttp: open a page, run a script in it, take a screenshot.

The browser runs in its own session (:class:`tests.e2e.processes.Service`) with a fresh profile, on
loopback only, and is stopped with every process it started.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.processes import Service, stop_all, wait_until

#: The flags the suite runs Chromium with (no sandbox: the suite may run as root in a container).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def chromium_path() -> str | None:
    """The ``chromium`` executable on PATH, if any."""
    return shutil.which("chromium")


class Browser:
    """One headless Chromium with a fresh ``--user-data-dir``.

    :param log_dir: where its output goes.
    :param window: the viewport, ``(width, height)``.
    """

    def __init__(self, log_dir: Path, window: tuple[int, int] = (1440, 1000)) -> None:
        executable = chromium_path()
        if executable is None:
            raise RuntimeError("chromium is not installed: run scripts/install-chromium.sh as root")
        self.profile = Path(tempfile.mkdtemp(prefix="gptimage-chromium-"))
        argv = [executable, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={window[0]},{window[1]}"]
        self.window = window
        self.service = Service("chromium", [*argv, "about:blank"], {"HOME": str(self.profile)}, log_dir)
        self.port = 0

    def start(self) -> Browser:
        """Start Chromium and wait for its DevTools endpoint."""
        self.service.start()
        active = self.profile / "DevToolsActivePort"

        def port() -> int:
            if not self.service.running():
                raise RuntimeError(f"chromium exited:\n{self.service.tail()}")
            text = active.read_text() if active.exists() else ""
            return int(text.split()[0]) if text.strip() else 0

        self.port = wait_until(port, 60, 0.2, "chromium's DevTools port")
        return self

    def stop(self) -> None:
        """Stop Chromium and every process it started; remove its profile."""
        try:
            stop_all([self.service])
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def run(self, scenario: Any) -> Any:
        """Run ``await scenario(page)`` with a :class:`Page` of this browser."""

        async def main() -> Any:
            async with aiohttp.ClientSession() as http:
                targets = await (await http.get(f"http://127.0.0.1:{self.port}/json/list")).json()
                url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
                async with http.ws_connect(url, max_msg_size=0) as socket:
                    page = Page(socket)
                    await page.send("Page.enable")
                    width, height = self.window
                    await page.send(
                        "Emulation.setDeviceMetricsOverride",
                        width=width,
                        height=height,
                        deviceScaleFactor=1,
                        mobile=False,
                    )
                    return await scenario(page)

        return asyncio.run(main())


class Page:
    """A page target: send DevTools commands, evaluate scripts, wait for conditions."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events received meanwhile are dropped)."""
        number = next(self.ids)
        await self.socket.send_str(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads((await self.socket.receive(timeout=120)).data)
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result") or {})

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a script expression in the page."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 60.0, interval: float = 0.25) -> Any:
        """Evaluate ``expression`` until it is truthy; return that value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > deadline:
                raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {expression[:200]}")
            await asyncio.sleep(interval)

    async def navigate(self, url: str) -> None:
        """Load ``url`` and wait for its document to be complete."""
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    async def screenshot(self) -> bytes:
        """A PNG of the viewport."""
        data = (await self.send("Page.captureScreenshot", format="png"))["data"]
        return base64.b64decode(data)
