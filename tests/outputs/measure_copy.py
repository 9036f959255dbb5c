"""Run by test_memory.py in a child process: copy one image and report the process's memory growth.

Usage (from the repository's root): ``python -m tests.outputs.measure_copy URL DESTINATION [CONN_ID]``;
prints one JSON line. The image server lives in the parent process, so only the copying process is
measured, with :class:`tests.memory.PeakGrowth` (the peak is reset first: ``ru_maxrss`` cannot serve,
because a child inherits it across fork + exec from its parent, here the pytest process holding moto's objects).
"""

from __future__ import annotations

import json
import sys

from tests.memory import PeakGrowth


def main() -> None:
    url, destination = sys.argv[1], sys.argv[2]
    conn_id = sys.argv[3] if len(sys.argv) > 3 else None

    from airflow_provider_gptimage.outputs import copy_results, resolve_destination
    from airflow_provider_gptimage.protocol import JobRecord

    dest = resolve_destination(destination, conn_id=conn_id)
    warm_up = JobRecord(job_id="warm-up", state="success", result_urls=(url.split("?")[0] + "?mb=1",))
    copy_results(warm_up, dest, filename="warm-up")  # imports, connection pools, first-use caches

    record = JobRecord(job_id="big", state="success", result_urls=(url,))
    with PeakGrowth() as growth:
        [out] = copy_results(record, dest, filename="big")
    report = {
        "growth_kib": growth.kib,
        "rss_before_kib": growth.before_kib,
        "peak_before_kib": growth.peak_before_kib,
        "reset": growth.reset,
    }
    print(json.dumps({**report, "size": out.size, "sha256": out.sha256, "uri": out.uri}))


if __name__ == "__main__":
    main()
