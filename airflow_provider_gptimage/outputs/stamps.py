"""Storage stamps: what identifies the exact object stored under a name, read with one ``stat``.

A sidecar records the stamp of the image it describes, taken from the writer's own file (locally) or right
after its upload (object stores); the pair is complete only while the image under that name still has the
same stamp. Another writer's image under the same name has another stamp, even with the same size.

* local files: inode, device and modification time in nanoseconds (a rename keeps all three);
* object stores and other fsspec filesystems: the identity fields of ``info()`` (``ETag``, ``generation``,
  ``VersionId``...), else its modification time and inode fields.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.outputs.paths import LOCAL_PROTOCOLS

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: ``info()`` fields naming one version of an object (s3fs, gcsfs, adlfs...).
IDENTITY_FIELDS = ("ETag", "etag", "generation", "VersionId", "version_id")
#: Fields used when a filesystem has none of the above.
FALLBACK_FIELDS = ("ino", "mtime", "modified", "LastModified", "last_modified")


def local_stamp(result: os.stat_result) -> dict[str, str]:
    """The stamp of a local file, from ``os.stat``/``os.fstat``."""
    return {"dev": str(result.st_dev), "ino": str(result.st_ino), "mtime_ns": str(result.st_mtime_ns)}


def info_stamp(info: Mapping[str, Any]) -> dict[str, str]:
    """The stamp of an object from its fsspec ``info()`` (empty when the filesystem reports nothing usable)."""
    for fields in (IDENTITY_FIELDS, FALLBACK_FIELDS):
        found = {name: str(info[name]) for name in fields if info.get(name) not in (None, "")}
        if found:
            return found
    return {}


def read_stamp(path: ObjectStoragePath) -> tuple[int, dict[str, str]]:
    """Size and stamp of what is stored at ``path`` now: one ``stat`` (local) or ``info()``.

    :raises FileNotFoundError: nothing is stored there.
    """
    if path.protocol in LOCAL_PROTOCOLS or not path.protocol:
        result = os.stat(path.path)
        return result.st_size, local_stamp(result)
    info = path.fs.info(path.path)
    return int(info.get("size") or 0), info_stamp(info)


def same_object(recorded: Mapping[str, Any], current: Mapping[str, str]) -> bool:
    """Whether a recorded stamp names the object stored now.

    Only fields both stamps have are compared (a listing may lack a field that a ``HEAD`` reports), and at
    least one must be shared: with nothing to compare, the answer is no.
    """
    shared = [name for name in recorded if name in current]
    return bool(shared) and all(str(recorded[name]) == current[name] for name in shared)
