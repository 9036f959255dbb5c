"""The one helper that measures memory (resident set, its peak, Python's allocations), for tests and benchmarks.

Linux's ``/proc/<pid>/status`` gives the current resident set (``VmRSS``) and its peak (``VmHWM``), and
writing ``5`` to ``/proc/self/clear_refs`` resets that peak to the current size, so a peak can be measured
around one operation. ``ru_maxrss`` is the fallback where ``/proc`` is missing, but it cannot serve as a
baseline in a child process: it is inherited across fork + exec from the parent (a big pytest process, say).

Usage, around the operation to measure::

    with PeakGrowth() as growth:
        copy_one_image()
    growth.kib  # peak RSS during the block minus the RSS just before it (nan if the peak was not reset)

:class:`TracedPeak` measures Python's own allocations instead (``tracemalloc``, every thread of this
process), for a block that shares its process with others (a pytest process, a thread-mode simulator).
"""

from __future__ import annotations

import resource
import tracemalloc
from pathlib import Path

KIB_PER_MIB = 1024


def _status_kib(field: str, pid: int | str = "self") -> int | None:
    """A ``kB`` field (``VmRSS``, ``VmHWM``) of ``/proc/<pid>/status``; ``None`` where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_kib() -> int:
    """This process's resident set size in KiB (the peak so far where ``/proc`` is missing)."""
    value = _status_kib("VmRSS")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def process_rss_kib(pid: int) -> int | None:
    """Resident set size in KiB of another process; ``None`` once it has gone (or without ``/proc``)."""
    return _status_kib("VmRSS", pid)


def reset_peak() -> bool:
    """Reset this process's peak-RSS mark (``VmHWM``) to its current RSS; ``False`` where it cannot be."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_kib() -> int:
    """This process's peak RSS in KiB, since :func:`reset_peak` (``ru_maxrss`` where ``/proc`` is missing)."""
    value = _status_kib("VmHWM")
    return value if value is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class PeakGrowth:
    """Peak RSS growth of this process over a ``with`` block: the peak during it minus the RSS just before.

    ``reset`` says whether the peak mark could be reset at the start; without it ``kib`` is ``nan``
    (a peak from before the block would be measured, not the block's).
    """

    def __init__(self) -> None:
        self.reset = False
        self.before_kib = 0
        self.peak_before_kib = 0
        self.kib = float("nan")

    def __enter__(self) -> PeakGrowth:
        self.peak_before_kib = peak_kib()
        self.reset = reset_peak()
        self.before_kib = rss_kib()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kib = float(peak_kib() - self.before_kib) if self.reset else float("nan")

    @property
    def mib(self) -> float:
        """The growth in MiB (``nan`` if the peak could not be reset)."""
        return self.kib / KIB_PER_MIB


class TracedPeak:
    """Peak of the memory Python allocated (``tracemalloc``, every thread) during a ``with`` block, in bytes.

    Unlike RSS it ignores what the process held before and what C libraries allocate themselves, so it
    can judge a block inside a big process (pytest) that ``PeakGrowth`` would measure with its noise.
    """

    def __init__(self) -> None:
        self.bytes = 0

    def __enter__(self) -> TracedPeak:
        tracemalloc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        _, self.bytes = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    @property
    def mib(self) -> float:
        """The peak in MiB."""
        return self.bytes / (KIB_PER_MIB * 1024)
