"""The loops of :class:`~airflow_provider_gptimage.hooks.gptimage.GPTImageHook`: send, read (bounded),
let the protocol parse and decide, sleep, repeat. One is sync (requests, in the worker), one async (aiohttp,
in the triggerer); and the worker's wait for a job. Every decision they share is
:mod:`airflow_provider_gptimage.protocol`'s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage.exceptions import GPTImageError
from airflow_provider_gptimage.hooks.transport import aread_body, atransport_error, read_body, transport_error
from airflow_provider_gptimage.protocol.events import check_finished

if TYPE_CHECKING:
    import ssl

    import aiohttp

    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook


@dataclass(frozen=True)
class Call:
    """One API call: what to send and how it is named in ``X-Request-ID``.

    :param method: ``GET`` or ``POST``.
    :param endpoint: :data:`~.protocol.CREATE_ENDPOINT` or :data:`~.protocol.RECORD_ENDPOINT`.
    :param operation: :data:`~.protocol.CREATE` or :data:`~.protocol.POLL`.
    :param request_id: the ``X-Request-ID`` prefix naming the caller (the operation is appended).
    :param job_id: the job polled, if any (sent as ``taskId``, named in errors).
    :param body: the JSON body of a create.
    """

    method: str
    endpoint: str
    operation: str
    request_id: str
    job_id: str | None = None
    body: Mapping[str, Any] | None = None

    def kwargs(self) -> dict[str, Any]:
        """The arguments of the HTTP client's ``request`` that carry the call's data."""
        return {"params": {"taskId": self.job_id}} if self.job_id is not None else {"json": self.body}


def _retry_or_raise(hook: GPTImageHook, call: Call, failures: list[GPTImageError], deadline: float | None) -> float:
    remaining = None if deadline is None else deadline - time.time()
    delay = protocol.decide_retry(hook.retry_policy, call.operation, failures, hook.rng.random(), remaining=remaining)
    if delay is None:
        raise failures[-1]
    hook.log.warning("%s attempt %d failed (%s); retrying in %.1fs", call.operation, len(failures), failures[-1], delay)
    return delay


def send(hook: GPTImageHook, session: requests.Session, call: Call) -> Mapping[str, Any]:
    """Send ``call`` from the worker until it succeeds or the retry policy gives up; return the answer's ``data``."""
    failures: list[GPTImageError] = []
    while True:
        try:
            with session.request(
                call.method,
                hook.base_url + call.endpoint,
                headers=hook.headers(call),
                timeout=hook.request_timeout,
                # Per call: a session's own ``verify`` loses to REQUESTS_CA_BUNDLE, the connection must win.
                verify=hook.tls.requests_verify,
                allow_redirects=False,  # a redirect would carry the key elsewhere: refused by the protocol
                stream=True,  # the answer is read bounded in size and time, see read_body
                **call.kwargs(),
            ) as response:
                raw = read_body(response, call.operation, hook.request_timeout, job_id=call.job_id)
            return protocol.parse_envelope(
                response.status_code,
                raw,
                response.headers,
                operation=call.operation,
                job_id=call.job_id,
                secrets=hook.secrets(),
            )
        except requests.RequestException as exc:
            failures.append(transport_error(call.operation, exc, hook.request_timeout))
        except GPTImageError as exc:
            failures.append(exc)
        hook.sleep(_retry_or_raise(hook, call, failures, None))


async def asend(
    hook: GPTImageHook, session: aiohttp.ClientSession, call: Call, deadline: float | None = None
) -> Mapping[str, Any]:
    """Send ``call`` from the event loop until it succeeds, the retry policy gives up or ``deadline`` is near."""
    import aiohttp

    failures: list[GPTImageError] = []
    timeout = aiohttp.ClientTimeout(total=hook.request_timeout)  # in all, the body included
    while True:
        try:
            async with session.request(
                call.method,
                hook.base_url + call.endpoint,
                headers=hook.headers(call),
                timeout=timeout,
                ssl=hook.aiohttp_ssl,  # per request too, so a session shared with other connections is safe
                allow_redirects=False,  # a redirect would carry the key elsewhere: refused by the protocol
                **call.kwargs(),
            ) as response:
                raw = await aread_body(response, call.operation, job_id=call.job_id)
            return protocol.parse_envelope(
                response.status,
                raw,
                response.headers,
                operation=call.operation,
                job_id=call.job_id,
                secrets=hook.secrets(),
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            failures.append(atransport_error(call.operation, exc, hook.request_timeout))
        except GPTImageError as exc:
            failures.append(exc)
        await hook.asleep(_retry_or_raise(hook, call, failures, deadline))


def wait(
    hook: GPTImageHook,
    job_id: str,
    schedule: protocol.PollSchedule,
    created_at: float | None,
    deadline: float | None,
    timeout: float | None,
) -> protocol.JobRecord:
    """The worker-side wait of :meth:`~.GPTImageHook.wait_for_job`: the triggers' rule, with the hook's sleep."""
    from airflow_provider_gptimage.exceptions import GPTImageTimeoutError

    created_at = time.time() if created_at is None else created_at
    last_state, last_poll_at, unknown = None, None, 0
    while True:
        step = protocol.poll_step(
            schedule, created_at=created_at, last_poll_at=last_poll_at, now=time.time(), deadline=deadline
        )
        if step.action == protocol.polling.WAIT:
            hook.sleep(step.seconds)
            continue
        if step.action == protocol.polling.TIMEOUT:
            raise GPTImageTimeoutError(protocol.timeout_message(job_id, last_state, timeout), job_id=job_id)
        last_poll_at = time.time()
        record = hook.get_task(job_id)
        if record.is_finished:
            return check_finished(record)
        unknown = unknown + 1 if record.is_unknown_state else 0
        if unknown >= protocol.MAX_UNKNOWN_STATE_POLLS:
            raise protocol.unknown_state_error(job_id, record.state, unknown)
        if record.state != last_state:
            hook.log.info("Job %s is %s", job_id, record.state)
            last_state = record.state


def new_client_session(limit: int = 100, *, ssl: ssl.SSLContext | bool = True) -> aiohttp.ClientSession:
    """Return an ``aiohttp`` session with a keep-alive connection pool.

    :param ssl: how its connections check certificates (see ``GPTImageHook.aiohttp_ssl``).
    """
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=60, ssl=ssl))
