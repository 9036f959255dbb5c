"""The overall deadline of one image download: every attempt and every wait between attempts end by it.

``requests`` timeouts bound each socket operation, not a whole response: a result host sending one byte
every few seconds never trips a read timeout, and a read of a full chunk blocks until the chunk is there.
So each attempt runs under a watchdog (:meth:`DownloadDeadline.watching`): when the deadline passes, it
shuts down the sockets the attempt uses, which ends any blocked read at once (the connection is then
dropped from the pool). The sockets are handed to the deadline by the connections of
:func:`~airflow_provider_gptimage.outputs.session.download_session` as they connect (a duplicate of the
socket, so the TLS handshake is covered too) or are taken from the pool, and by the download itself once
the response headers are in.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from airflow_provider_gptimage.exceptions import GPTImageValidationError

#: Seconds one image may take to download, retries and the waits between them included.
DEFAULT_DOWNLOAD_TIMEOUT = 300.0

_current = threading.local()


def download_timeout_seconds(value: float | timedelta) -> float:
    """Check a ``download_timeout`` argument and return it in seconds.

    :raises GPTImageValidationError: naming ``download_timeout``, for anything but a positive finite duration.
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise GPTImageValidationError(
            "download_timeout", "must be a positive number of seconds or a timedelta", value=value
        )
    return float(seconds)


def current() -> DownloadDeadline | None:
    """The deadline whose attempt runs in this thread, if any."""
    return getattr(_current, "deadline", None)


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also for an SSLSocket: the TLS object stays untouched by this thread.
    with contextlib.suppress(OSError, ValueError, TypeError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class DownloadDeadline:
    """An absolute deadline for one image, shared by all its attempts.

    :param seconds: the time allowed from now.
    :param clock: monotonic seconds (tests pass a fake clock).
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds
        self.fired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._owned: list[socket.socket] = []

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self._end - self._clock()

    @property
    def expired(self) -> bool:
        """Whether the deadline has passed (or its watchdog cut an attempt)."""
        return self.fired or self.remaining() <= 0

    def timeout(self, base: Any) -> tuple[float, float]:
        """The ``requests`` timeout of the next request: ``base`` (connect, read), each at most the time left."""
        left = max(self.remaining(), 0.001)
        connect, read = base if isinstance(base, tuple) else (base, base)
        return (left if connect is None else min(connect, left), left if read is None else min(read, left))

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Run one attempt in this thread; at the deadline, shut down every socket it has handed over."""
        timer = threading.Timer(max(self.remaining(), 0.0), self._fire)
        timer.daemon = True
        _current.deadline = self
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            _current.deadline = None
            with self._lock:
                owned, self._owned, self._sockets = self._owned, [], []
            for sock in owned:
                sock.close()

    def track(self, sock: socket.socket, *, owned: bool = False) -> None:
        """Shut ``sock`` down at the deadline (at once if it has passed); close it after the attempt if ``owned``."""
        with self._lock:
            self._sockets.append(sock)
            if owned:
                self._owned.append(sock)
            fired = self.fired
        if fired:
            _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)
