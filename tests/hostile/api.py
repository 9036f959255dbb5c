"""A hostile GPT Image API on loopback: a real HTTP server whose every answer a test scripts.

Unscripted, it behaves: ``createTask`` answers a fresh job id, ``recordInfo`` a successful job whose
result URL points at its own ``/image.png`` (a real PNG). A test queues :class:`Answer` objects per
endpoint with :meth:`HostileAPI.answer`; each request takes the next one (the last one repeats). Answers
can redirect anywhere, echo the API key, nest JSON without end, stream hundreds of megabytes, drip one
byte at a time or send a gzip bomb. The server counts requests and the bytes it managed to send.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.outputs.imageserver import PNG

CREATE = "/api/v1/jobs/createTask"
RECORD = "/api/v1/jobs/recordInfo"


@dataclass
class Answer:
    """One scripted answer.

    :param status: the HTTP status.
    :param body: the body: bytes, a JSON value (encoded), or a callable ``(request info) -> bytes``.
    :param headers: extra headers.
    :param chunks: instead of ``body``, a factory of an iterator of chunks (streamed without a length).
    :param drip_seconds: pause between chunks.
    :param gzip: compress the body (``Content-Encoding: gzip``).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Callable[[], Iterable[bytes]] | None = None
    drip_seconds: float = 0.0
    gzip: bool = False


def envelope(data: Any, code: int = 200, msg: str = "success") -> dict[str, Any]:
    """The API's usual envelope."""
    return {"code": code, "msg": msg, "data": data}


def record(job_id: str, **fields: Any) -> dict[str, Any]:
    """A ``recordInfo`` answer (success with one result URL unless ``fields`` say otherwise)."""
    data = {"taskId": job_id, "model": "gpt-image-2-text-to-image", "state": "success", "costTime": 1000}
    data.update(fields)
    return envelope(data)


class HostileAPI:
    """The server; use as a context manager. ``url`` is its base URL (the connection's host)."""

    def __init__(self) -> None:
        self.script: dict[str, list[Answer]] = {CREATE: [], RECORD: []}
        self.requests: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self.bytes_sent = 0
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api._handle(self)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                api._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> HostileAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------------------------------------ scripting
    def answer(self, endpoint: str, *answers: Answer) -> HostileAPI:
        """Queue answers for ``createTask`` or ``recordInfo`` (:data:`CREATE`, :data:`RECORD`)."""
        self.script[endpoint].extend(answers)
        return self

    @property
    def creates(self) -> int:
        """``createTask`` requests received."""
        return self.requests[CREATE]

    def image_url(self) -> str:
        """The URL of the real PNG this server also serves."""
        return f"{self.url}/image.png"

    # ------------------------------------------------------------------------------------------ serving
    def _next(self, path: str) -> Answer | None:
        with self._lock:
            queue = self.script.get(path)
            if not queue:
                return None
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def _default(self, path: str, query: dict[str, list[str]]) -> Answer:
        if path == CREATE:
            return Answer(body=envelope({"taskId": f"job-{uuid.uuid4().hex[:12]}"}))
        if path == RECORD:
            job_id = query.get("taskId", ["?"])[0]
            return Answer(body=record(job_id, resultJson=json.dumps({"resultUrls": [self.image_url()]})))
        if path == "/image.png":
            return Answer(body=PNG, headers={"Content-Type": "image/png"})
        return Answer(status=404, body=envelope(None, 404, "not found"))

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        with self._lock:
            self.requests[parts.path] += 1
            self.headers_seen.append(dict(handler.headers.items()))
        query = parse_qs(parts.query)
        answer = self._next(parts.path) or self._default(parts.path, query)
        body = answer.body(query) if callable(answer.body) else answer.body
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        if answer.gzip and body is not None:
            body = gzip.compress(body)
        try:
            handler.send_response(answer.status)
            for name, value in answer.headers.items():
                handler.send_header(name, value)
            if answer.gzip:
                handler.send_header("Content-Encoding", "gzip")
            if answer.chunks is None:
                data = body or b""
                if "Content-Length" not in answer.headers:
                    handler.send_header("Content-Length", str(len(data)))
                handler.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                handler.end_headers()
                self._send(handler, [data] if not answer.drip_seconds else _bytes(data), answer.drip_seconds)
            else:
                handler.send_header("Connection", "close")
                handler.end_headers()
                self._send(handler, answer.chunks(), answer.drip_seconds)
                handler.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    def _send(self, handler: BaseHTTPRequestHandler, chunks: Iterable[bytes], drip: float) -> None:
        for chunk in chunks:
            handler.wfile.write(chunk)
            handler.wfile.flush()
            with self._lock:
                self.bytes_sent += len(chunk)
            if drip:
                time.sleep(drip)


def _bytes(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def repeated(block: bytes, total: int) -> Callable[[], Iterator[bytes]]:
    """A chunk factory streaming ``total`` bytes made of ``block`` repeated."""

    def chunks() -> Iterator[bytes]:
        sent = 0
        while sent < total:
            piece = block[: total - sent]
            sent += len(piece)
            yield piece

    return chunks


def nested(depth: int, leaf: str = '"x"') -> bytes:
    """A JSON body nested ``depth`` levels deep (lists)."""
    return ("[" * depth + leaf + "]" * depth).encode()
