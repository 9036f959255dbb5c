"""Hook for the GPT Image 2 job API: authentication, and thin sync/async request loops.

Every decision (validation, parsing, error mapping, when to retry) is made by
:mod:`airflow_provider_gptimage.protocol`; this module only sends, receives and sleeps.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage._compat import mask_secret
from airflow_provider_gptimage.exceptions import (
    GPTImageAuthError,
    GPTImageError,
    GPTImageNotFoundError,
)
from airflow_provider_gptimage.hooks.settings import ConnectionSettings, ashared_settings, read_settings
from airflow_provider_gptimage.hooks.transport import aread_body, atransport_error, read_body, transport_error

if TYPE_CHECKING:
    import ssl

    import aiohttp

#: Seconds one HTTP request may take before it counts as a timeout.
DEFAULT_REQUEST_TIMEOUT = 30.0
#: The TCP keep-alive of the sync session (the HTTP provider's defaults).
KEEP_ALIVE = {"idle": 120, "count": 20, "interval": 30}


class GPTImageHook(HttpHook):
    """Talk to the GPT Image 2 job API with the key kept in a ``gptimage`` connection.

    The API key is the connection's password. The host is optional (default ``https://aigptimage.com``);
    a host with a scheme, such as ``http://127.0.0.1:8089``, is used as is. The extra ``verify`` (``true``,
    ``false`` or the absolute path of a CA bundle) applies to the sync and the async requests alike.

    :param gptimage_conn_id: the connection id (default ``gptimage_default``).
    :param retry_policy: how hard to retry a request (see :class:`~.protocol.RetryPolicy`).
    :param request_timeout: seconds one HTTP request may take.
    :param request_id_prefix: the start of every ``X-Request-ID``, naming the caller (e.g. the task
        instance and try), so a support ticket can quote it.
    """

    conn_name_attr = "gptimage_conn_id"
    default_conn_name = "gptimage_default"
    conn_type = "gptimage"
    hook_name = "GPT Image"
    default_host = protocol.DEFAULT_HOST

    #: How the loops wait between retries (tests replace these to run without sleeping).
    sleep = staticmethod(time.sleep)
    asleep = staticmethod(asyncio.sleep)
    #: Draws the retry jitter; one for every hook (seeding one per hook costs each of thousands of triggers).
    _rng = random.Random()

    def __init__(
        self,
        gptimage_conn_id: str = default_conn_name,
        *,
        retry_policy: protocol.RetryPolicy | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        request_id_prefix: str | None = None,
    ) -> None:
        # No keep-alive adapter yet: only the sync path uses one, and get_conn builds it (a triggerer's
        # thousands of hooks never need it).
        super().__init__(method="GET", http_conn_id=gptimage_conn_id, tcp_keep_alive=False)
        self.gptimage_conn_id = gptimage_conn_id
        self.retry_policy = retry_policy or protocol.DEFAULT_POLICY
        self.request_timeout = request_timeout
        self.request_id_prefix = request_id_prefix or f"gptimage-{uuid.uuid4().hex[:12]}"
        self._session: requests.Session | None = None
        self._api_key: str | None = None
        self.tls: protocol.TLSSettings = protocol.DEFAULT_TLS
        self._ssl: ssl.SSLContext | bool = True  # aiohttp's ``ssl=`` (True: the default trust store)

    # ----------------------------------------------------------------------------------------- shared
    def _configure(self, conn: Any) -> str:
        """Read base URL, key and TLS settings from a connection; return the key (kept private to this hook).

        Blocking when the ``verify`` extra names a CA bundle: the file is checked and loaded (once per file
        and process), so a bad one fails here, before any request, on either path.
        """
        settings = read_settings(conn, self.gptimage_conn_id, conn.extra_dejson)
        mask_secret(settings.api_key)  # the key as used (stripped), in this process's and the supervisor's logs
        return self._apply(settings)

    def _apply(self, settings: ConnectionSettings) -> str:
        """Use settings read from the connection (logging their warnings, once per hook); return the key."""
        for warning in settings.warnings:
            self.log.warning(warning)
        self.base_url, self._base_url_initialized, self.tls = settings.base_url, True, settings.tls
        self._ssl, self._api_key = settings.ssl, settings.api_key
        return settings.api_key

    def _headers(self, operation: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._api_key}",
            "X-Request-ID": protocol.request_id(self.request_id_prefix, operation),
            "Accept": "application/json",
        }

    def secrets(self) -> tuple[str, ...]:
        """The values to scrub from any text shown to users (the key, once the connection was read)."""
        return (self._api_key,) if self._api_key else ()

    # ----------------------------------------------------------------------------------------- sync
    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        """Return the ``requests`` session (built once by the HTTP provider, then reused)."""
        if self._session is None:
            conn = self.get_connection(self.gptimage_conn_id)
            self._configure(conn)
            if self.adapter is None and self.keep_alive_adapter is None:
                self.keep_alive_adapter = TCPKeepAliveAdapter(**KEEP_ALIVE)  # what HttpHook mounts by default
            session = super().get_conn(headers, extra_options)
            session.auth = None  # the key travels as a Bearer token, never as basic auth
            session.verify = self.tls.requests_verify  # requests also get it per call (see _request)
            # HttpHook.get_conn rewrote base_url with its own rules (plain http for a bare host): ours win.
            self.base_url = protocol.base_url_from(conn.host, schema=conn.schema, port=conn.port)
            self._session = session
        return self._session

    def _request(self, method: str, endpoint: str, operation: str, **kwargs: Any) -> Mapping[str, Any]:
        session = self.get_conn()
        job_id = (kwargs.get("params") or {}).get("taskId")
        failures: list[GPTImageError] = []
        while True:
            try:
                with session.request(
                    method,
                    self.base_url + endpoint,
                    headers=self._headers(operation),
                    timeout=self.request_timeout,
                    # Per call: a session's own ``verify`` loses to REQUESTS_CA_BUNDLE, the connection must win.
                    verify=self.tls.requests_verify,
                    allow_redirects=False,  # a redirect would carry the key elsewhere: refused by the protocol
                    stream=True,  # the answer is read bounded in size and time, see read_body
                    **kwargs,
                ) as response:
                    raw = read_body(response, operation, self.request_timeout, job_id=job_id)
                return protocol.parse_envelope(
                    response.status_code,
                    raw,
                    response.headers,
                    operation=operation,
                    job_id=job_id,
                    secrets=self.secrets(),
                )
            except requests.RequestException as exc:
                failures.append(transport_error(operation, exc, self.request_timeout))
            except GPTImageError as exc:
                failures.append(exc)
            delay = protocol.decide_retry(self.retry_policy, operation, failures, self._rng.random())
            if delay is None:
                raise failures[-1]
            self.log.warning(
                "%s attempt %d failed (%s); retrying in %.1fs", operation, len(failures), failures[-1], delay
            )
            self.sleep(delay)

    def create_task(
        self,
        prompt: str,
        *,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        quality: str | None = None,
        output_format: str | None = None,
        model: str = protocol.MODEL,
    ) -> str:
        """Create a generation job and return its id; validates every argument before sending anything.

        The API has no idempotency key: a create retried after a timeout or a 5xx may pay twice. The
        retry policy's ``ambiguous_create_retries`` (default 1) bounds that, and each such retry is logged.
        """
        request, warnings = protocol.build_request(
            prompt,
            aspect_ratio=aspect_ratio,
            resolution=resolution,
            quality=quality,
            output_format=output_format,
            model=model,
        )
        for warning in warnings:
            self.log.warning(warning)
        return self.submit(request)

    def submit(self, request: protocol.GenerationRequest) -> str:
        """Send an already validated request (see :func:`~.protocol.build_request`); return the job id."""
        request = protocol.validated(request)  # a request made by hand gets the same checks, before sending
        data = self._request("POST", protocol.CREATE_ENDPOINT, protocol.CREATE, json=request.body())
        job_id = protocol.parse_create(data, secrets=self.secrets())
        self.log.info("Created GPT Image job %s", job_id)
        return job_id

    def get_task(self, job_id: str) -> protocol.JobRecord:
        """Return the job's current record (one ``recordInfo`` poll, retried on transient faults)."""
        data = self._request("GET", protocol.RECORD_ENDPOINT, protocol.POLL, params={"taskId": job_id})
        return protocol.parse_record(data, job_id=job_id, secrets=self.secrets())

    def test_connection(self) -> tuple[bool, str]:
        """Check the key without spending credits: poll an id that cannot exist (404 means the key works)."""
        probe = f"connection-test-{uuid.uuid4()}"
        try:
            self.get_task(probe)
        except GPTImageNotFoundError:
            return True, "Connection successfully tested: the API key was accepted."
        except GPTImageAuthError:
            return False, "The API key was rejected (HTTP 401): check the connection's password."
        except GPTImageError as exc:
            return False, str(exc)
        return True, "Connection successfully tested."

    def close(self) -> None:
        """Close the sync session."""
        if self._session is not None:
            self._session.close()
            self._session = None

    # ----------------------------------------------------------------------------------------- async
    async def aconfigure(self) -> None:
        """Fetch the connection without blocking the event loop, and read base URL and key from it.

        Hooks of one event loop configured within a few seconds of each other (the triggers a triggerer
        starts together) share one fetch of their connection: see :mod:`.hooks.settings`.
        """
        if self._api_key is not None:
            return
        self._apply(await ashared_settings(self.gptimage_conn_id, hook=self))

    @property
    def aiohttp_ssl(self) -> ssl.SSLContext | bool:
        """aiohttp's ``ssl=`` for this connection (after :meth:`aconfigure`): True, False or a CA's context.

        The same CA bundle gives the same context object in every hook, so pools can be keyed by it.
        """
        return self._ssl

    async def _arequest(
        self,
        session: aiohttp.ClientSession,
        method: str,
        endpoint: str,
        operation: str,
        deadline: float | None = None,
        **kwargs: Any,
    ) -> Mapping[str, Any]:
        import aiohttp

        await self.aconfigure()
        job_id = (kwargs.get("params") or {}).get("taskId")
        failures: list[GPTImageError] = []
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        while True:
            try:
                async with session.request(
                    method,
                    self.base_url + endpoint,
                    headers=self._headers(operation),
                    timeout=timeout,
                    ssl=self._ssl,  # per request too, so a session shared with other connections is safe
                    allow_redirects=False,  # a redirect would carry the key elsewhere: refused by the protocol
                    **kwargs,
                ) as response:
                    raw = await aread_body(response, operation, job_id=job_id)
                return protocol.parse_envelope(
                    response.status,
                    raw,
                    response.headers,
                    operation=operation,
                    job_id=job_id,
                    secrets=self.secrets(),
                )
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                failures.append(atransport_error(operation, exc, self.request_timeout))
            except GPTImageError as exc:
                failures.append(exc)
            remaining = None if deadline is None else deadline - time.time()
            delay = protocol.decide_retry(
                self.retry_policy, operation, failures, self._rng.random(), remaining=remaining
            )
            if delay is None:
                raise failures[-1]
            self.log.warning(
                "%s attempt %d failed (%s); retrying in %.1fs", operation, len(failures), failures[-1], delay
            )
            await self.asleep(delay)

    async def aget_task(
        self, job_id: str, *, session: aiohttp.ClientSession | None = None, deadline: float | None = None
    ) -> protocol.JobRecord:
        """Return the job's current record, asynchronously (GET only: safe to repeat).

        :param session: an ``aiohttp`` session to reuse across polls; one is opened and closed when omitted.
        :param deadline: epoch seconds after which transient failures are no longer retried.
        """
        if session is None:
            await self.aconfigure()
            async with new_client_session(ssl=self._ssl) as own:
                return await self.aget_task(job_id, session=own, deadline=deadline)
        data = await self._arequest(
            session, "GET", protocol.RECORD_ENDPOINT, protocol.POLL, deadline, params={"taskId": job_id}
        )
        return protocol.parse_record(data, job_id=job_id, secrets=self.secrets())


def new_client_session(limit: int = 100, *, ssl: ssl.SSLContext | bool = True) -> aiohttp.ClientSession:
    """Return an ``aiohttp`` session with a keep-alive connection pool.

    :param ssl: how its connections check certificates (see :attr:`GPTImageHook.aiohttp_ssl`).
    """
    import aiohttp

    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit, keepalive_timeout=60, ssl=ssl))
