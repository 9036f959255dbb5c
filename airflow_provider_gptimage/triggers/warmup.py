"""Import what a trigger's first poll needs in a worker thread, not in the triggerer's event loop.

A triggerer imports a trigger's module in its event loop, and the first trigger of this provider to run
would import the hook's dependencies there too (aiohttp, requests, the HTTP provider, the connection helpers:
0.2 to 0.7 s, measured in asyncio debug mode), stalling every other trigger of the triggerer meanwhile. The
trigger modules import none of them at module level; each trigger's ``run()`` awaits :func:`awarm_up` first.
Concurrent callers in one event loop share one import thread; once it has succeeded, the call returns at once.

The import thread then freezes the collector's view of the heap (``gc.freeze()``, as Airflow does before it
forks): everything alive at that point (Airflow's and the imported modules' objects, long-lived) is left out
of later full collections, which otherwise walk the whole heap of a triggerer (over 300 MB) while holding the
GIL and stalled its loop for 0.5 s and more, measured with 9,000 jobs waiting (BENCHMARKS.md, benchmark 7).
Objects created later are collected as usual.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from weakref import WeakKeyDictionary

#: What a trigger imports on its way to its first poll: the hook (requests, the HTTP provider's hook,
#: requests-toolbelt...), aiohttp (the shared session) and the async connection helpers.
HOOK_MODULES = (
    "aiohttp",
    "airflow.providers.common.compat.connection",
    "airflow_provider_gptimage.hooks.gptimage",
)

_warm = False
#: event loop -> the import in flight.
_pending: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[None]] = WeakKeyDictionary()


def _import_all() -> None:
    for name in HOOK_MODULES:
        importlib.import_module(name)
    gc.freeze()


async def awarm_up() -> None:
    """Import :data:`HOOK_MODULES` in a worker thread (once per process); return when they are imported.

    :raises ImportError: an import failed; the next caller tries again.
    """
    global _warm
    if _warm:
        return
    loop = asyncio.get_running_loop()
    future = _pending.get(loop)
    if future is None:
        future = _pending[loop] = asyncio.ensure_future(asyncio.to_thread(_import_all))
    try:
        # Shielded: a trigger cancelled while waiting does not cancel the others' import.
        await asyncio.shield(future)
    finally:
        if future.done() and _pending.get(loop) is future:
            del _pending[loop]
    _warm = True
