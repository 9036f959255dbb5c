"""A tiny threaded HTTP server of result images for the tests: real sockets, no mocking library.

Routes (``GET``), each counted in :attr:`ImageServer.hits` by path:

* ``/ok.png`` a valid PNG; ``/octet.jpg`` JPEG bytes sent as ``application/octet-stream``;
  ``/ok.webp`` WebP bytes; ``/second.png`` another PNG;
* ``/page`` an HTML page (200); ``/empty.png`` zero bytes (200, ``image/png``);
* ``/expired-410``, ``/expired-403`` (S3-style XML), ``/expired-200`` (an XML "expired" page with 200);
* ``/cut.png`` declares more bytes than it sends, then closes the connection;
* ``/flaky.png`` answers 500 on its first request, then the PNG; ``/cut-once.png`` cuts the first time;
* ``/big.png?mb=N`` N MiB streamed from one repeated block (:func:`big_image_digest` gives its digest);
* ``/unsized.png?mb=N`` the same without ``Content-Length``;
* ``/redirect-ok`` 302 to ``/ok.png``; ``/redirect-metadata`` 302 to the cloud metadata address.
"""

from __future__ import annotations

import hashlib
import random
import struct
import threading
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MIB = 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def make_png(width: int = 4, height: int = 3, seed: int = 0) -> bytes:
    """A valid RGB PNG of random pixels."""
    rnd = random.Random(seed)
    rows = b"".join(b"\x00" + rnd.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b"")


PNG = make_png()
SECOND_PNG = make_png(seed=1)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(200) + b"\xff\xd9"
WEBP = b"RIFF" + struct.pack("<I", 200) + b"WEBPVP8 " + bytes(196)
HTML = b"<!doctype html><html><body><h1>Welcome to our CDN</h1></body></html>"
EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)
_BLOCK = PNG_SIGNATURE + random.Random(42).randbytes(MIB - len(PNG_SIGNATURE))
_BLOCK_TAIL = random.Random(43).randbytes(MIB)


def big_image_chunks(mib: int):
    """The chunks of ``/big.png?mb=mib``: a PNG signature, then pseudo-random bytes (not a real PNG)."""
    yield _BLOCK
    for _ in range(mib - 1):
        yield _BLOCK_TAIL


def big_image_digest(mib: int) -> str:
    """SHA-256 of ``/big.png?mb=mib``."""
    digest = hashlib.sha256()
    for chunk in big_image_chunks(mib):
        digest.update(chunk)
    return digest.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream(self, mib: int, sized: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        if sized:
            self.send_header("Content-Length", str(mib * MIB))
        self.end_headers()
        try:
            for chunk in big_image_chunks(mib):
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (size cap): fine
            pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path
        with self.server.lock:
            self.server.hits[path] += 1
            hit = self.server.hits[path]
        query = parse_qs(parts.query)
        mib = int(query.get("mb", ["1"])[0])
        routes = {
            "/ok.png": lambda: self._send(200, PNG, "image/png"),
            "/second.png": lambda: self._send(200, SECOND_PNG, "image/png"),
            "/octet.jpg": lambda: self._send(200, JPEG, "application/octet-stream"),
            "/ok.webp": lambda: self._send(200, WEBP, "image/webp"),
            "/page": lambda: self._send(200, HTML, "text/html; charset=utf-8"),
            "/empty.png": lambda: self._send(200, b"", "image/png"),
            "/expired-410": lambda: self._send(410, b"Gone", "text/plain"),
            "/expired-403": lambda: self._send(403, EXPIRED_XML, "application/xml"),
            "/expired-200": lambda: self._send(200, EXPIRED_XML, "application/xml"),
            "/cut.png": lambda: self._send(200, PNG + bytes(50_000), "image/png", length=len(PNG) + 200_000),
            "/cut-once.png": lambda: (
                self._send(200, PNG[:20], "image/png", length=len(PNG))
                if hit == 1
                else self._send(200, PNG, "image/png")
            ),
            "/flaky.png": lambda: (
                self._send(500, b"oops", "text/plain") if hit == 1 else self._send(200, PNG, "image/png")
            ),
            "/big.png": lambda: self._stream(mib, sized=True),
            "/unsized.png": lambda: self._stream(mib, sized=False),
            "/redirect-ok": lambda: self._redirect("/ok.png"),
            "/redirect-metadata": lambda: self._redirect("http://169.254.169.254/latest/meta-data/"),
        }
        route = routes.get(path)
        if route is None:
            self._send(404, b"no such route", "text/plain")
        else:
            route()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()


class ImageServer:
    """The server, run in a daemon thread; :meth:`url` builds the URL of a route."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def hits(self) -> Counter[str]:
        """Requests received, by path."""
        return self._server.hits

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, route: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{route}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def job_record(*urls: str, job_id: str = "job-3ebe82c2", prompt: str = "a red bicycle, studio light"):
    """A successful :class:`~airflow_provider_gptimage.protocol.JobRecord` with these result URLs."""
    from airflow_provider_gptimage.protocol import JobRecord

    return JobRecord(
        job_id=job_id,
        state="success",
        result_urls=tuple(urls),
        cost_time_ms=59699,
        create_time_ms=1777467208141,
        complete_time_ms=1777467267840,
        model="gpt-image-2-text-to-image",
        params={
            "model": "gpt-image-2-text-to-image",
            "input": {"prompt": prompt, "aspect_ratio": "1:1", "resolution": "1K"},
        },
    )
