"""Shared fixtures for the simulator tests: a thread-mode simulator on a manual clock and helpers."""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pytest
import requests

from airflow_provider_gptimage.simulator import GPTImageSimulator, ManualClock

# The plugin's fixture and marker, made available to these tests the way a user's conftest would.
from airflow_provider_gptimage.simulator.pytest_plugin import (  # noqa: F401
    gptimage_simulator,
    pytest_configure,
)

MODEL = "gpt-image-2-text-to-image"
KEY = "sk-test-key"


@dataclass(frozen=True)
class PngInfo:
    """What a PNG check found: size and chunk list as ``(type, data length)``."""

    width: int
    height: int
    chunks: list[tuple[bytes, int]]


def read_png(stream: BinaryIO) -> PngInfo:
    """Parse a PNG from ``stream``, checking the signature and every chunk's CRC (streamed)."""
    assert stream.read(8) == b"\x89PNG\r\n\x1a\n", "bad PNG signature"
    chunks: list[tuple[bytes, int]] = []
    width = height = 0
    while True:
        header = stream.read(8)
        assert len(header) == 8, "truncated PNG"
        length, kind = struct.unpack(">I", header[:4])[0], header[4:]
        crc = zlib.crc32(kind)
        remaining, first = length, b""
        while remaining:
            block = stream.read(min(remaining, 1 << 20))
            assert block, "truncated chunk"
            first = first or block[:13]
            crc = zlib.crc32(block, crc)
            remaining -= len(block)
        assert struct.unpack(">I", stream.read(4))[0] == crc, f"bad CRC in {kind!r}"
        chunks.append((kind, length))
        if kind == b"IHDR":
            width, height = struct.unpack(">II", first[:8])
        if kind == b"IEND":
            assert stream.read(1) == b"", "data after IEND"
            return PngInfo(width, height, chunks)


def png_info(data: bytes) -> PngInfo:
    """:func:`read_png` on bytes."""
    return read_png(io.BytesIO(data))


class Api:
    """A tiny synchronous client of the simulated API, for tests (not the provider's hook)."""

    def __init__(self, url: str, key: str | None = KEY, verify: bool | str = True) -> None:
        self.url = url
        self.session = requests.Session()
        self.key = key
        self.verify = verify  # per request: REQUESTS_CA_BUNDLE would override a session setting

    def headers(self, request_id: str | None = None, key: str | None = "default") -> dict[str, str]:
        headers = {}
        key = self.key if key == "default" else key
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        if request_id is not None:
            headers["X-Request-ID"] = request_id
        return headers

    def create_raw(self, body: Any, **kwargs: Any) -> requests.Response:
        return self.session.post(
            f"{self.url}/api/v1/jobs/createTask",
            json=body,
            headers=self.headers(**kwargs),
            timeout=10,
            verify=self.verify,
        )

    def create(self, prompt: str = "a red fox", **params: Any) -> requests.Response:
        kwargs = {k: params.pop(k) for k in ("request_id", "key") if k in params}
        return self.create_raw({"model": MODEL, "input": {"prompt": prompt, **params}}, **kwargs)

    def create_id(self, prompt: str = "a red fox", **params: Any) -> str:
        response = self.create(prompt, **params)
        assert response.status_code == 200, response.text
        return str(response.json()["data"]["taskId"])

    def poll(self, task_id: str | None, **kwargs: Any) -> requests.Response:
        params = {} if task_id is None else {"taskId": task_id}
        return self.session.get(
            f"{self.url}/api/v1/jobs/recordInfo",
            params=params,
            headers=self.headers(**kwargs),
            timeout=10,
            verify=self.verify,
        )

    def record(self, task_id: str) -> dict[str, Any]:
        response = self.poll(task_id)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def urls(self, task_id: str) -> list[str]:
        result = self.record(task_id)["resultJson"]
        decoded = json.loads(result) if isinstance(result, str) else result
        return list(decoded["resultUrls"])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_777_000_000.0)


@pytest.fixture
def sim(clock: ManualClock) -> Iterator[GPTImageSimulator]:
    """A thread-mode simulator whose time only moves with ``clock.advance``; jobs take 3 s."""
    with GPTImageSimulator(generation_seconds=3.0, clock=clock) as simulator:
        yield simulator


@pytest.fixture
def api(sim: GPTImageSimulator) -> Api:
    return Api(sim.url)


@pytest.fixture
def finished(api: Api, clock: ManualClock) -> str:
    """Id of a job that has completed successfully."""
    task_id = api.create_id("a finished job", aspect_ratio="16:9")
    clock.advance(3.0)
    return task_id
