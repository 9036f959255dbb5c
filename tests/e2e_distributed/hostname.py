"""``[core] hostname_callable`` of the distributed stack: each process says which service it is.

Two Celery workers and two triggerers share one machine; Airflow records a hostname per task try
(``task_instance.hostname``) and per triggerer (``job.hostname``), and the scenarios need to tell them
apart. Every service of the stack gets ``GPTIMAGE_E2E_HOSTNAME`` (``worker-a``, ``triggerer-b``...).
"""

from __future__ import annotations

import os
import socket


def get_hostname() -> str:
    """The service name the stack gave this process (the machine's name outside the stack)."""
    return os.environ.get("GPTIMAGE_E2E_HOSTNAME") or socket.getfqdn()
