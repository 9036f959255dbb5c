"""One keep-alive connection pool shared by all of this provider's triggers in an event loop.

A triggerer runs every trigger in one event loop; giving each of thousands of triggers its own
``aiohttp`` session would multiply connections, TLS handshakes and memory. The pool is opened by the
first trigger, reference-counted, and closed cleanly when the last trigger using it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

if TYPE_CHECKING:
    import aiohttp

#: Connections kept open to the API per event loop.
POOL_LIMIT = 64

_pools: WeakKeyDictionary[asyncio.AbstractEventLoop, list] = WeakKeyDictionary()


@asynccontextmanager
async def shared_client_session() -> AsyncIterator[aiohttp.ClientSession]:
    """Borrow the event loop's shared ``aiohttp`` session (created on first use, closed after last)."""
    import aiohttp

    loop = asyncio.get_running_loop()
    entry = _pools.get(loop)
    if entry is None or entry[0].closed:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=POOL_LIMIT, keepalive_timeout=60))
        entry = [session, 0]
        _pools[loop] = entry
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0 and _pools.get(loop) is entry:
            del _pools[loop]
            await entry[0].close()
