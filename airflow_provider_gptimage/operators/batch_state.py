"""Persisted progress of a batch: compact, crash-ordered, kept in ``task_state_store`` and the defer kwargs.

Three kinds of keys, each written small:

* ``gptimage_batch`` (durable): the batch fingerprint, one status character per item
  (``.`` pending, ``s`` succeeded, ``f`` failed, ``k`` already in the destination), the number of result
  segments, and the try's start. About one byte per item: 10,000 items are about 10 KB.
* ``gptimage_batch_live``: the jobs in flight (``key -> [job_id, created_at, request digest]``), the create
  window and the end of a create pause. Bounded by the window; rewritten after every group of creates
  (``max_concurrent_creates`` POSTs sent at once; one POST with ``1``), so a group's job ids are stored
  before the next group is sent.
* ``gptimage_batch_results_<n>``: segments of result rows (at most :data:`SEGMENT_ROWS` each), read once,
  when the batch ends. The last segment is filled up (rewritten with the new rows appended) before the
  next one is started, and travels in the defer kwargs too, so a resume appends without reading it.

Write order makes every crash point safe: result segment, then durable status, then the live key. A crash
after the status but before the live key leaves ended jobs in the live key; :meth:`Progress.load` drops
them because their status is final. A crash before the status leaves them in flight: they are polled and
copied again (a copy whose sidecar names the same job is skipped). The one unsafe point is a crash while
a group of creates is in flight (sent, their ids not yet stored): the service keeps (and bills) those jobs,
unwatched, and the retry creates those items again. ``max_concurrent_creates=1`` narrows that to one job.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_gptimage.protocol.batch import EXISTING, FAILED, PENDING, SUCCESS, BatchItem
from airflow_provider_gptimage.protocol.batch import batch_fingerprint as fingerprint
from airflow_provider_gptimage.protocol.window import CreateWindow

META_KEY = "gptimage_batch"
LIVE_KEY = "gptimage_batch_live"
SEGMENT_KEY = "gptimage_batch_results_{}"
#: Result rows per segment (a row is about 150 bytes: well under the store's 64 KB advice per value).
SEGMENT_ROWS = 200
_VERSION = 1


class BatchStore:
    """Get/set of JSON values: the task's ``task_state_store`` (Airflow 3.3+), else a dict that travels
    whole in the defer kwargs (older Airflow: survives deferrals, not retries).

    :param backend: ``context["task_state_store"]``, or ``None``.
    :param carried: the ``state`` defer kwarg of the previous deferral, if any.
    """

    def __init__(self, backend: Any, carried: Mapping[str, Any] | None = None) -> None:
        self.backend = backend
        self.carried: dict[str, Any] = dict(carried or {})

    def get(self, key: str) -> Any:
        """Return the stored value: the carried copy of a key it holds, else the store's.

        The carried copy is what this task last stored before it deferred (every write of those keys
        updates both), and Airflow drops a deferral's kwargs when a try ends (failure, retry, clear), so a
        resume's copy is never older than the store: reading it saves a round trip to the store per key.
        """
        if key in self.carried:
            return self.carried[key]
        return self.backend.get(key) if self.backend is not None else None

    def set(self, key: str, value: Any) -> None:
        """Store a value (and keep the copy the next deferral carries)."""
        if self.backend is not None:
            self.backend.set(key, value)
        self.carried[key] = value

    def to_kwargs(self, open_segment: int | None = None) -> dict[str, Any]:
        """The compact copy for the defer kwargs: the meta and live keys and the open result segment
        (everything, when there is no ``task_state_store``)."""
        if self.backend is None:
            return dict(self.carried)
        keep = {META_KEY, LIVE_KEY} | ({SEGMENT_KEY.format(open_segment)} if open_segment is not None else set())
        return {k: v for k, v in self.carried.items() if k in keep}


@dataclass
class Progress:
    """Where a batch stands; see the module docstring for how it is stored.

    :param fingerprint: of the batch (:func:`~.protocol.batch.fingerprint`).
    :param status: one progress character per item.
    :param flight: jobs in flight, ``key -> [job_id, created_at, digest]``.
    :param window: the create window.
    :param segments: result segments written so far.
    :param try_number: the task try that last wrote the progress.
    :param try_started: when that try started (epoch seconds), for the ETA.
    :param done_at_try_start: items ended when that try started, for the ETA.
    :param create_after: no create before this time (a 429 or 409 pause).
    """

    fingerprint: str
    status: list[str]
    window: CreateWindow
    flight: dict[str, list[Any]] = field(default_factory=dict)
    segments: int = 0
    try_number: int = 0
    try_started: float = 0.0
    done_at_try_start: int = 0
    create_after: float = 0.0

    @classmethod
    def load(cls, store: BatchStore, items: Sequence[BatchItem], maximum: int) -> tuple[Progress, list[str]]:
        """Read the progress of this batch, or start it; return it and notes to log.

        Progress of another batch (edited items) is not reused, except its jobs in flight whose key and
        request are unchanged: they are re-attached, not paid for again.
        """
        fp, notes = fingerprint(items), []
        meta, live = store.get(META_KEY), store.get(LIVE_KEY)
        digests = {item.key: item.digest for item in items}
        if isinstance(meta, Mapping) and meta.get("v") == _VERSION and meta.get("fp") == fp:
            status = list(str(meta.get("status", "")))
            progress = cls(
                fp, status if len(status) == len(items) else [PENDING] * len(items), CreateWindow.start(maximum)
            )
            progress.segments = int(meta.get("segments", 0))
            progress.try_number = int(meta.get("try", 0))
            progress.try_started = float(meta.get("t0", 0.0))
            progress.done_at_try_start = int(meta.get("d0", 0))
        else:
            if meta is not None:
                notes.append("The requests differ from the batch this task started earlier; starting over.")
            progress = cls(fp, [PENDING] * len(items), CreateWindow.start(maximum))
        if isinstance(live, Mapping) and live.get("v") == _VERSION:
            positions = {item.key: index for index, item in enumerate(items)}
            for key, entry in dict(live.get("jobs") or {}).items():
                index = positions.get(key)
                if index is None or not isinstance(entry, list) or len(entry) != 3 or entry[2] != digests[key]:
                    notes.append(
                        f"Job {entry[0] if isinstance(entry, list) else entry} of key {key!r} is no "
                        "longer part of the batch; it is left to finish unwatched."
                    )
                elif progress.status[index] == PENDING:
                    progress.flight[key] = entry
            if live.get("fp") == fp:
                progress.window = CreateWindow.from_list(live.get("window"), maximum)
                progress.create_after = float(live.get("create_after") or 0.0)
        return progress, notes

    # ------------------------------------------------------------------------------------------ counts
    def count(self, code: str) -> int:
        """Items with this progress code."""
        return self.status.count(code)

    @property
    def ended(self) -> int:
        """Items that ended (succeeded, failed or found in the destination)."""
        return len(self.status) - self.count(PENDING)

    def pending(self) -> list[int]:
        """Positions of items neither ended nor in flight, in request order."""
        return [i for i, code in enumerate(self.status) if code == PENDING]

    def start_try(self, try_number: int) -> bool:
        """Note a new try; items that failed in an earlier try become pending again (a retry retries them).

        :return: whether this is a new try.
        """
        if try_number == self.try_number:
            return False
        self.status = [PENDING if code == FAILED else code for code in self.status]
        self.try_number, self.try_started, self.done_at_try_start = try_number, time.time(), self.ended
        return True

    # ------------------------------------------------------------------------------------------ writes
    @property
    def open_segment(self) -> int | None:
        """The number of the last result segment, which new rows fill up (``None`` before the first)."""
        return self.segments - 1 if self.segments else None

    def save_results(self, store: BatchStore, rows: Sequence[list[Any]]) -> None:
        """Append result rows to the segments (filling up the last one first), then the durable status."""
        pending = list(rows)
        if pending and self.segments:
            last = list(store.get(SEGMENT_KEY.format(self.segments - 1)) or [])
            if len(last) < SEGMENT_ROWS:
                room = SEGMENT_ROWS - len(last)
                store.set(SEGMENT_KEY.format(self.segments - 1), last + pending[:room])
                pending = pending[room:]
        for start in range(0, len(pending), SEGMENT_ROWS):
            store.set(SEGMENT_KEY.format(self.segments), pending[start : start + SEGMENT_ROWS])
            self.segments += 1
        self.save_meta(store)

    def save_meta(self, store: BatchStore) -> None:
        """Write the durable part."""
        store.set(
            META_KEY,
            {
                "v": _VERSION,
                "fp": self.fingerprint,
                "status": "".join(self.status),
                "segments": self.segments,
                "try": self.try_number,
                "t0": self.try_started,
                "d0": self.done_at_try_start,
            },
        )

    def live_state(self) -> dict[str, Any]:
        """The value of the live key (a copy: compare it with a later one to skip a write that changes nothing)."""
        return {
            "v": _VERSION,
            "fp": self.fingerprint,
            "jobs": {key: list(job) for key, job in self.flight.items()},
            "window": self.window.to_list(),
            "create_after": self.create_after,
        }

    def save_live(self, store: BatchStore) -> dict[str, Any]:
        """Write the jobs in flight and the window (after every group of creates); return what was written."""
        value = self.live_state()
        store.set(LIVE_KEY, value)
        return value

    def rows(self, store: BatchStore) -> list[list[Any]]:
        """Every result row written so far, oldest first."""
        rows: list[list[Any]] = []
        for n in range(self.segments):
            rows.extend(store.get(SEGMENT_KEY.format(n)) or [])
        return rows


__all__ = ["EXISTING", "FAILED", "LIVE_KEY", "META_KEY", "PENDING", "SUCCESS", "BatchStore", "Progress"]
