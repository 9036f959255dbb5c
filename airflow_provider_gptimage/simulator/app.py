"""The simulator's aiohttp application: the API routes, result images and fault delivery."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aiohttp import web

from airflow_provider_gptimage.simulator.admin import STATE_KEY, add_admin_routes
from airflow_provider_gptimage.simulator.faults import Fault
from airflow_provider_gptimage.simulator.replies import ApiReply
from airflow_provider_gptimage.simulator.state import SimulatorState

CREATE_PATH = "/api/v1/jobs/createTask"
RECORD_PATH = "/api/v1/jobs/recordInfo"
_HTML_ERROR = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_XML_ERROR = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    "<RequestId>{request_id}</RequestId></Error>\n"
)
_FAULT_MESSAGES = {
    409: "active task limit exceeded (injected by simulator)",
    429: "request rate limit exceeded (injected by simulator)",
    455: "service unavailable: maintenance (injected by simulator)",
    500: "internal server error (injected by simulator)",
    502: "bad gateway (injected by simulator)",
    503: "service unavailable (injected by simulator)",
}


@dataclass
class Payload:
    """A response known before sending: status, headers, size and a factory of its bytes."""

    status: int
    headers: dict[str, str]
    size: int
    chunks: Callable[[], Iterator[bytes]]

    @classmethod
    def of(cls, status: int, content_type: str, body: bytes, headers: dict[str, str] | None = None) -> Payload:
        """A payload of bytes held in memory."""
        return cls(status, {"Content-Type": content_type, **(headers or {})}, len(body), lambda: iter([body]))


def create_app(state: SimulatorState) -> web.Application:
    """Build the application serving ``state``.

    :param state: the simulator state the routes read and mutate.
    """
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_post(CREATE_PATH, _create_task)
    app.router.add_get(RECORD_PATH, _record_info)
    app.router.add_get(r"/results/{task_id}/{index:\d+}.png", _result)
    add_admin_routes(app)
    return app


def _api_payload(state: SimulatorState, reply: ApiReply) -> Payload:
    status, body, headers = state.shape(reply)
    return Payload.of(status, "application/json", json.dumps(body).encode(), headers)


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def _create_task(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    body = await request.read()
    auth = request.headers.get("Authorization")
    return await _serve(request, "createTask", lambda: _api_payload(state, state.create_task(auth, body)))


async def _record_info(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    auth = request.headers.get("Authorization")
    task_id = request.query.get("taskId")
    base = _base_url(request)
    return await _serve(request, "recordInfo", lambda: _api_payload(state, state.record_info(auth, task_id, base)))


async def _result(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    task_id, index = request.match_info["task_id"], int(request.match_info["index"])

    def build() -> Payload:
        lookup = state.result(task_id, index)
        state.note_status(lookup.status)
        if lookup.plan is None:
            code = "AccessDenied" if lookup.status == 403 else "NoSuchKey"
            body = _XML_ERROR.format(code=code, message=lookup.reason, request_id=uuid.uuid4().hex)
            return Payload.of(lookup.status, "application/xml", body.encode())
        plan, block = lookup.plan, state.config.stream_block_size
        headers = {"Content-Type": "image/png", "Cache-Control": "private, max-age=86400"}
        return Payload(200, headers, plan.size, lambda: plan.iter_bytes(block))

    return await _serve(request, "result", build)


async def _serve(request: web.Request, endpoint: str, build: Callable[[], Payload]) -> web.StreamResponse:
    """Answer normally with ``build()``, or deliver the next injected fault for ``endpoint``."""
    state = request.app[STATE_KEY]
    fault = state.begin_request(endpoint, request.headers)
    if fault is None:
        return await _send(request, build())
    name = fault.name
    if name == "slow":
        await asyncio.sleep(float(fault.option("delay")))
        return await _send(request, build())
    processed = build() if fault.option("process") else None  # e.g. the job is created, then lost
    if name == "reset" and fault.option("before_headers"):
        _abort(request)
        return web.Response(status=500)  # never reaches the client
    if name in ("reset", "truncate"):
        # Cut a real answer, except for createTask, whose real answer would create a job.
        payload = processed or (_placeholder() if endpoint == "createTask" else build())
        return await _send(request, payload, cut_at=max(1, payload.size // 2), hard=name == "reset")
    payload = _fault_payload(fault)
    state.note_status(_effective_code(fault))
    return await _send(request, payload)


def _placeholder() -> Payload:
    body = json.dumps({"code": 200, "msg": "success", "data": {"taskId": str(uuid.uuid4())}})
    return Payload.of(200, "application/json", body.encode())


def _effective_code(fault: Fault) -> int:
    if fault.name == "body_code":
        return int(fault.option("code"))
    if fault.name == "html_error":
        return int(fault.option("status"))
    return int(fault.name[5:]) if fault.name.startswith("http_") else 200


def _fault_payload(fault: Fault) -> Payload:
    name = fault.name
    if name == "html_error":
        status = int(fault.option("status"))
        return Payload.of(status, "text/html", _HTML_ERROR.format(status=status).encode())
    if name == "empty_body":
        return Payload.of(200, "application/json", b"")
    if name == "invalid_json":
        return Payload.of(200, "application/json", b'{"code": 200, "msg": "succ\x00<!-- not json')
    if name == "body_code":
        body = {"code": int(fault.option("code")), "msg": str(fault.option("msg"))}
        return Payload.of(200, "application/json", json.dumps(body).encode())
    status = int(name[5:])
    headers: dict[str, str] = {}
    if status == 429 and fault.option("retry_after") is not None:
        headers["Retry-After"] = str(fault.option("retry_after"))
    body = {"code": status, "msg": _FAULT_MESSAGES[status]}
    return Payload.of(status, "application/json", json.dumps(body).encode(), headers)


def _abort(request: web.Request) -> None:
    """Close the connection with a TCP reset (SO_LINGER 0), discarding anything unsent."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _send(
    request: web.Request, payload: Payload, cut_at: int | None = None, hard: bool = False
) -> web.StreamResponse:
    """Stream ``payload`` with its full ``Content-Length``; stop after ``cut_at`` bytes if given.

    :param request: the request being answered.
    :param payload: what to send.
    :param cut_at: close the connection after this many body bytes.
    :param hard: close with a TCP reset instead of a normal close.
    """
    response = web.StreamResponse(status=payload.status, headers=payload.headers)
    response.content_length = payload.size
    await response.prepare(request)
    sent = 0
    for block in payload.chunks():
        if cut_at is not None and sent + len(block) >= cut_at:
            await response.write(block[: cut_at - sent])
            if hard:
                _abort(request)
            elif request.transport is not None:
                request.transport.close()
            return response
        await response.write(block)
        sent += len(block)
    await response.write_eof()
    return response
