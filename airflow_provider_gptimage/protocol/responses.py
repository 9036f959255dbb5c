"""Answers of the API: the envelope and typed errors by code (pure, tolerant of variations, bounded)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_gptimage.exceptions import (
    GPTImageActiveTaskLimitError,
    GPTImageAPIError,
    GPTImageAuthError,
    GPTImageBadRequestError,
    GPTImageConfigurationError,
    GPTImageInsufficientCreditsError,
    GPTImageInvalidResponseError,
    GPTImageNotFoundError,
    GPTImageRateLimitError,
    GPTImageServiceUnavailableError,
    GPTImageUnsupportedError,
)
from airflow_provider_gptimage.protocol.text import MAX_DEPTH, clean, depth_exceeds, escape_controls, scrub

_EXCERPT_CHARS = 200
#: The largest API answer read; a longer one is cut off there and reported (both sync and async paths).
MAX_BODY_BYTES = 1024 * 1024
_REDIRECTS = range(300, 400)


def _message(body: Mapping[str, Any]) -> str:
    text = body.get("msg")
    if text in (None, ""):
        text = body.get("message")
    return str(text) if text not in (None, "") else ""


def excerpt(raw: bytes | str, *, secrets: tuple[str, ...] = ()) -> str:
    """Return a short, single-line excerpt of a body for an error message, with secrets removed."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = escape_controls(scrub(" ".join(text.split()), secrets))
    return text if len(text) <= _EXCERPT_CHARS else f"{text[:_EXCERPT_CHARS]}..."


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Read ``Retry-After`` (seconds; an HTTP date is ignored) as a non-negative float, if present."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


_ERRORS_BY_CODE: dict[int, tuple[type[GPTImageAPIError], str]] = {
    400: (
        GPTImageBadRequestError,
        "the service rejected the request's parameters; fix them, retrying will not help",
    ),
    401: (
        GPTImageAuthError,
        "authentication failed: the API key is missing, wrong or revoked; fix the connection",
    ),
    402: (
        GPTImageInsufficientCreditsError,
        "insufficient credits: top up the account; retrying will not help",
    ),
    404: (GPTImageNotFoundError, "not found: the job id is wrong or has expired"),
    409: (GPTImageActiveTaskLimitError, "active task limit exceeded: too many jobs are running at once"),
    422: (GPTImageBadRequestError, "parameter validation failed; fix the input, retrying will not help"),
    429: (GPTImageRateLimitError, "rate limit exceeded for this API key's tier"),
    455: (GPTImageServiceUnavailableError, "service unavailable (maintenance)"),
    501: (GPTImageUnsupportedError, "generation failed on the service"),
    505: (GPTImageUnsupportedError, "the feature is disabled for this account or service"),
}


def error_for(
    code: int,
    *,
    status: int,
    message: str = "",
    retry_after: float | None = None,
    operation: str = "request",
    job_id: str | None = None,
    detail: str = "",
) -> GPTImageAPIError:
    """Map an error code (the body's ``code``, else the HTTP status) to a typed error."""
    cls, meaning = _ERRORS_BY_CODE.get(code, (None, ""))  # type: ignore[assignment]
    if cls is None:
        if code >= 500:
            cls, meaning = GPTImageServiceUnavailableError, "server error"
        else:
            cls, meaning = GPTImageBadRequestError, "unexpected error code"
    said = f" The service said: {message!r}." if message else ""
    said += f" {detail}" if detail else ""
    where = f" (HTTP {status}, code {code})" if status != code else f" (HTTP {status})"
    return cls(
        f"{operation} failed: {meaning}{where}.{said}",
        status=status,
        code=code,
        retry_after=retry_after,
        job_id=job_id,
    )


def body_too_large(operation: str, status: int, *, job_id: str | None = None) -> GPTImageInvalidResponseError:
    """The error of an answer longer than :data:`MAX_BODY_BYTES` (the loops stop reading there; retryable)."""
    return GPTImageInvalidResponseError(
        f"{operation} failed: HTTP {status} with an answer longer than {MAX_BODY_BYTES:,} bytes; it was not read "
        "further. A proxy or a broken service may be answering instead of the API.",
        status=status,
        job_id=job_id,
    )


def redirect_error(operation: str, status: int, headers: Mapping[str, str] | None) -> GPTImageConfigurationError:
    """The error of an API answer that redirects (3xx): API calls never follow redirects.

    A redirect would carry the key to whatever address it names (a cloud metadata endpoint included); an
    API that redirects is a misconfigured base URL, so the error names where it pointed and what to fix.
    """
    location = next((v for k, v in (headers or {}).items() if k.lower() == "location"), "")
    host = clean(urlsplit(location).hostname or "", limit=80) if location else None
    where = f"to host {host!r}" if host else "without a usable Location"
    return GPTImageConfigurationError(
        f"{operation} failed: the API answered HTTP {status}, a redirect {where}. API calls do not follow "
        "redirects (the key would travel with them): set the connection's host to the service's own base URL."
    )


def _json_body(raw: bytes) -> Any:
    """The decoded body, or ``None`` when it is empty, not JSON, nested deeper than :data:`MAX_DEPTH`."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        return None
    return None if depth_exceeds(body) else body


def _body_code(body: Mapping[str, Any]) -> int | None:
    """The body's ``code`` as an int (digits in a string too); ``None`` when absent; ``0`` (an unexpected code)
    for a number that is not a 3-digit code, so that it is never shown in full."""
    code = body.get("code")
    if isinstance(code, str) and code.strip().isdigit():
        code = int(code.strip()) if len(code.strip()) <= 3 else 0
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    return code if 100 <= code <= 999 else 0


def parse_envelope(
    status: int,
    raw: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    operation: str = "request",
    job_id: str | None = None,
    secrets: tuple[str, ...] = (),
) -> Mapping[str, Any]:
    """Turn one HTTP answer into the body's ``data``, or raise the typed error it means.

    Any body ``code`` other than 200 is an error whatever the HTTP status; a redirect is refused
    (:func:`redirect_error`); a body that is not a JSON object, or nests deeper than
    :data:`~.text.MAX_DEPTH` (an HTML page from a proxy, an empty reply, a hostile answer) is reported with
    its status and a short, scrubbed excerpt. The caller reads at most :data:`MAX_BODY_BYTES` of it.
    """
    if status in _REDIRECTS:
        raise redirect_error(operation, status, headers)
    retry_after = parse_retry_after(headers)
    body = _json_body(raw)
    if not isinstance(body, dict):
        if status >= 400:
            raise error_for(
                status,
                status=status,
                retry_after=retry_after,
                operation=operation,
                job_id=job_id,
                detail=f"The body was not JSON: {excerpt(raw, secrets=secrets)!r}.",
            )
        shown = excerpt(raw, secrets=secrets) if raw.strip() else "<empty>"
        raise GPTImageInvalidResponseError(
            f"{operation} failed: HTTP {status} with a body that is not a JSON object of at most "
            f"{MAX_DEPTH} levels: {shown!r}.",
            status=status,
            retry_after=retry_after,
            job_id=job_id,
        )
    message = excerpt(_message(body), secrets=secrets)
    code = _body_code(body)
    if status >= 400 or (code is not None and code != 200):
        raise error_for(
            code if code is not None and code != 200 else status,
            status=status,
            message=message,
            retry_after=retry_after,
            operation=operation,
            job_id=job_id,
        )
    data = body.get("data")
    if not isinstance(data, dict):
        raise GPTImageInvalidResponseError(
            f"{operation} failed: HTTP {status} without a `data` object: {excerpt(raw, secrets=secrets)!r}.",
            status=status,
            job_id=job_id,
        )
    return data


def request_id(*parts: object, limit: int = 200) -> str:
    """Build a stable, header-safe ``X-Request-ID`` from its parts (dag, run, task, map index, try, op)."""
    text = ":".join(str(p) for p in parts if p not in (None, ""))
    safe = re.sub(r"[^A-Za-z0-9._:/@#=+\-\[\]]", "_", text)
    return safe[:limit]
