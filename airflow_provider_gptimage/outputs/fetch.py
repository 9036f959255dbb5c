"""Fetching result images: a bounded-memory, checked, retried download with an overall deadline.

Which URLs may be fetched at all is decided first, in :mod:`airflow_provider_gptimage.outputs.urls`
(also for every redirect, which is followed by hand). Each attempt (:mod:`.attempt`) checks that the
first bytes are the magic of a PNG, JPEG or WebP before it reads the rest; the whole file is then identified by its own
header (:mod:`~airflow_provider_gptimage.outputs.identify`) before it may be published. Every attempt,
and every wait between attempts, ends by the image's deadline (:mod:`~airflow_provider_gptimage.outputs.deadline`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from airflow_provider_gptimage.exceptions import (
    GPTImageDownloadTimeoutError,
    GPTImageError,
    GPTImageResultError,
)
from airflow_provider_gptimage.outputs.attempt import download_once
from airflow_provider_gptimage.outputs.containers import ImageRejected
from airflow_provider_gptimage.outputs.identify import ImageInfo, identify
from airflow_provider_gptimage.outputs.urls import check_source_url, redact
from airflow_provider_gptimage.protocol import DOWNLOAD, RetryPolicy, decide_retry

if TYPE_CHECKING:
    import requests

    from airflow_provider_gptimage.outputs.deadline import DownloadDeadline


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
