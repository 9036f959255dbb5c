"""Where a batch keeps its progress: ``task_state_store`` and the defer kwargs, written in crash-safe order.

Three kinds of keys (the records are in :mod:`.records`):

* ``gptimage_batch`` (:class:`~.records.BatchMeta`, durable): the batch fingerprint, one status per item,
  the number of result segments and the try's start. About one byte per item.
* ``gptimage_batch_live`` (:class:`~.records.LiveState`): the jobs in flight, the create window and the end
  of a create pause. Bounded by the window; rewritten after every group of creates, so a group's job ids
  are stored before the next group is sent.
* ``gptimage_batch_results_<n>``: segments of :class:`~.records.ResultRow` (at most :data:`SEGMENT_ROWS`
  each), read once, when the batch ends. The last segment is filled up before the next one is started,
  and travels in the defer kwargs too, so a resume appends without reading it.

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

from airflow_provider_gptimage.batch.records import BatchMeta, ItemStatus, JobInFlight, LiveState, ResultRow
from airflow_provider_gptimage.protocol.batch import BatchItem, batch_fingerprint
from airflow_provider_gptimage.protocol.window import CreateWindow

META_KEY = "gptimage_batch"
LIVE_KEY = "gptimage_batch_live"
SEGMENT_KEY = "gptimage_batch_results_{}"
#: Result rows per segment (a row is about 200 bytes: well under the store's 64 KB advice per value).
SEGMENT_ROWS = 200


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
    """Where a batch stands (see the module docstring for how it is stored).

    :param fingerprint: of the batch.
    :param statuses: one per item.
    :param window: the create window.
    :param flight: the jobs in flight, by item key.
    :param segments: result segments written so far.
    :param try_number: the task try that last wrote the progress.
    :param try_started: when that try started (epoch seconds), for the ETA.
    :param done_at_try_start: items ended when that try started, for the ETA.
    :param create_after: no create before this time (a 429 or 409 pause).
    """

    fingerprint: str
    statuses: list[ItemStatus]
    window: CreateWindow
    flight: dict[str, JobInFlight] = field(default_factory=dict)
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
        fingerprint, notes = batch_fingerprint(items), []
        progress = cls(fingerprint, [ItemStatus.PENDING] * len(items), CreateWindow.start(maximum))
        meta = BatchMeta.from_primitives(store.get(META_KEY), len(items))
        if meta is not None and meta.fingerprint == fingerprint:
            progress.statuses = list(meta.statuses)
            progress.segments, progress.try_number = meta.segments, meta.try_number
            progress.try_started, progress.done_at_try_start = meta.try_started, meta.done_at_try_start
        elif store.get(META_KEY) is not None:
            notes.append("The requests differ from the batch this task started earlier; starting over.")
        live, unreadable = LiveState.from_primitives(store.get(LIVE_KEY), maximum)
        notes += [
            f"The stored job of key {key!r} cannot be read; it is left to finish unwatched." for key in unreadable
        ]
        if live is not None:
            notes += progress._reattach(live, items)
            if live.fingerprint == fingerprint:
                progress.window = live.window or progress.window
                progress.create_after = live.create_after
        return progress, notes

    def _reattach(self, live: LiveState, items: Sequence[BatchItem]) -> list[str]:
        """Keep the stored jobs whose item is still pending with the same request; note the others."""
        positions = {item.key: index for index, item in enumerate(items)}
        notes = []
        for key, job in live.jobs.items():
            index = positions.get(key)
            if index is None or not job.made_for(items[index].fingerprint):
                notes.append(f"Job {job.job_id} of key {key!r} is no longer part of the batch; it is left to finish.")
            elif self.statuses[index] is ItemStatus.PENDING:
                self.flight[key] = job
        return notes

    # ------------------------------------------------------------------------------------------ counts
    def count(self, status: ItemStatus) -> int:
        """Items with this status."""
        return self.statuses.count(status)

    @property
    def ended(self) -> int:
        """Items that ended (succeeded, failed or found in the destination)."""
        return len(self.statuses) - self.count(ItemStatus.PENDING)

    def pending(self) -> list[int]:
        """Positions of items that have not ended (in flight or not), in request order."""
        return [i for i, status in enumerate(self.statuses) if status is ItemStatus.PENDING]

    def start_try(self, try_number: int) -> bool:
        """Note a new try; items that failed in an earlier try become pending again (a retry retries them).

        :return: whether this is a new try.
        """
        if try_number == self.try_number:
            return False
        self.statuses = [ItemStatus.PENDING if s is ItemStatus.FAILED else s for s in self.statuses]
        self.try_number, self.try_started, self.done_at_try_start = try_number, time.time(), self.ended
        return True

    # ------------------------------------------------------------------------------------------ writes
    @property
    def open_segment(self) -> int | None:
        """The number of the last result segment, which new rows fill up (``None`` before the first)."""
        return self.segments - 1 if self.segments else None

    def save_results(self, store: BatchStore, rows: Sequence[ResultRow]) -> None:
        """Append result rows to the segments (filling up the last one first), then the durable status."""
        pending = [row.to_primitives() for row in rows]
        if pending and self.segments:
            last = list(store.get(SEGMENT_KEY.format(self.segments - 1)) or [])
            if len(last) < SEGMENT_ROWS:
                room = SEGMENT_ROWS - len(last)
                store.set(SEGMENT_KEY.format(self.segments - 1), last + pending[:room])
                pending = pending[room:]
        for start in range(0, len(pending), SEGMENT_ROWS):
            store.set(SEGMENT_KEY.format(self.segments), pending[start : start + SEGMENT_ROWS])
            self.segments += 1
        meta = BatchMeta(self.fingerprint, tuple(self.statuses), self.segments, self.try_number,
                         self.try_started, self.done_at_try_start)  # fmt: skip
        store.set(META_KEY, meta.to_primitives())

    def live_state(self) -> dict[str, Any]:
        """The value of the live key (compare it with a later one to skip a write that changes nothing)."""
        return LiveState(self.fingerprint, dict(self.flight), self.window, self.create_after).to_primitives()

    def save_live(self, store: BatchStore) -> dict[str, Any]:
        """Write the jobs in flight and the window (after every group of creates); return what was written."""
        value = self.live_state()
        store.set(LIVE_KEY, value)
        return value

    def rows(self, store: BatchStore) -> list[ResultRow]:
        """Every result row written so far, oldest first (unreadable ones skipped)."""
        rows = []
        for n in range(self.segments):
            for value in store.get(SEGMENT_KEY.format(n)) or []:
                row = ResultRow.from_primitives(value)
                if row is not None:
                    rows.append(row)
        return rows
