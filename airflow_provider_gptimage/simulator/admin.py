"""The unauthenticated ``/_sim/`` admin endpoints that control a running simulator over HTTP."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from airflow_provider_gptimage.simulator.jobs import ManualClock
from airflow_provider_gptimage.simulator.state import SimulatorState

STATE_KEY = web.AppKey("gptimage_simulator_state", SimulatorState)


def add_admin_routes(app: web.Application) -> None:
    """Register ``/_sim/{health,stats,config,inject,configure,reset,clear-faults,advance}``."""
    app.router.add_get("/_sim/health", _health)
    app.router.add_get("/_sim/stats", _stats)
    app.router.add_get("/_sim/config", _config)
    app.router.add_post("/_sim/inject", _inject)
    app.router.add_post("/_sim/configure", _configure)
    app.router.add_post("/_sim/reset", _reset)
    app.router.add_post("/_sim/clear-faults", _clear_faults)
    app.router.add_post("/_sim/advance", _advance)


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].stats().to_dict())


async def _config(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE_KEY].config.to_dict())


async def _inject(request: web.Request) -> web.Response:
    """Body: ``{"endpoint": ..., "fault": ..., "times": 1, "options": {...}}``; options may be inline."""
    data = await _json_body(request)
    options = dict(data.pop("options", None) or {})
    endpoint, fault, times = data.pop("endpoint", None), data.pop("fault", None), data.pop("times", 1)
    options.update(data)
    try:
        request.app[STATE_KEY].inject(str(endpoint), str(fault), int(times), **options)
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"pending": request.app[STATE_KEY].faults.pending()})


async def _configure(request: web.Request) -> web.Response:
    data = await _json_body(request)
    try:
        config = request.app[STATE_KEY].configure(**data)
    except (ValueError, TypeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(config.to_dict())


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return web.json_response({"status": "ok"})


async def _clear_faults(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    state.clear_faults()
    return web.json_response({"status": "ok"})


async def _advance(request: web.Request) -> web.Response:
    """Body ``{"seconds": s}``; only for a simulator started with a manual clock."""
    state = request.app[STATE_KEY]
    if not isinstance(state.clock, ManualClock):
        return web.json_response({"error": "the simulator does not run on a manual clock"}, status=409)
    data = await _json_body(request)
    state.clock.advance(float(data.get("seconds", 0)))
    return web.json_response({"now": state.clock()})
