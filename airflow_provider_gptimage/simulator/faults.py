"""One-shot fault injection: a queue of faults per endpoint, consumed by the next requests."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_gptimage.simulator.config import ENDPOINTS

#: Fault names and the options each accepts (besides the common ``process`` option).
FAULTS: dict[str, frozenset[str]] = {
    "http_429": frozenset({"retry_after"}),
    "http_409": frozenset(),
    "http_455": frozenset(),
    "http_500": frozenset(),
    "http_502": frozenset(),
    "http_503": frozenset(),
    "html_error": frozenset({"status"}),
    "empty_body": frozenset(),
    "invalid_json": frozenset(),
    "body_code": frozenset({"code", "msg"}),
    "slow": frozenset({"delay"}),
    "reset": frozenset({"before_headers"}),
    "truncate": frozenset(),
}
#: ``process=True``: on ``createTask``, create the job first, then deliver the fault
#: (a lost response: the job exists and is billed, the client does not know its id).
COMMON_OPTIONS = frozenset({"process"})
#: Default option values.
DEFAULTS: dict[str, dict[str, Any]] = {
    "http_429": {"retry_after": 1},
    "html_error": {"status": 502},
    "body_code": {"code": 500, "msg": "internal server error (injected by simulator)"},
    "slow": {"delay": 1.0},
    "reset": {"before_headers": False},
}


@dataclass(frozen=True)
class Fault:
    """One injected fault.

    :param name: one of :data:`FAULTS`.
    :param options: the fault's options, defaults filled in.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def option(self, key: str) -> Any:
        """Value of an option (``None`` when neither given nor defaulted)."""
        return self.options.get(key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"fault": self.name, **self.options}


def make_fault(endpoint: str, fault: str, options: Mapping[str, Any]) -> Fault:
    """Validate and build a fault.

    :param endpoint: one of ``createTask``, ``recordInfo``, ``result``.
    :param fault: one of :data:`FAULTS`.
    :param options: fault options.
    :raises ValueError: on an unknown endpoint, fault or option.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {', '.join(ENDPOINTS)}")
    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}; expected one of {', '.join(FAULTS)}")
    unknown = sorted(set(options) - FAULTS[fault] - COMMON_OPTIONS)
    if unknown:
        raise ValueError(f"fault {fault!r} does not accept option(s): {', '.join(unknown)}")
    merged = {**DEFAULTS.get(fault, {}), **options}
    return Fault(fault, merged)


class FaultQueue:
    """Per-endpoint FIFO of faults; each entry applies to a number of consecutive requests."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[list[Any]]] = {e: deque() for e in ENDPOINTS}

    def inject(self, endpoint: str, fault: str, times: int = 1, **options: Any) -> Fault:
        """Queue ``fault`` for the next ``times`` requests to ``endpoint``.

        :param endpoint: one of ``createTask``, ``recordInfo``, ``result``.
        :param fault: one of :data:`FAULTS`.
        :param times: how many consecutive requests get the fault.
        :param options: fault options, see :data:`FAULTS`.
        :raises ValueError: on an unknown endpoint, fault or option, or ``times < 1``.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        built = make_fault(endpoint, fault, options)
        self._queues[endpoint].append([built, times])
        return built

    def pop(self, endpoint: str) -> Fault | None:
        """Consume the fault for one request to ``endpoint``, if any is queued."""
        queue = self._queues[endpoint]
        if not queue:
            return None
        entry = queue[0]
        entry[1] -= 1
        if entry[1] <= 0:
            queue.popleft()
        fault: Fault = entry[0]
        return fault

    def pending(self) -> dict[str, list[dict[str, Any]]]:
        """Queued faults per endpoint, with the remaining request count of each."""
        return {e: [{**f.to_dict(), "times": n} for f, n in q] for e, q in self._queues.items()}

    def clear(self) -> None:
        """Drop every queued fault."""
        for queue in self._queues.values():
            queue.clear()
