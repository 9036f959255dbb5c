"""A tiny threaded HTTP server of result images for the tests: real sockets, no mocking library.

Routes (``GET``), each counted in :attr:`ImageServer.hits` by path:

* ``/ok.png`` a valid PNG; ``/octet.jpg`` a JPEG sent as ``application/octet-stream``;
  ``/ok.webp`` a WebP; ``/second.png`` another PNG; ``/png-typed-jpeg`` a PNG sent as ``image/jpeg``;
* ``/page`` an HTML page (200); ``/empty.png`` zero bytes (200, ``image/png``);
* ``/expired-410``, ``/expired-403`` (S3-style XML), ``/expired-200`` (an XML "expired" page with 200);
* ``/cut.png`` declares more bytes than it sends, then closes the connection;
* ``/flaky.png`` answers 500 on its first request, then the PNG; ``/cut-once.png`` cuts the first time;
  ``/always-500`` always answers 500;
* ``/big.png?mb=N`` an N MiB PNG (a big ancillary chunk before its image data) streamed from repeated
  blocks (:func:`big_image_digest` gives its digest); ``/unsized.png?mb=N`` the same without ``Content-Length``;
* ``/redirect-ok`` 302 to ``/ok.png``; ``/redirect-metadata`` 302 to the cloud metadata address;
* hostile bodies (see :mod:`tests.outputs.hostile`), each sent as ``image/png`` unless said: ``/bom-html.png``,
  ``/png-garbage.png``, ``/png-ihdr-only.png``, ``/png-cut-idat.png``, ``/png-trailing.png``,
  ``/jpeg-no-eoi.jpg`` and ``/jpeg-late-scan.jpg`` (``image/jpeg``), ``/webp-lying.webp`` (``image/webp``),
  ``/image.svg`` (``image/svg+xml``), ``/image.gif`` (``image/gif``), ``/image.avif`` (``image/avif``),
  ``/bomb.png``, ``/unsized-cut.png`` (a cut PNG without ``Content-Length``, ended by closing);
* ``/race-1.png``, ``/race-2.png`` two different valid PNGs of the same size (two writers racing);
* ``/drip.png`` the headers at once, then the PNG one byte every 0.2 s; ``/drip-headers`` even the status
  line and headers one byte every 0.2 s (each gives up after 30 s or when the client goes).
"""

from __future__ import annotations

import hashlib
import random
import ssl
import struct
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import hostile

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
HTML = b"<!doctype html><html><body><h1>Welcome to our CDN</h1></body></html>"
EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)
_TINY = make_png(1, 1)
_BLOCK = random.Random(42).randbytes(MIB)
_BLOCK_TAIL = random.Random(43).randbytes(MIB)
_DRIP_SECONDS = 0.2
_DRIP_LIMIT_SECONDS = 30.0


def big_image_chunks(mib: int):
    """The chunks of ``/big.png?mb=mib``: exactly ``mib`` MiB, a valid 1x1 PNG whose ancillary ``paDd`` chunk
    (before the image data, as the simulator's padding) holds pseudo-random bytes."""
    head, tail = _TINY[:33], _TINY[33:]
    padding = mib * MIB - len(head) - 12 - len(tail)
    yield head + struct.pack(">I", padding) + b"paDd"
    crc, left, block = zlib.crc32(b"paDd"), padding, _BLOCK
    while left:
        piece = block[:left]
        crc = zlib.crc32(piece, crc)
        yield piece
        left -= len(piece)
        block = _BLOCK_TAIL
    yield struct.pack(">I", crc & 0xFFFFFFFF) + tail


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

    def _send_unsized(self, body: bytes, content_type: str) -> None:
        """A body without ``Content-Length``, ended by closing the connection (HTTP/1.0)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, data: bytes, *, headers: bool) -> None:
        """Send ``data`` one byte at a time; with ``headers`` the status line and headers are dripped too."""
        head = f"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        if not headers:
            self.wfile.write(head)
            self.wfile.flush()
        started = time.monotonic()
        try:
            for byte in (head if headers else b"") + data:
                if time.monotonic() - started > _DRIP_LIMIT_SECONDS:
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(_DRIP_SECONDS)
        except OSError:  # the client gave up (its deadline): fine
            pass

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
            "/octet.jpg": lambda: self._send(200, hostile.JPEG_OK, "application/octet-stream"),
            "/ok.webp": lambda: self._send(200, hostile.WEBP_OK, "image/webp"),
            "/png-typed-jpeg": lambda: self._send(200, PNG, "image/jpeg"),
            "/always-500": lambda: self._send(500, b"oops", "text/plain"),
            "/drip.png": lambda: self._drip(PNG, headers=False),
            "/drip-headers": lambda: self._drip(PNG, headers=True),
            "/unsized-cut.png": lambda: self._send_unsized(hostile.PNG_CUT_IDAT, "image/png"),
            **{
                route: (lambda body=body, kind=kind: self._send(200, body, kind))
                for route, (body, kind) in HOSTILE.items()
            },
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


RACE_FIRST, RACE_SECOND = hostile.same_size_pngs()

#: Route -> (body, Content-Type) of the hostile bodies, and of two writers' images of the same size.
HOSTILE = {
    "/race-1.png": (RACE_FIRST, "image/png"),
    "/race-2.png": (RACE_SECOND, "image/png"),
    "/bom-html.png": (hostile.BOM_HTML, "image/png"),
    "/png-garbage.png": (hostile.PNG_GARBAGE, "image/png"),
    "/png-ihdr-only.png": (hostile.PNG_IHDR_ONLY, "image/png"),
    "/png-cut-idat.png": (hostile.PNG_CUT_IDAT, "image/png"),
    "/png-trailing.png": (hostile.PNG_TRAILING, "image/png"),
    "/jpeg-no-eoi.jpg": (hostile.JPEG_NO_EOI, "image/jpeg"),
    "/jpeg-late-scan.jpg": (hostile.JPEG_LATE_SCAN, "image/jpeg"),
    "/webp-lying.webp": (hostile.WEBP_LYING, "image/webp"),
    "/image.svg": (hostile.SVG, "image/svg+xml"),
    "/image.gif": (hostile.GIF, "image/gif"),
    "/image.avif": (hostile.AVIF_HEAD, "image/avif"),
    "/bomb.png": (hostile.PNG_BOMB, "image/png"),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()


class ImageServer:
    """The server, run in a daemon thread; :meth:`url` builds the URL of a route.

    :param ssl_context: serve HTTPS with this server-side context (URLs then start with ``https``).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._server = _Server()
        self.scheme = "http"
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def hits(self) -> Counter[str]:
        """Requests received, by path."""
        return self._server.hits

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, route: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{route}"

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
