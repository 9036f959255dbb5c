"""What a batch persists, as named records with explicit to/from-primitives.

Every record is written as a small JSON object with named fields (``version`` 2). Progress written by
release 0.1.0 (``version`` 1: positional lists, short keys) is still read, so a batch interrupted across the
upgrade resumes: its jobs in flight are re-attached, not paid for again.

The one compact encoding left is the per-item status: one character per item (10,000 items are 10 KB),
encoded and decoded here only (:func:`encode_statuses`, :func:`decode_statuses`); everything else speaks
:class:`ItemStatus`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from airflow_provider_gptimage.protocol.window import CreateWindow

#: The format this release writes.
VERSION = 2
#: The format of release 0.1.0 (read, never written).
LEGACY_VERSION = 1


class ItemStatus(str, Enum):
    """Where one item of a batch stands."""

    PENDING = "pending"  #: neither ended nor started (or in flight: see the live state)
    SUCCEEDED = "succeeded"  #: its job succeeded and its images are kept
    FAILED = "failed"  #: its job failed, timed out or was refused (a retry of the task tries it again)
    EXISTING = "existing"  #: its outputs were already complete in the destination: no job was created

    @property
    def ended(self) -> bool:
        """Whether the item needs nothing more in this try."""
        return self is not ItemStatus.PENDING


_CODES = {ItemStatus.PENDING: ".", ItemStatus.SUCCEEDED: "s", ItemStatus.FAILED: "f", ItemStatus.EXISTING: "k"}
_STATUSES = {code: status for status, code in _CODES.items()}


def encode_statuses(statuses: Sequence[ItemStatus]) -> str:
    """One character per item (the same codes in both formats)."""
    return "".join(_CODES[status] for status in statuses)


def decode_statuses(text: object, count: int) -> list[ItemStatus] | None:
    """The statuses of ``count`` items, or ``None`` when ``text`` is not such an encoding."""
    if not isinstance(text, str) or len(text) != count or not set(text) <= set(_STATUSES):
        return None
    return [_STATUSES[code] for code in text]


@dataclass(frozen=True)
class JobInFlight:
    """A job created for an item and not ended yet.

    :param job_id: the service's job id.
    :param created_at: when the service answered the create (epoch seconds).
    :param fingerprint: the :func:`~airflow_provider_gptimage.protocol.fingerprint` of the item's request
        (0.1.0 stored its first 12 characters).
    """

    job_id: str
    created_at: float
    fingerprint: str

    def made_for(self, fingerprint: str) -> bool:
        """Whether this job was created for a request of that fingerprint."""
        return fingerprint == self.fingerprint or (len(self.fingerprint) == 12 and fingerprint[:12] == self.fingerprint)

    def to_primitives(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "created_at": self.created_at, "fingerprint": self.fingerprint}

    @classmethod
    def from_primitives(cls, value: object) -> JobInFlight | None:
        """Read either format; ``None`` for anything else."""
        if isinstance(value, Mapping):
            job_id, created_at, fingerprint = value.get("job_id"), value.get("created_at"), value.get("fingerprint")
        elif isinstance(value, list) and len(value) == 3:  # 0.1.0: [job_id, created_at, digest]
            job_id, created_at, fingerprint = value
        else:
            return None
        if not isinstance(job_id, str) or not isinstance(created_at, (int, float)) or not isinstance(fingerprint, str):
            return None
        return cls(job_id, float(created_at), fingerprint)


@dataclass(frozen=True)
class ResultRow:
    """How one item ended (a later row for the same item replaces an earlier one).

    :param index: the item's position in the batch.
    :param job_id: the job, if one was created.
    :param state: ``success``, ``existing``, ``fail``, ``timeout``, ``rejected`` or ``error``.
    :param uris: the copies in the destination, or the result URLs without one.
    :param error: why it failed.
    """

    index: int
    job_id: str | None
    state: str
    uris: tuple[str, ...] = ()
    error: str | None = None

    def to_primitives(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "job_id": self.job_id,
            "state": self.state,
            "uris": list(self.uris),
            "error": self.error,
        }

    @classmethod
    def from_primitives(cls, value: object) -> ResultRow | None:
        """Read either format; ``None`` for anything else."""
        if isinstance(value, Mapping):
            fields = [value.get(k) for k in ("index", "job_id", "state", "uris", "error")]
        elif isinstance(value, list) and len(value) == 5:  # 0.1.0: [index, job_id, state, uris, error]
            fields = list(value)
        else:
            return None
        index, job_id, state, uris, error = fields
        if not isinstance(index, int) or not isinstance(state, str) or not isinstance(uris, list):
            return None
        return cls(
            index,
            job_id if isinstance(job_id, str) else None,
            state,
            tuple(map(str, uris)),
            error if isinstance(error, str) else None,
        )


@dataclass(frozen=True)
class BatchMeta:
    """The durable part of a batch's progress (small: about one byte per item).

    :param fingerprint: of the batch (:func:`~airflow_provider_gptimage.protocol.batch.batch_fingerprint`).
    :param statuses: one per item.
    :param segments: result segments written.
    :param try_number: the task try that last wrote it.
    :param try_started: when that try started (epoch seconds), for the ETA.
    :param done_at_try_start: items ended when that try started, for the ETA.
    """

    fingerprint: str
    statuses: tuple[ItemStatus, ...]
    segments: int = 0
    try_number: int = 0
    try_started: float = 0.0
    done_at_try_start: int = 0

    def to_primitives(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "statuses": encode_statuses(self.statuses),
            "segments": self.segments,
            "try_number": self.try_number,
            "try_started": self.try_started,
            "done_at_try_start": self.done_at_try_start,
        }

    @classmethod
    def from_primitives(cls, value: object, count: int) -> BatchMeta | None:
        """Read either format for a batch of ``count`` items; ``None`` for anything else."""
        if not isinstance(value, Mapping):
            return None
        if value.get("version") == VERSION:
            names = ("fingerprint", "statuses", "segments", "try_number", "try_started", "done_at_try_start")
        elif value.get("v") == LEGACY_VERSION:
            names = ("fp", "status", "segments", "try", "t0", "d0")
        else:
            return None
        fingerprint, statuses, segments, try_number, started, done = (value.get(name) for name in names)
        decoded = decode_statuses(statuses, count)
        if not isinstance(fingerprint, str) or decoded is None:
            return None
        return cls(
            fingerprint, tuple(decoded), int(segments or 0), int(try_number or 0), float(started or 0.0), int(done or 0)
        )


@dataclass(frozen=True)
class LiveState:
    """The fast-changing part: the jobs in flight, the create window, the end of a create pause.

    :param fingerprint: of the batch that wrote it.
    :param jobs: item key -> its job in flight.
    :param window: the create window (``None`` when unreadable: the window restarts).
    :param create_after: no create before this time (a 409/429 pause).
    """

    fingerprint: str
    jobs: dict[str, JobInFlight] = field(default_factory=dict)
    window: CreateWindow | None = None
    create_after: float = 0.0

    def to_primitives(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "fingerprint": self.fingerprint,
            "jobs": {key: job.to_primitives() for key, job in self.jobs.items()},
            "window": None if self.window is None else self.window.to_primitives(),
            "create_after": self.create_after,
        }

    @classmethod
    def from_primitives(cls, value: object, maximum: int) -> tuple[LiveState | None, list[str]]:
        """Read either format; return the state (``None`` for anything else) and the unreadable job entries."""
        if not isinstance(value, Mapping) or value.get("version", value.get("v")) not in (VERSION, LEGACY_VERSION):
            return None, []
        jobs, unreadable = {}, []
        for key, entry in dict(value.get("jobs") or {}).items():
            job = JobInFlight.from_primitives(entry)
            if job is None:
                unreadable.append(str(key))
            else:
                jobs[str(key)] = job
        fingerprint = value.get("fingerprint", value.get("fp"))
        window = CreateWindow.from_primitives(value.get("window"), maximum)
        after = value.get("create_after")
        state = cls(str(fingerprint), jobs, window, float(after) if isinstance(after, (int, float)) else 0.0)
        return state, unreadable
