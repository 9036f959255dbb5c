"""Job records of ``recordInfo`` and job ids of ``createTask``: parsed, bounded and cleaned (pure).

Every string of a record is scrubbed of the caller's secrets and, where it is shown or logged (state,
codes, messages, model), has its control characters escaped; structures are bounded in depth, count and
length, so a hostile or broken service can neither leak the key through a record nor forge a log line.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from airflow_provider_gptimage.exceptions import (
    GPTImageInvalidResponseError,
    GPTImageResultError,
    GPTImageUnknownStateError,
)
from airflow_provider_gptimage.protocol.text import clean, depth_exceeds, escape_controls, is_plain_id, scrub_value

STATE_SUCCESS = "success"
STATE_FAIL = "fail"
#: States the provider knows a running job by (the documented ``waiting`` and those seen in the wild).
RUNNING_STATES = frozenset(
    {"waiting", "queuing", "queued", "pending", "generating", "running", "processing", "in_progress", "created"}
)
#: Words that say a job ended without an image: such a state fails the job at once (``cancelled``...).
FAILED_WORDS = frozenset(
    {
        "fail", "failed", "failure", "error", "errored", "cancel", "cancelled", "canceled", "abort", "aborted",
        "expired", "timeout", "timedout", "rejected", "deleted", "killed", "terminated", "stopped",
    }
)  # fmt: skip
#: Polls in a row that may report a state outside both lists before the job is reported as broken.
MAX_UNKNOWN_STATE_POLLS = 10
#: The most result URLs one job may return (a job makes one image; a few is plausible, thousands is not).
MAX_RESULT_URLS = 16
#: The longest result URL accepted.
MAX_URL_CHARS = 4096
#: The longest job id accepted from the service.
MAX_JOB_ID_CHARS = 256
#: Characters kept of ``failMsg``.
MESSAGE_CHARS = 500
#: The largest echoed request (``param``) kept; a bigger one is dropped (the task knows its request).
MAX_PARAM_CHARS = 64 * 1024


def state_kind(state: str) -> str:
    """Classify a job state: ``"success"``, ``"fail"``, ``"running"`` or ``"unknown"``.

    ``success`` alone succeeds. A state whose words (split on ``_``, ``-`` and spaces) include a failure
    word of :data:`FAILED_WORDS` fails at once. The states of :data:`RUNNING_STATES` run; any other state
    is unknown: treated as running, and reported after :data:`MAX_UNKNOWN_STATE_POLLS` polls in a row.
    """
    if state == STATE_SUCCESS:
        return STATE_SUCCESS
    words = set(state.replace("-", " ").replace("_", " ").split()) | {state.replace("_", "").replace("-", "")}
    if words & FAILED_WORDS:
        return STATE_FAIL
    return "running" if state in RUNNING_STATES else "unknown"


@dataclass(frozen=True)
class JobRecord:
    """One job as ``recordInfo`` describes it.

    :param job_id: the API's ``taskId``.
    :param state: the state, lower-cased (``waiting``, ``queuing``, ``generating``, ``success``, ``fail``...).
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
        """The job ended without an image (``fail``, or a state such as ``cancelled``: see :func:`state_kind`)."""
        return state_kind(self.state) == STATE_FAIL

    @property
    def is_finished(self) -> bool:
        """The job ended; every other state (including unknown ones) counts as running."""
        return self.is_success or self.is_failed

    @property
    def is_unknown_state(self) -> bool:
        """The state is neither known as running nor as ended (see :func:`state_kind`)."""
        return state_kind(self.state) == "unknown"

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


def parse_create(data: Mapping[str, Any], *, secrets: tuple[str, ...] = ()) -> str:
    """Return the job id from a ``createTask`` answer's ``data``.

    :raises GPTImageInvalidResponseError: no id (retryable: the job may or may not exist), or an id that is
        not a plain printable token (not retryable: a job was created, but its id cannot be used safely).
    """
    job_id = data.get("taskId")
    if not isinstance(job_id, str) or not job_id.strip():
        raise GPTImageInvalidResponseError("createTask answered without a `taskId`; the job may or may not exist.")
    if not is_plain_id(job_id, limit=MAX_JOB_ID_CHARS) or scrub_value(job_id, secrets) != job_id:
        error = GPTImageInvalidResponseError(
            f"createTask answered a job id that is not a plain printable token of at most {MAX_JOB_ID_CHARS} "
            f"characters ({clean(job_id, secrets, limit=60)!r}). The job may have been created and billed; it is "
            "not used, and the request is not sent again."
        )
        error.retryable = False
        raise error
    return job_id


_UNREADABLE = object()


def _decode_json_field(value: Any, *, limit: int | None = None) -> Any:
    """Decode a field that holds JSON as a string (or already decoded).

    :return: the value; ``None`` when empty; :data:`_UNREADABLE` when not JSON, too long or too deep.
    """
    if isinstance(value, (bytes, str)):
        if not str(value).strip():
            return None
        if limit is not None and len(value) > limit:
            return _UNREADABLE
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return _UNREADABLE
    return _UNREADABLE if depth_exceeds(value) else value


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value in (None, "") or isinstance(value, bool) else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def _result_urls(raw: Any, job_id: str, secrets: tuple[str, ...], *, needed: bool) -> tuple[str, ...]:
    """The result URLs of ``resultJson``: strings, scrubbed, bounded in number and length.

    :param needed: the job succeeded (an unreadable ``resultJson`` is an error only then).
    """
    result = _decode_json_field(raw)
    if result is _UNREADABLE and needed:
        raise GPTImageInvalidResponseError(
            f"recordInfo of job {job_id} holds a `resultJson` that is not readable JSON of at most "
            f"{MAX_URL_CHARS * MAX_RESULT_URLS:,} characters.",
            job_id=job_id,
        )
    listed = result.get("resultUrls") if isinstance(result, dict) else None
    urls = [u for u in listed if isinstance(u, str) and u] if isinstance(listed, list) else []
    if len(urls) > MAX_RESULT_URLS:
        raise GPTImageResultError(
            f"Job {job_id} returned {len(urls):,} result URLs, more than the {MAX_RESULT_URLS} one job may return; "
            "nothing is copied. The service's answer is broken: check the job in its dashboard.",
            job_id=job_id,
        )
    bad = [u for u in urls if len(u) > MAX_URL_CHARS or escape_controls(u) != u or any(c.isspace() for c in u)]
    if bad:
        raise GPTImageResultError(
            f"Job {job_id} returned a result URL that is longer than {MAX_URL_CHARS} characters or holds control "
            f"characters or spaces ({clean(bad[0], secrets, limit=80)!r}); nothing is copied.",
            job_id=job_id,
        )
    return tuple(str(scrub_value(u, secrets)) for u in urls)


def unknown_state_error(job_id: str, state: str, polls: int) -> GPTImageUnknownStateError:
    """The error of a job whose state stayed unknown (see :func:`state_kind`) for ``polls`` polls in a row:
    the job is reported, not polled until its deadline."""
    return GPTImageUnknownStateError(
        f"Job {job_id} reported the state {state!r}, which the provider does not know, for {polls} polls in a row "
        f"(known: success, {', '.join(sorted(RUNNING_STATES))}, and failure words such as cancelled). Check the "
        "job in the service's dashboard; collect it later with GPTImageTaskSensor if it does succeed.",
        job_id=job_id,
        state=state,
    )


def parse_record(data: Mapping[str, Any], *, job_id: str | None = None, secrets: tuple[str, ...] = ()) -> JobRecord:
    """Build a :class:`JobRecord` from a ``recordInfo`` answer's ``data``.

    Tolerates ``resultJson`` as a string or an object, ``""`` or ``null`` fail fields, and states beyond
    the documented ones (see :func:`state_kind`). The job id asked for wins over the one the answer names.

    :param job_id: the job polled.
    :param secrets: values to scrub from every string of the record (the API key).
    :raises GPTImageInvalidResponseError: no usable job id, or an unreadable ``resultJson`` (retryable).
    :raises GPTImageResultError: too many or malformed result URLs (final).
    """
    record_id = job_id or data.get("taskId")
    if not isinstance(record_id, str) or not is_plain_id(record_id, limit=MAX_JOB_ID_CHARS):
        raise GPTImageInvalidResponseError("recordInfo answered without a usable `taskId`.", job_id=job_id)
    params = _decode_json_field(data.get("param"), limit=MAX_PARAM_CHARS)
    state = clean(str(data.get("state") or "").strip().lower(), secrets) or "unknown"
    return JobRecord(
        job_id=record_id,
        state=state,
        result_urls=_result_urls(data.get("resultJson"), record_id, secrets, needed=state == STATE_SUCCESS),
        fail_code=clean(data.get("failCode"), secrets),
        fail_message=clean(data.get("failMsg"), secrets, limit=MESSAGE_CHARS),
        cost_time_ms=_int_or_none(data.get("costTime")),
        create_time_ms=_int_or_none(data.get("createTime")),
        complete_time_ms=_int_or_none(data.get("completeTime")),
        model=clean(data.get("model"), secrets),
        params=scrub_value(params, secrets) if isinstance(params, dict) else {},  # type: ignore[arg-type]
    )
