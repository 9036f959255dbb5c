"""Keep-alive connection pools shared by all of this provider's triggers in an event loop.

A triggerer runs every trigger in one event loop; giving each of thousands of triggers its own
``aiohttp`` session would multiply connections, TLS handshakes and memory. A pool is opened by the
first trigger, reference-counted, and closed cleanly when the last trigger using it ends.

There is one pool per TLS setting (the default trust store, no check, or one CA bundle's context, see
:attr:`~airflow_provider_gptimage.hooks.gptimage.GPTImageHook.aiohttp_ssl`): two connections that trust
different CAs never share a pool, and every connection trusting the same CA bundle shares one (the hook
builds one context per bundle file, so the context itself is the key).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    import ssl

    import aiohttp

#: Connections kept open to the API per event loop and TLS setting.
POOL_LIMIT = 64

#: event loop -> TLS setting (``True``, ``False`` or an SSL context) -> [session, users].
_pools: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[object, list]] = WeakKeyDictionary()


@asynccontextmanager
async def shared_client_session(ssl: ssl.SSLContext | bool = True) -> AsyncIterator[aiohttp.ClientSession]:
    """Borrow the event loop's shared ``aiohttp`` session for a TLS setting (opened on first use, closed after last).

    :param ssl: how the pool's connections check certificates: ``True`` (the default trust store),
        ``False`` (no check) or an SSL context (a CA bundle's, from the hook); each value has its own pool.
    """
    import aiohttp

    loop = asyncio.get_running_loop()
    pools = _pools.setdefault(loop, {})
    key: object = ssl  # True, False or a context: compared by identity, so one pool per CA bundle
    entry = pools.get(key)
    if entry is None or entry[0].closed:
        connector = aiohttp.TCPConnector(limit=POOL_LIMIT, keepalive_timeout=60, ssl=ssl)
        entry = [aiohttp.ClientSession(connector=connector), 0]
        pools[key] = entry
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0 and pools.get(key) is entry:
            del pools[key]
            if not pools and _pools.get(loop) is pools:
                del _pools[loop]
            await entry[0].close()
