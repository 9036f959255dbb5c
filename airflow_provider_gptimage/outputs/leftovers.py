"""Temporary files left by killed copies in a local folder, and their removal once clearly abandoned.

A copy into a local folder writes ``.<stem>.part-<32 hex digits>`` and renames it into place; a worker
killed mid-copy (SIGKILL, OOM, a lost machine) leaves that file behind. It is removed by the next task that
checks the folder (:func:`~airflow_provider_gptimage.outputs.paths.check_destination`) once BOTH hold:

* it was last written longer ago than the download deadline plus :data:`ABANDON_MARGIN` (a live copy
  writes, renames or deletes its file within its deadline);
* no process holds its lock: every writer locks its temporary file (``flock``) for as long as it lives,
  so a writer with a longer deadline than the sweeping task's is never disturbed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import time
from typing import TYPE_CHECKING

from airflow_provider_gptimage.outputs.paths import LOCAL_PROTOCOLS

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

#: Seconds added to the download deadline before a temporary file counts as abandoned.
ABANDON_MARGIN = 600.0
_TEMP_NAME = re.compile(r"\..+\.part-[0-9a-f]{32}")


def _remove_unless_held(path: str) -> bool:
    """Delete ``path`` if no writer holds its lock; return whether it was deleted."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover (not POSIX): the age alone decides
            pass
        except OSError:
            return False  # a live writer holds it
        os.unlink(path)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def sweep_abandoned(folder: ObjectStoragePath, *, older_than: float, now: float | None = None) -> list[str]:
    """Delete the abandoned temporary files of a local folder (see the module docstring); others are left.

    :param folder: the destination folder; nothing is done unless it is local.
    :param older_than: seconds since a file's last write after which it may be abandoned.
    :param now: the current time (epoch seconds); default: now.
    :return: the names deleted.
    """
    if folder.protocol not in LOCAL_PROTOCOLS:
        return []
    limit = (time.time() if now is None else now) - older_than
    removed: list[str] = []
    try:
        entries = os.scandir(folder.path)
    except OSError:
        return []
    with entries:
        for entry in entries:
            if not _TEMP_NAME.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_mtime < limit and _remove_unless_held(entry.path):
                    removed.append(entry.name)
    if removed:
        log.info("Removed %d abandoned temporary file(s) of killed copies from %s", len(removed), folder.path)
    return removed
