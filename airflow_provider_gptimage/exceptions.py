"""Typed errors of the provider.

Callers catch classes, never parse messages. Every message says what happened and what to do, and
none ever contains the API key (messages are built from status codes, the service's own short message
and scrubbed excerpts only).
"""

from __future__ import annotations

from typing import Any


class GPTImageError(Exception):
    """Base class of every error raised by this provider.

    :param message: what happened and what to do about it.
    :param job_id: the API's job id (``taskId``) the error concerns, when there is one.
    """

    #: Whether sending the same request again may succeed.
    retryable: bool = False

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword-only attributes when pickled (Airflow may pickle exceptions across processes).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[GPTImageError], state: dict[str, Any]) -> GPTImageError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, state.get("message", ""))
    exc.__dict__.update(state)
    return exc


class GPTImageValidationError(GPTImageError, ValueError):
    """An argument breaks a rule of the API; raised before any request is sent.

    :param parameter: the name of the offending argument.
    :param rule: the rule it breaks, in plain words.
    """

    parameter: str = ""
    rule: str = ""

    def __init__(self, parameter: str, rule: str, *, value: object = None) -> None:
        shown = "" if value is None else f" (got {_short_repr(value)})"
        super().__init__(f"Invalid `{parameter}`: {rule}{shown}. Nothing was sent to the API.")
        self.parameter = parameter
        self.rule = rule


class GPTImageConfigurationError(GPTImageError):
    """The ``gptimage`` connection (or another setting) cannot be used as it is."""


class GPTImageAPIError(GPTImageError):
    """The API answered with an error.

    :param status: the HTTP status of the answer.
    :param code: the ``code`` field of the body (the API may send errors as HTTP 200 with a body code).
    :param retry_after: seconds the service asked us to wait (``Retry-After``), if it said.
    """

    status: int | None = None
    code: int | None = None
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
        job_id: str | None = None,
    ) -> None:
        super().__init__(message, job_id=job_id)
        self.status = status
        self.code = code
        self.retry_after = retry_after


class GPTImageBadRequestError(GPTImageAPIError):
    """400/422: the service rejected the request's parameters. Fix the input; retrying will not help."""


class GPTImageAuthError(GPTImageAPIError):
    """401: the API key is missing, wrong or revoked. Fix the connection's password."""


class GPTImageInsufficientCreditsError(GPTImageAPIError):
    """402: the account has no credits left. Top up the account; retrying will not help."""


class GPTImageNotFoundError(GPTImageAPIError):
    """404: the job id is unknown to the service (wrong, or expired)."""


class GPTImageActiveTaskLimitError(GPTImageAPIError):
    """409: the account's limit of jobs running at once is reached. Wait and try again."""

    retryable = True


class GPTImageRateLimitError(GPTImageAPIError):
    """429: too many requests for the key's tier. Back off and try again."""

    retryable = True


class GPTImageServiceUnavailableError(GPTImageAPIError):
    """455 (maintenance) or a 5xx answer: the service is having trouble. Retried with backoff."""

    retryable = True


class GPTImageUnsupportedError(GPTImageAPIError):
    """501/505 and other errors the service says are final (generation failed, feature disabled)."""


class GPTImageInvalidResponseError(GPTImageAPIError):
    """The answer could not be understood (not JSON, missing fields): a proxy page or a broken reply."""

    retryable = True


class GPTImageTransportError(GPTImageError):
    """The request did not complete: timeout, refused or reset connection.

    :param request_sent: ``False`` when the request surely never reached the service (connection
        refused), so sending it again cannot pay twice.
    """

    retryable = True
    request_sent: bool = True

    def __init__(self, message: str, *, request_sent: bool = True, job_id: str | None = None) -> None:
        super().__init__(message, job_id=job_id)
        self.request_sent = request_sent


class GPTImageTLSError(GPTImageTransportError):
    """The service's TLS certificate was not accepted (unknown CA, wrong host name, expired).

    Not retried: the same certificate fails the same way. The check precedes the request, so nothing
    was sent. A service reached through a private or corporate CA needs the connection extra ``verify``
    set to that CA's bundle.
    """

    retryable = False
    request_sent = False

    def __init__(self, message: str, *, request_sent: bool = False, job_id: str | None = None) -> None:
        super().__init__(message, request_sent=request_sent, job_id=job_id)


class GPTImageJobFailedError(GPTImageError):
    """The job ended in state ``fail``; ``fail_code`` and ``fail_message`` say why.

    :param fail_code: the API's ``failCode``.
    :param fail_message: the API's ``failMsg``.
    """

    fail_code: str | None = None
    fail_message: str | None = None

    def __init__(self, message: str, *, job_id: str | None, fail_code: str | None, fail_message: str | None) -> None:
        super().__init__(message, job_id=job_id)
        self.fail_code = fail_code
        self.fail_message = fail_message


class GPTImageUnknownStateError(GPTImageJobFailedError):
    """The job kept reporting a state the provider does not know (neither running nor ended) for too many
    polls in a row; it is reported instead of being polled until its deadline. It may still end on the
    service: collect it later with ``GPTImageTaskSensor``."""

    def __init__(self, message: str, *, job_id: str | None, state: str | None = None) -> None:
        super().__init__(message, job_id=job_id, fail_code=None, fail_message=None)
        self.state = state


class GPTImageTimeoutError(GPTImageError):
    """The job did not end before the deadline. The job itself may still finish (and be billed)."""


class GPTImageResultError(GPTImageError):
    """A result image could not be fetched or kept (expired URL, not an image, refused address)."""


class GPTImageResultExpiredError(GPTImageResultError):
    """The result image is gone (HTTP 403, 404 or 410, or an "expired" page from the image host): its URL has
    expired. Only a new job makes the image again, so the job is forgotten (its journal entry ends and the
    task's stored job is cleared): the next run creates a new one instead of re-attaching to this one."""


class GPTImageDownloadTimeoutError(GPTImageResultError):
    """A result image did not arrive within its download deadline (``download_timeout``), retries included.

    :param deadline: the deadline, in seconds.
    """

    deadline: float | None = None

    def __init__(self, message: str, *, deadline: float | None = None, job_id: str | None = None) -> None:
        super().__init__(message, job_id=job_id)
        self.deadline = deadline


class GPTImageBatchFailedError(GPTImageError):
    """Items of a batch failed (``failure_policy`` ``fail_fast`` or ``fail_at_end``); the message sums them up.

    :param failed_keys: the keys of the failed items (the first ones, when there are many).
    """

    failed_keys: tuple[str, ...] = ()

    def __init__(self, message: str, *, failed_keys: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.failed_keys = failed_keys


class GPTImageSpendLimitError(GPTImageError):
    """A catalog run's plan needs more new jobs than ``max_new_images`` allows; raised before any create.

    :param needed: the jobs the plan would pay for.
    :param allowed: the ``max_new_images`` limit.
    """

    needed: int = 0
    allowed: int = 0

    def __init__(self, message: str, *, needed: int = 0, allowed: int = 0) -> None:
        super().__init__(message)
        self.needed = needed
        self.allowed = allowed


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
