"""Answers of the API: the envelope, typed errors by code, job records (pure, tolerant of variations)."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from airflow_provider_gptimage.exceptions import (
    GPTImageActiveTaskLimitError,
    GPTImageAPIError,
    GPTImageAuthError,
    GPTImageBadRequestError,
    GPTImageInsufficientCreditsError,
    GPTImageInvalidResponseError,
    GPTImageNotFoundError,
    GPTImageRateLimitError,
    GPTImageServiceUnavailableError,
    GPTImageUnsupportedError,
)

STATE_SUCCESS = "success"
STATE_FAIL = "fail"

_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class JobRecord:
    """One job as ``recordInfo`` describes it.

    :param job_id: the API's ``taskId``.
    :param state: the raw state (``waiting``, ``queuing``, ``generating``, ``success``, ``fail``...).
    :param result_urls: URLs of the images (on success; they expire, about a day).
    :param fail_code: ``failCode`` (``None`` when empty).
    :param fail_message: ``failMsg`` (``None`` when empty).
    :param cost_time_ms: generation time in milliseconds.
    :param create_time_ms: epoch milliseconds.
    :param complete_time_ms: epoch milliseconds.
    :param model: the model that ran.
    :param params: the create request echoed back (``param``), decoded.
    """

    job_id: str
    state: str
    result_urls: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_message: str | None = None
    cost_time_ms: int | None = None
    create_time_ms: int | None = None
    complete_time_ms: int | None = None
    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def is_success(self) -> bool:
        """The job succeeded."""
        return self.state == STATE_SUCCESS

    @property
    def is_failed(self) -> bool:
        """The job failed."""
        return self.state == STATE_FAIL

    @property
    def is_finished(self) -> bool:
        """The job ended; every other state (including unknown ones) counts as running."""
        return self.state in (STATE_SUCCESS, STATE_FAIL)

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-serialisable primitives (for trigger events and XCom)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["result_urls"] = list(self.result_urls)
        # A deep copy: mutating the returned dict must not reach into this (frozen) record.
        data["params"] = copy.deepcopy(dict(self.params))
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRecord:
        """Rebuild a record from :meth:`to_dict` output."""
        values = dict(data)
        values["result_urls"] = tuple(values.get("result_urls") or ())
        values["params"] = copy.deepcopy(dict(values.get("params") or {}))
        return cls(**values)


def _message(body: Mapping[str, Any]) -> str:
    text = body.get("msg")
    if text in (None, ""):
        text = body.get("message")
    return str(text) if text not in (None, "") else ""


def excerpt(raw: bytes | str, *, secrets: tuple[str, ...] = ()) -> str:
    """Return a short, single-line excerpt of a body for an error message, with secrets removed."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    text = " ".join(text.split())
    # Longest first, so a secret that contains another one is removed whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
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

    Any body ``code`` other than 200 is an error whatever the HTTP status; a body that is not JSON
    (an HTML page from a proxy, an empty reply) is reported with its status and a short excerpt.
    """
    retry_after = parse_retry_after(headers)
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = None
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
            f"{operation} failed: HTTP {status} with a body that is not a JSON object: {shown!r}.",
            status=status,
            retry_after=retry_after,
            job_id=job_id,
        )
    message = excerpt(_message(body), secrets=secrets)
    code = body.get("code")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if status >= 400 or (isinstance(code, int) and code != 200):
        effective = code if isinstance(code, int) and code != 200 else status
        raise error_for(
            effective,
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


def parse_create(data: Mapping[str, Any]) -> str:
    """Return the job id from a ``createTask`` answer's ``data``."""
    job_id = data.get("taskId")
    if not isinstance(job_id, str) or not job_id.strip():
        raise GPTImageInvalidResponseError("createTask answered without a `taskId`; the job may or may not exist.")
    return job_id


def _decode_json_field(value: Any) -> Any:
    if isinstance(value, (bytes, str)):
        if not str(value).strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _blank_to_none(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value in (None, "") else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def parse_record(data: Mapping[str, Any], *, job_id: str | None = None) -> JobRecord:
    """Build a :class:`JobRecord` from a ``recordInfo`` answer's ``data``.

    Tolerates ``resultJson`` as a string or an object, ``""`` or ``null`` fail fields, and states
    beyond the documented ones (they count as running).
    """
    record_id = data.get("taskId") or job_id
    if not isinstance(record_id, str) or not record_id:
        raise GPTImageInvalidResponseError("recordInfo answered without a `taskId`.", job_id=job_id)
    state = str(data.get("state") or "unknown").strip().lower()
    result = _decode_json_field(data.get("resultJson"))
    urls: tuple[str, ...] = ()
    if isinstance(result, dict) and isinstance(result.get("resultUrls"), list):
        urls = tuple(str(u) for u in result["resultUrls"] if isinstance(u, str) and u)
    params = _decode_json_field(data.get("param"))
    return JobRecord(
        job_id=record_id,
        state=state,
        result_urls=urls,
        fail_code=_blank_to_none(data.get("failCode")),
        fail_message=_blank_to_none(data.get("failMsg")),
        cost_time_ms=_int_or_none(data.get("costTime")),
        create_time_ms=_int_or_none(data.get("createTime")),
        complete_time_ms=_int_or_none(data.get("completeTime")),
        model=_blank_to_none(data.get("model")),
        params=params if isinstance(params, dict) else {},
    )


def request_id(*parts: object, limit: int = 200) -> str:
    """Build a stable, header-safe ``X-Request-ID`` from its parts (dag, run, task, map index, try, op)."""
    text = ":".join(str(p) for p in parts if p not in (None, ""))
    safe = re.sub(r"[^A-Za-z0-9._:/@#=+\-\[\]]", "_", text)
    return safe[:limit]
