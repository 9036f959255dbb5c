"""Fetching result images: a bounded-memory, checked, retried download.

Which URLs may be fetched at all is decided first, in :mod:`airflow_provider_gptimage.outputs.urls`
(also for every redirect, which is followed by hand).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import urljoin

from airflow_provider_gptimage.exceptions import (
    GPTImageError,
    GPTImageRateLimitError,
    GPTImageResultError,
    GPTImageServiceUnavailableError,
    GPTImageTransportError,
)
from airflow_provider_gptimage.outputs.digest import ParallelSHA256
from airflow_provider_gptimage.outputs.paths import EXTENSIONS
from airflow_provider_gptimage.outputs.urls import check_source_url, peer_refused, redact
from airflow_provider_gptimage.protocol import DOWNLOAD, RetryPolicy, decide_retry, excerpt, parse_retry_after

if TYPE_CHECKING:
    import requests

_EXPIRED_STATUSES = (403, 404, 410)
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"WEBP", 8, "image/webp"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
)
_HEAD_BYTES = 16


@dataclass(frozen=True)
class Downloaded:
    """What one successful download wrote: checked size, digest and type."""

    size: int
    sha256: str
    content_type: str
    extension: str


class Sink(Protocol):
    """Where a download writes: reset before every attempt, then written chunk by chunk."""

    def reset(self) -> BinaryIO:
        """Drop what an earlier attempt wrote and return an empty, writable file."""
        ...


def sniff(head: bytes, content_type: str) -> tuple[str, str] | None:
    """Return ``(content type, extension)`` when the first bytes or the header say image, else ``None``.

    Magic bytes win over the header. An ``image/*`` header alone is trusted unless the body starts like
    markup (an HTML or XML error page sent with the wrong type, or SVG, which can carry scripts).
    """
    for magic, offset, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic and (kind != "image/webp" or head.startswith(b"RIFF")):
            return kind, EXTENSIONS[kind]
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.startswith("image/") and "svg" not in kind and not head.lstrip().startswith(b"<"):
        subtype = "".join(ch for ch in kind[6:] if ch.isalnum())[:8] or "img"
        return kind, EXTENSIONS.get(kind, subtype)
    return None


def _expired(job_id: str | None, shown: str, why: str) -> GPTImageResultError:
    return GPTImageResultError(
        f"Result image of job {job_id} at {shown!r} is gone ({why}): the URL has expired or is missing. "
        "Result URLs last about 24 hours; regenerate the image (run the task again to create a new job).",
        job_id=job_id,
    )


def _status_error(response: requests.Response, job_id: str | None, shown: str) -> GPTImageError:
    status = response.status_code
    if status in _EXPIRED_STATUSES:
        return _expired(job_id, shown, f"HTTP {status}")
    if status == 429:
        return GPTImageRateLimitError(
            f"HTTP 429 fetching {shown!r} of job {job_id}.",
            status=status,
            retry_after=parse_retry_after(response.headers),
            job_id=job_id,
        )
    if status >= 500 or status == 455:
        return GPTImageServiceUnavailableError(
            f"HTTP {status} fetching {shown!r} of job {job_id}.", status=status, job_id=job_id
        )
    return GPTImageResultError(f"HTTP {status} fetching {shown!r} of job {job_id}: not an image.", job_id=job_id)


def _declared_length(response: requests.Response) -> int | None:
    if response.headers.get("Content-Encoding", "identity").lower() not in ("", "identity"):
        return None  # the header counts encoded bytes; the check below counts decoded ones
    try:
        value = int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None
    return value if value >= 0 else None


def _open(session: requests.Session, url: str, job_id: str | None, timeout: Any) -> requests.Response:
    """GET ``url``, following redirects by hand so that every hop is checked (and, with a
    :func:`~airflow_provider_gptimage.outputs.session.download_session`, every connection's address)."""
    from airflow_provider_gptimage.outputs.session import RefusedAddress

    for _ in range(_MAX_REDIRECTS + 1):
        try:
            response = session.get(
                url, stream=True, allow_redirects=False, timeout=timeout, headers={"Accept-Encoding": "identity"}
            )
        except RefusedAddress as exc:
            raise peer_refused(exc.address, url, job_id) from None
        if response.status_code not in _REDIRECTS or "Location" not in response.headers:
            return response
        response.close()
        url = urljoin(url, response.headers["Location"])
        check_source_url(url, job_id=job_id)
    raise GPTImageResultError(f"Too many redirects fetching the result image of job {job_id}.", job_id=job_id)


def download_once(
    session: requests.Session,
    url: str,
    out: BinaryIO,
    *,
    job_id: str | None,
    max_bytes: int,
    chunk_size: int,
    timeout: Any,
) -> Downloaded:
    """Stream one image into ``out``, hashing as it goes; memory holds one chunk at a time.

    :raises GPTImageResultError: expired URL, not an image, empty, bigger than ``max_bytes`` (final).
    :raises GPTImageTransportError: the connection failed or was cut (retryable).
    :raises GPTImageServiceUnavailableError: 5xx (retryable).
    """
    import requests

    shown = redact(url)
    try:
        with contextlib.ExitStack() as stack, _open(session, url, job_id, timeout) as response:
            if response.status_code != 200:
                raise _status_error(response, job_id, shown)
            declared = _declared_length(response)
            if declared is not None and declared > max_bytes:
                raise GPTImageResultError(
                    f"Result image of job {job_id} at {shown!r} is {declared:,} bytes, over the limit of "
                    f"{max_bytes:,} (max_bytes).",
                    job_id=job_id,
                )
            digest, size, head, kind = stack.enter_context(ParallelSHA256()), 0, b"", None
            for chunk in response.iter_content(chunk_size):
                if kind is None:
                    head += chunk
                    if len(head) < _HEAD_BYTES:
                        continue
                    chunk, head = head, b""
                    kind = _check_kind(chunk, response, job_id, shown)
                size += len(chunk)
                if size > max_bytes:
                    raise GPTImageResultError(
                        f"Result image of job {job_id} at {shown!r} grew past the limit of {max_bytes:,} bytes "
                        "(max_bytes); the copy was abandoned.",
                        job_id=job_id,
                    )
                digest.update(chunk)
                out.write(chunk)
            if kind is None and head:
                kind = _check_kind(head, response, job_id, shown)
                size += len(head)
                digest.update(head)
                out.write(head)
    except requests.RequestException as exc:
        raise GPTImageTransportError(
            f"Downloading the result image of job {job_id} from {shown!r} failed: {type(exc).__name__}.",
            request_sent=not isinstance(exc, requests.ConnectTimeout),
            job_id=job_id,
        ) from exc
    if declared is not None and size != declared:
        raise GPTImageTransportError(
            f"Result image of job {job_id} at {shown!r} was cut short: {size:,} of {declared:,} bytes.",
            job_id=job_id,
        )
    if size == 0 or kind is None:
        raise GPTImageResultError(f"Result image of job {job_id} at {shown!r} is empty (0 bytes).", job_id=job_id)
    return Downloaded(size=size, sha256=digest.hexdigest(), content_type=kind[0], extension=kind[1])


def _check_kind(head: bytes, response: requests.Response, job_id: str | None, shown: str) -> tuple[str, str]:
    content_type = response.headers.get("Content-Type", "")
    kind = sniff(head, content_type)
    if kind is not None:
        return kind
    try:
        more = response.raw.read(2048, decode_content=True) or b""
    except Exception:  # the body is already judged; a cut connection here changes nothing
        more = b""
    text = excerpt(head + more)
    if "expire" in text.lower() or "accessdenied" in text.lower():
        raise _expired(job_id, shown, f"the service answered {content_type or 'a page'!s}: {text}")
    raise GPTImageResultError(
        f"Result of job {job_id} at {shown!r} is not an image (Content-Type {content_type!r}, body starts "
        f"{text[:80]!r}). Regenerate the image.",
        job_id=job_id,
    )


def download(
    session: requests.Session,
    url: str,
    sink: Sink,
    *,
    job_id: str | None,
    max_bytes: int,
    chunk_size: int,
    timeout: Any,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    rand: Callable[[], float],
) -> Downloaded:
    """Download with bounded retries of transient failures, decided by the protocol's retry policy.

    :raises GPTImageResultError: a final failure, or the last transient one once retries are spent.
    """
    check_source_url(url, job_id=job_id)
    failures: list[GPTImageError] = []
    while True:
        try:
            return download_once(
                session, url, sink.reset(), job_id=job_id, max_bytes=max_bytes, chunk_size=chunk_size, timeout=timeout
            )
        except GPTImageError as exc:
            failures.append(exc)
            delay = decide_retry(policy, DOWNLOAD, failures, rand())
            if delay is None:
                if isinstance(exc, GPTImageResultError):
                    raise
                raise GPTImageResultError(
                    f"Could not copy the result image of job {job_id} from {redact(url)!r} after "
                    f"{len(failures)} attempt(s): {exc} Retry the task while the URL is valid (about 24 h), "
                    "or regenerate the image.",
                    job_id=job_id,
                ) from exc
            sleep(delay)
