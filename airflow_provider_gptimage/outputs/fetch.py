"""Fetching result images: a bounded-memory, checked, retried download with an overall deadline.

Which URLs may be fetched at all is decided first, in :mod:`airflow_provider_gptimage.outputs.urls`
(also for every redirect, which is followed by hand). The first bytes must be the magic of a PNG, JPEG or
WebP (anything else is refused before the rest is read); the whole file is then identified by its own
header (:mod:`~airflow_provider_gptimage.outputs.identify`) before it may be published. Every attempt,
and every wait between attempts, ends by the image's deadline (:mod:`~airflow_provider_gptimage.outputs.deadline`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import urljoin

from airflow_provider_gptimage.exceptions import (
    GPTImageDownloadTimeoutError,
    GPTImageError,
    GPTImageRateLimitError,
    GPTImageResultError,
    GPTImageServiceUnavailableError,
    GPTImageTransportError,
)
from airflow_provider_gptimage.outputs.containers import ImageRejected
from airflow_provider_gptimage.outputs.digest import ParallelSHA256
from airflow_provider_gptimage.outputs.identify import HEAD_BYTES, ImageInfo, describe, identify, sniff
from airflow_provider_gptimage.outputs.urls import check_source_url, peer_refused, redact
from airflow_provider_gptimage.protocol import DOWNLOAD, RetryPolicy, decide_retry, excerpt, parse_retry_after

if TYPE_CHECKING:
    import requests

    from airflow_provider_gptimage.outputs.deadline import DownloadDeadline

_EXPIRED_STATUSES = (403, 404, 410)
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Downloaded:
    """What one successful download wrote: its checked size and digest, and the image it was identified as."""

    size: int
    sha256: str
    image: ImageInfo


@dataclass(frozen=True)
class FetchSettings:
    """How result images are fetched; one value for every image of a copy.

    :param max_bytes: the largest image accepted.
    :param chunk_size: bytes read and written at a time.
    :param timeout: ``requests`` (connect, read) timeout of each socket operation, cut to the time left.
    :param download_timeout: seconds one image may take in all, retries and waits included.
    :param policy: retry policy of transient failures (the protocol's ``DOWNLOAD`` decision).
    :param sleep: waits between retries.
    :param rand: jitter source in ``[0, 1)``.
    :param clock: monotonic seconds, for the deadline.
    """

    max_bytes: int
    chunk_size: int
    timeout: Any
    download_timeout: float
    policy: RetryPolicy
    sleep: Callable[[float], None]
    rand: Callable[[], float]
    clock: Callable[[], float]


class Sink(Protocol):
    """Where a download writes: reset before every attempt, written chunk by chunk, then read back."""

    def reset(self) -> BinaryIO:
        """Drop what an earlier attempt wrote and return an empty, writable file."""
        ...

    def contents(self) -> BinaryIO:
        """What the last attempt wrote, as a readable, seekable file."""
        ...


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
            digest, size, head, checked = stack.enter_context(ParallelSHA256()), 0, b"", False
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


def _identify(sink: Sink, size: int, job_id: str | None, shown: str) -> ImageInfo:
    try:
        return identify(sink.contents(), size)
    except ImageRejected as exc:
        raise GPTImageResultError(
            f"Result image of job {job_id} at {shown!r} was refused: {exc}. Nothing was kept under its name; "
            "regenerate the image.",
            job_id=job_id,
        ) from None


def _too_slow(deadline: DownloadDeadline, job_id: str | None, url: str, attempts: int) -> GPTImageDownloadTimeoutError:
    return GPTImageDownloadTimeoutError(
        f"Result image of job {job_id} at {redact(url)!r} did not arrive within its download deadline of "
        f"{deadline.seconds:g} s (download_timeout; {attempts} attempt(s)): the result host is too slow. Retry "
        "the task while the result URL is valid (about 24 h), or raise download_timeout.",
        deadline=deadline.seconds,
        job_id=job_id,
    )


def download(
    session: requests.Session, url: str, sink: Sink, *, job_id: str | None, settings: FetchSettings
) -> Downloaded:
    """Download with bounded retries of transient failures, all within one deadline; identify the image.

    :raises GPTImageDownloadTimeoutError: the deadline passed (during an attempt, or before the next one).
    :raises GPTImageResultError: a final failure, or the last transient one once retries are spent.
    """
    from airflow_provider_gptimage.outputs.deadline import DownloadDeadline

    check_source_url(url, job_id=job_id)
    deadline = DownloadDeadline(settings.download_timeout, clock=settings.clock)
    failures: list[GPTImageError] = []
    while True:
        if deadline.expired:
            raise _too_slow(deadline, job_id, url, len(failures))
        try:
            with deadline.watching():
                size, sha256 = download_once(
                    session,
                    url,
                    sink.reset(),
                    job_id=job_id,
                    max_bytes=settings.max_bytes,
                    chunk_size=settings.chunk_size,
                    timeout=deadline.timeout(settings.timeout),
                    deadline=deadline,
                )
            if deadline.fired:  # the watchdog ended the body early: what arrived is not the whole image
                raise _too_slow(deadline, job_id, url, len(failures) + 1)
            return Downloaded(size=size, sha256=sha256, image=_identify(sink, size, job_id, redact(url)))
        except GPTImageDownloadTimeoutError:
            raise
        except GPTImageError as exc:
            if deadline.fired:
                raise _too_slow(deadline, job_id, url, len(failures) + 1) from exc
            failures.append(exc)
            delay = decide_retry(settings.policy, DOWNLOAD, failures, settings.rand())
            if delay is None:
                if isinstance(exc, GPTImageResultError):
                    raise
                raise GPTImageResultError(
                    f"Could not copy the result image of job {job_id} from {redact(url)!r} after "
                    f"{len(failures)} attempt(s): {exc} Retry the task while the URL is valid (about 24 h), "
                    "or regenerate the image.",
                    job_id=job_id,
                ) from exc
            if delay >= deadline.remaining():
                raise _too_slow(deadline, job_id, url, len(failures)) from exc
            settings.sleep(delay)
        except Exception as exc:
            if deadline.fired:
                raise _too_slow(deadline, job_id, url, len(failures) + 1) from exc
            raise
