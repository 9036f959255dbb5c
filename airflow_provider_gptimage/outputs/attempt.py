"""One attempt at fetching a result image: the request (redirects followed by hand), the status, and the
body streamed with bounded memory into a file, its first bytes checked before the rest is read."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urljoin

from airflow_provider_gptimage.exceptions import (
    GPTImageError,
    GPTImageRateLimitError,
    GPTImageResultError,
    GPTImageResultExpiredError,
    GPTImageServiceUnavailableError,
    GPTImageTransportError,
)
from airflow_provider_gptimage.outputs.digest import ParallelSHA256
from airflow_provider_gptimage.outputs.identify import HEAD_BYTES, describe, sniff
from airflow_provider_gptimage.outputs.urls import check_source_url, peer_refused, redact
from airflow_provider_gptimage.protocol import excerpt, parse_retry_after

if TYPE_CHECKING:
    import requests

    from airflow_provider_gptimage.outputs.deadline import DownloadDeadline

_EXPIRED_STATUSES = (403, 404, 410)
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5


def _expired(job_id: str | None, shown: str, why: str) -> GPTImageResultExpiredError:
    return GPTImageResultExpiredError(
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


def _stream(
    response: Any, out: BinaryIO, digest: Any, *, max_bytes: int, chunk_size: int, job_id: str | None, shown: str
) -> int:
    """Copy the body into ``out`` and ``digest``, checking its first bytes before any is written; return its
    size. Memory holds one chunk (or the head being checked) at a time."""
    size, head, checked = 0, b"", False
    for chunk in response.iter_content(chunk_size):
        if not checked:
            head += chunk
            if len(head) < HEAD_BYTES:
                continue
            chunk, head, checked = head, b"", True
            _check_head(chunk, response, job_id, shown)
        size += len(chunk)
        if size > max_bytes:
            raise GPTImageResultError(
                f"Result image of job {job_id} at {shown!r} grew past the limit of {max_bytes:,} bytes "
                "(max_bytes); the copy was abandoned.",
                job_id=job_id,
            )
        digest.update(chunk)
        out.write(chunk)
    if not checked and head:
        _check_head(head, response, job_id, shown)
        size += len(head)
        digest.update(head)
        out.write(head)
    return size


def download_once(
    session: requests.Session,
    url: str,
    out: BinaryIO,
    *,
    job_id: str | None,
    max_bytes: int,
    chunk_size: int,
    timeout: Any,
    deadline: DownloadDeadline | None = None,
) -> tuple[int, str]:
    """Stream one response into ``out``, hashing as it goes; memory holds one chunk at a time.

    :param deadline: also handed the response's socket once the headers are in (see
        :mod:`~airflow_provider_gptimage.outputs.deadline`); the caller runs this inside its watch.
    :return: ``(size, sha256)`` of what was written.
    :raises GPTImageResultError: expired URL, not an image, empty, bigger than ``max_bytes`` (final).
    :raises GPTImageTransportError: the connection failed or was cut (retryable).
    :raises GPTImageServiceUnavailableError: 5xx (retryable).
    """
    import requests

    shown = redact(url)
    try:
        with contextlib.ExitStack() as stack, _open(session, url, job_id, timeout) as response:
            sock = _response_socket(response)
            if deadline is not None and sock is not None:
                deadline.track(sock)
            if response.status_code != 200:
                raise _status_error(response, job_id, shown)
            declared = _declared_length(response)
            if declared is not None and declared > max_bytes:
                raise GPTImageResultError(
                    f"Result image of job {job_id} at {shown!r} is {declared:,} bytes, over the limit of "
                    f"{max_bytes:,} (max_bytes).",
                    job_id=job_id,
                )
            digest = stack.enter_context(ParallelSHA256())
            size = _stream(
                response, out, digest, max_bytes=max_bytes, chunk_size=chunk_size, job_id=job_id, shown=shown
            )
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
    if size == 0:
        raise GPTImageResultError(f"Result image of job {job_id} at {shown!r} is empty (0 bytes).", job_id=job_id)
    return size, digest.hexdigest()


def _response_socket(response: requests.Response) -> Any:
    """The socket a streamed response reads from: its pooled connection's, or (when the server closes the
    connection after the response, which detaches it from the connection) the one under its file object."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is None:
        reader = getattr(getattr(response.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock


def _check_head(head: bytes, response: requests.Response, job_id: str | None, shown: str) -> None:
    """Refuse at once a body that does not start like a PNG, JPEG or WebP (``Content-Type`` is not trusted)."""
    if sniff(head) is not None:
        return
    content_type = response.headers.get("Content-Type", "")
    try:
        more = response.raw.read(2048, decode_content=True) or b""
    except Exception:  # the body is already judged; a cut connection here changes nothing
        more = b""
    text = excerpt(head + more)
    if "expire" in text.lower() or "accessdenied" in text.lower():
        raise _expired(job_id, shown, f"the service answered {content_type or 'a page'!s}: {text}")
    raise GPTImageResultError(
        f"Result of job {job_id} at {shown!r} is not an image: it is {describe(head)} (Content-Type "
        f"{excerpt(content_type)[:60]!r}, body starts {text[:80]!r}). Only PNG, JPEG and WebP are kept; "
        "regenerate the image.",
        job_id=job_id,
    )
