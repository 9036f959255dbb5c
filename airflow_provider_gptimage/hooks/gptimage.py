"""Hook for the GPT Image 2 job API: authentication, the calls of the API, and the worker-side wait.

Every decision (validation, parsing, error mapping, when to retry, when to poll) is made by
:mod:`airflow_provider_gptimage.protocol`; the request loops (:mod:`.loops`) only send, receive and sleep.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, NoReturn

import requests
from airflow.providers.http.hooks.http import HttpHook
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage._compat import mask_secret
from airflow_provider_gptimage.exceptions import (
    GPTImageAuthError,
    GPTImageError,
    GPTImageNotFoundError,
    GPTImageTransportError,
)
from airflow_provider_gptimage.hooks.loops import Call, asend, new_client_session, send, wait
from airflow_provider_gptimage.hooks.settings import ConnectionSettings, ashared_settings, read_settings

if TYPE_CHECKING:
    import ssl

    import aiohttp

#: The TCP keep-alive of the sync session (the HTTP provider's defaults).
KEEP_ALIVE = {"idle": 120, "count": 20, "interval": 30}
#: Seconds ``test_connection`` waits for its one request.
TEST_TIMEOUT = 10.0


class GPTImageHook(HttpHook):
    """Talk to the GPT Image 2 job API with the key kept in a ``gptimage`` connection.

    The API key is the connection's password. The host is optional (default ``https://aigptimage.com``);
    a host with a scheme, such as ``http://127.0.0.1:8089``, is used as is. The extra ``verify`` (``true``,
    ``false`` or the absolute path of a CA bundle) applies to the sync and the async requests alike.

    A hook is a value callers share, not mutate: it is safe to use from several threads at once (one
    ``requests`` session, built once), and what differs per call (the ``X-Request-ID`` naming a batch item)
    is an argument of the call.

    :param gptimage_conn_id: the connection id (default ``gptimage_default``).
    :param retry_policy: how hard to retry a request (see :class:`~.protocol.RetryPolicy`).
    :param request_timeout: seconds one HTTP request may take in all.
    :param request_id_prefix: the start of every ``X-Request-ID``, naming the caller (e.g. the task
        instance and try), so a support ticket can quote it.
    """

    conn_name_attr = "gptimage_conn_id"
    default_conn_name = protocol.DEFAULT_CONN_ID
    conn_type = "gptimage"
    hook_name = "GPT Image"
    default_host = protocol.DEFAULT_HOST

    #: How the loops wait between retries and polls (tests replace these to run without sleeping).
    sleep = staticmethod(time.sleep)
    asleep = staticmethod(asyncio.sleep)
    #: Draws the retry jitter; one for every hook (seeding one per hook costs each of thousands of triggers).
    rng = random.Random()

    def __init__(
        self,
        gptimage_conn_id: str = default_conn_name,
        *,
        retry_policy: protocol.RetryPolicy | None = None,
        request_timeout: float = protocol.DEFAULT_REQUEST_TIMEOUT,
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
        self._session_lock = threading.Lock()
        self._api_key: str | None = None
        self.tls: protocol.TLSSettings = protocol.DEFAULT_TLS
        self._ssl: ssl.SSLContext | bool = True  # aiohttp's ``ssl=`` (True: the default trust store)

    # ----------------------------------------------------------------------------------------- shared
    def _apply(self, settings: ConnectionSettings) -> None:
        """Use settings read from the connection (logging their warnings, once per hook)."""
        for warning in settings.warnings:
            self.log.warning(warning)
        self.base_url, self.tls, self._ssl, self._api_key = (
            settings.base_url,
            settings.tls,
            settings.ssl,
            settings.api_key,
        )

    def headers(self, call: Call) -> dict[str, str]:
        """The headers of one call: the key as a Bearer token and the call's ``X-Request-ID``."""
        return {
            "Authorization": f"Bearer {self._api_key}",
            "X-Request-ID": protocol.request_id(call.request_id, call.operation),
            "Accept": "application/json",
        }

    def secrets(self) -> tuple[str, ...]:
        """The values to scrub from any text shown to users (the key, once the connection was read)."""
        return (self._api_key,) if self._api_key else ()

    def _call(self, operation: str, *, request_id: str | None, job_id: str | None = None, body: Any = None) -> Call:
        endpoint = protocol.CREATE_ENDPOINT if operation == protocol.CREATE else protocol.RECORD_ENDPOINT
        method = "POST" if operation == protocol.CREATE else "GET"
        return Call(method, endpoint, operation, request_id or self.request_id_prefix, job_id, body)

    # ----------------------------------------------------------------------------------------- sync
    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        """Return the ``requests`` session (built once, thread-safely, by the HTTP provider; then reused).

        Blocking when the ``verify`` extra names a CA bundle: the file is checked and loaded (once per file
        and process), so a bad one fails here, before any request.
        """
        with self._session_lock:
            if self._session is None:
                conn = self.get_connection(self.gptimage_conn_id)
                settings = read_settings(conn, self.gptimage_conn_id, conn.extra_dejson)
                mask_secret(settings.api_key)  # the key as used (stripped), in this process's and the supervisor's logs
                if self.adapter is None and self.keep_alive_adapter is None:
                    self.keep_alive_adapter = TCPKeepAliveAdapter(**KEEP_ALIVE)  # what HttpHook mounts by default
                session = super().get_conn(headers, extra_options)
                session.auth = None  # the key travels as a Bearer token, never as basic auth
                session.verify = settings.tls.requests_verify  # requests also get it per call (see loops.send)
                self._apply(settings)  # after HttpHook.get_conn, whose own base URL rules (plain http) lose
                self._session = session
        return self._session

    def create_task(
        self,
        prompt: str,
        *,
        aspect_ratio: str | None = None,
        resolution: str | None = None,
        quality: str | None = None,
        output_format: str | None = None,
        model: str = protocol.MODEL,
        request_id: str | None = None,
    ) -> str:
        """Create a generation job and return its id; validates every argument before sending anything.

        The API has no idempotency key: a create retried after a timeout or a 5xx may pay twice. The
        retry policy's ``ambiguous_create_retries`` (default 1) bounds that, and each such retry is logged.

        :param request_id: names this call in ``X-Request-ID`` instead of the hook's ``request_id_prefix``.
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
        return self.submit(request, request_id=request_id)

    def submit(self, request: protocol.GenerationRequest, *, request_id: str | None = None) -> str:
        """Send a request (checked again by :func:`~.protocol.validated` first); return the job id.

        :param request_id: names this call in ``X-Request-ID`` instead of the hook's ``request_id_prefix``.
        """
        request = protocol.validated(request)  # a request made by hand gets the same checks, before sending
        call = self._call(protocol.CREATE, request_id=request_id, body=request.body())
        job_id = protocol.parse_create(send(self, self.get_conn(), call), secrets=self.secrets())
        self.log.info("Created GPT Image job %s", job_id)
        return job_id

    def get_task(self, job_id: str, *, request_id: str | None = None) -> protocol.JobRecord:
        """Return the job's current record (one ``recordInfo`` poll, retried on transient faults).

        :param request_id: names this call in ``X-Request-ID`` instead of the hook's ``request_id_prefix``.
        """
        call = self._call(protocol.POLL, request_id=request_id, job_id=job_id)
        data = send(self, self.get_conn(), call)
        return protocol.parse_record(data, job_id=job_id, secrets=self.secrets())

    def wait_for_job(
        self,
        job_id: str,
        *,
        schedule: protocol.PollSchedule | None = None,
        created_at: float | None = None,
        deadline: float | None = None,
        timeout: float | None = None,
    ) -> protocol.JobRecord:
        """Poll from the worker until the job ends, by the same rule as the triggers (:func:`~.protocol.poll_step`).

        :param schedule: when to poll (default: every 5 s growing to 30 s).
        :param created_at: when the job was created (default: now).
        :param deadline: epoch seconds after which to give up (after one last poll).
        :param timeout: the limit ``deadline`` stands for (said in the timeout message).
        :return: the record of the job, which succeeded with at least one image.
        :raises GPTImageJobFailedError: the job failed.
        :raises GPTImageTimeoutError: the deadline passed first.
        :raises GPTImageUnknownStateError: the job kept reporting a state the provider does not know.
        """
        return wait(self, job_id, schedule or protocol.PollSchedule(), created_at, deadline, timeout)

    def test_connection(self) -> tuple[bool, str]:
        """Check the key without spending credits: one poll of an id that cannot exist, with a short timeout.

        A 404 proves the service answered and accepted the key; the message says what was reached.
        """
        probe = GPTImageHook(
            self.gptimage_conn_id, retry_policy=protocol.RetryPolicy(max_attempts=1), request_timeout=TEST_TIMEOUT
        )
        try:
            probe.get_task(f"connection-test-{uuid.uuid4()}")
        except GPTImageNotFoundError:
            return True, f"Connection successfully tested: {probe.base_url} answered and accepted the API key."
        except GPTImageAuthError:
            return False, f"{probe.base_url} answered, but rejected the API key (HTTP 401): check the password."
        except GPTImageTransportError as exc:
            where = probe.base_url or "the service"
            return False, f"Could not reach {where} within {TEST_TIMEOUT:g}s: {exc}"
        except GPTImageError as exc:
            return False, f"{probe.base_url or 'The service'} answered, but not as the API does: {exc}"
        finally:
            probe.close()
        return True, f"Connection successfully tested: {probe.base_url} answered."

    def close(self) -> None:
        """Close the sync session."""
        with self._session_lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    # ------------------------------------------------------------------------------- refused generic calls
    def run(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: a generic HTTP call would bypass validation, bounded reads, the refusal of redirects and the
        typed errors. Use :meth:`create_task`, :meth:`submit`, :meth:`get_task` or :meth:`aget_task`."""
        raise GPTImageError(
            "GPTImageHook.run() is not supported: use create_task(), submit(), get_task() or aget_task(), "
            "which validate, bound and type every call."
        )

    run_and_check = run_with_advanced_retry = run  # refused alike

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

    async def aget_task(
        self,
        job_id: str,
        *,
        session: aiohttp.ClientSession | None = None,
        deadline: float | None = None,
        request_id: str | None = None,
    ) -> protocol.JobRecord:
        """Return the job's current record, asynchronously (GET only: safe to repeat).

        :param session: an ``aiohttp`` session to reuse across polls; one is opened and closed when omitted.
        :param deadline: epoch seconds after which transient failures are no longer retried.
        :param request_id: names this call in ``X-Request-ID`` instead of the hook's ``request_id_prefix``.
        """
        await self.aconfigure()
        if session is None:
            async with new_client_session(ssl=self._ssl) as own:
                return await self.aget_task(job_id, session=own, deadline=deadline, request_id=request_id)
        call = self._call(protocol.POLL, request_id=request_id, job_id=job_id)
        data = await asend(self, session, call, deadline)
        return protocol.parse_record(data, job_id=job_id, secrets=self.secrets())
