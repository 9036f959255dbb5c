"""Failures of the HTTP clients (requests, aiohttp) as the provider's typed transport errors.

A rejected server certificate becomes :class:`~airflow_provider_gptimage.exceptions.GPTImageTLSError`
(not retried, nothing was sent); a refused connection says nothing was sent; a timeout or a reset
leaves open whether the service received the request.
"""

from __future__ import annotations

import asyncio

import requests
from urllib3.exceptions import NewConnectionError

from airflow_provider_gptimage.exceptions import GPTImageTransportError
from airflow_provider_gptimage.tls import certificate_error


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
