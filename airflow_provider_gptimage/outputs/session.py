"""The ``requests`` session that downloads result images: every connection's address is checked before a
request is sent on it.

:func:`~airflow_provider_gptimage.outputs.urls.check_source_url` checks the addresses a name resolves to;
a name can resolve differently a moment later, when the connection is made (DNS rebinding). The
connections of this session check the address they actually reached, right after the TCP connect and
before TLS or any byte of a request, so a result URL never makes this worker send a request to a cloud
metadata endpoint. Connections through a proxy reach the proxy, which is not checked (it is the site's
own infrastructure).

The same connections hand their sockets to the download's deadline
(:mod:`~airflow_provider_gptimage.outputs.deadline`), whose watchdog shuts them down when it passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from airflow_provider_gptimage.outputs.deadline import current as current_deadline
from airflow_provider_gptimage.outputs.urls import refused_address

if TYPE_CHECKING:
    import socket


class RefusedAddress(Exception):
    """A connection reached a refused address; no request was sent on it.

    Not an ``OSError``, so urllib3 and requests let it through unwrapped (and close the connection):
    :func:`~airflow_provider_gptimage.outputs.fetch.download` turns it into the final
    :class:`~airflow_provider_gptimage.exceptions.GPTImageResultError` naming the job and the URL.
    """

    def __init__(self, address: str) -> None:
        super().__init__(f"the connection reached {address}, a link-local or cloud metadata address")
        self.address = address


def _checked(sock: socket.socket) -> socket.socket:
    try:
        address = str(sock.getpeername()[0])
    except (OSError, IndexError, TypeError):
        return sock  # not an IP socket: nothing the check knows
    if refused_address(address):
        sock.close()
        raise RefusedAddress(address)
    watch = current_deadline()
    if watch is not None:  # a duplicate: the TLS wrapper takes the original over during its handshake
        watch.track(sock.dup(), owned=True)
    return sock


class _CheckedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> Any:
        return _checked(super()._new_conn())


class _CheckedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> Any:
        return _checked(super()._new_conn())


def _tracked(conn: Any) -> Any:
    """A connection taken from the pool: a reused one already has its socket, hand it to the deadline."""
    watch = current_deadline()
    if watch is not None and getattr(conn, "sock", None) is not None:
        watch.track(conn.sock)
    return conn


class _CheckedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _CheckedHTTPConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return _tracked(super()._get_conn(timeout))


class _CheckedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _CheckedHTTPSConnection

    def _get_conn(self, timeout: float | None = None) -> Any:
        return _tracked(super()._get_conn(timeout))


class CheckedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose direct connections refuse link-local and metadata addresses and answer to
    the download deadline of the thread that uses them."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {  # type: ignore[union-attr]
            "http": _CheckedHTTPConnectionPool,
            "https": _CheckedHTTPSConnectionPool,
        }


def download_session() -> requests.Session:
    """A ``requests`` session for result images, with the address check mounted for ``http`` and ``https``."""
    session = requests.Session()
    adapter = CheckedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
