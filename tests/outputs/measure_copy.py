"""Run by test_memory.py in a child process: copy one image and report the process's memory growth.

Usage: ``python measure_copy.py URL DESTINATION [CONN_ID]``; prints one JSON line.
The image server lives in the parent process, so only the copying process is measured. The peak is
``VmHWM`` after resetting it through ``/proc/self/clear_refs``: ``ru_maxrss`` cannot serve, because a
child inherits it across fork + exec from its parent, here the pytest process holding moto's objects.
"""

from __future__ import annotations

import json
import resource
import sys


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) of this process; ``False`` where it cannot be."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_kib() -> int:
    """Peak resident set size so far (since :func:`reset_peak`), in KiB."""
    hwm = _status_kib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_kib() -> int:
    """Current resident set size in KiB (the peak so far where ``/proc`` is missing)."""
    rss = _status_kib("VmRSS")
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    url, destination = sys.argv[1], sys.argv[2]
    conn_id = sys.argv[3] if len(sys.argv) > 3 else None

    from airflow_provider_gptimage.outputs import copy_results, resolve_destination
    from airflow_provider_gptimage.protocol import JobRecord

    dest = resolve_destination(destination, conn_id=conn_id)
    warm_up = JobRecord(job_id="warm-up", state="success", result_urls=(url.split("?")[0] + "?mb=1",))
    copy_results(warm_up, dest, filename="warm-up")  # imports, connection pools, first-use caches

    peak_before = peak_kib()
    reset = reset_peak()
    before = rss_kib()
    record = JobRecord(job_id="big", state="success", result_urls=(url,))
    [out] = copy_results(record, dest, filename="big")
    peak = peak_kib()
    report = {"growth_kib": peak - before, "rss_before_kib": before, "peak_before_kib": peak_before, "reset": reset}
    print(json.dumps({**report, "size": out.size, "sha256": out.sha256, "uri": out.uri}))


if __name__ == "__main__":
    main()
