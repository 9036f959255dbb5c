"""Simulated jobs, their clock-driven progression, and the counters snapshot."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

#: Prompt directives that make a single job misbehave, e.g. ``"a cat [sim:fail]"``.
DIRECTIVES = ("fail", "stuck", "no-urls", "zero-images", "expired")
_DIRECTIVE_RE = re.compile(r"\[sim:([a-z-]+)\]")
#: Code and message of a job ended by ``[sim:fail]``.
FAIL_CODE = "501"
FAIL_MSG = "image generation failed (simulated by [sim:fail])"


def parse_directives(prompt: str) -> frozenset[str]:
    """The known ``[sim:...]`` directives contained in a prompt."""
    return frozenset(d for d in _DIRECTIVE_RE.findall(prompt) if d in DIRECTIVES)


class ManualClock:
    """A clock tests move by hand: ``clock.advance(2.5)``; pass it as ``clock=`` to a simulator.

    :param start: initial time in epoch seconds; defaults to now.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self._now += seconds

    def set(self, now: float) -> None:
        """Set the clock to ``now`` (epoch seconds)."""
        self._now = now


@dataclass
class Job:
    """One accepted job. Times are in clock seconds (epoch seconds by default).

    :param task_id: the job id returned by createTask.
    :param request: the parsed create request body.
    :param param_json: the create request as the JSON string ``recordInfo`` returns.
    :param created_at: clock time at creation.
    :param generation_seconds: duration captured at creation.
    :param image_count: number of result images.
    :param directives: ``[sim:...]`` directives found in the prompt.
    """

    task_id: str
    request: dict[str, Any]
    param_json: str
    created_at: float
    generation_seconds: float
    image_count: int
    directives: frozenset[str] = frozenset()

    @property
    def prompt(self) -> str:
        """The job's prompt."""
        return str(self.request["input"]["prompt"])

    @property
    def aspect_ratio(self) -> str | None:
        """The requested aspect ratio, if any."""
        value = self.request["input"].get("aspect_ratio")
        return value if isinstance(value, str) else None

    @property
    def complete_at(self) -> float | None:
        """Clock time the job ends, or ``None`` when it never does (``[sim:stuck]``)."""
        if "stuck" in self.directives:
            return None
        return self.created_at + self.generation_seconds

    def state_at(self, now: float) -> str:
        """The job's state at clock time ``now``."""
        end = self.complete_at
        if end is None:
            return "waiting"
        if now >= end:
            return "fail" if "fail" in self.directives else "success"
        fraction = (now - self.created_at) / self.generation_seconds
        return "waiting" if fraction < 1 / 3 else "queuing" if fraction < 2 / 3 else "generating"

    def is_active(self, now: float) -> bool:
        """Whether the job counts against the active task limit at ``now``."""
        end = self.complete_at
        return end is None or now < end

    def is_expired(self, now: float, ttl: float | None) -> bool:
        """Whether the job's result URLs have expired at ``now``."""
        if "expired" in self.directives:
            return True
        end = self.complete_at
        return ttl is not None and end is not None and now - end >= ttl


@dataclass(frozen=True)
class SimulatorStats:
    """Snapshot of a simulator's counters.

    :param creates: accepted creates (jobs created = credits spent).
    :param create_attempts: every createTask request, refused ones included.
    :param polls: every recordInfo request.
    :param result_downloads: every request for a result image.
    :param prompt_creates: accepted creates per prompt.
    :param request_ids: ``X-Request-ID`` values received, per endpoint, in arrival order.
    :param requests_without_auth: API requests lacking an ``Authorization`` header.
    :param active_jobs: jobs unfinished now.
    :param max_active_jobs: most jobs unfinished at once, as observed at each create.
    :param responses_409: responses carrying code 409 (HTTP status or body code).
    :param responses_429: responses carrying code 429 (HTTP status or body code).
    :param status_counts: responses per effective code (the body code when there is one).
    :param credits_remaining: credits left, ``None`` when unlimited.
    :param pending_faults: injected faults not consumed yet, per endpoint.
    """

    creates: int = 0
    create_attempts: int = 0
    polls: int = 0
    result_downloads: int = 0
    prompt_creates: dict[str, int] = field(default_factory=dict)
    request_ids: dict[str, list[str]] = field(default_factory=dict)
    requests_without_auth: int = 0
    active_jobs: int = 0
    max_active_jobs: int = 0
    responses_409: int = 0
    responses_429: int = 0
    status_counts: dict[int, int] = field(default_factory=dict)
    credits_remaining: int | None = None
    pending_faults: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``status_counts`` keys become strings)."""
        data = dict(self.__dict__)
        data["status_counts"] = {str(k): v for k, v in self.status_counts.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimulatorStats:
        """Rebuild a snapshot from :meth:`to_dict` output (unknown keys are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["status_counts"] = {int(k): v for k, v in known.get("status_counts", {}).items()}
        return cls(**known)
