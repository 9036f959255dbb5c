"""A ``gptimage`` connection read into what the hook uses (base URL, key, TLS), and fetches shared briefly.

A triggerer that starts thousands of triggers at once (after a restart) would otherwise fetch the same
connection thousands of times, each time through the secrets backends, the secrets masker and a worker
thread. Instead the hooks of one event loop share the fetch of a connection: callers that arrive while it
is in flight await the same fetch, and its result is reused for :data:`SHARE_SECONDS` after it arrived,
then dropped, so a rotated key or CA bundle reaches every trigger started later. A failed fetch is never
kept: each of its waiters gets the error, and the next caller fetches again. Event loops never share.

The key lives in memory only, in :class:`ConnectionSettings` whose ``repr`` leaves it out; nothing here
logs or serializes it.
"""

from __future__ import annotations

import asyncio
import os.path
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage._compat import amask_secret
from airflow_provider_gptimage.protocol.connection import verify_names_file
from airflow_provider_gptimage.tls import aiohttp_ssl

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable, Mapping

#: Seconds a fetched connection is reused by the hooks of the same event loop (counted from its arrival).
SHARE_SECONDS = 5.0

#: The clock of :data:`SHARE_SECONDS` (monotonic; tests move it instead of sleeping).
clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class ConnectionSettings:
    """What a hook needs from its connection.

    :param base_url: the API base URL.
    :param api_key: the key (left out of ``repr``).
    :param tls: how certificates are checked.
    :param ssl: aiohttp's ``ssl=`` for ``tls`` (``True``, ``False`` or a CA bundle's shared context).
    :param warnings: what each hook configured with these settings logs (e.g. an unchecked certificate).
    """

    base_url: str
    api_key: str = field(repr=False)
    tls: protocol.TLSSettings
    ssl: ssl.SSLContext | bool
    warnings: tuple[str, ...] = ()


def read_settings(conn: Any, conn_id: str, extra: Mapping[str, Any] | None) -> ConnectionSettings:
    """Read a connection; blocking when ``extra`` names a CA bundle (see :func:`.verify_names_file`).

    :param conn: the Airflow connection.
    :param conn_id: its id, for messages.
    :param extra: its extra, already deserialized (and masked) by the caller.
    :raises GPTImageConfigurationError: a bad host, no key, or a bad ``verify`` extra or CA bundle.
    """
    base_url = protocol.base_url_from(conn.host, schema=conn.schema, port=conn.port)
    api_key = protocol.api_key_from(conn.password, conn_id)
    tls, warnings = protocol.tls_settings_from(extra, conn_id, is_file=os.path.isfile)
    return ConnectionSettings(base_url, api_key, tls, aiohttp_ssl(tls), tuple(warnings))


async def afetch_settings(conn_id: str, hook: Any) -> ConnectionSettings:
    """Fetch and read a connection without blocking the event loop (a thread only to check a CA bundle).

    ``get_async_connection`` and ``get_async_extra_dejson`` (common-compat) pick the safe calls for the
    running Airflow: a worker thread where the async ones are missing or mask secrets synchronously.

    :param hook: the hook whose ``aget_connection``/``get_connection`` resolves the connection.
    """
    from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

    conn = await get_async_connection(conn_id, hook=hook)
    extra = await get_async_extra_dejson(conn)
    if verify_names_file(extra):
        settings = await asyncio.to_thread(read_settings, conn, conn_id, extra)
    else:
        settings = read_settings(conn, conn_id, extra)
    await amask_secret(settings.api_key)  # the key as used (stripped): masked in the triggerer's logs
    return settings


class _Shared:
    """One fetch of a connection in an event loop: the task, and when its result stops being reused."""

    __slots__ = ("expires", "task")

    def __init__(self, task: asyncio.Task[ConnectionSettings]) -> None:
        self.task = task
        self.expires: float | None = None  # set when the fetch succeeds


#: event loop -> (hook class, conn id) -> the fetch in flight or reused.
_shared: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[type, str], _Shared]] = WeakKeyDictionary()


async def ashared_settings(conn_id: str, hook: Any) -> ConnectionSettings:
    """Return the connection's settings, fetched at most once per :data:`SHARE_SECONDS` in this event loop.

    :param hook: the hook asking; hooks of different classes never share (one may fetch differently).
    :raises GPTImageConfigurationError: the connection is unusable (also raised to every concurrent caller).
    """
    loop = asyncio.get_running_loop()
    entries = _shared.setdefault(loop, {})
    key = (type(hook), conn_id)
    entry = entries.get(key)
    if entry is None or (entry.expires is not None and clock() >= entry.expires):
        entry = _Shared(loop.create_task(afetch_settings(conn_id, hook)))
        entries[key] = entry
        entry.task.add_done_callback(partial(_fetched, entries, key, entry))
    # Shielded: a caller cancelled while waiting (its trigger removed) does not cancel the others' fetch.
    return await asyncio.shield(entry.task)


def _fetched(entries: dict[tuple[type, str], _Shared], key: tuple[type, str], entry: _Shared, task: Any) -> None:
    if task.cancelled() or task.exception() is not None:  # never kept: the next caller fetches again
        _forget(entries, key, entry)
        return
    entry.expires = clock() + SHARE_SECONDS
    asyncio.get_running_loop().call_later(SHARE_SECONDS, _forget, entries, key, entry)  # the key leaves memory


def _forget(entries: dict[tuple[type, str], _Shared], key: tuple[type, str], entry: _Shared) -> None:
    if entries.get(key) is entry:
        del entries[key]
