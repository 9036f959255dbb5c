"""The HTTP clients' side of the API loops: bounded reads of answers, and failures as typed transport errors.

A rejected server certificate becomes :class:`~airflow_provider_gptimage.exceptions.GPTImageTLSError`
(not retried, nothing was sent); a refused connection says nothing was sent; a timeout or a reset
leaves open whether the service received the request.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import requests
from urllib3 import exceptions as urllib3_errors
from urllib3.exceptions import NewConnectionError

from airflow_provider_gptimage import protocol
from airflow_provider_gptimage.exceptions import GPTImageTransportError
from airflow_provider_gptimage.tls import certificate_error

if TYPE_CHECKING:
    import aiohttp


def transport_error(operation: str, exc: requests.RequestException, timeout: float) -> GPTImageTransportError:
    """Map a ``requests`` failure of ``operation`` to a transport error."""
    tls = certificate_error(operation, exc)
    if tls is not None:
        return tls
    if isinstance(exc, requests.ConnectTimeout):
        return GPTImageTransportError(f"{operation}: could not connect within {timeout:g}s.", request_sent=False)
    if isinstance(exc, requests.Timeout):
        return GPTImageTransportError(f"{operation}: no answer within {timeout:g}s.")
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    refused = isinstance(exc, requests.ConnectionError) and isinstance(reason, NewConnectionError)
    what = "connection refused or unreachable" if refused else f"connection failed ({type(exc).__name__})"
    return GPTImageTransportError(f"{operation}: {what}.", request_sent=not refused)


def atransport_error(operation: str, exc: BaseException, timeout: float) -> GPTImageTransportError:
    """Map an ``aiohttp`` failure (or a timeout) of ``operation`` to a transport error."""
    import aiohttp

    tls = certificate_error(operation, exc)
    if tls is not None:
        return tls
    if isinstance(exc, asyncio.TimeoutError):
        return GPTImageTransportError(f"{operation}: no answer within {timeout:g}s.")
    refused = isinstance(exc, aiohttp.ClientConnectorError)
    what = "connection refused or unreachable" if refused else f"connection failed ({type(exc).__name__})"
    return GPTImageTransportError(f"{operation}: {what}.", request_sent=not refused)


def read_body(response: requests.Response, operation: str, timeout: float, *, job_id: str | None = None) -> bytes:
    """Read an API answer of at most :data:`~.protocol.MAX_BODY_BYTES` (decoded) within ``timeout`` seconds
    in all (requests' own timeout is per read: a server sending a byte at a time never trips it).

    :raises GPTImageInvalidResponseError: the answer is longer (it is not read further).
    :raises GPTImageTransportError: the answer did not complete within ``timeout``.
    """
    limit = protocol.MAX_BODY_BYTES
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise protocol.body_too_large(operation, response.status_code, job_id=job_id)
    raw = response.raw
    read = getattr(raw, "read1", None) or raw.read  # read1: whatever arrived, so the clock is checked often
    stop = time.monotonic() + timeout
    chunks, size = [], 0
    try:
        while chunk := read(64 * 1024, decode_content=True):
            size += len(chunk)
            if size > limit:
                raise protocol.body_too_large(operation, response.status_code, job_id=job_id)
            chunks.append(chunk)
            if time.monotonic() > stop:
                raise GPTImageTransportError(f"{operation}: the answer did not complete within {timeout:g}s.")
    # The mapping requests' own iter_content applies, so the caller sees requests' errors only.
    except urllib3_errors.ReadTimeoutError as exc:
        raise requests.ReadTimeout(exc) from exc
    except urllib3_errors.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except urllib3_errors.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc
    except urllib3_errors.HTTPError as exc:  # ProtocolError and the rest: the connection broke mid-answer
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    return b"".join(chunks)


async def aread_body(response: aiohttp.ClientResponse, operation: str, *, job_id: str | None = None) -> bytes:
    """Read an API answer of at most :data:`~.protocol.MAX_BODY_BYTES` (decoded; the session's total timeout
    bounds the time).

    :raises GPTImageInvalidResponseError: the answer is longer (it is not read further).
    """
    limit = protocol.MAX_BODY_BYTES
    if response.content_length is not None and response.content_length > limit:
        raise protocol.body_too_large(operation, response.status, job_id=job_id)
    chunks, size = [], 0
    while chunk := await response.content.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise protocol.body_too_large(operation, response.status, job_id=job_id)
        chunks.append(chunk)
    return b"".join(chunks)
